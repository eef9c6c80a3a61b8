//! Failing a silent flow: [`Flow::timeout`].

use std::task::{Context, Poll};
use std::time::Duration;

use crate::source::{Emit, Source, Step};
use crate::sources::interval::Alarm;
use crate::{Error, Flow};

/// The source of [`Flow::timeout`].
#[derive(Debug)]
pub struct Timeout<S> {
    /// `None` once the flow ended, failed or timed out (dropping it cancels upstream).
    upstream: Option<S>,
    after: Duration,
    /// The clock restarts at the next poll: the first one, or after downstream paused.
    restart: bool,
    alarm: Alarm,
}

impl<S: Source> Source for Timeout<S> {
    type Item = S::Item;

    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let Some(upstream) = self.upstream.as_mut() else {
            return Poll::Ready(Ok(Step::Ended));
        };
        let mut arrived = false;
        let step = upstream.poll_emit(cx, &mut |item| {
            arrived = true;
            emit.emit(item)
        });
        match step {
            Poll::Ready(Ok(Step::Paused)) => {
                // Downstream is full: time until it asks again is not upstream's silence.
                self.restart = true;
                Poll::Ready(Ok(Step::Paused))
            }
            Poll::Ready(ending) => {
                self.upstream = None;
                self.alarm.disarm();
                Poll::Ready(ending)
            }
            Poll::Pending => {
                let restart = std::mem::take(&mut self.restart);
                if arrived || restart {
                    self.alarm.arm_after(self.after)?;
                }
                if !self.alarm.poll_fired(cx) {
                    return Poll::Pending;
                }
                self.upstream = None;
                Poll::Ready(Err(Error::Timeout { after: self.after }))
            }
        }
    }
}

impl<S: Source> Flow<S> {
    /// Fails the flow with [`Error::Timeout`] when no item arrives within `after` of the
    /// previous one (for the first item: of the first poll). Upstream is dropped, which
    /// cancels it, the moment the limit passes.
    ///
    /// Only upstream's silence counts: the clock runs while the operator waits for an
    /// item, and restarts when downstream asks again after having paused (a slow
    /// consumer does not time out a healthy source). An item that is ready when the
    /// limit passes wins. One timer for the flow's life; a steady stream pushes its
    /// deadline back without touching tokio's timer wheel per item. Needs a tokio
    /// runtime with time enabled, else the flow fails with [`Error::NoRuntime`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_reactive::{Error, Flow};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let silent = Flow::interval(Duration::from_secs(60))
    ///     .timeout(Duration::from_secs(1))
    ///     .collect::<Vec<_>>()
    ///     .await;
    /// assert!(matches!(silent, Err(Error::Timeout { .. })));
    /// # }
    /// ```
    pub fn timeout(self, after: Duration) -> Flow<Timeout<S>> {
        self.wrap(|upstream| Timeout {
            upstream: Some(upstream),
            after,
            restart: true,
            alarm: Alarm::default(),
        })
    }
}
