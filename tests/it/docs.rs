//! Tests for docs.
