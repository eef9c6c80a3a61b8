//! Model-based property tests: random operation sequences run against the real crate and
//! against a small sequential reference model, compared after every step.
//!
//! * Supervisor state machine: strategy, restart intensity, restart types, children ending
//!   normally, failing, panicking, being killed or stopped, time passing, dynamic children,
//!   `terminate_child`, failing restarts. Compared: the children list (names, running
//!   flags), every child's `on_start`/`on_stop` events in order (with the reason),
//!   `stats().restarts`, liveness and escalation.
//! * Mailbox delivery: `tell`/`try_tell`/`tell_timeout` on a bounded mailbox whose handler
//!   can be blocked on a test-controlled semaphore, `stop`, `kill`, `ctx.stop()` from a
//!   handler. Compared: each send's outcome (Ok, Full, Stopped, Timeout, or a waiting `tell`
//!   resolved later), the exact sequence of handled messages and of dead letters, the
//!   counters and the exit reason.
//!
//! Every case runs on its own paused current-thread runtime; `settle` (a 1 ms sleep)
//! returns only once every other task is idle, so each step is observed at rest.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use flowbed_actor::{
    Actor, ActorRef, BoxError, ChildSpec, Context, ExitReason, Mailbox, Message, Restart,
    SendError, Spawn, StartChildError, Strategy as Supervision, Supervisor, SupervisorSpec,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseResult;
use tokio::sync::Semaphore;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

const INJECTED_PANIC: &str = "model test: injected panic";

/// Keeps the injected handler panics out of the output; every other panic is reported.
fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&INJECTED_PANIC) {
                default(info);
            }
        }));
    });
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime")
}

/// On a paused current-thread runtime this returns only once every other task is idle
/// (the clock is advanced only then), and it advances the clock by exactly 1 ms.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// A hang (say a `tell` the model thought had room) fails the case instead of blocking the
/// test: on the paused clock the timeout fires as soon as everything is stuck.
async fn within_a_virtual_day(case: impl Future<Output = TestCaseResult>) -> TestCaseResult {
    tokio::time::timeout(Duration::from_secs(86_400), case)
        .await
        .unwrap_or_else(|_| Err(TestCaseError::fail("the case hung (a virtual day passed)")))
}

fn take<T>(log: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures are turned into hard-coded regression tests, not files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[derive(Debug)]
struct InjectedFailure;

impl fmt::Display for InjectedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("injected failure")
    }
}

impl std::error::Error for InjectedFailure {}

// ---------------------------------------------------------------------------------------
// 1. Supervisor state machine
// ---------------------------------------------------------------------------------------

/// Why a run ended, as `on_stop` saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Normal,
    Stopped,
    Error,
    Panicked,
    Killed,
    Other,
}

impl Why {
    fn of(reason: &ExitReason) -> Self {
        match reason {
            ExitReason::Normal => Self::Normal,
            ExitReason::Stopped => Self::Stopped,
            ExitReason::Error(_) => Self::Error,
            ExitReason::Panicked(_) => Self::Panicked,
            ExitReason::Killed => Self::Killed,
            _ => Self::Other,
        }
    }

    fn is_normal(self) -> bool {
        matches!(self, Self::Normal | Self::Stopped)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Started(String),
    StartFailed(String),
    Stopped(String, Why),
}

/// One child's identity and test controls, shared with every run of it.
struct Probe {
    name: String,
    log: Arc<Mutex<Vec<Event>>>,
    failing_starts: AtomicU32,
}

impl Probe {
    fn new(name: String, log: &Arc<Mutex<Vec<Event>>>, failing_starts: u32) -> Arc<Self> {
        Arc::new(Self {
            name,
            log: log.clone(),
            failing_starts: AtomicU32::new(failing_starts),
        })
    }

    fn record(&self, event: Event) {
        self.log.lock().unwrap().push(event);
    }
}

struct Worker {
    probe: Arc<Probe>,
}

impl Actor for Worker {
    type Args = Arc<Probe>;

    async fn on_start(probe: Arc<Probe>, _: &mut Context<Self>) -> Result<Self, BoxError> {
        let fail = probe
            .failing_starts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            probe.record(Event::StartFailed(probe.name.clone()));
            return Err(Box::new(InjectedFailure));
        }
        probe.record(Event::Started(probe.name.clone()));
        Ok(Worker { probe })
    }

    async fn on_stop(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        self.probe
            .record(Event::Stopped(self.probe.name.clone(), Why::of(reason)));
    }
}

#[derive(Debug, Clone, Copy)]
enum Cmd {
    End,
    Fail,
    Panic,
}

impl Message<Cmd> for Worker {
    type Reply = ();

    async fn handle(&mut self, cmd: Cmd, ctx: &mut Context<Self>) {
        match cmd {
            Cmd::End => ctx.stop(),
            Cmd::Fail => ctx.fail(InjectedFailure),
            Cmd::Panic => std::panic::panic_any(INJECTED_PANIC),
        }
    }
}

#[derive(Debug, Clone)]
enum SupOp {
    /// A message whose handler calls `ctx.stop()`.
    End(usize),
    /// A message whose handler calls `ctx.fail(..)`.
    Fail(usize),
    /// A message whose handler panics.
    Panic(usize),
    Kill(usize),
    /// `ActorRef::stop()` on the child.
    Stop(usize),
    AdvanceMs(u64),
    /// Advances the clock to `delta` ms from the moment the oldest restart in the window
    /// leaves it (the intensity's edge).
    AdvanceToWindowEdge(i64),
    StartDynamic {
        restart: Restart,
        fails_to_start: bool,
    },
    Terminate(usize),
    /// The child's next `n` starts fail.
    FailNextStarts(usize, u32),
}

#[derive(Debug, Clone)]
struct SupCase {
    strategy: Supervision,
    max_restarts: usize,
    period_s: u64,
    children: Vec<Restart>,
    ops: Vec<SupOp>,
}

fn restart_type() -> impl Strategy<Value = Restart> {
    prop_oneof![
        Just(Restart::Permanent),
        Just(Restart::Transient),
        Just(Restart::Temporary),
    ]
}

/// A child, as an index into every child started so far (modulo their number).
fn child_pick() -> impl Strategy<Value = usize> {
    0usize..16
}

fn sup_op() -> impl Strategy<Value = SupOp> {
    prop_oneof![
        3 => child_pick().prop_map(SupOp::End),
        3 => child_pick().prop_map(SupOp::Fail),
        2 => child_pick().prop_map(SupOp::Panic),
        2 => child_pick().prop_map(SupOp::Kill),
        2 => child_pick().prop_map(SupOp::Stop),
        2 => (0u64..1_500).prop_map(SupOp::AdvanceMs),
        1 => (1_500u64..12_000).prop_map(SupOp::AdvanceMs),
        1 => (-1i64..=1).prop_map(SupOp::AdvanceToWindowEdge),
        2 => (restart_type(), prop::bool::weighted(0.2)).prop_map(|(restart, fails_to_start)| {
            SupOp::StartDynamic { restart, fails_to_start }
        }),
        1 => child_pick().prop_map(SupOp::Terminate),
        2 => (child_pick(), 1u32..=2).prop_map(|(child, n)| SupOp::FailNextStarts(child, n)),
    ]
}

fn sup_case() -> impl Strategy<Value = SupCase> {
    (
        prop_oneof![
            Just(Supervision::OneForOne),
            Just(Supervision::OneForAll),
            Just(Supervision::RestForOne),
        ],
        0usize..=4,
        1u64..=10,
        prop::collection::vec(restart_type(), 1..=5),
        prop::collection::vec(sup_op(), 1..40),
    )
        .prop_map(
            |(strategy, max_restarts, period_s, children, ops)| SupCase {
                strategy,
                max_restarts,
                period_s,
                children,
                ops,
            },
        )
}

struct ModelChild {
    name: String,
    restart: Restart,
    /// Calls of `on_start` (the first start and every restart attempt).
    attempts: u64,
    failing_starts: u32,
    /// In the supervisor's list.
    member: bool,
    running: bool,
    /// Why its last run ended (or its last start failed): its exit reason if it is then
    /// ended for good between runs.
    last_end: Why,
}

/// OTP semantics as documented in `supervisor.rs`, run sequentially.
struct SupModel {
    strategy: Supervision,
    max_restarts: usize,
    period_ms: u64,
    now_ms: u64,
    restarts: VecDeque<u64>,
    /// Every child ever started (indexes shared with the test's references).
    children: Vec<ModelChild>,
    /// The supervisor's list, in start order.
    order: Vec<usize>,
    escalated: bool,
    expected: Vec<Event>,
}

impl SupModel {
    fn new(case: &SupCase) -> Self {
        Self {
            strategy: case.strategy,
            max_restarts: case.max_restarts,
            period_ms: case.period_s * 1000,
            now_ms: 0,
            restarts: VecDeque::new(),
            children: Vec::new(),
            order: Vec::new(),
            escalated: false,
            expected: Vec::new(),
        }
    }

    /// Adds a child and starts it (its first start does not fail here).
    fn add(&mut self, name: String, restart: Restart) {
        self.expected.push(Event::Started(name.clone()));
        self.children.push(ModelChild {
            name,
            restart,
            attempts: 1,
            failing_starts: 0,
            member: true,
            running: true,
            last_end: Why::Stopped,
        });
        self.order.push(self.children.len() - 1);
    }

    /// A restart within the intensity? Records it either way.
    fn note_restart(&mut self) -> bool {
        while self
            .restarts
            .front()
            .is_some_and(|at| self.now_ms - at >= self.period_ms)
        {
            self.restarts.pop_front();
        }
        self.restarts.push_back(self.now_ms);
        self.restarts.len() <= self.max_restarts
    }

    fn try_start(&mut self, child: usize) -> bool {
        let c = &mut self.children[child];
        c.attempts += 1;
        if c.failing_starts > 0 {
            c.failing_starts -= 1;
            c.last_end = Why::Error;
            self.expected.push(Event::StartFailed(c.name.clone()));
            false
        } else {
            c.running = true;
            self.expected.push(Event::Started(c.name.clone()));
            true
        }
    }

    fn stop_run(&mut self, child: usize, why: Why) {
        let c = &mut self.children[child];
        if c.running {
            c.running = false;
            c.last_end = why;
            self.expected.push(Event::Stopped(c.name.clone(), why));
        }
    }

    /// Terminates (stopping a running run) and removes the child.
    fn remove(&mut self, child: usize) {
        self.stop_run(child, Why::Stopped);
        self.children[child].member = false;
        self.order.retain(|&c| c != child);
    }

    fn escalate(&mut self) {
        self.escalated = true;
        for &child in self.order.clone().iter().rev() {
            self.stop_run(child, Why::Stopped);
            self.children[child].member = false;
        }
        self.order.clear();
    }

    /// A running member's run ended with `why`.
    fn child_ended(&mut self, child: usize, why: Why) {
        self.stop_run(child, why);
        let restart = match self.children[child].restart {
            Restart::Permanent => true,
            Restart::Transient => !why.is_normal(),
            Restart::Temporary => false,
            _ => unreachable!("no other restart type is generated"),
        };
        if !restart {
            self.remove(child);
            return;
        }
        let position = self
            .order
            .iter()
            .position(|&c| c == child)
            .expect("a member");
        let targets: Vec<usize> = match self.strategy {
            Supervision::OneForOne => vec![child],
            Supervision::OneForAll => self.order.clone(),
            Supervision::RestForOne => self.order[position..].to_vec(),
            _ => unreachable!("no other strategy is generated"),
        };
        if !self.note_restart() {
            self.escalate();
            return;
        }
        for &sibling in targets.iter().rev().filter(|&&t| t != child) {
            self.stop_run(sibling, Why::Stopped);
        }
        for &target in &targets {
            if target != child && self.children[target].restart == Restart::Temporary {
                self.remove(target);
                continue;
            }
            while !self.try_start(target) {
                if !self.note_restart() {
                    self.escalate();
                    return;
                }
            }
        }
    }
}

fn run_supervisor_case(case: &SupCase) -> TestCaseResult {
    quiet_injected_panics();
    paused_runtime().block_on(within_a_virtual_day(supervisor_case(case)))
}

async fn supervisor_case(case: &SupCase) -> TestCaseResult {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut model = SupModel::new(case);
    let mut probes = Vec::new();
    let mut spec = SupervisorSpec::new(case.strategy)
        .intensity(case.max_restarts, Duration::from_secs(case.period_s))
        .expect("a valid intensity");
    for (i, &restart) in case.children.iter().enumerate() {
        let probe = Probe::new(format!("c{i}"), &log, 0);
        let factory_probe = probe.clone();
        spec = spec.child(
            ChildSpec::<Worker>::new(probe.name.clone(), move || factory_probe.clone())
                .restart(restart),
        );
        model.add(probe.name.clone(), restart);
        probes.push(probe);
    }
    let supervisor = spec.start().await.expect("every child starts");
    let mut refs: Vec<ActorRef<Worker>> = Vec::new();
    for probe in &probes {
        refs.push(
            supervisor
                .child::<Worker>(&probe.name)
                .await
                .expect("a child"),
        );
    }
    let t0 = Instant::now();
    check_supervisor(&supervisor, &refs, &log, &mut model, t0).await?;

    let mut dynamic = 0;
    for (step, op) in case.ops.iter().enumerate() {
        match op {
            SupOp::End(i) | SupOp::Fail(i) | SupOp::Panic(i) => {
                let child = i % refs.len();
                let (cmd, why) = match op {
                    SupOp::End(_) => (Cmd::End, Why::Normal),
                    SupOp::Fail(_) => (Cmd::Fail, Why::Error),
                    _ => (Cmd::Panic, Why::Panicked),
                };
                let sent = refs[child].try_tell(cmd);
                let member = model.children[child].member;
                prop_assert!(
                    if member {
                        sent.is_ok()
                    } else {
                        matches!(sent, Err(SendError::Stopped(_)))
                    },
                    "step {step}: {op:?} to a child that is a member: {member}, sent: {sent:?}"
                );
                if member {
                    model.child_ended(child, why);
                }
            }
            SupOp::Kill(i) | SupOp::Stop(i) => {
                let child = i % refs.len();
                let why = if matches!(op, SupOp::Kill(_)) {
                    refs[child].kill();
                    Why::Killed
                } else {
                    refs[child].stop();
                    Why::Stopped
                };
                if model.children[child].member {
                    model.child_ended(child, why);
                }
            }
            SupOp::AdvanceMs(ms) => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                model.now_ms += ms;
            }
            SupOp::AdvanceToWindowEdge(delta) => {
                // The step's own settle adds 1 ms.
                let now = model.now_ms;
                let edge = model
                    .restarts
                    .iter()
                    .find(|&&at| now - at < model.period_ms)
                    .map_or(0, |at| at + model.period_ms);
                let target = edge.saturating_add_signed(delta - 1);
                let ms = target.saturating_sub(model.now_ms);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                model.now_ms += ms;
            }
            SupOp::StartDynamic {
                restart,
                fails_to_start,
            } => {
                let name = format!("d{dynamic}");
                dynamic += 1;
                let probe = Probe::new(name.clone(), &log, u32::from(*fails_to_start));
                let factory_probe = probe.clone();
                let started = supervisor
                    .start_child(
                        ChildSpec::<Worker>::new(name.clone(), move || factory_probe.clone())
                            .restart(*restart),
                    )
                    .await;
                if *fails_to_start {
                    prop_assert!(
                        matches!(started, Err(StartChildError::Failed(ExitReason::Error(_)))),
                        "step {step}: a failing dynamic start gave {started:?}"
                    );
                    model.expected.push(Event::StartFailed(name));
                } else {
                    let child = match started {
                        Ok(child) => child,
                        Err(error) => {
                            return Err(TestCaseError::fail(format!(
                                "step {step}: dynamic start failed: {error}"
                            )));
                        }
                    };
                    refs.push(child);
                    probes.push(probe);
                    model.add(name, *restart);
                }
            }
            SupOp::Terminate(i) => {
                let child = i % refs.len();
                let existed = supervisor
                    .terminate_child(&model.children[child].name)
                    .await;
                prop_assert_eq!(existed, model.children[child].member, "step {}", step);
                if existed {
                    model.remove(child);
                }
            }
            SupOp::FailNextStarts(i, n) => {
                let child = i % refs.len();
                probes[child].failing_starts.fetch_add(*n, Ordering::SeqCst);
                model.children[child].failing_starts += n;
            }
        }
        settle().await;
        model.now_ms += 1;
        check_supervisor(&supervisor, &refs, &log, &mut model, t0)
            .await
            .map_err(|e| TestCaseError::fail(format!("after step {step} ({op:?}): {e}")))?;
        if model.escalated {
            return Ok(());
        }
    }

    // A graceful stop terminates the children in reverse start order.
    supervisor.stop();
    for &child in model.order.clone().iter().rev() {
        model.stop_run(child, Why::Stopped);
        model.children[child].member = false;
    }
    model.order.clear();
    prop_assert_eq!(supervisor.wait_for_stop().await, ExitReason::Stopped);
    settle().await;
    prop_assert_eq!(take(&log), std::mem::take(&mut model.expected));
    for (child, actor) in model.children.iter().zip(&refs) {
        let reason = actor.wait_for_stop().await;
        prop_assert_eq!(
            Why::of(&reason),
            child.last_end,
            "{} exit: {}",
            &child.name,
            reason
        );
    }
    Ok(())
}

async fn check_supervisor(
    supervisor: &ActorRef<Supervisor>,
    refs: &[ActorRef<Worker>],
    log: &Mutex<Vec<Event>>,
    model: &mut SupModel,
    t0: Instant,
) -> TestCaseResult {
    prop_assert_eq!(
        t0.elapsed(),
        Duration::from_millis(model.now_ms),
        "the harness's clock is off"
    );
    prop_assert_eq!(take(log), std::mem::take(&mut model.expected), "events");
    prop_assert_eq!(supervisor.is_alive(), !model.escalated, "supervisor alive");
    if model.escalated {
        prop_assert_eq!(supervisor.wait_for_stop().await, ExitReason::Escalated);
    } else {
        let listed: Vec<(String, Restart, bool)> = supervisor
            .children()
            .await
            .into_iter()
            .map(|info| (info.name, info.restart, info.running))
            .collect();
        let expected: Vec<(String, Restart, bool)> = model
            .order
            .iter()
            .map(|&c| {
                let c = &model.children[c];
                (c.name.clone(), c.restart, c.running)
            })
            .collect();
        prop_assert_eq!(listed, expected, "children()");
    }
    for (child, actor) in model.children.iter().zip(refs) {
        prop_assert_eq!(actor.is_alive(), child.member, "{} alive", &child.name);
        prop_assert_eq!(
            actor.stats().restarts,
            child.attempts - 1,
            "{} restarts",
            &child.name
        );
        if !child.member {
            let reason = actor.wait_for_stop().await;
            prop_assert_eq!(
                Why::of(&reason),
                child.last_end,
                "{} exit: {}",
                &child.name,
                reason
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn supervisor_matches_the_otp_model(case in sup_case()) {
        run_supervisor_case(&case)?;
    }
}

// ---------------------------------------------------------------------------------------
// 2. Mailbox delivery
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Plain,
    /// The handler waits for a permit of the test's gate.
    Block,
    /// The handler calls `ctx.stop()`.
    StopSelf,
}

#[derive(Debug)]
struct Item {
    seq: u64,
    action: Action,
}

struct Sink {
    handled: Arc<Mutex<Vec<u64>>>,
    gate: Arc<Semaphore>,
}

impl Actor for Sink {
    type Args = (Arc<Mutex<Vec<u64>>>, Arc<Semaphore>);

    async fn on_start(
        (handled, gate): Self::Args,
        _: &mut Context<Self>,
    ) -> Result<Self, BoxError> {
        Ok(Sink { handled, gate })
    }
}

impl Message<Item> for Sink {
    type Reply = ();

    async fn handle(&mut self, Item { seq, action }: Item, ctx: &mut Context<Self>) {
        self.handled.lock().unwrap().push(seq);
        match action {
            Action::Plain => {}
            Action::StopSelf => ctx.stop(),
            Action::Block => self.gate.acquire().await.expect("never closed").forget(),
        }
    }
}

#[derive(Debug, Clone)]
enum MailOp {
    TryTell(Action),
    /// `tell`: if the mailbox is full it waits (in a spawned task, at most one at a time;
    /// a second full `tell` becomes a `tell_timeout` of 5 ms).
    Tell(Action),
    /// One permit for the gate.
    Release,
    Stop,
    Kill,
}

#[derive(Debug, Clone, Copy)]
enum Finish {
    /// `stop()`, then permits until the actor has ended.
    Graceful,
    Kill,
}

#[derive(Debug, Clone)]
struct MailCase {
    capacity: usize,
    ops: Vec<MailOp>,
    finish: Finish,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![6 => Just(Action::Plain), 4 => Just(Action::Block), 1 => Just(Action::StopSelf)]
}

fn mail_op() -> impl Strategy<Value = MailOp> {
    prop_oneof![
        5 => action().prop_map(MailOp::TryTell),
        4 => action().prop_map(MailOp::Tell),
        3 => Just(MailOp::Release),
        1 => Just(MailOp::Stop),
        1 => Just(MailOp::Kill),
    ]
}

fn mail_case() -> impl Strategy<Value = MailCase> {
    (
        1usize..=8,
        prop::collection::vec(mail_op(), 1..60),
        prop_oneof![3 => Just(Finish::Graceful), 1 => Just(Finish::Kill)],
    )
        .prop_map(|(capacity, ops, finish)| MailCase {
            capacity,
            ops,
            finish,
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Ok,
    Full,
    Stopped,
    TimedOut,
    /// Waits in a spawned task.
    Waiting,
    /// A `SendError` variant added after this test was written.
    Unknown,
}

/// The actor as the documentation describes it, at rest between steps.
struct MailModel {
    capacity: usize,
    alive: bool,
    /// The mailbox accepts messages.
    open: bool,
    /// A `stop()` was requested and not yet seen (the actor is blocked in a handler).
    stop_signal: bool,
    draining: bool,
    /// Blocked in a `Block` handler.
    blocked: bool,
    permits: u32,
    queue: VecDeque<(u64, Action)>,
    handled: Vec<u64>,
    dead: Vec<u64>,
    reason: Option<ExitReason>,
    /// A `tell` waiting for room.
    waiting: Option<(u64, Action)>,
    /// How the waiting `tell` ended: its sequence number and whether it was accepted.
    waited: Option<(u64, bool)>,
}

impl MailModel {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            alive: true,
            open: true,
            stop_signal: false,
            draining: false,
            blocked: false,
            permits: 0,
            queue: VecDeque::new(),
            handled: Vec::new(),
            dead: Vec::new(),
            reason: None,
            waiting: None,
            waited: None,
        }
    }

    fn send(&mut self, seq: u64, action: Action, wait: bool) -> Sent {
        if !self.open {
            return Sent::Stopped;
        }
        if self.queue.len() == self.capacity {
            if !wait {
                return Sent::Full;
            }
            if self.waiting.is_some() {
                return Sent::TimedOut;
            }
            self.waiting = Some((seq, action));
            return Sent::Waiting;
        }
        self.queue.push_back((seq, action));
        self.run();
        Sent::Ok
    }

    fn close(&mut self) {
        self.open = false;
        if let Some((seq, _)) = self.waiting.take() {
            self.waited = Some((seq, false));
        }
    }

    fn finish(&mut self, reason: ExitReason) {
        self.alive = false;
        self.blocked = false;
        self.close();
        self.dead.extend(self.queue.drain(..).map(|(seq, _)| seq));
        self.reason = Some(reason);
    }

    /// The actor's task gives the thread up: a waiting sender runs if a message was
    /// taken since it started waiting (its room), while the mailbox is open. True if the
    /// actor has a new message to handle.
    fn yield_to_sender(&mut self, popped: bool) -> bool {
        if popped && self.open {
            if let Some((seq, action)) = self.waiting.take() {
                self.queue.push_back((seq, action));
                self.waited = Some((seq, true));
                return true;
            }
        }
        false
    }

    /// The actor runs until it blocks, idles or ends.
    fn run(&mut self) {
        let mut popped = false;
        while self.alive && !self.blocked {
            if self.stop_signal {
                self.stop_signal = false;
                self.draining = true;
                self.close();
            }
            if let Some((seq, action)) = self.queue.pop_front() {
                popped = true;
                self.handled.push(seq);
                match action {
                    Action::Plain => {}
                    Action::StopSelf => self.finish(ExitReason::Normal),
                    Action::Block if self.permits > 0 => self.permits -= 1,
                    Action::Block => {
                        self.blocked = true;
                        self.yield_to_sender(popped);
                    }
                }
            } else if self.draining {
                self.finish(ExitReason::Stopped);
            } else if !self.yield_to_sender(popped) {
                break;
            }
        }
    }

    fn release(&mut self) {
        self.permits += 1;
        if self.blocked {
            self.permits -= 1;
            self.blocked = false;
            self.run();
        }
    }

    fn stop(&mut self) {
        if self.alive {
            // `stop()` closes the mailbox at once (a waiting tell fails); the actor sees the
            // signal when it is not blocked and drains what is queued.
            self.close();
            self.stop_signal = true;
            self.run();
        }
    }

    fn kill(&mut self) {
        if self.alive {
            self.finish(ExitReason::Killed);
        }
    }
}

type WaitingTell = (u64, tokio::task::JoinHandle<Result<(), SendError<Item>>>);

struct MailHarness {
    sink: ActorRef<Sink>,
    gate: Arc<Semaphore>,
    handled: Arc<Mutex<Vec<u64>>>,
    dead: Arc<Mutex<Vec<u64>>>,
    waiting: Option<WaitingTell>,
    accepted: Vec<u64>,
    next_seq: u64,
}

fn run_mailbox_case(case: &MailCase) -> TestCaseResult {
    paused_runtime().block_on(within_a_virtual_day(mailbox_case(case)))
}

async fn mailbox_case(case: &MailCase) -> TestCaseResult {
    let handled = Arc::new(Mutex::new(Vec::new()));
    let dead = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(Semaphore::new(0));
    let hook_dead = dead.clone();
    let sink = Spawn::new()
        .mailbox(Mailbox::bounded(case.capacity).expect("capacity >= 1"))
        .on_dead_letter(move |letter| {
            let seq = letter.downcast::<Item>().map_or(u64::MAX, |item| item.seq);
            hook_dead.lock().unwrap().push(seq);
        })
        .spawn::<Sink>((handled.clone(), gate.clone()));
    let mut h = MailHarness {
        sink,
        gate,
        handled,
        dead,
        waiting: None,
        accepted: Vec::new(),
        next_seq: 0,
    };
    let mut model = MailModel::new(case.capacity);
    settle().await;

    for (step, op) in case.ops.iter().enumerate() {
        mail_step(&mut h, &mut model, op)
            .await
            .map_err(|e| TestCaseError::fail(format!("step {step} ({op:?}): {e}")))?;
        settle().await;
        check_mailbox(&mut h, &mut model)
            .await
            .map_err(|e| TestCaseError::fail(format!("after step {step} ({op:?}): {e}")))?;
    }

    match case.finish {
        Finish::Kill => {
            h.sink.kill();
            model.kill();
            settle().await;
            check_mailbox(&mut h, &mut model).await?;
        }
        Finish::Graceful => {
            h.sink.stop();
            model.stop();
            settle().await;
            check_mailbox(&mut h, &mut model).await?;
            let mut releases = 0;
            while model.alive {
                releases += 1;
                prop_assert!(releases <= 100, "the model does not end");
                h.gate.add_permits(1);
                model.release();
                settle().await;
                check_mailbox(&mut h, &mut model).await?;
            }
        }
    }

    prop_assert!(h.waiting.is_none());
    let reason = h.sink.wait_for_stop().await;
    prop_assert_eq!(Some(reason), model.reason.clone());
    let after = h.sink.try_tell(Item {
        seq: u64::MAX,
        action: Action::Plain,
    });
    prop_assert!(matches!(after, Err(SendError::Stopped(_))));
    // The delivery guarantee itself: every accepted message was handled or dead-lettered,
    // exactly once.
    let mut outcomes: Vec<u64> = take(&h.handled);
    outcomes.extend(take(&h.dead));
    outcomes.sort_unstable();
    h.accepted.sort_unstable();
    prop_assert_eq!(outcomes, h.accepted, "accepted = handled + dead letters");
    Ok(())
}

async fn mail_step(h: &mut MailHarness, model: &mut MailModel, op: &MailOp) -> TestCaseResult {
    match *op {
        MailOp::TryTell(action) | MailOp::Tell(action) => {
            let seq = h.next_seq;
            h.next_seq += 1;
            let item = Item { seq, action };
            let wait = matches!(op, MailOp::Tell(_));
            let predicted = model.send(seq, action, wait);
            let (outcome, returned) = if !wait {
                outcome_of(h.sink.try_tell(item))
            } else {
                match predicted {
                    Sent::Waiting => {
                        let sink = h.sink.clone();
                        let task = tokio::spawn(async move { sink.tell(item).await });
                        h.waiting = Some((seq, task));
                        (Sent::Waiting, None)
                    }
                    Sent::TimedOut => {
                        outcome_of(h.sink.tell_timeout(item, Duration::from_millis(5)).await)
                    }
                    _ => outcome_of(h.sink.tell(item).await),
                }
            };
            prop_assert_eq!(outcome, predicted, "send #{}", seq);
            if let Some(returned) = returned {
                prop_assert_eq!(returned, seq, "the message handed back");
            }
            if outcome == Sent::Ok {
                h.accepted.push(seq);
            }
        }
        MailOp::Release => {
            h.gate.add_permits(1);
            model.release();
        }
        MailOp::Stop => {
            h.sink.stop();
            model.stop();
        }
        MailOp::Kill => {
            h.sink.kill();
            model.kill();
        }
    }
    Ok(())
}

fn outcome_of(sent: Result<(), SendError<Item>>) -> (Sent, Option<u64>) {
    match sent {
        Ok(()) => (Sent::Ok, None),
        Err(SendError::Full(item)) => (Sent::Full, Some(item.seq)),
        Err(SendError::Stopped(item)) => (Sent::Stopped, Some(item.seq)),
        Err(SendError::Timeout(item, _)) => (Sent::TimedOut, Some(item.seq)),
        Err(_) => (Sent::Unknown, None),
    }
}

async fn check_mailbox(h: &mut MailHarness, model: &mut MailModel) -> TestCaseResult {
    // The waiting tell: still waiting, or ended as the model says.
    match (&h.waiting, model.waiting, model.waited.take()) {
        (None, None, None) => {}
        (Some((seq, task)), Some((model_seq, _)), None) => {
            prop_assert_eq!(*seq, model_seq);
            prop_assert!(!task.is_finished(), "tell #{} should still wait", seq);
        }
        (Some(_), None, Some((model_seq, accepted))) => {
            let (seq, task) = h.waiting.take().expect("matched Some");
            prop_assert_eq!(seq, model_seq);
            prop_assert!(task.is_finished(), "tell #{} should have ended", seq);
            let sent = task.await.expect("the tell task does not panic");
            let (outcome, returned) = outcome_of(sent);
            let expected = if accepted { Sent::Ok } else { Sent::Stopped };
            prop_assert_eq!(outcome, expected, "waiting tell #{}", seq);
            if accepted {
                h.accepted.push(seq);
            } else {
                prop_assert_eq!(returned, Some(seq));
            }
        }
        (real, waiting, waited) => {
            return Err(TestCaseError::fail(format!(
                "waiting tell out of step: real {:?}, model waiting {waiting:?}, ended {waited:?}",
                real.as_ref().map(|(seq, _)| seq)
            )));
        }
    }
    prop_assert_eq!(&*h.handled.lock().unwrap(), &model.handled, "handled");
    prop_assert_eq!(&*h.dead.lock().unwrap(), &model.dead, "dead letters");
    let stats = h.sink.stats();
    prop_assert_eq!(stats.alive, model.alive, "alive");
    prop_assert_eq!(stats.processed, model.handled.len() as u64, "processed");
    prop_assert_eq!(stats.dead_letters, model.dead.len() as u64, "dead_letters");
    prop_assert_eq!(stats.mailbox_len, model.queue.len(), "mailbox_len");
    if !model.alive {
        let reason = h.sink.wait_for_stop().await;
        prop_assert_eq!(Some(reason), model.reason.clone(), "exit reason");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn mailbox_delivery_matches_the_model(case in mail_case()) {
        run_mailbox_case(&case)?;
    }
}
