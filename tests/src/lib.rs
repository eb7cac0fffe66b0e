//! Prosody harness
