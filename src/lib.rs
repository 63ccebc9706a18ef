//! # sessiondb
//!
//! Persist AI-agent conversations — sessions, messages, branches and snapshots — in one
//! WAL-mode SQLite file that many local processes share at once, and that anyone can read
//! with the `sqlite3` shell.
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
//! - **Versions.** Every change to a session gives it a new `version`, drawn from one
//!   database-wide counter, so a deleted and recreated session never repeats a version.
//!   Writes that take an expected version fail with [`Error::Conflict`] and write nothing if
//!   the session moved on.
//! - **Nothing is destroyed by editing.** History is append-only: replacing or clearing a
//!   history moves the session's head to a new branch and keeps the old one readable under
//!   the name `<head>@<n>`.
//! - **Durability.** A process crash (even `kill -9`) at any instant loses no committed
//!   transaction and leaves no partial one. With [`Synchronous::Full`] that also holds across
//!   power loss; with the default [`Synchronous::Normal`] a power loss may drop the last
//!   commits, never corrupt the file.
//! - **Appends cost O(1)** in the history's length: one insert and two single-row updates.
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

mod branches;
mod cache;
mod db;
mod error;
mod lineage;
mod maintenance;
mod messages;
mod model;
mod sessions;
mod snapshots;
mod store;
mod streaming;

pub use cache::CacheStats;
pub use db::migrations::SCHEMA_VERSION;
pub use db::{Synchronous, APPLICATION_ID};
pub use error::{Error, Result};
pub use maintenance::MaintenanceReport;
pub use messages::{History, HistoryChange};
pub use model::{
    parse_metadata, validate_session_id, Branch, ForkPoint, Message, Metadata, NewMessage,
    NewSession, PruneReport, Role, Session, SessionTree, Snapshot, SnapshotId, Usage,
    MAX_BRANCH_NAME_BYTES, MAX_SESSION_ID_BYTES,
};
pub use sessions::{SessionCursor, SessionPage, SessionQuery, DEFAULT_BRANCH};
pub use store::{default_path, Store, StoreBuilder};
pub use streaming::{PartialMessage, StreamEnd};
