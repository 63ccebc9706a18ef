//! Ctrl-C during a long import: instead of dying silently, the command says how far it got
//! and that running it again resumes (what was imported reads as unchanged the second time).
//!
//! The handler only sets a flag (all a signal handler may safely do) and puts the default
//! action back, so a second Ctrl-C ends the process at once. The import's progress callback
//! looks at the flag between steps and ends the process there: whatever transaction is open
//! is never committed, so the database keeps exactly the sessions imported before.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
    // SAFETY: signal() is async-signal-safe; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// From now on Ctrl-C (SIGINT) is noted instead of ending the process, once.
#[cfg(unix)]
pub fn catch() {
    let handler = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic and calls signal(), both
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
    }
}

#[cfg(not(unix))]
pub fn catch() {}

/// Whether Ctrl-C was pressed since [`catch`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The exit status of a command ended by Ctrl-C (128 + SIGINT), as a shell reports it.
pub const STATUS: i32 = 130;
