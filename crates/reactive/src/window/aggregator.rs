//! [`Aggregator`]: how a window turns its events into a value, and the ready-made ones.

use std::fmt;
use std::marker::PhantomData;
use std::ops::AddAssign;

/// Folds the events of a window into an accumulator, merges accumulators (panes of
/// sliding windows, sessions that merge) and turns the accumulator into the output.
///
/// `merge` must be associative and `init()` its identity. Accumulators are cloned when
/// windows overlap (sliding windows, late re-fires), so keep them small (a count, a sum,
/// a sketch) unless you really want every event ([`Collect`]).
///
/// # Examples
///
/// An average:
///
/// ```
/// use flowbed_reactive::window::Aggregator;
///
/// struct Mean;
///
/// impl Aggregator<f64> for Mean {
///     type Acc = (f64, u64);
///     type Out = f64;
///     fn init(&self) -> (f64, u64) {
///         (0.0, 0)
///     }
///     fn add(&self, acc: &mut (f64, u64), value: &f64) {
///         acc.0 += value;
///         acc.1 += 1;
///     }
///     fn merge(&self, into: &mut (f64, u64), other: &(f64, u64)) {
///         into.0 += other.0;
///         into.1 += other.1;
///     }
///     fn finish(&self, acc: &(f64, u64)) -> f64 {
///         acc.0 / acc.1 as f64
///     }
/// }
/// # assert_eq!(Mean.finish(&(3.0, 2)), 1.5);
/// ```
pub trait Aggregator<T> {
    /// The running state of one window (or pane).
    type Acc: Clone;
    /// What a fired window reports.
    type Out;

    /// The accumulator of an empty window.
    fn init(&self) -> Self::Acc;
    /// Adds one event.
    fn add(&self, acc: &mut Self::Acc, item: &T);
    /// Adds everything `other` holds to `into` (`other` covers later panes or sessions).
    fn merge(&self, into: &mut Self::Acc, other: &Self::Acc);
    /// The output of a window holding `acc`.
    fn finish(&self, acc: &Self::Acc) -> Self::Out;
}

/// Counts the events of a window (`u64`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

impl<T> Aggregator<T> for Count {
    type Acc = u64;
    type Out = u64;

    fn init(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, _: &T) {
        *acc += 1;
    }
    fn merge(&self, into: &mut u64, other: &u64) {
        *into += other;
    }
    fn finish(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// Sums a value taken from every event: `Sum::of(|order: &Order| order.cents)`.
pub struct Sum<F, V> {
    extract: F,
    value: PhantomData<fn() -> V>,
}

impl<F, V> Sum<F, V> {
    /// Sums `extract(event)` over the window's events.
    pub fn of<T>(extract: F) -> Self
    where
        F: Fn(&T) -> V,
    {
        Self {
            extract,
            value: PhantomData,
        }
    }
}

impl<T, F, V> Aggregator<T> for Sum<F, V>
where
    F: Fn(&T) -> V,
    V: AddAssign + Default + Clone,
{
    type Acc = V;
    type Out = V;

    fn init(&self) -> V {
        V::default()
    }
    fn add(&self, acc: &mut V, item: &T) {
        *acc += (self.extract)(item);
    }
    fn merge(&self, into: &mut V, other: &V) {
        *into += other.clone();
    }
    fn finish(&self, acc: &V) -> V {
        acc.clone()
    }
}

/// The smallest value taken from the window's events (`None` only for an empty window,
/// which never fires).
pub struct Min<F, V> {
    extract: F,
    value: PhantomData<fn() -> V>,
}

impl<F, V> Min<F, V> {
    /// The minimum of `extract(event)` over the window's events.
    pub fn of<T>(extract: F) -> Self
    where
        F: Fn(&T) -> V,
    {
        Self {
            extract,
            value: PhantomData,
        }
    }
}

impl<T, F, V> Aggregator<T> for Min<F, V>
where
    F: Fn(&T) -> V,
    V: PartialOrd + Clone,
{
    type Acc = Option<V>;
    type Out = Option<V>;

    fn init(&self) -> Option<V> {
        None
    }
    fn add(&self, acc: &mut Option<V>, item: &T) {
        let value = (self.extract)(item);
        if acc.as_ref().is_none_or(|current| value < *current) {
            *acc = Some(value);
        }
    }
    fn merge(&self, into: &mut Option<V>, other: &Option<V>) {
        if let Some(value) = other
            && into.as_ref().is_none_or(|current| value < current)
        {
            *into = Some(value.clone());
        }
    }
    fn finish(&self, acc: &Option<V>) -> Option<V> {
        acc.clone()
    }
}

/// The largest value taken from the window's events (`None` only for an empty window,
/// which never fires).
pub struct Max<F, V> {
    extract: F,
    value: PhantomData<fn() -> V>,
}

impl<F, V> Max<F, V> {
    /// The maximum of `extract(event)` over the window's events.
    pub fn of<T>(extract: F) -> Self
    where
        F: Fn(&T) -> V,
    {
        Self {
            extract,
            value: PhantomData,
        }
    }
}

impl<T, F, V> Aggregator<T> for Max<F, V>
where
    F: Fn(&T) -> V,
    V: PartialOrd + Clone,
{
    type Acc = Option<V>;
    type Out = Option<V>;

    fn init(&self) -> Option<V> {
        None
    }
    fn add(&self, acc: &mut Option<V>, item: &T) {
        let value = (self.extract)(item);
        if acc.as_ref().is_none_or(|current| value > *current) {
            *acc = Some(value);
        }
    }
    fn merge(&self, into: &mut Option<V>, other: &Option<V>) {
        if let Some(value) = other
            && into.as_ref().is_none_or(|current| value > current)
        {
            *into = Some(value.clone());
        }
    }
    fn finish(&self, acc: &Option<V>) -> Option<V> {
        acc.clone()
    }
}

/// Keeps every event of the window (a `Vec`, cloned per fired window): handy for tests
/// and small windows. Within a window, events are grouped by pane (sliding windows) or
/// by merged session, in arrival order inside each group: sort if you need time order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Collect;

impl<T: Clone> Aggregator<T> for Collect {
    type Acc = Vec<T>;
    type Out = Vec<T>;

    fn init(&self) -> Vec<T> {
        Vec::new()
    }
    fn add(&self, acc: &mut Vec<T>, item: &T) {
        acc.push(item.clone());
    }
    fn merge(&self, into: &mut Vec<T>, other: &Vec<T>) {
        into.extend_from_slice(other);
    }
    fn finish(&self, acc: &Vec<T>) -> Vec<T> {
        acc.clone()
    }
}

/// The aggregator of [`fold`]: closures for `init`, `add` and `merge`; the output is the
/// accumulator itself.
pub struct Fold<I, Ad, M> {
    init: I,
    add: Ad,
    merge: M,
}

/// An aggregator from three closures: `init() -> Acc`, `add(&mut Acc, &event)` and
/// `merge(&mut Acc, &Acc)`; a fired window reports a clone of its accumulator.
///
/// # Examples
///
/// ```
/// use flowbed_reactive::window::{Aggregator, fold};
///
/// // The distinct users of a window.
/// let users = fold(
///     std::collections::BTreeSet::new,
///     |set, user: &&str| {
///         set.insert(user.to_string());
///     },
///     |into, other| into.extend(other.iter().cloned()),
/// );
/// let mut acc = users.init();
/// users.add(&mut acc, &"ann");
/// users.add(&mut acc, &"ann");
/// assert_eq!(users.finish(&acc).len(), 1);
/// ```
pub fn fold<T, Acc, I, Ad, M>(init: I, add: Ad, merge: M) -> Fold<I, Ad, M>
where
    Acc: Clone,
    I: Fn() -> Acc,
    Ad: Fn(&mut Acc, &T),
    M: Fn(&mut Acc, &Acc),
{
    Fold { init, add, merge }
}

impl<T, Acc, I, Ad, M> Aggregator<T> for Fold<I, Ad, M>
where
    Acc: Clone,
    I: Fn() -> Acc,
    Ad: Fn(&mut Acc, &T),
    M: Fn(&mut Acc, &Acc),
{
    type Acc = Acc;
    type Out = Acc;

    fn init(&self) -> Acc {
        (self.init)()
    }
    fn add(&self, acc: &mut Acc, item: &T) {
        (self.add)(acc, item);
    }
    fn merge(&self, into: &mut Acc, other: &Acc) {
        (self.merge)(into, other);
    }
    fn finish(&self, acc: &Acc) -> Acc {
        acc.clone()
    }
}

/// Two aggregators side by side: `(Count, Sum::of(..))` reports `(count, sum)`.
impl<T, A: Aggregator<T>, B: Aggregator<T>> Aggregator<T> for (A, B) {
    type Acc = (A::Acc, B::Acc);
    type Out = (A::Out, B::Out);

    fn init(&self) -> Self::Acc {
        (self.0.init(), self.1.init())
    }
    fn add(&self, acc: &mut Self::Acc, item: &T) {
        self.0.add(&mut acc.0, item);
        self.1.add(&mut acc.1, item);
    }
    fn merge(&self, into: &mut Self::Acc, other: &Self::Acc) {
        self.0.merge(&mut into.0, &other.0);
        self.1.merge(&mut into.1, &other.1);
    }
    fn finish(&self, acc: &Self::Acc) -> Self::Out {
        (self.0.finish(&acc.0), self.1.finish(&acc.1))
    }
}

macro_rules! opaque_debug {
    ($($name:ident<$($param:ident),*>),*) => {$(
        impl<$($param),*> fmt::Debug for $name<$($param),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($name))
            }
        }
    )*};
}

opaque_debug!(Sum<F, V>, Min<F, V>, Max<F, V>, Fold<I, Ad, M>);
