//! Routers: one entry point in front of a group of identical actors (routees), choosing by
//! round robin, smallest mailbox, consistent hash of a key, or sending to all.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::actor::{Actor, Message};
use crate::actor_ref::ActorRef;
use crate::error::{AskError, ConfigError, SendError};
use crate::spawn::Spawn;
use crate::sync::{AtomicUsize, Ordering, RwLock};

/// How a [`Router`] picks the routee for a message without a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Routing {
    /// Each routee in turn (the default).
    #[default]
    RoundRobin,
    /// The routee with the fewest queued messages (ties: the first found).
    LeastLoaded,
}

type Factory<A> = Arc<dyn Fn(usize) -> <A as Actor>::Args + Send + Sync>;

/// A group of actors of one type behind one handle. Clones share the group.
///
/// * [`tell`](Self::tell) / [`ask`](Self::ask) pick a routee by the [`Routing`];
/// * [`tell_keyed`](Self::tell_keyed) / [`ask_keyed`](Self::ask_keyed) pick by a
///   consistent hash of a key (jump consistent hash: the same key reaches the same
///   routee, and resizing from n to n+1 moves only ~1/(n+1) of the keys);
/// * [`broadcast`](Self::broadcast) sends a copy to every routee;
/// * [`resize`](Self::resize) grows (spawning from the factory) or shrinks (stopping the
///   last routees gracefully: they finish their queues) at run time.
///
/// # Examples
///
/// ```
/// use flowbed_actor::{Actor, BoxError, Context, Message, Router, Routing};
///
/// struct Shard(usize);
/// impl Actor for Shard {
///     type Args = usize;
///     async fn on_start(index: usize, _: &mut Context<Self>) -> Result<Self, BoxError> {
///         Ok(Shard(index))
///     }
/// }
/// struct Which;
/// impl Message<Which> for Shard {
///     type Reply = usize;
///     async fn handle(&mut self, _: Which, _: &mut Context<Self>) -> usize {
///         self.0
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let shards = Router::<Shard>::spawn(Routing::RoundRobin, 4, |index| index).unwrap();
/// assert_eq!(shards.ask(Which).await.unwrap(), 0);
/// assert_eq!(shards.ask(Which).await.unwrap(), 1);
/// let user = "user-42";
/// let first = shards.ask_keyed(&user, Which).await.unwrap();
/// assert_eq!(shards.ask_keyed(&user, Which).await.unwrap(), first); // same key, same shard
/// shards.resize(8).unwrap();
/// assert_eq!(shards.len(), 8);
/// # }
/// ```
pub struct Router<A: Actor> {
    shared: Arc<Shared<A>>,
}

struct Shared<A: Actor> {
    routees: RwLock<Arc<Vec<ActorRef<A>>>>,
    next: AtomicUsize,
    routing: Routing,
    factory: Option<Factory<A>>,
    spawn: Spawn,
}

impl<A: Actor> Router<A> {
    /// A router over existing actors. It cannot grow (no factory); it can shrink.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] if `routees` is empty.
    pub fn new(routing: Routing, routees: Vec<ActorRef<A>>) -> Result<Self, ConfigError> {
        if routees.is_empty() {
            return Err(EMPTY);
        }
        Ok(Self::with(routing, routees, None, Spawn::new()))
    }

    /// Spawns `size` routees, routee `i` from `factory(i)`, with default spawn options.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] if `size` is 0.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(
        routing: Routing,
        size: usize,
        factory: impl Fn(usize) -> A::Args + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        Self::spawn_with(routing, size, Spawn::new(), factory)
    }

    /// [`spawn`](Self::spawn) with spawn options for every routee.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] if `size` is 0.
    pub fn spawn_with(
        routing: Routing,
        size: usize,
        spawn: Spawn,
        factory: impl Fn(usize) -> A::Args + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        if size == 0 {
            return Err(EMPTY);
        }
        let factory: Factory<A> = Arc::new(factory);
        let routees = (0..size)
            .map(|index| spawn.clone().spawn::<A>(factory(index)))
            .collect();
        Ok(Self::with(routing, routees, Some(factory), spawn))
    }

    fn with(
        routing: Routing,
        routees: Vec<ActorRef<A>>,
        factory: Option<Factory<A>>,
        spawn: Spawn,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                routees: RwLock::new(Arc::new(routees)),
                next: AtomicUsize::new(0),
                routing,
                factory,
                spawn,
            }),
        }
    }

    fn snapshot(&self) -> Arc<Vec<ActorRef<A>>> {
        self.shared
            .routees
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The routee the routing picks for the next message.
    pub fn pick(&self) -> ActorRef<A> {
        let routees = self.snapshot();
        routees[self.index(&routees)].clone()
    }

    /// The routee `key` maps to.
    pub fn pick_keyed<K: Hash + ?Sized>(&self, key: &K) -> ActorRef<A> {
        let routees = self.snapshot();
        routees[keyed_index(key, routees.len())].clone()
    }

    fn index(&self, routees: &[ActorRef<A>]) -> usize {
        match self.shared.routing {
            Routing::RoundRobin => self.shared.next.fetch_add(1, Ordering::Relaxed) % routees.len(),
            Routing::LeastLoaded => routees
                .iter()
                .enumerate()
                .min_by_key(|(_, routee)| routee.mailbox_len())
                .map_or(0, |(index, _)| index),
        }
    }

    /// Tells the picked routee.
    ///
    /// # Errors
    ///
    /// As [`ActorRef::tell`].
    pub async fn tell<M>(&self, message: M) -> Result<(), SendError<M>>
    where
        A: Message<M>,
        M: Send + 'static,
    {
        let routees = self.snapshot();
        routees[self.index(&routees)].tell(message).await
    }

    /// Asks the picked routee.
    ///
    /// # Errors
    ///
    /// As [`ActorRef::ask`].
    pub async fn ask<M>(&self, message: M) -> Result<A::Reply, AskError<M>>
    where
        A: Message<M>,
        M: Send + 'static,
    {
        let routees = self.snapshot();
        routees[self.index(&routees)].ask(message).await
    }

    /// Tells the routee `key` maps to.
    ///
    /// # Errors
    ///
    /// As [`ActorRef::tell`].
    pub async fn tell_keyed<K, M>(&self, key: &K, message: M) -> Result<(), SendError<M>>
    where
        K: Hash + ?Sized,
        A: Message<M>,
        M: Send + 'static,
    {
        let routees = self.snapshot();
        routees[keyed_index(key, routees.len())].tell(message).await
    }

    /// Asks the routee `key` maps to.
    ///
    /// # Errors
    ///
    /// As [`ActorRef::ask`].
    pub async fn ask_keyed<K, M>(&self, key: &K, message: M) -> Result<A::Reply, AskError<M>>
    where
        K: Hash + ?Sized,
        A: Message<M>,
        M: Send + 'static,
    {
        let routees = self.snapshot();
        routees[keyed_index(key, routees.len())].ask(message).await
    }

    /// Tells every routee a copy; returns how many accepted it.
    pub async fn broadcast<M>(&self, message: M) -> usize
    where
        A: Message<M>,
        M: Clone + Send + 'static,
    {
        let mut accepted = 0;
        for routee in self.snapshot().iter() {
            if routee.tell(message.clone()).await.is_ok() {
                accepted += 1;
            }
        }
        accepted
    }

    /// Grows or shrinks the group to `size`. New routees come from the factory (index =
    /// position); removed ones (the last) are stopped gracefully.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a size of 0, or for growing a router built by
    /// [`Router::new`] (no factory).
    pub fn resize(&self, size: usize) -> Result<(), ConfigError> {
        if size == 0 {
            return Err(EMPTY);
        }
        let mut routees = self
            .shared
            .routees
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next: Vec<ActorRef<A>> = routees.as_ref().clone();
        if size > next.len() {
            let factory = self.shared.factory.as_ref().ok_or(ConfigError::Invalid {
                setting: "router size",
                why: "a router over given actors has no factory to grow with",
            })?;
            for index in next.len()..size {
                next.push(self.shared.spawn.clone().spawn::<A>(factory(index)));
            }
        } else {
            for removed in next.drain(size..) {
                removed.stop();
            }
        }
        *routees = Arc::new(next);
        Ok(())
    }

    /// The routees now.
    pub fn routees(&self) -> Vec<ActorRef<A>> {
        self.snapshot().as_ref().clone()
    }

    /// How many routees.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// Always false: a router has at least one routee.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Stops every routee gracefully.
    pub fn stop(&self) {
        for routee in self.snapshot().iter() {
            routee.stop();
        }
    }
}

const EMPTY: ConfigError = ConfigError::Invalid {
    setting: "router size",
    why: "a router needs at least one routee",
};

fn keyed_index<K: Hash + ?Sized>(key: &K, routees: usize) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    jump_consistent_hash(hasher.finish(), routees)
}

/// Lamping and Veach's jump consistent hash: a bucket in `0..buckets` for `key`.
fn jump_consistent_hash(mut key: u64, buckets: usize) -> usize {
    let mut bucket: i64 = -1;
    let mut jump: i64 = 0;
    while jump < buckets as i64 {
        bucket = jump;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        jump = ((bucket + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    bucket as usize
}

impl<A: Actor> Clone for Router<A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for Router<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("routing", &self.shared.routing)
            .field("routees", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::jump_consistent_hash;

    #[test]
    fn jump_hash_moves_few_keys_when_growing() {
        let moved = (0..10_000u64)
            .filter(|key| {
                let key = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                jump_consistent_hash(key, 10) != jump_consistent_hash(key, 11)
            })
            .count();
        // Ideal: 1/11 of the keys (909); every moved key goes to the new bucket.
        assert!((700..1100).contains(&moved), "moved {moved}");
        for key in 0..1000u64 {
            let key = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let (before, after) = (jump_consistent_hash(key, 10), jump_consistent_hash(key, 11));
            assert!(before == after || after == 10);
        }
    }
}
