//! Collecting what nothing can reach any more, and keeping the file compact.

use std::time::Duration;

use chrono::Utc;
use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::cache::CacheStats;
use crate::db::sql::{args, Checkpoint, Tx};
use crate::error::{Error, Result};
use crate::lineage::{row_id, MAX_SEQ};
use crate::model::{time_text, PruneReport};
use crate::store::Store;

/// Sizes and counts of a file, from [`Store::stats`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub file_bytes: u64,
    pub wal_bytes: u64,
    pub sessions: u64,
    pub messages: u64,
    pub branches: u64,
    pub snapshots: u64,
    /// What `prune` with the same window would remove.
    pub prunable: PruneReport,
    /// The largest sessions by current history length, largest first.
    pub largest_sessions: Vec<LargestSession>,
    /// This process's history cache.
    pub cache: CacheStats,
}

/// One of [`Stats::largest_sessions`]: `{"id": …, "messages": …}` in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LargestSession {
    pub id: String,
    /// Messages in its current history.
    pub messages: u64,
}

/// What [`Store::maintain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    /// Size of the database file plus its WAL before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Whether a reader kept the WAL from being truncated completely (try again later).
    /// `maintain` retries for about a second, not for as long as the reader stays.
    pub wal_busy: bool,
}

impl Store {
    /// Removes history that no head, named branch or snapshot can reach: branches superseded
    /// (or deleted) more than `older_than` ago go with their messages, and such a branch that
    /// a fork or snapshot still needs keeps only the rows they reach. Branches of deleted
    /// sessions go as soon as nothing inherits from them. Everything reachable reads exactly
    /// as before. With `dry_run`, reports what it would remove and removes nothing.
    ///
    /// On PostgreSQL, writers of other sessions go on meanwhile; a branch whose session
    /// changed between prune's first look and its locks is left for the next prune.
    pub fn prune(&self, older_than: Duration, dry_run: bool) -> Result<PruneReport> {
        let window = chrono::Duration::from_std(older_than)
            .map_err(|_| Error::invalid(format!("retention window {older_than:?} is too long")))?;
        let cutoff = time_text(
            &Utc::now()
                .checked_sub_signed(window)
                .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC),
        );
        let run = |tx: &Tx<'_>| -> Result<PruneReport> {
            let plan = prune_plan(tx, &cutoff)?;
            if dry_run {
                return apply_prune(tx, &plan, true, |_| true);
            }
            // Anything that could make a collected branch needed again (a head moved onto
            // it, a fork or a snapshot from it) writes the session that owns it: lock those
            // sessions, then plan again and collect only branches whose owner is locked or
            // gone. A branch another session made prunable meanwhile waits for the next
            // prune. Where this write needs no lock, nothing changes under the plan.
            let mut owners: Vec<&str> = plan.iter().filter_map(|b| b.owner.as_deref()).collect();
            owners.sort_unstable();
            owners.dedup();
            let Some(locked) = tx.lock_sessions(&owners)? else {
                return apply_prune(tx, &plan, false, |_| true);
            };
            let locked: HashSet<String> = locked.into_iter().collect();
            let plan = prune_plan(tx, &cutoff)?;
            apply_prune(tx, &plan, false, |owner| {
                owner.is_none_or(|id| locked.contains(id))
            })
        };
        if dry_run {
            self.read(run)
        } else {
            self.write(run)
        }
    }

    /// Checkpoints the WAL into the database file and truncates it; with `vacuum`, also
    /// rebuilds the file to return free pages to the operating system (slow on big files;
    /// it needs free disk space about the size of the file).
    pub fn maintain(&self, vacuum: bool) -> Result<MaintenanceReport> {
        let bytes_before = self.disk_bytes();
        if vacuum {
            self.vacuum()?;
        }
        // A reader of an old snapshot keeps the WAL from being truncated: the checkpoint
        // retries for about a second, then reports it rather than waiting for the reader.
        let wal_busy = self.checkpoint()? == Checkpoint::Kept;
        Ok(MaintenanceReport {
            bytes_before,
            bytes_after: self.disk_bytes(),
            wal_busy,
        })
    }

    /// Sizes, counts, the largest sessions, what prune would remove (with `older_than`) and
    /// the cache counters.
    pub fn stats(&self, older_than: Duration) -> Result<Stats> {
        let prunable = self.prune(older_than, true)?;
        let (counts, largest) = self.read(|tx| {
            let count = |sql: &str| -> Result<u64> {
                Ok(tx.query_one(sql, args![], |r| r.get::<i64>(0))? as u64)
            };
            let counts = [
                count("SELECT count(*) FROM sessions")?,
                count("SELECT count(*) FROM messages")?,
                count("SELECT count(*) FROM branches")?,
                count("SELECT count(*) FROM snapshots")?,
            ];
            let largest = tx.query_map(
                "SELECT id, message_count FROM sessions
                 ORDER BY message_count DESC, id LIMIT 5",
                args![],
                |r| {
                    Ok(LargestSession {
                        id: r.get(0)?,
                        messages: r.get::<i64>(1)? as u64,
                    })
                },
            )?;
            Ok((counts, largest))
        })?;
        let (file_bytes, wal_bytes) = self.storage_sizes();
        Ok(Stats {
            file_bytes,
            wal_bytes,
            sessions: counts[0],
            messages: counts[1],
            branches: counts[2],
            snapshots: counts[3],
            prunable,
            largest_sessions: largest,
            cache: self.cache_stats(),
        })
    }

    /// Size of the database file plus its WAL, in bytes.
    pub fn disk_bytes(&self) -> u64 {
        let (file, wal) = self.storage_sizes();
        file + wal
    }
}

/// What prune does to one branch: delete its rows after `keep`, and the branch itself when
/// `delete` (nothing reaches it).
struct PruneStep {
    branch: i64,
    owner: Option<String>,
    keep: i64,
    delete: bool,
}

/// What prune would do, children before parents (a parent is never deleted under a child).
fn prune_plan(tx: &Tx<'_>, cutoff: &str) -> Result<Vec<PruneStep>> {
    // Roots keep every row: heads, named branches, recently superseded ones.
    let roots: HashSet<i64> = tx
        .query_map(
            "SELECT id FROM branches
             WHERE (session_id IS NOT NULL
                    AND (superseded_at IS NULL OR superseded_at >= ?1))
                OR id IN (SELECT head_branch_id FROM sessions)",
            args![cutoff],
            |r| r.get(0),
        )?
        .into_iter()
        .collect();
    let pinned: Vec<i64> =
        tx.query_map("SELECT DISTINCT branch_id FROM snapshots", args![], |r| {
            r.get(0)
        })?;
    let branches: HashMap<i64, (Option<i64>, Option<String>)> = tx
        .query_map(
            "SELECT id, parent_branch_id, session_id FROM branches",
            args![],
            |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))),
        )?
        .into_iter()
        .collect();
    // Live: roots, snapshot targets and every ancestor of those.
    let mut live = HashSet::new();
    for start in roots.iter().chain(&pinned) {
        let mut branch = Some(*start);
        while let Some(id) = branch.filter(|id| live.insert(*id)) {
            branch = branches.get(&id).and_then(|(parent, _)| *parent);
        }
    }
    let mut all: Vec<i64> = branches.keys().copied().collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    let mut plan = Vec::new();
    for branch in all {
        if roots.contains(&branch) {
            continue;
        }
        // A live branch that is not a root keeps only the rows its forks and snapshots
        // reach; a dead one keeps nothing.
        let delete = !live.contains(&branch);
        let keep = if delete {
            0
        } else {
            rows_needed(tx, branch, &live)?
        };
        let owner = branches.get(&branch).and_then(|(_, owner)| owner.clone());
        plan.push(PruneStep {
            branch,
            owner,
            keep,
            delete,
        });
    }
    Ok(plan)
}

/// Carries out (or with `dry_run` only measures) the steps whose owner `may_change` allows.
fn apply_prune(
    tx: &Tx<'_>,
    plan: &[PruneStep],
    dry_run: bool,
    may_change: impl Fn(Option<&str>) -> bool,
) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    for step in plan.iter().filter(|s| may_change(s.owner.as_deref())) {
        let (from, to) = (
            row_id(step.branch, step.keep + 1),
            row_id(step.branch, MAX_SEQ),
        );
        let (rows, bytes): (i64, i64) = tx.query_one(
            tx.pick(
                "SELECT count(*), coalesce(sum(length(CAST(content AS BLOB))
                     + coalesce(length(CAST(tool_calls AS BLOB)), 0)
                     + coalesce(length(CAST(metadata AS BLOB)), 0)), 0)
                 FROM messages WHERE id BETWEEN ?1 AND ?2",
                "SELECT count(*), CAST(coalesce(sum(octet_length(content)
                     + coalesce(octet_length(tool_calls), 0)
                     + coalesce(octet_length(metadata), 0)), 0) AS BIGINT)
                 FROM messages WHERE id BETWEEN ?1 AND ?2",
            ),
            args![from, to],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        report.messages += rows as u64;
        report.bytes += bytes as u64;
        if step.delete {
            report.branches += 1;
        }
        if dry_run {
            continue;
        }
        tx.execute(
            "DELETE FROM messages WHERE id BETWEEN ?1 AND ?2",
            args![from, to],
        )?;
        if step.delete {
            crate::lineage::delete_branch(tx, step.branch)?;
        }
    }
    Ok(report)
}

/// How many leading rows of `branch` a live fork or a snapshot still reaches.
fn rows_needed(tx: &Tx<'_>, branch: i64, live: &HashSet<i64>) -> Result<i64> {
    let mut needed: i64 = tx.query_one(
        "SELECT coalesce(max(seq), 0) FROM snapshots WHERE branch_id = ?1",
        args![branch],
        |r| r.get(0),
    )?;
    tx.query_each(
        "SELECT id, fork_seq FROM branches WHERE parent_branch_id = ?1",
        args![branch],
        |row| {
            if live.contains(&row.get::<i64>(0)?) {
                needed = needed.max(row.get(1)?);
            }
            Ok(())
        },
    )?;
    Ok(needed)
}
