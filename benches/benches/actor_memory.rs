//! Bytes per idle actor: flowbed-actor against ractor, kameo, actix and a hand-written
//! tokio task with an mpsc channel, each with its default mailbox (flowbed: bounded 64;
//! kameo: `spawn`'s bounded 64; ractor: unbounded; actix: `Context`'s default; tokio:
//! `mpsc::channel(64)`).
//!
//! A counting global allocator wraps the system allocator. For each library, `N` counting
//! actors (the same actor, message and handler as `benches/actor.rs`: a `u64` count, a
//! 32-byte message, the count as the reply) are spawned one after another, then each is
//! asked once, so every actor has started and handled a message; the bytes live then,
//! minus the bytes live before the first spawn, over `N`, are the bytes per actor. They
//! include everything the library allocates for an actor (its task, mailbox, reference,
//! reply channel leftovers), but not the bench's vector of handles. Then every actor is
//! stopped and waited for, and the bytes still live over the baseline are reported as
//! well (a library that frees everything shows about 0; runtime caches may keep a little).
//!
//! flowbed, ractor, kameo and tokio run on one tokio multi-thread runtime with 2 workers;
//! actix on an `actix::System` (its single-threaded arbiter). Each library does one
//! unrecorded round first, so the runtime's own lazily grown structures are in the
//! baseline, not in the per-actor figure.
//!
//! Run: `cargo bench -p flowbed-benches --bench actor_memory` (10,000 actors); with
//! `-- --test` 500 actors.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::Runtime;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments; the counter is
// only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we forward.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`; the caller
        // upholds the rest of `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The message: 32 bytes, as in `benches/actor.rs`.
#[derive(Debug, Clone, Copy)]
struct Payload([u8; 32]);

const PAYLOAD: Payload = Payload([7; 32]);

/// The handler of every actor: counts the message and returns the running count.
fn count(total: &mut u64, payload: Payload) -> u64 {
    std::hint::black_box(payload.0);
    *total += 1;
    *total
}

/// One actor library, as the report uses it.
trait Peer {
    type Handle: Send + Sync + 'static;

    /// Spawns one counting actor with the default mailbox.
    fn spawn() -> impl Future<Output = Self::Handle> + Send;
    /// Asks it once and returns the reply (its count).
    fn ask(actor: &Self::Handle) -> impl Future<Output = u64> + Send;
    /// Stops every actor and waits until they have all stopped.
    fn stop_all(actors: Vec<Self::Handle>) -> impl Future<Output = ()> + Send;
}

mod flowbed {
    use flowbed_actor::{Actor, ActorRef, BoxError, Context, Message};

    use super::{PAYLOAD, Payload, Peer, count};

    pub(crate) struct Flowbed;

    pub(crate) struct Counter(u64);

    impl Actor for Counter {
        type Args = ();

        async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
            Ok(Self(0))
        }
    }

    impl Message<Payload> for Counter {
        type Reply = u64;

        async fn handle(&mut self, payload: Payload, _: &mut Context<Self>) -> u64 {
            count(&mut self.0, payload)
        }
    }

    impl Peer for Flowbed {
        type Handle = ActorRef<Counter>;

        async fn spawn() -> ActorRef<Counter> {
            Counter::spawn(())
        }

        async fn ask(actor: &ActorRef<Counter>) -> u64 {
            actor.ask(PAYLOAD).await.expect("flowbed ask")
        }

        async fn stop_all(actors: Vec<ActorRef<Counter>>) {
            for actor in &actors {
                actor.stop();
            }
            for actor in &actors {
                actor.wait_for_stop().await;
            }
        }
    }
}

mod ractor_peer {
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, call};

    use super::{PAYLOAD, Payload, Peer, count};

    pub(crate) struct Ractor;

    pub(crate) enum CounterMsg {
        // The tell variant of `benches/actor.rs`, unused here but part of the message type.
        #[allow(dead_code)]
        Tell(Payload),
        Ask(Payload, RpcReplyPort<u64>),
    }

    pub(crate) struct Counter;

    impl Actor for Counter {
        type Msg = CounterMsg;
        type State = u64;
        type Arguments = ();

        async fn pre_start(
            &self,
            _: ActorRef<CounterMsg>,
            _: (),
        ) -> Result<u64, ActorProcessingErr> {
            Ok(0)
        }

        async fn handle(
            &self,
            _: ActorRef<CounterMsg>,
            message: CounterMsg,
            total: &mut u64,
        ) -> Result<(), ActorProcessingErr> {
            match message {
                CounterMsg::Tell(payload) => {
                    count(total, payload);
                }
                CounterMsg::Ask(payload, reply) => {
                    let _ = reply.send(count(total, payload));
                }
            }
            Ok(())
        }
    }

    impl Peer for Ractor {
        type Handle = ActorRef<CounterMsg>;

        async fn spawn() -> ActorRef<CounterMsg> {
            let (actor, _) = Actor::spawn(None, Counter, ())
                .await
                .unwrap_or_else(|e| panic!("ractor spawn: {e}"));
            actor
        }

        async fn ask(actor: &ActorRef<CounterMsg>) -> u64 {
            call!(actor, CounterMsg::Ask, PAYLOAD).unwrap_or_else(|e| panic!("ractor call: {e}"))
        }

        async fn stop_all(actors: Vec<ActorRef<CounterMsg>>) {
            for actor in &actors {
                actor
                    .stop_and_wait(None, None)
                    .await
                    .unwrap_or_else(|e| panic!("ractor stop: {e}"));
            }
        }
    }
}

mod kameo_peer {
    use kameo::actor::{Actor, ActorRef, Spawn};
    use kameo::error::Infallible;
    use kameo::message::{Context, Message};

    use super::{PAYLOAD, Payload, Peer, count};

    pub(crate) struct Kameo;

    pub(crate) struct Counter(u64);

    impl Actor for Counter {
        type Args = Self;
        type Error = Infallible;

        async fn on_start(args: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(args)
        }
    }

    impl Message<Payload> for Counter {
        type Reply = u64;

        async fn handle(&mut self, payload: Payload, _: &mut Context<Self, u64>) -> u64 {
            count(&mut self.0, payload)
        }
    }

    impl Peer for Kameo {
        type Handle = ActorRef<Counter>;

        async fn spawn() -> ActorRef<Counter> {
            Counter::spawn(Counter(0))
        }

        async fn ask(actor: &ActorRef<Counter>) -> u64 {
            actor.ask(PAYLOAD).await.expect("kameo ask")
        }

        async fn stop_all(actors: Vec<ActorRef<Counter>>) {
            for actor in &actors {
                actor.stop_gracefully().await.expect("kameo stop");
            }
            for actor in &actors {
                actor.wait_for_shutdown().await;
            }
        }
    }
}

mod actix_peer {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix::{Actor, Addr, Context, Handler};

    use super::{PAYLOAD, Payload, Peer, count};

    pub(crate) struct Actix;

    /// Actix actors running now (actix has no other way to wait for a stop): a static, so
    /// the actor holds nothing more than the others.
    static RUNNING: AtomicUsize = AtomicUsize::new(0);

    impl actix::Message for Payload {
        type Result = u64;
    }

    pub(crate) struct Counter(u64);

    impl Actor for Counter {
        type Context = Context<Self>;

        fn started(&mut self, _: &mut Context<Self>) {
            RUNNING.fetch_add(1, Ordering::Relaxed);
        }

        fn stopped(&mut self, _: &mut Context<Self>) {
            RUNNING.fetch_sub(1, Ordering::Relaxed);
        }
    }

    impl Handler<Payload> for Counter {
        type Result = u64;

        fn handle(&mut self, payload: Payload, _: &mut Context<Self>) -> u64 {
            count(&mut self.0, payload)
        }
    }

    impl Peer for Actix {
        type Handle = Addr<Counter>;

        async fn spawn() -> Addr<Counter> {
            Counter(0).start()
        }

        async fn ask(actor: &Addr<Counter>) -> u64 {
            actor.send(PAYLOAD).await.expect("actix send")
        }

        async fn stop_all(actors: Vec<Addr<Counter>>) {
            // An actix actor stops once its last address is gone.
            drop(actors);
            while RUNNING.load(Ordering::Relaxed) > 0 {
                tokio::task::yield_now().await;
            }
        }
    }
}

mod tokio_peer {
    use tokio::sync::{mpsc, oneshot};
    use tokio::task::JoinHandle;

    use super::{PAYLOAD, Payload, Peer, count};

    pub(crate) struct Tokio;

    type Request = (Payload, Option<oneshot::Sender<u64>>);

    impl Peer for Tokio {
        type Handle = (mpsc::Sender<Request>, JoinHandle<()>);

        async fn spawn() -> Self::Handle {
            let (sender, mut mailbox) = mpsc::channel::<Request>(64);
            let task = tokio::spawn(async move {
                let mut total = 0;
                while let Some((payload, reply)) = mailbox.recv().await {
                    let counted = count(&mut total, payload);
                    if let Some(reply) = reply {
                        let _ = reply.send(counted);
                    }
                }
            });
            (sender, task)
        }

        async fn ask((actor, _): &Self::Handle) -> u64 {
            let (reply, answer) = oneshot::channel();
            if actor.send((PAYLOAD, Some(reply))).await.is_err() {
                panic!("tokio send: task stopped");
            }
            answer.await.expect("tokio reply")
        }

        async fn stop_all(actors: Vec<Self::Handle>) {
            let mut tasks = Vec::with_capacity(actors.len());
            for (sender, task) in actors {
                drop(sender);
                tasks.push(task);
            }
            for task in tasks {
                task.await.expect("tokio task");
            }
        }
    }
}

/// What `n` idle actors of one library cost.
struct Usage {
    /// Bytes live once all had started and handled one ask, over the baseline, without
    /// the bench's vector of handles.
    live: isize,
    /// Bytes still live over the baseline after all had stopped.
    left: isize,
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed) as isize
}

/// Spawns `n` actors, asks each once, measures, stops them all.
async fn measure<P: Peer>(n: usize) -> Usage {
    let baseline = live();
    let mut actors = Vec::with_capacity(n);
    let vec_bytes = (n * size_of::<P::Handle>()) as isize;
    for _ in 0..n {
        actors.push(P::spawn().await);
    }
    for actor in &actors {
        assert_eq!(
            P::ask(actor).await,
            1,
            "every actor handles its first message"
        );
    }
    let used = live() - baseline - vec_bytes;
    P::stop_all(actors).await;
    // Let the runtime free the tasks that just finished.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Usage {
        live: used,
        left: live() - baseline,
    }
}

/// The runtime a library's actors run on.
enum Exec<'a> {
    /// A task on the 2-worker tokio runtime.
    Tokio(&'a Runtime),
    /// The actix System's single-threaded arbiter.
    Actix(&'a actix::SystemRunner),
}

impl Exec<'_> {
    fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Exec::Tokio(runtime) => runtime.block_on(async move {
                tokio::spawn(future)
                    .await
                    .expect("the report task panicked")
            }),
            Exec::Actix(system) => system.block_on(future),
        }
    }
}

/// One unrecorded round, then one recorded.
fn usage<P: Peer + 'static>(exec: &Exec<'_>, n: usize) -> Usage {
    exec.run(measure::<P>(n));
    exec.run(measure::<P>(n))
}

fn main() {
    let test_mode = std::env::args().any(|arg| arg == "--test");
    let n = if test_mode { 500 } else { 10_000 };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tokio_exec = Exec::Tokio(&runtime);
    let rows = [
        (
            "flowbed",
            "bounded 64 (default)",
            usage::<flowbed::Flowbed>(&tokio_exec, n),
        ),
        (
            "ractor",
            "unbounded (its only kind)",
            usage::<ractor_peer::Ractor>(&tokio_exec, n),
        ),
        (
            "kameo",
            "bounded 64 (`spawn` default)",
            usage::<kameo_peer::Kameo>(&tokio_exec, n),
        ),
        (
            "tokio",
            "`mpsc::channel(64)`",
            usage::<tokio_peer::Tokio>(&tokio_exec, n),
        ),
        ("actix", "`Context` default (16; `do_send` ignores it)", {
            let system = actix::System::new();
            usage::<actix_peer::Actix>(&Exec::Actix(&system), n)
        }),
    ];
    drop(runtime);

    let flowbed = rows[0].2.live as f64;
    println!("actor_memory: {n} idle actors per library, each started and asked once");
    println!();
    println!(
        "| library | mailbox | bytes per idle actor | vs flowbed | bytes left after stopping all |"
    );
    println!("|---|---|---|---|---|");
    for (name, mailbox, usage) in &rows {
        println!(
            "| {name} | {mailbox} | {:.0} | {:.2} | {} |",
            usage.live as f64 / n as f64,
            usage.live as f64 / flowbed,
            usage.left,
        );
    }
}
