//! Scenario tests of one actor's life: the mailbox (`tell`, `try_tell`, `tell_timeout`,
//! bounded and unbounded), asks and their deadlines, the priority lane (`stop`, `kill` with
//! a full mailbox), `on_start` failures, `on_stop` running exactly once on every path,
//! `on_panic`, stopping from inside, strong and weak references, links, monitors, the
//! registry, timers and the stats counters.
//!
//! Every test runs on a paused current-thread runtime: time moves only when every task is
//! idle, so `settle()` (a 1 ms sleep) is a deterministic "everything else has run" barrier
//! and elapsed times are exact.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowbed_actor::{
    Actor, ActorId, ActorRef, AskError, BoxError, ConfigError, Context, DEFAULT_ASK_TIMEOUT,
    DeadLetter, ExitKind, ExitReason, ExitSignal, LookupError, Mailbox, Message, Name, PanicAction,
    RegisterError, Registry, SendError, Spawn, TimerHandle, WeakActorRef,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------
// Test actors and helpers
// ---------------------------------------------------------------------------------------

/// What a probe saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Started,
    Handled(u32),
    Tick(u32, Instant),
    Stopped(ExitReason),
}

#[derive(Clone, Default)]
struct Trace(Arc<Mutex<Vec<Event>>>);

impl Trace {
    fn push(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    fn handled(&self) -> Vec<u32> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Handled(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    fn ticks(&self) -> Vec<(u32, Instant)> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Tick(n, at) => Some((n, at)),
                _ => None,
            })
            .collect()
    }

    fn stops(&self) -> Vec<ExitReason> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Stopped(reason) => Some(reason),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug)]
struct TestError(&'static str);

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for TestError {}

fn error(text: &'static str) -> ExitReason {
    ExitReason::Error(Arc::new(TestError(text)))
}

fn panicked(text: &str) -> ExitReason {
    ExitReason::Panicked(text.to_owned())
}

fn linked(from: ActorId, reason: ExitReason) -> ExitReason {
    ExitReason::Linked {
        from,
        reason: Arc::new(reason),
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum StartWith {
    #[default]
    Ok,
    Error,
    Panic,
}

#[derive(Clone, Default)]
struct ProbeArgs {
    trace: Trace,
    start: StartWith,
    start_gate: Option<Arc<Semaphore>>,
    resume_after_panic: bool,
    panic_in_on_stop: bool,
}

impl ProbeArgs {
    fn new(trace: &Trace) -> Self {
        Self {
            trace: trace.clone(),
            ..Self::default()
        }
    }
}

/// The actor under test: records what happens to it in a [`Trace`].
struct Probe {
    trace: Trace,
    total: u64,
    resume_after_panic: bool,
    panic_in_on_stop: bool,
    held: Vec<ActorRef<Probe>>,
}

impl Actor for Probe {
    type Args = ProbeArgs;

    async fn on_start(args: ProbeArgs, _: &mut Context<Self>) -> Result<Self, BoxError> {
        if let Some(gate) = &args.start_gate {
            gate.acquire().await?.forget();
        }
        match args.start {
            StartWith::Ok => {}
            StartWith::Error => return Err("start refused".into()),
            StartWith::Panic => panic!("start exploded"),
        }
        args.trace.push(Event::Started);
        Ok(Probe {
            trace: args.trace,
            total: 0,
            resume_after_panic: args.resume_after_panic,
            panic_in_on_stop: args.panic_in_on_stop,
            held: Vec::new(),
        })
    }

    async fn on_stop(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        self.trace.push(Event::Stopped(reason.clone()));
        if self.panic_in_on_stop {
            panic!("on_stop exploded");
        }
    }

    async fn on_panic(&mut self, _: &ExitReason, _: &mut Context<Self>) -> PanicAction {
        if self.resume_after_panic {
            PanicAction::Resume
        } else {
            PanicAction::Stop
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record(u32);
impl Message<Record> for Probe {
    type Reply = ();
    async fn handle(&mut self, Record(n): Record, _: &mut Context<Self>) {
        self.trace.push(Event::Handled(n));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Add(u64);
impl Message<Add> for Probe {
    type Reply = u64;
    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> u64 {
        self.total += n;
        self.total
    }
}

struct Describe;
impl Message<Describe> for Probe {
    type Reply = String;
    async fn handle(&mut self, _: Describe, _: &mut Context<Self>) -> String {
        format!("probe total={}", self.total)
    }
}

/// Parks the handler until the test adds a permit to the gate.
struct Block(Arc<Semaphore>);
impl Message<Block> for Probe {
    type Reply = ();
    async fn handle(&mut self, Block(gate): Block, _: &mut Context<Self>) {
        gate.acquire().await.expect("gate open").forget();
    }
}

struct Sleep(Duration);
impl Message<Sleep> for Probe {
    type Reply = ();
    async fn handle(&mut self, Sleep(duration): Sleep, _: &mut Context<Self>) {
        tokio::time::sleep(duration).await;
    }
}

struct SlowReply(Duration, u32);
impl Message<SlowReply> for Probe {
    type Reply = u32;
    async fn handle(&mut self, SlowReply(duration, n): SlowReply, _: &mut Context<Self>) -> u32 {
        tokio::time::sleep(duration).await;
        n
    }
}

struct Boom(&'static str);
impl Message<Boom> for Probe {
    type Reply = ();
    async fn handle(&mut self, Boom(text): Boom, _: &mut Context<Self>) {
        panic!("{text}");
    }
}

/// Changes the state, then panics.
struct AddThenBoom(u64);
impl Message<AddThenBoom> for Probe {
    type Reply = u64;
    async fn handle(&mut self, AddThenBoom(n): AddThenBoom, _: &mut Context<Self>) -> u64 {
        self.total += n;
        panic!("boom after adding {n}");
    }
}

struct StopSelf;
impl Message<StopSelf> for Probe {
    type Reply = ();
    async fn handle(&mut self, _: StopSelf, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

struct FailSelf(&'static str);
impl Message<FailSelf> for Probe {
    type Reply = ();
    async fn handle(&mut self, FailSelf(text): FailSelf, ctx: &mut Context<Self>) {
        ctx.fail(TestError(text));
    }
}

struct Tick(u32);
impl Message<Tick> for Probe {
    type Reply = ();
    async fn handle(&mut self, Tick(n): Tick, _: &mut Context<Self>) {
        self.trace.push(Event::Tick(n, Instant::now()));
    }
}

/// Runs a closure on the actor with its context (links, monitors, timers, refs).
type Job<A, R> = Box<dyn FnOnce(&mut A, &mut Context<A>) -> R + Send>;
struct With<A: Actor, R>(Job<A, R>);

fn on_probe<R>(
    job: impl FnOnce(&mut Probe, &mut Context<Probe>) -> R + Send + 'static,
) -> With<Probe, R> {
    With(Box::new(job))
}

impl<R: Send + 'static> Message<With<Probe, R>> for Probe {
    type Reply = R;
    async fn handle(&mut self, With(job): With<Probe, R>, ctx: &mut Context<Self>) -> R {
        job(self, ctx)
    }
}

type SeenSignal = (ActorId, ExitKind, ExitReason);

/// Traps every exit signal (links and monitors) and keeps it; never stops because of one.
struct Observer {
    signals: Vec<SeenSignal>,
}

impl Actor for Observer {
    type Args = ();

    async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(Observer {
            signals: Vec::new(),
        })
    }

    async fn on_exit_signal(&mut self, signal: ExitSignal, _: &mut Context<Self>) {
        self.signals.push((signal.from, signal.kind, signal.reason));
    }
}

struct Signals;
impl Message<Signals> for Observer {
    type Reply = Vec<SeenSignal>;
    async fn handle(&mut self, _: Signals, _: &mut Context<Self>) -> Vec<SeenSignal> {
        self.signals.clone()
    }
}

fn on_observer<R>(
    job: impl FnOnce(&mut Observer, &mut Context<Observer>) -> R + Send + 'static,
) -> With<Observer, R> {
    With(Box::new(job))
}

impl<R: Send + 'static> Message<With<Observer, R>> for Observer {
    type Reply = R;
    async fn handle(&mut self, With(job): With<Observer, R>, ctx: &mut Context<Self>) -> R {
        job(self, ctx)
    }
}

fn probe(trace: &Trace) -> ActorRef<Probe> {
    Probe::spawn(ProbeArgs::new(trace))
}

fn bounded_probe(capacity: usize, trace: &Trace) -> ActorRef<Probe> {
    Spawn::new()
        .mailbox(Mailbox::bounded(capacity).unwrap())
        .spawn::<Probe>(ProbeArgs::new(trace))
}

fn gate() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(0))
}

type Letters = Arc<Mutex<Vec<DeadLetter>>>;

/// Spawn options whose dead-letter hook keeps every letter.
fn collecting_letters() -> (Spawn, Letters) {
    let letters: Letters = Arc::default();
    let sink = letters.clone();
    let spawn = Spawn::new().on_dead_letter(move |letter| sink.lock().unwrap().push(letter));
    (spawn, letters)
}

fn take_records(letters: &Letters) -> Vec<u32> {
    letters
        .lock()
        .unwrap()
        .drain(..)
        .map(|letter| letter.downcast::<Record>().expect("a Record").0)
        .collect()
}

/// On a paused current-thread runtime: returns once every other task is idle.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// `wait_for_stop`, failing the test (instead of hanging it) if the actor never ends.
async fn ended<A: Actor>(actor: &ActorRef<A>) -> ExitReason {
    tokio::time::timeout(Duration::from_secs(3600), actor.wait_for_stop())
        .await
        .expect("the actor did not end")
}

/// The ways an actor's life can end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Stop,
    CtxStop,
    CtxFail,
    Panic,
    Kill,
    LastRefDropped,
}

impl Ending {
    const ALL: [Ending; 6] = [
        Ending::Stop,
        Ending::CtxStop,
        Ending::CtxFail,
        Ending::Panic,
        Ending::Kill,
        Ending::LastRefDropped,
    ];

    fn reason(self) -> ExitReason {
        match self {
            Ending::Stop => ExitReason::Stopped,
            Ending::CtxStop | Ending::LastRefDropped => ExitReason::Normal,
            Ending::CtxFail => error("failed on purpose"),
            Ending::Panic => panicked("boom"),
            Ending::Kill => ExitReason::Killed,
        }
    }

    /// Ends `probe` this way and waits for the end; returns the reference unless the way
    /// was dropping it.
    async fn end(self, probe: ActorRef<Probe>) -> Option<ActorRef<Probe>> {
        match self {
            Ending::Stop => probe.stop(),
            Ending::CtxStop => probe.tell(StopSelf).await.unwrap(),
            Ending::CtxFail => probe.tell(FailSelf("failed on purpose")).await.unwrap(),
            Ending::Panic => probe.tell(Boom("boom")).await.unwrap(),
            Ending::Kill => probe.kill(),
            Ending::LastRefDropped => {
                let weak = probe.downgrade();
                drop(probe);
                settle().await;
                assert!(
                    !weak.is_alive(),
                    "dropping the last reference did not stop it"
                );
                return None;
            }
        }
        assert_eq!(ended(&probe).await, self.reason(), "{self:?}");
        Some(probe)
    }
}

// ---------------------------------------------------------------------------------------
// tell, try_tell, tell_timeout, mailboxes
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn try_tell_on_a_full_mailbox_returns_full_with_the_message() {
    let trace = Trace::default();
    let gate = gate();
    let probe = bounded_probe(2, &trace);
    probe.tell(Block(gate.clone())).await.unwrap();
    settle().await; // the handler of Block waits at the gate; the mailbox is empty
    probe.try_tell(Record(1)).unwrap();
    probe.try_tell(Record(2)).unwrap();
    assert!(matches!(
        probe.try_tell(Record(3)),
        Err(SendError::Full(Record(3)))
    ));
    assert_eq!(
        probe.try_tell(Record(4)).unwrap_err().into_inner(),
        Record(4)
    );
    assert_eq!(probe.mailbox_len(), 2);
    assert_eq!(probe.stats().mailbox_capacity, Some(2));

    gate.add_permits(1);
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(trace.handled(), vec![1, 2]);
    assert_eq!(probe.stats().processed, 4); // Block, 1, 2, the ask
}

#[tokio::test(start_paused = true)]
async fn tell_waits_for_room_and_resumes_when_the_actor_drains() {
    let trace = Trace::default();
    let gate = gate();
    let probe = bounded_probe(1, &trace);
    probe.tell(Block(gate.clone())).await.unwrap();
    settle().await;
    probe.tell(Record(1)).await.unwrap(); // fills the mailbox
    let sender = {
        let probe = probe.clone();
        tokio::spawn(async move { probe.tell(Record(2)).await })
    };
    settle().await;
    assert!(
        !sender.is_finished(),
        "tell returned although the mailbox is full"
    );
    assert_eq!(probe.mailbox_len(), 1);

    gate.add_permits(1);
    sender.await.unwrap().unwrap();
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(trace.handled(), vec![1, 2]);
}

#[tokio::test(start_paused = true)]
async fn tell_timeout_hands_the_message_back_after_exactly_the_timeout() {
    let trace = Trace::default();
    let gate = gate();
    let probe = bounded_probe(1, &trace);
    probe.tell(Block(gate.clone())).await.unwrap();
    settle().await;
    probe.tell(Record(1)).await.unwrap();

    let waited = Duration::from_millis(250);
    let started = Instant::now();
    let sent = probe.tell_timeout(Record(2), waited).await;
    assert_eq!(started.elapsed(), waited);
    match sent {
        Err(SendError::Timeout(Record(2), after)) => assert_eq!(after, waited),
        other => panic!("expected Timeout(Record(2), 250ms), got {other:?}"),
    }

    gate.add_permits(1);
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(
        trace.handled(),
        vec![1],
        "the timed-out message was delivered"
    );
    assert_eq!(probe.stats().dead_letters, 0);
}

#[tokio::test(start_paused = true)]
async fn tell_timeout_sends_when_room_frees_up_in_time() {
    let trace = Trace::default();
    let probe = bounded_probe(1, &trace);
    probe.tell(Sleep(Duration::from_millis(100))).await.unwrap();
    settle().await;
    probe.tell(Record(1)).await.unwrap();
    let started = Instant::now();
    probe
        .tell_timeout(Record(2), Duration::from_secs(1))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(trace.handled(), vec![1, 2]);
}

#[test]
fn a_mailbox_of_zero_is_a_config_error() {
    assert!(matches!(
        Mailbox::bounded(0),
        Err(ConfigError::Invalid {
            setting: "mailbox capacity",
            ..
        })
    ));
    assert!(matches!(Mailbox::bounded(1), Ok(Mailbox::Bounded(n)) if n.get() == 1));
    assert!(
        matches!(Mailbox::default(), Mailbox::Bounded(n) if n.get() == Spawn::DEFAULT_CAPACITY)
    );
}

#[tokio::test(start_paused = true)]
async fn an_unbounded_mailbox_never_reports_full() {
    let trace = Trace::default();
    let gate = gate();
    let probe = Spawn::new()
        .mailbox(Mailbox::Unbounded)
        .spawn::<Probe>(ProbeArgs::new(&trace));
    probe.tell(Block(gate.clone())).await.unwrap();
    settle().await;
    for n in 0..10_000 {
        probe.try_tell(Record(n)).unwrap();
    }
    let stats = probe.stats();
    assert_eq!(stats.mailbox_capacity, None);
    assert_eq!(stats.mailbox_len, 10_000);

    gate.add_permits(1);
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(trace.handled(), (0..10_000).collect::<Vec<_>>());
    assert_eq!(probe.stats().processed, 10_002);
}

#[tokio::test(start_paused = true)]
async fn every_send_to_an_ended_actor_hands_the_message_back() {
    let probe = probe(&Trace::default());
    probe.stop();
    assert_eq!(ended(&probe).await, ExitReason::Stopped);
    assert!(matches!(
        probe.try_tell(Record(1)),
        Err(SendError::Stopped(Record(1)))
    ));
    assert!(matches!(
        probe.tell(Record(2)).await,
        Err(SendError::Stopped(Record(2)))
    ));
    assert!(matches!(
        probe.tell_timeout(Record(3), Duration::from_secs(1)).await,
        Err(SendError::Stopped(Record(3)))
    ));
    assert_eq!(probe.stats().dead_letters, 0);
}

// ---------------------------------------------------------------------------------------
// ask
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn ask_returns_the_typed_reply_of_each_message_type() {
    let trace = Trace::default();
    let probe = probe(&trace);
    let total: u64 = probe.ask(Add(2)).await.unwrap();
    assert_eq!(total, 2);
    let description: String = probe.ask(Describe).await.unwrap();
    assert_eq!(description, "probe total=2");
    assert!(matches!(probe.ask(Record(7)).await, Ok(())));
    let pair: (u64, bool) = probe
        .ask(on_probe(|probe, _| (probe.total * 10, true)))
        .await
        .unwrap();
    assert_eq!(pair, (20, true));
    let slow: u32 = probe
        .ask(SlowReply(Duration::from_millis(10), 9))
        .await
        .unwrap();
    assert_eq!(slow, 9);
    assert_eq!(trace.handled(), vec![7]);
}

#[tokio::test(start_paused = true)]
async fn ask_to_a_stopped_actor_fails_at_once_with_the_message() {
    let probe = probe(&Trace::default());
    probe.stop();
    ended(&probe).await;
    let started = Instant::now();
    assert!(matches!(
        probe.ask(Add(7)).await,
        Err(AskError::Stopped(Add(7)))
    ));
    assert!(matches!(
        probe.ask_timeout(Add(8), Duration::from_secs(1)).await,
        Err(AskError::Stopped(Add(8)))
    ));
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn ask_never_waits_past_the_default_deadline() {
    let probe = probe(&Trace::default());
    let started = Instant::now();
    let asked = probe.ask(SlowReply(Duration::from_secs(10), 1)).await;
    assert!(matches!(asked, Err(AskError::Timeout(d)) if d == DEFAULT_ASK_TIMEOUT));
    assert_eq!(started.elapsed(), DEFAULT_ASK_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn the_ask_deadline_covers_the_wait_for_room_and_for_the_reply() {
    let probe = Spawn::new()
        .mailbox(Mailbox::bounded(1).unwrap())
        .spawn::<Probe>(ProbeArgs::new(&Trace::default()));
    probe.tell(Sleep(Duration::from_millis(60))).await.unwrap();
    settle().await;
    probe.tell(Sleep(Duration::from_millis(60))).await.unwrap(); // full until ~60 ms
    let started = Instant::now();
    // Room after ~60 ms, reply after ~120 ms: neither alone passes 100 ms, together they do.
    let asked = probe.ask_timeout(Add(1), Duration::from_millis(100)).await;
    assert!(matches!(asked, Err(AskError::Timeout(d)) if d == Duration::from_millis(100)));
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    // The message was accepted, so it is still handled after the asker gave up.
    assert_eq!(probe.ask(Add(0)).await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn ask_timeout_while_the_mailbox_stays_full_gives_up_at_the_deadline() {
    let trace = Trace::default();
    let gate = gate();
    let probe = bounded_probe(1, &trace);
    probe.tell(Block(gate.clone())).await.unwrap();
    settle().await;
    probe.tell(Record(1)).await.unwrap();
    let started = Instant::now();
    let asked = probe.ask_timeout(Add(5), Duration::from_millis(300)).await;
    assert!(matches!(asked, Err(AskError::Timeout(_))));
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    gate.add_permits(1);
    // Never accepted: not handled.
    assert_eq!(probe.ask(Add(0)).await.unwrap(), 0);
    assert_eq!(trace.handled(), vec![1]);
}

#[tokio::test(start_paused = true)]
async fn spawn_ask_timeout_sets_the_deadline_of_every_ask_to_that_actor() {
    let deadline = Duration::from_millis(250);
    let probe = Spawn::new()
        .ask_timeout(deadline)
        .spawn::<Probe>(ProbeArgs::new(&Trace::default()));
    let started = Instant::now();
    let asked = probe.ask(SlowReply(Duration::from_secs(1), 1)).await;
    assert!(matches!(asked, Err(AskError::Timeout(d)) if d == deadline));
    assert_eq!(started.elapsed(), deadline);

    // A per-call deadline overrides the actor's.
    let started = Instant::now();
    let reply = probe
        .ask_timeout(SlowReply(Duration::from_secs(1), 2), Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(reply, 2);
    // The first, abandoned SlowReply still ran (until 1 s), then this one (1 s more).
    assert_eq!(started.elapsed(), Duration::from_millis(1750));
}

#[tokio::test(start_paused = true)]
async fn ask_gets_no_reply_when_the_handler_panics() {
    let probe = probe(&Trace::default());
    assert!(matches!(
        probe.ask(AddThenBoom(1)).await,
        Err(AskError::NoReply)
    ));
    assert_eq!(ended(&probe).await, panicked("boom after adding 1"));
}

#[tokio::test(start_paused = true)]
async fn ask_gets_no_reply_when_a_kill_dead_letters_its_message() {
    let (spawn, letters) = collecting_letters();
    let gate = gate();
    let probe = spawn.spawn::<Probe>(ProbeArgs::new(&Trace::default()));
    probe.tell(Block(gate.clone())).await.unwrap();
    let asker = {
        let probe = probe.clone();
        tokio::spawn(async move { probe.ask(Add(1)).await })
    };
    settle().await;
    assert_eq!(probe.mailbox_len(), 1);
    probe.kill();
    assert_eq!(ended(&probe).await, ExitReason::Killed);
    assert!(matches!(asker.await.unwrap(), Err(AskError::NoReply)));
    let letters = std::mem::take(&mut *letters.lock().unwrap());
    assert_eq!(letters.len(), 1);
    assert!(letters[0].was_ask());
    assert!(letters[0].is::<Add>());
    assert_eq!(probe.stats().dead_letters, 1);
}

#[tokio::test(start_paused = true)]
async fn ask_gets_no_reply_when_the_actor_is_killed_mid_handler() {
    let probe = probe(&Trace::default());
    let asker = {
        let probe = probe.clone();
        tokio::spawn(async move { probe.ask(SlowReply(Duration::from_secs(60), 1)).await })
    };
    settle().await;
    probe.kill();
    assert!(matches!(asker.await.unwrap(), Err(AskError::NoReply)));
    assert_eq!(ended(&probe).await, ExitReason::Killed);
    // The aborted handler had started: it counts as processed, not as a dead letter.
    assert_eq!(probe.stats().processed, 1);
    assert_eq!(probe.stats().dead_letters, 0);
}

// ---------------------------------------------------------------------------------------
// The priority lane: stop and kill with a full mailbox and a busy handler
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn kill_ends_a_busy_actor_at_once_and_dead_letters_the_whole_backlog() {
    let trace = Trace::default();
    let gate = gate(); // never opened: the running handler would wait forever
    let (spawn, letters) = collecting_letters();
    let probe = spawn
        .mailbox(Mailbox::bounded(4).unwrap())
        .spawn::<Probe>(ProbeArgs::new(&trace));
    probe.tell(Block(gate.clone())).await.unwrap();
    settle().await;
    probe.tell(Record(1)).await.unwrap();
    probe.tell(Record(2)).await.unwrap();
    let asker = {
        let probe = probe.clone();
        tokio::spawn(async move { probe.ask(Add(5)).await })
    };
    settle().await;
    probe.tell(Record(3)).await.unwrap();
    let blocked = {
        let probe = probe.clone();
        tokio::spawn(async move { probe.tell(Record(4)).await })
    };
    let blocked_asker = {
        let probe = probe.clone();
        tokio::spawn(async move { probe.ask(Add(6)).await })
    };
    settle().await;
    assert_eq!(probe.mailbox_len(), 4);
    assert!(!blocked.is_finished() && !blocked_asker.is_finished());

    probe.kill();
    assert_eq!(ended(&probe).await, ExitReason::Killed);
    assert_eq!(trace.handled(), Vec::<u32>::new());
    assert_eq!(trace.stops(), vec![ExitReason::Killed]);
    assert!(matches!(asker.await.unwrap(), Err(AskError::NoReply)));
    // Never accepted, so handed back rather than dead-lettered.
    assert!(matches!(
        blocked.await.unwrap(),
        Err(SendError::Stopped(Record(4)))
    ));
    assert!(matches!(
        blocked_asker.await.unwrap(),
        Err(AskError::Stopped(Add(6)))
    ));

    let letters = std::mem::take(&mut *letters.lock().unwrap());
    let kinds: Vec<(bool, &str)> = letters
        .iter()
        .map(|letter| (letter.was_ask(), letter.type_name()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (false, std::any::type_name::<Record>()),
            (false, std::any::type_name::<Record>()),
            (true, std::any::type_name::<Add>()),
            (false, std::any::type_name::<Record>()),
        ]
    );
    let messages: Vec<String> = letters
        .into_iter()
        .map(|letter| match letter.downcast::<Record>() {
            Ok(Record(n)) => format!("record {n}"),
            Err(letter) => format!("add {}", letter.downcast::<Add>().expect("an Add").0),
        })
        .collect();
    assert_eq!(messages, ["record 1", "record 2", "add 5", "record 3"]);

    let stats = probe.stats();
    assert_eq!(stats.dead_letters, 4);
    assert_eq!(stats.processed, 1);
    assert_eq!(stats.mailbox_len, 0);
    assert!(!stats.alive);
}

#[tokio::test(start_paused = true)]
async fn stop_with_a_full_mailbox_handles_the_whole_backlog_before_on_stop() {
    let trace = Trace::default();
    let gate = gate();
    let probe = bounded_probe(3, &trace);
    probe.tell(Block(gate.clone())).await.unwrap();
    settle().await;
    for n in 1..=3 {
        probe.tell(Record(n)).await.unwrap();
    }
    let blocked = {
        let probe = probe.clone();
        tokio::spawn(async move { probe.tell(Record(4)).await })
    };
    settle().await;

    probe.stop(); // does not wait for room: the priority lane
    settle().await;
    assert!(
        probe.is_alive(),
        "a graceful stop lets the running handler finish"
    );

    gate.add_permits(1);
    assert_eq!(ended(&probe).await, ExitReason::Stopped);
    // The stop was seen before the backlog: the sender still waiting was refused...
    assert!(matches!(
        blocked.await.unwrap(),
        Err(SendError::Stopped(Record(4)))
    ));
    // ...and everything already accepted was handled, then on_stop ran.
    assert_eq!(
        trace.events(),
        vec![
            Event::Started,
            Event::Handled(1),
            Event::Handled(2),
            Event::Handled(3),
            Event::Stopped(ExitReason::Stopped),
        ]
    );
    let stats = probe.stats();
    assert_eq!((stats.processed, stats.dead_letters), (4, 0));
}

#[tokio::test(start_paused = true)]
async fn stop_refuses_new_messages_while_it_drains_the_queue() {
    let trace = Trace::default();
    let probe = bounded_probe(8, &trace);
    probe.tell(Sleep(Duration::from_millis(50))).await.unwrap();
    probe.tell(Record(1)).await.unwrap();
    probe.tell(Sleep(Duration::from_millis(50))).await.unwrap();
    probe.tell(Record(2)).await.unwrap();
    settle().await; // the first Sleep runs
    probe.stop();
    tokio::time::sleep(Duration::from_millis(60)).await; // first Sleep done, second running
    assert!(probe.is_alive());
    assert_eq!(trace.handled(), vec![1]);
    assert!(matches!(
        probe.try_tell(Record(3)),
        Err(SendError::Stopped(Record(3)))
    ));
    assert!(matches!(
        probe.ask(Add(1)).await,
        Err(AskError::Stopped(Add(1)))
    ));
    assert_eq!(ended(&probe).await, ExitReason::Stopped);
    assert_eq!(trace.handled(), vec![1, 2]);
}

#[tokio::test(start_paused = true)]
async fn kill_during_a_graceful_stop_abandons_the_rest_of_the_queue() {
    let trace = Trace::default();
    let gate = gate();
    let (spawn, letters) = collecting_letters();
    let probe = spawn.spawn::<Probe>(ProbeArgs::new(&trace));
    probe.tell(Block(gate.clone())).await.unwrap();
    settle().await;
    probe.tell(Record(1)).await.unwrap();
    probe.tell(Record(2)).await.unwrap();
    probe.stop();
    settle().await;
    probe.kill();
    assert_eq!(ended(&probe).await, ExitReason::Killed);
    assert_eq!(trace.stops(), vec![ExitReason::Killed]);
    assert_eq!(take_records(&letters), vec![1, 2]);
    assert_eq!(probe.stats().dead_letters, 2);
}

// ---------------------------------------------------------------------------------------
// on_start, on_stop, on_panic, stopping from inside
// ---------------------------------------------------------------------------------------

async fn check_a_failed_start(start: StartWith, expected: ExitReason) {
    let trace = Trace::default();
    let start_gate = gate();
    let (spawn, letters) = collecting_letters();
    let probe = spawn.spawn::<Probe>(ProbeArgs {
        start,
        start_gate: Some(start_gate.clone()),
        ..ProbeArgs::new(&trace)
    });
    probe.tell(Record(1)).await.unwrap();
    let asker = {
        let probe = probe.clone();
        tokio::spawn(async move { probe.ask(Add(1)).await })
    };
    settle().await;
    assert!(probe.is_alive(), "still starting");
    assert_eq!(probe.mailbox_len(), 2);

    start_gate.add_permits(1);
    assert_eq!(ended(&probe).await, expected);
    assert!(matches!(asker.await.unwrap(), Err(AskError::NoReply)));
    assert_eq!(
        trace.events(),
        vec![],
        "on_stop ran although on_start failed"
    );
    let letters = std::mem::take(&mut *letters.lock().unwrap());
    assert_eq!(letters.len(), 2);
    assert!(letters[0].is::<Record>() && !letters[0].was_ask());
    assert!(letters[1].is::<Add>() && letters[1].was_ask());
    let stats = probe.stats();
    assert_eq!(
        (stats.processed, stats.dead_letters, stats.alive),
        (0, 2, false)
    );
}

#[tokio::test(start_paused = true)]
async fn on_start_error_ends_with_error_skips_on_stop_and_fails_queued_asks() {
    check_a_failed_start(StartWith::Error, error("start refused")).await;
}

#[tokio::test(start_paused = true)]
async fn on_start_panic_ends_with_panicked_skips_on_stop_and_fails_queued_asks() {
    check_a_failed_start(StartWith::Panic, panicked("start exploded")).await;
}

#[tokio::test(start_paused = true)]
async fn messages_sent_during_on_start_wait_and_are_handled_in_order() {
    let trace = Trace::default();
    let start_gate = gate();
    let probe = Probe::spawn(ProbeArgs {
        start_gate: Some(start_gate.clone()),
        ..ProbeArgs::new(&trace)
    });
    for n in 1..=3 {
        probe.tell(Record(n)).await.unwrap();
    }
    settle().await;
    assert_eq!(trace.events(), vec![]);
    start_gate.add_permits(1);
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(
        trace.events(),
        vec![
            Event::Started,
            Event::Handled(1),
            Event::Handled(2),
            Event::Handled(3)
        ]
    );
}

async fn check_on_stop_runs_once(ending: Ending) {
    let trace = Trace::default();
    let probe = probe(&trace);
    probe.ask(Add(1)).await.unwrap();
    let weak = probe.downgrade();
    ending.end(probe).await;
    settle().await;
    assert!(!weak.is_alive());
    assert_eq!(trace.stops(), vec![ending.reason()], "{ending:?}");
}

#[tokio::test(start_paused = true)]
async fn on_stop_runs_once_after_stop() {
    check_on_stop_runs_once(Ending::Stop).await;
}

#[tokio::test(start_paused = true)]
async fn on_stop_runs_once_after_ctx_stop() {
    check_on_stop_runs_once(Ending::CtxStop).await;
}

#[tokio::test(start_paused = true)]
async fn on_stop_runs_once_after_ctx_fail() {
    check_on_stop_runs_once(Ending::CtxFail).await;
}

#[tokio::test(start_paused = true)]
async fn on_stop_runs_once_after_a_panic() {
    check_on_stop_runs_once(Ending::Panic).await;
}

#[tokio::test(start_paused = true)]
async fn on_stop_runs_once_after_kill() {
    check_on_stop_runs_once(Ending::Kill).await;
}

#[tokio::test(start_paused = true)]
async fn on_stop_runs_once_after_the_last_reference_is_dropped() {
    check_on_stop_runs_once(Ending::LastRefDropped).await;
}

#[tokio::test(start_paused = true)]
async fn on_stop_runs_once_when_stop_and_kill_both_arrive() {
    let trace = Trace::default();
    let probe = probe(&trace);
    probe.stop();
    probe.stop();
    probe.kill();
    probe.kill();
    let reason = ended(&probe).await;
    settle().await;
    assert_eq!(trace.stops(), vec![reason]);
}

#[tokio::test(start_paused = true)]
async fn on_panic_resume_keeps_the_actor_running_with_its_state() {
    let trace = Trace::default();
    let probe = Probe::spawn(ProbeArgs {
        resume_after_panic: true,
        ..ProbeArgs::new(&trace)
    });
    assert_eq!(probe.ask(Add(5)).await.unwrap(), 5);
    assert!(matches!(
        probe.ask(AddThenBoom(3)).await,
        Err(AskError::NoReply)
    ));
    // The state is as the panic left it: the 3 was added.
    assert_eq!(probe.ask(Add(0)).await.unwrap(), 8);
    probe.tell(Boom("again")).await.unwrap();
    probe.tell(Record(1)).await.unwrap();
    assert_eq!(probe.ask(Add(1)).await.unwrap(), 9);
    let stats = probe.stats();
    assert!(stats.alive);
    assert_eq!((stats.panics, stats.processed), (2, 6));
    assert_eq!(trace.handled(), vec![1]);
    assert_eq!(trace.stops(), vec![]);
    probe.stop();
    assert_eq!(ended(&probe).await, ExitReason::Stopped);
}

#[tokio::test(start_paused = true)]
async fn a_panic_stops_the_actor_and_dead_letters_the_queue() {
    let trace = Trace::default();
    let gate = gate();
    let (spawn, letters) = collecting_letters();
    let probe = spawn.spawn::<Probe>(ProbeArgs::new(&trace));
    probe.tell(Block(gate.clone())).await.unwrap();
    probe.tell(Boom("boom")).await.unwrap();
    probe.tell(Record(1)).await.unwrap();
    probe.tell(Record(2)).await.unwrap();
    settle().await;
    gate.add_permits(1);
    assert_eq!(ended(&probe).await, panicked("boom"));
    assert_eq!(trace.stops(), vec![panicked("boom")]);
    assert_eq!(take_records(&letters), vec![1, 2]);
    let stats = probe.stats();
    assert_eq!(
        (stats.processed, stats.panics, stats.dead_letters),
        (2, 1, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_on_stop_is_caught() {
    let trace = Trace::default();
    let gate = gate();
    let (spawn, letters) = collecting_letters();
    let probe = spawn.spawn::<Probe>(ProbeArgs {
        panic_in_on_stop: true,
        ..ProbeArgs::new(&trace)
    });
    probe.tell(Block(gate.clone())).await.unwrap();
    probe.tell(StopSelf).await.unwrap();
    probe.tell(Record(1)).await.unwrap();
    settle().await;
    gate.add_permits(1);
    // Had the panic escaped, the task would have unwound and the actor would read Killed.
    assert_eq!(ended(&probe).await, ExitReason::Normal);
    assert_eq!(trace.stops(), vec![ExitReason::Normal]);
    // The end still ran in full: the queue was reported.
    assert_eq!(take_records(&letters), vec![1]);
    let stats = probe.stats();
    assert_eq!((stats.panics, stats.dead_letters), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn ctx_stop_inside_a_handler_dead_letters_the_queued_messages() {
    let trace = Trace::default();
    let gate = gate();
    let (spawn, letters) = collecting_letters();
    let probe = spawn.spawn::<Probe>(ProbeArgs::new(&trace));
    probe.tell(Block(gate.clone())).await.unwrap();
    probe.tell(StopSelf).await.unwrap();
    for n in 1..=5 {
        probe.tell(Record(n)).await.unwrap();
    }
    settle().await;
    gate.add_permits(1);
    assert_eq!(ended(&probe).await, ExitReason::Normal);
    assert_eq!(trace.handled(), Vec::<u32>::new());
    assert_eq!(trace.stops(), vec![ExitReason::Normal]);
    assert_eq!(take_records(&letters), vec![1, 2, 3, 4, 5]);
    let stats = probe.stats();
    assert_eq!((stats.processed, stats.dead_letters), (2, 5));
}

#[tokio::test(start_paused = true)]
async fn ctx_fail_ends_with_the_error_and_dead_letters_the_queue() {
    let trace = Trace::default();
    let gate = gate();
    let (spawn, letters) = collecting_letters();
    let probe = spawn.spawn::<Probe>(ProbeArgs::new(&trace));
    probe.tell(Block(gate.clone())).await.unwrap();
    probe.tell(FailSelf("disk full")).await.unwrap();
    probe.tell(Record(1)).await.unwrap();
    settle().await;
    gate.add_permits(1);
    let reason = ended(&probe).await;
    assert_eq!(reason, error("disk full"));
    assert!(!reason.is_normal());
    assert_eq!(reason.to_string(), "error: disk full");
    assert_eq!(take_records(&letters), vec![1]);
}

// ---------------------------------------------------------------------------------------
// Strong and weak references
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn dropping_every_reference_handles_the_queue_then_stops_normally() {
    let trace = Trace::default();
    let gate = gate();
    let probe = probe(&trace);
    probe.tell(Block(gate.clone())).await.unwrap();
    for n in 1..=3 {
        probe.tell(Record(n)).await.unwrap();
    }
    let weak = probe.downgrade();
    drop(probe);
    settle().await;
    assert!(weak.is_alive(), "still busy with the queue");
    gate.add_permits(1);
    settle().await;
    assert!(!weak.is_alive());
    assert!(weak.upgrade().is_none());
    assert_eq!(trace.handled(), vec![1, 2, 3]);
    assert_eq!(trace.stops(), vec![ExitReason::Normal]);
}

#[tokio::test(start_paused = true)]
async fn a_weak_reference_does_not_keep_the_actor_alive() {
    let trace = Trace::default();
    let probe = probe(&trace);
    let weak = probe.downgrade();
    let weak_too = weak.clone();
    assert_eq!(weak.id(), probe.id());
    assert_eq!(probe.stats().references, 1);
    drop(probe);
    settle().await;
    assert!(!weak.is_alive() && !weak_too.is_alive());
    assert!(weak.upgrade().is_none());
    assert_eq!(trace.stops(), vec![ExitReason::Normal]);
}

#[tokio::test(start_paused = true)]
async fn an_upgraded_weak_reference_is_a_working_strong_one() {
    let trace = Trace::default();
    let probe = probe(&trace);
    let weak = probe.downgrade();
    let upgraded = weak.upgrade().expect("alive");
    assert_eq!(probe.stats().references, 2);
    drop(probe);
    settle().await;
    assert!(
        upgraded.is_alive(),
        "the upgraded reference keeps it running"
    );
    assert_eq!(upgraded.ask(Add(4)).await.unwrap(), 4);
    drop(upgraded);
    settle().await;
    assert!(!weak.is_alive());
    assert!(weak.upgrade().is_none(), "upgrade after the end");
}

#[tokio::test(start_paused = true)]
async fn a_reference_from_ctx_held_elsewhere_keeps_the_actor_alive() {
    let trace = Trace::default();
    let probe = probe(&trace);
    let held = probe.ask(on_probe(|_, ctx| ctx.actor_ref())).await.unwrap();
    assert_eq!(held, probe);
    assert_eq!(probe.stats().references, 2);
    drop(probe);
    settle().await;
    assert!(held.is_alive());
    assert_eq!(held.ask(Add(1)).await.unwrap(), 1);
    assert_eq!(held.stats().references, 1);
    let weak = held.downgrade();
    drop(held);
    settle().await;
    assert!(!weak.is_alive());
    assert_eq!(trace.stops(), vec![ExitReason::Normal]);
}

#[tokio::test(start_paused = true)]
async fn an_actor_holding_its_own_reference_runs_until_told_to_stop() {
    let trace = Trace::default();
    let probe = probe(&trace);
    probe
        .ask(on_probe(|probe, ctx| probe.held.push(ctx.actor_ref())))
        .await
        .unwrap();
    let weak = probe.downgrade();
    drop(probe);
    settle().await;
    let probe = weak.upgrade().expect("its own reference keeps it alive");
    probe.stop();
    assert_eq!(ended(&probe).await, ExitReason::Stopped);
}

// ---------------------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------------------

async fn link(a: &ActorRef<Probe>, b: &ActorRef<Probe>) {
    let b = b.clone();
    a.ask(on_probe(move |_, ctx| ctx.link(&b))).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_panicking_linked_actor_stops_its_partner_with_linked() {
    let (a_trace, b_trace) = (Trace::default(), Trace::default());
    let (a, b) = (probe(&a_trace), probe(&b_trace));
    link(&a, &b).await;
    a.tell(Boom("boom")).await.unwrap();
    assert_eq!(ended(&a).await, panicked("boom"));
    let expected = linked(a.id(), panicked("boom"));
    assert_eq!(ended(&b).await, expected);
    assert!(!ended(&b).await.is_normal());
    assert_eq!(b_trace.stops(), vec![expected]);
}

#[tokio::test(start_paused = true)]
async fn a_link_signal_overtakes_the_queued_messages() {
    let b_trace = Trace::default();
    let gate = gate();
    let (spawn, letters) = collecting_letters();
    let a = probe(&Trace::default());
    let b = spawn.spawn::<Probe>(ProbeArgs::new(&b_trace));
    link(&a, &b).await;
    b.tell(Block(gate.clone())).await.unwrap();
    for n in 1..=3 {
        b.tell(Record(n)).await.unwrap();
    }
    a.tell(Boom("boom")).await.unwrap();
    assert_eq!(ended(&a).await, panicked("boom"));
    gate.add_permits(1);
    assert_eq!(ended(&b).await, linked(a.id(), panicked("boom")));
    assert_eq!(b_trace.handled(), Vec::<u32>::new());
    assert_eq!(take_records(&letters), vec![1, 2, 3]);
    assert_eq!(b.stats().dead_letters, 3);
}

#[tokio::test(start_paused = true)]
async fn a_link_works_both_ways() {
    let (a, b) = (probe(&Trace::default()), probe(&Trace::default()));
    link(&a, &b).await; // made by a
    b.tell(FailSelf("b failed")).await.unwrap();
    assert_eq!(ended(&b).await, error("b failed"));
    assert_eq!(ended(&a).await, linked(b.id(), error("b failed")));
}

#[tokio::test(start_paused = true)]
async fn a_failure_travels_along_a_chain_of_links() {
    let (a, b, c) = (
        probe(&Trace::default()),
        probe(&Trace::default()),
        probe(&Trace::default()),
    );
    link(&a, &b).await;
    link(&b, &c).await;
    a.tell(FailSelf("root cause")).await.unwrap();
    assert_eq!(ended(&a).await, error("root cause"));
    assert_eq!(ended(&b).await, linked(a.id(), error("root cause")));
    assert_eq!(
        ended(&c).await,
        linked(b.id(), linked(a.id(), error("root cause")))
    );
}

#[tokio::test(start_paused = true)]
async fn a_kill_travels_over_a_link() {
    let (a, b) = (probe(&Trace::default()), probe(&Trace::default()));
    link(&a, &b).await;
    a.kill();
    assert_eq!(ended(&b).await, linked(a.id(), ExitReason::Killed));
}

#[tokio::test(start_paused = true)]
async fn a_normal_end_does_not_travel_over_a_link() {
    let (a, b, c) = (
        probe(&Trace::default()),
        probe(&Trace::default()),
        probe(&Trace::default()),
    );
    link(&a, &b).await;
    link(&b, &c).await;
    a.stop();
    assert_eq!(ended(&a).await, ExitReason::Stopped);
    assert_eq!(
        b.ask(Add(1)).await.unwrap(),
        1,
        "b was stopped by a's Stopped"
    );
    b.tell(StopSelf).await.unwrap();
    assert_eq!(ended(&b).await, ExitReason::Normal);
    assert_eq!(
        c.ask(Add(1)).await.unwrap(),
        1,
        "c was stopped by b's Normal"
    );
    assert!(c.is_alive());
}

#[tokio::test(start_paused = true)]
async fn an_actor_that_traps_exits_keeps_running_and_sees_every_linked_end() {
    let observer = Observer::spawn(());
    let (a, b) = (probe(&Trace::default()), probe(&Trace::default()));
    for target in [&a, &b] {
        let target = target.clone();
        observer
            .ask(on_observer(move |_, ctx| ctx.link(&target)))
            .await
            .unwrap();
    }
    a.tell(Boom("boom")).await.unwrap();
    ended(&a).await;
    b.stop();
    ended(&b).await;
    assert!(observer.is_alive());
    assert_eq!(
        observer.ask(Signals).await.unwrap(),
        vec![
            (a.id(), ExitKind::Link, panicked("boom")),
            (b.id(), ExitKind::Link, ExitReason::Stopped),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn unlink_stops_propagation_from_either_side() {
    let (a, b, c) = (
        probe(&Trace::default()),
        probe(&Trace::default()),
        probe(&Trace::default()),
    );
    link(&a, &b).await;
    link(&a, &c).await;
    // b removes the link a made; a removes its own link to c.
    let a_for_b = a.clone();
    b.ask(on_probe(move |_, ctx| ctx.unlink(&a_for_b)))
        .await
        .unwrap();
    let c_for_a = c.clone();
    a.ask(on_probe(move |_, ctx| ctx.unlink(&c_for_a)))
        .await
        .unwrap();
    a.tell(Boom("boom")).await.unwrap();
    assert_eq!(ended(&a).await, panicked("boom"));
    settle().await;
    assert_eq!(b.ask(Add(1)).await.unwrap(), 1);
    assert_eq!(c.ask(Add(1)).await.unwrap(), 1);
    // And the other direction is gone too.
    b.tell(Boom("b")).await.unwrap();
    ended(&b).await;
    settle().await;
    assert!(c.is_alive());
}

#[tokio::test(start_paused = true)]
async fn linking_an_ended_actor_signals_at_once() {
    let dead = probe(&Trace::default());
    dead.tell(Boom("boom")).await.unwrap();
    ended(&dead).await;

    let observer = Observer::spawn(());
    let target = dead.clone();
    observer
        .ask(on_observer(move |_, ctx| ctx.link(&target)))
        .await
        .unwrap();
    assert_eq!(
        observer.ask(Signals).await.unwrap(),
        vec![(dead.id(), ExitKind::Link, panicked("boom"))]
    );

    let partner = probe(&Trace::default());
    link(&partner, &dead).await;
    assert_eq!(ended(&partner).await, linked(dead.id(), panicked("boom")));
}

#[tokio::test(start_paused = true)]
async fn linking_a_normally_ended_actor_does_not_stop_us() {
    let dead = probe(&Trace::default());
    dead.stop();
    ended(&dead).await;
    let partner = probe(&Trace::default());
    link(&partner, &dead).await;
    settle().await;
    assert_eq!(partner.ask(Add(2)).await.unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn spawn_linked_links_the_child_both_ways() {
    // The child fails: the parent stops.
    let parent = probe(&Trace::default());
    let child_trace = Trace::default();
    let args = ProbeArgs::new(&child_trace);
    let child = parent
        .ask(on_probe(move |_, ctx| ctx.spawn_linked::<Probe>(args)))
        .await
        .unwrap();
    assert_eq!(child.ask(Add(3)).await.unwrap(), 3);
    child.tell(Boom("child")).await.unwrap();
    assert_eq!(ended(&parent).await, linked(child.id(), panicked("child")));

    // The parent fails: the child stops.
    let parent = probe(&Trace::default());
    let args = ProbeArgs::new(&child_trace);
    let child = parent
        .ask(on_probe(move |_, ctx| ctx.spawn_linked::<Probe>(args)))
        .await
        .unwrap();
    parent.tell(Boom("parent")).await.unwrap();
    assert_eq!(ended(&child).await, linked(parent.id(), panicked("parent")));
    assert_eq!(
        child_trace.stops(),
        vec![panicked("child"), linked(parent.id(), panicked("parent"))]
    );
}

// ---------------------------------------------------------------------------------------
// Monitors
// ---------------------------------------------------------------------------------------

/// Ends a monitored probe this way; returns its id and what the observer saw.
async fn monitor_signals(ending: Ending) -> (ActorId, Vec<SeenSignal>) {
    let target = probe(&Trace::default());
    let id = target.id();
    let observer = Observer::spawn(());
    let watched = target.clone();
    observer
        .ask(on_observer(move |_, ctx| ctx.monitor(&watched)))
        .await
        .unwrap();
    ending.end(target).await;
    let seen = observer.ask(Signals).await.unwrap();
    settle().await;
    assert_eq!(observer.ask(Signals).await.unwrap(), seen, "a late signal");
    assert!(
        observer.is_alive(),
        "a monitor's signal stopped the watcher"
    );
    (id, seen)
}

async fn check_monitor(ending: Ending) {
    let (id, seen) = monitor_signals(ending).await;
    assert_eq!(
        seen,
        vec![(id, ExitKind::Monitor, ending.reason())],
        "{ending:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_monitor_reports_normal_after_ctx_stop() {
    check_monitor(Ending::CtxStop).await;
}

#[tokio::test(start_paused = true)]
async fn a_monitor_reports_normal_after_the_last_reference_is_dropped() {
    check_monitor(Ending::LastRefDropped).await;
}

#[tokio::test(start_paused = true)]
async fn a_monitor_reports_stopped() {
    check_monitor(Ending::Stop).await;
}

#[tokio::test(start_paused = true)]
async fn a_monitor_reports_panicked_with_the_message() {
    check_monitor(Ending::Panic).await;
}

#[tokio::test(start_paused = true)]
async fn a_monitor_reports_the_error() {
    let (_, seen) = monitor_signals(Ending::CtxFail).await;
    let ExitReason::Error(error) = &seen[0].2 else {
        panic!("expected an Error, got {:?}", seen[0].2);
    };
    assert_eq!(
        error.downcast_ref::<TestError>().map(|e| e.0),
        Some("failed on purpose"),
        "the typed error travels with the signal"
    );
    check_monitor(Ending::CtxFail).await;
}

#[tokio::test(start_paused = true)]
async fn a_monitor_reports_killed() {
    check_monitor(Ending::Kill).await;
}

#[tokio::test(start_paused = true)]
async fn demonitor_stops_the_signal() {
    let target = probe(&Trace::default());
    let observer = Observer::spawn(());
    let watched = target.clone();
    observer
        .ask(on_observer(move |_, ctx| {
            ctx.monitor(&watched);
            ctx.demonitor(&watched);
        }))
        .await
        .unwrap();
    target.tell(Boom("boom")).await.unwrap();
    ended(&target).await;
    settle().await;
    assert_eq!(observer.ask(Signals).await.unwrap(), vec![]);
}

#[tokio::test(start_paused = true)]
async fn monitoring_an_ended_actor_signals_at_once() {
    let target = probe(&Trace::default());
    target.kill();
    ended(&target).await;
    let observer = Observer::spawn(());
    let watched = target.clone();
    observer
        .ask(on_observer(move |_, ctx| ctx.monitor(&watched)))
        .await
        .unwrap();
    assert_eq!(
        observer.ask(Signals).await.unwrap(),
        vec![(target.id(), ExitKind::Monitor, ExitReason::Killed)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_monitored_failure_does_not_stop_a_default_watcher() {
    let target = probe(&Trace::default());
    let watcher = probe(&Trace::default());
    let watched = target.clone();
    watcher
        .ask(on_probe(move |_, ctx| ctx.monitor(&watched)))
        .await
        .unwrap();
    target.tell(Boom("boom")).await.unwrap();
    ended(&target).await;
    assert_eq!(watcher.ask(Add(1)).await.unwrap(), 1);
    assert!(watcher.is_alive());
}

#[tokio::test(start_paused = true)]
async fn the_watcher_ending_does_not_affect_the_monitored_actor() {
    let target = probe(&Trace::default());
    let watcher = probe(&Trace::default());
    let watched = target.clone();
    watcher
        .ask(on_probe(move |_, ctx| ctx.monitor(&watched)))
        .await
        .unwrap();
    watcher.tell(Boom("watcher")).await.unwrap();
    ended(&watcher).await;
    settle().await;
    assert_eq!(target.ask(Add(1)).await.unwrap(), 1);
    target.kill();
    assert_eq!(ended(&target).await, ExitReason::Killed);
}

// ---------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------

const FIRST: Name<Probe> = Name::new("first");
const SECOND: Name<Probe> = Name::new("second");
const SERVICE_AS_PROBE: Name<Probe> = Name::new("service");
const SERVICE_AS_OBSERVER: Name<Observer> = Name::new("service");

#[tokio::test(start_paused = true)]
async fn register_lookup_and_name_taken() {
    let registry = Registry::new();
    assert!(registry.is_empty());
    let (one, two) = (probe(&Trace::default()), probe(&Trace::default()));
    registry.register(&FIRST, &one).unwrap();
    assert_eq!(registry.lookup(&FIRST).unwrap(), one);
    assert_eq!(
        registry.register(&FIRST, &two),
        Err(RegisterError::NameTaken("first".into()))
    );
    assert_eq!(
        registry.lookup(&FIRST).unwrap(),
        one,
        "the holder kept the name"
    );
    // One actor may have several names.
    registry.register(&SECOND, &one).unwrap();
    assert_eq!(
        registry.names(),
        vec!["first".to_owned(), "second".to_owned()]
    );
    assert_eq!(registry.len(), 2);
    // The looked-up reference works.
    assert_eq!(
        registry.lookup(&SECOND).unwrap().ask(Add(2)).await.unwrap(),
        2
    );
    assert_eq!(
        registry.lookup(&Name::<Probe>::new("third")),
        Err(LookupError::NotFound("third".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_text_with_another_actor_type_is_wrong_type() {
    let registry = Registry::new();
    let service = probe(&Trace::default());
    registry.register(&SERVICE_AS_PROBE, &service).unwrap();
    assert_eq!(
        registry.lookup(&SERVICE_AS_OBSERVER),
        Err(LookupError::WrongType {
            name: "service".into(),
            expected: std::any::type_name::<Observer>(),
            actual: std::any::type_name::<Probe>(),
        })
    );
    let observer = Observer::spawn(());
    assert_eq!(
        registry.register(&SERVICE_AS_OBSERVER, &observer),
        Err(RegisterError::NameTaken("service".into()))
    );
    assert_eq!(registry.lookup(&SERVICE_AS_PROBE).unwrap(), service);
}

#[tokio::test(start_paused = true)]
async fn unregister_removes_the_name() {
    let registry = Registry::new();
    let one = probe(&Trace::default());
    registry.register(&FIRST, &one).unwrap();
    registry.register(&SECOND, &one).unwrap();
    assert!(registry.unregister(&FIRST));
    assert!(!registry.unregister(&FIRST));
    assert_eq!(
        registry.lookup(&FIRST),
        Err(LookupError::NotFound("first".into()))
    );
    assert_eq!(registry.names(), vec!["second".to_owned()]);
    assert!(one.is_alive());
}

#[tokio::test(start_paused = true)]
async fn names_are_removed_when_the_actor_ends_for_every_reason() {
    for ending in Ending::ALL {
        if ending == Ending::LastRefDropped {
            continue; // the registry holds a reference: see the next test
        }
        let registry = Registry::new();
        let one = probe(&Trace::default());
        registry.register(&FIRST, &one).unwrap();
        registry.register(&SECOND, &one).unwrap();
        ending.end(one).await;
        assert!(
            registry.is_empty(),
            "{ending:?} left {:?}",
            registry.names()
        );
        assert!(
            matches!(registry.lookup(&FIRST), Err(LookupError::NotFound(_))),
            "{ending:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_registry_holds_a_reference_until_the_name_is_unregistered() {
    let registry = Registry::new();
    let trace = Trace::default();
    let one = probe(&trace);
    registry.register(&FIRST, &one).unwrap();
    assert_eq!(one.stats().references, 2);
    let weak = one.downgrade();
    drop(one);
    settle().await;
    assert!(weak.is_alive(), "the registered actor stopped");
    assert_eq!(
        registry.lookup(&FIRST).unwrap().ask(Add(1)).await.unwrap(),
        1
    );
    assert!(registry.unregister(&FIRST));
    settle().await;
    assert!(
        !weak.is_alive(),
        "unregistering did not release the reference"
    );
    assert_eq!(trace.stops(), vec![ExitReason::Normal]);
}

#[tokio::test(start_paused = true)]
async fn a_name_can_be_registered_again_after_its_actor_ended() {
    let registry = Registry::new();
    let one = probe(&Trace::default());
    registry.register(&FIRST, &one).unwrap();
    one.stop();
    ended(&one).await;
    let two = probe(&Trace::default());
    registry.register(&FIRST, &two).unwrap();
    assert_eq!(registry.lookup(&FIRST).unwrap(), two);
}

#[tokio::test(start_paused = true)]
async fn the_end_of_a_former_holder_does_not_remove_the_new_one() {
    let registry = Registry::new();
    let (one, two) = (probe(&Trace::default()), probe(&Trace::default()));
    registry.register(&FIRST, &one).unwrap();
    assert!(registry.unregister(&FIRST));
    registry.register(&FIRST, &two).unwrap();
    one.stop();
    ended(&one).await;
    assert_eq!(registry.lookup(&FIRST).unwrap(), two);
}

#[tokio::test(start_paused = true)]
async fn registering_an_ended_actor_fails() {
    let registry = Registry::new();
    let one = probe(&Trace::default());
    one.kill();
    ended(&one).await;
    assert_eq!(registry.register(&FIRST, &one), Err(RegisterError::Stopped));
    assert!(registry.is_empty());
    // The failed attempt did not keep the name.
    let two = probe(&Trace::default());
    registry.register(&FIRST, &two).unwrap();
}

#[tokio::test(start_paused = true)]
async fn owned_names_are_built_at_run_time() {
    let registry = Registry::new();
    let session = probe(&Trace::default());
    let name = Name::<Probe>::owned(format!("session-{}", 42));
    assert_eq!(name.as_str(), "session-42");
    registry.register(&name, &session).unwrap();
    let same_text = Name::<Probe>::owned("session-42".to_owned());
    assert_eq!(registry.lookup(&same_text).unwrap(), session);
    assert_eq!(registry.lookup(&Name::new("session-42")).unwrap(), session);
    assert_eq!(registry.lookup(&name.clone()).unwrap(), session);
}

#[tokio::test(start_paused = true)]
async fn the_global_registry_is_shared_and_cleans_up() {
    let one = probe(&Trace::default());
    let name = Name::<Probe>::owned(format!("lifecycle-global-{}", one.id().as_u64()));
    Registry::global().register(&name, &one).unwrap();
    assert!(std::ptr::eq(Registry::global(), Registry::global()));
    assert_eq!(Registry::global().lookup(&name).unwrap(), one);
    assert!(
        Registry::global()
            .names()
            .contains(&name.as_str().to_owned())
    );
    one.stop();
    ended(&one).await;
    assert!(matches!(
        Registry::global().lookup(&name),
        Err(LookupError::NotFound(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn send_after_delivers_once_after_exactly_the_delay() {
    let trace = Trace::default();
    let probe = probe(&trace);
    let (armed_at, timer) = probe
        .ask(on_probe(|_, ctx| {
            (
                Instant::now(),
                ctx.send_after(Duration::from_millis(250), Tick(1)),
            )
        }))
        .await
        .unwrap();
    tokio::time::sleep_until(armed_at + Duration::from_millis(249)).await;
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(trace.ticks(), vec![]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(
        trace.ticks(),
        vec![(1, armed_at + Duration::from_millis(250))]
    );
    assert!(timer.is_finished());
}

#[tokio::test(start_paused = true)]
async fn send_interval_ticks_every_period_until_cancelled() {
    let trace = Trace::default();
    let probe = probe(&trace);
    let period = Duration::from_millis(100);
    let (armed_at, timer) = probe
        .ask(on_probe(move |_, ctx| {
            let mut n = 0;
            let timer = ctx.send_interval(period, move || {
                n += 1;
                Tick(n)
            });
            (Instant::now(), timer)
        }))
        .await
        .unwrap();
    tokio::time::sleep_until(armed_at + Duration::from_millis(350)).await;
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(
        trace.ticks(),
        vec![
            (1, armed_at + period),
            (2, armed_at + period * 2),
            (3, armed_at + period * 3),
        ]
    );
    assert!(!timer.is_finished());
    timer.cancel();
    tokio::time::sleep(Duration::from_secs(2)).await;
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(trace.ticks().len(), 3, "ticks after cancel");
    assert!(timer.is_finished());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_send_after_never_delivers() {
    let trace = Trace::default();
    let probe = probe(&trace);
    let timer = probe
        .ask(on_probe(|_, ctx| {
            ctx.send_after(Duration::from_millis(100), Tick(1))
        }))
        .await
        .unwrap();
    timer.cancel();
    settle().await;
    assert!(timer.is_finished());
    tokio::time::sleep(Duration::from_secs(1)).await;
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(trace.ticks(), vec![]);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_timer_handle_does_not_cancel_the_timer() {
    let trace = Trace::default();
    let probe = probe(&trace);
    probe
        .ask(on_probe(|_, ctx| {
            drop(ctx.send_after(Duration::from_millis(100), Tick(1)));
        }))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(trace.ticks().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn every_timer_is_cancelled_when_the_actor_ends() {
    for ending in Ending::ALL {
        let trace = Trace::default();
        let probe = probe(&trace);
        let timers: (TimerHandle, TimerHandle) = probe
            .ask(on_probe(|_, ctx| {
                (
                    ctx.send_after(Duration::from_secs(10), Tick(1)),
                    ctx.send_interval(Duration::from_secs(1), || Tick(2)),
                )
            }))
            .await
            .unwrap();
        ending.end(probe).await;
        settle().await;
        assert!(timers.0.is_finished(), "{ending:?}: send_after still armed");
        assert!(
            timers.1.is_finished(),
            "{ending:?}: send_interval still armed"
        );
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(trace.ticks(), vec![], "{ending:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_interval_does_not_keep_an_unreferenced_actor_alive() {
    let trace = Trace::default();
    let probe = probe(&trace);
    let (armed_at, timer) = probe
        .ask(on_probe(|_, ctx| {
            (
                Instant::now(),
                ctx.send_interval(Duration::from_secs(1), || Tick(0)),
            )
        }))
        .await
        .unwrap();
    tokio::time::sleep_until(armed_at + Duration::from_millis(3500)).await;
    probe.ask(Add(0)).await.unwrap();
    assert_eq!(trace.ticks().len(), 3);
    assert_eq!(
        probe.stats().references,
        1,
        "the timer holds no strong reference"
    );
    let weak = probe.downgrade();
    drop(probe);
    settle().await;
    assert!(!weak.is_alive());
    assert_eq!(trace.stops(), vec![ExitReason::Normal]);
    assert!(timer.is_finished());
}

#[tokio::test(start_paused = true)]
async fn a_timer_firing_after_a_stop_from_inside_is_not_delivered() {
    let trace = Trace::default();
    let probe = probe(&trace);
    let timer = probe
        .ask(on_probe(|_, ctx| {
            let timer = ctx.send_after(Duration::from_millis(10), Tick(1));
            ctx.stop();
            timer
        }))
        .await
        .unwrap();
    assert_eq!(ended(&probe).await, ExitReason::Normal);
    settle().await;
    assert!(timer.is_finished());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(trace.ticks(), vec![]);
    assert_eq!(probe.stats().dead_letters, 0);
}

// ---------------------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_stats_of_a_fresh_actor() {
    let probe = probe(&Trace::default());
    let stats = probe.stats();
    assert_eq!(stats.id, probe.id());
    assert_eq!(stats.mailbox_len, 0);
    assert_eq!(stats.mailbox_capacity, Some(Spawn::DEFAULT_CAPACITY));
    assert_eq!(stats.processed, 0);
    assert_eq!(stats.panics, 0);
    assert_eq!(stats.restarts, 0);
    assert_eq!(stats.dead_letters, 0);
    assert_eq!(stats.references, 1);
    assert!(stats.alive);
    probe.ask(Add(1)).await.unwrap();
    assert_eq!(probe.stats().processed, 1);
}

#[tokio::test(start_paused = true)]
async fn the_stats_count_references_exactly() {
    let registry = Registry::new();
    let probe = probe(&Trace::default());
    let clone = probe.clone();
    assert_eq!(probe.stats().references, 2);
    let weak = probe.downgrade();
    assert_eq!(
        probe.stats().references,
        2,
        "a weak reference is not counted"
    );
    let upgraded = weak.upgrade().unwrap();
    assert_eq!(probe.stats().references, 3);
    registry.register(&FIRST, &probe).unwrap();
    assert_eq!(probe.stats().references, 4);
    let found = registry.lookup(&FIRST).unwrap();
    assert_eq!(probe.stats().references, 5);
    drop((clone, upgraded, found));
    assert_eq!(probe.stats().references, 2);
    assert!(registry.unregister(&FIRST));
    assert_eq!(probe.stats().references, 1);
}

#[tokio::test(start_paused = true)]
async fn the_stats_of_a_busy_actor_then_of_an_ended_one() {
    let gate = gate();
    let probe = bounded_probe(8, &Trace::default());
    probe.tell(Block(gate.clone())).await.unwrap();
    settle().await;
    for n in 0..5 {
        probe.tell(Record(n)).await.unwrap();
    }
    let stats = probe.stats();
    assert_eq!(stats.mailbox_len, 5);
    assert_eq!(stats.mailbox_capacity, Some(8));
    assert_eq!(
        stats.processed, 1,
        "the running handler counts as processed"
    );
    gate.add_permits(1);
    probe.tell(Boom("late")).await.unwrap();
    probe.tell(Record(9)).await.unwrap();
    assert_eq!(ended(&probe).await, panicked("late"));
    let stats = probe.stats();
    assert_eq!(stats.processed, 7); // Block, 5 records, Boom
    assert_eq!(stats.panics, 1);
    assert_eq!(stats.dead_letters, 1);
    assert_eq!(stats.mailbox_len, 0);
    assert_eq!(stats.restarts, 0);
    assert_eq!(stats.references, 1);
    assert!(!stats.alive);
}

#[tokio::test(start_paused = true)]
async fn the_dead_letter_hook_may_panic_without_losing_the_count() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let gate = gate();
    let probe = Spawn::new()
        .on_dead_letter(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
            panic!("the hook failed");
        })
        .spawn::<Probe>(ProbeArgs::new(&Trace::default()));
    probe.tell(Block(gate.clone())).await.unwrap();
    for n in 0..3 {
        probe.tell(Record(n)).await.unwrap();
    }
    settle().await;
    probe.kill();
    assert_eq!(ended(&probe).await, ExitReason::Killed);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(probe.stats().dead_letters, 3);
}

#[tokio::test(start_paused = true)]
async fn weak_reference_helpers_report_the_same_actor() {
    let probe = probe(&Trace::default());
    let weak: WeakActorRef<Probe> = probe.downgrade();
    assert_eq!(weak.id(), probe.id());
    assert!(weak.is_alive());
    assert_eq!(weak.upgrade().unwrap(), probe);
    probe.kill();
    ended(&probe).await;
    assert!(!weak.is_alive());
    assert!(weak.upgrade().is_none());
}

// ---------------------------------------------------------------------------------------
// Found bugs (ignored so the suite stays green; see the reasons)
// ---------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn kill_ends_an_actor_whose_on_start_is_still_pending() {
    let trace = Trace::default();
    let start_gate = gate(); // on_start waits here until the test gives up
    let (spawn, letters) = collecting_letters();
    let probe = spawn.spawn::<Probe>(ProbeArgs {
        start_gate: Some(start_gate.clone()),
        ..ProbeArgs::new(&trace)
    });
    probe.tell(Record(1)).await.unwrap();
    settle().await;
    probe.kill();
    let reason = tokio::time::timeout(Duration::from_secs(60), probe.wait_for_stop()).await;
    start_gate.add_permits(1); // let a buggy actor finish so the runtime can shut down
    assert_eq!(
        reason.ok(),
        Some(ExitReason::Killed),
        "kill() waited for on_start"
    );
    assert_eq!(trace.events(), vec![], "no state was built, so no on_stop");
    assert_eq!(take_records(&letters), vec![1]);
}

/// Monitors its target again as soon as the first signal about it arrives.
struct Remonitor {
    target: ActorRef<Probe>,
    signals: Vec<SeenSignal>,
}

impl Actor for Remonitor {
    type Args = ActorRef<Probe>;

    async fn on_start(target: ActorRef<Probe>, ctx: &mut Context<Self>) -> Result<Self, BoxError> {
        ctx.monitor(&target);
        Ok(Remonitor {
            target,
            signals: Vec::new(),
        })
    }

    async fn on_exit_signal(&mut self, signal: ExitSignal, ctx: &mut Context<Self>) {
        self.signals.push((signal.from, signal.kind, signal.reason));
        if self.signals.len() == 1 {
            ctx.monitor(&self.target);
        }
    }
}

struct RemonitorSignals;
impl Message<RemonitorSignals> for Remonitor {
    type Reply = Vec<SeenSignal>;
    async fn handle(&mut self, _: RemonitorSignals, _: &mut Context<Self>) -> Vec<SeenSignal> {
        self.signals.clone()
    }
}

/// The ending actor tells its watchers, then publishes its exit reason (run.rs, `Drop for
/// ActorTask`). A monitor or link added in between finds the watcher list closed and is
/// told `Core::exit_reason().unwrap_or(ExitReason::Normal)` (cell.rs, `Core::watch`): a
/// failure reads as Normal, so a late link would not propagate it. 5,000 registry names
/// widen the window; the watcher runs on another runtime so it acts inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_monitor_added_while_the_actor_ends_gets_the_real_reason() {
    let other = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut late_reasons = Vec::new();
    for _ in 0..5 {
        let target = probe(&Trace::default());
        let watcher = Spawn::new()
            .runtime(other.handle().clone())
            .spawn::<Remonitor>(target.clone());
        watcher.ask(RemonitorSignals).await.unwrap(); // the first monitor is in place
        let registry = Registry::new();
        for n in 0..5000 {
            let name = Name::<Probe>::owned(format!("name-{n}"));
            registry.register(&name, &target).unwrap();
        }
        target.tell(Boom("boom")).await.unwrap();
        target.wait_for_stop().await;
        let mut seen = Vec::new();
        for _ in 0..100_000 {
            seen = watcher.ask(RemonitorSignals).await.unwrap();
            if seen.len() == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        late_reasons.push(
            seen.into_iter()
                .map(|(_, _, reason)| reason)
                .collect::<Vec<_>>(),
        );
        watcher.kill();
    }
    other.shutdown_background(); // before any assertion: a runtime must not drop here
    let expected = vec![panicked("boom"), panicked("boom")];
    assert_eq!(late_reasons, vec![expected; 5]);
}
