//! The queue concurrent appends wait in while one writer commits them in batches (group
//! commit): the SQLite and PostgreSQL stores run one writer each, which takes every request
//! waiting (up to a batch limit), checks and writes them in one transaction, commits once
//! and answers each request. One commit then pays for many appends.
//!
//! The queue is bounded: when the writer falls behind, appenders wait for room
//! (backpressure) instead of queueing without limit.

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
