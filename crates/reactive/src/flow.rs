//! [`Flow`]: a source with operators, the type users build pipelines with.

use crate::source::{BoxSource, Source};

/// A stream of items with backpressure: a [`Source`] plus the operators to transform it.
///
/// A `Flow` is lazy: nothing runs until it is consumed (`for_each`, `fold`, `collect`,
/// [`into_stream`](Flow::into_stream), or [`subscribe`](crate::Publisher::subscribe) with
/// demand). Synchronous operators (`map`, `filter`, `scan`, `take`, …) wrap the source
/// they were called on and fuse into one loop; time operators (`batch` with a wait,
/// `debounce`, `sample`, `timeout`, `retry`) add a tokio timer; asynchronous ones
/// (`async_boundary`, `buffer`, `flat_map`) run their upstream on a task of the current
/// tokio runtime and hand items over in batches.
///
/// # Examples
///
/// ```
/// use flowbed_reactive::Flow;
///
/// # futures::executor::block_on(async {
/// let total = Flow::iter(1..=10u64)
///     .filter(|n| n % 2 == 0)
///     .map(|n| n * n)
///     .fold(0, |sum, n| sum + n)
///     .await
///     .unwrap();
/// assert_eq!(total, 4 + 16 + 36 + 64 + 100);
/// # });
/// ```
#[derive(Debug)]
#[must_use = "a flow does nothing until it is consumed"]
pub struct Flow<S> {
    source: S,
}

impl<S: Source> Flow<S> {
    /// A flow over a source you wrote yourself.
    pub fn from_source(source: S) -> Self {
        Self { source }
    }

    /// The source inside, for writing your own operators or consumers.
    pub fn into_source(self) -> S {
        self.source
    }

    /// Erases the source's type (one dynamic call per item at the box), so flows built in
    /// different ways can be stored together or returned from one function.
    pub fn boxed(self) -> Flow<BoxSource<S::Item>>
    where
        S: Send + 'static,
    {
        Flow::from_source(BoxSource::new(self.source))
    }

    /// Wraps the source with an operator: the building block of every operator method.
    pub(crate) fn wrap<T: Source>(self, operator: impl FnOnce(S) -> T) -> Flow<T> {
        Flow::from_source(operator(self.source))
    }
}
