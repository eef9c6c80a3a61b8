//! `SlidingWindow` against a brute-force reference, on random sequences of clock advances
//! (including gaps of several windows) and weighted checks under random quotas.
//!
//! The reference keeps the log of admitted cells per fixed window and decides from it
//! alone: at `now` in window `w`, `e = now mod W` into it, with `prev` cells admitted in
//! window `w - 1` and `cur` in window `w`, `n` cells fit iff
//! `prev × (W - e) + (cur + n) × W <= N × W` (exact rationals, in `u128`). Retry-after and
//! reset-after are found by searching the time line, not by formula.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use flowbed_ratelimit::{Clock, Decision, Limiter, ManualClock, Quota, SlidingWindow};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod common;

use common::model::{Expected, Harness, compare};

/// Brute force over the log of admitted cells.
#[derive(Debug)]
struct Reference {
    count: u128,
    /// The window `W`, in nanoseconds.
    period: u128,
    /// Cells admitted per fixed window index.
    admitted: BTreeMap<u128, u128>,
}

impl Reference {
    fn new(count: u32, period: u64) -> Self {
        Self {
            count: u128::from(count),
            period: u128::from(period),
            admitted: BTreeMap::new(),
        }
    }

    fn in_window(&self, window: u128) -> u128 {
        self.admitted.get(&window).copied().unwrap_or(0)
    }

    /// The sliding window's load at `at`, in cell·nanoseconds: the previous window's
    /// cells weighted by its unexpired part, plus the current window's cells.
    fn load(&self, at: u128) -> u128 {
        let window = at / self.period;
        let elapsed = at % self.period;
        let previous = window
            .checked_sub(1)
            .map_or(0, |previous| self.in_window(previous));
        previous * (self.period - elapsed) + self.in_window(window) * self.period
    }

    fn fits(&self, at: u128, n: u128) -> bool {
        self.load(at) + n * self.period <= self.count * self.period
    }

    fn check(&mut self, now: u128, n: u32) -> Result<Expected, (u32, u32)> {
        if u128::from(n) > self.count {
            return Err((n, u32::try_from(self.count).unwrap()));
        }
        let n = u128::from(n);
        let allowed = self.fits(now, n);
        let retry_after = if allowed {
            *self.admitted.entry(now / self.period).or_default() += n;
            0
        } else {
            // With nothing admitted the load never grows, so "fits" flips once from false
            // to true, by the start of the window after next at the latest: bisect.
            let (mut denied, mut fits) = (0, 2 * self.period - now % self.period);
            assert!(self.fits(now + fits, n));
            while fits - denied > 1 {
                let middle = denied + (fits - denied) / 2;
                if self.fits(now + middle, n) {
                    fits = middle;
                } else {
                    denied = middle;
                }
            }
            fits
        };
        let remaining = (self.count * self.period).saturating_sub(self.load(now)) / self.period;
        // Fully replenished once nothing counted is left in the sliding window: now, or
        // at the start of the next window, or of the one after (the load only drops to
        // zero at those points).
        let to_next = self.period - now % self.period;
        let reset_after = [0, to_next, to_next + self.period]
            .into_iter()
            .find(|&wait| self.load(now + wait) == 0)
            .unwrap();
        Ok(Expected {
            allowed,
            remaining: u32::try_from(remaining.min(self.count)).unwrap(),
            retry_after,
            reset_after,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Op {
    advance: u64,
    n: u32,
    probe: bool,
}

#[derive(Debug, Clone)]
struct Case {
    count: u32,
    period: u64,
    /// Random: a sliding window must ignore it.
    burst: u32,
    ops: Vec<Op>,
}

fn case() -> impl Strategy<Value = Case> {
    (1u32..=50, 1_000_000u64..=10_000_000_000, 1u32..=60).prop_flat_map(|(count, period, burst)| {
        let per_cell = period / u64::from(count);
        let advance = prop_oneof![
            2 => Just(0u64),
            1 => 0u64..=3,
            4 => 0..=2 * per_cell,
            3 => 0..=period,
            1 => 0..=5 * period,
            1 => (2u64..=4).prop_map(move |windows| windows * period),
        ];
        let n = prop_oneof![
            2 => Just(1u32),
            3 => 0..=count + 2,
            1 => count..=count + 2,
        ];
        let op = (advance, n, proptest::bool::weighted(0.4)).prop_map(|(advance, n, probe)| Op {
            advance,
            n,
            probe,
        });
        proptest::collection::vec(op, 1..120).prop_map(move |ops| Case {
            count,
            period,
            burst,
            ops,
        })
    })
}

struct Subject {
    clock: ManualClock,
    limiter: SlidingWindow<ManualClock>,
    reference: Reference,
    now: u128,
}

impl Subject {
    fn new(case: &Case) -> Self {
        let quota = Quota::new(case.count, Duration::from_nanos(case.period))
            .unwrap()
            .try_allow_burst(case.burst)
            .unwrap();
        let clock = ManualClock::new();
        Self {
            limiter: SlidingWindow::with_clock(quota, clock.clone()),
            clock,
            reference: Reference::new(case.count, case.period),
            now: 0,
        }
    }
}

impl Harness for Subject {
    fn advance(&mut self, nanos: u128) {
        self.clock
            .advance(Duration::from_nanos(u64::try_from(nanos).unwrap()));
        self.now += nanos;
    }

    fn check(&mut self, n: u32) -> Result<Option<Decision>, TestCaseError> {
        prop_assert_eq!(u128::from(self.clock.now()), self.now);
        let decision = compare(
            self.limiter.check_n(n),
            self.reference.check(self.now, n),
            self.now,
            n,
        )?;
        if let Some(decision) = &decision {
            prop_assert_eq!(u128::from(decision.limit()), self.reference.count);
        }
        Ok(decision)
    }
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let mut harness = Subject::new(case);
    prop_assert_eq!(Limiter::limit(&harness.limiter), case.count);
    for op in &case.ops {
        harness.advance(u128::from(op.advance));
        if let Some(decision) = harness.check(op.n)? {
            if !decision.is_allowed() && op.probe {
                harness.probe_retry_after(op.n, decision.retry_after().as_nanos())?;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decisions_match_the_brute_force_reference(case in case()) {
        run(&case)?;
    }
}

/// A fixed window would admit `2 × count` across a boundary; the sliding window admits
/// only what has expired from the previous window.
#[test]
fn a_window_boundary_does_not_double_the_quota() {
    let clock = ManualClock::new();
    let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    let limiter = SlidingWindow::with_clock(quota, clock.clone());
    clock.advance(Duration::from_millis(900));
    assert!(limiter.check_n(10).unwrap().is_allowed());
    clock.advance(Duration::from_millis(200)); // 1.1 s: 90% of the previous window counts
    let admitted = (0..10).filter(|_| limiter.check().is_allowed()).count();
    assert_eq!(admitted, 1);
    let denied = limiter.check();
    assert!(!denied.is_allowed());
    assert_eq!(denied.retry_after(), Duration::from_millis(100)); // 1.2 s: 80% counts
    assert_eq!(denied.reset_after(), Duration::from_millis(1_900)); // end of the 2 s window
}

/// Gaps: the previous window only counts if it is the one just before.
#[test]
fn a_gap_of_several_windows_forgets_everything() {
    let clock = ManualClock::new();
    let quota = Quota::per_minute(NonZeroU32::new(5).unwrap());
    let limiter = SlidingWindow::with_clock(quota, clock.clone());
    assert!(limiter.check_n(5).unwrap().is_allowed());
    clock.advance(Duration::from_secs(120));
    let decision = limiter.check_n(5).unwrap();
    assert!(decision.is_allowed());
    assert_eq!(decision.reset_after(), Duration::from_secs(120));
    let error = limiter.check_n(6).unwrap_err();
    assert_eq!((error.requested, error.burst), (6, 5));
}

/// A manual clock that one thread reads 1 ms behind the others, as a clock that is
/// monotonic per thread (all `Clock` promises, like the TSC on cores that are not quite
/// in step) may, or as a thread that read the clock and then lost the CPU before taking
/// the limiter's lock sees it.
#[derive(Debug)]
struct SkewedClock {
    time: ManualClock,
    behind: Mutex<Option<ThreadId>>,
}

impl Clock for SkewedClock {
    fn now(&self) -> u64 {
        let now = self.time.now();
        if *self.behind.lock().unwrap() == Some(std::thread::current().id()) {
            now - 1_000_000
        } else {
            now
        }
    }
}

/// A reading from the previous window, taken after the current window started counting,
/// must not wipe the current window's count (which would admit a second full window).
#[test]
fn a_reading_from_the_previous_window_does_not_wipe_the_current_one() {
    let clock = Arc::new(SkewedClock {
        time: ManualClock::new(),
        behind: Mutex::new(None),
    });
    clock.time.advance(Duration::from_secs(1));
    let quota = Quota::per_second(NonZeroU32::new(10).unwrap());
    let limiter = SlidingWindow::with_clock(quota, Arc::clone(&clock));
    assert!(limiter.check_n(10).unwrap().is_allowed()); // the whole window at 1 s
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                *clock.behind.lock().unwrap() = Some(std::thread::current().id());
                let _ = limiter.check(); // at 999 ms: allowed or not, either way
            })
            .join()
            .unwrap();
    });
    // At 1 s the window already holds 10 cells: nothing more fits.
    let admitted = (0..10).filter(|_| limiter.check().is_allowed()).count();
    assert_eq!(admitted, 0, "the late reading reset the window");
}
