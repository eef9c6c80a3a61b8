//! Cutting a flow short: [`Flow::take`], [`Flow::take_while`], [`Flow::skip`],
//! [`Flow::skip_while`].

use std::ops::ControlFlow;
use std::task::{Context, Poll};

use crate::source::{Emit, Source, Step};
use crate::{Error, Flow};

/// The source of [`Flow::take`]: upstream is dropped (cancelled) as soon as the last item
/// passed, not when the next one would arrive.
#[derive(Debug)]
pub struct Take<S> {
    upstream: Option<S>,
    left: u64,
}

impl<S: Source> Source for Take<S> {
    type Item = S::Item;

    #[inline]
    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let Some(upstream) = self.upstream.as_mut().filter(|_| self.left > 0) else {
            self.upstream = None;
            return Poll::Ready(Ok(Step::Ended));
        };
        let left = &mut self.left;
        let mut downstream_full = false;
        let step = upstream.poll_emit(cx, &mut |item| {
            *left -= 1;
            downstream_full = emit.emit(item).is_break();
            if downstream_full || *left == 0 {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        if self.left == 0 {
            // Cancel upstream now, not when the next item would arrive.
            self.upstream = None;
            return match step {
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                // The last item filled downstream: the end comes on the next poll.
                _ if downstream_full => Poll::Ready(Ok(Step::Paused)),
                _ => Poll::Ready(Ok(Step::Ended)),
            };
        }
        step
    }
}

/// The source of [`Flow::take_while`].
#[derive(Debug)]
pub struct TakeWhile<S, F> {
    upstream: Option<S>,
    keep: F,
}

impl<S: Source, F: FnMut(&S::Item) -> bool> Source for TakeWhile<S, F> {
    type Item = S::Item;

    #[inline]
    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let Some(upstream) = self.upstream.as_mut() else {
            return Poll::Ready(Ok(Step::Ended));
        };
        let keep = &mut self.keep;
        let mut stopped = false;
        let step = upstream.poll_emit(cx, &mut |item| {
            if keep(&item) {
                emit.emit(item)
            } else {
                stopped = true;
                ControlFlow::Break(())
            }
        });
        if stopped {
            self.upstream = None;
            return Poll::Ready(Ok(Step::Ended));
        }
        step
    }
}

/// The source of [`Flow::skip`].
#[derive(Debug)]
pub struct Skip<S> {
    upstream: S,
    left: u64,
}

impl<S: Source> Source for Skip<S> {
    type Item = S::Item;

    #[inline]
    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let left = &mut self.left;
        self.upstream.poll_emit(cx, &mut |item| {
            if *left > 0 {
                *left -= 1;
                ControlFlow::Continue(())
            } else {
                emit.emit(item)
            }
        })
    }
}

/// The source of [`Flow::skip_while`].
#[derive(Debug)]
pub struct SkipWhile<S, F> {
    upstream: S,
    skip: Option<F>,
}

impl<S: Source, F: FnMut(&S::Item) -> bool> Source for SkipWhile<S, F> {
    type Item = S::Item;

    #[inline]
    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let skip = &mut self.skip;
        self.upstream.poll_emit(cx, &mut |item| {
            if let Some(predicate) = skip {
                if predicate(&item) {
                    return ControlFlow::Continue(());
                }
                *skip = None;
            }
            emit.emit(item)
        })
    }
}

impl<S: Source> Flow<S> {
    /// The first `count` items; then upstream is cancelled and the flow completes.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let first = Flow::iter(0u64..).take(3).collect::<Vec<_>>().await;
    /// assert_eq!(first.unwrap(), [0, 1, 2]);
    /// # });
    /// ```
    pub fn take(self, count: u64) -> Flow<Take<S>> {
        self.wrap(|upstream| Take {
            upstream: Some(upstream),
            left: count,
        })
    }

    /// Items while `keep` holds; the first item it rejects is dropped, upstream is
    /// cancelled and the flow completes.
    pub fn take_while<F: FnMut(&S::Item) -> bool>(self, keep: F) -> Flow<TakeWhile<S, F>> {
        self.wrap(|upstream| TakeWhile {
            upstream: Some(upstream),
            keep,
        })
    }

    /// Drops the first `count` items.
    pub fn skip(self, count: u64) -> Flow<Skip<S>> {
        self.wrap(|upstream| Skip {
            upstream,
            left: count,
        })
    }

    /// Drops items while `skip` holds, then passes everything.
    pub fn skip_while<F: FnMut(&S::Item) -> bool>(self, skip: F) -> Flow<SkipWhile<S, F>> {
        self.wrap(|upstream| SkipWhile {
            upstream,
            skip: Some(skip),
        })
    }
}
