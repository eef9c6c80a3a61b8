//! One flow after another: [`Flow::concat`].

use std::task::{Context, Poll};

use crate::source::{Emit, Source, Step};
use crate::{Error, Flow};

/// The source of [`Flow::concat`].
#[derive(Debug)]
pub struct Concat<A, B> {
    first: Option<A>,
    second: B,
}

impl<A: Source, B: Source<Item = A::Item>> Source for Concat<A, B> {
    type Item = A::Item;

    #[inline]
    fn poll_emit<E: Emit<A::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        if let Some(first) = self.first.as_mut() {
            match first.poll_emit(cx, emit) {
                Poll::Ready(Ok(Step::Ended)) => self.first = None,
                other => return other,
            }
        }
        self.second.poll_emit(cx, emit)
    }
}

impl<A: Source> Flow<A> {
    /// Every item of this flow, then (once it completed) every item of `next`. `next` is
    /// not polled before: a cold source starts only then.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let both = Flow::iter([1, 2]).concat(Flow::iter([3])).collect::<Vec<_>>().await;
    /// assert_eq!(both.unwrap(), [1, 2, 3]);
    /// # });
    /// ```
    pub fn concat<B: Source<Item = A::Item>>(self, next: Flow<B>) -> Flow<Concat<A, B>> {
        let second = next.into_source();
        self.wrap(|first| Concat {
            first: Some(first),
            second,
        })
    }
}
