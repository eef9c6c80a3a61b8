//! The default clock: the CPU's time-stamp counter where the kernel itself trusts it,
//! `std::time::Instant` everywhere else.
//!
//! Reading `Instant` costs a `clock_gettime` call (about 25 ns on the 2-core VMs we
//! measure on) — more than the rest of a GCRA check. `rdtsc` costs about a third of that.
//! governor gets the same speed from `quanta`, which trusts the TSC whenever the CPU
//! advertises an invariant one; its users hit readings that go backwards across cores
//! (governor #299). This clock uses the TSC only when Linux chose it as the system
//! clocksource (so the kernel has verified that the counters agree across CPUs and
//! watches them), scales it with a calibration against `Instant`, and never returns a
//! reading below the previous one on the same thread.

use std::sync::OnceLock;
use std::time::Instant;

use crate::clock::Clock;

/// The default limiter clock: monotonic nanoseconds since the first clock in the process
/// was made, as cheap to read as the platform allows.
///
/// On Linux x86-64 with the `tsc` clocksource it reads the time-stamp counter (calibrated
/// against `Instant` once per process, for 5 ms, when the first `MonotonicClock` is made);
/// elsewhere it reads `std::time::Instant`. Either way a reading is never smaller than
/// the previous one on the same thread.
///
/// # Examples
///
/// ```
/// use flowbed_ratelimit::{Clock, MonotonicClock};
///
/// let clock = MonotonicClock::new();
/// let a = clock.now();
/// let b = clock.now();
/// assert!(b >= a);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    source: Source,
}

#[derive(Debug, Clone, Copy)]
enum Source {
    /// `ns = (tsc - base) * ns_per_tick_q32 >> 32`.
    #[cfg_attr(
        not(all(target_os = "linux", target_arch = "x86_64", not(miri))),
        allow(dead_code)
    )]
    Tsc {
        base: u64,
        ns_per_tick_q32: u64,
    },
    Std {
        origin: Instant,
    },
}

static SOURCE: OnceLock<Source> = OnceLock::new();

impl MonotonicClock {
    /// The process-wide clock (the first call calibrates it).
    pub fn new() -> Self {
        Self {
            source: *SOURCE.get_or_init(choose_source),
        }
    }

    /// Whether readings come from the CPU's time-stamp counter (else from `Instant`).
    pub fn uses_tsc(&self) -> bool {
        matches!(self.source, Source::Tsc { .. })
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        match self.source {
            Source::Tsc {
                base,
                ns_per_tick_q32,
            } => {
                let ticks = tsc::read().saturating_sub(base);
                let nanos = ((u128::from(ticks) * u128::from(ns_per_tick_q32)) >> 32) as u64;
                tsc::never_backwards(nanos)
            }
            Source::Std { origin } => origin.elapsed().as_nanos() as u64,
        }
    }
}

fn choose_source() -> Source {
    let origin = Instant::now();
    tsc::calibrate().unwrap_or(Source::Std { origin })
}

#[cfg(all(target_os = "linux", target_arch = "x86_64", not(miri)))]
mod tsc {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use super::Source;

    thread_local! {
        /// The last reading on this thread: readings never go below it.
        static LAST: Cell<u64> = const { Cell::new(0) };
    }

    #[inline]
    pub(super) fn read() -> u64 {
        // SAFETY: `rdtsc` only reads the time-stamp counter; it is present on every
        // x86-64 CPU and has no memory effects.
        #[allow(unsafe_code)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }

    #[inline]
    pub(super) fn never_backwards(nanos: u64) -> u64 {
        LAST.with(|last| {
            let now = nanos.max(last.get());
            last.set(now);
            now
        })
    }

    /// The TSC scale if Linux uses the TSC as its clocksource, measured against `Instant`
    /// over 5 ms.
    pub(super) fn calibrate() -> Option<Source> {
        let clocksource = std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .ok()?;
        if clocksource.trim() != "tsc" {
            return None;
        }
        let (start, start_ticks) = paired_reading();
        std::thread::sleep(Duration::from_millis(5));
        let (end, end_ticks) = paired_reading();
        let ticks = end_ticks.checked_sub(start_ticks).filter(|&t| t > 0)?;
        let nanos = end.duration_since(start).as_nanos();
        let ns_per_tick_q32 = u64::try_from((nanos << 32) / u128::from(ticks)).ok()?;
        Some(Source::Tsc {
            base: start_ticks,
            ns_per_tick_q32,
        })
    }

    /// An `Instant` and the TSC value at (nearly) the same moment: the tightest of a few
    /// bracketing attempts, taking the bracket's midpoint.
    fn paired_reading() -> (Instant, u64) {
        let mut best: Option<(u64, Instant, u64)> = None;
        for _ in 0..16 {
            let before = read();
            let instant = Instant::now();
            let after = read();
            let width = after.wrapping_sub(before);
            if best.is_none_or(|(best_width, _, _)| width < best_width) {
                best = Some((width, instant, before + width / 2));
            }
        }
        let (_, instant, ticks) = best.expect("at least one attempt");
        (instant, ticks)
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64", not(miri))))]
mod tsc {
    use super::Source;

    #[inline]
    pub(super) fn read() -> u64 {
        0
    }

    #[inline]
    pub(super) fn never_backwards(nanos: u64) -> u64 {
        nanos
    }

    pub(super) fn calibrate() -> Option<Source> {
        None
    }
}
