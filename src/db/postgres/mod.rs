//! PostgreSQL: pooled clients, transactions with a per-connection statement cache, and the
//! mapping of its errors. The logic above runs unchanged through [`crate::db::sql::Tx`];
//! what PostgreSQL does differently for it (locks, id sequences, `VACUUM`) is in [`dialect`].

pub(crate) mod dialect;
mod inline;
mod tsquery;

pub(crate) use tsquery::fts5_to_tsquery;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, NoTls, Statement};

use crate::db::pool::Open;
use crate::db::value::{Kind, Param, ReadRow, Value};
use crate::error::{Error, Result};
use crate::model::Role;

/// The migrations, embedded at build time; entry `i` moves the schema from `i` to `i + 1`.
/// Same rules as SQLite's: this list only grows, released files are never edited.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_init.sql"),
    include_str!("../../../migrations/postgres/0002_developer_role.sql"),
    include_str!("../../../migrations/postgres/0003_usage_records.sql"),
    include_str!("../../../migrations/postgres/0004_checkpoints.sql"),
];

/// The PostgreSQL schema version this build writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock every migrating host takes: sessiondb's application id.
const MIGRATION_LOCK: i64 = super::APPLICATION_ID as i64;

/// Opens connections to one server and database.
pub(crate) struct PgOpener {
    pub config: Config,
    /// Shown in errors instead of the URL, which may hold a password.
    pub display: String,
    /// How long a statement waits for a lock: the store's busy timeout.
    lock_timeout_ms: u128,
    /// `?pgbouncer=true`: no named prepared statements.
    unnamed: bool,
}

impl PgOpener {
    /// Parses `url`. Everything a connection needs set is set inside each transaction
    /// (`SET LOCAL`), never in the server session, so a transaction-mode pooler may hand
    /// each transaction to another server connection. `?pgbouncer=true` (sessiondb's own
    /// parameter, taken out before the URL reaches the driver) also sends every statement
    /// unprepared, for poolers that cannot carry prepared statements between server
    /// connections (PgBouncer before 1.21, or without `max_prepared_statements`).
    pub(crate) fn new(url: &str, busy_timeout: Duration) -> Result<PgOpener> {
        let (url_for_driver, unnamed) = take_pgbouncer(url)?;
        let mut config: Config = url_for_driver.parse().map_err(|e| {
            Error::invalid(format!(
                "{}: not a PostgreSQL connection URL: {e}",
                redact(url)
            ))
        })?;
        if config.get_application_name().is_none() {
            config.application_name("sessiondb");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        Ok(PgOpener {
            config,
            display: redact(url),
            lock_timeout_ms: busy_timeout.as_millis().max(1),
            unnamed,
        })
    }

    /// Whether the database holds a sessiondb schema (of any version).
    pub(crate) fn is_sessiondb(&self) -> Result<bool> {
        Ok(schema_version(&mut self.connect()?)? > 0)
    }

    fn connect(&self) -> Result<Client> {
        self.config.connect(NoTls).map_err(|e| {
            Error::Pool(format!(
                "{}: cannot connect: {}",
                self.display,
                crate::error::postgres_reason(&e)
            ))
        })
    }

    /// Brings the database to [`SCHEMA_VERSION`]. A current database is only read. Otherwise
    /// one transaction takes an advisory lock and reads the version again inside it, so many
    /// hosts starting at once all succeed: the first migrates, the others wait and find it
    /// done. Returns the version found if it is newer than this build. Statements here are
    /// unprepared whatever the URL says: this runs once per open.
    pub(crate) fn migrate(&self, read_only: bool) -> Result<Option<i64>> {
        let mut client = self.connect()?;
        let found = schema_version(&mut client)?;
        if found == SCHEMA_VERSION {
            return Ok(None);
        }
        if found > SCHEMA_VERSION {
            return Ok(Some(found));
        }
        if read_only {
            return Err(Error::ReadOnly {
                path: PathBuf::from(&self.display),
                reason: format!(
                    "the database is at schema {found}, this build needs {SCHEMA_VERSION}, \
                     and a read-only store does not migrate"
                ),
            });
        }
        let mut tx = client.transaction()?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = {}; SET LOCAL client_min_messages = warning;",
            self.lock_timeout_ms
        ))?;
        tx.query_typed(
            "SELECT pg_advisory_xact_lock($1)",
            &[(&MIGRATION_LOCK, Type::INT8)],
        )?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS sessiondb_schema (
                 id BIGINT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL);
             INSERT INTO sessiondb_schema (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING;",
        )?;
        let found: i64 = tx
            .query_typed_one("SELECT version FROM sessiondb_schema WHERE id = 1", &[])?
            .get(0);
        if found > SCHEMA_VERSION {
            return Ok(Some(found));
        }
        for sql in MIGRATIONS.iter().skip(found.max(0) as usize) {
            tx.batch_execute(sql)?;
        }
        tx.query_typed(
            "UPDATE sessiondb_schema SET version = $1 WHERE id = 1",
            &[(&SCHEMA_VERSION, Type::INT8)],
        )?;
        tx.commit()?;
        Ok(None)
    }
}

/// `url` without sessiondb's `pgbouncer` parameter, and whether it was `true`.
fn take_pgbouncer(url: &str) -> Result<(String, bool)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), false));
    };
    let mut unnamed = false;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("pgbouncer", value)) => {
                unnamed = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => {
                        return Err(Error::invalid(format!(
                            "{}: pgbouncer={other}: expected true or false",
                            redact(url)
                        )))
                    }
                };
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, unnamed))
}

/// The schema version of the database `client` is connected to; 0 for an empty one.
fn schema_version(client: &mut Client) -> Result<i64> {
    let exists: bool = client
        .query_typed_one("SELECT to_regclass('sessiondb_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_typed_opt("SELECT version FROM sessiondb_schema WHERE id = 1", &[])?
        .map_or(0, |r| r.get(0)))
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

impl Open for PgOpener {
    type Conn = PgConn;
    fn open(&self) -> Result<PgConn> {
        Ok(PgConn {
            client: Closing(Some(self.connect()?)),
            statements: HashMap::new(),
            lock_timeout_ms: self.lock_timeout_ms,
            unnamed: self.unnamed,
        })
    }
    fn reusable(conn: &PgConn) -> bool {
        !conn.client.is_closed()
    }
}

/// One server connection and the statements prepared on it.
pub(crate) struct PgConn {
    pub client: Closing,
    statements: HashMap<String, Statement>,
    lock_timeout_ms: u128,
    unnamed: bool,
}

/// A client that closes on a thread of its own. The driver closes a connection by blocking
/// on its own tokio runtime, which panics on a thread that is running another runtime: a
/// store dropped inside an async function (the last clone of an `AsyncStore`, the MCP
/// server's) would abort the program.
pub(crate) struct Closing(Option<Client>);

impl std::ops::Deref for Closing {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.0
            .as_ref()
            .expect("a client is taken only when it is dropped")
    }
}

impl std::ops::DerefMut for Closing {
    fn deref_mut(&mut self) -> &mut Client {
        self.0
            .as_mut()
            .expect("a client is taken only when it is dropped")
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        let Some(client) = self.0.take() else { return };
        let (send, receive) = std::sync::mpsc::channel::<Client>();
        match std::thread::Builder::new().spawn(move || drop(receive.recv())) {
            Ok(closer) => {
                let _ = send.send(client);
                let _ = closer.join();
            }
            // No thread to close it on: leave the socket to the process's end (the server
            // ends the session when it sees the socket close) rather than risk the panic.
            Err(_) => std::mem::forget(client),
        }
    }
}

/// An open transaction on a [`PgConn`], or, for a read of one statement, none: a single
/// statement sees one snapshot by itself, and BEGIN and COMMIT would cost two more round
/// trips. A transaction not committed is rolled back when this is dropped, before the
/// connection goes back to the pool.
///
/// `BEGIN` waits for the transaction's first statement. A locked read goes with it, in one
/// simple-query batch (its values written into its text, see [`inline`]): one round trip
/// instead of two. Any other statement is sent after it, prepared as ever. A transaction
/// that runs no statement sends nothing at all.
pub(crate) struct PgTx<'t> {
    conn: &'t mut PgConn,
    /// `BEGIN` and the transaction's settings, until the first statement takes them along.
    begin: Option<String>,
    open: bool,
    /// A read-write transaction: a commit lost on the way may have stored something.
    writes: bool,
}

/// A row as the server sent it: by the driver's typed protocol, or as text in the batch
/// that began the transaction.
pub(crate) enum PgRow {
    Typed(postgres::Row),
    Text(inline::TextRow),
}

impl<'t> PgTx<'t> {
    /// Begins a transaction, its lock timeout included; both go to the server with the first
    /// statement. A read sees one snapshot, as on SQLite; a write locks the session rows it
    /// changes first and reads the rest at the start of each statement.
    pub(crate) fn begin(conn: &'t mut PgConn, read_only: bool) -> Result<PgTx<'t>> {
        let begin = if read_only {
            "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
        } else {
            "START TRANSACTION ISOLATION LEVEL READ COMMITTED"
        };
        let sql = format!(
            "{begin}; SET LOCAL lock_timeout = {};",
            conn.lock_timeout_ms
        );
        Ok(PgTx {
            conn,
            begin: Some(sql),
            open: false,
            writes: !read_only,
        })
    }

    /// No transaction: for a caller that runs one statement only.
    pub(crate) fn single_statement(conn: &'t mut PgConn) -> PgTx<'t> {
        PgTx {
            conn,
            begin: None,
            open: false,
            writes: false,
        }
    }

    /// Commits. A write whose COMMIT got no answer from the server is
    /// [`Error::CommitOutcomeUnknown`], not a generic error: the caller must not take it
    /// for "nothing was written".
    pub(crate) fn commit(mut self) -> Result<()> {
        if self.open {
            self.open = false;
            if let Err(err) = self.conn.client.batch_execute("COMMIT") {
                if self.writes && commit_outcome_unknown(&err) {
                    return Err(Error::CommitOutcomeUnknown {
                        reason: err.to_string(),
                    });
                }
                return Err(err.into());
            }
        }
        Ok(())
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(statement) = self.conn.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.conn.client.prepare(&placeholders(sql))?;
        self.conn
            .statements
            .insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Whether `sql`, about to run, goes with the transaction's `BEGIN`; if the transaction
    /// has not begun and it does not, begins it first. Only a read ending in a row lock goes
    /// along: it reads rows by key, cheap to plan, while a statement in the batch is planned
    /// every time, which for the lineage read costs more than the round trip it saves
    /// (measured). Every write reads its session so first (`heads::current_of`,
    /// `Tx::lock_session`).
    fn begin_with(&mut self, sql: &str) -> Result<bool> {
        if self.begin.is_none() {
            return Ok(false);
        }
        if sql.trim_end().ends_with(dialect::ROW_LOCK.trim()) {
            return Ok(true);
        }
        let begin = self.begin.take().unwrap_or_default();
        self.open = true;
        self.conn.client.batch_execute(&begin)?;
        Ok(false)
    }

    /// Runs `sql` with `params` written into it, after the transaction's `BEGIN`, in one
    /// batch; returns its rows and how many rows it changed.
    fn first(&mut self, sql: &str, params: &[&dyn Param]) -> Result<(Vec<PgRow>, u64)> {
        let statement = inline::with_values(sql, &values(params))?;
        let begin = self.begin.take().unwrap_or_default();
        // From here on the transaction may be open, and is rolled back if anything fails.
        self.open = true;
        let messages = self
            .conn
            .client
            .simple_query(&format!("{begin} {} {statement}", inline::TEXT_OUTPUT))?;
        let mut rows = Vec::new();
        let mut changed = 0;
        for message in messages {
            match message {
                postgres::SimpleQueryMessage::Row(row) => {
                    rows.push(PgRow::Text(inline::TextRow(row)))
                }
                postgres::SimpleQueryMessage::CommandComplete(n) => changed = n,
                _ => {}
            }
        }
        Ok((rows, changed))
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<usize> {
        if self.begin_with(sql)? {
            return Ok(self.first(sql, params)?.1 as usize);
        }
        if self.conn.unnamed {
            let values = values(params);
            let mut rows = self
                .conn
                .client
                .query_typed_raw(&placeholders(sql), values.iter().map(bound))?;
            while rows.next()?.is_some() {}
            return Ok(rows.rows_affected().unwrap_or(0) as usize);
        }
        let statement = self.statement(sql)?;
        let values = values(params);
        let values: Vec<_> = values.iter().map(|v| bound(v).0).collect();
        Ok(self.conn.client.execute(&statement, &values)? as usize)
    }

    pub(crate) fn query(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Vec<PgRow>> {
        if self.begin_with(sql)? {
            return Ok(self.first(sql, params)?.0);
        }
        let rows = if self.conn.unnamed {
            let values = values(params);
            let params: Vec<_> = values.iter().map(bound).collect();
            self.conn.client.query_typed(&placeholders(sql), &params)?
        } else {
            let statement = self.statement(sql)?;
            let values = values(params);
            let values: Vec<_> = values.iter().map(|v| bound(v).0).collect();
            self.conn.client.query(&statement, &values)?
        };
        Ok(rows.into_iter().map(PgRow::Typed).collect())
    }

    pub(crate) fn batch(&mut self, sql: &str) -> Result<()> {
        if let Some(begin) = self.begin.take() {
            self.open = true;
            return Ok(self.conn.client.batch_execute(&format!("{begin} {sql}"))?);
        }
        Ok(self.conn.client.batch_execute(sql)?)
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // A broken connection fails this too, and the pool drops it as not reusable.
            let _ = self.conn.client.batch_execute("ROLLBACK");
        }
    }
}

/// Whether `err`, the failure of a COMMIT, leaves open whether the transaction committed.
/// An error the server sent for the COMMIT itself (a serialization failure, a deferred
/// constraint) means it rolled back. But no answer at all (the connection closed, an I/O
/// error) or a FATAL/PANIC (the server ending the session, as `pg_terminate_backend` does,
/// possibly after the commit record was written) or a connection error a pooler sends for
/// a server connection it lost (class 08) says nothing about the commit.
fn commit_outcome_unknown(err: &postgres::Error) -> bool {
    use postgres::error::Severity;
    let Some(db) = err.as_db_error() else {
        return true;
    };
    matches!(
        db.parsed_severity(),
        Some(Severity::Fatal) | Some(Severity::Panic)
    ) || db.code().code().starts_with("08")
}

/// The parameters' values, which [`bound`] hands to the driver.
fn values<'p>(params: &[&'p dyn Param]) -> Vec<Value<'p>> {
    params.iter().map(|&p| p.value()).collect()
}

/// A value as the driver binds it, and the type PostgreSQL is told the placeholder has when
/// a statement is sent unprepared (behind a transaction-mode pooler), so the server need not
/// be asked first. Each value is bound by the driver's conversion of its Rust type, which
/// also checks it against the placeholder's type in a prepared statement.
fn bound<'v>(value: &'v Value<'_>) -> (&'v (dyn ToSql + Sync), Type) {
    match value {
        Value::Null(Kind::Int64) => (&None::<i64>, Type::INT8),
        Value::Null(Kind::Int32) => (&None::<i32>, Type::INT4),
        Value::Null(Kind::Float64) => (&None::<f64>, Type::FLOAT8),
        Value::Null(Kind::Bool) => (&None::<bool>, Type::BOOL),
        Value::Null(Kind::Text) => (&None::<&str>, Type::TEXT),
        Value::Null(Kind::Blob) => (&None::<&[u8]>, Type::BYTEA),
        Value::Int64(v) => (v, Type::INT8),
        Value::Int32(v) => (v, Type::INT4),
        Value::Float64(v) => (v, Type::FLOAT8),
        Value::Bool(v) => (v, Type::BOOL),
        Value::Text(v) => (v, Type::TEXT),
        Value::Blob(v) => (v, Type::BYTEA),
    }
}

/// Integers: SQLite's are all 64-bit; PostgreSQL's expressions may be narrower (`length()`
/// is `integer`), so any integer width is read.
fn integer(row: &postgres::Row, index: usize) -> Result<Option<i64>> {
    let ty = row.columns().get(index).map(|c| c.type_().clone());
    Ok(match ty {
        Some(Type::INT4) => row.try_get::<_, Option<i32>>(index)?.map(i64::from),
        Some(Type::INT2) => row.try_get::<_, Option<i16>>(index)?.map(i64::from),
        Some(Type::BOOL) => row.try_get::<_, Option<bool>>(index)?.map(i64::from),
        _ => row.try_get::<_, Option<i64>>(index)?,
    })
}

/// Floats: SQLite hands back an integer for a `REAL` that holds one; PostgreSQL's `float8`.
fn float(row: &postgres::Row, index: usize) -> Result<Option<f64>> {
    let ty = row.columns().get(index).map(|c| c.type_().clone());
    Ok(match ty {
        Some(Type::FLOAT4) => row.try_get::<_, Option<f32>>(index)?.map(f64::from),
        Some(Type::INT8 | Type::INT4 | Type::INT2) => integer(row, index)?.map(|v| v as f64),
        _ => row.try_get::<_, Option<f64>>(index)?,
    })
}

fn null_column(row: &postgres::Row, index: usize) -> Error {
    let name = row.columns().get(index).map_or("?", |c| c.name());
    Error::Corrupt(format!("column {name} is unexpectedly NULL"))
}

impl ReadRow for PgRow {
    fn int64(&self, index: usize) -> Result<i64> {
        self.read().int64(index)
    }
    fn int64_opt(&self, index: usize) -> Result<Option<i64>> {
        self.read().int64_opt(index)
    }
    fn float64(&self, index: usize) -> Result<f64> {
        self.read().float64(index)
    }
    fn float64_opt(&self, index: usize) -> Result<Option<f64>> {
        self.read().float64_opt(index)
    }
    fn boolean(&self, index: usize) -> Result<bool> {
        self.read().boolean(index)
    }
    fn text(&self, index: usize) -> Result<String> {
        self.read().text(index)
    }
    fn text_opt(&self, index: usize) -> Result<Option<String>> {
        self.read().text_opt(index)
    }
    fn blob(&self, index: usize) -> Result<Vec<u8>> {
        self.read().blob(index)
    }
    fn blob_opt(&self, index: usize) -> Result<Option<Vec<u8>>> {
        self.read().blob_opt(index)
    }
    fn role(&self, index: usize) -> Result<Role> {
        self.read().role(index)
    }
}

impl PgRow {
    fn read(&self) -> &dyn ReadRow {
        match self {
            PgRow::Typed(row) => row,
            PgRow::Text(row) => row,
        }
    }
}

impl ReadRow for postgres::Row {
    fn int64(&self, index: usize) -> Result<i64> {
        integer(self, index)?.ok_or_else(|| null_column(self, index))
    }
    fn int64_opt(&self, index: usize) -> Result<Option<i64>> {
        integer(self, index)
    }
    fn float64(&self, index: usize) -> Result<f64> {
        float(self, index)?.ok_or_else(|| null_column(self, index))
    }
    fn float64_opt(&self, index: usize) -> Result<Option<f64>> {
        float(self, index)
    }
    fn boolean(&self, index: usize) -> Result<bool> {
        Ok(self.int64(index)? != 0)
    }
    fn text(&self, index: usize) -> Result<String> {
        Ok(self.try_get(index)?)
    }
    fn text_opt(&self, index: usize) -> Result<Option<String>> {
        Ok(self.try_get(index)?)
    }
    fn blob(&self, index: usize) -> Result<Vec<u8>> {
        Ok(self.try_get(index)?)
    }
    fn blob_opt(&self, index: usize) -> Result<Option<Vec<u8>>> {
        Ok(self.try_get(index)?)
    }
    fn role(&self, index: usize) -> Result<Role> {
        self.text(index)?
            .parse()
            .map_err(|e: Error| Error::Corrupt(e.to_string()))
    }
}

/// SQLite's `?1` placeholders as PostgreSQL's `$1`, outside string literals and quoted
/// names.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{placeholders, redact};

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example:5432/sessions?sslmode=disable"),
            "postgres://app@db.example:5432/sessions?sslmode=disable"
        );
        assert_eq!(
            redact("postgresql:///sessions?host=/run/pg"),
            "postgresql:///sessions?host=/run/pg"
        );
    }

    #[test]
    fn placeholders_are_renumbered_outside_literals_only() {
        assert_eq!(
            placeholders("SELECT '?1', \"a?2\", x FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', \"a?2\", x FROM t WHERE a = $1 AND b = $12"
        );
    }
}
