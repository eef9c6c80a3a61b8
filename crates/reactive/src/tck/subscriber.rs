//! [`SubscriberVerification`]: the 2.x rules, with the kit acting as the publisher.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::report::{Entry, Outcome, Report};
use super::run::{Check, run_checks};
use crate::{Demand, Error, Publisher, Subscriber, UNBOUNDED};

type Consumer = Pin<Box<dyn Future<Output = Result<u64, Error>> + Send>>;
type Start<T> = Arc<dyn Fn(TestPublisher<T>) -> Consumer + Send + Sync>;
type Element<T> = Arc<dyn Fn(u64) -> T + Send + Sync>;

/// The publisher the kit plays: subscribe the subscriber under test to it. The kit then
/// sends signals by hand, each only as the rule being checked allows.
pub struct TestPublisher<T> {
    handover: oneshot::Sender<Box<dyn Subscriber<T> + Send>>,
}

impl<T> std::fmt::Debug for TestPublisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestPublisher")
    }
}

impl<T> Publisher for TestPublisher<T> {
    type Item = T;

    fn subscribe<S>(self, subscriber: S)
    where
        S: Subscriber<T> + Send + 'static,
    {
        // The kit gave up waiting if the receiver is gone: nothing left to do.
        let _ = self.handover.send(Box::new(subscriber));
    }
}

/// The Reactive Streams subscriber rules (2.x), checked by playing the publisher.
///
/// `start` gets a [`TestPublisher`] and returns the consumer under test as a future: it
/// must subscribe its subscriber to the publisher and resolve, once the stream ended,
/// to the number of items it received, or to the error it ended with. The kit runs it as
/// a task (aborting that task is how it checks that a consumer going away cancels, rule
/// 2.6). `element(i)` makes the `i`-th item.
///
/// # Examples
///
/// ```
/// use flowbed_reactive::{Flow, tck::SubscriberVerification};
///
/// // The subscriber inside `Flow::from_publisher`, consumed by `count`.
/// SubscriberVerification::new(
///     |i| i,
///     |publisher| async move { Flow::from_publisher(publisher).count().await },
/// )
/// .name("Flow::from_publisher")
/// .run()
/// .assert_all_passed();
/// ```
pub struct SubscriberVerification<T> {
    name: String,
    element: Element<T>,
    start: Start<T>,
    elements: u64,
    timeout: Duration,
    quiet: Duration,
}

impl<T> std::fmt::Debug for SubscriberVerification<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriberVerification")
            .field("name", &self.name)
            .field("elements", &self.elements)
            .field("timeout", &self.timeout)
            .field("quiet", &self.quiet)
            .finish()
    }
}

impl<T: Send + 'static> SubscriberVerification<T> {
    /// Verifies the consumer `start` makes; see the type's docs.
    pub fn new<E, F, Fut>(element: E, start: F) -> Self
    where
        E: Fn(u64) -> T + Send + Sync + 'static,
        F: Fn(TestPublisher<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<u64, Error>> + Send + 'static,
    {
        Self {
            name: "subscriber".to_owned(),
            element: Arc::new(element),
            start: Arc::new(move |publisher| Box::pin(start(publisher))),
            elements: 1000,
            timeout: Duration::from_secs(1),
            quiet: Duration::from_millis(50),
        }
    }

    /// Names the subject in the report.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How many items the long checks (2.1, 2.2, 2.13) send (default 1000: several
    /// rounds of a typical prefetch).
    pub fn elements(mut self, elements: u64) -> Self {
        self.elements = elements.max(1);
        self
    }

    /// How long to wait for an expected reaction (default 1 s of real time).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the kit watches for reactions that must not come (default 50 ms).
    pub fn quiet_period(mut self, quiet: Duration) -> Self {
        self.quiet = quiet;
        self
    }

    /// Runs every check on a multi-thread tokio runtime of its own and reports each.
    pub fn run(&self) -> Report {
        let ctx = Ctx {
            element: Arc::clone(&self.element),
            start: Arc::clone(&self.start),
            elements: self.elements,
            timeout: self.timeout,
            quiet: self.quiet,
        };
        let checks: Vec<(&'static str, &'static str, CheckFn<T>)> = vec![
            (
                "2.1",
                "requests before items; every item arrives",
                boxed(spec_2_1),
            ),
            ("2.2", "every signal returns promptly", boxed(spec_2_2)),
            (
                "2.3",
                "no request from inside on_complete / on_error",
                boxed(spec_2_3),
            ),
            (
                "2.4",
                "no request after the terminal signal",
                boxed(spec_2_4),
            ),
            (
                "2.5",
                "cancels a second subscription, keeps the first",
                boxed(spec_2_5),
            ),
            (
                "2.6",
                "cancels when the consumer goes away",
                boxed(spec_2_6),
            ),
            ("2.8", "accepts on_next after cancelling", boxed(spec_2_8)),
            ("2.9", "on_complete without a request", boxed(spec_2_9)),
            ("2.10", "on_error without a request", boxed(spec_2_10)),
            (
                "2.13",
                "no signal panics, on the success and the error path",
                boxed(spec_2_13),
            ),
        ];
        let limit = self.timeout * 10 + self.quiet * 20;
        let entries = run_checks(
            checks
                .into_iter()
                .map(|(rule, check, f)| {
                    let ctx = ctx.clone();
                    let run: Check = Box::new(move || f(ctx));
                    (rule, check, run)
                })
                .collect(),
            limit,
        );
        Report {
            subject: self.name.clone(),
            entries: entries
                .into_iter()
                .map(|(rule, check, outcome)| Entry {
                    rule,
                    check,
                    outcome,
                })
                .collect(),
        }
    }
}

type CheckFn<T> = Box<dyn FnOnce(Ctx<T>) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send>;

fn boxed<T: 'static, Fut>(check: impl FnOnce(Ctx<T>) -> Fut + Send + 'static) -> CheckFn<T>
where
    Fut: Future<Output = Result<(), Skip>> + Send + 'static,
{
    Box::new(move |ctx| {
        Box::pin(async move {
            match check(ctx).await {
                Ok(()) => Outcome::Passed,
                Err(Skip::Failed(why)) => Outcome::Failed(why),
                Err(Skip::NotApplicable(why)) => Outcome::NotApplicable(why),
            }
        })
    })
}

enum Skip {
    Failed(String),
    NotApplicable(String),
}

impl From<String> for Skip {
    fn from(why: String) -> Self {
        Self::Failed(why)
    }
}

type Checked = Result<(), Skip>;

struct Ctx<T> {
    element: Element<T>,
    start: Start<T>,
    elements: u64,
    timeout: Duration,
    quiet: Duration,
}

impl<T> Clone for Ctx<T> {
    fn clone(&self) -> Self {
        Self {
            element: Arc::clone(&self.element),
            start: Arc::clone(&self.start),
            elements: self.elements,
            timeout: self.timeout,
            quiet: self.quiet,
        }
    }
}

/// One run of the consumer under test, with the kit as its publisher.
struct Session<T> {
    ctx: Ctx<T>,
    subscriber: Box<dyn Subscriber<T> + Send>,
    consumer: JoinHandle<Result<u64, Error>>,
    /// Items sent so far.
    sent: u64,
    slowest_signal: Duration,
}

impl<T: Send + 'static> Session<T> {
    /// Starts the consumer and waits for it to subscribe.
    async fn start(ctx: &Ctx<T>) -> Result<Self, Skip> {
        let (handover, subscribed) = oneshot::channel();
        let consumer = tokio::spawn((ctx.start)(TestPublisher { handover }));
        let subscriber = match tokio::time::timeout(ctx.timeout, subscribed).await {
            Ok(Ok(subscriber)) => subscriber,
            Ok(Err(_)) => return Err(Skip::Failed("the consumer never subscribed".into())),
            Err(_) => {
                consumer.abort();
                return Err(Skip::Failed(format!(
                    "the consumer did not subscribe within {:?}",
                    ctx.timeout
                )));
            }
        };
        Ok(Self {
            ctx: ctx.clone(),
            subscriber,
            consumer,
            sent: 0,
            slowest_signal: Duration::ZERO,
        })
    }

    /// Delivers one signal: it must not panic (rule 2.13); its duration is recorded (2.2).
    fn signal(
        &mut self,
        what: &str,
        deliver: impl FnOnce(&mut (dyn Subscriber<T> + Send)),
    ) -> Checked {
        let started = Instant::now();
        let subscriber = &mut *self.subscriber;
        let returned = catch_unwind(AssertUnwindSafe(|| deliver(subscriber)));
        self.slowest_signal = self.slowest_signal.max(started.elapsed());
        returned.map_err(|_| Skip::Failed(format!("rule 2.13: {what} panicked")))
    }

    fn on_subscribe(&mut self) -> Result<Demand, Skip> {
        let (subscription, demand) = Demand::pair();
        self.signal("on_subscribe", |s| s.on_subscribe(subscription))?;
        Ok(demand)
    }

    fn on_next(&mut self) -> Checked {
        let item = (self.ctx.element)(self.sent);
        self.sent += 1;
        self.signal("on_next", |s| s.on_next(item))
    }

    /// Sends `total` items in all, each against demand the subscriber requested (2.1).
    async fn feed(&mut self, demand: &Demand, total: u64) -> Checked {
        let mut granted = 0u64;
        while self.sent < total {
            if granted == 0 {
                granted = match next_demand(demand, self.ctx.timeout).await {
                    Ok(Some(n)) => n,
                    Ok(None) => {
                        return Err(Skip::Failed(format!(
                            "the subscriber cancelled after {} of {total} items",
                            self.sent
                        )));
                    }
                    Err(()) => {
                        return Err(Skip::Failed(format!(
                            "rule 2.1: the subscriber stopped requesting after {} of {total} items",
                            self.sent
                        )));
                    }
                };
            }
            self.on_next()?;
            if granted != UNBOUNDED {
                granted -= 1;
            }
        }
        Ok(())
    }

    /// Waits for the consumer to finish.
    async fn finish(&mut self) -> Result<Result<u64, Error>, Skip> {
        match tokio::time::timeout(self.ctx.timeout, &mut self.consumer).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(failure)) => Err(Skip::Failed(format!("the consumer task failed: {failure}"))),
            Err(_) => Err(Skip::Failed(format!(
                "the consumer did not finish within {:?} of the terminal signal",
                self.ctx.timeout
            ))),
        }
    }
}

/// The next demand: `Ok(Some(n))` claims `n`, `Ok(None)` is a cancel, `Err` a timeout.
async fn next_demand(demand: &Demand, timeout: Duration) -> Result<Option<u64>, ()> {
    let wait = std::future::poll_fn(|cx| match demand.poll_take_all(cx) {
        Poll::Ready(granted) => Poll::Ready(granted),
        Poll::Pending => Poll::Pending,
    });
    tokio::time::timeout(timeout, wait).await.map_err(|_| ())
}

/// Waits until the subscriber asks for nothing more for a quiet period (it consumed what
/// it was sent), claiming whatever it asked for meanwhile.
async fn settle<T>(ctx: &Ctx<T>, demand: &Demand) {
    let deadline = Instant::now() + ctx.timeout;
    while let Ok(granted) = next_demand(demand, ctx.quiet).await {
        // Unbounded demand is granted again on every claim: it never settles by itself.
        if matches!(granted, None | Some(UNBOUNDED)) || Instant::now() >= deadline {
            break;
        }
    }
}

/// Waits for the cancel, claiming (and returning) the demand requested meanwhile.
async fn cancelled(demand: &Demand, timeout: Duration) -> Result<u64, ()> {
    let mut claimed = 0u64;
    let wait = std::future::poll_fn(|cx| {
        loop {
            if demand.is_cancelled() {
                return Poll::Ready(());
            }
            match demand.take_all() {
                0 => break,
                more => {
                    claimed = claimed.saturating_add(more);
                    if more == UNBOUNDED {
                        break;
                    }
                }
            }
        }
        demand.wake_on_signal(cx);
        if demand.is_cancelled() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    tokio::time::timeout(timeout, wait).await.map_err(|_| ())?;
    Ok(claimed)
}

impl<T> Drop for Session<T> {
    fn drop(&mut self) {
        self.consumer.abort();
    }
}

fn deliberate_error() -> Error {
    Error::Protocol("deliberate on_error sent by the tck")
}

/// Sends `elements` items against demand, then `on_complete`; the consumer must count
/// them all.
async fn full_run<T: Send + 'static>(ctx: &Ctx<T>) -> Result<Session<T>, Skip> {
    let mut session = Session::start(ctx).await?;
    let demand = session.on_subscribe()?;
    session.feed(&demand, ctx.elements).await?;
    session.signal("on_complete", |s| s.on_complete())?;
    match session.finish().await? {
        Ok(count) if count == ctx.elements => Ok(session),
        Ok(count) => Err(Skip::Failed(format!(
            "the consumer counted {count} of {} items",
            ctx.elements
        ))),
        Err(error) => Err(Skip::Failed(format!("the consumer failed: {error}"))),
    }
}

async fn spec_2_1<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    full_run(&ctx).await.map(drop)
}

async fn spec_2_2<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let session = full_run(&ctx).await?;
    if session.slowest_signal > ctx.timeout {
        return Err(Skip::Failed(format!(
            "a signal took {:?} to return",
            session.slowest_signal
        )));
    }
    Ok(())
}

async fn spec_2_3<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    for error in [false, true] {
        let mut session = Session::start(&ctx).await?;
        let demand = session.on_subscribe()?;
        settle(&ctx, &demand).await;
        unbounded(demand.take_all())?;
        if error {
            session.signal("on_error", |s| s.on_error(deliberate_error()))?;
        } else {
            session.signal("on_complete", |s| s.on_complete())?;
        }
        let during = demand.take_all();
        if during > 0 {
            let signal = if error { "on_error" } else { "on_complete" };
            return Err(Skip::Failed(format!("requested {during} during {signal}")));
        }
        let _ = session.finish().await?;
    }
    Ok(())
}

/// With unbounded demand every claim grants `u64::MAX` again: requests made later
/// cannot be told apart.
fn unbounded(outstanding: u64) -> Checked {
    if outstanding == UNBOUNDED {
        return Err(Skip::NotApplicable(
            "the subscriber requested unbounded demand: later requests cannot be observed".into(),
        ));
    }
    Ok(())
}

async fn spec_2_4<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let mut session = Session::start(&ctx).await?;
    let demand = session.on_subscribe()?;
    session.feed(&demand, ctx.elements.min(10)).await?;
    settle(&ctx, &demand).await;
    unbounded(demand.take_all())?;
    session.signal("on_complete", |s| s.on_complete())?;
    let _ = session.finish().await?;
    tokio::time::sleep(ctx.quiet).await;
    match demand.take_all() {
        0 => Ok(()),
        after => Err(Skip::Failed(format!("requested {after} after on_complete"))),
    }
}

async fn spec_2_5<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let mut session = Session::start(&ctx).await?;
    let first = session.on_subscribe()?;
    let second = session.on_subscribe()?;
    match next_demand(&second, ctx.timeout).await {
        Ok(None) => {}
        Ok(Some(n)) => {
            return Err(Skip::Failed(format!(
                "requested {n} on the second subscription instead of cancelling it"
            )));
        }
        Err(()) => {
            return Err(Skip::Failed(format!(
                "the second subscription was not cancelled within {:?}",
                ctx.timeout
            )));
        }
    }
    if first.is_cancelled() {
        return Err(Skip::Failed(
            "the first subscription was cancelled too".into(),
        ));
    }
    let items = ctx.elements.min(10);
    session.feed(&first, items).await?;
    session.signal("on_complete", |s| s.on_complete())?;
    match session.finish().await? {
        Ok(count) if count == items => Ok(()),
        other => Err(Skip::Failed(format!(
            "after the second on_subscribe the first subscription delivered {items} items, the consumer ended with {other:?}"
        ))),
    }
}

/// Starts a consumer, sends it a few items, aborts its task and waits for the cancel.
/// Returns the session and the demand still outstanding at the cancel.
async fn abandoned<T: Send + 'static>(ctx: &Ctx<T>) -> Result<(Session<T>, Demand, u64), Skip> {
    let mut session = Session::start(ctx).await?;
    let demand = session.on_subscribe()?;
    let mut outstanding = match next_demand(&demand, ctx.timeout).await {
        Ok(Some(n)) => n,
        Ok(None) => return Err(Skip::Failed("cancelled before requesting anything".into())),
        Err(()) => return Err(Skip::Failed("rule 2.1: never requested anything".into())),
    };
    for _ in 0..outstanding.min(5) {
        session.on_next()?;
        if outstanding != UNBOUNDED {
            outstanding -= 1;
        }
    }
    if session.consumer.is_finished() {
        return Err(Skip::NotApplicable(
            "the consumer finished on its own; nothing to abort".into(),
        ));
    }
    session.consumer.abort();
    match cancelled(&demand, ctx.timeout).await {
        Ok(more) => Ok((session, demand, outstanding.saturating_add(more))),
        Err(()) => Err(Skip::Failed(format!(
            "the subscription was not cancelled within {:?} of the consumer going away",
            ctx.timeout
        ))),
    }
}

async fn spec_2_6<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    abandoned(&ctx).await.map(drop)
}

async fn spec_2_8<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let (mut session, _demand, outstanding) = abandoned(&ctx).await?;
    if outstanding == 0 {
        return Err(Skip::NotApplicable(
            "no demand was outstanding at the cancel".into(),
        ));
    }
    for _ in 0..outstanding.min(3) {
        session.on_next()?;
    }
    session.signal("on_complete", |s| s.on_complete())
}

async fn spec_2_9<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let mut session = Session::start(&ctx).await?;
    session.on_subscribe()?;
    session.signal("on_complete", |s| s.on_complete())?;
    match session.finish().await? {
        Ok(0) => Ok(()),
        other => Err(Skip::Failed(format!(
            "on_complete right after on_subscribe: the consumer ended with {other:?}, not Ok(0)"
        ))),
    }
}

async fn spec_2_10<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let mut session = Session::start(&ctx).await?;
    session.on_subscribe()?;
    session.signal("on_error", |s| s.on_error(deliberate_error()))?;
    match session.finish().await? {
        Err(_) => Ok(()),
        Ok(count) => Err(Skip::Failed(format!(
            "on_error right after on_subscribe: the consumer ended with Ok({count})"
        ))),
    }
}

async fn spec_2_13<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    full_run(&ctx).await?;
    let mut session = Session::start(&ctx).await?;
    let demand = session.on_subscribe()?;
    session.feed(&demand, ctx.elements.min(10)).await?;
    session.signal("on_error", |s| s.on_error(deliberate_error()))?;
    match session.finish().await? {
        Err(_) => Ok(()),
        Ok(count) => Err(Skip::Failed(format!(
            "on_error after {} items: the consumer ended with Ok({count})",
            session.sent
        ))),
    }
}
