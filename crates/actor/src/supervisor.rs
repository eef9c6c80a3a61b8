//! OTP supervision: a [`Supervisor`] actor starts its children in order, restarts them by
//! strategy and restart type within a restart intensity, escalates when that is exceeded,
//! and stops them in reverse order with a shutdown timeout, then a kill.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::actor::{Actor, BoxError, Message};
use crate::actor_ref::ActorRef;
use crate::cell::AnyCell;
use crate::context::Context;
use crate::error::{ConfigError, StartChildError};
use crate::exit::{ActorId, ExitKind, ExitReason, ExitSignal};
use crate::run::Parent;
use crate::signal::Control;
use crate::spawn::Spawn;

/// Which children restart when one fails (OTP's strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Only the failed child (the default).
    #[default]
    OneForOne,
    /// Every child: the others are stopped in reverse order, then all start in order.
    /// For children that only make sense together.
    OneForAll,
    /// The failed child and those started after it (which depend on it).
    RestForOne,
}

/// When a child is restarted (OTP's restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Restart {
    /// Always, whatever the reason (the default).
    #[default]
    Permanent,
    /// Only after a failure ([`ExitReason::is_normal`] is false); after a normal end it is
    /// removed, like a temporary child.
    Transient,
    /// Never; the child is removed when it ends.
    Temporary,
}

/// Exponential delay before a restart: `initial`, doubled for every restart within the
/// intensity period, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    fn delay(self, restarts_in_period: usize) -> Duration {
        let doublings = restarts_in_period.saturating_sub(1).min(30) as u32;
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }
}

/// One child of a supervisor: how to build its arguments (called at every start), when to
/// restart it, how long it gets to stop.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_actor::{Actor, BoxError, ChildSpec, Context, Restart};
///
/// struct Worker;
/// impl Actor for Worker {
///     type Args = u32;
///     async fn on_start(_: u32, _: &mut Context<Self>) -> Result<Self, BoxError> {
///         Ok(Worker)
///     }
/// }
///
/// let spec = ChildSpec::<Worker>::new("worker-1", || 1)
///     .restart(Restart::Transient)
///     .shutdown(Duration::from_secs(1));
/// assert_eq!(spec.name(), "worker-1");
/// ```
pub struct ChildSpec<A: Actor> {
    name: String,
    factory: Arc<dyn Fn() -> A::Args + Send + Sync>,
    restart: Restart,
    shutdown: Duration,
    spawn: Spawn,
}

impl<A: Actor> ChildSpec<A> {
    /// The default time a child gets to stop before it is killed.
    pub const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(5);

    /// A permanent child named `name`, started from `factory()`.
    pub fn new(
        name: impl Into<String>,
        factory: impl Fn() -> A::Args + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            factory: Arc::new(factory),
            restart: Restart::Permanent,
            shutdown: Self::DEFAULT_SHUTDOWN,
            spawn: Spawn::new(),
        }
    }

    /// When to restart it.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// How long it gets to stop (finish its handler, run `on_stop`) before it is killed;
    /// `Duration::ZERO` kills at once.
    pub fn shutdown(mut self, timeout: Duration) -> Self {
        self.shutdown = timeout;
        self
    }

    /// Spawn options (mailbox, ask timeout, dead letters).
    pub fn spawn_options(mut self, spawn: Spawn) -> Self {
        self.spawn = spawn;
        self
    }

    /// The child's name (unique among its siblings).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<A: Actor> Clone for ChildSpec<A> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            factory: self.factory.clone(),
            restart: self.restart,
            shutdown: self.shutdown,
            spawn: self.spawn.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for ChildSpec<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("actor", &std::any::type_name::<A>())
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .finish()
    }
}

/// A child spec with its actor type erased, so one supervisor holds children of any type.
trait AnyChildSpec: Send + Sync {
    fn name(&self) -> &str;
    fn restart(&self) -> Restart;
    fn shutdown(&self) -> Duration;
    fn spawn(&self, parent: Parent) -> (Arc<dyn AnyCell>, Box<dyn Any + Send + Sync>);
}

impl<A: Actor> AnyChildSpec for ChildSpec<A> {
    fn name(&self) -> &str {
        &self.name
    }

    fn restart(&self) -> Restart {
        self.restart
    }

    fn shutdown(&self) -> Duration {
        self.shutdown
    }

    fn spawn(&self, parent: Parent) -> (Arc<dyn AnyCell>, Box<dyn Any + Send + Sync>) {
        let child: ActorRef<A> = self
            .spawn
            .clone()
            .spawn_supervised(self.factory.clone(), parent);
        let cell: Arc<dyn AnyCell> = child.cell.clone();
        (cell, Box::new(child))
    }
}

/// A supervisor's configuration: strategy, restart intensity, backoff and the children it
/// starts with. It is the supervisor's [`Actor::Args`], so a supervisor can itself be a
/// child ([`ChildSpec::new`] with `move || spec.clone()`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use flowbed_actor::{Actor, BoxError, ChildSpec, Context, Message, Strategy, SupervisorSpec};
///
/// struct Worker(u32);
/// impl Actor for Worker {
///     type Args = u32;
///     async fn on_start(id: u32, _: &mut Context<Self>) -> Result<Self, BoxError> {
///         Ok(Worker(id))
///     }
/// }
/// struct Id;
/// impl Message<Id> for Worker {
///     type Reply = u32;
///     async fn handle(&mut self, _: Id, _: &mut Context<Self>) -> u32 {
///         self.0
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let supervisor = SupervisorSpec::new(Strategy::OneForOne)
///     .intensity(3, Duration::from_secs(5))
///     .unwrap()
///     .child(ChildSpec::<Worker>::new("a", || 1))
///     .child(ChildSpec::<Worker>::new("b", || 2))
///     .start()
///     .await
///     .unwrap();
/// let b = supervisor.child::<Worker>("b").await.unwrap();
/// assert_eq!(b.ask(Id).await.unwrap(), 2);
/// supervisor.stop(); // stops b, then a, then itself
/// supervisor.wait_for_stop().await;
/// # }
/// ```
#[derive(Clone)]
pub struct SupervisorSpec {
    strategy: Strategy,
    max_restarts: usize,
    period: Duration,
    backoff: Option<Backoff>,
    children: Vec<Arc<dyn AnyChildSpec>>,
}

impl SupervisorSpec {
    /// A supervisor with `strategy`, OTP's default intensity (at most 3 restarts in
    /// 5 seconds) and no children yet.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            max_restarts: 3,
            period: Duration::from_secs(5),
            backoff: None,
            children: Vec::new(),
        }
    }

    /// Restart intensity: more than `max_restarts` restarts within `period` and the
    /// supervisor gives up: it stops its children and exits with
    /// [`ExitReason::Escalated`], for its own supervisor to handle.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a zero period.
    pub fn intensity(mut self, max_restarts: usize, period: Duration) -> Result<Self, ConfigError> {
        if period.is_zero() {
            return Err(ConfigError::Invalid {
                setting: "intensity period",
                why: "must be longer than zero",
            });
        }
        self.max_restarts = max_restarts;
        self.period = period;
        Ok(self)
    }

    /// Waits before each restart (none by default).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] if `initial` is zero or longer than `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Result<Self, ConfigError> {
        if initial.is_zero() || initial > max {
            return Err(ConfigError::Invalid {
                setting: "backoff",
                why: "initial must be above zero and at most max",
            });
        }
        self.backoff = Some(Backoff { initial, max });
        Ok(self)
    }

    /// Adds a child, started after the ones added before it.
    pub fn child<A: Actor>(mut self, spec: ChildSpec<A>) -> Self {
        self.children.push(Arc::new(spec));
        self
    }

    /// Spawns the supervisor and waits until every child has started.
    ///
    /// # Errors
    ///
    /// [`StartChildError::Failed`] with the child's reason if a child failed to start (the
    /// ones already started are stopped again, in reverse order).
    pub async fn start(self) -> Result<ActorRef<Supervisor>, StartChildError> {
        let supervisor = Spawn::new().spawn::<Supervisor>(self);
        match supervisor.ask(Children).await {
            Ok(_) => Ok(supervisor),
            Err(_) => Err(StartChildError::Failed(child_failure(
                supervisor.wait_for_stop().await,
            ))),
        }
    }
}

/// The child's own reason when a supervisor failed to start because a child did.
fn child_failure(supervisor_exit: ExitReason) -> ExitReason {
    if let ExitReason::Error(error) = &supervisor_exit {
        if let Some(StartChildError::Failed(child)) = error.downcast_ref::<StartChildError>() {
            return child.clone();
        }
    }
    supervisor_exit
}

impl fmt::Debug for SupervisorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorSpec")
            .field("strategy", &self.strategy)
            .field("max_restarts", &self.max_restarts)
            .field("period", &self.period)
            .field("backoff", &self.backoff)
            .field("children", &self.children.len())
            .finish()
    }
}

struct Child {
    spec: Arc<dyn AnyChildSpec>,
    cell: Arc<dyn AnyCell>,
    actor_ref: Box<dyn Any + Send + Sync>,
    /// The current run's number, while it runs.
    run: Option<u64>,
}

impl Child {
    fn id(&self) -> ActorId {
        self.cell.core().id
    }
}

/// Information about one child ([`ActorRef::<Supervisor>::children`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildInfo {
    /// Its name.
    pub name: String,
    /// Its id (stable across restarts: a restart reuses the actor and its mailbox).
    pub id: ActorId,
    /// Its restart type.
    pub restart: Restart,
    /// True while a run is going on.
    pub running: bool,
    /// Its actor type's name.
    pub actor: &'static str,
}

/// The supervisor actor. Start one with [`SupervisorSpec::start`] (or as a child, from a
/// [`ChildSpec<Supervisor>`]); manage it through [`ActorRef<Supervisor>`]'s methods.
///
/// A restart reuses the child's actor: its [`ActorRef`] stays valid and the messages queued
/// when it failed are handled by the next run (the message whose handler panicked is not
/// retried). Children start one after another, each once the previous `on_start` has
/// returned, and stop in reverse order.
pub struct Supervisor {
    spec: SupervisorSpec,
    /// Where children report the end of their runs (our priority lane).
    parent: Parent,
    children: Vec<Child>,
    restarts: VecDeque<Instant>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("strategy", &self.spec.strategy)
            .field("children", &self.children.len())
            .field("recent_restarts", &self.restarts.len())
            .finish()
    }
}

impl Actor for Supervisor {
    type Args = SupervisorSpec;

    async fn on_start(spec: SupervisorSpec, ctx: &mut Context<Self>) -> Result<Self, BoxError> {
        let mut supervisor = Supervisor {
            children: Vec::with_capacity(spec.children.len()),
            parent: Parent {
                lane: ctx.core().lane.clone(),
            },
            spec,
            restarts: VecDeque::new(),
        };
        for child in supervisor.spec.children.clone() {
            if let Err(error) = supervisor.add_child(child).await {
                supervisor.terminate_all().await;
                return Err(Box::new(error));
            }
        }
        Ok(supervisor)
    }

    async fn on_stop(&mut self, _reason: &ExitReason, _ctx: &mut Context<Self>) {
        self.terminate_all().await;
    }

    async fn on_exit_signal(&mut self, signal: ExitSignal, ctx: &mut Context<Self>) {
        match signal.kind {
            ExitKind::Child => self.child_ended(signal, ctx).await,
            ExitKind::Link if !signal.reason.is_normal() => ctx.stop_with(ExitReason::Linked {
                from: signal.from,
                reason: Arc::new(signal.reason),
            }),
            _ => {}
        }
    }
}

impl Supervisor {
    async fn add_child(&mut self, spec: Arc<dyn AnyChildSpec>) -> Result<usize, StartChildError> {
        let (cell, actor_ref) = spec.spawn(self.parent.clone());
        self.children.push(Child {
            spec,
            cell,
            actor_ref,
            run: None,
        });
        let index = self.children.len() - 1;
        match self.start_run(index).await {
            Ok(()) => Ok(index),
            Err(reason) => {
                self.terminate(index).await;
                self.children.remove(index);
                Err(StartChildError::Failed(reason))
            }
        }
    }

    async fn start_run(&mut self, index: usize) -> Result<(), ExitReason> {
        let parent = self.parent.clone();
        let child = &mut self.children[index];
        if !child.cell.core().is_alive() {
            // Its task was aborted (stuck past its shutdown time): it cannot run again in
            // place, so a new actor takes its place, as in OTP (old references are dead).
            let (cell, actor_ref) = child.spec.spawn(parent);
            child.cell = cell;
            child.actor_ref = actor_ref;
        }
        let (reply, started) = oneshot::channel();
        child.cell.core().control(Control::Start(reply));
        match started.await {
            Ok(Ok(run)) => {
                child.run = Some(run);
                Ok(())
            }
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(ExitReason::Killed),
        }
    }

    /// Ends the child's current run (to restart it), killing it after its shutdown time.
    async fn stop_run(&mut self, index: usize) {
        let child = &mut self.children[index];
        if child.run.take().is_none() {
            return;
        }
        let core = child.cell.core();
        let timeout = child.spec.shutdown();
        let (reply, stopped) = oneshot::channel();
        core.control(Control::StopRun(reply));
        let mut stopped = std::pin::pin!(stopped);
        if tokio::time::timeout(timeout, &mut stopped).await.is_err() {
            core.kill();
            if tokio::time::timeout(timeout.max(Duration::from_millis(100)), &mut stopped)
                .await
                .is_err()
            {
                // Stuck even in `on_stop`: end the task; `start_run` replaces the child.
                core.abort();
                core.wait_for_exit().await;
            }
        }
    }

    /// Ends the child for good (it handles what is queued first), killing it after its
    /// shutdown time and aborting it if even that does not end it.
    async fn terminate(&mut self, index: usize) {
        let child = &mut self.children[index];
        child.run = None;
        let core = child.cell.core();
        let timeout = child.spec.shutdown();
        core.control(Control::Terminate);
        if tokio::time::timeout(timeout, core.wait_for_exit())
            .await
            .is_err()
        {
            core.kill();
            let grace = timeout.max(Duration::from_millis(100));
            if tokio::time::timeout(grace, core.wait_for_exit())
                .await
                .is_err()
            {
                core.abort();
                core.wait_for_exit().await;
            }
        }
    }

    async fn terminate_all(&mut self) {
        for index in (0..self.children.len()).rev() {
            self.terminate(index).await;
        }
        self.children.clear();
    }

    /// Records a restart; false if that exceeds the intensity.
    fn note_restart(&mut self) -> bool {
        let now = Instant::now();
        while self
            .restarts
            .front()
            .is_some_and(|at| now.duration_since(*at) >= self.spec.period)
        {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        self.restarts.len() <= self.spec.max_restarts
    }

    async fn child_ended(&mut self, signal: ExitSignal, ctx: &mut Context<Self>) {
        let Some(index) = self.children.iter().position(|c| c.id() == signal.from) else {
            return; // already removed
        };
        if self.children[index].run != Some(signal.run) {
            return; // a run we ended ourselves, or a stale report
        }
        self.children[index].run = None;
        #[cfg(feature = "tracing")]
        tracing::info!(child = self.children[index].spec.name(), reason = %signal.reason, "supervised child ended");
        let restart = match self.children[index].spec.restart() {
            Restart::Permanent => true,
            Restart::Transient => !signal.reason.is_normal(),
            Restart::Temporary => false,
        };
        if !restart {
            self.terminate(index).await;
            self.children.remove(index);
            return;
        }
        let targets: Vec<ActorId> = match self.spec.strategy {
            Strategy::OneForOne => vec![signal.from],
            Strategy::OneForAll => self.children.iter().map(Child::id).collect(),
            Strategy::RestForOne => self.children[index..].iter().map(Child::id).collect(),
        };
        if !self.note_restart() {
            ctx.stop_with(ExitReason::Escalated);
            return;
        }
        // Stop the others' runs, last started first.
        for id in targets.iter().rev().filter(|id| **id != signal.from) {
            if let Some(sibling) = self.index_of(*id) {
                self.stop_run(sibling).await;
            }
        }
        // One backoff per failure (a group restart waits once, not once per child).
        if let Some(backoff) = self.spec.backoff {
            tokio::time::sleep(backoff.delay(self.restarts.len())).await;
        }
        // Start again in order; temporary siblings are not restarted but removed.
        for id in targets {
            let Some(target) = self.index_of(id) else {
                continue;
            };
            if id != signal.from && self.children[target].spec.restart() == Restart::Temporary {
                self.terminate(target).await;
                self.children.remove(target);
                continue;
            }
            // A failed start counts as another restart, and waits its backoff again.
            while self.start_run(target).await.is_err() {
                if !self.note_restart() {
                    ctx.stop_with(ExitReason::Escalated);
                    return;
                }
                if let Some(backoff) = self.spec.backoff {
                    tokio::time::sleep(backoff.delay(self.restarts.len())).await;
                }
            }
        }
    }

    fn index_of(&self, id: ActorId) -> Option<usize> {
        self.children.iter().position(|child| child.id() == id)
    }
}

/// Starts a child under a running supervisor (a dynamic child), replying with its
/// reference; see [`ActorRef::<Supervisor>::start_child`].
#[derive(Debug)]
pub struct StartChild<A: Actor>(pub ChildSpec<A>);

impl<A: Actor> Message<StartChild<A>> for Supervisor {
    type Reply = Result<ActorRef<A>, StartChildError>;

    async fn handle(
        &mut self,
        StartChild(spec): StartChild<A>,
        _: &mut Context<Self>,
    ) -> Self::Reply {
        let index = self.add_child(Arc::new(spec)).await?;
        let child = self.children[index]
            .actor_ref
            .downcast_ref::<ActorRef<A>>()
            .expect("spawned from a ChildSpec<A>");
        Ok(child.clone())
    }
}

/// Stops a child for good and removes it; replies whether a child had that name.
#[derive(Debug, Clone)]
pub struct TerminateChild(pub String);

impl Message<TerminateChild> for Supervisor {
    type Reply = bool;

    async fn handle(
        &mut self,
        TerminateChild(name): TerminateChild,
        _: &mut Context<Self>,
    ) -> bool {
        let Some(index) = self.children.iter().position(|c| c.spec.name() == name) else {
            return false;
        };
        self.terminate(index).await;
        self.children.remove(index);
        true
    }
}

/// Replies with a list of the children, in start order.
#[derive(Debug, Clone, Copy)]
pub struct Children;

impl Message<Children> for Supervisor {
    type Reply = Vec<ChildInfo>;

    async fn handle(&mut self, _: Children, _: &mut Context<Self>) -> Vec<ChildInfo> {
        self.children
            .iter()
            .map(|child| ChildInfo {
                name: child.spec.name().to_owned(),
                id: child.id(),
                restart: child.spec.restart(),
                running: child.run.is_some(),
                actor: child.cell.core().type_name,
            })
            .collect()
    }
}

/// Replies with the child named so, if it is an `A`.
#[derive(Debug)]
pub struct GetChild<A> {
    name: String,
    _actor: std::marker::PhantomData<fn() -> A>,
}

impl<A: Actor> Message<GetChild<A>> for Supervisor {
    type Reply = Option<ActorRef<A>>;

    async fn handle(&mut self, get: GetChild<A>, _: &mut Context<Self>) -> Option<ActorRef<A>> {
        self.children
            .iter()
            .find(|child| child.spec.name() == get.name)
            .and_then(|child| child.actor_ref.downcast_ref::<ActorRef<A>>())
            .cloned()
    }
}

impl ActorRef<Supervisor> {
    /// Starts a child under this supervisor and returns its reference once its
    /// `on_start` has returned.
    ///
    /// # Errors
    ///
    /// [`StartChildError::Failed`] if it failed to start (it is not added);
    /// [`StartChildError::SupervisorStopped`] or [`StartChildError::Timeout`] if the
    /// supervisor did not answer.
    pub async fn start_child<A: Actor>(
        &self,
        spec: ChildSpec<A>,
    ) -> Result<ActorRef<A>, StartChildError> {
        let timeout = self.cell.ask_timeout;
        match self.ask(StartChild(spec)).await {
            Ok(started) => started,
            Err(crate::AskError::Timeout(_)) => Err(StartChildError::Timeout(timeout)),
            Err(_) => Err(StartChildError::SupervisorStopped),
        }
    }

    /// The child named `name`, if there is one and it is an `A` (`None` also if the
    /// supervisor does not answer).
    pub async fn child<A: Actor>(&self, name: &str) -> Option<ActorRef<A>> {
        let get = GetChild {
            name: name.to_owned(),
            _actor: std::marker::PhantomData,
        };
        self.ask(get).await.ok().flatten()
    }

    /// The children, in start order (empty if the supervisor does not answer).
    pub async fn children(&self) -> Vec<ChildInfo> {
        self.ask(Children).await.unwrap_or_default()
    }

    /// Stops the child named `name` for good; false if there was none (or no answer).
    pub async fn terminate_child(&self, name: &str) -> bool {
        self.ask(TerminateChild(name.to_owned()))
            .await
            .unwrap_or(false)
    }
}
