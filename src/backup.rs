//! Copies of a file's contents and the way back: [`Store::backup`] (a consistent SQLite copy
//! taken while others write), [`Store::export_to`] (the JSON export, written to a path) and
//! [`Store::restore`] (the contents replaced through SQLite).
//!
//! Copying or moving the files themselves under running processes is what this replaces:
//! SQLite cannot survive a database renamed over a live one (it is mixed with the old WAL) or a
//! deleted `-wal`. Every file written here follows the rules of `out_file.rs`.
//!
//! A restore is one write transaction, so every process sees the old contents or the restored
//! ones, never a mix. Other processes keep their caches: the restored sessions get versions
//! above every version the live file ever handed out, and branches get ids above every branch
//! id it ever used, so no cached entry (version, head branch, length) can match restored data.

use std::io::{BufWriter, Write};
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::OpenFlags;
use serde::Serialize;

use crate::db::migrations::SCHEMA_VERSION;
use crate::error::{Error, Result};
use crate::out_file::{database_file, parent_dir, ExistingFile, OutFile, TempFile};
use crate::store::Store;

/// What [`Store::restore`] put in place: the row counts of the restored contents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    pub sessions: u64,
    pub branches: u64,
    pub messages: u64,
    pub snapshots: u64,
}

/// Largest branch id the schema allows (`messages.branch_id` CHECK).
const MAX_BRANCH_ID: i64 = 2_147_483_647;
/// A message's rowid is `branch_id * 2^32 + seq`.
const ROWS_PER_BRANCH: i64 = 1 << 32;

impl Store {
    /// Writes a consistent copy of the database to `out` with SQLite's `VACUUM INTO`, while
    /// other processes go on reading and writing: the copy holds exactly the transactions
    /// committed before it started. `out` may not be the database, its `-wal` or `-shm`
    /// (under any name); an existing file is refused unless `existing` is
    /// [`ExistingFile::Replace`]. The copy is written to a private (0600) temporary file beside
    /// `out`, synced and renamed over it. Returns its size in bytes. Needs a store opened
    /// read-write.
    pub fn backup(&self, out: impl AsRef<Path>, existing: ExistingFile) -> Result<u64> {
        let out = out.as_ref();
        let mut file = OutFile::create(self.path(), out, existing)?;
        let temp = utf8_path(file.temp().path())?.to_owned();
        self.with_connection(|conn| {
            conn.execute("VACUUM INTO ?1", [&temp])?;
            Ok(())
        })?;
        let bytes = std::fs::metadata(&temp)
            .map_err(|source| Error::Io {
                path: temp.clone().into(),
                source,
            })?
            .len();
        file.commit()?;
        Ok(bytes)
    }

    /// [`Store::export`] written to `out` as pretty JSON, with the rules of
    /// [`Store::backup`]: never over the database or its `-wal`/`-shm`, an existing file only
    /// with [`ExistingFile::Replace`], written privately (0600) and renamed into place.
    pub fn export_to(
        &self,
        out: impl AsRef<Path>,
        ids: &[String],
        all_branches: bool,
        existing: ExistingFile,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<()> {
        let out = out.as_ref();
        // Checked before the export's work, so a refused path fails at once.
        let mut file = OutFile::create(self.path(), out, existing)?;
        let export = self.export(ids, all_branches, progress)?;
        let temp = file.temp().path().to_path_buf();
        let io_err = |source| Error::Io {
            path: temp.clone(),
            source,
        };
        let mut writer = BufWriter::new(file.temp().file()?);
        serde_json::to_writer_pretty(&mut writer, &export).map_err(|e| {
            if e.is_io() {
                io_err(e.into())
            } else {
                Error::invalid(format!("cannot encode the export: {e}"))
            }
        })?;
        writer.write_all(b"\n").map_err(io_err)?;
        writer.flush().map_err(io_err)?;
        drop(writer);
        file.commit()
    }

    /// Replaces the whole contents of this file with those of the sessiondb file `from` (a
    /// [`Store::backup`], say), in one write transaction: every process sees either the old
    /// contents or the restored ones, and their caches cannot serve the old data (see the
    /// module docs). `from` is read in one snapshot and never changed; an older schema is
    /// upgraded on a temporary copy first.
    ///
    /// Refused, with the live file unchanged: `from` being this database (or its `-wal`/`-shm`)
    /// ([`Error::InvalidInput`]), not a sessiondb file or an empty one
    /// ([`Error::NotSessionDb`]), a newer schema ([`Error::SchemaTooNew`]). Other writers wait
    /// for the restore like for any write (up to their busy timeout). The search index is
    /// dropped and rebuilt by the next search.
    pub fn restore(&self, from: impl AsRef<Path>) -> Result<RestoreReport> {
        let from = from.as_ref();
        if let Some(what) = database_file(self.path(), from) {
            return Err(Error::invalid(format!(
                "{}: cannot restore from {what} of the database itself",
                from.display()
            )));
        }
        let source = Source::open(self.path(), from)?;
        let report = self.write(|tx| {
            source.store.read(|src| {
                let only_sqlite = || {
                    Error::invalid(
                        "restore copies a SQLite file into a SQLite store; to move sessions \
                         into PostgreSQL, export them and import the export",
                    )
                };
                let src = src.sqlite_connection().ok_or_else(only_sqlite)?;
                let tx = tx.sqlite_connection().ok_or_else(only_sqlite)?;
                replace_contents(from, src, tx)
            })
        })?;
        drop(source);
        // Not needed for freshness (versions moved); the old entries are just dead weight.
        self.invalidate_cache(None);
        Ok(report)
    }
}

/// The file a restore reads: `from` itself, or an upgraded temporary copy of it.
struct Source {
    store: Store,
    // Declared after `store`, so the store is closed before the copy is removed.
    _copy: Option<TempFile>,
}

impl Source {
    fn open(database: &Path, from: &Path) -> Result<Source> {
        let err = match Store::builder(from)
            .read_only(true)
            .pool_size(1)
            .cache_entries(0)
            .open()
        {
            Ok(store) => return Ok(Source { store, _copy: None }),
            Err(err) => err,
        };
        // A read-only open refuses files that need a migration; anything else is final.
        let Error::ReadOnly { .. } = err else {
            return Err(err);
        };
        let Some(found) = schema_version(from) else {
            return Err(err);
        };
        if found == 0 {
            return Err(Error::NotSessionDb {
                path: from.to_path_buf(),
                reason: "it holds no sessiondb schema (an empty database)".into(),
            });
        }
        if found >= SCHEMA_VERSION {
            return Err(err);
        }
        let copy = TempFile::new_in(parent_dir(database), "restore")?;
        let copy_path = utf8_path(copy.path())?.to_owned();
        let conn = rusqlite::Connection::open_with_flags(
            from,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute("VACUUM INTO ?1", [&copy_path])?;
        drop(conn);
        // Opening read-write runs the migrations on the copy.
        let store = Store::builder(copy.path())
            .pool_size(1)
            .cache_entries(0)
            .open()?;
        Ok(Source {
            store,
            _copy: Some(copy),
        })
    }
}

/// `PRAGMA user_version` of `path`, or `None` if it cannot be read.
fn schema_version(path: &Path) -> Option<i64> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    conn.query_row("PRAGMA user_version", [], |r| r.get(0)).ok()
}

fn utf8_path(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| Error::invalid(format!("{}: path is not UTF-8", path.display())))
}

/// The highest version a file has handed out (a deleted session's last one is in the clock).
const MAX_VERSION: &str = "SELECT max((SELECT version FROM version_clock WHERE id = 1),
                                      coalesce((SELECT max(version) FROM sessions), 0))";

/// The highest id an AUTOINCREMENT table has used, deleted rows included.
fn max_id(tx: &rusqlite::Connection, table: &str) -> Result<i64> {
    Ok(tx.query_row(
        &format!(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?1), 0),
                        coalesce((SELECT max(id) FROM \"{table}\"), 0))"
        ),
        [table],
        |r| r.get(0),
    )?)
}

/// How a restored column's values move so they never repeat one the live file handed out.
#[derive(Clone, Copy)]
struct Offsets {
    version: i64,
    branch: i64,
}

impl Offsets {
    fn of(&self, table: &str, column: &str) -> i64 {
        match (table, column) {
            ("sessions", "version") => self.version,
            ("sessions", "head_branch_id")
            | ("branches", "id")
            | ("branches", "parent_branch_id")
            | ("messages", "branch_id")
            | ("snapshots", "branch_id")
            | ("compactions", "branch_id") => self.branch,
            ("messages", "id") => self.branch * ROWS_PER_BRANCH,
            _ => 0,
        }
    }
}

/// Inside the live file's write transaction `tx`: deletes every row and copies every row of
/// `src` (one read snapshot of the file `from`), moving versions and branch ids above the live
/// file's.
fn replace_contents(
    from: &Path,
    src: &rusqlite::Connection,
    tx: &rusqlite::Connection,
) -> Result<RestoreReport> {
    let live_version: i64 = tx.query_row(MAX_VERSION, [], |r| r.get(0))?;
    let live_branch = max_id(tx, "branches")?;
    let live_snapshot = max_id(tx, "snapshots")?;
    let src_version: i64 = src.query_row(MAX_VERSION, [], |r| r.get(0))?;
    let src_branch = max_id(src, "branches")?;
    let src_snapshot = max_id(src, "snapshots")?;
    if src_branch > MAX_BRANCH_ID - live_branch {
        return Err(Error::invalid(format!(
            "{}: restoring it would need branch ids above {MAX_BRANCH_ID} \
             (this file has used {live_branch}, it has {src_branch})",
            from.display()
        )));
    }
    let offsets = Offsets {
        version: live_version,
        branch: live_branch,
    };

    let tables: Vec<String> = tx
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table'
               AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'message_search%'
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // Foreign keys hold again once every table is copied; checked at commit.
    tx.execute_batch(
        "PRAGMA defer_foreign_keys = ON;
         DROP TRIGGER IF EXISTS message_search_insert;
         DROP TRIGGER IF EXISTS message_search_delete;
         DROP TRIGGER IF EXISTS message_search_update;
         DROP TABLE IF EXISTS message_search;",
    )?;
    for table in &tables {
        tx.execute(&format!("DELETE FROM \"{table}\""), [])?;
    }
    let mut report = RestoreReport::default();
    for table in &tables {
        let rows = copy_table(from, src, tx, table, offsets)?;
        match table.as_str() {
            "sessions" => report.sessions = rows,
            "branches" => report.branches = rows,
            "messages" => report.messages = rows,
            "snapshots" => report.snapshots = rows,
            _ => {}
        }
    }
    tx.execute(
        "UPDATE version_clock SET version = ?1 WHERE id = 1",
        [src_version + live_version],
    )?;
    // Every head was just set, at the session's restored version.
    tx.execute("UPDATE sessions SET head_since = version", [])?;
    // Ids never come back: the sequences continue above both files' highest.
    tx.execute(
        "DELETE FROM sqlite_sequence WHERE name IN ('branches', 'snapshots')",
        [],
    )?;
    tx.execute(
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('branches', ?1), ('snapshots', ?2)",
        [live_branch + src_branch, live_snapshot.max(src_snapshot)],
    )?;
    Ok(report)
}

fn columns(tx: &rusqlite::Connection, table: &str) -> Result<Vec<String>> {
    Ok(tx
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Copies every row of `table` from `src` into `tx`, shifting the columns [`Offsets`] names.
fn copy_table(
    from: &Path,
    src: &rusqlite::Connection,
    tx: &rusqlite::Connection,
    table: &str,
    offsets: Offsets,
) -> Result<u64> {
    let live = columns(tx, table)?;
    let mut theirs = columns(src, table)?;
    theirs.sort();
    let mut ours = live.clone();
    ours.sort();
    if theirs != ours {
        return Err(Error::NotSessionDb {
            path: from.to_path_buf(),
            reason: format!("its table {table} has columns {theirs:?}, expected {ours:?}"),
        });
    }
    let list = live
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let slots = (1..=live.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let shifts: Vec<i64> = live.iter().map(|c| offsets.of(table, c)).collect();
    let mut insert = tx.prepare(&format!(
        "INSERT INTO \"{table}\" ({list}) VALUES ({slots})"
    ))?;
    let mut select = src.prepare(&format!("SELECT {list} FROM \"{table}\""))?;
    let mut rows = select.query([])?;
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(live.len());
        for (i, shift) in shifts.iter().enumerate() {
            let value: Value = row.get(i)?;
            values.push(match value {
                Value::Integer(n) if *shift != 0 => {
                    Value::Integer(n.checked_add(*shift).ok_or_else(|| {
                        Error::invalid(format!(
                            "{}: {table}.{} value {n} is out of range",
                            from.display(),
                            live[i]
                        ))
                    })?)
                }
                other => other,
            });
        }
        insert.execute(rusqlite::params_from_iter(values))?;
        copied += 1;
    }
    Ok(copied)
}
