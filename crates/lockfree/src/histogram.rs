//! Latency histograms with power-of-two buckets: recording is one relaxed atomic update, no
//! lock and no allocation; quantiles are exact to a factor of two.
//!
//! A [`LatencyRecorder`] is the recording side: fixed atomic counters that any thread can
//! add to. [`LatencyRecorder::snapshot`] copies them into a [`Histogram`], a plain value
//! that can be merged with others (one recorder per worker or per connection, summed on
//! demand) and asked for quantiles.
//!
//! Bucket `i` counts durations in `[2^i, 2^(i+1))` nanoseconds (bucket 0 also holds zero);
//! the 40 buckets reach about 18 minutes, and longer durations land in the last one.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use flowbed_lockfree::histogram::{Histogram, LatencyRecorder};
//!
//! // One recorder per worker, each written by its own thread...
//! let recorders = [LatencyRecorder::new(), LatencyRecorder::new()];
//! std::thread::scope(|s| {
//!     for recorder in &recorders {
//!         s.spawn(move || {
//!             for micros in 1..=100 {
//!                 recorder.record_exclusive(Duration::from_micros(micros));
//!             }
//!         });
//!     }
//! });
//!
//! // ...summed into one distribution when someone asks.
//! let mut total = Histogram::default();
//! for recorder in &recorders {
//!     total.merge(&recorder.snapshot());
//! }
//! assert_eq!(total.count(), 200);
//! assert!(total.quantile(0.99) >= Duration::from_micros(99));
//! ```

use std::time::Duration;

use crate::sync::{AtomicU64, Ordering};

/// Number of buckets: bucket `i` counts durations in `[2^i, 2^(i+1))` nanoseconds (bucket 0
/// also holds zero); 40 buckets reach about 18 minutes, longer ones land in the last.
const BUCKETS: usize = 40;

fn bucket_of(nanos: u64) -> usize {
    let bits = u64::BITS - nanos.leading_zeros();
    (bits.saturating_sub(1) as usize).min(BUCKETS - 1)
}

fn nanos_of(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// The recording side of a latency histogram: one atomic counter per bucket.
///
/// [`record`](Self::record) may be called from any number of threads at once.
/// [`record_exclusive`](Self::record_exclusive) is cheaper (no read-modify-write) but counts
/// correctly only while a single thread records into this recorder, e.g. a recorder owned
/// by one worker. [`snapshot`](Self::snapshot) may be called from any thread at any time;
/// while recording goes on, it sees each bucket at some recent value.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_lockfree::histogram::LatencyRecorder;
///
/// let recorder = LatencyRecorder::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             for _ in 0..1_000 {
///                 recorder.record(Duration::from_micros(5));
///             }
///         });
///     }
/// });
/// let histogram = recorder.snapshot();
/// assert_eq!(histogram.count(), 4_000);
/// // 5 µs = 5000 ns lies in the bucket [4096, 8192) ns.
/// assert_eq!(histogram.quantile(0.5), Duration::from_nanos(8192));
/// ```
#[derive(Debug)]
pub struct LatencyRecorder {
    buckets: [AtomicU64; BUCKETS],
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Counts one sample of `elapsed`. Safe to call from any number of threads at once: one
    /// relaxed `fetch_add`, so no sample is ever lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use flowbed_lockfree::histogram::LatencyRecorder;
    ///
    /// let recorder = LatencyRecorder::new();
    /// let started = Instant::now();
    /// std::hint::black_box((0..1_000u64).sum::<u64>());
    /// recorder.record(started.elapsed());
    /// recorder.record(Duration::from_millis(3));
    /// assert_eq!(recorder.snapshot().count(), 2);
    /// ```
    #[inline]
    pub fn record(&self, elapsed: Duration) {
        self.buckets[bucket_of(nanos_of(elapsed))].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one sample of `elapsed` with a relaxed load and store instead of a
    /// read-modify-write, for a recorder that only one thread ever records into (a
    /// per-worker recorder on a hot path).
    ///
    /// Correct only with a single recording thread. If several threads call this (or mix it
    /// with [`record`](Self::record)) at the same time, concurrent updates of a bucket can
    /// overwrite each other and samples are lost; nothing worse happens (it is still atomic
    /// memory, never undefined behavior). Snapshots from other threads are always fine.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_lockfree::histogram::LatencyRecorder;
    ///
    /// // Owned by one worker thread; read by anyone through `snapshot`.
    /// let recorder = LatencyRecorder::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         for _ in 0..100 {
    ///             recorder.record_exclusive(Duration::from_nanos(700));
    ///         }
    ///     });
    /// });
    /// assert_eq!(recorder.snapshot().count(), 100);
    /// ```
    #[inline]
    pub fn record_exclusive(&self, elapsed: Duration) {
        let bucket = &self.buckets[bucket_of(nanos_of(elapsed))];
        bucket.store(bucket.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// The counts so far, as a [`Histogram`]. Buckets are read one by one (relaxed), so a
    /// snapshot taken while samples are being recorded is approximate.
    pub fn snapshot(&self) -> Histogram {
        Histogram {
            counts: self
                .buckets
                .iter()
                .map(|bucket| bucket.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

/// A latency distribution with power-of-two buckets, from [`LatencyRecorder::snapshot`] or
/// [`merge`](Self::merge)d from several.
///
/// [`Histogram::default()`] is empty and equal to the snapshot of an empty recorder.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_lockfree::histogram::{Histogram, LatencyRecorder};
///
/// let fast = LatencyRecorder::new();
/// let slow = LatencyRecorder::new();
/// for _ in 0..99 {
///     fast.record(Duration::from_micros(10));
/// }
/// slow.record(Duration::from_millis(50));
///
/// let mut all = Histogram::default();
/// assert!(all.is_empty());
/// all.merge(&fast.snapshot());
/// all.merge(&slow.snapshot());
/// assert_eq!(all.count(), 100);
/// // Upper bounds, at most twice the true value.
/// assert!(all.quantile(0.5) >= Duration::from_micros(10));
/// assert!(all.quantile(0.5) < Duration::from_micros(20));
/// assert!(all.quantile(1.0) >= Duration::from_millis(50));
/// assert!(all.quantile(1.0) < Duration::from_millis(100));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// Always `BUCKETS` long, so equal distributions compare equal.
    counts: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
        }
    }
}

impl Histogram {
    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// True if no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&count| count == 0)
    }

    /// An upper bound on the `q` quantile (`q` in `0.0..=1.0`, clamped; NaN counts as 0):
    /// the top of the bucket it falls in, so at most twice the true value. Zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let total = self.count();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_nanos(1u64 << (bucket + 1));
            }
        }
        Duration::from_nanos(1u64 << BUCKETS)
    }

    /// Adds `other`'s samples to this histogram.
    pub fn merge(&mut self, other: &Histogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }
}

#[cfg(all(test, not(flowbed_loom)))]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let recorder = LatencyRecorder::default();
        for micros in [1, 1, 1, 100] {
            recorder.record(Duration::from_micros(micros));
        }
        let histogram = recorder.snapshot();
        assert_eq!(histogram.count(), 4);
        // 1 µs = 1000 ns lies in [512, 1024) ns.
        assert_eq!(histogram.quantile(0.5), Duration::from_nanos(1024));
        // 100 µs lies in [65536, 131072) ns.
        assert_eq!(histogram.quantile(1.0), Duration::from_nanos(131_072));
        assert_eq!(Histogram::default().quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn record_from_two_threads_loses_no_count() {
        const PER_THREAD: u64 = if cfg!(miri) { 200 } else { 10_000 };
        let recorder = LatencyRecorder::new();
        std::thread::scope(|s| {
            for thread in 0..2u64 {
                let recorder = &recorder;
                s.spawn(move || {
                    for i in 0..PER_THREAD {
                        // Both threads hit the same few buckets.
                        recorder.record(Duration::from_nanos((i + thread) % 4));
                    }
                });
            }
        });
        assert_eq!(recorder.snapshot().count(), 2 * PER_THREAD);
    }

    #[test]
    fn record_exclusive_counts_like_record() {
        let shared = LatencyRecorder::new();
        let exclusive = LatencyRecorder::new();
        for nanos in [0, 1, 2, 3, 1_000, 1 << 39, u64::MAX] {
            shared.record(Duration::from_nanos(nanos));
            exclusive.record_exclusive(Duration::from_nanos(nanos));
        }
        shared.record(Duration::MAX);
        exclusive.record_exclusive(Duration::MAX);
        assert_eq!(shared.snapshot(), exclusive.snapshot());
        assert_eq!(shared.snapshot().count(), 8);
        assert_eq!(
            shared.snapshot().quantile(1.0),
            Duration::from_nanos(1 << BUCKETS)
        );
    }

    #[test]
    fn empty_and_merge() {
        let empty = LatencyRecorder::new().snapshot();
        assert!(empty.is_empty());
        assert_eq!(empty, Histogram::default());

        let recorder = LatencyRecorder::new();
        recorder.record(Duration::from_micros(1));
        let one = recorder.snapshot();
        assert!(!one.is_empty());

        let mut merged = Histogram::default();
        merged.merge(&one);
        merged.merge(&empty);
        assert_eq!(merged, one);
        merged.merge(&one);
        assert_eq!(merged.count(), 2);
        assert_eq!(merged.quantile(1.0), Duration::from_nanos(1024));
    }
}
