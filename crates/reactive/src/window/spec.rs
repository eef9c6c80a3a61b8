//! [`WindowSpec`]: which windows an event belongs to.

use std::time::Duration;

use super::{Timestamp, millis};

/// The shape of the windows: tumbling, sliding, session or count.
///
/// Time windows are aligned to the epoch of their timestamps (a 10 s tumbling window
/// covers `[0, 10_000)`, `[10_000, 20_000)`, …) and have millisecond granularity.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_reactive::window::WindowSpec;
///
/// let per_minute = WindowSpec::tumbling(Duration::from_secs(60));
/// let last_hour_every_minute =
///     WindowSpec::sliding(Duration::from_secs(3600), Duration::from_secs(60));
/// let visits = WindowSpec::session(Duration::from_secs(30 * 60));
/// let every_100 = WindowSpec::count(100);
/// # let _ = (per_minute, last_hour_every_minute, visits, every_100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub(crate) kind: SpecKind,
}

/// The kinds, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpecKind {
    /// Sliding windows of `size` every `slide` (tumbling: `size == slide`).
    Sliding { size: Timestamp, slide: Timestamp },
    /// Session windows closed by `gap` without events.
    Session { gap: Timestamp },
    /// Every `n` events of a key.
    Count { n: u64 },
}

impl WindowSpec {
    /// Back-to-back windows of `size`: every event belongs to exactly one.
    ///
    /// # Panics
    ///
    /// If `size` is under one millisecond.
    pub fn tumbling(size: Duration) -> Self {
        Self::sliding(size, size)
    }

    /// Windows of `size` starting every `slide`: every event belongs to `size / slide`
    /// of them. Each event is added to one pane of `gcd(size, slide)`, and each fired window
    /// merges its panes incrementally (a few merges per window however large `size /
    /// slide` is).
    ///
    /// # Panics
    ///
    /// If `slide` is under one millisecond or longer than `size`.
    pub fn sliding(size: Duration, slide: Duration) -> Self {
        let (size, slide) = (millis(size), millis(slide));
        assert!(slide >= 1, "a window slide must be at least 1 ms");
        assert!(
            slide <= size,
            "a window slide must not be longer than its size"
        );
        Self {
            kind: SpecKind::Sliding { size, slide },
        }
    }

    /// Per-key sessions: an event opens the window `[t, t + gap)`, and windows that
    /// overlap or touch merge (their accumulators are merged). A session therefore ends
    /// `gap` after its last event, and fires when the watermark passes that.
    ///
    /// # Panics
    ///
    /// If `gap` is under one millisecond.
    pub fn session(gap: Duration) -> Self {
        let gap = millis(gap);
        assert!(gap >= 1, "a session gap must be at least 1 ms");
        Self {
            kind: SpecKind::Session { gap },
        }
    }

    /// Every `n` events of a key form a window, whatever their timestamps: time,
    /// watermarks and lateness do not apply. The window of a count-window result is the
    /// range of the key's event numbers: `[0, n)`, `[n, 2n)`, …. At end of input the
    /// last, partial window of each key fires too (`end - start < n` there).
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    pub fn count(n: u64) -> Self {
        assert!(n >= 1, "a count window needs at least one event");
        Self {
            kind: SpecKind::Count { n },
        }
    }
}
