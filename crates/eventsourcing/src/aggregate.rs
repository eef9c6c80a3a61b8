//! [`Aggregate`]: the consistency boundary whose state is the fold of its events.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::DomainEvent;

/// A domain object rebuilt from its events: `handle` decides which events a command
/// produces (or rejects it), `apply` folds one event into the state. `handle` must not
/// change state; only `apply` does, so replaying the stored events always rebuilds the same
/// state.
///
/// The state is serde-serializable so a [`Repository`](crate::Repository) can snapshot it.
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::{Aggregate, DomainEvent};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Counter { value: u64 }
///
/// #[derive(Serialize, Deserialize)]
/// struct Added { by: u64 }
/// impl DomainEvent for Added {
///     fn event_type(&self) -> &'static str { "Added" }
/// }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("would overflow")]
/// struct Overflow;
///
/// impl Aggregate for Counter {
///     const TYPE: &'static str = "counter";
///     type Command = u64;
///     type Event = Added;
///     type Error = Overflow;
///
///     fn handle(&self, by: u64) -> Result<Vec<Added>, Overflow> {
///         self.value.checked_add(by).ok_or(Overflow)?;
///         Ok(vec![Added { by }])
///     }
///
///     fn apply(&mut self, event: &Added) {
///         self.value += event.by;
///     }
/// }
///
/// let mut counter = Counter::default();
/// for event in counter.handle(5).unwrap() {
///     counter.apply(&event);
/// }
/// assert_eq!(counter.value, 5);
/// assert!(counter.handle(u64::MAX).is_err());
/// ```
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stream category: an aggregate with id `42` lives in stream `"{TYPE}-42"`.
    const TYPE: &'static str;

    /// The version of the snapshot encoding; bump it when the state's shape changes (older
    /// snapshots are then ignored and the state is rebuilt from events).
    const SNAPSHOT_VERSION: u32 = 1;

    /// What callers ask the aggregate to do.
    type Command: Send;

    /// What the aggregate records.
    type Event: DomainEvent;

    /// Why a command is rejected.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides the events a command produces from the current state.
    ///
    /// # Errors
    ///
    /// The command is invalid in this state.
    fn handle(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. Must not fail: the event already happened.
    fn apply(&mut self, event: &Self::Event);
}
