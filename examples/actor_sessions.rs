//! Per-user session counters sharded over supervised actors, with poison events.
//!
//! 8 `Shard` actors run under a one-for-one supervisor; a `Router` sends each event to the
//! shard its user hashes to. Every 10,000th event is malformed and makes its shard panic:
//! the supervisor restarts the shard in place (same `ActorRef`, queued events kept) and the
//! router never notices. At the end the example checks that every event was either counted
//! by a shard or was one of the poison events, and that nothing was lost.
//!
//! Run: `cargo run --release --example actor_sessions [-- --events N]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flowbed::actor::{
    Actor, ActorRef, BoxError, ChildSpec, Context, ExitReason, Message, Router, Routing, Strategy,
    SupervisorSpec,
};

const SHARDS: usize = 8;
const POISON_EVERY: u64 = 10_000;

/// Counted events, kept outside the shards so restarts do not lose them (a real pipeline
/// would flush to its store in `on_stop`).
#[derive(Default)]
struct Totals {
    counted: AtomicU64,
    restarts_seen: AtomicU64,
}

struct Shard {
    totals: Arc<Totals>,
    sessions: std::collections::HashMap<u64, u64>,
    counted: u64,
}

impl Actor for Shard {
    type Args = Arc<Totals>;
    async fn on_start(totals: Arc<Totals>, _: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(Shard {
            totals,
            sessions: Default::default(),
            counted: 0,
        })
    }

    async fn on_stop(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        // Flush on every path, including the panic of a poison event.
        self.totals
            .counted
            .fetch_add(self.counted, Ordering::Relaxed);
        if !reason.is_normal() {
            self.totals.restarts_seen.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Event {
    user: u64,
    malformed: bool,
}

impl Message<Event> for Shard {
    type Reply = ();
    async fn handle(&mut self, event: Event, _: &mut Context<Self>) {
        assert!(!event.malformed, "malformed event for user {}", event.user);
        *self.sessions.entry(event.user).or_default() += 1;
        self.counted += 1;
    }
}

struct Sessions;
impl Message<Sessions> for Shard {
    type Reply = usize;
    async fn handle(&mut self, _: Sessions, _: &mut Context<Self>) -> usize {
        self.sessions.len()
    }
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::args()
        .skip_while(|arg| arg != "--events")
        .nth(1)
        .map(|n| n.parse().expect("--events takes a number"))
        .unwrap_or(1_000_000);
    let totals = Arc::new(Totals::default());
    // The poison events panic on purpose: keep their 100 backtraces out of the output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let expected = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|message| message.starts_with("malformed event"));
        if !expected {
            default_hook(info);
        }
    }));

    let mut spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(1_000, Duration::from_secs(1))
        .expect("valid intensity");
    for shard in 0..SHARDS {
        let totals = totals.clone();
        spec = spec.child(ChildSpec::<Shard>::new(
            format!("shard-{shard}"),
            move || totals.clone(),
        ));
    }
    let supervisor = spec.start().await.expect("shards start");
    let mut shards: Vec<ActorRef<Shard>> = Vec::new();
    for shard in 0..SHARDS {
        shards.push(
            supervisor
                .child(&format!("shard-{shard}"))
                .await
                .expect("a shard"),
        );
    }
    let router = Router::new(Routing::RoundRobin, shards).expect("shards");

    let started = Instant::now();
    let mut poison = 0;
    for n in 1..=events {
        let malformed = n % POISON_EVERY == 0;
        poison += u64::from(malformed);
        let user = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 50_000;
        router
            .tell_keyed(&user, Event { user, malformed })
            .await
            .expect("shards are supervised: always accepting");
    }
    let mut sessions = 0;
    for shard in router.routees() {
        sessions += shard.ask(Sessions).await.expect("shard answers");
    }
    let elapsed = started.elapsed();

    supervisor.stop(); // every shard's on_stop flushes its count
    supervisor.wait_for_stop().await;
    let counted = totals.counted.load(Ordering::Relaxed);
    let restarts: u64 = router
        .routees()
        .iter()
        .map(|shard| shard.stats().restarts)
        .sum();
    println!(
        "actor_sessions: events={events} counted={counted} poison={poison} restarts={restarts} \
         sessions_at_end={sessions} elapsed={elapsed:?} rate={:.0}/s",
        events as f64 / elapsed.as_secs_f64()
    );
    let lost = events - counted - poison;
    if lost != 0 || restarts != poison {
        eprintln!(
            "actor_sessions: FAILED: {lost} events lost, {restarts} restarts for {poison} poison events"
        );
        std::process::exit(1);
    }
    println!("actor_sessions: ok, nothing lost");
}
