//! flowbed-actor against ractor, kameo and actix, and a hand-written tokio task with an
//! mpsc channel as the floor, in the same run.
//!
//! Groups are `actor_<workload>`, functions are `flowbed`, `ractor`, `kameo`, `actix` and
//! `tokio`, so results sit at `target/criterion/actor_<workload>/<name>/`.
//!
//! | group | one iteration | throughput |
//! |---|---|---|
//! | `actor_tell_throughput` | one sender task tells one actor [`TELL_BATCH`] messages, then asks it once (the ask is queued behind the tells, so its reply means they were all handled) | [`TELL_BATCH`] elements |
//! | `actor_tell_3stage` | one sender task tells the first of 3 actors [`TELL_BATCH`] messages; each stage forwards every message to the next with a tell; the last counts them and signals the sender when it has all of them | [`TELL_BATCH`] elements |
//! | `actor_ask_roundtrip` | one ask, waited for before the next (one sender task, one actor) | 1 element |
//! | `actor_spawn` | spawn an actor, stop it, and wait until it has stopped | 1 element |
//!
//! Equal work for every peer: the message is the same 32-byte [`Payload`], every counting
//! handler is [`count`] (the running count, returned as the reply where there is one), the
//! last pipeline stage is [`Sink::receive`], and the measured loops are the same generic
//! functions ([`tell_batches`], [`pipeline_batches`], [`ask_loop`], [`spawn_loop`]) over the
//! [`Peer`] trait.
//!
//! Runtimes: flowbed, ractor, kameo and tokio run on a tokio multi-thread runtime with 2
//! workers, created once per group; the sender is a task spawned on it (so sender and
//! actor are both runtime tasks). actix cannot run on it: its actors live on an
//! `actix::System` (an `actix_rt` current-thread runtime: one single-threaded arbiter),
//! created once per group, and the sender runs on that same thread.
//!
//! `flowbed_1thread` is flowbed again on a current-thread tokio runtime (sender and actor on
//! one thread), the like-for-like comparison with actix.
//!
//! Mailboxes are each library's default:
//!
//! * flowbed: bounded, 64 messages (`Spawn::DEFAULT_CAPACITY`); `tell` waits for room.
//! * kameo: `Spawn::spawn`'s default, bounded, 64 messages; `tell` waits for room.
//! * ractor: unbounded (its only kind); `cast` never waits.
//! * actix: `Context`'s default (16 messages, enforced only on `send`/`try_send`); its tell
//!   is `do_send`, which queues past the capacity and never waits, so actix runs unbounded
//!   here. Its ask is `send(..).await`.
//! * tokio: `mpsc::channel(64)`, the same bound as flowbed's default, carrying
//!   `(Payload, Option<oneshot::Sender<u64>>)` (a tell sends `None`).
//!
//! Asks wait without a deadline where the library allows it (ractor `call!`, kameo `ask`,
//! actix `send`, tokio); flowbed's `ask` always has one (5 s by default).
//!
//! Stopping (`actor_spawn`): flowbed `stop` + `wait_for_stop`; ractor `stop` + its
//! `JoinHandle`; kameo `stop_gracefully` + `wait_for_shutdown`; actix has no stop from
//! outside: the actor stops when its last `Addr` is dropped, and its `stopped` hook sends
//! on a oneshot the bench waits for; tokio: drop the sender, await the task's `JoinHandle`.
//! ractor's `spawn` waits for `pre_start` itself; the others return at once and start the
//! actor on its task.
//!
//! Run: `cargo bench -p flowbed-benches --bench actor` (`-- --test` runs each once).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use tokio::runtime::Runtime;

/// Tells per iteration of `actor_tell_throughput` and `actor_tell_3stage`.
const TELL_BATCH: u64 = 10_000;

mod actor_peers;

use actor_peers::{Actix, Exec, Flowbed, Kameo, PAYLOAD, Peer, Ractor, Sink, Tokio};

// ---------------------------------------------------------------------------------------
// The measured loops, the same for every peer.

/// `iters` batches of [`TELL_BATCH`] tells, each followed by one ask; asserts every ask saw
/// every message before it.
async fn tell_batches<P: Peer>(counter: P::Counter, iters: u64) -> Duration {
    let before = P::ask(&counter, PAYLOAD).await;
    let start = Instant::now();
    let mut expected = before;
    for _ in 0..iters {
        for _ in 0..TELL_BATCH {
            P::tell(&counter, PAYLOAD).await;
        }
        expected += TELL_BATCH + 1;
        let counted = P::ask(&counter, PAYLOAD).await;
        assert_eq!(counted, expected, "the ask overtook some tells");
    }
    start.elapsed()
}

/// `iters` batches of [`TELL_BATCH`] tells into the pipeline, each waited for at the sink.
async fn pipeline_batches<P: Peer>(
    pipeline: Arc<P::Pipeline>,
    sink: Arc<Sink>,
    iters: u64,
) -> Duration {
    let before = sink.received.load(Ordering::Relaxed);
    let start = Instant::now();
    for _ in 0..iters {
        for _ in 0..TELL_BATCH {
            P::tell_pipeline(&pipeline, PAYLOAD).await;
        }
        sink.batch_done.notified().await;
    }
    let elapsed = start.elapsed();
    assert_eq!(
        sink.received.load(Ordering::Relaxed),
        before + iters * TELL_BATCH,
        "the sink was woken before it had every message"
    );
    elapsed
}

/// `iters` asks, one at a time.
async fn ask_loop<P: Peer>(counter: P::Counter, iters: u64) -> Duration {
    let before = P::ask(&counter, PAYLOAD).await;
    let start = Instant::now();
    let mut last = before;
    for _ in 0..iters {
        last = black_box(P::ask(&counter, PAYLOAD).await);
    }
    let elapsed = start.elapsed();
    assert_eq!(last, before + iters, "an ask was not handled");
    elapsed
}

/// `iters` spawn + stop + wait-until-stopped cycles.
async fn spawn_loop<P: Peer>(iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        P::spawn_and_stop().await;
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------------------
// Where the loops run.

fn multi_thread_runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `bench::<P>` for every peer in order: the tokio-based ones on one 2-worker
/// runtime, actix on its own System, each created once for the group.
macro_rules! for_each_peer {
    ($group:expr, $bench:ident) => {{
        let runtime = multi_thread_runtime(2);
        $bench::<Flowbed>(&mut $group, "flowbed", &Exec::Tokio(&runtime));
        $bench::<Ractor>(&mut $group, "ractor", &Exec::Tokio(&runtime));
        $bench::<Kameo>(&mut $group, "kameo", &Exec::Tokio(&runtime));
        $bench::<Tokio>(&mut $group, "tokio", &Exec::Tokio(&runtime));
        drop(runtime);
        // actix needs its own runtime: an actix_rt System (current-thread tokio runtime
        // with one single-threaded arbiter), created once for the group.
        let system = actix::System::new();
        $bench::<Actix>(&mut $group, "actix", &Exec::Actix(&system));
        drop(system);
        // flowbed on one thread too, for a like-for-like look at actix.
        let single = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        $bench::<Flowbed>(&mut $group, "flowbed_1thread", &Exec::Tokio(&single));
        drop(single);
    }};
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

fn tell_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("actor_tell_throughput");
    group.throughput(Throughput::Elements(TELL_BATCH));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(50);

    fn bench<P: Peer + 'static>(group: &mut Group<'_>, name: &str, exec: &Exec<'_>) {
        let counter = exec.run(P::spawn_counter());
        group.bench_function(name, |b| {
            b.iter_custom(|iters| exec.run(tell_batches::<P>(counter.clone(), iters)))
        });
        exec.run(P::shutdown(counter));
    }

    for_each_peer!(group, bench);
    group.finish();
}

fn tell_3stage(c: &mut Criterion) {
    let mut group = c.benchmark_group("actor_tell_3stage");
    group.throughput(Throughput::Elements(TELL_BATCH));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(50);

    fn bench<P: Peer + 'static>(group: &mut Group<'_>, name: &str, exec: &Exec<'_>) {
        let sink = Sink::new(TELL_BATCH);
        let pipeline = Arc::new(exec.run(P::spawn_pipeline(Arc::clone(&sink))));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                exec.run(pipeline_batches::<P>(
                    Arc::clone(&pipeline),
                    Arc::clone(&sink),
                    iters,
                ))
            })
        });
        let pipeline = Arc::into_inner(pipeline).expect("no loop holds the pipeline");
        exec.run(P::shutdown_pipeline(pipeline));
    }

    for_each_peer!(group, bench);
    group.finish();
}

fn ask_roundtrip(c: &mut Criterion) {
    let mut group = c.benchmark_group("actor_ask_roundtrip");
    group.throughput(Throughput::Elements(1));

    fn bench<P: Peer + 'static>(group: &mut Group<'_>, name: &str, exec: &Exec<'_>) {
        let counter = exec.run(P::spawn_counter());
        group.bench_function(name, |b| {
            b.iter_custom(|iters| exec.run(ask_loop::<P>(counter.clone(), iters)))
        });
        exec.run(P::shutdown(counter));
    }

    for_each_peer!(group, bench);
    group.finish();
}

fn spawn(c: &mut Criterion) {
    let mut group = c.benchmark_group("actor_spawn");
    group.throughput(Throughput::Elements(1));

    fn bench<P: Peer + 'static>(group: &mut Group<'_>, name: &str, exec: &Exec<'_>) {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| exec.run(spawn_loop::<P>(iters)))
        });
    }

    for_each_peer!(group, bench);
    group.finish();
}

criterion_group!(benches, tell_throughput, tell_3stage, ask_roundtrip, spawn);
criterion_main!(benches);
