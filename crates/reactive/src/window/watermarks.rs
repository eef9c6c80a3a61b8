//! [`Watermarks`]: how an event-time window operator decides that a point in event time
//! is complete.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::{Timestamp, millis};

/// The watermark strategy of an event-time window operator (see
/// [`Windowing::event_time`](super::Windowing::event_time)).
///
/// The watermark `W` is a promise "no more events with a timestamp `<= W`"; windows fire
/// when it passes their end. It starts at `Timestamp::MIN`, never goes back, and is
/// updated right after each event (so an event never makes itself late).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_reactive::window::Watermarks;
///
/// // Events arrive up to 5 s out of order; a source quiet for 30 s lets windows close.
/// let marks = Watermarks::<(i64, u32)>::bounded(Duration::from_secs(5))
///     .idle_timeout(Duration::from_secs(30));
/// # let _ = marks;
/// ```
pub struct Watermarks<T> {
    kind: Kind<T>,
    idle: Option<Timestamp>,
}

/// A punctuated watermark function.
type WatermarkFn<T> = Box<dyn FnMut(&T) -> Option<Timestamp> + Send>;

enum Kind<T> {
    /// `max timestamp seen - bound - 1`.
    Bounded(Timestamp),
    /// Explicit watermarks carried by events.
    Punctuated(WatermarkFn<T>),
}

impl<T> Watermarks<T> {
    /// Events arrive at most `max_out_of_orderness` behind the latest timestamp seen: the
    /// watermark is `max timestamp seen - max_out_of_orderness - 1 ms` (Flink's
    /// `forBoundedOutOfOrderness`). An event further behind is late.
    pub fn bounded(max_out_of_orderness: Duration) -> Self {
        Self {
            kind: Kind::Bounded(millis(max_out_of_orderness)),
            idle: None,
        }
    }

    /// Timestamps never go down: `bounded(Duration::ZERO)`, watermark `max seen - 1`.
    pub fn monotonic() -> Self {
        Self::bounded(Duration::ZERO)
    }

    /// Punctuated watermarks: after each event, `watermark(&event)` may return a new
    /// watermark (ignored unless it is higher than the current one). For sources that
    /// carry watermarks in-band, and for tests.
    pub fn from_fn(watermark: impl FnMut(&T) -> Option<Timestamp> + Send + 'static) -> Self {
        Self {
            kind: Kind::Punctuated(Box::new(watermark)),
            idle: None,
        }
    }

    /// Idle-source handling: once no event has arrived for `timeout` (tokio processing
    /// time), the watermark follows the processing clock: it becomes
    /// `W_events + (now - arrival of the last event)` in milliseconds, where `W_events` is
    /// the watermark the events gave. A timer re-evaluates it when a window is waiting,
    /// so pending windows fire on a quiet source (a window whose last instant is `M`
    /// fires `max(timeout, M - W_events)` after the last event). The next event brings
    /// the watermark back to event-driven updates, but it never goes back: events that
    /// fall behind the advanced watermark are late. Needs a tokio runtime.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle = Some(millis(timeout));
        self
    }
}

impl<T> fmt::Debug for Watermarks<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Watermarks");
        match &self.kind {
            Kind::Bounded(bound) => out.field("bounded_ms", bound),
            Kind::Punctuated(_) => out.field("punctuated", &true),
        };
        out.field("idle_timeout_ms", &self.idle).finish()
    }
}

/// The running watermark of an event-time operator.
#[derive(Debug)]
pub(crate) struct WatermarkClock<T> {
    marks: Watermarks<T>,
    /// The highest watermark events gave.
    from_events: Timestamp,
    /// The highest timestamp seen (bounded strategy).
    max_seen: Timestamp,
    /// When the last event arrived (idle handling only).
    last_arrival: Option<Instant>,
}

impl<T> WatermarkClock<T> {
    pub(crate) fn new(marks: Watermarks<T>) -> Self {
        Self {
            marks,
            from_events: Timestamp::MIN,
            max_seen: Timestamp::MIN,
            last_arrival: None,
        }
    }

    /// Whether idle handling needs the clock read at every event.
    pub(crate) fn watches_idle(&self) -> bool {
        self.marks.idle.is_some()
    }

    /// The watermark an idle source has at `now`, if it is idle.
    pub(crate) fn idle_watermark(&self, now: Instant) -> Option<Timestamp> {
        let idle = self.marks.idle?;
        let quiet = millis(now.saturating_duration_since(self.last_arrival?));
        (quiet >= idle).then(|| self.from_events.saturating_add(quiet))
    }

    /// When the idle watermark reaches `target` (`None`: never, or not watching idle).
    pub(crate) fn idle_deadline(&self, target: Timestamp) -> Option<Instant> {
        let idle = self.marks.idle?;
        let wait = target.saturating_sub(self.from_events).max(idle);
        self.last_arrival?
            .checked_add(Duration::from_millis(u64::try_from(wait).ok()?))
    }

    /// Upstream is being pulled again after downstream held the operator back: the
    /// quiet time restarts now (a source that was not asked is not idle).
    pub(crate) fn resume(&mut self, now: Instant) {
        if self.watches_idle() && self.last_arrival.is_some() {
            self.last_arrival = Some(now);
        }
    }

    /// Records an event's arrival (idle handling).
    pub(crate) fn arrived(&mut self, now: Instant) {
        self.last_arrival = Some(now);
    }

    /// The watermark `item` (at `time`) gives, applied after the item was processed.
    pub(crate) fn mark(&mut self, time: Timestamp, item: &T) -> Option<Timestamp> {
        match &mut self.marks.kind {
            Kind::Bounded(bound) => {
                if time <= self.max_seen {
                    return None;
                }
                self.max_seen = time;
                Some(time.saturating_sub(*bound).saturating_sub(1))
            }
            Kind::Punctuated(watermark) => watermark(item),
        }
    }

    /// Applies a watermark from an event; returns the events' watermark.
    pub(crate) fn apply(&mut self, mark: Timestamp) -> Timestamp {
        self.from_events = self.from_events.max(mark);
        self.from_events
    }
}
