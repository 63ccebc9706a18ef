//! Opening the file: checks that it is ours, sets WAL once, migrates, and configures every
//! pooled connection. Nothing here runs after [`crate::Store::open`] returns.

pub(crate) mod bootstrap;
pub(crate) mod migrations;

use std::time::Duration;

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
        conn.busy_timeout(self.busy_timeout)?;
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
