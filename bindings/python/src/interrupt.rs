//! Ctrl-C during a wait for another writer's lock, installed once at import
//! ([`sessiondb::interrupt_lock_waits`]).
//!
//! Python runs signal handlers on the main thread, between bytecodes; a call waiting in the
//! core with the GIL released would see Ctrl-C only once the lock came free, and then write
//! anyway. So the waiting main thread takes the GIL every [`CHECK_EVERY`] and runs the
//! pending handlers: one that raises (KeyboardInterrupt by default) ends the wait, nothing is
//! written, and the exception it raised is what the call raises. A write that got its lock
//! is not interrupted; a signal that arrives then is raised by Python right after the call
//! returns, so a committed write is never reported as failed.

use std::cell::{Cell, RefCell};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// How often a waiting main thread looks for signals: each look takes the GIL.
const CHECK_EVERY: Duration = Duration::from_millis(10);

/// Python's main thread, as `threading.main_thread().ident` (a `pthread_t`).
static MAIN_THREAD: OnceLock<u64> = OnceLock::new();

thread_local! {
    static LAST_CHECK: Cell<Option<Instant>> = const { Cell::new(None) };
    /// What the signal handler raised during this thread's wait, for the call to raise.
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Whether a signal handler raised; runs between a waiting writer's tries for the lock.
fn signal_raised() -> bool {
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as u64;
    if MAIN_THREAD.get() != Some(&me) {
        return false;
    }
    let now = Instant::now();
    let due = LAST_CHECK.with(|last| match last.get() {
        Some(at) if now.duration_since(at) < CHECK_EVERY => false,
        _ => {
            last.set(Some(now));
            true
        }
    });
    if !due {
        return false;
    }
    Python::attach(|py| match py.check_signals() {
        Ok(()) => false,
        Err(raised) => {
            PENDING.with(|p| *p.borrow_mut() = Some(raised));
            true
        }
    })
}

/// The exception a signal handler raised during this thread's last wait, if any.
pub(crate) fn take_pending() -> Option<PyErr> {
    LAST_CHECK.with(|last| last.set(None));
    PENDING.with(|p| p.borrow_mut().take())
}

/// Installs the check; once, at import.
pub(crate) fn install(py: Python<'_>) -> PyResult<()> {
    let main: u64 = py
        .import("threading")?
        .call_method0("main_thread")?
        .getattr("ident")?
        .extract()?;
    let _ = MAIN_THREAD.set(main);
    sessiondb::interrupt_lock_waits(signal_raised);
    Ok(())
}
