//! The storage interface: the one way the logic talks to a database. Every module writes its
//! SQL against [`Tx`], which runs it on SQLite or, with the `postgres` feature, on PostgreSQL.
//!
//! SQL is written once where both databases accept it, with `?1`, `?2` … placeholders (turned
//! into `$1`, `$2` … for PostgreSQL). Where they differ, [`Tx::pick`] chooses the text for the
//! backend at hand, so each difference sits beside the statement it concerns. Where what is
//! done differs, not only its spelling (locks, the search index, id counters), the logic calls
//! a method of `Tx` named for what it wants, and each driver's `dialect.rs` does it its way:
//! the logic never asks which backend it is on.
//!
//! Rules that keep one text valid on both:
//! - every integer column is 64-bit (`BIGINT` on PostgreSQL) and is read as `i64`;
//! - a parameter whose type the statement does not fix (a selected constant, an argument of
//!   `coalesce`) is written `CAST(?1 AS BIGINT)` or `CAST(?1 AS TEXT)`;
//! - no two-argument `min`/`max` (PostgreSQL has `LEAST`/`GREATEST`: [`Tx::greatest`]), no
//!   `json_each`, no `INSERT OR …`: use [`Tx::pick`] or `ON CONFLICT`;
//! - `RETURNING` instead of `last_insert_rowid()`.
//! - JSON text given to a `jsonb` function goes through text, `CAST(CAST(?1 AS TEXT) AS JSONB)`:
//!   `CAST(?1 AS JSONB)` alone makes PostgreSQL expect a `jsonb` parameter and refuse a string.

use std::borrow::Cow;

#[cfg(feature = "postgres")]
use crate::db::postgres::{self, PgTx};
use crate::db::sqlite;
use crate::db::sqlite::data_version::DataVersion;
pub(crate) use crate::db::value::{args, Column, Param, Row};
use crate::error::{Error, Result};

/// Which database a transaction runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// A statement of a [`Tx`] to run many times ([`Tx::repeated`]).
pub(crate) enum Repeated<'a, 't> {
    /// (The marker keeps `'a` when PostgreSQL is not built.)
    Sqlite(
        rusqlite::CachedStatement<'t>,
        std::marker::PhantomData<&'a ()>,
    ),
    #[cfg(feature = "postgres")]
    Postgres(&'a std::cell::RefCell<PgTx<'t>>, &'a str),
}

impl Repeated<'_, '_> {
    /// Runs the statement once; returns how many rows it changed.
    pub(crate) fn execute(&mut self, params: &[&dyn Param]) -> Result<usize> {
        match self {
            Repeated::Sqlite(statement, _) => {
                Ok(statement
                    .execute(rusqlite::params_from_iter(params.iter().map(|p| p.value())))?)
            }
            #[cfg(feature = "postgres")]
            Repeated::Postgres(tx, sql) => tx.borrow_mut().execute(sql, params),
        }
    }
}

/// A transaction, read or write, on either backend. Everything a write depends on is read
/// through the same `Tx`.
pub(crate) struct Tx<'t> {
    inner: Inner<'t>,
    /// Only PostgreSQL needs to know: SQLite's writer holds the lock already.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    write: bool,
}

enum Inner<'t> {
    Sqlite(&'t rusqlite::Connection),
    #[cfg(feature = "postgres")]
    Postgres(std::cell::RefCell<PgTx<'t>>),
}

impl<'t> Tx<'t> {
    /// A `Tx` over a SQLite connection on which the caller has begun a transaction
    /// (`BEGIN IMMEDIATE` when `write`).
    pub(crate) fn sqlite(conn: &'t rusqlite::Connection, write: bool) -> Tx<'t> {
        Tx {
            inner: Inner::Sqlite(conn),
            write,
        }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(tx: PgTx<'t>, write: bool) -> Tx<'t> {
        Tx {
            inner: Inner::Postgres(std::cell::RefCell::new(tx)),
            write,
        }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn into_postgres(self) -> Option<PgTx<'t>> {
        match self.inner {
            Inner::Postgres(tx) => Some(tx.into_inner()),
            Inner::Sqlite(_) => None,
        }
    }

    fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// What the full-text match of a search takes for the caller's FTS5 `query`: the query
    /// itself on SQLite; on PostgreSQL its `tsquery` (see
    /// [`crate::db::postgres::fts5_to_tsquery`]), or [`Error::InvalidInput`] if it has none.
    pub(crate) fn text_query<'q>(&self, query: &'q str) -> Result<Cow<'q, str>> {
        match self.dialect() {
            Dialect::Sqlite => Ok(Cow::Borrowed(query)),
            #[cfg(feature = "postgres")]
            Dialect::Postgres => Ok(postgres::fts5_to_tsquery(query)?.into()),
        }
    }

    /// `sqlite` on SQLite, `postgres` on PostgreSQL: for the statements the two spell
    /// differently.
    pub(crate) fn pick<'s>(&self, sqlite: &'s str, postgres: &'s str) -> &'s str {
        let _ = postgres;
        match self.dialect() {
            Dialect::Sqlite => sqlite,
            #[cfg(feature = "postgres")]
            Dialect::Postgres => postgres,
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize> {
        self.repeated(sql)?.execute(params)
    }

    /// `sql` ready to run many times, as a loop over rows does: SQLite's statement is
    /// looked up once, not once per row.
    pub(crate) fn repeated<'a>(&'a self, sql: &'a str) -> Result<Repeated<'a, 't>> {
        match &self.inner {
            Inner::Sqlite(conn) => Ok(Repeated::Sqlite(
                conn.prepare_cached(sql)?,
                std::marker::PhantomData,
            )),
            #[cfg(feature = "postgres")]
            Inner::Postgres(tx) => Ok(Repeated::Postgres(tx, sql)),
        }
    }

    /// Runs statements without parameters, separated by `;`.
    pub(crate) fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            #[cfg(feature = "postgres")]
            Inner::Postgres(tx) => tx.borrow_mut().batch(sql),
        }
    }

    /// Calls `each` with every row of the query, in order.
    pub(crate) fn query_each(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut each: impl FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        self.scan(sql, params, |row| each(row).map(|()| true))
    }

    /// Calls `each` with the rows of the query, in order, until it returns `false`.
    fn scan(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut each: impl FnMut(&Row<'_>) -> Result<bool>,
    ) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(params.iter().map(|p| p.value())))?;
                while let Some(row) = rows.next()? {
                    if !each(&Row::new(row))? {
                        break;
                    }
                }
                Ok(())
            }
            #[cfg(feature = "postgres")]
            Inner::Postgres(tx) => {
                // The rows are fetched before `each` runs, so `each` may use this Tx.
                let rows = tx.borrow_mut().query(sql, params)?;
                for row in &rows {
                    if !each(&Row::new(row))? {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// Every row of the query, each turned into a `T` by `map`.
    pub(crate) fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut map: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.query_each(sql, params, |row| {
            out.push(map(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of the query turned into a `T`, or `None` if it has none.
    pub(crate) fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut map = Some(map);
        let mut out = None;
        self.scan(sql, params, |row| {
            if let Some(map) = map.take() {
                out = Some(map(row)?);
            }
            Ok(false)
        })?;
        Ok(out)
    }

    /// The first row of a query that always returns one (an aggregate, `RETURNING` of a row
    /// known to exist); none is [`Error::Corrupt`].
    pub(crate) fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, params, map)?.ok_or_else(|| {
            let first = sql.split_whitespace().take(8).collect::<Vec<_>>().join(" ");
            Error::Corrupt(format!("no row where one must be: {first} …"))
        })
    }

    /// Column 0 of the first row, or `None`.
    pub(crate) fn value<T: Column>(&self, sql: &str, params: &[&dyn Param]) -> Result<Option<T>> {
        self.query_opt(sql, params, |row| row.get(0))
    }

    /// Runs `first`, a write that returns one column (`… RETURNING x`), then `then`, a
    /// statement that reads the values it returned as the table `prev (value)`; `each` gets
    /// every row `then` returns. Where the backend can, the two are one statement
    /// (PostgreSQL: `WITH prev (value) AS (first) then`, one round trip); elsewhere two, the
    /// values passed on as parameters. `first` takes the parameters `?1` to `?k`, `then` any
    /// of `params`. `then` must not read what `first` wrote except through `prev`: in one
    /// statement it reads the tables as they were before it.
    pub(crate) fn write_then(
        &self,
        first: &str,
        then: &str,
        params: &[&dyn Param],
        mut each: impl FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(conn) => {
                let mut values: Vec<rusqlite::types::Value> = Vec::new();
                {
                    let mut stmt = conn.prepare_cached(first)?;
                    let count = stmt.parameter_count();
                    let mut rows = stmt.query(rusqlite::params_from_iter(
                        params.iter().take(count).map(|p| p.value()),
                    ))?;
                    while let Some(row) = rows.next()? {
                        values.push(row.get(0)?);
                    }
                }
                let prev = match values.len() {
                    0 => "SELECT NULL WHERE 0".to_string(),
                    n => {
                        let rows: Vec<String> = (1..=n)
                            .map(|i| format!("(?{})", params.len() + i))
                            .collect();
                        format!("VALUES {}", rows.join(", "))
                    }
                };
                let sql = format!("WITH prev (value) AS ({prev}) {then}");
                let mut stmt = conn.prepare_cached(&sql)?;
                let given: Vec<_> = params.iter().map(|p| p.value()).collect();
                let bound = given
                    .iter()
                    .map(|v| v as &dyn rusqlite::ToSql)
                    .chain(values.iter().map(|v| v as &dyn rusqlite::ToSql));
                let mut rows = stmt.query(rusqlite::params_from_iter(bound))?;
                while let Some(row) = rows.next()? {
                    each(&Row::new(row))?;
                }
                Ok(())
            }
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => self.query_each(
                &format!("WITH prev (value) AS ({first}) {then}"),
                params,
                each,
            ),
        }
    }

    /// Inserts `rows` with as few statements as the parameter limit allows: `{insert} VALUES
    /// {row}, {row}, … {tail}`, where `row` is one row's tuple with placeholders `?1` to `?W`
    /// (renumbered for each row) and `tail` what follows the rows (`ON CONFLICT …`,
    /// `RETURNING …`), neither with placeholders of its own. `each` gets every row returned.
    /// On a server a batch is one round trip instead of one per row.
    pub(crate) fn insert_rows<const W: usize>(
        &self,
        insert: &str,
        row: &str,
        tail: &str,
        rows: &[[&dyn Param; W]],
        mut each: impl FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        // SQLite's lowest limit of parameters per statement, which every build allows.
        const MAX_PARAMS: usize = 999;
        for chunk in rows.chunks((MAX_PARAMS / W.max(1)).max(1)) {
            let tuples: Vec<String> = (0..chunk.len()).map(|i| renumber(row, i * W)).collect();
            let sql = format!("{insert} VALUES {} {tail}", tuples.join(", "));
            let params: Vec<&dyn Param> = chunk.iter().flatten().copied().collect();
            self.query_each(&sql, &params, &mut each)?;
        }
        Ok(())
    }
}

/// `sql` with each placeholder `?n` made `?(n + by)`.
fn renumber(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('?') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// Locking: who locks what, in which order, and why it is free on SQLite.
///
/// A SQLite write is `BEGIN IMMEDIATE`: from its first statement to its commit it is the
/// file's only writer, so nothing it reads can change under it and every method below does
/// nothing there. On PostgreSQL writers run side by side (`READ COMMITTED`), so a write locks
/// what it is about to change before it reads it, and holds the locks until it commits or
/// rolls back:
/// - one session: its `sessions` row. Every write of a session's history first reads that
///   row through `heads::current_of` or with its lineage (`lineage::segments_with`), which
///   run their query [`Tx::locked`]; other writes call
///   [`Tx::lock_session`] before they read anything of the session. Writers of one session
///   take turns, writers of different sessions run in parallel.
/// - a row of another table that a write reads and then changes (a streamed reply's): the
///   read is [`Tx::locked`].
/// - several sessions ([`Tx::lock_session_and_forks`], [`Tx::lock_sessions`],
///   [`Tx::lock_all_sessions`]): their rows in ascending id order, the order every write of
///   several sessions takes them in, so no two such writes deadlock; sessions before the
///   version clock's row, which a deletion raises.
/// - a name that may have no row yet (a lease): [`Tx::lock_key`].
/// - everything, for a write that replaces the whole contents: [`Tx::lock_all_tables`];
///   other writers wait, readers go on reading the old contents.
///
/// A read transaction locks nothing on either backend: it changes nothing.
impl<'t> Tx<'t> {
    /// Whether this transaction locks what it changes: a write on PostgreSQL.
    #[cfg(feature = "postgres")]
    fn locks(&self) -> bool {
        matches!(self.inner, Inner::Postgres(_)) && self.write
    }

    /// The PostgreSQL transaction of a write, the one kind that locks.
    #[cfg(feature = "postgres")]
    fn locker(&self) -> Option<std::cell::RefMut<'_, PgTx<'t>>> {
        match &self.inner {
            Inner::Postgres(tx) if self.write => Some(tx.borrow_mut()),
            _ => None,
        }
    }

    /// `select`, a query of rows this write is about to change, as it must run here: with a
    /// row lock where writers run side by side.
    pub(crate) fn locked<'s>(&self, select: &'s str) -> Cow<'s, str> {
        #[cfg(feature = "postgres")]
        if self.locks() {
            return Cow::Owned(format!("{select}{}", postgres::dialect::ROW_LOCK));
        }
        Cow::Borrowed(select)
    }

    /// Locks session `id`, before anything of it is read. A missing session locks nothing.
    pub(crate) fn lock_session(&self, id: &str) -> Result<()> {
        #[cfg(feature = "postgres")]
        if let Some(mut tx) = self.locker() {
            return postgres::dialect::lock_session(&mut tx, id);
        }
        let _ = id;
        Ok(())
    }

    /// Locks session `id` and every session forked from it (whose parent link a deletion
    /// clears), in id order.
    pub(crate) fn lock_session_and_forks(&self, id: &str) -> Result<()> {
        #[cfg(feature = "postgres")]
        if let Some(mut tx) = self.locker() {
            return postgres::dialect::lock_session_and_forks(&mut tx, id);
        }
        let _ = id;
        Ok(())
    }

    /// Locks the sessions `ids`, in id order, and returns those that exist; `None` where
    /// this transaction needs no lock (a SQLite write, any read): nothing can change under it.
    pub(crate) fn lock_sessions(&self, ids: &[&str]) -> Result<Option<Vec<String>>> {
        #[cfg(feature = "postgres")]
        if let Some(mut tx) = self.locker() {
            return postgres::dialect::lock_sessions(&mut tx, ids).map(Some);
        }
        let _ = ids;
        Ok(None)
    }

    /// Locks every session, in id order: for a write over the whole database.
    pub(crate) fn lock_all_sessions(&self) -> Result<()> {
        #[cfg(feature = "postgres")]
        if let Some(mut tx) = self.locker() {
            return postgres::dialect::lock_all_sessions(&mut tx);
        }
        Ok(())
    }

    /// Locks every table against other writers: for a write that replaces the whole
    /// contents.
    pub(crate) fn lock_all_tables(&self) -> Result<()> {
        #[cfg(feature = "postgres")]
        if let Some(mut tx) = self.locker() {
            return postgres::dialect::lock_all_tables(&mut tx);
        }
        Ok(())
    }

    /// Locks `name` among the names of `kind` (`"lease"`, a session id), which need not be
    /// any row's: two writes of one name take turns even while the row they look for does not
    /// exist yet.
    pub(crate) fn lock_key(&self, kind: &str, name: &str) -> Result<()> {
        #[cfg(feature = "postgres")]
        if let Some(mut tx) = self.locker() {
            return postgres::dialect::lock_key(&mut tx, kind, name);
        }
        let _ = (kind, name);
        Ok(())
    }
}

/// What is done differently, not only spelled differently: each method does what its name
/// says the way the backend at hand does it.
impl Tx<'_> {
    /// The name of the function that returns the largest of its arguments (SQLite's
    /// two-argument `max`, PostgreSQL's `GREATEST`), to write into a statement.
    pub(crate) fn greatest(&self) -> &'static str {
        match self.dialect() {
            Dialect::Sqlite => sqlite::dialect::GREATEST,
            #[cfg(feature = "postgres")]
            Dialect::Postgres => postgres::dialect::GREATEST,
        }
    }

    /// The highest id `table` has handed out, deleted rows included.
    pub(crate) fn id_counter(&self, table: &str) -> Result<i64> {
        match &self.inner {
            Inner::Sqlite(conn) => sqlite::dialect::id_counter(conn, table),
            #[cfg(feature = "postgres")]
            Inner::Postgres(tx) => postgres::dialect::id_counter(&mut tx.borrow_mut(), table),
        }
    }

    /// Moves `table`'s id counter to `used`: the next id is above it.
    pub(crate) fn set_id_counter(&self, table: &str, used: i64) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(conn) => sqlite::dialect::set_id_counter(conn, table, used),
            #[cfg(feature = "postgres")]
            Inner::Postgres(tx) => {
                postgres::dialect::set_id_counter(&mut tx.borrow_mut(), table, used)
            }
        }
    }

    /// After rows of `table` were inserted with their ids given: the next id continues above
    /// them. SQLite does that by itself (a rowid table takes the largest plus one,
    /// AUTOINCREMENT records what is inserted); PostgreSQL's identity sequence does not.
    pub(crate) fn sync_id_counter(&self, table: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(conn) => sqlite::dialect::sync_id_counter(conn, table),
            #[cfg(feature = "postgres")]
            Inner::Postgres(tx) => postgres::dialect::sync_id_counter(&mut tx.borrow_mut(), table),
        }
    }

    /// Foreign keys are checked at commit from here on where the backend can (SQLite);
    /// PostgreSQL checks each statement, so the caller orders its statements to pass either
    /// way.
    pub(crate) fn defer_foreign_keys(&self) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(conn) => sqlite::dialect::defer_foreign_keys(conn),
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => Ok(()),
        }
    }

    /// What the database engine itself finds wrong with its storage, one line per problem:
    /// SQLite's integrity and foreign key checks. Nothing on PostgreSQL, whose server checks
    /// its pages and enforces foreign keys itself.
    pub(crate) fn integrity_problems(&self) -> Result<Vec<String>> {
        match &self.inner {
            Inner::Sqlite(conn) => sqlite::dialect::integrity_problems(conn),
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => Ok(Vec::new()),
        }
    }

    /// Runs `op` in this write so that what it deletes is overwritten where the backend can
    /// (SQLite's `secure_delete`). On PostgreSQL a deleted row stays until the `VACUUM` of the
    /// store's `erase_securely`.
    pub(crate) fn erasing<T>(&self, op: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        match &self.inner {
            Inner::Sqlite(conn) => {
                sqlite::dialect::secure_delete(conn, true)?;
                let result = op(self);
                // Pooled connections are reused: only `op` pays for zeroing.
                sqlite::dialect::secure_delete(conn, false)?;
                result
            }
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => op(self),
        }
    }

    /// Whether the full-text index exists. SQLite's is built by the first search;
    /// PostgreSQL's is a GIN index of the schema, always there.
    pub(crate) fn search_index_exists(&self) -> Result<bool> {
        match &self.inner {
            Inner::Sqlite(conn) => sqlite::dialect::search_index_exists(conn),
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => Ok(true),
        }
    }

    /// Builds the full-text index, indexing every message stored; from then on every writer
    /// keeps it current in its own transaction. Only where it does not exist yet.
    pub(crate) fn build_search_index(&self) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(conn) => sqlite::dialect::build_search_index(conn),
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => Ok(()),
        }
    }

    /// Drops a full-text index that is built on demand, for a write that replaces every
    /// message: the next search builds it again. PostgreSQL's GIN index follows the rows.
    pub(crate) fn drop_search_index(&self) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(conn) => sqlite::dialect::drop_search_index(conn),
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => Ok(()),
        }
    }

    /// After deleting messages to erase them: writes the full-text index again from what
    /// remains, so no term of the deleted text survives in it (SQLite's FTS5 only marks
    /// deletions). On PostgreSQL the index's dead entries go with the rows' `VACUUM`.
    pub(crate) fn rewrite_search_index(&self) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(conn) => sqlite::dialect::rewrite_search_index(conn),
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => Ok(()),
        }
    }
}

/// What a checkpoint did with the store's write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checkpoint {
    /// The store has no WAL of its own (a server's is not ours to truncate).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    NoWal,
    /// Every page went into the file and the WAL is empty.
    Truncated,
    /// A reader of an old snapshot kept the WAL from being truncated; old page images may
    /// remain in it until a later checkpoint succeeds.
    Kept,
}

/// Tells a watcher cheaply that something committed to the store, on a connection of its
/// own. Only SQLite has such a counter (`PRAGMA data_version`); on PostgreSQL a watcher reads
/// the session's version through the store each time.
pub(crate) struct ChangeSignal(DataVersion);

impl ChangeSignal {
    pub(crate) fn open(path: &std::path::Path) -> Result<ChangeSignal> {
        Ok(ChangeSignal(DataVersion::open(path)?))
    }

    /// Whether anything committed since the last call (always, the first time).
    pub(crate) fn moved(&mut self) -> Result<bool> {
        self.0.moved()
    }

    /// Runs `op` in one read transaction on the signal's connection.
    pub(crate) fn read<T>(&mut self, op: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .0
            .connection()
            .transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
        let value = op(&Tx::sqlite(&tx, false));
        tx.finish()?;
        value
    }
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn renumber_moves_every_placeholder_of_a_row() {
        assert_eq!(
            renumber("(?1, ?2, (SELECT max(id) FROM t), ?10)", 20),
            "(?21, ?22, (SELECT max(id) FROM t), ?30)"
        );
        assert_eq!(renumber("(?1, ?)", 0), "(?1, ?)");
    }
}
