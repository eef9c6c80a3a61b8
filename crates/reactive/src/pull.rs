//! One item at a time out of a [`Source`], for consumers that need exactly that
//! (`futures::Stream`, `zip`).

use std::ops::ControlFlow;
use std::task::{Context, Poll};

use crate::Error;
use crate::source::{Source, Step};

/// A source and what became of it. A source may emit its last item and end in the same
/// call (when the sink did not say "enough"); the ending is kept until the item was
/// taken.
#[derive(Debug)]
pub(crate) struct Puller<S> {
    source: Option<S>,
    ending: Option<Result<(), Error>>,
}

impl<S: Source> Puller<S> {
    pub(crate) fn new(source: S) -> Self {
        Self {
            source: Some(source),
            ending: None,
        }
    }

    /// The next item, the error the source failed with (once), then `None` forever.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<S::Item, Error>>> {
        if let Some(source) = self.source.as_mut() {
            let mut slot = None;
            let step = source.poll_emit(cx, &mut |item| {
                slot = Some(item);
                ControlFlow::Break(())
            });
            match step {
                Poll::Ready(Ok(Step::Paused)) if slot.is_none() => {
                    // A pause without an item (a source's own choice): poll again later.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(Ok(Step::Paused)) => {}
                Poll::Ready(Ok(Step::Ended)) => self.finish(Ok(())),
                Poll::Ready(Err(error)) => self.finish(Err(error)),
                Poll::Pending if slot.is_none() => return Poll::Pending,
                Poll::Pending => {}
            }
            if let Some(item) = slot {
                return Poll::Ready(Some(Ok(item)));
            }
        }
        Poll::Ready(match self.ending.take() {
            Some(Err(error)) => Some(Err(error)),
            _ => None,
        })
    }

    /// Drops the source (cancelling it) and remembers how it ended.
    pub(crate) fn finish(&mut self, ending: Result<(), Error>) {
        if self.source.take().is_some() {
            self.ending = Some(ending);
        }
    }
}
