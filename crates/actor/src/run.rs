//! The actor's task: start a run, handle signals and messages one at a time, stop, and
//! (at the very end, also when the task is aborted) report dead letters and tell the
//! watchers.

use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use flowbed_lockfree::{PopError, channel};
use futures::FutureExt;
use tokio::sync::oneshot;

use crate::actor::{Actor, PanicAction};
use crate::cell::ActorCell;
use crate::context::Context;
use crate::envelope::Envelope;
use crate::exit::{ActorId, ExitKind, ExitReason, ExitSignal};
use crate::handler_slot::HandlerSlot;
use crate::lifecycle::KillSwitch;
use crate::signal::{Control, Lane, Signal};
use crate::spawn::DeadLetterHook;
use crate::stats::Counters;

/// Where a supervised child reports the end of each run.
#[derive(Debug, Clone)]
pub(crate) struct Parent {
    pub(crate) lane: Lane,
}

impl Parent {
    fn run_ended(&self, child: ActorId, run: u64, reason: ExitReason) {
        self.lane.send(Signal::Exit(ExitSignal {
            from: child,
            reason,
            kind: ExitKind::Child,
            run,
        }));
    }
}

/// How many runs the task makes.
pub(crate) enum Runs<A: Actor> {
    /// One run from these arguments; its end is the actor's end.
    Once(A::Args),
    /// Runs when the supervisor says so, each from fresh arguments, until it terminates us.
    Supervised {
        factory: Arc<dyn Fn() -> A::Args + Send + Sync>,
        parent: Parent,
    },
}

/// How one run ended.
enum RunEnd {
    /// By itself, by a stop or a kill, or by a failure.
    Ended(ExitReason),
    /// The supervisor ended it to restart it; it waits for this answer.
    StoppedBySupervisor(oneshot::Sender<()>),
    /// The supervisor ended the actor for good.
    Terminated(ExitReason),
}

enum Event<A: Actor> {
    Message(Envelope<A>),
    Signal(Signal),
    /// The mailbox is closed and empty: a graceful stop has handled everything.
    Drained,
}

enum Handled {
    Done,
    Killed,
    Panicked(ExitReason),
}

/// The state of an actor's task. Dropping it (at the end, or when the task is aborted)
/// finishes the actor: see [`Drop`].
pub(crate) struct ActorTask<A: Actor> {
    cell: Arc<ActorCell<A>>,
    inbox: channel::Receiver<Envelope<A>>,
    signals: Lane,
    dead_letters: Option<DeadLetterHook>,
    slot: HandlerSlot,
    exit: Option<ExitReason>,
}

impl<A: Actor> ActorTask<A> {
    pub(crate) fn new(
        cell: Arc<ActorCell<A>>,
        inbox: channel::Receiver<Envelope<A>>,
        signals: Lane,
        dead_letters: Option<DeadLetterHook>,
    ) -> Self {
        Self {
            cell,
            inbox,
            signals,
            dead_letters,
            slot: HandlerSlot::new(),
            exit: None,
        }
    }

    pub(crate) async fn run(mut self, runs: Runs<A>) {
        let reason = match runs {
            Runs::Once(args) => self.run_once(args).await,
            Runs::Supervised { factory, parent } => self.run_supervised(&*factory, &parent).await,
        };
        self.exit = Some(reason);
    }

    async fn run_once(&mut self, args: A::Args) -> ExitReason {
        let (actor, ctx) = match self.start(args).await {
            Ok(started) => started,
            Err(reason) => return reason,
        };
        match self.run_instance(actor, ctx, false).await {
            RunEnd::Ended(reason) | RunEnd::Terminated(reason) => reason,
            RunEnd::StoppedBySupervisor(reply) => {
                let _ = reply.send(());
                ExitReason::Stopped
            }
        }
    }

    async fn run_supervised(
        &mut self,
        factory: &(dyn Fn() -> A::Args + Send + Sync),
        parent: &Parent,
    ) -> ExitReason {
        let mut runs = 0u64;
        // Why the last run ended: the actor's reason if the supervisor then ends it for good.
        let mut last_end = ExitReason::Stopped;
        loop {
            // Between runs only the supervisor's commands count; messages wait for the next run.
            let Some(signal) = self.signals.recv().await else {
                return last_end;
            };
            match signal {
                Signal::Control(Control::Start(reply)) => {
                    if runs > 0 {
                        Counters::bump(&self.cell.core.counters.restarts);
                    }
                    runs += 1;
                    self.cell.core.kill.reset();
                    let args = match std::panic::catch_unwind(AssertUnwindSafe(factory)) {
                        Ok(args) => args,
                        Err(panic) => {
                            last_end = ExitReason::from_panic(&*panic);
                            let _ = reply.send(Err(last_end.clone()));
                            continue;
                        }
                    };
                    let (actor, ctx) = match self.start(args).await {
                        Ok(started) => started,
                        Err(reason) => {
                            last_end = reason.clone();
                            let _ = reply.send(Err(reason));
                            continue;
                        }
                    };
                    let _ = reply.send(Ok(runs));
                    match self.run_instance(actor, ctx, true).await {
                        RunEnd::Ended(reason) => {
                            last_end = reason.clone();
                            parent.run_ended(self.cell.core.id, runs, reason);
                        }
                        RunEnd::StoppedBySupervisor(reply) => {
                            last_end = ExitReason::Stopped;
                            let _ = reply.send(());
                        }
                        RunEnd::Terminated(reason) => return reason,
                    }
                }
                Signal::Control(Control::StopRun(reply)) => {
                    let _ = reply.send(());
                }
                Signal::Control(Control::Terminate) => return last_end,
                // Between runs the supervisor is in charge: stops, kills (a stale wake-up
                // or one for the next run) and link signals wait for nothing.
                Signal::Stop | Signal::Kill | Signal::Unreferenced | Signal::Exit(_) => {}
            }
        }
    }

    async fn start(&mut self, args: A::Args) -> Result<(A, Context<A>), ExitReason> {
        let mut ctx = Context::new(self.cell.clone());
        let starting = AssertUnwindSafe(A::on_start(args, &mut ctx)).catch_unwind();
        let Some(started) = unless_killed(starting, &self.cell.core.kill).await else {
            return Err(ExitReason::Killed);
        };
        #[cfg(feature = "tracing")]
        tracing::debug!(actor = %self.cell.core.id, kind = self.cell.core.type_name, ok = matches!(started, Ok(Ok(_))), "actor started");
        match started {
            Ok(Ok(actor)) => Ok((actor, ctx)),
            Ok(Err(error)) => Err(ExitReason::Error(Arc::from(error))),
            Err(panic) => Err(ExitReason::from_panic(&*panic)),
        }
    }

    async fn run_instance(
        &mut self,
        mut actor: A,
        mut ctx: Context<A>,
        supervised: bool,
    ) -> RunEnd {
        let mut draining: Option<ExitReason> = None;
        // A supervised actor's stop: handle what is queued, keep the mailbox open (the
        // supervisor may restart it), end when the queue is empty.
        let mut until_empty = false;
        let mut terminating = false;
        let mut stopped_by_supervisor = None;
        let reason = loop {
            if let Some(reason) = ctx.take_stop() {
                break reason;
            }
            if self.cell.core.kill.is_killed() {
                break ExitReason::Killed;
            }
            match self.next_event(until_empty).await {
                Event::Message(envelope) => {
                    match self.handle(envelope, &mut actor, &mut ctx).await {
                        Handled::Done => {}
                        Handled::Killed => break ExitReason::Killed,
                        Handled::Panicked(reason) => {
                            Counters::bump(&self.cell.core.counters.panics);
                            let action = AssertUnwindSafe(actor.on_panic(&reason, &mut ctx))
                                .catch_unwind()
                                .await;
                            if !matches!(action, Ok(PanicAction::Resume)) {
                                break reason;
                            }
                        }
                    }
                    // Let other tasks on this worker run now and then: the mailbox is not
                    // a tokio resource, so tokio's own budget does not see it.
                    tokio::task::consume_budget().await;
                }
                Event::Drained => break draining.take().unwrap_or(ExitReason::Stopped),
                Event::Signal(signal) => match signal {
                    Signal::Stop if supervised => {
                        until_empty = true;
                        draining.get_or_insert(ExitReason::Stopped);
                    }
                    Signal::Stop => self.drain(&mut draining, ExitReason::Stopped),
                    Signal::Unreferenced => {
                        if !supervised && self.cell.core.refs.is_unreferenced() {
                            self.drain(&mut draining, ExitReason::Normal);
                        }
                    }
                    // The flag is checked at the top of the loop; a stale wake-up is ignored.
                    Signal::Kill => {}
                    Signal::Exit(exit) => {
                        let handled = AssertUnwindSafe(actor.on_exit_signal(exit, &mut ctx))
                            .catch_unwind()
                            .await;
                        if let Err(panic) = handled {
                            Counters::bump(&self.cell.core.counters.panics);
                            break ExitReason::from_panic(&*panic);
                        }
                    }
                    Signal::Control(Control::StopRun(reply)) => {
                        stopped_by_supervisor = Some(reply);
                        break ExitReason::Stopped;
                    }
                    Signal::Control(Control::Terminate) => {
                        terminating = true;
                        self.drain(&mut draining, ExitReason::Stopped);
                    }
                    // Only a supervisor starts runs, and never a running one.
                    Signal::Control(Control::Start(reply)) => drop(reply),
                },
            }
        };
        let stopped = AssertUnwindSafe(actor.on_stop(&reason, &mut ctx))
            .catch_unwind()
            .await;
        if stopped.is_err() {
            Counters::bump(&self.cell.core.counters.panics);
        }
        #[cfg(feature = "tracing")]
        tracing::debug!(actor = %self.cell.core.id, kind = self.cell.core.type_name, %reason, "actor run ended");
        ctx.cancel_timers();
        if terminating || (!supervised && stopped_by_supervisor.is_none()) {
            RunEnd::Terminated(reason)
        } else if let Some(reply) = stopped_by_supervisor {
            RunEnd::StoppedBySupervisor(reply)
        } else {
            RunEnd::Ended(reason)
        }
    }

    /// Starts a graceful stop: no new message is accepted, the queued ones are handled.
    fn drain(&self, draining: &mut Option<ExitReason>, reason: ExitReason) {
        self.inbox.close();
        draining.get_or_insert(reason);
    }

    /// The next signal (first) or message; `Drained` when the mailbox is closed and empty,
    /// or just empty if `until_empty`.
    async fn next_event(&mut self, until_empty: bool) -> Event<A> {
        if let Some(signal) = self.signals.try_recv() {
            return Event::Signal(signal);
        }
        match self.inbox.try_recv() {
            Ok(envelope) => return Event::Message(envelope),
            Err(PopError::Closed) => return Event::Drained,
            Err(PopError::Empty) if until_empty => return Event::Drained,
            Err(PopError::Empty) => {}
        }
        // Sleep until a sender rings the doorbell: arm it, then look once more.
        let doorbell = self.cell.core.lane.doorbell();
        poll_fn(|cx| {
            doorbell.arm(cx.waker());
            if let Some(signal) = self.signals.try_recv() {
                doorbell.disarm();
                return Poll::Ready(Event::Signal(signal));
            }
            match self.inbox.try_recv() {
                Ok(envelope) => {
                    doorbell.disarm();
                    Poll::Ready(Event::Message(envelope))
                }
                Err(PopError::Closed) => {
                    doorbell.disarm();
                    Poll::Ready(Event::Drained)
                }
                Err(PopError::Empty) => Poll::Pending,
            }
        })
        .await
    }

    async fn handle(
        &mut self,
        envelope: Envelope<A>,
        actor: &mut A,
        ctx: &mut Context<A>,
    ) -> Handled {
        let core = &self.cell.core;
        Counters::bump(&core.counters.processed);
        #[cfg(feature = "tracing")]
        let span = tracing::trace_span!("actor.handle", actor = %core.id, kind = core.type_name, message = envelope.message_type());
        let running = envelope.deliver(actor, ctx, &mut self.slot);
        #[cfg(feature = "tracing")]
        let running = tracing::Instrument::instrument(running, span);
        HandlerRun {
            running,
            kill: &core.kill,
        }
        .await
    }
}

/// Runs `future` unless the kill switch is thrown first (`None` then).
async fn unless_killed<F: Future>(future: F, kill: &KillSwitch) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => kill.poll_killed(cx).map(|()| None),
    })
    .await
}

/// A handler racing the kill switch, with its panics caught. The switch is polled only
/// while the handler is pending, so a handler that completes at once costs nothing extra.
struct HandlerRun<'a, F> {
    running: F,
    kill: &'a KillSwitch,
}

impl<F: Future<Output = ()> + Unpin> Future for HandlerRun<'_, F> {
    type Output = Handled;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Handled> {
        let this = &mut *self;
        let polled =
            std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut this.running).poll(cx)));
        match polled {
            Ok(Poll::Ready(())) => Poll::Ready(Handled::Done),
            Err(panic) => Poll::Ready(Handled::Panicked(ExitReason::from_panic(&*panic))),
            Ok(Poll::Pending) => match this.kill.poll_killed(cx) {
                Poll::Ready(()) => Poll::Ready(Handled::Killed),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<A: Actor> Drop for ActorTask<A> {
    /// The actor's end, also when its task was aborted: close the mailbox, report what is
    /// left in it as dead letters, tell the watchers, publish the exit reason.
    fn drop(&mut self) {
        let reason = self.exit.take().unwrap_or(ExitReason::Killed);
        let core = &self.cell.core;
        self.inbox.close();
        while let Ok(envelope) = self.inbox.try_recv() {
            Counters::bump(&core.counters.dead_letters);
            let letter = envelope.into_dead_letter();
            if let Some(hook) = &self.dead_letters {
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| hook(letter)));
            }
        }
        // Dropping queued signals closes any reply channel a supervisor waits on.
        drop(self.signals.close());
        core.finish(reason);
    }
}
