//! What an actor's references share: the mailbox's sending side, the priority lane, the
//! lifecycle state and the counters.

use std::sync::OnceLock;
use std::time::Duration;

use flowbed_lockfree::{ClosedError, PushError, channel};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::actor::Actor;
use crate::envelope::Envelope;
use crate::exit::{ActorId, ExitKind, ExitReason, ExitSignal};
use crate::lifecycle::{ExitWatchers, KillSwitch, RefCount};
use crate::signal::{Control, Lane, Signal};
use crate::stats::{ActorStats, Counters};
use crate::sync::{AtomicBool, Mutex, Ordering, lock};

/// The part of an actor that does not depend on its type: enough to stop, kill, link,
/// monitor and supervise it.
pub(crate) struct Core {
    pub(crate) id: ActorId,
    pub(crate) type_name: &'static str,
    /// Runs under a supervisor (which decides what a stop means; see `ActorRef::stop`).
    pub(crate) supervised: bool,
    pub(crate) lane: Lane,
    pub(crate) refs: RefCount,
    pub(crate) kill: KillSwitch,
    pub(crate) watchers: ExitWatchers<Watcher>,
    /// Set just before the watchers are told, so one added too late (handed back by
    /// `watchers.add`) is told the same reason.
    pub(crate) ending: OnceLock<ExitReason>,
    /// True once the actor has ended for good (after its watchers were told).
    pub(crate) exited: AtomicBool,
    /// Wakes everyone in `wait_for_exit`.
    pub(crate) exit_notify: Notify,
    pub(crate) counters: Counters,
    pub(crate) task: Mutex<Option<AbortHandle>>,
}

impl Core {
    pub(crate) fn new(type_name: &'static str, supervised: bool, lane: Lane) -> Self {
        Self {
            id: ActorId::next(),
            type_name,
            supervised,
            lane,
            refs: RefCount::new(),
            kill: KillSwitch::new(),
            watchers: ExitWatchers::new(),
            ending: OnceLock::new(),
            exited: AtomicBool::new(false),
            exit_notify: Notify::new(),
            counters: Counters::default(),
            task: Mutex::new(None),
        }
    }

    /// Puts a signal on the priority lane (lost only if the actor has ended).
    pub(crate) fn signal(&self, signal: Signal) {
        self.lane.send(signal);
    }

    pub(crate) fn control(&self, control: Control) {
        self.signal(Signal::Control(control));
    }

    pub(crate) fn kill(&self) {
        self.kill.kill();
        self.signal(Signal::Kill);
    }

    /// Aborts the actor's task (the last resort after a kill did not end it in time).
    pub(crate) fn abort(&self) {
        if let Some(task) = lock(&self.task).as_ref() {
            task.abort();
        }
    }

    pub(crate) fn is_alive(&self) -> bool {
        !self.exited.load(Ordering::Acquire)
    }

    /// Waits until the actor has ended for good.
    pub(crate) async fn wait_for_exit(&self) -> ExitReason {
        loop {
            let notified = self.exit_notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a notification in between is not missed.
            notified.as_mut().enable();
            if self.exited.load(Ordering::Acquire) {
                return self.ending.get().expect("set before exited").clone();
            }
            notified.await;
        }
    }

    /// Ends the actor for good: tells every watcher, then publishes the reason (so whoever
    /// waits for the end finds the watchers' signals already queued).
    pub(crate) fn finish(&self, reason: ExitReason) {
        let _ = self.ending.set(reason.clone());
        for watcher in self.watchers.finish() {
            watcher.notify(self.id, &reason);
        }
        self.exited.store(true, Ordering::Release);
        self.exit_notify.notify_waiters();
    }

    /// Tells `watcher` about our end: now if we have ended, else when we do.
    pub(crate) fn watch(&self, watcher: Watcher) {
        if let Err(watcher) = self.watchers.add(watcher) {
            let reason = self.ending.get().expect("set before the watchers finish");
            watcher.notify(self.id, reason);
        }
    }
}

/// A callback run when an actor ends, with its id and exit reason.
pub(crate) type ExitHook = Box<dyn FnOnce(ActorId, &ExitReason) + Send>;

/// Someone to tell when an actor ends.
pub(crate) enum Watcher {
    /// A linked or monitoring actor: gets an [`ExitSignal`] on its priority lane.
    Actor {
        id: ActorId,
        kind: ExitKind,
        lane: Lane,
    },
    /// A callback (the registry removing a name).
    Hook(ExitHook),
}

impl Watcher {
    pub(crate) fn notify(self, from: ActorId, reason: &ExitReason) {
        match self {
            Self::Actor { kind, lane, .. } => {
                lane.send(Signal::Exit(ExitSignal {
                    from,
                    reason: reason.clone(),
                    kind,
                    run: 0,
                }));
            }
            Self::Hook(hook) => hook(from, reason),
        }
    }

    pub(crate) fn is_actor(&self, watcher: ActorId, of_kind: ExitKind) -> bool {
        matches!(self, Self::Actor { id, kind, .. } if *id == watcher && *kind == of_kind)
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Actor { id, kind, .. } => write!(f, "Watcher::Actor({id}, {kind:?})"),
            Self::Hook(_) => f.write_str("Watcher::Hook"),
        }
    }
}

/// Everything an actor's references share.
pub(crate) struct ActorCell<A: Actor> {
    pub(crate) core: Core,
    pub(crate) mailbox: channel::Sender<Envelope<A>>,
    pub(crate) ask_timeout: Duration,
}

impl<A: Actor> ActorCell<A> {
    /// Puts a message in the mailbox if there is room, and wakes the actor if it sleeps.
    pub(crate) fn push(&self, envelope: Envelope<A>) -> Result<(), PushError<Envelope<A>>> {
        self.mailbox.try_send(envelope)?;
        self.core.lane.doorbell().ring();
        Ok(())
    }

    /// Puts a message in the mailbox, waiting for room, and wakes the actor if it sleeps.
    pub(crate) async fn push_waiting(
        &self,
        envelope: Envelope<A>,
    ) -> Result<(), ClosedError<Envelope<A>>> {
        self.mailbox.send(envelope).await?;
        self.core.lane.doorbell().ring();
        Ok(())
    }

    pub(crate) fn stats(&self) -> ActorStats {
        let counters = &self.core.counters;
        let load = |counter: &crate::sync::AtomicU64| counter.load(crate::sync::Ordering::Relaxed);
        ActorStats {
            id: self.core.id,
            mailbox_len: self.mailbox.len(),
            mailbox_capacity: self.mailbox.capacity(),
            processed: load(&counters.processed),
            panics: load(&counters.panics),
            restarts: load(&counters.restarts),
            dead_letters: load(&counters.dead_letters),
            references: self.core.refs.count(),
            alive: self.core.is_alive(),
        }
    }
}

/// An actor cell with its type erased (supervisors and registries hold these).
pub(crate) trait AnyCell: Send + Sync + 'static {
    fn core(&self) -> &Core;
}

impl<A: Actor> AnyCell for ActorCell<A> {
    fn core(&self) -> &Core {
        &self.core
    }
}
