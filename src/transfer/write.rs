//! Writing a session that does not exist yet from its image, in named steps: validate, plan
//! (pure, see `plan.rs`), insert the session's row, write the branches, pin the snapshots,
//! and finish by recording the head through `heads`, as every write of a history does.

use serde_json::Value;

use crate::db::sql::{args, Tx};
use crate::error::Result;
use crate::heads::{
    first_version, head_of, insert_session_row, insert_snapshot, raise_version_clock, save_head,
};
use crate::lineage::{self, Head};
use crate::model::{time_text, NewSession};

use super::image::SessionExport;
use super::plan::{plan, validate, BranchPlan, Plan, Shared, Source};

/// Writes a session that does not exist yet, exactly as described: branches share the rows
/// of their longest common prefix (with each other, and with the parent session's current
/// history when it exists) instead of copying them. The session keeps its times.
pub(super) fn write_image(tx: &Tx<'_>, image: &SessionExport) -> Result<()> {
    validate(image)?;
    let parent = match &image.parent_session {
        Some(parent) if *parent != image.id => head_of(tx, parent)?.map(|(head, _)| head),
        _ => None,
    };
    let parent_history = match &parent {
        Some(head) => Some(lineage::read_head(tx, head, 1, head.length)?),
        None => None,
    };
    let plan = plan(image, parent_history.as_deref())?;
    insert_row(tx, image, parent.is_some())?;
    let branch_ids = write_branches(tx, &image.id, &plan, parent.as_ref())?;
    drop(parent_history);
    write_snapshots(tx, &image.id, &plan, &branch_ids)?;
    finish(tx, image, &plan, &branch_ids)
}

/// The session's row with its fields and times; the parent link only when the parent exists
/// (otherwise the parent's own import links it later).
fn insert_row(tx: &Tx<'_>, image: &SessionExport, parent_exists: bool) -> Result<()> {
    let fields = NewSession {
        id: None,
        title: image.title.clone(),
        agent_name: image.agent_name.clone(),
        agent_id: image.agent_id.clone(),
        user_id: image.user_id.clone(),
        metadata: image.metadata.clone(),
    };
    insert_session_row(
        tx,
        &image.id,
        &fields,
        image.parent_session.as_deref().filter(|_| parent_exists),
        &time_text(&image.created_at),
        &time_text(&image.updated_at),
    )
}

/// Creates the planned branches in order; returns their ids, in the plan's order.
fn write_branches(
    tx: &Tx<'_>,
    session_id: &str,
    plan: &Plan<'_>,
    parent: Option<&Head>,
) -> Result<Vec<i64>> {
    let mut ids: Vec<i64> = Vec::with_capacity(plan.branches.len());
    for branch in &plan.branches {
        let fork = match branch.shares {
            Some(Shared { from, length }) => {
                let from = match (from, parent) {
                    (Source::Branch(i), _) => ids[i],
                    (Source::Parent, Some(parent)) => parent.branch_id,
                    // A plan shares with the parent only when it was given the parent's history.
                    (Source::Parent, None) => unreachable!("a plan shared with a missing parent"),
                };
                let segments = lineage::segments(tx, from, length as i64)?;
                lineage::fork_point(&segments, length as i64)
            }
            None => None,
        };
        ids.push(write_branch(tx, session_id, branch, fork)?);
    }
    Ok(ids)
}

/// One branch: created on its fork point, then its own messages with their times.
fn write_branch(
    tx: &Tx<'_>,
    session_id: &str,
    branch: &BranchPlan<'_>,
    fork: Option<(i64, i64)>,
) -> Result<i64> {
    let shared = branch.shares.map_or(0, |s| s.length) as i64;
    let id = lineage::create_branch(
        tx,
        session_id,
        branch.name,
        fork,
        &time_text(branch.created_at),
    )?;
    let segments = lineage::segments(tx, id, shared)?;
    let mut head = Head {
        branch_id: id,
        length: shared,
        usage: lineage::usage_at(tx, &segments, shared)?,
    };
    let to_write = branch.to_write();
    let times: Vec<String> = to_write.iter().map(|m| time_text(&m.created_at)).collect();
    lineage::append_dated(
        tx,
        &mut head,
        to_write
            .iter()
            .map(|m| &m.body)
            .zip(times.iter().map(String::as_str)),
    )?;
    if let Some(at) = branch.superseded_at {
        tx.execute(
            "UPDATE branches SET superseded_at = ?2 WHERE id = ?1",
            args![id, time_text(at)],
        )?;
    }
    Ok(id)
}

/// Pins each planned snapshot on its written branch.
fn write_snapshots(
    tx: &Tx<'_>,
    session_id: &str,
    plan: &Plan<'_>,
    branch_ids: &[i64],
) -> Result<()> {
    for planned in &plan.snapshots {
        let snapshot = planned.snapshot;
        insert_snapshot(
            tx,
            session_id,
            snapshot.label.as_deref(),
            &Value::Object(snapshot.metadata.clone()).to_string(),
            (branch_ids[planned.branch], snapshot.length as i64),
            &time_text(&snapshot.created_at),
        )?;
    }
    Ok(())
}

/// Records the head: the version clock passes every imported version first, then the session
/// draws its first version, and the head is saved with the image's `updated_at`.
fn finish(tx: &Tx<'_>, image: &SessionExport, plan: &Plan<'_>, branch_ids: &[i64]) -> Result<()> {
    raise_version_clock(tx, plan.clock_at_least)?;
    let (branch_id, length) = (
        branch_ids[plan.head],
        plan.branches[plan.head].messages.len() as i64,
    );
    let segments = lineage::segments(tx, branch_id, length)?;
    let head = Head {
        branch_id,
        length,
        usage: lineage::usage_at(tx, &segments, length)?,
    };
    let version = first_version(tx)?;
    save_head(tx, &image.id, &head, version, &time_text(&image.updated_at))
}
