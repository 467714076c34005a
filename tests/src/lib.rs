//! Shared helpers for lanner integration tests.
