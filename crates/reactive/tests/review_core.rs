//! Review of the core protocol and operators: each `#[ignore = "BUG: …"]` test fails on
//! the current code for the reason it names; the others guard behaviour the review checked.
//!
//! Most bugs share one root cause: a source may emit its last item and return
//! `Step::Ended` in the same call even though the sink answered `Break` (`Take` does,
//! `Timer` does, and `Puller` documents it as allowed). Operators that keep going after an
//! input *ended* (`concat`, `merge`, `merge_all`) then push more items into a sink that
//! already said "enough", and operators that stash work on `Break` (`flat_map_iter`,
//! `Drive`'s stash) lose it or sit on it.

use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use flowbed_reactive::{Emit, Error, Flow, Overflow, Source, Step, Subscriber, Subscription};
use futures::StreamExt;
use futures::task::noop_waker_ref;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// What a [`Recorder`] saw.
#[derive(Debug, Default)]
struct Log {
    items: Vec<u32>,
    completed: bool,
    error: Option<Error>,
}

/// A subscriber that requests `initial` items in `on_subscribe` and nothing more.
struct Recorder {
    initial: u64,
    log: Arc<Mutex<Log>>,
}

impl Recorder {
    fn new(initial: u64) -> (Self, Arc<Mutex<Log>>) {
        let log = Arc::new(Mutex::new(Log::default()));
        (
            Self {
                initial,
                log: Arc::clone(&log),
            },
            log,
        )
    }
}

impl Subscriber<u32> for Recorder {
    fn on_subscribe(&mut self, subscription: Subscription) {
        subscription.request(NonZeroU64::new(self.initial).unwrap());
    }

    fn on_next(&mut self, item: u32) {
        self.log.lock().unwrap().items.push(item);
    }

    fn on_error(&mut self, error: Error) {
        self.log.lock().unwrap().error = Some(error);
    }

    fn on_complete(&mut self) {
        self.log.lock().unwrap().completed = true;
    }
}

/// Polls a future once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(noop_waker_ref()))
}

/// Every item of `flow`, pulled one at a time (the `Stream`/`zip` path).
async fn pull_all<S: Source>(flow: Flow<S>) -> Vec<S::Item>
where
    S::Item: std::fmt::Debug,
{
    flow.into_stream()
        .map(|item| item.expect("no error expected"))
        .collect()
        .await
}

/// A source that reports whether it was dropped, and is otherwise quiet forever.
struct Quiet(Arc<AtomicBool>);

impl Source for Quiet {
    type Item = u32;

    fn poll_emit<E: Emit<u32>>(
        &mut self,
        _: &mut Context<'_>,
        _: &mut E,
    ) -> Poll<Result<Step, Error>> {
        // Never woken: only a drop ends it.
        Poll::Pending
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------
// Items lost or sent after `Break` (emit-after-end in combinators)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn concat_keeps_the_last_item_of_a_first_flow_that_ends_on_a_break() {
    let flow = Flow::iter([1u32, 9]).take(1).concat(Flow::iter([2, 3]));
    assert_eq!(pull_all(flow).await, [1, 2, 3]);
}

#[tokio::test]
async fn merge_keeps_an_item_emitted_by_an_input_that_ends_on_a_break() {
    let flow = Flow::iter([1u32, 9])
        .take(1)
        .merge(Flow::iter([2u32]).take(1));
    let mut items = pull_all(flow).await;
    items.sort_unstable();
    assert_eq!(items, [1, 2]);
}

#[tokio::test]
async fn merge_all_keeps_an_item_emitted_by_an_input_that_ends_on_a_break() {
    let flow = Flow::merge_all([Flow::iter([1u32, 9]).take(1), Flow::iter([2, 9]).take(1)]);
    let mut items = pull_all(flow).await;
    items.sort_unstable();
    assert_eq!(items, [1, 2]);
}

#[test]
fn drive_never_sends_more_than_requested_through_concat() {
    let (subscriber, log) = Recorder::new(2);
    let flow = Flow::iter([0u32, 1, 9]).take(2).concat(Flow::iter([2, 3]));
    let mut drive = flow.drive(subscriber);
    let _ = poll_once(&mut drive);
    let log = log.lock().unwrap();
    assert_eq!(log.items, [0, 1], "requested 2");
    assert!(
        log.error.is_none(),
        "no error expected, got {:?}",
        log.error
    );
}

#[tokio::test]
async fn flat_map_iter_keeps_the_rest_of_an_expansion_when_upstream_ends() {
    let flow = Flow::iter([1u32, 9])
        .take(1)
        .flat_map_iter(|n| [n, n + 1, n + 2]);
    assert_eq!(pull_all(flow).await, [1, 2, 3]);
}

// ---------------------------------------------------------------------------------------
// Drive: terminal signals
// ---------------------------------------------------------------------------------------

#[test]
fn drive_completes_without_further_demand_after_the_last_requested_item() {
    // `take(1)` emits its item and ends in the same call: the driver's stash holds the
    // item and the ending. A subscriber that asked for exactly that one item must still
    // get `on_complete` (rule 1.5: no demand is needed for a terminal signal).
    let (subscriber, log) = Recorder::new(1);
    let mut drive = Flow::iter([7u32, 8]).take(1).drive(subscriber);
    let polled = poll_once(&mut drive);
    let log = log.lock().unwrap();
    assert_eq!(log.items, [7]);
    assert!(
        log.completed,
        "on_complete never came: the driver is {polled:?}"
    );
}

#[test]
fn drive_signals_completion_of_an_empty_flow_without_any_request() {
    struct Lazy(Arc<Mutex<Log>>);
    impl Subscriber<u32> for Lazy {
        fn on_subscribe(&mut self, _: Subscription) {}
        fn on_next(&mut self, item: u32) {
            self.0.lock().unwrap().items.push(item);
        }
        fn on_error(&mut self, error: Error) {
            self.0.lock().unwrap().error = Some(error);
        }
        fn on_complete(&mut self) {
            self.0.lock().unwrap().completed = true;
        }
    }
    let log = Arc::new(Mutex::new(Log::default()));
    let mut drive =
        Flow::<flowbed_reactive::sources::iter::Iter<std::option::IntoIter<u32>>>::empty()
            .drive(Lazy(Arc::clone(&log)));
    assert!(poll_once(&mut drive).is_ready());
    assert!(log.lock().unwrap().completed);
}

#[test]
fn drive_cancel_while_upstream_is_quiet_drops_upstream() {
    struct Canceller(Arc<Mutex<Option<Subscription>>>);
    impl Subscriber<u32> for Canceller {
        fn on_subscribe(&mut self, subscription: Subscription) {
            subscription.request(NonZeroU64::MIN);
            *self.0.lock().unwrap() = Some(subscription);
        }
        fn on_next(&mut self, _: u32) {}
        fn on_error(&mut self, _: Error) {}
        fn on_complete(&mut self) {}
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let handle = Arc::new(Mutex::new(None));
    let mut drive =
        Flow::from_source(Quiet(Arc::clone(&dropped))).drive(Canceller(Arc::clone(&handle)));
    assert!(poll_once(&mut drive).is_pending());
    handle.lock().unwrap().as_ref().unwrap().cancel();
    assert!(poll_once(&mut drive).is_ready());
    assert!(
        dropped.load(Ordering::SeqCst),
        "upstream must be dropped on cancel"
    );
}

// ---------------------------------------------------------------------------------------
// Boundary
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn buffer_drop_oldest_holds_at_most_capacity_items_after_partial_consumption() {
    let (tx, rx) = futures::channel::mpsc::unbounded::<u32>();
    for n in 0..4 {
        tx.unbounded_send(n).unwrap();
    }
    let mut stream = Flow::from_stream(rx)
        .buffer(4, Overflow::DropOldest)
        .into_stream();
    assert_eq!(stream.next().await.unwrap().unwrap(), 0);
    // Three items (1, 2, 3) are buffered. A burst of 100 arrives while nobody consumes:
    // a buffer of 4 that drops the oldest must end up holding the 4 newest.
    for n in 4..104 {
        tx.unbounded_send(n).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1)).await; // paused clock: lets the pump run
    drop(tx);
    let rest: Vec<u32> = stream.map(Result::unwrap).collect().await;
    assert_eq!(rest, [100, 101, 102, 103]);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_boundary_cancels_a_quiet_upstream() {
    let dropped = Arc::new(AtomicBool::new(false));
    let mut stream = Flow::from_source(Quiet(Arc::clone(&dropped)))
        .async_boundary(8)
        .into_stream();
    assert!(futures::poll!(stream.next()).is_pending());
    tokio::time::sleep(Duration::from_millis(1)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(dropped.load(Ordering::SeqCst));
}

// ---------------------------------------------------------------------------------------
// Fairness
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn merge_does_not_starve_either_endless_input() {
    let flow = Flow::iter(std::iter::repeat(0u8)).merge(Flow::iter(std::iter::repeat(1u8)));
    let first: Vec<u8> = pull_all(flow.take(100)).await;
    assert_eq!(first.iter().filter(|&&n| n == 1).count(), 50, "{first:?}");
}

#[tokio::test]
async fn flat_map_gives_a_finite_inner_its_turn_next_to_an_endless_one() {
    let flow = Flow::iter([0u8, 1]).flat_map(
        |which| {
            if which == 0 {
                Flow::iter(std::iter::repeat(0u8)).boxed()
            } else {
                Flow::iter(std::iter::repeat(1u8)).take(5).boxed()
            }
        },
        2,
    );
    let ones = flow.take(20_000).filter(|&n| n == 1).count().await.unwrap();
    assert_eq!(ones, 5);
}

// ---------------------------------------------------------------------------------------
// User input: durations
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn duration_max_means_never_instead_of_panicking() {
    let tick = || {
        Flow::interval(Duration::from_millis(1))
            .take(2)
            .map(|n| n as u32)
    };
    let mut failures = Vec::new();
    let timeout = Flow::timer(Duration::from_millis(1))
        .timeout(Duration::MAX)
        .count()
        .await;
    if !matches!(timeout, Ok(1)) {
        failures.push(format!("timeout: {timeout:?}"));
    }
    let debounce = tick().debounce(Duration::MAX).collect::<Vec<_>>().await;
    if !matches!(debounce.as_deref(), Ok([1])) {
        failures.push(format!("debounce: {debounce:?}"));
    }
    let batch = tick()
        .batch(10, Some(Duration::MAX))
        .collect::<Vec<_>>()
        .await;
    if !matches!(batch.as_deref(), Ok([b]) if b == &[0, 1]) {
        failures.push(format!("batch: {batch:?}"));
    }
    let sample = tick().sample(Duration::MAX).collect::<Vec<_>>().await;
    if !matches!(sample.as_deref(), Ok([1])) {
        failures.push(format!("sample: {sample:?}"));
    }
    let mut never = Flow::timer(Duration::MAX).into_stream();
    let polled = futures::poll!(never.next());
    if polled.is_ready() {
        failures.push(format!("timer: {polled:?}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(start_paused = true)]
async fn zero_durations_and_limits_are_accepted() {
    let timer = Flow::timer(Duration::ZERO).count().await;
    assert_eq!(timer.unwrap(), 1);
    let debounced = Flow::iter(1..=3u32)
        .debounce(Duration::ZERO)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(debounced.unwrap(), [3]);
    let throttled = Flow::iter(1..=3u32).throttle(Duration::ZERO).count().await;
    assert_eq!(throttled.unwrap(), 3);
    let batched = Flow::iter(1..=3u32)
        .batch(2, Some(Duration::ZERO))
        .count()
        .await;
    assert_eq!(batched.unwrap(), 2);
    let buffered = Flow::iter(1..=3u32).async_boundary(0).count().await;
    assert_eq!(buffered.unwrap(), 3);
    let flat = Flow::iter(1..=3u32).flat_map(Flow::just, 0).count().await;
    assert_eq!(flat.unwrap(), 3);
    assert_eq!(Flow::iter(1..=3u32).take(0).count().await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------
// Robustness against a source that pauses without emitting
// ---------------------------------------------------------------------------------------

/// Pauses once without emitting (a spurious `Paused`, which `Fold` explicitly tolerates),
/// then emits `1` and ends.
struct SpuriousPause {
    paused: bool,
    done: bool,
}

impl Source for SpuriousPause {
    type Item = u32;

    fn poll_emit<E: Emit<u32>>(
        &mut self,
        _: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        if !self.paused {
            self.paused = true;
            return Poll::Ready(Ok(Step::Paused));
        }
        if !self.done {
            self.done = true;
            if emit.emit(1).is_break() {
                return Poll::Ready(Ok(Step::Paused));
            }
        }
        Poll::Ready(Ok(Step::Ended))
    }
}

#[tokio::test]
async fn into_stream_treats_a_spurious_pause_like_fold_does() {
    let folded = Flow::from_source(SpuriousPause {
        paused: false,
        done: false,
    })
    .collect::<Vec<_>>()
    .await
    .unwrap();
    assert_eq!(folded, [1]);
    let pulled = pull_all(Flow::from_source(SpuriousPause {
        paused: false,
        done: false,
    }))
    .await;
    assert_eq!(pulled, [1]);
}
