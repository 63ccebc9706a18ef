//! The storage interface: the one way the logic talks to a database. Every module writes its
//! SQL against [`Tx`], which runs it on SQLite or, with the `postgres` feature, on PostgreSQL.
//!
//! SQL is written once where both databases accept it, with `?1`, `?2` … placeholders (turned
//! into `$1`, `$2` … for PostgreSQL). Where they differ, [`Tx::pick`] chooses the text for the
//! backend at hand, so each difference sits beside the statement it concerns.
//!
//! Rules that keep one text valid on both:
//! - every integer column is 64-bit (`BIGINT` on PostgreSQL) and is read as `i64`;
//! - a parameter whose type the statement does not fix (a selected constant, an argument of
//!   `coalesce`) is written `CAST(?1 AS BIGINT)` or `CAST(?1 AS TEXT)`;
//! - no two-argument `min`/`max` (PostgreSQL has `LEAST`/`GREATEST`), no `json_each`, no
//!   `INSERT OR …`: use [`Tx::pick`] or `ON CONFLICT`;
//! - `RETURNING` instead of `last_insert_rowid()`.
//! - JSON text given to a `jsonb` function goes through text, `CAST(CAST(?1 AS TEXT) AS JSONB)`:
//!   `CAST(?1 AS JSONB)` alone makes PostgreSQL expect a `jsonb` parameter and refuse a string.

pub(crate) use crate::db::value::{args, Column, Param, Row};
use crate::error::{Error, Result};

/// Which database a transaction runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
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
    Postgres(
        &'a std::cell::RefCell<crate::db::postgres::PgTx<'t>>,
        &'a str,
    ),
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
    Postgres(std::cell::RefCell<crate::db::postgres::PgTx<'t>>),
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
    pub(crate) fn postgres(tx: crate::db::postgres::PgTx<'t>, write: bool) -> Tx<'t> {
        Tx {
            inner: Inner::Postgres(std::cell::RefCell::new(tx)),
            write,
        }
    }

    /// What a write adds to the `SELECT` of a session row it is about to change: on
    /// PostgreSQL a row lock, so writers of one session take turns while writers of different
    /// sessions run in parallel; nothing on SQLite, where `BEGIN IMMEDIATE` already made this
    /// transaction the only writer.
    pub(crate) fn lock_clause(&self) -> &'static str {
        match self.dialect() {
            Dialect::Sqlite => "",
            #[cfg(feature = "postgres")]
            Dialect::Postgres if self.write => " FOR NO KEY UPDATE",
            #[cfg(feature = "postgres")]
            Dialect::Postgres => "",
        }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn into_postgres(self) -> Option<crate::db::postgres::PgTx<'t>> {
        match self.inner {
            Inner::Postgres(tx) => Some(tx.into_inner()),
            Inner::Sqlite(_) => None,
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            Inner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// What the full-text match of a search takes for the caller's FTS5 `query`: the query
    /// itself on SQLite; on PostgreSQL its `tsquery` (see
    /// [`crate::db::postgres::fts5_to_tsquery`]), or [`Error::InvalidInput`] if it has none.
    pub(crate) fn text_query<'q>(&self, query: &'q str) -> Result<std::borrow::Cow<'q, str>> {
        match self.dialect() {
            Dialect::Sqlite => Ok(std::borrow::Cow::Borrowed(query)),
            #[cfg(feature = "postgres")]
            Dialect::Postgres => Ok(crate::db::postgres::fts5_to_tsquery(query)?.into()),
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
}
