//! The Reactive Streams rule kit (`flowbed_reactive::tck`) run against flowbed's own
//! publishers and subscriber, and against deliberately broken ones (so every check is
//! seen failing too). Needs the crate feature `tck` (`required-features` in Cargo.toml).
//!
//! Adding a publisher is one test of three lines: `verify("name", |n| <a flow of n items>)`.

use std::num::NonZeroU64;
use std::time::Duration;

use flowbed_reactive::tck::{
    Coverage, ManualSubscriber, PublisherVerification, RULES, Report, SubscriberVerification,
    coverage_counts, rules_markdown,
};
use flowbed_reactive::{Demand, Error, Flow, Overflow, Publisher, Subscriber, Subscription};
use tokio::sync::oneshot;

/// Runs the publisher rules against `factory` (a publisher of exactly `n` items, then
/// on_complete) and fails the test on any failed check.
fn verify<P, F>(name: &str, factory: F) -> Report
where
    F: Fn(u64) -> P + Send + Sync + 'static,
    P: Publisher<Item = u64>,
{
    let report = PublisherVerification::new(factory).name(name).run();
    report.assert_all_passed();
    report
}

#[test]
fn flow_iter() {
    verify("Flow::iter", |n| Flow::iter(0..n));
}

#[test]
fn fused_chain() {
    verify("iter → map → filter → take", |n| {
        Flow::iter(0..u64::MAX)
            .map(|x| x * 2)
            .filter(|x| x % 4 == 0)
            .take(n)
    });
}

#[test]
fn from_publisher_of_a_flow() {
    verify("Flow::from_publisher(Flow::iter)", |n| {
        Flow::from_publisher(Flow::iter(0..n))
    });
}

#[test]
fn from_publisher_with_prefetch_1() {
    verify("Flow::from_publisher_with_prefetch(.., 1)", |n| {
        Flow::from_publisher_with_prefetch(Flow::iter(0..n).map(|x| x + 1), 1)
    });
}

#[test]
fn from_stream() {
    verify("Flow::from_stream(stream::iter)", |n| {
        Flow::from_stream(futures::stream::iter(0..n))
    });
}

#[test]
fn boxed_flow() {
    verify("Flow::boxed", |n| Flow::iter(0..n).map(|x| x * 3).boxed());
}

#[test]
fn async_boundary() {
    verify("async_boundary(16)", |n| {
        Flow::iter(0..n).async_boundary(16)
    });
}

#[test]
fn buffer_with_backpressure() {
    verify("buffer(8, Backpressure)", |n| {
        Flow::iter(0..n).buffer(8, Overflow::Backpressure)
    });
}

#[test]
fn merge() {
    verify("merge(iter, iter)", |n| {
        Flow::iter(0..n / 2).merge(Flow::iter(n / 2..n))
    });
}

#[test]
fn flat_map() {
    verify("flat_map(just, 4)", |n| {
        Flow::iter(0..n).flat_map(Flow::just, 4)
    });
}

#[test]
fn hand_written_publisher() {
    verify("Counter (Demand::pair)", |n| Counter { elements: n });
}

#[test]
fn from_publisher_of_a_hand_written_publisher() {
    verify("Flow::from_publisher(Counter)", |n| {
        Flow::from_publisher(Counter { elements: n })
    });
}

/// The failed flows follow every error rule, 1.4 included (on_error without a request).
#[test]
fn failed_flows_follow_the_error_rules() {
    let failed = PublisherVerification::new(|n| Flow::iter(0..n))
        .failed_publisher(|| Flow::failed(Error::Protocol("tck: failed on purpose")))
        .name("Flow::failed")
        .run();
    failed.assert_all_passed();
    assert!(
        failed.rule_passed("1.9") && failed.rule_passed("1.7"),
        "{failed}"
    );

    let try_map = PublisherVerification::new(|n| Flow::iter(0..n))
        .failed_publisher(|| {
            Flow::iter(0..3u64).try_map(|_| Err::<u64, _>("tck: try_map failed on purpose".into()))
        })
        .name("try_map error")
        .run();
    try_map.assert_all_passed();
    assert!(
        try_map.rule_passed("1.9") && try_map.rule_passed("1.7"),
        "{try_map}"
    );
}

/// A hand-written failed publisher that signals on_error without demand passes 1.4: the
/// check is satisfiable.
#[test]
fn a_publisher_failing_without_demand_passes_rule_1_4() {
    let report = PublisherVerification::new(|n| Counter { elements: n })
        .failed_publisher(|| FailsAtOnce)
        .name("FailsAtOnce")
        .run();
    report.assert_all_passed();
    assert!(report.rule_passed("1.4"), "{report}");
}

#[test]
fn the_kit_catches_a_publisher_ignoring_demand_and_signalling_after_complete() {
    let report = PublisherVerification::new(|n| Broken { elements: n })
        .name("Broken")
        .timeout(Duration::from_millis(300))
        .run();
    assert!(report.rule_failed("1.1"), "1.1 should fail:\n{report}");
    assert!(report.rule_failed("1.7"), "1.7 should fail:\n{report}");
    assert!(report.rule_failed("3.6"), "3.6 should fail:\n{report}");
    assert!(report.rule_failed("3.12"), "3.12 should fail:\n{report}");
}

#[test]
fn the_kit_catches_a_publisher_that_never_subscribes_or_releases() {
    let report = PublisherVerification::new(|n| Leaky { elements: n })
        .name("Leaky")
        .timeout(Duration::from_millis(200))
        .run();
    assert!(report.rule_failed("3.13"), "3.13 should fail:\n{report}");
    let silent = PublisherVerification::new(|_| Silent)
        .name("Silent")
        .timeout(Duration::from_millis(100))
        .run();
    assert!(silent.rule_failed("1.9"), "1.9 should fail:\n{silent}");
}

#[test]
fn from_publisher_subscriber_follows_the_subscriber_rules() {
    for prefetch in [1, 16, 256] {
        SubscriberVerification::new(
            |i| i,
            move |publisher| async move {
                Flow::from_publisher_with_prefetch(publisher, prefetch)
                    .count()
                    .await
            },
        )
        .name(format!(
            "Flow::from_publisher_with_prefetch(.., {prefetch})"
        ))
        .run()
        .assert_all_passed();
    }
}

#[test]
fn the_kit_catches_a_greedy_subscriber_that_panics_on_error() {
    let report = SubscriberVerification::new(
        |i| i,
        |publisher| async move {
            let (done, result) = oneshot::channel();
            publisher.subscribe(Greedy {
                count: 0,
                done: Some(done),
            });
            result
                .await
                .unwrap_or(Err(Error::Protocol("the greedy subscriber was dropped")))
        },
    )
    .name("Greedy")
    .timeout(Duration::from_millis(300))
    .run();
    assert!(report.rule_failed("2.5"), "2.5 should fail:\n{report}");
    assert!(report.rule_failed("2.10"), "2.10 should fail:\n{report}");
    assert!(report.rule_failed("2.13"), "2.13 should fail:\n{report}");
    assert!(report.rule_passed("2.1"), "2.1 should pass:\n{report}");
}

#[test]
fn the_rule_table_covers_enough_and_matches_the_checks() {
    let (checked, typed, na) = coverage_counts();
    assert_eq!(checked + typed + na, RULES.len());
    assert!(checked + typed >= 35, "{checked} checked + {typed} typed");
    assert!(checked >= 25, "{checked} checked");
    // Every rule the table calls checked is exercised by a check, and no other.
    let publisher = PublisherVerification::new(|n| Counter { elements: n })
        .failed_publisher(|| FailsAtOnce)
        .run();
    let subscriber = SubscriberVerification::new(
        |i| i,
        |publisher| async move { Flow::from_publisher(publisher).count().await },
    )
    .run();
    let mut exercised = publisher.exercised_rules();
    exercised.extend(subscriber.exercised_rules());
    exercised.sort();
    let mut table: Vec<&str> = RULES
        .iter()
        .filter(|rule| matches!(rule.check, Coverage::Checked(_)))
        .map(|rule| rule.id)
        .collect();
    table.sort();
    assert_eq!(exercised, table);
    let markdown = rules_markdown();
    assert_eq!(
        markdown
            .lines()
            .filter(|line| line.starts_with("| "))
            .count(),
        RULES.len() + 1
    );
    if let Ok(path) = std::env::var("TCK_RULES_MD") {
        std::fs::write(path, markdown).unwrap();
    }
}

#[tokio::test]
async fn the_probe_flags_on_next_beyond_demand_and_signals_after_complete() {
    let (probe, mut subscriber) = ManualSubscriber::<u64>::new();
    let (subscription, _demand) = Demand::pair();
    subscriber.on_subscribe(subscription);
    probe.request(1);
    subscriber.on_next(1);
    assert!(probe.violations().is_empty());
    subscriber.on_next(2);
    subscriber.on_complete();
    subscriber.on_complete();
    let rules: Vec<&str> = probe.violations().iter().map(|v| v.rule).collect();
    assert_eq!(rules, ["1.1", "1.7"]);
    assert_eq!(probe.items(), [1, 2]);
    assert!(probe.is_completed());
}

// ---- hand-written publishers and subscribers -------------------------------------------

/// A correct publisher of `0..elements` written with `Demand::pair`: one task per
/// subscriber, sends only what the demand grants, completes when done.
struct Counter {
    elements: u64,
}

impl Publisher for Counter {
    type Item = u64;

    fn subscribe<S: Subscriber<u64> + Send + 'static>(self, mut subscriber: S) {
        let (subscription, demand) = Demand::pair();
        tokio::spawn(async move {
            subscriber.on_subscribe(subscription);
            let mut next = 0;
            while next < self.elements {
                let Some(granted) = std::future::poll_fn(|cx| demand.poll_take_all(cx)).await
                else {
                    return; // cancelled: drop the subscriber
                };
                let end = next.saturating_add(granted).min(self.elements);
                while next < end {
                    subscriber.on_next(next);
                    next += 1;
                    if demand.is_cancelled() {
                        return;
                    }
                }
            }
            subscriber.on_complete();
        });
    }
}

/// Fails at once: on_subscribe, then on_error with no demand needed.
struct FailsAtOnce;

impl Publisher for FailsAtOnce {
    type Item = u64;

    fn subscribe<S: Subscriber<u64> + Send + 'static>(self, mut subscriber: S) {
        let (subscription, _demand) = Demand::pair();
        subscriber.on_subscribe(subscription);
        subscriber.on_error(Error::Protocol("tck: fails at once"));
    }
}

/// Broken on purpose: once anything is requested it sends every element regardless of
/// the demand (rule 1.1) and ignores cancel (3.6, 3.12), then signals after on_complete (1.7).
struct Broken {
    elements: u64,
}

impl Publisher for Broken {
    type Item = u64;

    fn subscribe<S: Subscriber<u64> + Send + 'static>(self, mut subscriber: S) {
        let (subscription, demand) = Demand::pair();
        tokio::spawn(async move {
            subscriber.on_subscribe(subscription);
            let _ = std::future::poll_fn(|cx| demand.poll_take_all(cx)).await;
            // Ignores both the amount and a cancel: waits a little for a cancel to be
            // missed, then floods.
            tokio::time::sleep(Duration::from_millis(20)).await;
            for item in 0..self.elements.min(1000) {
                subscriber.on_next(item);
            }
            subscriber.on_complete();
            subscriber.on_next(u64::MAX);
            subscriber.on_complete();
        });
    }
}

/// Broken on purpose: serves demand but keeps the subscriber forever after a cancel (3.13).
struct Leaky {
    elements: u64,
}

impl Publisher for Leaky {
    type Item = u64;

    fn subscribe<S: Subscriber<u64> + Send + 'static>(self, subscriber: S) {
        let leaked = Box::leak(Box::new(subscriber));
        let (subscription, demand) = Demand::pair();
        leaked.on_subscribe(subscription);
        let subscriber: &'static mut S = leaked;
        tokio::spawn(async move {
            let mut next = 0;
            while let Some(granted) = std::future::poll_fn(|cx| demand.poll_take_all(cx)).await {
                for _ in 0..granted.min(self.elements - next) {
                    subscriber.on_next(next);
                    next += 1;
                }
                if next == self.elements {
                    subscriber.on_complete();
                    return;
                }
            }
        });
    }
}

/// Broken on purpose: never calls on_subscribe (rule 1.9).
struct Silent;

impl Publisher for Silent {
    type Item = u64;

    fn subscribe<S: Subscriber<u64> + Send + 'static>(self, subscriber: S) {
        std::mem::forget(subscriber);
    }
}

/// Broken on purpose: requests unbounded on every subscription (never cancels a second
/// one, rule 2.5) and panics on on_error (2.13).
struct Greedy {
    count: u64,
    done: Option<oneshot::Sender<Result<u64, Error>>>,
}

impl Subscriber<u64> for Greedy {
    fn on_subscribe(&mut self, subscription: Subscription) {
        subscription.request(NonZeroU64::MAX);
    }
    fn on_next(&mut self, _: u64) {
        self.count += 1;
    }
    fn on_error(&mut self, error: Error) {
        panic!("greedy subscriber cannot handle {error}");
    }
    fn on_complete(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(Ok(self.count));
        }
    }
}
