//! The pool's connections, each remembering the WAL file it opened.
//!
//! SQLite keeps writing to a database or WAL file that was deleted or replaced under it: a
//! commit there is acknowledged and lost (`rm sessions.db-wal` under a running writer lost
//! every later write at the next crash). A connection in WAL mode keeps its WAL open for as
//! long as it lives, and no other process may delete or recreate that WAL meanwhile (that
//! needs the file to itself), so the WAL at the path must stay the one the connection
//! opened. Every write compares both files with what they were (one `stat` each) before it
//! commits.

use std::path::{Path, PathBuf};

use r2d2_sqlite::SqliteConnectionManager;

/// Device and inode of a file (on Unix; elsewhere nothing, and the checks are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity(u64, u64);

impl FileIdentity {
    #[cfg(unix)]
    pub(crate) fn of(path: &Path) -> Option<FileIdentity> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| FileIdentity(m.dev(), m.ino()))
    }

    #[cfg(not(unix))]
    pub(crate) fn of(_path: &Path) -> Option<FileIdentity> {
        None
    }
}

/// The `-wal` file next to `path`.
pub(crate) fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// A pooled connection; derefs to the SQLite connection.
pub(crate) struct Conn {
    conn: rusqlite::Connection,
    /// The WAL this connection has open (`None` for a read-only store, which never writes).
    wal: Option<FileIdentity>,
}

impl Conn {
    /// The files this connection writes to, as they were when it opened them.
    pub(crate) fn opened(&self, database: Option<FileIdentity>) -> OpenedFiles {
        OpenedFiles {
            database,
            wal: self.wal,
        }
    }
}

/// The identities of a connection's database and WAL when it opened them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenedFiles {
    database: Option<FileIdentity>,
    wal: Option<FileIdentity>,
}

impl OpenedFiles {
    /// What is wrong, if the files at `path` are no longer the ones opened.
    pub(crate) fn moved(&self, path: &Path) -> Option<&'static str> {
        if FileIdentity::of(path) != self.database {
            Some("the database file was deleted or replaced since it was opened")
        } else if self.wal.is_some() && FileIdentity::of(&wal_path(path)) != self.wal {
            Some("its -wal file was deleted or replaced since it was opened")
        } else {
            None
        }
    }
}

impl std::ops::Deref for Conn {
    type Target = rusqlite::Connection;
    fn deref(&self) -> &rusqlite::Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut rusqlite::Connection {
        &mut self.conn
    }
}

/// r2d2's manager for [`Conn`]s.
pub(crate) struct Manager {
    pub inner: SqliteConnectionManager,
    pub path: PathBuf,
    pub read_only: bool,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Conn, rusqlite::Error> {
        let conn = self.inner.connect()?;
        let wal = if self.read_only {
            None
        } else {
            // A read opens (or creates) the WAL; the connection keeps it open from now on.
            conn.query_row("PRAGMA schema_version", [], |_| Ok(()))?;
            FileIdentity::of(&wal_path(&self.path))
        };
        Ok(Conn { conn, wal })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), rusqlite::Error> {
        self.inner.is_valid(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.inner.has_broken(&mut conn.conn)
    }
}
