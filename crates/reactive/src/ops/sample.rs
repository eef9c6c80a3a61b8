//! The latest item per period: [`Flow::sample`].

use std::ops::ControlFlow;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::source::{Emit, Source, Step};
use crate::sources::interval::{Alarm, later};
use crate::sources::iter::yield_now;
use crate::{Error, Flow};

/// The source of [`Flow::sample`].
pub struct Sample<S: Source> {
    upstream: S,
    every: Duration,
    /// Where period 0 starts: the first poll.
    origin: Option<Instant>,
    latest: Option<S::Item>,
    alarm: Alarm,
}

impl<S: Source> Sample<S> {
    /// Emits the latest item if its period ended; otherwise registers for the period end.
    fn emit_due<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> ControlFlow<()> {
        if !self.alarm.poll_fired(cx) {
            return ControlFlow::Continue(());
        }
        match self.latest.take() {
            Some(item) => emit.emit(item),
            None => ControlFlow::Continue(()),
        }
    }

    /// The end of the period `now` falls in: periods are `[origin + k·every,
    /// origin + (k+1)·every)`.
    fn period_end(&self, origin: Instant, now: Instant) -> Instant {
        let elapsed = now.saturating_duration_since(origin).as_nanos();
        // `into_period < every`, which fits in u64 nanoseconds for any sane period.
        let into_period = elapsed % self.every.as_nanos();
        later(
            now - Duration::from_nanos(u64::try_from(into_period).unwrap_or(u64::MAX)),
            self.every,
        )
    }
}

impl<S: Source> Source for Sample<S> {
    type Item = S::Item;

    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let origin = *self.origin.get_or_insert_with(Instant::now);
        // A period that ended while downstream was not asking is emitted before newer
        // items (which belong to a later period) can replace its item.
        if self.emit_due(cx, emit).is_break() {
            return Poll::Ready(Ok(Step::Paused));
        }
        let latest = &mut self.latest;
        let step = self.upstream.poll_emit(cx, &mut |item| {
            *latest = Some(item);
            ControlFlow::Continue(())
        });
        if let Poll::Ready(Ok(Step::Ended) | Err(_)) = step {
            // End of input (or failure): the last period's item goes out at once.
            self.alarm.disarm();
            if let Some(item) = self.latest.take() {
                let _ = emit.emit(item);
            }
            return step;
        }
        if self.latest.is_some() && !self.alarm.is_armed() {
            let end = self.period_end(origin, Instant::now());
            self.alarm.arm_at(end)?;
        }
        if step.is_ready() {
            // Our sink never breaks; a source that pauses anyway is simply polled again.
            return yield_now(cx);
        }
        if self.emit_due(cx, emit).is_break() {
            return Poll::Ready(Ok(Step::Paused));
        }
        Poll::Pending
    }
}

impl<S: Source> std::fmt::Debug for Sample<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sample")
            .field("every", &self.every)
            .field("holding", &self.latest.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Source> Flow<S> {
    /// Emits, at the end of each period of `every`, the latest item seen in that period;
    /// a period without items emits nothing (RxJava's `sample`/`throttleLast`, Reactor's
    /// `sample`). Periods are aligned to the first poll: `[0, every)`, `[every, 2·every)`…
    ///
    /// At the end of input the latest item not yet emitted goes out at once, then the
    /// flow completes (like Reactor); when upstream fails, it goes out first, then the
    /// error. One timer, allocated at the first item and polled only while an item is
    /// held: an idle flow arms nothing. Needs a tokio runtime with time enabled, else the
    /// flow fails with [`Error::NoRuntime`] at its first item.
    ///
    /// # Panics
    ///
    /// If `every` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_reactive::Flow;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // Ticks every 10 ms, sampled every 35 ms: the latest tick of each period.
    /// let sampled = Flow::interval(Duration::from_millis(10))
    ///     .take(10)
    ///     .sample(Duration::from_millis(35))
    ///     .collect::<Vec<_>>()
    ///     .await;
    /// assert_eq!(sampled.unwrap(), [3, 6, 9]);
    /// # }
    /// ```
    pub fn sample(self, every: Duration) -> Flow<Sample<S>> {
        assert!(!every.is_zero(), "Flow::sample: `every` must be non-zero");
        self.wrap(|upstream| Sample {
            upstream,
            every,
            origin: None,
            latest: None,
            alarm: Alarm::default(),
        })
    }
}
