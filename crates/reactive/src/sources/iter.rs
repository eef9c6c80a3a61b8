//! Flows from values in memory: [`Flow::iter`], [`Flow::just`], [`Flow::empty`],
//! [`Flow::failed`].

use std::task::{Context, Poll};

use crate::source::{Emit, Source, Step};
use crate::{Error, Flow};

/// How many items a source that never waits emits in one poll before it yields to the
/// executor (like tokio's cooperative budget).
pub(crate) const YIELD_EVERY: usize = 4096;

/// Yields to the executor: the task is woken again at once.
pub(crate) fn yield_now<T>(cx: &mut Context<'_>) -> Poll<T> {
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// The source of [`Flow::iter`].
#[derive(Debug)]
pub struct Iter<I> {
    iter: I,
}

impl<I: Iterator> Source for Iter<I> {
    type Item = I::Item;

    #[inline]
    fn poll_emit<E: Emit<I::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        for _ in 0..YIELD_EVERY {
            match self.iter.next() {
                Some(item) => {
                    if emit.emit(item).is_break() {
                        return Poll::Ready(Ok(Step::Paused));
                    }
                }
                None => return Poll::Ready(Ok(Step::Ended)),
            }
        }
        yield_now(cx)
    }
}

/// The source of [`Flow::failed`].
#[derive(Debug)]
pub struct Failed<T> {
    error: Option<Error>,
    item: std::marker::PhantomData<fn() -> T>,
}

impl<T> Source for Failed<T> {
    type Item = T;

    fn poll_emit<E: Emit<T>>(
        &mut self,
        _: &mut Context<'_>,
        _: &mut E,
    ) -> Poll<Result<Step, Error>> {
        Poll::Ready(Err(self.error.take().unwrap_or(Error::Protocol(
            "a failed source was polled after its error",
        ))))
    }
}

impl<I: Iterator> Flow<Iter<I>> {
    /// A flow of the items of an iterator (a range, a `Vec`, a generator): synchronous,
    /// pulled only as fast as downstream wants.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let words = Flow::iter(["a", "b"]).collect::<Vec<_>>().await.unwrap();
    /// assert_eq!(words, ["a", "b"]);
    /// # });
    /// ```
    pub fn iter<C: IntoIterator<IntoIter = I>>(items: C) -> Self {
        Flow::from_source(Iter {
            iter: items.into_iter(),
        })
    }
}

impl<T> Flow<Iter<std::option::IntoIter<T>>> {
    /// A flow of one item.
    pub fn just(item: T) -> Self {
        Flow::iter(Some(item))
    }

    /// A flow that completes at once without items.
    pub fn empty() -> Self {
        Flow::iter(None)
    }
}

impl<T> Flow<Failed<T>> {
    /// A flow that fails at once with `error`.
    pub fn failed(error: Error) -> Self {
        Flow::from_source(Failed {
            error: Some(error),
            item: std::marker::PhantomData,
        })
    }
}
