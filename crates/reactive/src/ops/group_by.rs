//! Splitting a flow by key: [`Flow::group_by`] emits one [`Group`] per key, and each group
//! is a flow of that key's items.
//!
//! # How it runs
//!
//! The upstream is shared by the outer flow and every group. Whichever of them is polled
//! and has nothing buffered pulls a batch from upstream (no task of its own) and routes the
//! items: to the buffer of their key's group (at most `group_capacity` items each), or, for
//! a new key, to a new group that is queued for the outer flow. Every waiting consumer is
//! woken when upstream makes progress (the upstream is polled with a waker that wakes all
//! of them), so no consumer depends on another one being polled.
//!
//! An item whose group's buffer is full waits, and upstream is not pulled meanwhile
//! (backpressure to the slowest group). The classic `group_by` deadlock is when that group
//! is never consumed at all (a `flat_map` with fewer slots than groups): the other groups
//! wait for it forever. Here a full group that was *never polled* ends everything with
//! [`Error::GroupNotConsumed`] once it blocked routing for [`NOT_CONSUMED_GRACE`] (time
//! for a freshly spawned consumer task to start; measured with tokio's clock, so a paused
//! test clock skips it as soon as everything waits).
//!
//! # Rules
//!
//! * At most `max_groups` groups are open at once (emitted or queued, and not dropped); one
//!   more key ends the outer flow and every group with [`Error::TooManyGroups`].
//! * Upstream completion or failure reaches the outer flow and every group after the items
//!   buffered before it; so do the two errors above.
//! * A dropped group is closed: its buffered items are discarded and it no longer counts as
//!   open. A later item with its key opens a fresh group, emitted on the outer flow
//!   (Reactor's behaviour). After the outer flow was dropped, no group opens any more and
//!   items of new keys are discarded.
//! * Dropping the outer flow and every group cancels upstream.
//! * The key's `Hash` and `Eq` run under the operator's lock and must not panic; a panic in
//!   the key function or upstream ends every consumer with [`Error::Panicked`].

use std::collections::VecDeque;

use hashbrown::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::ops::broadcast::waker_set::WakerSet;
use crate::panic::guard;
use crate::source::{Emit, Source, Step};
use crate::sources::iter::{YIELD_EVERY, yield_now};
use crate::sync::{Arc, Mutex, lock};
use crate::{Error, Flow};

/// The outer flow's consumer id in the waker set; groups count from 1.
const OUTER: u64 = 0;
/// The most items one pull takes from upstream before routing them.
const MAX_BATCH: usize = 256;
/// How long a full, never-polled group may block everything before the flow fails with
/// [`Error::GroupNotConsumed`] (time for the task that will consume it to start).
pub const NOT_CONSUMED_GRACE: Duration = Duration::from_millis(500);
/// Without a tokio timer, the stalled consumers yield and count instead of sleeping: the
/// flow fails after this many stalled polls once the grace passed.
const STALL_POLLS: u32 = 64;

/// The upstream and the key function, type-erased: pulls a batch of keyed items.
trait PullKeyed<K, T>: Send {
    /// Pulls up to `max` items into `batch`; a panic becomes `Err(Error::Panicked)`.
    fn pull(
        &mut self,
        cx: &mut Context<'_>,
        batch: &mut Vec<(K, T)>,
        max: usize,
    ) -> Poll<Result<Step, Error>>;
}

struct Keyed<S, F> {
    source: S,
    key: F,
}

impl<S, F, K> PullKeyed<K, S::Item> for Keyed<S, F>
where
    S: Source + Send,
    F: FnMut(&S::Item) -> K + Send,
{
    fn pull(
        &mut self,
        cx: &mut Context<'_>,
        batch: &mut Vec<(K, S::Item)>,
        max: usize,
    ) -> Poll<Result<Step, Error>> {
        let Self { source, key } = self;
        let polled = guard(|| {
            source.poll_emit(cx, &mut |item: S::Item| {
                let group = key(&item);
                batch.push((group, item));
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

type BoxPull<K, T> = Box<dyn PullKeyed<K, T>>;

/// Who has the upstream.
enum Upstream<K, T> {
    /// Nobody: the next consumer that needs items takes it.
    Idle(BoxPull<K, T>),
    /// A consumer is pulling from it, outside the lock.
    Busy,
    /// Ended, failed or cancelled.
    Gone,
}

struct GroupState<T> {
    /// Tells this group from an earlier, dropped group of the same key.
    id: u64,
    buffer: VecDeque<T>,
    polled: bool,
}

/// The grace of a full, never-polled group that blocks routing.
struct Stall {
    deadline: Instant,
    /// Wakes a stalled consumer at the deadline; `None` without a tokio timer (the stalled
    /// consumers yield and count polls instead).
    timer: Option<Pin<Box<Sleep>>>,
    polls: u32,
}

impl Stall {
    fn start() -> Self {
        let deadline = Instant::now() + NOT_CONSUMED_GRACE;
        // Outside a runtime with timers, `sleep_until` panics: fall back to yielding.
        let timer = guard(|| Box::pin(tokio::time::sleep_until(deadline))).ok();
        Self {
            deadline,
            timer,
            polls: 0,
        }
    }

    /// Whether the grace is over; otherwise `cx` is woken when it may be.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.polls = self.polls.saturating_add(1);
        match self.timer.as_mut() {
            Some(timer) => timer.as_mut().poll(cx).is_ready(),
            None => self.polls >= STALL_POLLS && Instant::now() >= self.deadline,
        }
    }
}

/// Everything behind the lock.
struct Core<K, T> {
    upstream: Upstream<K, T>,
    /// Open groups by key.
    groups: HashMap<K, GroupState<T>>,
    /// Groups opened and not yet taken by the outer flow, oldest first.
    unclaimed: VecDeque<(K, u64)>,
    /// Pulled items not yet routed (their group's buffer was full), in upstream order.
    stash: VecDeque<(K, T)>,
    /// How upstream ended.
    ending: Option<Result<(), Error>>,
    /// `TooManyGroups` or `GroupNotConsumed`: ends everything after the buffered items.
    failure: Option<Error>,
    outer_alive: bool,
    /// Groups handed to the outer flow's consumer and not dropped.
    claimed: usize,
    next_id: u64,
    /// Routing is blocked by a full, never-polled group: since when, and how it is timed.
    stall: Option<Stall>,
    /// Dropped after the lock is released (user `Drop` code runs outside the lock).
    trash_items: Vec<T>,
    trash_upstream: Option<BoxPull<K, T>>,
}

impl<K: Eq + Hash + Clone, T> Core<K, T> {
    /// Moves stashed items into their groups' buffers, opening groups for new keys, until
    /// the first item whose group is full. Returns whether anything moved.
    fn route(&mut self, max_groups: usize, capacity: usize) -> bool {
        let mut progressed = false;
        while let Some((key, _)) = self.stash.front() {
            match self.groups.get(key) {
                Some(group) if group.buffer.len() >= capacity => break,
                Some(_) => {
                    if let Some((key, item)) = self.stash.pop_front()
                        && let Some(group) = self.groups.get_mut(&key)
                    {
                        group.buffer.push_back(item);
                    }
                }
                None if !self.outer_alive => {
                    if let Some((_, item)) = self.stash.pop_front() {
                        self.trash_items.push(item);
                    }
                }
                None if self.groups.len() >= max_groups => {
                    self.fail(Error::TooManyGroups { limit: max_groups });
                    return true;
                }
                None => {
                    let (key, id) = (key.clone(), self.next_id);
                    self.next_id += 1;
                    self.groups.insert(
                        key.clone(),
                        GroupState {
                            id,
                            buffer: VecDeque::new(),
                            polled: false,
                        },
                    );
                    self.unclaimed.push_back((key, id));
                }
            }
            progressed = true;
        }
        if progressed {
            self.stall = None;
        }
        progressed
    }

    /// Ends everything with `error` after the buffered items; cancels upstream.
    fn fail(&mut self, error: Error) {
        self.failure.get_or_insert(error);
        self.trash_items.extend(
            std::mem::take(&mut self.stash)
                .into_iter()
                .map(|(_, item)| item),
        );
        self.release_upstream();
    }

    /// Drops (after the lock) the upstream unless a consumer is pulling from it (that one
    /// notices the failure or the cancel and drops it).
    fn release_upstream(&mut self) {
        match std::mem::replace(&mut self.upstream, Upstream::Gone) {
            Upstream::Idle(upstream) => self.trash_upstream = Some(upstream),
            Upstream::Busy => self.upstream = Upstream::Busy,
            Upstream::Gone => {}
        }
    }

    fn abandoned(&self) -> bool {
        !self.outer_alive && self.claimed == 0
    }

    /// Cancels upstream once neither the outer flow nor any group is left.
    fn cancel_if_abandoned(&mut self) {
        if self.abandoned() {
            self.ending.get_or_insert(Ok(()));
            self.release_upstream();
            self.trash_items.extend(
                std::mem::take(&mut self.stash)
                    .into_iter()
                    .map(|(_, item)| item),
            );
            for (_, group) in std::mem::take(&mut self.groups) {
                self.trash_items.extend(group.buffer);
            }
        }
    }

    /// Removes the group `key` if it is still generation `id`, discarding its items.
    fn close_group(&mut self, key: &K, id: u64) {
        if self.groups.get(key).is_some_and(|group| group.id == id)
            && let Some(group) = self.groups.remove(key)
        {
            self.trash_items.extend(group.buffer);
        }
    }

    /// Group `id`'s buffered items into `ready` (which is empty); marks it polled.
    fn take_group(&mut self, key: &K, id: u64, ready: &mut VecDeque<T>) -> bool {
        match self.groups.get_mut(key) {
            Some(group) if group.id == id => {
                if !group.polled {
                    group.polled = true;
                    self.stall = None;
                }
                if group.buffer.is_empty() {
                    return false;
                }
                std::mem::swap(ready, &mut group.buffer);
                true
            }
            _ => false,
        }
    }

    /// The oldest unclaimed group, for the outer flow.
    fn claim(&mut self, claimed: &mut Option<(K, u64)>) -> bool {
        match self.unclaimed.pop_front() {
            Some(group) => {
                self.claimed += 1;
                *claimed = Some(group);
                true
            }
            None => false,
        }
    }
}

/// What a consumer should do next.
enum Next<K, T> {
    /// Items (or a group) were moved to the consumer.
    Got,
    /// The consumer is done.
    End(Result<(), Error>),
    /// Pull from upstream, then give it back with [`Shared::drive`].
    Drive(BoxPull<K, T>),
    /// Registered in the waker set: return `Pending`.
    Wait,
    /// Wake yourself and return `Pending`.
    Yield,
}

/// How a [`Shared::drive`] went.
struct Drove {
    pulled: usize,
    /// Upstream is `Pending` and will wake the set: do not pull again in this poll.
    upstream_pending: bool,
    /// Upstream woke the set while it was being polled: poll again after a yield.
    yield_now: bool,
}

struct Shared<K, T> {
    core: Mutex<Core<K, T>>,
    wakers: std::sync::Arc<WakerSet>,
    /// Wakes every consumer in `wakers`: upstream is polled with it.
    upstream_waker: Waker,
    max_groups: usize,
    capacity: usize,
    batch: usize,
}

impl<K: Eq + Hash + Clone + fmt::Debug, T> Shared<K, T> {
    /// Runs `f` under the lock, then drops what `f` discarded.
    fn with_core<R>(&self, f: impl FnOnce(&mut Core<K, T>) -> R) -> R {
        let (result, items, upstream) = {
            let mut core = lock(&self.core);
            let result = f(&mut core);
            let items = std::mem::take(&mut core.trash_items);
            (result, items, core.trash_upstream.take())
        };
        drop(items);
        drop(upstream);
        result
    }

    /// The next step for consumer `me`: `take` moves its items out of the core.
    fn next(
        &self,
        me: u64,
        cx: &mut Context<'_>,
        may_drive: bool,
        take: impl FnOnce(&mut Core<K, T>) -> bool,
    ) -> Next<K, T> {
        let (next, progressed) = self.with_core(|core| {
            let mut progressed = core.route(self.max_groups, self.capacity);
            if take(core) {
                // Taking made room: route again before others look.
                progressed |= core.route(self.max_groups, self.capacity);
                return (Next::Got, progressed);
            }
            if let Some(error) = &core.failure {
                return (Next::End(Err(error.clone())), progressed);
            }
            if core.stash.is_empty()
                && let Some(ending) = &core.ending
            {
                return (Next::End(ending.clone()), progressed);
            }
            if let Some((key, _)) = core.stash.front() {
                // Routing stopped at a full group.
                if core.groups.get(key).is_some_and(|group| !group.polled) {
                    let error = Error::group_not_consumed(key, self.capacity);
                    let stall = core.stall.get_or_insert_with(Stall::start);
                    if stall.expired(cx) {
                        core.fail(error.clone());
                        return (Next::End(Err(error)), true);
                    }
                    if stall.timer.is_none() {
                        return (Next::Yield, progressed);
                    }
                }
                self.wakers.register(me, cx.waker());
                return (Next::Wait, progressed);
            }
            if may_drive && let Upstream::Idle(_) = core.upstream {
                if let Upstream::Idle(upstream) =
                    std::mem::replace(&mut core.upstream, Upstream::Busy)
                {
                    return (Next::Drive(upstream), progressed);
                }
            }
            if let Upstream::Gone = core.upstream {
                // Only an abandoned operator loses its upstream without an ending.
                return (Next::End(Ok(())), progressed);
            }
            self.wakers.register(me, cx.waker());
            (Next::Wait, progressed)
        });
        if progressed {
            self.wakers.wake_others(me);
        }
        next
    }

    /// Pulls one batch from `upstream` for consumer `me`, routes it and gives `upstream`
    /// back.
    fn drive(&self, me: u64, cx: &Context<'_>, mut upstream: BoxPull<K, T>) -> Drove {
        self.wakers.register(me, cx.waker());
        self.wakers.clear_notified();
        let mut batch = Vec::with_capacity(self.batch);
        let polled = upstream.pull(
            &mut Context::from_waker(&self.upstream_waker),
            &mut batch,
            self.batch,
        );
        let notified = self.wakers.take_notified();
        let pulled = batch.len();
        let ended = matches!(polled, Poll::Ready(Ok(Step::Ended) | Err(_)));
        let pending = polled.is_pending();
        let progressed = self.with_core(|core| {
            core.stash.extend(batch);
            match polled {
                Poll::Ready(Ok(Step::Ended)) => {
                    core.ending.get_or_insert(Ok(()));
                    core.trash_upstream = Some(upstream);
                    core.upstream = Upstream::Gone;
                }
                Poll::Ready(Err(error)) => {
                    core.ending.get_or_insert(Err(error));
                    core.trash_upstream = Some(upstream);
                    core.upstream = Upstream::Gone;
                }
                _ if core.failure.is_some() || core.abandoned() => {
                    core.trash_upstream = Some(upstream);
                    core.upstream = Upstream::Gone;
                }
                _ => core.upstream = Upstream::Idle(upstream),
            }
            core.route(self.max_groups, self.capacity)
        });
        if pulled > 0 || ended || progressed {
            self.wakers.wake_others(me);
        }
        Drove {
            pulled,
            upstream_pending: pending && !notified,
            yield_now: pending && notified,
        }
    }
}

/// A consumer of the shared upstream: the outer flow or a group.
trait Consumer<K, T> {
    /// Emits what the consumer holds; `Some` stops the poll with that result.
    fn emit_ready(&mut self, cx: &mut Context<'_>) -> Option<Poll<Result<Step, Error>>>;

    /// Moves the consumer's next items out of the core; whether there were any.
    fn take(&mut self, core: &mut Core<K, T>) -> bool;
}

/// The poll loop of every consumer: emit what it holds, refill, pull upstream when nothing
/// is buffered, wait when someone else is pulling or the routing is blocked.
fn run<K, T>(
    shared: &Shared<K, T>,
    me: u64,
    cx: &mut Context<'_>,
    consumer: &mut impl Consumer<K, T>,
) -> Poll<Result<Step, Error>>
where
    K: Eq + Hash + Clone + fmt::Debug,
{
    let mut may_drive = true;
    let mut pulled = 0;
    loop {
        if let Some(stop) = consumer.emit_ready(cx) {
            return stop;
        }
        match shared.next(me, cx, may_drive, |core| consumer.take(core)) {
            Next::Got => {}
            Next::End(result) => return Poll::Ready(result.map(|()| Step::Ended)),
            Next::Wait => return Poll::Pending,
            Next::Yield => return yield_now(cx),
            Next::Drive(upstream) => {
                let drove = shared.drive(me, cx, upstream);
                pulled += drove.pulled;
                if drove.yield_now || pulled >= YIELD_EVERY {
                    return yield_now(cx);
                }
                may_drive = !drove.upstream_pending;
            }
        }
    }
}

/// The outer flow as a [`Consumer`]: hands out groups one at a time.
struct Outer<'a, K, T, E> {
    shared: &'a Arc<Shared<K, T>>,
    claimed: Option<(K, u64)>,
    emit: &'a mut E,
    emitted: usize,
}

impl<K, T, E> Consumer<K, T> for Outer<'_, K, T, E>
where
    K: GroupKey,
    E: Emit<Group<K, T>>,
{
    fn emit_ready(&mut self, cx: &mut Context<'_>) -> Option<Poll<Result<Step, Error>>> {
        let (key, id) = self.claimed.take()?;
        let group = Group {
            key,
            id,
            shared: Arc::clone(self.shared),
            ready: VecDeque::new(),
        };
        self.emitted += 1;
        if self.emit.emit(group).is_break() {
            return Some(Poll::Ready(Ok(Step::Paused)));
        }
        (self.emitted >= YIELD_EVERY).then(|| yield_now(cx))
    }

    fn take(&mut self, core: &mut Core<K, T>) -> bool {
        core.claim(&mut self.claimed)
    }
}

/// A group as a [`Consumer`]: emits its buffered items.
struct Member<'a, K, T, E> {
    key: &'a K,
    id: u64,
    ready: &'a mut VecDeque<T>,
    emit: &'a mut E,
    emitted: usize,
}

impl<K, T, E> Consumer<K, T> for Member<'_, K, T, E>
where
    K: GroupKey,
    E: Emit<T>,
{
    fn emit_ready(&mut self, cx: &mut Context<'_>) -> Option<Poll<Result<Step, Error>>> {
        while let Some(item) = self.ready.pop_front() {
            self.emitted += 1;
            if self.emit.emit(item).is_break() {
                return Some(Poll::Ready(Ok(Step::Paused)));
            }
            if self.emitted >= YIELD_EVERY {
                return Some(yield_now(cx));
            }
        }
        None
    }

    fn take(&mut self, core: &mut Core<K, T>) -> bool {
        core.take_group(self.key, self.id, self.ready)
    }
}

/// What a `group_by` key must be: hashable, comparable, cloneable (each group keeps a
/// copy) and printable (for [`Error::GroupNotConsumed`]). Implemented for every such type.
pub trait GroupKey: Eq + Hash + Clone + fmt::Debug {}

impl<K: Eq + Hash + Clone + fmt::Debug> GroupKey for K {}

/// The outer source of [`Flow::group_by`]: emits one [`Group`] per key, in the order the
/// keys first appeared.
pub struct GroupBy<K: GroupKey, T> {
    shared: Arc<Shared<K, T>>,
}

impl<K: GroupKey, T> Source for GroupBy<K, T> {
    type Item = Group<K, T>;

    fn poll_emit<E: Emit<Group<K, T>>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let mut outer = Outer {
            shared: &self.shared,
            claimed: None,
            emit,
            emitted: 0,
        };
        run(&self.shared, OUTER, cx, &mut outer)
    }
}

impl<K: GroupKey, T> Drop for GroupBy<K, T> {
    fn drop(&mut self) {
        let shared = &self.shared;
        shared.with_core(|core| {
            core.outer_alive = false;
            for (key, id) in std::mem::take(&mut core.unclaimed) {
                core.close_group(&key, id);
            }
            core.cancel_if_abandoned();
        });
        shared.wakers.unregister(OUTER);
        // Items waiting for a closed group are now discarded: routing can go on.
        shared.wakers.wake_all();
    }
}

impl<K: GroupKey, T> fmt::Debug for GroupBy<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupBy")
            .field("max_groups", &self.shared.max_groups)
            .field("group_capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

/// One key's items out of [`Flow::group_by`]: a [`Source`] (so `group.into_flow()` gives
/// every operator) with its [`key`](Group::key). `Send + 'static` when `K` and `T` are.
///
/// Dropping a group closes it: its buffered items are discarded, and a later item with the
/// same key opens a fresh group on the outer flow.
pub struct Group<K: GroupKey, T> {
    key: K,
    id: u64,
    shared: Arc<Shared<K, T>>,
    /// Items moved out of the shared buffer in one lock, emitted from here.
    ready: VecDeque<T>,
}

impl<K: GroupKey, T> Group<K, T> {
    /// The key every item of this group has.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// This group as a [`Flow`], for the usual operators and consumers.
    pub fn into_flow(self) -> Flow<Self> {
        Flow::from_source(self)
    }
}

impl<K: GroupKey, T> Source for Group<K, T> {
    type Item = T;

    fn poll_emit<E: Emit<T>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let mut member = Member {
            key: &self.key,
            id: self.id,
            ready: &mut self.ready,
            emit,
            emitted: 0,
        };
        run(&self.shared, self.id, cx, &mut member)
    }
}

impl<K: GroupKey, T> Drop for Group<K, T> {
    fn drop(&mut self) {
        let shared = &self.shared;
        shared.with_core(|core| {
            core.close_group(&self.key, self.id);
            core.claimed -= 1;
            core.cancel_if_abandoned();
        });
        shared.wakers.unregister(self.id);
        // An item waiting for this group's room now opens a fresh group or is discarded.
        shared.wakers.wake_all();
    }
}

impl<K: GroupKey, T> fmt::Debug for Group<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("key", &self.key)
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl<S: Source> Flow<S> {
    /// Splits the flow by `key`: emits one [`Group`] per distinct key (in order of first
    /// appearance), each a flow of that key's items in upstream order.
    ///
    /// `max_groups` bounds the open groups (one more key fails everything with
    /// [`Error::TooManyGroups`]); `group_capacity` bounds each group's buffer. Consume every
    /// group you take, concurrently (a group nobody polls while its buffer is full fails
    /// everything with [`Error::GroupNotConsumed`] instead of hanging). See the
    /// [module docs](crate::ops::group_by) for the full rules.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    /// use futures::StreamExt;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let mut groups = Flow::iter(0..10u32).group_by(|n| n % 2, 8, 16).into_stream();
    /// let mut tasks = Vec::new();
    /// while let Some(group) = groups.next().await {
    ///     let group = group.unwrap();
    ///     let parity = *group.key();
    ///     tasks.push(tokio::spawn(async move {
    ///         (parity, group.into_flow().collect::<Vec<_>>().await.unwrap())
    ///     }));
    /// }
    /// let mut sums = Vec::new();
    /// for task in tasks {
    ///     sums.push(task.await.unwrap());
    /// }
    /// sums.sort();
    /// assert_eq!(sums, [(0, vec![0, 2, 4, 6, 8]), (1, vec![1, 3, 5, 7, 9])]);
    /// # });
    /// ```
    pub fn group_by<K, F>(
        self,
        key: F,
        max_groups: usize,
        group_capacity: usize,
    ) -> Flow<GroupBy<K, S::Item>>
    where
        S: Send + 'static,
        S::Item: Send + 'static,
        K: GroupKey + Send + 'static,
        F: FnMut(&S::Item) -> K + Send + 'static,
    {
        let capacity = group_capacity.max(1);
        let wakers = WakerSet::new();
        let upstream: BoxPull<K, S::Item> = Box::new(Keyed {
            source: self.into_source(),
            key,
        });
        Flow::from_source(GroupBy {
            shared: Arc::new(Shared {
                core: Mutex::new(Core {
                    upstream: Upstream::Idle(upstream),
                    groups: HashMap::new(),
                    unclaimed: VecDeque::new(),
                    stash: VecDeque::new(),
                    ending: None,
                    failure: None,
                    outer_alive: true,
                    claimed: 0,
                    next_id: OUTER + 1,
                    stall: None,
                    trash_items: Vec::new(),
                    trash_upstream: None,
                }),
                upstream_waker: wakers.upstream_waker(),
                wakers,
                max_groups: max_groups.max(1),
                capacity,
                batch: capacity.min(MAX_BATCH),
            }),
        })
    }
}
