//! PostgreSQL's side of the neutral vocabulary of [`crate::db::sql::Tx`] and of the store's
//! backend operations: what PostgreSQL does where SQLite does something else. Its twin is
//! `db/sqlite/dialect.rs`; the two differ only in dialect.
//!
//! Writers run side by side here, so the locks are real (the contract is the doc of the
//! `lock_*` methods of `Tx`). A row lock is `FOR NO KEY UPDATE`: it does not block the
//! foreign-key checks of rows that name the session (a new branch, a snapshot).

use crate::db::value::{args, ReadRow};
use crate::error::{Error, Result};

use super::{PgRow, PgTx};

/// The function that returns the largest of its arguments.
pub(crate) const GREATEST: &str = "GREATEST";

/// What a `SELECT` of rows a write is about to change ends with.
pub(crate) const ROW_LOCK: &str = " FOR NO KEY UPDATE";

/// Locks session `id`'s row.
pub(crate) fn lock_session(tx: &mut PgTx<'_>, id: &str) -> Result<()> {
    tx.execute(
        "SELECT 1 FROM sessions WHERE id = ?1 FOR NO KEY UPDATE",
        args![id],
    )?;
    Ok(())
}

/// Locks session `id`'s row and those of the sessions forked from it, in id order.
pub(crate) fn lock_session_and_forks(tx: &mut PgTx<'_>, id: &str) -> Result<()> {
    tx.execute(
        "SELECT 1 FROM sessions WHERE id = ?1 OR parent_session_id = ?1
                 ORDER BY id FOR NO KEY UPDATE",
        args![id],
    )?;
    Ok(())
}

/// Locks the rows of the sessions `ids`, in id order; returns the ids of those that exist.
pub(crate) fn lock_sessions(tx: &mut PgTx<'_>, ids: &[&str]) -> Result<Vec<String>> {
    let ids =
        serde_json::to_string(ids).map_err(|e| Error::invalid(format!("session ids: {e}")))?;
    tx.query(
        "SELECT id FROM sessions
                     WHERE id IN (SELECT jsonb_array_elements_text(CAST(CAST(?1 AS TEXT) AS JSONB)))
                     ORDER BY id FOR NO KEY UPDATE",
        args![ids],
    )?
    .iter()
    .map(|row| row.text(0))
    .collect()
}

/// Locks every session row, in id order.
pub(crate) fn lock_all_sessions(tx: &mut PgTx<'_>) -> Result<()> {
    tx.execute(
        "SELECT 1 FROM sessions ORDER BY id FOR NO KEY UPDATE",
        args![],
    )?;
    Ok(())
}

/// Locks every table against other writers; readers go on reading.
pub(crate) fn lock_all_tables(tx: &mut PgTx<'_>) -> Result<()> {
    tx.batch(
        "LOCK TABLE sessions, branches, messages, usage_records, snapshots, compactions,
                        partial_messages, leases, version_clock, langgraph_checkpoints,
                        langgraph_blobs, langgraph_channels, langgraph_writes, langgraph_hidden
                        IN EXCLUSIVE MODE",
    )
}

/// Takes the transaction-level advisory lock of `name` among sessiondb's names of `kind`:
/// the hash of `sessiondb <kind> <name>`.
pub(crate) fn lock_key(tx: &mut PgTx<'_>, kind: &str, name: &str) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('sessiondb ' || ?1 || ' ' || ?2, 0))",
        args![kind, name],
    )?;
    Ok(())
}

/// The highest id `table` has used, deleted rows included: its identity column's sequence
/// keeps it.
pub(crate) fn id_counter(tx: &mut PgTx<'_>, table: &str) -> Result<i64> {
    let sql = format!(
        "SELECT GREATEST(
                 coalesce(pg_sequence_last_value(
                     CAST(pg_get_serial_sequence('{table}', 'id') AS regclass)), 0),
                 coalesce((SELECT max(id) FROM \"{table}\"), 0))"
    );
    first_int(tx.query(&sql, args![])?, &sql)
}

/// Moves `table`'s identity sequence to `used`.
pub(crate) fn set_id_counter(tx: &mut PgTx<'_>, table: &str, used: i64) -> Result<()> {
    // setval refuses 0: an unused sequence is 1, not yet called.
    let sql = format!(
        "SELECT setval(CAST(pg_get_serial_sequence('{table}', 'id') AS regclass),
                                   GREATEST(CAST(?1 AS BIGINT), 1), CAST(?1 AS BIGINT) > 0)"
    );
    first_int(tx.query(&sql, args![used])?, &sql)?;
    Ok(())
}

/// An identity sequence does not follow ids inserted explicitly: moves `table`'s above them.
pub(crate) fn sync_id_counter(tx: &mut PgTx<'_>, table: &str) -> Result<()> {
    let used = id_counter(tx, table)?;
    set_id_counter(tx, table, used)
}

fn first_int(rows: Vec<PgRow>, sql: &str) -> Result<i64> {
    match rows.first() {
        Some(row) => row.int64(0),
        None => Err(Error::Corrupt(format!("no row where one must be: {sql}"))),
    }
}

/// The `VACUUM` that `maintain` asks for: dead rows' space made reusable and the planner's
/// statistics renewed. It runs outside any transaction, as PostgreSQL requires.
pub(crate) const VACUUM: &str =
    "VACUUM (ANALYZE) messages, branches, sessions, snapshots, compactions, usage_records, \
     langgraph_checkpoints, langgraph_blobs, langgraph_channels, langgraph_writes, langgraph_hidden";

/// The `VACUUM` after a purge: dead rows are gone from every table that held a session's
/// content. The server's WAL and backups are the operator's to expire.
pub(crate) const ERASE: &str = "VACUUM messages, branches, sessions, snapshots, compactions, \
                                partial_messages, leases, usage_records, langgraph_checkpoints, \
                                langgraph_blobs, langgraph_channels, langgraph_writes, \
                                langgraph_hidden";

/// The database's size on the server, in bytes.
pub(crate) const DATABASE_SIZE: &str = "SELECT pg_database_size(current_database())";
