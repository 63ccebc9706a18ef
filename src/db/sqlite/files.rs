//! Which file a path is now (device and inode), and the `-wal` beside a database.

use std::path::{Path, PathBuf};

/// Device and inode of a file (on Unix; elsewhere nothing, and the checks are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity(pub(crate) u64, pub(crate) u64);

impl FileIdentity {
    pub(crate) fn of(path: &Path) -> Option<FileIdentity> {
        std::fs::metadata(path)
            .ok()
            .and_then(|m| FileIdentity::from_metadata(&m))
    }

    #[cfg(unix)]
    pub(crate) fn from_metadata(meta: &std::fs::Metadata) -> Option<FileIdentity> {
        use std::os::unix::fs::MetadataExt;
        Some(FileIdentity(meta.dev(), meta.ino()))
    }

    #[cfg(not(unix))]
    pub(crate) fn from_metadata(_meta: &std::fs::Metadata) -> Option<FileIdentity> {
        None
    }
}

/// The `-wal` file next to `path`.
pub(crate) fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}
