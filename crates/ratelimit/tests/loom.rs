//! loom models: every interleaving (up to `LOOM_MAX_PREEMPTIONS`) of small scenarios on the
//! real code, with the crate's atomics and locks (the GCRA word, the quota seqlock, the
//! shard `RwLock`s, the tracked-key counter) swapped for loom's by the `sync` shim.
//!
//! Run with:
//! `RUSTFLAGS="--cfg flowbed_loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release -p flowbed-ratelimit --test loom`
//!
//! Time comes from a [`ManualClock`] (std atomics, not modelled): it stands still inside a
//! model unless the model advances it before spawning. The async waits sleep on tokio's
//! timer, which loom cannot drive, so the models that need a waiter to *wait* only poll its
//! future once (it reserves its cells, registers a timer on a current-thread runtime that
//! never runs, and returns `Pending`) and then cancel it by dropping it.

#![cfg(flowbed_loom)]

use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use flowbed_ratelimit::{
    Decision, KeyedCheckError, KeyedRateLimiter, ManualClock, Quota, RateLimiter,
};
use loom::sync::Arc;
use loom::thread;

/// Runs `body` under loom with the preemption bound from `LOOM_MAX_PREEMPTIONS` (3 if
/// unset), and reports how many interleavings it explored and how long that took.
fn model(name: &str, body: impl Fn() + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    let bound = builder.preemption_bound;
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = runs.clone();
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        body();
    });
    eprintln!(
        "loom {name}: {} interleavings in {:.2?} (preemption bound {bound:?})",
        runs.load(std::sync::atomic::Ordering::Relaxed),
        start.elapsed(),
    );
}

/// `count` per second, burst `count`: one cell every `1 s / count`.
fn per_second(count: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(count).unwrap())
}

/// Polls `future` once with a waker that does nothing.
fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// A current-thread tokio runtime that is never run: it only hosts the timers of waiters
/// that are polled once and cancelled. Entering it is needed to create a `Sleep`; loom's
/// threads are coroutines on one OS thread, so one `enter()` covers them all.
fn timer_host() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Hashes a `u64` key to itself, so a test decides which shard a key lands in: with 2
/// shards, bit 56 of the key picks the shard.
#[derive(Debug, Default, Clone)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Identity = BuildHasherDefault<IdentityHasher>;

/// A key in shard 0 and a key in shard 1 of a 2-shard limiter hashed with [`Identity`].
const SHARD_0_KEY: u64 = 0;
const SHARD_1_KEY: u64 = 1 << 56;

/// A keyed limiter on a manual clock with `shards` shards and deterministic shard choice.
fn keyed(
    quota: Quota,
    shards: usize,
    max_keys: usize,
    clock: &ManualClock,
) -> KeyedRateLimiter<u64, ManualClock, Identity> {
    KeyedRateLimiter::<u64>::builder(quota)
        .shards(shards)
        .max_keys(max_keys)
        .clock(clock.clone())
        .hasher(Identity::default())
        .build()
}

// ---------------------------------------------------------------------------------------
// GCRA compare-and-swap loop
// ---------------------------------------------------------------------------------------

/// Three threads check one limiter with burst 2 and a frozen clock: exactly the burst is
/// admitted, the admitted decisions count the burst down (remaining 1, then 0: no two
/// threads admitted against the same state), and the denied one sees the full TAT. A lost
/// update in the compare-and-swap loop admits a third cell or repeats a `remaining`.
#[test]
fn gcra_concurrent_checks_admit_exactly_the_burst() {
    model("gcra_concurrent_checks_admit_exactly_the_burst", || {
        let interval = Duration::from_millis(500);
        let limiter = Arc::new(RateLimiter::with_clock(per_second(2), ManualClock::new()));
        let others: Vec<_> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                thread::spawn(move || limiter.check())
            })
            .collect();
        let mut decisions = vec![limiter.check()];
        decisions.extend(others.into_iter().map(|other| other.join().unwrap()));

        let mut remaining: Vec<u32> = decisions
            .iter()
            .filter(|decision| decision.is_allowed())
            .map(Decision::remaining)
            .collect();
        remaining.sort_unstable();
        assert_eq!(remaining, [0, 1], "decisions: {decisions:?}");
        for denied in decisions.iter().filter(|decision| !decision.is_allowed()) {
            assert_eq!(denied.remaining(), 0);
            assert_eq!(denied.retry_after(), interval);
            assert_eq!(denied.reset_after(), 2 * interval);
        }
        // The state holds exactly two cells: the next check waits exactly one interval.
        let next = limiter.check();
        assert!(!next.is_allowed());
        assert_eq!(next.retry_after(), interval);
    });
}

/// Weighted checks race a single check on burst 3 (frozen clock): `check_n(2)` admits
/// both cells or none, so in every interleaving exactly one of the two `check_n(2)` and
/// the `check()` are admitted (3 cells, the burst), and a denied weighted check spends
/// nothing: afterwards the state holds exactly 3 cells.
#[test]
fn gcra_weighted_checks_are_all_or_nothing() {
    model("gcra_weighted_checks_are_all_or_nothing", || {
        let interval = Duration::from_nanos(333_333_334);
        let limiter = Arc::new(RateLimiter::with_clock(per_second(3), ManualClock::new()));
        let weighted: Vec<_> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                thread::spawn(move || limiter.check_n(2).unwrap())
            })
            .collect();
        let single = limiter.check();
        let weighted: Vec<Decision> = weighted
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect();

        assert!(single.is_allowed(), "one cell always fits next to two");
        let admitted: Vec<&Decision> = weighted.iter().filter(|d| d.is_allowed()).collect();
        assert_eq!(admitted.len(), 1, "decisions: {weighted:?}");
        // The check first leaves 2, then the weighted one 0; the weighted one first
        // leaves 1, then the check 0.
        let order = (single.remaining(), admitted[0].remaining());
        assert!(order == (2, 0) || order == (0, 1), "remaining: {order:?}");
        let next = limiter.check();
        assert!(!next.is_allowed());
        assert_eq!(next.retry_after(), interval);
        assert_eq!(next.reset_after(), 3 * interval);
    });
}

// ---------------------------------------------------------------------------------------
// Async waits: reservations and cancellation
// ---------------------------------------------------------------------------------------

/// A waiter reserves 2 cells (one more than are free, so it must wait) and is cancelled,
/// while another thread checks. Cancelling gives back exactly what was reserved: after
/// both, the limiter's state is what the check alone made of it (if the check was
/// admitted, the one free cell is gone; if it was denied because the reservation held the
/// cells, the cell is free again). A lost update in `reserve` or `release` breaks this.
#[test]
fn cancelled_reservation_racing_check_leaves_only_the_check() {
    model(
        "cancelled_reservation_racing_check_leaves_only_the_check",
        || {
            let interval = Duration::from_millis(500);
            let clock = ManualClock::new();
            let limiter = Arc::new(RateLimiter::with_clock(per_second(2), clock.clone()));
            assert!(limiter.check_n(2).unwrap().is_allowed());
            clock.advance(interval); // one cell free again
            let host = timer_host();
            let _entered = host.enter();

            let checker = {
                let limiter = limiter.clone();
                thread::spawn(move || limiter.check())
            };
            let mut waiter = Box::pin(limiter.until_n_ready(2));
            assert!(
                poll_once(waiter.as_mut()).is_pending(),
                "2 cells are never free at once here"
            );
            drop(waiter);
            let checked = checker.join().unwrap();

            let next = limiter.check();
            if checked.is_allowed() {
                assert_eq!(checked.remaining(), 0);
                assert!(!next.is_allowed(), "the checker took the free cell");
                assert_eq!(next.retry_after(), interval);
            } else {
                // Denied only while the reservation held the free cell (and one more).
                assert_eq!(checked.retry_after(), 2 * interval);
                assert!(
                    next.is_allowed(),
                    "the cancelled reservation gave the cell back"
                );
                assert_eq!(next.remaining(), 0);
            }
        },
    );
}

/// Two waiters queue behind a spent burst, then are cancelled on two threads at once.
/// A cancelled reservation gives its cell back only while it is the last one on the
/// timeline (else a newcomer would share a queued waiter's slot). So whichever order the
/// cancellations land in, the last waiter's cell comes back; the first's comes back too
/// if it is cancelled after the last one. Never more: the next check waits one interval
/// (both back) or two (only the last back), never less than one.
#[test]
fn two_cancelled_waiters_give_back_every_cell() {
    model("two_cancelled_waiters_give_back_every_cell", || {
        let interval = Duration::from_millis(500);
        let limiter = Arc::new(RateLimiter::with_clock(per_second(2), ManualClock::new()));
        assert!(limiter.check_n(2).unwrap().is_allowed());
        let host = timer_host();
        let _entered = host.enter();

        let mut waiters: Vec<Pin<Box<dyn Future<Output = ()> + Send>>> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                Box::pin(async move { limiter.until_ready().await })
                    as Pin<Box<dyn Future<Output = ()> + Send>>
            })
            .collect();
        for waiter in &mut waiters {
            assert!(poll_once(waiter.as_mut()).is_pending());
        }
        let second = waiters.pop().unwrap();
        let first = waiters.pop().unwrap();
        let canceller = thread::spawn(move || drop(first));
        drop(second);
        canceller.join().unwrap();

        let next = limiter.check();
        assert!(
            !next.is_allowed(),
            "more cells given back than were reserved"
        );
        assert!(
            next.retry_after() == interval || next.retry_after() == 2 * interval,
            "the last waiter's cell was not given back, or too much was: {:?}",
            next.retry_after()
        );
    });
}

// ---------------------------------------------------------------------------------------
// Keyed limiter: eviction and insertion of keys
// ---------------------------------------------------------------------------------------

/// `evict_idle()` races a check of an idle key (fully replenished, so forgetting it loses
/// nothing). Whether the sweep forgets the key before the check (which then tracks it
/// afresh) or finds it busy after the check, the admitted cell is never lost: the key ends
/// up tracked with exactly that one cell spent.
#[test]
fn keyed_eviction_racing_check_keeps_the_admission() {
    model("keyed_eviction_racing_check_keeps_the_admission", || {
        const KEY: u64 = 7;
        let clock = ManualClock::new();
        let limiter = Arc::new(keyed(per_second(2), 1, 16, &clock));
        assert!(limiter.check(&KEY).unwrap().is_allowed());
        clock.advance(Duration::from_millis(500)); // KEY is idle now

        let evictor = {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.evict_idle())
        };
        let checked = limiter.check(&KEY).unwrap();
        let evicted = evictor.join().unwrap();

        assert!(checked.is_allowed());
        assert_eq!(checked.remaining(), 1);
        assert!(evicted <= 1);
        assert_eq!(limiter.len(), 1);
        let next = limiter.check(&KEY).unwrap();
        assert!(next.is_allowed());
        assert_eq!(next.remaining(), 0, "the racing check's cell was forgotten");
        assert!(!limiter.check(&KEY).unwrap().is_allowed());
    });
}

/// An async wait on a new key (it tracks the key with a zero-cell check, which leaves the
/// key idle, then reserves) races `evict_idle()`: if the sweep forgets the key in between,
/// the waiter tracks it again; the reserved cell is never lost.
#[test]
fn keyed_wait_on_new_key_racing_eviction_keeps_the_reservation() {
    model(
        "keyed_wait_on_new_key_racing_eviction_keeps_the_reservation",
        || {
            const KEY: u64 = 7;
            let clock = ManualClock::new();
            let limiter = Arc::new(keyed(per_second(2), 1, 16, &clock));

            let evictor = {
                let limiter = limiter.clone();
                thread::spawn(move || limiter.evict_idle())
            };
            let mut waiter = Box::pin(limiter.until_key_ready(&KEY));
            // A full burst is free: the wait completes without a timer.
            assert_eq!(poll_once(waiter.as_mut()), Poll::Ready(Ok(())));
            drop(waiter);
            evictor.join().unwrap();

            assert_eq!(limiter.len(), 1);
            let next = limiter.check(&KEY).unwrap();
            assert!(next.is_allowed());
            assert_eq!(
                next.remaining(),
                0,
                "the waiter's reserved cell was forgotten"
            );
        },
    );
}

/// Two threads check the same new key at once: both take the slow path, but the key is
/// tracked once (the second finds the first's entry under the write lock), and both
/// admissions are counted on that one state.
#[test]
fn keyed_same_new_key_inserted_once() {
    model("keyed_same_new_key_inserted_once", || {
        const KEY: u64 = 7;
        let clock = ManualClock::new();
        let limiter = Arc::new(keyed(per_second(3), 1, 16, &clock));

        let other = {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.check(&KEY).unwrap())
        };
        let mine = limiter.check(&KEY).unwrap();
        let other = other.join().unwrap();

        assert!(mine.is_allowed() && other.is_allowed());
        let mut remaining = [mine.remaining(), other.remaining()];
        remaining.sort_unstable();
        assert_eq!(remaining, [1, 2]);
        assert_eq!(limiter.len(), 1);
        let next = limiter.check(&KEY).unwrap();
        assert!(next.is_allowed());
        assert_eq!(next.remaining(), 0);
        assert!(!limiter.check(&KEY).unwrap().is_allowed());
    });
}

/// With `max_keys(1)`, two new keys in different shards (so no shard lock orders them;
/// only the tracked-key counter does) race: exactly one is tracked and the other is
/// refused with `TooManyKeys`, never both tracked.
#[test]
fn keyed_max_keys_one_two_new_keys_race() {
    model("keyed_max_keys_one_two_new_keys_race", || {
        let clock = ManualClock::new();
        let limiter = Arc::new(keyed(per_second(2), 2, 1, &clock));

        let other = {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.check(&SHARD_1_KEY))
        };
        let mine = limiter.check(&SHARD_0_KEY);
        let other = other.join().unwrap();

        let too_many = Err(KeyedCheckError::TooManyKeys { max_keys: 1 });
        let (winner, loser) = match (&mine, &other) {
            (Ok(_), _) => {
                assert_eq!(other, too_many, "both keys tracked: {mine:?}, {other:?}");
                (SHARD_0_KEY, SHARD_1_KEY)
            }
            (_, Ok(_)) => {
                assert_eq!(mine, too_many);
                (SHARD_1_KEY, SHARD_0_KEY)
            }
            _ => panic!("neither key tracked: {mine:?}, {other:?}"),
        };
        assert_eq!(limiter.len(), 1);
        assert_eq!(limiter.check(&loser), too_many);
        let next = limiter.check(&winner).unwrap();
        assert!(next.is_allowed());
        assert_eq!(next.remaining(), 0);
    });
}

/// Two threads check an idle key while a third sweeps idle keys: however the sweep falls
/// between them (before both, between the two, after both), both admissions land on the
/// key's one surviving state, which then holds exactly the burst.
#[test]
fn keyed_eviction_racing_two_checks_keeps_both_admissions() {
    model(
        "keyed_eviction_racing_two_checks_keeps_both_admissions",
        || {
            const KEY: u64 = 7;
            let interval = Duration::from_millis(500);
            let clock = ManualClock::new();
            let limiter = Arc::new(keyed(per_second(2), 1, 16, &clock));
            assert!(limiter.check(&KEY).unwrap().is_allowed());
            clock.advance(interval); // KEY is idle now

            let evictor = {
                let limiter = limiter.clone();
                thread::spawn(move || limiter.evict_idle())
            };
            let checker = {
                let limiter = limiter.clone();
                thread::spawn(move || limiter.check(&KEY).unwrap())
            };
            let mine = limiter.check(&KEY).unwrap();
            let theirs = checker.join().unwrap();
            evictor.join().unwrap();

            assert!(mine.is_allowed() && theirs.is_allowed());
            let mut remaining = [mine.remaining(), theirs.remaining()];
            remaining.sort_unstable();
            assert_eq!(remaining, [0, 1]);
            assert_eq!(limiter.len(), 1);
            let next = limiter.check(&KEY).unwrap();
            assert!(!next.is_allowed(), "an admission was forgotten");
            assert_eq!(next.retry_after(), interval);
        },
    );
}

/// `len()` counts tracked keys: with `max_keys(1)` and two new keys racing (in different
/// shards), no observer may see more than one.
///
/// `len()` never exceeds `max_keys`, not even transiently: `check_new_key` takes a slot
/// with `fetch_update(|t| (t < max_keys).then_some(t + 1))`, so a refused key is never
/// counted. (An earlier `fetch_add` + `fetch_sub` on refusal let `len()` read 2 with
/// `max_keys(1)`; this model found it.)
#[test]
fn keyed_len_never_exceeds_max_keys() {
    model("keyed_len_never_exceeds_max_keys", || {
        let clock = ManualClock::new();
        let limiter = Arc::new(keyed(per_second(2), 2, 1, &clock));

        let other = {
            let limiter = limiter.clone();
            thread::spawn(move || {
                let _ = limiter.check(&SHARD_1_KEY);
                limiter.len()
            })
        };
        let _ = limiter.check(&SHARD_0_KEY);
        let mine = limiter.len();
        let theirs = other.join().unwrap();

        assert!(mine <= 1 && theirs <= 1, "len() read {mine} and {theirs}");
        assert_eq!(limiter.len(), 1);
    });
}

/// `set_key_quota` gives a known key its own quota while the key is checked: the check is
/// decided by the old quota (and its state is then rescaled) or by the new one (on the
/// already rescaled state), never by one quota on a state meant for the other, so the key
/// ends with exactly two cells spent under its new quota either way.
#[test]
fn keyed_set_key_quota_racing_check() {
    model("keyed_set_key_quota_racing_check", || {
        const KEY: u64 = 7;
        let (old, new) = old_and_new_quota();
        let clock = ManualClock::new();
        let limiter = Arc::new(keyed(old, 1, 16, &clock));
        assert!(limiter.check(&KEY).unwrap().is_allowed());

        let checker = {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.check(&KEY).unwrap())
        };
        limiter.set_key_quota(&KEY, new);
        let checked = checker.join().unwrap();

        assert!(checked.is_allowed());
        match checked.limit() {
            2 => assert_eq!(checked.remaining(), 0),
            5 => assert_eq!(checked.remaining(), 3),
            _ => panic!("decided by neither quota: {checked:?}"),
        }
        assert_eq!(limiter.key_quota(&KEY), new);
        assert_eq!(limiter.quota(), old);
        let next = limiter.check(&KEY).unwrap();
        assert!(next.is_allowed());
        assert_eq!((next.limit(), next.remaining()), (5, 2));
    });
}

// ---------------------------------------------------------------------------------------
// The default quota's sequence lock
// ---------------------------------------------------------------------------------------

/// Two quotas that differ in every field (count, burst, period, replenish interval), so
/// that a torn read of the seqlock's words matches neither.
fn old_and_new_quota() -> (Quota, Quota) {
    let old = per_second(2); // 2 per 1 s, burst 2, every 500 ms
    let new = Quota::new(3, Duration::from_secs(2))
        .unwrap()
        .allow_burst(NonZeroU32::new(5).unwrap()); // 3 per 2 s, burst 5, every 666.67 ms
    assert_ne!(old.count(), new.count());
    assert_ne!(old.burst(), new.burst());
    assert_ne!(old.period(), new.period());
    assert_ne!(old.replenish_interval(), new.replenish_interval());
    (old, new)
}

/// `set_quota` races `quota()` (which takes no lock): the reader sees the old or the new
/// quota, never a mix of their fields.
///
/// The writer runs on the model's main thread on purpose: loom's DPOR remembers only the
/// last access to each atomic, and `set_quota` loads the quota before storing it, so with
/// the reader on the main thread (running first) loom never reorders the two and explores
/// a single interleaving (a seqlock without its sequence check then passes).
#[test]
fn seqlock_quota_read_is_never_torn() {
    model("seqlock_quota_read_is_never_torn", || {
        let (old, new) = old_and_new_quota();
        let clock = ManualClock::new();
        let limiter = Arc::new(keyed(old, 1, 16, &clock));

        let reader = {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.quota())
        };
        limiter.set_quota(new);
        let seen = reader.join().unwrap();

        assert!(seen == old || seen == new, "torn quota read: {seen:?}");
        assert_eq!(limiter.quota(), new);
    });
}

/// `set_quota` races the first check of a new key (which reads the quota once outside
/// any lock to refuse impossible requests, and again under the shard lock): the check is
/// decided entirely by the old quota (and its state is then rescaled) or entirely by the
/// new one, and either way the key ends with one cell spent under the new quota.
#[test]
fn seqlock_set_quota_racing_new_key_check() {
    model("seqlock_set_quota_racing_new_key_check", || {
        const KEY: u64 = 7;
        let (old, new) = old_and_new_quota();
        let clock = ManualClock::new();
        let limiter = Arc::new(keyed(old, 1, 16, &clock));

        let checker = {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.check(&KEY).unwrap())
        };
        limiter.set_quota(new);
        let checked = checker.join().unwrap();

        assert!(checked.is_allowed());
        match checked.limit() {
            2 => assert_eq!(checked.remaining(), 1),
            5 => assert_eq!(checked.remaining(), 4),
            _ => panic!("decided by a torn quota: {checked:?}"),
        }
        let next = limiter.check(&KEY).unwrap();
        assert!(next.is_allowed());
        assert_eq!((next.limit(), next.remaining()), (5, 3));
    });
}
