//! Sessions, their branches and snapshots, as callers see them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::message::{Message, Usage};
use super::time::timestamp;
use super::validate::{check_field, check_json};
use super::Metadata;
use crate::error::{Error, Result};

/// A session as stored: identity, descriptive fields, totals and its current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub title: Option<String>,
    pub agent_name: Option<String>,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub metadata: Metadata,
    /// The session this one was forked from, while that session exists.
    pub parent_session: Option<String>,
    /// Name of the branch whose lineage is the current history.
    pub head_branch: String,
    pub message_count: u64,
    pub usage: Usage,
    /// One more with every write to the session; never repeats for an id within a file, even
    /// after the session is deleted and recreated.
    pub version: i64,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// Fields of a session to create. Every field is optional; a missing id is generated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewSession {
    pub id: Option<String>,
    pub title: Option<String>,
    pub agent_name: Option<String>,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub metadata: Metadata,
}

impl NewSession {
    pub fn with_id(id: impl Into<String>) -> Self {
        NewSession {
            id: Some(id.into()),
            ..Self::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_field("title", self.title.as_deref())?;
        check_field("agent_name", self.agent_name.as_deref())?;
        check_field("agent_id", self.agent_id.as_deref())?;
        check_field("user_id", self.user_id.as_deref())?;
        check_json("metadata", &self.metadata)
    }
}

/// Where a branch starts: it inherits the first `at_index + 1` messages of `branch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkPoint {
    /// The session owning the parent branch; `None` if that session was deleted.
    pub session: Option<String>,
    pub branch: String,
    pub at_index: u64,
}

/// A branch of a session: an append-only log whose history is its lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    pub name: String,
    /// Messages in the branch's full history, inherited ones included.
    pub length: u64,
    pub fork_point: Option<ForkPoint>,
    pub is_head: bool,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    /// When set, this branch is a former head replaced by `set_chat_history`, `clear`,
    /// `revert_to_message` or `restore_snapshot`, or a deleted branch. It stays readable (and
    /// `switch_branch` brings it back) until `prune` collects it after the retention window.
    #[serde(serialize_with = "timestamp::serialize_option")]
    pub superseded_at: Option<DateTime<Utc>>,
}

/// Identifies a snapshot within its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SnapshotId(pub i64);

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for SnapshotId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        s.parse()
            .map(SnapshotId)
            .map_err(|_| Error::invalid(format!("snapshot id {s:?} is not a number")))
    }
}

/// A named pointer to a session's history at one moment. Restoring it copies nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub session_id: String,
    pub label: Option<String>,
    pub metadata: Metadata,
    /// The branch the snapshot was taken on (its current name).
    pub branch: String,
    /// Number of messages it pins.
    pub length: u64,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

/// A session, its branches and the sessions forked from it, recursively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionTree {
    pub id: String,
    pub title: Option<String>,
    pub message_count: u64,
    /// The session this one was forked from, while that session exists.
    pub parent_session: Option<String>,
    /// Name of the branch whose lineage is the current history.
    pub head_branch: String,
    /// Every branch of the session, oldest first, superseded ones included (flagged).
    pub branches: Vec<Branch>,
    pub children: Vec<SessionTree>,
}

/// Where two branches of a session diverge, from [`crate::Store::diff_branches`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchDiff {
    pub session_id: String,
    /// How many leading messages the two histories share: they diverge at this index.
    pub common: u64,
    pub a: BranchSide,
    pub b: BranchSide,
}

/// One side of a [`BranchDiff`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchSide {
    pub branch: String,
    /// Messages in the branch's full history.
    pub length: u64,
    /// Its messages after the common prefix (indexes from `common` on).
    pub messages: Vec<Message>,
}

/// What [`crate::Store::prune`] removed (or, on a dry run, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub branches: u64,
    pub messages: u64,
    /// Bytes of message content, tool calls and metadata in the removed rows.
    pub bytes: u64,
}
