//! [`ActorRef`]: the typed handle to send to an actor, and its weak twin.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use flowbed_lockfree::channel;
use flowbed_lockfree::{ClosedError, PushError};
use tokio::sync::oneshot;

use crate::actor::{Actor, Message};
use crate::cell::ActorCell;
use crate::envelope::{self, Envelope};
use crate::error::{AskError, SendError};
use crate::exit::{ActorId, ExitReason};
use crate::signal::Signal;
use crate::stats::ActorStats;

/// A handle to a running actor, typed by the actor: `tell` and `ask` accept exactly the
/// messages it has a [`Message`] handler for.
///
/// Clones are cheap (one counter). The actor stops by itself ([`ExitReason::Normal`],
/// after handling what is queued) when the last `ActorRef` is dropped, unless it is
/// supervised or registered (both hold a reference). [`WeakActorRef`] does not keep it
/// running.
///
/// # Examples
///
/// ```
/// use flowbed_actor::{Actor, BoxError, Context, Message};
///
/// struct Log(Vec<String>);
/// impl Actor for Log {
///     type Args = ();
///     async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
///         Ok(Log(Vec::new()))
///     }
/// }
/// struct Append(String);
/// impl Message<Append> for Log {
///     type Reply = ();
///     async fn handle(&mut self, Append(line): Append, _: &mut Context<Self>) {
///         self.0.push(line);
///     }
/// }
/// struct Len;
/// impl Message<Len> for Log {
///     type Reply = usize;
///     async fn handle(&mut self, _: Len, _: &mut Context<Self>) -> usize {
///         self.0.len()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let log = Log::spawn(());
/// log.tell(Append("started".into())).await.unwrap(); // waits only for mailbox room
/// log.try_tell(Append("more".into())).unwrap();       // never waits
/// assert_eq!(log.ask(Len).await.unwrap(), 2);         // handled in order
/// log.stop();
/// assert!(log.wait_for_stop().await.is_normal());
/// # }
/// ```
pub struct ActorRef<A: Actor> {
    pub(crate) cell: Arc<ActorCell<A>>,
}

/// How long an ask waits for its reply unless told otherwise
/// ([`Spawn::ask_timeout`](crate::Spawn::ask_timeout), [`ActorRef::ask_timeout`]).
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(5);

impl<A: Actor> ActorRef<A> {
    /// Takes a new strong reference to a cell (the count was raised by the caller).
    pub(crate) fn from_cell(cell: Arc<ActorCell<A>>) -> Self {
        Self { cell }
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.cell.core.id
    }

    /// Sends a message without a reply, waiting while the mailbox is full (this is the
    /// backpressure: a fast sender slows to the actor's pace).
    ///
    /// Once this returns `Ok` the message is accepted: it will be handled, or, if the
    /// actor is killed or fails first, reported as a [`DeadLetter`](crate::DeadLetter).
    ///
    /// # Errors
    ///
    /// [`SendError::Stopped`] with the message if the actor has stopped or is stopping.
    pub async fn tell<M>(&self, message: M) -> Result<(), SendError<M>>
    where
        A: Message<M>,
        M: Send + 'static,
    {
        let envelope: Envelope<A> = Box::new(envelope::Tell(message));
        match self.cell.push(envelope) {
            Ok(()) => Ok(()),
            Err(PushError::Closed(envelope)) => Err(SendError::Stopped(unwrap_tell(envelope))),
            Err(PushError::Full(envelope)) => match self.cell.push_waiting(envelope).await {
                Ok(()) => Ok(()),
                Err(ClosedError(envelope)) => Err(SendError::Stopped(unwrap_tell(envelope))),
            },
        }
    }

    /// Sends a message if the mailbox has room now; never waits.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] or [`SendError::Stopped`], with the message.
    pub fn try_tell<M>(&self, message: M) -> Result<(), SendError<M>>
    where
        A: Message<M>,
        M: Send + 'static,
    {
        let envelope: Envelope<A> = Box::new(envelope::Tell(message));
        self.cell.push(envelope).map_err(|error| match error {
            PushError::Full(envelope) => SendError::Full(unwrap_tell(envelope)),
            PushError::Closed(envelope) => SendError::Stopped(unwrap_tell(envelope)),
        })
    }

    /// Like [`tell`](Self::tell), but gives up after `timeout` of a full mailbox.
    ///
    /// # Errors
    ///
    /// [`SendError::Timeout`] or [`SendError::Stopped`], with the message.
    pub async fn tell_timeout<M>(&self, message: M, timeout: Duration) -> Result<(), SendError<M>>
    where
        A: Message<M>,
        M: Send + 'static,
    {
        let envelope: Envelope<A> = Box::new(envelope::Tell(message));
        let envelope = match self.cell.push(envelope) {
            Ok(()) => return Ok(()),
            Err(PushError::Closed(envelope)) => {
                return Err(SendError::Stopped(unwrap_tell(envelope)));
            }
            Err(PushError::Full(envelope)) => envelope,
        };
        let send = self.cell.mailbox.send(envelope);
        let sleep = tokio::time::sleep(timeout);
        match (SendOrTimeout {
            send: Some(send),
            sleep: Box::pin(sleep),
        })
        .await
        {
            SendOutcome::Sent => {
                self.cell.core.lane.doorbell().ring();
                Ok(())
            }
            SendOutcome::Closed(envelope) => Err(SendError::Stopped(unwrap_tell(envelope))),
            SendOutcome::TimedOut(envelope) => {
                Err(SendError::Timeout(unwrap_tell(envelope), timeout))
            }
        }
    }

    /// Sends a message and waits for the handler's reply, at most the actor's ask timeout
    /// ([`DEFAULT_ASK_TIMEOUT`], 5 s, unless spawned with another).
    ///
    /// # Errors
    ///
    /// [`AskError::Stopped`] at once (with the message) if the actor has stopped;
    /// [`AskError::Timeout`] at the deadline; [`AskError::NoReply`] if the actor ended
    /// without handling it or the handler panicked.
    pub async fn ask<M>(&self, message: M) -> Result<A::Reply, AskError<M>>
    where
        A: Message<M>,
        M: Send + 'static,
    {
        self.ask_timeout(message, self.cell.ask_timeout).await
    }

    /// [`ask`](Self::ask) with this call's own deadline (covering the wait for mailbox
    /// room and for the reply).
    ///
    /// # Errors
    ///
    /// As [`ask`](Self::ask).
    pub async fn ask_timeout<M>(
        &self,
        message: M,
        timeout: Duration,
    ) -> Result<A::Reply, AskError<M>>
    where
        A: Message<M>,
        M: Send + 'static,
    {
        crate::deadline::anchor_current_runtime();
        let deadline = tokio::time::Instant::now() + timeout;
        let (reply, answer) = oneshot::channel();
        let envelope: Envelope<A> = Box::new(envelope::Ask { message, reply });
        match self.cell.push(envelope) {
            Ok(()) => {}
            Err(PushError::Closed(envelope)) => {
                return Err(AskError::Stopped(unwrap_ask::<A, M>(envelope)));
            }
            Err(PushError::Full(envelope)) => {
                match tokio::time::timeout_at(deadline, self.cell.push_waiting(envelope)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(ClosedError(envelope))) => {
                        return Err(AskError::Stopped(unwrap_ask::<A, M>(envelope)));
                    }
                    Err(_) => return Err(AskError::Timeout(timeout)),
                }
            }
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(AskError::NoReply),
            Err(_) => Err(AskError::Timeout(timeout)),
        }
    }

    /// Stops the actor gracefully: from the moment this returns it accepts no new message;
    /// it handles every message already queued, runs `on_stop(Stopped)` and ends. Returns at
    /// once (see [`wait_for_stop`](Self::wait_for_stop)).
    ///
    /// A supervised actor also handles its queue first (its mailbox stays open meanwhile),
    /// then its supervisor decides what happens next, as in OTP: a permanent child is
    /// restarted, a transient or temporary one ends.
    pub fn stop(&self) {
        if !self.cell.core.supervised {
            // From this moment no message is accepted; the actor drains what is queued.
            self.cell.mailbox.close();
        }
        self.cell.core.signal(Signal::Stop);
    }

    /// Kills the actor: the running handler is dropped at its next suspension point, no
    /// further message is handled, `on_stop(Killed)` runs, and the queued messages become
    /// dead letters.
    pub fn kill(&self) {
        self.cell.core.kill();
    }

    /// Waits until the actor has ended for good and returns why. Returns at once if it has.
    pub async fn wait_for_stop(&self) -> ExitReason {
        self.cell.core.wait_for_exit().await
    }

    /// True until the actor has ended for good.
    pub fn is_alive(&self) -> bool {
        self.cell.core.is_alive()
    }

    /// A reference that does not keep the actor running.
    pub fn downgrade(&self) -> WeakActorRef<A> {
        WeakActorRef {
            cell: self.cell.clone(),
        }
    }

    /// A snapshot of the actor's counters and mailbox.
    pub fn stats(&self) -> ActorStats {
        self.cell.stats()
    }

    /// Messages waiting in the mailbox now.
    pub fn mailbox_len(&self) -> usize {
        self.cell.mailbox.len()
    }
}

fn unwrap_tell<A: Message<M>, M: Send + 'static>(envelope: Envelope<A>) -> M {
    envelope
        .into_dead_letter()
        .downcast::<M>()
        .expect("the envelope was built from an M")
}

fn unwrap_ask<A: Message<M>, M: Send + 'static>(envelope: Envelope<A>) -> M {
    unwrap_tell::<A, M>(envelope)
}

enum SendOutcome<T> {
    Sent,
    Closed(T),
    TimedOut(T),
}

/// A send racing a timer; on timeout the value comes back out of the send.
struct SendOrTimeout<'a, T> {
    send: Option<channel::Send<'a, T>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<T> Future for SendOrTimeout<'_, T> {
    type Output = SendOutcome<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let send = this.send.as_mut().expect("polled after completion");
        if let Poll::Ready(result) = Pin::new(send).poll(cx) {
            this.send = None;
            return Poll::Ready(match result {
                Ok(()) => SendOutcome::Sent,
                Err(ClosedError(value)) => SendOutcome::Closed(value),
            });
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            let send = this.send.take().expect("still sending");
            return Poll::Ready(match send.cancel() {
                Some(value) => SendOutcome::TimedOut(value),
                None => SendOutcome::Sent,
            });
        }
        Poll::Pending
    }
}

impl<A: Actor> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        self.cell.core.refs.acquire();
        Self {
            cell: self.cell.clone(),
        }
    }
}

impl<A: Actor> Drop for ActorRef<A> {
    fn drop(&mut self) {
        if self.cell.core.refs.release() {
            self.cell.core.signal(Signal::Unreferenced);
        }
    }
}

impl<A: Actor> PartialEq for ActorRef<A> {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl<A: Actor> Eq for ActorRef<A> {}

impl<A: Actor> std::hash::Hash for ActorRef<A> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl<A: Actor> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef")
            .field("id", &self.id())
            .field("actor", &self.cell.core.type_name)
            .field("alive", &self.is_alive())
            .finish()
    }
}

/// A reference that does not keep the actor running; [`upgrade`](Self::upgrade) it to
/// send. Timers hold these.
pub struct WeakActorRef<A: Actor> {
    pub(crate) cell: Arc<ActorCell<A>>,
}

impl<A: Actor> WeakActorRef<A> {
    /// A strong reference, or `None` once the actor has ended.
    pub fn upgrade(&self) -> Option<ActorRef<A>> {
        if !self.cell.core.is_alive() {
            return None;
        }
        self.cell.core.refs.acquire();
        Some(ActorRef::from_cell(self.cell.clone()))
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.cell.core.id
    }

    /// True until the actor has ended for good.
    pub fn is_alive(&self) -> bool {
        self.cell.core.is_alive()
    }
}

impl<A: Actor> Clone for WeakActorRef<A> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for WeakActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakActorRef")
            .field("id", &self.id())
            .field("alive", &self.is_alive())
            .finish()
    }
}
