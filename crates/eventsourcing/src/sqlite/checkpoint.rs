//! WAL checkpoints off the writer's path.
//!
//! SQLite normally checkpoints (copies the WAL back into the database file and syncs it)
//! inside the `COMMIT` that pushes the WAL past 1000 pages, on the committing thread: every
//! few thousand events, one commit — and every append waiting on it — would pay for two
//! syncs and a few megabytes of writes. Here the writer's connection reports the WAL's size
//! after each commit (a WAL hook, which also turns SQLite's own auto-checkpoint off), and a
//! checkpointer thread with its own connection runs a `PASSIVE` checkpoint each time the WAL
//! has grown by [`CHECKPOINT_PAGES`]: it never blocks the writer or the readers.
//!
//! Under a sustained write load a concurrent checkpoint may never catch up with the writer,
//! and the WAL can restart from its beginning only after a complete checkpoint. So when the
//! WAL passes [`WRITER_CHECKPOINT_PAGES`], the writer checkpoints itself between two
//! batches (no write in flight, so it completes up to what readers still use; while the
//! checkpointer holds the checkpoint lock the attempt returns at once and is repeated after
//! the next commit), which bounds the WAL's size. Most of its frames were already copied by
//! the checkpointer, so this stall is short (20–80 ms measured here, once per 64 MB of
//! WAL, against a sync per 4 MB inside commits with SQLite's default).

use std::cell::Cell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};

use crate::error::{BackendError, StoreError};

/// WAL size (pages) from which the checkpointer thread is asked to checkpoint (SQLite's
/// default auto-checkpoint size).
pub(super) const CHECKPOINT_PAGES: c_int = 1000;

/// WAL size (pages) from which the writer checkpoints itself between batches.
pub(super) const WRITER_CHECKPOINT_PAGES: c_int = 16 * CHECKPOINT_PAGES;

thread_local! {
    /// The WAL size the writer connection reported at its last commit (set by [`wal_hook`]
    /// on the writer thread, which is the thread that commits).
    static WAL_PAGES: Cell<c_int> = const { Cell::new(0) };
}

/// The writer connection's WAL hook: remembers the WAL's size. (Installing a hook also
/// turns off SQLite's checkpoint-on-commit.)
fn wal_hook(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// Installs the WAL hook on the writer's connection.
pub(super) fn watch_wal(conn: &Connection) {
    conn.wal_hook(Some(wal_hook));
}

/// The WAL size reported by this thread's last commit, forgetting it.
pub(super) fn take_wal_pages() -> c_int {
    WAL_PAGES.replace(0)
}

/// The handle the writer keeps on the checkpointer thread; dropping it stops the thread
/// and waits for it.
#[derive(Debug)]
pub(super) struct Checkpointer {
    kick: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens the checkpointer's connection and starts its thread.
    pub(super) fn start(path: &Path, busy_timeout: Duration) -> Result<Checkpointer, StoreError> {
        let open_error = |error: rusqlite::Error| {
            StoreError::Backend(BackendError::new("sqlite", "open", error))
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        conn.busy_timeout(busy_timeout).map_err(open_error)?;
        let (kick, kicks) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("fb-sqlite-ckpt".to_owned())
            .spawn(move || run(&conn, &kicks))
            .map_err(|error| StoreError::Backend(BackendError::new("sqlite", "open", error)))?;
        Ok(Checkpointer {
            kick: Some(kick),
            thread: Some(thread),
        })
    }

    /// Asks for a checkpoint (ignored while one is already asked for or running).
    pub(super) fn kick(&self) {
        if let Some(kick) = &self.kick {
            match kick.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.kick = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, kicks: &Receiver<()>) {
    while kicks.recv().is_ok() {
        // A busy or failed checkpoint is harmless: the WAL keeps everything, the next kick
        // (or the writer's own checkpoint) tries again.
        let _ = checkpoint(conn);
    }
}

/// Runs a `PASSIVE` checkpoint on `conn` (never waits for readers or writers).
pub(super) fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
