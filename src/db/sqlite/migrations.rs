//! Schema migrations, embedded at build time.
//!
//! Rules: this list only grows. Never edit or remove a released entry, never make a change
//! that an older sessiondb reading the file would misread; add a new numbered file instead.
//! Entry `i` (0-based) moves the schema from version `i` to `i + 1`.

use rusqlite::{Connection, TransactionBehavior};

use crate::db::APPLICATION_ID;
use crate::error::{Error, Result};

const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_init.sql"),
    include_str!("../../../migrations/0002_partial_messages.sql"),
    include_str!("../../../migrations/0003_append_pages.sql"),
    include_str!("../../../migrations/0004_head_since.sql"),
    include_str!("../../../migrations/0005_message_shapes.sql"),
    include_str!("../../../migrations/0006_turns.sql"),
    include_str!("../../../migrations/0007_leases.sql"),
    include_str!("../../../migrations/0008_developer_role.sql"),
    include_str!("../../../migrations/0009_usage_records.sql"),
    include_str!("../../../migrations/0010_checkpoints.sql"),
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Outcome of [`migrate`], for the caller's checks.
pub(crate) enum Migrated {
    /// The file is at `SCHEMA_VERSION` now.
    Current,
    /// The file is newer than this build; nothing was changed.
    TooNew(i64),
}

/// Brings the file up to [`SCHEMA_VERSION`]. A file that is already current is only read:
/// opening it must not wait behind another process's write. Otherwise one `BEGIN IMMEDIATE`
/// transaction reads `user_version` again inside it, so two processes opening a fresh file at
/// once both succeed: the second waits for the lock, then sees the first one's work and does
/// nothing.
pub(crate) fn migrate(conn: &mut Connection) -> Result<Migrated> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found == SCHEMA_VERSION {
        return Ok(Migrated::Current);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Ok(Migrated::TooNew(found));
    }
    if found < 0 {
        return Err(Error::Corrupt(format!(
            "schema version {found} is negative"
        )));
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql)?;
    }
    if found < SCHEMA_VERSION {
        tx.execute_batch(&format!(
            "PRAGMA user_version = {SCHEMA_VERSION}; PRAGMA application_id = {APPLICATION_ID};"
        ))?;
    }
    tx.commit()?;
    Ok(Migrated::Current)
}
