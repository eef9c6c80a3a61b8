//! A 10,100-actor supervision tree: a root supervisor over 100 sub-supervisors over 100
//! workers each, built from `SupervisorSpec`s and `ChildSpec`s.
//!
//! * It starts, and every one of the 10,000 workers answers an ask.
//! * Stopping the root ends all 10,100 actors with `ExitReason::Stopped`: every worker's
//!   `on_stop` runs exactly once, the workers stop in reverse start order (sub-supervisor
//!   99's workers from the last to the first, then sub-supervisor 98's, ...), and each
//!   supervisor ends exactly once (one monitor signal each), after all of its workers.
//!   A supervisor's `on_stop` is the crate's own (it terminates the children): it ran, and
//!   ran once, when each of its workers stopped exactly once before its single exit.
//! * A worker panic is restarted in place by its own sub-supervisor only: the other 9,999
//!   workers, the 100 sub-supervisors and the root keep their runs.
//!
//! The shutdown time is printed (`--nocapture`), not asserted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use flowbed_actor::{
    Actor, ActorId, ActorRef, AskError, BoxError, ChildSpec, Context, ExitKind, ExitReason,
    ExitSignal, Message, Strategy, Supervisor, SupervisorSpec,
};
use futures::future::join_all;

const SUBS: usize = 100;
const WORKERS: usize = 100;

/// What the workers report: runs started and ended per worker, and the order of the ends.
struct TreeLog {
    starts: Vec<AtomicU32>,
    stops: Vec<AtomicU32>,
    stop_order: Mutex<Vec<(usize, usize, ExitReason)>>,
}

impl TreeLog {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            starts: (0..SUBS * WORKERS).map(|_| AtomicU32::new(0)).collect(),
            stops: (0..SUBS * WORKERS).map(|_| AtomicU32::new(0)).collect(),
            stop_order: Mutex::new(Vec::with_capacity(SUBS * WORKERS)),
        })
    }

    fn starts(&self, sub: usize, index: usize) -> u32 {
        self.starts[sub * WORKERS + index].load(Ordering::SeqCst)
    }

    fn stops(&self, sub: usize, index: usize) -> u32 {
        self.stops[sub * WORKERS + index].load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct WorkerArgs {
    sub: usize,
    index: usize,
    log: Arc<TreeLog>,
}

struct Worker {
    args: WorkerArgs,
    pings: u32,
}

impl Actor for Worker {
    type Args = WorkerArgs;

    async fn on_start(args: WorkerArgs, _: &mut Context<Self>) -> Result<Self, BoxError> {
        args.log.starts[args.sub * WORKERS + args.index].fetch_add(1, Ordering::SeqCst);
        Ok(Worker { args, pings: 0 })
    }

    async fn on_stop(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        let WorkerArgs { sub, index, log } = &self.args;
        log.stops[sub * WORKERS + index].fetch_add(1, Ordering::SeqCst);
        log.stop_order
            .lock()
            .expect("not poisoned")
            .push((*sub, *index, reason.clone()));
    }
}

/// Replies `(sub, index, pings handled in this run)`.
struct Ping;

impl Message<Ping> for Worker {
    type Reply = (usize, usize, u32);

    async fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> (usize, usize, u32) {
        self.pings += 1;
        (self.args.sub, self.args.index, self.pings)
    }
}

struct Boom;

impl Message<Boom> for Worker {
    type Reply = ();

    async fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!(
            "worker {}/{} panics on purpose",
            self.args.sub, self.args.index
        );
    }
}

/// Monitors the supervisors and checks, as each one's exit signal arrives, that all of its
/// workers had already ended.
struct Observer {
    watched: HashMap<ActorId, Watched>,
    exits: Vec<(String, ExitReason)>,
    early_exits: Vec<String>,
}

struct Watched {
    name: String,
    workers: Vec<ActorRef<Worker>>,
}

impl Actor for Observer {
    type Args = ();

    async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
        Ok(Observer {
            watched: HashMap::new(),
            exits: Vec::new(),
            early_exits: Vec::new(),
        })
    }

    async fn on_exit_signal(&mut self, signal: ExitSignal, _: &mut Context<Self>) {
        assert_eq!(signal.kind, ExitKind::Monitor);
        let watched = &self.watched[&signal.from];
        if watched.workers.iter().any(ActorRef::is_alive) {
            self.early_exits.push(watched.name.clone());
        }
        self.exits.push((watched.name.clone(), signal.reason));
    }
}

struct Watch(String, ActorRef<Supervisor>, Vec<ActorRef<Worker>>);

impl Message<Watch> for Observer {
    type Reply = ();

    async fn handle(&mut self, Watch(name, supervisor, workers): Watch, ctx: &mut Context<Self>) {
        ctx.monitor(&supervisor);
        self.watched
            .insert(supervisor.id(), Watched { name, workers });
    }
}

/// Replies `(supervisor exits in arrival order, supervisors that ended before a worker)`.
struct Exits;

impl Message<Exits> for Observer {
    type Reply = (Vec<(String, ExitReason)>, Vec<String>);

    async fn handle(&mut self, _: Exits, _: &mut Context<Self>) -> Self::Reply {
        (self.exits.clone(), self.early_exits.clone())
    }
}

fn sub_name(sub: usize) -> String {
    format!("sub-{sub:03}")
}

fn worker_name(index: usize) -> String {
    format!("worker-{index:03}")
}

struct Tree {
    root: ActorRef<Supervisor>,
    subs: Vec<ActorRef<Supervisor>>,
    workers: Vec<Vec<ActorRef<Worker>>>,
    log: Arc<TreeLog>,
}

async fn start_tree() -> Tree {
    let log = TreeLog::new();
    let mut root_spec = SupervisorSpec::new(Strategy::OneForOne);
    for sub in 0..SUBS {
        let mut sub_spec = SupervisorSpec::new(Strategy::OneForOne);
        for index in 0..WORKERS {
            let args = WorkerArgs {
                sub,
                index,
                log: log.clone(),
            };
            sub_spec = sub_spec.child(ChildSpec::<Worker>::new(worker_name(index), move || {
                args.clone()
            }));
        }
        root_spec = root_spec.child(ChildSpec::<Supervisor>::new(sub_name(sub), move || {
            sub_spec.clone()
        }));
    }
    let started = Instant::now();
    let root = root_spec.start().await.expect("the tree starts");
    println!("tree: 10,100 actors started in {:?}", started.elapsed());

    let children = root.children().await;
    let names: Vec<_> = children.iter().map(|child| child.name.clone()).collect();
    assert_eq!(
        names,
        (0..SUBS).map(sub_name).collect::<Vec<_>>(),
        "start order"
    );
    assert!(children.iter().all(|child| child.running));
    let mut subs = Vec::with_capacity(SUBS);
    let mut workers = Vec::with_capacity(SUBS);
    for sub in 0..SUBS {
        let supervisor = root
            .child::<Supervisor>(&sub_name(sub))
            .await
            .expect("a sub-supervisor");
        let mut mine = Vec::with_capacity(WORKERS);
        for index in 0..WORKERS {
            mine.push(
                supervisor
                    .child::<Worker>(&worker_name(index))
                    .await
                    .expect("a worker"),
            );
        }
        subs.push(supervisor);
        workers.push(mine);
    }
    Tree {
        root,
        subs,
        workers,
        log,
    }
}

/// Asks every worker at once; each answers with its own place in the tree.
async fn ping_all(tree: &Tree) {
    let asks = tree.workers.iter().flatten().map(|worker| worker.ask(Ping));
    let replies = join_all(asks).await;
    for (position, reply) in replies.into_iter().enumerate() {
        let (sub, index, _) = reply.expect("every worker answers");
        assert_eq!((sub, index), (position / WORKERS, position % WORKERS));
    }
}

/// Stops the root; returns how long it took for the whole tree to end.
async fn stop_tree(tree: &Tree) -> std::time::Duration {
    let started = Instant::now();
    tree.root.stop();
    assert_eq!(tree.root.wait_for_stop().await, ExitReason::Stopped);
    let elapsed = started.elapsed();
    println!("tree: 10,100 actors stopped in {elapsed:?}");
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10k_tree_starts_answers_and_stops_children_first_in_reverse_order() {
    let tree = start_tree().await;
    ping_all(&tree).await;

    let observer = Observer::spawn(());
    for (sub, supervisor) in tree.subs.iter().enumerate() {
        let watch = Watch(sub_name(sub), supervisor.clone(), tree.workers[sub].clone());
        observer.ask(watch).await.expect("the observer answers");
    }
    let everyone: Vec<_> = tree.workers.iter().flatten().cloned().collect();
    let watch = Watch("root".into(), tree.root.clone(), everyone);
    observer.ask(watch).await.expect("the observer answers");

    stop_tree(&tree).await;

    // Every actor has ended, stopped from above.
    for (sub, supervisor) in tree.subs.iter().enumerate() {
        assert_eq!(
            supervisor.wait_for_stop().await,
            ExitReason::Stopped,
            "sub {sub}"
        );
        assert_eq!(
            (supervisor.stats().restarts, supervisor.stats().panics),
            (0, 0)
        );
        for (index, worker) in tree.workers[sub].iter().enumerate() {
            assert!(!worker.is_alive());
            assert_eq!(worker.wait_for_stop().await, ExitReason::Stopped);
            assert_eq!(tree.log.starts(sub, index), 1, "worker {sub}/{index}");
            assert_eq!(
                tree.log.stops(sub, index),
                1,
                "on_stop once: worker {sub}/{index}"
            );
        }
    }

    // Reverse start order: the last sub-supervisor first, and within each, the last worker
    // first.
    let order = tree.log.stop_order.lock().expect("not poisoned").clone();
    let expected: Vec<_> = (0..SUBS)
        .rev()
        .flat_map(|sub| (0..WORKERS).rev().map(move |index| (sub, index)))
        .collect();
    let actual: Vec<_> = order.iter().map(|(sub, index, _)| (*sub, *index)).collect();
    assert_eq!(actual.len(), expected.len());
    if let Some(at) = actual.iter().zip(&expected).position(|(a, e)| a != e) {
        panic!(
            "stop {at} was worker {:?}, expected {:?}",
            actual[at], expected[at]
        );
    }
    assert!(
        order
            .iter()
            .all(|(_, _, reason)| *reason == ExitReason::Stopped)
    );

    // Each supervisor ended once, after its workers, the sub-supervisors in reverse start
    // order and the root last. (Exit signals come on the priority lane, ahead of this ask.)
    let (exits, early) = observer.ask(Exits).await.expect("the observer answers");
    assert!(
        early.is_empty(),
        "supervisors that ended before their workers: {early:?}"
    );
    let expected: Vec<_> = (0..SUBS)
        .rev()
        .map(sub_name)
        .chain(["root".to_owned()])
        .map(|name| (name, ExitReason::Stopped))
        .collect();
    assert_eq!(exits, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_panic_is_restarted_by_its_own_sub_supervisor_only() {
    let tree = start_tree().await;
    ping_all(&tree).await;
    let (sub, index) = (37, 42);
    let target = &tree.workers[sub][index];
    let ids_before = tree.subs[sub].children().await;
    let root_children_before = tree.root.children().await;
    assert_eq!(target.ask(Ping).await.expect("answers"), (sub, index, 2));

    assert!(matches!(target.ask(Boom).await, Err(AskError::NoReply)));
    // The same reference reaches a fresh run (its ping count starts again).
    assert_eq!(target.ask(Ping).await.expect("answers"), (sub, index, 1));
    assert_eq!(target.stats().restarts, 1);
    assert_eq!(target.stats().panics, 1);
    assert_eq!(
        (tree.log.starts(sub, index), tree.log.stops(sub, index)),
        (2, 1)
    );
    let stopped = tree.log.stop_order.lock().expect("not poisoned").clone();
    assert_eq!(stopped.len(), 1, "only the panicked worker's run ended");
    assert!(matches!(&stopped[0], (37, 42, ExitReason::Panicked(_))));

    // Nobody else was touched: same children, same runs, no restarts anywhere else.
    assert_eq!(tree.subs[sub].children().await, ids_before);
    assert_eq!(tree.root.children().await, root_children_before);
    assert!(tree.root.is_alive());
    assert_eq!(tree.root.stats().restarts, 0);
    for (s, supervisor) in tree.subs.iter().enumerate() {
        let stats = supervisor.stats();
        assert!(stats.alive, "sub {s}");
        assert_eq!((stats.restarts, stats.panics), (0, 0), "sub {s}");
        for (i, worker) in tree.workers[s].iter().enumerate() {
            if (s, i) != (sub, index) {
                assert_eq!(worker.stats().restarts, 0, "worker {s}/{i}");
                assert_eq!((tree.log.starts(s, i), tree.log.stops(s, i)), (1, 0));
            }
        }
    }
    ping_all(&tree).await;

    stop_tree(&tree).await;
    for (s, workers) in tree.workers.iter().enumerate() {
        for (i, worker) in workers.iter().enumerate() {
            assert!(!worker.is_alive());
            let runs = if (s, i) == (sub, index) { 2 } else { 1 };
            assert_eq!(tree.log.starts(s, i), runs);
            assert_eq!(
                tree.log.stops(s, i),
                runs,
                "on_stop once per run: worker {s}/{i}"
            );
        }
    }
}
