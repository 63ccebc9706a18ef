//! The in-process history cache: session id → (version, head branch, a suffix of the history).
//!
//! Freshness comes from the version, never from time: every read first looks up the session's
//! version (one primary-key read) in the same transaction that would read the messages. An
//! equal version means the cached messages are exactly what is on disk, whichever process
//! wrote last. The same head branch, head since before the cached version, with more messages
//! means someone appended: only the new tail is read (a head branch only grows and branch ids
//! are never reused). Anything else reloads: a branch that left the head and came back may have
//! been trimmed by prune in between, so its length proves nothing.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

use crate::lineage::{Current, Head};
use crate::model::{Content, Message};

/// Counters of the history cache, from [`crate::Store::cache_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Reads served from the cache after the version check.
    pub hits: u64,
    /// Reads of a session that was not cached (or not far enough back).
    pub misses: u64,
    /// Reads that found the session grown on the same head and fetched only the new tail.
    pub tail_refreshes: u64,
    /// Reads that found the session changed otherwise (replaced, reverted, switched,
    /// recreated) and reloaded it.
    pub full_reloads: u64,
    /// Entries dropped to stay within the entry and byte bounds.
    pub evictions: u64,
    pub entries: u64,
    pub bytes: u64,
}

/// The messages with seqs `start..=start + messages.len() - 1` of `head_branch`'s history,
/// as it was at `version`.
#[derive(Clone)]
pub(crate) struct Entry {
    pub version: i64,
    pub head_branch: i64,
    pub start: i64,
    pub messages: Arc<Vec<Message>>,
    /// The history is compacted and `messages` is its working view: the message at `start`
    /// may be the summary, so this is never the full history.
    pub compacted: bool,
    /// Where the working view starts: the summary's seq, or 1. It only changes with the head
    /// branch (a branch's compactions are written when it is created), so an entry that is
    /// current or only grew knows it without asking the file.
    pub floor: i64,
    bytes: usize,
}

impl Entry {
    pub(crate) fn new(version: i64, head: &Head, start: i64, messages: Arc<Vec<Message>>) -> Self {
        let bytes = messages.iter().map(message_bytes).sum();
        Entry {
            version,
            head_branch: head.branch_id,
            start,
            messages,
            compacted: false,
            floor: 1,
            bytes,
        }
    }

    /// Appends `added` (the next messages of the same head) and moves to `version`,
    /// counting only the new messages' bytes.
    pub(crate) fn extend(&mut self, added: Vec<Message>, version: i64) {
        self.bytes += added.iter().map(message_bytes).sum::<usize>();
        Arc::make_mut(&mut self.messages).extend(added);
        self.version = version;
    }

    /// Seq of the last cached message.
    pub(crate) fn end(&self) -> i64 {
        self.start + self.messages.len() as i64 - 1
    }
}

/// Whether `entry` is exactly the session's history at `current` and reaches back to
/// `window(floor)`. A version never names two histories of one id; the head check fails safe
/// anyway.
fn serves(entry: &Entry, current: &Current, window: impl Fn(i64) -> i64) -> bool {
    entry.version == current.version
        && entry.head_branch == current.head.branch_id
        && entry.end() == current.head.length
        && entry.start <= window(entry.floor).max(1)
}

/// What a read should do, given the session's current version and head.
pub(crate) enum Lookup {
    /// Serve this entry: it is current and reaches back far enough.
    Hit(Entry),
    /// The head only grew since this entry: read seqs after `entry.end()` and extend it.
    Grown(Entry),
    /// Read from disk.
    Load,
}

pub(crate) struct Cache {
    inner: Option<Mutex<Inner>>,
}

struct Inner {
    lru: LruCache<String, Entry>,
    bytes: usize,
    max_bytes: usize,
    stats: CacheStats,
}

impl Cache {
    /// A cache of at most `entries` sessions and `max_bytes` of messages; zero disables it.
    pub(crate) fn new(entries: usize, max_bytes: usize) -> Self {
        let inner = NonZeroUsize::new(entries)
            .filter(|_| max_bytes > 0)
            .map(|cap| {
                Mutex::new(Inner {
                    lru: LruCache::new(cap),
                    bytes: 0,
                    max_bytes,
                    stats: CacheStats::default(),
                })
            });
        Cache { inner }
    }

    fn lock(&self) -> Option<MutexGuard<'_, Inner>> {
        // A panic while holding the lock cannot leave an entry half-updated (entries are
        // replaced whole), so a poisoned lock is still consistent.
        self.inner
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Decides how to serve a read of seqs `window(floor)..` of session `id`, now at
    /// `current`, where `floor` is where its working view starts. A `Grown` entry is taken out
    /// of the cache, so extending it does not copy the messages.
    pub(crate) fn lookup(
        &self,
        id: &str,
        current: &Current,
        window: impl Fn(i64) -> i64,
    ) -> Lookup {
        self.decide(id, current, window, true)
    }

    /// [`Cache::lookup`] for a read that will not load from the file: `Hit` and `Grown` as
    /// there; anything else is `Load`, leaving the entry in place and counting nothing (the
    /// read that does load counts it).
    pub(crate) fn lookup_without_loading(
        &self,
        id: &str,
        current: &Current,
        window: impl Fn(i64) -> i64,
    ) -> Lookup {
        self.decide(id, current, window, false)
    }

    fn decide(
        &self,
        id: &str,
        current: &Current,
        window: impl Fn(i64) -> i64,
        loading: bool,
    ) -> Lookup {
        let head = &current.head;
        let Some(mut inner) = self.lock() else {
            return Lookup::Load;
        };
        let Some(entry) = inner.lru.get(id) else {
            if loading {
                inner.stats.misses += 1;
            }
            return Lookup::Load;
        };
        let covers = entry.start <= window(entry.floor).max(1);
        if serves(entry, current, &window) {
            let entry = entry.clone();
            inner.stats.hits += 1;
            return Lookup::Hit(entry);
        }
        let only_grew = entry.head_branch == head.branch_id
            && current.head_since <= entry.version
            && entry.end() <= head.length;
        if only_grew && covers {
            inner.stats.tail_refreshes += 1;
            return inner.remove(id).map_or(Lookup::Load, Lookup::Grown);
        }
        if !loading {
            return Lookup::Load;
        }
        if covers {
            inner.stats.full_reloads += 1;
        } else {
            inner.stats.misses += 1;
        }
        inner.remove(id);
        Lookup::Load
    }

    /// The cached entry if it is exactly `current` (what [`Cache::lookup`] calls a hit, and
    /// counted as one); otherwise `None`, counting nothing and changing nothing, so the caller
    /// can go on to [`Cache::lookup`] inside a snapshot.
    pub(crate) fn hit(
        &self,
        id: &str,
        current: &Current,
        window: impl Fn(i64) -> i64,
    ) -> Option<Entry> {
        let mut inner = self.lock()?;
        let entry = inner.lru.get(id)?;
        if !serves(entry, current, &window) {
            return None;
        }
        let entry = entry.clone();
        inner.stats.hits += 1;
        Some(entry)
    }

    /// Caches `entry` for `id`, replacing what was there.
    pub(crate) fn store(&self, id: &str, entry: Entry) {
        let Some(mut inner) = self.lock() else {
            return;
        };
        inner.remove(id);
        if entry.bytes > inner.max_bytes {
            return;
        }
        inner.bytes += entry.bytes;
        if let Some((evicted_id, evicted)) = inner.lru.push(id.to_string(), entry) {
            if evicted_id != id {
                inner.bytes = inner.bytes.saturating_sub(evicted.bytes);
                inner.stats.evictions += 1;
            }
        }
        while inner.bytes > inner.max_bytes {
            match inner.lru.pop_lru() {
                Some((_, evicted)) => {
                    inner.bytes = inner.bytes.saturating_sub(evicted.bytes);
                    inner.stats.evictions += 1;
                }
                None => break,
            }
        }
    }

    /// After our own commit appended `added` to a session that was at `old_version` with
    /// `old_head`: extends the cached entry to `new_version`, if it was current.
    pub(crate) fn appended(
        &self,
        id: &str,
        old_version: i64,
        old_length: i64,
        new_version: i64,
        head: &Head,
        added: &[Message],
    ) {
        let Some(mut inner) = self.lock() else {
            return;
        };
        let current = inner.lru.peek(id).is_some_and(|e| {
            e.version == old_version && e.head_branch == head.branch_id && e.end() == old_length
        });
        if !current {
            return;
        }
        let Some(mut entry) = inner.remove(id) else {
            return;
        };
        drop(inner);
        entry.extend(added.to_vec(), new_version);
        self.store(id, entry);
    }

    /// Takes the whole history of `id` out of the cache if it is cached at exactly
    /// `version`: the caller is about to replace it, and owning it avoids a copy.
    pub(crate) fn take_full_history(&self, id: &str, version: i64) -> Option<Arc<Vec<Message>>> {
        let mut inner = self.lock()?;
        let entry = inner.lru.peek(id)?;
        if entry.version != version || entry.start != 1 || entry.compacted {
            return None;
        }
        inner.remove(id).map(|entry| entry.messages)
    }

    /// Drops the entry of `id`, or every entry.
    pub(crate) fn invalidate(&self, id: Option<&str>) {
        if let Some(mut inner) = self.lock() {
            match id {
                Some(id) => {
                    inner.remove(id);
                }
                None => {
                    inner.lru.clear();
                    inner.bytes = 0;
                }
            }
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        self.lock()
            .map_or_else(CacheStats::default, |inner| CacheStats {
                entries: inner.lru.len() as u64,
                bytes: inner.bytes as u64,
                ..inner.stats
            })
    }
}

impl Inner {
    fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.lru.pop(id)?;
        self.bytes = self.bytes.saturating_sub(entry.bytes);
        Some(entry)
    }
}

/// Rough heap size of a cached message, for the byte bound.
fn message_bytes(m: &Message) -> usize {
    let json = |v: Option<usize>| v.unwrap_or(0);
    std::mem::size_of::<Message>()
        + match &m.body.content {
            Content::Text(text) => text.len(),
            Content::Parts(parts) => parts.len() * 256,
            Content::Absent | Content::Null => 0,
        }
        + m.body.extra.len() * 64
        + json(m.body.tool_calls.as_ref().map(|c| c.len() * 64))
        + json(m.body.metadata.as_ref().map(|c| c.len() * 64))
        + m.body.tool_call_id.as_ref().map_or(0, String::len)
        + m.body.model.as_ref().map_or(0, String::len)
}
