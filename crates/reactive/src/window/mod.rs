//! Windows over a flow: tumbling, sliding, session and count windows, in event time (with
//! watermarks, allowed lateness and a side output for late events) or processing time,
//! per key or global.
//!
//! Start with [`Flow::windowed`](crate::Flow::windowed), which returns a [`Windowing`]
//! builder:
//!
//! ```
//! use std::time::Duration;
//! use flowbed_reactive::Flow;
//! use flowbed_reactive::window::{Sum, Watermarks, WindowEvent, WindowSpec};
//!
//! # futures::executor::block_on(async {
//! // (user, event time in ms, amount)
//! let clicks = [("ann", 1_000, 2), ("bob", 1_500, 1), ("ann", 4_000, 5), ("ann", 11_000, 1)];
//! let mut fired = Flow::iter(clicks)
//!     .windowed(WindowSpec::tumbling(Duration::from_secs(10)))
//!     .event_time(|c: &(&str, i64, u32)| c.1, Watermarks::bounded(Duration::from_secs(1)))
//!     .key_by(|c| c.0)
//!     .aggregate(Sum::of(|c: &(&str, i64, u32)| c.2))
//!     .filter_map(WindowEvent::into_fired)
//!     .map(|r| (r.key, r.window.start, r.value))
//!     .collect::<Vec<_>>()
//!     .await
//!     .unwrap();
//! fired.sort();
//! assert_eq!(fired, [("ann", 0, 7), ("ann", 10_000, 1), ("bob", 0, 1)]);
//! # });
//! ```
//!
//! # Semantics (Apache Flink's)
//!
//! * Time is a [`Timestamp`]: milliseconds as an `i64`. A [`Window`] is `[start, end)`;
//!   its last instant is `end - 1`.
//! * **Event time**: the watermark `W` says "no more events with a timestamp `<= W`"
//!   (see [`Watermarks`]). A window fires ([`Firing::OnTime`]) when `W >= end - 1`. Its
//!   state is kept until `W >= end - 1 + allowed_lateness`; an event for a fired window
//!   that is still kept updates it and fires it again at once ([`Firing::Late`]). An event
//!   whose every window is past its lateness is not dropped silently: it comes out as
//!   [`WindowEvent::Late`] (the side output for late events).
//! * **Processing time** (the default): an event's timestamp is the tokio clock at its
//!   arrival, in milliseconds since the flow was first polled; a window fires when that
//!   clock reaches its `end`, by a timer, even if no event arrives. Nothing is late.
//! * **Order**: the results one watermark advance fires come out in order of window end;
//!   results of different keys with the same end come out in an unspecified order. A
//!   late re-fire comes out right after the event that caused it.
//! * **End of input**: when upstream completes, the watermark jumps to `+∞`
//!   (`Timestamp::MAX`): every open window fires, then the flow completes.
//! * **Upstream error**: the results fired before the error are delivered, then the flow
//!   fails with the error; windows still open are dropped (their partial results would
//!   be wrong).
//! * **Memory**: state is kept per open window (tumbling, session) or per pane (sliding:
//!   panes of `gcd(size, slide)` milliseconds), per key; a key without open windows costs
//!   nothing. Firing goes through a timer queue ordered by time, so it costs `O(log n)`
//!   per fired window, not a scan of all keys.
//! * **Backpressure**: fired results wait in a small queue until downstream asks; while
//!   results are waiting, upstream is not pulled.
//! * **Timestamps** should stay within `±2^62` ms (a window's end is computed by addition).

mod aggregator;
mod count;
mod event;
mod operator;
mod panes;
mod session;
mod sliding;
mod spec;
mod timers;
mod watermarks;

pub use aggregator::{Aggregator, Collect, Count, Fold, Max, Min, Sum, fold};
pub use event::{Firing, WindowEvent, WindowResult};
pub use operator::{NoKey, ProcessingTime, WindowSource, Windowing};
pub use spec::WindowSpec;
pub use watermarks::Watermarks;

/// A point in time in milliseconds: event time (as your events carry it, typically since
/// the Unix epoch) or processing time (since the flow was first polled).
pub type Timestamp = i64;

/// The time range `[start, end)` of one window, in milliseconds. For count windows it is
/// a range of per-key event numbers instead (see [`WindowSpec::count`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// The first instant inside the window.
    pub start: Timestamp,
    /// The first instant after the window (exclusive).
    pub end: Timestamp,
}

impl Window {
    /// The last instant inside the window: `end - 1`. The window fires when the watermark
    /// reaches it.
    pub fn max_timestamp(&self) -> Timestamp {
        self.end - 1
    }

    /// Whether `timestamp` lies inside the window.
    pub fn contains(&self, timestamp: Timestamp) -> bool {
        self.start <= timestamp && timestamp < self.end
    }
}

/// `floor(value / step) * step` for a positive `step`, rounding towards `-∞`.
pub(crate) fn align_down(value: Timestamp, step: Timestamp) -> Timestamp {
    value.saturating_sub(value.rem_euclid(step))
}

/// A duration in whole milliseconds as a [`Timestamp`] offset (saturating).
pub(crate) fn millis(duration: std::time::Duration) -> Timestamp {
    Timestamp::try_from(duration.as_millis()).unwrap_or(Timestamp::MAX)
}
