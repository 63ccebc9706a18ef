//! Export: sessions as [`ExportFile`], oldest first.

use chrono::Utc;

use crate::branches::branches_of;
use crate::compaction::compactions_of;
use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::heads::head_of;
use crate::lineage::{self, branch_id};
use crate::model::{validate_session_id, Message, Session};
use crate::session_row::load_session;
use crate::snapshots::snapshots_of;
use crate::store::Store;

use super::beside::{self, Values};
use super::image::{
    BranchExport, CompactionExport, ExportFile, SessionExport, SnapshotExport, EXPORT_FORMAT,
    EXPORT_VERSION,
};

impl Store {
    /// Exports the sessions `ids` (every session when empty), oldest first. With
    /// `all_branches`, every branch and snapshot too. `progress(done, total)` is called as it
    /// goes.
    pub fn export(
        &self,
        ids: &[String],
        all_branches: bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ExportFile> {
        let ids: Vec<String> = if ids.is_empty() {
            self.read(|tx| {
                tx.query_map(
                    "SELECT id FROM sessions ORDER BY created_at, id",
                    args![],
                    |r| r.get(0),
                )
            })?
        } else {
            ids.to_vec()
        };
        let mut sessions = Vec::with_capacity(ids.len());
        for (done, id) in ids.iter().enumerate() {
            sessions.push(self.export_session(id, all_branches)?);
            progress(done + 1, ids.len());
        }
        Ok(ExportFile {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            exported_at: Utc::now(),
            sessions,
        })
    }

    /// One session, read in one transaction: each history with what it holds beside its
    /// messages, and the channel values those read, each once.
    fn export_session(&self, id: &str, all_branches: bool) -> Result<SessionExport> {
        validate_session_id(id)?;
        self.read(|tx| {
            let session = load_session(tx, id)?;
            let (head, _) = head_of(tx, id)?.ok_or_else(|| Error::not_found("session", id))?;
            let mut values = Values::default();
            // The full history, with its compactions: a compacted session's working view
            // would lose what it summarizes.
            let (messages, current) = history(tx, head.branch_id, head.length, &mut values)?;
            let (branches, snapshots) = if all_branches {
                let mut branches = Vec::new();
                for b in branches_of(tx, id)? {
                    let branch = branch_id(tx, id, &b.name)?;
                    let length = lineage::branch_length(tx, branch)?;
                    let (messages, read) = history(tx, branch, length, &mut values)?;
                    branches.push(BranchExport {
                        messages,
                        name: b.name,
                        created_at: b.created_at,
                        superseded_at: b.superseded_at,
                        usage_records: read.beside.usage_records,
                        checkpoints: read.beside.checkpoints,
                        checkpoint_writes: read.beside.writes,
                        compactions: read.compactions,
                    });
                }
                let snapshots = snapshots_of(tx, id)?
                    .into_iter()
                    .map(|s| SnapshotExport {
                        label: s.label,
                        metadata: s.metadata,
                        branch: s.branch,
                        length: s.length,
                        created_at: s.created_at,
                    })
                    .collect();
                (Some(branches), Some(snapshots))
            } else {
                (None, None)
            };
            let Session {
                id,
                title,
                agent_name,
                agent_id,
                user_id,
                metadata,
                parent_session,
                head_branch,
                created_at,
                updated_at,
                ..
            } = session;
            Ok(SessionExport {
                id,
                title,
                agent_name,
                agent_id,
                user_id,
                metadata,
                parent_session,
                created_at,
                updated_at,
                head_branch,
                messages,
                usage_records: current.beside.usage_records,
                checkpoints: current.beside.checkpoints,
                checkpoint_writes: current.beside.writes,
                compactions: current.compactions,
                checkpoint_values: values.list,
                branches,
                snapshots,
            })
        })
    }
}

/// What an export holds of one history besides its messages.
struct HistoryRead {
    beside: beside::Read,
    compactions: Vec<CompactionExport>,
}

/// The first `length` messages of branch `branch`'s lineage, what they hold beside them, and
/// the branch's compactions.
fn history(
    tx: &Tx<'_>,
    branch: i64,
    length: i64,
    values: &mut Values,
) -> Result<(Vec<Message>, HistoryRead)> {
    let segments = lineage::segments(tx, branch, length)?;
    let messages = lineage::read_range(tx, &segments, 1, length)?;
    let beside = beside::read(tx, &segments, values)?;
    let compactions = compactions_of(tx, branch, length)?
        .into_iter()
        .map(CompactionExport::from)
        .collect();
    Ok((
        messages,
        HistoryRead {
            beside,
            compactions,
        },
    ))
}
