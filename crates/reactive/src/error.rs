//! The one error type a flow can end with.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The error type of user code that fails a flow (a fallible source, `try_map`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a flow ended with an error instead of completing.
///
/// Errors are cheap to clone (an upstream error is shared behind an `Arc`), because one
/// error may have to reach several subscribers (`broadcast`) or be kept for a retry.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user closure (an operator's function, a subscriber's `on_next`) panicked. The flow
    /// ended and everything upstream was cancelled.
    #[error("a user closure panicked: {message}")]
    Panicked {
        /// The panic payload, when it was a string.
        message: String,
    },
    /// No item arrived within the `timeout` operator's limit.
    #[error("no item within {after:?}")]
    Timeout {
        /// The limit that passed.
        after: Duration,
    },
    /// A `buffer` with [`Overflow::Error`](crate::Overflow::Error) was full when an item
    /// arrived. The items buffered before it were delivered first.
    #[error("the buffer of {capacity} items overflowed")]
    Overflow {
        /// The buffer's capacity.
        capacity: usize,
    },
    /// `group_by` saw one key more than its bound on open groups.
    #[error("more than {limit} groups open at once")]
    TooManyGroups {
        /// The bound.
        limit: usize,
    },
    /// A `group_by` group's buffer filled up while nobody consumed the group (typically a
    /// `flat_map` whose concurrency is below the number of groups). Other libraries hang
    /// here; flowbed ends the flow with this error.
    #[error("group {key} is not consumed and its buffer of {capacity} items is full")]
    GroupNotConsumed {
        /// The group's key, as `Debug` prints it.
        key: String,
        /// The group's buffer capacity.
        capacity: usize,
    },
    /// A [`Publisher`](crate::Publisher) broke the Reactive Streams protocol (for example
    /// it sent more items than were requested).
    #[error("the publisher broke the reactive streams protocol: {0}")]
    Protocol(&'static str),
    /// There was no tokio runtime to run an asynchronous operator on.
    #[error("no tokio runtime: an asynchronous operator must run inside one")]
    NoRuntime,
    /// A source or user function failed with its own error.
    #[error("upstream failed: {0}")]
    Upstream(Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// Wraps a user error.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowbed_reactive::Error;
    ///
    /// let error = Error::upstream(std::io::Error::other("disk full"));
    /// assert!(error.downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn upstream(error: impl Into<BoxError>) -> Self {
        Self::Upstream(Arc::from(error.into()))
    }

    /// The user error inside an [`Error::Upstream`], if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Self::Upstream(error) => error.downcast_ref::<E>(),
            _ => None,
        }
    }

    /// The error for a caught panic payload.
    pub(crate) fn from_panic(payload: &(dyn Any + Send)) -> Self {
        let message = if let Some(text) = payload.downcast_ref::<&str>() {
            (*text).to_owned()
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.clone()
        } else {
            "non-string panic payload".to_owned()
        };
        Self::Panicked { message }
    }

    /// The error for a group that is not consumed.
    pub(crate) fn group_not_consumed(key: &dyn fmt::Debug, capacity: usize) -> Self {
        Self::GroupNotConsumed {
            key: format!("{key:?}"),
            capacity,
        }
    }
}
