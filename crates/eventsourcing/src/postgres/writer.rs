//! The group-commit writer: one task per store takes every append waiting in the queue
//! (up to a batch limit) and sends them to `append_batch` in one statement, outside any
//! explicit transaction, so that the call is one round trip and one commit. Under steady
//! concurrency it yields briefly while the appenders of its last batch come back
//! ([`Gather`]: at most 200 µs, at most 50 µs after the last arrival), so batches stay
//! full instead of alternating between one append and the rest.
//!
//! A batch never holds the same event id in two requests (the writer cuts it before a
//! request that reuses an id of an earlier one and sends the rest next): each request is
//! then judged against what was committed before the batch, exactly as if the requests had
//! been sent one by one.
//!
//! A unique violation (SQLSTATE 23505) means another process committed one of the batch's
//! event ids after this batch looked them up (two appends of the same ids to different
//! streams, racing). The statement rolled back as a whole; the writer sends the same batch
//! again, and this time the lookup sees the committed ids and the request is judged by the
//! idempotency rule (deduplicated or a conflict) while the others commit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flowbed_pool::Pool;
use flowbed_pool::postgres::PgManager;
use tokio::sync::{mpsc, watch};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::listener::raise;
use super::schema::Sql;
use super::{DriverError, backend};
use crate::error::{AppendError, BackendError};
use crate::event::{EventData, EventId, Position, now_micros};
use crate::expected::ExpectedVersion;
use crate::group_commit::{AppendRequest, Gather, drain_ready};
use crate::store::AppendResult;

/// How often a batch is sent again after a unique violation before its requests fail.
const UNIQUE_VIOLATION_RETRIES: u32 = 3;

/// Counters behind [`PostgresStore::stats`](super::PostgresStore::stats).
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) appends: AtomicU64,
    pub(super) batches: AtomicU64,
    pub(super) events: AtomicU64,
    pub(super) unique_violation_retries: AtomicU64,
}

/// One append as `append_batch` sees it.
#[derive(Clone, Copy)]
pub(super) struct Request<'a> {
    pub(super) stream: &'a str,
    pub(super) expected: ExpectedVersion,
    pub(super) events: &'a [EventData],
}

/// The parallel arrays of one `append_batch` call.
pub(super) struct BatchParams<'a> {
    streams: Vec<&'a str>,
    request_stream: Vec<i32>,
    expected: Vec<i64>,
    counts: Vec<i32>,
    recorded_at: Vec<i64>,
    request: Vec<i32>,
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schema_versions: Vec<i64>,
    payloads: Vec<&'a [u8]>,
    metadata: Vec<Vec<u8>>,
}

/// A count or index as an `integer` parameter. Batches are bounded far below `i32::MAX`
/// events, and one request of more events could not be sent anyway (a message is at most
/// 1 GiB).
fn int(value: usize) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

impl<'a> BatchParams<'a> {
    pub(super) fn new(requests: impl ExactSizeIterator<Item = Request<'a>> + Clone) -> Self {
        let n = requests.len();
        let total: usize = requests.clone().map(|request| request.events.len()).sum();
        let recorded_at = now_micros();
        let mut params = BatchParams {
            streams: Vec::new(),
            request_stream: Vec::with_capacity(n),
            expected: Vec::with_capacity(n),
            counts: Vec::with_capacity(n),
            recorded_at: vec![recorded_at; n],
            request: Vec::with_capacity(total),
            ids: Vec::with_capacity(total),
            types: Vec::with_capacity(total),
            schema_versions: Vec::with_capacity(total),
            payloads: Vec::with_capacity(total),
            metadata: Vec::with_capacity(total),
        };
        let mut stream_index: HashMap<&'a str, i32> = HashMap::new();
        for (index, request) in requests.enumerate() {
            let streams = &mut params.streams;
            let stream = *stream_index.entry(request.stream).or_insert_with(|| {
                streams.push(request.stream);
                int(streams.len())
            });
            params.request_stream.push(stream);
            params.expected.push(request.expected.to_code());
            params.counts.push(int(request.events.len()));
            for event in request.events {
                params.request.push(int(index + 1));
                params.ids.push(event.id.as_uuid());
                params.types.push(&event.event_type);
                params.schema_versions.push(i64::from(event.schema_version));
                params.payloads.push(&event.payload);
                params.metadata.push(event.metadata.to_bytes());
            }
        }
        params
    }

    /// The parameters in `append_batch`'s order.
    pub(super) fn as_params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.streams,
            &self.request_stream,
            &self.expected,
            &self.counts,
            &self.recorded_at,
            &self.request,
            &self.ids,
            &self.types,
            &self.schema_versions,
            &self.payloads,
            &self.metadata,
        ]
    }

    /// The parameters with their types, for a query that is not prepared first
    /// (`query_typed`: one round trip).
    pub(super) fn as_typed_params(&self) -> [(&(dyn ToSql + Sync), Type); 11] {
        let params = self.as_params();
        let types = [
            Type::TEXT_ARRAY,
            Type::INT4_ARRAY,
            Type::INT8_ARRAY,
            Type::INT4_ARRAY,
            Type::INT8_ARRAY,
            Type::INT4_ARRAY,
            Type::UUID_ARRAY,
            Type::TEXT_ARRAY,
            Type::INT8_ARRAY,
            Type::BYTEA_ARRAY,
            Type::BYTEA_ARRAY,
        ];
        let mut index = 0;
        types.map(|ty| {
            let param = params[index];
            index += 1;
            (param, ty)
        })
    }
}

/// Turns `append_batch`'s row for a request into its answer.
pub(super) fn outcome(row: &Row, request: &Request<'_>) -> Result<AppendResult, AppendError> {
    let unexpected = |what: String| {
        AppendError::Backend(BackendError::new(
            "postgres",
            "append",
            format!("append_batch returned {what}"),
        ))
    };
    let status: i32 = row
        .try_get(0)
        .map_err(|error| AppendError::Backend(backend("append", error)))?;
    let optional = |index: usize| -> Result<Option<i64>, AppendError> {
        row.try_get(index)
            .map_err(|error| AppendError::Backend(backend("append", error)))
    };
    let (version, position, actual) = (optional(1)?, optional(2)?, optional(4)?);
    let event_id: Option<Uuid> = row
        .try_get(3)
        .map_err(|error| AppendError::Backend(backend("append", error)))?;
    let unsigned = |value: Option<i64>| value.and_then(|value| u64::try_from(value).ok());
    match (status, unsigned(version), unsigned(actual), event_id) {
        (0 | 1, Some(version), _, _) => Ok(AppendResult {
            version,
            position: unsigned(position).map(Position),
            deduplicated: status == 1,
        }),
        (2, _, Some(actual), _) => Err(AppendError::WrongExpectedVersion {
            stream: request.stream.to_owned(),
            expected: request.expected,
            actual,
        }),
        (3, _, _, Some(event_id)) => Err(AppendError::IdempotencyConflict {
            stream: request.stream.to_owned(),
            event_id: EventId::from(event_id),
        }),
        _ => Err(unexpected(format!(
            "an unexpected row (status {status}, version {version:?}, actual {actual:?})"
        ))),
    }
}

/// Whether `error` is a unique violation (another process committed one of our ids).
pub(super) fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// The writer task's state.
pub(super) struct Writer {
    pub(super) pool: Pool<PgManager>,
    pub(super) sql: Arc<Sql>,
    pub(super) head: Arc<watch::Sender<Position>>,
    pub(super) counters: Arc<Counters>,
    pub(super) max_requests: usize,
    pub(super) max_events: usize,
}

/// Why one `append_batch` call failed.
enum CallError {
    Pool(DriverError),
    Driver(tokio_postgres::Error),
}

impl Writer {
    /// Runs until every appender is gone (the store was dropped), then finishes.
    pub(super) async fn run(self, mut requests: mpsc::Receiver<AppendRequest>) {
        let mut batch = Vec::new();
        let mut gather = Gather::default();
        while let Some(first) = requests.recv().await {
            batch.push(first);
            let mut full = drain_ready(
                &mut requests,
                &mut batch,
                self.max_requests,
                self.max_events,
            );
            // The appenders just answered are about to append again: let them queue
            // (yields, no timer), or the writer would take only the fastest and every
            // other batch would be half full.
            let mut gathering = gather.start();
            while !full && gathering.wait_for_more(batch.len()) {
                tokio::task::yield_now().await;
                full = drain_ready(
                    &mut requests,
                    &mut batch,
                    self.max_requests,
                    self.max_events,
                );
            }
            gather.finished(batch.len());
            let mut rest = std::mem::take(&mut batch);
            while !rest.is_empty() {
                let tail = rest.split_off(first_reused_id(&rest));
                self.commit(rest).await;
                rest = tail;
            }
        }
    }

    /// Sends one batch (no id in two of its requests) and answers every request.
    async fn commit(&self, batch: Vec<AppendRequest>) {
        let requests = || {
            batch.iter().map(|request| Request {
                stream: &request.stream,
                expected: request.expected,
                events: &request.events,
            })
        };
        let params = BatchParams::new(requests());
        self.counters
            .appends
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut retries = 0;
        let rows = loop {
            match self.call(&params).await {
                Ok(rows) => break Ok(rows),
                Err(CallError::Driver(error))
                    if is_unique_violation(&error) && retries < UNIQUE_VIOLATION_RETRIES =>
                {
                    retries += 1;
                    self.counters
                        .unique_violation_retries
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(CallError::Driver(error)) => break Err(DriverError::new(error)),
                Err(CallError::Pool(error)) => break Err(error),
            }
        };
        let rows = match rows {
            Ok(rows) if rows.len() == batch.len() => rows,
            Ok(rows) => {
                let error = DriverError::from_message(format!(
                    "append_batch returned {} rows for {} requests",
                    rows.len(),
                    batch.len()
                ));
                return fail_all(batch, &error);
            }
            Err(error) => return fail_all(batch, &error),
        };
        let outcomes: Vec<_> = requests()
            .zip(&rows)
            .map(|(request, row)| outcome(row, &request))
            .collect();
        drop(params);
        let mut newest = None;
        let mut written = 0;
        for (request, outcome) in batch.into_iter().zip(outcomes) {
            if let Ok(result) = &outcome {
                if !result.deduplicated && result.position.is_some() {
                    newest = newest.max(result.position);
                    written += request.events.len() as u64;
                }
            }
            request.answer(outcome);
        }
        self.counters.events.fetch_add(written, Ordering::Relaxed);
        if let Some(position) = newest {
            raise(&self.head, position);
        }
    }

    /// One `append_batch` statement on a pooled connection.
    async fn call(&self, params: &BatchParams<'_>) -> Result<Vec<Row>, CallError> {
        let connection = self
            .pool
            .get()
            .await
            .map_err(|error| CallError::Pool(DriverError::new(error)))?;
        let statement = connection
            .prepare_cached(&self.sql.append)
            .await
            .map_err(CallError::Driver)?;
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        connection
            .query(&statement, &params.as_params())
            .await
            .map_err(CallError::Driver)
    }
}

/// Answers every request of a failed batch with the same backend error.
fn fail_all(batch: Vec<AppendRequest>, error: &DriverError) {
    for request in batch {
        request.answer(Err(AppendError::Backend(BackendError::new(
            "postgres",
            "append",
            error.clone(),
        ))));
    }
}

/// The index of the first request that reuses an event id of an earlier request of the
/// batch (the batch's length if none does). Never 0.
fn first_reused_id(batch: &[AppendRequest]) -> usize {
    if batch.len() < 2 {
        return batch.len();
    }
    let mut seen: HashSet<EventId> = HashSet::new();
    for (index, request) in batch.iter().enumerate() {
        if index > 0 && request.events.iter().any(|event| seen.contains(&event.id)) {
            return index;
        }
        seen.extend(request.events.iter().map(|event| event.id));
    }
    batch.len()
}
