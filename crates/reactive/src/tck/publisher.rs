//! [`PublisherVerification`]: the 1.x and 3.x rules run against any [`Publisher`].

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::probe::{ManualSubscriber, ProbeConfig, TestSubscriber};
use super::report::{Entry, Outcome, Report};
use super::run::run_checks;
use crate::{Publisher, UNBOUNDED};

type Subscribe<T> = Arc<dyn Fn(u64, TestSubscriber<T>) + Send + Sync>;
type SubscribeFailed<T> = Arc<dyn Fn(TestSubscriber<T>) + Send + Sync>;

/// The Reactive Streams publisher rules (1.x, and the 3.x rules about what a
/// subscription does) run against publishers a factory makes.
///
/// Every check makes a fresh publisher with the factory (`elements` → a publisher of
/// exactly that many items, then `on_complete`), subscribes a probe
/// ([`ManualSubscriber`]) and drives it. [`run`](Self::run) builds its own multi-thread
/// tokio runtime, so call it from a plain `#[test]` (not from inside a runtime).
///
/// # Examples
///
/// ```
/// use flowbed_reactive::{Error, Flow, tck::PublisherVerification};
///
/// PublisherVerification::new(|elements| Flow::iter(0..elements))
///     .failed_publisher(|| Flow::failed(Error::Protocol("boom")))
///     .name("Flow::iter")
///     .run()
///     .assert_all_passed_except(&["1.4"]);
/// ```
pub struct PublisherVerification<T> {
    name: String,
    subscribe: Subscribe<T>,
    subscribe_failed: Option<SubscribeFailed<T>>,
    max_elements: u64,
    timeout: Duration,
    quiet: Duration,
}

impl<T> std::fmt::Debug for PublisherVerification<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublisherVerification")
            .field("name", &self.name)
            .field("failed_publisher", &self.subscribe_failed.is_some())
            .field("max_elements", &self.max_elements)
            .field("timeout", &self.timeout)
            .field("quiet", &self.quiet)
            .finish()
    }
}

impl<T: Send + 'static> PublisherVerification<T> {
    /// Verifies the publishers `factory` makes: `factory(n)` must publish exactly `n`
    /// items, then complete. The factory runs inside the kit's tokio runtime.
    pub fn new<P, F>(factory: F) -> Self
    where
        F: Fn(u64) -> P + Send + Sync + 'static,
        P: Publisher<Item = T>,
    {
        Self {
            name: std::any::type_name::<P>().to_owned(),
            subscribe: Arc::new(move |elements, subscriber| {
                factory(elements).subscribe(subscriber)
            }),
            subscribe_failed: None,
            max_elements: u64::MAX,
            timeout: Duration::from_secs(1),
            quiet: Duration::from_millis(50),
        }
    }

    /// Also verifies the error rules (1.4, 1.7 after on_error, 1.9 rejection) with
    /// publishers `factory` makes, each of which must fail (signal `on_error`).
    pub fn failed_publisher<P, F>(mut self, factory: F) -> Self
    where
        F: Fn() -> P + Send + Sync + 'static,
        P: Publisher<Item = T>,
    {
        self.subscribe_failed = Some(Arc::new(move |subscriber| factory().subscribe(subscriber)));
        self
    }

    /// Names the subject in the report (default: the publisher's type name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The most elements the factory can produce (default unbounded); checks that need
    /// more report [`Outcome::NotApplicable`].
    pub fn max_elements(mut self, max: u64) -> Self {
        self.max_elements = max;
        self
    }

    /// How long to wait for any expected signal (default 1 s of real time).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the kit watches for signals that must not come (default 50 ms).
    pub fn quiet_period(mut self, quiet: Duration) -> Self {
        self.quiet = quiet;
        self
    }

    /// Runs every check on a multi-thread tokio runtime of its own and reports each.
    pub fn run(&self) -> Report {
        let ctx = Ctx {
            subscribe: Arc::clone(&self.subscribe),
            subscribe_failed: self.subscribe_failed.clone(),
            max_elements: self.max_elements,
            timeout: self.timeout,
            quiet: self.quiet,
        };
        let checks: Vec<(&'static str, &'static str, CheckFn<T>)> = vec![
            (
                "1.9",
                "on_subscribe comes first; subscribe returns promptly",
                boxed(spec_1_9_subscribe),
            ),
            (
                "1.9",
                "a failed publisher calls on_subscribe before on_error",
                boxed(spec_1_9_reject),
            ),
            (
                "1.5",
                "a 1-element publisher: 1 item, then on_complete",
                boxed(|c| spec_1_5(c, 1)),
            ),
            (
                "1.5",
                "a 3-element publisher: 3 items, then on_complete",
                boxed(|c| spec_1_5(c, 3)),
            ),
            (
                "1.5",
                "an empty publisher completes",
                boxed(|c| spec_1_5(c, 0)),
            ),
            ("1.1", "never more on_next than requested", boxed(spec_1_1)),
            (
                "1.2",
                "fewer items than requested, then on_complete",
                boxed(spec_1_2),
            ),
            (
                "1.3",
                "signals are serial while several threads request",
                boxed(spec_1_3),
            ),
            (
                "1.4",
                "a failed publisher signals on_error without a request",
                boxed(spec_1_4),
            ),
            (
                "1.6",
                "request and cancel after on_complete are harmless",
                boxed(spec_1_6),
            ),
            (
                "1.7",
                "no signal after on_complete",
                boxed(spec_1_7_complete),
            ),
            ("1.7", "no signal after on_error", boxed(spec_1_7_error)),
            ("1.8", "cancel makes the signals stop", boxed(spec_1_8)),
            (
                "3.2",
                "request from inside on_subscribe and on_next",
                boxed(spec_3_2),
            ),
            ("3.4", "request returns promptly", boxed(spec_3_4)),
            ("3.5", "cancel from four threads at once", boxed(spec_3_5)),
            ("3.6", "request after cancel is a no-op", boxed(spec_3_6)),
            ("3.7", "cancel after cancel is a no-op", boxed(spec_3_7)),
            (
                "3.8",
                "request(n) registers exactly n more items",
                boxed(spec_3_8),
            ),
            (
                "3.12",
                "cancel before any request: no item, no signal",
                boxed(spec_3_12),
            ),
            (
                "3.13",
                "cancel makes the publisher drop the subscriber",
                boxed(spec_3_13),
            ),
            (
                "3.15",
                "cancel from inside on_next returns normally",
                boxed(spec_3_15),
            ),
            (
                "3.16",
                "request from three threads at once returns normally",
                boxed(spec_3_16),
            ),
            ("3.17", "a demand of u64::MAX", boxed(spec_3_17_max)),
            (
                "3.17",
                "requests adding up beyond u64::MAX",
                boxed(spec_3_17_cumulative),
            ),
        ];
        let entries = run_checks(
            checks
                .into_iter()
                .map(|(rule, check, f)| {
                    let ctx = ctx.clone();
                    let run: super::run::Check = Box::new(move || f(ctx));
                    (rule, check, run)
                })
                .collect(),
            self.timeout * 10 + self.quiet * 20,
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

type BoxFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;
type CheckFn<T> = Box<dyn FnOnce(Ctx<T>) -> BoxFuture + Send>;

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

/// Why a check did not pass.
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
    subscribe: Subscribe<T>,
    subscribe_failed: Option<SubscribeFailed<T>>,
    max_elements: u64,
    timeout: Duration,
    quiet: Duration,
}

impl<T> Clone for Ctx<T> {
    fn clone(&self) -> Self {
        Self {
            subscribe: Arc::clone(&self.subscribe),
            subscribe_failed: self.subscribe_failed.clone(),
            max_elements: self.max_elements,
            timeout: self.timeout,
            quiet: self.quiet,
        }
    }
}

impl<T: Send + 'static> Ctx<T> {
    /// Subscribes a fresh probe to a fresh `elements`-element publisher and waits for
    /// `on_subscribe`.
    async fn probe(&self, elements: u64, config: ProbeConfig) -> Result<ManualSubscriber<T>, Skip> {
        if elements > self.max_elements {
            return Err(Skip::NotApplicable(format!(
                "needs {elements} elements, the publisher produces at most {}",
                self.max_elements
            )));
        }
        let (probe, subscriber) = ManualSubscriber::with_config(config);
        subscribe_checked(|| (self.subscribe)(elements, subscriber), self.timeout)?;
        probe.expect_subscribed(self.timeout).await?;
        Ok(probe)
    }

    /// Subscribes a fresh probe to a failed publisher and waits for `on_subscribe`.
    async fn failed_probe(&self) -> Result<ManualSubscriber<T>, Skip> {
        let Some(subscribe) = &self.subscribe_failed else {
            return Err(Skip::NotApplicable(
                "no failed-publisher factory given".into(),
            ));
        };
        let (probe, subscriber) = ManualSubscriber::new();
        subscribe_checked(|| subscribe(subscriber), self.timeout)?;
        probe.expect_subscribed(self.timeout).await?;
        Ok(probe)
    }

    /// Completion, allowing one extra `request(1)` for a publisher that finds its end
    /// only when asked for one more item (as the JVM TCK's `requestEndOfStream`).
    async fn expect_end(&self, probe: &ManualSubscriber<T>) -> Checked {
        if probe.expect_completed(self.quiet).await.is_err() && !probe.is_terminated() {
            probe.request(1);
        }
        probe.expect_completed(self.timeout).await?;
        Ok(())
    }
}

/// Calls `subscribe`, which must neither panic nor block (rule 1.9).
fn subscribe_checked(subscribe: impl FnOnce(), timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    if catch_unwind(AssertUnwindSafe(subscribe)).is_err() {
        return Err("rule 1.9: subscribe panicked".into());
    }
    let took = started.elapsed();
    if took > timeout {
        return Err(format!("rule 1.9: subscribe took {took:?} to return"));
    }
    Ok(())
}

fn violations<T>(probe: &ManualSubscriber<T>) -> Checked {
    probe.check_violations().map_err(Skip::Failed)
}

fn expect_count<T>(probe: &ManualSubscriber<T>, expected: u64, when: &str) -> Checked {
    match probe.received() {
        got if got == expected => Ok(()),
        got => Err(Skip::Failed(format!(
            "{when}: expected {expected} items in all, got {got} ({})",
            probe.summary()
        ))),
    }
}

async fn spec_1_9_subscribe<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(1, ProbeConfig::default()).await?;
    probe.request(1);
    probe.expect_items(1, ctx.timeout).await?;
    ctx.expect_end(&probe).await?;
    let first = probe.events().first().map(|event| event.signal.clone());
    if !matches!(first, Some(super::Signal::Subscribe)) {
        return Err(Skip::Failed(format!(
            "first signal was {first:?}, not on_subscribe"
        )));
    }
    violations(&probe)
}

async fn spec_1_9_reject<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.failed_probe().await?;
    probe.request(1);
    probe.expect_error(ctx.timeout).await?;
    violations(&probe)
}

async fn spec_1_5<T: Send + 'static>(ctx: Ctx<T>, elements: u64) -> Checked {
    let probe = ctx.probe(elements, ProbeConfig::default()).await?;
    if elements > 0 {
        probe.request(elements);
        probe.expect_items(elements, ctx.timeout).await?;
    }
    ctx.expect_end(&probe).await?;
    expect_count(&probe, elements, "after on_complete")?;
    violations(&probe)
}

async fn spec_1_1<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(10, ProbeConfig::default()).await?;
    for (step, total) in [(1, 1), (3, 4), (6, 10)] {
        probe.request(step);
        probe.expect_items(total, ctx.timeout).await?;
        if total < 10 {
            // Anything more now would be beyond demand: the probe flags it.
            probe.expect_no_signal(ctx.quiet).await.ok();
            expect_count(&probe, total, &format!("after requesting {total}"))?;
        }
        violations(&probe)?;
    }
    ctx.expect_end(&probe).await?;
    violations(&probe)
}

async fn spec_1_2<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(3, ProbeConfig::default()).await?;
    probe.request(10);
    probe.expect_completed(ctx.timeout).await?;
    expect_count(&probe, 3, "3 elements, 10 requested")?;
    violations(&probe)
}

async fn spec_1_3<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    const ELEMENTS: u64 = 200;
    const THREADS: u64 = 4;
    let probe = ctx.probe(ELEMENTS, ProbeConfig::default()).await?;
    let mut requesters = Vec::new();
    for _ in 0..THREADS {
        let probe = probe.clone();
        requesters.push(std::thread::spawn(move || {
            for _ in 0..ELEMENTS / THREADS {
                probe.request(1);
                std::thread::yield_now();
            }
        }));
    }
    for requester in requesters {
        requester
            .join()
            .map_err(|_| Skip::Failed("a requesting thread panicked".into()))?;
    }
    probe.expect_items(ELEMENTS, ctx.timeout).await?;
    ctx.expect_end(&probe).await?;
    violations(&probe)
}

async fn spec_1_4<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.failed_probe().await?;
    if probe.expect_terminated(ctx.timeout).await.is_err() {
        probe.request(1);
        let after_request = match probe.expect_error(ctx.timeout).await {
            Ok(_) => "it signalled on_error only after a request(1)",
            Err(_) => "not even after a request(1)",
        };
        return Err(Skip::Failed(format!(
            "no on_error within {:?} of on_subscribe without a request; {after_request}",
            ctx.timeout
        )));
    }
    probe.expect_error(ctx.timeout).await?;
    violations(&probe)
}

async fn spec_1_6<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(2, ProbeConfig::default()).await?;
    probe.request(5);
    probe.expect_completed(ctx.timeout).await?;
    probe.request(5);
    probe.cancel();
    probe.request(1);
    probe.expect_no_signal(ctx.quiet).await?;
    violations(&probe)
}

async fn spec_1_7_complete<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(3, ProbeConfig::default()).await?;
    probe.request(3);
    probe.expect_items(3, ctx.timeout).await?;
    ctx.expect_end(&probe).await?;
    probe.request(10);
    probe.expect_no_signal(ctx.quiet).await?;
    violations(&probe)
}

async fn spec_1_7_error<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.failed_probe().await?;
    probe.request(1);
    probe.expect_error(ctx.timeout).await?;
    probe.request(10);
    probe.expect_no_signal(ctx.quiet).await?;
    violations(&probe)
}

async fn spec_1_8<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(20, ProbeConfig::default()).await?;
    probe.request(10);
    probe.request(5);
    probe.expect_items(1, ctx.timeout).await?;
    probe.cancel();
    probe.expect_quiet(ctx.quiet, ctx.timeout).await?;
    if probe.received() > 15 {
        return Err(Skip::Failed(format!(
            "{} items for a demand of 15",
            probe.received()
        )));
    }
    violations(&probe)
}

async fn spec_3_2<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let config = ProbeConfig {
        request_on_subscribe: 1,
        request_on_next: 1,
        cancel_at: 0,
    };
    let probe = ctx.probe(10, config).await?;
    probe.expect_items(10, ctx.timeout).await?;
    probe.expect_completed(ctx.timeout).await?;
    expect_count(&probe, 10, "after on_complete")?;
    violations(&probe)
}

async fn spec_3_4<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(50, ProbeConfig::default()).await?;
    for n in 1..=50 {
        probe.request(1);
        probe.expect_items(n, ctx.timeout).await?;
    }
    let slowest = probe.slowest_call();
    if slowest > ctx.timeout {
        return Err(Skip::Failed(format!(
            "a request took {slowest:?} to return"
        )));
    }
    violations(&probe)
}

async fn spec_3_5<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let elements = ctx.max_elements.min(100_000);
    if elements < 1000 {
        return Err(Skip::NotApplicable(format!(
            "needs 1000 elements, the publisher produces at most {}",
            ctx.max_elements
        )));
    }
    let probe = ctx.probe(elements, ProbeConfig::default()).await?;
    probe.request(UNBOUNDED);
    probe.expect_items(1, ctx.timeout).await?;
    let cancellers: Vec<_> = (0..4)
        .map(|_| {
            let probe = probe.clone();
            std::thread::spawn(move || probe.cancel())
        })
        .collect();
    for canceller in cancellers {
        canceller
            .join()
            .map_err(|_| Skip::Failed("a cancelling thread panicked".into()))?;
    }
    let slowest = probe.slowest_call();
    if slowest > ctx.timeout {
        return Err(Skip::Failed(format!("a cancel took {slowest:?} to return")));
    }
    probe.expect_quiet(ctx.quiet, ctx.timeout).await?;
    violations(&probe)
}

async fn spec_3_6<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(20, ProbeConfig::default()).await?;
    probe.request(1);
    probe.expect_items(1, ctx.timeout).await?;
    probe.cancel();
    probe.expect_quiet(ctx.quiet, ctx.timeout).await?;
    probe.request(10);
    probe.expect_no_signal(ctx.quiet).await?;
    expect_count(&probe, 1, "request(1), cancel, request(10)")?;
    violations(&probe)
}

async fn spec_3_7<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(20, ProbeConfig::default()).await?;
    probe.request(1);
    probe.expect_items(1, ctx.timeout).await?;
    probe.cancel();
    probe.cancel();
    probe.cancel();
    probe.expect_no_signal(ctx.quiet).await?;
    expect_count(&probe, 1, "request(1), cancel ×3")?;
    violations(&probe)
}

async fn spec_3_8<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(10, ProbeConfig::default()).await?;
    for (step, total) in [(2, 2), (3, 5)] {
        probe.request(step);
        probe.expect_items(total, ctx.timeout).await?;
        probe.expect_no_signal(ctx.quiet).await.ok();
        expect_count(&probe, total, &format!("after requesting {total}"))?;
    }
    violations(&probe)
}

async fn spec_3_12<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(20, ProbeConfig::default()).await?;
    probe.cancel();
    probe.request(5);
    probe.expect_no_signal(ctx.quiet).await?;
    expect_count(&probe, 0, "cancel, then request(5)")?;
    violations(&probe)
}

async fn spec_3_13<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(20, ProbeConfig::default()).await?;
    probe.request(1);
    probe.expect_items(1, ctx.timeout).await?;
    probe.cancel();
    probe.expect_released(ctx.timeout).await?;
    violations(&probe)
}

async fn spec_3_15<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let config = ProbeConfig {
        request_on_subscribe: 0,
        request_on_next: 0,
        cancel_at: 3,
    };
    let probe = ctx.probe(20, config).await?;
    probe.request(10);
    probe.expect_items(3, ctx.timeout).await?;
    probe.expect_quiet(ctx.quiet, ctx.timeout).await?;
    violations(&probe)
}

async fn spec_3_16<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(10, ProbeConfig::default()).await?;
    let requesters: Vec<_> = (0..3)
        .map(|_| {
            let probe = probe.clone();
            std::thread::spawn(move || probe.request(1))
        })
        .collect();
    for requester in requesters {
        requester
            .join()
            .map_err(|_| Skip::Failed("a requesting thread panicked".into()))?;
    }
    probe.expect_items(3, ctx.timeout).await?;
    probe.expect_no_signal(ctx.quiet).await.ok();
    expect_count(&probe, 3, "three request(1) from three threads")?;
    violations(&probe)
}

async fn spec_3_17_max<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(3, ProbeConfig::default()).await?;
    probe.request(u64::MAX);
    probe.expect_completed(ctx.timeout).await?;
    expect_count(&probe, 3, "request(u64::MAX)")?;
    violations(&probe)
}

async fn spec_3_17_cumulative<T: Send + 'static>(ctx: Ctx<T>) -> Checked {
    let probe = ctx.probe(3, ProbeConfig::default()).await?;
    for _ in 0..3 {
        probe.request(u64::MAX / 2 + 1);
    }
    probe.expect_completed(ctx.timeout).await?;
    expect_count(&probe, 3, "requests adding up beyond u64::MAX")?;
    violations(&probe)
}
