//! A Rust port of the Reactive Streams TCK: rule checks any [`Publisher`](crate::Publisher)
//! or [`Subscriber`](crate::Subscriber) can be run against (crate feature `tck`).
//!
//! Like the JVM TCK's `PublisherVerification` and `SubscriberWhiteboxVerification`,
//! the kit drives the subject through scripted scenarios and watches every signal:
//!
//! * [`PublisherVerification`]: makes publishers with your factory, subscribes a probe
//!   ([`ManualSubscriber`] / [`TestSubscriber`]) that records each signal with its thread
//!   and time, and checks rules 1.x and the 3.x rules about subscriptions.
//! * [`SubscriberVerification`]: plays the publisher ([`TestPublisher`]) for your
//!   consumer, sending each signal by hand, and checks rules 2.x.
//!
//! Each `run()` builds its own multi-thread tokio runtime and returns a [`Report`] with one
//! [`Outcome`] per check; [`Report::assert_all_passed`] turns it into a test. [`RULES`]
//! lists every rule of the specification with how the kit covers it: checked at run
//! time, enforced by Rust's types (request(0) cannot be written, signals cannot overlap
//! without `unsafe`), or not applicable; [`rules_markdown`] renders it for a README.
//!
//! Timeouts are real time (default 1 s per expected signal, 50 ms of watching for
//! signals that must not come), because the subject may run on its own threads.
//!
//! # Examples
//!
//! In a test file (the kit builds its own runtime: use a plain `#[test]`):
//!
//! ```
//! use flowbed_reactive::{Flow, tck::PublisherVerification};
//!
//! # fn main() {
//! // #[test] fn my_publisher_follows_the_rules() {
//! PublisherVerification::new(|elements| Flow::iter(0..elements).map(|n| n * 2))
//!     .name("iter + map")
//!     .run()
//!     .assert_all_passed();
//! // }
//! # }
//! ```

mod probe;
mod publisher;
mod report;
mod rules;
mod run;
mod subscriber;

pub use probe::{Event, ManualSubscriber, ProbeConfig, Signal, TestSubscriber, Violation};
pub use publisher::PublisherVerification;
pub use report::{Entry, Outcome, Report};
pub use rules::{Coverage, RULES, RuleInfo, coverage_counts, rules_markdown};
pub use subscriber::{SubscriberVerification, TestPublisher};
