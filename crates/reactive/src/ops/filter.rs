//! Dropping items: [`Flow::filter`], [`Flow::filter_map`].

use std::ops::ControlFlow;
use std::task::{Context, Poll};

use crate::source::{Emit, Source, Step};
use crate::{Error, Flow};

/// The source of [`Flow::filter`].
#[derive(Debug)]
pub struct Filter<S, F> {
    upstream: S,
    keep: F,
}

impl<S: Source, F: FnMut(&S::Item) -> bool> Source for Filter<S, F> {
    type Item = S::Item;

    #[inline]
    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let keep = &mut self.keep;
        self.upstream.poll_emit(cx, &mut |item| {
            if keep(&item) {
                emit.emit(item)
            } else {
                ControlFlow::Continue(())
            }
        })
    }
}

/// The source of [`Flow::filter_map`].
#[derive(Debug)]
pub struct FilterMap<S, F> {
    upstream: S,
    f: F,
}

impl<S: Source, U, F: FnMut(S::Item) -> Option<U>> Source for FilterMap<S, F> {
    type Item = U;

    #[inline]
    fn poll_emit<E: Emit<U>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let f = &mut self.f;
        self.upstream.poll_emit(cx, &mut |item| match f(item) {
            Some(value) => emit.emit(value),
            None => ControlFlow::Continue(()),
        })
    }
}

impl<S: Source> Flow<S> {
    /// Keeps the items for which `keep` returns `true`. Dropped items do not count
    /// against downstream demand.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let odd = Flow::iter(1..=5).filter(|n| n % 2 == 1).collect::<Vec<_>>().await;
    /// assert_eq!(odd.unwrap(), [1, 3, 5]);
    /// # });
    /// ```
    pub fn filter<F: FnMut(&S::Item) -> bool>(self, keep: F) -> Flow<Filter<S, F>> {
        self.wrap(|upstream| Filter { upstream, keep })
    }

    /// Transforms items with `f`, dropping those it maps to `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let numbers = Flow::iter(["1", "x", "3"])
    ///     .filter_map(|text| text.parse::<u32>().ok())
    ///     .collect::<Vec<_>>()
    ///     .await;
    /// assert_eq!(numbers.unwrap(), [1, 3]);
    /// # });
    /// ```
    pub fn filter_map<U, F: FnMut(S::Item) -> Option<U>>(self, f: F) -> Flow<FilterMap<S, F>> {
        self.wrap(|upstream| FilterMap { upstream, f })
    }
}
