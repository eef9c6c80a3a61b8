//! The actors of the actor suites, one module per library, behind one [`Peer`] trait:
//! `benches/actor.rs` measures them, `benches/actor_memory.rs` weighs them. (A module, not
//! a bench target: cargo only discovers `benches/*.rs` and `benches/*/main.rs`.)

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::runtime::Runtime;
use tokio::sync::Notify;

/// The message of every workload: 32 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Payload(pub(crate) [u8; 32]);

pub(crate) const PAYLOAD: Payload = Payload([7; 32]);

const _: () = assert!(size_of::<Payload>() == 32);

/// The handler of every counting actor: counts the message and returns the running count.
#[inline]
pub(crate) fn count(total: &mut u64, payload: Payload) -> u64 {
    black_box(payload.0);
    *total += 1;
    *total
}

/// What the last stage of a pipeline counts into: it wakes the sender each time a whole
/// batch has arrived.
#[derive(Debug)]
pub(crate) struct Sink {
    batch: u64,
    pub(crate) received: AtomicU64,
    pub(crate) batch_done: Notify,
}

impl Sink {
    pub(crate) fn new(batch: u64) -> Arc<Self> {
        Arc::new(Self {
            batch,
            received: AtomicU64::new(0),
            batch_done: Notify::new(),
        })
    }

    /// The last stage's handler.
    #[inline]
    pub(crate) fn receive(&self, payload: Payload) {
        black_box(payload.0);
        // Only the last stage writes: an uncontended add.
        let received = self.received.fetch_add(1, Ordering::Relaxed) + 1;
        if received % self.batch == 0 {
            // Stores a permit if the sender is not waiting yet.
            self.batch_done.notify_one();
        }
    }
}

/// One actor library, as the measured loops use it.
pub(crate) trait Peer {
    /// A handle to a counting actor (its handler is [`count`]).
    type Counter: Clone + Send + Sync + 'static;
    /// The handles of a 3-stage pipeline.
    type Pipeline: Send + Sync + 'static;

    /// Spawns a counting actor with the default mailbox.
    fn spawn_counter() -> impl Future<Output = Self::Counter> + Send;
    /// Sends without a reply (waits for room where the mailbox is bounded).
    fn tell(counter: &Self::Counter, payload: Payload) -> impl Future<Output = ()> + Send;
    /// Sends and waits for the reply: the count including this message.
    fn ask(counter: &Self::Counter, payload: Payload) -> impl Future<Output = u64> + Send;
    /// Stops a counter and waits until it has stopped (cleanup, not measured).
    fn shutdown(counter: Self::Counter) -> impl Future<Output = ()> + Send;

    /// Spawns 3 stages: the first two forward every message to the next with a tell, the
    /// last hands it to `sink`.
    fn spawn_pipeline(sink: Arc<Sink>) -> impl Future<Output = Self::Pipeline> + Send;
    /// Tells the first stage.
    fn tell_pipeline(
        pipeline: &Self::Pipeline,
        payload: Payload,
    ) -> impl Future<Output = ()> + Send;
    /// Stops the stages (cleanup, not measured).
    fn shutdown_pipeline(pipeline: Self::Pipeline) -> impl Future<Output = ()> + Send;

    /// Spawns a counting actor, stops it and waits until it has stopped.
    fn spawn_and_stop() -> impl Future<Output = ()> + Send;
}

// ---------------------------------------------------------------------------------------
// flowbed

pub(crate) mod flowbed {
    use std::sync::Arc;

    use flowbed_actor::{Actor, ActorRef, BoxError, Context, Message};

    use super::{Payload, Peer, Sink, count};

    pub(crate) struct Flowbed;

    pub(crate) struct Counter {
        total: u64,
    }

    impl Actor for Counter {
        type Args = ();

        async fn on_start(_: (), _: &mut Context<Self>) -> Result<Self, BoxError> {
            Ok(Self { total: 0 })
        }
    }

    impl Message<Payload> for Counter {
        type Reply = u64;

        async fn handle(&mut self, payload: Payload, _: &mut Context<Self>) -> u64 {
            count(&mut self.total, payload)
        }
    }

    pub(crate) enum Next {
        Stage(ActorRef<Stage>),
        Sink(Arc<Sink>),
    }

    pub(crate) struct Stage {
        next: Next,
    }

    impl Actor for Stage {
        type Args = Next;

        async fn on_start(next: Next, _: &mut Context<Self>) -> Result<Self, BoxError> {
            Ok(Self { next })
        }
    }

    impl Message<Payload> for Stage {
        type Reply = ();

        async fn handle(&mut self, payload: Payload, _: &mut Context<Self>) {
            match &self.next {
                Next::Stage(next) => next.tell(payload).await.expect("next stage alive"),
                Next::Sink(sink) => sink.receive(payload),
            }
        }
    }

    impl Peer for Flowbed {
        type Counter = ActorRef<Counter>;
        type Pipeline = [ActorRef<Stage>; 3];

        async fn spawn_counter() -> ActorRef<Counter> {
            Counter::spawn(())
        }

        async fn tell(counter: &ActorRef<Counter>, payload: Payload) {
            counter.tell(payload).await.expect("flowbed tell");
        }

        async fn ask(counter: &ActorRef<Counter>, payload: Payload) -> u64 {
            counter.ask(payload).await.expect("flowbed ask")
        }

        async fn shutdown(counter: ActorRef<Counter>) {
            counter.stop();
            counter.wait_for_stop().await;
        }

        async fn spawn_pipeline(sink: Arc<Sink>) -> [ActorRef<Stage>; 3] {
            let last = Stage::spawn(Next::Sink(sink));
            let middle = Stage::spawn(Next::Stage(last.clone()));
            let first = Stage::spawn(Next::Stage(middle.clone()));
            [first, middle, last]
        }

        async fn tell_pipeline(pipeline: &[ActorRef<Stage>; 3], payload: Payload) {
            pipeline[0].tell(payload).await.expect("flowbed tell");
        }

        async fn shutdown_pipeline(pipeline: [ActorRef<Stage>; 3]) {
            for stage in pipeline {
                stage.stop();
                stage.wait_for_stop().await;
            }
        }

        async fn spawn_and_stop() {
            let counter = Counter::spawn(());
            counter.stop();
            let reason = counter.wait_for_stop().await;
            assert!(reason.is_normal(), "flowbed actor ended with {reason:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// ractor

pub(crate) mod ractor_peer {
    use std::sync::Arc;

    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, call};

    use super::{Payload, Peer, Sink, count};

    pub(crate) struct Ractor;

    pub(crate) enum CounterMsg {
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

    pub(crate) enum Next {
        Stage(ActorRef<Payload>),
        Sink(Arc<Sink>),
    }

    pub(crate) struct Stage;

    impl Actor for Stage {
        type Msg = Payload;
        type State = Next;
        type Arguments = Next;

        async fn pre_start(
            &self,
            _: ActorRef<Payload>,
            next: Next,
        ) -> Result<Next, ActorProcessingErr> {
            Ok(next)
        }

        async fn handle(
            &self,
            _: ActorRef<Payload>,
            payload: Payload,
            next: &mut Next,
        ) -> Result<(), ActorProcessingErr> {
            match next {
                Next::Stage(next) => next.cast(payload).expect("next stage alive"),
                Next::Sink(sink) => sink.receive(payload),
            }
            Ok(())
        }
    }

    async fn spawn<A: Actor>(actor: A, args: A::Arguments) -> ActorRef<A::Msg> {
        // The join handle is dropped: `stop_and_wait` waits for the end instead.
        let (actor, _) = Actor::spawn(None, actor, args)
            .await
            .unwrap_or_else(|e| panic!("ractor spawn: {e}"));
        actor
    }

    impl Peer for Ractor {
        type Counter = ActorRef<CounterMsg>;
        type Pipeline = [ActorRef<Payload>; 3];

        async fn spawn_counter() -> ActorRef<CounterMsg> {
            spawn(Counter, ()).await
        }

        async fn tell(counter: &ActorRef<CounterMsg>, payload: Payload) {
            if counter.cast(CounterMsg::Tell(payload)).is_err() {
                panic!("ractor cast: actor stopped");
            }
        }

        async fn ask(counter: &ActorRef<CounterMsg>, payload: Payload) -> u64 {
            call!(counter, CounterMsg::Ask, payload).unwrap_or_else(|e| panic!("ractor call: {e}"))
        }

        async fn shutdown(counter: ActorRef<CounterMsg>) {
            counter
                .stop_and_wait(None, None)
                .await
                .unwrap_or_else(|e| panic!("ractor stop: {e}"));
        }

        async fn spawn_pipeline(sink: Arc<Sink>) -> [ActorRef<Payload>; 3] {
            let last = spawn(Stage, Next::Sink(sink)).await;
            let middle = spawn(Stage, Next::Stage(last.clone())).await;
            let first = spawn(Stage, Next::Stage(middle.clone())).await;
            [first, middle, last]
        }

        async fn tell_pipeline(pipeline: &[ActorRef<Payload>; 3], payload: Payload) {
            pipeline[0].cast(payload).expect("ractor cast");
        }

        async fn shutdown_pipeline(pipeline: [ActorRef<Payload>; 3]) {
            for stage in pipeline {
                stage
                    .stop_and_wait(None, None)
                    .await
                    .unwrap_or_else(|e| panic!("ractor stop: {e}"));
            }
        }

        async fn spawn_and_stop() {
            let (actor, ended) = Actor::spawn(None, Counter, ())
                .await
                .unwrap_or_else(|e| panic!("ractor spawn: {e}"));
            actor.stop(None);
            ended.await.expect("ractor actor task");
        }
    }
}

// ---------------------------------------------------------------------------------------
// kameo

pub(crate) mod kameo_peer {
    use std::sync::Arc;

    use kameo::actor::{Actor, ActorRef, Spawn};
    use kameo::error::Infallible;
    use kameo::message::{Context, Message};

    use super::{Payload, Peer, Sink, count};

    pub(crate) struct Kameo;

    pub(crate) struct Counter {
        total: u64,
    }

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
            count(&mut self.total, payload)
        }
    }

    pub(crate) enum Next {
        Stage(ActorRef<Stage>),
        Sink(Arc<Sink>),
    }

    pub(crate) struct Stage {
        next: Next,
    }

    impl Actor for Stage {
        type Args = Self;
        type Error = Infallible;

        async fn on_start(args: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
            Ok(args)
        }
    }

    impl Message<Payload> for Stage {
        type Reply = ();

        async fn handle(&mut self, payload: Payload, _: &mut Context<Self, ()>) {
            match &self.next {
                Next::Stage(next) => next.tell(payload).await.expect("next stage alive"),
                Next::Sink(sink) => sink.receive(payload),
            }
        }
    }

    async fn stop<A: Actor>(actor: &ActorRef<A>) {
        actor.stop_gracefully().await.expect("kameo stop");
        actor.wait_for_shutdown().await;
    }

    impl Peer for Kameo {
        type Counter = ActorRef<Counter>;
        type Pipeline = [ActorRef<Stage>; 3];

        async fn spawn_counter() -> ActorRef<Counter> {
            Counter::spawn(Counter { total: 0 })
        }

        async fn tell(counter: &ActorRef<Counter>, payload: Payload) {
            counter.tell(payload).await.expect("kameo tell");
        }

        async fn ask(counter: &ActorRef<Counter>, payload: Payload) -> u64 {
            counter.ask(payload).await.expect("kameo ask")
        }

        async fn shutdown(counter: ActorRef<Counter>) {
            stop(&counter).await;
        }

        async fn spawn_pipeline(sink: Arc<Sink>) -> [ActorRef<Stage>; 3] {
            let last = Stage::spawn(Stage {
                next: Next::Sink(sink),
            });
            let middle = Stage::spawn(Stage {
                next: Next::Stage(last.clone()),
            });
            let first = Stage::spawn(Stage {
                next: Next::Stage(middle.clone()),
            });
            [first, middle, last]
        }

        async fn tell_pipeline(pipeline: &[ActorRef<Stage>; 3], payload: Payload) {
            pipeline[0].tell(payload).await.expect("kameo tell");
        }

        async fn shutdown_pipeline(pipeline: [ActorRef<Stage>; 3]) {
            for stage in &pipeline {
                stop(stage).await;
            }
        }

        async fn spawn_and_stop() {
            let counter = Counter::spawn(Counter { total: 0 });
            stop(&counter).await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// actix

pub(crate) mod actix_peer {
    use std::sync::Arc;

    use actix::{Actor, Addr, Context, Handler};
    use tokio::sync::oneshot;

    use super::{Payload, Peer, Sink, count};

    pub(crate) struct Actix;

    impl actix::Message for Payload {
        // The count, for the counter's ask; the stages reply 0 (a tell drops it).
        type Result = u64;
    }

    pub(crate) struct Counter {
        total: u64,
        /// Told when the actor has stopped (actix has no other way to wait for it).
        stopped: Option<oneshot::Sender<()>>,
    }

    impl Actor for Counter {
        type Context = Context<Self>;

        fn stopped(&mut self, _: &mut Context<Self>) {
            if let Some(stopped) = self.stopped.take() {
                let _ = stopped.send(());
            }
        }
    }

    impl Handler<Payload> for Counter {
        type Result = u64;

        fn handle(&mut self, payload: Payload, _: &mut Context<Self>) -> u64 {
            count(&mut self.total, payload)
        }
    }

    pub(crate) enum Next {
        Stage(Addr<Stage>),
        Sink(Arc<Sink>),
    }

    pub(crate) struct Stage {
        next: Next,
    }

    impl Actor for Stage {
        type Context = Context<Self>;
    }

    impl Handler<Payload> for Stage {
        type Result = u64;

        fn handle(&mut self, payload: Payload, _: &mut Context<Self>) -> u64 {
            match &self.next {
                Next::Stage(next) => next.do_send(payload),
                Next::Sink(sink) => sink.receive(payload),
            }
            0
        }
    }

    impl Peer for Actix {
        type Counter = Addr<Counter>;
        type Pipeline = Addr<Stage>;

        async fn spawn_counter() -> Addr<Counter> {
            Counter {
                total: 0,
                stopped: None,
            }
            .start()
        }

        async fn tell(counter: &Addr<Counter>, payload: Payload) {
            counter.do_send(payload);
        }

        async fn ask(counter: &Addr<Counter>, payload: Payload) -> u64 {
            counter.send(payload).await.expect("actix send")
        }

        async fn shutdown(counter: Addr<Counter>) {
            // The actor stops once its last address is gone.
            drop(counter);
        }

        async fn spawn_pipeline(sink: Arc<Sink>) -> Addr<Stage> {
            let last = Stage {
                next: Next::Sink(sink),
            }
            .start();
            let middle = Stage {
                next: Next::Stage(last),
            }
            .start();
            Stage {
                next: Next::Stage(middle),
            }
            .start()
        }

        async fn tell_pipeline(first: &Addr<Stage>, payload: Payload) {
            first.do_send(payload);
        }

        async fn shutdown_pipeline(first: Addr<Stage>) {
            // Each stage stops once its last address is gone, dropping the next one's.
            drop(first);
        }

        async fn spawn_and_stop() {
            let (stopped, wait) = oneshot::channel();
            let counter = Counter {
                total: 0,
                stopped: Some(stopped),
            }
            .start();
            drop(counter);
            wait.await.expect("actix actor stopped");
        }
    }
}

// ---------------------------------------------------------------------------------------
// tokio: a task owning an mpsc receiver, by hand

pub(crate) mod tokio_peer {
    use std::sync::Arc;

    use tokio::sync::{mpsc, oneshot};

    use super::{Payload, Peer, Sink, count};

    pub(crate) struct Tokio;

    /// The same bound as flowbed's default mailbox.
    const CAPACITY: usize = 64;

    type Request = (Payload, Option<oneshot::Sender<u64>>);

    fn spawn_counter_task() -> (mpsc::Sender<Request>, tokio::task::JoinHandle<()>) {
        let (sender, mut mailbox) = mpsc::channel::<Request>(CAPACITY);
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

    enum Next {
        Stage(mpsc::Sender<Payload>),
        Sink(Arc<Sink>),
    }

    fn spawn_stage(next: Next) -> mpsc::Sender<Payload> {
        let (sender, mut mailbox) = mpsc::channel::<Payload>(CAPACITY);
        tokio::spawn(async move {
            while let Some(payload) = mailbox.recv().await {
                match &next {
                    Next::Stage(next) => next.send(payload).await.expect("next stage alive"),
                    Next::Sink(sink) => sink.receive(payload),
                }
            }
        });
        sender
    }

    impl Peer for Tokio {
        type Counter = mpsc::Sender<Request>;
        type Pipeline = mpsc::Sender<Payload>;

        async fn spawn_counter() -> mpsc::Sender<Request> {
            spawn_counter_task().0
        }

        async fn tell(counter: &mpsc::Sender<Request>, payload: Payload) {
            if counter.send((payload, None)).await.is_err() {
                panic!("tokio send: task stopped");
            }
        }

        async fn ask(counter: &mpsc::Sender<Request>, payload: Payload) -> u64 {
            let (reply, answer) = oneshot::channel();
            if counter.send((payload, Some(reply))).await.is_err() {
                panic!("tokio send: task stopped");
            }
            answer.await.expect("tokio reply")
        }

        async fn shutdown(counter: mpsc::Sender<Request>) {
            // The task ends once every sender is gone.
            drop(counter);
        }

        async fn spawn_pipeline(sink: Arc<Sink>) -> mpsc::Sender<Payload> {
            let last = spawn_stage(Next::Sink(sink));
            let middle = spawn_stage(Next::Stage(last));
            spawn_stage(Next::Stage(middle))
        }

        async fn tell_pipeline(first: &mpsc::Sender<Payload>, payload: Payload) {
            first.send(payload).await.expect("tokio send");
        }

        async fn shutdown_pipeline(first: mpsc::Sender<Payload>) {
            drop(first);
        }

        async fn spawn_and_stop() {
            let (sender, task) = spawn_counter_task();
            drop(sender);
            task.await.expect("tokio task");
        }
    }
}

pub(crate) use actix_peer::Actix;
pub(crate) use flowbed::Flowbed;
pub(crate) use kameo_peer::Kameo;
pub(crate) use ractor_peer::Ractor;
pub(crate) use tokio_peer::Tokio;

// ---------------------------------------------------------------------------------------
// Where the actors run.

/// The runtime a peer's actors and sender run on.
pub(crate) enum Exec<'a> {
    /// A task spawned on the group's 2-worker tokio runtime.
    Tokio(&'a Runtime),
    /// The group's `actix::System`: its single-threaded arbiter runs the actors, and the
    /// sender runs on the same thread.
    Actix(&'a actix::SystemRunner),
}

impl Exec<'_> {
    pub(crate) fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Exec::Tokio(runtime) => runtime.block_on(async move {
                tokio::spawn(future).await.expect("a bench task panicked")
            }),
            Exec::Actix(system) => system.block_on(future),
        }
    }
}
