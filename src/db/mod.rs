//! Opening the file: checks that it is ours, sets WAL once, migrates, and configures every
//! pooled connection. Nothing here runs after [`crate::Store::open`] returns.

pub(crate) mod bootstrap;
pub(crate) mod migrations;

use std::cell::Cell;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// `PRAGMA application_id` of a sessiondb file ("SeDB"), so `file(1)` and tools recognise it.
pub const APPLICATION_ID: i32 = 0x5365_4442;

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
}

/// Sets the timeout [`wait_while_busy`] applies on this thread. The store calls it before
/// each transaction, so stores with different timeouts can share a thread.
pub(crate) fn set_busy_timeout(timeout: Duration) {
    BUSY_TIMEOUT.with(|t| t.set(timeout));
}

/// SQLite's own busy handler sleeps 1, 2, 5, 10 … 100 ms between tries. A write holds the
/// lock for well under a millisecond, so those sleeps leave the lock idle most of the time
/// and throughput collapses as processes are added. This one yields the CPU a few times,
/// then sleeps in short steps that grow to at most 200 µs, until the store's busy timeout.
fn wait_while_busy(attempt: i32) -> bool {
    let now = Instant::now();
    let started = WAIT_STARTED.with(|s| {
        if attempt == 0 || s.get().is_none() {
            s.set(Some(now));
        }
        s.get().unwrap_or(now)
    });
    if now.duration_since(started) >= BUSY_TIMEOUT.with(Cell::get) {
        return false;
    }
    if attempt < 8 {
        std::thread::yield_now();
    } else {
        let step = 10u64 << (attempt - 8).min(5);
        std::thread::sleep(Duration::from_micros(step.min(200)));
    }
    true
}
