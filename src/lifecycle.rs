//! Retention and erasure: expiring idle sessions, and purging content for real.
//!
//! Everything else in sessiondb keeps replaced history until `prune`. A purge is the one
//! operation that destroys: in one transaction, with SQLite's `secure_delete` on (freed
//! cells and pages are overwritten with zeros), it deletes the sessions' every branch
//! (superseded ones included), messages (and the usage recorded against them), compactions,
//! snapshots, streamed partials, leases,
//! and the orphaned rows of deleted parents that only they reached (every table of the
//! schema that can hold a session's rows); it rebuilds the search index so
//! no term of the purged text survives in it. Then `VACUUM` rewrites every page (a page split
//! long ago may have left a stale copy of a row in free space that no delete can find), and a
//! checkpoint copies the new pages into the file and truncates the WAL, where the old page
//! images were. The cost is that of a `VACUUM`: proportional to the file, so erase many
//! sessions with one request. A reader holding an old snapshot of the file (another
//! process's open read transaction) can keep the checkpoint from finishing: the purge retries
//! for about a second, not for as long as the reader stays, then the report says so
//! (`wal_truncated`), and `sessiondb maintain` completes it later.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::db::sql::{args, Checkpoint, Tx};
use crate::error::{Error, Result};
use crate::lineage::{self, row_id, MAX_SEQ};
use crate::model::{time_text, validate_session_id};
use crate::session_row::delete_session_in;
use crate::store::Store;

/// What [`Store::expire_sessions`] deleted (or, on a dry run, would delete).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpireReport {
    /// Ids of the expired sessions, least recently updated first.
    pub sessions: Vec<String>,
    /// Messages in their current histories.
    pub messages: u64,
    pub dry_run: bool,
}

/// What to erase with [`Store::purge`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PurgeRequest {
    pub sessions: Vec<String>,
    /// Every session of this user too.
    pub user_id: Option<String>,
    /// Also erase every session forked (directly or not) from the purged ones. Without it,
    /// those forks keep the messages they inherit, copied into them first.
    pub with_forks: bool,
}

/// What [`Store::purge`] erased.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PurgeReport {
    /// Sessions erased, requested ones and (with `with_forks`) their forks.
    pub purged: Vec<String>,
    /// The forks among `purged`, erased because `with_forks` asked for it.
    pub forks_purged: Vec<String>,
    /// Sessions forked from purged ones that were kept: the messages they inherited were
    /// copied into them, so their histories read exactly as before.
    pub forks_kept: Vec<String>,
    pub branches: u64,
    pub messages: u64,
    pub snapshots: u64,
    /// Whether the checkpoint truncated the WAL. Always `false` on PostgreSQL: the server's
    /// WAL and its backups are not ours to truncate, so the purged bytes stay there until the
    /// operator's retention drops them.
    pub wal_truncated: bool,
    /// Whether a reader kept the WAL from being truncated: old page images may remain in it
    /// until `maintain` succeeds. Always `false` on PostgreSQL (no WAL of ours).
    pub wal_kept: bool,
}

/// One branch row, for the purge's walk over the branch graph.
struct BranchRow {
    session: Option<String>,
    parent: Option<i64>,
    fork_seq: i64,
}

impl Store {
    /// Deletes every session not updated within `idle_longer_than`, as
    /// [`Store::delete_session`] does: forks of them keep their history. Each session goes in
    /// its own transaction, which checks again that it is still idle, so a session written
    /// meanwhile is kept. With `dry_run`, reports what it would delete and deletes nothing.
    pub fn expire_sessions(
        &self,
        idle_longer_than: Duration,
        dry_run: bool,
    ) -> Result<ExpireReport> {
        let window = chrono::Duration::from_std(idle_longer_than)
            .map_err(|_| Error::invalid(format!("idle window {idle_longer_than:?} is too long")))?;
        let cutoff = time_text(
            &Utc::now()
                .checked_sub_signed(window)
                .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC),
        );
        let candidates: Vec<(String, i64)> = self.read(|tx| {
            tx.query_map(
                "SELECT id, message_count FROM sessions WHERE updated_at < ?1
                     ORDER BY updated_at, id",
                args![&cutoff],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })?;
        let mut report = ExpireReport {
            dry_run,
            ..ExpireReport::default()
        };
        for (id, messages) in candidates {
            let expired = dry_run
                || self.write(|tx| {
                    // Locked before the idle check, so a write that lands meanwhile keeps
                    // the session.
                    tx.lock_session(&id)?;
                    let idle: Option<bool> = tx.query_opt(
                        "SELECT updated_at < ?2 FROM sessions WHERE id = ?1",
                        args![id, cutoff],
                        |r| r.get(0),
                    )?;
                    if idle != Some(true) {
                        return Ok(false);
                    }
                    delete_session_in(tx, &id)?;
                    Ok(true)
                })?;
            if expired {
                self.cache().invalidate(Some(&id));
                report.messages += messages as u64;
                report.sessions.push(id);
            }
        }
        Ok(report)
    }

    /// Erases one session for real; its forks keep their history. See [`Store::purge`].
    pub fn purge_session(&self, id: &str) -> Result<PurgeReport> {
        self.purge(&PurgeRequest {
            sessions: vec![id.to_string()],
            ..PurgeRequest::default()
        })
    }

    /// Erases every session of `user_id` for real; forks of them owned by others keep
    /// their history. See [`Store::purge`].
    pub fn purge_user(&self, user_id: &str) -> Result<PurgeReport> {
        self.purge(&PurgeRequest {
            user_id: Some(user_id.to_string()),
            ..PurgeRequest::default()
        })
    }

    /// Erases the requested sessions' content so that no byte of it stays in the database
    /// file or its WAL (see the module docs), in one transaction: all of it or nothing. A
    /// session forked from a purged one keeps the messages it inherits (copied into it
    /// first) unless `with_forks` erases it too; the report names both kinds. A named session
    /// that does not exist is [`Error::NotFound`] and nothing is erased.
    pub fn purge(&self, request: &PurgeRequest) -> Result<PurgeReport> {
        for id in &request.sessions {
            validate_session_id(id)?;
        }
        if request.sessions.is_empty() && request.user_id.is_none() {
            return Err(Error::invalid("purge needs sessions or a user"));
        }
        let mut report = self.write(|tx| {
            // Where other writers run beside this one, hold every session still first.
            tx.lock_all_sessions()?;
            tx.erasing(|tx| purge_in(tx, request))
        })?;
        for id in report.purged.iter().chain(&report.forks_kept) {
            self.cache().invalidate(Some(id));
        }
        // What is deleted may have left copies in free space (SQLite) or as dead rows
        // (PostgreSQL) that no delete can reach: rewrite them away.
        self.erase_securely()?;
        // A reader of an old snapshot keeps the WAL: retry for about a second, then say so
        // rather than wait for it (`maintain` finishes the job later).
        let wal = self.checkpoint()?;
        report.wal_truncated = wal == Checkpoint::Truncated;
        report.wal_kept = wal == Checkpoint::Kept;
        Ok(report)
    }
}

fn purge_in(tx: &Tx<'_>, request: &PurgeRequest) -> Result<PurgeReport> {
    let mut purged: BTreeSet<String> = BTreeSet::new();
    for id in &request.sessions {
        let exists: Option<i64> =
            tx.query_opt("SELECT 1 FROM sessions WHERE id = ?1", args![id], |r| {
                r.get(0)
            })?;
        if exists.is_none() {
            return Err(Error::not_found("session", id));
        }
        purged.insert(id.clone());
    }
    if let Some(user) = &request.user_id {
        let ids: Vec<String> = tx.query_map(
            "SELECT id FROM sessions WHERE user_id = ?1",
            args![user],
            |r| r.get(0),
        )?;
        purged.extend(ids);
    }
    let requested = purged.clone();
    let branches: BTreeMap<i64, BranchRow> = tx
        .query_map(
            "SELECT id, session_id, parent_branch_id, fork_seq FROM branches",
            args![],
            |r| {
                Ok((
                    r.get(0)?,
                    BranchRow {
                        session: r.get(1)?,
                        parent: r.get(2)?,
                        fork_seq: r.get(3)?,
                    },
                ))
            },
        )?
        .into_iter()
        .collect();
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    for (id, b) in &branches {
        if let Some(parent) = b.parent {
            children.entry(parent).or_default().push(*id);
        }
    }
    // Doomed: the sessions' branches and the orphans (of deleted sessions) above them; with
    // forks, everything below them too, until nothing changes.
    let mut doomed: BTreeSet<i64> = BTreeSet::new();
    loop {
        let before = (doomed.len(), purged.len());
        for (id, b) in &branches {
            if b.session.as_ref().is_some_and(|s| purged.contains(s)) {
                doomed.insert(*id);
            }
        }
        for id in doomed.clone() {
            let mut parent = branches.get(&id).and_then(|b| b.parent);
            while let Some(p) = parent.filter(|p| !doomed.contains(p)) {
                match branches.get(&p) {
                    Some(row) if row.session.is_none() => {
                        doomed.insert(p);
                        parent = row.parent;
                    }
                    _ => break,
                }
            }
        }
        if request.with_forks {
            for id in doomed.clone() {
                for child in children.get(&id).into_iter().flatten() {
                    doomed.insert(*child);
                    if let Some(s) = branches.get(child).and_then(|b| b.session.clone()) {
                        purged.insert(s);
                    }
                }
            }
        }
        if (doomed.len(), purged.len()) == before {
            break;
        }
    }
    let mut report = PurgeReport {
        forks_purged: purged.difference(&requested).cloned().collect(),
        ..PurgeReport::default()
    };
    // Branches that stay but inherit from doomed ones get those rows copied in first.
    let mut kept = BTreeSet::new();
    for id in &doomed {
        for child in children.get(id).into_iter().flatten() {
            if doomed.contains(child) {
                continue;
            }
            let row = &branches[child];
            materialize(tx, *child, *id, row.fork_seq)?;
            if let Some(session) = &row.session {
                kept.insert(session.clone());
            }
        }
    }
    for session in &kept {
        tx.execute(
            "UPDATE sessions SET version = version + 1 WHERE id = ?1",
            args![session],
        )?;
    }
    report.forks_kept = kept.into_iter().collect();

    for id in &purged {
        report.snapshots += tx.query_one(
            "SELECT count(*) FROM snapshots WHERE session_id = ?1",
            args![id],
            |r| r.get::<i64>(0),
        )? as u64;
        crate::heads::retire_versions(tx, id)?;
        // Snapshots and the streamed partial go with the row (ON DELETE CASCADE).
        tx.execute("DELETE FROM sessions WHERE id = ?1", args![id])?;
        // A lease has no foreign key (it may precede its session), so nothing cascades to
        // it; its row names the session and the owner that ran it.
        tx.execute("DELETE FROM leases WHERE session_id = ?1", args![id])?;
    }
    // Children before parents: a parent is never deleted under a child.
    for id in doomed.iter().rev() {
        report.messages += tx.execute(
            "DELETE FROM messages WHERE id BETWEEN ?1 AND ?2",
            args![row_id(*id, 1), row_id(*id, MAX_SEQ)],
        )? as u64;
        // Compactions go with the branch (ON DELETE CASCADE).
        lineage::delete_branch(tx, *id)?;
        report.branches += 1;
    }
    // No term of the purged text may survive in the search index.
    tx.rewrite_search_index()?;
    report.purged = purged.into_iter().collect();
    Ok(report)
}

/// Copies the `fork_seq` messages `branch` inherits from `parent`'s lineage into `branch`
/// itself (same seqs, so the same rowids scheme) and makes it a root: its history reads
/// exactly as before without any row of the lineage it came from.
fn materialize(tx: &Tx<'_>, branch: i64, parent: i64, fork_seq: i64) -> Result<()> {
    // Every column but the rowid and the branch, whatever later migrations add.
    let columns: Vec<String> = tx
        .query_map(
            tx.pick(
                "SELECT name FROM pragma_table_info('messages')",
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = 'messages'
                 ORDER BY ordinal_position",
            ),
            args![],
            |r| r.get::<String>(0),
        )?
        .into_iter()
        .filter(|c| c != "id" && c != "branch_id")
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect();
    let columns = columns.join(", ");
    let copy = format!(
        "INSERT INTO messages (id, branch_id, {columns})
         SELECT CAST(?1 AS BIGINT) * 4294967296 + seq, CAST(?1 AS BIGINT), {columns}
         FROM messages WHERE id BETWEEN ?2 AND ?3"
    );
    let inherited = lineage::segments(tx, parent, fork_seq)?;
    for seg in &inherited {
        if seg.upto > seg.fork_seq {
            tx.execute(
                &copy,
                args![
                    branch,
                    row_id(seg.branch_id, seg.fork_seq + 1),
                    row_id(seg.branch_id, seg.upto)
                ],
            )?;
        }
    }
    // What lives beside those messages comes with them.
    crate::usage::copy_inherited(tx, branch, &inherited)?;
    crate::checkpoints::copy_inherited(tx, branch, &inherited)?;
    tx.execute(
        "UPDATE branches SET parent_branch_id = NULL, fork_seq = 0 WHERE id = ?1",
        args![branch],
    )?;
    Ok(())
}
