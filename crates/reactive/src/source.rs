//! The pull-with-push-inside protocol every flow stage speaks.
//!
//! A consumer polls a [`Source`] with an [`Emit`] sink; the source pushes every item it
//! has ready into the sink until the sink says "enough" ([`ControlFlow::Break`]), the
//! source ends, fails, or has nothing ready (then it returns `Pending` and wakes the task
//! later). A chain of synchronous operators is a chain of sinks wrapped around each other:
//! after inlining, pulling 1,000 items through `map → filter → map` is one loop with no
//! `Poll` per item, no allocation and no task hop (this is `Iterator::try_fold` for async
//! sources).

use std::ops::ControlFlow;
use std::task::{Context, Poll};

use crate::Error;

/// How a [`Source::poll_emit`] call ended when it did not fail or wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The sink returned [`ControlFlow::Break`]: the source stopped and can be polled again.
    Paused,
    /// The source completed: every item was emitted. It must not be polled again.
    Ended,
}

/// The receiving end of a [`Source::poll_emit`] call: takes one item and says whether it
/// wants more now. Any `FnMut(T) -> ControlFlow<()>` is an `Emit<T>`.
pub trait Emit<T> {
    /// Takes `item`. [`ControlFlow::Break`] asks the source to stop (for now) right after.
    fn emit(&mut self, item: T) -> ControlFlow<()>;
}

impl<T, F: FnMut(T) -> ControlFlow<()>> Emit<T> for F {
    #[inline(always)]
    fn emit(&mut self, item: T) -> ControlFlow<()> {
        self(item)
    }
}

/// A `dyn Emit` as a sized sink, for [`BoxSource`].
struct DynEmit<'a, T>(&'a mut dyn Emit<T>);

impl<T> Emit<T> for DynEmit<'_, T> {
    #[inline(always)]
    fn emit(&mut self, item: T) -> ControlFlow<()> {
        self.0.emit(item)
    }
}

/// A stage of a flow: something that produces items when polled.
///
/// # Contract
///
/// * `poll_emit` pushes zero or more items into `emit`, stopping right after `emit`
///   returns [`ControlFlow::Break`]: then it returns `Ready(Ok(Step::Paused))` — even when
///   that item was its last, in which case `Ended` comes on the next call. (Combinators
///   rely on it: after `Ended` they may go on to another input with the same sink.)
/// * `Ready(Ok(Step::Ended))`: every item was emitted; `Ready(Err(_))`: the source failed
///   (items emitted before the error in the same call count). Either is terminal: the
///   source is not polled again, only dropped.
/// * `Pending`: nothing more is ready; the source arranged for `cx`'s waker to be woken.
///   Items emitted before `Pending` in the same call count.
/// * A source that could emit forever without waiting yields now and then (wakes its own
///   waker and returns `Pending`), so one flow cannot hog an executor thread.
/// * Dropping a source cancels it and everything upstream of it.
///
/// Write your own source only for a new kind of input; [`Flow`](crate::Flow)'s
/// constructors cover iterators, `futures::Stream`s, [`Publisher`](crate::Publisher)s and
/// timers.
pub trait Source {
    /// The items this source produces.
    type Item;

    /// Pushes ready items into `emit`; see the trait docs for the contract.
    fn poll_emit<E: Emit<Self::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>>;
}

/// The object-safe face of [`Source`], behind [`BoxSource`].
trait DynSource<T>: Send {
    fn poll_emit_dyn(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut dyn Emit<T>,
    ) -> Poll<Result<Step, Error>>;
}

impl<S: Source + Send> DynSource<S::Item> for S {
    fn poll_emit_dyn(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut dyn Emit<S::Item>,
    ) -> Poll<Result<Step, Error>> {
        self.poll_emit(cx, &mut DynEmit(emit))
    }
}

/// A type-erased, sendable source: [`Flow::boxed`](crate::Flow::boxed) returns one, so
/// flows built in different ways can share a type (in a `Vec`, as a function's return).
/// Each item costs one dynamic call at the box, the stages inside stay fused.
pub struct BoxSource<T>(Box<dyn DynSource<T>>);

impl<T> BoxSource<T> {
    /// Boxes `source`.
    pub fn new<S: Source<Item = T> + Send + 'static>(source: S) -> Self {
        Self(Box::new(source))
    }
}

impl<T> Source for BoxSource<T> {
    type Item = T;

    #[inline]
    fn poll_emit<E: Emit<T>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        self.0.poll_emit_dyn(cx, emit)
    }
}

impl<T> std::fmt::Debug for BoxSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxSource")
    }
}
