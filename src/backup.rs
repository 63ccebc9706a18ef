//! Copies of a store's contents and the way back: [`Store::backup`] (a consistent SQLite copy
//! taken while others write), [`Store::export_to`] (the JSON export, written to a path) and
//! [`Store::restore`] (the contents replaced by those of a SQLite backup).
//!
//! Copying or moving the files themselves under running processes is what this replaces:
//! SQLite cannot survive a database renamed over a live one (it is mixed with the old WAL) or a
//! deleted `-wal`. Every file written here follows the rules of `out_file.rs`.
//!
//! A restore is one write transaction, so every process sees the old contents or the restored
//! ones, never a mix. Other processes keep their caches: the restored sessions get versions
//! above every version the live file ever handed out, and branches get ids above every branch
//! id it ever used, so no cached entry (version, head branch, length) can match restored data.
//!
//! On PostgreSQL both go row by row through [`Tx`]: a backup is a new SQLite file filled from
//! one read snapshot (every table, ids and versions kept), and a restore copies a SQLite
//! file's tables in with the same code. The schemas have the same tables and columns, so
//! nothing is lost either way; that is also how a store moves between the two backends.

use std::io::{BufWriter, Write};
use std::path::Path;

use rusqlite::OpenFlags;
use serde::Serialize;

use crate::db::sql::{args, Param, Row, Tx};
use crate::db::sqlite::migrations::SCHEMA_VERSION;
use crate::error::{Error, Result};
use crate::out_file::{refuse_database_file, ExistingFile, OutFile, TempFile};
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
        if !self.copy_file_to(&temp)? {
            self.backup_to_sqlite(Path::new(&temp))?;
        }
        let bytes = std::fs::metadata(&temp)
            .map_err(|source| Error::Io {
                path: temp.clone().into(),
                source,
            })?
            .len();
        file.commit()?;
        Ok(bytes)
    }

    /// The backup of a store that cannot copy its own file (PostgreSQL): a new sessiondb
    /// SQLite file at `path` holding every row of one read snapshot, ids and versions as they
    /// are, so [`Store::restore`] on either backend takes it back.
    fn backup_to_sqlite(&self, path: &Path) -> Result<()> {
        let copy = Store::builder(path).pool_size(1).cache_entries(0).open()?;
        copy.write(|dst| self.read(|src| replace_contents(self.path(), src, dst)))?;
        // Everything into the file itself, so the renamed file is whole without its -wal.
        copy.checkpoint()?;
        drop(copy);
        Ok(())
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
        refuse_database_file(self.path(), from, "restore from")?;
        if from.to_str().is_some_and(crate::store::is_postgres_url) {
            return Err(Error::invalid(format!(
                "{}: restore reads a sessiondb SQLite file (a backup); to copy from another \
                 server, back it up to a file first",
                from.display()
            )));
        }
        // An upgraded copy goes beside the live file, or, for a server, where temporary
        // files go.
        let scratch = self.scratch_dir();
        let source = Source::open(&scratch, from)?;
        let report = self.write(|tx| source.store.read(|src| replace_contents(from, src, tx)))?;
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
    fn open(scratch: &Path, from: &Path) -> Result<Source> {
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
        let copy = TempFile::new_in(scratch, "restore")?;
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

/// The highest version a database has handed out (a deleted session's last one is in the
/// clock).
fn max_version(tx: &Tx<'_>) -> Result<i64> {
    tx.query_one(
        &format!(
            "SELECT {}((SELECT version FROM version_clock WHERE id = 1),
                        coalesce((SELECT max(version) FROM sessions), 0))",
            tx.greatest()
        ),
        args![],
        |row| row.get(0),
    )
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
            | ("compactions", "branch_id")
            | ("langgraph_writes", "branch_id" | "newest_branch")
            | ("langgraph_hidden" | "langgraph_checkpoints", "branch_id") => self.branch,
            ("messages", "id")
            | (
                "usage_records"
                | "langgraph_checkpoints"
                | "langgraph_channels"
                | "langgraph_hidden",
                "message_id",
            ) => self.branch * ROWS_PER_BRANCH,
            _ => 0,
        }
    }
}

/// Every table a copy moves, each with its key (the columns that order it and tell its rows
/// apart), in an order that inserts what a foreign key names before what names it
/// (sessions' links to their parents are set at the end). `version_clock` is not copied:
/// both databases have its one row.
const TABLES: [(&str, &[&str]); 13] = [
    ("sessions", &["id"]),
    ("branches", &["id"]),
    ("messages", &["id"]),
    ("usage_records", &["message_id"]),
    ("snapshots", &["id"]),
    ("compactions", &["id"]),
    ("partial_messages", &["session_id"]),
    ("leases", &["session_id"]),
    ("langgraph_checkpoints", &["message_id"]),
    ("langgraph_blobs", &["id"]),
    ("langgraph_channels", &["message_id", "channel"]),
    (
        "langgraph_writes",
        &[
            "branch_id",
            "checkpoint_ns",
            "checkpoint_id",
            "task_id",
            "idx",
        ],
    ),
    ("langgraph_hidden", &["branch_id", "message_id"]),
];

/// Rows read from the source per statement: PostgreSQL hands a query's rows over at once.
const COPY_PAGE: i64 = 256;

/// Inside the write transaction `tx`: deletes every row and copies every row of `src` (one
/// read snapshot of `from`), moving versions and branch ids above the ones `tx`'s database
/// handed out. Either side may be SQLite or PostgreSQL: the schemas have the same tables and
/// columns.
fn replace_contents(from: &Path, src: &Tx<'_>, tx: &Tx<'_>) -> Result<RestoreReport> {
    // Other writers wait for the restore; readers go on seeing the old contents.
    tx.lock_all_tables()?;
    let live_version = max_version(tx)?;
    let live_branch = tx.id_counter("branches")?;
    let live_snapshot = tx.id_counter("snapshots")?;
    let src_version = max_version(src)?;
    let src_branch = src.id_counter("branches")?;
    let src_snapshot = src.id_counter("snapshots")?;
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

    // Foreign keys hold again once every table is copied; checked at commit where they can
    // be. The search index is built again by the next search.
    tx.defer_foreign_keys()?;
    tx.drop_search_index()?;
    // Last inserted, first deleted: where foreign keys are checked per statement.
    for (table, _) in TABLES.iter().rev() {
        tx.execute(&format!("DELETE FROM \"{table}\""), args![])?;
    }
    let mut report = RestoreReport::default();
    let mut parents = Vec::new();
    for (table, key) in TABLES {
        let rows = copy_table(from, src, tx, table, key, offsets, &mut parents)?;
        match table {
            "sessions" => report.sessions = rows,
            "branches" => report.branches = rows,
            "messages" => report.messages = rows,
            "snapshots" => report.snapshots = rows,
            _ => {}
        }
    }
    for (child, parent) in &parents {
        tx.execute(
            "UPDATE sessions SET parent_session_id = ?2 WHERE id = ?1",
            args![child, parent],
        )?;
    }
    tx.execute(
        "UPDATE version_clock SET version = ?1 WHERE id = 1",
        args![src_version + live_version],
    )?;
    // Every head was just set, at the session's restored version.
    tx.execute("UPDATE sessions SET head_since = version", args![])?;
    // Ids never come back: the counters continue above both databases' highest.
    tx.set_id_counter("branches", live_branch + src_branch)?;
    tx.set_id_counter("snapshots", live_snapshot.max(src_snapshot))?;
    // Compaction and blob ids were copied as they were.
    tx.sync_id_counter("compactions")?;
    tx.sync_id_counter("langgraph_blobs")?;
    Ok(report)
}

/// How a column's values are read and bound.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Integer,
    Real,
    Text,
    Blob,
}

/// `table`'s columns in their order, each with its kind.
fn columns(tx: &Tx<'_>, table: &str) -> Result<Vec<(String, Kind)>> {
    tx.query_map(
        tx.pick(
            "SELECT name, type FROM pragma_table_info(?1) ORDER BY cid",
            "SELECT column_name, data_type FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position",
        ),
        args![table],
        |row| {
            let ty = row.get::<String>(1)?.to_ascii_uppercase();
            let kind = if ty.contains("INT") {
                Kind::Integer
            } else if ty.contains("REAL") || ty.contains("DOUBLE") || ty.contains("FLOAT") {
                Kind::Real
            } else if ty.contains("BLOB") || ty.contains("BYTEA") {
                Kind::Blob
            } else {
                Kind::Text
            };
            Ok((row.get(0)?, kind))
        },
    )
}

/// One value being copied.
enum Value {
    Integer(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Value {
    fn read(row: &Row<'_>, index: usize, kind: Kind) -> Result<Value> {
        Ok(match kind {
            Kind::Integer => Value::Integer(row.get(index)?),
            Kind::Real => Value::Real(row.get(index)?),
            Kind::Text => Value::Text(row.get(index)?),
            Kind::Blob => Value::Blob(row.get(index)?),
        })
    }

    fn param(&self) -> &dyn Param {
        match self {
            Value::Integer(v) => v,
            Value::Real(v) => v,
            Value::Text(v) => v,
            Value::Blob(v) => v,
        }
    }
}

/// Copies every row of `table` from `src` into `tx`, one page at a time in `key` order,
/// shifting the columns [`Offsets`] names. A session's parent link is left out and pushed to
/// `parents` (its parent may come later).
fn copy_table(
    from: &Path,
    src: &Tx<'_>,
    tx: &Tx<'_>,
    table: &str,
    key: &[&str],
    offsets: Offsets,
    parents: &mut Vec<(String, String)>,
) -> Result<u64> {
    let live = columns(tx, table)?;
    let mut theirs = columns(src, table)?;
    theirs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut ours = live.clone();
    ours.sort_by(|a, b| a.0.cmp(&b.0));
    if theirs != ours {
        let names = |c: &[(String, Kind)]| c.iter().map(|c| c.0.clone()).collect::<Vec<_>>();
        return Err(Error::NotSessionDb {
            path: from.to_path_buf(),
            reason: format!(
                "its table {table} has columns {:?}, expected {:?}",
                names(&theirs),
                names(&ours)
            ),
        });
    }
    let key_at = key
        .iter()
        .map(|k| {
            live.iter()
                .position(|c| c.0 == *k)
                .ok_or_else(|| Error::Corrupt(format!("table {table} has no column {k}")))
        })
        .collect::<Result<Vec<usize>>>()?;
    let parent_at = live
        .iter()
        .position(|c| table == "sessions" && c.0 == "parent_session_id");
    let list = live
        .iter()
        .map(|c| format!("\"{}\"", c.0))
        .collect::<Vec<_>>()
        .join(", ");
    let slots = (1..=live.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let shifts: Vec<i64> = live.iter().map(|c| offsets.of(table, &c.0)).collect();
    let insert = format!("INSERT INTO \"{table}\" ({list}) VALUES ({slots})");
    let order = key
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let after_slots = (1..=key.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let first = format!("SELECT {list} FROM \"{table}\" ORDER BY {order} LIMIT {COPY_PAGE}");
    let next = format!(
        "SELECT {list} FROM \"{table}\" WHERE ({order}) > ({after_slots}) ORDER BY {order} \
         LIMIT {COPY_PAGE}"
    );
    let mut copied = 0;
    let mut after: Option<Vec<Value>> = None;
    loop {
        let mut page = 0;
        let mut last = None;
        let each = |row: &Row<'_>| -> Result<()> {
            let mut values = Vec::with_capacity(live.len());
            for (i, ((name, kind), shift)) in live.iter().zip(&shifts).enumerate() {
                let value = match Value::read(row, i, *kind)? {
                    Value::Integer(Some(n)) if *shift != 0 => {
                        Value::Integer(Some(n.checked_add(*shift).ok_or_else(|| {
                            Error::invalid(format!(
                                "{}: {table}.{name} value {n} is out of range",
                                from.display()
                            ))
                        })?))
                    }
                    other => other,
                };
                values.push(value);
            }
            if let Some(at) = parent_at {
                if let (Value::Text(Some(child)), Value::Text(Some(parent))) =
                    (&values[key_at[0]], &values[at])
                {
                    parents.push((child.clone(), parent.clone()));
                }
                values[at] = Value::Text(None);
            }
            let params: Vec<&dyn Param> = values.iter().map(Value::param).collect();
            tx.execute(&insert, &params)?;
            // The key as read, before any shift, for the next page.
            last = Some(
                key_at
                    .iter()
                    .map(|&at| Value::read(row, at, live[at].1))
                    .collect::<Result<Vec<_>>>()?,
            );
            page += 1;
            Ok(())
        };
        match &after {
            None => src.query_each(&first, args![], each)?,
            Some(key) => {
                let params: Vec<&dyn Param> = key.iter().map(Value::param).collect();
                src.query_each(&next, &params, each)?
            }
        }
        copied += page;
        if page < COPY_PAGE as u64 {
            return Ok(copied);
        }
        after = last;
    }
}
