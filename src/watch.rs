//! Watching a session for changes made by any process.
//!
//! A [`Watcher`] owns one connection of its own, outside the pool, and polls
//! `PRAGMA data_version` on it every few milliseconds. SQLite changes that number when another
//! connection (of any process) commits to the file, and reading it touches no page: in WAL
//! mode it is the WAL index header in shared memory. Only when it moved does the watcher read
//! the session's row and its streamed reply (two primary-key reads), and only when those
//! changed does it read messages: the new tail when the history only grew, else the whole
//! history. An idle watcher therefore does one cheap statement and one sleep per poll (measured:
//! about 1.4 % of one core at 5 ms), and notices a commit within one poll interval.
//! PostgreSQL has no such counter: there each poll reads the session's row through the store.
//!
//! A streamed chunk does not change the session's version (the history did not change), so a
//! [`WatchCursor`] remembers the streamed reply it saw too: its start time, chunks and bytes.

use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::db::sql::{args, ChangeSignal, Tx};
use crate::error::{Error, Result};
use crate::heads::current_of;
use crate::history::partial;
use crate::history::{History, Window};
use crate::lineage;
use crate::model::PartialMessage;
use crate::model::{parse_time, validate_session_id, Message};
use crate::store::Store;

/// How often a watcher polls `PRAGMA data_version`: the bound on how late it notices a change.
pub const WATCH_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// What a watcher has already seen of a session: the history at a version (and its length,
/// when known), and the streamed reply in progress, if any. A change is anything after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchCursor {
    version: i64,
    /// Length of the history at `version`; unknown means the next change carries the whole
    /// history.
    length: Option<u64>,
    partial: Option<PartialMark>,
}

/// Which streamed reply a cursor saw, and how much of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartialMark {
    started_at: DateTime<Utc>,
    chunks: u64,
    bytes: usize,
}

impl PartialMark {
    fn of(p: &PartialMessage) -> Self {
        PartialMark {
            started_at: p.started_at,
            chunks: p.chunks,
            bytes: p.content.len(),
        }
    }
}

impl WatchCursor {
    /// A cursor that has seen `history` and the streamed reply `partial` (as read together by
    /// [`Store::chat_history_with_partial`]): the next change carries only what is new.
    pub fn after(history: &History, partial: Option<&PartialMessage>) -> Self {
        WatchCursor {
            version: history.version(),
            length: Some(history.total_len()),
            partial: partial.map(PartialMark::of),
        }
    }

    /// A cursor that knows only a version: any later change, or any streamed reply in
    /// progress, is a change, and it carries the whole history.
    pub fn at_version(version: i64) -> Self {
        WatchCursor {
            version,
            length: None,
            partial: None,
        }
    }

    /// The session version this cursor has seen.
    pub fn version(&self) -> i64 {
        self.version
    }
}

impl From<i64> for WatchCursor {
    fn from(version: i64) -> Self {
        WatchCursor::at_version(version)
    }
}

/// How the history changed since the cursor.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryUpdate {
    /// The history is as the cursor saw it (only the streamed reply changed).
    Unchanged,
    /// The history only grew: these messages follow what the cursor saw.
    Appended(Vec<Message>),
    /// The history was replaced, cleared, reverted, switched or recreated (or the cursor did
    /// not know its length): this is the whole current history.
    Replaced(History),
}

/// How the streamed reply changed since the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamUpdate {
    /// As the cursor saw it.
    Unchanged,
    /// A streamed reply the cursor had not seen: all of its text is in [`Change::partial`].
    Started,
    /// The reply the cursor saw grew by this text (the chunks flushed since).
    Grew(String),
    /// The reply the cursor saw is gone: finished (its message is in the history update) or
    /// discarded.
    Ended,
}

/// What [`Store::watch`] returns: a session's change since a cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub session_id: String,
    /// The session's version now.
    pub version: i64,
    /// Length of the history now.
    pub length: u64,
    pub history: HistoryUpdate,
    /// The streamed reply in progress now, whole.
    pub partial: Option<PartialMessage>,
    pub stream: StreamUpdate,
}

impl Change {
    /// The cursor that has seen this change: pass it to the next watch.
    pub fn cursor(&self) -> WatchCursor {
        WatchCursor {
            version: self.version,
            length: Some(self.length),
            partial: self.partial.as_ref().map(PartialMark::of),
        }
    }
}

/// Waits for changes of one session, on a connection of its own. Iterate it for every change
/// (each `next` blocks until there is one), or call [`Watcher::wait`] with a timeout.
pub struct Watcher {
    store: Store,
    session_id: String,
    /// SQLite: `PRAGMA data_version` on a connection of its own. PostgreSQL has no such
    /// counter: each poll reads the session's version through the store (LISTEN/NOTIFY
    /// would save those reads).
    signal: Option<ChangeSignal>,
    cursor: WatchCursor,
    poll: Duration,
    /// Set after an error: the iterator ends.
    failed: bool,
}

impl Store {
    /// Blocks until `session_id` changed after `since` in any process, or `timeout` passed
    /// (`Ok(None)`). Returns at once if it already changed. A missing session is
    /// [`Error::NotFound`]. Opens a connection for the call; to watch repeatedly, keep a
    /// [`Store::watcher`].
    pub fn watch(
        &self,
        session_id: &str,
        since: impl Into<WatchCursor>,
        timeout: Duration,
    ) -> Result<Option<Change>> {
        self.watcher(session_id, since)?.wait(timeout)
    }

    /// A watcher of `session_id` that has seen `since`.
    pub fn watcher(&self, session_id: &str, since: impl Into<WatchCursor>) -> Result<Watcher> {
        validate_session_id(session_id)?;
        Ok(Watcher {
            store: self.clone(),
            session_id: session_id.to_string(),
            signal: self.change_signal()?,
            cursor: since.into(),
            poll: WATCH_POLL_INTERVAL,
            failed: false,
        })
    }
}

impl Watcher {
    /// What this watcher has seen so far; moves with each change it returns.
    pub fn cursor(&self) -> &WatchCursor {
        &self.cursor
    }

    /// Polls every `interval` instead of [`WATCH_POLL_INTERVAL`] (at least 1 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll = interval.max(Duration::from_millis(1));
        self
    }

    /// For the child of a `fork()`: lets go of this watcher's connections, which the child
    /// inherited from its parent, as [`Store::release_after_fork`] does for a store.
    pub fn release_after_fork(self) {
        // A SQLite connection of its own: closing it clears the child's record of the
        // parent's locks (PostgreSQL watchers have none).
        drop(self.signal);
        self.store.release_after_fork();
    }

    /// Blocks until the session changed after the cursor, or `timeout` passed (`Ok(None)`).
    /// The cursor moves past the returned change.
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<Change>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            // Read before the session: a commit after this read moves it again, so no
            // change is missed between the two. Without a signal, every poll reads.
            let moved = match &mut self.signal {
                Some(signal) => signal.moved()?,
                None => true,
            };
            if moved {
                if let Some(change) = self.read_change()? {
                    self.cursor = change.cursor();
                    return Ok(Some(change));
                }
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => self.poll,
            };
            if left.is_zero() {
                return Ok(None);
            }
            thread::sleep(left.min(self.poll));
        }
    }

    /// The change after the cursor, read from one snapshot, or `None` if there is none.
    fn read_change(&mut self) -> Result<Option<Change>> {
        let (store, id, cursor) = (&self.store, &self.session_id, &self.cursor);
        match &mut self.signal {
            Some(signal) => signal.read(|tx| change_in(store, tx, id, cursor)),
            None => store.read(|tx| change_in(store, tx, id, cursor)),
        }
    }
}

/// The change of session `id` after `cursor`, read through `tx`, or `None` if there is none.
fn change_in(store: &Store, tx: &Tx<'_>, id: &str, cursor: &WatchCursor) -> Result<Option<Change>> {
    {
        let seen: Option<(i64, Option<String>, Option<i64>)> = tx.query_opt(
            "SELECT s.version, p.started_at, p.chunks FROM sessions s
                 LEFT JOIN partial_messages p ON p.session_id = s.id WHERE s.id = ?1",
            args![id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let Some((version, started_at, chunks)) = seen else {
            return Err(Error::not_found("session", id));
        };
        let partial_seen = match (&cursor.partial, started_at, chunks) {
            (None, None, _) => true,
            (Some(mark), Some(started_at), Some(chunks)) => {
                parse_time(&started_at)? == mark.started_at && chunks as u64 == mark.chunks
            }
            _ => false,
        };
        if version == cursor.version && partial_seen {
            return Ok(None);
        }
        let current = current_of(tx, id)?.ok_or_else(|| Error::not_found("session", id))?;
        let head = current.head;
        let history = match cursor.length {
            _ if version == cursor.version => HistoryUpdate::Unchanged,
            // The cache's rule: the head has been head since the cursor's version and only
            // grew, so the messages after the cursor's length are exactly the new ones.
            Some(seen) if current.head_since <= cursor.version && head.length >= seen as i64 => {
                let segments = lineage::segments(tx, head.branch_id, head.length)?;
                HistoryUpdate::Appended(lineage::read_range(
                    tx,
                    &segments,
                    seen as i64 + 1,
                    head.length,
                )?)
            }
            _ => {
                HistoryUpdate::Replaced(store.history_in(tx, id, Window::WholeTurns(None), true)?)
            }
        };
        let partial = partial(tx, id)?;
        let stream = match (&cursor.partial, &partial) {
            (None, None) => StreamUpdate::Unchanged,
            (Some(_), None) => StreamUpdate::Ended,
            (Some(mark), Some(p))
                if p.started_at == mark.started_at
                    && p.chunks >= mark.chunks
                    && p.content.is_char_boundary(mark.bytes) =>
            {
                if p.chunks == mark.chunks {
                    StreamUpdate::Unchanged
                } else {
                    StreamUpdate::Grew(p.content[mark.bytes..].to_string())
                }
            }
            (_, Some(_)) => StreamUpdate::Started,
        };
        Ok(Some(Change {
            session_id: id.to_string(),
            version,
            length: head.length as u64,
            history,
            partial,
            stream,
        }))
    }
}

impl Iterator for Watcher {
    type Item = Result<Change>;

    /// Blocks until the next change. After an error (the session was deleted, the file
    /// became unreadable) the iteration ends.
    fn next(&mut self) -> Option<Result<Change>> {
        if self.failed {
            return None;
        }
        loop {
            match self.wait(Duration::from_secs(3600)) {
                Ok(Some(change)) => return Some(Ok(change)),
                Ok(None) => continue,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("session_id", &self.session_id)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}
