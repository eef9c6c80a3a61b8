//! The time and retry operators on a paused tokio clock: `batch`, `throttle`, `debounce`,
//! `sample`, `timeout`, `retry`/`retry_if`, and the `interval`/`timer` sources. Every
//! timing below is exact: the paused clock only moves when every task waits, straight to
//! the next timer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use flowbed_reactive::ops::retry::RetryPolicy;
use flowbed_reactive::{Error, Flow, Source, Step};
use futures::StreamExt;
use futures::task::ArcWake;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, advance, sleep};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// One event of a scripted upstream: at `at` ms after the start, an item or a failure.
enum Event<T> {
    Item(u64, T),
    Fail(u64, &'static str),
}

/// A flow that emits (or fails) at the scripted times, then ends (at `end` ms).
fn scripted<T: Unpin + 'static>(events: Vec<Event<T>>, end: u64) -> Flow<impl Source<Item = T>> {
    let start = Instant::now();
    let stream = futures::stream::unfold(
        (events.into_iter(), false),
        move |(mut events, failed)| async move {
            if failed {
                return None;
            }
            match events.next() {
                Some(Event::Item(at, item)) => {
                    tokio::time::sleep_until(start + ms(at)).await;
                    Some((Ok(item), (events, false)))
                }
                Some(Event::Fail(at, message)) => {
                    tokio::time::sleep_until(start + ms(at)).await;
                    Some((Err(std::io::Error::other(message)), (events, true)))
                }
                None => {
                    tokio::time::sleep_until(start + ms(end)).await;
                    None
                }
            }
        },
    );
    Flow::from_try_stream(stream)
}

/// Items at the given ms, each item being its own time.
fn items_at(times: &[u64], end: u64) -> Flow<impl Source<Item = u64>> {
    scripted(times.iter().map(|&t| Event::Item(t, t)).collect(), end)
}

/// Consumes `flow`, recording when (ms since the call) each item arrived and how it ended.
async fn timeline<S: Source>(flow: Flow<S>) -> (Vec<(u64, S::Item)>, Result<(), Error>, u64) {
    let start = Instant::now();
    let elapsed = move || u64::try_from(start.elapsed().as_millis()).unwrap();
    let mut seen = Vec::new();
    let outcome = flow.for_each(|item| seen.push((elapsed(), item))).await;
    (seen, outcome, elapsed())
}

/// A flow fed by hand through a channel (the sender keeps it open).
fn channel<T>() -> (mpsc::UnboundedSender<T>, Flow<impl Source<Item = T>>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (tx, Flow::from_stream(stream))
}

fn io_message(error: &Error) -> String {
    error
        .downcast_ref::<std::io::Error>()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// A waker that counts its wake-ups, for checking which timers an operator arms.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl ArcWake for CountingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `source` once with `waker`, collecting what it emits.
fn poll_once<S: Source>(
    source: &mut S,
    waker: &Arc<CountingWaker>,
) -> (Vec<S::Item>, Poll<Result<Step, Error>>) {
    let waker = futures::task::waker(waker.clone());
    let mut cx = Context::from_waker(&waker);
    let mut items = Vec::new();
    let polled = source.poll_emit(&mut cx, &mut |item| {
        items.push(item);
        std::ops::ControlFlow::Continue(())
    });
    (items, polled)
}

fn wakes(waker: &Arc<CountingWaker>) -> usize {
    waker.0.load(Ordering::SeqCst)
}

// ---------------------------------------------------------------- batch

#[test]
fn batch_by_size_needs_no_runtime_and_reserves_max_items() {
    let batches =
        futures::executor::block_on(Flow::iter(1..=7).batch(3, None).collect::<Vec<_>>()).unwrap();
    assert_eq!(batches, [vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
    assert_eq!(
        batches[0].capacity(),
        3,
        "a batch is reserved for max_items once"
    );
}

proptest::proptest! {
    #[test]
    fn batch_by_size_loses_nothing_and_fills_every_batch_but_the_last(
        items in proptest::collection::vec(0u16.., 0..200),
        max_items in 1usize..20,
    ) {
        let batches = futures::executor::block_on(
            Flow::iter(items.clone()).batch(max_items, None).collect::<Vec<_>>(),
        )
        .unwrap();
        proptest::prop_assert_eq!(batches.concat(), items);
        if let Some((last, full)) = batches.split_last() {
            proptest::prop_assert!(full.iter().all(|batch| batch.len() == max_items));
            proptest::prop_assert!((1..=max_items).contains(&last.len()));
        }
    }
}

#[test]
#[should_panic(expected = "`max_items` must be at least 1")]
fn batch_of_zero_items_is_refused_at_construction() {
    let _ = Flow::iter(0..1).batch(0, None);
}

#[tokio::test(start_paused = true)]
async fn batch_goes_out_when_full_or_max_wait_after_its_first_item() {
    let flow = items_at(&[0, 5, 30, 31, 32, 50], 55).batch(3, Some(ms(10)));
    let (seen, outcome, _) = timeline(flow).await;
    outcome.unwrap();
    assert_eq!(
        seen,
        [
            (10, vec![0, 5]),       // max_wait after the first item (at 0)
            (32, vec![30, 31, 32]), // full
            (55, vec![50]),         // the end of input flushes the partial batch
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn batch_emits_the_partial_batch_before_the_error() {
    let flow = scripted(
        vec![Event::Item(0, 1), Event::Item(1, 2), Event::Fail(2, "boom")],
        99,
    )
    .batch(10, Some(ms(100)));
    let (seen, outcome, at) = timeline(flow).await;
    assert_eq!(seen, [(2, vec![1, 2])]);
    assert_eq!(io_message(&outcome.unwrap_err()), "boom");
    assert_eq!(at, 2);
}

#[tokio::test(start_paused = true)]
async fn an_expired_batch_goes_out_before_newer_items_can_join_it() {
    let (tx, flow) = channel();
    let mut stream = flow.batch(10, Some(ms(10))).into_stream();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    // The operator sees 1 and 2 at t=0, then nobody asks for 50 ms.
    assert!(futures::poll!(stream.next()).is_pending());
    advance(ms(50)).await;
    tx.send(3).unwrap();
    let start = Instant::now();
    assert_eq!(stream.next().await.unwrap().unwrap(), [1, 2]);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(stream.next().await.unwrap().unwrap(), [3]);
    assert_eq!(
        start.elapsed(),
        ms(10),
        "3 opened its own batch when it was seen"
    );
}

// ---------------------------------------------------------------- throttle

#[tokio::test(start_paused = true)]
async fn throttle_passes_the_first_item_then_drops_for_the_period() {
    let flow = items_at(&[0, 3, 6, 10, 12, 19, 25], 30).throttle(ms(10));
    let (seen, outcome, _) = timeline(flow).await;
    outcome.unwrap();
    assert_eq!(seen, [(0, 0), (10, 10), (25, 25)]);
}

// ---------------------------------------------------------------- debounce

#[tokio::test(start_paused = true)]
async fn debounce_emits_after_quiet_and_the_pending_item_at_the_end() {
    let flow = items_at(&[0, 5, 10, 40, 45, 90], 95).debounce(ms(20));
    let (seen, outcome, at) = timeline(flow).await;
    outcome.unwrap();
    // 10 then 45 after 20 ms of quiet; 90 is still pending at the end (95): out at once.
    assert_eq!(seen, [(30, 10), (65, 45), (95, 90)]);
    assert_eq!(at, 95);
}

#[tokio::test(start_paused = true)]
async fn debounce_emits_the_pending_item_before_the_error() {
    let flow = scripted(vec![Event::Item(0, 7u8), Event::Fail(5, "gone")], 99).debounce(ms(20));
    let (seen, outcome, _) = timeline(flow).await;
    assert_eq!(seen, [(5, 7)]);
    assert_eq!(io_message(&outcome.unwrap_err()), "gone");
}

// ---------------------------------------------------------------- sample

#[tokio::test(start_paused = true)]
async fn sample_emits_the_latest_item_of_each_period_and_nothing_for_empty_ones() {
    let flow = items_at(&[0, 3, 12, 14, 35, 45], 47).sample(ms(10));
    let (seen, outcome, _) = timeline(flow).await;
    outcome.unwrap();
    // [0,10) → 3, [10,20) → 14, [20,30) nothing, [30,40) → 35, 45 held at the end (47).
    assert_eq!(seen, [(10, 3), (20, 14), (40, 35), (47, 45)]);
}

// ---------------------------------------------------------------- timeout

#[tokio::test(start_paused = true)]
async fn timeout_fires_exactly_after_the_limit_and_drops_upstream() {
    let (tx, flow) = channel::<u32>();
    let start = Instant::now();
    let outcome = flow.timeout(ms(100)).collect::<Vec<_>>().await;
    assert!(matches!(outcome, Err(Error::Timeout { after }) if after == ms(100)));
    assert_eq!(start.elapsed(), ms(100));
    assert!(tx.is_closed(), "the upstream (the receiver) was dropped");
}

#[tokio::test(start_paused = true)]
async fn timeout_counts_from_the_previous_item() {
    let flow = items_at(&[0, 50, 160], 170).timeout(ms(100));
    let (seen, outcome, at) = timeline(flow).await;
    assert_eq!(seen, [(0, 0), (50, 50)]);
    assert!(matches!(outcome, Err(Error::Timeout { .. })));
    assert_eq!(at, 150);

    let steady = items_at(&[0, 99, 198, 297], 396).timeout(ms(100));
    let (seen, outcome, _) = timeline(steady).await;
    outcome.unwrap();
    assert_eq!(seen.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn timeout_does_not_count_the_time_a_slow_consumer_takes() {
    let (tx, flow) = channel();
    let mut stream = flow.timeout(ms(100)).into_stream();
    tx.send(1).unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), 1);
    sleep(ms(500)).await; // the consumer is busy; upstream was not asked
    let start = Instant::now();
    assert!(matches!(
        stream.next().await,
        Some(Err(Error::Timeout { .. }))
    ));
    assert_eq!(start.elapsed(), ms(100));
}

// ---------------------------------------------------------------- retry

#[tokio::test(start_paused = true)]
async fn retry_backs_off_exponentially_and_gives_up_with_the_last_error() {
    let start = Instant::now();
    let mut attempts = Vec::new();
    let outcome = Flow::retry(
        || {
            attempts.push(start.elapsed());
            let message = format!("attempt {}", attempts.len());
            Flow::<flowbed_reactive::sources::iter::Failed<u8>>::failed(Error::upstream(
                std::io::Error::other(message),
            ))
        },
        RetryPolicy::exponential(ms(100)).max_retries(3),
    )
    .collect::<Vec<_>>()
    .await;
    assert_eq!(io_message(&outcome.unwrap_err()), "attempt 4");
    assert_eq!(attempts, [ms(0), ms(100), ms(300), ms(700)]);
}

#[tokio::test(start_paused = true)]
async fn retry_caps_the_backoff() {
    let start = Instant::now();
    let mut attempts = Vec::new();
    let outcome = Flow::retry(
        || {
            attempts.push(start.elapsed());
            Flow::<flowbed_reactive::sources::iter::Failed<u8>>::failed(Error::Timeout {
                after: ms(1),
            })
        },
        RetryPolicy::exponential(ms(100))
            .max_backoff(ms(250))
            .max_retries(4),
    )
    .collect::<Vec<_>>()
    .await;
    assert!(matches!(outcome, Err(Error::Timeout { .. })));
    assert_eq!(attempts, [ms(0), ms(100), ms(300), ms(550), ms(800)]);
}

#[tokio::test(start_paused = true)]
async fn retry_resubscribes_and_a_cold_source_replays() {
    let mut attempts = 0;
    let (seen, outcome, at) = timeline(Flow::retry(
        || {
            attempts += 1;
            let last = if attempts < 3 {
                Event::Fail(1, "flaky")
            } else {
                Event::Item(1, 3)
            };
            scripted(vec![Event::Item(0, 1), Event::Item(0, 2), last], 1)
        },
        RetryPolicy::fixed(ms(10)),
    ))
    .await;
    outcome.unwrap();
    let items: Vec<_> = seen.iter().map(|&(_, item)| item).collect();
    assert_eq!(items, [1, 2, 1, 2, 1, 2, 3]);
    assert_eq!(at, 1 + 10 + 1 + 10 + 1);
}

#[tokio::test(start_paused = true)]
async fn retry_if_ends_at_once_on_an_error_it_rejects() {
    let mut attempts = 0;
    let outcome = Flow::retry_if(
        || {
            attempts += 1;
            Flow::<flowbed_reactive::sources::iter::Failed<u8>>::failed(Error::upstream(
                std::io::Error::other("fatal"),
            ))
        },
        RetryPolicy::fixed(ms(10)),
        |error| io_message(error) != "fatal",
    )
    .collect::<Vec<_>>()
    .await;
    assert_eq!(io_message(&outcome.unwrap_err()), "fatal");
    assert_eq!(attempts, 1);
}

#[test]
fn retry_does_not_retry_a_panic_by_default_and_immediate_needs_no_runtime() {
    let mut attempts = 0;
    let outcome = futures::executor::block_on(
        Flow::retry(
            || {
                attempts += 1;
                Flow::<flowbed_reactive::sources::iter::Failed<u8>>::failed(Error::Panicked {
                    message: "bug".into(),
                })
            },
            RetryPolicy::immediate().max_retries(5),
        )
        .collect::<Vec<_>>(),
    );
    assert!(matches!(outcome, Err(Error::Panicked { .. })));
    assert_eq!(attempts, 1);

    let mut attempts = 0;
    let outcome = futures::executor::block_on(
        Flow::retry(
            || {
                attempts += 1;
                Flow::<flowbed_reactive::sources::iter::Failed<u8>>::failed(Error::Timeout {
                    after: ms(1),
                })
            },
            RetryPolicy::immediate().max_retries(5),
        )
        .collect::<Vec<_>>(),
    );
    assert!(matches!(outcome, Err(Error::Timeout { .. })));
    assert_eq!(attempts, 6);
}

#[tokio::test(start_paused = true)]
async fn retry_jitter_stays_within_its_bounds() {
    let start = Instant::now();
    let mut attempts = Vec::new();
    let _ = Flow::retry(
        || {
            attempts.push(start.elapsed());
            Flow::<flowbed_reactive::sources::iter::Failed<u8>>::failed(Error::Timeout {
                after: ms(1),
            })
        },
        RetryPolicy::fixed(ms(100)).jitter(0.5).max_retries(20),
    )
    .collect::<Vec<_>>()
    .await;
    let gaps: Vec<Duration> = attempts.windows(2).map(|pair| pair[1] - pair[0]).collect();
    assert_eq!(gaps.len(), 20);
    // ±50 %, and tokio's timer rounds up to the millisecond.
    assert!(
        gaps.iter().all(|gap| (ms(50)..=ms(151)).contains(gap)),
        "{gaps:?}"
    );
    assert!(
        gaps.iter().any(|gap| *gap != gaps[0]),
        "jitter varies: {gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_reset_after_item_forgives_attempts_that_made_progress() {
    let flaky = |attempts: &mut u32| {
        *attempts += 1;
        let last = if *attempts <= 5 {
            Event::Fail(1, "dropped")
        } else {
            Event::Item(1, 0)
        };
        scripted(vec![Event::Item(0, *attempts), last], 1)
    };
    let mut attempts = 0;
    let policy = RetryPolicy::fixed(ms(10)).max_retries(1);
    let outcome = Flow::retry(|| flaky(&mut attempts), policy.clone())
        .collect::<Vec<_>>()
        .await;
    assert_eq!(io_message(&outcome.unwrap_err()), "dropped");
    assert_eq!(attempts, 2);

    let mut attempts = 0;
    let items = Flow::retry(|| flaky(&mut attempts), policy.reset_after_item(true))
        .collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(items, [1, 2, 3, 4, 5, 6, 0]);
}

#[test]
fn retry_policy_delays_grow_and_cap() {
    let policy = RetryPolicy::exponential(ms(10))
        .multiplier(3.0)
        .max_backoff(ms(200));
    let delays: Vec<_> = (1..=5).map(|retry| policy.delay(retry)).collect();
    assert_eq!(delays, [ms(10), ms(30), ms(90), ms(200), ms(200)]);
    assert_eq!(policy.delay(u32::MAX), ms(200), "no overflow far out");
    assert_eq!(RetryPolicy::fixed(ms(7)).delay(9), ms(7));
}

// ---------------------------------------------------------------- interval and timer

#[tokio::test(start_paused = true)]
async fn interval_ticks_every_period_and_stops_with_its_consumer() {
    let (seen, outcome, at) = timeline(Flow::interval(ms(10)).take(3)).await;
    outcome.unwrap();
    assert_eq!(seen, [(0, 0), (10, 1), (20, 2)]);
    assert_eq!(
        at, 20,
        "take(3) ends the flow at the third tick, not the fourth"
    );
}

#[tokio::test(start_paused = true)]
async fn interval_emits_only_on_demand_and_delays_after_a_missed_tick() {
    let mut stream = Flow::interval(ms(10)).into_stream();
    let start = Instant::now();
    assert_eq!(stream.next().await.unwrap().unwrap(), 0);
    sleep(ms(55)).await; // five ticks missed while nobody asked
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        1,
        "no tick lost, none piled up"
    );
    assert_eq!(start.elapsed(), ms(55));
    assert_eq!(stream.next().await.unwrap().unwrap(), 2);
    assert_eq!(
        start.elapsed(),
        ms(65),
        "Delay: a full period after the late tick"
    );
}

#[tokio::test(start_paused = true)]
async fn interval_with_burst_catches_up() {
    let mut stream = Flow::interval_with(ms(10), MissedTickBehavior::Burst).into_stream();
    let start = Instant::now();
    assert_eq!(stream.next().await.unwrap().unwrap(), 0);
    sleep(ms(55)).await;
    for expected in 1..=5 {
        assert_eq!(stream.next().await.unwrap().unwrap(), expected);
    }
    assert_eq!(start.elapsed(), ms(55));
    assert_eq!(stream.next().await.unwrap().unwrap(), 6);
    assert_eq!(start.elapsed(), ms(60));
}

#[tokio::test(start_paused = true)]
async fn timer_fires_once_its_delay_after_the_first_poll() {
    let flow = Flow::timer(ms(30));
    sleep(ms(50)).await; // built, not yet polled: the clock has not started
    let (seen, outcome, at) = timeline(flow).await;
    outcome.unwrap();
    assert_eq!(seen, [(30, ())]);
    assert_eq!(at, 30);
}

#[test]
fn time_sources_fail_without_a_runtime() {
    let outcome = futures::executor::block_on(Flow::timer(ms(1)).collect::<Vec<_>>());
    assert!(matches!(outcome, Err(Error::NoRuntime)));
    let outcome = futures::executor::block_on(Flow::interval(ms(1)).take(1).count());
    assert!(matches!(outcome, Err(Error::NoRuntime)));
}

#[test]
#[should_panic(expected = "`period` must be non-zero")]
fn interval_of_zero_is_refused_at_construction() {
    let _ = Flow::interval(Duration::ZERO);
}

// ---------------------------------------------------------------- timers only when needed

#[tokio::test(start_paused = true)]
async fn idle_time_operators_arm_no_timer() {
    let waker = Arc::new(CountingWaker::default());
    let (_tx1, idle) = channel::<u32>();
    let mut batch = idle.batch(10, Some(ms(10))).into_source();
    let (_tx2, idle) = channel::<u32>();
    let mut debounce = idle.debounce(ms(10)).into_source();
    let (_tx3, idle) = channel::<u32>();
    let mut sample = idle.sample(ms(10)).into_source();
    assert!(poll_once(&mut batch, &waker).1.is_pending());
    assert!(poll_once(&mut debounce, &waker).1.is_pending());
    assert!(poll_once(&mut sample, &waker).1.is_pending());
    advance(Duration::from_secs(3600)).await;
    assert_eq!(wakes(&waker), 0, "nothing pending, no timer");
}

#[tokio::test(start_paused = true)]
async fn debounce_arms_its_timer_only_while_an_item_is_pending() {
    let waker = Arc::new(CountingWaker::default());
    let (tx, flow) = channel();
    let mut debounce = flow.debounce(ms(10)).into_source();
    tx.send(1).unwrap();
    let (items, polled) = poll_once(&mut debounce, &waker);
    assert!(items.is_empty() && polled.is_pending());
    advance(ms(10)).await;
    assert_eq!(wakes(&waker), 1, "the quiet period ended");
    let (items, polled) = poll_once(&mut debounce, &waker);
    assert_eq!(items, [1]);
    assert!(polled.is_pending());
    advance(Duration::from_secs(3600)).await;
    assert_eq!(wakes(&waker), 1, "nothing pending, no more wake-ups");
}
