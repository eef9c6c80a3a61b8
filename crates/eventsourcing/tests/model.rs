//! Model-based property test (issue 9, "random appends/reads against a reference model"):
//! random sequences of appends (every kind of expected version, fresh batches, exact
//! replays, partial overlaps, cross-batch runs, reordered and empty batches, an id twice in
//! one batch), stream deletes, metadata writes, snapshots, checkpoints and reads, run
//! against a store and against a naive sequential model written here from the documented
//! rules (not from `src/memory.rs`). Every result must agree: `Ok` values exactly (events
//! field by field; `recorded_at` must read back the same every time an event is read), and
//! errors by kind and the fields that say what happened.
//!
//! Instantiated for [`MemoryStore`] (256 cases), [`SqliteStore`] (feature `sqlite`, a fresh
//! temporary file per case) and [`PostgresStore`] (feature `postgres`, a fresh schema per
//! case on the server at `FLOWBED_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; an unreachable server fails the test).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use flowbed_eventsourcing::memory::MemoryStore;
use flowbed_eventsourcing::{
    AppendError, AppendResult, Direction, EventData, EventId, EventStore, ExpectedVersion,
    Metadata, Position, RecordedEvent, Snapshot, StreamMetadata,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Operations (abstract: indices and choices resolved against the model when they run, so
// shrinking keeps them meaningful).
// ---------------------------------------------------------------------------------------

/// The streams operations pick from (the empty id is invalid for writes).
const STREAMS: [&str; 4] = ["acct-1", "acct-2", "o'neil-ü \"q\"", ""];
const EVENT_TYPES: [&str; 4] = ["Opened", "Deposited", "Ünïcode ✓", "it's"];
const SUBSCRIBERS: [&str; 2] = ["projection", "réplica"];

#[derive(Clone, Debug)]
enum Expect {
    Any,
    NoStream,
    StreamExists,
    /// `Exact` with the stream's current version.
    Right,
    /// `Exact` off by `delta`, above or below the current version.
    Wrong {
        delta: u64,
        above: bool,
    },
    /// `Exact` with a fixed number.
    Raw(u64),
}

#[derive(Clone, Debug)]
struct FreshEvent {
    event_type: usize,
    schema_version: u32,
    metadata: bool,
    binary_payload: bool,
}

#[derive(Clone, Debug)]
enum Batch {
    /// New ids (possibly none: an empty append).
    Fresh(Vec<FreshEvent>),
    /// An earlier batch exactly as it was sent (stored or refused back then).
    Replay { pick: usize },
    /// A slice of an earlier batch.
    Slice {
        pick: usize,
        start: usize,
        len: usize,
    },
    /// A slice of an earlier batch followed by new events.
    Overlap {
        pick: usize,
        keep: usize,
        fresh: Vec<FreshEvent>,
    },
    /// An earlier batch in reverse order.
    Reversed { pick: usize },
    /// A run of consecutive stored events of a stream (may span several batches).
    StoredRun {
        stream: usize,
        start: usize,
        len: usize,
    },
    /// New events, one id twice.
    DuplicateId(Vec<FreshEvent>),
}

#[derive(Clone, Debug)]
enum FromSpec {
    Raw(u64),
    /// The stream's version plus this.
    Last(u64),
    Max,
}

#[derive(Clone, Debug)]
enum After {
    Raw(u64),
    /// The head plus this.
    Head(u64),
    /// The head minus this.
    BeforeHead(u64),
    Max,
}

#[derive(Clone, Debug)]
enum Truncate {
    Raw(u64),
    /// The stream's version plus this.
    Version(u64),
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        stream: usize,
        expect: Expect,
        batch: Batch,
    },
    Delete {
        stream: usize,
        expect: Expect,
    },
    SetMetadata {
        stream: usize,
        truncate: Truncate,
        deleted: bool,
        custom: Option<u8>,
    },
    ReadStream {
        stream: usize,
        from: FromSpec,
        backward: bool,
        max: usize,
    },
    ReadAll {
        after: After,
        max: usize,
    },
    StreamVersion {
        stream: usize,
    },
    Head,
    StreamMetadata {
        stream: usize,
    },
    SaveSnapshot {
        stream: usize,
        version: u64,
        schema_version: u32,
        state: u8,
    },
    LoadSnapshot {
        stream: usize,
    },
    SaveCheckpoint {
        subscriber: usize,
        position: u64,
    },
    LoadCheckpoint {
        subscriber: usize,
    },
}

fn stream_index() -> impl Strategy<Value = usize> {
    prop_oneof![4 => Just(0usize), 3 => Just(1usize), 2 => Just(2usize), 1 => Just(3usize)]
}

fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![
        3 => Just(Expect::Any),
        1 => Just(Expect::NoStream),
        1 => Just(Expect::StreamExists),
        4 => Just(Expect::Right),
        2 => (1u64..3, any::<bool>()).prop_map(|(delta, above)| Expect::Wrong { delta, above }),
        1 => (0u64..4).prop_map(Expect::Raw),
    ]
}

fn fresh_event() -> impl Strategy<Value = FreshEvent> {
    (
        0..EVENT_TYPES.len(),
        1u32..4,
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(event_type, schema_version, metadata, binary_payload)| FreshEvent {
                event_type,
                schema_version,
                metadata,
                binary_payload,
            },
        )
}

fn batch() -> impl Strategy<Value = Batch> {
    let pick = any::<usize>();
    prop_oneof![
        8 => prop::collection::vec(fresh_event(), 1..5).prop_map(Batch::Fresh),
        1 => Just(Batch::Fresh(Vec::new())),
        3 => pick.prop_map(|pick| Batch::Replay { pick }),
        1 => (pick, 0usize..4, 1usize..4)
            .prop_map(|(pick, start, len)| Batch::Slice { pick, start, len }),
        1 => (pick, 1usize..4, prop::collection::vec(fresh_event(), 1..3))
            .prop_map(|(pick, keep, fresh)| Batch::Overlap { pick, keep, fresh }),
        1 => pick.prop_map(|pick| Batch::Reversed { pick }),
        1 => (stream_index(), 0usize..8, 1usize..5)
            .prop_map(|(stream, start, len)| Batch::StoredRun { stream, start, len }),
        1 => prop::collection::vec(fresh_event(), 1..4).prop_map(Batch::DuplicateId),
    ]
}

fn max() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0usize..5, 2 => Just(100usize), 1 => Just(usize::MAX)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (stream_index(), expect(), batch())
            .prop_map(|(stream, expect, batch)| Op::Append { stream, expect, batch }),
        2 => (stream_index(), expect()).prop_map(|(stream, expect)| Op::Delete { stream, expect }),
        2 => (
            stream_index(),
            prop_oneof![(0u64..6).prop_map(Truncate::Raw), (0u64..3).prop_map(Truncate::Version)],
            prop::bool::weighted(0.2),
            prop::option::of(any::<u8>()),
        )
            .prop_map(|(stream, truncate, deleted, custom)| Op::SetMetadata {
                stream,
                truncate,
                deleted,
                custom,
            }),
        5 => (
            stream_index(),
            prop_oneof![
                3 => (0u64..8).prop_map(FromSpec::Raw),
                2 => (0u64..3).prop_map(FromSpec::Last),
                1 => Just(FromSpec::Max),
            ],
            any::<bool>(),
            max(),
        )
            .prop_map(|(stream, from, backward, max)| Op::ReadStream {
                stream,
                from,
                backward,
                max,
            }),
        4 => (
            prop_oneof![
                3 => (0u64..10).prop_map(After::Raw),
                1 => (0u64..3).prop_map(After::Head),
                2 => (0u64..4).prop_map(After::BeforeHead),
                1 => Just(After::Max),
            ],
            max(),
        )
            .prop_map(|(after, max)| Op::ReadAll { after, max }),
        1 => stream_index().prop_map(|stream| Op::StreamVersion { stream }),
        1 => Just(Op::Head),
        1 => stream_index().prop_map(|stream| Op::StreamMetadata { stream }),
        1 => (stream_index(), 0u64..6, 1u32..3, any::<u8>()).prop_map(
            |(stream, version, schema_version, state)| Op::SaveSnapshot {
                stream,
                version,
                schema_version,
                state,
            }
        ),
        1 => stream_index().prop_map(|stream| Op::LoadSnapshot { stream }),
        1 => (0..SUBSCRIBERS.len(), 0u64..20)
            .prop_map(|(subscriber, position)| Op::SaveCheckpoint { subscriber, position }),
        1 => (0..SUBSCRIBERS.len()).prop_map(|subscriber| Op::LoadCheckpoint { subscriber }),
    ]
}

fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..max_len)
}

// ---------------------------------------------------------------------------------------
// Results, comparable between the model and a store.
// ---------------------------------------------------------------------------------------

/// An append error, with the fields that say what happened.
#[derive(Clone, Debug, PartialEq)]
enum AppendFailure {
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        actual: u64,
    },
    IdempotencyConflict {
        stream: String,
        event_id: EventId,
    },
    DuplicateEventInBatch {
        event_id: EventId,
    },
    EmptyStreamId,
    /// Anything else (never produced by the model, so it always shows as a mismatch).
    Other(String),
}

impl std::convert::From<AppendError> for AppendFailure {
    fn from(error: AppendError) -> AppendFailure {
        match error {
            AppendError::WrongExpectedVersion {
                stream,
                expected,
                actual,
            } => AppendFailure::WrongExpectedVersion {
                stream,
                expected,
                actual,
            },
            AppendError::IdempotencyConflict { stream, event_id } => {
                AppendFailure::IdempotencyConflict { stream, event_id }
            }
            AppendError::DuplicateEventInBatch { event_id } => {
                AppendFailure::DuplicateEventInBatch { event_id }
            }
            AppendError::EmptyStreamId => AppendFailure::EmptyStreamId,
            other => AppendFailure::Other(format!("{other:?}")),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    Append(Result<AppendResult, AppendFailure>),
    Written(Result<(), AppendFailure>),
    /// Events with `recorded_at` set to the epoch (checked separately for stability).
    Events(Vec<RecordedEvent>),
    Version(u64),
    Head(Position),
    Metadata(StreamMetadata),
    Snapshot(Option<Snapshot>),
    Checkpoint(Option<Position>),
    Stored,
    /// A read or snapshot/checkpoint call failed (never produced by the model).
    StoreFailed(String),
}

// ---------------------------------------------------------------------------------------
// The reference model: plain vectors and maps, one operation at a time.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct ModelEvent {
    data: EventData,
    stream: String,
    version: u64,
}

#[derive(Debug, Default)]
struct ModelStream {
    /// Indexes into `Model::log` of this stream's events, in version order.
    events: Vec<usize>,
    metadata: StreamMetadata,
}

#[derive(Debug, Default)]
struct Model {
    /// The global log; position `p` is `log[p - 1]`.
    log: Vec<ModelEvent>,
    streams: BTreeMap<String, ModelStream>,
    /// Every stored id and its index in `log`.
    ids: HashMap<EventId, usize>,
    snapshots: BTreeMap<String, Snapshot>,
    checkpoints: BTreeMap<String, Position>,
}

impl Model {
    fn version(&self, stream: &str) -> u64 {
        self.streams
            .get(stream)
            .map_or(0, |s| s.events.len() as u64)
    }

    fn head(&self) -> Position {
        Position(self.log.len() as u64)
    }

    fn recorded(&self, index: usize) -> RecordedEvent {
        let event = &self.log[index];
        RecordedEvent {
            id: event.data.id,
            stream_id: event.stream.clone(),
            version: event.version,
            position: Position(index as u64 + 1),
            event_type: event.data.event_type.clone(),
            schema_version: event.data.schema_version,
            payload: event.data.payload.clone(),
            metadata: event.data.metadata.clone(),
            recorded_at: UNIX_EPOCH,
        }
    }

    fn expectation_met(expected: ExpectedVersion, current: u64) -> bool {
        match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::StreamExists => current != 0,
            ExpectedVersion::Exact(version) => version == current,
        }
    }

    fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        batch: &[EventData],
    ) -> Result<AppendResult, AppendFailure> {
        if stream.is_empty() {
            return Err(AppendFailure::EmptyStreamId);
        }
        // An id twice in the batch: the smallest such id is reported.
        let mut seen: BTreeMap<EventId, usize> = BTreeMap::new();
        for event in batch {
            *seen.entry(event.id).or_default() += 1;
        }
        if let Some((&event_id, _)) = seen.iter().find(|(_, count)| **count > 1) {
            return Err(AppendFailure::DuplicateEventInBatch { event_id });
        }
        // Idempotency: where does each id already live?
        let stored: Vec<Option<&ModelEvent>> = batch
            .iter()
            .map(|event| self.ids.get(&event.id).map(|&index| &self.log[index]))
            .collect();
        if stored.iter().any(Option::is_some) {
            // A replay only if every id sits in this stream, at consecutive versions, in
            // batch order; the first id that breaks that is reported.
            let first_version = match stored[0] {
                Some(event) if event.stream == stream => event.version,
                _ => {
                    return Err(AppendFailure::IdempotencyConflict {
                        stream: stream.to_owned(),
                        event_id: batch[0].id,
                    });
                }
            };
            for (offset, found) in stored.iter().enumerate() {
                let fits = matches!(found, Some(event)
                    if event.stream == stream && event.version == first_version + offset as u64);
                if !fits {
                    return Err(AppendFailure::IdempotencyConflict {
                        stream: stream.to_owned(),
                        event_id: batch[offset].id,
                    });
                }
            }
            let last = batch.last().expect("a replayed batch is not empty");
            return Ok(AppendResult {
                version: first_version + batch.len() as u64 - 1,
                position: Some(Position(self.ids[&last.id] as u64 + 1)),
                deduplicated: true,
            });
        }
        let current = self.version(stream);
        if !Self::expectation_met(expected, current) {
            return Err(AppendFailure::WrongExpectedVersion {
                stream: stream.to_owned(),
                expected,
                actual: current,
            });
        }
        if batch.is_empty() {
            return Ok(AppendResult {
                version: current,
                position: None,
                deduplicated: false,
            });
        }
        let entry = self.streams.entry(stream.to_owned()).or_default();
        entry.metadata.deleted = false;
        for event in batch {
            let index = self.log.len();
            entry.events.push(index);
            self.ids.insert(event.id, index);
            self.log.push(ModelEvent {
                data: event.clone(),
                stream: stream.to_owned(),
                version: entry.events.len() as u64,
            });
        }
        Ok(AppendResult {
            version: entry.events.len() as u64,
            position: Some(self.head()),
            deduplicated: false,
        })
    }

    fn delete(&mut self, stream: &str, expected: ExpectedVersion) -> Result<(), AppendFailure> {
        if stream.is_empty() {
            return Err(AppendFailure::EmptyStreamId);
        }
        let current = self.version(stream);
        if !Self::expectation_met(expected, current) {
            return Err(AppendFailure::WrongExpectedVersion {
                stream: stream.to_owned(),
                expected,
                actual: current,
            });
        }
        let entry = self.streams.entry(stream.to_owned()).or_default();
        entry.metadata.deleted = true;
        entry.metadata.truncate_before = current + 1;
        Ok(())
    }

    fn set_metadata(
        &mut self,
        stream: &str,
        metadata: StreamMetadata,
    ) -> Result<(), AppendFailure> {
        if stream.is_empty() {
            return Err(AppendFailure::EmptyStreamId);
        }
        self.streams.entry(stream.to_owned()).or_default().metadata = metadata;
        Ok(())
    }

    fn read_stream(
        &self,
        stream: &str,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Vec<RecordedEvent> {
        let Some(entry) = self.streams.get(stream) else {
            return Vec::new();
        };
        if entry.metadata.deleted {
            return Vec::new();
        }
        let visible = |version: u64| version >= 1 && version >= entry.metadata.truncate_before;
        let mut out = Vec::new();
        match direction {
            Direction::Forward => {
                for (index, &log_index) in entry.events.iter().enumerate() {
                    let version = index as u64 + 1;
                    if out.len() == max {
                        break;
                    }
                    if version >= from && visible(version) {
                        out.push(self.recorded(log_index));
                    }
                }
            }
            Direction::Backward => {
                for (index, &log_index) in entry.events.iter().enumerate().rev() {
                    let version = index as u64 + 1;
                    if out.len() == max {
                        break;
                    }
                    if version <= from && visible(version) {
                        out.push(self.recorded(log_index));
                    }
                }
            }
        }
        out
    }

    fn read_all(&self, after: Position, max: usize) -> Vec<RecordedEvent> {
        (0..self.log.len())
            .filter(|&index| index as u64 + 1 > after.0)
            .take(max)
            .map(|index| self.recorded(index))
            .collect()
    }

    fn save_snapshot(&mut self, snapshot: Snapshot) {
        let keep_stored = self
            .snapshots
            .get(&snapshot.stream_id)
            .is_some_and(|stored| stored.version > snapshot.version);
        if !keep_stored {
            self.snapshots.insert(snapshot.stream_id.clone(), snapshot);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Resolving abstract operations into concrete calls.
// ---------------------------------------------------------------------------------------

/// The concrete call an [`Op`] turns into.
#[derive(Clone, Debug)]
enum Call {
    Append(String, ExpectedVersion, Vec<EventData>),
    Delete(String, ExpectedVersion),
    SetMetadata(String, StreamMetadata),
    ReadStream(String, u64, Direction, usize),
    ReadAll(Position, usize),
    StreamVersion(String),
    Head,
    StreamMetadata(String),
    SaveSnapshot(Snapshot),
    LoadSnapshot(String),
    SaveCheckpoint(String, Position),
    LoadCheckpoint(String),
}

/// Turns operations into calls: fresh ids, and the earlier batches that replays reuse.
struct Resolver {
    next_id: u128,
    history: Vec<Vec<EventData>>,
}

impl Resolver {
    fn new() -> Resolver {
        Resolver {
            next_id: 1,
            history: Vec::new(),
        }
    }

    fn fresh(&mut self, spec: &FreshEvent) -> EventData {
        let n = self.next_id;
        self.next_id += 1;
        // Version-7-shaped ids, distinct per case.
        let id = EventId::from(Uuid::from_u128((0x0190_0000_0000_7000_8000_u128 << 48) | n));
        let payload = if spec.binary_payload {
            vec![0, 159, 146, 150, n as u8, b'\'']
        } else {
            format!(r#"{{"n":{n},"text":"it's ü"}}"#).into_bytes()
        };
        let metadata = if spec.metadata {
            Metadata::default()
                .correlation_id(Uuid::from_u128(n * 7))
                .caused_by(EventId::from(Uuid::from_u128(n * 11)))
                .with("tenant", "acme")
        } else {
            Metadata::default()
        };
        EventData::new(EVENT_TYPES[spec.event_type], payload)
            .with_id(id)
            .with_schema_version(spec.schema_version)
            .with_metadata(metadata)
    }

    fn earlier(&self, pick: usize) -> Option<&Vec<EventData>> {
        (!self.history.is_empty()).then(|| &self.history[pick % self.history.len()])
    }

    fn expected(model: &Model, stream: &str, expect: &Expect) -> ExpectedVersion {
        let current = model.version(stream);
        match *expect {
            Expect::Any => ExpectedVersion::Any,
            Expect::NoStream => ExpectedVersion::NoStream,
            Expect::StreamExists => ExpectedVersion::StreamExists,
            Expect::Right => ExpectedVersion::Exact(current),
            Expect::Wrong { delta, above: true } => ExpectedVersion::Exact(current + delta),
            Expect::Wrong {
                delta,
                above: false,
            } => ExpectedVersion::Exact(current.saturating_sub(delta)),
            Expect::Raw(version) => ExpectedVersion::Exact(version),
        }
    }

    fn batch(&mut self, model: &Model, batch: &Batch) -> Vec<EventData> {
        let fresh_batch = |resolver: &mut Resolver, specs: &[FreshEvent]| -> Vec<EventData> {
            specs.iter().map(|spec| resolver.fresh(spec)).collect()
        };
        let default_spec = [FreshEvent {
            event_type: 0,
            schema_version: 1,
            metadata: false,
            binary_payload: false,
        }];
        let events = match batch {
            Batch::Fresh(specs) => fresh_batch(self, specs),
            Batch::Replay { pick } => match self.earlier(*pick) {
                Some(earlier) => earlier.clone(),
                None => fresh_batch(self, &default_spec),
            },
            Batch::Slice { pick, start, len } => match self.earlier(*pick) {
                Some(earlier) => {
                    let start = start % earlier.len();
                    earlier[start..(start + len).min(earlier.len())].to_vec()
                }
                None => fresh_batch(self, &default_spec),
            },
            Batch::Overlap { pick, keep, fresh } => {
                let mut events = match self.earlier(*pick) {
                    Some(earlier) => earlier[..(*keep).min(earlier.len())].to_vec(),
                    None => Vec::new(),
                };
                events.extend(fresh_batch(self, fresh));
                events
            }
            Batch::Reversed { pick } => match self.earlier(*pick) {
                Some(earlier) => earlier.iter().rev().cloned().collect(),
                None => fresh_batch(self, &default_spec),
            },
            Batch::StoredRun { stream, start, len } => match model.streams.get(STREAMS[*stream]) {
                Some(entry) if !entry.events.is_empty() => {
                    let start = start % entry.events.len();
                    entry.events[start..(start + len).min(entry.events.len())]
                        .iter()
                        .map(|&index| model.log[index].data.clone())
                        .collect()
                }
                _ => fresh_batch(self, &default_spec),
            },
            Batch::DuplicateId(specs) => {
                let mut events = fresh_batch(self, specs);
                let twin = events[events.len() / 2].clone();
                events.push(twin);
                events
            }
        };
        if !events.is_empty() {
            self.history.push(events.clone());
        }
        events
    }

    fn resolve(&mut self, model: &Model, op: &Op) -> Call {
        let stream = |index: &usize| STREAMS[*index].to_owned();
        match op {
            Op::Append {
                stream: index,
                expect,
                batch,
            } => {
                let name = stream(index);
                let expected = Self::expected(model, &name, expect);
                Call::Append(name, expected, self.batch(model, batch))
            }
            Op::Delete {
                stream: index,
                expect,
            } => {
                let name = stream(index);
                let expected = Self::expected(model, &name, expect);
                Call::Delete(name, expected)
            }
            Op::SetMetadata {
                stream: index,
                truncate,
                deleted,
                custom,
            } => {
                let name = stream(index);
                let truncate_before = match *truncate {
                    Truncate::Raw(version) => version,
                    Truncate::Version(plus) => model.version(&name) + plus,
                };
                let custom = custom.map(|value| {
                    serde_json::json!({ "owner": format!("user-{value}"), "tags": [value, "ü"] })
                });
                Call::SetMetadata(
                    name,
                    StreamMetadata {
                        truncate_before,
                        deleted: *deleted,
                        custom,
                    },
                )
            }
            Op::ReadStream {
                stream: index,
                from,
                backward,
                max,
            } => {
                let name = stream(index);
                let from = match *from {
                    FromSpec::Raw(version) => version,
                    FromSpec::Last(plus) => model.version(&name) + plus,
                    FromSpec::Max => u64::MAX,
                };
                let direction = if *backward {
                    Direction::Backward
                } else {
                    Direction::Forward
                };
                Call::ReadStream(name, from, direction, *max)
            }
            Op::ReadAll { after, max } => {
                let head = model.head().0;
                let after = match *after {
                    After::Raw(position) => position,
                    After::Head(plus) => head + plus,
                    After::BeforeHead(minus) => head.saturating_sub(minus),
                    After::Max => u64::MAX,
                };
                Call::ReadAll(Position(after), *max)
            }
            Op::StreamVersion { stream: index } => Call::StreamVersion(stream(index)),
            Op::Head => Call::Head,
            Op::StreamMetadata { stream: index } => Call::StreamMetadata(stream(index)),
            Op::SaveSnapshot {
                stream: index,
                version,
                schema_version,
                state,
            } => Call::SaveSnapshot(Snapshot {
                stream_id: stream(index),
                version: *version,
                schema_version: *schema_version,
                state: format!(r#"{{"state":{state}}}"#).into_bytes(),
            }),
            Op::LoadSnapshot { stream: index } => Call::LoadSnapshot(stream(index)),
            Op::SaveCheckpoint {
                subscriber,
                position,
            } => Call::SaveCheckpoint(SUBSCRIBERS[*subscriber].to_owned(), Position(*position)),
            Op::LoadCheckpoint { subscriber } => {
                Call::LoadCheckpoint(SUBSCRIBERS[*subscriber].to_owned())
            }
        }
    }
}

impl Model {
    fn run(&mut self, call: &Call) -> Outcome {
        match call {
            Call::Append(stream, expected, events) => {
                Outcome::Append(self.append(stream, *expected, events))
            }
            Call::Delete(stream, expected) => Outcome::Written(self.delete(stream, *expected)),
            Call::SetMetadata(stream, metadata) => {
                Outcome::Written(self.set_metadata(stream, metadata.clone()))
            }
            Call::ReadStream(stream, from, direction, max) => {
                Outcome::Events(self.read_stream(stream, *from, *direction, *max))
            }
            Call::ReadAll(after, max) => Outcome::Events(self.read_all(*after, *max)),
            Call::StreamVersion(stream) => Outcome::Version(self.version(stream)),
            Call::Head => Outcome::Head(self.head()),
            Call::StreamMetadata(stream) => Outcome::Metadata(
                self.streams
                    .get(stream)
                    .map(|entry| entry.metadata.clone())
                    .unwrap_or_default(),
            ),
            Call::SaveSnapshot(snapshot) => {
                self.save_snapshot(snapshot.clone());
                Outcome::Stored
            }
            Call::LoadSnapshot(stream) => Outcome::Snapshot(self.snapshots.get(stream).cloned()),
            Call::SaveCheckpoint(subscriber, position) => {
                self.checkpoints.insert(subscriber.clone(), *position);
                Outcome::Stored
            }
            Call::LoadCheckpoint(subscriber) => {
                Outcome::Checkpoint(self.checkpoints.get(subscriber).copied())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running calls on a store.
// ---------------------------------------------------------------------------------------

/// The `recorded_at` each position read back first; every later read must agree.
#[derive(Default)]
struct RecordedAt(HashMap<Position, SystemTime>);

impl RecordedAt {
    /// Checks stability and blanks `recorded_at` so events compare with the model's.
    fn normalize(
        &mut self,
        events: Vec<RecordedEvent>,
    ) -> Result<Vec<RecordedEvent>, TestCaseError> {
        events
            .into_iter()
            .map(|mut event| {
                let first = *self.0.entry(event.position).or_insert(event.recorded_at);
                prop_assert_eq!(
                    first,
                    event.recorded_at,
                    "recorded_at of position {} changed between reads",
                    event.position
                );
                event.recorded_at = UNIX_EPOCH;
                Ok(event)
            })
            .collect()
    }
}

async fn run_on_store<S: EventStore>(
    store: &S,
    call: &Call,
    recorded_at: &mut RecordedAt,
) -> Result<Outcome, TestCaseError> {
    let store_failed =
        |error: flowbed_eventsourcing::StoreError| Outcome::StoreFailed(format!("{error:?}"));
    Ok(match call {
        Call::Append(stream, expected, events) => Outcome::Append(
            store
                .append(stream, *expected, events.clone())
                .await
                .map_err(AppendFailure::from),
        ),
        Call::Delete(stream, expected) => Outcome::Written(
            store
                .delete_stream(stream, *expected)
                .await
                .map_err(AppendFailure::from),
        ),
        Call::SetMetadata(stream, metadata) => Outcome::Written(
            store
                .set_stream_metadata(stream, metadata.clone())
                .await
                .map_err(AppendFailure::from),
        ),
        Call::ReadStream(stream, from, direction, max) => {
            match store.read_stream(stream, *from, *direction, *max).await {
                Ok(events) => Outcome::Events(recorded_at.normalize(events)?),
                Err(error) => store_failed(error),
            }
        }
        Call::ReadAll(after, max) => match store.read_all(*after, *max).await {
            Ok(events) => Outcome::Events(recorded_at.normalize(events)?),
            Err(error) => store_failed(error),
        },
        Call::StreamVersion(stream) => match store.stream_version(stream).await {
            Ok(version) => Outcome::Version(version),
            Err(error) => store_failed(error),
        },
        Call::Head => match store.head().await {
            Ok(head) => Outcome::Head(head),
            Err(error) => store_failed(error),
        },
        Call::StreamMetadata(stream) => match store.stream_metadata(stream).await {
            Ok(metadata) => Outcome::Metadata(metadata),
            Err(error) => store_failed(error),
        },
        Call::SaveSnapshot(snapshot) => match store.save_snapshot(snapshot.clone()).await {
            Ok(()) => Outcome::Stored,
            Err(error) => store_failed(error),
        },
        Call::LoadSnapshot(stream) => match store.load_snapshot(stream).await {
            Ok(snapshot) => Outcome::Snapshot(snapshot),
            Err(error) => store_failed(error),
        },
        Call::SaveCheckpoint(subscriber, position) => {
            match store.save_checkpoint(subscriber, *position).await {
                Ok(()) => Outcome::Stored,
                Err(error) => store_failed(error),
            }
        }
        Call::LoadCheckpoint(subscriber) => match store.load_checkpoint(subscriber).await {
            Ok(checkpoint) => Outcome::Checkpoint(checkpoint),
            Err(error) => store_failed(error),
        },
    })
}

/// Runs `ops` on `store` and on a fresh model, comparing every result, then compares the
/// whole store (global log, every stream, head, versions, metadata) with the model.
async fn check_against_model<S: EventStore>(store: &S, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let mut resolver = Resolver::new();
    let mut recorded_at = RecordedAt::default();
    for (step, op) in ops.iter().enumerate() {
        let call = resolver.resolve(&model, op);
        let expected = model.run(&call);
        let actual = run_on_store(store, &call, &mut recorded_at).await?;
        prop_assert_eq!(actual, expected, "step {}: {:?}", step, call);
    }
    // The final state, everything at once.
    let all = store
        .read_all(Position::START, usize::MAX)
        .await
        .map_err(|error| TestCaseError::fail(format!("final read_all: {error:?}")))?;
    prop_assert_eq!(
        recorded_at.normalize(all)?,
        model.read_all(Position::START, usize::MAX),
        "final global log"
    );
    prop_assert_eq!(store.head().await.ok(), Some(model.head()), "final head");
    for stream in STREAMS {
        let events = store
            .read_stream(stream, 0, Direction::Forward, usize::MAX)
            .await
            .map_err(|error| TestCaseError::fail(format!("final read_stream: {error:?}")))?;
        prop_assert_eq!(
            recorded_at.normalize(events)?,
            model.read_stream(stream, 0, Direction::Forward, usize::MAX),
            "final stream {:?}",
            stream
        );
        prop_assert_eq!(
            store.stream_version(stream).await.ok(),
            Some(model.version(stream)),
            "final version of {:?}",
            stream
        );
        prop_assert_eq!(
            store.stream_metadata(stream).await.ok(),
            Some(
                model
                    .streams
                    .get(stream)
                    .map(|entry| entry.metadata.clone())
                    .unwrap_or_default()
            ),
            "final metadata of {:?}",
            stream
        );
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs `body` on a fresh current-thread runtime (one per case).
fn block_on<F: Future>(body: F) -> F::Output {
    runtime().block_on(body)
}

// ---------------------------------------------------------------------------------------
// The model checks itself on a few hand-written cases (so a wrong model cannot make the
// property vacuous), then each backend.
// ---------------------------------------------------------------------------------------

#[test]
fn the_model_follows_the_documented_rules() {
    let mut model = Model::default();
    let event = |n: u128| EventData::new("E", vec![]).with_id(EventId::from(Uuid::from_u128(n)));
    let (a, b, c) = (event(1), event(2), event(3));
    let first = model.append("s", ExpectedVersion::NoStream, &[a.clone(), b.clone()]);
    assert_eq!(
        first,
        Ok(AppendResult {
            version: 2,
            position: Some(Position(2)),
            deduplicated: false
        })
    );
    // An exact replay and a replay of a consecutive part succeed without writing.
    let replay = model.append("s", ExpectedVersion::NoStream, &[a.clone(), b.clone()]);
    assert_eq!(replay.map(|r| (r.version, r.deduplicated)), Ok((2, true)));
    let part = model.append("s", ExpectedVersion::Any, std::slice::from_ref(&a));
    assert_eq!(
        part.map(|r| (r.version, r.position)),
        Ok((1, Some(Position(1))))
    );
    // Reordered, overlapping or in another stream: a conflict naming the first misfit.
    assert_eq!(
        model.append("s", ExpectedVersion::Any, &[b.clone(), a.clone()]),
        Err(AppendFailure::IdempotencyConflict {
            stream: "s".into(),
            event_id: a.id
        })
    );
    assert_eq!(
        model.append("s", ExpectedVersion::Any, &[b.clone(), c.clone()]),
        Err(AppendFailure::IdempotencyConflict {
            stream: "s".into(),
            event_id: c.id
        })
    );
    assert_eq!(
        model.append("t", ExpectedVersion::Any, std::slice::from_ref(&a)),
        Err(AppendFailure::IdempotencyConflict {
            stream: "t".into(),
            event_id: a.id
        })
    );
    assert_eq!(
        model.append("s", ExpectedVersion::Exact(1), std::slice::from_ref(&c)),
        Err(AppendFailure::WrongExpectedVersion {
            stream: "s".into(),
            expected: ExpectedVersion::Exact(1),
            actual: 2
        })
    );
    assert_eq!(
        model.append("s", ExpectedVersion::Any, &[c.clone(), c.clone()]),
        Err(AppendFailure::DuplicateEventInBatch { event_id: c.id })
    );
    // An empty append checks the version only.
    assert_eq!(
        model.append("s", ExpectedVersion::Exact(2), &[]),
        Ok(AppendResult {
            version: 2,
            position: None,
            deduplicated: false
        })
    );
    // Soft delete hides the stream; the next append continues the numbering and shows.
    model.delete("s", ExpectedVersion::Exact(2)).unwrap();
    assert!(model.read_stream("s", 0, Direction::Forward, 10).is_empty());
    assert_eq!(model.version("s"), 2);
    model
        .append("s", ExpectedVersion::Exact(2), std::slice::from_ref(&c))
        .unwrap();
    let visible = model.read_stream("s", u64::MAX, Direction::Backward, 10);
    assert_eq!(
        visible.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![3]
    );
    assert_eq!(model.read_all(Position::START, 10).len(), 3);
    assert_eq!(model.read_all(Position(1), 1)[0].position, Position(2));
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn memory_store_matches_the_model(ops in ops(60)) {
        block_on(async {
            let store = MemoryStore::new();
            check_against_model(&store, &ops).await
        })?;
    }
}

#[cfg(feature = "sqlite")]
proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn sqlite_store_matches_the_model(ops in ops(60)) {
        use flowbed_eventsourcing::sqlite::SqliteStore;
        let dir = tempfile::Builder::new()
            .prefix("es-model-")
            .tempdir_in(std::env::temp_dir())
            .expect("temporary directory");
        block_on(async {
            let store = SqliteStore::open(dir.path().join("events.db"))
                .map_err(|error| TestCaseError::fail(format!("open: {error:?}")))?;
            check_against_model(&store, &ops).await
        })?;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::common::postgres::{connect_store, drop_schema, fresh_schema};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static CASE: AtomicUsize = AtomicUsize::new(0);

    proptest! {
        #![proptest_config(config(12))]

        #[test]
        fn postgres_store_matches_the_model(ops in ops(50)) {
            let schema = format!(
                "es_model_{}_{}",
                std::process::id(),
                CASE.fetch_add(1, Ordering::Relaxed)
            );
            block_on(async {
                let admin = fresh_schema(&schema).await;
                let store = connect_store(&schema).await;
                let result = check_against_model(&store, &ops).await;
                drop(store);
                if result.is_ok() {
                    drop_schema(&admin, &schema).await;
                }
                result
            })?;
        }
    }
}
