//! Property tests of demand accounting.
//!
//! * The demand counter (`Demand`/`Subscription`) against a reference model in `u128`
//!   arithmetic: random `request(n)` (huge `n` near `u64::MAX` included), `take(max)`,
//!   `take_all`, `poll_take_all` and `cancel`. Outstanding demand is the exact sum of what
//!   was requested minus what was granted, until that sum reaches `u64::MAX`: from then on
//!   it is unbounded for good.
//! * End to end through `Flow::drive`: a subscriber that requests random amounts at random
//!   points (in `on_subscribe`, in `on_next`, from outside between polls) and cancels at a
//!   random point never receives more items than it requested, receives them in order,
//!   gets no signal after it cancelled or after the terminal signal, gets exactly one
//!   terminal signal when it did not cancel, is woken by every outside request or cancel
//!   while the driver waits, and is released when the driver ends.

use std::cell::RefCell;
use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use flowbed_reactive::{BoxError, Demand, Drive, Error, Flow, Subscriber, Subscription, UNBOUNDED};
use futures::task::{ArcWake, noop_waker_ref};
use proptest::prelude::*;

const MAX: u128 = UNBOUNDED as u128;

// ---------------------------------------------------------------------------------------
// The counter against a model
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Request(u64),
    RequestUnbounded,
    Take(u64),
    TakeAll,
    PollTakeAll,
    Cancel,
}

/// Request sizes: small, near `u64::MAX`, half of it (two of them overflow), anything.
fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 1..=8u64,
        2 => (0..=8u64).prop_map(|below| u64::MAX - below),
        1 => Just(u64::MAX / 2 + 1),
        1 => 1..=u64::MAX,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => amount().prop_map(Op::Request),
        1 => Just(Op::RequestUnbounded),
        6 => prop_oneof![
            4 => 0..=10u64,
            1 => (0..=4u64).prop_map(|below| u64::MAX - below),
        ]
        .prop_map(Op::Take),
        2 => Just(Op::TakeAll),
        2 => Just(Op::PollTakeAll),
        1 => Just(Op::Cancel),
    ]
}

/// What the counter must do.
#[derive(Debug, Default)]
struct Model {
    /// Requested and not granted; `MAX` means unbounded (sticky).
    outstanding: u128,
    cancelled: bool,
}

impl Model {
    fn request(&mut self, n: u64) {
        if self.cancelled {
            return; // rule 3.6: requests after a cancel are no-ops
        }
        self.outstanding = (self.outstanding + u128::from(n)).min(MAX);
    }

    /// What `take(max)` grants.
    fn grant(&self, max: u64) -> u64 {
        if self.outstanding == MAX {
            max
        } else {
            u64::try_from(self.outstanding.min(u128::from(max))).expect("below u64::MAX")
        }
    }

    /// Records a grant of `granted` (checked against `grant` by the caller).
    fn granted(&mut self, granted: u64) {
        if self.outstanding != MAX {
            self.outstanding -= u128::from(granted);
        }
    }
}

/// Checks one `take` result. After a cancel the counter may grant less (nothing is sent
/// any more anyway), never more.
fn check_take(model: &mut Model, max: u64, got: u64) -> Result<(), TestCaseError> {
    let expected = model.grant(max);
    if model.cancelled {
        prop_assert!(
            got <= expected,
            "take({max}) after cancel: {got} > {expected}"
        );
    } else {
        prop_assert_eq!(got, expected, "take({})", max);
    }
    model.granted(got);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_counter_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let (subscription, demand) = Demand::pair();
        let other = subscription.clone();
        let mut model = Model::default();
        let mut cx = Context::from_waker(noop_waker_ref());
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Request(n) => {
                    // Either clone may ask.
                    let by = if step % 2 == 0 { &subscription } else { &other };
                    by.request(NonZeroU64::new(n).expect("positive"));
                    model.request(n);
                }
                Op::RequestUnbounded => {
                    subscription.request_unbounded();
                    model.request(u64::MAX);
                }
                Op::Take(max) => check_take(&mut model, max, demand.take(max))?,
                Op::TakeAll => check_take(&mut model, UNBOUNDED, demand.take_all())?,
                Op::PollTakeAll => match demand.poll_take_all(&mut cx) {
                    Poll::Ready(None) => prop_assert!(model.cancelled, "None without a cancel"),
                    Poll::Ready(Some(granted)) => {
                        prop_assert!(!model.cancelled, "Some({granted}) after a cancel");
                        prop_assert!(granted > 0);
                        check_take(&mut model, UNBOUNDED, granted)?;
                    }
                    Poll::Pending => {
                        prop_assert!(!model.cancelled, "Pending after a cancel");
                        prop_assert_eq!(model.grant(UNBOUNDED), 0, "Pending with demand");
                    }
                },
                Op::Cancel => {
                    other.cancel();
                    model.cancelled = true;
                }
            }
            prop_assert_eq!(demand.is_cancelled(), model.cancelled);
            prop_assert_eq!(subscription.is_cancelled(), model.cancelled);
        }
        // Whatever is left is granted in full (or is unbounded).
        if !model.cancelled {
            let rest = demand.take_all();
            prop_assert_eq!(u128::from(rest), model.outstanding);
        }
    }

    #[test]
    fn requests_add_up_exactly_until_they_reach_u64_max(
        requests in prop::collection::vec(amount(), 1..6),
        claims in prop::collection::vec(0..=u64::MAX, 0..6),
    ) {
        let (subscription, demand) = Demand::pair();
        let mut requested = 0u128;
        let mut granted = 0u128;
        let mut unbounded = false;
        for (index, n) in requests.iter().enumerate() {
            subscription.request(NonZeroU64::new(*n).expect("positive"));
            requested += u128::from(*n);
            unbounded |= requested - granted >= MAX;
            if let Some(max) = claims.get(index) {
                let got = demand.take(*max);
                if !unbounded {
                    granted += u128::from(got);
                }
            }
        }
        let rest = demand.take_all();
        if unbounded {
            prop_assert_eq!(rest, UNBOUNDED);
        } else {
            prop_assert_eq!(u128::from(rest) + granted, requested);
        }
    }
}

// ---------------------------------------------------------------------------------------
// End to end through Flow::drive
// ---------------------------------------------------------------------------------------

/// The signals a subscriber saw, and what it did.
#[derive(Debug, Default)]
struct Log {
    subscribed: usize,
    items: Vec<u32>,
    error: Option<Error>,
    completed: usize,
    /// Everything requested so far, in `u128` (`u64::MAX` or more: unbounded).
    requested: u128,
    cancelled: bool,
    subscription: Option<Subscription>,
    violations: Vec<String>,
}

impl Log {
    fn terminals(&self) -> usize {
        self.completed + usize::from(self.error.is_some())
    }

    /// Checks that a signal may arrive now.
    fn signal(&mut self, what: &str) {
        if self.subscribed != 1 {
            self.violations.push(format!("{what} before on_subscribe"));
        }
        if self.cancelled {
            self.violations.push(format!("{what} after cancel"));
        }
        if self.terminals() > 0 {
            self.violations
                .push(format!("{what} after the terminal signal"));
        }
    }

    fn request(&mut self, n: u64) {
        if let (Some(count), Some(subscription)) = (NonZeroU64::new(n), &self.subscription) {
            self.requested += u128::from(n);
            subscription.request(count);
        }
    }

    fn cancel(&mut self) {
        if let Some(subscription) = &self.subscription {
            self.cancelled = true;
            subscription.cancel();
        }
    }
}

/// What the subscriber does, all chosen at random.
#[derive(Debug, Clone)]
struct Plan {
    /// Items in the flow.
    len: u32,
    /// The flow fails instead of producing this item.
    fail_at: Option<u32>,
    /// Requested in `on_subscribe` (0: nothing).
    first: u64,
    cancel_in_on_subscribe: bool,
    /// Requested in the `on_next` of item `i`: `in_on_next[i % len]` (0: nothing).
    in_on_next: Vec<u64>,
    /// Cancels in the `on_next` of this item.
    cancel_in_on_next: Option<u32>,
    /// Requested from outside between two polls, one per round (0: nothing).
    outside: Vec<u64>,
    /// Cancels from outside in this round instead of requesting.
    cancel_outside: Option<usize>,
}

/// Demand sizes: mostly none or small, sometimes unbounded or just below.
fn ask() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => Just(0u64),
        6 => 1..=4u64,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        0..30u32,
        prop::option::weighted(0.2, 0..30u32),
        ask(),
        prop::bool::weighted(0.03),
        prop::collection::vec(ask(), 1..6),
        prop::option::weighted(0.2, 0..30u32),
        prop::collection::vec(ask(), 0..12),
        prop::option::weighted(0.2, 0..12usize),
    )
        .prop_map(
            |(
                len,
                fail_at,
                first,
                cancel_in_on_subscribe,
                in_on_next,
                cancel_in_on_next,
                outside,
                cancel_outside,
            )| Plan {
                len,
                fail_at,
                first,
                cancel_in_on_subscribe,
                in_on_next,
                cancel_in_on_next,
                outside,
                cancel_outside,
            },
        )
}

/// A subscriber following a [`Plan`], logging into a shared [`Log`].
struct Scripted {
    log: Rc<RefCell<Log>>,
    plan: Plan,
}

impl Subscriber<u32> for Scripted {
    fn on_subscribe(&mut self, subscription: Subscription) {
        let mut log = self.log.borrow_mut();
        log.subscribed += 1;
        if log.subscribed > 1 {
            log.violations.push("on_subscribe twice".into());
        }
        log.subscription = Some(subscription);
        log.request(self.plan.first);
        if self.plan.cancel_in_on_subscribe {
            log.cancel();
        }
    }

    fn on_next(&mut self, item: u32) {
        let mut log = self.log.borrow_mut();
        log.signal("on_next");
        let expected = u32::try_from(log.items.len()).expect("few items");
        if item != expected {
            log.violations
                .push(format!("item {item} where {expected} was due"));
        }
        log.items.push(item);
        if log.items.len() as u128 > log.requested {
            let (got, asked) = (log.items.len(), log.requested);
            log.violations
                .push(format!("item #{got} with only {asked} requested"));
        }
        let plan = &self.plan.in_on_next;
        log.request(plan[item as usize % plan.len()]);
        if self.plan.cancel_in_on_next == Some(item) {
            log.cancel();
        }
    }

    fn on_error(&mut self, error: Error) {
        let mut log = self.log.borrow_mut();
        log.signal("on_error");
        log.error = Some(error);
    }

    fn on_complete(&mut self) {
        let mut log = self.log.borrow_mut();
        log.signal("on_complete");
        log.completed += 1;
    }
}

/// A waker that remembers it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl ArcWake for Flag {
    fn wake_by_ref(flag: &Arc<Self>) {
        flag.0.store(true, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("planned failure")
    }
}

impl std::error::Error for Failure {}

fn run(plan: &Plan) -> Result<(), TestCaseError> {
    let log = Rc::new(RefCell::new(Log::default()));
    let fail_at = plan.fail_at;
    let flow = Flow::iter(0..plan.len).try_map(move |n| {
        if Some(n) == fail_at {
            Err(BoxError::from(Failure))
        } else {
            Ok(n)
        }
    });
    let mut drive = flow.drive(Scripted {
        log: Rc::clone(&log),
        plan: plan.clone(),
    });
    let flag = Arc::new(Flag::default());
    let waker = futures::task::waker(Arc::clone(&flag));
    let poll = |drive: &mut Drive<_, Scripted>| -> bool {
        flag.0.store(false, Ordering::SeqCst);
        Pin::new(drive)
            .poll(&mut Context::from_waker(&waker))
            .is_ready()
    };

    let mut done = poll(&mut drive);
    for (round, n) in plan.outside.iter().enumerate() {
        if done {
            break;
        }
        if plan.cancel_outside == Some(round) {
            log.borrow_mut().cancel();
        } else if *n > 0 {
            log.borrow_mut().request(*n);
        } else {
            continue; // nothing happened: the driver must not need a poll
        }
        prop_assert!(
            flag.0.load(Ordering::SeqCst),
            "a waiting driver was not woken by an outside signal in round {}",
            round
        );
        done = poll(&mut drive);
    }
    if !done {
        // Enough demand for everything left: the driver must finish.
        if !log.borrow().cancelled {
            log.borrow_mut().request(u64::MAX);
        }
        prop_assert!(
            flag.0.load(Ordering::SeqCst),
            "the final request woke nobody"
        );
        done = poll(&mut drive);
    }
    prop_assert!(
        done,
        "the driver did not finish with unbounded demand or a cancel"
    );
    prop_assert_eq!(
        Rc::strong_count(&log),
        1,
        "the driver released the subscriber when it ended"
    );

    let log = log.borrow();
    prop_assert!(log.violations.is_empty(), "{:?}", log.violations);
    prop_assert_eq!(log.subscribed, 1);
    prop_assert!(log.terminals() <= 1);
    if log.cancelled {
        // Single-threaded: a cancel is seen before anything else is sent, so a terminal
        // signal can only have come before it (then `signal` would have logged nothing).
        return Ok(());
    }
    prop_assert_eq!(
        log.terminals(),
        1,
        "exactly one terminal signal without a cancel"
    );
    match plan.fail_at.filter(|at| *at < plan.len) {
        Some(at) => {
            prop_assert_eq!(log.items.len(), at as usize);
            let error = log.error.as_ref().expect("failed");
            prop_assert!(error.downcast_ref::<Failure>().is_some(), "{error:?}");
        }
        None => {
            prop_assert_eq!(log.completed, 1);
            prop_assert_eq!(log.items.len(), plan.len as usize);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn a_driven_subscriber_gets_what_it_asked_for_in_order_and_nothing_after_the_end(plan in plan()) {
        run(&plan)?;
    }
}
