//! Per-actor counters and their snapshot.

use crate::exit::ActorId;
use crate::sync::{AtomicU64, Ordering};

/// Counters written by the actor's own task only (a load and a store, no read-modify-write).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) processed: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// A snapshot of one actor's counters ([`ActorRef::stats`](crate::ActorRef::stats)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActorStats {
    /// The actor.
    pub id: ActorId,
    /// Messages waiting in the mailbox now.
    pub mailbox_len: usize,
    /// The mailbox's bound (`None`: unbounded).
    pub mailbox_capacity: Option<usize>,
    /// Messages handled (including those whose handler panicked).
    pub processed: u64,
    /// Handlers that panicked.
    pub panics: u64,
    /// Runs started after the first (restarts by a supervisor).
    pub restarts: u64,
    /// Accepted messages never handled (see [`DeadLetter`](crate::DeadLetter)).
    pub dead_letters: u64,
    /// Strong references to the actor now.
    pub references: usize,
    /// False once the actor has ended for good.
    pub alive: bool,
}
