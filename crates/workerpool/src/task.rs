//! `Task`: one unit of work in a queue, with whatever must happen if it is dropped unrun.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
#[cfg(feature = "histograms")]
use std::time::Instant;

use crate::job::{JobCell, JobHandle, Outcome, Runnable};
use crate::scope::ScopeGuard;
use crate::small_fn::SmallFn;
use std::sync::Arc;

enum Kind {
    /// `execute`: nobody waits for the result.
    Detached(SmallFn),
    /// `submit`: the result goes to a `JobHandle`.
    Handled(Arc<dyn Runnable>),
    /// A scoped job: the guard keeps its scope open until the job is run or dropped.
    Scoped(Arc<dyn Runnable>, ScopeGuard),
}

/// A job in a queue. Dropping it unrun resolves its handle with `Discarded`, so no
/// accepted job can ever leave its submitter waiting forever.
pub(crate) struct Task {
    kind: Option<Kind>,
    #[cfg(feature = "histograms")]
    pub(crate) enqueued_at: Instant,
}

impl Task {
    fn new(kind: Kind) -> Self {
        Self {
            kind: Some(kind),
            #[cfg(feature = "histograms")]
            enqueued_at: Instant::now(),
        }
    }

    pub(crate) fn scoped(job: Arc<dyn Runnable>, guard: ScopeGuard) -> Self {
        Self::new(Kind::Scoped(job, guard))
    }

    /// True for a scoped job (which a policy must never drop).
    pub(crate) fn is_scoped(&self) -> bool {
        matches!(self.kind, Some(Kind::Scoped(..)))
    }

    /// Runs the job on the calling thread; panics are caught. `returned` is called as
    /// soon as the closure returns, before its result is visible to anyone.
    pub(crate) fn run(mut self, returned: &dyn Fn()) -> Outcome {
        match self.kind.take().expect("a task runs once") {
            Kind::Detached(job) => {
                let result = catch_unwind(AssertUnwindSafe(|| job.call()));
                returned();
                match result {
                    Ok(()) => Outcome::Completed,
                    Err(payload) => Outcome::Panicked(Some(payload)),
                }
            }
            Kind::Handled(job) => job.run(returned),
            Kind::Scoped(job, guard) => {
                let outcome = job.run(returned);
                if matches!(outcome, Outcome::Panicked(_)) {
                    guard.record_panic();
                }
                // The job (and its borrows) must be gone before the scope may close.
                drop(job);
                drop(guard);
                outcome
            }
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        match self.kind.take() {
            None | Some(Kind::Detached(_)) => {}
            Some(Kind::Handled(job)) => job.discard(),
            Some(Kind::Scoped(job, guard)) => {
                job.discard();
                drop(job);
                drop(guard);
            }
        }
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            None => "done",
            Some(Kind::Detached(_)) => "detached",
            Some(Kind::Handled(_)) => "handled",
            Some(Kind::Scoped(..)) => "scoped",
        };
        f.debug_struct("Task").field("kind", &kind).finish()
    }
}

/// A closure on its way into the pool, in the shape its submit method promised: turned
/// into a `Task` only once accepted, so a rejection hands the caller's closure back
/// untouched and allocates nothing.
pub(crate) trait Job: Sized {
    /// What the submitter gets back on success.
    type Handle;
    /// What a rejection hands back.
    type Closure;
    fn into_task(self) -> (Task, Self::Handle);
    fn into_closure(self) -> Self::Closure;
}

/// `execute(f)`: fire and forget.
pub(crate) struct Detached<F>(pub(crate) F);

impl<F> Job for Detached<F>
where
    F: FnOnce() + Send + 'static,
{
    type Handle = ();
    type Closure = F;

    fn into_task(self) -> (Task, ()) {
        (Task::new(Kind::Detached(SmallFn::new(self.0))), ())
    }

    fn into_closure(self) -> F {
        self.0
    }
}

/// `submit(f)`: the result goes to a `JobHandle`.
pub(crate) struct WithHandle<F, T>(pub(crate) F, PhantomData<fn() -> T>);

impl<F, T> WithHandle<F, T> {
    pub(crate) fn new(job: F) -> Self {
        Self(job, PhantomData)
    }
}

impl<F, T> Job for WithHandle<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Handle = JobHandle<T>;
    type Closure = F;

    fn into_task(self) -> (Task, JobHandle<T>) {
        let cell = Arc::new(JobCell::new(self.0));
        let handle = JobHandle::new(cell.clone());
        (Task::new(Kind::Handled(cell)), handle)
    }

    fn into_closure(self) -> F {
        self.0
    }
}
