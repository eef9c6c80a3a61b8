//! Property tests: the window operator against a deliberately naive reference model, on
//! random out-of-order streams with random punctuated watermarks and random lateness.
//!
//! The model keeps the list of accepted events (per window for tumbling/sliding, per key
//! for sessions) and recomputes every fired window from that list.

use std::collections::BTreeMap;
use std::time::Duration;

use flowbed_reactive::Flow;
use flowbed_reactive::window::{
    Collect, Firing, Timestamp, Watermarks, Window, WindowEvent, WindowSpec,
};
use proptest::prelude::*;

/// A test event: a unique id, a key, an event time and maybe a watermark after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ev {
    id: u32,
    key: u8,
    ts: Timestamp,
    mark: Option<Timestamp>,
}

/// `(key, window, sorted ids, firing)`
type Fired = (u8, Window, Vec<u32>, Firing);

/// The operator's output, as sorted fired windows and sorted late ids.
fn run(events: &[Ev], spec: WindowSpec, lateness: Timestamp) -> (Vec<Fired>, Vec<u32>) {
    let output = futures::executor::block_on(
        Flow::iter(events.to_vec())
            .windowed(spec)
            .event_time(|e: &Ev| e.ts, Watermarks::from_fn(|e: &Ev| e.mark))
            .key_by(|e| e.key)
            .allowed_lateness(Duration::from_millis(lateness as u64))
            .aggregate(Collect)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let mut fired = Vec::new();
    let mut late = Vec::new();
    for event in output {
        match event {
            WindowEvent::Fired(result) => {
                let mut ids: Vec<u32> = result.value.iter().map(|e| e.id).collect();
                ids.sort();
                fired.push((result.key, result.window, ids, result.firing));
            }
            WindowEvent::Late(e) => late.push(e.id),
        }
    }
    fired.sort();
    late.sort();
    (fired, late)
}

fn max_ts(window: &Window) -> Timestamp {
    window.end - 1
}

/// The windows `[s, s + size)` with `s` a multiple of `slide` that hold `ts`.
fn windows_of(ts: Timestamp, size: Timestamp, slide: Timestamp) -> Vec<Window> {
    let mut start = ts - ts.rem_euclid(slide);
    let mut windows = Vec::new();
    while start + size > ts {
        windows.push(Window {
            start,
            end: start + size,
        });
        start -= slide;
    }
    windows
}

/// The naive model of tumbling and sliding windows.
fn model_fixed(
    events: &[Ev],
    size: Timestamp,
    slide: Timestamp,
    lateness: Timestamp,
) -> (Vec<Fired>, Vec<u32>) {
    let mut watermark = Timestamp::MIN;
    // (key, window, id) for every event a window accepted.
    let mut members: Vec<(u8, Window, u32)> = Vec::new();
    let mut fired = Vec::new();
    let mut late = Vec::new();
    let contents = |members: &[(u8, Window, u32)], key: u8, window: Window| {
        let mut ids: Vec<u32> = members
            .iter()
            .filter(|m| m.0 == key && m.1 == window)
            .map(|m| m.2)
            .collect();
        ids.sort();
        ids
    };
    let advance = |to: Timestamp,
                   watermark: &mut Timestamp,
                   members: &[(u8, Window, u32)],
                   fired: &mut Vec<Fired>| {
        if to <= *watermark {
            return;
        }
        let mut due: Vec<(u8, Window)> = members
            .iter()
            .filter(|m| max_ts(&m.1) > *watermark && max_ts(&m.1) <= to)
            .map(|m| (m.0, m.1))
            .collect();
        due.sort();
        due.dedup();
        for (key, window) in due {
            fired.push((key, window, contents(members, key, window), Firing::OnTime));
        }
        *watermark = to;
    };
    for e in events {
        let live: Vec<Window> = windows_of(e.ts, size, slide)
            .into_iter()
            .filter(|w| max_ts(w).saturating_add(lateness) > watermark)
            .collect();
        if live.is_empty() {
            late.push(e.id);
        } else {
            for window in &live {
                members.push((e.key, *window, e.id));
            }
            for window in live.iter().filter(|w| max_ts(w) <= watermark) {
                fired.push((
                    e.key,
                    *window,
                    contents(&members, e.key, *window),
                    Firing::Late,
                ));
            }
        }
        if let Some(mark) = e.mark {
            advance(mark, &mut watermark, &members, &mut fired);
        }
    }
    advance(Timestamp::MAX, &mut watermark, &members, &mut fired);
    fired.sort();
    late.sort();
    (fired, late)
}

/// Sessions of a set of `(ts, id)`: sorted, split where the next event is more than
/// `gap` after the previous one (windows `[t, t + gap)` that touch merge).
fn sessions(pool: &[(Timestamp, u32)], gap: Timestamp) -> Vec<(Window, Vec<u32>)> {
    let mut sorted = pool.to_vec();
    sorted.sort();
    let mut out: Vec<(Window, Vec<u32>)> = Vec::new();
    for (ts, id) in sorted {
        match out.last_mut() {
            Some((window, ids)) if ts <= window.end => {
                window.end = window.end.max(ts + gap);
                ids.push(id);
            }
            _ => out.push((
                Window {
                    start: ts,
                    end: ts + gap,
                },
                vec![id],
            )),
        }
    }
    for (_, ids) in &mut out {
        ids.sort();
    }
    out
}

/// The naive model of session windows: per key, the live accepted events; sessions are
/// recomputed from them whenever needed.
fn model_sessions(events: &[Ev], gap: Timestamp, lateness: Timestamp) -> (Vec<Fired>, Vec<u32>) {
    let mut watermark = Timestamp::MIN;
    let mut pools: BTreeMap<u8, Vec<(Timestamp, u32)>> = BTreeMap::new();
    let mut fired = Vec::new();
    let mut late = Vec::new();
    let advance = |to: Timestamp,
                   watermark: &mut Timestamp,
                   pools: &mut BTreeMap<u8, Vec<(Timestamp, u32)>>,
                   fired: &mut Vec<Fired>| {
        if to <= *watermark {
            return;
        }
        for (&key, pool) in pools.iter_mut() {
            let mut keep = Vec::new();
            for (window, ids) in sessions(pool, gap) {
                if max_ts(&window) > *watermark && max_ts(&window) <= to {
                    fired.push((key, window, ids.clone(), Firing::OnTime));
                }
                if max_ts(&window).saturating_add(lateness) > to {
                    keep.extend(pool.iter().filter(|(_, id)| ids.contains(id)).copied());
                }
            }
            *pool = keep;
        }
        *watermark = to;
    };
    for e in events {
        let pool = pools.entry(e.key).or_default();
        let mut with = pool.clone();
        with.push((e.ts, e.id));
        let (window, ids) = sessions(&with, gap)
            .into_iter()
            .find(|(_, ids)| ids.contains(&e.id))
            .unwrap();
        let joins_existing = ids.len() > 1;
        if !joins_existing && (e.ts + gap - 1).saturating_add(lateness) <= watermark {
            late.push(e.id);
        } else {
            *pool = with;
            if max_ts(&window) <= watermark {
                fired.push((e.key, window, ids, Firing::Late));
            }
        }
        if let Some(mark) = e.mark {
            advance(mark, &mut watermark, &mut pools, &mut fired);
        }
    }
    advance(Timestamp::MAX, &mut watermark, &mut pools, &mut fired);
    fired.sort();
    late.sort();
    (fired, late)
}

/// Random out-of-order events: timestamps drift upward with random jitter backwards,
/// watermarks now and then, somewhere around the recent timestamps (also above them).
fn events(keys: u8) -> impl Strategy<Value = Vec<Ev>> {
    proptest::collection::vec(
        (
            0..keys,
            0i64..12,
            0i64..40,
            prop::option::weighted(0.3, -30i64..10),
        ),
        0..60,
    )
    .prop_map(|raw| {
        let mut clock = 0;
        raw.into_iter()
            .enumerate()
            .map(|(id, (key, step, back, mark))| {
                clock += step;
                Ev {
                    id: id as u32,
                    key,
                    ts: clock - back,
                    mark: mark.map(|offset| clock + offset),
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tumbling_matches_model(
        keys in 1u8..=3,
        events in events(3),
        size in 1i64..30,
        lateness in prop_oneof![Just(0i64), 0i64..40],
    ) {
        let events: Vec<Ev> = events.into_iter().map(|e| Ev { key: e.key % keys, ..e }).collect();
        let got = run(&events, WindowSpec::tumbling(Duration::from_millis(size as u64)), lateness);
        prop_assert_eq!(got, model_fixed(&events, size, size, lateness));
    }

    #[test]
    fn sliding_matches_model(
        keys in 1u8..=3,
        events in events(3),
        slide in 1i64..12,
        factor in 1i64..6,
        extra in prop_oneof![Just(0i64), 0i64..12],
        lateness in prop_oneof![Just(0i64), 0i64..40],
    ) {
        // size a multiple of slide (pane = slide) or not (pane = gcd).
        let size = slide * factor + extra.min(slide - 1).max(0);
        let events: Vec<Ev> = events.into_iter().map(|e| Ev { key: e.key % keys, ..e }).collect();
        let spec = WindowSpec::sliding(
            Duration::from_millis(size as u64),
            Duration::from_millis(slide as u64),
        );
        let got = run(&events, spec, lateness);
        prop_assert_eq!(got, model_fixed(&events, size, slide, lateness));
    }

    #[test]
    fn session_matches_model(
        keys in 1u8..=3,
        events in events(3),
        gap in 1i64..20,
        lateness in prop_oneof![Just(0i64), 0i64..40],
    ) {
        let events: Vec<Ev> = events.into_iter().map(|e| Ev { key: e.key % keys, ..e }).collect();
        let got = run(&events, WindowSpec::session(Duration::from_millis(gap as u64)), lateness);
        prop_assert_eq!(got, model_sessions(&events, gap, lateness));
    }
}
