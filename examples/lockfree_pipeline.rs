//! Producer threads → bounded lock-free channel → consumer threads.
//!
//! Each producer sends its share of event ids; consumers receive until the channel closes.
//! The bound gives backpressure: when consumers fall behind, producers park instead of
//! queueing without limit. At the end every id is checked off exactly once and the
//! throughput is printed.
//!
//! ```text
//! cargo run --release --example lockfree_pipeline -- --events 10000000 --producers 2 --consumers 2
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;
use std::time::Instant;

use flowbed::lockfree::channel;

struct Args {
    events: u64,
    producers: u64,
    consumers: u64,
    capacity: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        events: 5_000_000,
        producers: 2,
        consumers: 2,
        capacity: 4096,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: `{value}` is not a whole number"))?;
        match flag.as_str() {
            "--events" => args.events = number,
            "--producers" => args.producers = number,
            "--consumers" => args.consumers = number,
            "--capacity" => args.capacity = number as usize,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.producers == 0 || args.consumers == 0 || args.capacity == 0 {
        return Err("--producers, --consumers and --capacity must be at least 1".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("lockfree_pipeline: {error}");
            eprintln!(
                "usage: lockfree_pipeline [--events N] [--producers N] [--consumers N] [--capacity N]"
            );
            return ExitCode::from(2);
        }
    };

    let (tx, rx) = channel::bounded::<u64>(args.capacity);
    // One flag per event id: consumers count how often they saw each one.
    let seen: Vec<AtomicU8> = (0..args.events).map(|_| AtomicU8::new(0)).collect();

    let started = Instant::now();
    let received: u64 = thread::scope(|scope| {
        for producer in 0..args.producers {
            let tx = tx.clone();
            let (from, to) = (
                args.events * producer / args.producers,
                args.events * (producer + 1) / args.producers,
            );
            scope.spawn(move || {
                for id in from..to {
                    tx.send_blocking(id).expect("consumers outlive producers");
                }
            });
        }
        // Dropping the last sender closes the channel once the producers finish.
        drop(tx);

        let consumers: Vec<_> = (0..args.consumers)
            .map(|_| {
                let rx = rx.clone();
                let seen = &seen;
                scope.spawn(move || {
                    let mut count = 0u64;
                    while let Ok(id) = rx.recv_blocking() {
                        seen[id as usize].fetch_add(1, Ordering::Relaxed);
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        consumers.into_iter().map(|c| c.join().unwrap()).sum()
    });
    let elapsed = started.elapsed();

    let lost = seen
        .iter()
        .filter(|flag| flag.load(Ordering::Relaxed) == 0)
        .count();
    let duplicated = seen
        .iter()
        .filter(|flag| flag.load(Ordering::Relaxed) > 1)
        .count();
    let rate = args.events as f64 / elapsed.as_secs_f64();
    println!(
        "events: {}  producers: {}  consumers: {}  capacity: {}",
        args.events, args.producers, args.consumers, args.capacity
    );
    println!(
        "elapsed: {:.1} ms  throughput: {:.2} M events/s",
        elapsed.as_secs_f64() * 1e3,
        rate / 1e6
    );
    println!(
        "summary: sent={} received={received} lost={lost} duplicated={duplicated}",
        args.events
    );
    if lost == 0 && duplicated == 0 && received == args.events {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
