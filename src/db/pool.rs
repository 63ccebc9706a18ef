//! The connection pool: at most `max` connections, opened on the thread that first needs
//! one (no helper thread, so a forked child inherits no lock some thread held), each
//! remembering the WAL file it opened.
//!
//! SQLite keeps writing to a database or WAL file that was deleted or replaced under it: a
//! commit there is acknowledged and lost (`rm sessions.db-wal` under a running writer lost
//! every later write at the next crash). A connection in WAL mode keeps its WAL open for as
//! long as it lives, and no other process may delete or recreate that WAL meanwhile (that
//! needs the file to itself), so the WAL at the path must stay the one the connection
//! opened. Every write compares both files with what they were (one `stat` each) before it
//! commits.

use std::path::{Path, PathBuf};

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::OpenFlags;

use super::ConnectionSettings;
use crate::error::{Error, Result};

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

/// How the pool opens a connection.
pub(crate) struct Opener {
    pub path: PathBuf,
    pub read_only: bool,
    pub settings: ConnectionSettings,
}

/// How a [`Pool`] makes a connection, and whether one handed back may be handed out again.
pub(crate) trait Open {
    type Conn;
    fn open(&self) -> Result<Self::Conn>;
    fn reusable(conn: &Self::Conn) -> bool;
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
            FileIdentity::of(&wal_path(&self.path))
        };
        Ok(Conn { conn, wal })
    }
}

/// Idle connections and how many are open in all.
struct Slots<C> {
    idle: Vec<C>,
    open: u32,
}

/// At most `max` connections; a caller that finds none idle opens one itself, or waits for
/// one to come back when `max` are out.
pub(crate) struct Pool<O: Open = Opener> {
    opener: O,
    max: u32,
    wait: Duration,
    slots: Mutex<Slots<O::Conn>>,
    returned: Condvar,
}

impl<O: Open> Pool<O> {
    pub(crate) fn new(opener: O, max: u32, wait: Duration) -> Pool<O> {
        Pool {
            opener,
            max: max.max(1),
            wait,
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Slots<O::Conn>> {
        // The slots are consistent whenever the lock is released, even by a panic.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection for one operation; it goes back to the pool when dropped.
    pub(crate) fn get(&self) -> Result<Pooled<'_, O>> {
        let deadline = Instant::now() + self.wait;
        let mut slots = self.slots();
        loop {
            if let Some(conn) = slots.idle.pop() {
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if slots.open < self.max {
                slots.open += 1;
                drop(slots);
                let mut opening = Opening {
                    pool: self,
                    done: false,
                };
                let conn = self.opener.open()?;
                opening.done = true;
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Pool(format!(
                    "all {} connections stayed in use for {:?}",
                    self.max, self.wait
                )));
            }
            slots = self
                .returned
                .wait_timeout(slots, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Gives a slot taken for opening a connection back unless the open succeeded: after an
/// error and after a panic alike.
struct Opening<'p, O: Open> {
    pool: &'p Pool<O>,
    done: bool,
}

impl<O: Open> Drop for Opening<'_, O> {
    fn drop(&mut self) {
        if !self.done {
            self.pool.slots().open -= 1;
            self.pool.returned.notify_one();
        }
    }
}

/// A connection checked out of a [`Pool`].
pub(crate) struct Pooled<'p, O: Open = Opener> {
    pool: &'p Pool<O>,
    conn: Option<O::Conn>,
}

impl<O: Open> std::ops::Deref for Pooled<'_, O> {
    type Target = O::Conn;
    fn deref(&self) -> &O::Conn {
        // Only `drop` takes the connection out.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<O: Open> std::ops::DerefMut for Pooled<'_, O> {
    fn deref_mut(&mut self) -> &mut O::Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<O: Open> Drop for Pooled<'_, O> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut slots = self.pool.slots();
            if O::reusable(&conn) {
                slots.idle.push(conn);
            } else {
                slots.open -= 1;
            }
            drop(slots);
            self.pool.returned.notify_one();
        }
    }
}
