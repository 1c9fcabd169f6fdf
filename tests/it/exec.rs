//! Tests for exec.
