//! Grouping items into `Vec`s by count and age: [`Flow::batch`].

use std::ops::ControlFlow;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::source::{Emit, Source, Step};
use crate::sources::interval::{Alarm, later};
use crate::{Error, Flow};

/// The most item slots a batch reserves up front; a larger `max_items` (time-only
/// batching with `usize::MAX`, say) grows the `Vec` as items arrive instead.
const MAX_PREALLOCATION: usize = 4096;

/// The source of [`Flow::batch`].
pub struct Batch<S: Source> {
    upstream: S,
    buffer: Vec<S::Item>,
    max_items: usize,
    max_wait: Option<Duration>,
    /// When the first item of the open batch arrived.
    opened: Option<Instant>,
    alarm: Alarm,
}

impl<S: Source> Batch<S> {
    /// Emits the open batch if its `max_wait` passed (the new batch allocates nothing
    /// until its first item); otherwise registers for the deadline.
    fn flush_expired<E: Emit<Vec<S::Item>>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> ControlFlow<()> {
        if !self.alarm.poll_fired(cx) || self.buffer.is_empty() {
            return ControlFlow::Continue(());
        }
        self.opened = None;
        emit.emit(std::mem::take(&mut self.buffer))
    }
}

impl<S: Source> Source for Batch<S> {
    type Item = Vec<S::Item>;

    fn poll_emit<E: Emit<Vec<S::Item>>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        // An expired batch goes out before newer items can join it.
        if self.flush_expired(cx, emit).is_break() {
            return Poll::Ready(Ok(Step::Paused));
        }
        let Self {
            upstream,
            buffer,
            max_items,
            max_wait,
            opened,
            alarm,
        } = self;
        let step = upstream.poll_emit(cx, &mut |item| {
            if buffer.capacity() == 0 {
                buffer.reserve_exact((*max_items).min(MAX_PREALLOCATION));
            }
            if buffer.is_empty() && max_wait.is_some() {
                *opened = Some(Instant::now());
            }
            buffer.push(item);
            if buffer.len() < *max_items {
                return ControlFlow::Continue(());
            }
            *opened = None;
            alarm.disarm();
            emit.emit(std::mem::take(buffer))
        });
        match step {
            Poll::Ready(Ok(Step::Paused)) => {}
            Poll::Ready(ending) => {
                // The end or the error: the partial batch first, nothing accepted is lost.
                self.alarm.disarm();
                if !self.buffer.is_empty() {
                    let _ = emit.emit(std::mem::take(&mut self.buffer));
                }
                return Poll::Ready(ending);
            }
            Poll::Pending => {}
        }
        if let (Some(opened), Some(max_wait)) = (self.opened, self.max_wait) {
            if !self.alarm.is_armed() {
                self.alarm.arm_at(later(opened, max_wait))?;
            }
        }
        if step.is_pending() && self.flush_expired(cx, emit).is_break() {
            return Poll::Ready(Ok(Step::Paused));
        }
        step
    }
}

impl<S: Source> std::fmt::Debug for Batch<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("buffered", &self.buffer.len())
            .field("max_items", &self.max_items)
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl<S: Source> Flow<S> {
    /// Groups items into `Vec`s of `max_items`; with `max_wait`, a batch also goes out
    /// when `max_wait` passed since its first item arrived, however small it is (Reactor's
    /// `bufferTimeout`, Akka's `groupedWithin`). Empty batches are never emitted.
    ///
    /// At the end of input the partial batch is emitted, then the flow completes. When
    /// upstream fails, the partial batch is emitted first, then the error: nothing
    /// upstream handed over is lost.
    ///
    /// Cost: one `Vec` per batch, reserved at the batch's first item for `max_items`
    /// (at most 4096 slots up front; more grow as needed). Without `max_wait` no timer
    /// exists; with it, one timer is allocated once and only polled while a batch is
    /// open. A batch that timed out while downstream was not asking goes out at the next
    /// poll, before any newer item can join it.
    ///
    /// # Panics
    ///
    /// If `max_items` is zero (like [`slice::chunks`]): a batch of at most zero items
    /// could never hold one. For time-only batching pass `usize::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let batches = Flow::iter(1..=5).batch(2, None).collect::<Vec<_>>().await;
    /// assert_eq!(batches.unwrap(), [vec![1, 2], vec![3, 4], vec![5]]);
    /// # });
    /// ```
    ///
    /// With a time limit (needs a tokio runtime with time enabled, else the flow fails
    /// with [`Error::NoRuntime`] at its first item):
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_reactive::Flow;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let batches = Flow::iter(1..=3)
    ///     .batch(100, Some(Duration::from_millis(10)))
    ///     .collect::<Vec<_>>()
    ///     .await;
    /// assert_eq!(batches.unwrap(), [vec![1, 2, 3]]);
    /// # }
    /// ```
    pub fn batch(self, max_items: usize, max_wait: Option<Duration>) -> Flow<Batch<S>> {
        assert!(max_items > 0, "Flow::batch: `max_items` must be at least 1");
        self.wrap(|upstream| Batch {
            upstream,
            buffer: Vec::new(),
            max_items,
            max_wait,
            opened: None,
            alarm: Alarm::default(),
        })
    }
}
