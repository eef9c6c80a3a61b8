//! The window operator: every window kind, keys, lateness, the late side output, idle
//! sources, processing time, end of input, errors and panics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flowbed_reactive::window::{
    Collect, Count, Max, Min, Sum, Watermarks, WindowEvent, WindowResult, WindowSpec, fold,
};
use flowbed_reactive::{Error, Firing, Flow, Timestamp, Window};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn window(start: Timestamp, end: Timestamp) -> Window {
    Window { start, end }
}

fn fired<K, O, T>(
    key: K,
    start: Timestamp,
    end: Timestamp,
    value: O,
    firing: Firing,
) -> WindowEvent<K, O, T> {
    WindowEvent::Fired(WindowResult {
        key,
        window: window(start, end),
        value,
        firing,
    })
}

/// Runs `(key, timestamp)` events through event-time windows counting events, with
/// monotonic watermarks unless `marks` is given.
async fn run_counts(
    events: Vec<(&'static str, Timestamp)>,
    spec: WindowSpec,
    bound: u64,
    lateness: u64,
) -> Vec<WindowEvent<&'static str, u64, (&'static str, Timestamp)>> {
    Flow::iter(events)
        .windowed(spec)
        .event_time(|e| e.1, Watermarks::bounded(ms(bound)))
        .key_by(|e| e.0)
        .allowed_lateness(ms(lateness))
        .aggregate(Count)
        .collect::<Vec<_>>()
        .await
        .unwrap()
}

/// A flow fed by hand through a channel, open until the sender is dropped.
fn channel<T: Send + 'static>() -> (
    mpsc::UnboundedSender<T>,
    Flow<impl flowbed_reactive::Source<Item = T>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (tx, Flow::from_stream(stream))
}

#[tokio::test]
async fn tumbling_keyed_fires_as_the_watermark_passes_in_end_order() {
    let events = vec![
        ("a", 1),
        ("b", 3),
        ("a", 9),
        ("a", 12),
        ("b", 25),
        ("a", 31),
    ];
    let out = run_counts(events, WindowSpec::tumbling(ms(10)), 0, 0).await;
    // ("a", 12) moves the watermark to 11: [0, 10) fires for both keys (either order).
    // ("b", 25) → 24 fires a's [10, 20); ("a", 31) → 30 fires b's [20, 30); the end of
    // input fires a's [30, 40).
    assert_eq!(out.len(), 5);
    assert!(out[..2].contains(&fired("a", 0, 10, 2, Firing::OnTime)));
    assert!(out[..2].contains(&fired("b", 0, 10, 1, Firing::OnTime)));
    assert_eq!(
        out[2..],
        [
            fired("a", 10, 20, 1, Firing::OnTime),
            fired("b", 20, 30, 1, Firing::OnTime),
            fired("a", 30, 40, 1, Firing::OnTime),
        ]
    );
}

#[tokio::test]
async fn one_watermark_jump_fires_in_window_end_order_across_keys() {
    let mut events = Vec::new();
    for t in 0..50 {
        events.push((["a", "b", "c"][t as usize % 3], t));
    }
    // A bound of 1 s: nothing fires before the end of input fires all 15 windows.
    let out = run_counts(events, WindowSpec::tumbling(ms(10)), 1_000, 0).await;
    let ends: Vec<Timestamp> = out
        .into_iter()
        .map(|e| e.into_fired().unwrap().window.end)
        .collect();
    assert_eq!(ends.len(), 15);
    assert!(ends.is_sorted(), "{ends:?}");
}

#[tokio::test]
async fn sliding_windows_sum_their_panes() {
    // size 30, slide 10: each event is in 3 windows.
    let events: Vec<(&str, Timestamp)> = vec![("k", 5), ("k", 15), ("k", 25), ("k", 35)];
    let out = Flow::iter(events)
        .windowed(WindowSpec::sliding(ms(30), ms(10)))
        .event_time(|e| e.1, Watermarks::monotonic())
        .aggregate(Sum::of(|e: &(&str, Timestamp)| e.1))
        .filter_map(WindowEvent::into_fired)
        .map(|r| (r.window.start, r.window.end, r.value))
        .collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(
        out,
        [
            (-20, 10, 5),
            (-10, 20, 20),
            (0, 30, 45),
            (10, 40, 75),
            (20, 50, 60),
            (30, 60, 35),
        ]
    );
}

#[tokio::test]
async fn sliding_windows_whose_size_is_not_a_multiple_of_the_slide() {
    // size 25, slide 10: panes of 5 ms; windows [-20,5), [-10,15), [0,25), [10,35), ...
    let events: Vec<(&str, Timestamp)> = vec![("k", 4), ("k", 12), ("k", 24), ("k", 26)];
    let out = Flow::iter(events)
        .windowed(WindowSpec::sliding(ms(25), ms(10)))
        .event_time(|e| e.1, Watermarks::bounded(ms(100)))
        .aggregate(Collect)
        .filter_map(WindowEvent::into_fired)
        .map(|r| {
            (
                r.window.start,
                r.value.iter().map(|e| e.1).collect::<Vec<_>>(),
            )
        })
        .collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(
        out,
        [
            (-20, vec![4]),
            (-10, vec![4, 12]),
            (0, vec![4, 12, 24]),
            (10, vec![12, 24, 26]),
            (20, vec![24, 26]),
        ]
    );
}

#[tokio::test]
async fn sessions_merge_when_an_event_bridges_them() {
    // gap 10. "u": 0 and 25 open two sessions; 12 bridges [0,10) ∪ [12,22) ∪ [25,35)?
    // [0,10) and [12,22) do not touch, so 12 only joins 25? No: [12,22) and [25,35) do
    // not touch either; 20 then touches [12,22) and [25,35) and merges them.
    let events = vec![
        ("u", 0),
        ("v", 1),
        ("u", 25),
        ("u", 12),
        ("u", 20),
        ("u", 100),
    ];
    let out = run_counts(events, WindowSpec::session(ms(10)), 50, 0).await;
    let mut results: Vec<_> = out
        .into_iter()
        .map(|e| {
            let r = e.into_fired().unwrap();
            (r.key, r.window, r.value)
        })
        .collect();
    results.sort();
    assert_eq!(
        results,
        [
            ("u", window(0, 10), 1),
            ("u", window(12, 35), 3),
            ("u", window(100, 110), 1),
            ("v", window(1, 11), 1),
        ]
    );
}

#[tokio::test]
async fn session_accumulators_merge() {
    // Two sessions [0, 5) and [7, 12) with gap 5, then 5 touches both: one session.
    let events = vec![("k", 0), ("k", 7), ("k", 5)];
    let out = Flow::iter(events)
        .windowed(WindowSpec::session(ms(5)))
        .event_time(|e| e.1, Watermarks::bounded(ms(100)))
        .aggregate((Count, Sum::of(|e: &(&str, Timestamp)| e.1)))
        .collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(out, [fired((), 0, 12, (3, 12), Firing::OnTime)]);
}

#[tokio::test]
async fn count_windows_fire_every_n_events_per_key_and_flush_at_the_end() {
    let events = vec![
        ("a", 0),
        ("b", 0),
        ("a", 0),
        ("a", 0),
        ("b", 0),
        ("a", 0),
        ("a", 0),
    ];
    let out = Flow::iter(events)
        .windowed(WindowSpec::count(2))
        .key_by(|e| e.0)
        .aggregate(Count)
        .collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(
        out[..3],
        [
            fired("a", 0, 2, 2, Firing::OnTime),
            fired("b", 0, 2, 2, Firing::OnTime),
            fired("a", 2, 4, 2, Firing::OnTime),
        ]
    );
    // The end of input fires a's partial window of one event.
    assert_eq!(out[3..], [fired("a", 4, 5, 1, Firing::OnTime)]);
}

#[tokio::test]
async fn allowed_lateness_refires_and_later_events_go_to_the_side_output() {
    let events = vec![
        ("k", 1),
        ("k", 15), // watermark 14: [0, 10) fires with 1 event
        ("k", 3),  // late but within 10 ms of lateness: [0, 10) fires again with 2
        ("k", 25), // watermark 24 ≥ 9 + 10: [0, 10) is dropped; [10, 20) fires
        ("k", 4),  // too late: side output
    ];
    let out = run_counts(events, WindowSpec::tumbling(ms(10)), 0, 10).await;
    assert_eq!(
        out,
        [
            fired("k", 0, 10, 1, Firing::OnTime),
            fired("k", 0, 10, 2, Firing::Late),
            fired("k", 10, 20, 1, Firing::OnTime),
            WindowEvent::Late(("k", 4)),
            fired("k", 20, 30, 1, Firing::OnTime),
        ]
    );
}

#[tokio::test]
async fn without_lateness_a_late_event_goes_to_the_side_output() {
    let events = vec![("k", 1), ("k", 15), ("k", 3)];
    let late: Vec<_> = run_counts(events, WindowSpec::tumbling(ms(10)), 0, 0)
        .await
        .into_iter()
        .filter_map(WindowEvent::into_late)
        .collect();
    assert_eq!(late, [("k", 3)]);
}

#[tokio::test(start_paused = true)]
async fn an_idle_source_lets_pending_windows_fire() {
    let (tx, flow) = channel::<Timestamp>();
    let mut out = flow
        .windowed(WindowSpec::tumbling(ms(10)))
        .event_time(
            |t| *t,
            Watermarks::monotonic().idle_timeout(Duration::from_secs(1)),
        )
        .aggregate(Count)
        .into_stream();
    let start = Instant::now();
    tx.send(5).unwrap();
    tx.send(7).unwrap();
    // The watermark is 6; [0, 10) waits. After 1 s of silence the watermark follows the
    // clock: 6 + 1000 ≥ 9, so the window fires while the source is still open.
    let first = out.next().await.unwrap().unwrap();
    assert_eq!(first, fired((), 0, 10, 2, Firing::OnTime));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    // The watermark is now 1006: an event at 500 is late.
    tx.send(500).unwrap();
    assert_eq!(out.next().await.unwrap().unwrap(), WindowEvent::Late(500));
    drop(tx);
    assert!(out.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_waits_for_the_window_when_it_is_further_than_the_timeout() {
    let (tx, flow) = channel::<Timestamp>();
    let mut out = flow
        .windowed(WindowSpec::tumbling(Duration::from_secs(5)))
        .event_time(|t| *t, Watermarks::monotonic().idle_timeout(ms(100)))
        .aggregate(Count)
        .into_stream();
    let start = Instant::now();
    tx.send(1_000).unwrap();
    // Watermark 999 from the event; [0, 5000) needs 4999: 4000 ms of clock.
    let first = out.next().await.unwrap().unwrap();
    assert_eq!(first, fired((), 0, 5_000, 1, Firing::OnTime));
    assert_eq!(start.elapsed(), ms(4_000));
    drop(tx);
    assert!(out.next().await.is_none());
}

/// Drives `flow` on a task, sending each item with the time it came out.
fn drive<T: Send + 'static>(
    flow: Flow<impl flowbed_reactive::Source<Item = T> + Send + 'static>,
) -> mpsc::UnboundedReceiver<(Duration, T)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    tokio::spawn(async move {
        flow.for_each(|item| {
            let _ = tx.send((start.elapsed(), item));
        })
        .await
        .unwrap();
    });
    rx
}

#[tokio::test(start_paused = true)]
async fn processing_time_windows_fire_by_timer_without_events() {
    let (tx, flow) = channel::<&str>();
    let mut out = drive(
        flow.windowed(WindowSpec::tumbling(ms(100)))
            .key_by(|user| *user)
            .aggregate(Count),
    );
    tx.send("ann").unwrap();
    tx.send("ann").unwrap();
    tokio::time::sleep(ms(150)).await;
    // Both "ann" arrived at 0 ms; [0, 100) fired at 100 ms by its timer, no event needed.
    assert_eq!(
        out.recv().await.unwrap(),
        (ms(100), fired("ann", 0, 100, 2, Firing::OnTime))
    );
    tx.send("bob").unwrap();
    assert_eq!(
        out.recv().await.unwrap(),
        (ms(200), fired("bob", 100, 200, 1, Firing::OnTime))
    );
    drop(tx);
    assert!(out.recv().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn processing_time_sliding_windows() {
    let (tx, flow) = channel::<u32>();
    let mut out = drive(
        flow.windowed(WindowSpec::sliding(ms(20), ms(10)))
            .aggregate(Sum::of(|n: &u32| *n))
            .filter_map(WindowEvent::into_fired)
            .map(|r| (r.window.start, r.value)),
    );
    tx.send(1).unwrap();
    tokio::time::sleep(ms(15)).await;
    tx.send(2).unwrap();
    assert_eq!(out.recv().await.unwrap(), (ms(10), (-10, 1)));
    assert_eq!(out.recv().await.unwrap(), (ms(20), (0, 3)));
    assert_eq!(out.recv().await.unwrap(), (ms(30), (10, 2)));
    drop(tx);
    assert!(out.recv().await.is_none());
}

#[tokio::test]
async fn end_of_input_fires_every_open_window() {
    let events = vec![("a", 1), ("b", 2), ("a", 30)];
    // A 1 s bound: the watermark never reaches any window end before the input ends.
    let out = run_counts(events, WindowSpec::session(ms(5)), 1_000, 0).await;
    let mut results: Vec<_> = out.into_iter().map(|e| e.into_fired().unwrap()).collect();
    results.sort_by_key(|r| (r.key, r.window));
    let keys: Vec<_> = results.iter().map(|r| (r.key, r.window.start)).collect();
    assert_eq!(keys, [("a", 1), ("a", 30), ("b", 2)]);
}

#[tokio::test]
async fn upstream_error_delivers_fired_results_then_fails() {
    let items: Vec<Result<Timestamp, std::io::Error>> = vec![
        Ok(1),
        Ok(12),
        Ok(13),
        Err(std::io::Error::other("boom")),
        Ok(50),
    ];
    let mut seen = Vec::new();
    let result = Flow::from_try_stream(futures::stream::iter(items))
        .windowed(WindowSpec::tumbling(ms(10)))
        .event_time(|t| *t, Watermarks::monotonic())
        .aggregate(Count)
        .for_each(|event| seen.push(event))
        .await;
    let error = result.unwrap_err();
    assert!(error.downcast_ref::<std::io::Error>().is_some());
    // [0, 10) fired before the error; [10, 20) was open and is dropped.
    assert_eq!(seen, [fired((), 0, 10, 1, Firing::OnTime)]);
}

#[tokio::test]
async fn a_panic_in_the_key_function_fails_the_flow() {
    let result = Flow::iter([1i64, 2, 3])
        .windowed(WindowSpec::tumbling(ms(10)))
        .event_time(|t| *t, Watermarks::monotonic())
        .key_by(|t| {
            assert!(*t < 2, "bad key");
            *t
        })
        .aggregate(Count)
        .collect::<Vec<_>>()
        .await;
    assert!(matches!(result, Err(Error::Panicked { message }) if message.contains("bad key")));
}

#[tokio::test]
async fn a_panic_in_the_timestamp_function_fails_the_flow() {
    let result = Flow::iter([1i64, 2, 3])
        .windowed(WindowSpec::sliding(ms(10), ms(5)))
        .event_time(
            |t| if *t == 3 { panic!("bad timestamp") } else { *t },
            Watermarks::monotonic(),
        )
        .aggregate(Count)
        .collect::<Vec<_>>()
        .await;
    assert!(
        matches!(result, Err(Error::Panicked { message }) if message.contains("bad timestamp"))
    );
}

#[tokio::test]
async fn upstream_is_not_pulled_while_results_wait() {
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = pulled.clone();
    let mut out = Flow::iter(0..1_000i64)
        .inspect(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .windowed(WindowSpec::tumbling(ms(10)))
        .event_time(|t| *t, Watermarks::monotonic())
        .aggregate(Count)
        .into_stream();
    assert_eq!(
        out.next().await.unwrap().unwrap(),
        fired((), 0, 10, 10, Firing::OnTime)
    );
    // The event at 10 moved the watermark to 9 and fired [0, 10): nothing more was pulled.
    assert_eq!(pulled.load(Ordering::Relaxed), 11);
}

#[tokio::test]
async fn ready_made_aggregators() {
    let events = [3i64, 1, 4, 1, 5, 9, 2, 6];
    let run = |events: [i64; 8]| {
        Flow::iter(events)
            .windowed(WindowSpec::count(8))
            .aggregate((
                (Min::of(|n: &i64| *n), Max::of(|n: &i64| *n)),
                fold(
                    Vec::new,
                    |acc: &mut Vec<i64>, n: &i64| acc.push(*n * 10),
                    |into, other| into.extend_from_slice(other),
                ),
            ))
            .filter_map(WindowEvent::into_fired)
            .map(|r| r.value)
            .collect::<Vec<_>>()
    };
    let values = run(events).await.unwrap();
    assert_eq!(
        values,
        [((Some(1), Some(9)), vec![30, 10, 40, 10, 50, 90, 20, 60])]
    );
}

#[tokio::test]
async fn a_window_result_reports_its_range() {
    let w = window(10, 20);
    assert_eq!(w.max_timestamp(), 19);
    assert!(w.contains(10) && w.contains(19) && !w.contains(20));
}

#[test]
fn processing_time_without_a_runtime_fails_with_no_runtime() {
    let stream = futures::stream::iter([1u8]).chain(futures::stream::pending());
    let result = futures::executor::block_on(
        Flow::from_stream(stream)
            .windowed(WindowSpec::tumbling(ms(10)))
            .aggregate(Count)
            .collect::<Vec<_>>(),
    );
    assert!(matches!(result, Err(Error::NoRuntime)));
}
