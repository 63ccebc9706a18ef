//! Refusing files that another local user can change. Whoever can replace the database, its
//! `-wal` or `-shm` (or rename them, through a directory they can write) can read what this
//! process writes next and feed it a history of their own; SQLite cannot tell.

use std::path::Path;

use crate::error::{Error, Result};

/// Checks the database at `path`, its `-wal` and `-shm` if they exist, and the directory
/// holding them: each must be owned by this process's user and not writable by everyone
/// (a world-writable directory is fine with the sticky bit, as `/tmp` has).
#[cfg(unix)]
pub(crate) fn check(path: &Path, dir: Option<&Path>) -> Result<()> {
    use std::os::unix::fs::MetadataExt;

    let me = effective_uid();
    let refuse = |path: &Path, reason: String| Error::UnsafePermissions {
        path: path.to_path_buf(),
        reason,
    };
    let dir = dir.unwrap_or(Path::new("."));
    if let Ok(meta) = std::fs::metadata(dir) {
        if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
            return Err(refuse(
                dir,
                format!(
                    "the directory is writable by every user (mode {:o}) without the sticky bit",
                    meta.mode() & 0o7777
                ),
            ));
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        let Ok(meta) = std::fs::metadata(file) else {
            continue;
        };
        if meta.uid() != me {
            return Err(refuse(
                file,
                format!(
                    "it is owned by user {}, not by this user ({me})",
                    meta.uid()
                ),
            ));
        }
        if meta.mode() & 0o002 != 0 {
            return Err(refuse(
                file,
                format!(
                    "it is writable by every user (mode {:o})",
                    meta.mode() & 0o7777
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check(_path: &Path, _dir: Option<&Path>) -> Result<()> {
    Ok(())
}

#[cfg(unix)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
