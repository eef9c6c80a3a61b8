//! Hot multicast: [`Flow::broadcast`] and [`Flow::share`] turn one flow into a
//! [`Broadcast`] hub; every [`Broadcast::subscribe`] is a flow of the items published
//! from then on.
//!
//! # How it runs
//!
//! There is no task of its own: a subscriber that has nothing left to emit pulls a chunk
//! from upstream (outside any lock), clones it once per other subscriber (outside the lock
//! too), and hands every subscriber its copy under one lock. A subscriber takes everything
//! queued for it in one lock and emits it without locking. The upstream is polled with a
//! waker that wakes every waiting subscriber, so none depends on another being polled.
//!
//! # Policies
//!
//! * [`BroadcastPolicy::SlowestSubscriber`] (the default): upstream runs at the pace of the
//!   slowest subscriber and is never more than `capacity` items ahead of what any
//!   subscriber has emitted.
//! * [`BroadcastPolicy::DropOldest`], [`BroadcastPolicy::DropNewest`],
//!   [`BroadcastPolicy::Error`]: each subscriber has a queue of `capacity` items; upstream
//!   runs at the pace of the fastest, and a subscriber whose queue is full loses its oldest
//!   queued items, loses the new items, or ends with [`Error::Overflow`] after the items
//!   that fit.
//!
//! # Lifecycle
//!
//! * Upstream is pulled once the hub is connected: when `auto_connect` subscribers joined
//!   (counting every subscription since the start), on [`Broadcast::connect`], or when the
//!   hub is dropped with subscribers waiting (nobody else can join then).
//! * A subscriber joining later sees the items published after it joined.
//! * Upstream completion or failure reaches every subscriber after the items before it;
//!   a panic upstream ends every subscriber with [`Error::Panicked`].
//! * A dropped subscriber stops counting (for backpressure too). Once the hub is connected
//!   (or dropped) and no subscriber is left, upstream is cancelled; subscribers joining
//!   after that complete at once.

pub(crate) mod waker_set;

use std::collections::VecDeque;
use std::fmt;
use std::task::{Context, Poll, Waker};

use self::waker_set::WakerSet;
use crate::panic::guard;
use crate::source::{Emit, Source, Step};
use crate::sources::iter::{YIELD_EVERY, yield_now};
use crate::sync::{Arc, Mutex, lock};
use crate::{Error, Flow};

/// The default [`BroadcastConfig::capacity`].
pub const DEFAULT_CAPACITY: usize = 1024;

/// The most items one pull takes from upstream.
const MAX_CHUNK: usize = 1024;

/// What a [`Broadcast`] does about a subscriber that falls behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BroadcastPolicy {
    /// Backpressure: upstream waits for the slowest subscriber (at most `capacity` items
    /// ahead of it). Nobody loses items.
    #[default]
    SlowestSubscriber,
    /// A subscriber with `capacity` items queued loses its oldest queued items.
    DropOldest,
    /// A subscriber with `capacity` items queued loses the items arriving meanwhile.
    DropNewest,
    /// A subscriber with `capacity` items queued ends with [`Error::Overflow`] once it
    /// emitted the queued items.
    Error,
}

/// How [`Flow::broadcast`] shares its flow.
///
/// # Examples
///
/// ```
/// use flowbed_reactive::ops::broadcast::{BroadcastConfig, BroadcastPolicy};
///
/// let config = BroadcastConfig {
///     capacity: 64,
///     policy: BroadcastPolicy::DropOldest,
///     ..BroadcastConfig::default()
/// };
/// assert_eq!(config.auto_connect, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastConfig {
    /// Items a subscriber may be behind (at least 1; default [`DEFAULT_CAPACITY`]).
    pub capacity: usize,
    /// What happens to a subscriber that falls `capacity` items behind.
    pub policy: BroadcastPolicy,
    /// Start pulling upstream when this many subscribers joined (Reactor's
    /// `publish().autoConnect(n)`); 0 waits for [`Broadcast::connect`]. Default 1.
    pub auto_connect: usize,
}

impl Default for BroadcastConfig {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            policy: BroadcastPolicy::SlowestSubscriber,
            auto_connect: 1,
        }
    }
}

/// The upstream, type-erased: pulls a batch.
trait PullBatch<T>: Send {
    /// Pulls up to `max` items into `batch`; a panic becomes `Err(Error::Panicked)`.
    fn pull(
        &mut self,
        cx: &mut Context<'_>,
        batch: &mut Vec<T>,
        max: usize,
    ) -> Poll<Result<Step, Error>>;
}

impl<S: Source + Send> PullBatch<S::Item> for S {
    fn pull(
        &mut self,
        cx: &mut Context<'_>,
        batch: &mut Vec<S::Item>,
        max: usize,
    ) -> Poll<Result<Step, Error>> {
        let polled = guard(|| {
            self.poll_emit(cx, &mut |item| {
                batch.push(item);
                if batch.len() >= max {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            })
        });
        polled.unwrap_or_else(|panic| Poll::Ready(Err(panic)))
    }
}

type BoxPull<T> = Box<dyn PullBatch<T>>;

/// Who has the upstream.
enum Upstream<T> {
    /// Nobody: the next subscriber that needs items takes it.
    Idle(BoxPull<T>),
    /// A subscriber is pulling from it, outside the lock.
    Busy,
    /// Ended, failed or cancelled.
    Gone,
}

/// One subscriber, as the hub sees it.
struct Member<T> {
    id: u64,
    /// Chunks published to this subscriber and not yet taken.
    queue: VecDeque<Vec<T>>,
    /// Items in `queue`.
    queued: usize,
    /// Items taken the last time, counted until the subscriber comes back for more
    /// (it emitted them all by then).
    in_hand: usize,
    /// The subscriber overflowed under [`BroadcastPolicy::Error`]: it gets nothing more.
    overflowed: bool,
}

impl<T> Member<T> {
    /// Queues `chunk` under `policy`, putting what the policy drops into `trash`.
    fn deliver(
        &mut self,
        mut chunk: Vec<T>,
        policy: BroadcastPolicy,
        capacity: usize,
        trash: &mut Vec<Vec<T>>,
    ) {
        match policy {
            BroadcastPolicy::SlowestSubscriber => {}
            BroadcastPolicy::DropOldest => {
                while self.queued + chunk.len() > capacity {
                    let excess = self.queued + chunk.len() - capacity;
                    let Some(front) = self.queue.front_mut() else {
                        let kept = chunk.split_off(excess);
                        trash.push(std::mem::replace(&mut chunk, kept));
                        break;
                    };
                    if front.len() <= excess {
                        self.queued -= front.len();
                        trash.extend(self.queue.pop_front());
                    } else {
                        let kept = front.split_off(excess);
                        self.queued -= excess;
                        trash.push(std::mem::replace(front, kept));
                    }
                }
            }
            BroadcastPolicy::DropNewest | BroadcastPolicy::Error => {
                let room = capacity.saturating_sub(self.queued);
                if chunk.len() > room {
                    trash.push(chunk.split_off(room));
                    self.overflowed = policy == BroadcastPolicy::Error;
                }
            }
        }
        if !chunk.is_empty() {
            self.queued += chunk.len();
            self.queue.push_back(chunk);
        }
    }
}

/// Everything behind the lock.
struct HubState<T> {
    upstream: Upstream<T>,
    members: Vec<Member<T>>,
    next_id: u64,
    /// Subscriptions since the start, for `auto_connect`.
    joined: usize,
    connected: bool,
    hub_alive: bool,
    /// How upstream ended (or `Ok` once it was cancelled).
    ending: Option<Result<(), Error>>,
    /// A subscriber waits for a slow one to make room.
    room_waiters: bool,
    /// Dropped after the lock is released (user `Drop` code runs outside the lock).
    trash: Vec<Vec<T>>,
    trash_upstream: Option<BoxPull<T>>,
}

impl<T> HubState<T> {
    /// Drops (after the lock) the upstream unless a subscriber is pulling from it.
    fn release_upstream(&mut self) {
        match std::mem::replace(&mut self.upstream, Upstream::Gone) {
            Upstream::Idle(upstream) => self.trash_upstream = Some(upstream),
            Upstream::Busy => self.upstream = Upstream::Busy,
            Upstream::Gone => {}
        }
    }

    fn abandoned(&self) -> bool {
        self.members.is_empty() && (self.connected || !self.hub_alive)
    }

    fn cancel_if_abandoned(&mut self) {
        if self.abandoned() {
            self.ending.get_or_insert(Ok(()));
            self.release_upstream();
        }
    }

    /// Items upstream may run ahead under [`BroadcastPolicy::SlowestSubscriber`].
    fn room(&self, capacity: usize) -> usize {
        let behind = self
            .members
            .iter()
            .filter(|member| !member.overflowed)
            .map(|member| member.queued + member.in_hand)
            .max()
            .unwrap_or(0);
        capacity.saturating_sub(behind)
    }
}

/// What a subscriber should do next.
enum Next<T> {
    /// Chunks were moved to the subscriber.
    Got,
    /// The subscriber is done.
    End(Result<(), Error>),
    /// Pull from upstream, then give it back with [`Hub::drive`].
    Drive(Pull<T>),
    /// Registered in the waker set: return `Pending`.
    Wait,
}

/// A pull a subscriber was granted.
struct Pull<T> {
    upstream: BoxPull<T>,
    max: usize,
    /// Subscribers with a smaller id get the chunk (later ones joined after the pull).
    joined_before: u64,
    /// How many copies of the chunk are needed.
    copies: usize,
}

/// How a [`Hub::drive`] went.
struct Drove {
    pulled: usize,
    /// Upstream is `Pending` and will wake the set: do not pull again in this poll.
    upstream_pending: bool,
    /// Upstream woke the set while it was being polled: poll again after a yield.
    yield_now: bool,
}

struct Hub<T> {
    state: Mutex<HubState<T>>,
    wakers: std::sync::Arc<WakerSet>,
    /// Wakes every subscriber in `wakers`: upstream is polled with it.
    upstream_waker: Waker,
    capacity: usize,
    policy: BroadcastPolicy,
    chunk: usize,
    auto_connect: usize,
}

impl<T> Hub<T> {
    /// Runs `f` under the lock, then drops what `f` discarded.
    fn with_state<R>(&self, f: impl FnOnce(&mut HubState<T>) -> R) -> R {
        let (result, trash, upstream) = {
            let mut state = lock(&self.state);
            let result = f(&mut state);
            let trash = std::mem::take(&mut state.trash);
            (result, trash, state.trash_upstream.take())
        };
        drop(trash);
        drop(upstream);
        result
    }

    /// The next step for subscriber `me`, whose chunks (if any) are moved into `local`.
    fn next(
        &self,
        me: u64,
        cx: &Context<'_>,
        may_drive: bool,
        local: &mut VecDeque<Vec<T>>,
    ) -> Next<T> {
        let (next, freed_room) = self.with_state(|state| {
            let Some(member) = state.members.iter_mut().find(|member| member.id == me) else {
                return (Next::End(state.ending.clone().unwrap_or(Ok(()))), false);
            };
            // Everything taken last time was emitted: it no longer holds upstream back.
            let freed_room = member.in_hand > 0 && state.room_waiters;
            member.in_hand = 0;
            if freed_room {
                state.room_waiters = false;
            }
            if !member.queue.is_empty() {
                std::mem::swap(local, &mut member.queue);
                member.in_hand = std::mem::take(&mut member.queued);
                return (Next::Got, freed_room);
            }
            if member.overflowed {
                let error = Error::Overflow {
                    capacity: self.capacity,
                };
                return (Next::End(Err(error)), freed_room);
            }
            if let Some(ending) = &state.ending {
                return (Next::End(ending.clone()), freed_room);
            }
            if state.connected && may_drive && matches!(state.upstream, Upstream::Idle(_)) {
                let room = match self.policy {
                    BroadcastPolicy::SlowestSubscriber => state.room(self.capacity),
                    _ => self.chunk,
                };
                if room == 0 {
                    state.room_waiters = true;
                } else if let Upstream::Idle(upstream) =
                    std::mem::replace(&mut state.upstream, Upstream::Busy)
                {
                    let pull = Pull {
                        upstream,
                        max: room.min(self.chunk),
                        joined_before: state.next_id,
                        copies: state.members.iter().filter(|m| !m.overflowed).count(),
                    };
                    return (Next::Drive(pull), freed_room);
                }
            }
            if let Upstream::Gone = state.upstream {
                // Only an abandoned hub loses its upstream without an ending.
                return (Next::End(Ok(())), freed_room);
            }
            self.wakers.register(me, cx.waker());
            (Next::Wait, freed_room)
        });
        if freed_room {
            self.wakers.wake_others(me);
        }
        next
    }

    /// Pulls one chunk for subscriber `me`, publishes a copy to every subscriber and gives
    /// the upstream back.
    fn drive(&self, me: u64, cx: &Context<'_>, pull: Pull<T>) -> Drove
    where
        T: Clone,
    {
        let Pull {
            mut upstream,
            max,
            joined_before,
            copies,
        } = pull;
        self.wakers.register(me, cx.waker());
        self.wakers.clear_notified();
        let mut batch = Vec::with_capacity(max);
        let mut polled = upstream.pull(
            &mut Context::from_waker(&self.upstream_waker),
            &mut batch,
            max,
        );
        let notified = self.wakers.take_notified();
        let pulled = batch.len();
        // One clone per other subscriber, outside the lock; the original goes to the last.
        let mut chunks = Vec::with_capacity(copies);
        if pulled > 0 {
            let cloned = guard(|| {
                for _ in 1..copies {
                    chunks.push(batch.clone());
                }
            });
            match cloned {
                Ok(()) => chunks.push(batch),
                Err(panic) => polled = Poll::Ready(Err(panic)),
            }
        }
        let ended = matches!(polled, Poll::Ready(Ok(Step::Ended) | Err(_)));
        let pending = polled.is_pending();
        self.with_state(|state| {
            match polled {
                Poll::Ready(Ok(Step::Ended)) => {
                    state.ending.get_or_insert(Ok(()));
                    state.trash_upstream = Some(upstream);
                    state.upstream = Upstream::Gone;
                }
                Poll::Ready(Err(error)) => {
                    state.ending.get_or_insert(Err(error));
                    state.trash_upstream = Some(upstream);
                    state.upstream = Upstream::Gone;
                }
                _ if state.abandoned() || state.ending.is_some() => {
                    state.trash_upstream = Some(upstream);
                    state.upstream = Upstream::Gone;
                }
                _ => state.upstream = Upstream::Idle(upstream),
            }
            let HubState { members, trash, .. } = state;
            for member in members
                .iter_mut()
                .filter(|member| member.id < joined_before && !member.overflowed)
            {
                let Some(chunk) = chunks.pop() else { break };
                member.deliver(chunk, self.policy, self.capacity, trash);
            }
            trash.append(&mut chunks);
        });
        if pulled > 0 || ended {
            self.wakers.wake_others(me);
        }
        Drove {
            pulled,
            upstream_pending: pending && !notified,
            yield_now: pending && notified,
        }
    }
}

/// A hot, shared flow: [`subscribe`](Broadcast::subscribe) as many times as you like.
/// Returned by [`Flow::broadcast`] and [`Flow::share`]; `Send + Sync` when `T: Send`, so it
/// can be put in an `Arc` and subscribed from several tasks.
///
/// Dropping the hub does not stop the subscribers; it connects them if they were still
/// waiting for `auto_connect` (nobody else can join).
pub struct Broadcast<T> {
    hub: Arc<Hub<T>>,
}

impl<T: Clone + Send + 'static> Broadcast<T> {
    /// A new subscriber: a flow of the items published from now on (from the start if the
    /// hub is not connected yet). May connect the hub (see
    /// [`BroadcastConfig::auto_connect`]).
    pub fn subscribe(&self) -> Flow<BroadcastSubscriber<T>> {
        let (id, connected_now) = self.hub.with_state(|state| {
            let id = state.next_id;
            state.next_id += 1;
            state.joined += 1;
            state.members.push(Member {
                id,
                queue: VecDeque::new(),
                queued: 0,
                in_hand: 0,
                overflowed: false,
            });
            let connect = !state.connected
                && self.hub.auto_connect > 0
                && state.joined >= self.hub.auto_connect;
            state.connected |= connect;
            (id, connect)
        });
        if connected_now {
            self.hub.wakers.wake_all();
        }
        Flow::from_source(BroadcastSubscriber {
            id,
            hub: Arc::clone(&self.hub),
            local: VecDeque::new(),
            current: Vec::new().into_iter(),
        })
    }

    /// Starts pulling upstream now, whoever subscribed (idempotent).
    pub fn connect(&self) {
        self.hub.with_state(|state| state.connected = true);
        self.hub.wakers.wake_all();
    }

    /// Subscribers currently subscribed (not dropped).
    pub fn subscriber_count(&self) -> usize {
        self.hub.with_state(|state| state.members.len())
    }
}

impl<T> Drop for Broadcast<T> {
    fn drop(&mut self) {
        self.hub.with_state(|state| {
            state.hub_alive = false;
            if !state.members.is_empty() {
                state.connected = true;
            }
            state.cancel_if_abandoned();
        });
        self.hub.wakers.wake_all();
    }
}

impl<T> fmt::Debug for Broadcast<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broadcast")
            .field("capacity", &self.hub.capacity)
            .field("policy", &self.hub.policy)
            .finish_non_exhaustive()
    }
}

/// The source of one [`Broadcast::subscribe`]. Dropping it unsubscribes.
pub struct BroadcastSubscriber<T> {
    id: u64,
    hub: Arc<Hub<T>>,
    /// Chunks taken from the hub in one lock, emitted from here.
    local: VecDeque<Vec<T>>,
    current: std::vec::IntoIter<T>,
}

impl<T> BroadcastSubscriber<T> {
    fn next_local(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            self.current = self.local.pop_front()?.into_iter();
        }
    }
}

impl<T: Clone + Send + 'static> Source for BroadcastSubscriber<T> {
    type Item = T;

    fn poll_emit<E: Emit<T>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let mut may_drive = true;
        let mut emitted = 0;
        let mut pulled = 0;
        loop {
            while let Some(item) = self.next_local() {
                emitted += 1;
                if emit.emit(item).is_break() {
                    return Poll::Ready(Ok(Step::Paused));
                }
                if emitted >= YIELD_EVERY {
                    return yield_now(cx);
                }
            }
            match self.hub.next(self.id, cx, may_drive, &mut self.local) {
                Next::Got => {}
                Next::End(result) => return Poll::Ready(result.map(|()| Step::Ended)),
                Next::Wait => return Poll::Pending,
                Next::Drive(pull) => {
                    let drove = self.hub.drive(self.id, cx, pull);
                    pulled += drove.pulled;
                    if drove.yield_now || pulled >= YIELD_EVERY {
                        return yield_now(cx);
                    }
                    may_drive = !drove.upstream_pending;
                }
            }
        }
    }
}

impl<T> Drop for BroadcastSubscriber<T> {
    fn drop(&mut self) {
        let id = self.id;
        self.hub.with_state(|state| {
            if let Some(at) = state.members.iter().position(|member| member.id == id) {
                let member = state.members.swap_remove(at);
                state.trash.extend(member.queue);
            }
            state.cancel_if_abandoned();
        });
        self.hub.wakers.unregister(id);
        // Its place no longer holds the others back.
        self.hub.wakers.wake_all();
    }
}

impl<T> fmt::Debug for BroadcastSubscriber<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastSubscriber")
            .field("id", &self.id)
            .field("local", &self.local.len())
            .finish_non_exhaustive()
    }
}

impl<S: Source> Flow<S> {
    /// Shares this flow among any number of subscribers (a hot multicast), with the
    /// backpressure or overflow policy of `config`. See the
    /// [module docs](crate::ops::broadcast) for the rules.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    /// use flowbed_reactive::ops::broadcast::BroadcastConfig;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let hub = Flow::iter(1..=100u64).broadcast(BroadcastConfig {
    ///     capacity: 16,
    ///     auto_connect: 2,
    ///     ..BroadcastConfig::default()
    /// });
    /// let sum = tokio::spawn(hub.subscribe().fold(0, |sum, n| sum + n));
    /// let count = tokio::spawn(hub.subscribe().count());
    /// assert_eq!(sum.await.unwrap().unwrap(), 5050);
    /// assert_eq!(count.await.unwrap().unwrap(), 100);
    /// # });
    /// ```
    pub fn broadcast(self, config: BroadcastConfig) -> Broadcast<S::Item>
    where
        S: Send + 'static,
        S::Item: Clone + Send + 'static,
    {
        let capacity = config.capacity.max(1);
        let wakers = WakerSet::new();
        let upstream: BoxPull<S::Item> = Box::new(self.into_source());
        Broadcast {
            hub: Arc::new(Hub {
                state: Mutex::new(HubState {
                    upstream: Upstream::Idle(upstream),
                    members: Vec::new(),
                    next_id: 0,
                    joined: 0,
                    connected: false,
                    hub_alive: true,
                    ending: None,
                    room_waiters: false,
                    trash: Vec::new(),
                    trash_upstream: None,
                }),
                upstream_waker: wakers.upstream_waker(),
                wakers,
                capacity,
                policy: config.policy,
                chunk: (capacity / 2).clamp(1, MAX_CHUNK),
                auto_connect: config.auto_connect,
            }),
        }
    }

    /// [`broadcast`](Flow::broadcast) with the default configuration: backpressure to the
    /// slowest subscriber, [`DEFAULT_CAPACITY`], connected by the first subscriber.
    pub fn share(self) -> Broadcast<S::Item>
    where
        S: Send + 'static,
        S::Item: Clone + Send + 'static,
    {
        self.broadcast(BroadcastConfig::default())
    }
}
