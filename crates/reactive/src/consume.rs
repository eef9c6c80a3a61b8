//! Consuming a flow in place: [`Flow::fold`], [`Flow::for_each`], [`Flow::collect`],
//! [`Flow::count`].

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::panic::guard;
use crate::source::{Source, Step};
use crate::{Error, Flow};

/// The future of [`Flow::fold`]: resolves to the folded value, or the flow's error.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Fold<S, A, F> {
    source: Option<S>,
    acc: Option<A>,
    f: F,
}

impl<S, A, F> Unpin for Fold<S, A, F> {}

impl<S: Source, A, F: FnMut(A, S::Item) -> A> Future for Fold<S, A, F> {
    type Output = Result<A, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Some(source) = this.source.as_mut() else {
            panic!("`Fold` polled after it completed");
        };
        let (acc, f) = (&mut this.acc, &mut this.f);
        let polled = guard(|| {
            source.poll_emit(cx, &mut |item| {
                if let Some(value) = acc.take() {
                    *acc = Some(f(value, item));
                }
                ControlFlow::Continue(())
            })
        });
        let outcome = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            // Fold's sink never breaks; treat a spurious pause as "poll again".
            Ok(Poll::Ready(Ok(Step::Paused))) => {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Ok(Poll::Ready(Ok(Step::Ended))) => match this.acc.take() {
                Some(value) => Ok(value),
                None => Err(Error::Protocol("fold lost its accumulator")),
            },
            Ok(Poll::Ready(Err(error))) | Err(error) => Err(error),
        };
        this.source = None;
        Poll::Ready(outcome)
    }
}

impl<S: Source> Flow<S> {
    /// Consumes the flow, folding every item into an accumulator.
    ///
    /// A panic in `f` or anywhere upstream resolves to [`Error::Panicked`] (upstream is
    /// dropped, which cancels it).
    pub fn fold<A, F: FnMut(A, S::Item) -> A>(self, initial: A, f: F) -> Fold<S, A, F> {
        Fold {
            source: Some(self.into_source()),
            acc: Some(initial),
            f,
        }
    }

    /// Consumes the flow, calling `f` with every item.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let mut seen = Vec::new();
    /// Flow::iter(1..=3).for_each(|n| seen.push(n)).await.unwrap();
    /// assert_eq!(seen, [1, 2, 3]);
    /// # });
    /// ```
    pub fn for_each<F: FnMut(S::Item)>(self, mut f: F) -> Fold<S, (), impl FnMut((), S::Item)> {
        self.fold((), move |(), item| f(item))
    }

    /// Consumes the flow into a collection.
    pub fn collect<C: Default + Extend<S::Item>>(self) -> Fold<S, C, impl FnMut(C, S::Item) -> C> {
        self.fold(C::default(), |mut collection, item| {
            collection.extend(Some(item));
            collection
        })
    }

    /// Consumes the flow, counting its items.
    pub fn count(self) -> Fold<S, u64, impl FnMut(u64, S::Item) -> u64> {
        self.fold(0, |count, _| count + 1)
    }
}
