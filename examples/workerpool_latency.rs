//! Round-trip latency of one job through an idle pool: `submit` + `join`, timed one by
//! one, reported as percentiles (criterion's `workerpool_submit_wait` gives the mean).
//!
//! Run: `cargo run --release --example workerpool_latency [-- --round-trips N]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use flowbed::workerpool::WorkerPool;

fn main() {
    let round_trips: usize = std::env::args()
        .skip_while(|arg| arg != "--round-trips")
        .nth(1)
        .map(|n| n.parse().expect("--round-trips takes a number"))
        .unwrap_or(200_000);
    let pool = WorkerPool::new(2).expect("pool");
    // Warm up: threads started, caches and branch predictors trained.
    for _ in 0..10_000 {
        pool.submit(|| black_box(1u64)).unwrap().join().unwrap();
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(round_trips);
    for n in 0..round_trips as u64 {
        let began = Instant::now();
        let value = pool.submit(move || black_box(n)).unwrap().join().unwrap();
        samples.push(began.elapsed());
        assert_eq!(value, n);
    }
    samples.sort_unstable();
    let percentile = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    println!(
        "submit_wait: round_trips={} p50={:?} p90={:?} p99={:?} p99.9={:?} max={:?}",
        samples.len(),
        percentile(0.50),
        percentile(0.90),
        percentile(0.99),
        percentile(0.999),
        samples[samples.len() - 1],
    );
}
