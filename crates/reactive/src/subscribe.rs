//! Every [`Flow`] is a [`Publisher`]: a driver task serves the subscriber's demand.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::demand::{Demand, UNBOUNDED};
use crate::panic::guard;
use crate::source::{Source, Step};
use crate::spec::{Publisher, Subscriber};
use crate::{Error, Flow};

/// Publishes a flow to one subscriber: returned by [`Flow::drive`], spawned by
/// [`Publisher::subscribe`]. Resolves when the subscription is over (completed, failed or
/// cancelled).
#[must_use = "futures do nothing unless polled"]
pub struct Drive<S: Source, Sub> {
    source: Option<S>,
    subscriber: Option<Sub>,
    /// Handed to the subscriber in the first poll.
    subscription: Option<crate::Subscription>,
    demand: Demand,
    /// Items granted and not yet sent.
    budget: u64,
    /// One item pulled while there was no demand (to see an ending without a request,
    /// rule 1.4), sent first when demand arrives.
    stash: Option<S::Item>,
    /// How the source ended while `stash` was held.
    ending: Option<Result<(), Error>>,
    started: bool,
}

impl<S: Source, Sub> Unpin for Drive<S, Sub> {}

impl<S: Source, Sub> std::fmt::Debug for Drive<S, Sub> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drive")
            .field("demand", &self.demand)
            .field("budget", &self.budget)
            .field("done", &self.subscriber.is_none())
            .finish()
    }
}

impl<S: Source, Sub: Subscriber<S::Item>> Drive<S, Sub> {
    /// Ends the subscription: drops the source (cancelling upstream) and releases the
    /// subscriber after its last signal.
    fn end(&mut self, last_signal: Option<Result<(), Error>>) -> Poll<()> {
        self.source = None;
        if let (Some(mut subscriber), Some(signal)) = (self.subscriber.take(), last_signal) {
            // A panic in the terminal signal has nobody left to tell.
            let _ = guard(|| match signal {
                Ok(()) => subscriber.on_complete(),
                Err(error) => subscriber.on_error(error),
            });
        }
        Poll::Ready(())
    }
}

impl<S: Source, Sub> Drive<S, Sub> {
    /// Without demand, pulls at most one item into the stash, so an ending is seen (and
    /// signalled) without waiting for a request. Returns the ending to signal now.
    fn peek(&mut self, cx: &mut Context<'_>) -> Option<Result<(), Error>> {
        if self.stash.is_some() || self.ending.is_some() {
            return None;
        }
        let source = self.source.as_mut()?;
        let stash = &mut self.stash;
        let polled = guard(|| {
            source.poll_emit(cx, &mut |item| {
                *stash = Some(item);
                ControlFlow::Break(())
            })
        });
        let ending = match polled {
            Ok(Poll::Pending) | Ok(Poll::Ready(Ok(Step::Paused))) => return None,
            Ok(Poll::Ready(Ok(Step::Ended))) => Ok(()),
            Ok(Poll::Ready(Err(error))) | Err(error) => Err(error),
        };
        self.source = None;
        if self.stash.is_some() {
            self.ending = Some(ending);
            None
        } else {
            Some(ending)
        }
    }
}

impl<S: Source, Sub: Subscriber<S::Item>> Future for Drive<S, Sub> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.subscriber.is_none() {
            return Poll::Ready(());
        }
        if !this.started {
            this.started = true;
            let subscription = this.take_subscription();
            let subscriber = this.subscriber.as_mut().expect("checked above");
            if guard(|| subscriber.on_subscribe(subscription)).is_err() {
                return this.end(None);
            }
        }
        loop {
            if this.demand.is_cancelled() {
                return this.end(None);
            }
            if this.stash.is_none() {
                // The stashed item was the last: the end needs no further demand.
                if let Some(ending) = this.ending.take() {
                    return this.end(Some(ending));
                }
            }
            if this.budget == 0 {
                if let Some(ending) = this.peek(cx) {
                    return this.end(Some(ending));
                }
                match this.demand.poll_take_all(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => return this.end(None),
                    Poll::Ready(Some(granted)) => this.budget = granted,
                }
            }
            if let Some(item) = this.stash.take() {
                let subscriber = this.subscriber.as_mut().expect("running");
                let demand = &this.demand;
                if guard(|| demand.serve(|| subscriber.on_next(item))).is_err() {
                    return this.end(None);
                }
                if this.budget != UNBOUNDED {
                    this.budget -= 1;
                }
                continue;
            }
            let (Some(source), Some(subscriber)) = (this.source.as_mut(), this.subscriber.as_mut())
            else {
                return Poll::Ready(());
            };
            let (demand, budget) = (&this.demand, &mut this.budget);
            let mut in_subscriber = false;
            let mut sent = 0u64;
            let polled = guard(|| {
                source.poll_emit(cx, &mut |item| {
                    in_subscriber = true;
                    demand.serve(|| subscriber.on_next(item));
                    in_subscriber = false;
                    sent += 1;
                    if *budget != UNBOUNDED {
                        // Saturating: a source that breaks the contract (items after a
                        // `Break`) must not turn the budget into "unbounded".
                        *budget = budget.saturating_sub(1);
                    }
                    if demand.is_cancelled() {
                        return ControlFlow::Break(());
                    }
                    if *budget == 0 {
                        // Demand requested from inside on_next arrives here without a wake-up.
                        *budget = demand.take_all();
                        if *budget == 0 {
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                })
            });
            match polled {
                // The subscriber panicked: it counts as cancelled (rule 2.13).
                Err(_) if in_subscriber => return this.end(None),
                Err(panic) => return this.end(Some(Err(panic))),
                Ok(Poll::Pending) => {
                    // Wake on cancel too, so a cancelled subscription ends promptly even
                    // while upstream has nothing to say.
                    this.demand.wake_on_signal(cx);
                    if this.demand.is_cancelled() {
                        return this.end(None);
                    }
                    return Poll::Pending;
                }
                Ok(Poll::Ready(Ok(Step::Paused))) if sent == 0 => {
                    // A pause without an item (the source's choice): yield, do not spin.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Ok(Poll::Ready(Ok(Step::Paused))) => {}
                Ok(Poll::Ready(Ok(Step::Ended))) => return this.end(Some(Ok(()))),
                Ok(Poll::Ready(Err(error))) => return this.end(Some(Err(error))),
            }
        }
    }
}

impl<S: Source, Sub> Drive<S, Sub> {
    fn take_subscription(&mut self) -> crate::Subscription {
        self.subscription
            .take()
            .expect("the subscription is handed out once, at the start")
    }
}

impl<S: Source> Flow<S> {
    /// Publishes this flow to `subscriber` as a future you run yourself (on any
    /// executor). [`Publisher::subscribe`] spawns it on the current tokio runtime.
    pub fn drive<Sub: Subscriber<S::Item>>(self, subscriber: Sub) -> Drive<S, Sub> {
        let (subscription, demand) = Demand::pair();
        Drive {
            source: Some(self.into_source()),
            subscriber: Some(subscriber),
            subscription: Some(subscription),
            demand,
            budget: 0,
            stash: None,
            ending: None,
            started: false,
        }
    }
}

impl<S> Publisher for Flow<S>
where
    S: Source + Send + 'static,
    S::Item: Send + 'static,
{
    type Item = S::Item;

    fn subscribe<Sub>(self, mut subscriber: Sub)
    where
        Sub: Subscriber<S::Item> + Send + 'static,
    {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(self.drive(subscriber));
            }
            Err(_) => {
                let (subscription, _demand) = Demand::pair();
                let _ = guard(|| {
                    subscriber.on_subscribe(subscription);
                    subscriber.on_error(Error::NoRuntime);
                });
            }
        }
    }
}
