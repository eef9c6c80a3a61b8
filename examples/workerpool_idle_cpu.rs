//! How much CPU a big, mostly idle worker pool burns: 16 workers, one tiny job per
//! millisecond for 4 seconds.
//!
//! Idle workers spin for a few microseconds before they park, and every job wakes one of
//! them; a pool that woke too many, or spun too long, would burn a core doing nothing. The
//! worker threads' CPU time (utime + stime from `/proc/self/task/*/stat`, Linux only;
//! the submitting loop is not the pool's cost) is read before and after the window; the
//! example fails if the pool used 5 % of one core or more.
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
const WINDOW: Duration = Duration::from_secs(4);
/// One job per period.
const PERIOD: Duration = Duration::from_millis(1);
/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux platform Rust supports.
const CLOCK_TICKS_PER_SECOND: u64 = 100;
/// Fail at or above this share of one core.
const LIMIT_PERCENT: f64 = 5.0;

/// CPU time (user + system, in clock ticks) used so far by the pool's worker threads:
/// the threads of this process named `flowbed-worker-*`. The pacing loop of `run` is not
/// the pool's cost and is left out.
fn worker_cpu_ticks() -> Result<u64, String> {
    let tasks = std::fs::read_dir("/proc/self/task")
        .map_err(|error| format!("reading /proc/self/task: {error}"))?;
    let mut ticks = 0;
    for task in tasks {
        let path = task.map_err(|error| error.to_string())?.path().join("stat");
        // A thread may exit between listing and reading: skip it.
        let Ok(stat) = std::fs::read_to_string(&path) else {
            continue;
        };
        // Field 2, the command name, is in parentheses and may contain spaces: count
        // fields from the last ')'. What follows starts with field 3 (state).
        let (open, close) = match (stat.find('('), stat.rfind(')')) {
            (Some(open), Some(close)) if open < close => (open, close),
            _ => return Err(format!("no (name) in {}", path.display())),
        };
        if !stat[open + 1..close].starts_with("flowbed-worker") {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let field = |number: usize| -> Result<u64, String> {
            let text = fields
                .get(number - 3)
                .ok_or_else(|| format!("{} has no field {number}", path.display()))?;
            text.parse()
                .map_err(|_| format!("field {number} of {} is `{text}`", path.display()))
        };
        // Fields 14 and 15: utime and stime.
        ticks += field(14)? + field(15)?;
    }
    Ok(ticks)
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
    let cpu_before = worker_cpu_ticks()?;
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
    let cpu_after = worker_cpu_ticks()?;

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
