//! The `EventStore` conformance suite: one generic test module, instantiated once per
//! backend (`tests/conformance_memory.rs`, `tests/conformance_sqlite.rs`,
//! `tests/conformance_postgres.rs`).
//!
//! Every case is an `async fn case<S: EventStore>(store: S)` (or takes a [`Fixture`] when
//! it needs a second handle on the same storage) in one of the topic modules below, and
//! asserts exact values: versions, positions, ids, payloads, metadata, timestamps. The
//! [`MemoryStore`](flowbed_eventsourcing::memory::MemoryStore) is the reference: where the
//! trait docs leave something open, the cases pin its behaviour.
//!
//! [`conformance_cases!`] expands to one `#[tokio::test]` per case, each on a fresh, empty
//! store made by the backend's factory, so a backend file is a few lines and reports
//! per-case results.

#![allow(dead_code)]

pub(crate) mod append;
pub(crate) mod checkpoints;
pub(crate) mod concurrency;
pub(crate) mod deletion;
pub(crate) mod expected_version;
pub(crate) mod handles;
pub(crate) mod idempotency;
pub(crate) mod metadata;
pub(crate) mod read_all;
pub(crate) mod read_stream;
pub(crate) mod repository;
pub(crate) mod snapshots;
pub(crate) mod subscriptions;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flowbed_eventsourcing::{
    AppendError, AppendResult, Direction, EventData, EventStore, ExpectedVersion, Position,
    RecordedEvent,
};

/// A boxed, sendable future (what a [`Fixture`]'s opener returns).
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How long one case may run before it counts as hung (a guard, not a timing assertion).
pub(crate) const CASE_LIMIT: Duration = Duration::from_secs(300);

/// How long a live wait (a subscription waiting for a commit, a task finishing) may take
/// before the case fails as hung.
pub(crate) const LIVE_WAIT: Duration = Duration::from_secs(60);

/// A fresh, empty store for one case, plus what it needs: a way to open another handle on
/// the same storage, whatever must outlive the store (a temporary directory), and the
/// cleanup to run when the case passed (dropping a PostgreSQL schema).
pub(crate) struct Fixture<S: EventStore> {
    store: Option<S>,
    open: Arc<dyn Fn() -> BoxFuture<S> + Send + Sync>,
    cleanup: Option<BoxFuture<()>>,
    keep: Vec<Box<dyn Any + Send + Sync>>,
}

impl<S: EventStore> fmt::Debug for Fixture<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("open", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: EventStore> Fixture<S> {
    /// A fixture around `store`; `open` opens another, independent handle on the same
    /// storage (for the memory store, a clone).
    pub(crate) fn new(
        store: S,
        open: impl Fn() -> BoxFuture<S> + Send + Sync + 'static,
    ) -> Fixture<S> {
        Fixture {
            store: Some(store),
            open: Arc::new(open),
            cleanup: None,
            keep: Vec::new(),
        }
    }

    /// Keeps `guard` alive until the fixture is dropped (after every handle).
    pub(crate) fn keep(mut self, guard: impl Any + Send + Sync) -> Fixture<S> {
        self.keep.push(Box::new(guard));
        self
    }

    /// Runs `cleanup` after a case passed (a failed case leaves its storage to inspect).
    pub(crate) fn on_success(mut self, cleanup: impl Future<Output = ()> + Send + 'static) -> Self {
        self.cleanup = Some(Box::pin(cleanup));
        self
    }

    /// A handle on the case's store.
    ///
    /// # Panics
    ///
    /// After [`close`](Fixture::close).
    pub(crate) fn store(&self) -> S {
        self.store
            .clone()
            .expect("the fixture's store was closed by the case")
    }

    /// Drops the fixture's own handle (a case that wants to reopen drops its clones too).
    pub(crate) fn close(&mut self) {
        self.store = None;
    }

    /// Opens another handle on the same storage (a second `open`/`connect`).
    pub(crate) async fn open_another(&self) -> S {
        (self.open)().await
    }

    /// Drops every handle, then runs the cleanup.
    pub(crate) async fn finish(mut self) {
        self.store = None;
        if let Some(cleanup) = self.cleanup.take() {
            cleanup.await;
        }
    }
}

/// Expands to one `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` per
/// conformance case, each on a fresh store from `$factory`, an
/// `async fn(case: &'static str) -> Fixture<S>` in scope where the macro is called.
macro_rules! conformance_cases {
    (@topics $factory:path; $(
        $topic:ident {
            store: [$($(#[$store_attr:meta])* $store_case:ident),* $(,)?],
            fixture: [$($(#[$fixture_attr:meta])* $fixture_case:ident),* $(,)?],
        }
    )*) => {
        $(
            mod $topic {
                #[allow(unused_imports)]
                use super::*;

                $(
                    $(#[$store_attr])*
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $store_case() {
                        let fixture =
                            $factory(concat!(stringify!($topic), "_", stringify!($store_case)))
                                .await;
                        let case = $crate::conformance::$topic::$store_case(fixture.store());
                        $crate::conformance::bounded(case).await;
                        fixture.finish().await;
                    }
                )*

                $(
                    $(#[$fixture_attr])*
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $fixture_case() {
                        let mut fixture =
                            $factory(concat!(stringify!($topic), "_", stringify!($fixture_case)))
                                .await;
                        let case = $crate::conformance::$topic::$fixture_case(&mut fixture);
                        $crate::conformance::bounded(case).await;
                        fixture.finish().await;
                    }
                )*
            }
        )*
    };
    ($factory:path) => {
        $crate::conformance::conformance_cases!(@topics $factory;
            append {
                store: [
                    first_append_numbers_from_one,
                    appends_continue_numbering_across_streams,
                    recorded_event_round_trips_every_field,
                    recorded_at_round_trips_at_microsecond_precision,
                    recorded_at_is_one_instant_per_batch,
                    empty_append_to_new_stream_checks_version_only,
                    empty_append_to_existing_stream_checks_version_only,
                    empty_stream_id_rejected,
                    duplicate_id_in_batch_rejected,
                    duplicate_id_checked_before_expected_version,
                    schema_version_full_range,
                    empty_payload_round_trips,
                    binary_payload_round_trips,
                    large_payloads_round_trip,
                    unicode_stream_ids_and_event_types,
                    special_character_stream_ids,
                    similar_stream_ids_are_distinct,
                    large_batch_numbered_densely,
                ],
                fixture: [],
            }
            expected_version {
                store: [
                    new_stream_any_accepted,
                    new_stream_no_stream_accepted,
                    new_stream_stream_exists_rejected,
                    new_stream_exact_zero_accepted,
                    new_stream_exact_nonzero_rejected,
                    existing_stream_any_accepted,
                    existing_stream_no_stream_rejected,
                    existing_stream_stream_exists_accepted,
                    existing_stream_exact_current_accepted,
                    existing_stream_exact_stale_rejected,
                    existing_stream_exact_ahead_rejected,
                    exact_u64_max_rejected,
                    exact_after_many_appends,
                    wrong_expected_version_writes_nothing,
                    expectation_is_per_stream,
                ],
                fixture: [],
            }
            idempotency {
                store: [
                    same_batch_reappended_is_deduplicated,
                    reappend_ignores_expected_version,
                    reappend_after_many_other_appends,
                    reappend_with_other_payload_keeps_original,
                    reappend_after_soft_delete,
                    reappend_after_truncate,
                    superset_conflicts,
                    fresh_then_stored_conflicts,
                    non_consecutive_subset_conflicts,
                    consecutive_part_of_batch_deduplicates,
                    adjacent_batches_combined_deduplicate,
                    other_order_conflicts,
                    other_stream_conflicts,
                    conflict_writes_nothing,
                    concurrent_same_batch_stored_once,
                ],
                fixture: [],
            }
            read_stream {
                store: [
                    forward_from_start,
                    forward_from_middle,
                    forward_from_last,
                    forward_beyond_end_is_empty,
                    backward_from_end,
                    backward_from_middle,
                    backward_from_u64_max_starts_at_newest,
                    backward_beyond_end_starts_at_newest,
                    backward_from_zero_is_empty,
                    max_limits_both_directions,
                    paging_forward_and_backward,
                    missing_stream_reads_empty,
                    only_its_own_stream,
                    read_stream_matches_read_all,
                ],
                fixture: [],
            }
            read_all {
                store: [
                    empty_store,
                    from_start_in_commit_order,
                    from_middle,
                    from_head_and_beyond_is_empty,
                    max_limits,
                    max_usize_max_reads_everything,
                    paging_covers_everything_once,
                    head_and_stream_version_track_appends,
                    watch_head_announces_commits,
                ],
                fixture: [],
            }
            metadata {
                store: [
                    default_for_unknown_stream,
                    set_and_load_round_trip,
                    set_replaces_everything,
                    custom_json_round_trips_exactly,
                    metadata_without_events_creates_no_events,
                    truncate_before_hides_from_read_stream_only,
                    truncate_before_zero_and_one_hide_nothing,
                    truncate_beyond_version_hides_until_reached,
                    deleted_flag_set_directly_hides_stream,
                    event_metadata_round_trips,
                ],
                fixture: [],
            }
            deletion {
                store: [
                    soft_delete_hides_stream_keeps_log,
                    delete_sets_metadata_and_keeps_custom,
                    deleted_stream_rejects_no_stream,
                    deleted_stream_accepts_exact_and_continues,
                    deleted_stream_accepts_any_and_stream_exists,
                    delete_with_wrong_expected_version_changes_nothing,
                    delete_missing_stream,
                    delete_twice,
                ],
                fixture: [],
            }
            snapshots {
                store: [
                    missing_snapshot_is_none,
                    save_and_load_round_trip,
                    newer_snapshot_replaces,
                    older_snapshot_ignored,
                    same_version_snapshot_replaces,
                    snapshots_are_per_stream,
                    large_snapshot_round_trips,
                    nul_in_stream_id_is_refused,
                ],
                fixture: [],
            }
            checkpoints {
                store: [
                    unknown_checkpoint_is_none,
                    save_and_load,
                    overwrite_moves_both_ways,
                    checkpoints_are_per_subscriber,
                    nul_in_subscriber_is_refused,
                ],
                fixture: [],
            }
            subscriptions {
                store: [
                    catch_up_delivers_history_in_order,
                    appends_between_batches_no_gap_no_duplicate,
                    catch_up_then_live_switch,
                    all_from_middle,
                    stream_subscription_sees_only_its_stream,
                    stream_subscription_after_version,
                    resume_from_checkpoint,
                    into_stream_yields_same_sequence,
                    live_with_concurrent_writers_exactly_once,
                ],
                fixture: [],
            }
            concurrency {
                store: [
                    exact_appenders_one_winner_per_version,
                    appenders_on_different_streams_all_succeed,
                    any_appenders_on_one_stream_dense_versions,
                    readers_never_see_gaps_while_writers_commit,
                ],
                fixture: [],
            }
            repository {
                store: [
                    execute_appends_and_loads,
                    rejected_command_appends_nothing,
                    conflict_without_retry,
                    retry_rereads_tail,
                    retry_gives_up_after_max_retries,
                    snapshot_policy_saves_snapshots,
                    load_starts_from_snapshot,
                    stale_snapshot_schema_ignored,
                    upcaster_applied_on_load,
                    missing_upcaster_is_decode_error,
                    upcasters_on_subscription_path,
                    metadata_on_command_events,
                    concurrent_commands_with_retry,
                ],
                fixture: [],
            }
            handles {
                store: [],
                fixture: [
                    reopened_store_keeps_everything,
                    two_handles_share_one_log,
                    subscription_on_another_handle_sees_commits,
                ],
            }
        );
    };
}

pub(crate) use conformance_cases;

/// Runs a case, failing it (instead of hanging the test binary) after [`CASE_LIMIT`].
pub(crate) async fn bounded(case: impl Future<Output = ()>) {
    if tokio::time::timeout(CASE_LIMIT, case).await.is_err() {
        panic!("the case did not finish within {CASE_LIMIT:?}: it hangs");
    }
}

/// Awaits `future`, failing the case with `what` if it takes longer than [`LIVE_WAIT`].
pub(crate) async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(LIVE_WAIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: nothing happened within {LIVE_WAIT:?}"),
    }
}

/// A JSON payload unique to `(tag, n)`.
pub(crate) fn payload(tag: &str, n: usize) -> Vec<u8> {
    format!(r#"{{"tag":"{tag}","n":{n}}}"#).into_bytes()
}

/// One event of type `event_type` with a payload unique to `(tag, n)`.
pub(crate) fn event(event_type: &str, tag: &str, n: usize) -> EventData {
    EventData::new(event_type, payload(tag, n))
}

/// `count` events of type `"Numbered"`, payloads `(tag, 0..count)`.
pub(crate) fn numbered(tag: &str, count: usize) -> Vec<EventData> {
    (0..count).map(|n| event("Numbered", tag, n)).collect()
}

/// Appends and fails the case (with the store's error) if the append fails.
pub(crate) async fn append_ok<S: EventStore>(
    store: &S,
    stream: &str,
    expected: ExpectedVersion,
    events: Vec<EventData>,
) -> AppendResult {
    match store.append(stream, expected, events).await {
        Ok(result) => result,
        Err(error) => panic!("append to {stream:?} expecting {expected:?} failed: {error}"),
    }
}

/// Appends `count` numbered events to `stream` one append each, with `Any`.
pub(crate) async fn append_singles<S: EventStore>(
    store: &S,
    stream: &str,
    tag: &str,
    count: usize,
) -> Vec<EventData> {
    let events = numbered(tag, count);
    for event in &events {
        append_ok(store, stream, ExpectedVersion::Any, vec![event.clone()]).await;
    }
    events
}

/// Appends `count` events of type `event_type`, payloads `(tag, 0..count)`, one append
/// each with `Any`, taking `streams` in turn (event `n` goes to `streams[n % len]`).
pub(crate) async fn append_alternating<S: EventStore>(
    store: &S,
    streams: &[&str],
    event_type: &str,
    tag: &str,
    count: usize,
) {
    for n in 0..count {
        let stream = streams[n % streams.len()];
        append_ok(
            store,
            stream,
            ExpectedVersion::Any,
            vec![event(event_type, tag, n)],
        )
        .await;
    }
}

/// The result a successful, fresh append must return.
pub(crate) fn appended(version: u64, position: u64) -> AppendResult {
    AppendResult {
        version,
        position: Some(Position(position)),
        deduplicated: false,
    }
}

/// The result a deduplicated re-append must return (the original's version and position).
pub(crate) fn deduplicated(version: u64, position: u64) -> AppendResult {
    AppendResult {
        version,
        position: Some(Position(position)),
        deduplicated: true,
    }
}

/// Checks that `recorded` is `data` stored in `stream` at `version` and `position`.
#[track_caller]
pub(crate) fn assert_recorded(
    recorded: &RecordedEvent,
    data: &EventData,
    stream: &str,
    version: u64,
    position: u64,
) {
    assert_eq!(recorded.id, data.id, "id of {stream}@{version}");
    assert_eq!(recorded.stream_id, stream, "stream of event {}", data.id);
    assert_eq!(recorded.version, version, "version of event {}", data.id);
    assert_eq!(
        recorded.position,
        Position(position),
        "position of event {}",
        data.id
    );
    assert_eq!(
        recorded.event_type, data.event_type,
        "type of event {}",
        data.id
    );
    assert_eq!(
        recorded.schema_version, data.schema_version,
        "schema version of event {}",
        data.id
    );
    assert!(
        recorded.payload == data.payload,
        "payload of event {} differs: stored {} bytes, appended {} bytes",
        data.id,
        recorded.payload.len(),
        data.payload.len()
    );
    assert_eq!(
        recorded.metadata, data.metadata,
        "metadata of event {}",
        data.id
    );
    assert_micros(recorded.recorded_at);
}

/// Checks that a timestamp has microsecond precision (what every backend stores).
#[track_caller]
pub(crate) fn assert_micros(time: SystemTime) {
    let since = time
        .duration_since(UNIX_EPOCH)
        .expect("recorded_at is after the Unix epoch");
    assert_eq!(
        since.subsec_nanos() % 1_000,
        0,
        "recorded_at {since:?} has sub-microsecond digits"
    );
}

/// `time` truncated to whole microseconds.
pub(crate) fn floor_micros(time: SystemTime) -> SystemTime {
    let since = time
        .duration_since(UNIX_EPOCH)
        .expect("after the Unix epoch");
    UNIX_EPOCH + Duration::from_micros(since.as_micros() as u64)
}

/// The ids of `events`, in order.
pub(crate) fn ids_of(events: &[RecordedEvent]) -> Vec<flowbed_eventsourcing::EventId> {
    events.iter().map(|event| event.id).collect()
}

/// The ids of appended `events`, in order.
pub(crate) fn data_ids(events: &[EventData]) -> Vec<flowbed_eventsourcing::EventId> {
    events.iter().map(|event| event.id).collect()
}

/// The whole global log, read in pages of 100.
pub(crate) async fn all_events<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    loop {
        let after = events
            .last()
            .map_or(Position::START, |event| event.position);
        let page = store
            .read_all(after, 100)
            .await
            .unwrap_or_else(|error| panic!("read_all after {after} failed: {error}"));
        if page.is_empty() {
            return events;
        }
        // A store that does not move forward would loop here forever.
        assert!(
            page[0].position > after,
            "read_all after {after} returned position {}",
            page[0].position
        );
        events.extend(page);
    }
}

/// Every visible event of `stream`, forward, in pages of 100.
pub(crate) async fn stream_events<S: EventStore>(store: &S, stream: &str) -> Vec<RecordedEvent> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = events.last().map_or(0, |event| event.version + 1);
        let page = store
            .read_stream(stream, from, Direction::Forward, 100)
            .await
            .unwrap_or_else(|error| panic!("read_stream {stream:?} from {from} failed: {error}"));
        if page.is_empty() {
            return events;
        }
        // A store that does not move forward would loop here forever.
        assert!(
            page[0].version >= from,
            "read_stream {stream:?} forward from {from} returned version {}",
            page[0].version
        );
        events.extend(page);
    }
}

/// Reads `stream` and fails the case on an error.
pub(crate) async fn read_stream<S: EventStore>(
    store: &S,
    stream: &str,
    from: u64,
    direction: Direction,
    max: usize,
) -> Vec<RecordedEvent> {
    store
        .read_stream(stream, from, direction, max)
        .await
        .unwrap_or_else(|error| {
            panic!("read_stream {stream:?} from {from} {direction:?} max {max} failed: {error}")
        })
}

/// Reads the global log and fails the case on an error.
pub(crate) async fn read_all<S: EventStore>(
    store: &S,
    after: Position,
    max: usize,
) -> Vec<RecordedEvent> {
    store
        .read_all(after, max)
        .await
        .unwrap_or_else(|error| panic!("read_all after {after} max {max} failed: {error}"))
}

/// The stream's version, failing the case on an error.
pub(crate) async fn version_of<S: EventStore>(store: &S, stream: &str) -> u64 {
    store
        .stream_version(stream)
        .await
        .unwrap_or_else(|error| panic!("stream_version {stream:?} failed: {error}"))
}

/// The store's head, failing the case on an error.
pub(crate) async fn head_of<S: EventStore>(store: &S) -> Position {
    store
        .head()
        .await
        .unwrap_or_else(|error| panic!("head failed: {error}"))
}

/// The subscriber's stored checkpoint, failing the case on an error.
pub(crate) async fn checkpoint_of<S: EventStore>(store: &S, subscriber: &str) -> Option<Position> {
    store
        .load_checkpoint(subscriber)
        .await
        .unwrap_or_else(|error| panic!("load_checkpoint {subscriber:?} failed: {error}"))
}

/// Everything an append could change: the global log, the head and the listed streams'
/// versions and visible events (to check that a refused operation wrote nothing).
#[derive(Debug, PartialEq)]
pub(crate) struct Observed {
    log: Vec<RecordedEvent>,
    head: Position,
    streams: Vec<(String, u64, Vec<RecordedEvent>)>,
}

/// What the store holds now (see [`Observed`]).
pub(crate) async fn observe<S: EventStore>(store: &S, streams: &[&str]) -> Observed {
    let mut observed = Observed {
        log: all_events(store).await,
        head: head_of(store).await,
        streams: Vec::new(),
    };
    for stream in streams {
        observed.streams.push((
            (*stream).to_owned(),
            version_of(store, stream).await,
            stream_events(store, stream).await,
        ));
    }
    observed
}

/// Checks that `result` is a `WrongExpectedVersion` naming exactly this stream, expectation
/// and actual version.
#[track_caller]
pub(crate) fn assert_wrong_version<T: fmt::Debug>(
    result: Result<T, AppendError>,
    stream: &str,
    expected: ExpectedVersion,
    actual: u64,
) {
    match result {
        Err(AppendError::WrongExpectedVersion {
            stream: got_stream,
            expected: got_expected,
            actual: got_actual,
        }) => assert_eq!(
            (got_stream.as_str(), got_expected, got_actual),
            (stream, expected, actual),
            "WrongExpectedVersion fields"
        ),
        other => panic!(
            "expected WrongExpectedVersion {{ stream: {stream:?}, expected: {expected:?}, \
             actual: {actual} }}, got {other:?}"
        ),
    }
}

/// Checks that `result` is an `IdempotencyConflict` naming this stream and event id.
#[track_caller]
pub(crate) fn assert_idempotency_conflict<T: fmt::Debug>(
    result: Result<T, AppendError>,
    stream: &str,
    event_id: flowbed_eventsourcing::EventId,
) {
    match result {
        Err(AppendError::IdempotencyConflict {
            stream: got_stream,
            event_id: got_id,
        }) => assert_eq!(
            (got_stream.as_str(), got_id),
            (stream, event_id),
            "IdempotencyConflict fields"
        ),
        other => panic!(
            "expected IdempotencyConflict {{ stream: {stream:?}, event_id: {event_id} }}, got \
             {other:?}"
        ),
    }
}
