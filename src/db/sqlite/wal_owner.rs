//! Which database file a `-wal` belongs to.
//!
//! SQLite never links a WAL to its database file: a frame is checked only against the WAL's
//! own header (salts, checksums). A file moved over a database that still has commits in its
//! `-wal` (`mv backup.db sessions.db` while a process has the old file open, or after one was
//! killed) is opened by the next process together with the old file's WAL: it reads a mix of
//! the two files, and its commits, acknowledged, corrupt the new one for good.
//!
//! So every read-write connection stamps the `-wal` it opened with an extended attribute,
//! [`STAMP`]: the device and inode of that `-wal` and of the database file. A `-wal` lives
//! until the last connection of every process closes (SQLite then deletes it), and restarts
//! after a checkpoint reuse the same file, so one stamp covers every WAL generation, is
//! written when a connection opens (never on a commit: appends pay nothing), and dies with
//! the file. Before SQLite reads anything, opening compares the stamp with the database at
//! the path ([`refuse_foreign`]): a stamp for this `-wal` naming another database file is
//! [`Error::ForeignWal`].
//!
//! What the stamp does not say is never a refusal: no stamp (another program made the
//! `-wal`, or a file system without user extended attributes: the check is skipped there),
//! a stamp naming another `-wal` (the pair was copied elsewhere: `cp -a`, a restore from
//! tape), an empty `-wal` that no process of the other file has open (left by a killed
//! process; nothing to mix, and opening restamps it). A `chmod` or `chown`, crash recovery,
//! checkpoints and WAL restarts change no device or inode.
//!
//! A `-wal` deleted while other processes have the database open leaves their shared index
//! (`-shm`) naming frames the new, empty `-wal` lacks; SQLite then fails with a short read,
//! which [`is_short_wal_read`] recognises.

use std::path::{Path, PathBuf};

use super::files::{wal_path, FileIdentity};
use crate::error::Error;

/// The extended attribute on a `-wal`: [`MAGIC`], then the `-wal`'s and the database's device
/// and inode, each a little-endian `u64`.
pub(crate) const STAMP: &str = "user.sessiondb.wal-of";
const MAGIC: &[u8; 4] = b"sdw1";
const STAMP_LEN: usize = 4 + 4 * 8;

/// What a stamp says: this `-wal` (as it was when stamped) belongs to `database`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    wal: FileIdentity,
    database: FileIdentity,
}

impl Stamp {
    fn to_bytes(self) -> [u8; STAMP_LEN] {
        let mut out = [0u8; STAMP_LEN];
        out[..4].copy_from_slice(MAGIC);
        let words = [self.wal.0, self.wal.1, self.database.0, self.database.1];
        for (i, word) in words.iter().enumerate() {
            out[4 + 8 * i..12 + 8 * i].copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Stamp> {
        if bytes.len() != STAMP_LEN || &bytes[..4] != MAGIC {
            return None;
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[4 + 8 * i..12 + 8 * i]);
            u64::from_le_bytes(w)
        };
        Some(Stamp {
            wal: FileIdentity(word(0), word(1)),
            database: FileIdentity(word(2), word(3)),
        })
    }
}

/// Refuses to open `path` (as the caller named it) when its `-wal` is stamped for another
/// database file and holds something or is in use. Run before SQLite opens the file in this
/// process: a `stat` of each file and one `getxattr`.
pub(crate) fn refuse_foreign(path: &Path) -> crate::error::Result<()> {
    let wal = wal_path(&beside_target(path));
    let Ok(meta) = std::fs::metadata(&wal) else {
        return Ok(());
    };
    let Some(stamp) = read_stamp(&wal) else {
        return Ok(());
    };
    // A `-wal` copied or moved elsewhere with its attribute is another file: it says nothing.
    if FileIdentity::from_metadata(&meta) != Some(stamp.wal) {
        return Ok(());
    }
    let Some(database) = FileIdentity::of(path) else {
        return Ok(());
    };
    if stamp.database == database {
        return Ok(());
    }
    // An empty -wal holds nothing to mix; but while the old file's processes still have it
    // open, the last of them to close would checkpoint into its own file and delete the
    // -wal under this one.
    if meta.len() == 0 && !open_elsewhere(path, database) {
        return Ok(());
    }
    Err(Error::ForeignWal {
        path: path.to_path_buf(),
        wal,
    })
}

/// Stamps the `-wal` beside `path` as belonging to `database`, unless it already is. A stamp
/// naming another database for this very `-wal` is replaced only with `replace_foreign`
/// (opening, right after [`refuse_foreign`] let an empty one through); a pooled connection
/// never replaces it, so a process whose file was moved away cannot claim the new one's
/// `-wal`. Failures (no extended attributes, no write permission) leave the `-wal`
/// unstamped, which only means it will not be checked.
pub(crate) fn stamp(path: &Path, database: FileIdentity, replace_foreign: bool) {
    let wal = wal_path(&beside_target(path));
    let Some(wal_identity) = FileIdentity::of(&wal) else {
        return;
    };
    let wanted = Stamp {
        wal: wal_identity,
        database,
    };
    match read_stamp(&wal) {
        Some(found) if found == wanted => return,
        Some(found) if found.wal == wal_identity && !replace_foreign => return,
        _ => {}
    }
    // Stamp only a `-wal` of the file this process opened.
    if FileIdentity::of(path) == Some(database) {
        write_stamp(&wal, &wanted.to_bytes());
    }
}

/// Whether `err` is SQLite's short read of a `-wal` (SQLite ignores short reads of the
/// database file itself): the `-shm` of the processes that have the file open names frames
/// the `-wal` at the path does not hold, because it was deleted or truncated under them.
pub(crate) fn is_short_wal_read(err: &rusqlite::Error) -> bool {
    err.sqlite_error().map(|e| e.extended_code) == Some(rusqlite::ffi::SQLITE_IOERR_SHORT_READ)
}

/// [`Error::WalDeleted`] for the database at `path`.
pub(crate) fn wal_deleted(path: &Path) -> Error {
    Error::WalDeleted {
        path: path.to_path_buf(),
        wal: wal_path(&beside_target(path)),
    }
}

/// SQLite puts `-wal` and `-shm` beside a symbolic link's target.
fn beside_target(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Whether some process has the `-shm` beside `path` open but not the database file
/// `database`: one of the file the `-wal` belongs to. SQLite keeps a read lock on both for as
/// long as a connection is open (Linux lists them in `/proc/locks`; elsewhere: `false`).
#[cfg(target_os = "linux")]
fn open_elsewhere(path: &Path, database: FileIdentity) -> bool {
    use std::collections::HashSet;
    let mut shm = beside_target(path).into_os_string();
    shm.push("-shm");
    let (Some(shm), Ok(locks)) = (
        FileIdentity::of(Path::new(&shm)),
        std::fs::read_to_string("/proc/locks"),
    ) else {
        return false;
    };
    // "1: POSIX  ADVISORY  READ 2157 fe:00:1151 128 128": pid, then device (hex) and inode.
    let key = |id: FileIdentity| {
        format!(
            "{:02x}:{:02x}:{}",
            libc::major(id.0),
            libc::minor(id.0),
            id.1
        )
    };
    let (shm, database) = (key(shm), key(database));
    let (mut on_shm, mut on_database) = (HashSet::new(), HashSet::new());
    for line in locks.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            // A pid of 0 is a process of another PID namespace: unknown, not foreign.
            let Some(pid) = pair[0].parse::<i64>().ok().filter(|&pid| pid > 0) else {
                continue;
            };
            if pair[1] == shm {
                on_shm.insert(pid);
            } else if pair[1] == database {
                on_database.insert(pid);
            }
        }
    }
    on_shm.difference(&on_database).next().is_some()
}

#[cfg(not(target_os = "linux"))]
fn open_elsewhere(_path: &Path, _database: FileIdentity) -> bool {
    false
}

fn read_stamp(wal: &Path) -> Option<Stamp> {
    let mut buf = [0u8; STAMP_LEN + 1];
    let len = xattr::get(wal, STAMP, &mut buf)?;
    Stamp::from_bytes(&buf[..len])
}

fn write_stamp(wal: &Path, value: &[u8]) {
    xattr::set(wal, STAMP, value);
}

/// The platform's extended-attribute calls on a path (no file is opened: closing a
/// descriptor of a file would drop the locks SQLite holds on it in this process).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
mod xattr {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    fn c_strings(path: &Path, name: &str) -> Option<(CString, CString)> {
        Some((
            CString::new(path.as_os_str().as_bytes()).ok()?,
            CString::new(name).ok()?,
        ))
    }

    /// The attribute's value into `buf`; its length, or `None` if missing or unreadable.
    pub(super) fn get(path: &Path, name: &str, buf: &mut [u8]) -> Option<usize> {
        let (path, name) = c_strings(path, name)?;
        // SAFETY: both strings are NUL-terminated and live across the call; `buf` is valid
        // for `buf.len()` bytes.
        #[cfg(not(target_os = "macos"))]
        let len = unsafe {
            libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        // SAFETY: as above.
        #[cfg(target_os = "macos")]
        let len = unsafe {
            libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                0,
            )
        };
        usize::try_from(len).ok()
    }

    /// Sets the attribute; a failure is ignored (see `stamp`).
    pub(super) fn set(path: &Path, name: &str, value: &[u8]) {
        let Some((path, name)) = c_strings(path, name) else {
            return;
        };
        // SAFETY: both strings are NUL-terminated and live across the call; `value` is valid
        // for `value.len()` bytes.
        #[cfg(not(target_os = "macos"))]
        unsafe {
            libc::setxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            );
        }
        // SAFETY: as above.
        #[cfg(target_os = "macos")]
        unsafe {
            libc::setxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
                0,
            );
        }
    }
}

/// No extended attributes here: nothing is stamped, nothing refused.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
mod xattr {
    use std::path::Path;

    pub(super) fn get(_path: &Path, _name: &str, _buf: &mut [u8]) -> Option<usize> {
        None
    }

    pub(super) fn set(_path: &Path, _name: &str, _value: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_as_written_and_anything_else_is_none() {
        let stamp = Stamp {
            wal: FileIdentity(1, u64::MAX),
            database: FileIdentity(3, 4),
        };
        assert_eq!(Stamp::from_bytes(&stamp.to_bytes()), Some(stamp));
        assert_eq!(Stamp::from_bytes(&stamp.to_bytes()[..STAMP_LEN - 1]), None);
        assert_eq!(Stamp::from_bytes(&[0u8; STAMP_LEN]), None);
    }
}
