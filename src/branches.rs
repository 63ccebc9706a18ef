//! Forks and branches: new histories that start from a point of an existing one without
//! copying a message, and heads that move between them.

use std::collections::HashSet;

use crate::db::sql::{args, Row, Tx};
use crate::error::{Error, Result};
use crate::heads::{
    carry, fork_new_head, head_of, insert_session, next_step, require_head, save_head, touch, Step,
};
use crate::history::History;
use crate::lineage::{self, branch_id, Head};
use crate::model::{
    now_text, parse_time, validate_branch_name, validate_session_id, Branch, BranchDiff,
    BranchSide, ForkPoint, NewSession, Session, SessionTree,
};
use crate::session_row::load_session;
use crate::store::Store;

/// Sessions nested deeper than this in a fork tree are not expanded (a damaged file could
/// hold a cycle; `session_tree` also skips sessions it has already shown).
const MAX_TREE_DEPTH: usize = 1_000;

impl Store {
    /// A new session whose history is `source`'s messages `0..=at_index` (all of them when
    /// `at_index` is `None`). Copies no message; records `source` as its parent; carries over
    /// agent, user and metadata. The title defaults to `Fork of <title or id>`.
    pub fn fork_session(
        &self,
        source: &str,
        at_index: Option<u64>,
        title: Option<&str>,
    ) -> Result<Session> {
        validate_session_id(source)?;
        let id = uuid::Uuid::new_v4().to_string();
        self.write(|tx| {
            let parent = load_session(tx, source)?;
            let head = require_head(tx, source)?;
            let seq = seq_for_index(source, &head, at_index)?;
            let segments = lineage::segments(tx, head.branch_id, head.length)?;
            let title = match title {
                Some(t) => t.to_string(),
                None => format!("Fork of {}", parent.title.as_deref().unwrap_or(source)),
            };
            let new = NewSession {
                id: Some(id.clone()),
                title: Some(title),
                agent_name: parent.agent_name,
                agent_id: parent.agent_id,
                user_id: parent.user_id,
                metadata: parent.metadata,
            };
            let fork = match lineage::fork_point(&segments, seq) {
                Some(point) => Some((point, lineage::usage_at(tx, &segments, seq)?)),
                None => None,
            };
            insert_session(tx, &id, &new, Some(source), fork)?;
            let forked = require_head(tx, &id)?;
            carry(tx, head.branch_id, forked.branch_id, seq)?;
            load_session(tx, &id)
        })
    }

    /// The session `id` was forked from, while that session exists.
    pub fn parent_session(&self, id: &str) -> Result<Option<String>> {
        Ok(self.session(id)?.parent_session)
    }

    /// Sessions forked directly from `id`, oldest first.
    pub fn child_sessions(&self, id: &str) -> Result<Vec<Session>> {
        validate_session_id(id)?;
        self.read(|tx| {
            require_head(tx, id)?;
            child_ids(tx, id)?
                .iter()
                .map(|child| load_session(tx, child))
                .collect()
        })
    }

    /// `id` and every session forked from it, recursively, read in one transaction.
    pub fn session_tree(&self, id: &str) -> Result<SessionTree> {
        validate_session_id(id)?;
        self.read(|tx| {
            let mut seen = HashSet::new();
            tree_of(tx, id, &mut seen, 0)
        })
    }

    /// Creates branch `name` in the session from its current history's messages
    /// `0..=at_index` (all when `None`). The head does not move; see [`Store::switch_branch`].
    pub fn create_branch(
        &self,
        session_id: &str,
        name: &str,
        at_index: Option<u64>,
    ) -> Result<Branch> {
        validate_session_id(session_id)?;
        validate_branch_name(name)?;
        self.write(|tx| {
            let head = require_head(tx, session_id)?;
            let seq = seq_for_index(session_id, &head, at_index)?;
            ensure_name_free(tx, session_id, name)?;
            let segments = lineage::segments(tx, head.branch_id, head.length)?;
            let now = now_text();
            let created = lineage::create_branch(
                tx,
                session_id,
                name,
                lineage::fork_point(&segments, seq),
                &now,
            )?;
            carry(tx, head.branch_id, created, seq)?;
            touch(tx, session_id)?;
            find_branch(tx, session_id, name)
        })
    }

    /// Makes branch `name` the session's head: its history becomes the current one. Works for
    /// superseded heads too, which brings them back (they are no longer eligible for prune).
    pub fn switch_branch(&self, session_id: &str, name: &str) -> Result<Session> {
        validate_session_id(session_id)?;
        self.write(|tx| {
            require_head(tx, session_id)?;
            let branch = branch_id(tx, session_id, name)?;
            let length = lineage::branch_length(tx, branch)?;
            let segments = lineage::segments(tx, branch, length)?;
            let head = Head {
                branch_id: branch,
                length,
                usage: lineage::usage_at(tx, &segments, length)?,
            };
            tx.execute(
                "UPDATE branches SET superseded_at = NULL WHERE id = ?1",
                args![branch],
            )?;
            let Step { version, now } = next_step(tx, session_id)?;
            save_head(tx, session_id, &head, version, &now)?;
            load_session(tx, session_id)
        })
    }

    /// The full history of branch `name` (head or not, superseded ones included), to read or
    /// compare a branch without switching to it.
    pub fn branch_history(&self, session_id: &str, name: &str) -> Result<History> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            let (_, version) =
                head_of(tx, session_id)?.ok_or_else(|| Error::not_found("session", session_id))?;
            let branch = branch_id(tx, session_id, name)?;
            let length = lineage::branch_length(tx, branch)?;
            let segments = lineage::segments(tx, branch, length)?;
            let messages = lineage::read_range(tx, &segments, 1, length)?;
            Ok(History::new(messages, version, length))
        })
    }

    /// The session's branches, oldest first, superseded ones included (flagged).
    pub fn branches(&self, session_id: &str) -> Result<Vec<Branch>> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            require_head(tx, session_id)?;
            branches_of(tx, session_id)
        })
    }

    /// Where branches `a` and `b` of the session diverge: how many leading messages they
    /// share (equal role, content, tool calls, metadata, usage and extra keys; times aside)
    /// and the messages of each after that. Both are read in one transaction.
    pub fn diff_branches(&self, session_id: &str, a: &str, b: &str) -> Result<BranchDiff> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            require_head(tx, session_id)?;
            let read = |name: &str| -> Result<Vec<crate::model::Message>> {
                let branch = branch_id(tx, session_id, name)?;
                let length = lineage::branch_length(tx, branch)?;
                let segments = lineage::segments(tx, branch, length)?;
                lineage::read_range(tx, &segments, 1, length)
            };
            let (mut left, mut right) = (read(a)?, read(b)?);
            let common = left
                .iter()
                .zip(&right)
                .take_while(|(x, y)| x.body == y.body)
                .count();
            let side = |name: &str, messages: &mut Vec<crate::model::Message>| BranchSide {
                branch: name.to_string(),
                length: messages.len() as u64,
                messages: messages.split_off(common),
            };
            Ok(BranchDiff {
                session_id: session_id.to_string(),
                common: common as u64,
                a: side(a, &mut left),
                b: side(b, &mut right),
            })
        })
    }

    /// Renames a branch. The new name must be valid and unused in the session.
    pub fn rename_branch(&self, session_id: &str, name: &str, new_name: &str) -> Result<Branch> {
        validate_session_id(session_id)?;
        validate_branch_name(new_name)?;
        self.write(|tx| {
            require_head(tx, session_id)?;
            let branch = branch_id(tx, session_id, name)?;
            ensure_name_free(tx, session_id, new_name)?;
            tx.execute(
                "UPDATE branches SET name = ?2 WHERE id = ?1",
                args![branch, new_name],
            )?;
            touch(tx, session_id)?;
            find_branch(tx, session_id, new_name)
        })
    }

    /// Deletes branch `name` (never the head). Like every destructive-looking operation it
    /// only marks the branch superseded: it stays readable under `<name>@<version>` until
    /// `prune` collects it, and forks or snapshots that need its messages keep them. Returns
    /// the branch under that new name.
    pub fn delete_branch(&self, session_id: &str, name: &str) -> Result<Branch> {
        validate_session_id(session_id)?;
        self.write(|tx| {
            let head = require_head(tx, session_id)?;
            let branch = branch_id(tx, session_id, name)?;
            if branch == head.branch_id {
                return Err(Error::invalid(format!(
                    "branch {name:?} is the head of session {session_id:?}: nothing was \
                     deleted; switch to another branch first (or `clear` the session to start \
                     an empty history)"
                )));
            }
            let version = touch(tx, session_id)?;
            let base = name.split('@').next().unwrap_or(name);
            let new_name = format!("{base}@{version}");
            tx.execute(
                "UPDATE branches SET name = ?2, superseded_at = coalesce(superseded_at, ?3)
                 WHERE id = ?1",
                args![branch, new_name, now_text()],
            )?;
            find_branch(tx, session_id, &new_name)
        })
    }

    /// Makes the history messages `0..=index`, as a new head. The replaced head stays
    /// readable as a superseded branch. Reverting to the last message changes nothing and
    /// writes nothing: no superseded copy, the version stays.
    pub fn revert_to_message(&self, session_id: &str, index: u64) -> Result<Session> {
        validate_session_id(session_id)?;
        self.write(|tx| {
            let head = require_head(tx, session_id)?;
            let seq = seq_for_index(session_id, &head, Some(index))?;
            if seq == head.length {
                return load_session(tx, session_id);
            }
            let segments = lineage::segments(tx, head.branch_id, head.length)?;
            let Step { version, now } = next_step(tx, session_id)?;
            let new_head = fork_new_head(
                tx,
                session_id,
                head.branch_id,
                &segments,
                seq,
                version,
                &now,
            )?;
            save_head(tx, session_id, &new_head, version, &now)?;
            load_session(tx, session_id)
        })
    }
}

/// The seq a new history that keeps messages `0..=at_index` ends at.
pub(crate) fn seq_for_index(session_id: &str, head: &Head, at_index: Option<u64>) -> Result<i64> {
    match at_index {
        None => Ok(head.length),
        Some(i) if (i as i128) < head.length as i128 => Ok(i as i64 + 1),
        Some(i) => Err(Error::invalid(format!(
            "message index {i} is past the end of session {session_id:?}, which has {} messages",
            head.length
        ))),
    }
}

const BRANCH_SELECT: &str = "SELECT b.name, l.length, b.fork_seq, b.created_at, b.superseded_at,
        p.name, p.session_id, b.id = s.head_branch_id
     FROM branches b
     JOIN branch_lengths l ON l.branch_id = b.id
     JOIN sessions s ON s.id = b.session_id
     LEFT JOIN branches p ON p.id = b.parent_branch_id";

fn branch_from_row(row: &Row<'_>) -> Result<Branch> {
    let fork_seq: i64 = row.get(2)?;
    let parent: Option<String> = row.get(5)?;
    Ok(Branch {
        name: row.get(0)?,
        length: row.get::<i64>(1)? as u64,
        fork_point: match parent {
            Some(branch) => Some(ForkPoint {
                session: row.get(6)?,
                branch,
                at_index: (fork_seq - 1).max(0) as u64,
            }),
            None => None,
        },
        created_at: parse_time(&row.get::<String>(3)?)?,
        superseded_at: row
            .get::<Option<String>>(4)?
            .map(|t| parse_time(&t))
            .transpose()?,
        is_head: row.get(7)?,
    })
}

/// The session's branches, oldest first, superseded ones included.
pub(crate) fn branches_of(tx: &Tx<'_>, session_id: &str) -> Result<Vec<Branch>> {
    tx.query_map(
        &format!("{BRANCH_SELECT} WHERE b.session_id = ?1 ORDER BY b.id"),
        args![session_id],
        branch_from_row,
    )
}

fn find_branch(tx: &Tx<'_>, session_id: &str, name: &str) -> Result<Branch> {
    tx.query_opt(
        &format!("{BRANCH_SELECT} WHERE b.session_id = ?1 AND b.name = ?2"),
        args![session_id, name],
        branch_from_row,
    )?
    .ok_or_else(|| Error::not_found("branch", name))
}

fn ensure_name_free(tx: &Tx<'_>, session_id: &str, name: &str) -> Result<()> {
    if branch_id(tx, session_id, name).is_ok() {
        return Err(Error::invalid(format!(
            "session {session_id:?} already has a branch named {name:?}"
        )));
    }
    Ok(())
}

fn child_ids(tx: &Tx<'_>, id: &str) -> Result<Vec<String>> {
    tx.query_map(
        "SELECT id FROM sessions WHERE parent_session_id = ?1 ORDER BY created_at, id",
        args![id],
        |r| r.get(0),
    )
}

fn tree_of(tx: &Tx<'_>, id: &str, seen: &mut HashSet<String>, depth: usize) -> Result<SessionTree> {
    let session = load_session(tx, id)?;
    let branches = branches_of(tx, id)?;
    seen.insert(id.to_string());
    let mut children = Vec::new();
    if depth < MAX_TREE_DEPTH {
        for child in child_ids(tx, id)? {
            if !seen.contains(&child) {
                children.push(tree_of(tx, &child, seen, depth + 1)?);
            }
        }
    }
    Ok(SessionTree {
        id: session.id,
        title: session.title,
        message_count: session.message_count,
        parent_session: session.parent_session,
        head_branch: session.head_branch,
        branches,
        children,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Usage;

    #[test]
    fn seq_for_index_refuses_indexes_past_the_end() {
        let head = Head {
            branch_id: 1,
            length: 3,
            usage: Usage::default(),
        };
        assert_eq!(seq_for_index("s", &head, None).unwrap(), 3);
        assert_eq!(seq_for_index("s", &head, Some(0)).unwrap(), 1);
        assert_eq!(seq_for_index("s", &head, Some(2)).unwrap(), 3);
        assert!(matches!(
            seq_for_index("s", &head, Some(3)),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            seq_for_index("s", &head, Some(u64::MAX)),
            Err(Error::InvalidInput(_))
        ));
    }
}
