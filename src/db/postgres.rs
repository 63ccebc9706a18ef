//! PostgreSQL: pooled clients, transactions with a per-connection statement cache, and the
//! mapping of its errors. The logic above runs unchanged through [`crate::db::sql::Tx`].

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, Statement, Transaction};

use crate::db::sql::Param;
use crate::error::Result;

/// One server connection and the statements prepared on it.
pub(crate) struct PgConn {
    pub client: Client,
    pub statements: HashMap<String, Statement>,
}

/// An open transaction on a [`PgConn`].
pub(crate) struct PgTx<'t> {
    tx: Transaction<'t>,
    statements: &'t mut HashMap<String, Statement>,
}

impl<'t> PgTx<'t> {
    pub(crate) fn begin(conn: &'t mut PgConn, read_only: bool) -> Result<PgTx<'t>> {
        let PgConn { client, statements } = conn;
        let tx = client
            .build_transaction()
            .read_only(read_only)
            // A read sees one snapshot, as on SQLite; writes lock the rows they change
            // and read the rest at the start of each statement.
            .isolation_level(if read_only {
                postgres::IsolationLevel::RepeatableRead
            } else {
                postgres::IsolationLevel::ReadCommitted
            })
            .start()?;
        Ok(PgTx { tx, statements })
    }

    pub(crate) fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(&placeholders(sql))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<usize> {
        let statement = self.statement(sql)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.pg()).collect();
        Ok(self.tx.execute(&statement, &values)? as usize)
    }

    pub(crate) fn query(&mut self, sql: &str, params: &[&dyn Param]) -> Result<Vec<postgres::Row>> {
        let statement = self.statement(sql)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.pg()).collect();
        Ok(self.tx.query(&statement, &values)?)
    }

    pub(crate) fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.tx.batch_execute(sql)?)
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
    use super::placeholders;

    #[test]
    fn placeholders_are_renumbered_outside_literals_only() {
        assert_eq!(
            placeholders("SELECT '?1', \"a?2\", x FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', \"a?2\", x FROM t WHERE a = $1 AND b = $12"
        );
    }
}
