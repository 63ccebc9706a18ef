//! SQLite's side of the neutral vocabulary of [`crate::db::sql::Tx`] and of the store's
//! backend operations: what SQLite does where PostgreSQL does something else. Its twin is
//! `db/postgres/dialect.rs`; the two differ only in dialect.
//!
//! No lock is taken here: a SQLite write is `BEGIN IMMEDIATE`, the file's only writer until
//! it commits, so every lock of the vocabulary is free.

use std::path::Path;

use rusqlite::Connection;

use super::connection::truncate_wal;
use super::files::wal_path;
use crate::error::Result;

/// The function that returns the largest of its arguments.
pub(crate) const GREATEST: &str = "max";

/// The highest id `table` has used, deleted rows included: AUTOINCREMENT keeps it in
/// `sqlite_sequence`.
pub(crate) fn id_counter(conn: &Connection, table: &str) -> Result<i64> {
    let sql = format!(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0),
                        coalesce((SELECT max(id) FROM \"{table}\"), 0))"
    );
    Ok(conn.prepare_cached(&sql)?.query_row([], |r| r.get(0))?)
}

/// Moves `table`'s AUTOINCREMENT counter to `used`.
pub(crate) fn set_id_counter(conn: &Connection, table: &str, used: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM sqlite_sequence WHERE name = ?1")?
        .execute([table])?;
    conn.prepare_cached("INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)")?
        .execute(rusqlite::params![table, used])?;
    Ok(())
}

/// Nothing to do: a rowid table takes the largest id plus one, and AUTOINCREMENT records the
/// ids inserted explicitly.
pub(crate) fn sync_id_counter(_conn: &Connection, _table: &str) -> Result<()> {
    Ok(())
}

/// Foreign keys are checked at commit from here on, not per statement.
pub(crate) fn defer_foreign_keys(conn: &Connection) -> Result<()> {
    Ok(conn.execute_batch("PRAGMA defer_foreign_keys = ON;")?)
}

/// What `PRAGMA integrity_check` and `PRAGMA foreign_key_check` find, one line per problem.
pub(crate) fn integrity_problems(conn: &Connection) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut stmt = conn.prepare_cached("PRAGMA integrity_check")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let line: String = row.get(0)?;
        if line != "ok" {
            problems.push(format!("integrity: {line}"));
        }
    }
    let mut stmt = conn.prepare_cached("PRAGMA foreign_key_check")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let table: String = row.get(0)?;
        let rowid: Option<i64> = row.get(1)?;
        let parent: String = row.get(2)?;
        problems.push(format!(
            "foreign key: {table} row {rowid:?} points to a missing {parent} row"
        ));
    }
    Ok(problems)
}

/// Turns `secure_delete` on or off: while on, freed cells and pages are overwritten with
/// zeros.
pub(crate) fn secure_delete(conn: &Connection, on: bool) -> Result<()> {
    Ok(conn.execute_batch(if on {
        "PRAGMA secure_delete = ON"
    } else {
        "PRAGMA secure_delete = OFF"
    })?)
}

/// Whether the file has its FTS5 index yet: the first search builds it.
pub(crate) fn search_index_exists(conn: &Connection) -> Result<bool> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM sqlite_schema WHERE name = 'message_search'")?
        .query_row([], |r| r.get(0))?;
    Ok(count > 0)
}

/// Builds the index: an external-content FTS5 table over `messages.content`, the triggers
/// that keep it current in every writer's transaction, and the indexing of what is stored.
pub(crate) fn build_search_index(conn: &Connection) -> Result<()> {
    Ok(conn.execute_batch(SEARCH_INDEX)?)
}

/// The index, its triggers, and the indexing of what is already stored.
const SEARCH_INDEX: &str = "
CREATE VIRTUAL TABLE message_search USING fts5 (
    content,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search (rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO message_search (message_search, rowid, content)
    VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER message_search_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO message_search (message_search, rowid, content)
    VALUES ('delete', old.id, old.content);
    INSERT INTO message_search (rowid, content) VALUES (new.id, new.content);
END;
INSERT INTO message_search (message_search) VALUES ('rebuild');
";

/// Drops the index and its triggers; the next search builds it again.
pub(crate) fn drop_search_index(conn: &Connection) -> Result<()> {
    Ok(conn.execute_batch(
        "DROP TRIGGER IF EXISTS message_search_insert;
             DROP TRIGGER IF EXISTS message_search_delete;
             DROP TRIGGER IF EXISTS message_search_update;
             DROP TABLE IF EXISTS message_search;",
    )?)
}

/// Writes the index again from the messages that remain, if the file has one: FTS5 deletes
/// only add tombstones, so deleted terms stay in old segments until a rebuild.
pub(crate) fn rewrite_search_index(conn: &Connection) -> Result<()> {
    if search_index_exists(conn)? {
        conn.execute_batch("INSERT INTO message_search (message_search) VALUES ('rebuild')")?;
    }
    Ok(())
}

/// Rebuilds the file, returning free pages to the operating system and leaving no copy of
/// a deleted row in free space (a page split long ago may have left one that no delete can
/// find).
pub(crate) fn vacuum(conn: &Connection) -> Result<()> {
    Ok(conn.execute_batch("VACUUM")?)
}

/// Writes a consistent copy of the database to the new file `path`, while others go on
/// writing: it holds exactly the transactions committed before it started.
pub(crate) fn vacuum_into(conn: &Connection, path: &str) -> Result<()> {
    conn.execute("VACUUM INTO ?1", [path])?;
    Ok(())
}

/// Checkpoints the WAL into the file and truncates it; returns whether it could (a reader
/// of an old snapshot keeps it from finishing: see [`truncate_wal`]).
pub(crate) fn checkpoint(conn: &Connection) -> Result<bool> {
    Ok(truncate_wal(conn)?)
}

/// Sizes of the database file at `path` and of its WAL (0 for one that does not exist).
pub(crate) fn file_sizes(path: &Path) -> (u64, u64) {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    (size(path), size(&wal_path(path)))
}
