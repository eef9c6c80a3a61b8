//! Running state: [`Flow::scan`].

use std::task::{Context, Poll};

use crate::source::{Emit, Source, Step};
use crate::{Error, Flow};

/// The source of [`Flow::scan`].
#[derive(Debug)]
pub struct Scan<S, A, F> {
    upstream: S,
    state: A,
    f: F,
}

impl<S: Source, A, U, F: FnMut(&mut A, S::Item) -> U> Source for Scan<S, A, F> {
    type Item = U;

    #[inline]
    fn poll_emit<E: Emit<U>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let (state, f) = (&mut self.state, &mut self.f);
        self.upstream
            .poll_emit(cx, &mut |item| emit.emit(f(state, item)))
    }
}

impl<S: Source> Flow<S> {
    /// Threads a state through the items: `f` updates the state with each item and returns
    /// what to emit (a running total, a moving average, a sessionizer).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let running = Flow::iter([1, 2, 3])
    ///     .scan(0, |total, n| {
    ///         *total += n;
    ///         *total
    ///     })
    ///     .collect::<Vec<_>>()
    ///     .await;
    /// assert_eq!(running.unwrap(), [1, 3, 6]);
    /// # });
    /// ```
    pub fn scan<A, U, F: FnMut(&mut A, S::Item) -> U>(
        self,
        initial: A,
        f: F,
    ) -> Flow<Scan<S, A, F>> {
        self.wrap(|upstream| Scan {
            upstream,
            state: initial,
            f,
        })
    }
}
