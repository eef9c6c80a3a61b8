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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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

// The memory report uses the counting actors and `ask` of the shared peers only.
#[allow(dead_code)]
mod actor_peers;

use actor_peers::{Actix, Exec, Flowbed, Kameo, PAYLOAD, Peer, Ractor, Tokio};

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
    let vec_bytes = (n * size_of::<P::Counter>()) as isize;
    for _ in 0..n {
        actors.push(P::spawn_counter().await);
    }
    for actor in &actors {
        assert_eq!(
            P::ask(actor, PAYLOAD).await,
            1,
            "every actor handles its first message"
        );
    }
    let used = live() - baseline - vec_bytes;
    for actor in actors {
        P::shutdown(actor).await;
    }
    // Let the runtime free the tasks that just finished.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Usage {
        live: used,
        left: live() - baseline,
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
            usage::<Flowbed>(&tokio_exec, n),
        ),
        (
            "ractor",
            "unbounded (its only kind)",
            usage::<Ractor>(&tokio_exec, n),
        ),
        (
            "kameo",
            "bounded 64 (`spawn` default)",
            usage::<Kameo>(&tokio_exec, n),
        ),
        (
            "tokio",
            "`mpsc::channel(64)`",
            usage::<Tokio>(&tokio_exec, n),
        ),
        ("actix", "`Context` default (16; `do_send` ignores it)", {
            let system = actix::System::new();
            usage::<Actix>(&Exec::Actix(&system), n)
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
