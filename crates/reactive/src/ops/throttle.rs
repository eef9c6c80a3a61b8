//! Rate-limiting by dropping: [`Flow::throttle`] (throttle-first).

use std::ops::ControlFlow;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::source::{Emit, Source, Step};
use crate::sources::interval::later;
use crate::{Error, Flow};

/// The source of [`Flow::throttle`].
#[derive(Debug)]
pub struct Throttle<S> {
    upstream: S,
    per: Duration,
    /// Items arriving before this instant are dropped; `None` before the first item.
    closed_until: Option<Instant>,
}

impl<S: Source> Source for Throttle<S> {
    type Item = S::Item;

    #[inline]
    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let (per, closed_until) = (self.per, &mut self.closed_until);
        // Items handed over in one poll arrive at the same instant: read the clock once.
        let mut now = None;
        self.upstream.poll_emit(cx, &mut |item| {
            let now = *now.get_or_insert_with(Instant::now);
            if closed_until.is_some_and(|until| now < until) {
                return ControlFlow::Continue(());
            }
            *closed_until = Some(later(now, per));
            emit.emit(item)
        })
    }
}

impl<S: Source> Flow<S> {
    /// Passes an item, then drops every item arriving in the next `per`; the first item
    /// after that passes and closes the window again (throttle-*first*: RxJava's
    /// `throttleFirst`, Reactor's `sampleFirst`). At most one item per `per`, and the
    /// item that passes is sent at once, without waiting.
    ///
    /// Why "first" is the `throttle`: it needs no timer at all (whether an item passes
    /// is decided when it arrives, from the clock), it adds no latency, and it suits the
    /// usual goal of shedding load (one alert per minute, one click per second). To keep
    /// the *last* item of each period instead (RxJava's `throttleLast`), use
    /// [`sample`](Flow::sample), which is that operator; to wait for a pause, use
    /// [`debounce`](Flow::debounce).
    ///
    /// Dropped items do not count against downstream demand. Reads the tokio clock, so
    /// it follows a paused test clock; it works without a runtime too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// // Items that arrive together: only the first passes.
    /// let passed = Flow::iter(1..=100).throttle(Duration::from_secs(1)).collect::<Vec<_>>().await;
    /// assert_eq!(passed.unwrap(), [1]);
    /// # });
    /// ```
    pub fn throttle(self, per: Duration) -> Flow<Throttle<S>> {
        self.wrap(|upstream| Throttle {
            upstream,
            per,
            closed_until: None,
        })
    }
}
