//! [`Context`]: what a running actor can do to itself and its surroundings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::actor::{Actor, Message};
use crate::actor_ref::{ActorRef, WeakActorRef};
use crate::cell::{ActorCell, AnyCell, Watcher};
use crate::exit::{ActorId, ExitKind, ExitReason};
use crate::spawn::Spawn;
use crate::timer::{self, TimerHandle};

/// Passed to every hook and handler of an actor: its own reference, stopping, links,
/// monitors and timers.
pub struct Context<A: Actor> {
    cell: Arc<ActorCell<A>>,
    stop: Option<ExitReason>,
    timers: Vec<AbortHandle>,
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(cell: Arc<ActorCell<A>>) -> Self {
        Self {
            cell,
            stop: None,
            timers: Vec::new(),
        }
    }

    pub(crate) fn core(&self) -> &crate::cell::Core {
        &self.cell.core
    }

    /// This actor's id.
    pub fn id(&self) -> ActorId {
        self.cell.core.id
    }

    /// A strong reference to this actor (to hand to others). Holding it in the actor's
    /// own state keeps the actor from stopping when everyone else drops theirs.
    pub fn actor_ref(&self) -> ActorRef<A> {
        self.cell.core.refs.acquire();
        ActorRef::from_cell(self.cell.clone())
    }

    /// A weak reference to this actor.
    pub fn weak_ref(&self) -> WeakActorRef<A> {
        WeakActorRef {
            cell: self.cell.clone(),
        }
    }

    /// Stops after the current handler returns, with [`ExitReason::Normal`]. Messages
    /// still queued become dead letters (a stop from outside, [`ActorRef::stop`], handles
    /// them first).
    pub fn stop(&mut self) {
        self.stop_with(ExitReason::Normal);
    }

    /// Stops after the current handler returns, with `reason` (the first reason given
    /// wins).
    pub fn stop_with(&mut self, reason: ExitReason) {
        self.stop.get_or_insert(reason);
    }

    /// Fails: stops after the current handler with [`ExitReason::Error`], which links
    /// propagate and supervisors restart.
    pub fn fail(&mut self, error: impl std::error::Error + Send + Sync + 'static) {
        self.stop_with(ExitReason::Error(Arc::new(error)));
    }

    /// True once a stop was requested in this run.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_some()
    }

    pub(crate) fn take_stop(&mut self) -> Option<ExitReason> {
        self.stop.take()
    }

    /// Links this actor with `other`: when either ends, the other gets an
    /// [`ExitSignal`](crate::ExitSignal) of kind [`ExitKind::Link`] (by default a failure
    /// stops it too). Linking an actor that has already ended signals at once.
    pub fn link<B: Actor>(&mut self, other: &ActorRef<B>) {
        link(&self.cell.core, &other.cell.core);
    }

    /// Removes a link made with [`link`](Self::link).
    pub fn unlink<B: Actor>(&mut self, other: &ActorRef<B>) {
        let (me, them) = (self.id(), other.id());
        self.cell
            .core
            .watchers
            .remove(|watcher| watcher.is_actor(them, ExitKind::Link));
        other
            .cell
            .core
            .watchers
            .remove(|watcher| watcher.is_actor(me, ExitKind::Link));
    }

    /// Monitors `other`: when it ends this actor gets an [`ExitSignal`](crate::ExitSignal)
    /// of kind [`ExitKind::Monitor`] (information only; `other` is not affected by our
    /// end). Monitoring an actor that has already ended signals at once.
    pub fn monitor<B: Actor>(&mut self, other: &ActorRef<B>) {
        other.cell.core.watch(Watcher::Actor {
            id: self.id(),
            kind: ExitKind::Monitor,
            lane: self.cell.core.lane.clone(),
        });
    }

    /// Stops monitoring `other`.
    pub fn demonitor<B: Actor>(&mut self, other: &ActorRef<B>) {
        let me = self.id();
        other
            .cell
            .core
            .watchers
            .remove(|watcher| watcher.is_actor(me, ExitKind::Monitor));
    }

    /// Spawns `B` with default options and links it to this actor.
    pub fn spawn_linked<B: Actor>(&mut self, args: B::Args) -> ActorRef<B> {
        let child = Spawn::new().spawn(args);
        self.link(&child);
        child
    }

    /// Sends `message` to this actor after `delay`. The timer is cancelled when the
    /// handle's [`cancel`](TimerHandle::cancel) is called or this run of the actor ends.
    pub fn send_after<M>(&mut self, delay: Duration, message: M) -> TimerHandle
    where
        A: Message<M>,
        M: Send + 'static,
    {
        let handle = timer::send_after(self.weak_ref(), delay, message);
        self.keep_timer(&handle);
        handle
    }

    /// Sends `make()` to this actor every `period` (the first after one period). A tick
    /// waits for mailbox room, and ticks missed meanwhile are skipped, not bunched. Stops
    /// like [`send_after`](Self::send_after).
    pub fn send_interval<M>(
        &mut self,
        period: Duration,
        make: impl FnMut() -> M + Send + 'static,
    ) -> TimerHandle
    where
        A: Message<M>,
        M: Send + 'static,
    {
        let handle = timer::send_interval(self.weak_ref(), period, make);
        self.keep_timer(&handle);
        handle
    }

    fn keep_timer(&mut self, handle: &TimerHandle) {
        if self.timers.len() >= 64 {
            self.timers.retain(|timer| !timer.is_finished());
        }
        self.timers.push(handle.abort_handle());
    }

    /// Cancels every timer of this run (at the end of the run).
    pub(crate) fn cancel_timers(&mut self) {
        for timer in self.timers.drain(..) {
            timer.abort();
        }
    }
}

/// Links two actors both ways (each side is added on its own, so no two locks are held at
/// once; a side that has already ended signals the other at once).
pub(crate) fn link(a: &crate::cell::Core, b: &crate::cell::Core) {
    a.watch(Watcher::Actor {
        id: b.id,
        kind: ExitKind::Link,
        lane: b.lane.clone(),
    });
    b.watch(Watcher::Actor {
        id: a.id,
        kind: ExitKind::Link,
        lane: a.lane.clone(),
    });
}

impl<A: Actor> Drop for Context<A> {
    fn drop(&mut self) {
        self.cancel_timers();
    }
}

impl<A: Actor> fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.id())
            .field("actor", &self.cell.core().type_name)
            .field("stopping", &self.stop)
            .field("timers", &self.timers.len())
            .finish()
    }
}
