//! Snapshots: named `(branch, seq)` pointers. Taking or restoring one copies nothing.

use serde_json::Value;

use crate::db::sql::{args, Row, Tx};
use crate::error::{Error, Result};
use crate::heads::{
    fork_new_head, insert_snapshot, next_step, require_head, save_head, touch, Step,
};
use crate::lineage;
use crate::model::{
    check_field, check_json, now_text, parse_time, validate_session_id, Metadata, Session,
    Snapshot, SnapshotId,
};
use crate::session_row::load_session;
use crate::store::Store;

const SNAPSHOT_SELECT: &str =
    "SELECT n.id, n.session_id, n.label, n.metadata, b.name, n.seq, n.created_at
     FROM snapshots n JOIN branches b ON b.id = n.branch_id";

impl Store {
    /// Pins the session's current history under an optional label. Returns the snapshot.
    pub fn create_snapshot(
        &self,
        session_id: &str,
        label: Option<&str>,
        metadata: Option<Metadata>,
    ) -> Result<Snapshot> {
        validate_session_id(session_id)?;
        check_field("label", label)?;
        let metadata = metadata.unwrap_or_default();
        check_json("metadata", &metadata)?;
        let metadata = Value::Object(metadata).to_string();
        self.write(|tx| {
            let head = require_head(tx, session_id)?;
            let id = insert_snapshot(
                tx,
                session_id,
                label,
                &metadata,
                (head.branch_id, head.length),
                &now_text(),
            )?;
            touch(tx, session_id)?;
            find_snapshot(tx, session_id, id)
        })
    }

    /// The session's snapshots, oldest first.
    pub fn snapshots(&self, session_id: &str) -> Result<Vec<Snapshot>> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            require_head(tx, session_id)?;
            snapshots_of(tx, session_id)
        })
    }

    /// Makes the snapshot's history the current one, as a new head. The replaced head stays
    /// readable as a superseded branch, so a restore can itself be undone.
    pub fn restore_snapshot(&self, session_id: &str, id: SnapshotId) -> Result<Session> {
        validate_session_id(session_id)?;
        self.write(|tx| {
            let head = require_head(tx, session_id)?;
            let (branch, seq): (i64, i64) = tx
                .query_opt(
                    "SELECT branch_id, seq FROM snapshots WHERE id = ?1 AND session_id = ?2",
                    args![id.0, session_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .ok_or_else(|| Error::not_found("snapshot", id.to_string()))?;
            let segments = lineage::segments(tx, branch, seq)?;
            let Step { version, now } = next_step(tx, session_id)?;
            let new_head = fork_new_head(
                tx,
                session_id,
                head.branch_id,
                &segments,
                seq,
                version,
                &now,
            )?;
            save_head(tx, session_id, &new_head, version, &now)?;
            load_session(tx, session_id)
        })
    }

    /// Deletes a snapshot. Messages only it kept alive become eligible for prune.
    pub fn delete_snapshot(&self, session_id: &str, id: SnapshotId) -> Result<()> {
        validate_session_id(session_id)?;
        self.write(|tx| {
            require_head(tx, session_id)?;
            let deleted = tx.execute(
                "DELETE FROM snapshots WHERE id = ?1 AND session_id = ?2",
                args![id.0, session_id],
            )?;
            if deleted == 0 {
                return Err(Error::not_found("snapshot", id.to_string()));
            }
            touch(tx, session_id)?;
            Ok(())
        })
    }
}

fn find_snapshot(tx: &Tx<'_>, session_id: &str, id: SnapshotId) -> Result<Snapshot> {
    tx.query_opt(
        &format!("{SNAPSHOT_SELECT} WHERE n.id = ?1 AND n.session_id = ?2"),
        args![id.0, session_id],
        snapshot_from_row,
    )?
    .ok_or_else(|| Error::not_found("snapshot", id.to_string()))
}

fn snapshot_from_row(row: &Row<'_>) -> Result<Snapshot> {
    let id = SnapshotId(row.get(0)?);
    let metadata = match serde_json::from_str(&row.get::<String>(3)?) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(Error::Corrupt(format!(
                "snapshot {id}: metadata is not a JSON object"
            )))
        }
    };
    Ok(Snapshot {
        id,
        session_id: row.get(1)?,
        label: row.get(2)?,
        metadata,
        branch: row.get(4)?,
        length: row.get::<i64>(5)? as u64,
        created_at: parse_time(&row.get::<String>(6)?)?,
    })
}

/// The session's snapshots, oldest first.
pub(crate) fn snapshots_of(tx: &Tx<'_>, session_id: &str) -> Result<Vec<Snapshot>> {
    tx.query_map(
        &format!("{SNAPSHOT_SELECT} WHERE n.session_id = ?1 ORDER BY n.id"),
        args![session_id],
        snapshot_from_row,
    )
}
