//! Writing a session that does not exist yet from its image, in named steps: validate, plan
//! (pure, see `plan.rs`), insert the session's row, write the branches, pin the snapshots,
//! and finish by recording the head through `heads`, as every write of a history does.

use serde_json::Value;

use crate::compaction::{clear_compactions, compactions_of};
use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::heads::{
    first_version, fork_new_head, head_of, insert_session_row, insert_snapshot, next_step,
    raise_version_clock, save_head,
};
use crate::lineage::{self, Head, Segment};
use crate::model::{time_text, Message, NewSession};

use super::beside::{self, Blobs, Values};
use super::image::{CompactionExport, SessionExport};
use super::plan::{current, has_beside, plan, validate, BranchPlan, Plan, Shared, Source};

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
        Some(head) if shares_with_parent(tx, image, head)? => {
            Some(lineage::read_head(tx, head, 1, head.length)?)
        }
        _ => None,
    };
    let plan = plan(image, parent_history.as_deref())?;
    insert_row(tx, image, parent.is_some())?;
    let mut blobs = Blobs::new(&image.checkpoint_values);
    let branch_ids = write_branches(tx, &image.id, &plan, parent.as_ref(), &mut blobs, image)?;
    drop(parent_history);
    write_snapshots(tx, &image.id, &plan, &branch_ids)?;
    for (branch, &id) in plan.branches.iter().zip(&branch_ids) {
        beside::write_writes(tx, id, branch.beside.writes, &place(image, branch.name))?;
    }
    finish(tx, image, &plan, &branch_ids)
}

/// Whether the image may share rows with its parent session's current history. A shared row
/// carries its usage record and checkpoint into every history that holds it, and which of
/// them a history shows depends on more than the row (hidden checkpoints, pending writes of
/// the parent): so only an image with nothing beside its messages shares, and only with a
/// history that has none either. Otherwise each row is written again, exactly as exported.
fn shares_with_parent(tx: &Tx<'_>, image: &SessionExport, parent: &Head) -> Result<bool> {
    if has_beside(image) {
        return Ok(false);
    }
    let segments = lineage::segments(tx, parent.branch_id, parent.length)?;
    Ok(!lineage::any_row_in(tx, "usage_records", &segments)?
        && !lineage::any_row_in(tx, "langgraph_checkpoints", &segments)?)
}

/// How a refusal names a history of the image: its branch when the image lists branches.
fn place(image: &SessionExport, branch: &str) -> String {
    match image.branches {
        Some(_) => format!("branch {branch:?}: "),
        None => String::new(),
    }
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
    blobs: &mut Blobs<'_>,
    image: &SessionExport,
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
        let id = write_branch(tx, session_id, branch, fork)?;
        let place = place(image, branch.name);
        let shared = branch.shares.map_or(0, |s| s.length);
        beside::write_rows(tx, id, shared, &branch.beside, blobs, &place)?;
        beside::write_compactions(tx, id, branch.compactions)?;
        ids.push(id);
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
    append_messages(tx, &mut head, branch.to_write())?;
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

/// Appends `messages` to `head` with their own times.
fn append_messages(tx: &Tx<'_>, head: &mut Head, messages: &[Message]) -> Result<()> {
    let times: Vec<String> = messages.iter().map(|m| time_text(&m.created_at)).collect();
    lineage::append_dated(
        tx,
        head,
        messages
            .iter()
            .map(|m| &m.body)
            .zip(times.iter().map(String::as_str)),
    )
}

/// Brings an existing session's current history to that of an image that keeps something
/// beside its messages, or compactions (or whose session's history has compactions), as
/// `set_chat_history` brings messages: left alone when it holds exactly the image's messages,
/// compactions and lists, else replaced by a new head branch (the old head stays as a
/// superseded branch) that carries the image's compactions. A compaction belongs to a branch
/// and is fixed when the branch is made, so even equal messages with other compactions make
/// a new head. The new head shares the old head's rows up to the first message that
/// differs, unless the image keeps lists beside its messages: then it is written whole, no
/// row shared with the old head, since sharing a prefix would show the old head's
/// checkpoints hidden after that prefix and its pending writes. Returns whether it wrote.
pub(super) fn replace_head(tx: &Tx<'_>, image: &SessionExport) -> Result<bool> {
    validate(image)?;
    let (head, _) =
        head_of(tx, &image.id)?.ok_or_else(|| Error::not_found("session", &image.id))?;
    let segments = lineage::segments(tx, head.branch_id, head.length)?;
    let stored = lineage::read_range(tx, &segments, 1, head.length)?;
    let kept = stored
        .iter()
        .zip(&image.messages)
        .take_while(|(old, new)| old.body == new.body && old.created_at == new.created_at)
        .count();
    let lists = has_beside(image);
    if kept == stored.len() && kept == image.messages.len() {
        let compactions: Vec<CompactionExport> = compactions_of(tx, head.branch_id, head.length)?
            .into_iter()
            .map(CompactionExport::from)
            .collect();
        if compactions == image.compactions && (!lists || same_lists(tx, image, &segments)?) {
            return Ok(false);
        }
    }
    let from = if lists { 0 } else { kept };
    let step = next_step(tx, &image.id)?;
    let mut new = fork_new_head(
        tx,
        &image.id,
        head.branch_id,
        &segments,
        from as i64,
        step.version,
        &step.now,
    )?;
    clear_compactions(tx, new.branch_id)?;
    append_messages(tx, &mut new, &image.messages[from..])?;
    let current = current(image);
    let mut blobs = Blobs::new(&image.checkpoint_values);
    beside::write_rows(tx, new.branch_id, from, &current, &mut blobs, "")?;
    beside::write_writes(tx, new.branch_id, current.writes, "")?;
    beside::write_compactions(tx, new.branch_id, &image.compactions)?;
    save_head(tx, &image.id, &new, step.version, &step.now)?;
    Ok(true)
}

/// Whether the lineage `segments` holds exactly the image's lists beside its messages.
fn same_lists(tx: &Tx<'_>, image: &SessionExport, segments: &[Segment]) -> Result<bool> {
    let mut values = Values::default();
    let read = beside::read(tx, segments, &mut values)?;
    Ok(beside::same(
        &read.beside(),
        &values.list,
        &current(image),
        &image.checkpoint_values,
    ))
}
