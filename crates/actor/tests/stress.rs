//! The delivery guarantee under load: several concurrent senders push 1,000,000 messages
//! (a seeded mix of `tell`, `try_tell`, `tell_timeout`, `ask` and `ask_timeout`, each
//! carrying a unique sequence number) at one actor that is stopped, killed or restarted at
//! seeded random points while they send.
//!
//! For every sequence number the test records what the sender was told and what the actor
//! did with it, and checks:
//! * every `tell` that returned `Ok` was handled (its handler started) or dead-lettered,
//!   exactly once, never both; a graceful `stop()` dead-letters nothing;
//! * a message handed back to its sender (`Stopped`, `Full`, `Timeout`) was never handled;
//! * no message was handled twice, and each sender's messages were handled in send order;
//! * `stats().processed`, `stats().dead_letters` and the dead-letter hook agree with the
//!   per-message records;
//! * every ask ended (`Ok`, `NoReply`, `Stopped` or `Timeout`) within its deadline plus a
//!   slack: a `tokio::time::timeout` around each one is a hang detector that must never
//!   fire (and so is one around every other send and every wait for a stop).
//!
//! The supervised test runs a permanent child that panics on every 10,000th sequence
//! number and is also killed and stopped (both restart it in place) while the senders
//! hammer it, then stops its supervisor: accepted = handled + dead letters + panicked.
//!
//! Set `FLOWBED_STRESS_SEED` to replay a run; the seed is printed (`--nocapture`). Debug
//! builds send the full 1,000,000 messages too: the file's three tests take 3-9 s together
//! in debug on 2 cores (about 2 s in release), so nothing is scaled down.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use flowbed_actor::{
    Actor, ActorRef, AskError, BoxError, ChildSpec, Context, DeadLetter, ExitReason, Message,
    Restart, SendError, Spawn, Strategy, SupervisorSpec,
};

/// Messages sent per test, over all senders.
const MESSAGES: u64 = 1_000_000;
const SENDERS: u64 = 4;
/// The actor's ask deadline (`ask`); `ask_timeout` uses shorter, random ones.
const ASK_DEADLINE: Duration = Duration::from_millis(500);
/// How far past its deadline an ask may end before it counts as hung.
const ASK_SLACK: Duration = Duration::from_secs(2);
/// Any other send, or a wait for a stop, taking longer than this is a hang.
const HANG: Duration = Duration::from_secs(10);
/// In the supervised test, every message whose sequence number is 9,999 modulo this panics.
const PANIC_EVERY: u64 = 10_000;
const PANIC_TEXT: &str = "planned stress panic";

/// What the sender was told, per sequence number.
const NOT_SENT: u8 = 0;
const TELL_OK: u8 = 1;
const HANDED_BACK: u8 = 2;
const ASK_OK: u8 = 3;
const ASK_NO_REPLY: u8 = 4;
const ASK_TIMEOUT: u8 = 5;

/// What the actor did, per sequence number: one of these, or nothing.
const HANDLED: u8 = 1;
const DEAD: u8 = 2;
const PANICKED: u8 = 4;

/// A small xorshift64* generator: seeded, reproducible, no dependency.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn seed(test: &str) -> u64 {
    let seed = match std::env::var("FLOWBED_STRESS_SEED") {
        Ok(text) => text.parse().expect("FLOWBED_STRESS_SEED is a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64,
    };
    println!("{test}: FLOWBED_STRESS_SEED={seed}");
    seed
}

/// The per-message records, shared by the senders, the actor and the dead-letter hook.
struct Ledger {
    outcome: Vec<AtomicU8>,
    fate: Vec<AtomicU8>,
    /// Per sender: 1 + the last sequence number handled (0: none yet).
    last_handled: Vec<AtomicU64>,
    duplicates: AtomicU64,
    out_of_order: AtomicU64,
    panicked: AtomicU64,
    dead_letter_hook_calls: AtomicU64,
    starts: AtomicU64,
    stops: AtomicU64,
    panic_every: Option<u64>,
}

impl Ledger {
    fn new(panic_every: Option<u64>) -> Arc<Self> {
        let per_message = |_| AtomicU8::new(0);
        Arc::new(Self {
            outcome: (0..MESSAGES).map(per_message).collect(),
            fate: (0..MESSAGES).map(per_message).collect(),
            last_handled: (0..SENDERS).map(|_| AtomicU64::new(0)).collect(),
            duplicates: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            dead_letter_hook_calls: AtomicU64::new(0),
            starts: AtomicU64::new(0),
            stops: AtomicU64::new(0),
            panic_every,
        })
    }

    fn mark(&self, seq: u64, fate: u8) {
        let before = self.fate[seq as usize].fetch_or(fate, Ordering::SeqCst);
        if before != 0 {
            self.duplicates.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn told(&self, seq: u64, outcome: u8) {
        let before = self.outcome[seq as usize].swap(outcome, Ordering::SeqCst);
        assert_eq!(before, NOT_SENT, "sequence number {seq} sent twice");
    }

    fn dead_letter(&self, letter: DeadLetter) {
        self.dead_letter_hook_calls.fetch_add(1, Ordering::SeqCst);
        let item = letter
            .downcast::<Item>()
            .expect("the actor gets only Items");
        self.mark(item.seq, DEAD);
    }
}

#[derive(Debug)]
struct Item {
    sender: u64,
    seq: u64,
}

struct Sink {
    ledger: Arc<Ledger>,
}

impl Actor for Sink {
    type Args = Arc<Ledger>;

    async fn on_start(ledger: Arc<Ledger>, _: &mut Context<Self>) -> Result<Self, BoxError> {
        ledger.starts.fetch_add(1, Ordering::SeqCst);
        Ok(Sink { ledger })
    }

    async fn on_stop(&mut self, _: &ExitReason, _: &mut Context<Self>) {
        self.ledger.stops.fetch_add(1, Ordering::SeqCst);
    }
}

impl Message<Item> for Sink {
    type Reply = u64;

    async fn handle(&mut self, Item { sender, seq }: Item, _: &mut Context<Self>) -> u64 {
        let ledger = &self.ledger;
        let panics = self
            .ledger
            .panic_every
            .is_some_and(|every| seq % every == every - 1);
        ledger.mark(seq, if panics { PANICKED } else { HANDLED });
        let before = ledger.last_handled[sender as usize].swap(seq + 1, Ordering::SeqCst);
        if before > seq {
            ledger.out_of_order.fetch_add(1, Ordering::SeqCst);
        }
        if panics {
            ledger.panicked.fetch_add(1, Ordering::SeqCst);
            panic!("{PANIC_TEXT} at {seq}");
        }
        // Some handlers suspend, so a kill can land in the middle of one.
        if seq % 16 == 0 {
            tokio::task::yield_now().await;
        }
        seq
    }
}

/// Calls `action` when the senders' attempt counter reaches each planned point.
struct Disruptions {
    attempts: AtomicU64,
    plan: Vec<(u64, Action)>,
}

impl Disruptions {
    fn attempt(&self) {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
        for (at, action) in &self.plan {
            if *at == attempt {
                action();
            }
        }
    }
}

type Action = Box<dyn Fn() + Send + Sync>;

fn action(action: impl Fn() + Send + Sync + 'static) -> Action {
    Box::new(action)
}

#[derive(Debug, Default)]
struct SenderTally {
    longest_ask: Duration,
}

async fn send_all(
    actor: ActorRef<Sink>,
    ledger: Arc<Ledger>,
    disruptions: Arc<Disruptions>,
    sender: u64,
    seed: u64,
) -> SenderTally {
    let mut rng = XorShift::new(seed ^ (sender + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut tally = SenderTally::default();
    let per_sender = MESSAGES / SENDERS;
    for seq in sender * per_sender..(sender + 1) * per_sender {
        disruptions.attempt();
        let item = Item { sender, seq };
        let outcome = match rng.below(100) {
            0..70 => match within(HANG, actor.tell(item)).await {
                Ok(()) => TELL_OK,
                Err(SendError::Stopped(item)) => handed_back(&item, seq),
                Err(other) => panic!("tell {seq}: {other:?}"),
            },
            70..80 => match actor.try_tell(item) {
                Ok(()) => TELL_OK,
                Err(SendError::Stopped(item) | SendError::Full(item)) => handed_back(&item, seq),
                Err(other) => panic!("try_tell {seq}: {other:?}"),
            },
            80..90 => {
                let timeout = Duration::from_micros(rng.below(300));
                match within(HANG, actor.tell_timeout(item, timeout)).await {
                    Ok(()) => TELL_OK,
                    Err(SendError::Stopped(item) | SendError::Timeout(item, _)) => {
                        handed_back(&item, seq)
                    }
                    Err(other) => panic!("tell_timeout {seq}: {other:?}"),
                }
            }
            roll => {
                let deadline = if roll < 95 {
                    ASK_DEADLINE
                } else {
                    Duration::from_micros(500 + rng.below(5_000))
                };
                let started = Instant::now();
                let asked = if roll < 95 {
                    within(deadline + ASK_SLACK, actor.ask(item)).await
                } else {
                    within(deadline + ASK_SLACK, actor.ask_timeout(item, deadline)).await
                };
                tally.longest_ask = tally.longest_ask.max(started.elapsed());
                match asked {
                    Ok(reply) => {
                        assert_eq!(reply, seq, "the reply of another message");
                        ASK_OK
                    }
                    Err(AskError::Stopped(item)) => handed_back(&item, seq),
                    Err(AskError::NoReply) => ASK_NO_REPLY,
                    Err(AskError::Timeout(waited)) => {
                        assert_eq!(waited, deadline);
                        ASK_TIMEOUT
                    }
                    Err(other) => panic!("ask {seq}: {other:?}"),
                }
            }
        };
        ledger.told(seq, outcome);
    }
    tally
}

fn handed_back(item: &Item, seq: u64) -> u8 {
    assert_eq!(item.seq, seq, "handed back another message");
    HANDED_BACK
}

/// The hang detector: `future` must finish within `bound`.
async fn within<F: Future>(bound: Duration, future: F) -> F::Output {
    match tokio::time::timeout(bound, future).await {
        Ok(output) => output,
        Err(_) => panic!("hung: no result within {bound:?}"),
    }
}

/// Runs the senders to the end and returns the longest ask.
async fn hammer(
    actor: &ActorRef<Sink>,
    ledger: &Arc<Ledger>,
    disruptions: Disruptions,
    seed: u64,
) -> Duration {
    let disruptions = Arc::new(disruptions);
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            tokio::spawn(send_all(
                actor.clone(),
                ledger.clone(),
                disruptions.clone(),
                sender,
                seed,
            ))
        })
        .collect();
    let mut longest_ask = Duration::ZERO;
    for sender in senders {
        longest_ask = longest_ask.max(sender.await.expect("a sender panicked").longest_ask);
    }
    longest_ask
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    told_ok: u64,
    told_ok_handled: u64,
    told_ok_dead: u64,
    told_ok_panicked: u64,
    handed_back: u64,
    asked_ok: u64,
    asked_no_reply: u64,
    asked_timeout: u64,
    handled: u64,
    dead: u64,
    panicked: u64,
}

/// Checks every message's record and sums them up.
fn audit(ledger: &Ledger) -> Totals {
    let mut totals = Totals::default();
    let mut violations = Vec::new();
    for seq in 0..MESSAGES as usize {
        let outcome = ledger.outcome[seq].load(Ordering::SeqCst);
        let fate = ledger.fate[seq].load(Ordering::SeqCst);
        totals.handled += u64::from(fate == HANDLED);
        totals.dead += u64::from(fate == DEAD);
        totals.panicked += u64::from(fate == PANICKED);
        let fine = match outcome {
            TELL_OK => {
                totals.told_ok += 1;
                totals.told_ok_handled += u64::from(fate == HANDLED);
                totals.told_ok_dead += u64::from(fate == DEAD);
                totals.told_ok_panicked += u64::from(fate == PANICKED);
                matches!(fate, HANDLED | DEAD | PANICKED)
            }
            HANDED_BACK => {
                totals.handed_back += 1;
                fate == 0
            }
            ASK_OK => {
                totals.asked_ok += 1;
                fate == HANDLED
            }
            // Dead-lettered, or its handler panicked or was killed.
            ASK_NO_REPLY => {
                totals.asked_no_reply += 1;
                matches!(fate, HANDLED | DEAD | PANICKED)
            }
            // Accepted or not, handled later or not.
            ASK_TIMEOUT => {
                totals.asked_timeout += 1;
                matches!(fate, 0 | HANDLED | DEAD | PANICKED)
            }
            _ => false,
        };
        if !fine && violations.len() < 10 {
            violations.push(format!(
                "seq {seq}: sender saw {outcome}, actor fate {fate}"
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "messages lost, duplicated or resurrected (outcome: 0 unsent, 1 tell ok, 2 handed back, \
         3 ask ok, 4 no reply, 5 ask timeout; fate: 1 handled, 2 dead, 4 panicked, other: \
         more than one): {violations:#?}"
    );
    assert_eq!(
        ledger.duplicates.load(Ordering::SeqCst),
        0,
        "a message handled or dead-lettered twice"
    );
    assert_eq!(
        ledger.out_of_order.load(Ordering::SeqCst),
        0,
        "a sender's messages handled out of order"
    );
    // The headline: every accepted tell is accounted for, exactly once.
    assert_eq!(
        totals.told_ok_handled + totals.told_ok_dead + totals.told_ok_panicked,
        totals.told_ok
    );
    totals
}

fn spawn_options(ledger: &Arc<Ledger>) -> Spawn {
    let hook_ledger = ledger.clone();
    Spawn::new()
        .ask_timeout(ASK_DEADLINE)
        .on_dead_letter(move |letter| hook_ledger.dead_letter(letter))
}

enum Ending {
    Stop,
    Kill,
}

async fn one_actor_ended_at_a_random_point(ending: Ending, test: &str) {
    let seed = seed(test);
    let mut rng = XorShift::new(seed);
    let end_at = rng.below(MESSAGES);
    println!("{test}: ending the actor at attempt {end_at} of {MESSAGES}");
    let ledger = Ledger::new(None);
    let actor = spawn_options(&ledger).spawn::<Sink>(ledger.clone());
    let target = actor.clone();
    let action = match ending {
        Ending::Stop => action(move || target.stop()),
        Ending::Kill => action(move || target.kill()),
    };
    let disruptions = Disruptions {
        attempts: AtomicU64::new(0),
        plan: vec![(end_at, action)],
    };
    let started = Instant::now();
    let longest_ask = hammer(&actor, &ledger, disruptions, seed).await;
    let reason = within(HANG, actor.wait_for_stop()).await;
    let elapsed = started.elapsed();

    let totals = audit(&ledger);
    let stats = actor.stats();
    println!("{test}: {elapsed:?}, longest ask {longest_ask:?}, {totals:?}, {stats:?}");
    assert_eq!(stats.processed, totals.handled);
    assert_eq!(stats.dead_letters, totals.dead);
    assert_eq!(
        ledger.dead_letter_hook_calls.load(Ordering::SeqCst),
        totals.dead
    );
    assert_eq!(ledger.starts.load(Ordering::SeqCst), 1);
    assert_eq!(ledger.stops.load(Ordering::SeqCst), 1, "on_stop runs once");
    assert!(!stats.alive);
    match ending {
        Ending::Stop => {
            assert_eq!(reason, ExitReason::Stopped);
            assert_eq!(totals.dead, 0, "a graceful stop dead-letters nothing");
            assert_eq!(totals.told_ok_handled, totals.told_ok);
            assert_eq!(totals.asked_no_reply, 0, "nothing panics or is dropped");
        }
        Ending::Kill => assert_eq!(reason, ExitReason::Killed),
    }
    // Closed stays closed.
    assert!(matches!(
        actor.try_tell(Item { sender: 0, seq: 0 }),
        Err(SendError::Stopped(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_tell_is_handled_when_stopped_at_a_random_point() {
    one_actor_ended_at_a_random_point(Ending::Stop, "stop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_tell_is_handled_or_dead_when_killed_at_a_random_point() {
    one_actor_ended_at_a_random_point(Ending::Kill, "kill").await;
}

/// Keeps the planned panics out of the test output; other panics still print.
fn quiet_planned_panics() {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let planned = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|text| text.starts_with(PANIC_TEXT));
            if !planned {
                default(info);
            }
        }));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_child_restarted_in_place_under_load_loses_and_repeats_nothing() {
    quiet_planned_panics();
    let test = "supervised";
    let seed = seed(test);
    let mut rng = XorShift::new(seed);
    let mut points: Vec<u64> = (0..3).map(|_| rng.below(MESSAGES)).collect();
    points.sort_unstable();
    let (kill_at, stop_at, end_at) = (points[0], points[1], points[2]);
    println!(
        "{test}: kill the child at {kill_at}, stop it at {stop_at}, stop the supervisor at {end_at}"
    );

    let ledger = Ledger::new(Some(PANIC_EVERY));
    let child_ledger = ledger.clone();
    let supervisor = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(10_000, Duration::from_secs(1))
        .expect("valid intensity")
        .child(
            ChildSpec::<Sink>::new("sink", move || child_ledger.clone())
                .restart(Restart::Permanent)
                .spawn_options(spawn_options(&ledger)),
        )
        .start()
        .await
        .expect("the child starts");
    let child = supervisor
        .child::<Sink>("sink")
        .await
        .expect("a Sink named sink");
    let (killed, stopped, ended) = (child.clone(), child.clone(), supervisor.clone());
    let disruptions = Disruptions {
        attempts: AtomicU64::new(0),
        plan: vec![
            (kill_at, action(move || killed.kill())),
            (stop_at, action(move || stopped.stop())),
            (end_at, action(move || ended.stop())),
        ],
    };
    let started = Instant::now();
    let longest_ask = hammer(&child, &ledger, disruptions, seed).await;
    assert_eq!(
        within(HANG, supervisor.wait_for_stop()).await,
        ExitReason::Stopped
    );
    let reason = within(HANG, child.wait_for_stop()).await;
    let elapsed = started.elapsed();

    let totals = audit(&ledger);
    let stats = child.stats();
    let panicked = ledger.panicked.load(Ordering::SeqCst);
    println!(
        "{test}: {elapsed:?}, longest ask {longest_ask:?}, panicked {panicked}, {totals:?}, {stats:?}"
    );
    assert_eq!(reason, ExitReason::Stopped, "terminated by its supervisor");
    assert_eq!(stats.processed, totals.handled + totals.panicked);
    assert_eq!(stats.dead_letters, totals.dead);
    assert_eq!(
        ledger.dead_letter_hook_calls.load(Ordering::SeqCst),
        totals.dead
    );
    assert_eq!(stats.panics, panicked);
    assert_eq!(totals.panicked, panicked);
    // accepted == handled + dead letters + panicked, over the tells (checked per message
    // in `audit` too).
    assert_eq!(
        totals.told_ok,
        totals.told_ok_handled + totals.told_ok_dead + totals.told_ok_panicked
    );
    // Every panic ends a run; all but possibly the last are followed by a restart, and
    // the kill and the stop each restart it at most once more.
    assert!(stats.restarts + 1 >= panicked, "{stats:?}");
    assert!(stats.restarts <= panicked + 2, "{stats:?}");
    let runs = ledger.starts.load(Ordering::SeqCst);
    assert_eq!(runs, stats.restarts + 1);
    assert_eq!(
        ledger.stops.load(Ordering::SeqCst),
        runs,
        "on_stop runs once per run"
    );
}
