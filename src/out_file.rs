//! Writing a file next to the database safely: exports and backups go through here.
//!
//! The rules, in one place:
//! - never the database itself, its `-wal` or its `-shm`, under any name (a symlink, a hard
//!   link, another spelling of the path): overwriting one of them destroys acknowledged writes.
//!   Files are compared by identity (device and inode); a `-wal`/`-shm` that does not exist
//!   yet is compared by canonical directory and name;
//! - an existing file only with [`ExistingFile::Replace`];
//! - the content goes to a new private (0600) temporary file in the target's directory, is
//!   synced, and is renamed over the target: readers see the old file or the whole new one,
//!   and a crash leaves at worst a stray `.<name>.*.tmp` file, never a half-written target.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What to do when the file to write already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExistingFile {
    /// Fail with [`Error::FileExists`], touching nothing.
    #[default]
    Refuse,
    /// Replace it (atomically, by rename). The database and its `-wal`/`-shm` are refused
    /// all the same.
    Replace,
}

/// A private temporary file in a chosen directory, removed when dropped.
pub(crate) struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Creates `.<stem>.<random>.tmp` in `dir`, mode 0600, failing rather than reusing a file.
    pub(crate) fn new_in(dir: &Path, stem: &str) -> Result<TempFile> {
        let mut last_err = None;
        // A random name collides only if something else creates our names; a few tries.
        for _ in 0..8 {
            let path = dir.join(format!(".{stem}.{}.tmp", uuid::Uuid::new_v4().simple()));
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(source) => return Err(Error::Io { path, source }),
            }
        }
        Err(Error::Io {
            path: dir.to_path_buf(),
            source: last_err.unwrap_or_else(|| io::Error::other("no free temporary name")),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for writing the content.
    pub(crate) fn file(&mut self) -> Result<&mut File> {
        let path = &self.path;
        self.file.as_mut().ok_or_else(|| Error::Io {
            path: path.clone(),
            source: io::Error::other("the temporary file was already closed"),
        })
    }

    /// Flushes what was written (by us or by SQLite through the path) to the disk.
    fn sync(&mut self) -> Result<()> {
        // SQLite may have written through the path; reopen to sync whatever inode is there.
        self.file = None;
        let io_err = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        File::open(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(io_err)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file = None;
        // SQLite may have left journal files beside a database written here.
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = fs::remove_file(with_suffix(&self.path, suffix));
        }
    }
}

/// A file being written for `target`: write into [`OutFile::temp`], then [`OutFile::commit`].
/// Dropped without a commit, it leaves the target untouched and removes the temporary file.
pub(crate) struct OutFile {
    target: PathBuf,
    database: PathBuf,
    existing: ExistingFile,
    temp: TempFile,
}

impl OutFile {
    /// Checks that `target` may be written while `database` is the live file, and creates the
    /// temporary file beside it.
    pub(crate) fn create(database: &Path, target: &Path, existing: ExistingFile) -> Result<Self> {
        check_target(database, target, existing)?;
        let name = target
            .file_name()
            .ok_or_else(|| Error::invalid(format!("{}: not a file name", target.display())))?;
        let dir = parent_dir(target);
        if !dir.is_dir() {
            // Said of the target, not of the hidden temporary file that could not be made.
            return Err(Error::invalid(format!(
                "{}: the directory {} does not exist (create it first)",
                target.display(),
                dir.display()
            )));
        }
        let temp = TempFile::new_in(dir, &name.to_string_lossy())?;
        Ok(OutFile {
            target: target.to_path_buf(),
            database: database.to_path_buf(),
            existing,
            temp,
        })
    }

    pub(crate) fn temp(&mut self) -> &mut TempFile {
        &mut self.temp
    }

    /// Syncs the temporary file and renames it over the target, then syncs the directory so
    /// the rename survives a power loss.
    pub(crate) fn commit(mut self) -> Result<()> {
        self.temp.sync()?;
        // Checked again: the target may have become a link to the database meanwhile.
        check_target(&self.database, &self.target, self.existing)?;
        fs::rename(self.temp.path(), &self.target).map_err(|source| Error::Io {
            path: self.target.clone(),
            source,
        })?;
        let dir = parent_dir(&self.target);
        #[cfg(unix)]
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(())
    }
}

/// Refuses the database, its `-wal`/`-shm`, and an existing file unless `existing` allows
/// replacing it.
fn check_target(database: &Path, target: &Path, existing: ExistingFile) -> Result<()> {
    if let Some(what) = database_file(database, target) {
        return Err(Error::invalid(format!(
            "{}: refusing to write over {what} of the open database {}",
            target.display(),
            database.display()
        )));
    }
    if existing == ExistingFile::Refuse && fs::symlink_metadata(target).is_ok() {
        return Err(Error::FileExists {
            path: target.to_path_buf(),
        });
    }
    Ok(())
}

/// Which of the database's files `path` is — by identity (so links and other spellings count),
/// or for a `-wal`/`-shm` not created yet by canonical path — or `None`.
pub(crate) fn database_file(database: &Path, path: &Path) -> Option<&'static str> {
    let path_id = identity(path);
    let canonical_path = canonical_target(path);
    let canonical_db = fs::canonicalize(database).ok();
    for (suffix, what) in [
        ("", "the file"),
        ("-wal", "the WAL"),
        ("-shm", "the shared-memory file"),
    ] {
        let file = with_suffix(database, suffix);
        if path_id.is_some() && path_id == identity(&file) {
            return Some(what);
        }
        if let (Some(db), Some(out)) = (&canonical_db, &canonical_path) {
            if &with_suffix(db, suffix) == out {
                return Some(what);
            }
        }
    }
    None
}

/// [`Error::InvalidInput`] when `path` is one of the database's files: `doing` (e.g.
/// "restore from") it would mean opening and closing a descriptor of the database, which
/// drops every lock this process's SQLite connections hold on it.
pub(crate) fn refuse_database_file(database: &Path, path: &Path, doing: &str) -> Result<()> {
    match database_file(database, path) {
        Some(what) => Err(Error::invalid(format!(
            "{}: cannot {doing} {what} of the database itself",
            path.display()
        ))),
        None => Ok(()),
    }
}

/// The target's canonical directory joined with its name: where it would be created.
fn canonical_target(target: &Path) -> Option<PathBuf> {
    let name = target.file_name()?;
    let dir = fs::canonicalize(parent_dir(target)).ok()?;
    Some(dir.join(name))
}

pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Device and inode of what `path` names, following symlinks (so a link to the database is
/// the database).
#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_path: &Path) -> Option<(u64, u64)> {
    None
}
