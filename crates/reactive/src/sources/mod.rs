//! Where flows start, one file per kind of input.

pub mod interval;
pub mod iter;
pub mod publisher;
pub mod stream;
