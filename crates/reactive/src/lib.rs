//! Demand-driven reactive streams for Rust: the Reactive Streams protocol
//! ([`Publisher`], [`Subscriber`], [`Subscription`] with `request(n)`), fused operators,
//! overflow strategies, and event-time windows with watermarks.
//!
//! See the crate README for the feature table and the Reactive Streams rules checked.
//!
//! # Examples
//!
//! ```
//! use flowbed_reactive::Flow;
//!
//! # futures::executor::block_on(async {
//! let squares = Flow::iter(1..=4u32).map(|n| n * n).collect::<Vec<_>>().await.unwrap();
//! assert_eq!(squares, [1, 4, 9, 16]);
//! # });
//! ```

#![forbid(unsafe_code)]

mod consume;
mod demand;
mod error;
mod flow;
pub mod ops;
mod panic;
mod pull;
mod source;
pub mod sources;
mod spec;
mod subscribe;
mod sync;
#[cfg(feature = "tck")]
pub mod tck;
pub mod window;

pub use consume::Fold;
pub use demand::{Demand, Subscription, UNBOUNDED};
pub use error::{BoxError, Error};
pub use flow::Flow;
pub use ops::boundary::{Overflow, PumpTask};
pub use source::{BoxSource, Emit, Source, Step};
pub use sources::stream::IntoStream;
pub use spec::{Publisher, Subscriber};
pub use subscribe::Drive;
pub use window::{
    Aggregator, Firing, Timestamp, Watermarks, Window, WindowEvent, WindowResult, WindowSpec,
};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
