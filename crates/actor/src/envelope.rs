//! A message in a mailbox: the value, its handler, and for an ask the reply channel.

use std::any::Any;
use std::fmt;

use tokio::sync::oneshot;

use crate::actor::{Actor, Message};
use crate::context::Context;
use crate::handler_slot::{HandlerSlot, Running};

/// A boxed message of any type `A` handles. One allocation per message.
pub(crate) type Envelope<A> = Box<dyn Deliver<A>>;

/// Runs a message's handler, or gives the message up as a dead letter.
pub(crate) trait Deliver<A: Actor>: Send {
    /// Starts the handler in `slot`; for an ask, the reply is sent when it finishes.
    fn deliver<'a>(
        self: Box<Self>,
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
        slot: &'a mut HandlerSlot,
    ) -> Running<'a>;

    /// The message, never handled (an asker sees its reply channel closed).
    fn into_dead_letter(self: Box<Self>) -> DeadLetter;

    /// The message's type name (for tracing).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    fn message_type(&self) -> &'static str;
}

pub(crate) struct Tell<M>(pub(crate) M);

impl<A: Message<M>, M: Send + 'static> Deliver<A> for Tell<M> {
    fn deliver<'a>(
        self: Box<Self>,
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
        slot: &'a mut HandlerSlot,
    ) -> Running<'a> {
        let Tell(message) = *self;
        slot.run(async move {
            actor.handle(message, ctx).await;
        })
    }

    fn into_dead_letter(self: Box<Self>) -> DeadLetter {
        DeadLetter::new(self.0, false)
    }

    fn message_type(&self) -> &'static str {
        std::any::type_name::<M>()
    }
}

pub(crate) struct Ask<M, R> {
    pub(crate) message: M,
    pub(crate) reply: oneshot::Sender<R>,
}

impl<A: Message<M>, M: Send + 'static> Deliver<A> for Ask<M, A::Reply> {
    fn deliver<'a>(
        self: Box<Self>,
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
        slot: &'a mut HandlerSlot,
    ) -> Running<'a> {
        let Ask { message, reply } = *self;
        slot.run(async move {
            // Handled even if the asker gave up meanwhile: it was accepted, and the
            // handler may have effects beyond the reply.
            let answer = actor.handle(message, ctx).await;
            let _ = reply.send(answer);
        })
    }

    fn into_dead_letter(self: Box<Self>) -> DeadLetter {
        DeadLetter::new(self.message, true)
    }

    fn message_type(&self) -> &'static str {
        std::any::type_name::<M>()
    }
}

/// A message that was accepted into a mailbox but never handled, because the actor was
/// killed, failed or panicked with it still queued (a graceful [`stop`] handles every
/// queued message first). Passed to the hook set with
/// [`Spawn::on_dead_letter`](crate::Spawn::on_dead_letter) and counted in
/// [`ActorStats::dead_letters`](crate::ActorStats::dead_letters).
///
/// [`stop`]: crate::ActorRef::stop
pub struct DeadLetter {
    message: Box<dyn Any + Send>,
    type_name: &'static str,
    was_ask: bool,
}

impl DeadLetter {
    fn new<M: Send + 'static>(message: M, was_ask: bool) -> Self {
        Self {
            message: Box::new(message),
            type_name: std::any::type_name::<M>(),
            was_ask,
        }
    }

    /// The message's type name, for logs.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// True if it was an ask (the asker got [`AskError::NoReply`](crate::AskError::NoReply)).
    pub fn was_ask(&self) -> bool {
        self.was_ask
    }

    /// True if the message is an `M`.
    pub fn is<M: 'static>(&self) -> bool {
        self.message.is::<M>()
    }

    /// The message back, if it is an `M`.
    ///
    /// # Errors
    ///
    /// The dead letter itself when the message is of another type.
    pub fn downcast<M: 'static>(self) -> Result<M, Self> {
        match self.message.downcast::<M>() {
            Ok(message) => Ok(*message),
            Err(message) => Err(Self { message, ..self }),
        }
    }
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("type_name", &self.type_name)
            .field("was_ask", &self.was_ask)
            .finish()
    }
}
