//! `sessiondb.Store`: the core's [`sessiondb::Store`] in Python form.
//!
//! This file holds the class, how a call reaches the core store (with the GIL released, as one
//! [`Call`] a fork waits for) and opening and closing. The methods live by area, each a short
//! call into the core: `messages` (appends, reads, replacing, compaction), `openai` (OpenAI
//! Agents SDK items, mapped by the core), `streams` (streamed replies), `sessions`,
//! `branches` (forks, branches, snapshots), `maintenance` (search, transfer, upkeep),
//! `leases` (one run per session) and `watch` (waiting for another process's changes).

mod branches;
mod checkpoints;
mod leases;
mod maintenance;
mod messages;
mod openai;
mod sessions;
mod streams;
mod watch;

pub(crate) use leases::{Lease, LeasedSession};
pub(crate) use watch::{Change, WatchCursor, Watcher};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use pyo3::prelude::*;
use serde::Serialize;
use sessiondb::{StoreBuilder, Synchronous};

use crate::convert::{seconds, to_py};
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
    /// The watchers made from this store, each with a connection of its own that closing
    /// the store closes, waiting or not.
    watchers: Mutex<Vec<Weak<watch::State>>>,
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
    fn watchers(&self) -> std::sync::MutexGuard<'_, Vec<Weak<watch::State>>> {
        self.watchers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

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
        if !cfg!(feature = "postgres") && path.to_str().is_some_and(sessiondb::is_postgres_url) {
            return Err(invalid(format!(
                "{}: this sessiondb package was built without PostgreSQL; reinstall it from \
                 source with MATURIN_PEP517_ARGS=\"--features postgres\" pip install …",
                path.display()
            )));
        }
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
                    watchers: Mutex::default(),
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
            // A waiting watcher sees the store closed within a slice; an idle one would keep
            // its connection until it is collected.
            let watchers = std::mem::take(&mut *self.slot.watchers());
            for watcher in watchers.iter().filter_map(Weak::upgrade) {
                watcher.let_go();
            }
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
}
