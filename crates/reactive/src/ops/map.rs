//! Per-item transforms: [`Flow::map`], [`Flow::try_map`], [`Flow::inspect`].

use std::ops::ControlFlow;
use std::task::{Context, Poll};

use crate::error::BoxError;
use crate::source::{Emit, Source, Step};
use crate::{Error, Flow};

/// The source of [`Flow::map`].
#[derive(Debug)]
pub struct Map<S, F> {
    upstream: S,
    f: F,
}

impl<S: Source, U, F: FnMut(S::Item) -> U> Source for Map<S, F> {
    type Item = U;

    #[inline]
    fn poll_emit<E: Emit<U>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let f = &mut self.f;
        self.upstream.poll_emit(cx, &mut |item| emit.emit(f(item)))
    }
}

/// The source of [`Flow::try_map`].
#[derive(Debug)]
pub struct TryMap<S, F> {
    upstream: S,
    f: F,
}

impl<S: Source, U, F: FnMut(S::Item) -> Result<U, BoxError>> Source for TryMap<S, F> {
    type Item = U;

    #[inline]
    fn poll_emit<E: Emit<U>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let f = &mut self.f;
        let mut failure = None;
        let step = self.upstream.poll_emit(cx, &mut |item| match f(item) {
            Ok(value) => emit.emit(value),
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        });
        match failure {
            Some(error) => Poll::Ready(Err(Error::upstream(error))),
            None => step,
        }
    }
}

/// The source of [`Flow::inspect`].
#[derive(Debug)]
pub struct Inspect<S, F> {
    upstream: S,
    f: F,
}

impl<S: Source, F: FnMut(&S::Item)> Source for Inspect<S, F> {
    type Item = S::Item;

    #[inline]
    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let f = &mut self.f;
        self.upstream.poll_emit(cx, &mut |item| {
            f(&item);
            emit.emit(item)
        })
    }
}

impl<S: Source> Flow<S> {
    /// Transforms every item with `f` (fused: no allocation, no task hop).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let lengths = Flow::iter(["ab", "cde"]).map(str::len).collect::<Vec<_>>().await;
    /// assert_eq!(lengths.unwrap(), [2, 3]);
    /// # });
    /// ```
    pub fn map<U, F: FnMut(S::Item) -> U>(self, f: F) -> Flow<Map<S, F>> {
        self.wrap(|upstream| Map { upstream, f })
    }

    /// Transforms every item with a fallible `f`; its first error ends the flow with
    /// [`Error::Upstream`] and cancels upstream.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let parsed = Flow::iter(["1", "x"])
    ///     .try_map(|text| Ok(text.parse::<u32>()?))
    ///     .collect::<Vec<_>>()
    ///     .await;
    /// assert!(parsed.unwrap_err().downcast_ref::<std::num::ParseIntError>().is_some());
    /// # });
    /// ```
    pub fn try_map<U, F: FnMut(S::Item) -> Result<U, BoxError>>(self, f: F) -> Flow<TryMap<S, F>> {
        self.wrap(|upstream| TryMap { upstream, f })
    }

    /// Calls `f` with a reference to every item passing by (metrics, logging).
    pub fn inspect<F: FnMut(&S::Item)>(self, f: F) -> Flow<Inspect<S, F>> {
        self.wrap(|upstream| Inspect { upstream, f })
    }
}
