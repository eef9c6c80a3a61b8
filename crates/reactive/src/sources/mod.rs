//! Where flows start, one file per kind of input.

pub mod iter;
pub mod stream;
