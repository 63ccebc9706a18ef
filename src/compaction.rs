//! Lossless compaction: a recorded pointer that makes a history's *working* view the summary
//! followed by the messages after the compacted range, while the *full* history keeps every
//! message (readable, searchable, restorable).
//!
//! A compaction is a row `(branch, through_seq, summary)` in `compactions`; no message is
//! copied or removed. Compacting moves the head to a new branch that inherits the whole
//! history, like every edit, and the row belongs to that branch. So a branch's compactions are
//! fixed in the transaction that creates it: a new head made from a history (a revert, a pop,
//! a restore, a fork, a branch) gets copies of the compactions that end within the part it
//! keeps, and nothing else ever adds one. The cache relies on this: an unchanged head branch
//! has an unchanged working view, and a compaction moves the head, hence `head_since`.
//!
//! In the working view the summary takes the position of the last compacted message (index
//! `through_index`), so the messages after it keep their indexes: revert, fork and snapshots
//! use the same indexes as the full history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::heads::{check_version, fork_new_head, head_of, save_head, Step};
use crate::history::{in_effect, summary_message, History};
use crate::lineage;
use crate::model::{parse_time, validate_session_id, Message, NewMessage, Role};
use crate::store::Store;

/// A compaction in effect on a session's current history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compaction {
    /// Messages `0..=through_index` of the full history are summarized.
    pub through_index: u64,
    /// The summary, at index `through_index` of the working history.
    pub summary: Message,
    /// Tokens of the compacted range and of the summary, when the summary message carried
    /// them as its input and output tokens (the summarizing call read the range and wrote
    /// the summary).
    pub tokens_before: Option<u64>,
    pub tokens_after: Option<u64>,
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Compacts the session's history: its working history ([`Store::chat_history`])
    /// becomes `summary` followed by the messages after `through_index`. Nothing is removed:
    /// [`Store::full_history`] and search still see every message, and the previous head
    /// stays as a superseded branch (switching to it undoes the compaction). A later
    /// compaction must cover at least what the current one covers (its summary then stands
    /// for the earlier summary too). Refused with [`Error::InvalidInput`] when
    /// `through_index` is past the end, ends before the current compaction, or would separate
    /// a tool call from its results (the message after it is a `tool` result), and when the
    /// summary is a `tool` message or carries a key.
    pub fn compact(
        &self,
        session_id: &str,
        summary: NewMessage,
        through_index: u64,
    ) -> Result<Compaction> {
        self.compact_in(session_id, summary, through_index, None)
    }

    /// [`Store::compact`] only if the session is still at `expected_version`; otherwise
    /// [`Error::Conflict`] and nothing is written.
    pub fn compact_at_version(
        &self,
        session_id: &str,
        summary: NewMessage,
        through_index: u64,
        expected_version: i64,
    ) -> Result<Compaction> {
        self.compact_in(session_id, summary, through_index, Some(expected_version))
    }

    /// Every message of the session's current history, compacted ones included, oldest
    /// first; no summary. Read from the file, bypassing the cache.
    pub fn full_history(&self, session_id: &str) -> Result<History> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            let (head, version) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            let segments = lineage::segments(tx, head.branch_id, head.length)?;
            let messages = lineage::read_range(tx, &segments, 1, head.length)?;
            Ok(History::new(messages, version, head.length))
        })
    }

    /// The compactions recorded on the session's current history, oldest range first; the
    /// last one is in effect.
    pub fn compactions(&self, session_id: &str) -> Result<Vec<Compaction>> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            let (head, _) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            compactions_of(tx, head.branch_id, head.length)
        })
    }

    fn compact_in(
        &self,
        session_id: &str,
        summary: NewMessage,
        through_index: u64,
        expected_version: Option<i64>,
    ) -> Result<Compaction> {
        validate_session_id(session_id)?;
        let text = check_summary(&summary)?;
        self.write(|tx| {
            let (head, version) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            check_version(session_id, expected_version, version)?;
            let current = in_effect(tx, head.branch_id, head.length)?.map(|(_, through)| through);
            let through = check_through(
                through_index,
                head.length,
                current,
                &format!("session {session_id:?}"),
            )?;
            // Only at the moment of compacting: messages appended later may be anything, so
            // a recorded compaction can be followed by a tool result (see `check_through`).
            let segments = lineage::segments(tx, head.branch_id, head.length)?;
            if through < head.length {
                let next = lineage::read_range(tx, &segments, through + 1, through + 1)?;
                if next.first().is_some_and(|m| m.role() == Role::Tool) {
                    return Err(Error::invalid(format!(
                        "message {} is a tool result: compacting through index \
                         {through_index} would separate it from its tool call",
                        through
                    )));
                }
            }
            let Step { version, now } = Step::after(version);
            let new_head = fork_new_head(
                tx,
                session_id,
                head.branch_id,
                &segments,
                head.length,
                version,
                &now,
            )?;
            insert_compaction(
                tx,
                new_head.branch_id,
                through,
                &text,
                (summary.input_tokens, summary.output_tokens),
                &now,
            )?;
            save_head(tx, session_id, &new_head, version, &now)?;
            Ok(Compaction {
                through_index,
                tokens_before: summary.input_tokens,
                tokens_after: summary.output_tokens,
                created_at: parse_time(&now)?,
                summary: Message {
                    index: through_index,
                    created_at: parse_time(&now)?,
                    body: summary,
                },
            })
        })
    }
}

/// Checks a summary by the rules every recorded compaction keeps (a valid message, not a
/// `tool` result, no key: it stands in the working view for messages, not as one of them);
/// returns the text it is stored as.
pub(crate) fn check_summary(summary: &NewMessage) -> Result<String> {
    summary
        .validate()
        .map_err(|e| Error::invalid(format!("summary: {e}")))?;
    if summary.key.is_some() || summary.role == Role::Tool {
        return Err(Error::invalid(
            "a summary cannot be a tool result or carry a key",
        ));
    }
    serde_json::to_string(summary)
        .map_err(|e| Error::invalid(format!("summary cannot be serialized: {e}")))
}

/// Checks where a compaction ends on a history of `length` messages (`history` names it in a
/// refusal) whose compaction before it ends at seq `current`; returns its through seq. The
/// rules every recorded compaction keeps: within the history, and not before the one before
/// it (a later summary stands for the earlier one too). Whether a tool result follows the
/// range is checked by `compact` alone: messages appended after a compaction that ended at
/// the end of its history may be anything.
pub(crate) fn check_through(
    through_index: u64,
    length: i64,
    current: Option<i64>,
    history: &str,
) -> Result<i64> {
    let through = match i64::try_from(through_index) {
        Ok(i) if i < length => i + 1,
        _ => {
            return Err(Error::invalid(format!(
                "through index {through_index} is past the end of {history}, which has \
                 {length} messages"
            )))
        }
    };
    match current {
        Some(current) if through < current => Err(Error::invalid(format!(
            "through index {through_index} ends before the compaction in effect (through \
             index {}); a later compaction must cover it",
            current - 1
        ))),
        _ => Ok(through),
    }
}

/// Records a compaction of branch `branch_id` through seq `through`, its summary stored as
/// `summary` (from [`check_summary`]). Only for a branch created in the same transaction: a
/// branch's compactions never change once it is visible.
pub(crate) fn insert_compaction(
    tx: &Tx<'_>,
    branch_id: i64,
    through: i64,
    summary: &str,
    (tokens_before, tokens_after): (Option<u64>, Option<u64>),
    created_at: &str,
) -> Result<()> {
    let tokens = |t: Option<u64>| {
        t.map(|t| i64::try_from(t).map_err(|_| Error::invalid(format!("{t} tokens is too many"))))
            .transpose()
    };
    tx.execute(
        "INSERT INTO compactions (branch_id, through_seq, summary, tokens_before, tokens_after,
             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![
            branch_id,
            through,
            summary,
            tokens(tokens_before)?,
            tokens(tokens_after)?,
            created_at
        ],
    )?;
    Ok(())
}

/// Forgets the compactions of branch `branch_id`, created in this transaction from a history
/// whose compactions it carried: for an import that gives it those of its image instead.
pub(crate) fn clear_compactions(tx: &Tx<'_>, branch_id: i64) -> Result<()> {
    tx.execute(
        "DELETE FROM compactions WHERE branch_id = ?1",
        args![branch_id],
    )?;
    Ok(())
}

/// The compactions of branch `branch_id`'s history of `length` messages, oldest range first.
pub(crate) fn compactions_of(tx: &Tx<'_>, branch_id: i64, length: i64) -> Result<Vec<Compaction>> {
    tx.query_map(
        "SELECT through_seq, summary, tokens_before, tokens_after, created_at
         FROM compactions WHERE branch_id = ?1 AND through_seq <= ?2
         ORDER BY through_seq, id",
        args![branch_id, length],
        |row| {
            let through: i64 = row.get(0)?;
            let created_at: String = row.get(4)?;
            Ok(Compaction {
                through_index: (through - 1) as u64,
                summary: summary_message(&row.get::<String>(1)?, through, &created_at)?,
                tokens_before: row.get::<Option<i64>>(2)?.map(|t| t as u64),
                tokens_after: row.get::<Option<i64>>(3)?.map(|t| t as u64),
                created_at: parse_time(&created_at)?,
            })
        },
    )
}
