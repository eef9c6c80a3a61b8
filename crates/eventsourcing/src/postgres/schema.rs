//! The store's tables, its two functions, the migrations that create them, and the SQL
//! texts the store sends (each built once per store, with the schema name spliced in).
//!
//! Migrations run in one transaction under `pg_advisory_xact_lock`, keyed by the schema
//! name: concurrent `connect`s of many processes wait for each other instead of racing on
//! `CREATE TABLE`, and each migration is recorded in `<schema>.migrations`.

use std::fmt;

use tokio_postgres::Client;

/// The longest schema name accepted: the notification channel is `flowbed_es_<schema>`
/// and PostgreSQL identifiers (channel names too) are at most 63 bytes.
pub(super) const MAX_SCHEMA_LEN: usize = 48;

/// Why a schema could not be used, returned by
/// [`PostgresStore::connect`](super::PostgresStore::connect) and
/// [`PostgresStoreBuilder::build`](super::PostgresStoreBuilder::build) as the source of a
/// [`BackendError`](crate::BackendError) (operation `"connect"`).
///
/// # Examples
///
/// ```
/// use std::error::Error;
/// use flowbed_eventsourcing::StoreError;
/// use flowbed_eventsourcing::postgres::{PostgresStore, SchemaError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // The name is checked before anything connects.
/// let Err(StoreError::Backend(error)) = PostgresStore::connect("postgres://127.0.0.1:1/db", "bad-name").await else {
///     panic!("expected a typed error");
/// };
/// assert!(matches!(
///     error.source().and_then(|source| source.downcast_ref::<SchemaError>()),
///     Some(SchemaError::InvalidName { .. })
/// ));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The schema name is not a plain identifier: 1 to 48 ASCII letters, digits and
    /// underscores, not starting with a digit nor with `pg_` (reserved by PostgreSQL).
    #[error("invalid schema name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The schema was migrated by a newer release of this crate (it records a migration
    /// this release does not know); this release refuses to write to it.
    #[error("schema {schema:?} is at migration {found}, newer than this release's {known}")]
    NewerVersion {
        /// The schema.
        schema: String,
        /// The newest migration recorded in it.
        found: i32,
        /// The newest migration this release knows.
        known: i32,
    },
}

/// Checks that `name` can be spliced into SQL as an identifier.
pub(super) fn validate_schema_name(name: &str) -> Result<(), SchemaError> {
    let invalid = |reason| {
        Err(SchemaError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    let Some(first) = name.chars().next() else {
        return invalid("it is empty");
    };
    if name.len() > MAX_SCHEMA_LEN {
        return invalid("it is longer than 48 bytes");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return invalid("only ASCII letters, digits and '_' are allowed");
    }
    if first.is_ascii_digit() {
        return invalid("it starts with a digit");
    }
    if name.to_ascii_lowercase().starts_with("pg_") {
        return invalid("the prefix pg_ is reserved for system schemas");
    }
    Ok(())
}

/// The notification channel commits of `schema` are announced on.
pub(super) fn channel(schema: &str) -> String {
    format!("flowbed_es_{schema}")
}

/// One migration: its number, what it does, and its SQL (`{s}` is the quoted schema,
/// `{channel}` the notification channel).
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Never edit a released one: add the next.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events, streams, snapshots, checkpoints and the position counter",
        sql: TABLES,
    },
    Migration {
        version: 2,
        name: "append_batch and delete_stream functions",
        sql: FUNCTIONS,
    },
    Migration {
        version: 3,
        name: "custom stream metadata as JSON text (jsonb refuses \\u0000)",
        sql: CUSTOM_AS_TEXT,
    },
];

/// Custom stream metadata must read back exactly as written, and `jsonb` refuses the
/// string escape `\u0000`: keep the JSON text instead.
const CUSTOM_AS_TEXT: &str = r#"
ALTER TABLE {s}.streams ALTER COLUMN custom TYPE text USING custom::text;
"#;

const TABLES: &str = r#"
CREATE TABLE {s}.events (
    position bigint PRIMARY KEY,
    stream_id text NOT NULL,
    version bigint NOT NULL,
    event_id uuid NOT NULL UNIQUE,
    event_type text NOT NULL,
    schema_version bigint NOT NULL,
    payload bytea NOT NULL,
    metadata bytea NOT NULL,
    recorded_at bigint NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TABLE {s}.streams (
    stream_id text PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0,
    truncate_before bigint NOT NULL DEFAULT 0,
    deleted boolean NOT NULL DEFAULT false,
    custom jsonb
) WITH (fillfactor = 70);
CREATE TABLE {s}.snapshots (
    stream_id text PRIMARY KEY,
    version bigint NOT NULL,
    schema_version bigint NOT NULL,
    state bytea NOT NULL
);
CREATE TABLE {s}.checkpoints (
    subscriber text PRIMARY KEY,
    position bigint NOT NULL
);
CREATE TABLE {s}.position_counter (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last bigint NOT NULL
) WITH (fillfactor = 10);
INSERT INTO {s}.position_counter (only_row, last) VALUES (true, 0);
"#;

/// `append_batch`: a whole group commit in one call (one round trip, one transaction when
/// sent outside a transaction). Per request: `p_request_stream` (1-based index into the
/// distinct `p_streams`), `p_expected` (`ExpectedVersion::to_code`), `p_counts` (its
/// events), `p_recorded_at` (Unix micros). Per event, requests' events one after the
/// other: `p_request` (1-based request index) and the event's columns. Returns one row per
/// request: status 0 appended (version, position; position null for an empty request),
/// 1 deduplicated (the original version and position), 2 wrong expected version
/// (`actual`), 3 idempotency conflict (`event_id`: the first id that does not match).
///
/// Steps: lock every stream row in byte order of the id (creating missing rows); look up
/// which ids are stored; decide each request in order (the idempotency rule of
/// `expected::classify_replay`, then the expected version; a request sees the versions of
/// the requests before it); update the streams; and only then allocate positions from
/// the counter row (whose lock is held until commit), insert the events and notify.
const FUNCTIONS: &str = r#"
CREATE FUNCTION {s}.append_batch(
    p_streams text[],
    p_request_stream integer[],
    p_expected bigint[],
    p_counts integer[],
    p_recorded_at bigint[],
    p_request integer[],
    p_ids uuid[],
    p_types text[],
    p_schema_versions bigint[],
    p_payloads bytea[],
    p_metadata bytea[]
) RETURNS TABLE (status integer, version bigint, "position" bigint, event_id uuid, actual bigint)
LANGUAGE plpgsql
-- Plans that do not depend on the arrays' contents: never re-plan per call.
SET plan_cache_mode = force_generic_plan
AS $append$
#variable_conflict use_column
DECLARE
    n_requests integer := coalesce(array_length(p_request_stream, 1), 0);
    versions bigint[];
    versions_before bigint[];
    first_event integer[] := array_fill(0, ARRAY[n_requests]);
    bases bigint[] := array_fill(0::bigint, ARRAY[n_requests]);
    prefix bigint[] := array_fill(0::bigint, ARRAY[n_requests]);
    accepted boolean[] := array_fill(false, ARRAY[n_requests]);
    out_status integer[] := array_fill(0, ARRAY[n_requests]);
    out_version bigint[] := array_fill(NULL::bigint, ARRAY[n_requests]);
    out_position bigint[] := array_fill(NULL::bigint, ARRAY[n_requests]);
    out_event uuid[] := array_fill(NULL::uuid, ARRAY[n_requests]);
    out_actual bigint[] := array_fill(NULL::bigint, ARRAY[n_requests]);
    stored_ids uuid[];
    stored_streams text[];
    stored_versions bigint[];
    stored_positions bigint[];
    total bigint := 0;
    next_event integer := 1;
    last_position bigint;
    i integer;
    j integer;
    k integer;
    last_k integer;
    n integer;
    si integer;
    cur bigint;
    first_stored bigint;
    verdict integer;
    conflict_at integer;
    notified text;
BEGIN
    IF n_requests = 0 THEN
        RETURN;
    END IF;

    -- 1. Lock the streams, creating missing rows, in one global order (bytes of the id):
    --    batches that share streams wait for each other instead of deadlocking.
    --    `DO UPDATE ... WHERE false` locks an existing row without writing a new version
    --    of it. The versions are read by the next statement, whose snapshot is taken
    --    after the locks were granted (so it sees what the previous holder committed).
    INSERT INTO {s}.streams AS st (stream_id)
        SELECT DISTINCT u.id COLLATE "C" FROM unnest(p_streams) AS u(id) ORDER BY 1
        ON CONFLICT (stream_id) DO UPDATE SET version = st.version WHERE false;
    SELECT array_agg(st.version ORDER BY u.ord) INTO versions
        FROM unnest(p_streams) WITH ORDINALITY AS u(id, ord)
        JOIN {s}.streams st ON st.stream_id = u.id;
    versions_before := versions;

    -- 2. Which of the ids are stored already (idempotency). A statement of its own: its
    --    snapshot is taken after the stream locks were granted, so it sees what the
    --    previous holder of a lock committed.
    SELECT array_agg(e.event_id), array_agg(e.stream_id), array_agg(e.version), array_agg(e.position)
        INTO stored_ids, stored_streams, stored_versions, stored_positions
        FROM {s}.events e WHERE e.event_id = ANY (p_ids);

    -- 3. Decide each request, in order.
    FOR i IN 1 .. n_requests LOOP
        n := p_counts[i];
        first_event[i] := next_event;
        next_event := next_event + n;
        si := p_request_stream[i];
        cur := versions[si];
        verdict := 0;
        IF stored_ids IS NOT NULL AND n > 0 THEN
            FOR j IN 0 .. n - 1 LOOP
                IF p_ids[first_event[i] + j] = ANY (stored_ids) THEN
                    verdict := 1;
                    EXIT;
                END IF;
            END LOOP;
            IF verdict = 1 THEN
                -- Some ids are stored: all of them must be, as this exact batch.
                FOR j IN 0 .. n - 1 LOOP
                    k := array_position(stored_ids, p_ids[first_event[i] + j]);
                    IF j = 0 AND k IS NOT NULL THEN
                        first_stored := stored_versions[k];
                    END IF;
                    IF k IS NULL OR stored_streams[k] <> p_streams[si]
                            OR stored_versions[k] <> first_stored + j THEN
                        verdict := 3;
                        conflict_at := j;
                        EXIT;
                    END IF;
                    last_k := k;
                END LOOP;
            END IF;
        END IF;
        IF verdict = 3 THEN
            out_status[i] := 3;
            out_event[i] := p_ids[first_event[i] + conflict_at];
        ELSIF verdict = 1 THEN
            out_status[i] := 1;
            out_version[i] := first_stored + n - 1;
            out_position[i] := stored_positions[last_k];
        ELSIF NOT (CASE p_expected[i]
                       WHEN -1 THEN true
                       WHEN -2 THEN cur = 0
                       WHEN -3 THEN cur > 0
                       ELSE cur = p_expected[i] END) THEN
            out_status[i] := 2;
            out_actual[i] := cur;
        ELSIF n = 0 THEN
            out_version[i] := cur;
        ELSE
            accepted[i] := true;
            bases[i] := cur;
            prefix[i] := total;
            total := total + n;
            versions[si] := cur + n;
            out_version[i] := cur + n;
        END IF;
    END LOOP;

    IF total > 0 THEN
        -- 4. One statement: the streams' new versions, then (the last step before commit)
        --    the positions from the counter row, whose lock is held until the transaction
        --    ends, so that the next batch numbers its events only after this one is
        --    visible (or rolled back); the events; the notification (sent at commit).
        WITH moved AS (
            UPDATE {s}.streams st SET version = u.v, deleted = false
                FROM unnest(p_streams, versions, versions_before) AS u(id, v, b)
                WHERE st.stream_id = u.id AND u.v <> u.b
        ), counter AS (
            UPDATE {s}.position_counter SET last = last + total RETURNING last
        ), inserted AS (
            INSERT INTO {s}.events
                (position, stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at)
            SELECT c.last - total + prefix[e.req] + (e.ord - first_event[e.req]) + 1,
                   p_streams[p_request_stream[e.req]],
                   bases[e.req] + (e.ord - first_event[e.req]) + 1,
                   e.id, e.typ, e.sv, e.payload, e.meta, p_recorded_at[e.req]
            FROM counter c,
                 unnest(p_request, p_ids, p_types, p_schema_versions, p_payloads, p_metadata)
                     WITH ORDINALITY AS e(req, id, typ, sv, payload, meta, ord)
            WHERE accepted[e.req]
        )
        SELECT c.last, pg_notify('{channel}', c.last::text)::text
            INTO last_position, notified
            FROM counter c;
    END IF;

    FOR i IN 1 .. n_requests LOOP
        status := out_status[i];
        version := out_version[i];
        "position" := CASE WHEN accepted[i]
                           THEN last_position - total + prefix[i] + p_counts[i]
                           ELSE out_position[i] END;
        event_id := out_event[i];
        actual := out_actual[i];
        RETURN NEXT;
    END LOOP;
END
$append$;

CREATE FUNCTION {s}.delete_stream(p_stream text, p_expected bigint)
RETURNS TABLE (deleted boolean, actual bigint)
LANGUAGE plpgsql AS $delete$
#variable_conflict use_column
DECLARE
    cur bigint;
BEGIN
    INSERT INTO {s}.streams AS st (stream_id) VALUES (p_stream)
        ON CONFLICT (stream_id) DO UPDATE SET version = st.version WHERE false;
    SELECT st.version INTO cur FROM {s}.streams st WHERE st.stream_id = p_stream;
    IF (CASE p_expected
            WHEN -1 THEN true
            WHEN -2 THEN cur = 0
            WHEN -3 THEN cur > 0
            ELSE cur = p_expected END) THEN
        UPDATE {s}.streams st SET deleted = true, truncate_before = cur + 1
            WHERE st.stream_id = p_stream;
        RETURN QUERY SELECT true, cur;
    ELSE
        RETURN QUERY SELECT false, cur;
    END IF;
END
$delete$;
"#;

/// The newest migration this release knows.
pub(super) fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

/// What [`migrate`] can fail with.
#[derive(Debug)]
pub(super) enum MigrateError {
    /// The server refused a statement.
    Driver(tokio_postgres::Error),
    /// The schema is newer than this release.
    Schema(SchemaError),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(error: tokio_postgres::Error) -> Self {
        MigrateError::Driver(error)
    }
}

/// Creates the schema and applies every migration it lacks, in one transaction, holding a
/// transaction-scoped advisory lock keyed by the schema name (so concurrent callers run
/// one after the other; the later ones find nothing to do).
pub(super) async fn migrate(client: &mut Client, schema: &str) -> Result<(), MigrateError> {
    let quoted = quote(schema);
    let transaction = client.transaction().await?;
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('flowbed_eventsourcing.' || $1::text, 0))",
            &[&schema],
        )
        .await?;
    transaction
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted};
             CREATE TABLE IF NOT EXISTS {quoted}.migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await?;
    let applied: Option<i32> = transaction
        .query_one(
            &format!("SELECT max(version) FROM {quoted}.migrations"),
            &[],
        )
        .await?
        .get(0);
    let applied = applied.unwrap_or(0);
    if applied > latest_version() {
        return Err(MigrateError::Schema(SchemaError::NewerVersion {
            schema: schema.to_owned(),
            found: applied,
            known: latest_version(),
        }));
    }
    let record = format!("INSERT INTO {quoted}.migrations (version, name) VALUES ($1, $2)");
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        let sql = migration
            .sql
            .replace("{s}", &quoted)
            .replace("{channel}", &channel(schema));
        transaction.batch_execute(&sql).await?;
        transaction
            .execute(&record, &[&migration.version, &migration.name])
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// `schema` as a quoted identifier (it was validated: no quote can occur in it).
pub(super) fn quote(schema: &str) -> String {
    format!("\"{schema}\"")
}

/// The columns of an event row, in the order [`rows::event`](super::rows::event) reads.
const EVENT_COLUMNS: &str = "position, stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at";

/// The first visible version of a stream: `truncate_before` (at least 1), stored bit for
/// bit from a `u64` (`rows::u64_bits`), so a negative value is one above `i64::MAX`, which
/// hides every event (NULL compares false).
const FIRST_VISIBLE: &str =
    "CASE WHEN truncate_before < 0 THEN NULL ELSE greatest(truncate_before, 1) END";

/// XOR with this flips the sign bit: `bigint`s holding `u64` bits then compare as unsigned.
const SIGN_BIT: &str = "(-9223372036854775808)::bigint";

/// Every statement the store sends, with its schema spliced in (built once per store; the
/// texts are the keys of the connections' statement caches).
pub(super) struct Sql {
    pub(super) append: String,
    pub(super) read_all: String,
    pub(super) read_forward: String,
    pub(super) read_backward: String,
    pub(super) stream_version: String,
    pub(super) head: String,
    pub(super) stream_metadata: String,
    pub(super) set_stream_metadata: String,
    pub(super) delete_stream: String,
    pub(super) save_snapshot: String,
    pub(super) load_snapshot: String,
    pub(super) save_checkpoint: String,
    pub(super) load_checkpoint: String,
}

impl fmt::Debug for Sql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sql").finish_non_exhaustive()
    }
}

impl Sql {
    pub(super) fn new(schema: &str) -> Sql {
        let s = quote(schema);
        Sql {
            append: format!(
                "SELECT status, version, \"position\", event_id, actual \
                 FROM {s}.append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            read_all: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events WHERE position > $1 ORDER BY position LIMIT $2"
            ),
            read_forward: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events e, \
                 (SELECT {FIRST_VISIBLE} AS first, deleted FROM {s}.streams WHERE stream_id = $1) m \
                 WHERE NOT m.deleted AND e.stream_id = $1 AND e.version >= m.first AND e.version >= $2 \
                 ORDER BY e.version LIMIT $3"
            ),
            read_backward: format!(
                "SELECT {EVENT_COLUMNS} FROM {s}.events e, \
                 (SELECT {FIRST_VISIBLE} AS first, deleted FROM {s}.streams WHERE stream_id = $1) m \
                 WHERE NOT m.deleted AND e.stream_id = $1 AND e.version >= m.first AND e.version <= $2 \
                 ORDER BY e.version DESC LIMIT $3"
            ),
            stream_version: format!("SELECT version FROM {s}.streams WHERE stream_id = $1"),
            head: format!("SELECT last FROM {s}.position_counter"),
            stream_metadata: format!(
                "SELECT truncate_before, deleted, custom FROM {s}.streams WHERE stream_id = $1"
            ),
            set_stream_metadata: format!(
                "INSERT INTO {s}.streams AS st (stream_id, truncate_before, deleted, custom) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (stream_id) DO UPDATE SET truncate_before = EXCLUDED.truncate_before, \
                 deleted = EXCLUDED.deleted, custom = EXCLUDED.custom"
            ),
            delete_stream: format!("SELECT deleted, actual FROM {s}.delete_stream($1, $2)"),
            save_snapshot: format!(
                "INSERT INTO {s}.snapshots AS sn (stream_id, version, schema_version, state) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, \
                 schema_version = EXCLUDED.schema_version, state = EXCLUDED.state \
                 WHERE (sn.version # {SIGN_BIT}) <= (EXCLUDED.version # {SIGN_BIT})"
            ),
            load_snapshot: format!(
                "SELECT stream_id, version, schema_version, state FROM {s}.snapshots WHERE stream_id = $1"
            ),
            save_checkpoint: format!(
                "INSERT INTO {s}.checkpoints (subscriber, position) VALUES ($1, $2) \
                 ON CONFLICT (subscriber) DO UPDATE SET position = EXCLUDED.position"
            ),
            load_checkpoint: format!("SELECT position FROM {s}.checkpoints WHERE subscriber = $1"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["a", "events", "Es_1", "_x", &"a".repeat(MAX_SCHEMA_LEN)] {
            assert_eq!(validate_schema_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "a-b",
            "a b",
            "x\"; DROP SCHEMA public; --",
            "pg_temp",
            "PG_x",
            "é",
            &"a".repeat(MAX_SCHEMA_LEN + 1),
        ] {
            assert!(
                matches!(
                    validate_schema_name(bad),
                    Err(SchemaError::InvalidName { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn channel_fits_an_identifier() {
        assert!(channel(&"a".repeat(MAX_SCHEMA_LEN)).len() <= 63);
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i32 + 1);
        }
    }
}
