//! The export format's types and the options and report of an import.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::compaction::Compaction;
use crate::error::{Error, Result};
use crate::heads::DEFAULT_BRANCH;
use crate::model::{Message, Metadata, NewMessage};
use crate::usage::UsageRecord;

/// The name and version an export file carries.
pub const EXPORT_FORMAT: &str = "sessiondb-export";
pub const EXPORT_VERSION: u32 = 1;

/// A whole export file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportFile {
    pub format: String,
    pub version: u32,
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
    pub exported_at: DateTime<Utc>,
    pub sessions: Vec<SessionExport>,
}

/// One session: its fields and current history, and with `--all-branches` every branch (full
/// histories) and snapshot.
///
/// What is kept beside a history's messages (usage records, LangGraph checkpoints and their
/// pending writes, compactions) comes in lists of their own, each entry naming its message by `index` in
/// that history: a reader that does not know them (version 1 files predate them) skips them
/// and reads the messages as before. Channel values are stored once per version, in the
/// session's `checkpoint_values`, which the checkpoints of every history refer to by index.
/// Bytes are standard base64 (with padding).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionExport {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub agent_name: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub parent_session: Option<String>,
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    #[serde(default = "default_branch")]
    pub head_branch: String,
    /// The current history.
    pub messages: Vec<Message>,
    /// Usage recorded against messages of the current history, by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage_records: Vec<UsageRecord>,
    /// The LangGraph checkpoints the current history shows, by the index of their message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoints: Vec<CheckpointExport>,
    /// The pending writes the current history shows for its checkpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoint_writes: Vec<CheckpointWriteExport>,
    /// The compactions recorded on the current history, oldest range first (the last is in
    /// effect): with them an import gives the same working view as the source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compactions: Vec<CompactionExport>,
    /// Every channel value a checkpoint of any history of the session reads, once each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoint_values: Vec<ChannelValueExport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branches: Option<Vec<BranchExport>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<Vec<SnapshotExport>>,
}

fn default_branch() -> String {
    DEFAULT_BRANCH.to_string()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BranchExport {
    pub name: String,
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(default, serialize_with = "crate::model::timestamp::serialize_option")]
    pub superseded_at: Option<DateTime<Utc>>,
    /// The branch's full history, inherited messages included.
    pub messages: Vec<Message>,
    /// As [`SessionExport::usage_records`], for this branch's history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage_records: Vec<UsageRecord>,
    /// As [`SessionExport::checkpoints`], for this branch's history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoints: Vec<CheckpointExport>,
    /// As [`SessionExport::checkpoint_writes`], for this branch's history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpoint_writes: Vec<CheckpointWriteExport>,
    /// As [`SessionExport::compactions`], for this branch's history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compactions: Vec<CompactionExport>,
}

/// A compaction recorded on a history ([`crate::Compaction`]): messages `0..=through_index`
/// are summarized by `summary`, which the working view shows at index `through_index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactionExport {
    pub through_index: u64,
    /// The summary message as `compact` was given it.
    pub summary: NewMessage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_after: Option<u64>,
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

impl From<Compaction> for CompactionExport {
    fn from(c: Compaction) -> Self {
        CompactionExport {
            through_index: c.through_index,
            summary: c.summary.body,
            tokens_before: c.tokens_before,
            tokens_after: c.tokens_after,
            created_at: c.created_at,
        }
    }
}

/// A LangGraph checkpoint a history shows, on the message that holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointExport {
    /// The index of its message in the history.
    pub index: u64,
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    #[serde(default)]
    pub parent_checkpoint_id: Option<String>,
    /// The serialiser's type name of `checkpoint`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The checkpoint without its channel values, base64.
    pub checkpoint: String,
    pub metadata: Metadata,
    /// The values it reads: indexes in the session's `checkpoint_values`, one per channel.
    pub channels: Vec<u64>,
}

/// One version of a channel's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelValueExport {
    pub channel: String,
    pub version: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Base64; absent for a value without bytes (LangGraph's `"empty"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
}

/// A task's pending write against a checkpoint of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointWriteExport {
    pub checkpoint_ns: String,
    pub checkpoint_id: String,
    pub task_id: String,
    pub idx: i64,
    pub channel: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Base64.
    pub bytes: String,
    #[serde(default)]
    pub task_path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotExport {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    pub branch: String,
    /// Messages of `branch` the snapshot pins.
    pub length: u64,
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

/// Most bytes of JSON one imported session may take: a whole PraisonAI session file, or one
/// element of an export's `sessions` array (an export itself is read one session at a time, so
/// its total size is not limited). Checked before the bytes are parsed; raise it per import
/// with [`ImportOptions::max_session_bytes`].
pub const MAX_IMPORT_SESSION_BYTES: u64 = 256 * 1024 * 1024;

/// How an import treats what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// Replace sessions that exist with another history or fields (default). When `false`,
    /// existing sessions are reported in [`ImportReport::skipped`] and nothing is written to
    /// them.
    pub overwrite: bool,
    /// Run every session's import in its transaction and roll it back: the report says what
    /// would happen, the file is left as it was.
    pub dry_run: bool,
    /// See [`MAX_IMPORT_SESSION_BYTES`], the default.
    pub max_session_bytes: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            overwrite: true,
            dry_run: false,
            max_session_bytes: MAX_IMPORT_SESSION_BYTES,
        }
    }
}

/// What an import did (or, with [`ImportOptions::dry_run`], would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Sessions that did not exist and were created.
    pub imported: u64,
    /// Sessions that existed with another history or fields; the history was replaced (the
    /// old one kept as a superseded branch).
    pub updated: u64,
    /// Ids of the updated sessions, in import order.
    #[serde(default)]
    pub updated_ids: Vec<String>,
    /// Sessions that existed exactly as imported.
    pub unchanged: u64,
    /// Sources skipped, each with the reason: nothing of them was written.
    pub skipped: Vec<SkippedSource>,
    /// Whether this was a dry run that wrote nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// A source an import left out: `{"source": …, "reason": …}` in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedSource {
    /// The file, or the session id inside an export or database.
    pub source: String,
    /// Why nothing of it was written.
    pub reason: String,
}

impl SkippedSource {
    pub(super) fn new(source: String, reason: impl Into<String>) -> Self {
        SkippedSource {
            source,
            reason: reason.into(),
        }
    }
}

/// Refuses a document whose header is not this format and version.
pub(super) fn check_header(format: Option<&str>, version: Option<u32>) -> Result<()> {
    if format == Some(EXPORT_FORMAT) && version == Some(EXPORT_VERSION) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "not a {EXPORT_FORMAT} version {EXPORT_VERSION} file (format {}, version {}); \
         format and version must come before sessions, as sessiondb export writes them",
        format.map_or("missing".to_string(), |f| format!("{f:?}")),
        version.map_or("missing".to_string(), |v| v.to_string()),
    )))
}
