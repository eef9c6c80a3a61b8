//! [`MemoryStore`]: the whole store in process memory, for tests and ephemeral runs.
//!
//! One lock guards the log; an append checks and writes under it, so appends are
//! serialized and positions are dense and in commit order by construction. Reads clone
//! events out under a read lock.

mod log;

use hashbrown::HashMap;
use tokio::sync::watch;

use self::log::{Log, StoredEvent, StreamName};

use crate::error::{AppendError, StoreError};
use crate::event::{EventData, Position, RecordedEvent, from_unix_micros, now_micros};
use crate::expected::{
    ExistingEvent, ExpectedVersion, Replay, check_expected, classify_replay, validate_batch,
    validate_name,
};
use crate::store::{AppendResult, Direction, EventStore, Snapshot, StreamMetadata};
use crate::sync::{Arc, RwLock, read, write};

/// An event store in memory. Cheap to clone: clones share the store.
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::{EventData, EventStore, ExpectedVersion, Position};
/// use flowbed_eventsourcing::memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// store.append("orders-1", ExpectedVersion::Any, vec![EventData::new("Placed", b"{}".to_vec())]).await?;
/// assert_eq!(store.head().await?, Position(1));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: RwLock<State>,
    head: watch::Sender<Position>,
}

#[derive(Debug, Default)]
struct State {
    /// The global log.
    log: Log,
    /// Keyed by the stream's name, shared with its stored events.
    streams: HashMap<StreamName, StreamState>,
    /// Every event id ever appended → its global position.
    ids: HashMap<crate::event::EventId, Position>,
    snapshots: HashMap<String, Snapshot>,
    checkpoints: HashMap<String, Position>,
}

#[derive(Debug, Default)]
struct StreamState {
    /// Global position of each event: version `v` at index `v - 1`.
    positions: Vec<Position>,
    metadata: StreamMetadata,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore {
            shared: Arc::new(Shared {
                state: RwLock::new(State::default()),
                head: watch::Sender::new(Position::START),
            }),
        }
    }

    /// How many events the store holds.
    pub fn len(&self) -> usize {
        read(&self.shared.state).log.len()
    }

    /// True when no event was ever appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

/// The stream's entry and shared name, made empty if new.
fn stream_entry<'a>(
    streams: &'a mut HashMap<StreamName, StreamState>,
    stream: &str,
) -> (&'a StreamName, &'a mut StreamState) {
    if !streams.contains_key(stream) {
        streams.insert(StreamName::from(stream), StreamState::default());
    }
    streams.get_key_value_mut(stream).expect("inserted above")
}

impl State {
    fn version(&self, stream: &str) -> u64 {
        self.streams
            .get(stream)
            .map_or(0, |state| state.positions.len() as u64)
    }

    fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        validate_batch(stream, &events)?;
        if events.iter().any(|event| self.ids.contains_key(&event.id))
            && let Some(replayed) = self.replay(stream, &events)?
        {
            return Ok(replayed);
        }
        let current = self.version(stream);
        check_expected(stream, expected, current)?;
        if events.is_empty() {
            return Ok(AppendResult {
                version: current,
                position: None,
                deduplicated: false,
            });
        }
        let recorded_at = from_unix_micros(now_micros());
        let (name, stream_state) = stream_entry(&mut self.streams, stream);
        let name = StreamName::clone(name);
        stream_state.metadata.deleted = false;
        self.ids.reserve(events.len());
        for event in events {
            let version = stream_state.positions.len() as u64 + 1;
            let id = event.id;
            let position = self.log.push(StoredEvent::new(
                event,
                StreamName::clone(&name),
                version,
                recorded_at,
            ));
            stream_state.positions.push(position);
            self.ids.insert(id, position);
        }
        Ok(AppendResult {
            version: stream_state.positions.len() as u64,
            position: Some(Position(self.log.len() as u64)),
            deduplicated: false,
        })
    }
}

impl State {
    /// An append some of whose ids are stored: `Some` when it repeats an earlier append
    /// (answered from it), `None` when none of its ids is stored after all.
    fn replay(
        &self,
        stream: &str,
        events: &[EventData],
    ) -> Result<Option<AppendResult>, AppendError> {
        let existing: Vec<Option<ExistingEvent>> = events
            .iter()
            .map(|event| {
                self.ids.get(&event.id).map(|position| {
                    let stored = self.log.get(*position);
                    ExistingEvent {
                        stream_id: String::from(&*stored.stream),
                        version: stored.version,
                    }
                })
            })
            .collect();
        Ok(match classify_replay(stream, events, &existing)? {
            Replay::AlreadyAppended { last_version } => Some(AppendResult {
                version: last_version,
                position: Some(self.streams[stream].positions[last_version as usize - 1]),
                deduplicated: true,
            }),
            Replay::Fresh => None,
        })
    }
}

impl EventStore for MemoryStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        let result = write(&self.shared.state).append(stream, expected, events)?;
        if let (Some(position), false) = (result.position, result.deduplicated) {
            self.shared.head.send_if_modified(|head| {
                let newer = position > *head;
                if newer {
                    *head = position;
                }
                newer
            });
        }
        Ok(result)
    }

    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let state = read(&self.shared.state);
        let Some(stream_state) = state.streams.get(stream) else {
            return Ok(Vec::new());
        };
        let metadata = &stream_state.metadata;
        if metadata.deleted {
            return Ok(Vec::new());
        }
        let last = stream_state.positions.len() as u64;
        let first = metadata.truncate_before.max(1);
        let pick = |version: u64| {
            state
                .log
                .recorded(stream_state.positions[version as usize - 1])
        };
        Ok(match direction {
            Direction::Forward => (from.max(first)..=last).take(max).map(pick).collect(),
            Direction::Backward => {
                let start = from.min(last);
                if start < first {
                    Vec::new()
                } else {
                    (first..=start).rev().take(max).map(pick).collect()
                }
            }
        })
    }

    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let after = usize::try_from(after.0).unwrap_or(usize::MAX);
        Ok(read(&self.shared.state).log.read_after(after, max))
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        Ok(read(&self.shared.state).version(stream))
    }

    async fn head(&self) -> Result<Position, StoreError> {
        Ok(Position(read(&self.shared.state).log.len() as u64))
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.shared.head.subscribe()
    }

    async fn stream_metadata(&self, stream: &str) -> Result<StreamMetadata, StoreError> {
        Ok(read(&self.shared.state)
            .streams
            .get(stream)
            .map(|state| state.metadata.clone())
            .unwrap_or_default())
    }

    async fn set_stream_metadata(
        &self,
        stream: &str,
        metadata: StreamMetadata,
    ) -> Result<(), AppendError> {
        validate_batch(stream, &[])?;
        stream_entry(&mut write(&self.shared.state).streams, stream)
            .1
            .metadata = metadata;
        Ok(())
    }

    async fn delete_stream(
        &self,
        stream: &str,
        expected: ExpectedVersion,
    ) -> Result<(), AppendError> {
        validate_batch(stream, &[])?;
        let mut state = write(&self.shared.state);
        let current = state.version(stream);
        check_expected(stream, expected, current)?;
        let metadata = &mut stream_entry(&mut state.streams, stream).1.metadata;
        metadata.deleted = true;
        metadata.truncate_before = current + 1;
        Ok(())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        validate_name("snapshot stream id", &snapshot.stream_id)?;
        let mut state = write(&self.shared.state);
        match state.snapshots.get(&snapshot.stream_id) {
            Some(stored) if stored.version > snapshot.version => {}
            _ => {
                state.snapshots.insert(snapshot.stream_id.clone(), snapshot);
            }
        }
        Ok(())
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        Ok(read(&self.shared.state).snapshots.get(stream).cloned())
    }

    async fn save_checkpoint(
        &self,
        subscriber: &str,
        position: Position,
    ) -> Result<(), StoreError> {
        validate_name("subscriber", subscriber)?;
        write(&self.shared.state)
            .checkpoints
            .insert(subscriber.to_owned(), position);
        Ok(())
    }

    async fn load_checkpoint(&self, subscriber: &str) -> Result<Option<Position>, StoreError> {
        Ok(read(&self.shared.state)
            .checkpoints
            .get(subscriber)
            .copied())
    }
}
