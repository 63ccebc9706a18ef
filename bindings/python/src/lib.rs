//! `sessiondb._core`: the compiled half of the Python package. This file only wires the
//! module; each concern has its file:
//!
//! - `store`: the `Store` class, a thin layer over [`sessiondb::Store`]; every call runs with
//!   the GIL released; its methods sit in `store/` by area (messages, OpenAI items, streamed
//!   replies, sessions, branches, maintenance, leases, watch);
//! - `convert`: Python values into the core's types (checked JSON: no NaN, sets, cycles or
//!   runaway nesting) and results back (`pythonize`, so a message is the dict
//!   `sessiondb history --json` prints; JSON items directly, reusing key strings);
//! - `errors`: each core error as its class of `sessiondb._errors`;
//! - `fork`: `os.fork()` waits for calls in flight, and a child lets go of the parent's
//!   connections and opens its own;
//! - `interrupt`: Ctrl-C ends a wait for another writer's lock, writing nothing;
//! - `sqlite_check`: one SQLite per process, shared with Python's `sqlite3` module.
//!
//! The process-level parts (fork hooks, the interrupt check) are registered once, here.

mod convert;
mod errors;
mod fork;
mod interrupt;
mod sqlite_check;
mod store;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<store::Store>()?;
    m.add_class::<store::Lease>()?;
    m.add_class::<store::LeasedSession>()?;
    m.add_class::<store::Watcher>()?;
    m.add_class::<store::WatchCursor>()?;
    m.add_class::<store::Change>()?;
    m.add_function(wrap_pyfunction!(convert::copy_json, m)?)?;
    m.add_function(wrap_pyfunction!(convert::openai_message, m)?)?;
    m.add("SCHEMA_VERSION", sessiondb::SCHEMA_VERSION)?;
    // Whether this build opens `postgres://` URLs (cargo feature `postgres`).
    m.add("POSTGRES_SUPPORT", cfg!(feature = "postgres"))?;
    m.add("MAX_CONTENT_BYTES", sessiondb::MAX_CONTENT_BYTES)?;
    m.add("MAX_SESSION_ID_BYTES", sessiondb::MAX_SESSION_ID_BYTES)?;
    m.add("MAX_NESTING", convert::MAX_NESTING)?;
    // SAFETY: sqlite3_libversion returns a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(rusqlite::ffi::sqlite3_libversion()) };
    m.add("SQLITE_VERSION", version.to_string_lossy().into_owned())?;
    m.add(
        "SQLITE_SHARED_WITH_PYTHON",
        !matches!(
            sqlite_check::sqlite_of_python(py),
            sqlite_check::PythonSqlite::Separate(_)
        ),
    )?;
    fork::register_hooks(m)?;
    interrupt::install(py)?;
    Ok(())
}
