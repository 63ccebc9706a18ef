//! The JSON of outcomes the library returns no value for (what was deleted, where a backup
//! went) or wraps (a page of sessions and how many follow). Printed with
//! [`super::json_sorted`], so keys keep the alphabetical order they always had.

use serde::Serialize;
use sessiondb::{Message, RestoreReport, SessionPage, SnapshotId};

/// `sessiondb sessions --json`.
#[derive(Serialize)]
pub struct Listing<'a> {
    #[serde(flatten)]
    pub page: &'a SessionPage,
    /// Sessions after this page.
    pub more: u64,
}

/// `sessiondb delete --json`.
#[derive(Serialize)]
pub struct Deleted<'a> {
    pub deleted: &'a str,
}

/// `sessiondb snapshot delete --json`.
#[derive(Serialize)]
pub struct SnapshotDeleted<'a> {
    pub session_id: &'a str,
    pub deleted: SnapshotId,
}

/// `sessiondb backup --json`.
#[derive(Serialize)]
pub struct BackedUp {
    pub path: String,
    pub bytes: u64,
}

/// The stderr line of `history --json` that cut tool results off its start.
#[derive(Serialize)]
pub struct Trimmed {
    pub trimmed_tool_results: usize,
}

/// `sessiondb restore --json`.
#[derive(Serialize)]
pub struct Restored<'a> {
    #[serde(flatten)]
    pub report: &'a RestoreReport,
    /// Where the replaced contents were backed up; `null` with `--no-backup`.
    pub kept_backup: Option<String>,
}

/// `sessiondb add --json`: the message as stored, and whether it already was (a retry with
/// the same key wrote nothing).
#[derive(Serialize)]
pub struct Added<'a> {
    #[serde(flatten)]
    pub message: &'a Message,
    pub already_stored: bool,
}
