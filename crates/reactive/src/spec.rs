//! The Reactive Streams interfaces: [`Publisher`] and [`Subscriber`] (the third,
//! [`Subscription`](crate::Subscription), is in `demand.rs`).
//!
//! The protocol, in short: `subscribe` → exactly one `on_subscribe(subscription)` → the
//! subscriber requests `n` → at most `n` `on_next` in total → at most one terminal signal
//! (`on_error` or `on_complete`). Signals to one subscriber never overlap.

use crate::Error;

/// A source of items for any number of [`Subscriber`]s, each with its own demand.
///
/// Every [`Flow`](crate::Flow) is a publisher; write your own with
/// [`Demand::pair`](crate::Demand::pair).
pub trait Publisher {
    /// The items published.
    type Item;

    /// Starts publishing to `subscriber`: it gets `on_subscribe` first, then items as it
    /// requests them. Publishing runs on a task of the current tokio runtime; outside one
    /// the subscriber gets `on_subscribe` then `on_error(Error::NoRuntime)`.
    fn subscribe<S>(self, subscriber: S)
    where
        S: Subscriber<Self::Item> + Send + 'static;
}

/// The receiving end of a subscription. Signals arrive one at a time (never
/// concurrently), `on_subscribe` first, at most one of `on_error`/`on_complete` last.
///
/// A subscriber that panics in a signal is treated as having cancelled (rule 2.13): it
/// gets no further signals and the publisher releases it.
pub trait Subscriber<T> {
    /// The subscription started; request items through `subscription` (now or later, from
    /// any thread).
    fn on_subscribe(&mut self, subscription: crate::Subscription);

    /// One requested item.
    fn on_next(&mut self, item: T);

    /// The flow failed; no more signals follow.
    fn on_error(&mut self, error: Error);

    /// The flow completed; no more signals follow.
    fn on_complete(&mut self);
}
