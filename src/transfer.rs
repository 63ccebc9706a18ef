//! Export to and import from sessiondb's JSON format, and the writer every importer uses.
//!
//! The format (`"format": "sessiondb-export", "version": 1`) is documented in README.md. An
//! export imported into an empty file and exported again is identical except for
//! `exported_at` and the snapshot ids, which are the new file's.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::lineage::{self, Head};
use crate::model::{
    check_field, check_json, validate_branch_name, validate_session_id, Message, Metadata,
    NewMessage, Session,
};
use crate::sessions::{first_version, head_of, DEFAULT_BRANCH};
use crate::store::Store;

/// The name and version an export file carries.
pub const EXPORT_FORMAT: &str = "sessiondb-export";
pub const EXPORT_VERSION: u32 = 1;

/// A whole export file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportFile {
    pub format: String,
    pub version: u32,
    pub exported_at: DateTime<Utc>,
    pub sessions: Vec<SessionExport>,
}

/// One session: its fields and current history, and with `--all-branches` every branch (full
/// histories) and snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default = "default_branch")]
    pub head_branch: String,
    /// The current history.
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branches: Option<Vec<BranchExport>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<Vec<SnapshotExport>>,
}

fn default_branch() -> String {
    DEFAULT_BRANCH.to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchExport {
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub superseded_at: Option<DateTime<Utc>>,
    /// The branch's full history, inherited messages included.
    pub messages: Vec<Message>,
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
    pub created_at: DateTime<Utc>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Sessions that did not exist and were created.
    pub imported: u64,
    /// Sessions that existed with another history or fields; the history was replaced (the
    /// old one kept as a superseded branch).
    pub updated: u64,
    /// Sessions that existed exactly as imported.
    pub unchanged: u64,
    /// Sources skipped, each with the reason: nothing of them was written.
    pub skipped: Vec<(String, String)>,
}

impl Store {
    /// Exports the sessions `ids` (every session when empty), oldest first. With
    /// `all_branches`, every branch and snapshot too. `progress(done, total)` is called as it
    /// goes.
    pub fn export(
        &self,
        ids: &[String],
        all_branches: bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ExportFile> {
        let ids: Vec<String> = if ids.is_empty() {
            self.read(|tx| {
                let mut stmt = tx.prepare("SELECT id FROM sessions ORDER BY created_at, id")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })?
        } else {
            ids.to_vec()
        };
        let mut sessions = Vec::with_capacity(ids.len());
        for (done, id) in ids.iter().enumerate() {
            sessions.push(self.export_session(id, all_branches)?);
            progress(done + 1, ids.len());
        }
        Ok(ExportFile {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            exported_at: Utc::now(),
            sessions,
        })
    }

    fn export_session(&self, id: &str, all_branches: bool) -> Result<SessionExport> {
        let session = self.session(id)?;
        let messages = self.chat_history_uncached(id, None)?.to_vec();
        let (branches, snapshots) = if all_branches {
            let mut branches = Vec::new();
            for b in self.branches(id)? {
                branches.push(BranchExport {
                    messages: self.branch_history(id, &b.name)?.to_vec(),
                    name: b.name,
                    created_at: b.created_at,
                    superseded_at: b.superseded_at,
                });
            }
            let snapshots = self
                .snapshots(id)?
                .into_iter()
                .map(|s| SnapshotExport {
                    label: s.label,
                    metadata: s.metadata,
                    branch: s.branch,
                    length: s.length,
                    created_at: s.created_at,
                })
                .collect();
            (Some(branches), Some(snapshots))
        } else {
            (None, None)
        };
        let Session {
            id,
            title,
            agent_name,
            agent_id,
            user_id,
            metadata,
            parent_session,
            head_branch,
            created_at,
            updated_at,
            ..
        } = session;
        Ok(SessionExport {
            id,
            title,
            agent_name,
            agent_id,
            user_id,
            metadata,
            parent_session,
            created_at,
            updated_at,
            head_branch,
            messages,
            branches,
            snapshots,
        })
    }

    /// Imports an export file (see [`Store::import_sessions`]).
    pub fn import_export(
        &self,
        file: &ExportFile,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportReport> {
        if file.format != EXPORT_FORMAT || file.version != EXPORT_VERSION {
            return Err(Error::invalid(format!(
                "not a {EXPORT_FORMAT} version {EXPORT_VERSION} file (format {:?}, version {})",
                file.format, file.version
            )));
        }
        self.import_sessions(
            file.sessions.iter().map(|s| (s.id.clone(), Ok(s.clone()))),
            progress,
        )
    }

    /// Imports sessions, each in one transaction. A session that does not exist is created
    /// with its branches, snapshots and original timestamps. One whose current history is
    /// already the imported one is left alone, so importing twice changes nothing; one with
    /// another history gets the imported one through `set_chat_history` (the old one stays
    /// as a superseded branch). Sources that fail (`Err` items, invalid content) are
    /// reported in [`ImportReport::skipped`] and nothing of them is written.
    pub fn import_sessions(
        &self,
        sessions: impl IntoIterator<Item = (String, Result<SessionExport>)>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportReport> {
        let sessions: Vec<(String, Result<SessionExport>)> = sessions.into_iter().collect();
        let mut report = ImportReport::default();
        let mut parents = Vec::new();
        for (done, (source, session)) in sessions.iter().enumerate() {
            let outcome = session
                .as_ref()
                .map_err(|e| Error::invalid(e.to_string()))
                .and_then(|s| self.import_one(s).map(|o| (o, s)));
            match outcome {
                Ok((outcome, s)) => {
                    match outcome {
                        Outcome::Imported => report.imported += 1,
                        Outcome::Updated => report.updated += 1,
                        Outcome::Unchanged => report.unchanged += 1,
                    }
                    if let Some(parent) = &s.parent_session {
                        parents.push((s.id.clone(), parent.clone()));
                    }
                }
                Err(e) => report.skipped.push((source.clone(), e.to_string())),
            }
            progress(done + 1, sessions.len());
        }
        // Parent links, once every session of the import exists.
        self.write(|tx| {
            let mut link = tx.prepare(
                "UPDATE sessions SET parent_session_id = ?2
                 WHERE id = ?1 AND parent_session_id IS NULL
                   AND EXISTS (SELECT 1 FROM sessions WHERE id = ?2) AND ?1 != ?2",
            )?;
            for (child, parent) in &parents {
                link.execute(params![child, parent])?;
            }
            Ok(())
        })?;
        Ok(report)
    }

    fn import_one(&self, image: &SessionExport) -> Result<Outcome> {
        validate_session_id(&image.id)?;
        if self.session_exists(&image.id)? {
            let current = self.chat_history_uncached(&image.id, None)?;
            let wanted: Vec<NewMessage> = image.messages.iter().map(|m| m.body.clone()).collect();
            let same_history = current.iter().map(|m| &m.body).eq(wanted.iter());
            let session = self.session(&image.id)?;
            let same_fields = session.title == image.title && session.metadata == image.metadata;
            if same_history && same_fields {
                return Ok(Outcome::Unchanged);
            }
            if !same_history {
                self.set_chat_history_at_version(&image.id, &wanted, current.version())?;
            }
            if !same_fields {
                self.set_title(&image.id, image.title.as_deref())?;
                let mut patch: Metadata = session
                    .metadata
                    .keys()
                    .map(|k| (k.clone(), Value::Null))
                    .collect();
                patch.extend(image.metadata.clone());
                self.update_metadata(&image.id, patch)?;
            }
            return Ok(Outcome::Updated);
        }
        self.write(|tx| write_image(tx, image))?;
        Ok(Outcome::Imported)
    }
}

enum Outcome {
    Imported,
    Updated,
    Unchanged,
}

/// Writes a session that does not exist yet, exactly as described: branches share the rows
/// of their longest common prefix (with each other, and with the parent session's current
/// history when it exists) instead of copying them.
fn write_image(tx: &Transaction<'_>, image: &SessionExport) -> Result<()> {
    for field in [
        &image.title,
        &image.agent_name,
        &image.agent_id,
        &image.user_id,
    ] {
        check_field("session field", field.as_deref())?;
    }
    check_json("metadata", &image.metadata)?;
    let single;
    let branches: &[BranchExport] = match &image.branches {
        Some(branches) => branches,
        None => {
            single = [BranchExport {
                name: image.head_branch.clone(),
                created_at: image.created_at,
                superseded_at: None,
                messages: image.messages.clone(),
            }];
            &single
        }
    };
    let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    tx.prepare_cached(
        "INSERT INTO sessions (id, title, agent_name, agent_id, user_id, metadata,
             head_branch_id, version, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, ?7, ?8)",
    )?
    .execute(params![
        image.id,
        image.title,
        image.agent_name,
        image.agent_id,
        image.user_id,
        Value::Object(image.metadata.clone()).to_string(),
        time(&image.created_at),
        time(&image.updated_at),
    ])?;

    // (branch id, full history) of what is written so far, plus the parent's history.
    let mut written: Vec<(i64, Vec<Message>)> = Vec::new();
    if let Some(parent) = &image.parent_session {
        if let Some((head, _)) = head_of(tx, parent)? {
            let segments = lineage::segments(tx, head.branch_id, head.length)?;
            written.push((
                head.branch_id,
                lineage::read_range(tx, &segments, 1, head.length)?,
            ));
        }
    }
    // Versions count up from the largest name: leave them room.
    const MAX_IMPORTED_VERSION: i64 = 1 << 53;
    let mut ids: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut max_superseded_version = 0;
    for branch in branches {
        if branch.superseded_at.is_some() {
            // Superseded heads are named `<name>@<version>`: keep the name, and keep the
            // version counter past it so a later supersede cannot pick the same name.
            let (base, n) = branch.name.rsplit_once('@').unwrap_or((&branch.name, ""));
            validate_branch_name(base)?;
            let version = n.parse::<i64>().unwrap_or(0);
            if version > MAX_IMPORTED_VERSION {
                return Err(Error::invalid(format!(
                    "branch {:?}: version {version} is too large",
                    branch.name
                )));
            }
            max_superseded_version = max_superseded_version.max(version);
        } else {
            validate_branch_name(&branch.name)?;
        }
        if ids.contains_key(branch.name.as_str()) {
            return Err(Error::invalid(format!(
                "branch {:?} appears twice",
                branch.name
            )));
        }
        let (from, shared) = written
            .iter()
            .map(|(id, history)| {
                let common = history
                    .iter()
                    .zip(&branch.messages)
                    .take_while(|(a, b)| a.body == b.body && a.created_at == b.created_at)
                    .count();
                (Some(*id), common)
            })
            .max_by_key(|(_, common)| *common)
            .unwrap_or((None, 0));
        let fork = match from {
            Some(id) if shared > 0 => {
                let segments = lineage::segments(tx, id, shared as i64)?;
                lineage::fork_point(&segments, shared as i64)
            }
            _ => None,
        };
        let created = time(&branch.created_at);
        let id = lineage::create_branch(tx, &image.id, &branch.name, fork, &created)?;
        let segments = lineage::segments(tx, id, shared as i64)?;
        let mut head = Head {
            branch_id: id,
            length: shared as i64,
            usage: lineage::usage_at(tx, &segments, shared as i64)?,
        };
        let times: Vec<String> = branch.messages[shared..]
            .iter()
            .map(|m| time(&m.created_at))
            .collect();
        lineage::append_dated(
            tx,
            &mut head,
            branch.messages[shared..]
                .iter()
                .map(|m| &m.body)
                .zip(times.iter().map(String::as_str)),
        )?;
        if let Some(at) = &branch.superseded_at {
            tx.prepare_cached("UPDATE branches SET superseded_at = ?2 WHERE id = ?1")?
                .execute(params![id, time(at)])?;
        }
        ids.insert(&branch.name, (id, head.length));
        written.push((id, branch.messages.clone()));
    }

    let &(head_id, length) = ids.get(image.head_branch.as_str()).ok_or_else(|| {
        Error::invalid(format!(
            "head branch {:?} is not among the branches",
            image.head_branch
        ))
    })?;
    if let Some(current) = written.iter().find(|(id, _)| *id == head_id) {
        let bodies = |ms: &[Message]| ms.iter().map(|m| m.body.clone()).collect::<Vec<_>>();
        if bodies(&current.1) != bodies(&image.messages) {
            return Err(Error::invalid(format!(
                "messages differ from the history of head branch {:?}",
                image.head_branch
            )));
        }
    }
    for snapshot in image.snapshots.iter().flatten() {
        let &(branch, branch_len) = ids.get(snapshot.branch.as_str()).ok_or_else(|| {
            Error::invalid(format!("snapshot of unknown branch {:?}", snapshot.branch))
        })?;
        if snapshot.length as i64 > branch_len {
            return Err(Error::invalid(format!(
                "snapshot pins {} messages of branch {:?}, which has {branch_len}",
                snapshot.length, snapshot.branch
            )));
        }
        check_field("label", snapshot.label.as_deref())?;
        check_json("metadata", &snapshot.metadata)?;
        tx.prepare_cached(
            "INSERT INTO snapshots (session_id, label, metadata, branch_id, seq, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            image.id,
            snapshot.label,
            Value::Object(snapshot.metadata.clone()).to_string(),
            branch,
            snapshot.length as i64,
            time(&snapshot.created_at),
        ])?;
    }

    tx.prepare_cached("UPDATE version_clock SET version = max(version, ?1) WHERE id = 1")?
        .execute([max_superseded_version])?;
    let segments = lineage::segments(tx, head_id, length)?;
    let usage = lineage::usage_at(tx, &segments, length)?;
    let version = first_version(tx)?;
    tx.prepare_cached(
        "UPDATE sessions SET head_branch_id = ?2, head_since = ?7, message_count = ?3,
             input_tokens = ?4, output_tokens = ?5, cost = ?6, version = ?7 WHERE id = ?1",
    )?
    .execute(params![
        image.id,
        head_id,
        length,
        usage.input_tokens as i64,
        usage.output_tokens as i64,
        usage.cost,
        version
    ])?;
    Ok(())
}
