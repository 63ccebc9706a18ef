//! Opening a pooled SQLite connection, and the files it opened.
//!
//! SQLite keeps writing to a database or WAL file that was deleted or replaced under it: a
//! commit there is acknowledged and lost (`rm sessions.db-wal` under a running writer lost
//! every later write at the next crash). A connection in WAL mode keeps its WAL open for as
//! long as it lives, and no other process may delete or recreate that WAL meanwhile (that
//! needs the file to itself), so the WAL at the path must stay the one the connection
//! opened. Every write compares both files with what they were (one `stat` each) before it
//! commits.

use std::path::{Path, PathBuf};

use rusqlite::OpenFlags;

use super::connection::ConnectionSettings;
use super::files::{wal_path, FileIdentity};
use crate::db::pool::Open;
use crate::error::Result;

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

/// How the pool opens a connection.
pub(crate) struct Opener {
    pub path: PathBuf,
    /// The database file as the store opened it: what a new `-wal` is stamped with.
    pub database: Option<FileIdentity>,
    pub read_only: bool,
    pub settings: ConnectionSettings,
}

impl Open for Opener {
    type Conn = Conn;
    fn open(&self) -> Result<Conn> {
        Ok(self.open_sqlite()?)
    }
    /// A transaction left open (a panic mid-operation): close it rather than hand it on.
    fn reusable(conn: &Conn) -> bool {
        conn.is_autocommit()
    }
}

impl Opener {
    fn open_sqlite(&self) -> rusqlite::Result<Conn> {
        let access = if self.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            access | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        self.settings.apply(&conn)?;
        let wal = if self.read_only {
            None
        } else {
            // A read opens (or creates) the WAL; the connection keeps it open from now on.
            conn.query_row("PRAGMA schema_version", [], |_| Ok(()))?;
            // A -wal created since the store opened (every process had closed the file) is
            // stamped before this connection commits into it.
            if let Some(database) = self.database {
                super::wal_owner::stamp(&self.path, database, false);
            }
            FileIdentity::of(&wal_path(&self.path))
        };
        Ok(Conn { conn, wal })
    }
}
