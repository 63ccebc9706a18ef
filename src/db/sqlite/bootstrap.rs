//! Opening a file the first time in a process, before any pool exists: refuse files that are
//! not ours and a `-wal` of another database file (leaving them untouched), switch to WAL,
//! stamp the `-wal`, migrate.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::files::FileIdentity;
use super::migrations::{self, Migrated, SCHEMA_VERSION};
use super::permissions;
use super::wal_owner;
use crate::db::APPLICATION_ID;
use crate::error::{Error, Result};

/// How a store may use its file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Access {
    pub read_only: bool,
    /// Create the file and its directories if missing.
    pub create: bool,
    /// Accept files other users can change (see [`crate::StoreBuilder::shared`]).
    pub shared: bool,
}

/// Prepares `path` for a pool: afterwards it is a WAL-mode sessiondb file at
/// [`SCHEMA_VERSION`] (read-write), or known to be one at that version (read-only).
pub(crate) fn prepare(path: &Path, access: Access, busy_timeout: Duration) -> Result<()> {
    let read_only = access.read_only;
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if access.create {
        if let Some(dir) = dir {
            create_private_dirs(dir).map_err(|source| match source.kind() {
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    Error::ReadOnly {
                        path: dir.to_path_buf(),
                        reason: format!("cannot create the directory: {source}"),
                    }
                }
                _ => Error::Io {
                    path: dir.to_path_buf(),
                    source,
                },
            })?;
        }
        create_private_file(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                Error::ReadOnly {
                    path: path.to_path_buf(),
                    reason: format!("cannot create the file: {source}"),
                }
            }
            _ => io_err(source),
        })?;
    } else if !path.exists() {
        return Err(Error::not_found("database", path.display().to_string()));
    }
    if !access.shared {
        permissions::check(path, dir)?;
    }
    // Nothing here opens the file itself: closing any descriptor of it drops every POSIX
    // lock this process holds on it, those of SQLite's connections open on it included.
    // SQLite reads the header, and a file that is not a database fails the first read.
    wal_owner::refuse_foreign(path)?;

    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| not_ours(path, e))?;
    conn.busy_timeout(busy_timeout)?;
    let deadline = Instant::now() + busy_timeout;

    let (application_id, user_version, objects) =
        retry_busy(deadline, || identify(&conn)).map_err(|e| not_ours(path, e))?;
    if application_id != APPLICATION_ID && (application_id != 0 || objects > 0) {
        return Err(Error::NotSessionDb {
            path: path.to_path_buf(),
            reason: if application_id != 0 {
                format!("its application_id is {application_id:#x}, another program's")
            } else {
                format!("it holds {objects} tables or indexes of another program")
            },
        });
    }
    if user_version > SCHEMA_VERSION {
        return Err(schema_too_new(path, user_version));
    }
    if read_only {
        if user_version < SCHEMA_VERSION {
            return Err(Error::ReadOnly {
                path: path.to_path_buf(),
                reason: format!(
                    "schema version {user_version} needs an upgrade to {SCHEMA_VERSION}; \
                     open it read-write once"
                ),
            });
        }
        return Ok(());
    }

    let read_only_err = |e: rusqlite::Error| not_ours(path, e);
    // WAL is a property of the file: set it once here rather than racing on it in every
    // pooled connection. Changing the journal mode does not wait on the busy handler, and
    // needs the file to itself; a file already in WAL mode is only read.
    let mut mode: String = retry_busy(deadline, || {
        conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
    })
    .map_err(read_only_err)?;
    let switched = !mode.eq_ignore_ascii_case("wal");
    if switched {
        mode = retry_busy(deadline, || {
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        })
        .map_err(read_only_err)?;
    }
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::ReadOnly {
            path: path.to_path_buf(),
            reason: format!("could not switch to WAL mode (journal_mode is {mode})"),
        });
    }
    // Stamp the -wal before this process commits anything into it (a migration). Reading a
    // WAL-mode file opened it already; a file just switched opens it at its next read. A
    // stamp for another database passed the check above only on a -wal that is not in use.
    if switched {
        retry_busy(deadline, || {
            conn.query_row("PRAGMA schema_version", [], |_| Ok(()))
        })
        .map_err(read_only_err)?;
    }
    if let Some(database) = FileIdentity::of(path) {
        wal_owner::stamp(path, database, true);
    }
    match migrations::migrate(&mut conn) {
        Ok(Migrated::Current) => Ok(()),
        Ok(Migrated::TooNew(found)) => Err(schema_too_new(path, found)),
        Err(Error::Sqlite(e)) => Err(read_only_err(e)),
        Err(Error::Busy { .. }) => Err(Error::Busy {
            timeout: busy_timeout,
        }),
        Err(e) => Err(e),
    }
}

/// Creates missing directories with owner-only permissions, whatever the umask: a directory
/// other users can write lets them swap in a database of their own.
fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the file with owner-only permissions if it does not exist yet; SQLite gives the
/// `-wal` and `-shm` files the same mode as the database.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// `(application_id, user_version, number of schema objects)`, read from one snapshot: a
/// process migrating the file at the same moment must not be seen half-way.
fn identify(conn: &Connection) -> rusqlite::Result<(i32, i64, i64)> {
    conn.query_row(
        "SELECT (SELECT application_id FROM pragma_application_id()),
                (SELECT user_version FROM pragma_user_version()),
                (SELECT count(*) FROM sqlite_schema)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Names the path in the errors opening can give: a file that is not a database, or one this
/// user may not write (or, for a WAL database in a directory it may not write, not even read:
/// SQLite must create the `-shm` file to read it).
fn not_ours(path: &Path, e: rusqlite::Error) -> Error {
    if wal_owner::is_short_wal_read(&e) {
        return wal_owner::wal_deleted(path);
    }
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => Error::NotSessionDb {
            path: path.to_path_buf(),
            reason: "it is not a SQLite database (wrong file header)".into(),
        },
        Some(ErrorCode::CannotOpen)
        | Some(ErrorCode::PermissionDenied)
        | Some(ErrorCode::ReadOnly) => Error::ReadOnly {
            path: path.to_path_buf(),
            reason: read_only_reason(path, &e),
        },
        _ => Error::from(e),
    }
}

/// SQLite's message, and what this user lacks when that is the file's or directory's mode.
pub(crate) fn read_only_reason(path: &Path, e: &rusqlite::Error) -> String {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut lacks = Vec::new();
    if path.exists() && !writable(path) {
        lacks.push("may not write the file".to_string());
    }
    if !dir_writable(dir) {
        lacks.push(format!(
            "may not create files in {}, where the -wal and -shm files go (SQLite needs \
             them even to read a WAL database)",
            dir.display()
        ));
    }
    if lacks.is_empty() {
        e.to_string()
    } else {
        format!("{e}: this user {}", lacks.join(" and "))
    }
}

/// Whether this user may write `path`, asked of the kernel (which knows ACLs and read-only
/// mounts) without opening it: closing a descriptor of the database would drop every lock
/// this process's SQLite connections hold on it.
#[cfg(unix)]
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path that outlives the call; no other memory is touched.
    unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), libc::W_OK, libc::AT_EACCESS) == 0 }
}

#[cfg(not(unix))]
fn writable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| !m.permissions().readonly())
}

/// Whether this user may create files in `dir` (tried, not guessed from the mode bits).
fn dir_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".sessiondb-probe-{}", std::process::id()));
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => fs::remove_file(&probe).is_ok(),
        Err(e) => e.kind() == std::io::ErrorKind::AlreadyExists,
    }
}

fn schema_too_new(path: &Path, found: i64) -> Error {
    Error::SchemaTooNew {
        path: path.to_path_buf(),
        found,
        supported: SCHEMA_VERSION,
    }
}

/// Runs `op` until it stops failing with SQLITE_BUSY or the deadline passes.
fn retry_busy<T>(
    deadline: Instant,
    mut op: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    loop {
        match op() {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked)
                ) && Instant::now() < deadline =>
            {
                thread::sleep(Duration::from_millis(2));
            }
            other => return other,
        }
    }
}
