//! One SQLite per process: whether this extension uses the SQLite library that Python's own
//! `sqlite3` module uses.
//!
//! SQLite coordinates the connections of one process through a table of the files they
//! hold and the locks they took (`fcntl` locks, which never conflict within a process). Two
//! copies of SQLite in one process keep two tables that know nothing of each other: when the
//! `sqlite3` module closes its last connection to a file, it believes it is the last user,
//! checkpoints and deletes the `-wal` and `-shm` under sessiondb's live connections, whose
//! next commits go to a deleted file. So the package links the shared system libsqlite3, the
//! library Python's `sqlite3` module loads where it is built that way (Debian, Ubuntu,
//! Fedora, pyenv and the distributions' own Pythons), and a store refuses to open a file in
//! a Python whose `sqlite3` module carries its own copy, unless told that nothing in the
//! process will open the file through it.

use std::ffi::{c_void, CStr, CString};
use std::sync::OnceLock;

use pyo3::prelude::*;

/// What [`sqlite_of_python`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PythonSqlite {
    /// Python's `sqlite3` module calls the very library this extension calls.
    Same,
    /// This Python has no `sqlite3` module.
    Absent,
    /// Python's `sqlite3` module carries another copy; the text says where it lives.
    Separate(String),
}

/// The one answer for this process (a module is never unloaded).
pub(crate) fn sqlite_of_python(py: Python<'_>) -> &'static PythonSqlite {
    static FOUND: OnceLock<PythonSqlite> = OnceLock::new();
    FOUND.get_or_init(|| find(py))
}

fn find(py: Python<'_>) -> PythonSqlite {
    let module = match py.import("_sqlite3") {
        Ok(module) => module,
        Err(_) => return PythonSqlite::Absent,
    };
    // A `_sqlite3` built into the interpreter has no file of its own: look in the program.
    let file: Option<String> = module
        .getattr("__file__")
        .ok()
        .and_then(|f| f.extract().ok());
    let ours = rusqlite::ffi::sqlite3_libversion as *const c_void;
    let theirs = symbol_seen_from(file.as_deref(), c"sqlite3_libversion");
    if theirs == Some(ours) {
        PythonSqlite::Same
    } else {
        PythonSqlite::Separate(file.unwrap_or_else(|| "the python executable".into()))
    }
}

/// The address `name` has for code in the loaded object `file` (the program when `None`):
/// its own definition or that of a library it links. `None` when it has none it exports.
fn symbol_seen_from(file: Option<&str>, name: &CStr) -> Option<*const c_void> {
    let file = match file {
        Some(f) => Some(CString::new(f).ok()?),
        None => None,
    };
    // SAFETY: RTLD_NOLOAD only looks up an object that is loaded already (Python imported
    // `_sqlite3` above) and takes a reference that dlclose gives back; dlsym reads its
    // symbol table. Neither runs code of the object.
    unsafe {
        let handle = libc::dlopen(
            file.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            libc::RTLD_NOLOAD | libc::RTLD_LAZY,
        );
        if handle.is_null() {
            return None;
        }
        let address = libc::dlsym(handle, name.as_ptr());
        libc::dlclose(handle);
        (!address.is_null()).then_some(address as *const c_void)
    }
}

/// `SeparateSqlite` unless this store may open `path`: Python's `sqlite3` module shares our
/// SQLite, or has none, or the caller said nothing will use it on the file; or `path` is a
/// PostgreSQL URL.
pub(crate) fn refuse_separate_sqlite(
    py: Python<'_>,
    path: &std::path::Path,
    separate_sqlite_ok: bool,
) -> PyResult<()> {
    let url = path.to_string_lossy();
    if separate_sqlite_ok || sessiondb::is_postgres_url(&url) {
        return Ok(());
    }
    let PythonSqlite::Separate(theirs) = sqlite_of_python(py) else {
        return Ok(());
    };
    let message = format!(
        "{url}: Python's sqlite3 module in this interpreter carries its own copy of SQLite \
         ({theirs}), not the libsqlite3 sessiondb uses; if both opened this file in one \
         process, closing one would delete the other's -wal and lose acknowledged writes. \
         Use a Python whose sqlite3 module links the system libsqlite3, or pass \
         separate_sqlite_ok=True if nothing in this process opens the file with the sqlite3 \
         module"
    );
    let class = py.import("sessiondb._errors")?.getattr("SeparateSqlite")?;
    let exc = class.call1((message,))?;
    exc.setattr("path", url.as_ref())?;
    Err(PyErr::from_value(exc))
}
