//! Optimistic concurrency: what a writer believes about a stream before appending, and the
//! rules every backend applies (one implementation, so the backends cannot drift apart).

use std::fmt;

use crate::error::{AppendError, StoreError};
use crate::event::{EventData, EventId};

/// What the writer expects the stream's version to be; the append fails with
/// [`AppendError::WrongExpectedVersion`] otherwise and writes nothing.
///
/// A stream's version is the version of its last event: 0 for a stream that has none, 1
/// after its first event.
///
/// # Examples
///
/// ```
/// use flowbed_eventsourcing::ExpectedVersion;
///
/// assert!(ExpectedVersion::Any.admits(7));
/// assert!(ExpectedVersion::NoStream.admits(0));
/// assert!(ExpectedVersion::StreamExists.admits(3));
/// assert!(ExpectedVersion::Exact(3).admits(3));
/// assert!(!ExpectedVersion::Exact(2).admits(3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No check: append whatever the stream holds.
    Any,
    /// The stream has no events yet.
    NoStream,
    /// The stream has at least one event.
    StreamExists,
    /// The stream's last event has exactly this version (0 = no events, like `NoStream`).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at `current` version satisfies this expectation.
    pub fn admits(self, current: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::StreamExists => current > 0,
            ExpectedVersion::Exact(version) => current == version,
        }
    }

    /// The expectation as one integer, for backends that pass it as a SQL parameter:
    /// `-1` any, `-2` no stream, `-3` stream exists, `v >= 0` exact.
    pub fn to_code(self) -> i64 {
        match self {
            ExpectedVersion::Any => -1,
            ExpectedVersion::NoStream => -2,
            ExpectedVersion::StreamExists => -3,
            ExpectedVersion::Exact(version) => i64::try_from(version).unwrap_or(i64::MAX),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("stream exists"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// Checks the name of a snapshot's stream or of a subscriber before it is stored.
///
/// # Errors
///
/// [`StoreError::NulCharacter`] naming `field`.
pub(crate) fn validate_name(field: &'static str, name: &str) -> Result<(), StoreError> {
    if name.contains('\0') {
        return Err(StoreError::NulCharacter {
            field,
            value: name.to_owned(),
        });
    }
    Ok(())
}

/// Checks what can be checked before touching storage: a non-empty stream id, no NUL
/// character in the stream id or an event type, and no event id twice in the batch.
///
/// # Errors
///
/// [`AppendError::EmptyStreamId`], [`AppendError::NulCharacter`],
/// [`AppendError::DuplicateEventInBatch`].
pub(crate) fn validate_batch(stream: &str, events: &[EventData]) -> Result<(), AppendError> {
    if stream.is_empty() {
        return Err(AppendError::EmptyStreamId);
    }
    if stream.contains('\0') {
        return Err(AppendError::NulCharacter {
            field: "stream id",
            value: stream.to_owned(),
        });
    }
    if let Some(event) = events.iter().find(|event| event.event_type.contains('\0')) {
        return Err(AppendError::NulCharacter {
            field: "event type",
            value: event.event_type.clone(),
        });
    }
    if events.len() > 1 {
        let mut ids: Vec<EventId> = events.iter().map(|event| event.id).collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(AppendError::DuplicateEventInBatch { event_id: pair[0] });
        }
    }
    Ok(())
}

/// Where an event id of the batch already lives, as a backend found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExistingEvent {
    /// The stream holding it.
    pub(crate) stream_id: String,
    /// Its version there.
    pub(crate) version: u64,
}

/// What to do with a batch some of whose ids may already be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Replay {
    /// None of the ids is stored: check the expected version and append.
    Fresh,
    /// Every id is stored, in this stream, consecutively and in this order: the batch was
    /// appended before; answer with its original outcome (ending at this version).
    AlreadyAppended {
        /// The version of the batch's last event.
        last_version: u64,
    },
}

/// Decides idempotency from where each id of the batch already lives (`None`: not
/// stored), in batch order. The rule, on every backend: every id already stored in this
/// stream, at consecutive versions in batch order → no-op success (a retry of the batch;
/// stores keep no batch boundaries, so a consecutive run of earlier appends re-sent as one
/// batch also counts); none stored → a normal append; anything else (some stored, or
/// stored elsewhere, with holes or in another order) → [`AppendError::IdempotencyConflict`].
pub(crate) fn classify_replay(
    stream: &str,
    events: &[EventData],
    existing: &[Option<ExistingEvent>],
) -> Result<Replay, AppendError> {
    debug_assert_eq!(events.len(), existing.len());
    if existing.iter().all(Option::is_none) {
        return Ok(Replay::Fresh);
    }
    let conflict = |index: usize| AppendError::IdempotencyConflict {
        stream: stream.to_owned(),
        event_id: events[index].id,
    };
    let first = match &existing[0] {
        Some(first) if first.stream_id == stream => first.version,
        _ => return Err(conflict(0)),
    };
    for (index, found) in existing.iter().enumerate() {
        match found {
            Some(found) if found.stream_id == stream && found.version == first + index as u64 => {}
            _ => return Err(conflict(index)),
        }
    }
    Ok(Replay::AlreadyAppended {
        last_version: first + events.len() as u64 - 1,
    })
}

/// Checks `expected` against the stream's `current` version.
///
/// # Errors
///
/// [`AppendError::WrongExpectedVersion`] naming both.
pub(crate) fn check_expected(
    stream: &str,
    expected: ExpectedVersion,
    current: u64,
) -> Result<(), AppendError> {
    if expected.admits(current) {
        Ok(())
    } else {
        Err(AppendError::WrongExpectedVersion {
            stream: stream.to_owned(),
            expected,
            actual: current,
        })
    }
}
