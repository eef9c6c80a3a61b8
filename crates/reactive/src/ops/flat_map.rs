//! One item to many: [`Flow::flat_map`] (concurrent inner flows) and
//! [`Flow::flat_map_iter`] (a fused synchronous expansion).

use std::task::{Context, Poll};

use crate::ops::boundary::Boundary;
use crate::source::{Emit, Source, Step};
use crate::{Error, Flow};

/// Items each inner flow of [`Flow::flat_map`] may run ahead of the consumer.
pub const DEFAULT_PREFETCH: usize = 32;

/// The source of [`Flow::flat_map`].
pub struct FlatMap<S, F, I: Source> {
    outer: Option<S>,
    f: F,
    inners: Vec<Boundary<I>>,
    concurrency: usize,
    prefetch: usize,
    /// Where the next round over the inner flows starts (rotates for fairness).
    start: usize,
}

impl<S, F, I: Source> std::fmt::Debug for FlatMap<S, F, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatMap")
            .field("outer_done", &self.outer.is_none())
            .field("inners", &self.inners.len())
            .field("concurrency", &self.concurrency)
            .field("prefetch", &self.prefetch)
            .finish()
    }
}

impl<S, F, I> Source for FlatMap<S, F, I>
where
    S: Source,
    F: FnMut(S::Item) -> Flow<I>,
    I: Source + Send + 'static,
    I::Item: Send + 'static,
{
    type Item = I::Item;

    fn poll_emit<E: Emit<I::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        loop {
            // Start inner flows while there is room for them.
            while self.inners.len() < self.concurrency {
                let Some(outer) = self.outer.as_mut() else {
                    break;
                };
                let (f, inners, concurrency, prefetch) = (
                    &mut self.f,
                    &mut self.inners,
                    self.concurrency,
                    self.prefetch,
                );
                let polled = outer.poll_emit(cx, &mut |item| {
                    inners.push(f(item).async_boundary(prefetch).into_source());
                    if inners.len() < concurrency {
                        std::ops::ControlFlow::Continue(())
                    } else {
                        std::ops::ControlFlow::Break(())
                    }
                });
                match polled {
                    Poll::Ready(Ok(Step::Paused)) => {}
                    Poll::Ready(Ok(Step::Ended)) => self.outer = None,
                    Poll::Ready(Err(error)) => return self.fail(error),
                    Poll::Pending => break,
                }
            }
            // Drain the inner flows, round robin.
            let count = self.inners.len();
            self.start = if count == 0 {
                0
            } else {
                (self.start + 1) % count
            };
            let mut finished = Vec::new();
            for offset in 0..count {
                let index = (self.start + offset) % count;
                match self.inners[index].poll_emit(cx, emit) {
                    Poll::Ready(Ok(Step::Paused)) => {
                        self.remove(&mut finished);
                        return Poll::Ready(Ok(Step::Paused));
                    }
                    Poll::Ready(Ok(Step::Ended)) => finished.push(index),
                    Poll::Ready(Err(error)) => return self.fail(error),
                    Poll::Pending => {}
                }
            }
            let room_freed = !finished.is_empty();
            self.remove(&mut finished);
            if self.inners.is_empty() && self.outer.is_none() {
                return Poll::Ready(Ok(Step::Ended));
            }
            if !(room_freed && self.outer.is_some()) {
                return Poll::Pending;
            }
        }
    }
}

impl<S, F, I: Source> FlatMap<S, F, I> {
    fn fail(&mut self, error: Error) -> Poll<Result<Step, Error>> {
        self.outer = None;
        self.inners.clear();
        Poll::Ready(Err(error))
    }

    fn remove(&mut self, finished: &mut Vec<usize>) {
        finished.sort_unstable();
        for index in finished.drain(..).rev() {
            drop(self.inners.remove(index));
        }
    }
}

/// The source of [`Flow::flat_map_iter`].
#[derive(Debug)]
pub struct FlatMapIter<S, F, It> {
    upstream: S,
    f: F,
    /// The expansion in progress when downstream filled up.
    current: Option<It>,
    /// Upstream ended while `current` still had items.
    upstream_ended: bool,
}

impl<S, F, C> Source for FlatMapIter<S, F, C::IntoIter>
where
    S: Source,
    F: FnMut(S::Item) -> C,
    C: IntoIterator,
{
    type Item = C::Item;

    #[inline]
    fn poll_emit<E: Emit<C::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        if let Some(current) = self.current.as_mut() {
            for item in current.by_ref() {
                if emit.emit(item).is_break() {
                    return Poll::Ready(Ok(Step::Paused));
                }
            }
            self.current = None;
        }
        if self.upstream_ended {
            return Poll::Ready(Ok(Step::Ended));
        }
        let (f, current) = (&mut self.f, &mut self.current);
        let step = self.upstream.poll_emit(cx, &mut |item| {
            let mut expansion = f(item).into_iter();
            for inner in expansion.by_ref() {
                if emit.emit(inner).is_break() {
                    *current = Some(expansion);
                    return std::ops::ControlFlow::Break(());
                }
            }
            std::ops::ControlFlow::Continue(())
        });
        match step {
            // Upstream's last item broke off mid-expansion: finish it first.
            Poll::Ready(Ok(Step::Ended)) if self.current.is_some() => {
                self.upstream_ended = true;
                Poll::Ready(Ok(Step::Paused))
            }
            other => other,
        }
    }
}

impl<S: Source> Flow<S> {
    /// Maps every item to a flow and merges up to `concurrency` (at least 1) of those flows
    /// at once.
    ///
    /// Each inner flow runs on its own tokio task, up to [`DEFAULT_PREFETCH`] items ahead
    /// of the consumer, so in-flight work keeps going while the consumer is busy (unlike
    /// `futures`' `buffered`, whose futures only progress while the consumer polls). Items
    /// of one inner flow keep their order; across inner flows they interleave. Use
    /// [`flat_map_iter`](Self::flat_map_iter) for a cheap synchronous expansion.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut pages = Flow::iter(["a", "b"])
    ///     .flat_map(|site| Flow::iter(1..=2).map(move |page| format!("{site}{page}")), 2)
    ///     .collect::<Vec<_>>()
    ///     .await
    ///     .unwrap();
    /// pages.sort();
    /// assert_eq!(pages, ["a1", "a2", "b1", "b2"]);
    /// # }
    /// ```
    pub fn flat_map<I, F>(self, f: F, concurrency: usize) -> Flow<FlatMap<S, F, I>>
    where
        F: FnMut(S::Item) -> Flow<I>,
        I: Source + Send + 'static,
        I::Item: Send + 'static,
    {
        self.flat_map_with_prefetch(f, concurrency, DEFAULT_PREFETCH)
    }

    /// [`flat_map`](Self::flat_map) with each inner flow `prefetch` items ahead at most.
    pub fn flat_map_with_prefetch<I, F>(
        self,
        f: F,
        concurrency: usize,
        prefetch: usize,
    ) -> Flow<FlatMap<S, F, I>>
    where
        F: FnMut(S::Item) -> Flow<I>,
        I: Source + Send + 'static,
        I::Item: Send + 'static,
    {
        self.wrap(|outer| FlatMap {
            outer: Some(outer),
            f,
            inners: Vec::new(),
            concurrency: concurrency.max(1),
            prefetch: prefetch.max(1),
            start: 0,
        })
    }

    /// Expands every item into the items of an iterator, in order, fused (no task, no
    /// allocation beyond the iterator's own).
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Flow;
    ///
    /// # futures::executor::block_on(async {
    /// let words = Flow::iter(["a b", "c"])
    ///     .flat_map_iter(|line| line.split(' '))
    ///     .collect::<Vec<_>>()
    ///     .await;
    /// assert_eq!(words.unwrap(), ["a", "b", "c"]);
    /// # });
    /// ```
    pub fn flat_map_iter<C: IntoIterator, F: FnMut(S::Item) -> C>(
        self,
        f: F,
    ) -> Flow<FlatMapIter<S, F, C::IntoIter>> {
        self.wrap(|upstream| FlatMapIter {
            upstream,
            f,
            current: None,
            upstream_ended: false,
        })
    }
}
