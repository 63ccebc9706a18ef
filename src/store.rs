//! [`Store`]: the one entry point. Owns the connection pool and runs every operation as one
//! transaction: writes as `BEGIN IMMEDIATE` that read what they need inside, reads as one
//! deferred transaction so they see a single consistent snapshot of the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{ErrorCode, TransactionBehavior};

use crate::db::sql::{ChangeSignal, Checkpoint, Tx};

use crate::cache::{Cache, CacheStats};
use crate::db::pool::Pool;
#[cfg(feature = "postgres")]
use crate::db::postgres;
use crate::db::sqlite;
use crate::db::sqlite::bootstrap;
use crate::db::sqlite::connection::{set_busy_timeout, ConnectionSettings, Synchronous};
use crate::db::sqlite::files::FileIdentity;
use crate::db::sqlite::opener::Opener;
use crate::db::sqlite::wal_owner;
use crate::error::{Error, Result};

/// A handle on one sessiondb file. Cheap to clone; `Send + Sync`; share it between threads.
/// Many processes may open the same file at once.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    shared: Arc<Shared>,
    /// Set on a handle from `Store::with_lease`: its writes first run this check.
    guard: Option<Arc<dyn WriteGuard>>,
}

/// A check that every write of a guarded store runs inside its own transaction, before the
/// operation: an `Err` rolls the write back with nothing written, and an `Ok` holds until
/// the commit, because the transaction already holds the write lock (SQLite) or whatever
/// locks the check took (PostgreSQL).
///
/// The engine knows no feature that guards writes; a feature implements this trait and binds
/// it to a handle with [`Store::guarded_by`]. A lease is the one today
/// ([`Store::with_lease`]).
pub(crate) trait WriteGuard: Send + Sync {
    /// Runs inside the write transaction `tx`, before the write's own statements. Reads what
    /// it depends on through `tx`; fails with the error the caller should see.
    fn check(&self, tx: &Tx<'_>) -> Result<()>;
}

/// Where the data lives.
#[derive(Clone)]
enum Backend {
    Sqlite(Arc<Pool<Opener>>),
    #[cfg(feature = "postgres")]
    Postgres(Arc<Pool<crate::db::postgres::PgOpener>>),
}

struct Shared {
    cache: Cache,
    path: PathBuf,
    /// The file's identity when opened, to notice it being deleted or replaced underneath.
    identity: Option<FileIdentity>,
    busy_timeout: Duration,
    read_only: bool,
}

/// Options for [`Store::builder`]. Every option has a default suited to an agent process.
#[derive(Debug, Clone)]
pub struct StoreBuilder {
    path: PathBuf,
    pool_size: u32,
    busy_timeout: Duration,
    synchronous: Synchronous,
    read_only: bool,
    create: bool,
    shared: bool,
    cache_entries: usize,
    cache_bytes: usize,
}

impl StoreBuilder {
    /// Whether a missing file (and its missing directories, made `0700`) is created
    /// (default `true`). With `false`, a missing file is [`Error::NotFound`] naming the path:
    /// what a reader wants when a typo must not leave an empty database behind.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Accepts a database, `-wal` or `-shm` that another user owns or every user may write
    /// (default `false`: such files are [`Error::UnsafePermissions`], because whoever can
    /// replace them can read and forge what this process writes next). Set it in every
    /// process of a group that shares one file on purpose.
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Most sessions whose histories the in-process cache keeps (default 1,024; 0 turns the
    /// cache off).
    pub fn cache_entries(mut self, entries: usize) -> Self {
        self.cache_entries = entries;
        self
    }

    /// Most bytes of messages the cache keeps (default 64 MiB; 0 turns the cache off).
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Most connections open at once (default 8). Readers never block each other or the
    /// writer; writers take turns.
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long a write waits for another process's write to finish before it gives up with
    /// [`Error::Busy`] (default 10 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Durability of commits (default [`Synchronous::Normal`]).
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Opens the file read-only: nothing is created or migrated, and every write returns
    /// [`Error::ReadOnly`]. The file must already be a current sessiondb database.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Opens (creating if needed and allowed) the file and returns the store.
    pub fn open(self) -> Result<Store> {
        if let Some(url) = self
            .path
            .to_str()
            .filter(|p| is_postgres_url(p))
            .map(str::to_string)
        {
            return self.open_postgres(&url);
        }
        let access = bootstrap::Access {
            read_only: self.read_only,
            create: self.create && !self.read_only,
            shared: self.shared,
        };
        bootstrap::prepare(&self.path, access, self.busy_timeout)?;
        // SQLite follows a link to the real file and puts -wal/-shm beside it: so do the
        // identity checks.
        let path = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let settings = ConnectionSettings {
            busy_timeout: self.busy_timeout,
            synchronous: self.synchronous,
        };
        let identity = FileIdentity::of(&path);
        let pool = Pool::new(
            Opener {
                path: path.clone(),
                database: identity,
                read_only: self.read_only,
                settings,
            },
            self.pool_size,
            self.busy_timeout.max(Duration::from_secs(1)),
        );
        Ok(Store {
            backend: Backend::Sqlite(Arc::new(pool)),
            shared: Arc::new(Shared {
                cache: Cache::new(self.cache_entries, self.cache_bytes),
                identity,
                path,
                busy_timeout: self.busy_timeout,
                read_only: self.read_only,
            }),
            guard: None,
        })
    }
}

impl StoreBuilder {
    #[cfg(not(feature = "postgres"))]
    fn open_postgres(self, url: &str) -> Result<Store> {
        Err(Error::invalid(format!(
            "{}: this sessiondb was built without PostgreSQL support (cargo feature `postgres`)",
            url.split('@').next_back().unwrap_or(url)
        )))
    }

    /// A store on a PostgreSQL server: migrated under an advisory lock, then a bounded pool
    /// of client connections.
    #[cfg(feature = "postgres")]
    fn open_postgres(self, url: &str) -> Result<Store> {
        use crate::db::postgres::{PgOpener, SCHEMA_VERSION};
        let opener = PgOpener::new(url, self.busy_timeout)?;
        let display = PathBuf::from(&opener.display);
        if (!self.create || self.read_only) && !opener.is_sessiondb()? {
            return Err(Error::NotFound {
                kind: "database",
                id: opener.display.clone(),
            });
        }
        if let Some(found) = opener.migrate(self.read_only)? {
            return Err(Error::SchemaTooNew {
                path: display,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let pool = Pool::new(
            opener,
            self.pool_size,
            self.busy_timeout.max(Duration::from_secs(1)),
        );
        Ok(Store {
            backend: Backend::Postgres(Arc::new(pool)),
            shared: Arc::new(Shared {
                cache: Cache::new(self.cache_entries, self.cache_bytes),
                identity: None,
                path: display,
                busy_timeout: self.busy_timeout,
                read_only: self.read_only,
            }),
            guard: None,
        })
    }
}

/// Whether `target` (a path or `--db` value) names a PostgreSQL server.
pub fn is_postgres_url(target: &str) -> bool {
    target.starts_with("postgres://") || target.starts_with("postgresql://")
}

/// The file the CLI and the examples use when no path is given: `$SESSIONDB_PATH`, else
/// `sessions.db` in the user's data directory (`$XDG_DATA_HOME/sessiondb/` on Linux).
pub fn default_path() -> Option<PathBuf> {
    match std::env::var_os("SESSIONDB_PATH") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => dirs::data_dir().map(|dir| dir.join("sessiondb").join("sessions.db")),
    }
}

impl Store {
    /// Opens `path` with default options, creating the file and its directories if needed.
    /// [`Store::open_existing`] does not create anything.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::builder(path).open()
    }

    /// Opens `path`, which must exist; [`Error::NotFound`] naming it otherwise.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Store> {
        Store::builder(path).create(false).open()
    }

    /// Options for opening `path`; finish with [`StoreBuilder::open`].
    pub fn builder(path: impl AsRef<Path>) -> StoreBuilder {
        StoreBuilder {
            path: path.as_ref().to_path_buf(),
            pool_size: 8,
            busy_timeout: Duration::from_secs(10),
            synchronous: Synchronous::Normal,
            read_only: false,
            create: true,
            shared: false,
            cache_entries: 1024,
            cache_bytes: 64 * 1024 * 1024,
        }
    }

    /// The database file's path, with symbolic links resolved.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// [`Error::InvalidInput`] when `path` is this database's file, its `-wal` or its `-shm`
    /// (by identity, so links count), saying what the caller was `doing` ("import from").
    /// Call it before reading a file a user named: reading one of those means closing a
    /// descriptor of it, and that drops every POSIX lock this process's SQLite connections
    /// hold on it, which lets another process checkpoint and delete the `-wal` under them.
    pub fn refuse_own_file(&self, path: &Path, doing: &str) -> Result<()> {
        crate::out_file::refuse_database_file(self.path(), path, doing)
    }

    /// Drops the cached history of one session, or of all with `None`. Never needed for
    /// freshness (every read checks the version); useful to free memory.
    pub fn invalidate_cache(&self, session_id: Option<&str>) {
        self.shared.cache.invalidate(session_id);
    }

    /// Counters of the in-process history cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.shared.cache.stats()
    }

    /// For the child of a `fork()`: lets go of this handle, which the child inherited from
    /// its parent, without disturbing the parent. Call it on every inherited handle (clones
    /// included) before the child opens the file again, at a moment when no thread was
    /// inside a call of the handle as the process forked.
    ///
    /// SQLite keeps one record per process of the locks its connections hold on a file, and
    /// the child inherits the parent's record without the locks (`fcntl` locks are not
    /// inherited). New connections that find it believe the process holds its shared lock
    /// already and take none, so the parent, closing its last connection, sees no other user
    /// and deletes the `-wal` under the child. Closing the inherited connections (they
    /// release locks the child does not hold and end no transaction) clears that record.
    /// A PostgreSQL connection is a socket the parent still uses: closing it would end the
    /// parent's session on the server, so it is abandoned instead.
    pub fn release_after_fork(self) {
        match &self.backend {
            Backend::Sqlite(_) => drop(self),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => std::mem::forget(self),
        }
    }

    pub(crate) fn cache(&self) -> &Cache {
        &self.shared.cache
    }

    /// Runs `op` in one `BEGIN IMMEDIATE` transaction and commits it if `op` succeeds.
    /// `op` must read what it depends on through the transaction it is given.
    // Without the `postgres` feature the backend match has one arm.
    #[allow(clippy::infallible_destructuring_match)]
    pub(crate) fn write<T>(&self, op: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        if self.shared.read_only {
            return Err(self.read_only_error("the store was opened read-only".into()));
        }
        let pool = match &self.backend {
            Backend::Sqlite(pool) => pool,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                let mut conn = pool.get().map_err(|e| self.explain(e))?;
                let run = || -> Result<T> {
                    let tx =
                        Tx::postgres(crate::db::postgres::PgTx::begin(&mut conn, false)?, true);
                    if let Some(guard) = &self.guard {
                        guard.check(&tx)?;
                    }
                    let value = op(&tx)?;
                    if let Some(tx) = tx.into_postgres() {
                        tx.commit()?;
                    }
                    Ok(value)
                };
                return run().map_err(|e| self.explain(e));
            }
        };
        let mut conn = pool.get().map_err(|e| self.explain(e))?;
        set_busy_timeout(self.shared.busy_timeout);
        let run = |conn: &mut crate::db::sqlite::opener::Conn| -> Result<T> {
            let opened = conn.opened(self.shared.identity);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = {
                let tx = Tx::sqlite(&tx, true);
                if let Some(guard) = &self.guard {
                    guard.check(&tx)?;
                }
                op(&tx)?
            };
            // SQLite would commit into the unlinked file and the write would be lost.
            if let Some(what) = opened.moved(&self.shared.path) {
                return Err(Error::FileReplaced {
                    path: self.shared.path.clone(),
                    reason: what.to_string(),
                });
            }
            tx.commit()?;
            Ok(value)
        };
        run(&mut conn).map_err(|e| self.explain(e))
    }

    /// Runs `op` in one read transaction: everything it reads comes from one snapshot.
    // Without the `postgres` feature the backend match has one arm.
    #[allow(clippy::infallible_destructuring_match)]
    pub(crate) fn read<T>(&self, mut op: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        let pool = match &self.backend {
            Backend::Sqlite(pool) => pool,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                let mut conn = pool.get().map_err(|e| self.explain(e))?;
                let mut run = || -> Result<T> {
                    let tx =
                        Tx::postgres(crate::db::postgres::PgTx::begin(&mut conn, true)?, false);
                    let value = op(&tx)?;
                    if let Some(tx) = tx.into_postgres() {
                        tx.commit()?;
                    }
                    Ok(value)
                };
                return run().map_err(|e| self.explain(e));
            }
        };
        let mut conn = pool.get().map_err(|e| self.explain(e))?;
        set_busy_timeout(self.shared.busy_timeout);
        let mut run = |conn: &mut rusqlite::Connection| -> Result<T> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let value = op(&Tx::sqlite(&tx, false))?;
            tx.finish()?;
            Ok(value)
        };
        run(&mut conn).map_err(|e| self.explain(e))
    }

    /// Runs `op`, which must run exactly one statement, outside any transaction on every
    /// backend: one statement reads one snapshot by itself, and saves BEGIN and COMMIT
    /// (parsed and run each time on SQLite; two round trips on a server).
    // Without the `postgres` feature the backend match has one arm.
    #[allow(clippy::infallible_destructuring_match)]
    pub(crate) fn read_statement<T>(&self, op: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let pool = match &self.backend {
            Backend::Sqlite(pool) => pool,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                let mut conn = pool.get().map_err(|e| self.explain(e))?;
                let tx = Tx::postgres(postgres::PgTx::single_statement(&mut conn), false);
                return op(&tx).map_err(|e| self.explain(e));
            }
        };
        let conn = pool.get().map_err(|e| self.explain(e))?;
        set_busy_timeout(self.shared.busy_timeout);
        let value = op(&Tx::sqlite(&conn, false));
        value.map_err(|e| self.explain(e))
    }

    /// Runs `op`, which must run exactly one statement, outside any transaction where that
    /// saves round trips (a server: BEGIN and COMMIT would be two more); one statement reads
    /// one snapshot by itself. `None` without running `op` where a transaction costs no
    /// round trip (SQLite): the caller reads in one as usual.
    pub(crate) fn read_one_statement<T>(
        &self,
        op: impl FnOnce(&Tx<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match &self.backend {
            Backend::Sqlite(_) => {
                let _ = op;
                Ok(None)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => self.read_statement(op).map(Some),
        }
    }

    /// Runs `sql` on a pooled server connection outside any transaction: what PostgreSQL
    /// refuses inside one (`VACUUM`).
    #[cfg(feature = "postgres")]
    fn on_server(&self, pool: &Pool<postgres::PgOpener>, sql: &str) -> Result<()> {
        let mut conn = pool.get().map_err(|e| self.explain(e))?;
        conn.client
            .batch_execute(sql)
            .map_err(|e| self.explain(e.into()))
    }

    /// Runs `op` on a pooled SQLite connection outside any transaction (checkpoints, VACUUM).
    fn on_file<T>(
        &self,
        pool: &Pool<Opener>,
        op: impl FnOnce(&rusqlite::Connection) -> Result<T>,
    ) -> Result<T> {
        if self.shared.read_only {
            return Err(self.read_only_error("the store was opened read-only".into()));
        }
        let conn = pool.get().map_err(|e| self.explain(e))?;
        set_busy_timeout(self.shared.busy_timeout);
        op(&conn).map_err(|e| self.explain(e))
    }

    /// Why the files at the store's path are not the ones it opened, if they are not: the
    /// database file was replaced, or a `-wal` of another database file lies beside it.
    pub(crate) fn file_problem(&self) -> Option<String> {
        // A server's database has no file of ours to replace.
        #[cfg(feature = "postgres")]
        if let Backend::Postgres(_) = self.backend {
            return None;
        }
        let path = &self.shared.path;
        if FileIdentity::of(path) != self.shared.identity {
            return Some(format!(
                "{}: the database file was deleted or replaced since this store opened it; \
                 open it again",
                path.display()
            ));
        }
        wal_owner::refuse_foreign(path).err().map(|e| e.to_string())
    }

    /// Fills in what only the store knows: the configured timeout, the path.
    fn explain(&self, err: Error) -> Error {
        match err {
            Error::Busy { .. } if crate::db::sqlite::connection::take_interrupted() => {
                Error::Interrupted
            }
            Error::Busy { .. } => Error::Busy {
                timeout: self.shared.busy_timeout,
            },
            Error::Sqlite(e) if wal_owner::is_short_wal_read(&e) => {
                wal_owner::wal_deleted(&self.shared.path)
            }
            Error::Sqlite(e)
                if e.sqlite_error_code() == Some(ErrorCode::CannotOpen)
                    && !self.shared.path.exists() =>
            {
                Error::FileReplaced {
                    path: self.shared.path.clone(),
                    reason: "the database file was deleted or moved since it was opened".into(),
                }
            }
            Error::Sqlite(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::ReadOnly)
                        | Some(ErrorCode::CannotOpen)
                        | Some(ErrorCode::PermissionDenied)
                ) =>
            {
                self.read_only_error(bootstrap::read_only_reason(&self.shared.path, &e))
            }
            other => other,
        }
    }

    fn read_only_error(&self, reason: String) -> Error {
        Error::ReadOnly {
            path: self.shared.path.clone(),
            reason,
        }
    }
}

/// Backend operations: what is file- or server-level and runs outside any transaction, each
/// named for what the logic wants; the drivers' `dialect.rs` say how.
impl Store {
    /// Rebuilds the storage to give free space back: SQLite rewrites the file (slow on big
    /// files; it needs free disk space about the file's size); PostgreSQL's `VACUUM (ANALYZE)`
    /// makes dead rows' space reusable and renews the planner's statistics.
    pub(crate) fn vacuum(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(pool) => self.on_file(pool, sqlite::dialect::vacuum),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => self.on_server(pool, postgres::dialect::VACUUM),
        }
    }

    /// After deleting rows to erase them: rewrites the storage so that no copy of them stays
    /// in it (SQLite: a page split long ago may have left a stale copy of a row in free space
    /// that no delete can find, and `VACUUM` rewrites every page; PostgreSQL: `VACUUM` drops
    /// the dead rows of every table that held them). A WAL keeps old page images until
    /// [`Store::checkpoint`].
    pub(crate) fn erase_securely(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(pool) => self.on_file(pool, sqlite::dialect::vacuum),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => self.on_server(pool, postgres::dialect::ERASE),
        }
    }

    /// Copies the WAL into the database file and truncates it, trying for about a second
    /// while a reader of an old snapshot holds it (then [`Checkpoint::Kept`], rather than
    /// waiting for the reader). A server's WAL is not ours: [`Checkpoint::NoWal`].
    pub(crate) fn checkpoint(&self) -> Result<Checkpoint> {
        match &self.backend {
            Backend::Sqlite(pool) => self.on_file(pool, |conn| {
                Ok(match sqlite::dialect::checkpoint(conn)? {
                    true => Checkpoint::Truncated,
                    false => Checkpoint::Kept,
                })
            }),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => Ok(Checkpoint::NoWal),
        }
    }

    /// Writes a consistent copy of the database to the new file `path` while others go on
    /// writing, if the backend can do that itself (SQLite's `VACUUM INTO`): the copy holds
    /// exactly the transactions committed before it started. `false` where it cannot (a
    /// server): the caller copies row by row.
    pub(crate) fn copy_file_to(&self, path: &str) -> Result<bool> {
        match &self.backend {
            Backend::Sqlite(pool) => {
                self.on_file(pool, |conn| sqlite::dialect::vacuum_into(conn, path))?;
                Ok(true)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => Ok(false),
        }
    }

    /// The bytes the store takes: the database file and its WAL (0 for one that does not
    /// exist); on a server, the database's size (0 if it cannot be read) and no WAL of ours.
    pub(crate) fn storage_sizes(&self) -> (u64, u64) {
        match &self.backend {
            Backend::Sqlite(_) => sqlite::dialect::file_sizes(self.path()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => {
                let bytes = self
                    .read(|tx| tx.value::<i64>(postgres::dialect::DATABASE_SIZE, &[]))
                    .ok()
                    .flatten()
                    .unwrap_or(0);
                (bytes.max(0) as u64, 0)
            }
        }
    }

    /// Where a temporary file of the store goes: beside the database file (same file system,
    /// same permissions); for a server, where temporary files go.
    pub(crate) fn scratch_dir(&self) -> PathBuf {
        match &self.backend {
            Backend::Sqlite(_) => crate::out_file::parent_dir(self.path()).to_path_buf(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => std::env::temp_dir(),
        }
    }

    /// A cheap signal that something committed, on a connection of its own, for a watcher;
    /// `None` where the backend has none and a watcher reads through the store each time.
    pub(crate) fn change_signal(&self) -> Result<Option<ChangeSignal>> {
        match &self.backend {
            Backend::Sqlite(_) => ChangeSignal::open(self.path()).map(Some),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => Ok(None),
        }
    }
}

impl Store {
    /// This store with every write running `guard` inside its transaction first.
    pub(crate) fn guarded_by(&self, guard: Arc<dyn WriteGuard>) -> Store {
        Store {
            guard: Some(guard),
            ..self.clone()
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.shared.path)
            .field("read_only", &self.shared.read_only)
            .finish_non_exhaustive()
    }
}
