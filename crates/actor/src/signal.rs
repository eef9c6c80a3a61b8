//! What travels on an actor's priority lane: control from outside, ahead of any message.

use std::sync::Arc;

use flowbed_lockfree::channel;
use tokio::sync::oneshot;

use crate::exit::{ExitReason, ExitSignal};
use crate::lifecycle::Doorbell;

/// The sending side of an actor's priority lane: pushes a signal and rings the actor's
/// doorbell. Links, monitors and a supervised child's parent hold clones.
#[derive(Debug, Clone)]
pub(crate) struct Lane {
    sender: channel::Sender<Signal>,
    pub(crate) doorbell: Arc<Doorbell>,
}

impl Lane {
    pub(crate) fn new(sender: channel::Sender<Signal>) -> Self {
        Self {
            sender,
            doorbell: Arc::new(Doorbell::new()),
        }
    }

    /// Delivers the signal (dropped if the actor has ended).
    pub(crate) fn send(&self, signal: Signal) {
        if self.sender.try_send(signal).is_ok() {
            self.doorbell.ring();
        }
    }
}

/// A signal, handled before the next queued message.
#[derive(Debug)]
pub(crate) enum Signal {
    /// Stop gracefully ([`ActorRef::stop`](crate::ActorRef::stop)).
    Stop,
    /// Wakes the actor after its kill switch was thrown.
    Kill,
    /// The last strong reference was dropped (checked again on arrival).
    Unreferenced,
    /// A linked or monitored actor, or a supervised child's run, ended.
    Exit(ExitSignal),
    /// From the supervisor.
    Control(Control),
}

/// A supervisor's commands to a child. A supervised actor starts a run only when told.
#[derive(Debug)]
pub(crate) enum Control {
    /// Start a run (call the factory and `on_start`); the reply is the run's number
    /// (exit signals of the run carry it), or why it did not start.
    Start(oneshot::Sender<Result<u64, ExitReason>>),
    /// End the current run after the current message (`on_stop(Stopped)`), keeping the
    /// queued messages for the next run; replies when `on_stop` has run.
    StopRun(oneshot::Sender<()>),
    /// End for good: handle the queued messages, run `on_stop`, and exit.
    Terminate,
}
