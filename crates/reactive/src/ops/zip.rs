//! Pairing two flows item by item: [`Flow::zip`].

use std::ops::ControlFlow;
use std::task::{Context, Poll};

use crate::pull::Puller;
use crate::source::{Emit, Source, Step};
use crate::sources::iter::{YIELD_EVERY, yield_now};
use crate::{Error, Flow};

/// The source of [`Flow::zip`].
#[derive(Debug)]
pub struct Zip<A: Source, B: Source> {
    a: Puller<A>,
    b: Puller<B>,
    /// An item of one side waiting for its partner.
    a_item: Option<A::Item>,
    b_item: Option<B::Item>,
}

/// Fills `slot` from `side` if empty: `Err(Some(e))` failed, `Err(None)` ended,
/// `Ok(false)` nothing yet.
fn fill<S: Source>(
    side: &mut Puller<S>,
    slot: &mut Option<S::Item>,
    cx: &mut Context<'_>,
) -> Result<bool, Option<Error>> {
    if slot.is_some() {
        return Ok(true);
    }
    match side.poll_next(cx) {
        Poll::Ready(Some(Ok(item))) => {
            *slot = Some(item);
            Ok(true)
        }
        Poll::Ready(Some(Err(error))) => Err(Some(error)),
        Poll::Ready(None) => Err(None),
        Poll::Pending => Ok(false),
    }
}

impl<A: Source, B: Source> Source for Zip<A, B> {
    type Item = (A::Item, B::Item);

    fn poll_emit<E: Emit<Self::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        for _ in 0..YIELD_EVERY {
            let a_ready = fill(&mut self.a, &mut self.a_item, cx);
            let b_ready = fill(&mut self.b, &mut self.b_item, cx);
            match (a_ready, b_ready) {
                (Err(Some(error)), _) | (_, Err(Some(error))) => {
                    return Poll::Ready(Err(error));
                }
                // One side ended: no more pairs can form.
                (Err(None), _) | (_, Err(None)) => return Poll::Ready(Ok(Step::Ended)),
                (Ok(true), Ok(true)) => {
                    let pair = (
                        self.a_item.take().expect("filled"),
                        self.b_item.take().expect("filled"),
                    );
                    if let ControlFlow::Break(()) = emit.emit(pair) {
                        return Poll::Ready(Ok(Step::Paused));
                    }
                }
                _ => return Poll::Pending,
            }
        }
        yield_now(cx)
    }
}

impl<A: Source> Flow<A> {
    /// Pairs the n-th items of both flows; completes when either completes (the other is
    /// cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let pairs = Flow::iter([1, 2, 3]).zip(Flow::iter(["a", "b"])).collect::<Vec<_>>().await;
    /// assert_eq!(pairs.unwrap(), [(1, "a"), (2, "b")]);
    /// # });
    /// ```
    pub fn zip<B: Source>(self, other: Flow<B>) -> Flow<Zip<A, B>> {
        let b = Puller::new(other.into_source());
        self.wrap(|a| Zip {
            a: Puller::new(a),
            b,
            a_item: None,
            b_item: None,
        })
    }
}
