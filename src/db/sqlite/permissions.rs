//! Refusing files that another local user can change. Whoever can replace the database, its
//! `-wal` or `-shm` (or rename them, through a directory they can write) can read what this
//! process writes next and feed it a history of their own; SQLite cannot tell.

use std::path::Path;

use crate::error::{Error, Result};

/// Checks the database at `path`, its `-wal` and `-shm` if they exist, and the directory
/// holding them (those of the link's target, for a symbolic link, which must be ours): each
/// must be owned by this process's user (the directory may be root's) and not writable by
/// everyone (a world-writable directory is fine with the sticky bit, as `/tmp` has).
#[cfg(unix)]
pub(crate) fn check(path: &Path, dir: Option<&Path>) -> Result<()> {
    use std::os::unix::fs::MetadataExt;

    let me = effective_uid();
    let refuse = |path: &Path, reason: String| Error::UnsafePermissions {
        path: path.to_path_buf(),
        reason,
    };
    // A link another user owns can be pointed at their own database at any time.
    if let Ok(link) = std::fs::symlink_metadata(path) {
        if link.file_type().is_symlink() && link.uid() != me {
            return Err(refuse(
                path,
                format!(
                    "it is a symbolic link owned by user {}, not by this user ({me})",
                    link.uid()
                ),
            ));
        }
    }
    // SQLite puts the -wal and -shm beside the file the link points to: check those.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let path = real.as_path();
    let dir = real
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.unwrap_or(Path::new(".")).to_path_buf());
    let dir = dir.as_path();
    if let Ok(meta) = std::fs::metadata(dir) {
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o002 != 0 && !sticky {
            return Err(refuse(
                dir,
                format!(
                    "the directory is writable by every user (mode {:o}) without the sticky bit",
                    meta.mode() & 0o7777
                ),
            ));
        }
        // Its owner may rename the files in it, whatever their modes.
        if meta.uid() != me && meta.uid() != 0 && !sticky {
            return Err(refuse(
                dir,
                format!(
                    "the directory is owned by user {}, not by this user ({me})",
                    meta.uid()
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
