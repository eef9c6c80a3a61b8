//! [`Repository`]: load an aggregate (snapshot + tail), run a command, append its events
//! with optimistic concurrency, retry on conflict by reading only the new tail.

use std::fmt;
use std::marker::PhantomData;

use crate::aggregate::Aggregate;
use crate::error::{CommandError, StoreError};
use crate::event::{EventData, Metadata, Position};
use crate::expected::ExpectedVersion;
use crate::store::{Direction, EventStore, Snapshot};
use crate::upcast::{Upcaster, Upcasters};

/// How many events one tail read fetches.
const TAIL_BATCH: usize = 1024;

/// An aggregate's state at a version of its stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The version of the last event folded in (0: a new aggregate).
    pub version: u64,
}

/// What a successful command did.
#[derive(Debug)]
pub struct Executed<A: Aggregate> {
    /// The events it appended (empty when the command decided nothing happens).
    pub events: Vec<A::Event>,
    /// The state and version after them.
    pub loaded: Loaded<A>,
    /// The global position of the last appended event.
    pub position: Option<Position>,
    /// How many times the command lost a race and was re-run (0 without conflicts).
    pub retries: usize,
    /// A snapshot the policy asked for but that could not be saved (the command itself
    /// succeeded; the next load just reads more events).
    pub snapshot_error: Option<StoreError>,
}

/// What one attempt appended (the state is advanced in place).
struct Attempt<E> {
    events: Vec<E>,
    position: Option<Position>,
    snapshot_error: Option<StoreError>,
}

/// Loads and saves aggregates of type `A` in a store `S`.
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::{Aggregate, DomainEvent, Repository};
/// use flowbed_eventsourcing::memory::MemoryStore;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Account { balance: i64 }
/// #[derive(Serialize, Deserialize)]
/// struct Deposited { amount: i64 }
/// impl DomainEvent for Deposited {
///     fn event_type(&self) -> &'static str { "Deposited" }
/// }
/// #[derive(Debug, thiserror::Error)]
/// #[error("amount must be positive")]
/// struct NotPositive;
///
/// impl Aggregate for Account {
///     const TYPE: &'static str = "account";
///     type Command = i64;
///     type Event = Deposited;
///     type Error = NotPositive;
///     fn handle(&self, amount: i64) -> Result<Vec<Deposited>, NotPositive> {
///         if amount <= 0 { return Err(NotPositive) }
///         Ok(vec![Deposited { amount }])
///     }
///     fn apply(&mut self, event: &Deposited) { self.balance += event.amount; }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let accounts = Repository::<Account, _>::new(MemoryStore::new()).snapshot_every(100);
/// accounts.execute_with_retry("alice", 50, 3).await?;
/// accounts.execute_with_retry("alice", 25, 3).await?;
/// let alice = accounts.load("alice").await?;
/// assert_eq!((alice.state.balance, alice.version), (75, 2));
/// assert!(accounts.execute("alice", -1).await.is_err());
/// # Ok(())
/// # }
/// ```
pub struct Repository<A, S> {
    store: S,
    upcasters: Upcasters,
    snapshot_every: Option<u64>,
    aggregate: PhantomData<fn() -> A>,
}

impl<A, S: Clone> Clone for Repository<A, S> {
    fn clone(&self) -> Self {
        Repository {
            store: self.store.clone(),
            upcasters: self.upcasters.clone(),
            snapshot_every: self.snapshot_every,
            aggregate: PhantomData,
        }
    }
}

impl<A, S: fmt::Debug> fmt::Debug for Repository<A, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository")
            .field("store", &self.store)
            .field("upcasters", &self.upcasters)
            .field("snapshot_every", &self.snapshot_every)
            .finish()
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// A repository without snapshots or upcasters.
    pub fn new(store: S) -> Repository<A, S> {
        Repository {
            store,
            upcasters: Upcasters::new(),
            snapshot_every: None,
            aggregate: PhantomData,
        }
    }

    /// Saves a snapshot whenever a command takes the stream across a multiple of `events`
    /// versions (0 turns snapshots off). Loads start from the newest snapshot.
    pub fn snapshot_every(mut self, events: u64) -> Repository<A, S> {
        self.snapshot_every = (events > 0).then_some(events);
        self
    }

    /// Adds an upcaster run on every event this repository decodes.
    pub fn upcaster(mut self, upcaster: impl Upcaster) -> Repository<A, S> {
        self.upcasters = self.upcasters.with(upcaster);
        self
    }

    /// Uses this upcaster chain (shared with projections, say).
    pub fn upcasters(mut self, upcasters: Upcasters) -> Repository<A, S> {
        self.upcasters = upcasters;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The stream an aggregate id lives in: `"{A::TYPE}-{id}"`.
    pub fn stream_id(id: &str) -> String {
        format!("{}-{id}", A::TYPE)
    }

    /// Loads an aggregate: the newest usable snapshot, then the events after it. A new id
    /// loads as `A::default()` at version 0.
    ///
    /// # Errors
    ///
    /// [`CommandError::Store`], [`CommandError::Decode`].
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, CommandError<A::Error>> {
        let stream = Self::stream_id(id);
        let mut loaded = self.load_snapshot(&stream).await?;
        self.catch_up(&stream, &mut loaded).await?;
        Ok(loaded)
    }

    /// Runs `command` once on the current state and appends its events expecting the
    /// version it loaded.
    ///
    /// # Errors
    ///
    /// [`CommandError::Rejected`] (the aggregate said no), a conflict
    /// ([`CommandError::is_conflict`]) when another writer appended in between, or a store,
    /// decode or encode error.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
    ) -> Result<Executed<A>, CommandError<A::Error>> {
        let stream = Self::stream_id(id);
        let mut loaded = self.load(id).await?;
        let attempt = self
            .attempt(&stream, &mut loaded, command, Metadata::default())
            .await?;
        Ok(Executed {
            events: attempt.events,
            loaded,
            position: attempt.position,
            retries: 0,
            snapshot_error: attempt.snapshot_error,
        })
    }

    /// Like [`execute`](Repository::execute), but on a conflict re-reads only the events
    /// appended since (not the whole stream or snapshot) and runs the command again on the
    /// new state, at most `max_retries` times.
    ///
    /// # Errors
    ///
    /// As [`execute`](Repository::execute); a conflict only after `max_retries` retries.
    pub async fn execute_with_retry(
        &self,
        id: &str,
        command: A::Command,
        max_retries: usize,
    ) -> Result<Executed<A>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        self.execute_with_metadata(id, command, Metadata::default(), max_retries)
            .await
    }

    /// [`execute_with_retry`](Repository::execute_with_retry) with metadata (correlation,
    /// causation) on every event the command appends.
    ///
    /// # Errors
    ///
    /// As [`execute_with_retry`](Repository::execute_with_retry).
    pub async fn execute_with_metadata(
        &self,
        id: &str,
        command: A::Command,
        metadata: Metadata,
        max_retries: usize,
    ) -> Result<Executed<A>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        let stream = Self::stream_id(id);
        let mut loaded = self.load(id).await?;
        let mut retries = 0;
        loop {
            match self
                .attempt(&stream, &mut loaded, command.clone(), metadata.clone())
                .await
            {
                Err(error) if error.is_conflict() && retries < max_retries => {
                    retries += 1;
                    self.catch_up(&stream, &mut loaded).await?;
                }
                Ok(attempt) => {
                    return Ok(Executed {
                        events: attempt.events,
                        loaded,
                        position: attempt.position,
                        retries,
                        snapshot_error: attempt.snapshot_error,
                    });
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Runs `command` on `loaded` and appends with `Exact(loaded.version)`; on success
    /// `loaded` is advanced past the new events, on a conflict it is left as it was.
    async fn attempt(
        &self,
        stream: &str,
        loaded: &mut Loaded<A>,
        command: A::Command,
        metadata: Metadata,
    ) -> Result<Attempt<A::Event>, CommandError<A::Error>> {
        let events = loaded
            .state
            .handle(command)
            .map_err(CommandError::Rejected)?;
        let data = events
            .iter()
            .map(|event| {
                EventData::from_event(event).map(|data| data.with_metadata(metadata.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let before = loaded.version;
        let result = self
            .store
            .append(stream, ExpectedVersion::Exact(before), data)
            .await?;
        for event in &events {
            loaded.state.apply(event);
        }
        loaded.version = result.version;
        let snapshot_error = match self.snapshot_every {
            Some(every) if result.version / every > before / every => self
                .store
                .save_snapshot(Snapshot {
                    stream_id: stream.to_owned(),
                    version: loaded.version,
                    schema_version: A::SNAPSHOT_VERSION,
                    state: serde_json::to_vec(&loaded.state).map_err(|source| {
                        crate::error::EncodeError {
                            event_type: format!("{} snapshot", A::TYPE),
                            source,
                        }
                    })?,
                })
                .await
                .err(),
            _ => None,
        };
        Ok(Attempt {
            events,
            position: result.position,
            snapshot_error,
        })
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Loaded<A>, CommandError<A::Error>> {
        if self.snapshot_every.is_some() {
            if let Some(snapshot) = self.store.load_snapshot(stream).await? {
                // A snapshot of another encoding or one that no longer parses is a stale
                // cache, not an error: the events are the truth and are read instead.
                if snapshot.schema_version == A::SNAPSHOT_VERSION {
                    if let Ok(state) = serde_json::from_slice::<A>(&snapshot.state) {
                        return Ok(Loaded {
                            state,
                            version: snapshot.version,
                        });
                    }
                }
            }
        }
        Ok(Loaded {
            state: A::default(),
            version: 0,
        })
    }

    /// Folds the events after `loaded.version` into `loaded`.
    async fn catch_up(
        &self,
        stream: &str,
        loaded: &mut Loaded<A>,
    ) -> Result<(), CommandError<A::Error>> {
        let mut first_read = true;
        loop {
            let events = self
                .store
                .read_stream(stream, loaded.version + 1, Direction::Forward, TAIL_BATCH)
                .await?;
            if events.is_empty() && first_read && self.skip_hidden(stream, loaded).await? {
                continue;
            }
            first_read = false;
            let full = events.len() == TAIL_BATCH;
            for recorded in &events {
                let event: A::Event = self.upcasters.decode(recorded)?;
                loaded.state.apply(&event);
                loaded.version = recorded.version;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// A stream that reads as empty after `loaded.version` may still have a higher
    /// version: its events are hidden by a soft delete or `truncate_before`. The aggregate
    /// then continues from the hidden events' version (so its next append revives the
    /// stream, as the store documents) instead of expecting a version it can never see.
    /// Returns true when it moved `loaded.version`. Events appended concurrently are not
    /// hidden and are never skipped: only versions below `truncate_before` are.
    async fn skip_hidden(
        &self,
        stream: &str,
        loaded: &mut Loaded<A>,
    ) -> Result<bool, CommandError<A::Error>> {
        let version = self.store.stream_version(stream).await?;
        if version <= loaded.version {
            return Ok(false);
        }
        let metadata = self.store.stream_metadata(stream).await?;
        let hidden_up_to = metadata.truncate_before.saturating_sub(1).min(version);
        if hidden_up_to > loaded.version {
            loaded.version = hidden_up_to;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}
