//! The operators, one file each; every file adds its methods to [`Flow`](crate::Flow).

pub mod filter;
pub mod map;
pub mod scan;
pub mod take;
pub mod boundary;
