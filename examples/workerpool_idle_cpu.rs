//! How much CPU a big, mostly idle worker pool burns: 16 workers, one tiny job per
//! millisecond for 2 seconds.
//!
//! Idle workers spin for a few microseconds before they park, and every job wakes one of
//! them; a pool that woke too many, or spun too long, would burn a core doing nothing. The
//! process's CPU time (utime + stime from `/proc/self/stat`, Linux only) is read before
//! and after the window; the example fails if it used 5 % of one core or more.
//!
//! ```text
//! cargo run --release --example workerpool_idle_cpu
//! ```

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use flowbed::workerpool::WorkerPool;

/// Worker threads (core = max, so none retire during the window).
const THREADS: usize = 16;
/// How long jobs keep coming.
const WINDOW: Duration = Duration::from_secs(2);
/// One job per period.
const PERIOD: Duration = Duration::from_millis(1);
/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux platform Rust supports.
const CLOCK_TICKS_PER_SECOND: u64 = 100;
/// Fail at or above this share of one core.
const LIMIT_PERCENT: f64 = 5.0;

/// CPU time this process has used so far (user + system), in clock ticks.
fn cpu_ticks() -> Result<u64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|error| format!("reading /proc/self/stat: {error}"))?;
    // Field 2, the command name, is in parentheses and may contain spaces: count fields
    // from the last ')'. What follows starts with field 3 (state).
    let rest = stat
        .rfind(')')
        .map(|end| &stat[end + 1..])
        .ok_or("no ')' in /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |number: usize| -> Result<u64, String> {
        let text = fields
            .get(number - 3)
            .ok_or_else(|| format!("/proc/self/stat has no field {number}"))?;
        text.parse()
            .map_err(|_| format!("field {number} of /proc/self/stat is `{text}`"))
    };
    // Fields 14 and 15: utime and stime.
    Ok(field(14)? + field(15)?)
}

fn run() -> Result<f64, String> {
    let pool = WorkerPool::builder()
        .core_threads(THREADS)
        .max_threads(THREADS)
        .build()
        .map_err(|error| format!("building the pool: {error}"))?;
    // Let the workers start and settle into their parked state before measuring.
    thread::sleep(Duration::from_millis(100));

    let ran = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_ticks()?;
    let began = Instant::now();
    let mut jobs = 0;
    let mut next = began;
    while next.duration_since(began) < WINDOW {
        let ran = Arc::clone(&ran);
        pool.execute(move || {
            black_box(ran.fetch_add(1, Ordering::Relaxed));
        })
        .map_err(|error| format!("submitting job {jobs}: {error}"))?;
        jobs += 1;
        next += PERIOD;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    // Every job has run before the window closes.
    while ran.load(Ordering::Relaxed) < jobs {
        thread::sleep(Duration::from_millis(1));
    }
    let wall = began.elapsed();
    let cpu_after = cpu_ticks()?;

    let cpu_ms = (cpu_after - cpu_before) * 1000 / CLOCK_TICKS_PER_SECOND;
    let wall_ms = wall.as_secs_f64() * 1000.0;
    let percent = cpu_ms as f64 / wall_ms * 100.0;
    println!(
        "idle_cpu: jobs={jobs} cpu_ms={cpu_ms} wall_ms={wall_ms:.0} cpu_percent_of_one_core={percent:.2}"
    );
    pool.shutdown();
    if !pool.await_termination(Duration::from_secs(5)) {
        return Err("the pool did not terminate within 5 s".to_owned());
    }
    Ok(percent)
}

fn main() -> ExitCode {
    match run() {
        Ok(percent) if percent < LIMIT_PERCENT => ExitCode::SUCCESS,
        Ok(percent) => {
            eprintln!(
                "idle_cpu: {percent:.2} % of one core is at or above the {LIMIT_PERCENT} % limit"
            );
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("idle_cpu: {message}");
            ExitCode::FAILURE
        }
    }
}
