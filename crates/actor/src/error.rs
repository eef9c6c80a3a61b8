//! Errors, one enum per operation. An operation that could not deliver a message hands it
//! back.

use std::fmt;
use std::time::Duration;

/// Why a `tell` did not put the message in the mailbox. The message is handed back.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum SendError<M> {
    /// The actor has stopped (or is stopping and no longer accepts messages).
    #[error("actor stopped")]
    Stopped(M),
    /// The mailbox is full ([`try_tell`](crate::ActorRef::try_tell) only).
    #[error("mailbox full")]
    Full(M),
    /// The mailbox stayed full for the whole timeout
    /// ([`tell_timeout`](crate::ActorRef::tell_timeout) only).
    #[error("mailbox still full after {1:?}")]
    Timeout(M, Duration),
}

impl<M> SendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            Self::Stopped(message) | Self::Full(message) | Self::Timeout(message, _) => message,
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stopped(_) => f.write_str("Stopped(..)"),
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Timeout(_, waited) => write!(f, "Timeout(.., {waited:?})"),
        }
    }
}

/// Why an `ask` returned no reply.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum AskError<M> {
    /// The actor had stopped before it accepted the message; the message is handed back.
    #[error("actor stopped")]
    Stopped(M),
    /// The deadline passed (waiting for mailbox room or for the reply). If the message was
    /// accepted it may still be handled.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The message was accepted but the actor ended without replying: the handler
    /// panicked, or the actor was killed or failed with the message still queued.
    #[error("actor ended without replying")]
    NoReply,
}

impl<M> fmt::Debug for AskError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stopped(_) => f.write_str("Stopped(..)"),
            Self::Timeout(deadline) => write!(f, "Timeout({deadline:?})"),
            Self::NoReply => f.write_str("NoReply"),
        }
    }
}

/// Why a supervisor could not start a child.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartChildError {
    /// The child's `on_start` failed (or panicked); the reason says how.
    #[error("child failed to start: {0}")]
    Failed(crate::ExitReason),
    /// The supervisor has stopped.
    #[error("supervisor stopped")]
    SupervisorStopped,
    /// No reply from the supervisor within the deadline.
    #[error("supervisor did not answer within {0:?}")]
    Timeout(Duration),
}

/// Why a registry name could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// Another running actor holds the name.
    #[error("name {0:?} is already registered")]
    NameTaken(String),
    /// The actor has already stopped.
    #[error("actor stopped")]
    Stopped,
}

/// Why a registry lookup failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupError {
    /// No running actor is registered under the name.
    #[error("no actor named {0:?}")]
    NotFound(String),
    /// The name belongs to an actor of another type.
    #[error("actor named {name:?} is a {actual}, not a {expected}")]
    WrongType {
        /// The name looked up.
        name: String,
        /// The type asked for.
        expected: &'static str,
        /// The registered actor's type.
        actual: &'static str,
    },
}

/// Why a supervisor or router was configured wrongly.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting is out of range; the message names it.
    #[error("invalid {setting}: {why}")]
    Invalid {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
}
