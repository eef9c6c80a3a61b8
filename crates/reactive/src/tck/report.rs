//! What a verification run found: one [`Entry`] per check, each [`Passed`](Outcome::Passed),
//! [`Failed`](Outcome::Failed) or [`NotApplicable`](Outcome::NotApplicable).

use std::fmt;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The subject behaved as the rule requires.
    Passed,
    /// The subject broke the rule; the text says what happened.
    Failed(String),
    /// The check could not run for this subject (for example it needs more elements than
    /// the publisher can produce, or a failed-publisher factory that was not given).
    NotApplicable(String),
}

impl Outcome {
    /// Whether this is [`Outcome::Failed`].
    pub fn is_failed(&self) -> bool {
        matches!(self, Self::Failed(_))
    }

    /// Whether this is [`Outcome::Passed`].
    pub fn is_passed(&self) -> bool {
        matches!(self, Self::Passed)
    }
}

/// One check of a rule and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The rule's number in the Reactive Streams specification, e.g. `"1.1"`.
    pub rule: &'static str,
    /// What the check did, in a few words.
    pub check: &'static str,
    /// How it ended.
    pub outcome: Outcome,
}

/// The outcome of every check of one verification run, in the order they ran.
///
/// Print it (`{}`) for a readable table; [`assert_all_passed`](Self::assert_all_passed)
/// panics with the list of failures.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// What was verified (the name given to the verification).
    pub subject: String,
    /// Every check, in the order it ran.
    pub entries: Vec<Entry>,
}

impl Report {
    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|entry| entry.outcome.is_failed())
    }

    /// The checks of `rule` (e.g. `"1.1"`).
    pub fn rule(&self, rule: &str) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |entry| entry.rule == rule)
    }

    /// Whether some check of `rule` failed.
    pub fn rule_failed(&self, rule: &str) -> bool {
        self.rule(rule).any(|entry| entry.outcome.is_failed())
    }

    /// Whether every check of `rule` passed (false if the rule was not checked at all).
    pub fn rule_passed(&self, rule: &str) -> bool {
        let mut checks = self.rule(rule).peekable();
        checks.peek().is_some() && checks.all(|entry| entry.outcome.is_passed())
    }

    /// The rules with at least one check that actually ran (passed or failed).
    pub fn exercised_rules(&self) -> Vec<&'static str> {
        let mut rules: Vec<&'static str> = Vec::new();
        for entry in &self.entries {
            if !matches!(entry.outcome, Outcome::NotApplicable(_)) && !rules.contains(&entry.rule) {
                rules.push(entry.rule);
            }
        }
        rules
    }

    /// Panics, listing every failed check, unless none failed.
    #[track_caller]
    pub fn assert_all_passed(&self) {
        self.assert_all_passed_except(&[]);
    }

    /// Panics, listing every failed check of a rule not in `known`, unless there is none.
    /// For a subject with a known, reported bug: name the rules it breaks, so any other
    /// failure still fails the test.
    #[track_caller]
    pub fn assert_all_passed_except(&self, known: &[&str]) {
        let failures: Vec<String> = self
            .failures()
            .filter(|entry| !known.contains(&entry.rule))
            .map(|entry| match &entry.outcome {
                Outcome::Failed(why) => format!("  rule {} ({}): {why}", entry.rule, entry.check),
                _ => unreachable!("failures() yields only failed entries"),
            })
            .collect();
        if !failures.is_empty() {
            panic!(
                "{}: {} Reactive Streams check(s) failed:\n{}\n\nfull report:\n{self}",
                self.subject,
                failures.len(),
                failures.join("\n")
            );
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Reactive Streams checks of {}:", self.subject)?;
        for entry in &self.entries {
            let (status, why) = match &entry.outcome {
                Outcome::Passed => ("passed", ""),
                Outcome::Failed(why) => ("FAILED", why.as_str()),
                Outcome::NotApplicable(why) => ("n/a", why.as_str()),
            };
            write!(f, "  {:<5} {:<6} {}", entry.rule, status, entry.check)?;
            if why.is_empty() {
                writeln!(f)?;
            } else {
                writeln!(f, ": {why}")?;
            }
        }
        Ok(())
    }
}
