//! Why an actor stopped, and the signals its links and monitors receive.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A process-unique actor identity (never reused while the process runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId(u64);

impl ActorId {
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number behind the id.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actor#{}", self.0)
    }
}

/// Why an actor (or one run of a supervised actor) stopped.
///
/// [`is_normal`](Self::is_normal) splits the reasons the way OTP does: `Normal` and
/// `Stopped` are expected ends (a transient child is not restarted after them), everything
/// else is a failure that links propagate and supervisors restart.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ExitReason {
    /// The actor stopped itself ([`Context::stop`](crate::Context::stop)), or every
    /// [`ActorRef`](crate::ActorRef) to it was dropped.
    Normal,
    /// Stopped from outside: [`ActorRef::stop`](crate::ActorRef::stop) or its supervisor
    /// shutting it down.
    Stopped,
    /// A handler, `on_start` or the supervisor's factory panicked; the panic's message. (A
    /// panic in `on_stop` is caught and counted in `stats().panics`; the reason the actor
    /// was stopping for stays.)
    Panicked(String),
    /// `on_start` returned an error, or the actor called
    /// [`Context::fail`](crate::Context::fail).
    Error(Arc<dyn Error + Send + Sync>),
    /// [`ActorRef::kill`](crate::ActorRef::kill), or a supervisor's shutdown timeout ran out.
    Killed,
    /// A supervisor exceeded its restart intensity and gave up.
    Escalated,
    /// A linked actor failed, and this actor did not handle the exit signal itself.
    Linked {
        /// The linked actor that failed.
        from: ActorId,
        /// Why it failed.
        reason: Arc<ExitReason>,
    },
}

impl ExitReason {
    /// True for `Normal` and `Stopped`: the actor ended as intended.
    pub fn is_normal(&self) -> bool {
        matches!(self, Self::Normal | Self::Stopped)
    }

    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = if let Some(text) = payload.downcast_ref::<&'static str>() {
            (*text).to_owned()
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.clone()
        } else {
            "panic with a non-string payload".to_owned()
        };
        Self::Panicked(message)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("normal"),
            Self::Stopped => f.write_str("stopped"),
            Self::Panicked(message) => write!(f, "panicked: {message}"),
            Self::Error(error) => write!(f, "error: {error}"),
            Self::Killed => f.write_str("killed"),
            Self::Escalated => f.write_str("escalated: restart intensity exceeded"),
            Self::Linked { from, reason } => write!(f, "linked {from} exited: {reason}"),
        }
    }
}

impl PartialEq for ExitReason {
    /// Errors compare by their message (an `Error` has no equality of its own).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Normal, Self::Normal)
            | (Self::Stopped, Self::Stopped)
            | (Self::Killed, Self::Killed)
            | (Self::Escalated, Self::Escalated) => true,
            (Self::Panicked(a), Self::Panicked(b)) => a == b,
            (Self::Error(a), Self::Error(b)) => a.to_string() == b.to_string(),
            (
                Self::Linked { from, reason },
                Self::Linked {
                    from: other_from,
                    reason: other_reason,
                },
            ) => from == other_from && reason == other_reason,
            _ => false,
        }
    }
}

/// How the receiver of an [`ExitSignal`] is related to the actor that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitKind {
    /// A two-way link ([`Context::link`](crate::Context::link)): by default a failure of
    /// one stops the other.
    Link,
    /// A one-way monitor ([`Context::monitor`](crate::Context::monitor)): information only.
    Monitor,
    /// One run of a supervised child ended (only supervisors receive these).
    Child,
}

/// Delivered to [`Actor::on_exit_signal`](crate::Actor::on_exit_signal) when a linked or
/// monitored actor (or a supervised child's run) ends.
#[derive(Debug, Clone)]
pub struct ExitSignal {
    /// The actor that exited.
    pub from: ActorId,
    /// Why.
    pub reason: ExitReason,
    /// Link, monitor or child.
    pub kind: ExitKind,
    /// For [`ExitKind::Child`]: which run of the child ended (1 = the first), so a
    /// supervisor can tell a stale report from a current one. 0 otherwise.
    pub(crate) run: u64,
}
