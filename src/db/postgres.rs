//! PostgreSQL: pooled clients, transactions with a per-connection statement cache, and the
//! mapping of its errors. The logic above runs unchanged through [`crate::db::sql::Tx`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, Config, NoTls, Statement, Transaction};

use crate::db::pool::Open;
use crate::db::sql::Param;
use crate::error::{Error, Result};

/// The migrations, embedded at build time; entry `i` moves the schema from `i` to `i + 1`.
/// Same rules as SQLite's: this list only grows, released files are never edited.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/postgres/0001_init.sql")];

/// The PostgreSQL schema version this build writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock every migrating host takes: sessiondb's application id.
const MIGRATION_LOCK: i64 = super::APPLICATION_ID as i64;

/// Opens connections to one server and database.
pub(crate) struct PgOpener {
    pub config: Config,
    /// Shown in errors instead of the URL, which may hold a password.
    pub display: String,
}

impl PgOpener {
    /// Parses `url` and sets what every connection needs: `lock_timeout` is the store's busy
    /// timeout, so a writer waiting for a session's row lock gives up as [`Error::Busy`] just
    /// as it would on SQLite. Startup options, not `SET`s: nothing is left in the session for
    /// a transaction-mode pooler to carry over.
    pub(crate) fn new(url: &str, busy_timeout: Duration) -> Result<PgOpener> {
        let mut config: Config = url.parse().map_err(|e| {
            Error::invalid(format!(
                "{}: not a PostgreSQL connection URL: {e}",
                redact(url)
            ))
        })?;
        let millis = busy_timeout.as_millis().max(1);
        let mut options = config.get_options().map(str::to_string).unwrap_or_default();
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str(&format!(
            "-c lock_timeout={millis} -c client_min_messages=warning"
        ));
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("sessiondb");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        Ok(PgOpener {
            config,
            display: redact(url),
        })
    }

    /// Whether the database holds a sessiondb schema (of any version).
    pub(crate) fn is_sessiondb(&self) -> Result<bool> {
        Ok(schema_version(&mut self.connect()?)? > 0)
    }

    fn connect(&self) -> Result<Client> {
        self.config
            .connect(NoTls)
            .map_err(|e| Error::Pool(format!("{}: cannot connect: {e}", self.display)))
    }

    /// Brings the database to [`SCHEMA_VERSION`]. A current database is only read. Otherwise
    /// one transaction takes an advisory lock and reads the version again inside it, so many
    /// hosts starting at once all succeed: the first migrates, the others wait and find it
    /// done. Returns the version found if it is newer than this build.
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
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS sessiondb_schema (
                 id BIGINT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL);
             INSERT INTO sessiondb_schema (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING;",
        )?;
        let found: i64 = tx
            .query_one("SELECT version FROM sessiondb_schema WHERE id = 1", &[])?
            .get(0);
        if found > SCHEMA_VERSION {
            return Ok(Some(found));
        }
        for sql in MIGRATIONS.iter().skip(found.max(0) as usize) {
            tx.batch_execute(sql)?;
        }
        tx.execute(
            "UPDATE sessiondb_schema SET version = $1 WHERE id = 1",
            &[&SCHEMA_VERSION],
        )?;
        tx.commit()?;
        Ok(None)
    }
}

/// The schema version of the database `client` is connected to; 0 for an empty one.
fn schema_version(client: &mut Client) -> Result<i64> {
    let exists: bool = client
        .query_one("SELECT to_regclass('sessiondb_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_opt("SELECT version FROM sessiondb_schema WHERE id = 1", &[])?
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
            client: self.connect()?,
            statements: HashMap::new(),
        })
    }
    fn reusable(conn: &PgConn) -> bool {
        !conn.client.is_closed()
    }
}

/// One server connection and the statements prepared on it.
pub(crate) struct PgConn {
    pub client: Client,
    pub statements: HashMap<String, Statement>,
}

/// An open transaction on a [`PgConn`], or, for a read of one statement, none: a single
/// statement sees one snapshot by itself, and BEGIN and COMMIT would cost two more round
/// trips.
pub(crate) struct PgTx<'t> {
    on: On<'t>,
    statements: &'t mut HashMap<String, Statement>,
}

enum On<'t> {
    Transaction(Transaction<'t>),
    Statement(&'t mut Client),
}

macro_rules! on {
    ($self:ident, $c:ident => $body:expr) => {
        match &mut $self.on {
            On::Transaction($c) => $body,
            On::Statement($c) => $body,
        }
    };
}

impl<'t> PgTx<'t> {
    pub(crate) fn begin(conn: &'t mut PgConn, read_only: bool) -> Result<PgTx<'t>> {
        let PgConn { client, statements } = conn;
        let tx = client
            .build_transaction()
            .read_only(read_only)
            // A read sees one snapshot, as on SQLite; a write locks the session rows it
            // changes first and reads the rest at the start of each statement.
            .isolation_level(if read_only {
                postgres::IsolationLevel::RepeatableRead
            } else {
                postgres::IsolationLevel::ReadCommitted
            })
            .start()?;
        Ok(PgTx {
            on: On::Transaction(tx),
            statements,
        })
    }

    /// No transaction: for a caller that runs one statement only.
    pub(crate) fn single_statement(conn: &'t mut PgConn) -> PgTx<'t> {
        let PgConn { client, statements } = conn;
        PgTx {
            on: On::Statement(client),
            statements,
        }
    }

    pub(crate) fn commit(self) -> Result<()> {
        match self.on {
            On::Transaction(tx) => Ok(tx.commit()?),
            On::Statement(_) => Ok(()),
        }
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let text = placeholders(sql);
        let statement = on!(self, c => c.prepare(&text))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<usize> {
        let statement = self.statement(sql)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.pg()).collect();
        Ok(on!(self, c => c.execute(&statement, &values))? as usize)
    }

    pub(crate) fn query(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Vec<postgres::Row>> {
        let statement = self.statement(sql)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.pg()).collect();
        Ok(on!(self, c => c.query(&statement, &values))?)
    }

    pub(crate) fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(on!(self, c => c.batch_execute(sql))?)
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
