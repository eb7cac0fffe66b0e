//! Query engine (issue 4).
