//! What a history holds beside its messages, in the export format: usage records, LangGraph
//! checkpoints with the channel values they read (each stored value once), and the pending
//! writes of those checkpoints, kept on message rows; and compactions, kept on the branch.
//! Read from a lineage for an export; checked, compared and written for an import. The rows
//! themselves are `usage.rs`'s, `checkpoints.rs`'s and `compaction.rs`'s (whose rules the
//! import checks, as `compact` does).

use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::checkpoints::{
    insert_blob, insert_checkpoint_row, insert_writes, refer_blob, stored_blob, stored_checkpoints,
    stored_writes, ChannelBlob, PendingWrite, Serialized,
};
use crate::compaction::{check_summary, check_through, insert_compaction};
use crate::db::sql::Tx;
use crate::error::{Error, Result};
use crate::lineage::{row_id, Segment};
use crate::model::{check_json, time_text};
use crate::usage::{put_record, records_of, UsageRecord};

use super::image::{ChannelValueExport, CheckpointExport, CheckpointWriteExport, CompactionExport};

/// The lists of one history (a session's current history or one of its branches).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Beside<'m> {
    pub usage_records: &'m [UsageRecord],
    pub checkpoints: &'m [CheckpointExport],
    pub writes: &'m [CheckpointWriteExport],
}

impl Beside<'_> {
    pub fn is_empty(&self) -> bool {
        self.usage_records.is_empty() && self.checkpoints.is_empty() && self.writes.is_empty()
    }

    /// How many of the first `length` messages carry the same record and checkpoint here
    /// and in `other` (both of one image, so equal value indexes are equal values): the
    /// rows a branch can share with another.
    pub fn agreeing(&self, other: &Beside<'_>, length: usize) -> usize {
        let usage = agreeing(self.usage_records, other.usage_records, |r| r.index, length);
        let checkpoints = agreeing(self.checkpoints, other.checkpoints, |c| c.index, length);
        usage.min(checkpoints)
    }
}

/// The first index below `length` where two lists sorted by index differ, else `length`.
fn agreeing<T: PartialEq>(a: &[T], b: &[T], index: impl Fn(&T) -> u64, length: usize) -> usize {
    for i in 0.. {
        let x = a.get(i).filter(|x| index(x) < length as u64);
        let y = b.get(i).filter(|y| index(y) < length as u64);
        match (x, y) {
            (None, None) => break,
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                let first = x.into_iter().chain(y).map(&index).min().unwrap_or(0);
                return first as usize;
            }
        }
    }
    length
}

/// The lists of one history, read from the store.
#[derive(Debug, Default)]
pub(super) struct Read {
    pub usage_records: Vec<UsageRecord>,
    pub checkpoints: Vec<CheckpointExport>,
    pub writes: Vec<CheckpointWriteExport>,
}

impl Read {
    pub fn beside(&self) -> Beside<'_> {
        Beside {
            usage_records: &self.usage_records,
            checkpoints: &self.checkpoints,
            writes: &self.writes,
        }
    }
}

/// Whether two histories' lists say the same, each checkpoint's channels compared by the
/// values they name in its own session's `values`.
pub(super) fn same(
    a: &Beside<'_>,
    a_values: &[ChannelValueExport],
    b: &Beside<'_>,
    b_values: &[ChannelValueExport],
) -> bool {
    let values =
        |c: &CheckpointExport, list: &[ChannelValueExport]| -> Vec<Option<ChannelValueExport>> {
            c.channels
                .iter()
                .map(|&i| list.get(i as usize).cloned())
                .collect()
        };
    a.usage_records == b.usage_records
        && a.writes == b.writes
        && a.checkpoints.len() == b.checkpoints.len()
        && a.checkpoints.iter().zip(b.checkpoints).all(|(x, y)| {
            CheckpointExport {
                channels: Vec::new(),
                ..x.clone()
            } == CheckpointExport {
                channels: Vec::new(),
                ..y.clone()
            } && values(x, a_values) == values(y, b_values)
        })
}

/// A session's channel values as an export collects them: each stored blob once, in the
/// order first read.
#[derive(Debug, Default)]
pub(super) struct Values {
    by_blob: HashMap<i64, u64>,
    pub list: Vec<ChannelValueExport>,
}

impl Values {
    fn index_of(&mut self, tx: &Tx<'_>, blob_id: i64) -> Result<u64> {
        if let Some(&i) = self.by_blob.get(&blob_id) {
            return Ok(i);
        }
        let blob = stored_blob(tx, blob_id)?;
        let i = self.list.len() as u64;
        self.list.push(ChannelValueExport {
            channel: blob.channel,
            version: blob.version,
            kind: blob.value.kind,
            bytes: blob.value.bytes.map(|b| STANDARD.encode(b)),
        });
        self.by_blob.insert(blob_id, i);
        Ok(i)
    }
}

/// What the lineage `segments` (a history of `length` messages) holds beside its messages;
/// the values its checkpoints read go to `values`.
pub(super) fn read(tx: &Tx<'_>, segments: &[Segment], values: &mut Values) -> Result<Read> {
    let usage_records = records_of(tx, segments)?;
    let mut checkpoints = Vec::new();
    for stored in stored_checkpoints(tx, segments)? {
        let mut channels = Vec::with_capacity(stored.blob_ids.len());
        for blob_id in &stored.blob_ids {
            channels.push(values.index_of(tx, *blob_id)?);
        }
        checkpoints.push(CheckpointExport {
            index: (stored.seq - 1) as u64,
            checkpoint_ns: stored.checkpoint_ns,
            checkpoint_id: stored.checkpoint_id,
            parent_checkpoint_id: stored.parent_checkpoint_id,
            kind: stored.checkpoint.kind,
            checkpoint: STANDARD.encode(stored.checkpoint.bytes.unwrap_or_default()),
            metadata: stored.metadata,
            channels,
        });
    }
    let ids: Vec<(String, String)> = checkpoints
        .iter()
        .map(|c| (c.checkpoint_ns.clone(), c.checkpoint_id.clone()))
        .collect();
    let writes = stored_writes(tx, segments, &ids)?
        .into_iter()
        .map(|(ns, id, w)| CheckpointWriteExport {
            checkpoint_ns: ns,
            checkpoint_id: id,
            task_id: w.task_id,
            idx: w.idx,
            channel: w.channel,
            kind: w.value.kind,
            bytes: STANDARD.encode(w.value.bytes.unwrap_or_default()),
            task_path: w.task_path,
        })
        .collect();
    Ok(Read {
        usage_records,
        checkpoints,
        writes,
    })
}

/// Checks the lists of a history of `messages` messages against it and the session's
/// `values`; `place` prefixes a refusal (`""` or `branch "alt": `). Bytes are decoded when
/// written, in the import's transaction.
pub(super) fn check(
    beside: &Beside<'_>,
    messages: usize,
    values: &[ChannelValueExport],
    place: &str,
) -> Result<()> {
    let refuse = |field: String, why: String| Err(Error::invalid(format!("{place}{field}: {why}")));
    let mut next = 0;
    for (i, record) in beside.usage_records.iter().enumerate() {
        if record.index < next || record.index >= messages as u64 {
            return refuse(
                format!("usage_records[{i}].index"),
                index_problem(record.index, next, messages),
            );
        }
        next = record.index + 1;
        check_json(
            &format!("{place}usage_records[{i}].details"),
            &record.usage.details,
        )?;
    }
    let mut next = 0;
    let mut ids = HashSet::new();
    for (i, checkpoint) in beside.checkpoints.iter().enumerate() {
        if checkpoint.index < next || checkpoint.index >= messages as u64 {
            return refuse(
                format!("checkpoints[{i}].index"),
                index_problem(checkpoint.index, next, messages),
            );
        }
        next = checkpoint.index + 1;
        if !ids.insert((&checkpoint.checkpoint_ns, &checkpoint.checkpoint_id)) {
            return refuse(
                format!("checkpoints[{i}]"),
                format!(
                    "checkpoint {:?} of namespace {:?} appears twice",
                    checkpoint.checkpoint_id, checkpoint.checkpoint_ns
                ),
            );
        }
        let mut channels = HashSet::new();
        for (j, &value) in checkpoint.channels.iter().enumerate() {
            let Some(value) = values.get(value as usize) else {
                return refuse(
                    format!("checkpoints[{i}].channels[{j}]"),
                    format!(
                        "{value} is not an index of checkpoint_values, which has {}",
                        values.len()
                    ),
                );
            };
            if !channels.insert(&value.channel) {
                return refuse(
                    format!("checkpoints[{i}].channels[{j}]"),
                    format!("a second value of channel {:?}", value.channel),
                );
            }
        }
    }
    let mut tasks = HashSet::new();
    for (i, write) in beside.writes.iter().enumerate() {
        if !tasks.insert((
            &write.checkpoint_ns,
            &write.checkpoint_id,
            &write.task_id,
            write.idx,
        )) {
            return refuse(
                format!("checkpoint_writes[{i}]"),
                format!(
                    "task {:?} writes index {} of checkpoint {:?} twice",
                    write.task_id, write.idx, write.checkpoint_id
                ),
            );
        }
        if !ids.contains(&(&write.checkpoint_ns, &write.checkpoint_id)) {
            return refuse(
                format!("checkpoint_writes[{i}]"),
                format!(
                    "no checkpoint {:?} of namespace {:?} in this history",
                    write.checkpoint_id, write.checkpoint_ns
                ),
            );
        }
    }
    Ok(())
}

fn index_problem(index: u64, next: u64, messages: usize) -> String {
    if index >= messages as u64 {
        format!("{index} is past the end of the history, which has {messages} messages")
    } else {
        format!("{index} is not above the index before it ({})", next - 1)
    }
}

/// The value of the session's `checkpoint_values[i]`, written when a checkpoint first reads
/// it: each value is stored once however many checkpoints and branches read it.
pub(super) struct Blobs<'m> {
    values: &'m [ChannelValueExport],
    stored: Vec<Option<i64>>,
}

impl<'m> Blobs<'m> {
    pub fn new(values: &'m [ChannelValueExport]) -> Self {
        Blobs {
            values,
            stored: vec![None; values.len()],
        }
    }

    fn blob_id(&mut self, tx: &Tx<'_>, i: u64) -> Result<(&'m str, i64)> {
        let value = &self.values[i as usize];
        if let Some(id) = self.stored[i as usize] {
            return Ok((&value.channel, id));
        }
        let bytes = match &value.bytes {
            Some(text) => Some(decode(text, "", &format!("checkpoint_values[{i}].bytes"))?),
            None => None,
        };
        let id = insert_blob(
            tx,
            &ChannelBlob {
                channel: value.channel.clone(),
                version: value.version.clone(),
                value: Serialized {
                    kind: value.kind.clone(),
                    bytes,
                },
            },
        )?;
        self.stored[i as usize] = Some(id);
        Ok((&value.channel, id))
    }
}

/// Writes the records and checkpoints of messages `from..` of a checked history onto the
/// rows of branch `branch_id` (which holds those messages at their positions).
pub(super) fn write_rows(
    tx: &Tx<'_>,
    branch_id: i64,
    from: usize,
    beside: &Beside<'_>,
    blobs: &mut Blobs<'_>,
    place: &str,
) -> Result<()> {
    let row = |index: u64| row_id(branch_id, index as i64 + 1);
    for record in beside
        .usage_records
        .iter()
        .filter(|r| r.index >= from as u64)
    {
        put_record(
            tx,
            row(record.index),
            &record.usage,
            &time_text(&record.recorded_at),
        )?;
    }
    for (i, checkpoint) in beside.checkpoints.iter().enumerate() {
        if checkpoint.index < from as u64 {
            continue;
        }
        let bytes = decode(
            &checkpoint.checkpoint,
            place,
            &format!("checkpoints[{i}].checkpoint"),
        )?;
        let message_id = row(checkpoint.index);
        insert_checkpoint_row(
            tx,
            message_id,
            &checkpoint.checkpoint_ns,
            &checkpoint.checkpoint_id,
            checkpoint.parent_checkpoint_id.as_deref(),
            &Serialized {
                kind: checkpoint.kind.clone(),
                bytes: Some(bytes),
            },
            &checkpoint.metadata,
        )?;
        for &value in &checkpoint.channels {
            let (channel, blob_id) = blobs.blob_id(tx, value)?;
            refer_blob(tx, message_id, channel, blob_id)?;
        }
    }
    Ok(())
}

/// Writes a checked history's pending writes as branch `branch_id`'s, once every branch of
/// the session exists: no branch of the import sees another's, forks made later see them.
pub(super) fn write_writes(
    tx: &Tx<'_>,
    branch_id: i64,
    writes: &[CheckpointWriteExport],
    place: &str,
) -> Result<()> {
    let mut start = 0;
    while start < writes.len() {
        let (ns, id) = (&writes[start].checkpoint_ns, &writes[start].checkpoint_id);
        let end = start
            + writes[start..]
                .iter()
                .take_while(|w| (&w.checkpoint_ns, &w.checkpoint_id) == (ns, id))
                .count();
        let mut batch = Vec::with_capacity(end - start);
        for (i, w) in writes.iter().enumerate().take(end).skip(start) {
            batch.push(PendingWrite {
                task_id: w.task_id.clone(),
                idx: w.idx,
                channel: w.channel.clone(),
                value: Serialized {
                    kind: w.kind.clone(),
                    bytes: Some(decode(
                        &w.bytes,
                        place,
                        &format!("checkpoint_writes[{i}].bytes"),
                    )?),
                },
                task_path: w.task_path.clone(),
            });
        }
        insert_writes(tx, branch_id, ns, id, &batch)?;
        start = end;
    }
    Ok(())
}

fn decode(text: &str, place: &str, field: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(text)
        .map_err(|e| Error::invalid(format!("{place}{field}: not base64: {e}")))
}

/// Checks the compactions of a history of `messages` messages by the rules `compact` keeps
/// (`compaction::check_summary`, `compaction::check_through`), in order; `place` prefixes a
/// refusal (`session "s": ` and the branch).
pub(super) fn check_compactions(
    compactions: &[CompactionExport],
    messages: usize,
    place: &str,
) -> Result<()> {
    let length = i64::try_from(messages).unwrap_or(i64::MAX);
    let mut current = None;
    for (i, compaction) in compactions.iter().enumerate() {
        let refuse = |e: Error| match e {
            Error::InvalidInput(why) => Error::invalid(format!("{place}compactions[{i}]: {why}")),
            other => other,
        };
        check_summary(&compaction.summary).map_err(refuse)?;
        for (field, tokens) in [
            ("tokens_before", compaction.tokens_before),
            ("tokens_after", compaction.tokens_after),
        ] {
            if tokens.is_some_and(|t| t > i64::MAX as u64) {
                return Err(refuse(Error::invalid(format!("{field} is too large"))));
            }
        }
        current = Some(
            check_through(compaction.through_index, length, current, "the history")
                .map_err(refuse)?,
        );
    }
    Ok(())
}

/// Records a checked history's compactions on branch `branch_id`, created in this
/// transaction, in their order.
pub(super) fn write_compactions(
    tx: &Tx<'_>,
    branch_id: i64,
    compactions: &[CompactionExport],
) -> Result<()> {
    for compaction in compactions {
        insert_compaction(
            tx,
            branch_id,
            compaction.through_index as i64 + 1,
            &check_summary(&compaction.summary)?,
            (compaction.tokens_before, compaction.tokens_after),
            &time_text(&compaction.created_at),
        )?;
    }
    Ok(())
}
