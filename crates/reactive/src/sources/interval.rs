//! Flows driven by the clock: [`Flow::interval`], [`Flow::interval_with`], [`Flow::timer`];
//! and the one-shot alarm the time operators (`batch`, `debounce`, `sample`, `timeout`,
//! `retry`) share.
//!
//! Time is `tokio::time`, so tests can run on a paused clock
//! (`#[tokio::test(start_paused = true)]`). Both sources start their clock at the first
//! poll, not when the flow is built: a flow is lazy.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, Sleep};

use crate::source::{Emit, Source, Step};
use crate::sources::iter::{YIELD_EVERY, yield_now};
use crate::{Error, Flow};

/// `Err(Error::NoRuntime)` outside a tokio runtime (where creating a timer would panic).
pub(crate) fn require_runtime() -> Result<(), Error> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|_| Error::NoRuntime)
}

/// `instant + delay`, or about 30 years from `instant` when that overflows (tokio's own
/// "far future"): a huge delay means "never", not a panic.
pub(crate) fn later(instant: Instant, delay: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);
    instant
        .checked_add(delay.min(FAR_FUTURE))
        .unwrap_or(instant)
}

/// A reusable one-shot timer for operators: the `Sleep` is boxed once, on first use, and
/// only polled while armed (an operator with nothing pending polls no timer).
///
/// Re-arming later than the current deadline does not touch tokio's timer wheel: the
/// sleep fires at the old deadline, sees the target moved and re-arms then. So an operator
/// that pushes its deadline back on every item (`debounce`, `timeout`) costs one timer
/// update per deadline, not one per item. The price: after [`disarm`](Alarm::disarm) a
/// sleep still registered may wake the task once, spuriously (sources allow that).
#[derive(Debug, Default)]
pub(crate) struct Alarm {
    sleep: Option<Pin<Box<Sleep>>>,
    target: Option<Instant>,
}

impl Alarm {
    /// Arms (or re-arms) the alarm for `deadline`. Fails only outside a tokio runtime.
    pub(crate) fn arm_at(&mut self, deadline: Instant) -> Result<(), Error> {
        match self.sleep.as_mut() {
            Some(sleep) => {
                if deadline < sleep.deadline() {
                    sleep.as_mut().reset(deadline);
                }
            }
            None => {
                require_runtime()?;
                self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline)));
            }
        }
        self.target = Some(deadline);
        Ok(())
    }

    /// Arms the alarm for `delay` from now; a delay too long for the clock (such as
    /// `Duration::MAX`) means "never" rather than an overflow.
    pub(crate) fn arm_after(&mut self, delay: Duration) -> Result<(), Error> {
        self.arm_at(later(Instant::now(), delay))
    }

    /// Forgets the deadline: [`poll_fired`](Alarm::poll_fired) says `false` until re-armed.
    pub(crate) fn disarm(&mut self) {
        self.target = None;
    }

    /// Whether a deadline is set.
    pub(crate) fn is_armed(&self) -> bool {
        self.target.is_some()
    }

    /// `true` once the deadline passed (the alarm is then disarmed); otherwise registers
    /// `cx`'s waker for the deadline. Never polls the timer when disarmed.
    pub(crate) fn poll_fired(&mut self, cx: &mut Context<'_>) -> bool {
        let (Some(target), Some(sleep)) = (self.target, self.sleep.as_mut()) else {
            return false;
        };
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if sleep.deadline() >= target {
                self.target = None;
                return true;
            }
            // The deadline was pushed back since the sleep was set: wait for the new one.
            sleep.as_mut().reset(target);
        }
    }
}

/// The source of [`Flow::interval`]: `0, 1, 2, …` one per tick.
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    behavior: MissedTickBehavior,
    ticks: Option<tokio::time::Interval>,
    next: u64,
}

impl Source for Interval {
    type Item = u64;

    fn poll_emit<E: Emit<u64>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let ticks = match self.ticks.as_mut() {
            Some(ticks) => ticks,
            None => {
                require_runtime()?;
                let mut ticks = tokio::time::interval(self.period);
                ticks.set_missed_tick_behavior(self.behavior);
                self.ticks.insert(ticks)
            }
        };
        // Only `Burst` can have many ticks ready at once; bound them like any busy source.
        for _ in 0..YIELD_EVERY {
            if ticks.poll_tick(cx).is_pending() {
                return Poll::Pending;
            }
            let item = self.next;
            self.next = self.next.wrapping_add(1);
            if emit.emit(item).is_break() {
                return Poll::Ready(Ok(Step::Paused));
            }
        }
        yield_now(cx)
    }
}

/// The source of [`Flow::timer`]: one `()` after a delay.
#[derive(Debug)]
pub struct Timer {
    delay: Duration,
    alarm: Option<Alarm>,
    /// The item went out (the end is due).
    fired: bool,
}

impl Source for Timer {
    type Item = ();

    fn poll_emit<E: Emit<()>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        if self.fired {
            return Poll::Ready(Ok(Step::Ended));
        }
        let alarm = match self.alarm.as_mut() {
            Some(alarm) => alarm,
            None => {
                let mut alarm = Alarm::default();
                alarm.arm_after(self.delay)?;
                self.alarm.insert(alarm)
            }
        };
        if !alarm.poll_fired(cx) {
            return Poll::Pending;
        }
        self.fired = true;
        // The end comes in the same call unless the item filled downstream (the contract:
        // nothing but `Paused` after a `Break`); then it comes on the next poll.
        match emit.emit(()) {
            ControlFlow::Continue(()) => Poll::Ready(Ok(Step::Ended)),
            ControlFlow::Break(()) => Poll::Ready(Ok(Step::Paused)),
        }
    }
}

impl Flow<Interval> {
    /// A flow of `0, 1, 2, …`, one every `period`, the first at once (at the first poll).
    ///
    /// Ticks follow [`tokio::time::interval`] with [`MissedTickBehavior::Delay`]: when
    /// the consumer falls behind, a missed tick is delivered as soon as it is asked for
    /// and the next one comes a full `period` later. No burst of catch-up ticks, and no
    /// ticks pile up while downstream does not ask: an interval never emits more than
    /// downstream accepts. Needs a tokio runtime with time enabled; without one the flow
    /// fails with [`Error::NoRuntime`].
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_reactive::Flow;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ticks = Flow::interval(Duration::from_millis(1)).take(3).collect::<Vec<_>>().await;
    /// assert_eq!(ticks.unwrap(), [0, 1, 2]);
    /// # }
    /// ```
    pub fn interval(period: Duration) -> Self {
        Self::interval_with(period, MissedTickBehavior::Delay)
    }

    /// [`Flow::interval`] with another policy for ticks the consumer missed:
    /// [`MissedTickBehavior::Burst`] catches up with every missed tick at once,
    /// [`MissedTickBehavior::Skip`] keeps the original schedule and drops missed ticks.
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    pub fn interval_with(period: Duration, behavior: MissedTickBehavior) -> Self {
        assert!(
            !period.is_zero(),
            "Flow::interval: `period` must be non-zero"
        );
        Flow::from_source(Interval {
            period,
            behavior,
            ticks: None,
            next: 0,
        })
    }
}

impl Flow<Timer> {
    /// A flow of one `()` emitted `delay` after the first poll, then the end (Go's
    /// `time.After`, Reactor's `Mono.delay`). Needs a tokio runtime with time enabled;
    /// without one the flow fails with [`Error::NoRuntime`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_reactive::Flow;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let fired = Flow::timer(Duration::from_millis(1)).map(|()| "late").collect::<Vec<_>>().await;
    /// assert_eq!(fired.unwrap(), ["late"]);
    /// # }
    /// ```
    pub fn timer(delay: Duration) -> Self {
        Flow::from_source(Timer {
            delay,
            alarm: None,
            fired: false,
        })
    }
}
