//! The rules of the Reactive Streams specification (1.x Publisher, 2.x Subscriber,
//! 3.x Subscription) and how this kit covers each one in Rust.

use std::fmt::Write as _;

/// How the kit covers a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// A check exercises the rule at run time; the text says how.
    Checked(&'static str),
    /// Rust's types make breaking the rule impossible (or make the rule moot); the text
    /// says which type does it.
    TypeEnforced(&'static str),
    /// Not checkable, or a permission ("MAY") nothing can break; the text says why.
    NotApplicable(&'static str),
}

/// One rule of the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    /// The rule's number, e.g. `"1.1"`.
    pub id: &'static str,
    /// The rule, as the specification states it (Java names translated to flowbed's).
    pub text: &'static str,
    /// How the kit covers it.
    pub check: Coverage,
}

use Coverage::{Checked, NotApplicable, TypeEnforced};

/// Every rule of Reactive Streams 1.0.4 and how [`PublisherVerification`](super::PublisherVerification)
/// (1.x, 3.x) and [`SubscriberVerification`](super::SubscriberVerification) (2.x) cover it.
pub const RULES: &[RuleInfo] = &[
    RuleInfo {
        id: "1.1",
        text: "The total number of on_next signalled by a Publisher to a Subscriber must be less than or equal to the total number of elements requested by that Subscriber's Subscription at all times.",
        check: Checked(
            "requests 1, then 3, then 6 of 10 elements and watches for a quiet period after each; the probe flags any on_next beyond the demand it requested",
        ),
    },
    RuleInfo {
        id: "1.2",
        text: "A Publisher may signal fewer on_next than requested and terminate the Subscription by calling on_complete or on_error.",
        check: Checked("requests 10 of a 3-element publisher: 3 items, then on_complete"),
    },
    RuleInfo {
        id: "1.3",
        text: "on_subscribe, on_next, on_error and on_complete signalled to a Subscriber must be signalled serially.",
        check: Checked(
            "requests one item at a time from several threads at once; the probe flags overlapping signals (signal methods take `&mut self`, so only unsafe code could overlap them)",
        ),
    },
    RuleInfo {
        id: "1.4",
        text: "If a Publisher fails it must signal an on_error.",
        check: Checked(
            "the failed-publisher factory's publisher must signal on_error after on_subscribe, without any request (as the JVM TCK checks)",
        ),
    },
    RuleInfo {
        id: "1.5",
        text: "If a Publisher terminates successfully (finite stream) it must signal an on_complete.",
        check: Checked(
            "publishers of 0, 1 and 3 elements deliver exactly that many items, then on_complete (one extra request(1) allowed, as in the JVM TCK)",
        ),
    },
    RuleInfo {
        id: "1.6",
        text: "If a Publisher signals either on_error or on_complete on a Subscriber, that Subscriber's Subscription must be considered cancelled.",
        check: Checked(
            "request and cancel after on_complete are harmless: no panic, no further signal",
        ),
    },
    RuleInfo {
        id: "1.7",
        text: "Once a terminal state has been signalled (on_error, on_complete) it is required that no further signals occur.",
        check: Checked(
            "requests more after on_complete and after on_error; the probe flags any signal after the terminal one",
        ),
    },
    RuleInfo {
        id: "1.8",
        text: "If a Subscription is cancelled its Subscriber must eventually stop being signalled.",
        check: Checked(
            "requests 10 + 5 of 20, cancels after the first item: the signals must stop within the timeout, at most 15 items in all",
        ),
    },
    RuleInfo {
        id: "1.9",
        text: "Publisher::subscribe must call on_subscribe on the provided Subscriber prior to any other signal and must return normally; the only legal way to signal failure (or reject the Subscriber) is by calling on_error after on_subscribe.",
        check: Checked(
            "subscribe must return promptly without panicking, on_subscribe must come first and arrive within the timeout, and a failed publisher must call on_subscribe before on_error (a null subscriber cannot be written in Rust)",
        ),
    },
    RuleInfo {
        id: "1.10",
        text: "Publisher::subscribe may be called as many times as wanted but must be with a different Subscriber each time.",
        check: TypeEnforced(
            "`subscribe` takes the subscriber by value: the same subscriber cannot be subscribed twice",
        ),
    },
    RuleInfo {
        id: "1.11",
        text: "A Publisher may support multiple Subscribers and decides whether each Subscription is unicast or multicast.",
        check: NotApplicable(
            "a permission; flowbed's `subscribe` consumes the publisher, so fan-out is an operator (broadcast), not a property the kit can test on one publisher",
        ),
    },
    RuleInfo {
        id: "2.1",
        text: "A Subscriber must signal demand via Subscription::request to receive on_next signals.",
        check: Checked(
            "the kit, acting as publisher, sends items only against demand the subscriber requested; the subscriber must keep requesting until it has all N items, then see on_complete",
        ),
    },
    RuleInfo {
        id: "2.2",
        text: "If a Subscriber suspects that its processing of signals will negatively impact its Publisher's responsivity, it is recommended that it asynchronously dispatches its signals.",
        check: Checked("every signal the kit delivers must return within the timeout"),
    },
    RuleInfo {
        id: "2.3",
        text: "Subscriber::on_complete and Subscriber::on_error must not call any methods on the Subscription or the Publisher.",
        check: Checked(
            "no demand may appear while on_complete / on_error run (a cancel cannot be attributed to the signal, and is a no-op after a terminal signal anyway)",
        ),
    },
    RuleInfo {
        id: "2.4",
        text: "Subscriber::on_complete and Subscriber::on_error must consider the Subscription cancelled after having received the signal.",
        check: Checked(
            "no request may follow the terminal signal, until the consumer finished and a quiet period passed",
        ),
    },
    RuleInfo {
        id: "2.5",
        text: "A Subscriber must call Subscription::cancel on the given Subscription after an on_subscribe signal if it already has an active Subscription.",
        check: Checked(
            "the kit calls on_subscribe twice: the second subscription must be cancelled (and never asked for items), the first must keep working to the end",
        ),
    },
    RuleInfo {
        id: "2.6",
        text: "A Subscriber must call Subscription::cancel if the Subscription is no longer valid to the Publisher without the Publisher having signalled on_error or on_complete.",
        check: Checked(
            "the kit aborts the consumer's task mid-stream: the subscription must be cancelled within the timeout",
        ),
    },
    RuleInfo {
        id: "2.7",
        text: "A Subscriber must ensure that all calls on its Subscription's request and cancel methods are performed serially.",
        check: TypeEnforced(
            "`Subscription` is `Sync` and its methods are atomic, so concurrent calls are as safe as serial ones",
        ),
    },
    RuleInfo {
        id: "2.8",
        text: "A Subscriber must be prepared to receive one or more on_next signals after having called Subscription::cancel if there are still requested elements pending.",
        check: Checked(
            "after the consumer cancelled, the kit sends items still covered by demand: on_next must return normally",
        ),
    },
    RuleInfo {
        id: "2.9",
        text: "A Subscriber must be prepared to receive an on_complete signal with or without a preceding Subscription::request call.",
        check: Checked(
            "on_complete right after on_subscribe: the consumer must finish with 0 items",
        ),
    },
    RuleInfo {
        id: "2.10",
        text: "A Subscriber must be prepared to receive an on_error signal with or without a preceding Subscription::request call.",
        check: Checked(
            "on_error right after on_subscribe: the consumer must finish with that error",
        ),
    },
    RuleInfo {
        id: "2.11",
        text: "A Subscriber must make sure that all calls on its signal methods happen-before the processing of the respective signals.",
        check: TypeEnforced(
            "signal methods take `&mut self` and moving a subscriber between threads needs `Send`: every hand-over synchronises (happens-before) by construction",
        ),
    },
    RuleInfo {
        id: "2.12",
        text: "Subscriber::on_subscribe must be called at most once for a given Subscriber.",
        check: TypeEnforced(
            "`subscribe` takes the subscriber by value; a publisher calling on_subscribe twice is caught by the probe (rule 1.9) and a subscriber's reaction by rule 2.5",
        ),
    },
    RuleInfo {
        id: "2.13",
        text: "Calling on_subscribe, on_next, on_error or on_complete must return normally; the only legal way for a Subscriber to signal failure is by cancelling its Subscription.",
        check: Checked(
            "every signal the kit delivers is run under catch_unwind and must not panic (null parameters cannot be written in Rust)",
        ),
    },
    RuleInfo {
        id: "3.1",
        text: "Subscription::request and Subscription::cancel must only be called inside of its Subscriber context.",
        check: TypeEnforced(
            "`Subscription` is `Send + Sync` and atomic: calling it from any thread is safe, the rule's reason (unsynchronised state) does not exist",
        ),
    },
    RuleInfo {
        id: "3.2",
        text: "The Subscription must allow the Subscriber to call Subscription::request synchronously from within on_next or on_subscribe.",
        check: Checked(
            "the probe requests 1 inside on_subscribe and 1 inside every on_next: all 10 items and on_complete must arrive",
        ),
    },
    RuleInfo {
        id: "3.3",
        text: "Subscription::request must place an upper bound on possible synchronous recursion between Publisher and Subscriber.",
        check: TypeEnforced(
            "`Subscription::request` only adds to an atomic counter and wakes the publisher's task: it never calls into the subscriber, so there is no recursion at all",
        ),
    },
    RuleInfo {
        id: "3.4",
        text: "Subscription::request should respect the responsivity of its caller by returning in a timely manner.",
        check: Checked("every request the probe makes is timed and must return within the timeout"),
    },
    RuleInfo {
        id: "3.5",
        text: "Subscription::cancel must respect the responsivity of its caller by returning in a timely manner, must be idempotent and must be thread-safe.",
        check: Checked(
            "four threads cancel at once mid-stream: each returns within the timeout, and the signals stop",
        ),
    },
    RuleInfo {
        id: "3.6",
        text: "After the Subscription is cancelled, additional Subscription::request calls must be no-ops.",
        check: Checked("request(1), cancel, request(10): exactly one item arrives, nothing after"),
    },
    RuleInfo {
        id: "3.7",
        text: "After the Subscription is cancelled, additional Subscription::cancel calls must be no-ops.",
        check: Checked("cancel three times: no panic and no signal"),
    },
    RuleInfo {
        id: "3.8",
        text: "While the Subscription is not cancelled, Subscription::request(n) must register the given number of additional elements to be produced to the respective subscriber.",
        check: Checked("request(2) then request(3): exactly 2, then exactly 5 items arrive"),
    },
    RuleInfo {
        id: "3.9",
        text: "While the Subscription is not cancelled, Subscription::request(n) must signal on_error if the argument is <= 0.",
        check: TypeEnforced(
            "`request` takes a `NonZeroU64`: zero and negative demand cannot be written",
        ),
    },
    RuleInfo {
        id: "3.10",
        text: "While the Subscription is not cancelled, Subscription::request(n) may synchronously call on_next on this (or other) subscriber(s).",
        check: NotApplicable(
            "a permission flowbed does not use: `request` never calls the subscriber",
        ),
    },
    RuleInfo {
        id: "3.11",
        text: "While the Subscription is not cancelled, Subscription::request(n) may synchronously call on_complete or on_error on this (or other) subscriber(s).",
        check: NotApplicable(
            "a permission flowbed does not use: `request` never calls the subscriber",
        ),
    },
    RuleInfo {
        id: "3.12",
        text: "While the Subscription is not cancelled, Subscription::cancel must request the Publisher to eventually stop signalling its Subscriber.",
        check: Checked(
            "cancel right after on_subscribe, before any request: no item and no signal may follow",
        ),
    },
    RuleInfo {
        id: "3.13",
        text: "While the Subscription is not cancelled, Subscription::cancel must request the Publisher to eventually drop any references to the corresponding subscriber.",
        check: Checked(
            "after cancel the publisher must drop the probe subscriber within the timeout",
        ),
    },
    RuleInfo {
        id: "3.14",
        text: "While the Subscription is not cancelled, calling Subscription::cancel may cause the Publisher, if stateful, to transition into the shut-down state if no other Subscription exists at this point.",
        check: NotApplicable("a permission; nothing to check"),
    },
    RuleInfo {
        id: "3.15",
        text: "Calling Subscription::cancel must return normally.",
        check: Checked(
            "every cancel the probe makes runs under catch_unwind, including a cancel from inside on_next",
        ),
    },
    RuleInfo {
        id: "3.16",
        text: "Calling Subscription::request must return normally.",
        check: Checked(
            "requests from three threads at once run under catch_unwind and must all be served",
        ),
    },
    RuleInfo {
        id: "3.17",
        text: "A Subscription must support an unbounded number of calls to request and must support a demand up to 2^63-1; a demand at or above it may be considered effectively unbounded.",
        check: Checked(
            "request(u64::MAX), and requests adding up beyond u64::MAX, must deliver every item then on_complete, never on_error",
        ),
    },
];

/// How many rules are checked at run time, enforced by types, and not applicable.
pub fn coverage_counts() -> (usize, usize, usize) {
    RULES
        .iter()
        .fold((0, 0, 0), |(checked, typed, na), rule| match rule.check {
            Checked(_) => (checked + 1, typed, na),
            TypeEnforced(_) => (checked, typed + 1, na),
            NotApplicable(_) => (checked, typed, na + 1),
        })
}

/// [`RULES`] as a Markdown table (for a README), with a summary line.
///
/// # Examples
///
/// ```
/// let table = flowbed_reactive::tck::rules_markdown();
/// assert!(table.contains("| 1.1 |"));
/// ```
pub fn rules_markdown() -> String {
    let (checked, typed, na) = coverage_counts();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} rules: {checked} checked at run time, {typed} enforced by the type system, {na} not applicable.\n",
        RULES.len()
    );
    out.push_str("| Rule | Requirement | Coverage | How |\n|---|---|---|---|\n");
    for rule in RULES {
        let (kind, how) = match rule.check {
            Checked(how) => ("checked", how),
            TypeEnforced(why) => ("type system", why),
            NotApplicable(why) => ("n/a", why),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {kind} | {} |",
            rule.id,
            rule.text.replace('|', "\\|"),
            how.replace('|', "\\|")
        );
    }
    out
}
