//! The task queues: one global injector that outside submitters push to, and one local
//! deque per worker that the worker pushes nested jobs to and batch-steals into, which
//! idle workers steal from.
//!
//! Normal builds use crossbeam-deque (the Chase-Lev deque and injector that rayon and
//! tokio's designs rest on; flowbed-lockfree has no work-stealing deque). Under loom a
//! mutex-guarded `VecDeque` stands in: the models check the pool's own protocols (the
//! counters, parking, shutdown), taking the deque as a linearizable queue.

use crate::task::Task;

#[cfg(not(flowbed_loom))]
mod imp {
    use super::Task;
    use crossbeam_deque::{Steal, Stealer as CbStealer, Worker};

    #[derive(Debug, Default)]
    pub(crate) struct Injector(crossbeam_deque::Injector<Task>);

    impl Injector {
        pub(crate) fn push(&self, task: Task) {
            self.0.push(task);
        }

        /// Takes the oldest task.
        pub(crate) fn steal(&self) -> Option<Task> {
            retry(|| self.0.steal())
        }

        /// Takes the oldest task and moves a batch of the next ones into `local`.
        pub(crate) fn steal_batch_and_pop(&self, local: &LocalQueue) -> Option<Task> {
            retry(|| self.0.steal_batch_and_pop(&local.0))
        }
    }

    #[derive(Debug)]
    pub(crate) struct LocalQueue(Worker<Task>);

    impl LocalQueue {
        pub(crate) fn new() -> Self {
            Self(Worker::new_fifo())
        }

        pub(crate) fn push(&self, task: Task) {
            self.0.push(task);
        }

        pub(crate) fn pop(&self) -> Option<Task> {
            self.0.pop()
        }

        pub(crate) fn stealer(&self) -> Stealer {
            Stealer(self.0.stealer())
        }
    }

    #[derive(Debug, Clone)]
    pub(crate) struct Stealer(CbStealer<Task>);

    impl Stealer {
        pub(crate) fn steal(&self) -> Option<Task> {
            retry(|| self.0.steal())
        }
    }

    fn retry(mut attempt: impl FnMut() -> Steal<Task>) -> Option<Task> {
        loop {
            match attempt() {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }
}

#[cfg(flowbed_loom)]
mod imp {
    use super::Task;
    use crate::sync::{Arc, Mutex, lock};
    use std::collections::VecDeque;

    #[derive(Debug, Default)]
    pub(crate) struct Injector(Mutex<VecDeque<Task>>);

    impl Injector {
        pub(crate) fn push(&self, task: Task) {
            lock(&self.0).push_back(task);
        }

        pub(crate) fn steal(&self) -> Option<Task> {
            lock(&self.0).pop_front()
        }

        pub(crate) fn steal_batch_and_pop(&self, _local: &LocalQueue) -> Option<Task> {
            self.steal()
        }
    }

    #[derive(Debug)]
    pub(crate) struct LocalQueue(Arc<Mutex<VecDeque<Task>>>);

    impl LocalQueue {
        pub(crate) fn new() -> Self {
            Self(Arc::new(Mutex::new(VecDeque::new())))
        }

        pub(crate) fn push(&self, task: Task) {
            lock(&self.0).push_back(task);
        }

        pub(crate) fn pop(&self) -> Option<Task> {
            lock(&self.0).pop_front()
        }

        pub(crate) fn stealer(&self) -> Stealer {
            Stealer(self.0.clone())
        }
    }

    #[derive(Debug, Clone)]
    pub(crate) struct Stealer(Arc<Mutex<VecDeque<Task>>>);

    impl Stealer {
        pub(crate) fn steal(&self) -> Option<Task> {
            lock(&self.0).pop_front()
        }
    }
}

pub(crate) use imp::{Injector, LocalQueue, Stealer};
