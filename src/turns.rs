//! Whole turns: a batch of messages appended in one transaction, idempotency keys that make a
//! retry write nothing, and `pop_message`, which undoes the last message as an edit.
//!
//! A key is unique within the session's current history, which may span several branches
//! (a fork inherits its parent's rows), so a lookup is one index seek per lineage segment
//! and per key: O(batch), whatever the history's length.

use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::heads::{
    append_to_head, check_version, fork_new_head, head_of, head_or_create, insert_session,
    save_head, Step,
};
use crate::lineage::{self, row_id, Segment};
use crate::model::{
    check_json, check_unique_keys, validate_session_id, Message, Metadata, NewMessage, NewSession,
};
use crate::session_row::merge_metadata;
use crate::store::Store;

/// How [`Store::add_messages_with`] treats keys of the batch that the history already holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyMode {
    /// The batch is one unit: if every message's key is stored, nothing is written (a retry
    /// of a batch that committed); if only some are, the batch is refused with
    /// [`Error::KeysPartlyStored`] and nothing is written.
    #[default]
    Batch,
    /// Each message is its own unit: the messages whose keys are stored are skipped and the
    /// others are appended, in the batch's order, in one transaction. Messages without a key
    /// are always appended. [`AddedMessages::written`] says which were written.
    Each,
}

/// Options of [`Store::add_messages_with`]; the default is [`Store::add_messages`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddOptions {
    /// How keys already stored are treated.
    pub keys: KeyMode,
    /// Write only if the session is at this version, otherwise [`Error::Conflict`]; the
    /// session must then exist. `None` creates a missing session.
    pub expected_version: Option<i64>,
    /// Merged into the session's metadata in the same transaction as the append, as
    /// [`Store::update_metadata`] merges (a `null` value removes the key); only when the
    /// append writes something.
    pub metadata: Option<Metadata>,
    /// Create the session with these fields in the same transaction as the append (its id
    /// is the call's): it must not exist yet, otherwise [`Error::AlreadyExists`] and nothing
    /// is written. Excludes `expected_version`.
    pub new_session: Option<NewSession>,
}

/// Where keys are in a session's current history, as [`Store::find_keys`] read them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FoundKeys {
    /// The session's version when they were read.
    pub version: i64,
    /// For each key asked, in order, the index of the message that carries it, or `None`.
    pub indices: Vec<Option<u64>>,
}

/// What [`Store::add_messages`] returns.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AddedMessages {
    /// The batch as stored, in order: just written, or found already stored.
    pub messages: Vec<Message>,
    /// For each message of the batch, in order, whether this call wrote it (`false`: its key
    /// was already stored, and `messages` has the stored one).
    pub written: Vec<bool>,
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
    /// [`Error::KeysPartlyStored`] ([`Store::add_messages_with`] and [`KeyMode::Each`] store
    /// just the new ones instead); keys repeated within the batch are
    /// [`Error::InvalidInput`].
    pub fn add_messages(&self, session_id: &str, messages: &[NewMessage]) -> Result<AddedMessages> {
        self.add_messages_with(session_id, messages, &AddOptions::default())
    }

    /// [`Store::add_messages`] with options: per-message keys ([`KeyMode::Each`]: a batch
    /// that mixes stored and new keys appends exactly the new ones, in order), an expected
    /// version, a metadata patch written in the same transaction, or the fields of the
    /// session the batch creates (so a bad batch leaves no session behind).
    ///
    /// Whatever the mode, a batch whose every message carries a stored key writes nothing
    /// (not the metadata either) and returns the stored messages with `already_stored`, even
    /// if the version has moved since `expected_version` (its own commit moved it).
    /// Otherwise the version is checked, and the new messages go through the one append path
    /// every write takes.
    pub fn add_messages_with(
        &self,
        session_id: &str,
        messages: &[NewMessage],
        options: &AddOptions,
    ) -> Result<AddedMessages> {
        self.append_batch(session_id, messages, options)
    }

    /// Where `keys` are in the session's current history, and the version read with them:
    /// what a caller checks before a write it must plan (as [`Store::add_messages_with`] at
    /// that version). One index seek per key and lineage segment. A missing session is
    /// [`Error::NotFound`].
    pub fn find_keys(&self, session_id: &str, keys: &[&str]) -> Result<FoundKeys> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            let (head, version) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            let seqs = if head.length > 0 {
                let segments = lineage::segments(tx, head.branch_id, head.length)?;
                key_seqs(tx, &segments, keys.iter().map(|k| Some(*k)))?
            } else {
                vec![None; keys.len()]
            };
            Ok(FoundKeys {
                version,
                indices: seqs.into_iter().map(|s| s.map(|s| s as u64 - 1)).collect(),
            })
        })
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
        let options = AddOptions {
            expected_version: Some(expected_version),
            ..AddOptions::default()
        };
        self.append_batch(session_id, messages, &options)
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
        let options = AddOptions {
            expected_version,
            ..AddOptions::default()
        };
        let added = self.append_batch(session_id, std::slice::from_ref(&message), &options)?;
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
        options: &AddOptions,
    ) -> Result<AddedMessages> {
        validate_session_id(session_id)?;
        if messages.is_empty() {
            return Err(Error::invalid("a batch needs at least one message"));
        }
        check_unique_keys(messages)?;
        if let Some(patch) = &options.metadata {
            check_json("metadata", patch)?;
        }
        if let Some(new) = &options.new_session {
            if options.expected_version.is_some() {
                return Err(Error::invalid(
                    "a batch that creates its session cannot expect a version of it",
                ));
            }
            if new.id.as_deref().is_some_and(|id| id != session_id) {
                return Err(Error::invalid(format!(
                    "new_session's id {:?} is not the session appended to ({session_id:?})",
                    new.id.as_deref().unwrap_or_default()
                )));
            }
            new.validate()?;
        }
        let expected_version = options.expected_version;
        let (added, cache_update) = self.write(|tx| {
            let (mut head, old_version) = match &options.new_session {
                Some(new) => {
                    insert_session(tx, session_id, new, None, None)?;
                    head_or_create(tx, session_id, false)?
                }
                None => head_or_create(tx, session_id, expected_version.is_none())?,
            };
            // Keys before the version: a retry must succeed although its own commit moved it.
            let mut found = vec![None; messages.len()];
            let mut segments = Vec::new();
            if head.length > 0 && messages.iter().any(|m| m.key.is_some()) {
                segments = lineage::segments(tx, head.branch_id, head.length)?;
                found = key_seqs(tx, &segments, messages.iter().map(|m| m.key.as_deref()))?;
            }
            let stored: Vec<(usize, i64)> = found
                .iter()
                .enumerate()
                .filter_map(|(i, seq)| seq.map(|seq| (i, seq)))
                .collect();
            if !stored.is_empty() && stored.len() < messages.len() && options.keys == KeyMode::Batch
            {
                return Err(Error::KeysPartlyStored {
                    session: session_id.to_string(),
                    new: messages.len() - stored.len(),
                    stored: stored
                        .iter()
                        .filter_map(|(i, _)| messages[*i].key.clone())
                        .collect(),
                });
            }
            let mut kept = Vec::with_capacity(stored.len());
            for (_, seq) in &stored {
                kept.extend(lineage::read_range(tx, &segments, *seq, *seq)?);
            }
            if stored.len() == messages.len() {
                let added = AddedMessages {
                    messages: kept,
                    written: vec![false; messages.len()],
                    already_stored: true,
                    version: old_version,
                };
                return Ok((added, None));
            }
            check_version(session_id, expected_version, old_version)?;
            let new: Vec<NewMessage> = messages
                .iter()
                .zip(&found)
                .filter(|(_, seq)| seq.is_none())
                .map(|(m, _)| m.clone())
                .collect();
            let (old_length, step) = (head.length, Step::after(old_version));
            let appended = append_to_head(tx, session_id, &mut head, &step, new)?;
            if let Some(patch) = &options.metadata {
                merge_metadata(tx, session_id, patch.clone())?;
            }
            let written: Vec<bool> = found.iter().map(Option::is_none).collect();
            // The batch in order: what was appended, with the stored messages of a mixed
            // batch (KeyMode::Each) in their places; the cache then needs the appended apart.
            let (in_order, appended_apart) = if kept.is_empty() {
                (appended, None)
            } else {
                let (mut kept, mut new) = (kept.into_iter(), appended.iter().cloned());
                let in_order = written
                    .iter()
                    .filter_map(|w| if *w { new.next() } else { kept.next() })
                    .collect();
                (in_order, Some(appended))
            };
            let added = AddedMessages {
                messages: in_order,
                written,
                already_stored: false,
                version: step.version,
            };
            Ok((added, Some((old_version, old_length, head, appended_apart))))
        })?;
        if let Some((old_version, old_length, head, appended_apart)) = cache_update {
            self.cache().appended(
                session_id,
                old_version,
                old_length,
                added.version,
                &head,
                appended_apart.as_deref().unwrap_or(&added.messages),
            );
        }
        Ok(added)
    }
}

/// For each key (`None`: a message without one), the seq of the message of the lineage that
/// carries it, or `None`.
fn key_seqs<'k>(
    tx: &Tx<'_>,
    segments: &[Segment],
    keys: impl Iterator<Item = Option<&'k str>>,
) -> Result<Vec<Option<i64>>> {
    const SQL: &str =
        "SELECT seq FROM messages WHERE branch_id = ?1 AND key = ?2 AND id BETWEEN ?3 AND ?4";
    let mut out = Vec::new();
    for key in keys {
        let mut found = None;
        if let Some(key) = key {
            for seg in segments.iter().rev() {
                if seg.upto <= seg.fork_seq {
                    continue;
                }
                found = tx.value(
                    SQL,
                    args![
                        seg.branch_id,
                        key,
                        row_id(seg.branch_id, seg.fork_seq + 1),
                        row_id(seg.branch_id, seg.upto)
                    ],
                )?;
                if found.is_some() {
                    break;
                }
            }
        }
        out.push(found);
    }
    Ok(out)
}
