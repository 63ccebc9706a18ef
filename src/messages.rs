//! Message operations: append, read (latest N, pages), replace a whole history.

use std::ops::Deref;
use std::sync::Arc;

use rusqlite::Transaction;

use crate::error::{Error, Result};
use crate::lineage::{self, Head};
use crate::model::{now_text, validate_session_id, Message, NewMessage, NewSession};
use crate::sessions::{
    fork_new_head, head_of, insert_session, next_version, require_head, save_head,
};
use crate::store::Store;

/// Messages of a session's history, oldest first, read in one transaction together with the
/// session's `version`. Derefs to `[Message]`; cloning it is cheap.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    messages: Arc<[Message]>,
    version: i64,
    length: u64,
}

impl History {
    pub(crate) fn new(messages: Vec<Message>, version: i64, length: i64) -> Self {
        History {
            messages: messages.into(),
            version,
            length: length as u64,
        }
    }

    /// The session's version when this history was read: pass it to a write that must not
    /// overwrite someone else's change.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Length of the whole history, which may exceed `len()` for a window or a page.
    pub fn total_len(&self) -> u64 {
        self.length
    }
}

impl Deref for History {
    type Target = [Message];

    fn deref(&self) -> &[Message] {
        &self.messages
    }
}

/// What [`Store::set_chat_history`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryChange {
    /// The session's version afterwards (unchanged when nothing was written).
    pub version: i64,
    /// Messages of the old history kept as the common prefix.
    pub kept: u64,
    /// Message rows written.
    pub written: u64,
    /// Whether the old head was superseded (kept as a branch named `<head>@<n>`).
    pub superseded: bool,
}

impl Store {
    /// Appends a message to the session's history, creating the session if it does not
    /// exist. One small transaction, whatever the history's length. Returns the stored message.
    pub fn add_message(&self, session_id: &str, message: NewMessage) -> Result<Message> {
        self.append(session_id, message, None)
    }

    /// Like [`Store::add_message`], but only if the session is still at `expected_version`;
    /// otherwise [`Error::Conflict`] and nothing is written. The session must exist.
    pub fn add_message_at_version(
        &self,
        session_id: &str,
        message: NewMessage,
        expected_version: i64,
    ) -> Result<Message> {
        self.append(session_id, message, Some(expected_version))
    }

    /// Appends a user message.
    pub fn add_user_message(&self, session_id: &str, content: &str) -> Result<Message> {
        self.add_message(session_id, NewMessage::user(content))
    }

    /// Appends an assistant message.
    pub fn add_assistant_message(&self, session_id: &str, content: &str) -> Result<Message> {
        self.add_message(session_id, NewMessage::assistant(content))
    }

    fn append(
        &self,
        session_id: &str,
        message: NewMessage,
        expected_version: Option<i64>,
    ) -> Result<Message> {
        validate_session_id(session_id)?;
        message.validate()?;
        self.write(|tx| {
            let mut head = match expected_version {
                Some(expected) => head_at_version(tx, session_id, expected)?,
                None => match head_of(tx, session_id)? {
                    Some((head, _)) => head,
                    None => {
                        insert_session(tx, session_id, &NewSession::default(), None, None)?;
                        require_head(tx, session_id)?
                    }
                },
            };
            let (version, now) = (next_version(tx)?, now_text());
            lineage::append(tx, &mut head, std::slice::from_ref(&message), &now)?;
            save_head(tx, session_id, &head, version, &now)?;
            Ok(Message {
                index: (head.length - 1) as u64,
                created_at: crate::model::parse_time(&now)?,
                body: message,
            })
        })
    }

    /// The latest `max_messages` messages (all with `None`), oldest first. A window never
    /// starts with a `tool` result whose call it cut off: such leading results are dropped.
    pub fn chat_history(&self, session_id: &str, max_messages: Option<usize>) -> Result<History> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            let (head, version) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            let lo = match max_messages {
                Some(n) => (head.length - count(n) + 1).max(1),
                None => 1,
            };
            let mut messages = read_head(tx, &head, lo, head.length)?;
            if lo > 1 {
                let cut = messages
                    .iter()
                    .take_while(|m| m.role() == crate::model::Role::Tool)
                    .count();
                messages.drain(..cut);
            }
            Ok(History::new(messages, version, head.length))
        })
    }

    /// Up to `limit` messages just before message `index` (exclusive), oldest first: page
    /// backwards through a long history.
    pub fn messages_before(&self, session_id: &str, index: u64, limit: usize) -> Result<History> {
        let hi = index as i64; // seq of the message before `index`
        self.page(session_id, (hi - count(limit) + 1).max(1), hi)
    }

    /// Up to `limit` messages just after message `index` (exclusive), oldest first.
    pub fn messages_after(&self, session_id: &str, index: u64, limit: usize) -> Result<History> {
        let lo = (index as i64).saturating_add(2);
        self.page(session_id, lo, lo.saturating_add(count(limit) - 1))
    }

    fn page(&self, session_id: &str, lo: i64, hi: i64) -> Result<History> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            let (head, version) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            let messages = read_head(tx, &head, lo, hi.min(head.length))?;
            Ok(History::new(messages, version, head.length))
        })
    }

    /// Replaces the session's history with `messages` in one transaction: a reader sees the
    /// old list or the new one, never a mix. The common prefix is kept; if `messages` only
    /// extends the history it is appended to, otherwise the old head is superseded (kept as a
    /// branch named `<head>@<n>`) and a new head forks at the first difference. Only the
    /// changed suffix is written.
    pub fn set_chat_history(
        &self,
        session_id: &str,
        messages: &[NewMessage],
    ) -> Result<HistoryChange> {
        self.replace(session_id, messages, None)
    }

    /// Like [`Store::set_chat_history`], but only if the session is still at
    /// `expected_version` (from [`History::version`]); otherwise [`Error::Conflict`] and
    /// nothing is written. The safe read-modify-write for callers who edit a history.
    pub fn set_chat_history_at_version(
        &self,
        session_id: &str,
        messages: &[NewMessage],
        expected_version: i64,
    ) -> Result<HistoryChange> {
        self.replace(session_id, messages, Some(expected_version))
    }

    fn replace(
        &self,
        session_id: &str,
        messages: &[NewMessage],
        expected_version: Option<i64>,
    ) -> Result<HistoryChange> {
        validate_session_id(session_id)?;
        for (i, message) in messages.iter().enumerate() {
            message
                .validate()
                .map_err(|e| Error::invalid(format!("message {i}: {e}")))?;
        }
        self.write(|tx| {
            let (mut head, version) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            if let Some(expected) = expected_version {
                check_version(session_id, expected, version)?;
            }
            let segments = lineage::segments(tx, head.branch_id, head.length)?;
            let current = lineage::read_range(tx, &segments, 1, head.length)?;
            let kept = current
                .iter()
                .zip(messages)
                .take_while(|(old, new)| old.body == **new)
                .count();
            if kept == current.len() && kept == messages.len() {
                return Ok(HistoryChange {
                    version,
                    kept: kept as u64,
                    written: 0,
                    superseded: false,
                });
            }
            let (version, now) = (next_version(tx)?, now_text());
            let superseded = kept < current.len();
            if superseded {
                head = fork_new_head(
                    tx,
                    session_id,
                    head.branch_id,
                    &segments,
                    kept as i64,
                    version,
                    &now,
                )?;
            }
            lineage::append(tx, &mut head, &messages[kept..], &now)?;
            save_head(tx, session_id, &head, version, &now)?;
            Ok(HistoryChange {
                version,
                kept: kept as u64,
                written: (messages.len() - kept) as u64,
                superseded,
            })
        })
    }
}

/// Messages `lo..=hi` (seqs) of the head's history.
fn read_head(tx: &Transaction<'_>, head: &Head, lo: i64, hi: i64) -> Result<Vec<Message>> {
    if lo > hi {
        return Ok(Vec::new());
    }
    let segments = lineage::segments(tx, head.branch_id, head.length)?;
    lineage::read_range(tx, &segments, lo, hi)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The session's head, if the session is at `expected` version.
pub(crate) fn head_at_version(tx: &Transaction<'_>, id: &str, expected: i64) -> Result<Head> {
    let (head, version) = head_of(tx, id)?.ok_or_else(|| Error::not_found("session", id))?;
    check_version(id, expected, version)?;
    Ok(head)
}

fn check_version(id: &str, expected: i64, actual: i64) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::Conflict {
            session: id.to_string(),
            expected,
            actual,
        })
    }
}
