//! What a read of a session returns ([`History`]; [`HistoryChange`] for a replacement), and
//! the working view: a compacted history reads as the summary, at the position of the last
//! compacted message, followed by the messages after it (see `compaction.rs` for why a
//! branch's compactions never change). The operations read through these helpers and never
//! read compaction rows themselves.

use std::ops::Deref;
use std::sync::Arc;

use crate::cache::Entry;
use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::lineage::{self, Head};
use serde_json::Value;

use crate::model::{parse_time, Message, NewMessage, PartialMessage, Role};

/// Messages of a session's history, oldest first, read in one transaction together with the
/// session's `version`. Derefs to `[Message]`; cloning it is cheap (it shares the cached
/// messages).
#[derive(Debug, Clone)]
pub struct History {
    messages: Arc<Vec<Message>>,
    /// Where this window starts in `messages`.
    offset: usize,
    version: i64,
    length: u64,
    /// Seq where the working view starts (a compaction's summary), 1 for a full history.
    floor: i64,
    /// Leading tool results dropped from a window because their call was cut off.
    trimmed: usize,
}

impl History {
    pub(crate) fn new(messages: Vec<Message>, version: i64, length: i64) -> Self {
        History {
            messages: Arc::new(messages),
            offset: 0,
            version,
            length: length as u64,
            floor: 1,
            trimmed: 0,
        }
    }

    /// `window` of the working history that `entry` holds (a suffix of it).
    pub(crate) fn window(entry: &Entry, window: Window) -> Self {
        let lo = window.start(entry.end(), entry.floor);
        let offset = (lo.max(entry.start) - entry.start) as usize;
        let trimmed = if window.trims(lo, entry.floor) {
            entry.messages[offset..]
                .iter()
                .take_while(|m| m.role() == Role::Tool)
                .count()
        } else {
            0
        };
        History {
            messages: entry.messages.clone(),
            offset: offset + trimmed,
            version: entry.version,
            length: entry.end() as u64,
            floor: entry.floor,
            trimmed,
        }
    }

    /// How many tool results a window left out at its start because the call they answer
    /// was before the window (so the window is shorter than asked).
    pub fn trimmed_tool_results(&self) -> usize {
        self.trimmed
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

    /// Length of the working history a window was read from: a compacted history's summary
    /// and the messages after it ([`History::total_len`] when nothing is compacted, and for
    /// reads of the full history). A window holds all of it when `len()` equals this.
    pub fn working_len(&self) -> u64 {
        self.length + 1 - self.floor as u64
    }
}

/// Which part of a session's working history a read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// The latest `n` messages (all with `None`), less leading tool results whose call the
    /// window cut off: what [`crate::Store::chat_history`] hands to a model.
    WholeTurns(Option<usize>),
    /// Exactly the last `n` messages ([`crate::Store::last_messages`]).
    Last(usize),
}

impl Window {
    /// The first seq the window holds of a history of `length` messages whose working view
    /// starts at seq `floor` (a compaction's summary, or 1).
    pub(crate) fn start(self, length: i64, floor: i64) -> i64 {
        let n = match self {
            Window::WholeTurns(None) => return floor,
            Window::WholeTurns(Some(n)) | Window::Last(n) => i64::try_from(n).unwrap_or(i64::MAX),
        };
        length.saturating_sub(n).saturating_add(1).max(floor)
    }

    /// Whether a window starting at `lo` drops leading tool results: only a whole-turns
    /// window that cut something off.
    fn trims(self, lo: i64, floor: i64) -> bool {
        matches!(self, Window::WholeTurns(_)) && lo > floor
    }
}

impl Deref for History {
    type Target = [Message];

    fn deref(&self) -> &[Message] {
        &self.messages[self.offset..]
    }
}

impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version && **self == **other
    }
}

/// What [`crate::Store::set_chat_history`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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

/// The compaction in effect on `branch_id`'s history of `length` messages: (row id, through
/// seq). One index seek; `None` for an uncompacted history.
pub(crate) fn in_effect(tx: &Tx<'_>, branch_id: i64, length: i64) -> Result<Option<(i64, i64)>> {
    tx.query_opt(
        "SELECT id, through_seq FROM compactions WHERE branch_id = ?1 AND through_seq <= ?2
             ORDER BY through_seq DESC, id DESC LIMIT 1",
        args![branch_id, length],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// The summary of compaction `id` as the message at seq `through` of the working view.
pub(crate) fn summary_of(tx: &Tx<'_>, id: i64, through: i64) -> Result<Message> {
    let (text, created_at): (String, String) = tx
        .query_opt(
            "SELECT summary, created_at FROM compactions WHERE id = ?1",
            args![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .ok_or_else(|| Error::Corrupt(format!("compaction {id} is missing")))?;
    summary_message(&text, through, &created_at)
}

/// A summary as stored (`text`, from the compaction through seq `through`) as the message at
/// that seq of the working view.
pub(crate) fn summary_message(text: &str, through: i64, created_at: &str) -> Result<Message> {
    let body: NewMessage = serde_json::from_str(text)
        .map_err(|e| Error::Corrupt(format!("compaction through seq {through}: summary: {e}")))?;
    Ok(Message {
        index: (through - 1) as u64,
        body,
        created_at: parse_time(created_at)?,
    })
}

/// The cache entry of `head`'s working history at `version`, given its full history.
pub(crate) fn working_entry(
    tx: &Tx<'_>,
    version: i64,
    head: &Head,
    full: Vec<Message>,
) -> Result<Entry> {
    match in_effect(tx, head.branch_id, head.length)? {
        None => Ok(Entry::new(version, head, 1, Arc::new(full))),
        Some((id, through)) => {
            let mut messages = vec![summary_of(tx, id, through)?];
            messages.extend(full.into_iter().skip(through as usize));
            let mut entry = Entry::new(version, head, through, Arc::new(messages));
            entry.compacted = true;
            entry.floor = through;
            Ok(entry)
        }
    }
}

/// The cache entry of `head`'s working history at `version`, read from the file from the
/// start of `window` on.
pub(crate) fn read_working(
    tx: &Tx<'_>,
    version: i64,
    head: &Head,
    window: Window,
) -> Result<Entry> {
    let compaction = in_effect(tx, head.branch_id, head.length)?;
    let floor = compaction.map_or(1, |(_, through)| through);
    let lo = window.start(head.length, floor);
    let messages = match compaction {
        Some((id, through)) if lo == through => {
            let mut messages = vec![summary_of(tx, id, through)?];
            messages.extend(lineage::read_head(tx, head, through + 1, head.length)?);
            messages
        }
        _ => lineage::read_head(tx, head, lo, head.length)?,
    };
    let mut entry = Entry::new(version, head, lo, Arc::new(messages));
    entry.compacted = compaction.is_some();
    entry.floor = floor;
    Ok(entry)
}

/// The session's streamed reply in progress, if any: what `chat_history_with_partial` and
/// watchers show beside the history.
pub(crate) fn partial(tx: &Tx<'_>, session_id: &str) -> Result<Option<PartialMessage>> {
    let row = tx.query_opt(
        "SELECT content, model, metadata, chunks, started_at, updated_at
             FROM partial_messages WHERE session_id = ?1",
        args![session_id],
        |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<Option<String>>(1)?,
                r.get::<Option<String>>(2)?,
                r.get::<i64>(3)?,
                r.get::<String>(4)?,
                r.get::<String>(5)?,
            ))
        },
    )?;
    let Some((content, model, metadata, chunks, started_at, updated_at)) = row else {
        return Ok(None);
    };
    let metadata = match metadata.map(|m| serde_json::from_str(&m)) {
        None => None,
        Some(Ok(Value::Object(map))) => Some(map),
        Some(_) => {
            return Err(Error::Corrupt(format!(
                "partial message of {session_id:?}: metadata is not a JSON object"
            )))
        }
    };
    Ok(Some(PartialMessage {
        session_id: session_id.to_string(),
        content,
        model,
        metadata,
        chunks: chunks as u64,
        started_at: parse_time(&started_at)?,
        updated_at: parse_time(&updated_at)?,
    }))
}
