//! Export: sessions as [`ExportFile`], oldest first.

use chrono::Utc;

use crate::db::sql::args;
use crate::error::Result;
use crate::model::Session;
use crate::store::Store;

use super::image::{
    BranchExport, ExportFile, SessionExport, SnapshotExport, EXPORT_FORMAT, EXPORT_VERSION,
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

    fn export_session(&self, id: &str, all_branches: bool) -> Result<SessionExport> {
        let session = self.session(id)?;
        // The full history: a compacted session's working view would lose what it summarizes.
        let messages = self.full_history(id)?.to_vec();
        let (branches, snapshots) = if all_branches {
            let mut branches = Vec::new();
            for b in self.branches(id)? {
                branches.push(BranchExport {
                    messages: self.branch_history(id, &b.name)?.to_vec(),
                    name: b.name,
                    created_at: b.created_at,
                    superseded_at: b.superseded_at,
                });
            }
            let snapshots = self
                .snapshots(id)?
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
            branches,
            snapshots,
        })
    }
}
