//! Permissions per integration and account (being built: issue 5).
