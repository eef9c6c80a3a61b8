//! `futures::Stream` in both directions: [`Flow::from_stream`], [`Flow::from_try_stream`],
//! [`Flow::into_stream`].

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::error::BoxError;
use crate::panic::guard;
use crate::pull::Puller;
use crate::source::{Emit, Source, Step};
use crate::sources::iter::{YIELD_EVERY, yield_now};
use crate::{Error, Flow};

/// The source of [`Flow::from_stream`].
#[derive(Debug)]
pub struct FromStream<St> {
    stream: Pin<Box<St>>,
}

impl<St: Stream> Source for FromStream<St> {
    type Item = St::Item;

    fn poll_emit<E: Emit<St::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        for _ in 0..YIELD_EVERY {
            match self.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    if emit.emit(item).is_break() {
                        return Poll::Ready(Ok(Step::Paused));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(Ok(Step::Ended)),
                Poll::Pending => return Poll::Pending,
            }
        }
        yield_now(cx)
    }
}

/// The source of [`Flow::from_try_stream`].
#[derive(Debug)]
pub struct FromTryStream<St> {
    stream: Pin<Box<St>>,
}

impl<St, T, E> Source for FromTryStream<St>
where
    St: Stream<Item = Result<T, E>>,
    E: Into<BoxError>,
{
    type Item = T;

    fn poll_emit<Em: Emit<T>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut Em,
    ) -> Poll<Result<Step, Error>> {
        for _ in 0..YIELD_EVERY {
            match self.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(item))) => {
                    if emit.emit(item).is_break() {
                        return Poll::Ready(Ok(Step::Paused));
                    }
                }
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(Error::upstream(error))),
                Poll::Ready(None) => return Poll::Ready(Ok(Step::Ended)),
                Poll::Pending => return Poll::Pending,
            }
        }
        yield_now(cx)
    }
}

impl<St: Stream> Flow<FromStream<St>> {
    /// A flow of a `futures::Stream`'s items. The stream is polled only when downstream
    /// wants items, so its own backpressure carries through.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let items = Flow::from_stream(futures::stream::iter([1, 2, 3]))
    ///     .map(|n| n * 10)
    ///     .collect::<Vec<_>>()
    ///     .await;
    /// assert_eq!(items.unwrap(), [10, 20, 30]);
    /// # });
    /// ```
    pub fn from_stream(stream: St) -> Self {
        Flow::from_source(FromStream {
            stream: Box::pin(stream),
        })
    }
}

impl<St: Stream> Flow<FromTryStream<St>> {
    /// A flow of a stream of `Result`s: the first `Err` ends the flow with
    /// [`Error::Upstream`].
    pub fn from_try_stream<T, E: Into<BoxError>>(stream: St) -> Self
    where
        St: Stream<Item = Result<T, E>>,
    {
        Flow::from_source(FromTryStream {
            stream: Box::pin(stream),
        })
    }
}

/// A flow as a `futures::Stream` of `Result`s: items as `Ok`, then the error (if the flow
/// failed) as one `Err`, then `None`. Returned by [`Flow::into_stream`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct IntoStream<S> {
    puller: Puller<S>,
}

impl<S> Unpin for IntoStream<S> {}

impl<S: Source> Stream for IntoStream<S> {
    type Item = Result<S::Item, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let puller = &mut self.puller;
        match guard(|| puller.poll_next(cx)) {
            Ok(polled) => polled,
            Err(panic) => {
                puller.finish(Err(panic));
                puller.poll_next(cx)
            }
        }
    }
}

impl<S: Source> Flow<S> {
    /// The flow as a `futures::Stream` (for `StreamExt`, `tokio_stream`, axum bodies).
    /// A panic upstream arrives as one [`Error::Panicked`] item, then the stream ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let mut stream = Flow::iter([1, 2]).into_stream();
    /// assert_eq!(stream.next().await.unwrap().unwrap(), 1);
    /// assert_eq!(stream.next().await.unwrap().unwrap(), 2);
    /// assert!(stream.next().await.is_none());
    /// # });
    /// ```
    pub fn into_stream(self) -> IntoStream<S> {
        IntoStream {
            puller: Puller::new(self.into_source()),
        }
    }
}
