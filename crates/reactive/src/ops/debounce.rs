//! Waiting for a pause: [`Flow::debounce`].

use std::ops::ControlFlow;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::source::{Emit, Source, Step};
use crate::sources::interval::Alarm;
use crate::sources::iter::yield_now;
use crate::{Error, Flow};

/// The source of [`Flow::debounce`].
pub struct Debounce<S: Source> {
    upstream: S,
    quiet: Duration,
    pending: Option<S::Item>,
    alarm: Alarm,
}

impl<S: Source> Debounce<S> {
    /// Emits the pending item if it stayed quiet long enough; otherwise registers for it.
    fn emit_settled<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> ControlFlow<()> {
        if !self.alarm.poll_fired(cx) {
            return ControlFlow::Continue(());
        }
        match self.pending.take() {
            Some(item) => emit.emit(item),
            None => ControlFlow::Continue(()),
        }
    }
}

impl<S: Source> Source for Debounce<S> {
    type Item = S::Item;

    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        // A settled item goes out before a newer one (waiting upstream) can replace it.
        if self.emit_settled(cx, emit).is_break() {
            return Poll::Ready(Ok(Step::Paused));
        }
        let pending = &mut self.pending;
        let mut arrived = false;
        let step = self.upstream.poll_emit(cx, &mut |item| {
            *pending = Some(item);
            arrived = true;
            ControlFlow::Continue(())
        });
        match step {
            Poll::Ready(Ok(Step::Paused)) => {
                // Our sink never breaks; a source that pauses anyway is simply polled again.
                if arrived {
                    self.alarm.arm_after(self.quiet)?;
                }
                yield_now(cx)
            }
            Poll::Ready(ending) => {
                // End of input (or failure): the last pending item needs no more quiet.
                self.alarm.disarm();
                if let Some(item) = self.pending.take() {
                    let _ = emit.emit(item);
                }
                Poll::Ready(ending)
            }
            Poll::Pending => {
                if arrived {
                    self.alarm.arm_after(self.quiet)?;
                }
                if self.emit_settled(cx, emit).is_break() {
                    return Poll::Ready(Ok(Step::Paused));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: Source> std::fmt::Debug for Debounce<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Debounce")
            .field("quiet", &self.quiet)
            .field("pending", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Source> Flow<S> {
    /// Emits an item only once `quiet` passed without a newer one; every item followed
    /// by another within `quiet` is dropped (a search box that waits for the user to stop
    /// typing; RxJava's `debounce`, Reactor's `sampleTimeout`). A steady stream faster
    /// than `quiet` emits nothing until it pauses or ends.
    ///
    /// At the end of input the pending item is emitted at once, then the flow
    /// completes; when upstream fails, the pending item is emitted first, then the error
    /// (like [`batch`](Flow::batch), nothing held back is lost).
    ///
    /// Timing is measured from when the operator sees an item (items handed over in one
    /// poll count as simultaneous). One timer, allocated at the first item and polled
    /// only while an item is pending; a burst of items pushes the deadline back without
    /// touching tokio's timer wheel per item. Needs a tokio runtime with time enabled,
    /// else the flow fails with [`Error::NoRuntime`] at its first item.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_reactive::Flow;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // A burst with no pause: only its last item survives (emitted at the end).
    /// let settled = Flow::iter(["r", "ru", "rus", "rust"])
    ///     .debounce(Duration::from_millis(300))
    ///     .collect::<Vec<_>>()
    ///     .await;
    /// assert_eq!(settled.unwrap(), ["rust"]);
    /// # }
    /// ```
    pub fn debounce(self, quiet: Duration) -> Flow<Debounce<S>> {
        self.wrap(|upstream| Debounce {
            upstream,
            quiet,
            pending: None,
            alarm: Alarm::default(),
        })
    }
}
