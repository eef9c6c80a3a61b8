//! [`MemoryStore`]: the whole store in process memory, for tests and ephemeral runs.
//!
//! One lock guards the log; an append checks and writes under it, so appends are
//! serialized and positions are dense and in commit order by construction. Reads clone
//! events out under a read lock.

use std::collections::HashMap;

use tokio::sync::watch;

use crate::error::{AppendError, StoreError};
use crate::event::{EventData, Position, RecordedEvent, from_unix_micros, now_micros};
use crate::expected::{
    ExistingEvent, ExpectedVersion, Replay, check_expected, classify_replay, validate_batch,
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
    /// The global log: position `p` at index `p - 1`.
    log: Vec<RecordedEvent>,
    streams: HashMap<String, StreamState>,
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
        let existing: Vec<Option<ExistingEvent>> = events
            .iter()
            .map(|event| {
                self.ids.get(&event.id).map(|position| {
                    let stored = &self.log[position.0 as usize - 1];
                    ExistingEvent {
                        stream_id: stored.stream_id.clone(),
                        version: stored.version,
                    }
                })
            })
            .collect();
        if let Replay::AlreadyAppended { last_version } =
            classify_replay(stream, &events, &existing)?
        {
            let position = self.streams[stream].positions[last_version as usize - 1];
            return Ok(AppendResult {
                version: last_version,
                position: Some(position),
                deduplicated: true,
            });
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
        let stream_state = self.streams.entry(stream.to_owned()).or_default();
        stream_state.metadata.deleted = false;
        for event in events {
            let position = Position(self.log.len() as u64 + 1);
            let version = stream_state.positions.len() as u64 + 1;
            stream_state.positions.push(position);
            self.ids.insert(event.id, position);
            self.log.push(RecordedEvent {
                id: event.id,
                stream_id: stream.to_owned(),
                version,
                position,
                event_type: event.event_type,
                schema_version: event.schema_version,
                payload: event.payload,
                metadata: event.metadata,
                recorded_at,
            });
        }
        Ok(AppendResult {
            version: stream_state.positions.len() as u64,
            position: Some(Position(self.log.len() as u64)),
            deduplicated: false,
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
            state.log[stream_state.positions[version as usize - 1].0 as usize - 1].clone()
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
        let state = read(&self.shared.state);
        let start = usize::try_from(after.0)
            .unwrap_or(usize::MAX)
            .min(state.log.len());
        let end = start.saturating_add(max).min(state.log.len());
        Ok(state.log[start..end].to_vec())
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
        write(&self.shared.state)
            .streams
            .entry(stream.to_owned())
            .or_default()
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
        let metadata = &mut state.streams.entry(stream.to_owned()).or_default().metadata;
        metadata.deleted = true;
        metadata.truncate_before = current + 1;
        Ok(())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
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
