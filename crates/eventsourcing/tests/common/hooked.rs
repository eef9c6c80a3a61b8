//! [`Hooked`]: an `EventStore` that forwards every call to an inner store and lets a test
//! watch or disturb a few of them through [`StoreHooks`].

use std::sync::Arc;

use flowbed_eventsourcing::{
    AppendError, AppendResult, Direction, EventData, EventStore, ExpectedVersion, Position,
    RecordedEvent, Snapshot, StoreError, StreamMetadata,
};
use tokio::sync::watch;

/// What a [`Hooked`] store lets a test see or change. Every method does nothing by default,
/// so a test implements only those it needs.
pub(crate) trait StoreHooks: Send + Sync + 'static {
    /// Called on every append with its events, before it is forwarded. An event returned
    /// here is appended to the same stream first, with `ExpectedVersion::Any`, as if a
    /// competing writer had got there first.
    fn before_append(&self, _events: &[EventData]) -> Option<EventData> {
        None
    }

    /// Called with the `from` of every `read_stream`, before it is forwarded.
    fn on_read_stream(&self, _from: u64) {}

    /// Called after every successful `read_all` with its `max` and the events it returned.
    fn on_read_all(&self, _max: usize, _events: &[RecordedEvent]) {}

    /// Called before every `save_snapshot`: an error returned here is the call's answer and
    /// nothing is saved.
    fn save_snapshot_error(&self, _snapshot: &Snapshot) -> Option<StoreError> {
        None
    }
}

/// An `EventStore` that delegates every call to `inner`, calling `hooks` where
/// [`StoreHooks`] says. Clones share the inner store and the hooks.
#[derive(Debug)]
pub(crate) struct Hooked<S, H> {
    inner: S,
    hooks: Arc<H>,
}

impl<S: Clone, H> Clone for Hooked<S, H> {
    fn clone(&self) -> Self {
        Hooked {
            inner: self.inner.clone(),
            hooks: Arc::clone(&self.hooks),
        }
    }
}

impl<S: EventStore, H: StoreHooks> Hooked<S, H> {
    /// Wraps `inner` with hooks in their default state.
    pub(crate) fn new(inner: S) -> Self
    where
        H: Default,
    {
        Hooked::with_hooks(inner, H::default())
    }

    /// Wraps `inner` with `hooks`.
    pub(crate) fn with_hooks(inner: S, hooks: H) -> Self {
        Hooked {
            inner,
            hooks: Arc::new(hooks),
        }
    }

    /// The wrapped store (calls on it bypass the hooks).
    pub(crate) fn inner(&self) -> &S {
        &self.inner
    }

    /// The hooks (shared by every clone).
    pub(crate) fn hooks(&self) -> &H {
        &self.hooks
    }
}

impl<S: EventStore, H: StoreHooks> EventStore for Hooked<S, H> {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        if let Some(competing) = self.hooks.before_append(&events) {
            self.inner
                .append(stream, ExpectedVersion::Any, vec![competing])
                .await?;
        }
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.hooks.on_read_stream(from);
        self.inner.read_stream(stream, from, direction, max).await
    }

    async fn read_all(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = self.inner.read_all(after, max).await?;
        self.hooks.on_read_all(max, &events);
        Ok(events)
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn head(&self) -> Result<Position, StoreError> {
        self.inner.head().await
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.watch_head()
    }

    async fn stream_metadata(&self, stream: &str) -> Result<StreamMetadata, StoreError> {
        self.inner.stream_metadata(stream).await
    }

    async fn set_stream_metadata(
        &self,
        stream: &str,
        metadata: StreamMetadata,
    ) -> Result<(), AppendError> {
        self.inner.set_stream_metadata(stream, metadata).await
    }

    async fn delete_stream(
        &self,
        stream: &str,
        expected: ExpectedVersion,
    ) -> Result<(), AppendError> {
        self.inner.delete_stream(stream, expected).await
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        if let Some(error) = self.hooks.save_snapshot_error(&snapshot) {
            return Err(error);
        }
        self.inner.save_snapshot(snapshot).await
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load_snapshot(stream).await
    }

    async fn save_checkpoint(
        &self,
        subscriber: &str,
        position: Position,
    ) -> Result<(), StoreError> {
        self.inner.save_checkpoint(subscriber, position).await
    }

    async fn load_checkpoint(&self, subscriber: &str) -> Result<Option<Position>, StoreError> {
        self.inner.load_checkpoint(subscriber).await
    }
}
