//! A model-based property test: random sequences of submit, cancel, resize, hold and
//! release (a dam that gated jobs wait behind, so queues really fill up), shutdown and
//! `shutdown_now` (running or dropping each returned job), checked against a sequential
//! model of what must have happened to every job and of the pool's counters.
//!
//! The pool runs jobs concurrently, so the model does not predict *when* a job runs; it
//! predicts what each one may end as, and the final counts exactly:
//! * every accepted job ends exactly once: run (once), cancelled, returned by
//!   `shutdown_now`, or dropped by `DiscardOldest`; never twice, never lost;
//! * a refused job never runs; `Full` only when `queue_capacity` accepted jobs had not
//!   started, `Shutdown` exactly after a shutdown;
//! * a pool that is still running gets to every accepted job without help;
//! * after `shutdown` + `await_termination` the `Stats` identity holds and each counter
//!   matches the model's own count.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use common::{LONG, assert_stats_add_up};
use flowbed_workerpool::{Growth, JobError, JobHandle, RejectPolicy, Rejected, WorkerPool};
use proptest::prelude::*;
use proptest::sample::Index;

const THREAD_PREFIX: &str = "modelpool";

#[derive(Debug, Clone)]
enum Op {
    /// Submit a job; a gated one waits behind the dam before it counts its run.
    Submit {
        gated: bool,
    },
    /// Cancel the handle of an accepted job.
    Cancel(Index),
    Resize {
        core: usize,
        max: usize,
    },
    /// Close the dam.
    Hold,
    /// Open the dam.
    Release,
    Shutdown,
    /// `shutdown_now`, then run the `k`th returned job if `run[k]` (default: drop it).
    ShutdownNow {
        run: Vec<bool>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => any::<bool>().prop_map(|gated| Op::Submit { gated }),
        6 => any::<Index>().prop_map(Op::Cancel),
        3 => (0usize..=2, 1usize..=3).prop_map(|(core, max)| Op::Resize { core: core.min(max), max }),
        2 => Just(Op::Hold),
        2 => Just(Op::Release),
        1 => Just(Op::Shutdown),
        1 => prop::collection::vec(any::<bool>(), 0..12).prop_map(|run| Op::ShutdownNow { run }),
    ]
}

#[derive(Debug, Clone)]
struct Setup {
    core: usize,
    max: usize,
    capacity: usize,
    discard_oldest: bool,
    threads_first: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        0usize..=2,
        1usize..=3,
        1usize..=6,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(core, max, capacity, discard_oldest, threads_first)| Setup {
                core: core.min(max),
                max,
                capacity,
                discard_oldest,
                threads_first,
            },
        )
}

/// A gate that can be closed again.
#[derive(Debug, Default)]
struct Dam {
    closed: Mutex<bool>,
    changed: Condvar,
}

impl Dam {
    fn set(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        let _unused = self
            .changed
            .wait_timeout_while(closed, LONG * 6, |closed| *closed)
            .unwrap_or_else(|e| e.into_inner());
    }
}

/// What one job did.
#[derive(Debug, Default)]
struct Record {
    started: AtomicBool,
    runs: AtomicUsize,
    on_worker: AtomicBool,
}

impl Record {
    fn job(self: &Arc<Self>, gated: bool, dam: &Arc<Dam>) -> impl FnOnce() + Send + 'static {
        let (record, dam) = (self.clone(), dam.clone());
        move || {
            record.started.store(true, Ordering::SeqCst);
            if gated {
                dam.pass();
            }
            let on_worker = thread::current()
                .name()
                .is_some_and(|name| name.starts_with(THREAD_PREFIX));
            record.on_worker.store(on_worker, Ordering::SeqCst);
            record.runs.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

struct Accepted {
    record: Arc<Record>,
    handle: JobHandle<()>,
    cancelled: bool,
}

#[derive(Default)]
struct Model {
    accepted: Vec<Accepted>,
    refused: Vec<Arc<Record>>,
    shut_down: bool,
    aborted: u64,
    refused_for_shutdown: u64,
    returned: u64,
    returned_run: u64,
    returned_dropped: u64,
}

impl Model {
    fn unstarted(&self) -> usize {
        self.accepted
            .iter()
            .filter(|job| !job.record.started())
            .count()
    }
}

fn run_case(setup: &Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    let policy = if setup.discard_oldest {
        RejectPolicy::DiscardOldest
    } else {
        RejectPolicy::Abort
    };
    let pool = WorkerPool::builder()
        .core_threads(setup.core)
        .max_threads(setup.max)
        .queue_capacity(setup.capacity)
        .reject_policy(policy)
        .growth(if setup.threads_first {
            Growth::ThreadsFirst
        } else {
            Growth::QueueFirst
        })
        .keep_alive(Duration::from_millis(5))
        .thread_name(THREAD_PREFIX)
        .drop_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let dam = Arc::new(Dam::default());
    let mut model = Model::default();

    for op in ops {
        match op {
            Op::Submit { gated } => {
                let record = Arc::new(Record::default());
                let unstarted_before = model.unstarted();
                match pool.submit(record.job(*gated, &dam)) {
                    Ok(handle) => {
                        prop_assert!(!model.shut_down, "accepted after shutdown");
                        model.accepted.push(Accepted {
                            record,
                            handle,
                            cancelled: false,
                        });
                    }
                    Err(Rejected::Full(job)) => {
                        prop_assert!(!model.shut_down, "Full after shutdown");
                        prop_assert!(!setup.discard_oldest, "DiscardOldest never refuses");
                        prop_assert!(
                            unstarted_before >= setup.capacity,
                            "Full with only {unstarted_before} unstarted jobs, capacity {}",
                            setup.capacity
                        );
                        drop(job);
                        model.aborted += 1;
                        model.refused.push(record);
                    }
                    Err(Rejected::Shutdown(job)) => {
                        prop_assert!(model.shut_down, "Shutdown refusal while running");
                        drop(job);
                        model.refused_for_shutdown += 1;
                        model.refused.push(record);
                    }
                    Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
                }
            }
            Op::Cancel(index) => {
                if model.accepted.is_empty() {
                    continue;
                }
                let at = index.index(model.accepted.len());
                let job = &mut model.accepted[at];
                let cancelled = job.handle.cancel();
                if cancelled {
                    prop_assert!(!job.cancelled, "cancelled twice");
                    prop_assert!(!job.record.started(), "cancelled after it started");
                    prop_assert!(job.handle.is_finished());
                    job.cancelled = true;
                }
            }
            Op::Resize { core, max } => pool.resize(*core, *max).unwrap(),
            Op::Hold => dam.set(true),
            Op::Release => dam.set(false),
            Op::Shutdown => {
                pool.shutdown();
                model.shut_down = true;
            }
            Op::ShutdownNow { run } => {
                let returned = pool.shutdown_now();
                model.shut_down = true;
                dam.set(false); // returned gated jobs run on this thread
                model.returned += returned.len() as u64;
                for (k, job) in returned.into_iter().enumerate() {
                    if run.get(k).copied().unwrap_or(false) {
                        job.run();
                        model.returned_run += 1;
                    } else {
                        drop(job);
                        model.returned_dropped += 1;
                    }
                }
            }
        }
    }

    dam.set(false);
    if !model.shut_down {
        // A running pool must get to every accepted job on its own (no lost wake-up
        // leaves one stranded until shutdown wakes everybody).
        for (i, job) in model.accepted.iter().enumerate() {
            prop_assert!(
                common::wait_until(LONG, || job.handle.is_finished()),
                "job {} was never run by the running pool",
                i
            );
        }
    }
    pool.shutdown();
    prop_assert!(pool.await_termination(LONG), "the pool did not terminate");

    let mut ran_on_worker = 0u64;
    let mut ran_here = 0u64;
    let mut discarded = 0u64;
    let mut cancelled = 0u64;
    for (i, job) in model.accepted.into_iter().enumerate() {
        let runs = job.record.runs();
        prop_assert!(runs <= 1, "job {i} ran {runs} times");
        let result = match job.handle.join_timeout(LONG) {
            Ok(()) => Ok(()),
            Err(flowbed_workerpool::JoinTimeoutError::Job(error)) => Err(error),
            Err(other) => {
                prop_assert!(false, "job {i} never resolved: {other:?}");
                unreachable!()
            }
        };
        match result {
            Ok(()) => {
                prop_assert_eq!(runs, 1, "job {} resolved Ok without running", i);
                prop_assert!(!job.cancelled, "job {i} ran after a successful cancel");
                if job.record.on_worker.load(Ordering::SeqCst) {
                    ran_on_worker += 1;
                } else {
                    ran_here += 1;
                }
            }
            Err(JobError::Cancelled) => {
                prop_assert!(job.cancelled, "job {i} Cancelled without a cancel");
                prop_assert_eq!(runs, 0);
                cancelled += 1;
            }
            Err(JobError::Discarded) => {
                prop_assert!(!job.cancelled, "job {i}: a cancel must stick");
                prop_assert_eq!(runs, 0);
                discarded += 1;
            }
            Err(other) => prop_assert!(false, "job {i}: unexpected {other:?}"),
        }
    }
    for (i, record) in model.refused.iter().enumerate() {
        prop_assert_eq!(record.runs(), 0, "refused job {} ran", i);
    }

    let stats = pool.stats();
    assert_stats_add_up(&stats);
    let submitted = ran_on_worker + ran_here + cancelled + discarded;
    prop_assert_eq!(stats.submitted, submitted, "{:#?}", stats);
    prop_assert_eq!(stats.completed, ran_on_worker, "{:#?}", stats);
    prop_assert_eq!(stats.panicked, 0);
    prop_assert_eq!(stats.returned_by_shutdown_now, model.returned);
    prop_assert_eq!(stats.rejected.aborted, model.aborted);
    prop_assert_eq!(stats.rejected.shutdown, model.refused_for_shutdown);
    prop_assert_eq!(stats.rejected.caller_runs, 0);
    prop_assert_eq!(stats.rejected.discarded, 0);
    prop_assert_eq!(stats.rejected.timed_out, 0);
    if !setup.discard_oldest {
        prop_assert_eq!(stats.rejected.discarded_oldest, 0);
    }
    prop_assert!(
        ran_here <= model.returned_run,
        "only returned jobs run here"
    );
    prop_assert!(
        discarded <= model.returned_dropped + stats.rejected.discarded_oldest,
        "only dropped returned jobs and DiscardOldest victims are discarded"
    );
    prop_assert!(stats.cancelled <= cancelled, "{:#?}", stats);
    // Every job that neither a worker ran nor a worker skipped as cancelled was taken out
    // of the queue by shutdown_now or DiscardOldest, and resolved one way:
    // run here, discarded, or (cancelled earlier) left cancelled.
    prop_assert_eq!(
        model.returned + stats.rejected.discarded_oldest,
        ran_here + discarded + (cancelled - stats.cancelled),
        "{:#?}",
        stats
    );
    prop_assert_eq!((stats.queued, stats.active, stats.threads), (0, 0, 0));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random operation sequences: every accepted job ends exactly once, refused ones
    /// never run, and the counters match the model.
    #[test]
    fn the_pool_matches_the_model(setup in setup(), ops in prop::collection::vec(op(), 1..40)) {
        run_case(&setup, &ops)?;
    }
}
