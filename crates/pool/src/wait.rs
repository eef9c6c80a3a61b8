//! The future a caller awaits while queued for a connection. Dropping it at any point —
//! a timeout, a cancelled task — takes the caller off the queue, and a connection handed to
//! it in the meantime goes on to the next waiter.

// `pub` items in a private module: reachable only through `loom_api` in loom builds.
#![allow(unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::conn::Conn;
use crate::slots::{Put, Slots, WaitFailed, WaiterKey};
use crate::sync::{Mutex, lock};

/// Waits at `key` in the queue of `slots`.
#[derive(Debug)]
pub struct Wait<'a, C, E> {
    slots: &'a Mutex<Slots<C, E>>,
    key: Option<WaiterKey>,
}

impl<'a, C, E> Wait<'a, C, E> {
    pub fn new(slots: &'a Mutex<Slots<C, E>>, key: WaiterKey) -> Self {
        Self {
            slots,
            key: Some(key),
        }
    }
}

impl<C, E> Future for Wait<'_, C, E> {
    type Output = Result<Conn<C>, WaitFailed<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let key = self.key.expect("Wait polled after it finished");
        let outcome = lock(self.slots).poll_waiter(key, cx.waker());
        match outcome {
            Some(outcome) => {
                self.key = None;
                Poll::Ready(outcome)
            }
            None => Poll::Pending,
        }
    }
}

impl<C, E> Drop for Wait<'_, C, E> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut slots = lock(self.slots);
            if let Some(conn) = slots.cancel(key) {
                // Handed to us after we stopped caring: hand it on.
                let put = slots.put(conn);
                drop(slots);
                finish_put(put);
            }
        }
    }
}

/// Acts on a [`Put`] after the lock is released: wakes the waiter it went to, or closes it.
pub fn finish_put<C>(put: Put<C>) {
    match put {
        Put::Handed(waker) => wake(waker),
        Put::Idle => {}
        Put::Close(conn) => drop(conn),
    }
}

pub fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}
