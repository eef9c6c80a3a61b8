//! The two traits an actor implements: [`Actor`] for its life, [`Message`] once per
//! message type it handles.

use std::error::Error;
use std::future::Future;

use crate::actor_ref::ActorRef;
use crate::context::Context;
use crate::exit::{ExitKind, ExitReason, ExitSignal};
use crate::spawn::Spawn;

/// The error type `on_start` may fail with: any error, boxed.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// What to do after a handler panicked ([`Actor::on_panic`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanicAction {
    /// Stop with [`ExitReason::Panicked`] (the default; a supervisor may restart it).
    Stop,
    /// Keep running with the state as the panic left it, and handle the next message.
    Resume,
}

/// An actor: state owned by one task, changed only by the messages it handles one at a
/// time, so it needs no lock.
///
/// Only [`on_start`](Self::on_start) is required. Every hook is a native `async fn`; the
/// futures are polled in place, never boxed.
///
/// # Examples
///
/// ```
/// use flowbed_actor::{Actor, BoxError, Context, Message};
///
/// struct Counter(u64);
///
/// impl Actor for Counter {
///     type Args = u64;
///     async fn on_start(start: u64, _: &mut Context<Self>) -> Result<Self, BoxError> {
///         Ok(Counter(start))
///     }
/// }
///
/// struct Add(u64);
///
/// impl Message<Add> for Counter {
///     type Reply = u64;
///     async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> u64 {
///         self.0 += n;
///         self.0
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let counter = Counter::spawn(1);
/// assert_eq!(counter.ask(Add(2)).await.unwrap(), 3);
/// # }
/// ```
pub trait Actor: Sized + Send + 'static {
    /// What [`on_start`](Self::on_start) builds the actor from. A supervisor calls its
    /// child's factory for fresh `Args` at every restart.
    type Args: Send + 'static;

    /// Builds the actor's state. Messages sent meanwhile wait in the mailbox.
    ///
    /// # Errors
    ///
    /// An error stops the actor with [`ExitReason::Error`] (`on_stop` does not run: there
    /// is no state to stop).
    fn on_start(
        args: Self::Args,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<Self, BoxError>> + Send;

    /// Runs once at the end of every run that started, whatever the reason: stopped,
    /// failed, panicked, killed, or its supervisor shutting down. A panic here is caught.
    fn on_stop(
        &mut self,
        reason: &ExitReason,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reason, ctx);
        async {}
    }

    /// Called after a handler panicked (the panic is caught; the state is as the panic
    /// left it). The default stops the actor.
    fn on_panic(
        &mut self,
        panic: &ExitReason,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = PanicAction> + Send {
        let _ = (panic, ctx);
        async { PanicAction::Stop }
    }

    /// Called when a linked or monitored actor ends, on the priority lane (ahead of
    /// queued messages). The default stops this actor with [`ExitReason::Linked`] when a
    /// *linked* actor failed, and ignores everything else (Erlang's behaviour for a
    /// process that does not trap exits).
    fn on_exit_signal(
        &mut self,
        signal: ExitSignal,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ()> + Send {
        if signal.kind == ExitKind::Link && !signal.reason.is_normal() {
            ctx.stop_with(ExitReason::Linked {
                from: signal.from,
                reason: std::sync::Arc::new(signal.reason),
            });
        }
        async {}
    }

    /// Spawns the actor on the current tokio runtime with the default options (a bounded
    /// mailbox of [`Spawn::DEFAULT_CAPACITY`] messages) and returns its reference at once.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    fn spawn(args: Self::Args) -> ActorRef<Self> {
        Spawn::new().spawn(args)
    }
}

/// Handling one message type: implement it once per message the actor accepts. Each has
/// its own reply type, so an ask is checked at compile time.
///
/// # Examples
///
/// ```
/// use flowbed_actor::{Actor, BoxError, Context, Message};
///
/// struct Greeter;
/// impl Actor for Greeter {
///     type Args = ();
///     async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
///         Ok(Greeter)
///     }
/// }
///
/// struct Hello(&'static str);
/// impl Message<Hello> for Greeter {
///     type Reply = String;
///     async fn handle(&mut self, Hello(name): Hello, _: &mut Context<Self>) -> String {
///         format!("hello, {name}")
///     }
/// }
///
/// struct Count;
/// impl Message<Count> for Greeter {
///     type Reply = usize;
///     async fn handle(&mut self, _: Count, _: &mut Context<Self>) -> usize {
///         1
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let greeter = Greeter::spawn(());
/// assert_eq!(greeter.ask(Hello("ana")).await.unwrap(), "hello, ana");
/// assert_eq!(greeter.ask(Count).await.unwrap(), 1);
/// # }
/// ```
pub trait Message<M: Send + 'static>: Actor {
    /// What an [`ask`](ActorRef::ask) of `M` returns (dropped for a `tell`).
    type Reply: Send + 'static;

    /// Handles one message. Messages are handled one at a time, in mailbox order.
    fn handle(
        &mut self,
        message: M,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Self::Reply> + Send;
}
