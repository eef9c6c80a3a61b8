//! Crash test (issue 9): a process appending to a SQLite store is killed with SIGKILL at
//! arbitrary points; reopening the file must show only whole batches (each append is one
//! transaction), dense positions, every acknowledged batch, and re-appending a stored batch
//! with the same ids must be an idempotent no-op.
//!
//! The test binary is its own child: [`crash_child`] does nothing unless
//! `FLOWBED_SQLITE_CRASH_CHILD` names a database file; the parent test re-executes this
//! binary with that variable set (`--exact crash_child --nocapture`), reads the batch
//! numbers the child prints once each append is acknowledged, and kills it. Each round
//! continues on the same file, so the store also recovers from the previous kill.
#![cfg(feature = "sqlite")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use flowbed_eventsourcing::sqlite::{SqliteStore, Synchronous};
use flowbed_eventsourcing::{EventData, EventId, EventStore, ExpectedVersion, Position};
use uuid::Uuid;

/// Names the database file the child appends to (set only in the child).
const CHILD_ENV: &str = "FLOWBED_SQLITE_CRASH_CHILD";
/// `full` or `normal`: the child's durability mode.
const SYNC_ENV: &str = "FLOWBED_SQLITE_CRASH_SYNC";
/// Events per batch (one append, one transaction).
const K: u64 = 40;
/// Streams the batches rotate over.
const STREAMS: u64 = 3;

/// The id of event `index` of batch `batch`: deterministic, so a batch can be re-sent.
fn event_id(batch: u64, index: u64) -> EventId {
    EventId::from(Uuid::from_u128(((batch as u128 + 1) << 32) | index as u128))
}

/// Which batch and which event of it an id belongs to.
fn batch_of(id: EventId) -> (u64, u64) {
    let raw = id.as_uuid().as_u128();
    (((raw >> 32) - 1) as u64, (raw & 0xffff_ffff) as u64)
}

fn stream_of(batch: u64) -> String {
    format!("crash-{}", batch % STREAMS)
}

/// Batch `batch`, exactly as the child appends it.
fn batch_events(batch: u64) -> Vec<EventData> {
    (0..K)
        .map(|index| {
            let payload = format!(
                r#"{{"batch":{batch},"index":{index},"pad":"{}"}}"#,
                "x".repeat(120)
            );
            EventData::new("Tick", payload.into_bytes()).with_id(event_id(batch, index))
        })
        .collect()
}

/// The child: appends batch after batch (continuing after what the file holds) and prints
/// `ack N` after batch `N` is acknowledged. Does nothing in a normal test run.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let synchronous = match std::env::var(SYNC_ENV).as_deref() {
        Ok("normal") => Synchronous::Normal,
        _ => Synchronous::Full,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::builder(&path)
            .synchronous(synchronous)
            .open()
            .expect("the child opens the store");
        let head = store.head().await.unwrap();
        assert_eq!(head.0 % K, 0, "the file holds a partial batch");
        // Bounded only as a safety net: the parent kills the child long before, and a
        // child whose parent died stops at its next print (a closed pipe).
        for batch in head.0 / K..1_000_000 {
            store
                .append(&stream_of(batch), ExpectedVersion::Any, batch_events(batch))
                .await
                .expect("the child's append");
            println!("ack {batch}");
        }
    });
}

/// Kills the child if the parent fails before doing so.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a child on `path` until it has acknowledged `acks` more batches, then kills it
/// with SIGKILL. Returns the acknowledged batch numbers.
fn run_child_and_kill(path: &Path, synchronous: &str, acks: usize) -> Vec<u64> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .env(SYNC_ENV, synchronous)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("the child's stdout");
    let mut acknowledged = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read the child's stdout");
        // libtest prints "test crash_child ... " without a newline before the child's
        // first line.
        if let Some(at) = line.find("ack ") {
            let batch = line[at + 4..].trim();
            acknowledged.push(batch.parse().expect("a batch number"));
            if acknowledged.len() == acks {
                break;
            }
        }
    }
    assert_eq!(
        acknowledged.len(),
        acks,
        "the child stopped after {} acknowledgements",
        acknowledged.len()
    );
    child.0.kill().expect("SIGKILL the child");
    let status = child.0.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed, not finished");
    acknowledged
}

/// Reopens the file and checks the invariants; returns how many batches it holds.
async fn verify(path: &Path, acknowledged: &[u64]) -> u64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    drop(conn);

    let store = SqliteStore::open(path).expect("reopen after the crash");
    let log = store.read_all(Position::START, usize::MAX).await.unwrap();
    let mut batches: BTreeMap<u64, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for (offset, event) in log.iter().enumerate() {
        assert_eq!(
            event.position,
            Position(offset as u64 + 1),
            "positions are dense"
        );
        let (batch, index) = batch_of(event.id);
        assert_eq!(event.stream_id, stream_of(batch));
        batches
            .entry(batch)
            .or_default()
            .push((index, event.position.0, event.version));
    }
    // Only whole batches: K events, in order, at consecutive positions and versions.
    for (batch, events) in &batches {
        assert_eq!(
            events.len() as u64,
            K,
            "batch {batch} is partial: {events:?}"
        );
        let (_, first_position, first_version) = events[0];
        for (offset, &(index, position, version)) in events.iter().enumerate() {
            let offset = offset as u64;
            assert_eq!(index, offset, "batch {batch} out of order");
            assert_eq!(position, first_position + offset);
            assert_eq!(version, first_version + offset);
        }
    }
    // One appender, one batch at a time: the batches present are 0..n.
    let present = batches.len() as u64;
    assert!(
        batches.keys().copied().eq(0..present),
        "{:?}",
        batches.keys()
    );
    for batch in acknowledged {
        assert!(*batch < present, "acknowledged batch {batch} is missing");
    }
    // Streams hold their batches' events with dense versions.
    for stream in 0..STREAMS {
        let expected = (0..present)
            .filter(|batch| batch % STREAMS == stream)
            .count() as u64
            * K;
        assert_eq!(
            store
                .stream_version(&format!("crash-{stream}"))
                .await
                .unwrap(),
            expected
        );
    }
    // Re-appending a stored batch with the same ids writes nothing.
    if present > 0 {
        let last = present - 1;
        let head = store.head().await.unwrap();
        let again = store
            .append(
                &stream_of(last),
                ExpectedVersion::NoStream,
                batch_events(last),
            )
            .await
            .expect("an idempotent re-append");
        assert!(again.deduplicated);
        assert_eq!(again.position, Some(head));
        let first = store
            .append(&stream_of(0), ExpectedVersion::Any, batch_events(0))
            .await
            .unwrap();
        assert!(first.deduplicated);
        assert_eq!(first.position, Some(Position(K)));
        assert_eq!(store.head().await.unwrap(), head);
        assert_eq!(store.stats().events, 0, "a re-append wrote events");
    }
    present
}

#[test]
fn killed_writer_leaves_only_whole_batches() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("es-sqlite-crash-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("events.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acknowledged = Vec::new();
    let mut present = 0;
    let rounds = [
        ("full", 1),
        ("normal", 5),
        ("full", 20),
        ("normal", 60),
        ("full", 3),
    ];
    for (round, (synchronous, acks)) in rounds.into_iter().enumerate() {
        let acked = run_child_and_kill(&path, synchronous, acks);
        // Each child continues where the file ends.
        assert_eq!(
            acked[0], present,
            "round {round}: the child resumed at the wrong batch"
        );
        acknowledged.extend(acked);
        present = runtime.block_on(verify(&path, &acknowledged));
        assert!(present >= acknowledged.len() as u64);
    }
}
