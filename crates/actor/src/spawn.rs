//! [`Spawn`]: the options an actor is spawned with (mailbox, ask timeout, dead letters).

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use flowbed_lockfree::channel;
use tokio::runtime::Handle;

use crate::actor::Actor;
use crate::actor_ref::{ActorRef, DEFAULT_ASK_TIMEOUT};
use crate::cell::{ActorCell, Core};
use crate::envelope::DeadLetter;
use crate::error::ConfigError;
use crate::run::{ActorTask, Parent, Runs};
use crate::signal::Lane;
use crate::sync::lock;

/// An actor's mailbox: bounded (the default) or, when asked for explicitly, unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mailbox {
    /// Holds at most this many messages; `tell` waits for room, `try_tell` fails.
    Bounded(NonZeroUsize),
    /// Never full: memory grows with the backlog. Use only where the senders are bounded
    /// some other way.
    Unbounded,
}

impl Mailbox {
    /// A bounded mailbox of `capacity` messages.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a capacity of 0.
    pub fn bounded(capacity: usize) -> Result<Self, ConfigError> {
        NonZeroUsize::new(capacity)
            .map(Self::Bounded)
            .ok_or(ConfigError::Invalid {
                setting: "mailbox capacity",
                why: "must be at least 1",
            })
    }
}

impl Default for Mailbox {
    fn default() -> Self {
        Self::Bounded(NonZeroUsize::new(Spawn::DEFAULT_CAPACITY).expect("non-zero"))
    }
}

pub(crate) type DeadLetterHook = Arc<dyn Fn(DeadLetter) + Send + Sync>;

/// Options for spawning an actor; [`Actor::spawn`] uses the defaults.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_actor::{Actor, BoxError, Context, Mailbox, Spawn};
///
/// struct Sink;
/// impl Actor for Sink {
///     type Args = ();
///     async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
///         Ok(Sink)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let sink = Spawn::new()
///     .mailbox(Mailbox::bounded(4096).unwrap())
///     .ask_timeout(Duration::from_millis(250))
///     .on_dead_letter(|letter| eprintln!("lost a {}", letter.type_name()))
///     .spawn::<Sink>(());
/// assert_eq!(sink.stats().mailbox_capacity, Some(4096));
/// # }
/// ```
#[derive(Clone)]
pub struct Spawn {
    mailbox: Mailbox,
    ask_timeout: Duration,
    dead_letters: Option<DeadLetterHook>,
    runtime: Option<Handle>,
}

impl Spawn {
    /// The default mailbox bound (as kameo's; ractor's and actix's defaults are unbounded).
    pub const DEFAULT_CAPACITY: usize = 64;

    /// Default options: a bounded mailbox of [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY),
    /// asks time out after [`DEFAULT_ASK_TIMEOUT`], the current runtime.
    pub fn new() -> Self {
        Self {
            mailbox: Mailbox::default(),
            ask_timeout: DEFAULT_ASK_TIMEOUT,
            dead_letters: None,
            runtime: None,
        }
    }

    /// The mailbox.
    pub fn mailbox(mut self, mailbox: Mailbox) -> Self {
        self.mailbox = mailbox;
        self
    }

    /// The deadline of [`ActorRef::ask`] for this actor.
    pub fn ask_timeout(mut self, timeout: Duration) -> Self {
        self.ask_timeout = timeout;
        self
    }

    /// Called with every message that was accepted but never handled (see
    /// [`DeadLetter`]), from the actor's task as it ends. A panic in it is caught.
    pub fn on_dead_letter(mut self, hook: impl Fn(DeadLetter) + Send + Sync + 'static) -> Self {
        self.dead_letters = Some(Arc::new(hook));
        self
    }

    /// The runtime to run on (default: the current one).
    pub fn runtime(mut self, runtime: Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Spawns the actor and returns its reference at once; `on_start` runs on the actor's
    /// task, and messages sent meanwhile wait in the mailbox.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime when no [`runtime`](Self::runtime) was given.
    pub fn spawn<A: Actor>(self, args: A::Args) -> ActorRef<A> {
        let (actor, task) = self.prepare::<A>(false);
        self.start_task(&actor, task.run(Runs::Once(args)));
        actor
    }

    /// Spawns a supervised child: it starts a run only when its supervisor says so.
    pub(crate) fn spawn_supervised<A: Actor>(
        self,
        factory: Arc<dyn Fn() -> A::Args + Send + Sync>,
        parent: Parent,
    ) -> ActorRef<A> {
        let (actor, task) = self.prepare::<A>(true);
        self.start_task(&actor, task.run(Runs::Supervised { factory, parent }));
        actor
    }

    fn prepare<A: Actor>(&self, supervised: bool) -> (ActorRef<A>, ActorTask<A>) {
        let (mailbox, inbox) = match self.mailbox {
            Mailbox::Bounded(capacity) => channel::bounded(capacity.get()),
            Mailbox::Unbounded => channel::unbounded(),
        };
        let lane = Lane::new();
        let cell = Arc::new(ActorCell {
            core: Core::new(std::any::type_name::<A>(), supervised, lane.clone()),
            mailbox,
            ask_timeout: self.ask_timeout,
        });
        let task = ActorTask::new(cell.clone(), inbox, lane, self.dead_letters.clone());
        (ActorRef::from_cell(cell), task)
    }

    fn start_task<A: Actor>(
        &self,
        actor: &ActorRef<A>,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        let handle = match &self.runtime {
            Some(runtime) => runtime.spawn(task),
            None => tokio::spawn(task),
        };
        *lock(&actor.cell.core.task) = Some(handle.abort_handle());
    }
}

impl Default for Spawn {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Spawn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawn")
            .field("mailbox", &self.mailbox)
            .field("ask_timeout", &self.ask_timeout)
            .field("dead_letters", &self.dead_letters.is_some())
            .finish()
    }
}
