//! The one error type of sessiondb. Every variant says what failed and carries the offending
//! id or value, so a caller can act on it without parsing the message.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong. Match on the variant to decide what to do; the `Display` text is for people.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named thing does not exist. `kind` is `"database"` (the path, when the store may
    /// not create it), `"session"`, `"branch"`, `"snapshot"` or
    /// `"message"`; `id` is what the caller asked for.
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },

    /// A session with this id already exists (only from `create_session`).
    #[error("session {0:?} already exists")]
    AlreadyExists(String),

    /// The caller passed something we refuse: the message names the field and the value.
    /// Nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A write carried an expected version and the session had moved on. Nothing was written:
    /// re-read the session and decide again.
    #[error("session {session:?} changed: expected version {expected}, found {actual}")]
    Conflict {
        session: String,
        expected: i64,
        actual: i64,
    },

    /// Another connection held the write lock for longer than the busy timeout. Nothing was
    /// written; retrying later is safe.
    #[error("database is busy: the write lock was not free within {timeout:?}")]
    Busy { timeout: Duration },

    /// The wait for another writer's lock was cut short by the check installed with
    /// [`crate::interrupt_lock_waits`] (in Python: Ctrl-C). Nothing was written.
    #[error("interrupted while waiting for the write lock; nothing was written")]
    Interrupted,

    /// The file was written by a newer sessiondb whose schema this build does not know.
    #[error("{path}: schema version {found} is newer than this build supports ({supported}); upgrade sessiondb")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    /// The file exists but is not a sessiondb database (not SQLite, or another application's
    /// SQLite file). It was left untouched.
    #[error("{path}: not a sessiondb database: {reason}")]
    NotSessionDb { path: PathBuf, reason: String },

    /// The store or the file is read-only and the operation writes.
    #[error("{path}: the database is read-only: {reason}")]
    ReadOnly { path: PathBuf, reason: String },

    /// The file's contents violate what sessiondb or SQLite expects (a damaged page, a broken
    /// invariant). Restore from a backup or run `sessiondb check`.
    #[error("database is corrupt: {0}")]
    Corrupt(String),

    /// The disk or the file system's quota is full. The failed call wrote nothing; what was
    /// stored before is intact. Free space and retry.
    #[error("no space left for the database: {0}")]
    StorageFull(String),

    /// An operating-system error on the database path (creating its directory, reading it).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file to be written (an export, a backup) already exists and the caller did not ask
    /// to replace it. Nothing was written.
    #[error("{path}: file already exists; refusing to replace it (--force replaces it)")]
    FileExists { path: PathBuf },

    /// The database, its `-wal` or `-shm`, or the directory holding them can be changed by
    /// another user (owned by one, or writable by everyone), so whoever did it could read or
    /// forge what is written next. Nothing was opened. Fix the ownership or mode, or opt in
    /// with [`crate::StoreBuilder::shared`] when the file is shared on purpose.
    #[error("{path}: refusing a file other users can change: {reason}")]
    UnsafePermissions { path: PathBuf, reason: String },

    /// The database file or its `-wal` was deleted or replaced (`rm`, `mv`) since the store
    /// opened it. The write was not committed: committing into the unlinked file would have
    /// been acknowledged and lost. Open the path again; to replace a live database, use
    /// [`crate::Store::restore`] instead.
    #[error("{path}: {reason}; nothing was written: open it again")]
    FileReplaced { path: PathBuf, reason: String },

    /// The `-wal` beside the database holds commits of another database file: the file at
    /// `path` was moved or copied over the one `wal` belongs to while that one still had
    /// commits in it, or processes still had it open (`mv backup.db sessions.db` under a
    /// running process, or after one was killed). Opening the two together would read a mix
    /// of both files and corrupt this one, so nothing was read or written. Put the old file
    /// back, or stop the processes that still have it open (the last one to exit cleanly
    /// removes `wal`); a `wal` that is still there then holds only the old file's last
    /// commits, and moving it (and its `-shm`) aside opens `path` without them. To replace a
    /// live database, use [`crate::Store::restore`] (`sessiondb restore BACKUP`).
    #[error(
        "{wal} belongs to another database file, not to {path}: {path} was moved or copied \
         over the file that -wal belongs to while that one was in use or had commits in it; \
         opening them together would mix two databases, so nothing was read or written. Put \
         the old file back, or stop the processes that still have it open; if {wal} is still \
         there, it holds only the old file's last commits: move it and its -shm aside. To \
         replace a live database, use `sessiondb restore BACKUP`"
    )]
    ForeignWal { path: PathBuf, wal: PathBuf },

    /// The database's `-wal` was deleted or truncated (`rm sessions.db-wal`) while other
    /// processes had the database open: their shared index (`-shm`) names commits the `-wal`
    /// at the path no longer holds, so nothing was read or written. Stop every process that
    /// has the file open (their writes are refused with [`Error::FileReplaced`]) and open it
    /// again: it then holds what was checkpointed into the file (a process that exits cleanly
    /// checkpoints what its deleted `-wal` still held).
    #[error(
        "{wal} was deleted or truncated while other processes had {path} open, so their \
         commits since the last checkpoint are not in it; nothing was read or written. Stop \
         every process that has {path} open, then open it again"
    )]
    WalDeleted { path: PathBuf, wal: PathBuf },

    /// Any other SQLite error.
    #[error("sqlite: {0}")]
    Sqlite(#[source] rusqlite::Error),

    /// The connection to the server broke while it was committing a write (the network
    /// dropped it, or the server ended the session) before the server said how the commit
    /// went: the write may or may not have been stored. Only PostgreSQL gives this; a SQLite
    /// commit is decided in this process. A server that answers the commit with an error
    /// (a serialization failure, say) is not this: that write was not stored.
    ///
    /// What to do: a write of messages that all carry keys ([`crate::NewMessage::with_key`])
    /// can simply be sent again; if the first one was stored, the retry writes nothing and
    /// returns the stored messages. Anything else: read the session back (its history, its
    /// `version`) and decide whether to write again, as after a crash.
    #[error("the connection was lost while committing, so whether the write was stored is unknown: {reason}")]
    CommitOutcomeUnknown { reason: String },

    /// Any other PostgreSQL error.
    #[cfg(feature = "postgres")]
    #[error("postgres: {}", postgres_reason(.0))]
    Postgres(#[source] postgres::Error),

    /// No pooled connection could be had in time.
    #[error("connection pool: {0}")]
    Pool(String),

    /// A batch mixed messages whose keys are already stored in the session's history with
    /// messages that are not: it is neither a new turn nor a retry of a stored one. Nothing
    /// was written; resend exactly the batch that was stored, or new messages only.
    #[error(
        "session {session:?}: keys {stored:?} are already stored but {new} message(s) of the \
         batch are not; nothing was written"
    )]
    KeysPartlyStored {
        session: String,
        /// The batch's keys found in the history.
        stored: Vec<String>,
        /// How many messages of the batch are not stored.
        new: usize,
    },

    /// Another owner holds the session's lease until `expires_at`, so the claim failed and
    /// nothing was written. Claim again after `expires_at`, or leave the session to `owner`.
    // Milliseconds rather than the stored form (`model::time_text`): a person reads this
    // message, and this floor sits below `model`; `expires_at` itself carries the exact time.
    #[error(
        "session {session:?} is leased to {owner:?} until {}",
        .expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )]
    LeaseHeld {
        session: String,
        owner: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },

    /// A write or renewal passed a lease that is no longer held: it expired, was released,
    /// or another owner took the session over (`holder`, if one holds it now). Nothing was
    /// written: stop the run, or claim again and re-read the session before going on.
    #[error("lease of session {session:?} by {owner:?} was lost: {reason}")]
    LeaseLost {
        session: String,
        owner: String,
        holder: Option<String>,
        reason: String,
    },
}

/// `Result` with sessiondb's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                Error::Corrupt(err.to_string())
            }
            Some(ErrorCode::DiskFull) => Error::StorageFull(err.to_string()),
            // The pool's connections carry the configured timeout; callers that know it
            // (Store) rewrite this with the real value.
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => Error::Busy {
                timeout: Duration::ZERO,
            },
            _ => Error::Sqlite(err),
        }
    }
}

#[cfg(feature = "postgres")]
impl From<postgres::Error> for Error {
    fn from(err: postgres::Error) -> Self {
        use postgres::error::SqlState;
        match err.code() {
            // lock_timeout and statement_timeout: the store rewrites the timeout.
            Some(code)
                if *code == SqlState::LOCK_NOT_AVAILABLE || *code == SqlState::QUERY_CANCELED =>
            {
                Error::Busy {
                    timeout: Duration::ZERO,
                }
            }
            Some(code) if *code == SqlState::DISK_FULL => Error::StorageFull(err.to_string()),
            // A statement this connection prepared is not on the server connection it now
            // talks to: a pooler in transaction mode hands transactions around.
            Some(code)
                if *code == SqlState::INVALID_SQL_STATEMENT_NAME
                    || *code == SqlState::DUPLICATE_PSTATEMENT =>
            {
                Error::Pool(format!(
                    "{}: the server connection changed under a prepared statement, as \
                     behind a pooler in transaction mode; add pgbouncer=true to the URL",
                    postgres_reason(&err)
                ))
            }
            // Rust strings are valid UTF-8, so the one byte the server refuses in `text` is
            // NUL (22021), and in `jsonb` the escape `\u0000` (22P05).
            Some(code)
                if *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
                    || *code == SqlState::UNTRANSLATABLE_CHARACTER =>
            {
                Error::invalid(
                    "PostgreSQL cannot store the NUL character (\\0) in text or JSON; nothing \
                     was written",
                )
            }
            Some(code)
                if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED =>
            {
                Error::Corrupt(err.to_string())
            }
            _ => Error::Postgres(err),
        }
    }
}

impl Error {
    pub(crate) fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }
}

/// The driver's error with its cause: the server's own message (with its detail and hint) or
/// the system's reason, which the driver's text alone leaves out ("db error", "error
/// connecting to server").
#[cfg(feature = "postgres")]
pub(crate) fn postgres_reason(err: &postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text.push_str(&format!(": {more}"));
        }
        cause = c.source();
    }
    text
}
