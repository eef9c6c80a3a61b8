//! Test support shared by the crate's test binaries: [`hooked::Hooked`], a delegating
//! `EventStore` wrapper with hooks, and (feature `postgres`) the PostgreSQL setup in
//! [`postgres`]. Each test file includes it with `mod common;`.

// Every test binary compiles this module but uses only part of it.
#![allow(dead_code)]

pub(crate) mod hooked;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
