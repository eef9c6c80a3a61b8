//! Supervision scenarios: strategies (one-for-one, one-for-all, rest-for-one) and which
//! children restart in what order, restart types (permanent, transient, temporary),
//! restart intensity and escalation, backoff delays, shutdown timeouts then kills and
//! aborts, ordered start and reverse-order stop, dynamic children, nested supervisors,
//! and queued messages across in-place restarts.
//!
//! Every test runs on a paused current-thread runtime: `settle()` (a 1 ms sleep) returns
//! only once every other task is idle, and measured delays are exact virtual durations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowbed_actor::{
    Actor, ActorRef, AskError, BoxError, ChildSpec, Context, ExitReason, Message, Restart,
    StartChildError, Strategy, Supervisor, SupervisorSpec,
};
use tokio::time::Instant;

const HOUR: Duration = Duration::from_secs(3600);

/// Records what the workers do: lifecycle events in order, and when each run started.
#[derive(Clone, Default)]
struct Probe {
    events: Arc<Mutex<Vec<String>>>,
    starts: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl Probe {
    fn push(&self, event: String) {
        self.events.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// The events so far, forgetting them.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    fn start_times(&self, name: &str) -> Vec<Instant> {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .filter(|(who, _)| who == name)
            .map(|(_, at)| *at)
            .collect()
    }

    fn spec(&self, name: &str) -> ChildSpec<Worker> {
        self.spec_with(name, Behaviour::default())
    }

    /// A worker spec whose factory numbers the runs (generation 1, 2, ...).
    fn spec_with(&self, name: &str, behaviour: Behaviour) -> ChildSpec<Worker> {
        let probe = self.clone();
        let generations = Arc::new(AtomicU64::new(0));
        let owned = name.to_owned();
        ChildSpec::new(name, move || WorkerArgs {
            name: owned.clone(),
            generation: generations.fetch_add(1, Ordering::SeqCst) + 1,
            probe: probe.clone(),
            behaviour,
        })
    }
}

#[derive(Clone, Copy, Default)]
struct Behaviour {
    start_delay: Option<Duration>,
    stop_delay: Option<Duration>,
    /// Generations whose `on_start` returns an error.
    fail_start: Option<fn(u64) -> bool>,
    /// Generations whose `on_start` panics.
    panic_start: Option<fn(u64) -> bool>,
}

struct WorkerArgs {
    name: String,
    generation: u64,
    probe: Probe,
    behaviour: Behaviour,
}

struct Worker {
    name: String,
    generation: u64,
    count: u64,
    probe: Probe,
    behaviour: Behaviour,
}

impl Actor for Worker {
    type Args = WorkerArgs;

    async fn on_start(args: WorkerArgs, _: &mut Context<Self>) -> Result<Self, BoxError> {
        let WorkerArgs {
            name,
            generation,
            probe,
            behaviour,
        } = args;
        if let Some(delay) = behaviour.start_delay {
            probe.push(format!("{name}:starting"));
            tokio::time::sleep(delay).await;
        }
        if behaviour
            .panic_start
            .is_some_and(|panics| panics(generation))
        {
            panic!("start panic");
        }
        if behaviour.fail_start.is_some_and(|fails| fails(generation)) {
            probe.push(format!("{name}:start-failed"));
            return Err(format!("{name} cannot start").into());
        }
        probe.push(format!("{name}:start"));
        probe
            .starts
            .lock()
            .unwrap()
            .push((name.clone(), Instant::now()));
        Ok(Worker {
            name,
            generation,
            count: 0,
            probe,
            behaviour,
        })
    }

    async fn on_stop(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        if let Some(delay) = self.behaviour.stop_delay {
            self.probe.push(format!("{}:stopping:{reason}", self.name));
            tokio::time::sleep(delay).await;
        }
        self.probe.push(format!("{}:stop:{reason}", self.name));
    }
}

/// Replies (generation, count): which run this is and how much state it built up.
struct Get;
impl Message<Get> for Worker {
    type Reply = (u64, u64);
    async fn handle(&mut self, _: Get, _: &mut Context<Self>) -> (u64, u64) {
        (self.generation, self.count)
    }
}

struct Bump;
impl Message<Bump> for Worker {
    type Reply = u64;
    async fn handle(&mut self, _: Bump, _: &mut Context<Self>) -> u64 {
        self.count += 1;
        self.count
    }
}

struct Record(u32);
impl Message<Record> for Worker {
    type Reply = ();
    async fn handle(&mut self, Record(n): Record, _: &mut Context<Self>) {
        self.probe
            .push(format!("{}#{}:msg:{n}", self.name, self.generation));
    }
}

struct Panic;
impl Message<Panic> for Worker {
    type Reply = ();
    async fn handle(&mut self, _: Panic, _: &mut Context<Self>) {
        panic!("boom");
    }
}

struct StopSelf;
impl Message<StopSelf> for Worker {
    type Reply = ();
    async fn handle(&mut self, _: StopSelf, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

struct Fail;
impl Message<Fail> for Worker {
    type Reply = ();
    async fn handle(&mut self, _: Fail, ctx: &mut Context<Self>) {
        ctx.fail(std::io::Error::other("failed on purpose"));
    }
}

struct Block(Duration);
impl Message<Block> for Worker {
    type Reply = ();
    async fn handle(&mut self, Block(delay): Block, _: &mut Context<Self>) {
        self.probe.push(format!("{}:blocking", self.name));
        tokio::time::sleep(delay).await;
        self.probe.push(format!("{}:unblocked", self.name));
    }
}

/// Another actor type, for typed lookups.
struct Other;
impl Actor for Other {
    type Args = ();
    async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(Other)
    }
}

/// Returns once every other task on this paused current-thread runtime is idle.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

async fn start(spec: SupervisorSpec) -> SupervisorRef {
    spec.start().await.expect("supervisor starts")
}

type SupervisorRef = ActorRef<Supervisor>;

async fn worker(supervisor: &SupervisorRef, name: &str) -> ActorRef<Worker> {
    supervisor
        .child::<Worker>(name)
        .await
        .unwrap_or_else(|| panic!("no worker named {name}"))
}

async fn names(supervisor: &SupervisorRef) -> Vec<String> {
    supervisor
        .children()
        .await
        .into_iter()
        .map(|info| info.name)
        .collect()
}

fn strings(events: &[&str]) -> Vec<String> {
    events.iter().map(|event| (*event).to_owned()).collect()
}

/// The events of one worker, in order.
fn of(events: &[String], name: &str) -> Vec<String> {
    events
        .iter()
        .filter(|event| {
            event.starts_with(&format!("{name}:")) || event.starts_with(&format!("{name}#"))
        })
        .cloned()
        .collect()
}

fn three(probe: &Probe, strategy: Strategy) -> SupervisorSpec {
    SupervisorSpec::new(strategy)
        .child(probe.spec("a"))
        .child(probe.spec("b"))
        .child(probe.spec("c"))
}

/// Bumps each worker once, so a run that was not restarted shows count 1.
async fn bump_all(workers: &[&ActorRef<Worker>]) {
    for worker in workers {
        assert_eq!(worker.ask(Bump).await.unwrap(), 1);
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_only_the_failed_child() {
    let probe = Probe::default();
    let supervisor = start(three(&probe, Strategy::OneForOne)).await;
    let (a, b, c) = (
        worker(&supervisor, "a").await,
        worker(&supervisor, "b").await,
        worker(&supervisor, "c").await,
    );
    bump_all(&[&a, &b, &c]).await;
    probe.take();

    assert!(matches!(b.ask(Panic).await, Err(AskError::NoReply)));
    settle().await;

    assert_eq!(probe.take(), strings(&["b:stop:panicked: boom", "b:start"]));
    assert_eq!(
        (a.stats().restarts, b.stats().restarts, c.stats().restarts),
        (0, 1, 0)
    );
    assert_eq!(a.ask(Get).await.unwrap(), (1, 1));
    assert_eq!(
        b.ask(Get).await.unwrap(),
        (2, 0),
        "b rebuilt from its factory"
    );
    assert_eq!(c.ask(Get).await.unwrap(), (1, 1));
    assert!(supervisor.children().await.iter().all(|info| info.running));
}

#[tokio::test(start_paused = true)]
async fn one_for_all_stops_the_others_in_reverse_then_restarts_all_in_spec_order() {
    let probe = Probe::default();
    let spec = three(&probe, Strategy::OneForAll).child(probe.spec("d"));
    let supervisor = start(spec).await;
    let workers = [
        worker(&supervisor, "a").await,
        worker(&supervisor, "b").await,
        worker(&supervisor, "c").await,
        worker(&supervisor, "d").await,
    ];
    bump_all(&workers.iter().collect::<Vec<_>>()).await;
    assert_eq!(
        probe.take(),
        strings(&["a:start", "b:start", "c:start", "d:start"])
    );

    assert!(matches!(
        workers[1].ask(Panic).await,
        Err(AskError::NoReply)
    ));
    settle().await;

    assert_eq!(
        probe.take(),
        strings(&[
            "b:stop:panicked: boom",
            "d:stop:stopped",
            "c:stop:stopped",
            "a:stop:stopped",
            "a:start",
            "b:start",
            "c:start",
            "d:start",
        ])
    );
    for worker in &workers {
        assert_eq!(worker.stats().restarts, 1);
        assert_eq!(
            worker.ask(Get).await.unwrap(),
            (2, 0),
            "rebuilt from the factory"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_the_failed_child_and_those_started_after_it() {
    let probe = Probe::default();
    let spec = three(&probe, Strategy::RestForOne).child(probe.spec("d"));
    let supervisor = start(spec).await;
    let workers = [
        worker(&supervisor, "a").await,
        worker(&supervisor, "b").await,
        worker(&supervisor, "c").await,
        worker(&supervisor, "d").await,
    ];
    bump_all(&workers.iter().collect::<Vec<_>>()).await;
    probe.take();

    assert!(matches!(
        workers[1].ask(Panic).await,
        Err(AskError::NoReply)
    ));
    settle().await;

    assert_eq!(
        probe.take(),
        strings(&[
            "b:stop:panicked: boom",
            "d:stop:stopped",
            "c:stop:stopped",
            "b:start",
            "c:start",
            "d:start",
        ])
    );
    let restarts: Vec<u64> = workers.iter().map(|w| w.stats().restarts).collect();
    assert_eq!(restarts, [0, 1, 1, 1]);
    assert_eq!(
        workers[0].ask(Get).await.unwrap(),
        (1, 1),
        "a kept its state"
    );
    for worker in &workers[1..] {
        assert_eq!(worker.ask(Get).await.unwrap(), (2, 0));
    }
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_failure_of_the_last_child_restarts_only_it() {
    let probe = Probe::default();
    let supervisor = start(three(&probe, Strategy::RestForOne)).await;
    let (a, b, c) = (
        worker(&supervisor, "a").await,
        worker(&supervisor, "b").await,
        worker(&supervisor, "c").await,
    );
    probe.take();
    let _ = c.ask(Panic).await;
    settle().await;
    assert_eq!(probe.take(), strings(&["c:stop:panicked: boom", "c:start"]));
    assert_eq!(
        (a.stats().restarts, b.stats().restarts, c.stats().restarts),
        (0, 0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn one_for_all_removes_a_temporary_sibling_instead_of_restarting_it() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .child(probe.spec("a"))
        .child(probe.spec("temp").restart(Restart::Temporary))
        .child(probe.spec("c"));
    let supervisor = start(spec).await;
    let temp = worker(&supervisor, "temp").await;
    let c = worker(&supervisor, "c").await;
    probe.take();

    let _ = c.ask(Panic).await;
    settle().await;

    assert_eq!(
        probe.take(),
        strings(&[
            "c:stop:panicked: boom",
            "temp:stop:stopped",
            "a:stop:stopped",
            "a:start",
            "c:start",
        ])
    );
    assert_eq!(names(&supervisor).await, ["a", "c"]);
    assert!(!temp.is_alive());
    assert!(supervisor.child::<Worker>("temp").await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_sibling_stopped_for_a_restart_keeps_its_queue_for_the_next_run() {
    let probe = Probe::default();
    let supervisor = start(
        SupervisorSpec::new(Strategy::OneForAll)
            .child(probe.spec("a"))
            .child(probe.spec("b")),
    )
    .await;
    let a = worker(&supervisor, "a").await;
    let b = worker(&supervisor, "b").await;
    probe.take();

    // a is busy for 50 ms with two messages behind; b fails meanwhile.
    a.tell(Block(Duration::from_millis(50))).await.unwrap();
    a.tell(Record(1)).await.unwrap();
    a.tell(Record(2)).await.unwrap();
    b.tell(Panic).await.unwrap();
    assert_eq!(a.ask(Get).await.unwrap(), (2, 0));

    let events = probe.take();
    // a finished its handler, then its run was stopped; b's restart followed a's.
    assert_eq!(
        events[..5],
        strings(&[
            "a:blocking",
            "b:stop:panicked: boom",
            "a:unblocked",
            "a:stop:stopped",
            "a:start",
        ])
    );
    assert_eq!(
        of(&events, "a"),
        strings(&[
            "a:blocking",
            "a:unblocked",
            "a:stop:stopped",
            "a:start",
            "a#2:msg:1",
            "a#2:msg:2",
        ])
    );
    assert_eq!(
        of(&events, "b"),
        strings(&["b:stop:panicked: boom", "b:start"])
    );
    assert_eq!(a.stats().dead_letters, 0);
    assert_eq!(b.stats().restarts, 1);
}

// ---------------------------------------------------------------------------------------
// Restart types
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn permanent_restarts_after_a_normal_exit() {
    let probe = Probe::default();
    let supervisor = start(SupervisorSpec::new(Strategy::OneForOne).child(probe.spec("p"))).await;
    let p = worker(&supervisor, "p").await;
    p.tell(Bump).await.unwrap();
    p.tell(StopSelf).await.unwrap();
    assert_eq!(p.ask(Get).await.unwrap(), (2, 0));
    assert_eq!(
        probe.events(),
        strings(&["p:start", "p:stop:normal", "p:start"])
    );
    assert_eq!(p.stats().restarts, 1);
    assert!(p.is_alive());
}

#[tokio::test(start_paused = true)]
async fn permanent_restarts_after_panic_fail_and_kill() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .unwrap()
        .child(probe.spec("p"));
    let supervisor = start(spec).await;
    let p = worker(&supervisor, "p").await;

    p.tell(Panic).await.unwrap();
    assert_eq!(p.ask(Get).await.unwrap(), (2, 0));
    p.tell(Fail).await.unwrap();
    assert_eq!(p.ask(Get).await.unwrap(), (3, 0));
    p.kill();
    settle().await;
    assert_eq!(p.ask(Get).await.unwrap(), (4, 0));

    assert_eq!(
        probe.events(),
        strings(&[
            "p:start",
            "p:stop:panicked: boom",
            "p:start",
            "p:stop:error: failed on purpose",
            "p:start",
            "p:stop:killed",
            "p:start",
        ])
    );
    assert_eq!(p.stats().restarts, 3);
    assert_eq!(p.stats().panics, 1);
}

#[tokio::test(start_paused = true)]
async fn transient_restarts_after_panic_fail_and_kill() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .unwrap()
        .child(probe.spec("t").restart(Restart::Transient));
    let supervisor = start(spec).await;
    let t = worker(&supervisor, "t").await;

    t.tell(Panic).await.unwrap();
    assert_eq!(t.ask(Get).await.unwrap(), (2, 0));
    t.tell(Fail).await.unwrap();
    assert_eq!(t.ask(Get).await.unwrap(), (3, 0));
    // A kill while the handler is blocked aborts it; the run ends Killed.
    t.tell(Block(HOUR)).await.unwrap();
    settle().await;
    t.kill();
    assert_eq!(t.ask(Get).await.unwrap(), (4, 0));

    assert_eq!(
        probe.events(),
        strings(&[
            "t:start",
            "t:stop:panicked: boom",
            "t:start",
            "t:stop:error: failed on purpose",
            "t:start",
            "t:blocking",
            "t:stop:killed",
            "t:start",
        ])
    );
    assert_eq!(t.stats().restarts, 3);
    assert_eq!(names(&supervisor).await, ["t"]);
}

#[tokio::test(start_paused = true)]
async fn transient_is_removed_after_a_normal_exit() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("t").restart(Restart::Transient))
        .child(probe.spec("other"));
    let supervisor = start(spec).await;
    let t = worker(&supervisor, "t").await;
    t.tell(StopSelf).await.unwrap();
    assert_eq!(t.wait_for_stop().await, ExitReason::Normal);

    assert_eq!(names(&supervisor).await, ["other"]);
    assert!(supervisor.child::<Worker>("t").await.is_none());
    assert_eq!(t.stats().restarts, 0);
    assert_eq!(
        probe.events(),
        strings(&["t:start", "other:start", "t:stop:normal"])
    );
    assert!(matches!(t.ask(Get).await, Err(AskError::Stopped(Get))));
}

#[tokio::test(start_paused = true)]
async fn temporary_is_never_restarted_and_is_removed_after_a_failure() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("temp").restart(Restart::Temporary))
        .child(probe.spec("other"));
    let supervisor = start(spec).await;
    let temp = worker(&supervisor, "temp").await;
    let _ = temp.ask(Panic).await;
    temp.wait_for_stop().await;
    settle().await;

    assert!(!temp.is_alive());
    assert_eq!(temp.stats().restarts, 0);
    assert_eq!(names(&supervisor).await, ["other"]);
    assert_eq!(
        probe.events(),
        strings(&["temp:start", "other:start", "temp:stop:panicked: boom"])
    );
    assert!(temp.tell(Bump).await.is_err());
}

/// Links and monitors fire when an actor ends for good, with why it ended: for a temporary
/// child that panicked, that is the panic.
#[tokio::test(start_paused = true)]
async fn a_temporary_child_that_panicked_ends_with_its_panic() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("temp").restart(Restart::Temporary));
    let supervisor = start(spec).await;
    let temp = worker(&supervisor, "temp").await;
    temp.tell(Panic).await.unwrap();
    assert_eq!(
        temp.wait_for_stop().await,
        ExitReason::Panicked("boom".into())
    );
}

#[tokio::test(start_paused = true)]
async fn temporary_is_removed_after_a_normal_exit() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("temp").restart(Restart::Temporary));
    let supervisor = start(spec).await;
    let temp = worker(&supervisor, "temp").await;
    temp.tell(StopSelf).await.unwrap();
    temp.wait_for_stop().await;
    assert!(supervisor.children().await.is_empty());
    assert_eq!(temp.stats().restarts, 0);
    assert!(supervisor.is_alive());
}

#[tokio::test(start_paused = true)]
async fn actor_ref_stop_on_a_permanent_child_handles_its_queue_then_restarts_it() {
    let probe = Probe::default();
    let supervisor = start(SupervisorSpec::new(Strategy::OneForOne).child(probe.spec("p"))).await;
    let p = worker(&supervisor, "p").await;
    p.tell(Bump).await.unwrap();
    settle().await;
    p.tell(Record(1)).await.unwrap();
    p.tell(Record(2)).await.unwrap();
    p.stop();
    settle().await; // the run handles its queue, ends, and is restarted
    assert_eq!(p.ask(Get).await.unwrap(), (2, 0));

    assert_eq!(
        probe.events(),
        strings(&[
            "p:start",
            "p#1:msg:1",
            "p#1:msg:2",
            "p:stop:stopped",
            "p:start",
        ])
    );
    assert!(p.is_alive());
    assert_eq!(p.stats().restarts, 1);
    assert_eq!(p.stats().dead_letters, 0);
}

#[tokio::test(start_paused = true)]
async fn actor_ref_stop_on_a_transient_child_ends_it() {
    let probe = Probe::default();
    let spec =
        SupervisorSpec::new(Strategy::OneForOne).child(probe.spec("t").restart(Restart::Transient));
    let supervisor = start(spec).await;
    let t = worker(&supervisor, "t").await;
    t.stop();
    assert_eq!(t.wait_for_stop().await, ExitReason::Stopped);
    assert!(supervisor.children().await.is_empty());
    assert_eq!(t.stats().restarts, 0);
    assert_eq!(probe.events(), strings(&["t:start", "t:stop:stopped"]));
}

/// The brief's delivery guarantee: "a graceful stop() handles all queued messages".
#[tokio::test(start_paused = true)]
async fn actor_ref_stop_on_a_transient_child_handles_its_queue_first() {
    let probe = Probe::default();
    let spec =
        SupervisorSpec::new(Strategy::OneForOne).child(probe.spec("t").restart(Restart::Transient));
    let supervisor = start(spec).await;
    let t = worker(&supervisor, "t").await;
    t.tell(Record(1)).await.unwrap();
    t.tell(Record(2)).await.unwrap();
    t.stop();
    assert_eq!(t.wait_for_stop().await, ExitReason::Stopped);
    assert_eq!(
        probe.events(),
        strings(&["t:start", "t#1:msg:1", "t#1:msg:2", "t:stop:stopped"])
    );
    assert_eq!(t.stats().dead_letters, 0);
}

// ---------------------------------------------------------------------------------------
// Restart intensity
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn exactly_max_restarts_within_the_period_are_allowed() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(10))
        .unwrap()
        .child(probe.spec("w"));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;
    for generation in 2..=4 {
        let _ = w.ask(Panic).await;
        assert_eq!(w.ask(Get).await.unwrap(), (generation, 0));
    }
    assert_eq!(w.stats().restarts, 3);
    assert!(supervisor.is_alive());
}

#[tokio::test(start_paused = true)]
async fn one_restart_more_than_max_escalates_and_ends_every_child() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2, Duration::from_secs(10))
        .unwrap()
        .child(probe.spec("a"))
        .child(probe.spec("b"))
        .child(probe.spec("c"));
    let supervisor = start(spec).await;
    let (a, b, c) = (
        worker(&supervisor, "a").await,
        worker(&supervisor, "b").await,
        worker(&supervisor, "c").await,
    );
    for _ in 0..2 {
        let _ = b.ask(Panic).await;
        assert_eq!(b.ask(Get).await.map(|(_, count)| count).unwrap(), 0);
    }
    probe.take();
    let _ = b.ask(Panic).await;

    assert_eq!(supervisor.wait_for_stop().await, ExitReason::Escalated);
    for child in [&a, &b, &c] {
        child.wait_for_stop().await;
        assert!(!child.is_alive());
    }
    // b's failed run stopped once; the others stop in reverse start order.
    assert_eq!(
        probe.events(),
        strings(&["b:stop:panicked: boom", "c:stop:stopped", "a:stop:stopped"])
    );
    assert_eq!(b.stats().restarts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_one_for_all_restart_of_many_children_counts_once() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .intensity(1, Duration::from_secs(60))
        .unwrap()
        .child(probe.spec("a"))
        .child(probe.spec("b"))
        .child(probe.spec("c"));
    let supervisor = start(spec).await;
    let c = worker(&supervisor, "c").await;
    let _ = c.ask(Panic).await;
    assert_eq!(c.ask(Get).await.unwrap(), (2, 0));
    assert!(
        supervisor.is_alive(),
        "three children restarted, one restart counted"
    );
    let _ = c.ask(Panic).await;
    assert_eq!(supervisor.wait_for_stop().await, ExitReason::Escalated);
}

#[tokio::test(start_paused = true)]
async fn zero_intensity_escalates_on_the_first_restart() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(0, Duration::from_secs(1))
        .unwrap()
        .child(probe.spec("w"));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;
    w.tell(Fail).await.unwrap();
    assert_eq!(supervisor.wait_for_stop().await, ExitReason::Escalated);
    assert_eq!(w.stats().restarts, 0);
    assert!(!w.is_alive());
}

#[tokio::test(start_paused = true)]
async fn exits_that_are_not_restarted_do_not_count_toward_the_intensity() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(0, Duration::from_secs(60))
        .unwrap()
        .child(probe.spec("t").restart(Restart::Transient))
        .child(probe.spec("temp").restart(Restart::Temporary))
        .child(probe.spec("keep"));
    let supervisor = start(spec).await;
    worker(&supervisor, "t").await.tell(StopSelf).await.unwrap();
    worker(&supervisor, "temp").await.tell(Panic).await.unwrap();
    settle().await;
    assert!(supervisor.is_alive());
    assert_eq!(names(&supervisor).await, ["keep"]);
}

#[tokio::test(start_paused = true)]
async fn restarts_older_than_the_period_are_forgotten() {
    let probe = Probe::default();
    let period = Duration::from_secs(10);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(2, period)
        .unwrap()
        .child(probe.spec("w"));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;
    let t0 = Instant::now();

    // Restarts at 0 s and 6 s: the window holds two.
    let _ = w.ask(Panic).await;
    tokio::time::sleep_until(t0 + Duration::from_secs(6)).await;
    let _ = w.ask(Panic).await;
    // At 11 s the restart at 0 s has left the window: two again, allowed.
    tokio::time::sleep_until(t0 + Duration::from_secs(11)).await;
    let _ = w.ask(Panic).await;
    assert_eq!(w.ask(Get).await.unwrap(), (4, 0));
    assert!(supervisor.is_alive());
    // At 12 s the window (6 s, 11 s, 12 s) holds three: too many.
    tokio::time::sleep_until(t0 + Duration::from_secs(12)).await;
    let _ = w.ask(Panic).await;
    assert_eq!(supervisor.wait_for_stop().await, ExitReason::Escalated);
    assert_eq!(w.stats().restarts, 3);
}

#[tokio::test(start_paused = true)]
async fn a_restart_whose_start_fails_is_retried_and_counts_toward_the_intensity() {
    let probe = Probe::default();
    let behaviour = Behaviour {
        fail_start: Some(|generation| generation == 2 || generation == 3),
        ..Behaviour::default()
    };
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(60))
        .unwrap()
        .child(probe.spec_with("w", behaviour));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;
    let _ = w.ask(Panic).await;
    assert_eq!(w.ask(Get).await.unwrap(), (4, 0));
    assert_eq!(
        probe.events(),
        strings(&[
            "w:start",
            "w:stop:panicked: boom",
            "w:start-failed",
            "w:start-failed",
            "w:start",
        ])
    );
    assert_eq!(w.stats().restarts, 3);
    // Three restarts are on record: one more failure exceeds the intensity.
    let _ = w.ask(Panic).await;
    assert_eq!(supervisor.wait_for_stop().await, ExitReason::Escalated);
}

#[tokio::test(start_paused = true)]
async fn a_child_that_never_starts_again_escalates() {
    let probe = Probe::default();
    let behaviour = Behaviour {
        fail_start: Some(|generation| generation > 1),
        ..Behaviour::default()
    };
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(5, Duration::from_secs(60))
        .unwrap()
        .child(probe.spec_with("w", behaviour));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;
    w.tell(Panic).await.unwrap();
    assert_eq!(supervisor.wait_for_stop().await, ExitReason::Escalated);
    assert!(!w.is_alive());
    // Five restarts are allowed (the panic's, then four retries); the fifth failed start
    // is one too many.
    let failed = probe
        .events()
        .iter()
        .filter(|event| *event == "w:start-failed")
        .count();
    assert_eq!(failed, 5);
}

// ---------------------------------------------------------------------------------------
// Backoff
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn backoff_doubles_from_initial_up_to_max() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .unwrap()
        .backoff(Duration::from_millis(100), Duration::from_millis(400))
        .unwrap()
        .child(probe.spec("w"));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;

    let mut delays = Vec::new();
    for generation in 2..=6 {
        let failed_at = Instant::now();
        let _ = w.ask(Panic).await;
        assert_eq!(w.ask(Get).await.unwrap(), (generation, 0));
        let started_at = *probe.start_times("w").last().unwrap();
        delays.push(started_at - failed_at);
    }
    let ms = Duration::from_millis;
    assert_eq!(delays, [ms(100), ms(200), ms(400), ms(400), ms(400)]);
}

#[tokio::test(start_paused = true)]
async fn backoff_starts_over_once_earlier_restarts_leave_the_period() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(5))
        .unwrap()
        .backoff(Duration::from_millis(100), Duration::from_secs(1))
        .unwrap()
        .child(probe.spec("w"));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;
    for _ in 0..2 {
        let _ = w.ask(Panic).await;
        w.ask(Get).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let failed_at = Instant::now();
    let _ = w.ask(Panic).await;
    assert_eq!(w.ask(Get).await.unwrap(), (4, 0));
    let started_at = *probe.start_times("w").last().unwrap();
    assert_eq!(started_at - failed_at, Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn one_for_all_backoff_waits_once_for_the_whole_group() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .backoff(Duration::from_millis(100), Duration::from_secs(1))
        .unwrap()
        .child(probe.spec("a"))
        .child(probe.spec("b"));
    let supervisor = start(spec).await;
    let b = worker(&supervisor, "b").await;
    let failed_at = Instant::now();
    let _ = b.ask(Panic).await;
    b.ask(Get).await.unwrap();
    let a_started = *probe.start_times("a").last().unwrap();
    let b_started = *probe.start_times("b").last().unwrap();
    assert_eq!(a_started - failed_at, Duration::from_millis(100));
    assert_eq!(b_started, a_started);
}

#[tokio::test]
async fn invalid_intensity_and_backoff_are_rejected() {
    let spec = || SupervisorSpec::new(Strategy::OneForOne);
    assert!(spec().intensity(3, Duration::ZERO).is_err());
    assert!(
        spec()
            .backoff(Duration::ZERO, Duration::from_secs(1))
            .is_err()
    );
    assert!(
        spec()
            .backoff(Duration::from_secs(2), Duration::from_secs(1))
            .is_err()
    );
    assert!(
        spec()
            .backoff(Duration::from_secs(1), Duration::from_secs(1))
            .is_ok()
    );
    assert!(spec().intensity(0, Duration::from_nanos(1)).is_ok());
}

// ---------------------------------------------------------------------------------------
// Shutdown: timeout, then kill, then abort
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_child_that_stops_within_its_shutdown_handles_its_queue_first() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("w").shutdown(Duration::from_secs(1)));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;
    w.tell(Block(Duration::from_millis(300))).await.unwrap();
    w.tell(Record(1)).await.unwrap();
    settle().await;
    let stopping = Instant::now();
    supervisor.stop();
    assert_eq!(supervisor.wait_for_stop().await, ExitReason::Stopped);
    assert_eq!(stopping.elapsed(), Duration::from_millis(299));
    assert_eq!(
        probe.events(),
        strings(&[
            "w:start",
            "w:blocking",
            "w:unblocked",
            "w#1:msg:1",
            "w:stop:stopped",
        ])
    );
    assert_eq!(w.wait_for_stop().await, ExitReason::Stopped);
    assert_eq!(w.stats().dead_letters, 0);
}

#[tokio::test(start_paused = true)]
async fn a_child_blocked_in_a_handler_is_killed_after_its_shutdown() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("w").shutdown(Duration::from_millis(100)));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;
    w.tell(Block(HOUR)).await.unwrap();
    w.tell(Record(1)).await.unwrap();
    settle().await;
    let stopping = Instant::now();
    supervisor.stop();
    assert_eq!(supervisor.wait_for_stop().await, ExitReason::Stopped);
    assert_eq!(stopping.elapsed(), Duration::from_millis(100));
    assert_eq!(
        probe.events(),
        strings(&["w:start", "w:blocking", "w:stop:killed"])
    );
    assert!(!w.is_alive());
    assert_eq!(
        w.stats().dead_letters,
        1,
        "the queued message is a dead letter"
    );
}

#[tokio::test(start_paused = true)]
async fn a_child_killed_after_its_shutdown_ends_with_killed() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("w").shutdown(Duration::from_millis(100)));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;
    w.tell(Block(HOUR)).await.unwrap();
    settle().await;
    supervisor.stop();
    supervisor.wait_for_stop().await;
    assert_eq!(w.wait_for_stop().await, ExitReason::Killed);
}

#[tokio::test(start_paused = true)]
async fn a_child_stuck_in_on_stop_is_aborted_and_the_stop_completes() {
    let probe = Probe::default();
    let stuck = Behaviour {
        stop_delay: Some(HOUR),
        ..Behaviour::default()
    };
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("a"))
        .child(
            probe
                .spec_with("stuck", stuck)
                .shutdown(Duration::from_millis(300)),
        );
    let supervisor = start(spec).await;
    let a = worker(&supervisor, "a").await;
    let stuck = worker(&supervisor, "stuck").await;
    let stopping = Instant::now();
    supervisor.stop();
    assert_eq!(supervisor.wait_for_stop().await, ExitReason::Stopped);
    // The shutdown time, then as long again after the kill, then the abort.
    assert_eq!(stopping.elapsed(), Duration::from_millis(600));
    assert_eq!(
        probe.events(),
        strings(&[
            "a:start",
            "stuck:start",
            "stuck:stopping:stopped",
            "a:stop:stopped",
        ])
    );
    assert!(!stuck.is_alive());
    assert_eq!(stuck.wait_for_stop().await, ExitReason::Killed);
    assert!(!a.is_alive());
}

#[tokio::test(start_paused = true)]
async fn a_short_shutdown_still_grants_100ms_after_the_kill() {
    let probe = Probe::default();
    let stuck = Behaviour {
        stop_delay: Some(HOUR),
        ..Behaviour::default()
    };
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(
        probe
            .spec_with("stuck", stuck)
            .shutdown(Duration::from_millis(10)),
    );
    let supervisor = start(spec).await;
    let stopping = Instant::now();
    supervisor.stop();
    supervisor.wait_for_stop().await;
    assert_eq!(stopping.elapsed(), Duration::from_millis(110));
}

#[tokio::test(start_paused = true)]
async fn zero_shutdown_kills_at_once() {
    let probe = Probe::default();
    let spec =
        SupervisorSpec::new(Strategy::OneForOne).child(probe.spec("w").shutdown(Duration::ZERO));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;
    w.tell(Block(HOUR)).await.unwrap();
    settle().await;
    let stopping = Instant::now();
    supervisor.stop();
    supervisor.wait_for_stop().await;
    assert_eq!(stopping.elapsed(), Duration::ZERO);
    assert_eq!(
        probe.events(),
        strings(&["w:start", "w:blocking", "w:stop:killed"])
    );
}

#[tokio::test(start_paused = true)]
async fn terminate_child_kills_a_blocked_child_after_its_shutdown() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("w").shutdown(Duration::from_millis(250)));
    let supervisor = start(spec).await;
    let w = worker(&supervisor, "w").await;
    w.tell(Block(HOUR)).await.unwrap();
    settle().await;
    let stopping = Instant::now();
    assert!(supervisor.terminate_child("w").await);
    assert_eq!(stopping.elapsed(), Duration::from_millis(250));
    assert!(!w.is_alive());
    assert_eq!(probe.events().last().unwrap(), "w:stop:killed");
    assert!(supervisor.children().await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_blocked_sibling_is_killed_after_its_shutdown_then_restarted() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .child(probe.spec("slow").shutdown(Duration::from_millis(100)))
        .child(probe.spec("b"));
    let supervisor = start(spec).await;
    let slow = worker(&supervisor, "slow").await;
    let b = worker(&supervisor, "b").await;
    slow.tell(Block(HOUR)).await.unwrap();
    slow.tell(Record(1)).await.unwrap();
    settle().await;
    probe.take();

    let failed_at = Instant::now();
    let _ = b.ask(Panic).await;
    assert_eq!(b.ask(Get).await.unwrap(), (2, 0));
    assert_eq!(failed_at.elapsed(), Duration::from_millis(100));
    assert_eq!(slow.ask(Get).await.unwrap(), (2, 0));
    let events = probe.take();
    assert_eq!(
        events[..3],
        strings(&["b:stop:panicked: boom", "slow:stop:killed", "slow:start"])
    );
    // The blocking message was aborted, not retried; the one queued behind it survived.
    assert_eq!(
        of(&events, "slow"),
        strings(&["slow:stop:killed", "slow:start", "slow#2:msg:1"])
    );
    assert_eq!(
        of(&events, "b"),
        strings(&["b:stop:panicked: boom", "b:start"])
    );
    assert_eq!(slow.stats().restarts, 1);
    assert!(supervisor.is_alive());
}

/// One failure is one restart: a sibling that has to be aborted while the supervisor
/// stops it for a one-for-all restart must not use up the restart intensity.
#[tokio::test(start_paused = true)]
async fn a_sibling_stuck_in_on_stop_during_a_restart_does_not_escalate() {
    let probe = Probe::default();
    let stuck = Behaviour {
        stop_delay: Some(HOUR),
        ..Behaviour::default()
    };
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .intensity(3, Duration::from_secs(60))
        .unwrap()
        .child(
            probe
                .spec_with("stuck", stuck)
                .shutdown(Duration::from_millis(100)),
        )
        .child(probe.spec("b"));
    let supervisor = start(spec).await;
    let b = worker(&supervisor, "b").await;
    let _ = b.ask(Panic).await;
    assert_eq!(b.ask(Get).await.unwrap(), (2, 0));
    assert!(supervisor.is_alive());
    let children = supervisor.children().await;
    assert!(children.iter().all(|info| info.running), "{children:?}");
}

// ---------------------------------------------------------------------------------------
// Ordered start, reverse stop
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn each_child_starts_after_the_previous_on_start_finished() {
    let probe = Probe::default();
    let slow = Behaviour {
        start_delay: Some(Duration::from_millis(100)),
        ..Behaviour::default()
    };
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec_with("a", slow))
        .child(probe.spec_with("b", slow))
        .child(probe.spec_with("c", slow));
    let began = Instant::now();
    let supervisor = start(spec).await;
    assert_eq!(began.elapsed(), Duration::from_millis(300));
    assert_eq!(
        probe.events(),
        strings(&[
            "a:starting",
            "a:start",
            "b:starting",
            "b:start",
            "c:starting",
            "c:start",
        ])
    );
    let ms = Duration::from_millis;
    let at = |name: &str| probe.start_times(name)[0] - began;
    assert_eq!([at("a"), at("b"), at("c")], [ms(100), ms(200), ms(300)]);
    assert_eq!(names(&supervisor).await, ["a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_static_child_fails_start_and_stops_the_started_ones_in_reverse() {
    let probe = Probe::default();
    let fails = Behaviour {
        fail_start: Some(|_| true),
        ..Behaviour::default()
    };
    let result = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("a"))
        .child(probe.spec("b"))
        .child(probe.spec_with("c", fails))
        .child(probe.spec("d"))
        .start()
        .await;
    let Err(StartChildError::Failed(reason)) = result else {
        panic!("start should fail, got {result:?}");
    };
    assert!(matches!(reason, ExitReason::Error(_)), "{reason}");
    assert!(reason.to_string().contains("c cannot start"), "{reason}");
    assert_eq!(
        probe.events(),
        strings(&[
            "a:start",
            "b:start",
            "c:start-failed",
            "b:stop:stopped",
            "a:stop:stopped",
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn a_static_child_panicking_in_on_start_fails_start() {
    let probe = Probe::default();
    let panics = Behaviour {
        panic_start: Some(|_| true),
        ..Behaviour::default()
    };
    let result = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("a"))
        .child(probe.spec_with("b", panics))
        .start()
        .await;
    let Err(StartChildError::Failed(reason)) = result else {
        panic!("start should fail, got {result:?}");
    };
    assert_eq!(reason, ExitReason::Panicked("start panic".into()));
    assert_eq!(probe.events(), strings(&["a:start", "a:stop:stopped"]));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_factory_fails_start_like_a_failing_on_start() {
    let probe = Probe::default();
    let result = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("a"))
        .child(ChildSpec::<Other>::new("broken", || panic!("no args")))
        .child(probe.spec("c"))
        .start()
        .await;
    let Err(StartChildError::Failed(reason)) = result else {
        panic!("start should fail, got {result:?}");
    };
    assert_eq!(reason, ExitReason::Panicked("no args".into()));
    assert_eq!(probe.events(), strings(&["a:start", "a:stop:stopped"]));
}

// ---------------------------------------------------------------------------------------
// Dynamic children
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn start_child_adds_a_running_child_after_the_others() {
    let probe = Probe::default();
    let supervisor = start(SupervisorSpec::new(Strategy::OneForOne).child(probe.spec("a"))).await;
    let dynamic = supervisor
        .start_child(probe.spec("dyn").restart(Restart::Transient))
        .await
        .unwrap();
    assert_eq!(dynamic.ask(Bump).await.unwrap(), 1);
    let children = supervisor.children().await;
    assert_eq!(children.len(), 2);
    assert_eq!(children[1].name, "dyn");
    assert_eq!(children[1].id, dynamic.id());
    assert_eq!(children[1].restart, Restart::Transient);
    assert!(children[1].running);
    assert_eq!(worker(&supervisor, "dyn").await, dynamic);
}

#[tokio::test(start_paused = true)]
async fn dynamic_children_are_restarted_like_static_ones() {
    let probe = Probe::default();
    let supervisor = start(SupervisorSpec::new(Strategy::OneForAll).child(probe.spec("a"))).await;
    let dynamic = supervisor.start_child(probe.spec("dyn")).await.unwrap();
    probe.take();
    let _ = dynamic.ask(Panic).await;
    assert_eq!(dynamic.ask(Get).await.unwrap(), (2, 0));
    assert_eq!(
        probe.take(),
        strings(&[
            "dyn:stop:panicked: boom",
            "a:stop:stopped",
            "a:start",
            "dyn:start",
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn start_child_with_a_failing_on_start_returns_failed_and_adds_nothing() {
    let probe = Probe::default();
    let supervisor = start(SupervisorSpec::new(Strategy::OneForOne).child(probe.spec("a"))).await;
    let fails = Behaviour {
        fail_start: Some(|_| true),
        ..Behaviour::default()
    };
    let result = supervisor.start_child(probe.spec_with("bad", fails)).await;
    let Err(StartChildError::Failed(reason)) = result else {
        panic!("start_child should fail, got {result:?}");
    };
    assert_eq!(reason.to_string(), "error: bad cannot start");
    assert_eq!(names(&supervisor).await, ["a"]);
    assert!(supervisor.child::<Worker>("bad").await.is_none());
    assert!(supervisor.is_alive());

    let panics = Behaviour {
        panic_start: Some(|_| true),
        ..Behaviour::default()
    };
    let result = supervisor.start_child(probe.spec_with("bad", panics)).await;
    assert!(matches!(
        result,
        Err(StartChildError::Failed(ExitReason::Panicked(ref message))) if message == "start panic"
    ));
    assert_eq!(names(&supervisor).await, ["a"]);
    assert_eq!(probe.events(), strings(&["a:start", "bad:start-failed"]));
}

#[tokio::test(start_paused = true)]
async fn start_child_on_a_stopped_supervisor_reports_it() {
    let probe = Probe::default();
    let supervisor = start(SupervisorSpec::new(Strategy::OneForOne)).await;
    supervisor.stop();
    supervisor.wait_for_stop().await;
    let result = supervisor.start_child(probe.spec("late")).await;
    assert!(matches!(result, Err(StartChildError::SupervisorStopped)));
    assert!(probe.events().is_empty());
}

#[tokio::test(start_paused = true)]
async fn child_lookup_is_typed() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("w"))
        .child(ChildSpec::<Other>::new("other", || ()));
    let supervisor = start(spec).await;
    assert!(supervisor.child::<Worker>("w").await.is_some());
    assert!(supervisor.child::<Other>("w").await.is_none());
    assert!(supervisor.child::<Other>("other").await.is_some());
    assert!(supervisor.child::<Worker>("other").await.is_none());
    assert!(supervisor.child::<Worker>("missing").await.is_none());
}

#[tokio::test(start_paused = true)]
async fn terminate_child_stops_it_for_good_and_removes_it() {
    let probe = Probe::default();
    let supervisor = start(three(&probe, Strategy::OneForAll)).await;
    let b = worker(&supervisor, "b").await;
    b.tell(Record(1)).await.unwrap();
    assert!(supervisor.terminate_child("b").await);
    assert_eq!(b.wait_for_stop().await, ExitReason::Stopped);
    assert!(!supervisor.terminate_child("b").await);
    assert!(!supervisor.terminate_child("missing").await);
    assert_eq!(names(&supervisor).await, ["a", "c"]);
    assert_eq!(
        probe.events(),
        strings(&[
            "a:start",
            "b:start",
            "c:start",
            "b#1:msg:1",
            "b:stop:stopped"
        ])
    );
    // A terminated child is not a failure: nobody else restarted.
    let a = worker(&supervisor, "a").await;
    assert_eq!(a.stats().restarts, 0);
}

#[tokio::test(start_paused = true)]
async fn children_reports_each_child_in_start_order_with_a_stable_id() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("a"))
        .child(probe.spec("t").restart(Restart::Transient))
        .child(ChildSpec::<Other>::new("o", || ()).restart(Restart::Temporary));
    let supervisor = start(spec).await;
    let children = supervisor.children().await;
    let summary: Vec<(&str, Restart, bool)> = children
        .iter()
        .map(|info| (info.name.as_str(), info.restart, info.running))
        .collect();
    assert_eq!(
        summary,
        [
            ("a", Restart::Permanent, true),
            ("t", Restart::Transient, true),
            ("o", Restart::Temporary, true),
        ]
    );
    assert!(
        children[0].actor.ends_with("Worker"),
        "{}",
        children[0].actor
    );
    assert!(
        children[2].actor.ends_with("Other"),
        "{}",
        children[2].actor
    );
    let a = worker(&supervisor, "a").await;
    assert_eq!(children[0].id, a.id());

    let _ = a.ask(Panic).await;
    settle().await;
    let after = supervisor.children().await;
    assert_eq!(after[0].id, children[0].id, "a restart keeps the id");
    assert!(after[0].running);
}

// ---------------------------------------------------------------------------------------
// Nested supervisors
// ---------------------------------------------------------------------------------------

fn sub_spec(probe: &Probe) -> SupervisorSpec {
    SupervisorSpec::new(Strategy::OneForOne)
        .intensity(1, Duration::from_secs(60))
        .unwrap()
        .child(probe.spec("x"))
        .child(probe.spec("y"))
}

fn sub_child(probe: &Probe, restart: Restart) -> ChildSpec<Supervisor> {
    let spec = sub_spec(probe);
    ChildSpec::<Supervisor>::new("sub", move || spec.clone()).restart(restart)
}

async fn escalate(sub: &SupervisorRef) {
    let x = worker(sub, "x").await;
    let _ = x.ask(Panic).await;
    x.ask(Get).await.unwrap();
    let _ = x.ask(Panic).await;
    x.wait_for_stop().await;
    settle().await;
}

#[tokio::test(start_paused = true)]
async fn an_escalating_permanent_sub_supervisor_is_restarted_by_its_parent() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("a"))
        .child(sub_child(&probe, Restart::Permanent));
    let root = start(spec).await;
    let sub = root.child::<Supervisor>("sub").await.unwrap();
    let old_x = worker(&sub, "x").await;
    let a = worker(&root, "a").await;
    probe.take();

    escalate(&sub).await;

    assert_eq!(
        probe.take(),
        strings(&[
            "x:stop:panicked: boom",
            "x:start",
            "x:stop:panicked: boom",
            "y:stop:stopped",
            "x:start",
            "y:start",
        ])
    );
    assert!(sub.is_alive());
    assert_eq!(sub.stats().restarts, 1);
    assert!(
        !old_x.is_alive(),
        "the sub-supervisor's new run has new children"
    );
    let new_x = worker(&sub, "x").await;
    assert_ne!(new_x.id(), old_x.id());
    assert_eq!(new_x.ask(Get).await.unwrap(), (3, 0));
    assert_eq!(a.stats().restarts, 0);
    assert!(root.is_alive());
}

#[tokio::test(start_paused = true)]
async fn an_escalating_transient_sub_supervisor_is_restarted() {
    let probe = Probe::default();
    let root = start(
        SupervisorSpec::new(Strategy::OneForOne).child(sub_child(&probe, Restart::Transient)),
    )
    .await;
    let sub = root.child::<Supervisor>("sub").await.unwrap();
    escalate(&sub).await;
    assert_eq!(sub.stats().restarts, 1);
    assert_eq!(names(&sub).await, ["x", "y"]);
    assert_eq!(names(&root).await, ["sub"]);
}

#[tokio::test(start_paused = true)]
async fn an_escalating_temporary_sub_supervisor_is_removed() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("a"))
        .child(sub_child(&probe, Restart::Temporary));
    let root = start(spec).await;
    let sub = root.child::<Supervisor>("sub").await.unwrap();
    escalate(&sub).await;
    assert_eq!(sub.wait_for_stop().await, ExitReason::Escalated);
    assert_eq!(names(&root).await, ["a"]);
    assert!(root.is_alive());
}

#[tokio::test(start_paused = true)]
async fn escalation_climbs_the_tree_when_the_parent_gives_up_too() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(0, Duration::from_secs(60))
        .unwrap()
        .child(probe.spec("a"))
        .child(sub_child(&probe, Restart::Permanent));
    let root = start(spec).await;
    let sub = root.child::<Supervisor>("sub").await.unwrap();
    let a = worker(&root, "a").await;
    probe.take();
    let x = worker(&sub, "x").await;
    let _ = x.ask(Panic).await;
    x.ask(Get).await.unwrap();
    let _ = x.ask(Panic).await;

    assert_eq!(root.wait_for_stop().await, ExitReason::Escalated);
    assert!(!sub.is_alive());
    assert!(!a.is_alive());
    assert_eq!(
        probe.events(),
        strings(&[
            "x:stop:panicked: boom",
            "x:start",
            "x:stop:panicked: boom",
            "y:stop:stopped",
            "a:stop:stopped",
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn stopping_the_root_stops_every_level_in_reverse_order() {
    let probe = Probe::default();
    let inner = SupervisorSpec::new(Strategy::OneForOne)
        .child(probe.spec("x1"))
        .child(probe.spec("x2"));
    let middle = SupervisorSpec::new(Strategy::RestForOne)
        .child(probe.spec("m1"))
        .child(ChildSpec::<Supervisor>::new("inner", move || inner.clone()))
        .child(probe.spec("m2"));
    let root = start(
        SupervisorSpec::new(Strategy::OneForAll)
            .child(probe.spec("a"))
            .child(ChildSpec::<Supervisor>::new("middle", move || {
                middle.clone()
            }))
            .child(probe.spec("b")),
    )
    .await;
    assert_eq!(
        probe.take(),
        strings(&[
            "a:start", "m1:start", "x1:start", "x2:start", "m2:start", "b:start"
        ])
    );
    let middle = root.child::<Supervisor>("middle").await.unwrap();
    let inner = middle.child::<Supervisor>("inner").await.unwrap();
    let leaves = [
        worker(&root, "a").await,
        worker(&root, "b").await,
        worker(&middle, "m1").await,
        worker(&middle, "m2").await,
        worker(&inner, "x1").await,
        worker(&inner, "x2").await,
    ];

    root.stop();
    assert_eq!(root.wait_for_stop().await, ExitReason::Stopped);
    assert_eq!(
        probe.take(),
        strings(&[
            "b:stop:stopped",
            "m2:stop:stopped",
            "x2:stop:stopped",
            "x1:stop:stopped",
            "m1:stop:stopped",
            "a:stop:stopped",
        ])
    );
    assert_eq!(middle.wait_for_stop().await, ExitReason::Stopped);
    assert_eq!(inner.wait_for_stop().await, ExitReason::Stopped);
    for leaf in &leaves {
        assert_eq!(leaf.wait_for_stop().await, ExitReason::Stopped);
        assert_eq!(leaf.stats().restarts, 0);
    }
}

// ---------------------------------------------------------------------------------------
// Queued messages across in-place restarts
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn queued_messages_survive_a_restart_and_the_panicking_one_is_not_retried() {
    let probe = Probe::default();
    let supervisor = start(SupervisorSpec::new(Strategy::OneForOne).child(probe.spec("w"))).await;
    let w = worker(&supervisor, "w").await;
    w.tell(Bump).await.unwrap();
    w.tell(Record(1)).await.unwrap();
    w.tell(Panic).await.unwrap();
    w.tell(Record(2)).await.unwrap();
    w.tell(Bump).await.unwrap();
    w.tell(Record(3)).await.unwrap();
    assert_eq!(
        w.ask(Get).await.unwrap(),
        (2, 1),
        "fresh state, one bump since"
    );

    assert_eq!(
        probe.events(),
        strings(&[
            "w:start",
            "w#1:msg:1",
            "w:stop:panicked: boom",
            "w:start",
            "w#2:msg:2",
            "w#2:msg:3",
        ])
    );
    let stats = w.stats();
    assert_eq!(stats.panics, 1, "the panicking message ran once");
    assert_eq!(stats.restarts, 1);
    assert_eq!(stats.processed, 7);
    assert_eq!(stats.dead_letters, 0);
}

#[tokio::test(start_paused = true)]
async fn an_ask_queued_behind_a_panic_is_answered_by_the_next_run() {
    let probe = Probe::default();
    let supervisor = start(SupervisorSpec::new(Strategy::OneForOne).child(probe.spec("w"))).await;
    let w = worker(&supervisor, "w").await;
    let panicking = w.ask(Panic);
    let queued = w.ask(Bump);
    let (panicked, bumped) = tokio::join!(panicking, queued);
    assert!(matches!(panicked, Err(AskError::NoReply)));
    assert_eq!(bumped.unwrap(), 1);
    assert_eq!(w.ask(Get).await.unwrap(), (2, 1));
}
