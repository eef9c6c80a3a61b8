//! `submit_async`: a submission that waits for queue room without blocking a thread.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use flowbed_lockfree::wait_list::{EntryState, WaitKey, Wake};

use crate::control::Refusal;
use crate::error::Rejected;
use crate::job::JobHandle;
use crate::pool::Inner;
use crate::stats::PoolCounters;
use crate::sync::Arc;
use crate::task::{Job, WithHandle};

/// The future returned by [`WorkerPool::submit_async`](crate::WorkerPool::submit_async).
#[must_use = "futures do nothing unless awaited"]
pub struct SubmitAsync<'a, F, T> {
    inner: &'a Arc<Inner>,
    job: Option<WithHandle<F, T>>,
    key: Option<WaitKey>,
}

impl<'a, F, T> SubmitAsync<'a, F, T> {
    pub(crate) fn new(inner: &'a Arc<Inner>, job: WithHandle<F, T>) -> Self {
        Self {
            inner,
            job: Some(job),
            key: None,
        }
    }
}

// The job is never pinned in place: it moves into the pool.
impl<F, T> Unpin for SubmitAsync<'_, F, T> {}

impl<F, T> SubmitAsync<'_, F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    /// One attempt; `None` when full (the job is back in `self`).
    fn attempt(&mut self) -> Option<Result<JobHandle<T>, Rejected<F>>> {
        let job = self
            .job
            .take()
            .expect("`SubmitAsync` polled after completion");
        match self.inner.offer(job) {
            Ok(handle) => Some(Ok(handle)),
            Err((job, Refusal::Full)) => {
                self.job = Some(job);
                None
            }
            Err((job, Refusal::Shutdown)) => {
                PoolCounters::count(&self.inner.counters.shutdown);
                Some(Err(Rejected::Shutdown(job.into_closure())))
            }
        }
    }
}

impl<F, T> Future for SubmitAsync<'_, F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Output = Result<JobHandle<T>, Rejected<F>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let room = &this.inner.room;
        if let Some(key) = this.key {
            if room.poll(key, Some(cx.waker())) == EntryState::Waiting {
                return Poll::Pending;
            }
            this.key = None;
        }
        if let Some(result) = this.attempt() {
            return Poll::Ready(result);
        }
        // Register, then re-check (see flowbed_lockfree::wait_list for why).
        let key = room.register(Wake::Task(cx.waker().clone()));
        match this.attempt() {
            Some(result) => {
                room.cancel(key);
                Poll::Ready(result)
            }
            None => {
                this.key = Some(key);
                Poll::Pending
            }
        }
    }
}

impl<F, T> Drop for SubmitAsync<'_, F, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.inner.room.cancel(key);
        }
    }
}

impl<F, T> fmt::Debug for SubmitAsync<'_, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitAsync")
            .field("done", &self.job.is_none())
            .field("waiting", &self.key.is_some())
            .finish()
    }
}
