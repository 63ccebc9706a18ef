//! Whole turns: a batch of messages appended in one transaction, idempotency keys that make a
//! retry write nothing, and `pop_message`, which undoes the last message as an edit.
//!
//! A key is unique within the session's current history, which may span several branches
//! (a fork inherits its parent's rows), so a lookup is one index seek per lineage segment
//! and per key: O(batch), whatever the history's length.

use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::heads::{
    append_to_head, check_version, fork_new_head, head_of, head_or_create, save_head, Step,
};
use crate::lineage::{self, row_id, Segment};
use crate::model::{check_unique_keys, validate_session_id, Message, NewMessage};
use crate::store::Store;

/// What [`Store::add_messages`] returns.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AddedMessages {
    /// The batch as stored, in order: just written, or found already stored.
    pub messages: Vec<Message>,
    /// Every message of the batch carried a key that was already stored, so nothing was
    /// written (a retry of a batch that had committed).
    pub already_stored: bool,
    /// The session's version afterwards.
    pub version: i64,
}

impl Store {
    /// Appends `messages` to the session's history in one transaction: all of them or none,
    /// at a cost that grows with the batch, not with the history. Creates the session if it
    /// does not exist, like [`Store::add_message`]. An empty batch is [`Error::InvalidInput`].
    ///
    /// Keys: if every message carries a key that is already stored in the current history,
    /// nothing is written and the stored messages are returned (`already_stored`), so a
    /// worker that died after the commit can simply retry. The stored messages win: a retry
    /// is recognised by its keys alone. A batch whose keys are partly stored is refused with
    /// [`Error::KeysPartlyStored`]; keys repeated within the batch are
    /// [`Error::InvalidInput`].
    pub fn add_messages(&self, session_id: &str, messages: &[NewMessage]) -> Result<AddedMessages> {
        self.append_batch(session_id, messages, None)
    }

    /// Like [`Store::add_messages`], but only if the session is still at `expected_version`;
    /// otherwise [`Error::Conflict`] and nothing is written. The session must exist. A retry
    /// of a stored batch returns it even though the version has moved (its own commit moved
    /// it).
    pub fn add_messages_at_version(
        &self,
        session_id: &str,
        messages: &[NewMessage],
        expected_version: i64,
    ) -> Result<AddedMessages> {
        self.append_batch(session_id, messages, Some(expected_version))
    }

    /// Removes the last message of the session's history and returns it, or `None` (writing
    /// nothing) when the history is empty. Like every edit it moves the head: the old head
    /// stays readable as a superseded branch, so [`Store::switch_branch`] or a snapshot
    /// brings the message back. A compaction that reaches the popped message no longer
    /// applies.
    pub fn pop_message(&self, session_id: &str) -> Result<Option<Message>> {
        validate_session_id(session_id)?;
        self.write(|tx| {
            let (head, version) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            if head.length == 0 {
                return Ok(None);
            }
            let segments = lineage::segments(tx, head.branch_id, head.length)?;
            let last = lineage::read_range(tx, &segments, head.length, head.length)?;
            let Step { version, now } = Step::after(version);
            let new_head = fork_new_head(
                tx,
                session_id,
                head.branch_id,
                &segments,
                head.length - 1,
                version,
                &now,
            )?;
            save_head(tx, session_id, &new_head, version, &now)?;
            Ok(last.into_iter().next())
        })
    }

    /// [`Store::add_message`] of a message with a key: a batch of one.
    pub(crate) fn append_keyed(
        &self,
        session_id: &str,
        message: NewMessage,
        expected_version: Option<i64>,
    ) -> Result<Message> {
        let added =
            self.append_batch(session_id, std::slice::from_ref(&message), expected_version)?;
        added.messages.into_iter().next().ok_or_else(|| {
            Error::Corrupt(format!(
                "session {session_id:?}: a batch of one stored nothing"
            ))
        })
    }

    fn append_batch(
        &self,
        session_id: &str,
        messages: &[NewMessage],
        expected_version: Option<i64>,
    ) -> Result<AddedMessages> {
        validate_session_id(session_id)?;
        if messages.is_empty() {
            return Err(Error::invalid("a batch needs at least one message"));
        }
        check_unique_keys(messages)?;
        let (added, cache_update) = self.write(|tx| {
            let (mut head, old_version) =
                head_or_create(tx, session_id, expected_version.is_none())?;
            // Keys before the version: a retry must succeed although its own commit moved it.
            if head.length > 0 && messages.iter().any(|m| m.key.is_some()) {
                let segments = lineage::segments(tx, head.branch_id, head.length)?;
                let stored = stored_keys(tx, &segments, messages)?;
                if stored.len() == messages.len() {
                    let mut found = Vec::with_capacity(stored.len());
                    for (_, seq) in &stored {
                        found.extend(lineage::read_range(tx, &segments, *seq, *seq)?);
                    }
                    let added = AddedMessages {
                        messages: found,
                        already_stored: true,
                        version: old_version,
                    };
                    return Ok((added, None));
                }
                if !stored.is_empty() {
                    return Err(Error::KeysPartlyStored {
                        session: session_id.to_string(),
                        new: messages.len() - stored.len(),
                        stored: stored.into_iter().map(|(k, _)| k).collect(),
                    });
                }
            }
            check_version(session_id, expected_version, old_version)?;
            let (old_length, step) = (head.length, Step::after(old_version));
            let stored = append_to_head(tx, session_id, &mut head, &step, messages.to_vec())?;
            let added = AddedMessages {
                messages: stored,
                already_stored: false,
                version: step.version,
            };
            Ok((added, Some((old_version, old_length, head))))
        })?;
        if let Some((old_version, old_length, head)) = cache_update {
            self.cache().appended(
                session_id,
                old_version,
                old_length,
                added.version,
                &head,
                &added.messages,
            );
        }
        Ok(added)
    }
}

/// The keys of `messages` stored in the lineage, with their seqs, in batch order.
fn stored_keys(
    tx: &Tx<'_>,
    segments: &[Segment],
    messages: &[NewMessage],
) -> Result<Vec<(String, i64)>> {
    const SQL: &str =
        "SELECT seq FROM messages WHERE branch_id = ?1 AND key = ?2 AND id BETWEEN ?3 AND ?4";
    let mut out = Vec::new();
    for key in messages.iter().filter_map(|m| m.key.as_deref()) {
        for seg in segments.iter().rev() {
            if seg.upto <= seg.fork_seq {
                continue;
            }
            let seq: Option<i64> = tx.value(
                SQL,
                args![
                    seg.branch_id,
                    key,
                    row_id(seg.branch_id, seg.fork_seq + 1),
                    row_id(seg.branch_id, seg.upto)
                ],
            )?;
            if let Some(seq) = seq {
                out.push((key.to_string(), seq));
                break;
            }
        }
    }
    Ok(out)
}
