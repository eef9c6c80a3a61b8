//! Any [`Publisher`] as a flow: [`Flow::from_publisher`].
//!
//! The flow subscribes on its first poll, requests `prefetch` items, and requests more each
//! time three quarters of that were consumed (Reactor's `limitRate` replenishing), so the
//! publisher never has more than `prefetch` items in flight and never waits for a
//! round trip while the consumer is busy.

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::task::{Context, Poll};

use flowbed_lockfree::Doorbell;

use crate::source::{Emit, Source, Step};
use crate::sources::iter::{YIELD_EVERY, yield_now};
use crate::spec::{Publisher, Subscriber};
use crate::sync::{Arc, Mutex, lock};
use crate::{Error, Flow, Subscription};

/// How many items [`Flow::from_publisher`] keeps in flight.
pub const DEFAULT_PREFETCH: usize = 256;

#[derive(Debug)]
struct Inbox<T> {
    state: Mutex<InboxState<T>>,
    /// Wakes the consuming flow when an item or the end arrives.
    bell: Doorbell,
}

#[derive(Debug)]
struct InboxState<T> {
    items: VecDeque<T>,
    ending: Option<Result<(), Error>>,
    subscription: Option<Subscription>,
}

/// The subscriber [`Flow::from_publisher`] subscribes with: it parks items in the inbox.
#[derive(Debug)]
struct InboxSubscriber<T> {
    inbox: Arc<Inbox<T>>,
    prefetch: usize,
    subscribed: bool,
}

impl<T> Subscriber<T> for InboxSubscriber<T> {
    fn on_subscribe(&mut self, subscription: Subscription) {
        if self.subscribed {
            // Rule 2.5: a second subscription is cancelled.
            subscription.cancel();
            return;
        }
        self.subscribed = true;
        let cancelled_meanwhile = {
            let mut state = lock(&self.inbox.state);
            state.subscription = Some(subscription.clone());
            state.ending.is_some()
        };
        if cancelled_meanwhile {
            subscription.cancel();
        } else {
            subscription.request(nonzero(self.prefetch));
        }
    }

    fn on_next(&mut self, item: T) {
        {
            let mut state = lock(&self.inbox.state);
            if state.ending.is_some() {
                return;
            }
            if state.items.len() >= self.prefetch {
                state.ending = Some(Err(Error::Protocol("on_next beyond the requested demand")));
                if let Some(subscription) = &state.subscription {
                    subscription.cancel();
                }
            } else {
                state.items.push_back(item);
            }
        }
        self.inbox.bell.ring();
    }

    fn on_error(&mut self, error: Error) {
        self.end(Err(error));
    }

    fn on_complete(&mut self) {
        self.end(Ok(()));
    }
}

impl<T> InboxSubscriber<T> {
    fn end(&mut self, ending: Result<(), Error>) {
        lock(&self.inbox.state).ending.get_or_insert(ending);
        self.inbox.bell.ring();
    }
}

fn nonzero(n: usize) -> NonZeroU64 {
    NonZeroU64::new(n as u64).unwrap_or(NonZeroU64::MIN)
}

/// The source of [`Flow::from_publisher`].
#[derive(Debug)]
pub struct FromPublisher<P: Publisher> {
    publisher: Option<P>,
    inbox: Arc<Inbox<P::Item>>,
    /// Items moved out of the inbox in one lock, emitted from here.
    ready: VecDeque<P::Item>,
    prefetch: usize,
    /// Items consumed since the last `request`.
    consumed: usize,
}

impl<P> Source for FromPublisher<P>
where
    P: Publisher,
    P::Item: Send + 'static,
{
    type Item = P::Item;

    fn poll_emit<E: Emit<P::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        if let Some(publisher) = self.publisher.take() {
            publisher.subscribe(InboxSubscriber {
                inbox: Arc::clone(&self.inbox),
                prefetch: self.prefetch,
                subscribed: false,
            });
        }
        let replenish_at = (self.prefetch - self.prefetch / 4).max(1);
        let mut emitted = 0;
        loop {
            while let Some(item) = self.ready.pop_front() {
                self.consumed += 1;
                if self.consumed >= replenish_at {
                    self.request_more();
                }
                emitted += 1;
                if emit.emit(item).is_break() {
                    return Poll::Ready(Ok(Step::Paused));
                }
                if emitted >= YIELD_EVERY {
                    return yield_now(cx);
                }
            }
            match self.refill() {
                Some(ending) => return Poll::Ready(ending.map(|()| Step::Ended)),
                None if !self.ready.is_empty() => continue,
                None => {}
            }
            self.inbox.bell.arm(cx.waker());
            match self.refill() {
                Some(ending) => {
                    self.inbox.bell.disarm();
                    return Poll::Ready(ending.map(|()| Step::Ended));
                }
                None if !self.ready.is_empty() => self.inbox.bell.disarm(),
                None => return Poll::Pending,
            }
        }
    }
}

impl<P: Publisher> FromPublisher<P> {
    /// Moves the inbox's items to `ready`; the ending once every item was taken.
    fn refill(&mut self) -> Option<Result<(), Error>> {
        let mut state = lock(&self.inbox.state);
        if state.items.is_empty() {
            return state.ending.clone();
        }
        std::mem::swap(&mut self.ready, &mut state.items);
        None
    }

    fn request_more(&mut self) {
        let subscription = lock(&self.inbox.state).subscription.clone();
        if let Some(subscription) = subscription {
            subscription.request(nonzero(self.consumed));
            self.consumed = 0;
        }
    }
}

impl<P: Publisher> Drop for FromPublisher<P> {
    fn drop(&mut self) {
        let mut state = lock(&self.inbox.state);
        state.ending.get_or_insert(Ok(()));
        if let Some(subscription) = state.subscription.take() {
            subscription.cancel();
        }
    }
}

impl<P> Flow<FromPublisher<P>>
where
    P: Publisher,
    P::Item: Send + 'static,
{
    /// A flow of any [`Publisher`]'s items, keeping [`DEFAULT_PREFETCH`] in flight.
    pub fn from_publisher(publisher: P) -> Self {
        Self::from_publisher_with_prefetch(publisher, DEFAULT_PREFETCH)
    }

    /// A flow of a publisher's items with `prefetch` (at least 1) items in flight.
    pub fn from_publisher_with_prefetch(publisher: P, prefetch: usize) -> Self {
        Flow::from_source(FromPublisher {
            publisher: Some(publisher),
            inbox: Arc::new(Inbox {
                state: Mutex::new(InboxState {
                    items: VecDeque::new(),
                    ending: None,
                    subscription: None,
                }),
                bell: Doorbell::new(),
            }),
            ready: VecDeque::new(),
            prefetch: prefetch.max(1),
            consumed: 0,
        })
    }
}
