//! Test helpers shared by the flowbed crates' test suites (a dev-dependency only).
//!
//! # Examples
//!
//! ```
//! use flowbed_testkit::thread_safety::{send_future, thread_safe};
//!
//! thread_safe::<std::sync::Arc<u64>>();
//! let _ = send_future(async { 1 });
//! flowbed_testkit::assert_not_sync!(std::cell::Cell<u8>);
//! ```

pub mod thread_safety;
