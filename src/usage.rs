//! Usage recorded against a message: what an agent's turn or run used (requests, tokens and
//! the provider's breakdowns), which the caller learns only after the messages are stored.
//!
//! A message's own usage fields ([`NewMessage::with_usage`]) are written with the message
//! and summed into the history's totals; a record is written afterwards, kept beside the
//! message row (`usage_records`, keyed by its rowid) and shares the row's fate: every history
//! that holds the message (its branch, forks, a revert that keeps it) has the record, and
//! whatever deletes the row (prune, purge, deleting the session) deletes the record. Popping
//! or replacing the message leaves the record on the superseded branch with it. Recording
//! changes no history, so the session's version stays (no cache or watcher sees it).
//!
//! `backup` and `restore` copy records, and so do export and import (not compactions). A
//! purge that keeps a fork of a purged session copies the rows the fork inherits with their
//! records: the fork reads what it read before.
//!
//! [`NewMessage::with_usage`]: crate::NewMessage::with_usage

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::db::sql::{args, Row, Tx};
use crate::error::{Error, Result};
use crate::heads::head_of;
use crate::lineage::{self, branch_id, row_id, Segment};
use crate::model::{check_json, now_text, parse_time, timestamp, validate_session_id, Metadata};
use crate::store::Store;

/// What a turn or run used, as an agent framework reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedUsage {
    /// Model requests made.
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    /// Breakdowns as the provider gives them (cached tokens, reasoning tokens, …), kept as
    /// given; at most [`crate::MAX_JSON_BYTES`] and [`crate::MAX_JSON_DEPTH`] levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Metadata>,
}

/// A usage record and the message it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// Index of the message in the history that was read.
    pub index: u64,
    #[serde(flatten)]
    pub usage: RecordedUsage,
    #[serde(serialize_with = "timestamp::serialize")]
    pub recorded_at: DateTime<Utc>,
}

impl Store {
    /// Records `usage` against message `index` of the session's current history (its full
    /// history: compacted messages count), replacing what was recorded against that message.
    /// [`Error::NotFound`] for an unknown session, [`Error::InvalidInput`] for an index
    /// past the end.
    pub fn record_usage(&self, session_id: &str, index: u64, usage: &RecordedUsage) -> Result<()> {
        validate_session_id(session_id)?;
        check_json("usage details", &usage.details)?;
        self.write(|tx| {
            let (head, _) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            let seq = count(index).saturating_add(1);
            if seq > head.length {
                return Err(Error::invalid(format!(
                    "index {index} is past the end of session {session_id:?}, which has {} \
                     messages",
                    head.length
                )));
            }
            let segments = lineage::segments(tx, head.branch_id, head.length)?;
            let owner = lineage::owner_of(&segments, seq).ok_or_else(|| {
                Error::Corrupt(format!("no branch of {session_id:?} holds seq {seq}"))
            })?;
            put_record(tx, row_id(owner, seq), usage, &now_text())
        })
    }

    /// The usage records of the session's current history (its full history), oldest
    /// message first; with `branch`, of that branch's history instead (superseded branches
    /// included, as [`Store::branch_history`]).
    pub fn recorded_usage(
        &self,
        session_id: &str,
        branch: Option<&str>,
    ) -> Result<Vec<UsageRecord>> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            let (head, _) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            let (branch, length) = match branch {
                None => (head.branch_id, head.length),
                Some(name) => {
                    let id = branch_id(tx, session_id, name)?;
                    (id, lineage::branch_length(tx, id)?)
                }
            };
            if length == 0 {
                return Ok(Vec::new());
            }
            records_of(tx, &lineage::segments(tx, branch, length)?)
        })
    }
}

/// Stores `usage` (its details checked by the caller) against message row `message_id`,
/// replacing what was recorded against it.
pub(crate) fn put_record(
    tx: &Tx<'_>,
    message_id: i64,
    usage: &RecordedUsage,
    recorded_at: &str,
) -> Result<()> {
    let details = usage
        .details
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::invalid(format!("usage details: {e}")))?;
    tx.execute(
        "INSERT INTO usage_records (message_id, requests, input_tokens, output_tokens,
             total_tokens, details, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (message_id) DO UPDATE SET requests = excluded.requests,
             input_tokens = excluded.input_tokens,
             output_tokens = excluded.output_tokens,
             total_tokens = excluded.total_tokens, details = excluded.details,
             recorded_at = excluded.recorded_at",
        args![
            message_id,
            count(usage.requests),
            count(usage.input_tokens),
            count(usage.output_tokens),
            count(usage.total_tokens),
            details,
            recorded_at,
        ],
    )?;
    Ok(())
}

/// The records of the rows of `segments`, in history order.
pub(crate) fn records_of(tx: &Tx<'_>, segments: &[Segment]) -> Result<Vec<UsageRecord>> {
    let mut out = Vec::new();
    for seg in segments.iter().filter(|s| s.upto > s.fork_seq) {
        tx.query_each(
            "SELECT message_id, requests, input_tokens, output_tokens, total_tokens, details,
                    recorded_at
             FROM usage_records WHERE message_id BETWEEN ?1 AND ?2 ORDER BY message_id",
            args![
                row_id(seg.branch_id, seg.fork_seq + 1),
                row_id(seg.branch_id, seg.upto)
            ],
            |row| {
                out.push(record_from_row(row, seg.branch_id)?);
                Ok(())
            },
        )?;
    }
    Ok(out)
}

fn record_from_row(row: &Row<'_>, branch_id: i64) -> Result<UsageRecord> {
    let message_id: i64 = row.get(0)?;
    let seq = message_id - row_id(branch_id, 0);
    let details = row
        .get::<Option<String>>(5)?
        .map(|text| match serde_json::from_str(&text) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            _ => Err(Error::Corrupt(format!(
                "usage record of message {message_id}: details is not a JSON object"
            ))),
        })
        .transpose()?;
    let tokens = |i: usize| -> Result<u64> { Ok(row.get::<i64>(i)?.max(0) as u64) };
    Ok(UsageRecord {
        index: (seq - 1) as u64,
        usage: RecordedUsage {
            requests: tokens(1)?,
            input_tokens: tokens(2)?,
            output_tokens: tokens(3)?,
            total_tokens: tokens(4)?,
            details,
        },
        recorded_at: parse_time(&row.get::<String>(6)?)?,
    })
}

/// A count as the schema stores it; a count past `i64::MAX` (never reached) saturates.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Purge is about to delete the rows `branch` inherits (`inherited`, root first), whose
/// messages it has copied into `branch` at the same seqs: their records come with them.
pub(crate) fn copy_inherited(tx: &Tx<'_>, branch: i64, inherited: &[Segment]) -> Result<()> {
    for seg in inherited.iter().filter(|s| s.upto > s.fork_seq) {
        tx.execute(
            "INSERT INTO usage_records (message_id, requests, input_tokens, output_tokens,
                 total_tokens, details, recorded_at)
             SELECT CAST(?1 AS BIGINT) * 4294967296
                     + (message_id - (message_id / 4294967296) * 4294967296),
                 requests, input_tokens, output_tokens, total_tokens, details, recorded_at
             FROM usage_records WHERE message_id BETWEEN ?2 AND ?3",
            args![
                branch,
                row_id(seg.branch_id, seg.fork_seq + 1),
                row_id(seg.branch_id, seg.upto)
            ],
        )?;
    }
    Ok(())
}
