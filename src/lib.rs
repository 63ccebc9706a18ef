//! # sessiondb
//!
//! Persist AI-agent conversations — sessions, messages, branches and snapshots — in one
//! WAL-mode SQLite file that many local processes share at once, and that anyone can read
//! with the `sqlite3` shell.
//!
//! With the cargo feature `postgres`, a URL instead of a path
//! (`Store::open("postgres://app@db/sessions")`) puts the same API on a PostgreSQL database
//! that workers on many hosts share. The guarantees below hold there too, with the server's
//! means: a write locks its session's row (`FOR NO KEY UPDATE`) instead of taking the file's
//! write lock, so writers of different sessions run in parallel; waiting for a lock longer
//! than the busy timeout is [`Error::Busy`], as is a deadlock the server broke; durability is
//! the server's. A connection lost while the server commits a write is
//! [`Error::CommitOutcomeUnknown`]: the write may or may not be stored, so retry a keyed
//! write as is, and read the session back before redoing any other. What is about the file
//! (permissions, `-wal`, replaced files) does not apply.
//! Behind a pooler in transaction mode add `pgbouncer=true` to the URL.
//!
//! ## Guarantees
//!
//! - **Concurrency.** Every write is one `BEGIN IMMEDIATE` transaction that reads what it
//!   depends on inside it, so concurrent writers in any number of processes never lose a
//!   message or interleave a half-written change. Writers wait for each other up to the busy
//!   timeout ([`StoreBuilder::busy_timeout`]), then fail with [`Error::Busy`] having written
//!   nothing. Readers never wait for writers (WAL).
//! - **Atomic replacement.** [`Store::set_chat_history`] replaces a history in one
//!   transaction: another process sees the old list or the new one, never an empty or
//!   partial one.
//! - **Versions.** Every change to a session raises its `version` by one; a new session
//!   starts above every version a deleted session of the file had, so a deleted and
//!   recreated session never repeats a version.
//!   Writes that take an expected version fail with [`Error::Conflict`] and write nothing if
//!   the session moved on.
//! - **Nothing is destroyed by editing.** History is append-only and heads move: replacing,
//!   clearing, reverting or restoring moves the session's head to a new branch and keeps the
//!   old one readable (and switchable back to) under the name `<head>@<n>` until
//!   [`Store::prune`] collects it after a retention window. Forks, branches and snapshots copy
//!   no message.
//! - **Fresh reads, cheaply.** [`Store::chat_history`] is served from an in-process LRU cache
//!   whose entries carry the session's version; every read checks the version with one
//!   primary-key lookup in the same transaction that would read the messages, so a read is
//!   never stale, whichever process wrote last. A session that only grew costs a read of the
//!   new messages.
//! - **Durability.** A process crash (even `kill -9`) at any instant loses no committed
//!   transaction and leaves no partial one. With [`Synchronous::Full`] that also holds across
//!   power loss; with the default [`Synchronous::Normal`] a power loss may drop the last
//!   commits, never corrupt the file. A streamed reply ([`Store::start_stream`]) keeps every
//!   flushed chunk across a crash.
//! - **Opening never waits.** Opening a current file only reads it, so it answers while
//!   another process holds the write lock. Only writing opens create a missing file
//!   ([`Store::open_existing`] never does), directories are created `0700`, and a database,
//!   `-wal` or `-shm` another user could change is refused ([`Error::UnsafePermissions`]).
//!   A write refuses to commit into a database or `-wal` that was deleted or replaced since
//!   it was opened ([`Error::FileReplaced`]): SQLite would acknowledge it and lose it. A
//!   `-wal` left by another database file that was moved away is refused before anything is
//!   read ([`Error::ForeignWal`]).
//! - **Backups.** [`Store::backup`] copies the file consistently while others write;
//!   [`Store::restore`] replaces its contents in one transaction, and every process (its cache
//!   included) sees the old contents or the restored ones, never a mix. Neither, nor
//!   [`Store::export_to`], writes over the database, its `-wal` or `-shm`, or silently over
//!   an existing file.
//! - **Whole turns and safe retries.** [`Store::add_messages`] appends a batch in one
//!   transaction: all of it or none, even under `kill -9`. A message may carry a key
//!   ([`NewMessage::with_key`]) unique within the session's current history; appending
//!   messages whose keys are all stored writes nothing and returns the stored messages, and a
//!   batch mixing stored and new keys is [`Error::KeysPartlyStored`]; with [`KeyMode::Each`]
//!   ([`Store::add_messages_with`]) it appends exactly the new ones, in order. Keys survive
//!   export and import. [`Store::pop_message`] is an edit like the others.
//! - **Working vs full history.** [`Store::compact`] records a pointer: [`Store::chat_history`]
//!   returns the working history (the summary, then the messages after the compacted range;
//!   windows apply to it and never split a tool call from its results), while
//!   [`Store::full_history`], search and export keep every message. Nothing is deleted.
//! - **Erasure.** [`Store::expire_sessions`] deletes idle sessions as
//!   [`Store::delete_session`] does. [`Store::purge`] (and `purge_session`, `purge_user`)
//!   is the one operation that destroys: every branch, snapshot, compaction, partial, lease
//!   and index entry of the sessions, with `secure_delete`, a `VACUUM` and a WAL truncation, so
//!   no byte of the content stays in the file or its WAL. Forks owned by others keep what
//!   they inherit, copied into them first, unless the request erases them too.
//! - **Costs.** Appending, forking, branching, snapshotting, reverting and restoring cost the
//!   same at 100 or 100,000 stored messages; `set_chat_history` writes only the changed
//!   suffix.
//!
//! ## Example
//!
//! ```
//! use sessiondb::{NewMessage, Store};
//!
//! # fn main() -> sessiondb::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("sessions.db");
//! let store = Store::open(&path)?;
//! store.add_message("chat-1", NewMessage::system("You are terse."))?;
//! store.add_user_message("chat-1", "What is 2 + 2?")?;
//! store.add_message("chat-1", NewMessage::assistant("4").with_usage(12, 1, None))?;
//!
//! let history = store.chat_history("chat-1", None)?;
//! assert_eq!(history.len(), 3);
//! assert_eq!(history[2].content(), "4");
//!
//! // Replace the history: the common prefix is kept, only the new tail is written.
//! let mut edited: Vec<NewMessage> = history.iter().cloned().map(Into::into).collect();
//! edited[2] = NewMessage::assistant("Four.");
//! let change = store.set_chat_history_at_version("chat-1", &edited, history.version())?;
//! assert_eq!((change.kept, change.written), (2, 1));
//! assert_eq!(store.session("chat-1")?.message_count, 3);
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "tokio")]
mod async_store;
mod backup;
mod branches;
mod cache;
mod check;
mod checkpoints;
mod compaction;
mod db;
mod error;
mod heads;
mod history;
mod import;
mod lease;
mod lifecycle;
mod lineage;
mod maintenance;
mod messages;
mod model;
mod openai;
mod out_file;
mod search;
mod session_row;
mod sessions;
mod snapshots;
mod store;
mod streaming;
mod transfer;
mod turns;
mod usage;
mod watch;

#[cfg(feature = "tokio")]
pub use async_store::{AsyncStore, ChangeReceiver};
pub use backup::RestoreReport;
pub use cache::CacheStats;
pub use check::CheckReport;
pub use checkpoints::{
    thread_session_id, ChannelBlob, CheckpointQuery, CheckpointRecord, NewCheckpoint, PendingWrite,
    PruneStrategy, Serialized, THREAD_PREFIX,
};
pub use compaction::Compaction;
pub use db::sqlite::connection::{interrupt_lock_waits, Synchronous};
pub use db::sqlite::migrations::SCHEMA_VERSION;
pub use db::APPLICATION_ID;
pub use error::{Error, Result};
pub use heads::DEFAULT_BRANCH;
pub use history::{History, HistoryChange};
pub use lease::{Lease, LeaseHolder, LeaseRecord, LeasedSession};
pub use lifecycle::{ExpireReport, PurgeReport, PurgeRequest};
pub use maintenance::{LargestSession, MaintenanceReport, Stats};
pub use model::{
    parse_metadata, validate_session_id, Branch, BranchDiff, BranchSide, Content, ForkPoint,
    Message, Metadata, NewMessage, NewSession, PartialMessage, PruneReport, Role, Session,
    SessionTree, Snapshot, SnapshotId, StreamEnd, Usage, MAX_BRANCH_NAME_BYTES, MAX_CONTENT_BYTES,
    MAX_FIELD_BYTES, MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_SESSION_ID_BYTES,
};
pub use out_file::ExistingFile;
pub use search::{words_query, SearchFilter, SearchHit};
pub use sessions::{SessionCursor, SessionPage, SessionQuery, SessionUpdate};
pub use store::{default_path, is_postgres_url, Store, StoreBuilder};
pub use transfer::{
    BranchExport, ChannelValueExport, CheckpointExport, CheckpointWriteExport, CompactionExport,
    ExportFile, ImportOptions, ImportReport, SessionExport, SkippedSource, SnapshotExport,
    EXPORT_FORMAT, EXPORT_VERSION, MAX_IMPORT_SESSION_BYTES,
};
pub use turns::{AddOptions, AddedMessages, FoundKeys, KeyMode};
pub use usage::{RecordedUsage, UsageRecord};
pub use watch::{Change, HistoryUpdate, StreamUpdate, WatchCursor, Watcher, WATCH_POLL_INTERVAL};
