//! Tests for foundation.
