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
//! little for appenders it expects (as many as its last batch had): at most
//! [`GATHER_LIMIT`], and no longer than [`GATHER_IDLE`] after the last one arrived. A lone
//! appender never waits once the writer has seen it alone (the first batch after a
//! concurrent phase may wait one idle window for appenders that do not come).

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

/// Adds the requests waiting in the queue to `batch`, without waiting, until it holds
/// `max_requests` requests or `max_events` events; returns whether it is full.
pub(crate) fn drain_ready(
    receiver: &mut mpsc::Receiver<AppendRequest>,
    batch: &mut Vec<AppendRequest>,
    max_requests: usize,
    max_events: usize,
) -> bool {
    let mut events: usize = batch.iter().map(|request| request.events.len()).sum();
    while batch.len() < max_requests && events < max_events {
        match receiver.try_recv() {
            Ok(request) => {
                events += request.events.len();
                batch.push(request);
            }
            Err(_) => return false,
        }
    }
    true
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
        self.start_at(Instant::now())
    }

    fn start_at(&self, now: Instant) -> Gathering {
        Gathering {
            expected: self.last_requests,
            started: now,
            last_arrival: now,
            seen: 0,
        }
    }

    /// Remembers how many appends the batch the writer is about to commit holds (call it
    /// only for batches with appends: a batch of other writes says nothing about how many
    /// appenders are about).
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
    /// batch of `requests` appends (that is not full): it has fewer than its last batch
    /// had, it has waited less than [`GATHER_LIMIT`], and the last appender came less than
    /// [`GATHER_IDLE`] ago. A batch of no appends (other writes only) never waits.
    pub(crate) fn wait_for_more(&mut self, requests: usize) -> bool {
        self.wait_for_more_at(requests, Instant::now())
    }

    fn wait_for_more_at(&mut self, requests: usize, now: Instant) -> bool {
        if requests == 0 || requests >= self.expected {
            return false;
        }
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

    fn micros(micros: u64) -> Duration {
        Duration::from_micros(micros)
    }

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
        let t0 = Instant::now();
        let mut gathering = gather.start_at(t0);
        assert!(gathering.wait_for_more_at(1, t0));
        assert!(gathering.wait_for_more_at(3, t0 + micros(10)));
        assert!(!gathering.wait_for_more_at(4, t0 + micros(20)), "all came");
        assert!(
            !gathering.wait_for_more_at(5, t0 + micros(20)),
            "more than expected"
        );
        assert!(
            !gathering.wait_for_more_at(0, t0 + micros(20)),
            "other writes only never wait"
        );
    }

    #[test]
    fn stops_waiting_when_appenders_stop_arriving() {
        let mut gather = Gather::default();
        gather.finished(16);
        let t0 = Instant::now();
        let mut gathering = gather.start_at(t0);
        assert!(gathering.wait_for_more_at(2, t0));
        assert!(gathering.wait_for_more_at(2, t0 + GATHER_IDLE - micros(1)));
        assert!(
            !gathering.wait_for_more_at(2, t0 + GATHER_IDLE),
            "nobody arrived for the idle window"
        );
    }

    #[test]
    fn an_arrival_restarts_the_idle_window() {
        let mut gather = Gather::default();
        gather.finished(16);
        let t0 = Instant::now();
        let mut gathering = gather.start_at(t0);
        assert!(gathering.wait_for_more_at(1, t0));
        assert!(gathering.wait_for_more_at(2, t0 + micros(40)));
        assert!(
            gathering.wait_for_more_at(2, t0 + micros(80)),
            "40 µs after the last"
        );
        assert!(!gathering.wait_for_more_at(2, t0 + micros(40) + GATHER_IDLE));
    }

    #[test]
    fn stops_waiting_at_the_limit_even_while_appenders_keep_arriving() {
        let mut gather = Gather::default();
        gather.finished(usize::MAX);
        let t0 = Instant::now();
        let mut gathering = gather.start_at(t0);
        // One more appender every 10 µs: the idle window never closes, the limit does.
        let mut requests = 1;
        let mut at = t0;
        while gathering.wait_for_more_at(requests, at) {
            requests += 1;
            at += micros(10);
        }
        assert_eq!(at - t0, GATHER_LIMIT);
    }
}
