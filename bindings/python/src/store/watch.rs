//! Watching a session for changes made by any process ([`sessiondb::Store::watcher`]).
//!
//! A `Watcher` keeps the core's watcher (a connection of its own) and waits on it in slices
//! of [`SLICE`], each one [`Call`] with the GIL released. Between slices it takes the GIL and
//! runs Python's signal handlers, so Ctrl-C ends a wait within a slice and the watcher keeps
//! its place; a fork waits at most one slice; a closed store or watcher is noticed within
//! one, and its connection closed. In a forked child the watcher lets go of the parent's
//! connection and opens its own on the next wait, from where it was.
//!
//! `async for` runs the same waits on a thread of the watcher's own
//! (`sessiondb._watch.next_change`): the event loop never waits, and a cancelled `__anext__`
//! leaves its wait running, so the change it finds is the next one delivered, not lost.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyTuple};
use sessiondb::{HistoryUpdate, StreamUpdate};

use super::{Failure, Slot, Store};
use crate::convert::{seconds, to_py};
use crate::fork::{self, Call};

/// The longest a wait runs without the GIL: how late Ctrl-C, a fork or a close is seen.
const SLICE: Duration = Duration::from_millis(20);

/// What a watcher has seen of a session, from `Change.cursor` or `Watcher.cursor`.
#[pyclass(frozen, eq, module = "sessiondb._core", name = "WatchCursor")]
#[derive(PartialEq)]
pub(crate) struct WatchCursor(sessiondb::WatchCursor);

#[pymethods]
impl WatchCursor {
    /// A cursor that knows only a version: any later change carries the whole history.
    #[staticmethod]
    fn at_version(version: i64) -> Self {
        WatchCursor(sessiondb::WatchCursor::at_version(version))
    }

    /// The session version this cursor has seen.
    #[getter]
    fn version(&self) -> i64 {
        self.0.version()
    }

    fn __repr__(&self) -> String {
        format!("sessiondb.WatchCursor(version={})", self.0.version())
    }
}

/// A session's change since a cursor, from `Store.watch` or a `Watcher`.
#[pyclass(frozen, module = "sessiondb._core", name = "Change")]
pub(crate) struct Change {
    session_id: String,
    version: i64,
    length: u64,
    history: &'static str,
    messages: Py<PyAny>,
    partial: Py<PyAny>,
    stream: &'static str,
    grew: Option<String>,
    cursor: sessiondb::WatchCursor,
}

impl Change {
    fn new(py: Python<'_>, change: sessiondb::Change) -> PyResult<Change> {
        let cursor = change.cursor();
        let (history, messages) = match &change.history {
            HistoryUpdate::Appended(added) => ("appended", to_py(py, added)?),
            HistoryUpdate::Replaced(history) => ("replaced", to_py(py, &**history)?),
            // `HistoryUpdate` may grow variants: anything else carries no messages.
            _ => ("unchanged", to_py(py, &[] as &[sessiondb::Message])?),
        };
        let (stream, grew) = match change.stream {
            StreamUpdate::Started => ("started", None),
            StreamUpdate::Grew(text) => ("grew", Some(text)),
            StreamUpdate::Ended => ("ended", None),
            _ => ("unchanged", None),
        };
        Ok(Change {
            partial: to_py(py, &change.partial)?,
            session_id: change.session_id,
            version: change.version,
            length: change.length,
            history,
            messages,
            stream,
            grew,
            cursor,
        })
    }
}

#[pymethods]
impl Change {
    #[getter]
    fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The session's version now.
    #[getter]
    fn version(&self) -> i64 {
        self.version
    }

    /// Length of the history now.
    #[getter]
    fn length(&self) -> u64 {
        self.length
    }

    /// `"appended"` (`messages` follow what the cursor saw), `"replaced"` (`messages` is the
    /// whole current history) or `"unchanged"` (only the streamed reply changed).
    #[getter]
    fn history(&self) -> &'static str {
        self.history
    }

    #[getter]
    fn messages(&self, py: Python<'_>) -> Py<PyAny> {
        self.messages.clone_ref(py)
    }

    /// The streamed reply in progress now, whole, or `None`.
    #[getter]
    fn partial(&self, py: Python<'_>) -> Py<PyAny> {
        self.partial.clone_ref(py)
    }

    /// `"unchanged"`, `"started"` (all its text is in `partial`), `"grew"` (by `grew`) or
    /// `"ended"` (finished: its message is in `messages`; or discarded).
    #[getter]
    fn stream(&self) -> &'static str {
        self.stream
    }

    /// The text the streamed reply grew by, when `stream` is `"grew"`.
    #[getter]
    fn grew(&self) -> Option<&str> {
        self.grew.as_deref()
    }

    /// The cursor that has seen this change: `since` of the next watch.
    #[getter]
    fn cursor(&self) -> WatchCursor {
        WatchCursor(self.cursor.clone())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let count = self.messages.bind(py).len()?;
        Ok(format!(
            "sessiondb.Change(session_id={}, version={}, length={}, history='{}', \
             messages=<{count} message{}>, stream='{}')",
            self.session_id.as_str().into_pyobject(py)?.repr()?,
            self.version,
            self.length,
            self.history,
            if count == 1 { "" } else { "s" },
            self.stream,
        ))
    }
}

/// What a watcher shares with the fork hooks and its store.
pub(crate) struct State {
    session_id: String,
    poll: Option<Duration>,
    /// `Watcher.close()` was called.
    closed: AtomicBool,
    /// An error ended the iteration (as the core's iterator ends after one).
    failed: AtomicBool,
    inner: Mutex<Inner>,
}

struct Inner {
    /// What was seen: where a watcher opened again (after a fork) starts.
    cursor: sessiondb::WatchCursor,
    /// `None` until the first wait, after a fork, and once closed.
    core: Option<sessiondb::Watcher>,
}

impl State {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Closes the connection, its store being closed. Inside a [`Call`]; a wait in flight
    /// ends its slice first, then sees the store closed.
    pub(crate) fn let_go(&self) {
        self.inner().core = None;
    }
}

impl fork::Inherited for State {
    /// No wait is in flight: the lock is taken only inside a [`Call`], and the parent waited
    /// for every call to end before it forked.
    fn release_after_fork(&self) {
        let core = match self.inner.try_lock() {
            Ok(mut inner) => inner.core.take(),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner().core.take(),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        if let Some(core) = core {
            core.release_after_fork();
        }
    }
}

/// Why a wait stopped without a change.
enum Stopped {
    Store(Failure),
    /// `Watcher.close()`.
    Closed,
}

impl From<Failure> for Stopped {
    fn from(failure: Failure) -> Self {
        Stopped::Store(failure)
    }
}

impl From<sessiondb::Error> for Stopped {
    fn from(err: sessiondb::Error) -> Self {
        Stopped::Store(Failure::Core(err))
    }
}

/// Waits for changes of one session made by any process, from `Store.watcher`.
#[pyclass(frozen, module = "sessiondb._core", name = "Watcher")]
pub(crate) struct Watcher {
    path: PathBuf,
    slot: Arc<Slot>,
    state: Arc<State>,
    /// What `async for` keeps; touched only with the GIL held.
    asyncs: Mutex<Asyncs>,
}

/// The thread `async for` waits on, and the wait an `__anext__` started and did not see end
/// (it was cancelled), of the process that made them: a forked child has neither the thread
/// nor the wait, and makes its own.
#[derive(Default)]
struct Asyncs {
    pid: u32,
    /// A `ThreadPoolExecutor` of one thread, made on first use.
    executor: Option<Py<PyAny>>,
    pending: Option<Py<PyAny>>,
}

impl Watcher {
    fn asyncs(&self) -> MutexGuard<'_, Asyncs> {
        let mut asyncs = self.asyncs.lock().unwrap_or_else(|p| p.into_inner());
        if asyncs.pid != std::process::id() {
            *asyncs = Asyncs {
                pid: std::process::id(),
                ..Asyncs::default()
            };
        }
        asyncs
    }
}

impl Watcher {
    /// One slice of waiting, without the GIL.
    fn step(&self, slice: Duration) -> Result<Option<sessiondb::Change>, Stopped> {
        let _call = Call::enter();
        let mut inner = self.state.inner();
        if self.state.closed.load(Ordering::Acquire) {
            inner.core = None;
            return Err(Stopped::Closed);
        }
        if self.slot.closed.load(Ordering::Acquire) {
            inner.core = None;
            return Err(Failure::Closed.into());
        }
        let inner = &mut *inner;
        let core = match &mut inner.core {
            Some(core) => core,
            None => {
                let opened = self.slot.get()?;
                let core = opened
                    .store
                    .watcher(&self.state.session_id, inner.cursor.clone())?;
                inner.core.insert(match self.state.poll {
                    Some(poll) => core.poll_interval(poll),
                    None => core,
                })
            }
        };
        let change = core.wait(slice)?;
        if let Some(change) = &change {
            inner.cursor = change.cursor();
        }
        Ok(change)
    }

    /// Waits up to `timeout` (`None`: no limit) for a change, slice by slice, running the
    /// signal handlers between slices.
    fn wait_for(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
    ) -> Result<Option<Change>, WaitError> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let slice = deadline.map_or(SLICE, |d| {
                d.saturating_duration_since(Instant::now()).min(SLICE)
            });
            match py.detach(|| self.step(slice)) {
                Ok(Some(change)) => return Ok(Some(Change::new(py, change)?)),
                Ok(None) => {}
                Err(Stopped::Closed) => return Err(WaitError::Closed),
                Err(Stopped::Store(failure)) => {
                    return Err(WaitError::Failed(failure.into_py(&self.path)))
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            py.check_signals()?;
        }
    }

    /// The next change of the iteration, `None` once it is over (closed, or after an error),
    /// or at `timeout`.
    fn next_of_iteration(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
    ) -> PyResult<Option<Change>> {
        if self.done() {
            return Ok(None);
        }
        match self.wait_for(py, timeout) {
            Ok(change) => Ok(change),
            Err(WaitError::Closed) => Ok(None),
            Err(WaitError::Failed(err)) => {
                self.state.failed.store(true, Ordering::Release);
                Err(err)
            }
            Err(WaitError::Raised(err)) => Err(err),
        }
    }

    /// [`Watcher::wait_for`], a closed watcher raising `Closed`.
    fn wait_or_raise(&self, py: Python<'_>, timeout: Option<Duration>) -> PyResult<Option<Change>> {
        match self.wait_for(py, timeout) {
            Ok(change) => Ok(change),
            Err(WaitError::Closed) => Err(self.closed_error(py)),
            Err(WaitError::Failed(err) | WaitError::Raised(err)) => Err(err),
        }
    }

    fn done(&self) -> bool {
        self.state.closed.load(Ordering::Acquire) || self.state.failed.load(Ordering::Acquire)
    }

    fn closed_error(&self, py: Python<'_>) -> PyErr {
        let message = format!(
            "the watcher of session {:?} was closed; ask the store for a new one",
            self.state.session_id
        );
        match py
            .import("sessiondb._errors")
            .and_then(|m| m.getattr("Closed")?.call1((message,)))
        {
            Ok(exc) => {
                let _ = exc.setattr("path", self.path.to_string_lossy().as_ref());
                PyErr::from_value(exc)
            }
            Err(failed) => failed,
        }
    }
}

/// How a wait failed.
enum WaitError {
    /// `Watcher.close()`.
    Closed,
    /// The core or the store failed: the iteration ends.
    Failed(PyErr),
    /// A signal handler raised, or a result could not be converted: the watcher goes on.
    Raised(PyErr),
}

impl From<PyErr> for WaitError {
    fn from(err: PyErr) -> Self {
        WaitError::Raised(err)
    }
}

#[pymethods]
impl Watcher {
    #[getter]
    fn session_id(&self) -> &str {
        &self.state.session_id
    }

    /// What this watcher has seen so far; moves with each change it returns.
    #[getter]
    fn cursor(&self, py: Python<'_>) -> WatchCursor {
        let state = &self.state;
        WatchCursor(py.detach(|| {
            // A call, as every use of the lock: a fork never finds it held.
            let _call = Call::enter();
            state.inner().cursor.clone()
        }))
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.state.closed.load(Ordering::Acquire)
    }

    /// Blocks until the session changed after the cursor, or `timeout` seconds passed
    /// (`None`: no limit), and returns the change (`None` at the timeout). Ctrl-C ends the
    /// wait with `KeyboardInterrupt`; the watcher keeps its place.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Change>> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        self.wait_or_raise(py, timeout)
    }

    /// Closes the watcher's connection (within one wait slice if another thread is
    /// waiting, and that iteration ends). Closing again does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.state.closed.store(true, Ordering::Release);
        let state = &self.state;
        py.detach(|| {
            let _call = Call::enter();
            // A waiting thread holds the lock for at most a slice, and drops the
            // connection itself when it sees the flag.
            if let Ok(mut inner) = state.inner.try_lock() {
                inner.core = None;
            }
        });
        let executor = self.asyncs().executor.take();
        if let Some(executor) = executor {
            executor.call_method1(py, "shutdown", (false,))?;
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Blocks until the next change. The iteration ends after `close()`, and after an
    /// error (the session was deleted), which it raises first.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Change>> {
        self.next_of_iteration(py, None)
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// An awaitable of the next change, waited for on the watcher's own thread.
    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("sessiondb._watch")?
            .getattr("next_change")?
            .call1((slf,))
    }

    /// For `sessiondb._watch`: the next change within `timeout` seconds, or `None` (then
    /// `_done` says whether the iteration is over).
    fn _next_change(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Change>> {
        self.next_of_iteration(py, Some(seconds("timeout", timeout)?))
    }

    #[getter]
    fn _done(&self) -> bool {
        self.done()
    }

    /// For `sessiondb._watch`: the watcher's thread.
    fn _executor(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(executor) = &self.asyncs().executor {
            return Ok(executor.clone_ref(py));
        }
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("max_workers", 1)?;
        kwargs.set_item("thread_name_prefix", "sessiondb-watch")?;
        let executor = py
            .import("concurrent.futures")?
            .getattr("ThreadPoolExecutor")?
            .call((), Some(&kwargs))?
            .unbind();
        self.asyncs().executor = Some(executor.clone_ref(py));
        Ok(executor)
    }

    #[getter]
    fn _pending(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.asyncs().pending.as_ref().map(|p| p.clone_ref(py))
    }

    #[setter(_pending)]
    fn set_pending(&self, job: Option<Py<PyAny>>) {
        self.asyncs().pending = job;
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "sessiondb.Watcher(session_id={}, closed={})",
            self.state.session_id.as_str().into_pyobject(py)?.repr()?,
            if self.closed() { "True" } else { "False" }
        ))
    }
}

impl Store {
    /// A watcher of `session_id` that has seen `since`, its connection open and registered
    /// with the fork hooks.
    fn open_watcher(
        &self,
        py: Python<'_>,
        session_id: String,
        since: Option<&Bound<'_, PyAny>>,
        poll_interval: Option<f64>,
    ) -> PyResult<Watcher> {
        let since = cursor_of(since)?;
        let poll = poll_interval
            .map(|p| seconds("poll_interval", p))
            .transpose()?;
        let slot = self.slot.clone();
        let store = self.slot.clone();
        let state = self.run(py, move |s| {
            let cursor = match since {
                Some(cursor) => cursor,
                None => {
                    let (history, partial) = s.chat_history_with_partial(&session_id, Some(0))?;
                    sessiondb::WatchCursor::after(&history, partial.as_ref())
                }
            };
            let core = s.watcher(&session_id, cursor.clone())?;
            let state = Arc::new(State {
                session_id,
                poll,
                closed: AtomicBool::new(false),
                failed: AtomicBool::new(false),
                inner: Mutex::new(Inner {
                    cursor,
                    core: Some(match poll {
                        Some(poll) => core.poll_interval(poll),
                        None => core,
                    }),
                }),
            });
            // Inside this call, so never during a fork.
            let inherited: Arc<dyn fork::Inherited> = state.clone();
            fork::register(Arc::downgrade(&inherited));
            let mut watchers = store.watchers();
            watchers.retain(|w| w.strong_count() > 0);
            watchers.push(Arc::downgrade(&state));
            drop(watchers);
            // A close that took the list before this watcher was on it set `closed` first.
            if store.closed.load(Ordering::Acquire) {
                state.let_go();
            }
            Ok(state)
        })?;
        Ok(Watcher {
            path: self.path.clone(),
            slot,
            state,
            asyncs: Mutex::default(),
        })
    }
}

/// `since` as a core cursor: `None` (what the session holds now, read when the watcher
/// opens), a version, a `WatchCursor` or a `Change`.
fn cursor_of(since: Option<&Bound<'_, PyAny>>) -> PyResult<Option<sessiondb::WatchCursor>> {
    let Some(since) = since.filter(|s| !s.is_none()) else {
        return Ok(None);
    };
    if let Ok(cursor) = since.cast::<WatchCursor>() {
        return Ok(Some(cursor.get().0.clone()));
    }
    if let Ok(change) = since.cast::<Change>() {
        return Ok(Some(change.get().cursor.clone()));
    }
    if since.is_instance_of::<PyInt>() && !since.is_instance_of::<PyBool>() {
        let version: i64 = since.extract()?;
        return Ok(Some(sessiondb::WatchCursor::at_version(version)));
    }
    Err(PyTypeError::new_err(format!(
        "since must be None, a session version (int), a WatchCursor or a Change, not {}",
        since.get_type().name()?
    )))
}

#[pymethods]
impl Store {
    /// Blocks until `session_id` changed after `since` in any process, or `timeout` seconds
    /// passed (`None`: no limit), and returns the change (`None` at the timeout). `since`:
    /// `None` (the session as it is when the call starts), a version, a `WatchCursor` or a
    /// `Change`. Ctrl-C ends the wait with `KeyboardInterrupt`.
    #[pyo3(signature = (session_id, since=None, *, timeout=None))]
    fn watch(
        &self,
        py: Python<'_>,
        session_id: String,
        since: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Change>> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let watcher = self.open_watcher(py, session_id, since, None)?;
        let change = watcher.wait_or_raise(py, timeout);
        watcher.close(py)?;
        change
    }

    /// A watcher of `session_id` that has seen `since` (as for `watch`): iterate it (`for`
    /// or `async for`) for every change, or call its `wait`.
    #[pyo3(signature = (session_id, since=None, *, poll_interval=None))]
    fn watcher(
        &self,
        py: Python<'_>,
        session_id: String,
        since: Option<&Bound<'_, PyAny>>,
        poll_interval: Option<f64>,
    ) -> PyResult<Watcher> {
        self.open_watcher(py, session_id, since, poll_interval)
    }
}
