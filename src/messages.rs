//! Message operations: append, read (latest N, pages), replace a whole history.

use std::sync::Arc;

use crate::cache::{Entry, Lookup};
use crate::db::sql::Tx;
use crate::error::{Error, Result};
use crate::heads::{
    append_to_head, check_version, current_of, fork_new_head, head_of, head_or_create, Step,
};
use crate::history::{read_working, working_entry, History, HistoryChange, Window};
use crate::lineage::{self, Current};
use crate::model::{check_unique_keys, validate_session_id, Message, NewMessage};
use crate::store::Store;

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
        if message.key.is_some() {
            return self.append_keyed(session_id, message, expected_version);
        }
        self.append_with(session_id, expected_version, |_| Ok(message))
    }

    /// Appends the message `make` produces inside the transaction (creating the session if
    /// it is missing and no version is expected), then extends the cached history.
    pub(crate) fn append_with(
        &self,
        session_id: &str,
        expected_version: Option<i64>,
        make: impl FnOnce(&Tx<'_>) -> Result<NewMessage>,
    ) -> Result<Message> {
        let (stored, old_version, old_length, step, head) = self.write(|tx| {
            let (mut head, old_version) =
                head_or_create(tx, session_id, expected_version.is_none())?;
            check_version(session_id, expected_version, old_version)?;
            let message = make(tx)?;
            let (old_length, step) = (head.length, Step::after(old_version));
            let stored = append_to_head(tx, session_id, &mut head, &step, vec![message])?;
            Ok((stored, old_version, old_length, step, head))
        })?;
        self.cache().appended(
            session_id,
            old_version,
            old_length,
            step.version,
            &head,
            &stored,
        );
        stored.into_iter().next().ok_or_else(|| {
            Error::Corrupt(format!("session {session_id:?}: an append stored nothing"))
        })
    }

    /// The latest `max_messages` messages (all with `None`), oldest first. A window never
    /// starts with a `tool` result whose call it cut off: such leading results are dropped.
    ///
    /// Served from the in-process cache when the session's version (checked with one
    /// primary-key read, in the same transaction) is unchanged; when the session only grew,
    /// just the new messages are read; otherwise it is reloaded.
    pub fn chat_history(&self, session_id: &str, max_messages: Option<usize>) -> Result<History> {
        self.history_window(session_id, Window::WholeTurns(max_messages), true)
    }

    /// [`Store::chat_history`] read from the file alone, neither using nor filling the cache.
    pub fn chat_history_uncached(
        &self,
        session_id: &str,
        max_messages: Option<usize>,
    ) -> Result<History> {
        self.history_window(session_id, Window::WholeTurns(max_messages), false)
    }

    /// Exactly the last `n` messages of the working history (all of it when it is shorter;
    /// none for 0), oldest first, with the version they were read at,
    /// [`History::working_len`] and [`History::total_len`]. Unlike
    /// [`Store::chat_history`] it keeps leading tool results. Read through the cache like
    /// it; a miss reads only those `n` messages.
    pub fn last_messages(&self, session_id: &str, n: usize) -> Result<History> {
        self.history_window(session_id, Window::Last(n), true)
    }

    /// [`Store::last_messages`] read from the file alone, neither using nor filling the cache.
    pub fn last_messages_uncached(&self, session_id: &str, n: usize) -> Result<History> {
        self.history_window(session_id, Window::Last(n), false)
    }

    /// [`Store::last_messages`] answered by the cache: when it holds the session's current
    /// version (one primary-key read), or an earlier version of the same head that only grew
    /// since (then only the messages appended since are read, as after an append made
    /// through another handle or process). `None` when answering would read the history
    /// again, for a caller that must not wait on the file (an event loop) and then reads
    /// elsewhere.
    pub fn cached_last_messages(&self, session_id: &str, n: usize) -> Result<Option<History>> {
        validate_session_id(session_id)?;
        let window = Window::Last(n);
        if let Some(history) = self.cached_window(session_id, window)? {
            return Ok(Some(history));
        }
        self.read(|tx| {
            let current = current_of(tx, session_id)?
                .ok_or_else(|| Error::not_found("session", session_id))?;
            let start = |floor: i64| window.start(current.head.length, floor);
            let entry = match self
                .cache()
                .lookup_without_loading(session_id, &current, start)
            {
                Lookup::Hit(entry) => entry,
                Lookup::Grown(entry) => self.grown(tx, session_id, entry, &current)?,
                Lookup::Load => return Ok(None),
            };
            Ok(Some(History::window(&entry, window)))
        })
    }

    fn history_window(&self, session_id: &str, window: Window, use_cache: bool) -> Result<History> {
        validate_session_id(session_id)?;
        if use_cache {
            // Where a transaction costs round trips, the version check alone, as one
            // statement without BEGIN/COMMIT: a hit is one round trip. Anything else reads
            // again in one snapshot below, which counts it.
            if let Some(history) = self.cached_window(session_id, window)? {
                return Ok(history);
            }
        }
        self.read(|tx| self.history_in(tx, session_id, window, use_cache))
    }

    /// `window` of the session's history from the cache, if it holds the current version,
    /// checked in one statement where that saves round trips; `None` otherwise (and always
    /// where a transaction is as cheap: the caller's read checks the cache then).
    fn cached_window(&self, session_id: &str, window: Window) -> Result<Option<History>> {
        let hit = self.read_one_statement(|tx| {
            let current = current_of(tx, session_id)?
                .ok_or_else(|| Error::not_found("session", session_id))?;
            let start = |floor: i64| window.start(current.head.length, floor);
            Ok(self
                .cache()
                .hit(session_id, &current, start)
                .map(|entry| History::window(&entry, window)))
        })?;
        Ok(hit.flatten())
    }

    /// `window` of the session's history, read in `tx`.
    pub(crate) fn history_in(
        &self,
        tx: &Tx<'_>,
        session_id: &str,
        window: Window,
        use_cache: bool,
    ) -> Result<History> {
        let current =
            current_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
        let (head, version) = (current.head, current.version);
        // A compacted history's working view starts with the summary, at seq `floor`.
        let start = |floor: i64| window.start(head.length, floor);
        let lookup = if use_cache {
            self.cache().lookup(session_id, &current, start)
        } else {
            Lookup::Load
        };
        let entry = match lookup {
            Lookup::Hit(entry) => entry,
            Lookup::Grown(entry) => self.grown(tx, session_id, entry, &current)?,
            Lookup::Load => {
                let entry = read_working(tx, version, &head, window)?;
                if use_cache {
                    self.cache().store(session_id, entry.clone());
                }
                entry
            }
        };
        Ok(History::window(&entry, window))
    }

    /// `entry`, which the head only grew past since, extended to `current` and cached again.
    fn grown(
        &self,
        tx: &Tx<'_>,
        session_id: &str,
        mut entry: Entry,
        current: &Current,
    ) -> Result<Entry> {
        let head = &current.head;
        entry.extend(
            lineage::read_head(tx, head, entry.end() + 1, head.length)?,
            current.version,
        );
        self.cache().store(session_id, entry.clone());
        Ok(entry)
    }

    /// Up to `limit` messages just before message `index` (exclusive), oldest first: page
    /// backwards through a long history.
    pub fn messages_before(&self, session_id: &str, index: u64, limit: usize) -> Result<History> {
        let hi = i64::try_from(index).unwrap_or(i64::MAX); // seq of the message before `index`
        self.page(
            session_id,
            hi.saturating_sub(count(limit)).saturating_add(1).max(1),
            hi,
        )
    }

    /// Up to `limit` messages just after message `index` (exclusive), oldest first.
    pub fn messages_after(&self, session_id: &str, index: u64, limit: usize) -> Result<History> {
        let lo = i64::try_from(index).unwrap_or(i64::MAX).saturating_add(2);
        self.page(
            session_id,
            lo,
            lo.saturating_add(count(limit)).saturating_sub(1),
        )
    }

    fn page(&self, session_id: &str, lo: i64, hi: i64) -> Result<History> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            let (head, version) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            let messages = lineage::read_head(tx, &head, lo, hi.min(head.length))?;
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
        let (change, entry) =
            self.write(|tx| self.replace_in(tx, session_id, messages, expected_version))?;
        self.cache().store(session_id, entry);
        Ok(change)
    }

    /// The body of [`Store::set_chat_history`] inside the caller's write transaction (imports
    /// replace a history and its fields in one). Returns the cache entry to store after commit.
    pub(crate) fn replace_in(
        &self,
        tx: &Tx<'_>,
        session_id: &str,
        messages: &[NewMessage],
        expected_version: Option<i64>,
    ) -> Result<(HistoryChange, Entry)> {
        {
            check_unique_keys(messages)?;
            let (mut head, version) = head_or_create(tx, session_id, expected_version.is_none())?;
            check_version(session_id, expected_version, version)?;
            let segments = lineage::segments(tx, head.branch_id, head.length)?;
            let mut current = match self.cache().take_full_history(session_id, version) {
                Some(cached) => Arc::unwrap_or_clone(cached),
                None => lineage::read_range(tx, &segments, 1, head.length)?,
            };
            let kept = current
                .iter()
                .zip(messages)
                .take_while(|(old, new)| new.matches(old))
                .count();
            if kept == current.len() && kept == messages.len() {
                let change = HistoryChange {
                    version,
                    kept: kept as u64,
                    written: 0,
                    superseded: false,
                };
                let entry = working_entry(tx, version, &head, current)?;
                return Ok((change, entry));
            }
            let step = Step::after(version);
            let superseded = kept < current.len();
            if superseded {
                head = fork_new_head(
                    tx,
                    session_id,
                    head.branch_id,
                    &segments,
                    kept as i64,
                    step.version,
                    &step.now,
                )?;
            }
            current.truncate(kept);
            current.extend(append_to_head(
                tx,
                session_id,
                &mut head,
                &step,
                messages[kept..].to_vec(),
            )?);
            let version = step.version;
            let change = HistoryChange {
                version,
                kept: kept as u64,
                written: (messages.len() - kept) as u64,
                superseded,
            };
            Ok((change, working_entry(tx, version, &head, current)?))
        }
    }
}

/// A count as SQLite stores integers; a count past `i64::MAX` (never reached) saturates.
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
