//! The thread-safety promises of the actor crate's public types, checked at compile time,
//! and that the futures of `tell`, `tell_timeout`, `ask`, `ask_timeout`, `wait_for_stop`
//! and of the supervisor's and router's async methods are `Send` (and spawnable when they
//! own their reference), plus one run on a multi-thread runtime. An actor whose state,
//! messages and replies are `Send` but not `Sync` gets the same guarantees: only `Send` is
//! ever required of them.

use std::cell::Cell;
use std::fmt::Debug;
use std::time::Duration;

use flowbed_actor::{
    Actor, ActorId, ActorRef, ActorStats, AskError, Backoff, BoxError, ChildInfo, ChildSpec,
    ConfigError, Context, DeadLetter, ExitKind, ExitReason, ExitSignal, LookupError, Mailbox,
    Message, Name, PanicAction, RegisterError, Registry, Restart, Router, Routing, SendError,
    Spawn, StartChildError, Strategy, Supervisor, SupervisorSpec, TimerHandle, WeakActorRef,
};

use flowbed_testkit::thread_safety::{
    debug, error, send, send_future, spawnable, thread_safe, unpin,
};

/// A plain actor.
struct Counter(u64);

impl Actor for Counter {
    type Args = u64;
    async fn on_start(start: u64, _: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(Counter(start))
    }
}

#[derive(Debug, Clone)]
struct Add(u64);

impl Message<Add> for Counter {
    type Reply = u64;
    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> u64 {
        self.0 += n;
        self.0
    }
}

/// An actor whose state, message and reply are `Send` but not `Sync`.
struct Cells(Cell<u64>);

impl Actor for Cells {
    type Args = ();
    async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(Cells(Cell::new(0)))
    }
}

/// Not `Sync`, not `Debug`, not `Clone`.
struct Bump(Cell<u64>);

impl Message<Bump> for Cells {
    type Reply = Cell<u64>;
    async fn handle(&mut self, Bump(by): Bump, _: &mut Context<Self>) -> Cell<u64> {
        self.0.set(self.0.get() + by.get());
        Cell::new(self.0.get())
    }
}

fn handles_are_thread_safe_for<A: Actor>() {
    thread_safe::<ActorRef<A>>();
    thread_safe::<WeakActorRef<A>>();
    thread_safe::<Context<A>>();
    thread_safe::<Name<A>>();
    thread_safe::<Router<A>>();
    thread_safe::<ChildSpec<A>>();
}

#[test]
fn handles_are_thread_safe_whatever_the_actor() {
    handles_are_thread_safe_for::<Counter>();
    handles_are_thread_safe_for::<Cells>();
    handles_are_thread_safe_for::<Supervisor>();
    flowbed_testkit::assert_not_sync!(Cells);
}

#[test]
fn values_and_options_are_thread_safe() {
    thread_safe::<Spawn>();
    thread_safe::<Mailbox>();
    thread_safe::<Registry>();
    thread_safe::<TimerHandle>();
    // A dead letter carries a message that need only be `Send`, so it is not `Sync`.
    send::<DeadLetter>();
    unpin::<DeadLetter>();
    debug::<DeadLetter>();
    flowbed_testkit::assert_not_sync!(DeadLetter);
    thread_safe::<ExitReason>();
    thread_safe::<ExitSignal>();
    thread_safe::<ExitKind>();
    thread_safe::<ActorId>();
    thread_safe::<ActorStats>();
    thread_safe::<SupervisorSpec>();
    thread_safe::<ChildInfo>();
    thread_safe::<Strategy>();
    thread_safe::<Restart>();
    thread_safe::<Backoff>();
    thread_safe::<Routing>();
    thread_safe::<PanicAction>();
    thread_safe::<Supervisor>();
}

#[test]
fn errors_are_send_sync_std_errors() {
    error::<ConfigError>();
    error::<LookupError>();
    error::<RegisterError>();
    error::<StartChildError>();
    error::<SendError<Add>>();
    error::<AskError<Add>>();
    thread_safe::<SendError<Add>>();
    thread_safe::<AskError<Add>>();
    thread_safe::<StartChildError>();
    // A message that is neither `Sync` nor `Debug` still makes a `Send` error.
    send::<SendError<Bump>>();
    send::<AskError<Bump>>();
    debug::<SendError<Bump>>();
    debug::<AskError<Bump>>();
    flowbed_testkit::assert_not_sync!(SendError<Bump>);
    let error: Box<dyn std::error::Error + Send + Sync> = Box::new(SendError::Stopped(Add(1)));
    assert_eq!(error.to_string(), "actor stopped");
}

fn message_futures_are_send<A>(actor: &ActorRef<A>, make: impl Fn() -> A::Msg)
where
    A: Actor + Message<<A as HasMsg>::Msg> + HasMsg,
{
    drop(send_future(actor.tell(make())));
    drop(send_future(
        actor.tell_timeout(make(), Duration::from_secs(1)),
    ));
    drop(send_future(actor.ask(make())));
    drop(send_future(
        actor.ask_timeout(make(), Duration::from_secs(1)),
    ));
    drop(send_future(actor.wait_for_stop()));
}

/// The message type the generic check above sends.
trait HasMsg {
    type Msg: Send + 'static;
}
impl HasMsg for Counter {
    type Msg = Add;
}
impl HasMsg for Cells {
    type Msg = Bump;
}

#[tokio::test]
async fn message_futures_are_send_and_spawnable() {
    let counter = Counter::spawn(0);
    message_futures_are_send(&counter, || Add(1));
    let cells = Cells::spawn(());
    message_futures_are_send(&cells, || Bump(Cell::new(1)));

    // Clones moved into 'static tasks, holding a non-`Sync` message and reply across awaits.
    let (a, b, c, d, e) = (
        cells.clone(),
        cells.clone(),
        cells.clone(),
        cells.clone(),
        cells.clone(),
    );
    drop(spawnable(async move {
        a.tell(Bump(Cell::new(1))).await.is_ok()
    }));
    drop(spawnable(async move {
        b.tell_timeout(Bump(Cell::new(1)), Duration::from_secs(1))
            .await
            .is_ok()
    }));
    drop(spawnable(async move {
        c.ask(Bump(Cell::new(1))).await.map(Cell::into_inner).ok()
    }));
    drop(spawnable(async move {
        d.ask_timeout(Bump(Cell::new(1)), Duration::from_secs(1))
            .await
            .map(Cell::into_inner)
            .ok()
    }));
    drop(spawnable(async move { e.wait_for_stop().await }));
    cells.stop();
    counter.stop();
}

#[tokio::test]
async fn supervisor_and_router_futures_are_send() {
    let spec = SupervisorSpec::new(Strategy::OneForOne);
    drop(spawnable(spec.clone().start()));
    let supervisor = spec.start().await.expect("no children to fail");
    drop(send_future(
        supervisor.start_child(ChildSpec::<Counter>::new("c", || 0)),
    ));
    drop(send_future(supervisor.child::<Counter>("c")));
    drop(send_future(supervisor.children()));
    drop(send_future(supervisor.terminate_child("c")));
    let owned = supervisor.clone();
    drop(spawnable(async move {
        owned
            .start_child(ChildSpec::<Cells>::new("cells", || ()))
            .await
            .is_ok()
    }));

    let router = Router::<Cells>::spawn(Routing::RoundRobin, 2, |_| ()).expect("a valid size");
    drop(send_future(router.tell(Bump(Cell::new(1)))));
    drop(send_future(router.ask(Bump(Cell::new(1)))));
    drop(send_future(router.tell_keyed(&7, Bump(Cell::new(1)))));
    drop(send_future(router.ask_keyed("key", Bump(Cell::new(1)))));
    let counters = Router::<Counter>::spawn(Routing::LeastLoaded, 2, |_| 0).expect("a valid size");
    drop(send_future(counters.broadcast(Add(1))));
    let owned = counters.clone();
    drop(spawnable(async move { owned.broadcast(Add(1)).await }));

    router.stop();
    counters.stop();
    supervisor.stop();
    supervisor.wait_for_stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_work_from_tasks_on_other_threads() {
    let cells = Cells::spawn(());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let cells = cells.clone();
            tokio::spawn(async move {
                cells.tell(Bump(Cell::new(1))).await.expect("running");
                tokio::task::yield_now().await;
                cells
                    .ask(Bump(Cell::new(0)))
                    .await
                    .expect("running")
                    .into_inner()
            })
        })
        .collect();
    for task in tasks {
        let seen = task.await.expect("no panic");
        assert!((1..=8).contains(&seen), "{seen}");
    }
    assert_eq!(
        cells
            .ask(Bump(Cell::new(0)))
            .await
            .expect("running")
            .into_inner(),
        8
    );
    let weak = cells.downgrade();
    let upgraded = tokio::spawn(async move {
        let cells = weak.upgrade().expect("alive");
        cells
            .ask(Bump(Cell::new(1)))
            .await
            .expect("running")
            .into_inner()
    });
    assert_eq!(upgraded.await.expect("no panic"), 9);
    let owned = cells.clone();
    let waiter = tokio::spawn(async move { owned.wait_for_stop().await });
    cells.stop();
    assert_eq!(waiter.await.expect("no panic"), ExitReason::Stopped);
}
