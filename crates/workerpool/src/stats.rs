//! Counters: kept per worker (no shared cache line on the job path) and summed on demand.

use crate::sync::{AtomicBool, AtomicU64, Ordering};

#[cfg(feature = "histograms")]
use flowbed_lockfree::histogram::{Histogram, LatencyRecorder};

/// A snapshot of a pool's counters, from [`WorkerPool::stats`](crate::WorkerPool::stats).
///
/// Counters are read one by one while jobs keep running, so a snapshot of a busy pool is
/// approximate; once the pool is quiet they add up exactly:
/// `submitted = completed + panicked + cancelled + rejected.discarded_oldest +
/// returned_by_shutdown_now + queued + active`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Jobs accepted into the pool (queued or handed to a new thread).
    pub submitted: u64,
    /// Jobs that ran to the end.
    pub completed: u64,
    /// Jobs that panicked (the worker survived).
    pub panicked: u64,
    /// Jobs cancelled through their handle before they started.
    pub cancelled: u64,
    /// Jobs refused or dropped, by policy.
    pub rejected: RejectedStats,
    /// Queued jobs that `shutdown_now` (or a timed-out drop) took back.
    pub returned_by_shutdown_now: u64,
    /// Jobs waiting to start.
    pub queued: usize,
    /// Jobs running now.
    pub active: usize,
    /// Worker threads alive now.
    pub threads: usize,
    /// The most worker threads alive at once.
    pub peak_threads: usize,
    /// How long jobs waited in the queue (feature `histograms`).
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
    #[cfg(feature = "histograms")]
    pub queue_wait: Histogram,
    /// How long jobs ran (feature `histograms`).
    #[cfg(feature = "histograms")]
    pub run_time: Histogram,
}

/// Rejections by the policy that handled them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedStats {
    /// Handed back to the caller (`Abort`).
    pub aborted: u64,
    /// Run on the submitting thread (`CallerRuns`); not counted in `submitted`.
    pub caller_runs: u64,
    /// New jobs dropped (`Discard`).
    pub discarded: u64,
    /// Queued jobs dropped to make room (`DiscardOldest`); they were counted in
    /// `submitted`.
    pub discarded_oldest: u64,
    /// `Block` waits that timed out.
    pub timed_out: u64,
    /// Refused because the pool was shut down.
    pub shutdown: u64,
}

impl RejectedStats {
    /// All rejections together.
    pub fn total(&self) -> u64 {
        self.aborted
            + self.caller_runs
            + self.discarded
            + self.discarded_oldest
            + self.timed_out
            + self.shutdown
    }
}

/// A counter with one writer (its worker) and any number of readers.
#[derive(Debug, Default)]
pub(crate) struct LocalCounter(AtomicU64);

impl LocalCounter {
    #[inline]
    pub(crate) fn increment(&self) {
        // One writer: a load and a store, no read-modify-write on the job path.
        let value = self.0.load(Ordering::Relaxed);
        self.0.store(value + 1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One worker's counters.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    pub(crate) completed: LocalCounter,
    pub(crate) panicked: LocalCounter,
    pub(crate) cancelled: LocalCounter,
    pub(crate) busy: AtomicBool,
    #[cfg(feature = "histograms")]
    pub(crate) queue_wait: LatencyRecorder,
    #[cfg(feature = "histograms")]
    pub(crate) run_time: LatencyRecorder,
}

/// What retired workers counted, kept after they are gone.
#[derive(Debug, Default)]
pub(crate) struct RetiredTotals {
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) cancelled: u64,
    #[cfg(feature = "histograms")]
    pub(crate) queue_wait: Histogram,
    #[cfg(feature = "histograms")]
    pub(crate) run_time: Histogram,
}

impl RetiredTotals {
    pub(crate) fn add(&mut self, counters: &WorkerCounters) {
        self.completed += counters.completed.get();
        self.panicked += counters.panicked.get();
        self.cancelled += counters.cancelled.get();
        #[cfg(feature = "histograms")]
        {
            self.queue_wait.merge(&counters.queue_wait.snapshot());
            self.run_time.merge(&counters.run_time.snapshot());
        }
    }

    pub(crate) fn write_into(&self, stats: &mut Stats) {
        stats.completed += self.completed;
        stats.panicked += self.panicked;
        stats.cancelled += self.cancelled;
        #[cfg(feature = "histograms")]
        {
            stats.queue_wait.merge(&self.queue_wait);
            stats.run_time.merge(&self.run_time);
        }
    }
}

impl WorkerCounters {
    pub(crate) fn write_into(&self, stats: &mut Stats) {
        stats.completed += self.completed.get();
        stats.panicked += self.panicked.get();
        stats.cancelled += self.cancelled.get();
        stats.active += usize::from(self.busy.load(Ordering::Relaxed));
        #[cfg(feature = "histograms")]
        {
            stats.queue_wait.merge(&self.queue_wait.snapshot());
            stats.run_time.merge(&self.run_time.snapshot());
        }
    }
}

/// Pool-wide counters written off the job path (rejections) or once per submit.
#[derive(Debug, Default)]
pub(crate) struct PoolCounters {
    pub(crate) submitted: AtomicU64,
    pub(crate) returned: AtomicU64,
    pub(crate) aborted: AtomicU64,
    pub(crate) caller_runs: AtomicU64,
    pub(crate) discarded: AtomicU64,
    pub(crate) discarded_oldest: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) shutdown: AtomicU64,
}

impl PoolCounters {
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn write_into(&self, stats: &mut Stats) {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        stats.submitted = get(&self.submitted);
        stats.returned_by_shutdown_now = get(&self.returned);
        stats.rejected = RejectedStats {
            aborted: get(&self.aborted),
            caller_runs: get(&self.caller_runs),
            discarded: get(&self.discarded),
            discarded_oldest: get(&self.discarded_oldest),
            timed_out: get(&self.timed_out),
            shutdown: get(&self.shutdown),
        };
    }
}
