//! The operators, one file each; every file adds its methods to [`Flow`](crate::Flow).

pub mod batch;
pub mod boundary;
pub mod broadcast;
pub mod concat;
pub mod debounce;
pub mod filter;
pub mod flat_map;
pub mod group_by;
pub mod map;
pub mod merge;
pub mod retry;
pub mod sample;
pub mod scan;
pub mod take;
pub mod throttle;
pub mod timeout;
pub mod zip;
