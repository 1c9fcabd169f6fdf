//! ticker
