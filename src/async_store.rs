//! [`AsyncStore`]: the [`Store`] for tokio callers (cargo feature `tokio`).
//!
//! Every operation is the blocking one, run on tokio's blocking pool with `spawn_blocking`,
//! so a runtime worker thread never waits for SQLite's lock, a fsync or a cold page. Nothing
//! is reimplemented: each method is one call of the `Store` method of the same name, with the
//! same errors. [`AsyncStore::run`] reaches any operation not listed here. A watch runs on a
//! blocking thread of its own for as long as its receiver lives.
//!
//! ```
//! use sessiondb::{AsyncStore, NewMessage, WatchCursor};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> sessiondb::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("sessions.db");
//! let store = AsyncStore::open(&path).await?;
//! store.add_message("chat-1", NewMessage::user("hi")).await?;
//! let history = store.chat_history("chat-1", None).await?;
//!
//! // Changes after what we have read, from any process, as they commit.
//! let mut changes = store.watch("chat-1", WatchCursor::after(&history, None)).await?;
//! store.add_message("chat-1", NewMessage::assistant("hello")).await?;
//! let change = changes.recv().await.expect("the watch is running")?;
//! assert_eq!(change.length, 2);
//!
//! // Anything else: the blocking store on the blocking pool.
//! let count = store.run(|s| Ok(s.session("chat-1")?.message_count)).await?;
//! assert_eq!(count, 2);
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::history::{History, HistoryChange};
use crate::lease::Lease;
use crate::model::{Message, Metadata, NewMessage, NewSession, Session};
use crate::model::{PartialMessage, StreamEnd};
use crate::sessions::{SessionPage, SessionQuery};
use crate::store::Store;
use crate::turns::{AddOptions, AddedMessages};
use crate::watch::{Change, WatchCursor};

/// Changes of one session, from [`AsyncStore::watch`]. `recv().await` yields each; after an
/// error (the session was deleted) it yields `None`. Dropping it stops the watch.
pub type ChangeReceiver = mpsc::Receiver<Result<Change>>;

/// How long a watch thread waits between checks that its receiver still lives.
const RECEIVER_CHECK: Duration = Duration::from_millis(100);

/// A [`Store`] whose operations are `async`. Cheap to clone; share it between tasks.
#[derive(Debug, Clone)]
pub struct AsyncStore {
    store: Store,
}

impl From<Store> for AsyncStore {
    fn from(store: Store) -> Self {
        AsyncStore { store }
    }
}

impl AsyncStore {
    /// [`Store::open`] on the blocking pool.
    pub async fn open(path: impl AsRef<Path>) -> Result<AsyncStore> {
        let path = path.as_ref().to_path_buf();
        let opened = path.clone();
        let store = blocking(&path, move || Store::open(&opened)).await?;
        Ok(AsyncStore { store })
    }

    /// The blocking store underneath (for a [`crate::StoreBuilder`]-opened store, build it
    /// and convert with `AsyncStore::from`).
    pub fn blocking_store(&self) -> &Store {
        &self.store
    }

    /// Runs `op` with the store on tokio's blocking pool: the way to call any operation.
    pub async fn run<T, F>(&self, op: F) -> Result<T>
    where
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        blocking(self.store.path(), move || op(&store)).await
    }

    /// [`Store::add_message`].
    pub async fn add_message(&self, session_id: &str, message: NewMessage) -> Result<Message> {
        let id = session_id.to_owned();
        self.run(move |s| s.add_message(&id, message)).await
    }

    /// [`Store::add_messages`]: the batch in one transaction.
    pub async fn add_messages(
        &self,
        session_id: &str,
        messages: Vec<NewMessage>,
    ) -> Result<AddedMessages> {
        let id = session_id.to_owned();
        self.run(move |s| s.add_messages(&id, &messages)).await
    }

    /// [`Store::add_messages_with`].
    pub async fn add_messages_with(
        &self,
        session_id: &str,
        messages: Vec<NewMessage>,
        options: AddOptions,
    ) -> Result<AddedMessages> {
        let id = session_id.to_owned();
        self.run(move |s| s.add_messages_with(&id, &messages, &options))
            .await
    }

    /// [`Store::add_message_at_version`].
    pub async fn add_message_at_version(
        &self,
        session_id: &str,
        message: NewMessage,
        expected_version: i64,
    ) -> Result<Message> {
        let id = session_id.to_owned();
        self.run(move |s| s.add_message_at_version(&id, message, expected_version))
            .await
    }

    /// [`Store::chat_history`].
    pub async fn chat_history(
        &self,
        session_id: &str,
        max_messages: Option<usize>,
    ) -> Result<History> {
        let id = session_id.to_owned();
        self.run(move |s| s.chat_history(&id, max_messages)).await
    }

    /// [`Store::last_messages`].
    pub async fn last_messages(&self, session_id: &str, n: usize) -> Result<History> {
        let id = session_id.to_owned();
        self.run(move |s| s.last_messages(&id, n)).await
    }

    /// [`Store::chat_history_with_partial`].
    pub async fn chat_history_with_partial(
        &self,
        session_id: &str,
        max_messages: Option<usize>,
    ) -> Result<(History, Option<PartialMessage>)> {
        let id = session_id.to_owned();
        self.run(move |s| s.chat_history_with_partial(&id, max_messages))
            .await
    }

    /// [`Store::set_chat_history`].
    pub async fn set_chat_history(
        &self,
        session_id: &str,
        messages: Vec<NewMessage>,
    ) -> Result<HistoryChange> {
        let id = session_id.to_owned();
        self.run(move |s| s.set_chat_history(&id, &messages)).await
    }

    /// [`Store::set_chat_history_at_version`].
    pub async fn set_chat_history_at_version(
        &self,
        session_id: &str,
        messages: Vec<NewMessage>,
        expected_version: i64,
    ) -> Result<HistoryChange> {
        let id = session_id.to_owned();
        self.run(move |s| s.set_chat_history_at_version(&id, &messages, expected_version))
            .await
    }

    /// [`Store::create_session`].
    pub async fn create_session(&self, new: NewSession) -> Result<Session> {
        self.run(move |s| s.create_session(new)).await
    }

    /// [`Store::session`].
    pub async fn session(&self, session_id: &str) -> Result<Session> {
        let id = session_id.to_owned();
        self.run(move |s| s.session(&id)).await
    }

    /// [`Store::version`].
    pub async fn version(&self, session_id: &str) -> Result<i64> {
        let id = session_id.to_owned();
        self.run(move |s| s.version(&id)).await
    }

    /// [`Store::list_sessions`].
    pub async fn list_sessions(&self, query: SessionQuery) -> Result<SessionPage> {
        self.run(move |s| s.list_sessions(&query)).await
    }

    /// [`Store::clear`].
    pub async fn clear(&self, session_id: &str) -> Result<Session> {
        let id = session_id.to_owned();
        self.run(move |s| s.clear(&id)).await
    }

    /// [`Store::delete_session`].
    pub async fn delete_session(&self, session_id: &str) -> Result<()> {
        let id = session_id.to_owned();
        self.run(move |s| s.delete_session(&id)).await
    }

    /// [`Store::start_stream`].
    pub async fn start_stream(
        &self,
        session_id: &str,
        model: Option<String>,
        metadata: Option<Metadata>,
    ) -> Result<PartialMessage> {
        let id = session_id.to_owned();
        self.run(move |s| s.start_stream(&id, model.as_deref(), metadata))
            .await
    }

    /// [`Store::append_stream`].
    pub async fn append_stream(&self, session_id: &str, chunk: &str) -> Result<()> {
        let (id, chunk) = (session_id.to_owned(), chunk.to_owned());
        self.run(move |s| s.append_stream(&id, &chunk)).await
    }

    /// [`Store::finish_stream`].
    pub async fn finish_stream(&self, session_id: &str, end: StreamEnd) -> Result<Message> {
        let id = session_id.to_owned();
        self.run(move |s| s.finish_stream(&id, end)).await
    }

    /// [`Store::discard_stream`].
    pub async fn discard_stream(&self, session_id: &str) -> Result<()> {
        let id = session_id.to_owned();
        self.run(move |s| s.discard_stream(&id)).await
    }

    /// [`Store::claim`].
    pub async fn claim(&self, session_id: &str, owner: &str, ttl: Duration) -> Result<Lease> {
        let (id, owner) = (session_id.to_owned(), owner.to_owned());
        self.run(move |s| s.claim(&id, &owner, ttl)).await
    }

    /// [`Store::renew`].
    pub async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        let lease = lease.clone();
        self.run(move |s| s.renew(&lease, ttl)).await
    }

    /// [`Store::release`].
    pub async fn release(&self, lease: &Lease) -> Result<bool> {
        let lease = lease.clone();
        self.run(move |s| s.release(&lease)).await
    }

    /// [`Store::add_message`] under a lease ([`Store::with_lease`]).
    pub async fn add_message_with_lease(
        &self,
        lease: &Lease,
        message: NewMessage,
    ) -> Result<Message> {
        let lease = lease.clone();
        self.run(move |s| s.with_lease(&lease).add_message(message))
            .await
    }

    /// Every change of `session_id` after `since`, as it commits in any process (see
    /// [`Store::watcher`]). The watch runs on a blocking thread until the receiver is
    /// dropped or an error (delivered first) ends it.
    pub async fn watch(
        &self,
        session_id: &str,
        since: impl Into<WatchCursor>,
    ) -> Result<ChangeReceiver> {
        let (id, since) = (session_id.to_owned(), since.into());
        let mut watcher = self.run(move |s| s.watcher(&id, since)).await?;
        let (sender, receiver) = mpsc::channel(16);
        // Detached on purpose: it ends by itself once the receiver is gone.
        drop(tokio::task::spawn_blocking(move || {
            while !sender.is_closed() {
                match watcher.wait(RECEIVER_CHECK) {
                    Ok(None) => {}
                    Ok(Some(change)) => {
                        if sender.blocking_send(Ok(change)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = sender.blocking_send(Err(e));
                        break;
                    }
                }
            }
        }));
        Ok(receiver)
    }
}

/// Runs `op` on the blocking pool. A panic in `op` resumes in the caller, as it would have
/// in a blocking call; a runtime shutting down before `op` ran is an I/O error (Interrupted).
async fn blocking<T, F>(path: &Path, op: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(op).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::Interrupted, e.to_string()),
        }),
    }
}
