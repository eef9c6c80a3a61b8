//! The sliding windows the failure and slow-call rates are computed over.
//!
//! Both keep running totals next to their slots or buckets, so reading the rates costs a
//! few loads whatever the window's size. Every change to a slot or bucket is mirrored in
//! the totals by the thread that made it, so the totals always equal the window's contents
//! once the in-flight updates land (they may briefly lag by the calls being recorded).

mod count;
mod time;

pub(crate) use count::CountWindow;
pub(crate) use time::TimeWindow;

use crate::config::SlidingWindow;
use crate::sync::{AtomicU64, Ordering};

/// A finished call as the window stores it: two bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Code(pub(crate) u8);

impl Code {
    pub(crate) const FAILED: u8 = 1;
    pub(crate) const SLOW: u8 = 2;

    pub(crate) fn new(failed: bool, slow: bool) -> Code {
        Code((u8::from(failed) * Code::FAILED) | (u8::from(slow) * Code::SLOW))
    }

    pub(crate) fn failed(self) -> bool {
        self.0 & Code::FAILED != 0
    }

    pub(crate) fn slow(self) -> bool {
        self.0 & Code::SLOW != 0
    }

    fn slow_failed(self) -> bool {
        self.0 == Code::FAILED | Code::SLOW
    }
}

/// What the window holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Totals {
    pub(crate) calls: u64,
    pub(crate) failed: u64,
    pub(crate) slow: u64,
    pub(crate) slow_failed: u64,
}

/// The failure, slow and slow-failure counts as wrapping `u64`s read as `i64`: a
/// decrement may land before the increment it undoes, so a count can dip below zero for
/// an instant; readers clamp it.
#[derive(Debug, Default)]
pub(crate) struct BadCounts {
    failed: AtomicU64,
    slow: AtomicU64,
    slow_failed: AtomicU64,
}

impl BadCounts {
    /// Replaces one `old` outcome by a `new` one.
    pub(crate) fn replace(&self, old: Code, new: Code) {
        let counts = [
            (&self.failed, old.failed(), new.failed()),
            (&self.slow, old.slow(), new.slow()),
            (&self.slow_failed, old.slow_failed(), new.slow_failed()),
        ];
        for (counter, was, is) in counts {
            match (was, is) {
                (false, true) => counter.fetch_add(1, Ordering::AcqRel),
                (true, false) => counter.fetch_sub(1, Ordering::AcqRel),
                _ => continue,
            };
        }
    }

    pub(crate) fn read(&self, calls: u64) -> Totals {
        let clamp = |counter: &AtomicU64| (counter.load(Ordering::Acquire) as i64).max(0) as u64;
        Totals {
            calls,
            failed: clamp(&self.failed),
            slow: clamp(&self.slow),
            slow_failed: clamp(&self.slow_failed),
        }
    }
}

/// One of the two window kinds (an enum rather than a trait object: the closed path
/// calls it on every call and the match is cheaper than a virtual call).
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn new(kind: SlidingWindow, now: u64) -> Window {
        match kind {
            SlidingWindow::Count(size) => Window::Count(CountWindow::new(size)),
            SlidingWindow::Time { length, bucket } => Window::Time(TimeWindow::new(
                crate::config::duration_nanos(length),
                crate::config::duration_nanos(bucket),
                now,
            )),
        }
    }

    /// Whether recording needs the time (only the time window does).
    #[inline]
    pub(crate) fn needs_time(&self) -> bool {
        matches!(self, Window::Time(_))
    }

    /// Records one call and returns the totals after it, and a receipt for
    /// [`undo`](Self::undo); `None` if the call changed nothing (see
    /// [`CountWindow::record`]).
    #[inline]
    pub(crate) fn record(&self, code: Code, now: u64) -> Option<(Totals, u64)> {
        match self {
            Window::Count(window) => window
                .record(code)
                .map(|(totals, index)| (totals, index as u64)),
            Window::Time(window) => Some(window.record(code, now)),
        }
    }

    /// Takes back the record of `code` with `receipt`, which raced a [`clear`](Self::clear).
    pub(crate) fn undo(&self, code: Code, receipt: u64) {
        match self {
            Window::Count(window) => window.undo(receipt as usize, code),
            Window::Time(window) => window.undo(code, receipt),
        }
    }

    pub(crate) fn totals(&self, now: u64) -> Totals {
        match self {
            Window::Count(window) => window.totals(),
            Window::Time(window) => window.totals(now),
        }
    }

    /// Empties the window (on entering `Closed` or `MetricsOnly`).
    pub(crate) fn clear(&self, now: u64) {
        match self {
            Window::Count(window) => window.clear(),
            Window::Time(window) => window.clear(now),
        }
    }
}
