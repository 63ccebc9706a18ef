//! `PRAGMA data_version` on a connection of its own: how a watcher learns, without reading a
//! page, that another connection (of any process) committed to the file.
//!
//! SQLite changes that number when another connection commits, and reading it touches no
//! page: in WAL mode it is the WAL index header in shared memory.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// A connection outside the pool, and the `data_version` it last read.
pub(crate) struct DataVersion {
    conn: Connection,
    /// `None` before the first read.
    seen: Option<i64>,
}

impl DataVersion {
    /// Opens its connection on the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<DataVersion> {
        // Read-write only so that SQLite may create the `-shm` file if no other connection
        // has the file open; this connection never writes, so it never takes the write lock.
        let open =
            |flags| Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX);
        let conn = open(OpenFlags::SQLITE_OPEN_READ_WRITE)
            .or_else(|_| open(OpenFlags::SQLITE_OPEN_READ_ONLY))
            .map_err(|e| Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(e),
            })?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(DataVersion { conn, seen: None })
    }

    /// Whether another connection committed since the last call (always, the first time).
    pub(crate) fn moved(&mut self) -> Result<bool> {
        let now: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        Ok(self.seen.replace(now) != Some(now))
    }

    /// The connection, for reading what changed.
    pub(crate) fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }
}
