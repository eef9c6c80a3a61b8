//! The window operator: the [`Windowing`] builder ([`Flow::windowed`]) and the source it
//! builds, [`WindowSource`].

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::aggregator::Aggregator;
use super::count::Counts;
use super::event::WindowEvent;
use super::panes::Panes;
use super::session::Sessions;
use super::spec::{SpecKind, WindowSpec};
use super::watermarks::{WatermarkClock, Watermarks};
use super::{Timestamp, millis};
use crate::source::{Emit, Source, Step};
use crate::sources::iter::{YIELD_EVERY, yield_now};
use crate::{Error, Flow};

/// The key function of a [`Windowing`] before [`key_by`](Windowing::key_by): every event
/// has the key `()`.
pub type NoKey<T> = fn(&T);

/// The timestamp function of a [`Windowing`] before
/// [`event_time`](Windowing::event_time): unused, windows run on processing time.
pub type ProcessingTime<T> = fn(&T) -> Timestamp;

/// The builder [`Flow::windowed`] returns: pick the time (processing time unless
/// [`event_time`](Self::event_time)), the key (one global key `()` unless
/// [`key_by`](Self::key_by)), the lateness, then [`aggregate`](Self::aggregate).
#[must_use = "a windowing does nothing until `aggregate` is called and the flow consumed"]
pub struct Windowing<S: Source, K, KF, TF> {
    upstream: S,
    spec: WindowSpec,
    key_fn: KF,
    event_time: Option<(TF, Watermarks<S::Item>)>,
    lateness: Timestamp,
    key: PhantomData<fn() -> K>,
}

impl<S: Source> Flow<S> {
    /// Groups the flow's items into windows (see the [`window`](crate::window) module for
    /// the semantics). Returns a builder; finish it with
    /// [`aggregate`](Windowing::aggregate).
    ///
    /// # Examples
    ///
    /// Page views per page, every 10 s of event time, emitted on time as the watermark
    /// passes (events up to 2 s out of order):
    ///
    /// ```
    /// use std::time::Duration;
    /// use flowbed_reactive::Flow;
    /// use flowbed_reactive::window::{Count, Firing, Watermarks, WindowEvent, WindowSpec};
    ///
    /// # futures::executor::block_on(async {
    /// let views = [("/", 1_000), ("/a", 9_000), ("/", 8_500), ("/", 12_000), ("/a", 30_000)];
    /// let results = Flow::iter(views)
    ///     .windowed(WindowSpec::tumbling(Duration::from_secs(10)))
    ///     .event_time(|view| view.1, Watermarks::bounded(Duration::from_secs(2)))
    ///     .key_by(|view| view.0)
    ///     .aggregate(Count)
    ///     .collect::<Vec<_>>()
    ///     .await
    ///     .unwrap();
    /// let fired: Vec<_> = results
    ///     .into_iter()
    ///     .filter_map(WindowEvent::into_fired)
    ///     .map(|r| (r.key, r.window.start, r.value, r.firing))
    ///     .collect();
    /// // The view at 12_000 moves the watermark to 9_999: both pages' [0, 10_000) fire
    /// // (keys in either order). The view at 30_000 fires "/"'s [10_000, 20_000); the
    /// // end of input fires "/a"'s [30_000, 40_000).
    /// assert_eq!(fired.len(), 4);
    /// assert!(fired.contains(&("/", 0, 2, Firing::OnTime)));
    /// assert!(fired.contains(&("/a", 0, 1, Firing::OnTime)));
    /// assert_eq!(fired[2..], [("/", 10_000, 1, Firing::OnTime), ("/a", 30_000, 1, Firing::OnTime)]);
    /// # });
    /// ```
    pub fn windowed(
        self,
        spec: WindowSpec,
    ) -> Windowing<S, (), NoKey<S::Item>, ProcessingTime<S::Item>> {
        Windowing {
            upstream: self.into_source(),
            spec,
            key_fn: |_| {},
            event_time: None,
            lateness: 0,
            key: PhantomData,
        }
    }
}

impl<S: Source, K, KF, TF> Windowing<S, K, KF, TF> {
    /// Event time: `timestamp(&event)` is the event's time in milliseconds, and
    /// `watermarks` says when a point in event time is complete. Without this call,
    /// windows run on processing time. Count windows ignore it.
    pub fn event_time<F: FnMut(&S::Item) -> Timestamp>(
        self,
        timestamp: F,
        watermarks: Watermarks<S::Item>,
    ) -> Windowing<S, K, KF, F> {
        Windowing {
            upstream: self.upstream,
            spec: self.spec,
            key_fn: self.key_fn,
            event_time: Some((timestamp, watermarks)),
            lateness: self.lateness,
            key: PhantomData,
        }
    }

    /// Keyed windows: each key (a user, a page) has its own windows. Without this call
    /// every event has the key `()`.
    pub fn key_by<K2, F: FnMut(&S::Item) -> K2>(self, key: F) -> Windowing<S, K2, F, TF> {
        Windowing {
            upstream: self.upstream,
            spec: self.spec,
            key_fn: key,
            event_time: self.event_time,
            lateness: self.lateness,
            key: PhantomData,
        }
    }

    /// Event time only: keeps a window's state `lateness` after the watermark passed its
    /// end, so late events within it update the window and fire it again
    /// ([`Firing::Late`](super::Firing::Late)). Default: zero (a window's state is dropped
    /// when it fires). Ignored for processing time and count windows.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness = millis(lateness);
        self
    }

    /// Aggregates each window with `aggregator`: the flow of fired windows and late
    /// events this builds.
    pub fn aggregate<A>(self, aggregator: A) -> Flow<WindowSource<S, K, KF, TF, A>>
    where
        A: Aggregator<S::Item>,
        K: Hash + Eq + Clone,
        KF: FnMut(&S::Item) -> K,
        TF: FnMut(&S::Item) -> Timestamp,
    {
        let engine = match self.spec.kind {
            SpecKind::Sliding { size, slide } => Engine::Panes(Panes::new(size, slide)),
            SpecKind::Session { gap } => Engine::Sessions(Sessions::new(gap)),
            SpecKind::Count { n } => Engine::Count(Counts::new(n)),
        };
        let time = match self.event_time {
            Some((stamp, marks)) => Time::Event {
                stamp,
                clock: WatermarkClock::new(marks),
            },
            None => Time::Processing { origin: None },
        };
        let lateness = match time {
            Time::Event { .. } => self.lateness,
            Time::Processing { .. } => 0,
        };
        Flow::from_source(WindowSource {
            upstream: Some(self.upstream),
            sleep: None,
            core: Core {
                key_fn: self.key_fn,
                time,
                lateness,
                agg: aggregator,
                engine,
                watermark: Timestamp::MIN,
                out: VecDeque::new(),
                failure: None,
            },
            upstream_pending: false,
        })
    }
}

impl<S: Source, K, KF, TF> fmt::Debug for Windowing<S, K, KF, TF> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Windowing")
            .field("spec", &self.spec)
            .field(
                "event_time",
                &self.event_time.as_ref().map(|(_, marks)| marks),
            )
            .field("lateness_ms", &self.lateness)
            .finish_non_exhaustive()
    }
}

/// The windows of every kind.
#[derive(Debug)]
enum Engine<K, Acc> {
    Panes(Panes<K, Acc>),
    Sessions(Sessions<K, Acc>),
    Count(Counts<K, Acc>),
}

/// Where timestamps and the watermark come from.
enum Time<TF, T> {
    /// Arrival time on the tokio clock, in ms since `origin` (the first poll).
    Processing { origin: Option<Instant> },
    /// The event's own timestamp and a watermark strategy.
    Event { stamp: TF, clock: WatermarkClock<T> },
}

/// Everything but the upstream and the timer, so the upstream's sink can borrow it.
struct Core<K, KF, TF, A: Aggregator<T>, T> {
    key_fn: KF,
    time: Time<TF, T>,
    lateness: Timestamp,
    agg: A,
    engine: Engine<K, A::Acc>,
    watermark: Timestamp,
    out: VecDeque<WindowEvent<K, A::Out, T>>,
    failure: Option<Error>,
}

impl<K, KF, TF, A, T> Core<K, KF, TF, A, T>
where
    K: Hash + Eq + Clone,
    KF: FnMut(&T) -> K,
    TF: FnMut(&T) -> Timestamp,
    A: Aggregator<T>,
{
    /// Milliseconds of processing time since `origin`.
    fn since(origin: Instant, now: Instant) -> Timestamp {
        millis(now.saturating_duration_since(origin))
    }

    /// Processes one event.
    fn on_item(&mut self, item: T) {
        if let Engine::Count(counts) = &mut self.engine {
            let key = (self.key_fn)(&item);
            counts.on_event(&self.agg, key, &item, &mut self.out);
            return;
        }
        match &mut self.time {
            Time::Processing { origin } => {
                let now = Instant::now();
                let time = Self::since(*origin.get_or_insert(now), now);
                self.advance(time - 1);
                let key = (self.key_fn)(&item);
                self.engine_event(key, time, item);
            }
            Time::Event { stamp, clock } => {
                let mut idle = None;
                if clock.watches_idle() {
                    let now = Instant::now();
                    idle = clock.idle_watermark(now);
                    clock.arrived(now);
                }
                let time = stamp(&item);
                let mark = clock.mark(time, &item);
                if let Some(watermark) = idle {
                    self.advance(watermark);
                }
                let key = (self.key_fn)(&item);
                self.engine_event(key, time, item);
                if let (Some(mark), Time::Event { clock, .. }) = (mark, &mut self.time) {
                    let watermark = clock.apply(mark);
                    self.advance(watermark);
                }
            }
        }
    }

    fn engine_event(&mut self, key: K, time: Timestamp, item: T) {
        let (agg, out, watermark, lateness) =
            (&self.agg, &mut self.out, self.watermark, self.lateness);
        match &mut self.engine {
            Engine::Panes(panes) => panes.on_event(agg, key, time, item, watermark, lateness, out),
            Engine::Sessions(sessions) => {
                sessions.on_event(agg, key, time, item, watermark, lateness, out);
            }
            Engine::Count(counts) => counts.on_event(agg, key, &item, out),
        }
    }

    /// Raises the watermark to `watermark` (if higher), firing what it passes.
    fn advance(&mut self, watermark: Timestamp) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        let (agg, out, lateness) = (&self.agg, &mut self.out, self.lateness);
        match &mut self.engine {
            Engine::Panes(panes) => panes.advance(agg, watermark, lateness, out),
            Engine::Sessions(sessions) => sessions.advance(agg, watermark, lateness, out),
            Engine::Count(counts) if watermark == Timestamp::MAX => counts.flush(agg, out),
            Engine::Count(_) => {}
        }
    }

    /// The earliest timer of the engine.
    fn next_timer(&self) -> Option<Timestamp> {
        match &self.engine {
            Engine::Panes(panes) => panes.next_timer(),
            Engine::Sessions(sessions) => sessions.next_timer(),
            Engine::Count(_) => None,
        }
    }

    /// Advances the watermark by the clock (processing time, idle source) if a timer is
    /// due.
    fn fire_by_clock(&mut self) {
        let Some(next) = self.next_timer() else {
            return;
        };
        let watermark = match &self.time {
            Time::Processing {
                origin: Some(origin),
            } => Self::since(*origin, Instant::now()) - 1,
            Time::Event { clock, .. } if clock.watches_idle() => {
                match clock.idle_watermark(Instant::now()) {
                    Some(watermark) => watermark,
                    None => return,
                }
            }
            _ => return,
        };
        if watermark >= next {
            self.advance(watermark);
        }
    }

    /// When the clock will make the earliest timer due.
    fn deadline(&self) -> Option<Instant> {
        let next = self.next_timer()?;
        match &self.time {
            Time::Processing { origin } => {
                let wait = u64::try_from(next.checked_add(1)?).ok()?;
                (*origin)?.checked_add(Duration::from_millis(wait))
            }
            Time::Event { clock, .. } => clock.idle_deadline(next),
        }
    }

    /// Drops every open window and fails with `error` once the fired results are out.
    fn fail(&mut self, error: Error) {
        match &mut self.engine {
            Engine::Panes(panes) => panes.clear(),
            Engine::Sessions(sessions) => sessions.clear(),
            Engine::Count(counts) => counts.clear(),
        }
        self.failure = Some(error);
    }
}

/// The source of [`Windowing::aggregate`]: emits a [`WindowEvent`] per fired window and
/// per late event, only as fast as downstream asks.
pub struct WindowSource<S: Source, K, KF, TF, A: Aggregator<S::Item>> {
    upstream: Option<S>,
    sleep: Option<Pin<Box<Sleep>>>,
    core: Core<K, KF, TF, A, S::Item>,
    /// The last poll ended because upstream had nothing (not because downstream was
    /// full): only such waits count as an idle source.
    upstream_pending: bool,
}

impl<S, K, KF, TF, A> Source for WindowSource<S, K, KF, TF, A>
where
    S: Source,
    K: Hash + Eq + Clone,
    KF: FnMut(&S::Item) -> K,
    TF: FnMut(&S::Item) -> Timestamp,
    A: Aggregator<S::Item>,
{
    type Item = WindowEvent<K, A::Out, S::Item>;

    fn poll_emit<E: Emit<Self::Item>>(
        &mut self,
        cx: &mut Context<'_>,
        emit: &mut E,
    ) -> Poll<Result<Step, Error>> {
        let core = &mut self.core;
        if let Time::Processing { origin } = &mut core.time {
            origin.get_or_insert_with(Instant::now);
        }
        if !self.upstream_pending {
            // Time spent while downstream held us back is not upstream idleness.
            if let Time::Event { clock, .. } = &mut core.time {
                clock.resume(Instant::now());
            }
        }
        self.upstream_pending = false;
        let mut budget = YIELD_EVERY;
        let mut timer_wakes = 0;
        loop {
            while let Some(event) = core.out.pop_front() {
                if emit.emit(event).is_break() {
                    return Poll::Ready(Ok(Step::Paused));
                }
            }
            if let Some(error) = core.failure.take() {
                return Poll::Ready(Err(error));
            }
            let Some(upstream) = self.upstream.as_mut() else {
                return Poll::Ready(Ok(Step::Ended));
            };
            core.fire_by_clock();
            if !core.out.is_empty() {
                continue;
            }
            if budget == 0 {
                return yield_now(cx);
            }
            let step = upstream.poll_emit(cx, &mut |item| {
                budget -= 1;
                core.on_item(item);
                if core.out.is_empty() && budget > 0 {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            });
            match step {
                Poll::Ready(Ok(Step::Paused)) => {}
                Poll::Ready(Ok(Step::Ended)) => {
                    self.upstream = None;
                    self.sleep = None;
                    core.advance(Timestamp::MAX);
                }
                Poll::Ready(Err(error)) => {
                    self.upstream = None;
                    self.sleep = None;
                    core.fail(error);
                }
                Poll::Pending if !core.out.is_empty() => {}
                Poll::Pending => {
                    self.upstream_pending = true;
                    let Some(deadline) = core.deadline() else {
                        return Poll::Pending;
                    };
                    if tokio::runtime::Handle::try_current().is_err() {
                        self.upstream = None;
                        core.fail(Error::NoRuntime);
                        continue;
                    }
                    let sleep = self
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if sleep.deadline() != deadline {
                        sleep.as_mut().reset(deadline);
                    }
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    timer_wakes += 1;
                    self.upstream_pending = false;
                    if timer_wakes > 2 {
                        // The timer fired but nothing became due: do not spin.
                        return yield_now(cx);
                    }
                }
            }
        }
    }
}

impl<S: Source, K, KF, TF, A: Aggregator<S::Item>> fmt::Debug for WindowSource<S, K, KF, TF, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowSource")
            .field("watermark", &self.core.watermark)
            .field("queued", &self.core.out.len())
            .field("upstream_done", &self.upstream.is_none())
            .finish_non_exhaustive()
    }
}
