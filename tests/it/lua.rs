//! Tests for lua.
