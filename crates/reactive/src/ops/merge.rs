//! Interleaving flows as their items arrive: [`Flow::merge`], [`Flow::merge_all`].

use std::task::{Context, Poll};

use crate::source::{Emit, Source, Step};
use crate::{Error, Flow};

/// What one input did in a poll.
enum Outcome {
    /// Downstream is full: stop here.
    Full,
    /// The input has nothing more now, or ended.
    Idle,
}

/// Polls one input, dropping it when it ends.
fn poll_input<S: Source, E: Emit<S::Item>>(
    input: &mut Option<S>,
    cx: &mut Context<'_>,
    emit: &mut E,
) -> Result<Outcome, Error> {
    let Some(source) = input.as_mut() else {
        return Ok(Outcome::Idle);
    };
    match source.poll_emit(cx, emit) {
        Poll::Ready(Ok(Step::Paused)) => Ok(Outcome::Full),
        Poll::Ready(Ok(Step::Ended)) => {
            *input = None;
            Ok(Outcome::Idle)
        }
        Poll::Ready(Err(error)) => Err(error),
        Poll::Pending => Ok(Outcome::Idle),
    }
}

/// The source of [`Flow::merge`].
#[derive(Debug)]
pub struct Merge<A, B> {
    a: Option<A>,
    b: Option<B>,
    /// Which input goes first this time (alternates, so neither starves the other).
    b_first: bool,
}

impl<A: Source, B: Source<Item = A::Item>> Source for Merge<A, B> {
    type Item = A::Item;

    fn poll_emit<E: Emit<A::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        self.b_first = !self.b_first;
        let polled = if self.b_first {
            poll_input(&mut self.b, cx, emit).and_then(|outcome| match outcome {
                Outcome::Full => Ok(Outcome::Full),
                Outcome::Idle => poll_input(&mut self.a, cx, emit),
            })
        } else {
            poll_input(&mut self.a, cx, emit).and_then(|outcome| match outcome {
                Outcome::Full => Ok(Outcome::Full),
                Outcome::Idle => poll_input(&mut self.b, cx, emit),
            })
        };
        match polled {
            Err(error) => {
                self.a = None;
                self.b = None;
                Poll::Ready(Err(error))
            }
            Ok(Outcome::Full) => Poll::Ready(Ok(Step::Paused)),
            Ok(Outcome::Idle) if self.a.is_none() && self.b.is_none() => {
                Poll::Ready(Ok(Step::Ended))
            }
            Ok(Outcome::Idle) => Poll::Pending,
        }
    }
}

/// The source of [`Flow::merge_all`].
#[derive(Debug)]
pub struct MergeAll<S> {
    inputs: Vec<Option<S>>,
    /// Where the next poll starts (rotates for fairness).
    start: usize,
}

impl<S: Source> Source for MergeAll<S> {
    type Item = S::Item;

    fn poll_emit<E: Emit<S::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let count = self.inputs.len();
        self.start = if count == 0 {
            0
        } else {
            (self.start + 1) % count
        };
        for offset in 0..count {
            let input = &mut self.inputs[(self.start + offset) % count];
            match poll_input(input, cx, emit) {
                Err(error) => {
                    self.inputs.clear();
                    return Poll::Ready(Err(error));
                }
                Ok(Outcome::Full) => return Poll::Ready(Ok(Step::Paused)),
                Ok(Outcome::Idle) => {}
            }
        }
        self.inputs.retain(Option::is_some);
        if self.inputs.is_empty() {
            Poll::Ready(Ok(Step::Ended))
        } else {
            Poll::Pending
        }
    }
}

impl<A: Source> Flow<A> {
    /// The items of both flows as they arrive; completes when both completed, fails (and
    /// cancels the other) when either fails. Neither input can starve the other: the one
    /// polled first alternates.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let mut all = Flow::iter([1, 2]).merge(Flow::iter([10, 20])).collect::<Vec<_>>().await.unwrap();
    /// all.sort();
    /// assert_eq!(all, [1, 2, 10, 20]);
    /// # });
    /// ```
    pub fn merge<B: Source<Item = A::Item>>(self, other: Flow<B>) -> Flow<Merge<A, B>> {
        let b = other.into_source();
        self.wrap(|a| Merge {
            a: Some(a),
            b: Some(b),
            b_first: true,
        })
    }
}

impl<S: Source> Flow<MergeAll<S>> {
    /// The items of every flow as they arrive (all of one source type; use
    /// [`Flow::boxed`] to mix kinds).
    pub fn merge_all(flows: impl IntoIterator<Item = Flow<S>>) -> Self {
        Flow::from_source(MergeAll {
            inputs: flows
                .into_iter()
                .map(|flow| Some(flow.into_source()))
                .collect(),
            start: 0,
        })
    }
}
