//! What travels on an actor's priority lane: control from outside, ahead of any message.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use tokio::sync::oneshot;

use crate::exit::{ExitReason, ExitSignal};
use crate::lifecycle::Doorbell;
use crate::sync::{AtomicBool, Mutex, Ordering, lock};

/// An actor's priority lane: signals wait here and are handled before the next queued
/// message. Signals are rare, so it is a short mutex-protected queue (no allocation until
/// the first signal) with a flag that makes the actor's per-message check one load.
/// Links, monitors and a supervised child's parent hold clones.
#[derive(Debug, Clone)]
pub(crate) struct Lane {
    inner: Arc<LaneInner>,
}

#[derive(Debug)]
struct LaneInner {
    /// `None` once the actor has ended: later signals are dropped at once (and with them
    /// any reply channel, so nobody waits on an ended actor).
    queue: Mutex<Option<VecDeque<Signal>>>,
    /// True while the queue may hold a signal.
    pending: AtomicBool,
    /// Wakes the actor for a signal or a message.
    doorbell: Doorbell,
}

impl Lane {
    pub(crate) fn new() -> Self {
        Self {
            inner: Arc::new(LaneInner {
                queue: Mutex::new(Some(VecDeque::new())),
                pending: AtomicBool::new(false),
                doorbell: Doorbell::new(),
            }),
        }
    }

    /// Delivers the signal (dropped if the actor has ended) and wakes the actor.
    pub(crate) fn send(&self, signal: Signal) {
        {
            let mut queue = lock(&self.inner.queue);
            let Some(queue) = queue.as_mut() else { return };
            queue.push_back(signal);
            self.inner.pending.store(true, Ordering::Relaxed);
        }
        self.inner.doorbell.ring();
    }

    /// The next signal, if any (one load when there is none).
    pub(crate) fn try_recv(&self) -> Option<Signal> {
        if !self.inner.pending.load(Ordering::Relaxed) {
            return None;
        }
        let mut queue = lock(&self.inner.queue);
        let queue = queue.as_mut()?;
        let signal = queue.pop_front();
        if queue.is_empty() {
            self.inner.pending.store(false, Ordering::Relaxed);
        }
        signal
    }

    /// Waits for the next signal (messages are not looked at).
    pub(crate) async fn recv(&self) -> Option<Signal> {
        poll_fn(|cx| {
            if let Some(signal) = self.try_recv() {
                return Poll::Ready(Some(signal));
            }
            self.inner.doorbell.arm(cx.waker());
            match self.try_recv() {
                Some(signal) => {
                    self.inner.doorbell.disarm();
                    Poll::Ready(Some(signal))
                }
                None if self.is_closed() => Poll::Ready(None),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Closes the lane for good and hands back what was queued.
    pub(crate) fn close(&self) -> VecDeque<Signal> {
        let queue = lock(&self.inner.queue).take().unwrap_or_default();
        self.inner.pending.store(false, Ordering::Relaxed);
        queue
    }

    fn is_closed(&self) -> bool {
        lock(&self.inner.queue).is_none()
    }

    /// The actor's doorbell (also rung by mailbox senders).
    pub(crate) fn doorbell(&self) -> &Doorbell {
        &self.inner.doorbell
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
