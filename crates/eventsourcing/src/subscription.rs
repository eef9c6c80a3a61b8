//! Catch-up subscriptions: read the past in batches, then follow new commits, with no gap
//! and no duplicate at the switch.
//!
//! Why it cannot skip or repeat: every backend gives committed events dense global
//! positions in commit order (see the crate docs on the gap problem). A subscription only
//! ever asks for "the events after the last one I delivered", so catching up and being live
//! are the same query; live just means the query came back empty and the subscription
//! waits for the store's head to move. A hole in the positions it reads is reported as
//! [`StoreError::Corrupt`], never skipped.
//!
//! Backpressure is by pull: the subscription reads the next batch (at most
//! [`batch_size`](Subscription::batch_size) events) only when its consumer has taken every
//! event of the previous one, so a slow consumer makes nothing buffer.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::{Position, RecordedEvent};
use crate::store::{Direction, EventStore};

/// What a subscription follows.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// The global log, after a position.
    All,
    /// One stream, after a version.
    Stream { stream: String, version: u64 },
}

/// A catch-up subscription to the global log or to one stream. Call
/// [`next`](Subscription::next) in a loop, or use it as a [`Stream`] via
/// [`into_stream`](Subscription::into_stream).
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::{EventData, EventStore, ExpectedVersion, Position, Subscription};
/// use flowbed_eventsourcing::memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// store.append("a", ExpectedVersion::Any, vec![EventData::new("Old", vec![])]).await?;
///
/// let mut subscription = Subscription::all(store.clone(), Position::START);
/// assert_eq!(subscription.next().await?.event_type, "Old"); // catch-up
///
/// let writer = store.clone();
/// tokio::spawn(async move {
///     writer.append("b", ExpectedVersion::Any, vec![EventData::new("New", vec![])]).await
/// });
/// let live = subscription.next().await?; // waits for the commit
/// assert_eq!((live.event_type.as_str(), live.position), ("New", Position(2)));
///
/// subscription.save_checkpoint("my-projection").await?;
/// assert_eq!(store.load_checkpoint("my-projection").await?, Some(Position(2)));
/// # Ok(())
/// # }
/// ```
pub struct Subscription<S: EventStore> {
    store: S,
    target: Target,
    /// The global position of the last delivered event.
    position: Position,
    head: watch::Receiver<Position>,
    buffer: VecDeque<RecordedEvent>,
    batch_size: usize,
    poll_interval: Duration,
}

impl<S: EventStore> fmt::Debug for Subscription<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("target", &self.target)
            .field("position", &self.position)
            .field("buffered", &self.buffer.len())
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl<S: EventStore> Subscription<S> {
    /// Follows the global log from the event after `after` (`Position::START`: from the
    /// beginning).
    pub fn all(store: S, after: Position) -> Subscription<S> {
        Subscription::with_target(store, Target::All, after)
    }

    /// Follows one stream from the event after version `after_version` (0: from its first
    /// event).
    pub fn stream(store: S, stream: impl Into<String>, after_version: u64) -> Subscription<S> {
        let target = Target::Stream {
            stream: stream.into(),
            version: after_version,
        };
        Subscription::with_target(store, target, Position::START)
    }

    /// Follows the global log from `subscriber`'s stored checkpoint (from the beginning if
    /// it has none). Call [`save_checkpoint`](Subscription::save_checkpoint) with the same
    /// name after processing.
    ///
    /// # Errors
    ///
    /// Loading the checkpoint failed.
    pub async fn resume(store: S, subscriber: &str) -> Result<Subscription<S>, StoreError> {
        let after = store
            .load_checkpoint(subscriber)
            .await?
            .unwrap_or(Position::START);
        Ok(Subscription::all(store, after))
    }

    fn with_target(store: S, target: Target, after: Position) -> Subscription<S> {
        let head = store.watch_head();
        Subscription {
            store,
            target,
            position: after,
            head,
            buffer: VecDeque::new(),
            batch_size: 512,
            poll_interval: Duration::from_secs(1),
        }
    }

    /// How many events one read fetches (default 512; at least 1).
    pub fn batch_size(mut self, batch_size: usize) -> Subscription<S> {
        self.batch_size = batch_size.max(1);
        self
    }

    /// While live, how long to wait for a commit notice before reading anyway (default 1 s).
    /// Notices are exact within a process; the interval bounds the delay for commits that
    /// another process made if its notice was lost (the PostgreSQL store re-listens after a
    /// dropped connection). It never causes skipping: a read only ever returns the events
    /// after the last delivered one.
    pub fn poll_interval(mut self, interval: Duration) -> Subscription<S> {
        self.poll_interval = interval;
        self
    }

    /// The global position of the last delivered event (`Position::START` before any, or
    /// the starting point).
    pub fn position(&self) -> Position {
        self.position
    }

    /// The next event: buffered, read from the store, or (when caught up) the next one
    /// committed. Waits as long as it takes.
    ///
    /// # Errors
    ///
    /// A read failed ([`StoreError::Backend`]; call again to retry from the same place),
    /// or the store returned a hole in the log ([`StoreError::Corrupt`]).
    pub async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(event) = self.pop_buffered() {
                return Ok(event);
            }
            let seen_head = *self.head.borrow_and_update();
            self.fill().await?;
            if self.buffer.is_empty() {
                self.wait_for_commit_after(seen_head).await;
            }
        }
    }

    /// Stores [`position`](Subscription::position) as `subscriber`'s checkpoint.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn save_checkpoint(&self, subscriber: &str) -> Result<(), StoreError> {
        self.store.save_checkpoint(subscriber, self.position).await
    }

    /// The subscription as a [`Stream`] of events (it never ends; an error item is followed
    /// by a retry from the same place on the next poll).
    pub fn into_stream(self) -> SubscriptionStream<S> {
        SubscriptionStream {
            state: StreamState::Idle(Box::new(self)),
        }
    }

    /// Hands out the next buffered event and moves the subscription past it.
    fn pop_buffered(&mut self) -> Option<RecordedEvent> {
        let event = self.buffer.pop_front()?;
        self.position = event.position;
        if let Target::Stream { version, .. } = &mut self.target {
            *version = event.version;
        }
        Some(event)
    }

    async fn fill(&mut self) -> Result<(), StoreError> {
        match &self.target {
            Target::All => {
                let events = self.store.read_all(self.position, self.batch_size).await?;
                let mut expected = self.position;
                for event in &events {
                    expected = expected.next();
                    if event.position != expected {
                        return Err(StoreError::Corrupt {
                            location: format!("global position {expected}"),
                            reason: format!(
                                "read_all returned position {} where {expected} was due",
                                event.position
                            ),
                        });
                    }
                }
                self.buffer.extend(events);
            }
            Target::Stream { stream, version } => {
                let events = self
                    .store
                    .read_stream(
                        stream,
                        version.saturating_add(1),
                        Direction::Forward,
                        self.batch_size,
                    )
                    .await?;
                self.buffer.extend(events);
            }
        }
        Ok(())
    }

    async fn wait_for_commit_after(&mut self, seen_head: Position) {
        let changed = self.head.wait_for(|head| *head > seen_head);
        // A closed watch (impossible while we hold the store) or a timeout: read again.
        let _ = tokio::time::timeout(self.poll_interval, changed).await;
    }
}

type Next<S> =
    Pin<Box<dyn Future<Output = (Box<Subscription<S>>, Result<RecordedEvent, StoreError>)> + Send>>;

enum StreamState<S: EventStore> {
    Idle(Box<Subscription<S>>),
    Reading(Next<S>),
    Empty,
}

/// A [`Subscription`] as a [`Stream`]; buffered events are handed out without a future.
pub struct SubscriptionStream<S: EventStore> {
    state: StreamState<S>,
}

impl<S: EventStore> fmt::Debug for SubscriptionStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionStream").finish_non_exhaustive()
    }
}

impl<S: EventStore> Stream for SubscriptionStream<S> {
    type Item = Result<RecordedEvent, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match std::mem::replace(&mut self.state, StreamState::Empty) {
                StreamState::Idle(mut subscription) => {
                    if let Some(event) = subscription.pop_buffered() {
                        self.state = StreamState::Idle(subscription);
                        return Poll::Ready(Some(Ok(event)));
                    }
                    self.state = StreamState::Reading(Box::pin(async move {
                        let result = subscription.next().await;
                        (subscription, result)
                    }));
                }
                StreamState::Reading(mut reading) => match reading.as_mut().poll(cx) {
                    Poll::Ready((subscription, result)) => {
                        self.state = StreamState::Idle(subscription);
                        return Poll::Ready(Some(result));
                    }
                    Poll::Pending => {
                        self.state = StreamState::Reading(reading);
                        return Poll::Pending;
                    }
                },
                StreamState::Empty => return Poll::Ready(None),
            }
        }
    }
}
