//! The session row, for the operations that need it whole: read with its head branch's
//! name ([`load_session`]), or deleted with everything only it holds ([`delete_session_in`]).

use serde_json::Value;

use crate::db::sql::{args, Row, Tx};
use crate::error::{Error, Result};
use crate::heads::{require_head, retire_versions};
use crate::lineage::{row_id, MAX_SEQ};
use crate::model::{check_json, parse_time, Metadata, Session, Usage};

/// The columns [`session_from_row`] reads, from `sessions s JOIN branches b` (the head).
pub(crate) const SESSION_COLUMNS: &str =
    "s.id, s.title, s.agent_name, s.agent_id, s.user_id, s.metadata, \
     s.parent_session_id, b.name, s.message_count, s.input_tokens, s.output_tokens, s.cost, \
     s.version, s.created_at, s.updated_at";

/// The body of [`Store::delete_session`] inside the caller's write transaction.
pub(crate) fn delete_session_in(tx: &Tx<'_>, id: &str) -> Result<()> {
    // Deleting the row clears parent_session_id of its forks, so they change too: lock the
    // session and its forks together, before the clock.
    tx.lock_session_and_forks(id)?;
    require_head(tx, id)?;
    retire_versions(tx, id)?;
    let doomed: Vec<i64> = tx.query_map(
        "SELECT id FROM branches WHERE session_id = ?1 ORDER BY id DESC",
        args![id],
        |r| r.get(0),
    )?;
    tx.execute("DELETE FROM sessions WHERE id = ?1", args![id])?;
    // A lease outlives nothing it leased: its holder's next write is LeaseLost, and a session
    // created again under this id is free to claim.
    tx.execute("DELETE FROM leases WHERE session_id = ?1", args![id])?;
    // Branches of other sessions (or orphans kept earlier) that fork from ours keep
    // their whole lineage; the rest goes.
    let doomed_json = Value::from(doomed.clone()).to_string();
    let kept: Vec<i64> = tx.query_map(
        tx.pick(
            "WITH RECURSIVE kept (id) AS (
                     SELECT parent_branch_id FROM branches
                     WHERE parent_branch_id IN (SELECT value FROM json_each(?1))
                       AND id NOT IN (SELECT value FROM json_each(?1))
                     UNION
                     SELECT b.parent_branch_id FROM branches b JOIN kept ON b.id = kept.id
                     WHERE b.parent_branch_id IS NOT NULL
                 )
                 SELECT id FROM kept",
            "WITH RECURSIVE doomed (id) AS (
                     SELECT CAST(value AS BIGINT) FROM jsonb_array_elements_text(CAST(CAST(?1 AS TEXT) AS JSONB))
                 ), kept (id) AS (
                     SELECT parent_branch_id FROM branches
                     WHERE parent_branch_id IN (SELECT id FROM doomed)
                       AND id NOT IN (SELECT id FROM doomed)
                     UNION
                     SELECT b.parent_branch_id FROM branches b JOIN kept ON b.id = kept.id
                     WHERE b.parent_branch_id IS NOT NULL
                 )
                 SELECT id FROM kept",
        ),
        args![&doomed_json],
        |r| r.get(0),
    )?;
    // Kept branches lose the rows no fork inherits; the others go whole.
    for branch in &doomed {
        let needed: i64 = tx.query_one(
            "SELECT coalesce(max(fork_seq), 0) FROM branches WHERE parent_branch_id = ?1",
            args![branch],
            |r| r.get(0),
        )?;
        tx.execute(
            "DELETE FROM messages WHERE id BETWEEN ?1 AND ?2",
            args![row_id(*branch, needed + 1), row_id(*branch, MAX_SEQ)],
        )?;
        if !kept.contains(branch) {
            crate::lineage::delete_branch(tx, *branch)?;
        }
    }
    Ok(())
}

pub(crate) fn load_session(tx: &Tx<'_>, id: &str) -> Result<Session> {
    tx.lock_session(id)?;
    tx.query_opt(
        &format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN branches b ON b.id = s.head_branch_id
         WHERE s.id = ?1"
        ),
        args![id],
        session_from_row,
    )?
    .ok_or_else(|| Error::not_found("session", id))
}

pub(crate) fn session_from_row(row: &Row<'_>) -> Result<Session> {
    let id: String = row.get(0)?;
    let metadata: String = row.get(5)?;
    Ok(Session {
        metadata: parse_metadata_column(&metadata, &id)?,
        title: row.get(1)?,
        agent_name: row.get(2)?,
        agent_id: row.get(3)?,
        user_id: row.get(4)?,
        parent_session: row.get(6)?,
        head_branch: row.get(7)?,
        message_count: row.get::<i64>(8)? as u64,
        usage: Usage {
            input_tokens: row.get::<i64>(9)? as u64,
            output_tokens: row.get::<i64>(10)? as u64,
            cost: row.get(11)?,
        },
        version: row.get(12)?,
        created_at: parse_time(&row.get::<String>(13)?)?,
        updated_at: parse_time(&row.get::<String>(14)?)?,
        id,
    })
}

/// Merges `patch` into `metadata`: each key replaces the stored one, and a `null` value
/// removes the key.
pub(crate) fn apply_metadata_patch(metadata: &mut Metadata, patch: Metadata) {
    for (key, value) in patch {
        if value.is_null() {
            metadata.remove(&key);
        } else {
            metadata.insert(key, value);
        }
    }
}

/// Merges `patch` into the session's stored metadata ([`apply_metadata_patch`]), leaving
/// its version to the caller. [`Error::NotFound`] if there is no such session.
pub(crate) fn merge_metadata(tx: &Tx<'_>, id: &str, patch: Metadata) -> Result<()> {
    edit_metadata(tx, id, |metadata| apply_metadata_patch(metadata, patch))
}

/// Changes the session's stored metadata with `edit`, which sees it as stored: the row is
/// read locked, so two edits at once never both start from the same text.
pub(crate) fn edit_metadata(tx: &Tx<'_>, id: &str, edit: impl FnOnce(&mut Metadata)) -> Result<()> {
    let current: String = tx
        .query_opt(
            &tx.locked("SELECT metadata FROM sessions WHERE id = ?1"),
            args![id],
            |r| r.get(0),
        )?
        .ok_or_else(|| Error::not_found("session", id))?;
    let mut metadata = parse_metadata_column(&current, id)?;
    edit(&mut metadata);
    check_json("metadata", &metadata)?;
    tx.execute(
        "UPDATE sessions SET metadata = ?2 WHERE id = ?1",
        args![id, Value::Object(metadata).to_string()],
    )?;
    Ok(())
}

pub(crate) fn parse_metadata_column(text: &str, id: &str) -> Result<Metadata> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Corrupt(format!(
            "session {id:?}: metadata is not a JSON object"
        ))),
    }
}
