//! Timers that send messages to an actor: one-shot and periodic, cancellable, stopped with
//! the actor's run.

use std::time::Duration;

use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::MissedTickBehavior;

use crate::actor::Message;
use crate::actor_ref::WeakActorRef;

/// A running timer ([`Context::send_after`](crate::Context::send_after),
/// [`Context::send_interval`](crate::Context::send_interval)). Dropping the handle does not
/// cancel it; [`cancel`](Self::cancel) does, and so does the end of the actor's run.
#[derive(Debug)]
pub struct TimerHandle {
    task: JoinHandle<()>,
}

impl TimerHandle {
    /// Cancels the timer: no message is sent after this returns (one already in the
    /// mailbox stays there).
    pub fn cancel(&self) {
        self.task.abort();
    }

    /// True once the timer has fired for the last time or was cancelled.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    pub(crate) fn abort_handle(&self) -> AbortHandle {
        self.task.abort_handle()
    }
}

pub(crate) fn send_after<A, M>(actor: WeakActorRef<A>, delay: Duration, message: M) -> TimerHandle
where
    A: Message<M>,
    M: Send + 'static,
{
    let task = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Some(actor) = actor.upgrade() {
            let _ = actor.tell(message).await;
        }
    });
    TimerHandle { task }
}

pub(crate) fn send_interval<A, M>(
    actor: WeakActorRef<A>,
    period: Duration,
    mut make: impl FnMut() -> M + Send + 'static,
) -> TimerHandle
where
    A: Message<M>,
    M: Send + 'static,
{
    let task = tokio::spawn(async move {
        let start = tokio::time::Instant::now() + period;
        let mut ticks = tokio::time::interval_at(start, period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            let Some(actor) = actor.upgrade() else { return };
            if actor.tell(make()).await.is_err() {
                return;
            }
        }
    });
    TimerHandle { task }
}
