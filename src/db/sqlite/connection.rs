//! Every pooled SQLite connection: its settings, the busy handler that waits for the write
//! lock (and the hook that may interrupt that wait), and truncating the WAL.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// WAL with `synchronous=NORMAL`: a process crash loses nothing committed; a power loss
    /// may lose the last transactions, never leaves a partial one.
    #[default]
    Normal,
    /// `synchronous=FULL`: committed transactions also survive power loss.
    Full,
}

impl Synchronous {
    fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Settings applied to every pooled connection when it is opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionSettings {
    pub busy_timeout: Duration,
    pub synchronous: Synchronous,
}

/// Keep the WAL from growing without bound after a burst of writes.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

impl ConnectionSettings {
    pub(crate) fn apply(&self, conn: &Connection) -> rusqlite::Result<()> {
        set_busy_timeout(self.busy_timeout);
        conn.busy_handler(Some(wait_while_busy))?;
        conn.execute_batch(&format!(
            "PRAGMA foreign_keys = ON;
             PRAGMA synchronous = {};
             PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT};",
            self.synchronous.pragma_value()
        ))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }
}

thread_local! {
    /// The busy timeout of the store whose transaction runs on this thread, and when the
    /// current wait for a lock began.
    static BUSY_TIMEOUT: Cell<Duration> = const { Cell::new(Duration::from_secs(10)) };
    static WAIT_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Whether the last wait on this thread ended because [`INTERRUPT`] said so.
    static INTERRUPTED: Cell<bool> = const { Cell::new(false) };
}

/// The process-wide check a writer runs between its tries for the lock; see
/// [`crate::interrupt_lock_waits`].
static INTERRUPT: OnceLock<fn() -> bool> = OnceLock::new();

/// Installs `check` for every store of this process: a writer waiting for another's write
/// lock (SQLite) calls it between its tries, and stops waiting when it returns `true`; the
/// write then fails with [`crate::Error::Interrupted`] and writes nothing. A write that got
/// the lock is not interrupted: it commits and reports success. `check` runs on the waiting
/// thread, every few milliseconds of a wait, so it must be cheap; a language binding uses
/// it to let Ctrl-C end a wait. Returns `false` (and changes nothing) if a check was
/// installed already. On PostgreSQL the wait for a row lock is the server's and is bounded
/// by the busy timeout only.
pub fn interrupt_lock_waits(check: fn() -> bool) -> bool {
    INTERRUPT.set(check).is_ok()
}

/// Sets the timeout [`wait_while_busy`] applies on this thread. The store calls it before
/// each transaction, so stores with different timeouts can share a thread.
pub(crate) fn set_busy_timeout(timeout: Duration) {
    BUSY_TIMEOUT.with(|t| t.set(timeout));
    INTERRUPTED.with(|i| i.set(false));
}

/// Whether the `Busy` this thread just got was an interrupted wait (and forgets it).
pub(crate) fn take_interrupted() -> bool {
    INTERRUPTED.with(|i| i.replace(false))
}

/// How long a writer that found the lock taken sleeps before trying again. A write holds the
/// lock for tens of microseconds; retrying sooner hands the lock over between two writes of
/// the holder, and each handoff costs a cold page cache (measured in `docs/design.md`).
const PATIENT_SLEEP: Duration = Duration::from_millis(2);
/// After waiting this long a writer retries every [`EAGER_SLEEP`] so that it gets its turn:
/// this bounds how long any one writer waits behind busy neighbours.
const PATIENCE: Duration = Duration::from_millis(5);
const EAGER_SLEEP: Duration = Duration::from_micros(100);

/// The busy handler: replaces SQLite's, which sleeps 1, 2, 5, 10 … 100 ms and so leaves the
/// lock idle most of the time once several processes write. Retries after
/// [`PATIENT_SLEEP`], then after [`EAGER_SLEEP`] once it has waited [`PATIENCE`], until the
/// store's busy timeout.
fn wait_while_busy(attempt: i32) -> bool {
    let now = Instant::now();
    let started = WAIT_STARTED.with(|s| {
        if attempt == 0 || s.get().is_none() {
            s.set(Some(now));
        }
        s.get().unwrap_or(now)
    });
    let waited = now.duration_since(started);
    let left = BUSY_TIMEOUT.with(Cell::get).saturating_sub(waited);
    if left.is_zero() {
        return false;
    }
    if INTERRUPT.get().is_some_and(|check| check()) {
        INTERRUPTED.with(|i| i.set(true));
        return false;
    }
    let step = if waited < PATIENCE {
        PATIENT_SLEEP
    } else {
        EAGER_SLEEP
    };
    std::thread::sleep(step.min(left));
    true
}

/// How long [`truncate_wal`] keeps trying while a reader holds the WAL.
pub(crate) const TRUNCATE_PATIENCE: Duration = Duration::from_secs(1);

/// Checkpoints the WAL into the file and truncates it to zero bytes, trying for up to
/// [`TRUNCATE_PATIENCE`]; returns whether it did. Each attempt runs with the busy timeout at
/// zero: a TRUNCATE checkpoint waits in the busy handler for every reader to finish, so under
/// the store's timeout a single attempt would wait as long as another process keeps a read
/// transaction open (up to the whole timeout), instead of reporting that it could not.
pub(crate) fn truncate_wal(conn: &Connection) -> rusqlite::Result<bool> {
    let timeout = BUSY_TIMEOUT.with(Cell::get);
    set_busy_timeout(Duration::ZERO);
    let truncated = (|| {
        let deadline = Instant::now() + TRUNCATE_PATIENCE;
        let mut pause = Duration::from_millis(5);
        loop {
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            let now = Instant::now();
            if busy == 0 {
                return Ok(true);
            }
            if now >= deadline {
                return Ok(false);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    })();
    set_busy_timeout(timeout);
    truncated
}
