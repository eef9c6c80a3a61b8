//! The queue concurrent appends wait in while one writer commits them in batches (group
//! commit): the SQLite and PostgreSQL stores run one writer each, which takes every request
//! waiting (up to a batch limit), checks and writes them in one transaction, commits once
//! and answers each request. One commit then pays for many appends.
//!
//! The queue is bounded: when the writer falls behind, appenders wait for room
//! (backpressure) instead of queueing without limit.
//!
//! A writer that takes only what is already queued fills its batches badly under steady
//! concurrency: the appenders it just answered come back a few microseconds apart, the
//! writer starts a batch with the first of them, and the rest wait a whole commit. Batches
//! then alternate between nearly empty and nearly full. [`Gather`] lets the writer wait a
//! little for appenders it expects (as many as its last batch had), and only while they
//! keep arriving: a lone appender never waits.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::error::AppendError;
use crate::event::EventData;
use crate::expected::{ExpectedVersion, validate_batch};
use crate::store::AppendResult;

/// One append waiting for the writer.
#[derive(Debug)]
pub(crate) struct AppendRequest {
    /// The stream.
    pub(crate) stream: String,
    /// The expected version.
    pub(crate) expected: ExpectedVersion,
    /// The events, already validated (non-empty stream id, no id twice).
    pub(crate) events: Vec<EventData>,
    reply: oneshot::Sender<Result<AppendResult, AppendError>>,
}

impl AppendRequest {
    /// Answers the appender (who may have stopped waiting: then nobody hears it, and the
    /// events stay committed, as they would had the appender waited).
    pub(crate) fn answer(self, result: Result<AppendResult, AppendError>) {
        let _ = self.reply.send(result);
    }
}

/// The appenders' side of the queue. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Appender {
    requests: mpsc::Sender<AppendRequest>,
}

/// A queue holding at most `capacity` waiting appends.
pub(crate) fn queue(capacity: usize) -> (Appender, mpsc::Receiver<AppendRequest>) {
    let (requests, receiver) = mpsc::channel(capacity.max(1));
    (Appender { requests }, receiver)
}

impl Appender {
    /// Queues an append and waits for the writer's answer.
    ///
    /// # Errors
    ///
    /// Validation errors at once; the writer's answer; [`AppendError::Closed`] when the
    /// writer is gone (whether a request it took before stopping was committed is then
    /// unknown: re-append the same event ids to find out, idempotently).
    pub(crate) async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<AppendResult, AppendError> {
        validate_batch(stream, &events)?;
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            stream: stream.to_owned(),
            expected,
            events,
            reply,
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)?
    }
}

/// Takes the waiting requests into `batch` (which must be empty) after the first one,
/// without waiting, until `max_events` events or `max_requests` requests are taken.
pub(crate) fn drain_ready(
    receiver: &mut mpsc::Receiver<AppendRequest>,
    batch: &mut Vec<AppendRequest>,
    max_requests: usize,
    max_events: usize,
) {
    let mut events: usize = batch.iter().map(|request| request.events.len()).sum();
    while batch.len() < max_requests && events < max_events {
        match receiver.try_recv() {
            Ok(request) => {
                events += request.events.len();
                batch.push(request);
            }
            Err(_) => break,
        }
    }
}

/// How long a batch waits at most for the appenders [`Gather`] expects.
const GATHER_LIMIT: Duration = Duration::from_micros(200);

/// How long a batch waits for the next appender after the last one arrived.
const GATHER_IDLE: Duration = Duration::from_micros(50);

/// The group-commit gathering policy of one writer: how many appenders its last batch had.
#[derive(Debug, Default)]
pub(crate) struct Gather {
    last_requests: usize,
}

impl Gather {
    /// Starts gathering a batch (holding its first requests, taken without waiting).
    pub(crate) fn start(&self) -> Gathering {
        let now = Instant::now();
        Gathering {
            expected: self.last_requests,
            started: now,
            last_arrival: now,
            seen: 0,
        }
    }

    /// Remembers the size of the batch the writer is about to commit.
    pub(crate) fn finished(&mut self, requests: usize) {
        self.last_requests = requests;
    }
}

/// One batch being gathered: see [`Gathering::wait_for_more`].
#[derive(Debug)]
pub(crate) struct Gathering {
    expected: usize,
    started: Instant,
    last_arrival: Instant,
    seen: usize,
}

impl Gathering {
    /// Whether the writer should yield and look at the queue again before committing a
    /// batch of `requests` appends: it has fewer than its last batch had, it has waited
    /// less than [`GATHER_LIMIT`], and the last appender came less than [`GATHER_IDLE`]
    /// ago. A batch of no appends (other writes only) never waits.
    pub(crate) fn wait_for_more(&mut self, requests: usize) -> bool {
        if requests == 0 || requests >= self.expected {
            return false;
        }
        let now = Instant::now();
        if requests > self.seen {
            self.seen = requests;
            self.last_arrival = now;
        }
        now.duration_since(self.started) < GATHER_LIMIT
            && now.duration_since(self.last_arrival) < GATHER_IDLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_appender_never_waits() {
        let mut gather = Gather::default();
        assert!(!gather.start().wait_for_more(1));
        gather.finished(1);
        assert!(!gather.start().wait_for_more(1));
    }

    #[test]
    fn waits_for_as_many_appenders_as_the_last_batch_had() {
        let mut gather = Gather::default();
        gather.finished(4);
        let mut gathering = gather.start();
        assert!(gathering.wait_for_more(1));
        assert!(gathering.wait_for_more(3));
        assert!(!gathering.wait_for_more(4));
        assert!(!gathering.wait_for_more(0), "other writes only never wait");
    }

    #[test]
    fn stops_waiting_when_appenders_stop_arriving() {
        let mut gather = Gather::default();
        gather.finished(16);
        let mut gathering = gather.start();
        assert!(gathering.wait_for_more(2));
        std::thread::sleep(GATHER_IDLE * 2);
        assert!(!gathering.wait_for_more(2), "nobody arrived for a while");
    }

    #[test]
    fn stops_waiting_at_the_limit_even_while_appenders_keep_arriving() {
        let mut gather = Gather::default();
        gather.finished(usize::MAX);
        let mut gathering = gather.start();
        let mut requests = 1;
        // One more appender on every look: only the limit (or a scheduling hiccup longer
        // than the idle wait) ends the loop.
        while gathering.wait_for_more(requests) && requests < 10_000_000 {
            requests += 1;
            std::thread::yield_now();
        }
        assert!(
            requests < 10_000_000,
            "the wait ends after {GATHER_LIMIT:?}, long before ten million looks"
        );
    }
}
