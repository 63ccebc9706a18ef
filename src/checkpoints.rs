//! LangGraph checkpoints on sessions (docs/design.md, "LangGraph checkpoints").
//!
//! A thread is the session `langgraph:<thread_id>`; each checkpoint is one message of it,
//! and what a checkpoint saver needs (the checkpoint, its channel values stored once per
//! version, its pending writes) is kept beside that message, keyed by its rowid (schema
//! 10). A fork of the session inherits all of it without a copy, which is `copy_thread`;
//! deleting the session (or anything that deletes the message rows) deletes it, and a blob
//! goes with its last reference.
//!
//! Values arrive serialised by the caller (LangGraph's serde gives a type name and bytes);
//! the core stores them as given and never looks inside.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::db::sql::{args, Param, Tx};
use crate::error::{Error, Result};
use crate::heads::{
    append_to_head, current_and_lineage, head_of, head_or_create, insert_session, Step,
};
use crate::lineage::{self, row_id, Head, LineageOf, Segment};
use crate::model::{validate_session_id, Metadata, NewMessage, NewSession, Usage};
use crate::session_row::delete_session_in;
use crate::store::Store;

/// The prefix of every thread's session id.
pub const THREAD_PREFIX: &str = "langgraph:";

/// A value as a serialiser gave it: its type name and bytes (`None` for a value that has
/// none, such as LangGraph's `"empty"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serialized {
    pub kind: String,
    pub bytes: Option<Vec<u8>>,
}

/// A new version of one channel, written by the checkpoint that first has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelBlob {
    pub channel: String,
    pub version: String,
    pub value: Serialized,
}

/// What `put` stores.
#[derive(Debug, Clone)]
pub struct NewCheckpoint {
    pub thread_id: String,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    pub parent_checkpoint_id: Option<String>,
    /// The checkpoint without its channel values.
    pub checkpoint: Serialized,
    /// The checkpoint's metadata, a JSON object (`run_id`, `step` and `source` are read).
    pub metadata: Metadata,
    /// Every channel the checkpoint has a version of, with that version.
    pub channel_versions: Vec<(String, String)>,
    /// The channels whose version is new in this checkpoint, with their values.
    pub new_blobs: Vec<ChannelBlob>,
    /// Values of other channels, stored only where the thread has no value of that channel
    /// at that version yet (a checkpoint put without `new_versions` for them).
    pub other_values: Vec<ChannelBlob>,
}

/// A pending write of a task against a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWrite {
    pub task_id: String,
    pub idx: i64,
    pub channel: String,
    pub value: Serialized,
    pub task_path: String,
}

/// A stored checkpoint, whole.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRecord {
    pub thread_id: String,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    pub parent_checkpoint_id: Option<String>,
    pub checkpoint: Serialized,
    pub metadata: Metadata,
    /// The stored value of each channel the checkpoint reads, by channel name.
    pub channel_values: Vec<(String, Serialized)>,
    /// Pending writes in (task_path, task_id, idx) order, the order LangGraph applies them.
    pub pending_writes: Vec<PendingWrite>,
}

/// Which checkpoints `list_checkpoints` returns, newest checkpoint id first.
#[derive(Debug, Clone, Default)]
pub struct CheckpointQuery {
    /// One thread, or every thread of the file.
    pub thread_id: Option<String>,
    pub checkpoint_ns: Option<String>,
    pub checkpoint_id: Option<String>,
    /// Only checkpoints whose metadata has each of these keys with an equal value.
    pub filter: Metadata,
    /// Only checkpoint ids below this one.
    pub before: Option<String>,
    pub limit: Option<usize>,
}

/// How `prune_checkpoints` treats each thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneStrategy {
    /// Keep the latest checkpoint of each namespace, and the ancestors a channel without a
    /// stored value needs to be rebuilt from.
    KeepLatest,
    /// Delete the thread.
    Delete,
}

/// The session id of a thread.
pub fn thread_session_id(thread_id: &str) -> Result<String> {
    let id = format!("{THREAD_PREFIX}{thread_id}");
    validate_session_id(&id)
        .map_err(|e| Error::invalid(format!("thread_id {thread_id:?}: {e}")))?;
    Ok(id)
}

/// A checkpoint row visible in a thread's lineage.
#[derive(Debug, Clone)]
struct Visible {
    message_id: i64,
    checkpoint_ns: String,
    checkpoint_id: String,
    parent_checkpoint_id: Option<String>,
    metadata: String,
}

/// The rows hidden in this lineage (see [`visible`]), by row id, with their namespace and
/// checkpoint id.
fn hidden_in(tx: &Tx<'_>, segments: &[Segment]) -> Result<HashMap<i64, (String, String)>> {
    let mut hidden = HashMap::new();
    for seg in segments {
        tx.query_each(
            "SELECT h.message_id, c.checkpoint_ns, c.checkpoint_id
             FROM langgraph_hidden h JOIN langgraph_checkpoints c ON c.message_id = h.message_id
             WHERE h.branch_id = ?1 AND h.from_seq <= ?2",
            args![seg.branch_id, seg.upto],
            |r| {
                hidden.insert(r.get::<i64>(0)?, (r.get(1)?, r.get(2)?));
                Ok(())
            },
        )?;
    }
    Ok(hidden)
}

/// Which checkpoint of a namespace [`find_in_lineage`] looks for.
#[derive(Debug, Clone, Copy)]
enum Find<'a> {
    /// The one with this id.
    Id(&'a str),
    /// The one with the highest id.
    Latest,
}

/// The segments of the history `of` and, for each of `finds`, the checkpoint of namespace
/// `ns` it names visible in them (or `None`), read by one statement: per segment one walk of
/// the `(branch_id, checkpoint_ns, checkpoint_id)` index from the top that passes over
/// hidden rows (see [`visible`]), so a long thread costs no more than a short one. A later
/// segment wins a tie (a checkpoint put again over an inherited one). Also says whether the
/// lineage hides any row, and, for [`LineageOf::HeadOf`], the session's head and version
/// (`None`: no such session), read with it (and in a write locked, as `head_of` locks it).
fn find_in_lineage(tx: &Tx<'_>, of: LineageOf<'_>, ns: &str, finds: &[Find<'_>]) -> Result<Found> {
    let mut columns = String::new();
    let mut joins = String::new();
    let mut params: Vec<&dyn Param> = vec![&ns];
    // The rows of namespace ?4 in segment `l` that no segment's branch hides at or before
    // that segment's end, as `{c}`; a segment's rows are the rowids `branch_id * 2^32 +
    // fork_seq + 1 ..= + upto`.
    let visible = |c: &str| {
        format!(
            "FROM langgraph_checkpoints {c}
             WHERE {c}.branch_id = l.branch_id AND {c}.checkpoint_ns = ?4
                 AND {c}.message_id BETWEEN l.branch_id * 4294967296 + l.fork_seq + 1
                     AND l.branch_id * 4294967296 + l.upto
                 AND NOT EXISTS (
                     SELECT 1 FROM langgraph_hidden h
                     JOIN lineage hl ON hl.branch_id = h.branch_id
                     WHERE h.message_id = {c}.message_id AND h.from_seq <= hl.upto)"
        )
    };
    for (i, find) in finds.iter().enumerate() {
        let id = match find {
            Find::Id(id) => {
                params.push(id);
                format!("?{}", params.len() + 3)
            }
            // The highest id, then its latest row: two walks of the index from the top, as
            // PostgreSQL's index has no message_id to order a tie by.
            Find::Latest => format!(
                "(SELECT m.checkpoint_id {} ORDER BY m.checkpoint_id DESC LIMIT 1)",
                visible("m")
            ),
        };
        columns.push_str(&format!(
            ", k{i}.message_id, k{i}.checkpoint_ns, k{i}.checkpoint_id,
             k{i}.parent_checkpoint_id, k{i}.metadata"
        ));
        let walk = format!(
            "{} AND c.checkpoint_id = {id} ORDER BY c.message_id DESC LIMIT 1",
            visible("c")
        );
        let sqlite = format!(
            " LEFT JOIN langgraph_checkpoints k{i} ON k{i}.message_id = (SELECT c.message_id {walk})"
        );
        // Joined on the id found, PostgreSQL may hash the whole table to find one row.
        let postgres = format!(
            " LEFT JOIN LATERAL (SELECT c.message_id, c.checkpoint_ns, c.checkpoint_id,
                 c.parent_checkpoint_id, c.metadata {walk}) k{i} ON true"
        );
        joins.push_str(tx.pick(&sqlite, &postgres));
    }
    columns.push_str(
        ", EXISTS (SELECT 1 FROM langgraph_hidden h
                   WHERE h.branch_id = l.branch_id AND h.from_seq <= l.upto)",
    );
    let at_head = 6 + 5 * finds.len();
    if let LineageOf::HeadOf(_) = of {
        columns.push_str(", hd.input_tokens, hd.output_tokens, hd.cost, hd.version");
        joins.push_str(" CROSS JOIN head hd");
    }
    let mut best: Vec<Option<Visible>> = vec![None; finds.len()];
    let mut hides = false;
    let mut head = None;
    let segments = lineage::segments_with(tx, of, &columns, &joins, &params, |r| {
        hides |= r.get::<bool>(5 + 5 * finds.len())?;
        if let LineageOf::HeadOf(_) = of {
            let usage = Usage {
                input_tokens: r.get::<i64>(at_head)? as u64,
                output_tokens: r.get::<i64>(at_head + 1)? as u64,
                cost: r.get(at_head + 2)?,
            };
            head = Some((usage, r.get::<i64>(at_head + 3)?));
        }
        for (i, best) in best.iter_mut().enumerate() {
            let at = 5 + 5 * i;
            let Some(message_id) = r.get::<Option<i64>>(at)? else {
                continue;
            };
            let row = Visible {
                message_id,
                checkpoint_ns: r.get(at + 1)?,
                checkpoint_id: r.get(at + 2)?,
                parent_checkpoint_id: r.get(at + 3)?,
                metadata: r.get(at + 4)?,
            };
            if best
                .as_ref()
                .is_none_or(|b| row.checkpoint_id >= b.checkpoint_id)
            {
                *best = Some(row);
            }
        }
        Ok(())
    })?;
    let head = match (head, segments.last()) {
        (Some((usage, version)), Some(last)) => Some((
            Head {
                branch_id: last.branch_id,
                length: last.upto,
                usage,
            },
            version,
        )),
        _ => None,
    };
    Ok(Found {
        segments,
        rows: best,
        hides,
        head,
    })
}

/// What [`find_in_lineage`] read.
struct Found {
    segments: Vec<Segment>,
    /// For each find, the checkpoint it names.
    rows: Vec<Option<Visible>>,
    /// Whether the lineage hides any row.
    hides: bool,
    /// The head and version of the session whose head the lineage is.
    head: Option<(Head, i64)>,
}

/// The checkpoints visible in `segments`, in history order, optionally only of `ns` or with
/// id `id`. A row hidden from a branch from `from_seq` on is left out where the lineage holds
/// that branch up to `from_seq` or beyond, and a row whose parent is hidden has no parent
/// here (see [`forget_hidden_parent`]).
fn visible(
    tx: &Tx<'_>,
    segments: &[Segment],
    ns: Option<&str>,
    id: Option<&str>,
) -> Result<Vec<Visible>> {
    let hidden = hidden_in(tx, segments)?;
    let mut rows = shown(tx, segments, &hidden, ns, id)?;
    if !hidden.is_empty() {
        // Without an id, the rows are all the lineage shows of their namespace.
        let all: Option<HashSet<(String, String)>> = id.is_none().then(|| {
            rows.iter()
                .map(|r| (r.checkpoint_ns.clone(), r.checkpoint_id.clone()))
                .collect()
        });
        for row in &mut rows {
            forget_hidden_parent(tx, segments, &hidden, all.as_ref(), row)?;
        }
    }
    Ok(rows)
}

/// The rows of `segments` not in `hidden`, optionally only of `ns` or with id `id`, in
/// history order; of a checkpoint put again, the later row.
fn shown(
    tx: &Tx<'_>,
    segments: &[Segment],
    hidden: &HashMap<i64, (String, String)>,
    ns: Option<&str>,
    id: Option<&str>,
) -> Result<Vec<Visible>> {
    let out = held(tx, segments, hidden, ns, id)?;
    // A checkpoint put again over an inherited one shadows it: the later row wins.
    let mut seen = HashSet::new();
    let mut kept: Vec<Visible> = out
        .into_iter()
        .rev()
        .filter(|r| seen.insert((r.checkpoint_ns.clone(), r.checkpoint_id.clone())))
        .collect();
    kept.reverse();
    Ok(kept)
}

/// The rows of `segments` not in `hidden`, optionally only of `ns` or with id `id`, in
/// history order, shadowed ones included.
fn held(
    tx: &Tx<'_>,
    segments: &[Segment],
    hidden: &HashMap<i64, (String, String)>,
    ns: Option<&str>,
    id: Option<&str>,
) -> Result<Vec<Visible>> {
    let mut out = Vec::new();
    for seg in segments {
        if seg.upto <= seg.fork_seq {
            continue;
        }
        let lo = row_id(seg.branch_id, seg.fork_seq + 1);
        let hi = row_id(seg.branch_id, seg.upto);
        tx.query_each(
            "SELECT message_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, metadata
             FROM langgraph_checkpoints WHERE message_id BETWEEN ?1 AND ?2
                 AND (CAST(?3 AS TEXT) IS NULL OR checkpoint_ns = ?3)
                 AND (CAST(?4 AS TEXT) IS NULL OR checkpoint_id = ?4)
             ORDER BY message_id",
            args![lo, hi, ns, id],
            |r| {
                let row = Visible {
                    message_id: r.get(0)?,
                    checkpoint_ns: r.get(1)?,
                    checkpoint_id: r.get(2)?,
                    parent_checkpoint_id: r.get(3)?,
                    metadata: r.get(4)?,
                };
                if !hidden.contains_key(&row.message_id) {
                    out.push(row);
                }
                Ok(())
            },
        )?;
    }
    Ok(out)
}

/// Drops the parent of `row` where the lineage hides it: `parent_config` names only a
/// checkpoint the thread shows. A parent that is deleted leaves its children without one
/// when it goes (see [`remove`]); one hidden from a thread stays stored for a copy that reads
/// it, with children shared by both, so the thread learns it here, when it reads. `hidden`
/// is the lineage's [`hidden_in`]; `all`, when known, every (namespace, id) it shows.
fn forget_hidden_parent(
    tx: &Tx<'_>,
    segments: &[Segment],
    hidden: &HashMap<i64, (String, String)>,
    all: Option<&HashSet<(String, String)>>,
    row: &mut Visible,
) -> Result<()> {
    let Some(parent) = &row.parent_checkpoint_id else {
        return Ok(());
    };
    let key = (row.checkpoint_ns.clone(), parent.clone());
    if !hidden.values().any(|h| *h == key) {
        return Ok(());
    }
    let shows = match all {
        Some(all) => all.contains(&key),
        None => !shown(tx, segments, hidden, Some(&key.0), Some(&key.1))?.is_empty(),
    };
    if !shows {
        row.parent_checkpoint_id = None;
    }
    Ok(())
}

/// Whether a branch other than `except` forks from `message_id`'s branch at or after it.
fn inherited(tx: &Tx<'_>, message_id: i64, except: i64) -> Result<bool> {
    let (branch, seq) = (message_id >> 32, message_id & lineage::MAX_SEQ);
    Ok(tx
        .query_opt(
            "SELECT id FROM branches WHERE parent_branch_id = ?1 AND fork_seq >= ?2
                 AND id <> ?3 LIMIT 1",
            args![branch, seq, except],
            |r| r.get::<i64>(0),
        )?
        .is_some())
}

/// Whether a pending write `(branch_id, newest_branch)` belongs to this lineage: written by
/// its head, or by an ancestor before the lineage forked from it.
fn write_visible(segments: &[Segment], branch_id: i64, newest_branch: i64) -> bool {
    match segments.iter().position(|s| s.branch_id == branch_id) {
        Some(k) if k + 1 == segments.len() => true,
        Some(k) => segments[k + 1].branch_id > newest_branch,
        None => false,
    }
}

/// The segments of a thread's current history, or `None` for no such thread.
fn thread_segments(tx: &Tx<'_>, session_id: &str) -> Result<Option<(Vec<Segment>, i64)>> {
    match head_of(tx, session_id)? {
        Some((head, _)) => Ok(Some((
            lineage::segments(tx, head.branch_id, head.length)?,
            head.branch_id,
        ))),
        None => Ok(None),
    }
}

fn parse_metadata(text: &str) -> Result<Metadata> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Corrupt(format!(
            "checkpoint metadata is not a JSON object: {}",
            text.chars().take(60).collect::<String>()
        ))),
    }
}

/// Whether two JSON values are equal, numbers by value (`1` is `1.0`), as upstream's savers
/// compare a `list` filter (Python's `==`, SQLite's and PostgreSQL's JSON comparisons).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64().is_some_and(|x| y.as_f64() == Some(x)),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, x)| y.get(k).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

fn text_of(metadata: &Metadata, key: &str) -> Option<String> {
    match metadata.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The stored checkpoint (without its channel values) of row `message_id`.
fn checkpoint_of(tx: &Tx<'_>, message_id: i64) -> Result<Serialized> {
    tx.query_one(
        "SELECT checkpoint_type, checkpoint FROM langgraph_checkpoints WHERE message_id = ?1",
        args![message_id],
        |r| {
            Ok(Serialized {
                kind: r.get(0)?,
                bytes: Some(r.get(1)?),
            })
        },
    )
}

/// The whole record of a visible row.
fn record(
    tx: &Tx<'_>,
    segments: &[Segment],
    thread_id: &str,
    row: &Visible,
) -> Result<CheckpointRecord> {
    let checkpoint = checkpoint_of(tx, row.message_id)?;
    let channel_values = tx.query_map(
        "SELECT c.channel, b.blob_type, b.blob FROM langgraph_channels c
         JOIN langgraph_blobs b ON b.id = c.blob_id
         WHERE c.message_id = ?1 ORDER BY c.channel",
        args![row.message_id],
        |r| {
            Ok((
                r.get(0)?,
                Serialized {
                    kind: r.get(1)?,
                    bytes: r.get(2)?,
                },
            ))
        },
    )?;
    let mut pending_writes = Vec::new();
    for seg in segments {
        tx.query_each(
            "SELECT task_id, idx, channel, write_type, blob, task_path, newest_branch
             FROM langgraph_writes
             WHERE branch_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3",
            args![seg.branch_id, row.checkpoint_ns, row.checkpoint_id],
            |r| {
                if write_visible(segments, seg.branch_id, r.get(6)?) {
                    pending_writes.push(PendingWrite {
                        task_id: r.get(0)?,
                        idx: r.get(1)?,
                        channel: r.get(2)?,
                        value: Serialized {
                            kind: r.get(3)?,
                            bytes: Some(r.get(4)?),
                        },
                        task_path: r.get(5)?,
                    });
                }
                Ok(())
            },
        )?;
    }
    // A task's write at an index, written again further down the lineage, is the later one.
    let mut by_task: HashMap<(String, i64), PendingWrite> = HashMap::new();
    for w in pending_writes {
        by_task.insert((w.task_id.clone(), w.idx), w);
    }
    let mut pending_writes: Vec<PendingWrite> = by_task.into_values().collect();
    pending_writes
        .sort_by(|a, b| (&a.task_path, &a.task_id, a.idx).cmp(&(&b.task_path, &b.task_id, b.idx)));
    Ok(CheckpointRecord {
        thread_id: thread_id.to_string(),
        checkpoint_ns: row.checkpoint_ns.clone(),
        checkpoint_id: row.checkpoint_id.clone(),
        parent_checkpoint_id: row.parent_checkpoint_id.clone(),
        checkpoint,
        metadata: parse_metadata(&row.metadata)?,
        channel_values,
        pending_writes,
    })
}

/// The blob of the latest checkpoint of the lineage that references `channel` at `version`.
fn find_blob(
    tx: &Tx<'_>,
    segments: &[Segment],
    channel: &str,
    version: &str,
) -> Result<Option<i64>> {
    for seg in segments.iter().rev() {
        if seg.upto <= seg.fork_seq {
            continue;
        }
        let lo = row_id(seg.branch_id, seg.fork_seq + 1);
        let hi = row_id(seg.branch_id, seg.upto);
        if let Some(id) = tx.query_opt(
            "SELECT c.blob_id FROM langgraph_channels c
             JOIN langgraph_blobs b ON b.id = c.blob_id
             WHERE c.message_id BETWEEN ?1 AND ?2 AND c.channel = ?3 AND b.version = ?4
             ORDER BY c.message_id DESC LIMIT 1",
            args![lo, hi, channel, version],
            |r| r.get(0),
        )? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The blobs of the unchanged channels `(channel, version)` of a checkpoint: the parent
/// checkpoint's reference where it has that version (one read for all of them), else the
/// latest checkpoint of the lineage that references it. A channel found nowhere is left out.
fn unchanged_blobs<'c>(
    tx: &Tx<'_>,
    segments: &[Segment],
    parent: Option<i64>,
    unchanged: &[(&'c str, &str)],
) -> Result<Vec<(&'c str, i64)>> {
    let mut of_parent: HashMap<String, (String, i64)> = HashMap::new();
    if let (Some(parent), false) = (parent, unchanged.is_empty()) {
        tx.query_each(
            "SELECT c.channel, b.version, c.blob_id FROM langgraph_channels c
             JOIN langgraph_blobs b ON b.id = c.blob_id WHERE c.message_id = ?1",
            args![parent],
            |r| {
                of_parent.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
                Ok(())
            },
        )?;
    }
    let mut refs = Vec::new();
    for &(channel, version) in unchanged {
        let blob = match of_parent.get(channel) {
            Some((v, blob)) if v == version => Some(*blob),
            _ => find_blob(tx, segments, channel, version)?,
        };
        if let Some(blob) = blob {
            refs.push((channel, blob));
        }
    }
    Ok(refs)
}

impl Store {
    /// Stores a checkpoint as the next message of its thread's session (created if missing),
    /// with its new channel versions. Putting a checkpoint id the thread has in that
    /// namespace already replaces it whole (checkpoint, metadata, values): in place, or,
    /// where a copy still reads the row, by a new message that shadows it.
    pub fn put_checkpoint(&self, new: &NewCheckpoint) -> Result<()> {
        let session_id = thread_session_id(&new.thread_id)?;
        let metadata_text = serde_json::to_string(&new.metadata)
            .map_err(|e| Error::invalid(format!("checkpoint metadata: {e}")))?;
        let run_id = text_of(&new.metadata, "run_id");
        let new_channels: HashSet<&str> =
            new.new_blobs.iter().map(|b| b.channel.as_str()).collect();
        self.write(|tx| {
            let ns = new.checkpoint_ns.as_str();
            let mut finds = vec![Find::Id(&new.checkpoint_id)];
            if let Some(parent) = &new.parent_checkpoint_id {
                finds.push(Find::Id(parent));
            }
            // The head is read (and locked) with the lineage and the checkpoints it looks for.
            let mut read = find_in_lineage(tx, LineageOf::HeadOf(&session_id), ns, &finds)?;
            let (mut head, version) = match read.head.take() {
                Some(found) => found,
                None => {
                    // No thread yet: it is created, unless another write just did.
                    let new = NewSession::default();
                    let (head, version) = match insert_session(tx, &session_id, &new, None, None)
                    {
                        Err(Error::AlreadyExists(_)) => head_or_create(tx, &session_id, false)?,
                        created => created?,
                    };
                    // Another write may have created the thread and put to it meanwhile.
                    if head.length > 0 {
                        read = find_in_lineage(
                            tx,
                            LineageOf::Branch(head.branch_id, head.length),
                            ns,
                            &finds,
                        )?;
                    }
                    (head, version)
                }
            };
            let segments = read.segments;
            let mut found = read.rows.into_iter();
            let existing = found.next().flatten();
            let parent = found.next().flatten().map(|r| r.message_id);
            let own = existing.filter(|row| row.message_id >> 32 == head.branch_id);
            let own = match own {
                Some(row) if !inherited(tx, row.message_id, head.branch_id)? => Some(row),
                _ => None,
            };
            // Find the unchanged channels' blobs before this checkpoint's rows exist.
            let unchanged: Vec<(&str, &str)> = new
                .channel_versions
                .iter()
                .filter(|(channel, _)| !new_channels.contains(channel.as_str()))
                .map(|(channel, version)| (channel.as_str(), version.as_str()))
                .collect();
            let refs = unchanged_blobs(tx, &segments, parent, &unchanged)?;
            let mut missing: Vec<&ChannelBlob> = Vec::new();
            for value in &new.other_values {
                if !new_channels.contains(value.channel.as_str())
                    && !refs.iter().any(|(c, _)| *c == value.channel)
                {
                    missing.push(value);
                }
            }
            // A row of its own that no copy reads is replaced in place; else the checkpoint is
            // the next message (shadowing an inherited row of the same id).
            let message_id = match &own {
                Some(row) => {
                    tx.execute(
                        "UPDATE langgraph_checkpoints SET parent_checkpoint_id = ?2, run_id = ?3,
                             checkpoint_type = ?4, checkpoint = ?5, metadata = ?6
                         WHERE message_id = ?1",
                        args![
                            row.message_id,
                            new.parent_checkpoint_id,
                            run_id,
                            new.checkpoint.kind,
                            new.checkpoint.bytes.as_deref().unwrap_or_default(),
                            metadata_text,
                        ],
                    )?;
                    row.message_id
                }
                None => {
                    let step = text_of(&new.metadata, "step").unwrap_or_else(|| "?".into());
                    let source = text_of(&new.metadata, "source").unwrap_or_else(|| "?".into());
                    let mut about = Metadata::new();
                    about.insert(
                        "langgraph".into(),
                        serde_json::json!({
                            "checkpoint_ns": ns,
                            "checkpoint_id": new.checkpoint_id,
                            "parent_checkpoint_id": new.parent_checkpoint_id,
                            "run_id": run_id,
                        }),
                    );
                    let message = NewMessage::assistant(format!(
                        "checkpoint {} · ns {ns:?} · step {step} · {source}",
                        new.checkpoint_id
                    ))
                    // No message key: a checkpoint put again after a copy or a prune is a
                    // second message of the same id, and keys are unique in a history.
                    .with_metadata(about);
                    append_to_head(
                        tx,
                        &session_id,
                        &mut head,
                        &Step::after(version),
                        vec![message],
                    )?;
                    let message_id = row_id(head.branch_id, head.length);
                    tx.execute(
                        "INSERT INTO langgraph_checkpoints (message_id, branch_id, checkpoint_ns, checkpoint_id,
                             parent_checkpoint_id, run_id, checkpoint_type, checkpoint, metadata)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        args![
                            message_id,
                            head.branch_id,
                            ns,
                            new.checkpoint_id,
                            new.parent_checkpoint_id,
                            run_id,
                            new.checkpoint.kind,
                            new.checkpoint.bytes.as_deref().unwrap_or_default(),
                            metadata_text,
                        ],
                    )?;
                    message_id
                }
            };
            // One statement for the blobs and one for the references, whatever their number.
            // Where a channel comes twice, the last value is the one referenced.
            let all: Vec<&ChannelBlob> = new.new_blobs.iter().chain(missing).collect();
            let last: HashMap<&str, usize> = all
                .iter()
                .enumerate()
                .map(|(i, b)| (b.channel.as_str(), i))
                .collect();
            let blobs: Vec<&ChannelBlob> = all
                .iter()
                .enumerate()
                .filter(|(i, b)| last.get(b.channel.as_str()) == Some(i))
                .map(|(_, b)| *b)
                .collect();
            let rows: Vec<[&dyn Param; 4]> = blobs
                .iter()
                .map(|b| {
                    [
                        &b.channel as &dyn Param,
                        &b.version,
                        &b.value.kind,
                        &b.value.bytes,
                    ]
                })
                .collect();
            let mut refs: HashMap<&str, i64> = refs.into_iter().collect();
            tx.insert_rows(
                "INSERT INTO langgraph_blobs (channel, version, blob_type, blob)",
                "(?1, ?2, ?3, ?4)",
                "RETURNING id, channel",
                &rows,
                |r| {
                    let channel: String = r.get(1)?;
                    let blob = blobs.iter().find(|b| b.channel == channel).ok_or_else(|| {
                        Error::Corrupt(format!("a blob of channel {channel:?} not inserted"))
                    })?;
                    refs.insert(&blob.channel, r.get(0)?);
                    Ok(())
                },
            )?;
            if own.is_some() {
                // A reference that changes goes first, so the trigger frees a blob no one reads.
                let before = tx.query_map(
                    "SELECT channel, blob_id FROM langgraph_channels WHERE message_id = ?1",
                    args![message_id],
                    |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
                )?;
                for (channel, blob) in before {
                    if refs.get(channel.as_str()) != Some(&blob) {
                        tx.execute(
                            "DELETE FROM langgraph_channels WHERE message_id = ?1 AND channel = ?2",
                            args![message_id, channel],
                        )?;
                    }
                }
            }
            let rows: Vec<[&dyn Param; 3]> = refs
                .iter()
                .map(|(channel, blob)| [&message_id as &dyn Param, channel, blob])
                .collect();
            tx.insert_rows(
                "INSERT INTO langgraph_channels (message_id, channel, blob_id)",
                "(?1, ?2, ?3)",
                "ON CONFLICT (message_id, channel) DO UPDATE SET blob_id = excluded.blob_id",
                &rows,
                |_| Ok(()),
            )?;
            Ok(())
        })
    }

    /// Stores a task's pending writes against checkpoint `checkpoint_id` of the thread,
    /// which need not be stored yet (LangGraph may write them before the checkpoint's put
    /// commits). With `replace`, a write at an index the task wrote before replaces it;
    /// otherwise the first one stays.
    pub fn put_checkpoint_writes(
        &self,
        thread_id: &str,
        checkpoint_ns: &str,
        checkpoint_id: &str,
        writes: &[PendingWrite],
        replace: bool,
    ) -> Result<()> {
        let session_id = thread_session_id(thread_id)?;
        // One statement for all of them: where a task writes an index twice, the row a
        // statement per write would leave (the last with `replace`, else the first).
        let mut kept: HashMap<(&str, i64), usize> = HashMap::new();
        for (i, w) in writes.iter().enumerate() {
            let slot = kept.entry((w.task_id.as_str(), w.idx)).or_insert(i);
            if replace {
                *slot = i;
            }
        }
        let writes: Vec<&PendingWrite> = writes
            .iter()
            .enumerate()
            .filter(|(i, w)| kept.get(&(w.task_id.as_str(), w.idx)) == Some(i))
            .map(|(_, w)| w)
            .collect();
        let bytes: Vec<&[u8]> = writes
            .iter()
            .map(|w| w.value.bytes.as_deref().unwrap_or_default())
            .collect();
        self.write(|tx| {
            let (head, _) = head_or_create(tx, &session_id, true)?;
            let rows: Vec<[&dyn Param; 9]> = writes
                .iter()
                .zip(&bytes)
                .map(|(w, bytes)| {
                    [
                        &head.branch_id as &dyn Param,
                        &checkpoint_ns,
                        &checkpoint_id,
                        &w.task_id,
                        &w.idx,
                        &w.channel,
                        &w.value.kind,
                        bytes,
                        &w.task_path,
                    ]
                })
                .collect();
            tx.insert_rows(
                "INSERT INTO langgraph_writes (branch_id, checkpoint_ns, checkpoint_id, task_id,
                     idx, newest_branch, channel, write_type, blob, task_path)",
                "(?1, ?2, ?3, ?4, ?5, (SELECT max(id) FROM branches), ?6, ?7, ?8, ?9)",
                if replace {
                    "ON CONFLICT (branch_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE
                     SET newest_branch = excluded.newest_branch, channel = excluded.channel,
                         write_type = excluded.write_type, blob = excluded.blob,
                         task_path = excluded.task_path"
                } else {
                    "ON CONFLICT (branch_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING"
                },
                &rows,
                |_| Ok(()),
            )
        })
    }

    /// The checkpoint `checkpoint_id` of the thread's namespace, or with `None` its latest
    /// (highest id); `None` if there is none.
    pub fn get_checkpoint(
        &self,
        thread_id: &str,
        checkpoint_ns: &str,
        checkpoint_id: Option<&str>,
    ) -> Result<Option<CheckpointRecord>> {
        let session_id = thread_session_id(thread_id)?;
        let find = checkpoint_id.map_or(Find::Latest, Find::Id);
        self.read(|tx| {
            let of = LineageOf::HeadOf(&session_id);
            let Found {
                segments,
                rows: mut found,
                hides,
                ..
            } = find_in_lineage(tx, of, checkpoint_ns, &[find])?;
            let Some(mut row) = found.pop().flatten() else {
                return Ok(None);
            };
            if hides && row.parent_checkpoint_id.is_some() {
                let hidden = hidden_in(tx, &segments)?;
                forget_hidden_parent(tx, &segments, &hidden, None, &mut row)?;
            }
            record(tx, &segments, thread_id, &row).map(Some)
        })
    }

    /// The checkpoints `query` selects, newest checkpoint id first.
    pub fn list_checkpoints(&self, query: &CheckpointQuery) -> Result<Vec<CheckpointRecord>> {
        let threads = match &query.thread_id {
            Some(t) => vec![t.clone()],
            None => self.read(|tx| {
                // Literal lengths: PostgreSQL's substr takes integers, not bigints.
                let sql = format!(
                    "SELECT id FROM sessions WHERE substr(id, 1, {}) = ?1 ORDER BY id",
                    THREAD_PREFIX.len()
                );
                tx.query_map(&sql, args![THREAD_PREFIX], |r| {
                    let id = r.get::<String>(0)?;
                    Ok(id[THREAD_PREFIX.len()..].to_string())
                })
            })?,
        };
        let sessions = threads
            .iter()
            .map(|t| thread_session_id(t))
            .collect::<Result<Vec<_>>>()?;
        self.read(|tx| {
            let mut rows: Vec<(usize, Visible)> = Vec::new();
            let mut lineages: Vec<Vec<Segment>> = Vec::new();
            for (i, session_id) in sessions.iter().enumerate() {
                let Some((segments, _)) = thread_segments(tx, session_id)? else {
                    lineages.push(Vec::new());
                    continue;
                };
                for row in visible(
                    tx,
                    &segments,
                    query.checkpoint_ns.as_deref(),
                    query.checkpoint_id.as_deref(),
                )? {
                    if let Some(before) = &query.before {
                        if row.checkpoint_id.as_str() >= before.as_str() {
                            continue;
                        }
                    }
                    if !query.filter.is_empty() {
                        let metadata = parse_metadata(&row.metadata)?;
                        if !query
                            .filter
                            .iter()
                            .all(|(k, v)| metadata.get(k).is_some_and(|m| same_json(m, v)))
                        {
                            continue;
                        }
                    }
                    rows.push((i, row));
                }
                lineages.push(segments);
            }
            rows.sort_by(|(ta, a), (tb, b)| {
                b.checkpoint_id
                    .cmp(&a.checkpoint_id)
                    .then(ta.cmp(tb))
                    .then(b.message_id.cmp(&a.message_id))
            });
            rows.truncate(query.limit.unwrap_or(usize::MAX));
            rows.iter()
                .map(|(i, row)| record(tx, &lineages[*i], &threads[*i], row))
                .collect()
        })
    }

    /// Deletes a thread: its session, and with it every checkpoint, blob reference and write
    /// no copy of the thread still inherits. An unknown thread is not an error.
    pub fn delete_checkpoint_thread(&self, thread_id: &str) -> Result<()> {
        let session_id = thread_session_id(thread_id)?;
        self.cache().invalidate(Some(&session_id));
        self.write(|tx| match head_of(tx, &session_id)? {
            Some(_) => delete_session_in(tx, &session_id),
            None => Ok(()),
        })
    }

    /// Makes `target` a copy of `source`: a fork of its session at its end, so no row is
    /// copied. [`Error::NotFound`] for an unknown source, [`Error::AlreadyExists`] if the
    /// target thread exists.
    pub fn copy_checkpoint_thread(&self, source: &str, target: &str) -> Result<()> {
        let from = thread_session_id(source)?;
        let to = thread_session_id(target)?;
        self.write(|tx| {
            let (current, segments) = current_and_lineage(tx, &from)?
                .ok_or_else(|| Error::not_found("thread", source))?;
            let head = current.head;
            // The head's usage totals are those of its last message (`check` verifies it).
            let fork = lineage::fork_point(&segments, head.length).map(|point| (point, head.usage));
            let new = NewSession {
                id: Some(to.clone()),
                title: Some(format!("Copy of thread {source}")),
                ..NewSession::default()
            };
            // A target that exists makes the insert fail before anything is written.
            match insert_session(tx, &to, &new, Some(&from), fork) {
                Ok(_) => Ok(()),
                Err(Error::AlreadyExists(_)) => {
                    Err(Error::AlreadyExists(format!("thread {target:?}")))
                }
                Err(e) => Err(e),
            }
        })
    }

    /// Removes the checkpoints of `run_ids` (and their writes) from every thread that has
    /// them, copies included.
    pub fn delete_checkpoint_runs(&self, run_ids: &[String]) -> Result<()> {
        if run_ids.is_empty() {
            return Ok(());
        }
        // The threads that hold them (the one that wrote each, and every copy that
        // inherits it), found once; each is then edited in its own lock.
        let (rows, sessions) = self.read(|tx| {
            let mut rows = Vec::new();
            for run in run_ids {
                tx.query_each(
                    "SELECT message_id FROM langgraph_checkpoints WHERE run_id = ?1",
                    args![run],
                    |r| {
                        rows.push(r.get::<i64>(0)?);
                        Ok(())
                    },
                )?;
            }
            let mut out = Vec::new();
            let mut seen = HashSet::new();
            // (branch, the least fork point that still inherits the row)
            let mut queue: Vec<(i64, i64)> = rows
                .iter()
                .map(|m| (m >> 32, m & lineage::MAX_SEQ))
                .collect();
            while let Some((branch, seq)) = queue.pop() {
                if !seen.insert((branch, seq)) {
                    continue;
                }
                if let Some(Some(session)) = tx.query_opt(
                    "SELECT session_id FROM branches WHERE id = ?1",
                    args![branch],
                    |r| r.get::<Option<String>>(0),
                )? {
                    out.push(session);
                }
                tx.query_each(
                    "SELECT id FROM branches WHERE parent_branch_id = ?1 AND fork_seq >= ?2",
                    args![branch, seq],
                    |r| {
                        queue.push((r.get(0)?, 0));
                        Ok(())
                    },
                )?;
            }
            Ok((rows, out))
        })?;
        let runs: HashSet<&str> = run_ids.iter().map(String::as_str).collect();
        let mut done = HashSet::new();
        for session_id in sessions {
            if !done.insert(session_id.clone()) || !session_id.starts_with(THREAD_PREFIX) {
                continue;
            }
            self.write(|tx| {
                let Some((segments, _)) = thread_segments(tx, &session_id)? else {
                    return Ok(());
                };
                let doomed: Vec<Visible> = visible(tx, &segments, None, None)?
                    .into_iter()
                    .filter(|row| {
                        parse_metadata(&row.metadata)
                            .ok()
                            .and_then(|m| text_of(&m, "run_id"))
                            .is_some_and(|r| runs.contains(r.as_str()))
                    })
                    .collect();
                remove(tx, &session_id, &segments, &doomed, "delete_for_runs")
            })?;
        }
        // A row every holder now hides is seen by nobody: it goes at once.
        self.write(|tx| {
            for message_id in &rows {
                free_if_unseen(tx, *message_id)?;
            }
            Ok(())
        })
    }

    /// Prunes each thread by `strategy`. Unknown threads are skipped.
    pub fn prune_checkpoints(&self, thread_ids: &[String], strategy: PruneStrategy) -> Result<()> {
        for thread_id in thread_ids {
            if strategy == PruneStrategy::Delete {
                self.delete_checkpoint_thread(thread_id)?;
                continue;
            }
            let session_id = thread_session_id(thread_id)?;
            self.write(|tx| {
                let Some((segments, _)) = thread_segments(tx, &session_id)? else {
                    return Ok(());
                };
                let rows = visible(tx, &segments, None, None)?;
                let keep = kept_by_keep_latest(tx, &rows)?;
                let doomed: Vec<Visible> = rows
                    .into_iter()
                    .filter(|r| !keep.contains(&r.message_id))
                    .collect();
                remove(tx, &session_id, &segments, &doomed, "prune keep_latest")?;
                free_hidden(tx, &session_id)
            })?;
        }
        Ok(())
    }
}

/// The rows `keep_latest` keeps: the latest of each namespace and, walking its parents,
/// every ancestor back to the one that holds a value (a snapshot) of each delta channel the
/// latest rebuilds from writes. LangGraph names those channels in the checkpoint's metadata
/// (`counters_since_delta_snapshot`: updates since the channel's last snapshot); the walk
/// that rebuilds them (`get_delta_channel_history`) collects the writes of these ancestors.
fn kept_by_keep_latest(tx: &Tx<'_>, rows: &[Visible]) -> Result<HashSet<i64>> {
    let mut latest: HashMap<&str, &Visible> = HashMap::new();
    for row in rows {
        let slot = latest.entry(&row.checkpoint_ns).or_insert(row);
        if (row.checkpoint_id.as_str(), row.message_id)
            > (slot.checkpoint_id.as_str(), slot.message_id)
        {
            *slot = row;
        }
    }
    let by_id: HashMap<(&str, &str), &Visible> = rows
        .iter()
        .map(|r| ((r.checkpoint_ns.as_str(), r.checkpoint_id.as_str()), r))
        .collect();
    let mut keep = HashSet::new();
    for row in latest.values() {
        keep.insert(row.message_id);
        let mut missing: HashSet<String> =
            match parse_metadata(&row.metadata)?.get("counters_since_delta_snapshot") {
                Some(Value::Object(counters)) => counters.keys().cloned().collect(),
                _ => HashSet::new(),
            };
        let mut cursor = Some(row.checkpoint_id.as_str());
        let mut first = true;
        // Parents may run in a circle (a checkpoint put with its own config as parent).
        let mut walked = HashSet::new();
        while let (false, Some(id)) = (missing.is_empty(), cursor) {
            let Some(parent) = by_id.get(&(row.checkpoint_ns.as_str(), id)) else {
                break;
            };
            if !walked.insert(parent.message_id) {
                break;
            }
            if !first {
                keep.insert(parent.message_id);
            }
            first = false;
            let mut found = Vec::new();
            for channel in &missing {
                if has_value(tx, parent.message_id, channel)? {
                    found.push(channel.clone());
                }
            }
            for channel in found {
                missing.remove(&channel);
            }
            cursor = parent.parent_checkpoint_id.as_deref();
        }
    }
    Ok(keep)
}

/// Whether checkpoint `message_id` holds a value of `channel` (not `"empty"`).
fn has_value(tx: &Tx<'_>, message_id: i64, channel: &str) -> Result<bool> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM langgraph_channels c JOIN langgraph_blobs b ON b.id = c.blob_id
             WHERE c.message_id = ?1 AND c.channel = ?2 AND b.blob_type <> 'empty'",
            args![message_id, channel],
            |r| r.get::<i64>(0),
        )?
        .is_some())
}

/// Deletes the rows of the thread's own branch it hides that no lineage sees any more.
fn free_hidden(tx: &Tx<'_>, session_id: &str) -> Result<()> {
    let Some((head, _)) = head_of(tx, session_id)? else {
        return Ok(());
    };
    let rows = tx.query_map(
        "SELECT message_id FROM langgraph_hidden WHERE branch_id = ?1",
        args![head.branch_id],
        |r| r.get::<i64>(0),
    )?;
    for message_id in rows {
        free_if_unseen(tx, message_id)?;
    }
    Ok(())
}

/// Deletes checkpoint row `message_id`, with the writes its holders made to it, when every
/// branch whose lineage holds it hides it: its own branch, and each fork of a holder made
/// at or after the row's seq. A snapshot does not hold it: a checkpoint removed on purpose
/// is not kept for a restore.
fn free_if_unseen(tx: &Tx<'_>, message_id: i64) -> Result<bool> {
    let Some((ns, id)) = tx.query_opt(
        "SELECT checkpoint_ns, checkpoint_id FROM langgraph_checkpoints WHERE message_id = ?1",
        args![message_id],
        |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
    )?
    else {
        return Ok(false);
    };
    let seq = message_id & lineage::MAX_SEQ;
    let mut holders = vec![message_id >> 32];
    let mut next = 0;
    while next < holders.len() {
        let branch = holders[next];
        tx.query_each(
            "SELECT id FROM branches WHERE parent_branch_id = ?1 AND fork_seq >= ?2",
            args![branch, seq],
            |r| {
                holders.push(r.get(0)?);
                Ok(())
            },
        )?;
        next += 1;
    }
    for holder in &holders {
        let extent: i64 = tx.query_one(
            "SELECT coalesce(max(m.seq), b.fork_seq) FROM branches b
             LEFT JOIN messages m ON m.id BETWEEN ?2 AND ?3
             WHERE b.id = ?1 GROUP BY b.fork_seq",
            args![
                holder,
                row_id(*holder, 1),
                row_id(*holder, lineage::MAX_SEQ)
            ],
            |r| r.get(0),
        )?;
        let segments = lineage::segments(tx, *holder, extent)?;
        if !hidden_in(tx, &segments)?.contains_key(&message_id) {
            return Ok(false);
        }
    }
    for holder in &holders {
        tx.execute(
            "DELETE FROM langgraph_writes
             WHERE branch_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3",
            args![holder, ns, id],
        )?;
    }
    tx.execute(
        "DELETE FROM langgraph_checkpoints WHERE message_id = ?1",
        args![message_id],
    )?;
    Ok(true)
}

/// Removes `doomed` checkpoints (rows `segments` show) from the thread, with the rows they
/// shadow (else those would show again): a row no other branch inherits is deleted (its
/// references and writes cascade, a blob goes with its last reference); a row another
/// session inherits is hidden from this thread from a marker message on, which also records
/// what was removed.
fn remove(
    tx: &Tx<'_>,
    session_id: &str,
    segments: &[Segment],
    doomed: &[Visible],
    why: &str,
) -> Result<()> {
    if doomed.is_empty() {
        return Ok(());
    }
    let keys: HashSet<(&str, &str)> = doomed
        .iter()
        .map(|r| (r.checkpoint_ns.as_str(), r.checkpoint_id.as_str()))
        .collect();
    let shown: HashSet<i64> = doomed.iter().map(|r| r.message_id).collect();
    let shadowed: Vec<Visible> = held(tx, segments, &hidden_in(tx, segments)?, None, None)?
        .into_iter()
        .filter(|r| {
            !shown.contains(&r.message_id)
                && keys.contains(&(r.checkpoint_ns.as_str(), r.checkpoint_id.as_str()))
        })
        .collect();
    let (mut head, version) = head_or_create(tx, session_id, false)?;
    let message = NewMessage::assistant(format!(
        "{why}: removed {} checkpoint{}",
        doomed.len(),
        if doomed.len() == 1 { "" } else { "s" }
    ));
    append_to_head(
        tx,
        session_id,
        &mut head,
        &Step::after(version),
        vec![message],
    )?;
    let mut forget = tx.repeated(
        "DELETE FROM langgraph_writes
         WHERE branch_id = ?1 AND checkpoint_ns = ?2 AND checkpoint_id = ?3",
    )?;
    // This thread's writes may be read by a copy made of it earlier: they stay while one is.
    let copied: bool = tx
        .query_opt(
            "SELECT 1 FROM branches WHERE parent_branch_id = ?1 LIMIT 1",
            args![head.branch_id],
            |r| r.get::<i64>(0),
        )?
        .is_some();
    for row in doomed.iter().chain(&shadowed) {
        if row.message_id >> 32 != head.branch_id || inherited(tx, row.message_id, head.branch_id)?
        {
            tx.execute(
                "INSERT INTO langgraph_hidden (branch_id, message_id, from_seq)
                 VALUES (?1, ?2, ?3) ON CONFLICT (branch_id, message_id) DO NOTHING",
                args![head.branch_id, row.message_id, head.length],
            )?;
            if copied {
                continue;
            }
        } else {
            tx.execute(
                "DELETE FROM langgraph_checkpoints WHERE message_id = ?1",
                args![row.message_id],
            )?;
            // A checkpoint left without its parent has none, as upstream's prune leaves it.
            // Its children are later rows of this branch, so no other branch reads them
            // either (none inherits the parent).
            tx.execute(
                "UPDATE langgraph_checkpoints SET parent_checkpoint_id = NULL
                 WHERE branch_id = ?1 AND checkpoint_ns = ?2 AND parent_checkpoint_id = ?3
                     AND message_id > ?4",
                args![
                    head.branch_id,
                    row.checkpoint_ns,
                    row.checkpoint_id,
                    row.message_id
                ],
            )?;
        }
        forget.execute(args![head.branch_id, row.checkpoint_ns, row.checkpoint_id])?;
    }
    Ok(())
}

/// Purge is about to delete the rows `branch` inherits (`inherited`: its lineage up to its
/// fork point, root first), whose messages it has copied into `branch` at the same seqs.
/// The checkpoint rows, references and writes that lineage sees are copied with them, so a
/// copy of a purged thread reads what it read before. A row an ancestor hid from `branch` is
/// not copied; one that `branch` or a fork of it hid stays hidden there.
pub(crate) fn copy_inherited(tx: &Tx<'_>, branch: i64, inherited: &[Segment]) -> Result<()> {
    // A rowid of `branch` at the seq of `message_id`.
    let moved = |column: &str| {
        format!(
            "CAST(?1 AS BIGINT) * 4294967296 + ({column} - ({column} / 4294967296) * 4294967296)"
        )
    };
    let hidden = hidden_in(tx, inherited)?;
    for seg in inherited.iter().filter(|s| s.upto > s.fork_seq) {
        let (lo, hi) = (
            row_id(seg.branch_id, seg.fork_seq + 1),
            row_id(seg.branch_id, seg.upto),
        );
        tx.execute(
            &format!(
                "INSERT INTO langgraph_checkpoints (message_id, branch_id, checkpoint_ns,
                     checkpoint_id, parent_checkpoint_id, run_id, checkpoint_type, checkpoint,
                     metadata)
                 SELECT {}, CAST(?1 AS BIGINT), checkpoint_ns, checkpoint_id,
                     parent_checkpoint_id, run_id, checkpoint_type, checkpoint, metadata
                 FROM langgraph_checkpoints WHERE message_id BETWEEN ?2 AND ?3",
                moved("message_id")
            ),
            args![branch, lo, hi],
        )?;
        tx.execute(
            &format!(
                "INSERT INTO langgraph_channels (message_id, channel, blob_id)
                 SELECT {}, channel, blob_id
                 FROM langgraph_channels WHERE message_id BETWEEN ?2 AND ?3",
                moved("message_id")
            ),
            args![branch, lo, hi],
        )?;
        for message_id in hidden.keys().filter(|m| **m >> 32 == seg.branch_id) {
            tx.execute(
                "DELETE FROM langgraph_checkpoints WHERE message_id = ?1",
                args![row_id(branch, message_id & lineage::MAX_SEQ)],
            )?;
        }
        tx.execute(
            &format!(
                "WITH RECURSIVE below (id) AS (
                     SELECT CAST(?1 AS BIGINT)
                     UNION
                     SELECT b.id FROM branches b JOIN below ON b.parent_branch_id = below.id
                 )
                 UPDATE langgraph_hidden SET message_id = {}
                 WHERE branch_id IN (SELECT id FROM below) AND message_id BETWEEN ?2 AND ?3
                     AND EXISTS (SELECT 1 FROM langgraph_checkpoints k
                                 WHERE k.message_id = {})",
                moved("message_id"),
                moved("langgraph_hidden.message_id")
            ),
            args![branch, lo, hi],
        )?;
    }
    // A row whose parent was hidden here, and so is not copied, has no parent, as it read
    // before (see [`forget_hidden_parent`]).
    for (ns, id) in hidden.values() {
        tx.execute(
            "UPDATE langgraph_checkpoints SET parent_checkpoint_id = NULL
             WHERE branch_id = ?1 AND checkpoint_ns = ?2 AND parent_checkpoint_id = ?3
                 AND NOT EXISTS (SELECT 1 FROM langgraph_checkpoints p
                                 WHERE p.branch_id = ?1 AND p.checkpoint_ns = ?2
                                     AND p.checkpoint_id = ?3)",
            args![branch, ns, id],
        )?;
    }
    // The writes this lineage sees: an ancestor's made before the lineage forked from it
    // (before the next branch of the lineage existed). The nearest ancestor's win.
    for (k, seg) in inherited.iter().enumerate().rev() {
        let next = inherited.get(k + 1).map_or(branch, |s| s.branch_id);
        tx.execute(
            "INSERT INTO langgraph_writes (branch_id, checkpoint_ns, checkpoint_id, task_id,
                 idx, newest_branch, channel, write_type, blob, task_path)
             SELECT CAST(?1 AS BIGINT), checkpoint_ns, checkpoint_id, task_id, idx,
                 newest_branch, channel, write_type, blob, task_path
             FROM langgraph_writes WHERE branch_id = ?2 AND newest_branch < ?3
             ON CONFLICT (branch_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING",
            args![branch, seg.branch_id, next],
        )?;
    }
    Ok(())
}

/// A checkpoint a lineage shows, as an export reads it: where its message is, the row, and
/// the blobs it reads (by blob id, so a value read by many checkpoints is read once).
#[derive(Debug, Clone)]
pub(crate) struct StoredCheckpoint {
    /// The message's position in the lineage, from 1.
    pub seq: i64,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    pub parent_checkpoint_id: Option<String>,
    pub checkpoint: Serialized,
    pub metadata: Metadata,
    /// The blob ids it reads, by channel name.
    pub blob_ids: Vec<i64>,
}

/// The checkpoints `segments` show (hidden and shadowed rows left out, as `list` leaves them
/// out), in history order.
pub(crate) fn stored_checkpoints(
    tx: &Tx<'_>,
    segments: &[Segment],
) -> Result<Vec<StoredCheckpoint>> {
    let mut out = Vec::new();
    for row in visible(tx, segments, None, None)? {
        let checkpoint = checkpoint_of(tx, row.message_id)?;
        let blob_ids = tx.query_map(
            "SELECT blob_id FROM langgraph_channels WHERE message_id = ?1 ORDER BY channel",
            args![row.message_id],
            |r| r.get(0),
        )?;
        out.push(StoredCheckpoint {
            seq: row.message_id & lineage::MAX_SEQ,
            metadata: parse_metadata(&row.metadata)?,
            checkpoint_ns: row.checkpoint_ns,
            checkpoint_id: row.checkpoint_id,
            parent_checkpoint_id: row.parent_checkpoint_id,
            checkpoint,
            blob_ids,
        });
    }
    Ok(out)
}

/// Blob `id` as the channel version it holds.
pub(crate) fn stored_blob(tx: &Tx<'_>, id: i64) -> Result<ChannelBlob> {
    tx.query_one(
        "SELECT channel, version, blob_type, blob FROM langgraph_blobs WHERE id = ?1",
        args![id],
        |r| {
            Ok(ChannelBlob {
                channel: r.get(0)?,
                version: r.get(1)?,
                value: Serialized {
                    kind: r.get(2)?,
                    bytes: r.get(3)?,
                },
            })
        },
    )
}

/// The pending writes `segments` show for `checkpoints` (namespace, id), as `(namespace, id,
/// write)`: those of each checkpoint together, in the order of `checkpoints`, each
/// checkpoint's in the order `get` returns them. One read of the writes per segment.
pub(crate) fn stored_writes(
    tx: &Tx<'_>,
    segments: &[Segment],
    checkpoints: &[(String, String)],
) -> Result<Vec<(String, String, PendingWrite)>> {
    let position: HashMap<(&str, &str), usize> = checkpoints
        .iter()
        .enumerate()
        .map(|(i, (ns, id))| ((ns.as_str(), id.as_str()), i))
        .collect();
    // (checkpoint's position, task_id, idx) → write; a later segment's write wins, as in `get`.
    let mut found: HashMap<(usize, String, i64), PendingWrite> = HashMap::new();
    for seg in segments {
        tx.query_each(
            "SELECT checkpoint_ns, checkpoint_id, task_id, idx, channel, write_type, blob,
                    task_path, newest_branch
             FROM langgraph_writes WHERE branch_id = ?1",
            args![seg.branch_id],
            |r| {
                let (ns, id): (String, String) = (r.get(0)?, r.get(1)?);
                let Some(&at) = position.get(&(ns.as_str(), id.as_str())) else {
                    return Ok(());
                };
                if write_visible(segments, seg.branch_id, r.get(8)?) {
                    let write = PendingWrite {
                        task_id: r.get(2)?,
                        idx: r.get(3)?,
                        channel: r.get(4)?,
                        value: Serialized {
                            kind: r.get(5)?,
                            bytes: Some(r.get(6)?),
                        },
                        task_path: r.get(7)?,
                    };
                    found.insert((at, write.task_id.clone(), write.idx), write);
                }
                Ok(())
            },
        )?;
    }
    let mut writes: Vec<(usize, PendingWrite)> =
        found.into_iter().map(|((at, _, _), w)| (at, w)).collect();
    writes.sort_by(|(a, x), (b, y)| {
        (a, &x.task_path, &x.task_id, x.idx).cmp(&(b, &y.task_path, &y.task_id, y.idx))
    });
    Ok(writes
        .into_iter()
        .map(|(at, w)| (checkpoints[at].0.clone(), checkpoints[at].1.clone(), w))
        .collect())
}

/// Stores checkpoint `id` of namespace `ns` on message row `message_id`, without its
/// channel references ([`refer_blob`] adds them).
pub(crate) fn insert_checkpoint_row(
    tx: &Tx<'_>,
    message_id: i64,
    ns: &str,
    id: &str,
    parent_checkpoint_id: Option<&str>,
    checkpoint: &Serialized,
    metadata: &Metadata,
) -> Result<()> {
    let metadata_text = serde_json::to_string(metadata)
        .map_err(|e| Error::invalid(format!("checkpoint metadata: {e}")))?;
    tx.execute(
        "INSERT INTO langgraph_checkpoints (message_id, branch_id, checkpoint_ns, checkpoint_id,
             parent_checkpoint_id, run_id, checkpoint_type, checkpoint, metadata)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        args![
            message_id,
            message_id >> 32,
            ns,
            id,
            parent_checkpoint_id,
            text_of(metadata, "run_id"),
            checkpoint.kind,
            checkpoint.bytes.as_deref().unwrap_or_default(),
            metadata_text,
        ],
    )?;
    Ok(())
}

/// Stores one channel version; returns its blob id for [`refer_blob`]. A blob no checkpoint
/// refers to is not deleted by the trigger: refer to it in the same transaction.
pub(crate) fn insert_blob(tx: &Tx<'_>, blob: &ChannelBlob) -> Result<i64> {
    tx.query_one(
        "INSERT INTO langgraph_blobs (channel, version, blob_type, blob)
         VALUES (?1, ?2, ?3, ?4) RETURNING id",
        args![
            blob.channel,
            blob.version,
            blob.value.kind,
            blob.value.bytes.as_deref()
        ],
        |r| r.get(0),
    )
}

/// Makes the checkpoint on `message_id` read `blob_id` for `channel`.
pub(crate) fn refer_blob(tx: &Tx<'_>, message_id: i64, channel: &str, blob_id: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO langgraph_channels (message_id, channel, blob_id) VALUES (?1, ?2, ?3)",
        args![message_id, channel, blob_id],
    )?;
    Ok(())
}

/// Stores `writes` against checkpoint `id` of namespace `ns` as written by branch
/// `branch_id` now: forks made later see them, as they see a `put_writes`.
pub(crate) fn insert_writes(
    tx: &Tx<'_>,
    branch_id: i64,
    ns: &str,
    id: &str,
    writes: &[PendingWrite],
) -> Result<()> {
    let newest_branch: i64 = tx.query_one("SELECT max(id) FROM branches", args![], |r| r.get(0))?;
    let mut insert = tx.repeated(
        "INSERT INTO langgraph_writes (branch_id, checkpoint_ns, checkpoint_id, task_id, idx,
             newest_branch, channel, write_type, blob, task_path)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for w in writes {
        insert.execute(args![
            branch_id,
            ns,
            id,
            w.task_id,
            w.idx,
            newest_branch,
            w.channel,
            w.value.kind,
            w.value.bytes.as_deref().unwrap_or_default(),
            w.task_path,
        ])?;
    }
    Ok(())
}
