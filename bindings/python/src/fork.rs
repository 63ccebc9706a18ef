//! `os.fork()` and the stores of this process, registered once at import with
//! `os.register_at_fork`.
//!
//! SQLite connections must not cross a fork, and a child that merely opens new ones is not
//! safe either: SQLite keeps one record per process of the locks held on each file, the
//! child inherits the parent's record without the locks themselves, and its new
//! connections, trusting the record, take none; the parent closing its last connection
//! then sees no other user and deletes the `-wal` under the child. And a fork while another
//! thread is inside SQLite leaves the child with that thread's mutexes held forever.
//!
//! So: every call into the core counts itself in [`CALLS`]; before a fork, the forking
//! thread waits (with the GIL released) until no call is in flight and holds new ones at
//! the door; in the child, every store lets go of what it inherited
//! ([`sessiondb::Store::release_after_fork`]: closes SQLite connections, abandons
//! PostgreSQL sockets) and opens the file afresh on its next call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Calls in flight (low 32 bits) and forks waiting to happen (high 32 bits).
static CALLS: AtomicU64 = AtomicU64::new(0);
const ONE_FORK: u64 = 1 << 32;
const IN_FLIGHT: u64 = ONE_FORK - 1;

/// What a child must let go of: a store's connections, inherited from the parent.
pub(crate) trait Inherited: Send + Sync {
    /// Lets go of what the parent opened; called in the child, with no call in flight.
    fn release_after_fork(&self);
}

/// Every store of this process, so that a child can reset them all.
static LIVE: Mutex<Vec<Weak<dyn Inherited>>> = Mutex::new(Vec::new());

/// A call into the core: while it lives, no fork happens.
pub(crate) struct Call(());

impl Call {
    /// Waits while a fork is under way, then counts this call in. Never holds a lock, so
    /// there is nothing a fork could leave held in the child.
    pub(crate) fn enter() -> Call {
        loop {
            let now = CALLS.load(Ordering::Acquire);
            if now >= ONE_FORK {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            if CALLS
                .compare_exchange_weak(now, now + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Call(());
            }
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        CALLS.fetch_sub(1, Ordering::Release);
    }
}

/// Adds a new store to those a child resets. Called inside a [`Call`], so never during a
/// fork and so never with [`LIVE`]'s lock held across one.
pub(crate) fn register(slot: Weak<dyn Inherited>) {
    let mut live = LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    live.retain(|s| s.strong_count() > 0);
    live.push(slot);
}

/// `os.register_at_fork(before=...)`: waits until no call is in flight. A call waits at
/// most its busy timeout for a lock, so a fork waits at most that long.
#[pyfunction]
fn before_fork(py: Python<'_>) {
    CALLS.fetch_add(ONE_FORK, Ordering::AcqRel);
    // Without the GIL: a waiting writer checks for Ctrl-C with it.
    py.detach(|| {
        while CALLS.load(Ordering::Acquire) & IN_FLIGHT != 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
    });
}

#[pyfunction]
fn after_fork_in_parent() {
    CALLS.fetch_sub(ONE_FORK, Ordering::AcqRel);
}

/// In the child, the only thread: no call is in flight (the parent waited), so every
/// inherited store can be let go of safely.
#[pyfunction]
fn after_fork_in_child() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|p| p.into_inner()));
    let live: Vec<_> = live.into_iter().filter_map(|s| s.upgrade()).collect();
    for slot in &live {
        slot.release_after_fork();
    }
    *LIVE.lock().unwrap_or_else(|p| p.into_inner()) =
        live.iter().map(std::sync::Arc::downgrade).collect();
    // Forks other threads of the parent were about to make do not exist here.
    CALLS.store(0, Ordering::Release);
}

/// Registers the three hooks with `os.register_at_fork`; once, at import.
pub(crate) fn register_hooks(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let hooks = PyDict::new(py);
    hooks.set_item("before", wrap_pyfunction!(before_fork, module)?)?;
    hooks.set_item(
        "after_in_parent",
        wrap_pyfunction!(after_fork_in_parent, module)?,
    )?;
    hooks.set_item(
        "after_in_child",
        wrap_pyfunction!(after_fork_in_child, module)?,
    )?;
    let os = py.import("os")?;
    if os.hasattr("register_at_fork")? {
        os.call_method("register_at_fork", (), Some(&hooks))?;
    }
    Ok(())
}
