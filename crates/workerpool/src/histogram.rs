//! Latency histograms with power-of-two buckets (feature `histograms`): recording is one
//! relaxed add on the worker's own cache lines; quantiles are exact to a factor of two.

use std::time::Duration;

use crate::sync::{AtomicU64, Ordering};

/// Buckets: bucket `i` counts durations in `[2^i, 2^(i+1))` nanoseconds (bucket 0 also
/// holds zero); 40 buckets reach about 18 minutes, longer ones land in the last.
const BUCKETS: usize = 40;

fn bucket_of(nanos: u64) -> usize {
    let bits = u64::BITS - nanos.leading_zeros();
    (bits.saturating_sub(1) as usize).min(BUCKETS - 1)
}

/// The recording side, one per worker.
#[derive(Debug)]
pub(crate) struct LatencyRecorder {
    buckets: [AtomicU64; BUCKETS],
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl LatencyRecorder {
    pub(crate) fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = &self.buckets[bucket_of(nanos)];
        // One writer per recorder: load and store instead of a read-modify-write.
        bucket.store(bucket.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Histogram {
        Histogram {
            counts: self
                .buckets
                .iter()
                .map(|bucket| bucket.load(Ordering::Relaxed))
                .collect(),
        }
    }
}

/// A latency distribution with power-of-two buckets.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "histograms")] {
/// use flowbed_workerpool::WorkerPool;
///
/// let pool = WorkerPool::new(2).unwrap();
/// for _ in 0..100 {
///     pool.submit(|| std::hint::black_box(1 + 1)).unwrap().join().unwrap();
/// }
/// let stats = pool.stats();
/// assert_eq!(stats.run_time.count(), 100);
/// println!("p99 queue wait <= {:?}", stats.queue_wait.quantile(0.99));
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// An upper bound on the `q` quantile (`q` in `0.0..=1.0`): the top of the bucket it
    /// falls in, so at most twice the true value. Zero when empty.
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

    pub(crate) fn merge(&mut self, other: &Self) {
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
}
