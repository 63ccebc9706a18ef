//! `sessiondb.Store`: the core's [`sessiondb::Store`] in Python form.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde::Serialize;
use sessiondb::{
    ExportFile, ImportOptions, NewMessage, NewSession, Role, SearchFilter, SessionQuery,
    SnapshotId, StoreBuilder, StreamEnd, Synchronous,
};

use crate::convert::{count, existing, from_py, index, metadata, seconds, to_py};
use crate::errors::{closed, invalid, raise};
use crate::fork::{self, Call};

/// A core store opened in this process.
struct Opened {
    store: sessiondb::Store,
    /// The same file with a zero busy timeout and no cache, opened on first use: a call made
    /// with `wait=False` gets `Busy` at once where it would wait for another writer.
    nowait: OnceLock<sessiondb::Store>,
}

impl Opened {
    fn new(builder: &StoreBuilder) -> sessiondb::Result<Self> {
        Ok(Opened {
            store: builder.clone().open()?,
            nowait: OnceLock::new(),
        })
    }

    fn nowait(&self, builder: &StoreBuilder) -> sessiondb::Result<&sessiondb::Store> {
        if let Some(store) = self.nowait.get() {
            return Ok(store);
        }
        let store = builder
            .clone()
            .busy_timeout(Duration::ZERO)
            .cache_entries(0)
            .open()?;
        // Two threads may both open one; the loser's is dropped (it was never used).
        Ok(self.nowait.get_or_init(|| store))
    }
}

/// What a Python `Store` holds: the core store of this process, opened again on first use
/// in a forked child, and nothing once closed.
pub(crate) struct Slot {
    builder: StoreBuilder,
    opened: ArcSwapOption<Opened>,
    closed: AtomicBool,
}

/// Why a call could not reach the core store.
enum Failure {
    Core(sessiondb::Error),
    Closed,
}

impl From<sessiondb::Error> for Failure {
    fn from(err: sessiondb::Error) -> Self {
        Failure::Core(err)
    }
}

impl Failure {
    fn into_py(self, path: &std::path::Path) -> PyErr {
        match self {
            Failure::Core(err) => raise(err),
            Failure::Closed => closed(path),
        }
    }
}

impl Slot {
    /// The core store, opened now if this is a forked child's first call.
    fn get(&self) -> Result<Arc<Opened>, Failure> {
        if let Some(opened) = self.opened.load_full() {
            return Ok(opened);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Failure::Closed);
        }
        let fresh = Arc::new(Opened::new(&self.builder)?);
        let previous = self
            .opened
            .compare_and_swap(&None::<Arc<Opened>>, Some(fresh.clone()));
        match &*previous {
            // Another thread opened it first: use that one (ours was never used).
            Some(theirs) => Ok(theirs.clone()),
            None if self.closed.load(Ordering::Acquire) => {
                self.opened.store(None);
                Err(Failure::Closed)
            }
            None => Ok(fresh),
        }
    }
}

impl fork::Inherited for Slot {
    /// In a forked child: lets go of the parent's connections (see [`crate::fork`]).
    fn release_after_fork(&self) {
        if let Some(inherited) = self.opened.swap(None) {
            match Arc::try_unwrap(inherited) {
                Ok(opened) => {
                    if let Some(nowait) = opened.nowait.into_inner() {
                        nowait.release_after_fork();
                    }
                    opened.store.release_after_fork();
                }
                // Only a call in flight could hold another reference, and the parent waited
                // for every call to end before it forked; never close what may be in use.
                Err(shared) => std::mem::forget(shared),
            }
        }
    }
}

/// A sessiondb file. Share one between threads; each process (a fork included) gets its own
/// connections.
#[pyclass(frozen, module = "sessiondb._core", name = "Store")]
pub(crate) struct Store {
    path: PathBuf,
    slot: Arc<Slot>,
}

fn added_to_py(py: Python<'_>, added: &sessiondb::AddedMessages) -> PyResult<Py<PyAny>> {
    let out = PyDict::new(py);
    out.set_item("messages", to_py(py, &added.messages)?)?;
    out.set_item("already_stored", added.already_stored)?;
    out.set_item("version", added.version)?;
    Ok(out.into_any().unbind())
}

impl Store {
    /// Runs `op` on the core store with the GIL released, as one [`Call`]: no fork happens
    /// while it runs.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&sessiondb::Store) -> sessiondb::Result<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let _call = Call::enter();
            let opened = self.slot.get()?;
            Ok(op(&opened.store)?)
        })
        .map_err(|e: Failure| e.into_py(&self.path))
    }

    /// [`Store::run`] on the zero-timeout sibling when `wait` is false.
    fn run_waiting<T: Send>(
        &self,
        py: Python<'_>,
        wait: bool,
        op: impl FnOnce(&sessiondb::Store) -> sessiondb::Result<T> + Send,
    ) -> PyResult<T> {
        if wait {
            return self.run(py, op);
        }
        py.detach(|| {
            let _call = Call::enter();
            let opened = self.slot.get()?;
            Ok(op(opened.nowait(&self.slot.builder)?)?)
        })
        .map_err(|e: Failure| e.into_py(&self.path))
    }

    fn run_to_py<T: Serialize + Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&sessiondb::Store) -> sessiondb::Result<T> + Send,
    ) -> PyResult<Py<PyAny>> {
        let value = self.run(py, op)?;
        to_py(py, &value)
    }
}

#[pymethods]
impl Store {
    #[new]
    #[pyo3(signature = (path=None, *, busy_timeout=10.0, synchronous="normal", cache_entries=1024, cache_bytes=64 * 1024 * 1024, pool_size=8, read_only=false, create=true, shared=false, separate_sqlite_ok=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: Option<PathBuf>,
        busy_timeout: f64,
        synchronous: &str,
        cache_entries: usize,
        cache_bytes: usize,
        pool_size: u32,
        read_only: bool,
        create: bool,
        shared: bool,
        separate_sqlite_ok: bool,
    ) -> PyResult<Self> {
        let path = match path {
            Some(p) => p,
            None => sessiondb::default_path().ok_or_else(|| {
                invalid("no path given, SESSIONDB_PATH is unset and there is no data directory")
            })?,
        };
        let synchronous = match synchronous {
            "normal" => Synchronous::Normal,
            "full" => Synchronous::Full,
            other => {
                return Err(invalid(format!(
                    "synchronous must be \"normal\" or \"full\", got {other:?}"
                )))
            }
        };
        if pool_size == 0 {
            return Err(invalid("pool_size must be 1 or more"));
        }
        let builder = sessiondb::Store::builder(&path)
            .busy_timeout(seconds("busy_timeout", busy_timeout)?)
            .synchronous(synchronous)
            .cache_entries(cache_entries)
            .cache_bytes(cache_bytes)
            .pool_size(pool_size)
            .read_only(read_only)
            .create(create)
            .shared(shared);
        crate::sqlite_check::refuse_separate_sqlite(py, &path, separate_sqlite_ok)?;
        let slot = py
            .detach(|| {
                let _call = Call::enter();
                let opened = Opened::new(&builder)?;
                let path = opened.store.path().to_path_buf();
                let slot = Arc::new(Slot {
                    builder,
                    opened: ArcSwapOption::from_pointee(opened),
                    closed: AtomicBool::new(false),
                });
                let inherited: Arc<dyn fork::Inherited> = slot.clone();
                fork::register(Arc::downgrade(&inherited));
                Ok((path, slot))
            })
            .map_err(raise)?;
        Ok(Store {
            path: slot.0,
            slot: slot.1,
        })
    }

    /// Closes the store's connections now (they also close when the store is garbage
    /// collected). Any later call raises `sessiondb.Closed`; closing again does nothing. A
    /// call running in another thread finishes first, on the connection it has.
    fn close(&self, py: Python<'_>) {
        self.slot.closed.store(true, Ordering::Release);
        let opened = self.slot.opened.swap(None);
        py.detach(|| {
            let _call = Call::enter();
            drop(opened);
        });
    }

    /// Whether [`close`](Self::close) was called.
    #[getter]
    fn closed(&self) -> bool {
        self.slot.closed.load(Ordering::Acquire)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    /// The database file's path, or a PostgreSQL URL without its password. A `str`: a
    /// `pathlib.Path` would fold the URL's `//`.
    #[getter]
    fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    fn __repr__(&self) -> String {
        format!("sessiondb.Store({:?})", self.path.to_string_lossy())
    }

    // --- messages -------------------------------------------------------------------------

    #[pyo3(signature = (session_id, message, *, expected_version=None))]
    fn add_message(
        &self,
        py: Python<'_>,
        session_id: String,
        message: &Bound<'_, PyAny>,
        expected_version: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let message: NewMessage = from_py("message", message)?;
        self.run_to_py(py, move |s| match expected_version {
            Some(v) => s.add_message_at_version(&session_id, message, v),
            None => s.add_message(&session_id, message),
        })
    }

    fn add_user_message(
        &self,
        py: Python<'_>,
        session_id: String,
        content: String,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.add_user_message(&session_id, &content))
    }

    fn add_assistant_message(
        &self,
        py: Python<'_>,
        session_id: String,
        content: String,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.add_assistant_message(&session_id, &content))
    }

    /// Appends `messages` in one transaction: all of them or none. Returns
    /// `{"messages": [...stored...], "already_stored": bool, "version": int}`.
    #[pyo3(signature = (session_id, messages, *, expected_version=None))]
    fn add_messages(
        &self,
        py: Python<'_>,
        session_id: String,
        messages: &Bound<'_, PyAny>,
        expected_version: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let messages: Vec<NewMessage> = from_py("messages", messages)?;
        let added = self.run(py, move |s| match expected_version {
            Some(v) => s.add_messages_at_version(&session_id, &messages, v),
            None => s.add_messages(&session_id, &messages),
        })?;
        added_to_py(py, &added)
    }

    /// Appends OpenAI Agents SDK items (any shape) in one transaction; each reads back exactly
    /// from its message's `metadata["openai_item"]`. Returns `(version, items)`: the session's
    /// version afterwards and the items as they read back (JSON values: a tuple becomes a
    /// list). With `wait=False` a write lock held by someone else raises `Busy` at once
    /// (nothing written) instead of waiting for it.
    #[pyo3(signature = (session_id, items, *, wait=true))]
    fn add_openai_items(
        &self,
        py: Python<'_>,
        session_id: String,
        items: &Bound<'_, PyAny>,
        wait: bool,
    ) -> PyResult<(Option<i64>, Py<PyAny>)> {
        let items: Vec<serde_json::Value> = from_py("items", items)?;
        let messages = items
            .iter()
            .map(|item| NewMessage::from_openai_item(item.clone()))
            .collect::<sessiondb::Result<Vec<_>>>()
            .map_err(raise)?;
        if messages.is_empty() {
            return Ok((None, PyList::empty(py).into_any().unbind()));
        }
        let version = self.run_waiting(py, wait, move |s| {
            Ok(s.add_messages(&session_id, &messages)?.version)
        })?;
        Ok((Some(version), to_py(py, &items)?))
    }

    /// `(version, items, total)`: the latest `limit` OpenAI Agents SDK items (all when
    /// `None`; exactly the last `limit`, no whole-turn trimming), the session's version they
    /// were read at and the length of its working history. A message written by another API
    /// reads as its `{"role", "content"}`.
    #[pyo3(signature = (session_id, limit=None))]
    fn openai_items(
        &self,
        py: Python<'_>,
        session_id: String,
        limit: Option<i64>,
    ) -> PyResult<(i64, Py<PyAny>, u64)> {
        let limit = count("limit", limit)?;
        let history = self.run(py, move |s| s.chat_history(&session_id, None))?;
        let skip = limit.map_or(0, |n| history.len().saturating_sub(n));
        let out = PyList::empty(py);
        for message in &history[skip..] {
            match message
                .body
                .metadata
                .as_ref()
                .and_then(|m| m.get("openai_item"))
            {
                Some(item) => out.append(to_py(py, item)?)?,
                None => {
                    let chat = PyDict::new(py);
                    chat.set_item("role", message.role().as_str())?;
                    chat.set_item("content", to_py(py, &message.body.content)?)?;
                    out.append(chat)?;
                }
            }
        }
        Ok((
            history.version(),
            out.into_any().unbind(),
            history.len() as u64,
        ))
    }

    /// Removes the last message and returns it (`None` when the history is empty). The old
    /// history stays readable as a superseded branch.
    fn pop_message(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.pop_message(&session_id))
    }

    /// Compacts the history: the working history (`chat_history`) becomes `summary` followed
    /// by the messages after `through_index`; `full_history` still has every message.
    #[pyo3(signature = (session_id, summary, through_index, *, expected_version=None))]
    fn compact(
        &self,
        py: Python<'_>,
        session_id: String,
        summary: &Bound<'_, PyAny>,
        through_index: i64,
        expected_version: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let summary: NewMessage = from_py("summary", summary)?;
        let through = index("through_index", through_index)?;
        self.run_to_py(py, move |s| match expected_version {
            Some(v) => s.compact_at_version(&session_id, summary, through, v),
            None => s.compact(&session_id, summary, through),
        })
    }

    /// Every message of the current history, compacted ones included.
    fn full_history(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| Ok(s.full_history(&session_id)?.to_vec()))
    }

    /// The compactions of the current history, oldest range first; the last is in effect.
    fn compactions(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.compactions(&session_id))
    }

    /// The latest `max_messages` of the working history (all when `None`), oldest first.
    /// With `whole_turns` (the default) a window never starts on a tool result whose call
    /// was cut off; without it, exactly the last `max_messages`.
    #[pyo3(signature = (session_id, max_messages=None, *, cached=true, whole_turns=true))]
    fn chat_history(
        &self,
        py: Python<'_>,
        session_id: String,
        max_messages: Option<i64>,
        cached: bool,
        whole_turns: bool,
    ) -> PyResult<Py<PyAny>> {
        let max = count("max_messages", max_messages)?;
        let history = self.run(py, move |s| {
            let window = if whole_turns { max } else { None };
            if cached {
                s.chat_history(&session_id, window)
            } else {
                s.chat_history_uncached(&session_id, window)
            }
        })?;
        let skip = match (whole_turns, max) {
            (false, Some(n)) => history.len().saturating_sub(n),
            _ => 0,
        };
        to_py(py, &history[skip..])
    }

    /// `(messages, version, total_len)` read in one transaction.
    #[pyo3(signature = (session_id, max_messages=None))]
    fn chat_history_versioned(
        &self,
        py: Python<'_>,
        session_id: String,
        max_messages: Option<i64>,
    ) -> PyResult<(Py<PyAny>, i64, u64)> {
        let max = count("max_messages", max_messages)?;
        let history = self.run(py, move |s| s.chat_history(&session_id, max))?;
        Ok((
            to_py(py, &*history)?,
            history.version(),
            history.total_len(),
        ))
    }

    fn messages_before(
        &self,
        py: Python<'_>,
        session_id: String,
        index: i64,
        limit: i64,
    ) -> PyResult<Py<PyAny>> {
        let (i, n) = (
            self::index("index", index)?,
            self::index("limit", limit)? as usize,
        );
        self.run_to_py(py, move |s| {
            Ok(s.messages_before(&session_id, i, n)?.to_vec())
        })
    }

    fn messages_after(
        &self,
        py: Python<'_>,
        session_id: String,
        index: i64,
        limit: i64,
    ) -> PyResult<Py<PyAny>> {
        let (i, n) = (
            self::index("index", index)?,
            self::index("limit", limit)? as usize,
        );
        self.run_to_py(py, move |s| {
            Ok(s.messages_after(&session_id, i, n)?.to_vec())
        })
    }

    #[pyo3(signature = (session_id, messages, *, expected_version=None))]
    fn set_chat_history(
        &self,
        py: Python<'_>,
        session_id: String,
        messages: &Bound<'_, PyAny>,
        expected_version: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let messages: Vec<NewMessage> = from_py("messages", messages)?;
        let change = self.run(py, move |s| match expected_version {
            Some(v) => s.set_chat_history_at_version(&session_id, &messages, v),
            None => s.set_chat_history(&session_id, &messages),
        })?;
        let out = PyDict::new(py);
        out.set_item("version", change.version)?;
        out.set_item("kept", change.kept)?;
        out.set_item("written", change.written)?;
        out.set_item("superseded", change.superseded)?;
        Ok(out.into_any().unbind())
    }

    // --- sessions -------------------------------------------------------------------------

    #[pyo3(signature = (session_id=None, *, title=None, agent_name=None, agent_id=None, user_id=None, metadata=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_session(
        &self,
        py: Python<'_>,
        session_id: Option<String>,
        title: Option<String>,
        agent_name: Option<String>,
        agent_id: Option<String>,
        user_id: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let new = NewSession {
            id: session_id,
            title,
            agent_name,
            agent_id,
            user_id,
            metadata: self::metadata(metadata)?.unwrap_or_default(),
        };
        self.run_to_py(py, move |s| s.create_session(new))
    }

    fn session(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.session(&session_id))
    }

    fn session_exists(&self, py: Python<'_>, session_id: String) -> PyResult<bool> {
        self.run(py, move |s| s.session_exists(&session_id))
    }

    /// The session's version: one primary-key read. With `wait=False` it never waits (in WAL
    /// mode a read waits only in rare cases such as recovery; then it raises `Busy` at once).
    #[pyo3(signature = (session_id, *, wait=true))]
    fn version(&self, py: Python<'_>, session_id: String, wait: bool) -> PyResult<i64> {
        self.run_waiting(py, wait, move |s| s.version(&session_id))
    }

    /// Sessions, newest `updated_at` first; every page up to `limit` (all when `None`).
    #[pyo3(signature = (*, agent_name=None, user_id=None, title_contains=None, limit=None))]
    fn list_sessions(
        &self,
        py: Python<'_>,
        agent_name: Option<String>,
        user_id: Option<String>,
        title_contains: Option<String>,
        limit: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let limit = count("limit", limit)?;
        self.run_to_py(py, move |s| {
            let mut out = Vec::new();
            let mut query = SessionQuery {
                agent_name,
                user_id,
                title_contains,
                ..SessionQuery::default()
            };
            loop {
                let want = limit.map_or(500, |l| (l - out.len()).min(500));
                if want == 0 {
                    break;
                }
                query.limit = want;
                let page = s.list_sessions(&query)?;
                out.extend(page.sessions);
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
            Ok(out)
        })
    }

    fn update_metadata(
        &self,
        py: Python<'_>,
        session_id: String,
        patch: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let patch = self::metadata(Some(patch))?.unwrap_or_default();
        self.run_to_py(py, move |s| s.update_metadata(&session_id, patch))
    }

    /// Changes the named fields: `title`, `agent_name`, `agent_id`, `user_id` (a `None`
    /// value clears one) and `metadata` (merged; a `None` value removes a key).
    #[pyo3(signature = (session_id, **fields))]
    fn update_session(
        &self,
        py: Python<'_>,
        session_id: String,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let mut update = sessiondb::SessionUpdate::default();
        for (key, value) in fields.into_iter().flat_map(|f| f.iter()) {
            let key: String = key.extract()?;
            let text = || -> PyResult<Option<String>> {
                if value.is_none() {
                    Ok(None)
                } else {
                    value
                        .extract()
                        .map(Some)
                        .map_err(|_| invalid(format!("{key} must be a string or None")))
                }
            };
            match key.as_str() {
                "title" => update.title = Some(text()?),
                "agent_name" => update.agent_name = Some(text()?),
                "agent_id" => update.agent_id = Some(text()?),
                "user_id" => update.user_id = Some(text()?),
                "metadata" => update.metadata = self::metadata(Some(&value))?,
                other => {
                    return Err(invalid(format!(
                        "unknown session field {other:?}: expected title, agent_name, agent_id, user_id or metadata"
                    )))
                }
            }
        }
        self.run_to_py(py, move |s| s.update_session(&session_id, &update))
    }

    #[pyo3(signature = (session_id, title))]
    fn set_title(
        &self,
        py: Python<'_>,
        session_id: String,
        title: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.set_title(&session_id, title.as_deref()))
    }

    fn clear(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.clear(&session_id))
    }

    fn delete_session(&self, py: Python<'_>, session_id: String) -> PyResult<()> {
        self.run(py, move |s| s.delete_session(&session_id))
    }

    // --- forks, branches, snapshots ---------------------------------------------------------

    #[pyo3(signature = (source, at_index=None, title=None))]
    fn fork_session(
        &self,
        py: Python<'_>,
        source: String,
        at_index: Option<i64>,
        title: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let at = at_index.map(|i| index("at_index", i)).transpose()?;
        self.run_to_py(py, move |s| s.fork_session(&source, at, title.as_deref()))
    }

    fn parent_session(&self, py: Python<'_>, session_id: String) -> PyResult<Option<String>> {
        self.run(py, move |s| s.parent_session(&session_id))
    }

    fn child_sessions(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.child_sessions(&session_id))
    }

    fn session_tree(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.session_tree(&session_id))
    }

    #[pyo3(signature = (session_id, name, at_index=None))]
    fn create_branch(
        &self,
        py: Python<'_>,
        session_id: String,
        name: String,
        at_index: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let at = at_index.map(|i| index("at_index", i)).transpose()?;
        self.run_to_py(py, move |s| s.create_branch(&session_id, &name, at))
    }

    fn switch_branch(
        &self,
        py: Python<'_>,
        session_id: String,
        name: String,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.switch_branch(&session_id, &name))
    }

    fn branch_history(
        &self,
        py: Python<'_>,
        session_id: String,
        name: String,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| {
            Ok(s.branch_history(&session_id, &name)?.to_vec())
        })
    }

    fn branches(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.branches(&session_id))
    }

    fn rename_branch(
        &self,
        py: Python<'_>,
        session_id: String,
        name: String,
        new_name: String,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.rename_branch(&session_id, &name, &new_name))
    }

    fn delete_branch(
        &self,
        py: Python<'_>,
        session_id: String,
        name: String,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.delete_branch(&session_id, &name))
    }

    fn revert_to_message(
        &self,
        py: Python<'_>,
        session_id: String,
        index: i64,
    ) -> PyResult<Py<PyAny>> {
        let i = self::index("index", index)?;
        self.run_to_py(py, move |s| s.revert_to_message(&session_id, i))
    }

    #[pyo3(signature = (session_id, label=None, metadata=None))]
    fn create_snapshot(
        &self,
        py: Python<'_>,
        session_id: String,
        label: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let metadata = self::metadata(metadata)?;
        self.run_to_py(py, move |s| {
            s.create_snapshot(&session_id, label.as_deref(), metadata)
        })
    }

    fn snapshots(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.snapshots(&session_id))
    }

    fn restore_snapshot(
        &self,
        py: Python<'_>,
        session_id: String,
        snapshot_id: i64,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| {
            s.restore_snapshot(&session_id, SnapshotId(snapshot_id))
        })
    }

    fn delete_snapshot(
        &self,
        py: Python<'_>,
        session_id: String,
        snapshot_id: i64,
    ) -> PyResult<()> {
        self.run(py, move |s| {
            s.delete_snapshot(&session_id, SnapshotId(snapshot_id))
        })
    }

    // --- streamed replies -----------------------------------------------------------------

    #[pyo3(signature = (session_id, model=None, metadata=None))]
    fn start_stream(
        &self,
        py: Python<'_>,
        session_id: String,
        model: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let metadata = self::metadata(metadata)?;
        self.run_to_py(py, move |s| {
            s.start_stream(&session_id, model.as_deref(), metadata)
        })
    }

    fn append_stream(&self, py: Python<'_>, session_id: String, chunk: String) -> PyResult<()> {
        self.run(py, move |s| s.append_stream(&session_id, &chunk))
    }

    #[pyo3(signature = (session_id, *, content=None, model=None, metadata=None, tool_calls=None, input_tokens=None, output_tokens=None, cost=None))]
    #[allow(clippy::too_many_arguments)]
    fn finish_stream(
        &self,
        py: Python<'_>,
        session_id: String,
        content: Option<String>,
        model: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        tool_calls: Option<&Bound<'_, PyAny>>,
        input_tokens: Option<i64>,
        output_tokens: Option<i64>,
        cost: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let end = StreamEnd {
            content,
            model,
            metadata: self::metadata(metadata)?,
            tool_calls: tool_calls
                .filter(|v| !v.is_none())
                .map(|v| from_py("tool_calls", v))
                .transpose()?,
            input_tokens: input_tokens.map(|n| index("input_tokens", n)).transpose()?,
            output_tokens: output_tokens
                .map(|n| index("output_tokens", n))
                .transpose()?,
            cost,
        };
        self.run_to_py(py, move |s| s.finish_stream(&session_id, end))
    }

    fn discard_stream(&self, py: Python<'_>, session_id: String) -> PyResult<()> {
        self.run(py, move |s| s.discard_stream(&session_id))
    }

    fn partial_message(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.partial_message(&session_id))
    }

    /// `(messages, partial or None)` read in one transaction.
    #[pyo3(signature = (session_id, max_messages=None))]
    fn chat_history_with_partial(
        &self,
        py: Python<'_>,
        session_id: String,
        max_messages: Option<i64>,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        let max = count("max_messages", max_messages)?;
        let (history, partial) =
            self.run(py, move |s| s.chat_history_with_partial(&session_id, max))?;
        Ok((to_py(py, &*history)?, to_py(py, &partial)?))
    }

    /// `(version, messages, partial)` as [`Store::chat_history_with_partial`] reads them in
    /// one snapshot, with `messages` `None` when the history is at `known_version`: a caller
    /// that keeps its own converted copy of that version converts nothing again.
    #[pyo3(signature = (session_id, max_messages=None, *, known_version=None))]
    fn chat_history_if_changed(
        &self,
        py: Python<'_>,
        session_id: String,
        max_messages: Option<i64>,
        known_version: Option<i64>,
    ) -> PyResult<(i64, Py<PyAny>, Py<PyAny>)> {
        let max = count("max_messages", max_messages)?;
        let (history, partial) =
            self.run(py, move |s| s.chat_history_with_partial(&session_id, max))?;
        let messages = if known_version == Some(history.version()) {
            py.None()
        } else {
            to_py(py, &*history)?
        };
        Ok((history.version(), messages, to_py(py, &partial)?))
    }

    // --- search, transfer, maintenance ----------------------------------------------------

    #[pyo3(signature = (query, *, limit=20, session_id=None, agent_name=None, user_id=None, role=None, newest_first=false))]
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        py: Python<'_>,
        query: String,
        limit: i64,
        session_id: Option<String>,
        agent_name: Option<String>,
        user_id: Option<String>,
        role: Option<String>,
        newest_first: bool,
    ) -> PyResult<Py<PyAny>> {
        let limit = self::index("limit", limit)? as usize;
        let role: Option<Role> = role.map(|r| r.parse().map_err(raise)).transpose()?;
        let filter = SearchFilter {
            session: session_id,
            agent_name,
            user_id,
            role,
        };
        self.run_to_py(py, move |s| {
            if newest_first {
                s.search_recent(&query, limit, &filter)
            } else {
                s.search(&query, limit, &filter)
            }
        })
    }

    /// The export document (the JSON `sessiondb export` writes) of `session_ids`, or of every
    /// session when empty.
    #[pyo3(signature = (session_ids=Vec::new(), *, all_branches=false))]
    fn export(
        &self,
        py: Python<'_>,
        session_ids: Vec<String>,
        all_branches: bool,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| {
            s.export(&session_ids, all_branches, &mut |_, _| {})
        })
    }

    #[pyo3(signature = (document, *, overwrite=true, dry_run=false))]
    fn import_export(
        &self,
        py: Python<'_>,
        document: &Bound<'_, PyAny>,
        overwrite: bool,
        dry_run: bool,
    ) -> PyResult<Py<PyAny>> {
        let file: ExportFile = from_py("document", document)?;
        let options = ImportOptions {
            overwrite,
            dry_run,
            ..ImportOptions::default()
        };
        self.run_to_py(py, move |s| {
            s.import_export(&file, &options, &mut |_, _| {})
        })
    }

    #[pyo3(signature = (path, *, overwrite=true, dry_run=false))]
    fn import_praisonai(
        &self,
        py: Python<'_>,
        path: PathBuf,
        overwrite: bool,
        dry_run: bool,
    ) -> PyResult<Py<PyAny>> {
        let options = ImportOptions {
            overwrite,
            dry_run,
            ..ImportOptions::default()
        };
        self.run_to_py(py, move |s| {
            s.import_praisonai(&path, &options, &mut |_, _| {})
        })
    }

    #[pyo3(signature = (out, *, force=false))]
    fn backup(&self, py: Python<'_>, out: PathBuf, force: bool) -> PyResult<u64> {
        self.run(py, move |s| s.backup(&out, existing(force)))
    }

    #[pyo3(signature = (older_than=30.0 * 86400.0, *, dry_run=false))]
    fn prune(&self, py: Python<'_>, older_than: f64, dry_run: bool) -> PyResult<Py<PyAny>> {
        let window = seconds("older_than", older_than)?;
        self.run_to_py(py, move |s| s.prune(window, dry_run))
    }

    /// Deletes sessions not updated within `idle_longer_than` seconds (forks keep their rows).
    #[pyo3(signature = (idle_longer_than, *, dry_run=false))]
    fn expire_sessions(
        &self,
        py: Python<'_>,
        idle_longer_than: f64,
        dry_run: bool,
    ) -> PyResult<Py<PyAny>> {
        let window = seconds("idle_longer_than", idle_longer_than)?;
        self.run_to_py(py, move |s| s.expire_sessions(window, dry_run))
    }

    /// Erases sessions for real (every branch, snapshot and byte in the file and WAL).
    #[pyo3(signature = (session_ids=Vec::new(), *, user_id=None, with_forks=false))]
    fn purge(
        &self,
        py: Python<'_>,
        session_ids: Vec<String>,
        user_id: Option<String>,
        with_forks: bool,
    ) -> PyResult<Py<PyAny>> {
        let request = sessiondb::PurgeRequest {
            sessions: session_ids,
            user_id,
            with_forks,
        };
        self.run_to_py(py, move |s| s.purge(&request))
    }

    #[pyo3(signature = (*, vacuum=false))]
    fn maintain(&self, py: Python<'_>, vacuum: bool) -> PyResult<Py<PyAny>> {
        let report = self.run(py, move |s| s.maintain(vacuum))?;
        let out = PyDict::new(py);
        out.set_item("bytes_before", report.bytes_before)?;
        out.set_item("bytes_after", report.bytes_after)?;
        out.set_item("wal_busy", report.wal_busy)?;
        Ok(out.into_any().unbind())
    }

    fn check(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, |s| s.check())
    }

    #[pyo3(signature = (older_than=30.0 * 86400.0))]
    fn stats(&self, py: Python<'_>, older_than: f64) -> PyResult<Py<PyAny>> {
        let window = seconds("older_than", older_than)?;
        self.run_to_py(py, move |s| s.stats(window))
    }

    #[pyo3(signature = (session_id=None))]
    fn invalidate_cache(&self, py: Python<'_>, session_id: Option<String>) -> PyResult<()> {
        self.run(py, move |s| {
            s.invalidate_cache(session_id.as_deref());
            Ok(())
        })
    }

    fn cache_stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, |s| Ok(s.cache_stats()))
    }
}
