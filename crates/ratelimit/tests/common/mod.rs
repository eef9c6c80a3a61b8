//! Helpers shared by the integration test files (each `mod common;` uses a subset).
#![allow(dead_code)]

pub(crate) mod model;

use std::num::NonZeroU32;

use flowbed_ratelimit::Quota;

pub(crate) fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// `count` per second with burst `burst`.
pub(crate) fn per_second(count: u32, burst: u32) -> Quota {
    Quota::per_second(nz(count)).allow_burst(nz(burst))
}

/// A current-thread tokio runtime with time paused (auto-advancing while idle).
pub(crate) fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}
