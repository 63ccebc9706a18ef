//! Moving a session's head and its version: the steps every write of a history goes through.
//!
//! A session's current history is its head: a branch and how many messages of that branch's
//! lineage it holds, with the usage totals up to there, all kept on the session's row. A
//! write reads the head inside its transaction ([`current_of`], which on PostgreSQL also locks
//! the row so writers of one session take turns), appends to it or moves it to a new branch
//! ([`fork_new_head`]: the old head stays readable as a superseded branch), and records it
//! with the next version ([`save_head`]).
//!
//! Versions: a new session draws its first version from the file's one clock
//! ([`first_version`]), above every version any session of the file has had; after that a
//! session's version grows by one per change ([`Step`], [`touch`]) without touching
//! the clock. A session about to be deleted hands its version to the clock first
//! ([`retire_versions`]), so a session recreated under its id never repeats a version.

use serde_json::Value;

use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::lineage::{self, Current, Head, Segment};
use crate::model::{now_text, parse_time, Message, NewMessage, NewSession, SnapshotId, Usage};

/// Name of the first branch of every session.
pub const DEFAULT_BRANCH: &str = "main";

/// The session's current head and version, or `None` if there is no such session.
/// In a write on PostgreSQL it also locks the session's row for the rest of the transaction:
/// every write reads the session through here first, so writers of one session take turns.
pub(crate) fn current_of(tx: &Tx<'_>, id: &str) -> Result<Option<Current>> {
    const READ: &str = "SELECT head_branch_id, message_count, input_tokens, output_tokens, cost,
             version, head_since
         FROM sessions WHERE id = ?1";
    tx.query_opt(&tx.locked(READ), args![id], |r| {
        Ok(Current {
            head: Head {
                branch_id: r.get(0)?,
                length: r.get(1)?,
                usage: Usage {
                    input_tokens: r.get::<i64>(2)? as u64,
                    output_tokens: r.get::<i64>(3)? as u64,
                    cost: r.get(4)?,
                },
            },
            version: r.get(5)?,
            head_since: r.get(6)?,
        })
    })
}

/// [`current_of`] and the segments of the current history, root first, read (and in a write
/// on PostgreSQL, locked) by one statement.
pub(crate) fn current_and_lineage(
    tx: &Tx<'_>,
    id: &str,
) -> Result<Option<(Current, Vec<Segment>)>> {
    let mut current = None;
    let segments = lineage::segments_with(
        tx,
        lineage::LineageOf::HeadOf(id),
        ", h.input_tokens, h.output_tokens, h.cost, h.version, h.head_since",
        " CROSS JOIN head h",
        args![],
        |r| {
            current = Some((
                Usage {
                    input_tokens: r.get::<i64>(5)? as u64,
                    output_tokens: r.get::<i64>(6)? as u64,
                    cost: r.get(7)?,
                },
                r.get(8)?,
                r.get(9)?,
            ));
            Ok(())
        },
    )?;
    let (Some((usage, version, head_since)), Some(last)) = (current, segments.last()) else {
        return Ok(None);
    };
    let head = Head {
        branch_id: last.branch_id,
        length: last.upto,
        usage,
    };
    Ok(Some((
        Current {
            head,
            version,
            head_since,
        },
        segments,
    )))
}

/// The session's head and version, or `None` if there is no such session.
pub(crate) fn head_of(tx: &Tx<'_>, id: &str) -> Result<Option<(Head, i64)>> {
    Ok(current_of(tx, id)?.map(|c| (c.head, c.version)))
}

/// Like [`head_of`], but a missing session is [`Error::NotFound`].
pub(crate) fn require_head(tx: &Tx<'_>, id: &str) -> Result<Head> {
    head_of(tx, id)?
        .map(|(head, _)| head)
        .ok_or_else(|| Error::not_found("session", id))
}

/// The session's head and version; a missing session is created first when `create` (as
/// `add_message` and `set_chat_history` do without an expected version), otherwise it is
/// [`Error::NotFound`].
pub(crate) fn head_or_create(tx: &Tx<'_>, id: &str, create: bool) -> Result<(Head, i64)> {
    let found = match head_of(tx, id)? {
        None if create => {
            match insert_session(tx, id, &NewSession::default(), None, None) {
                Ok(created) => Some(created),
                // Created meanwhile by another host: this write goes on on top of it.
                Err(Error::AlreadyExists(_)) => head_of(tx, id)?,
                Err(e) => return Err(e),
            }
        }
        found => found,
    };
    found.ok_or_else(|| Error::not_found("session", id))
}

/// Inserts a session row and its empty `main` branch (or, for a fork, a branch that inherits
/// `fork`), drawing a fresh version; returns its head and version, as [`head_of`] would.
/// [`Error::AlreadyExists`] if the id is taken. Two statements where the backend joins a
/// write to the next ([`Tx::write_then`]), four elsewhere, in the order of
/// [`insert_session_row`]: the row first, the version clock after it.
pub(crate) fn insert_session(
    tx: &Tx<'_>,
    id: &str,
    new: &NewSession,
    parent_session: Option<&str>,
    fork: Option<((i64, i64), Usage)>,
) -> Result<(Head, i64)> {
    let now = now_text();
    let (parent_branch, fork_seq) = match fork {
        Some(((branch, seq), _)) => (Some(branch), seq),
        None => (None, 0),
    };
    let metadata = Value::Object(new.metadata.clone()).to_string();
    let mut branch = None;
    tx.write_then(
        &format!("{INSERT_SESSION_ROW} RETURNING id"),
        "INSERT INTO branches (session_id, name, parent_branch_id, fork_seq, created_at)
         SELECT value, CAST(?10 AS TEXT), CAST(?11 AS BIGINT), CAST(?12 AS BIGINT), CAST(?8 AS TEXT)
         FROM prev RETURNING id",
        args![
            id,
            new.title,
            new.agent_name,
            new.agent_id,
            new.user_id,
            metadata,
            parent_session,
            now,
            now,
            DEFAULT_BRANCH,
            parent_branch,
            fork_seq,
        ],
        |r| {
            branch = Some(r.get::<i64>(0)?);
            Ok(())
        },
    )?;
    let branch = branch.ok_or_else(|| Error::AlreadyExists(id.to_string()))?;
    lineage::check_branch_id(branch)?;
    let head = Head {
        branch_id: branch,
        length: fork_seq,
        usage: fork.map_or(Usage::default(), |f| f.1),
    };
    let mut version = None;
    tx.write_then(
        "UPDATE version_clock SET version = version + 1 WHERE id = 1 RETURNING version",
        "UPDATE sessions SET head_branch_id = ?2, head_since = prev.value, message_count = ?3,
             input_tokens = ?4, output_tokens = ?5, cost = ?6, version = prev.value,
             updated_at = ?7
         FROM prev WHERE sessions.id = ?1 RETURNING version",
        args![
            id,
            head.branch_id,
            head.length,
            head.usage.input_tokens as i64,
            head.usage.output_tokens as i64,
            head.usage.cost,
            now
        ],
        |r| {
            version = Some(r.get::<i64>(0)?);
            Ok(())
        },
    )?;
    let version =
        version.ok_or_else(|| Error::Corrupt("the version clock has no row".to_string()))?;
    Ok((head, version))
}

/// The insert of [`insert_session_row`], with parameters `?1` to `?9`.
const INSERT_SESSION_ROW: &str = "INSERT INTO sessions (id, title, agent_name, agent_id, user_id,
         metadata, parent_session_id, head_branch_id, version, created_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, ?8, ?9)
     ON CONFLICT (id) DO NOTHING";

/// Inserts the session's row alone, with no head and version 0: the caller creates its
/// branches, then records the head with [`save_head`]. [`Error::AlreadyExists`] if the id
/// is taken.
pub(crate) fn insert_session_row(
    tx: &Tx<'_>,
    id: &str,
    fields: &NewSession,
    parent_session: Option<&str>,
    created_at: &str,
    updated_at: &str,
) -> Result<()> {
    // head_branch_id is checked at commit (deferred), so the branch can follow the session;
    // save_head sets it and the version.
    // On PostgreSQL another transaction may be creating the same id right now: the insert
    // waits for it and then does nothing, and the caller learns the session exists. The
    // version is drawn only after the insert, so a transaction waiting here holds no lock on
    // the clock, and one that loses the race leaves the clock alone.
    let inserted = tx.execute(
        INSERT_SESSION_ROW,
        args![
            id,
            fields.title,
            fields.agent_name,
            fields.agent_id,
            fields.user_id,
            Value::Object(fields.metadata.clone()).to_string(),
            parent_session,
            created_at,
            updated_at,
        ],
    )?;
    if inserted == 0 {
        return Err(Error::AlreadyExists(id.to_string()));
    }
    Ok(())
}

/// The version of a new session: above every version a session of this file has had, so a
/// deleted and recreated session never repeats one. From then on a session's version grows by
/// one per change ([`Step`]); only creating and deleting sessions touch the clock, so
/// an append writes no page for it.
pub(crate) fn first_version(tx: &Tx<'_>) -> Result<i64> {
    tx.query_one(
        "UPDATE version_clock SET version = version + 1 WHERE id = 1 RETURNING version",
        args![],
        |r| r.get(0),
    )
}

/// One change of a session: the version it takes and the time stamped on every row it
/// writes. A session's version grows by one per change, and only [`Step::after`] adds it.
pub(crate) struct Step {
    pub(crate) version: i64,
    pub(crate) now: String,
}

impl Step {
    /// The change that follows `version`.
    pub(crate) fn after(version: i64) -> Step {
        Step {
            version: version + 1,
            now: now_text(),
        }
    }
}

/// The step the session's next change takes.
pub(crate) fn next_step(tx: &Tx<'_>, id: &str) -> Result<Step> {
    let version = tx
        .query_opt(
            "SELECT version FROM sessions WHERE id = ?1",
            args![id],
            |r| r.get(0),
        )?
        .ok_or_else(|| Error::not_found("session", id))?;
    Ok(Step::after(version))
}

/// `Ok` when the caller expected no version or the one the session has; otherwise the
/// [`Error::Conflict`] that names both, and the write stops before it changed anything.
pub(crate) fn check_version(id: &str, expected: Option<i64>, actual: i64) -> Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(Error::Conflict {
            session: id.to_string(),
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

/// Appends `messages` to `head` as `step` and records the head: the one way a history grows
/// (an append, a batch, the new tail of a replaced history). Returns the messages as stored,
/// indexed from the head's old length. Takes them by value: a single append moves its
/// message into the result instead of copying it.
pub(crate) fn append_to_head(
    tx: &Tx<'_>,
    id: &str,
    head: &mut Head,
    step: &Step,
    messages: Vec<NewMessage>,
) -> Result<Vec<Message>> {
    let old_length = head.length as u64;
    lineage::append(tx, head, &messages, &step.now)?;
    save_head(tx, id, head, step.version, &step.now)?;
    let at = parse_time(&step.now)?;
    Ok(messages
        .into_iter()
        .enumerate()
        .map(|(i, body)| body.stored_at(old_length + i as u64, at))
        .collect())
}

/// Bumps the version and `updated_at` of a session whose history did not change; returns
/// the new version.
pub(crate) fn touch(tx: &Tx<'_>, id: &str) -> Result<i64> {
    tx.query_opt(
        "UPDATE sessions SET version = version + 1, updated_at = ?2 WHERE id = ?1
         RETURNING version",
        args![id, now_text()],
        |r| r.get(0),
    )?
    .ok_or_else(|| Error::not_found("session", id))
}

/// Before session `id`'s row goes: a session recreated under this id must start above every
/// version this one had.
pub(crate) fn retire_versions(tx: &Tx<'_>, id: &str) -> Result<()> {
    let version = tx.query_opt(
        "SELECT version FROM sessions WHERE id = ?1",
        args![id],
        |r| r.get(0),
    )?;
    match version {
        Some(version) => raise_version_clock(tx, version),
        None => Ok(()),
    }
}

/// Raises the file's version clock to at least `version`, so every session created from now
/// on starts above it (an imported superseded branch named `<name>@<version>` keeps its name
/// free this way).
pub(crate) fn raise_version_clock(tx: &Tx<'_>, version: i64) -> Result<()> {
    tx.execute(
        &format!(
            "UPDATE version_clock SET version = {}(version, ?1) WHERE id = 1",
            tx.greatest()
        ),
        args![version],
    )?;
    Ok(())
}

/// The parameters of [`save_head`]'s statements: the session, the head, the version, the time.
macro_rules! head_values {
    ($id:expr, $head:expr, $version:expr, $now:expr) => {
        args![
            $id,
            $head.branch_id,
            $head.length,
            $head.usage.input_tokens as i64,
            $head.usage.output_tokens as i64,
            $head.usage.cost,
            $version,
            $now
        ]
    };
}

/// Records `head` as the session's current history at `version` (a [`Step`]'s).
pub(crate) fn save_head(tx: &Tx<'_>, id: &str, head: &Head, version: i64, now: &str) -> Result<()> {
    // Naming head_branch_id in SET rewrites its index entry even when the value is the
    // same: one more page per append. So it is set only when the head moved.
    let same_head = tx.execute(
        "UPDATE sessions SET message_count = ?3, input_tokens = ?4, output_tokens = ?5,
                 cost = ?6, version = ?7, updated_at = ?8
             WHERE id = ?1 AND head_branch_id = ?2",
        head_values!(id, head, version, now),
    )?;
    if same_head == 0 {
        save_moved_head(tx, id, head, version, now)?;
    }
    Ok(())
}

/// [`save_head`] for a head known to be on another branch than the recorded one (a new
/// session's first): one statement.
fn save_moved_head(tx: &Tx<'_>, id: &str, head: &Head, version: i64, now: &str) -> Result<()> {
    tx.execute(
        "UPDATE sessions SET head_branch_id = ?2, head_since = ?7, message_count = ?3,
             input_tokens = ?4, output_tokens = ?5, cost = ?6, version = ?7, updated_at = ?8
         WHERE id = ?1",
        head_values!(id, head, version, now),
    )?;
    Ok(())
}

/// Pins the first `seq` messages of branch `branch_id` as a snapshot of the session; returns
/// its id. `metadata` is the JSON text of a checked object.
pub(crate) fn insert_snapshot(
    tx: &Tx<'_>,
    session_id: &str,
    label: Option<&str>,
    metadata: &str,
    (branch_id, seq): (i64, i64),
    created_at: &str,
) -> Result<SnapshotId> {
    let id = tx.query_one(
        "INSERT INTO snapshots (session_id, label, metadata, branch_id, seq, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        args![session_id, label, metadata, branch_id, seq, created_at],
        |r| r.get(0),
    )?;
    Ok(SnapshotId(id))
}

/// Moves the session's head to a new branch that takes the head's name and starts with the
/// first `seq` messages of `segments`. The old head stays readable, renamed
/// `<name>@<version>` and marked superseded, until prune collects it. Returns the new head;
/// the caller appends to it and saves it with the same `version`.
pub(crate) fn fork_new_head(
    tx: &Tx<'_>,
    session_id: &str,
    old: i64,
    segments: &[Segment],
    seq: i64,
    version: i64,
    now: &str,
) -> Result<Head> {
    let name: String =
        tx.query_one("SELECT name FROM branches WHERE id = ?1", args![old], |r| {
            r.get(0)
        })?;
    // A session's versions never repeat and user-chosen names cannot contain '@', so this
    // name is free.
    let base = name.split('@').next().unwrap_or(&name);
    tx.execute(
        "UPDATE branches SET name = ?2, superseded_at = ?3 WHERE id = ?1",
        args![old, format!("{base}@{version}"), now],
    )?;
    let branch_id = lineage::create_branch(
        tx,
        session_id,
        &name,
        lineage::fork_point(segments, seq),
        now,
    )?;
    if let Some(from) = segments.last() {
        carry(tx, from.branch_id, branch_id, seq)?;
    }
    Ok(Head {
        branch_id,
        length: seq,
        usage: lineage::usage_at(tx, segments, seq)?,
    })
}

/// Gives `to` (a branch being created from `from`'s history, keeping its first `seq`
/// messages) the compactions of `from` that end within what it keeps.
pub(crate) fn carry(tx: &Tx<'_>, from: i64, to: i64, seq: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO compactions (branch_id, through_seq, summary, tokens_before, tokens_after,
             created_at)
         SELECT CAST(?2 AS BIGINT), through_seq, summary, tokens_before, tokens_after, created_at
         FROM compactions WHERE branch_id = ?1 AND through_seq <= ?3 ORDER BY id",
        args![from, to, seq],
    )?;
    Ok(())
}
