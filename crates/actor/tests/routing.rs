//! Router scenarios: round robin spreads exactly evenly, least loaded picks the shortest
//! mailbox, keyed routing is sticky and moves only the keys that go to a new routee when
//! the group grows, broadcast reaches every routee, resize grows from the factory and
//! shrinks gracefully, configuration errors, and replies through `ask`/`ask_keyed`.
//!
//! Every test runs on a paused current-thread runtime, where `settle()` (a 1 ms sleep)
//! returns only once every other task is idle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowbed_actor::{
    Actor, ActorRef, BoxError, ConfigError, Context, ExitReason, Mailbox, Message, Router, Routing,
    Spawn,
};
use tokio::sync::Semaphore;

/// A routee: knows its index (from the factory) and keeps what it handled.
struct Worker {
    index: usize,
    handled: Vec<u32>,
}

impl Actor for Worker {
    type Args = usize;

    async fn on_start(index: usize, _: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(Worker {
            index,
            handled: Vec::new(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Work(u32);
impl Message<Work> for Worker {
    type Reply = ();
    async fn handle(&mut self, Work(n): Work, _: &mut Context<Self>) {
        self.handled.push(n);
    }
}

/// Replies with the routee's index.
struct Which;
impl Message<Which> for Worker {
    type Reply = usize;
    async fn handle(&mut self, _: Which, _: &mut Context<Self>) -> usize {
        self.index
    }
}

struct Handled;
impl Message<Handled> for Worker {
    type Reply = Vec<u32>;
    async fn handle(&mut self, _: Handled, _: &mut Context<Self>) -> Vec<u32> {
        self.handled.clone()
    }
}

/// Doubles the number and says who did it.
struct Double(u32);
impl Message<Double> for Worker {
    type Reply = (usize, u32);
    async fn handle(&mut self, Double(n): Double, _: &mut Context<Self>) -> (usize, u32) {
        (self.index, n * 2)
    }
}

/// Parks the handler until the test adds a permit to the gate.
struct Block(Arc<Semaphore>);
impl Message<Block> for Worker {
    type Reply = ();
    async fn handle(&mut self, Block(gate): Block, _: &mut Context<Self>) {
        gate.acquire().await.expect("gate open").forget();
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

async fn handled_by_each(routees: &[ActorRef<Worker>]) -> Vec<Vec<u32>> {
    let mut all = Vec::new();
    for routee in routees {
        all.push(routee.ask(Handled).await.unwrap());
    }
    all
}

async fn ended(actor: &ActorRef<Worker>) -> ExitReason {
    tokio::time::timeout(Duration::from_secs(3600), actor.wait_for_stop())
        .await
        .expect("the routee did not end")
}

fn is_config_error<T>(result: &Result<T, ConfigError>) -> bool {
    matches!(result, Err(ConfigError::Invalid { .. }))
}

#[tokio::test(start_paused = true)]
async fn round_robin_spreads_messages_exactly_evenly_in_turn() {
    assert_eq!(Routing::default(), Routing::RoundRobin);
    let router = Router::<Worker>::spawn(Routing::RoundRobin, 4, |index| index).unwrap();
    for n in 0..1000 {
        router.tell(Work(n)).await.unwrap();
    }
    let handled = handled_by_each(&router.routees()).await;
    for (index, messages) in handled.iter().enumerate() {
        assert_eq!(messages.len(), 250, "routee {index}");
        // Routee i got exactly the messages i, i+4, i+8, ...
        let expected: Vec<u32> = (index as u32..1000).step_by(4).collect();
        assert_eq!(messages, &expected, "routee {index}");
    }
}

#[tokio::test(start_paused = true)]
async fn ask_goes_round_robin_and_returns_the_reply() {
    let router = Router::<Worker>::spawn(Routing::RoundRobin, 3, |index| index).unwrap();
    let mut replies = Vec::new();
    for n in 0..6 {
        replies.push(router.ask(Double(n)).await.unwrap());
    }
    assert_eq!(
        replies,
        vec![(0, 0), (1, 2), (2, 4), (0, 6), (1, 8), (2, 10)]
    );
}

#[tokio::test(start_paused = true)]
async fn least_loaded_picks_the_routee_with_the_shortest_mailbox() {
    let router = Router::<Worker>::spawn(Routing::LeastLoaded, 3, |index| index).unwrap();
    let routees = router.routees();
    let gates: Vec<Arc<Semaphore>> = (0..3).map(|_| Arc::new(Semaphore::new(0))).collect();
    for (routee, gate) in routees.iter().zip(&gates) {
        routee.tell(Block(gate.clone())).await.unwrap();
    }
    settle().await; // every routee is busy at its gate, with an empty mailbox
    // Build queues of 3, 1 and 2 messages.
    for (routee, queued) in routees.iter().zip([3, 1, 2]) {
        for _ in 0..queued {
            routee.tell(Work(0)).await.unwrap();
        }
    }
    let lengths = || {
        routees
            .iter()
            .map(ActorRef::mailbox_len)
            .collect::<Vec<_>>()
    };
    assert_eq!(lengths(), vec![3, 1, 2]);
    assert_eq!(router.pick(), routees[1]);

    // Each message goes to the shortest queue (ties: the first such routee).
    let expected_after_each = [
        [3, 2, 2],
        [3, 3, 2],
        [3, 3, 3],
        [4, 3, 3],
        [4, 4, 3],
        [4, 4, 4],
    ];
    for (n, expected) in (1..).zip(expected_after_each) {
        router.tell(Work(n)).await.unwrap();
        assert_eq!(lengths(), expected.to_vec(), "after message {n}");
    }

    for gate in &gates {
        gate.add_permits(1);
    }
    assert_eq!(
        handled_by_each(&routees).await,
        vec![vec![0, 0, 0, 4], vec![0, 1, 2, 5], vec![0, 0, 3, 6],]
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_always_reaches_the_same_routee() {
    let router = Router::<Worker>::spawn(Routing::RoundRobin, 5, |index| index).unwrap();
    let user = "user-42";
    let owner = router.ask_keyed(&user, Which).await.unwrap();
    for n in 0..100 {
        router.tell_keyed(&user, Work(n)).await.unwrap();
        assert_eq!(router.pick_keyed(&user), router.routees()[owner]);
    }
    let handled = handled_by_each(&router.routees()).await;
    for (index, messages) in handled.iter().enumerate() {
        let expected = if index == owner { 100 } else { 0 };
        assert_eq!(messages.len(), expected, "routee {index}");
    }
    // Keyed asks reply too, from the owner.
    assert_eq!(
        router.ask_keyed(&user, Double(21)).await.unwrap(),
        (owner, 42)
    );
    // Keyed routing does not disturb the round-robin turn.
    assert_eq!(router.ask(Which).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn keys_spread_over_every_routee() {
    let router = Router::<Worker>::spawn(Routing::RoundRobin, 4, |index| index).unwrap();
    let mut per_routee = [0usize; 4];
    for key in 0..1000u64 {
        per_routee[router.ask_keyed(&key, Which).await.unwrap()] += 1;
    }
    for (index, keys) in per_routee.iter().enumerate() {
        // 250 expected; a consistent hash is not exact, but no routee is starved or flooded.
        assert!(
            (150..350).contains(keys),
            "routee {index} got {keys} of 1000 keys"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn growing_by_one_moves_only_keys_to_the_new_routee() {
    let router = Router::<Worker>::spawn(Routing::RoundRobin, 4, |index| index).unwrap();
    let keys: Vec<String> = (0..1000).map(|n| format!("session-{n}")).collect();
    let mut before = Vec::new();
    for key in &keys {
        before.push(router.ask_keyed(key, Which).await.unwrap());
    }
    router.resize(5).unwrap();
    let mut moved = 0;
    for (key, &old) in keys.iter().zip(&before) {
        let now = router.ask_keyed(key, Which).await.unwrap();
        if now != old {
            assert_eq!(now, 4, "key {key} moved from {old} to an old routee {now}");
            moved += 1;
        }
    }
    // About 1/5 of the keys move (jump consistent hash), never most of them.
    assert!((100..300).contains(&moved), "{moved} of 1000 keys moved");
}

#[tokio::test(start_paused = true)]
async fn broadcast_reaches_every_routee_once() {
    let router = Router::<Worker>::spawn(Routing::RoundRobin, 5, |index| index).unwrap();
    assert_eq!(router.broadcast(Work(7)).await, 5);
    assert_eq!(router.broadcast(Work(8)).await, 5);
    assert_eq!(
        handled_by_each(&router.routees()).await,
        vec![vec![7, 8]; 5]
    );
}

#[tokio::test(start_paused = true)]
async fn broadcast_counts_only_the_routees_that_accepted() {
    let router = Router::<Worker>::spawn(Routing::RoundRobin, 3, |index| index).unwrap();
    let routees = router.routees();
    routees[1].stop();
    assert_eq!(ended(&routees[1]).await, ExitReason::Stopped);
    assert_eq!(router.broadcast(Work(1)).await, 2);
    assert_eq!(routees[0].ask(Handled).await.unwrap(), vec![1]);
    assert_eq!(routees[2].ask(Handled).await.unwrap(), vec![1]);
}

#[tokio::test(start_paused = true)]
async fn growing_spawns_from_the_factory_with_each_new_index() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let router = Router::<Worker>::spawn(Routing::RoundRobin, 2, move |index| {
        seen.lock().unwrap().push(index);
        index * 10
    })
    .unwrap();
    assert_eq!(*calls.lock().unwrap(), vec![0, 1]);
    router.resize(4).unwrap();
    assert_eq!(*calls.lock().unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(router.len(), 4);
    assert!(!router.is_empty());
    let mut indices = Vec::new();
    for routee in router.routees() {
        indices.push(routee.ask(Which).await.unwrap());
    }
    assert_eq!(indices, vec![0, 10, 20, 30]);
    // The old routees are the same actors as before the resize.
    router.resize(4).unwrap();
    assert_eq!(
        *calls.lock().unwrap(),
        vec![0, 1, 2, 3],
        "a same-size resize spawned"
    );
}

#[tokio::test(start_paused = true)]
async fn growing_uses_the_spawn_options_of_the_router() {
    let spawn = Spawn::new().mailbox(Mailbox::bounded(3).unwrap());
    let router = Router::<Worker>::spawn_with(Routing::RoundRobin, 1, spawn, |i| i).unwrap();
    router.resize(2).unwrap();
    for routee in router.routees() {
        assert_eq!(routee.stats().mailbox_capacity, Some(3));
    }
}

#[tokio::test(start_paused = true)]
async fn shrinking_stops_the_removed_routees_after_their_queues() {
    let router = Router::<Worker>::spawn(Routing::RoundRobin, 4, |index| index).unwrap();
    let routees = router.routees();
    let gate = Arc::new(Semaphore::new(0));
    let last = routees[3].clone();
    last.tell(Block(gate.clone())).await.unwrap();
    settle().await;
    for n in 0..5 {
        last.tell(Work(n)).await.unwrap();
    }
    router.resize(3).unwrap();
    assert_eq!(router.len(), 3);
    assert_eq!(router.routees(), routees[..3].to_vec());
    settle().await;
    assert!(
        last.is_alive(),
        "graceful: the running handler finishes first"
    );

    gate.add_permits(1);
    assert_eq!(ended(&last).await, ExitReason::Stopped);
    let stats = last.stats();
    assert_eq!((stats.processed, stats.dead_letters), (6, 0));

    // The remaining routees share the traffic; the removed one gets none.
    for n in 0..30 {
        router.tell(Work(n)).await.unwrap();
    }
    let handled = handled_by_each(&router.routees()).await;
    assert_eq!(
        handled.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 10]
    );
    assert!(routees[..3].iter().all(ActorRef::is_alive));
}

#[tokio::test(start_paused = true)]
async fn configuration_errors() {
    assert!(is_config_error(&Router::<Worker>::new(
        Routing::RoundRobin,
        Vec::new()
    )));
    assert!(is_config_error(&Router::<Worker>::spawn(
        Routing::LeastLoaded,
        0,
        |i| i
    )));

    let router = Router::<Worker>::spawn(Routing::RoundRobin, 2, |index| index).unwrap();
    assert!(is_config_error(&router.resize(0)));
    assert_eq!(router.len(), 2, "a failed resize changed the group");
}

#[tokio::test(start_paused = true)]
async fn a_router_over_given_actors_routes_shrinks_but_cannot_grow() {
    let actors: Vec<ActorRef<Worker>> = (0..3).map(Worker::spawn).collect();
    let router = Router::new(Routing::RoundRobin, actors.clone()).unwrap();
    assert_eq!(router.routees(), actors);
    assert_eq!(router.ask(Which).await.unwrap(), 0);
    assert_eq!(router.ask(Which).await.unwrap(), 1);

    assert!(is_config_error(&router.resize(4)));
    assert_eq!(router.len(), 3, "a failed grow changed the group");
    assert!(actors.iter().all(ActorRef::is_alive));

    router.resize(2).unwrap();
    assert_eq!(ended(&actors[2]).await, ExitReason::Stopped);
    assert!(actors[0].is_alive() && actors[1].is_alive());
    assert!(is_config_error(&router.resize(0)));
}

#[tokio::test(start_paused = true)]
async fn stop_stops_every_routee_gracefully() {
    let router = Router::<Worker>::spawn(Routing::RoundRobin, 3, |index| index).unwrap();
    for n in 0..9 {
        router.tell(Work(n)).await.unwrap();
    }
    let routees = router.routees();
    let clone = router.clone();
    clone.stop();
    for routee in &routees {
        assert_eq!(ended(routee).await, ExitReason::Stopped);
        let stats = routee.stats();
        assert_eq!((stats.processed, stats.dead_letters), (3, 0));
    }
    assert!(router.tell(Work(99)).await.is_err());
    assert_eq!(router.broadcast(Work(100)).await, 0);
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_group_and_the_turn() {
    let router = Router::<Worker>::spawn(Routing::RoundRobin, 3, |index| index).unwrap();
    let clone = router.clone();
    assert_eq!(router.ask(Which).await.unwrap(), 0);
    assert_eq!(clone.ask(Which).await.unwrap(), 1);
    clone.resize(4).unwrap();
    assert_eq!(router.len(), 4);
    assert_eq!(router.ask(Which).await.unwrap(), 2);
}
