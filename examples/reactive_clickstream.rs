//! Page views per page per 10 seconds of event time, from an out-of-order click stream.
//!
//! A generator produces clicks whose timestamps arrive up to 2 s out of order; 4 in 1,000
//! arrive 5 s late (their window may have fired: it fires again, updated) and 1 in 1,000
//! arrives 60 s late (a phone that was offline). The pipeline parses on its
//! own task (`async_boundary`), counts views in 10 s tumbling event-time windows per page
//! with a 2 s bounded-out-of-orderness watermark and 5 s allowed lateness, and sends
//! clicks too late for any window to the side output. At the end the example checks that
//! every click was counted in exactly one final window result or came out on the side
//! output: nothing lost, nothing counted twice.
//!
//! Run: `cargo run --release --example reactive_clickstream [-- --clicks N]`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use flowbed::reactive::Flow;
use flowbed::reactive::window::{Count, Firing, Watermarks, WindowEvent, WindowSpec};

const PAGES: [&str; 5] = ["/", "/search", "/product", "/cart", "/checkout"];

/// A click as the ingest tier would hand it over: raw text.
fn raw_clicks(count: u64) -> impl Iterator<Item = String> + Send + 'static {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next_random = move || {
        // xorshift64*: deterministic, good enough for a workload.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..count).map(move |n| {
        let on_time = n as i64; // one click per millisecond of event time
        let jitter = (next_random() % 2_000) as i64; // up to 2 s out of order
        let timestamp = match next_random() % 1_000 {
            0 => on_time - 60_000,    // an offline phone: beyond the allowed lateness
            1..=4 => on_time - 5_000, // a slow partition: late, within the lateness
            _ => on_time - jitter,
        };
        let page = PAGES[(next_random() % PAGES.len() as u64) as usize];
        format!("{timestamp} {page}")
    })
}

#[derive(Debug, Clone)]
struct Click {
    timestamp: i64,
    page: &'static str,
}

fn parse(line: String) -> Click {
    let (timestamp, page) = line
        .split_once(' ')
        .expect("generated clicks have two fields");
    Click {
        timestamp: timestamp.parse().expect("generated timestamps are numbers"),
        page: PAGES
            .into_iter()
            .find(|known| *known == page)
            .expect("known page"),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let clicks: u64 = std::env::args()
        .skip_while(|arg| arg != "--clicks")
        .nth(1)
        .map(|n| n.parse().expect("--clicks takes a number"))
        .unwrap_or(1_000_000);

    let started = Instant::now();
    // (page, window start) -> the latest count fired for it (a late firing replaces it).
    let mut final_counts: HashMap<(&'static str, i64), u64> = HashMap::new();
    let mut late_side_output = 0u64;
    let mut firings = [0u64; 2];
    Flow::iter(raw_clicks(clicks))
        .map(parse)
        .async_boundary(4096)
        .windowed(WindowSpec::tumbling(Duration::from_secs(10)))
        .event_time(
            |click: &Click| click.timestamp,
            Watermarks::bounded(Duration::from_secs(2)),
        )
        .key_by(|click| click.page)
        .allowed_lateness(Duration::from_secs(5))
        .aggregate(Count)
        .for_each(|event| match event {
            WindowEvent::Fired(result) => {
                firings[usize::from(result.firing == Firing::Late)] += 1;
                final_counts.insert((result.key, result.window.start), result.value);
            }
            WindowEvent::Late(_) => late_side_output += 1,
        })
        .await
        .expect("the pipeline does not fail");
    let elapsed = started.elapsed();

    let counted: u64 = final_counts.values().sum();
    println!(
        "{clicks} clicks in {:.2?} ({:.2} M clicks/s): {} windows ({} on time, {} late re-firings), \
         {counted} counted, {late_side_output} on the late side output",
        elapsed,
        clicks as f64 / elapsed.as_secs_f64() / 1e6,
        final_counts.len(),
        firings[0],
        firings[1],
    );
    assert_eq!(
        counted + late_side_output,
        clicks,
        "every click is counted once or comes out as late"
    );
    if clicks >= 100_000 {
        assert!(late_side_output > 0, "the generator sends very late clicks");
        assert!(
            firings[1] > 0,
            "late clicks within the lateness re-fire their windows"
        );
    }
}
