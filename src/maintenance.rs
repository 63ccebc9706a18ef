//! Collecting what nothing can reach any more, and keeping the file compact.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use rusqlite::params;

use crate::error::{Error, Result};
use crate::model::PruneReport;
use crate::store::Store;

/// What [`Store::maintain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Size of the database file plus its WAL before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Whether a reader kept the WAL from being truncated completely (try again later).
    pub wal_busy: bool,
}

impl Store {
    /// Removes branches, and their messages, that no head, named branch or snapshot can
    /// reach and that were superseded (or deleted) more than `older_than` ago; branches of
    /// deleted sessions go as soon as no fork inherits from them. Everything reachable reads
    /// exactly as before. With `dry_run`, reports what it would remove and removes nothing.
    pub fn prune(&self, older_than: Duration, dry_run: bool) -> Result<PruneReport> {
        let window = chrono::Duration::from_std(older_than)
            .map_err(|_| Error::invalid(format!("retention window {older_than:?} is too long")))?;
        let cutoff = Utc::now()
            .checked_sub_signed(window)
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC)
            .to_rfc3339_opts(SecondsFormat::Micros, true);
        let run = |tx: &rusqlite::Transaction<'_>| -> Result<PruneReport> {
            let dead: Vec<i64> = tx
                .prepare_cached(
                    "WITH RECURSIVE live (id) AS (
                         SELECT id FROM branches
                         WHERE (session_id IS NOT NULL
                                AND (superseded_at IS NULL OR superseded_at >= ?1))
                            OR id IN (SELECT branch_id FROM snapshots)
                            OR id IN (SELECT head_branch_id FROM sessions)
                         UNION
                         SELECT b.parent_branch_id FROM branches b JOIN live ON b.id = live.id
                         WHERE b.parent_branch_id IS NOT NULL
                     )
                     SELECT id FROM branches WHERE id NOT IN live ORDER BY id DESC",
                )?
                .query_map([&cutoff], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut report = PruneReport {
                branches: dead.len() as u64,
                ..PruneReport::default()
            };
            for branch in dead {
                let (rows, bytes): (i64, i64) = tx
                    .prepare_cached(
                        "SELECT count(*), coalesce(sum(length(CAST(content AS BLOB))
                             + coalesce(length(CAST(tool_calls AS BLOB)), 0)
                             + coalesce(length(CAST(metadata AS BLOB)), 0)), 0)
                         FROM messages WHERE branch_id = ?1",
                    )?
                    .query_row([branch], |r| Ok((r.get(0)?, r.get(1)?)))?;
                report.messages += rows as u64;
                report.bytes += bytes as u64;
                if !dry_run {
                    tx.prepare_cached("DELETE FROM messages WHERE branch_id = ?1")?
                        .execute(params![branch])?;
                    tx.prepare_cached("DELETE FROM branches WHERE id = ?1")?
                        .execute(params![branch])?;
                }
            }
            Ok(report)
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
        let wal_busy = self.with_connection(|conn| {
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if vacuum {
                conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
            }
            Ok(busy != 0)
        })?;
        Ok(MaintenanceReport {
            bytes_before,
            bytes_after: self.disk_bytes(),
            wal_busy,
        })
    }

    /// Size of the database file plus its WAL, in bytes.
    pub fn disk_bytes(&self) -> u64 {
        let size = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = self.path().as_os_str().to_owned();
        wal.push("-wal");
        size(self.path().to_path_buf()) + size(wal.into())
    }
}
