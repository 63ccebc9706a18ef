//! `check`: is the file sound? SQLite's own checks plus sessiondb's invariants.

use serde::{Deserialize, Serialize};

use crate::db::sql::{args, Tx};
use crate::error::Result;
use crate::lineage;
use crate::model::Usage;
use crate::store::Store;

/// Result of [`Store::check`]. `problems` is empty for a sound file. As JSON it also carries
/// `ok` ([`CheckReport::is_ok`]), so a script need not count the problems.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CheckReport {
    pub sessions: u64,
    pub branches: u64,
    pub messages: u64,
    pub snapshots: u64,
    /// One line per problem found, naming the session, branch or row.
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Serialize for CheckReport {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("CheckReport", 6)?;
        out.serialize_field("ok", &self.is_ok())?;
        out.serialize_field("sessions", &self.sessions)?;
        out.serialize_field("branches", &self.branches)?;
        out.serialize_field("messages", &self.messages)?;
        out.serialize_field("snapshots", &self.snapshots)?;
        out.serialize_field("problems", &self.problems)?;
        out.end()
    }
}

/// Usage totals may differ by float rounding; anything larger is a real mismatch.
const COST_TOLERANCE: f64 = 1e-6;

impl Store {
    /// Runs `PRAGMA integrity_check`, `PRAGMA foreign_key_check` and sessiondb's invariants
    /// (positions contiguous, fork points inside their parents, lineage acyclic, counts,
    /// usage totals consistent, versions above superseded names) on one snapshot of the file.
    /// On PostgreSQL only sessiondb's invariants run: the two pragmas have no counterpart
    /// there (the server checks its pages and enforces foreign keys itself).
    pub fn check(&self) -> Result<CheckReport> {
        self.read(|tx| {
            let mut report = CheckReport {
                sessions: count(tx, "SELECT count(*) FROM sessions")?,
                branches: count(tx, "SELECT count(*) FROM branches")?,
                messages: count(tx, "SELECT count(*) FROM messages")?,
                snapshots: count(tx, "SELECT count(*) FROM snapshots")?,
                problems: Vec::new(),
            };
            let problems = &mut report.problems;
            // The database engine's own checks of its storage.
            problems.extend(tx.integrity_problems()?);
            check_branches(tx, problems)?;
            check_sessions(tx, problems)?;
            for line in strings(
                tx,
                "SELECT 'snapshot ' || n.id || ' pins seq ' || n.seq || ' past the end of branch '
                        || l.branch_id || ' (' || l.length || ' messages)'
                 FROM snapshots n JOIN branch_lengths l ON l.branch_id = n.branch_id
                 WHERE n.seq > l.length",
            )? {
                problems.push(line);
            }
            Ok(report)
        })
    }
}

fn check_branches(tx: &Tx<'_>, problems: &mut Vec<String>) -> Result<()> {
    // Parents are always created before their children, so a parent id that is not smaller
    // than the child's means a cycle or a hand-edited file.
    problems.extend(strings(
        tx,
        "SELECT 'branch ' || id || ' has parent ' || parent_branch_id || ', not an older branch'
         FROM branches WHERE parent_branch_id >= id",
    )?);
    problems.extend(strings(
        tx,
        "SELECT 'branch ' || c.id || ' forks at seq ' || c.fork_seq || ' but its parent '
                || p.id || ' has ' || l.length || ' messages'
         FROM branches c JOIN branches p ON p.id = c.parent_branch_id
         JOIN branch_lengths l ON l.branch_id = p.id
         WHERE c.fork_seq > l.length OR c.fork_seq <= p.fork_seq",
    )?);
    problems.extend(strings(
        tx,
        "SELECT 'branch ' || id || ' has no parent but starts at seq ' || fork_seq
         FROM branches WHERE parent_branch_id IS NULL AND fork_seq != 0",
    )?);
    // Every row sits at its rowid (branch_id * 2^32 + seq) and belongs to a branch.
    problems.extend(strings(
        tx,
        "SELECT 'message row ' || id || ' is not at branch ' || branch_id || ' seq ' || seq
         FROM messages WHERE id != branch_id * 4294967296 + seq",
    )?);
    problems.extend(strings(
        tx,
        "SELECT count(*) || ' messages belong to missing branch ' || m.branch_id
         FROM messages m LEFT JOIN branches b ON b.id = m.branch_id
         WHERE b.id IS NULL GROUP BY m.branch_id",
    )?);
    // Own rows must be exactly fork_seq + 1 ..= last, with no gap.
    problems.extend(strings(
        tx,
        "SELECT 'branch ' || b.id || ' should hold seqs ' || (b.fork_seq + 1) || '..=' || r.last
                || ' but holds ' || r.n || ' rows'
         FROM branches b
         JOIN (SELECT branch_id, count(*) AS n, min(seq) AS first, max(seq) AS last
               FROM messages GROUP BY branch_id) r ON r.branch_id = b.id
         WHERE r.first != b.fork_seq + 1 OR r.n != r.last - b.fork_seq",
    )?);
    // Running usage totals: each row adds its own usage to the one before it.
    problems.extend(strings(
        tx,
        "SELECT 'message ' || seq || ' of branch ' || branch_id || ': running totals do not add up'
         FROM (SELECT branch_id, seq, input_tokens, output_tokens, cost,
                      running_input_tokens, running_output_tokens, running_cost,
                      lag(running_input_tokens) OVER w AS prev_in,
                      lag(running_output_tokens) OVER w AS prev_out,
                      lag(running_cost) OVER w AS prev_cost,
                      lag(seq) OVER w AS prev_seq
               FROM messages WINDOW w AS (PARTITION BY branch_id ORDER BY seq)) AS rows_in_order
         WHERE prev_seq IS NOT NULL
           AND (running_input_tokens != prev_in + coalesce(input_tokens, 0)
                OR running_output_tokens != prev_out + coalesce(output_tokens, 0)
                OR abs(running_cost - prev_cost - coalesce(cost, 0)) > 1e-6)",
    )?);
    // The first own row continues the totals of the history it forks from.
    type FirstRow = (i64, Option<i64>, i64, (i64, i64, f64), (i64, i64, f64));
    let first_rows: Vec<FirstRow> = tx.query_map(
        "SELECT b.id, b.parent_branch_id, b.fork_seq, m.running_input_tokens,
                m.running_output_tokens, m.running_cost,
                coalesce(m.input_tokens, 0), coalesce(m.output_tokens, 0),
                coalesce(m.cost, CAST(0 AS FLOAT8))
         FROM branches b JOIN messages m ON m.id = b.id * 4294967296 + b.fork_seq + 1",
        args![],
        |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                (row.get(3)?, row.get(4)?, row.get(5)?),
                (row.get(6)?, row.get(7)?, row.get(8)?),
            ))
        },
    )?;
    for (branch, parent, fork_seq, running, own) in first_rows {
        let base = match parent {
            Some(parent) => match lineage::segments(tx, parent, fork_seq)
                .and_then(|segments| lineage::usage_at(tx, &segments, fork_seq))
            {
                Ok(usage) => usage,
                Err(e) => {
                    problems.push(format!(
                        "branch {branch}: its fork point is unreadable: {e}"
                    ));
                    continue;
                }
            },
            None => Usage::default(),
        };
        if running.0 != base.input_tokens as i64 + own.0
            || running.1 != base.output_tokens as i64 + own.1
            || (running.2 - base.cost - own.2).abs() > COST_TOLERANCE
        {
            problems.push(format!(
                "branch {branch}: first message's running totals do not continue its fork point"
            ));
        }
    }
    Ok(())
}

fn check_sessions(tx: &Tx<'_>, problems: &mut Vec<String>) -> Result<()> {
    problems.extend(strings(
        tx,
        tx.pick(
            "SELECT 'session ' || quote(s.id) || ': head branch ' || s.head_branch_id
                    || ' belongs to ' || coalesce(quote(b.session_id), 'no session')
             FROM sessions s JOIN branches b ON b.id = s.head_branch_id
             WHERE b.session_id IS NOT s.id",
            "SELECT 'session ' || quote_literal(s.id) || ': head branch ' || s.head_branch_id
                    || ' belongs to ' || coalesce(quote_literal(b.session_id), 'no session')
             FROM sessions s JOIN branches b ON b.id = s.head_branch_id
             WHERE b.session_id IS DISTINCT FROM s.id",
        ),
    )?);
    problems.extend(strings(
        tx,
        tx.pick(
            "SELECT 'session ' || quote(s.id) || ': message_count ' || s.message_count
                    || ' but its head has ' || l.length || ' messages'
             FROM sessions s JOIN branch_lengths l ON l.branch_id = s.head_branch_id
             WHERE s.message_count != l.length",
            "SELECT 'session ' || quote_literal(s.id) || ': message_count ' || s.message_count
                    || ' but its head has ' || l.length || ' messages'
             FROM sessions s JOIN branch_lengths l ON l.branch_id = s.head_branch_id
             WHERE s.message_count != l.length",
        ),
    )?);
    // A superseded head is named <name>@<version of that change>; the next change takes a
    // higher version, so a session below one of its names would reuse it. (PostgreSQL's
    // CAST refuses text that is not a number, where SQLite reads 0: only digits are cast.)
    problems.extend(strings(
        tx,
        tx.pick(
            "SELECT 'session ' || quote(s.id) || ': version ' || s.version
                    || ' is below its superseded branch ' || quote(b.name)
             FROM branches b JOIN sessions s ON s.id = b.session_id
             WHERE instr(b.name, '@') > 0
               AND CAST(substr(b.name, instr(b.name, '@') + 1) AS INTEGER) > s.version",
            "SELECT 'session ' || quote_literal(s.id) || ': version ' || s.version
                    || ' is below its superseded branch ' || quote_literal(b.name)
             FROM branches b JOIN sessions s ON s.id = b.session_id
             WHERE CAST(substring(b.name FROM '@([0-9]{1,18})$') AS BIGINT) > s.version",
        ),
    )?);
    // Session totals equal the running totals at the end of the head's history.
    type Totals = (String, i64, i64, (i64, i64, f64));
    let sessions: Vec<Totals> = tx.query_map(
        "SELECT s.id, s.head_branch_id, l.length, s.input_tokens, s.output_tokens, s.cost
         FROM sessions s JOIN branch_lengths l ON l.branch_id = s.head_branch_id",
        args![],
        |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                (row.get(3)?, row.get(4)?, row.get(5)?),
            ))
        },
    )?;
    for (id, head, length, stored) in sessions {
        let usage = match lineage::segments(tx, head, length)
            .and_then(|segments| lineage::usage_at(tx, &segments, length))
        {
            Ok(usage) => usage,
            Err(e) => {
                problems.push(format!("session {id:?}: history unreadable: {e}"));
                continue;
            }
        };
        if stored.0 != usage.input_tokens as i64
            || stored.1 != usage.output_tokens as i64
            || (stored.2 - usage.cost).abs() > COST_TOLERANCE
        {
            problems.push(format!(
                "session {id:?}: usage totals {stored:?} do not match its messages ({}, {}, {})",
                usage.input_tokens, usage.output_tokens, usage.cost
            ));
        }
    }
    Ok(())
}

fn count(tx: &Tx<'_>, sql: &str) -> Result<u64> {
    Ok(tx.query_one(sql, args![], |r| r.get::<i64>(0))? as u64)
}

/// The first column of every row of a check query.
fn strings(tx: &Tx<'_>, sql: &str) -> Result<Vec<String>> {
    tx.query_map(sql, args![], |r| r.get::<String>(0))
}
