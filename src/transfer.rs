//! Export to and import from sessiondb's JSON format, and the writer every importer uses.
//!
//! The format (`"format": "sessiondb-export", "version": 1`) is documented in README.md. An
//! export imported into an empty file and exported again is identical except for
//! `exported_at` and the snapshot ids, which are the new file's.

use std::cell::Cell;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache::Entry;
use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::heads::{first_version, head_of, touch, DEFAULT_BRANCH};
use crate::lineage::{self, Head};
use crate::model::{
    check_field, check_json, validate_branch_name, validate_session_id, Message, Metadata,
    NewMessage, Session,
};
use crate::sessions::load_session;
use crate::store::Store;

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
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
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
    #[serde(serialize_with = "crate::model::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(default, serialize_with = "crate::model::timestamp::serialize_option")]
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
    fn new(source: String, reason: impl Into<String>) -> Self {
        SkippedSource {
            source,
            reason: reason.into(),
        }
    }
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
                tx.query_map(
                    "SELECT id FROM sessions ORDER BY created_at, id",
                    args![],
                    |r| r.get(0),
                )
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
        // The full history: a compacted session's working view would lose what it summarizes.
        let messages = self.full_history(id)?.to_vec();
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

    /// Imports an export already in memory (see [`Store::import_sessions`]). To import a
    /// file, prefer [`Store::import_export_file`], which reads it one session at a time.
    pub fn import_export(
        &self,
        file: &ExportFile,
        options: &ImportOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportReport> {
        check_header(Some(&file.format), Some(file.version))?;
        let total = file.sessions.iter().map(|s| s.messages.len()).sum();
        let mut importer = Importer::new(self, options, total, progress);
        for session in &file.sessions {
            importer.add(session.id.clone(), Ok(session.clone()))?;
        }
        Ok(importer.finish())
    }

    /// Imports a sessiondb export file, reading and importing one session at a time, so memory
    /// follows the largest session rather than the file. `format` and `version` must come
    /// before `sessions` in the document, as `sessiondb export` writes them: a file of another
    /// format is refused before anything is written. A session whose JSON exceeds
    /// [`ImportOptions::max_session_bytes`], or that is not valid export JSON, stops the
    /// import with [`Error::InvalidInput`] naming it; the sessions before it stay imported,
    /// each whole. `progress(messages, 0)` counts the messages imported so far.
    pub fn import_export_file(
        &self,
        path: &Path,
        options: &ImportOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportReport> {
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let meter = Rc::new(Meter {
            used: Cell::new(0),
            limit: Cell::new(u64::MAX),
            max: options.max_session_bytes,
            exceeded: Cell::new(false),
            session: Cell::new(None),
        });
        let reader = Metered {
            inner: BufReader::new(file),
            meter: meter.clone(),
        };
        let mut importer = Importer::new(self, options, 0, progress);
        let mut failure = None;
        let mut de = serde_json::Deserializer::from_reader(reader);
        let parsed = de::Deserializer::deserialize_map(
            &mut de,
            ExportVisitor {
                importer: &mut importer,
                meter: &meter,
                failure: &mut failure,
            },
        )
        .and_then(|()| de.end());
        if let Some(err) = failure {
            return Err(err);
        }
        let place = match meter.session.get() {
            Some(i) => format!("session {i} of the sessions array"),
            None => "the document".to_string(),
        };
        if meter.exceeded.get() {
            return Err(Error::invalid(format!(
                "{}: {place} takes more than the limit of {} bytes of JSON \
                 (max_session_bytes); nothing of it was written",
                path.display(),
                options.max_session_bytes
            )));
        }
        if let Err(e) = parsed {
            return Err(Error::invalid(format!(
                "{}: not a sessiondb export ({place}): {e}",
                path.display()
            )));
        }
        Ok(importer.finish())
    }

    /// Imports sessions, each in one `BEGIN IMMEDIATE` transaction that reads what it needs
    /// inside it, so concurrent importers of the same sessions get typed outcomes and a kill
    /// at any moment leaves each session absent or whole. A session that does not exist is
    /// created with its branches, snapshots, original timestamps and its parent link (a
    /// parent imported later in the same import links it in its own transaction). One whose
    /// current history and fields are already the imported ones is left alone, so importing
    /// twice changes nothing; one with another history gets the imported one the way
    /// [`Store::set_chat_history`] would (the old one stays as a superseded branch), with its
    /// title and metadata, in the same transaction. Sources that fail (`Err` items, invalid
    /// content) are reported in [`ImportReport::skipped`] and nothing of them is written;
    /// other errors (busy, disk full, read-only …) stop the import and are returned.
    /// `progress(messages done, messages total or 0)` is called after each session.
    pub fn import_sessions(
        &self,
        sessions: impl IntoIterator<Item = (String, Result<SessionExport>)>,
        options: &ImportOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportReport> {
        self.import_counted(sessions, 0, options, progress)
    }

    pub(crate) fn import_counted(
        &self,
        sessions: impl IntoIterator<Item = (String, Result<SessionExport>)>,
        total_messages: usize,
        options: &ImportOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportReport> {
        let mut importer = Importer::new(self, options, total_messages, progress);
        for (source, session) in sessions {
            importer.add(source, session)?;
        }
        Ok(importer.finish())
    }

    /// One session's import, in one transaction (rolled back on a dry run). `children` are
    /// sessions imported earlier that name this one as their parent.
    fn import_one(
        &self,
        image: SessionExport,
        options: &ImportOptions,
        children: &[String],
    ) -> Result<Imported> {
        validate_session_id(&image.id)?;
        let id = image.id.clone();
        let parent = image.parent_session.clone().filter(|p| *p != id);
        let (outcome, entry, parent_pending) = self.write(|tx| {
            if options.dry_run {
                tx.execute_batch("SAVEPOINT import_dry_run")?;
            }
            let result = (|| {
                let (outcome, entry) = match head_of(tx, &id)? {
                    None => {
                        write_image(tx, &image)?;
                        (Outcome::Imported, None)
                    }
                    Some(_) if !options.overwrite => return Ok((Outcome::Exists, None, false)),
                    Some(_) => self.update_in(tx, image)?,
                };
                for child in children {
                    link_parent(tx, child, &id)?;
                }
                let parent_pending = match &parent {
                    Some(parent) => tx.query_one(
                        "SELECT parent_session_id IS NULL
                                    AND NOT EXISTS (SELECT 1 FROM sessions WHERE id = ?2)
                             FROM sessions WHERE id = ?1",
                        args![id, parent],
                        |r| r.get(0),
                    )?,
                    None => false,
                };
                Ok((outcome, entry, parent_pending))
            })();
            if options.dry_run {
                tx.execute_batch("ROLLBACK TO import_dry_run; RELEASE import_dry_run")?;
            }
            result
        })?;
        if let (Some(entry), false) = (entry, options.dry_run) {
            self.cache().store(&id, entry);
        }
        Ok(Imported {
            outcome,
            parent_pending: parent.filter(|_| parent_pending && !options.dry_run),
        })
    }

    /// Brings an existing session to `image`: parent link, title, metadata, then the history
    /// (last, so the returned cache entry carries the final version).
    fn update_in(&self, tx: &Tx<'_>, image: SessionExport) -> Result<(Outcome, Option<Entry>)> {
        let SessionExport {
            id,
            title,
            metadata,
            parent_session,
            messages,
            ..
        } = image;
        let session = load_session(tx, &id)?;
        let linked = match (&session.parent_session, &parent_session) {
            (None, Some(parent)) => link_parent(tx, &id, parent)?,
            _ => false,
        };
        let fields_changed = session.title != title || session.metadata != metadata;
        if fields_changed {
            check_field("title", title.as_deref())?;
            check_json("metadata", &metadata)?;
            tx.execute(
                "UPDATE sessions SET title = ?2, metadata = ?3 WHERE id = ?1",
                args![id, title, Value::Object(metadata).to_string()],
            )?;
            touch(tx, &id)?;
        }
        let wanted: Vec<NewMessage> = messages.into_iter().map(Message::into_dated).collect();
        let (change, entry) = self.replace_in(tx, &id, &wanted, None)?;
        let changed = linked || fields_changed || change.written > 0 || change.superseded;
        let outcome = if changed {
            Outcome::Updated
        } else {
            Outcome::Unchanged
        };
        Ok((outcome, Some(entry)))
    }
}

/// Sets `child`'s parent link if it has none and `parent` exists; bumps the child's version
/// but keeps its `updated_at` (an imported session keeps its original times).
fn link_parent(tx: &Tx<'_>, child: &str, parent: &str) -> Result<bool> {
    let changed = tx.execute(
        "UPDATE sessions SET parent_session_id = ?2, version = version + 1
             WHERE id = ?1 AND parent_session_id IS NULL AND ?1 != ?2
               AND EXISTS (SELECT 1 FROM sessions WHERE id = ?2)",
        args![child, parent],
    )?;
    Ok(changed > 0)
}

fn check_header(format: Option<&str>, version: Option<u32>) -> Result<()> {
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

enum Outcome {
    Imported,
    Updated,
    Unchanged,
    /// Exists, and the import does not overwrite.
    Exists,
}

struct Imported {
    outcome: Outcome,
    /// The parent this session names but that does not exist yet.
    parent_pending: Option<String>,
}

/// The state of one import run: the report so far, and the sessions waiting for their parent.
struct Importer<'a> {
    store: &'a Store,
    options: ImportOptions,
    report: ImportReport,
    /// Parent id → sessions imported before it that name it; linked in the parent's
    /// transaction, so no final pass is needed.
    orphans: HashMap<String, Vec<String>>,
    messages_done: usize,
    messages_total: usize,
    progress: &'a mut dyn FnMut(usize, usize),
}

impl<'a> Importer<'a> {
    fn new(
        store: &'a Store,
        options: &ImportOptions,
        messages_total: usize,
        progress: &'a mut dyn FnMut(usize, usize),
    ) -> Self {
        Importer {
            store,
            options: *options,
            report: ImportReport {
                dry_run: options.dry_run,
                ..ImportReport::default()
            },
            orphans: HashMap::new(),
            messages_done: 0,
            messages_total,
            progress,
        }
    }

    fn add(&mut self, source: String, session: Result<SessionExport>) -> Result<()> {
        let image = match session {
            Ok(image) => image,
            Err(e) => {
                self.report
                    .skipped
                    .push(SkippedSource::new(source, e.to_string()));
                return Ok(());
            }
        };
        let messages = image.messages.len();
        let id = image.id.clone();
        let children = self.orphans.get(&id).cloned().unwrap_or_default();
        match self.store.import_one(image, &self.options, &children) {
            Ok(Imported {
                outcome,
                parent_pending,
            }) => {
                match outcome {
                    Outcome::Imported => self.report.imported += 1,
                    Outcome::Updated => {
                        self.report.updated += 1;
                        self.report.updated_ids.push(id.clone());
                    }
                    Outcome::Unchanged => self.report.unchanged += 1,
                    Outcome::Exists => self.report.skipped.push(SkippedSource::new(
                        source,
                        format!("session {id:?} exists and the import does not overwrite"),
                    )),
                }
                if !self.options.dry_run {
                    self.orphans.remove(&id);
                }
                if let Some(parent) = parent_pending {
                    self.orphans.entry(parent).or_default().push(id);
                }
            }
            // The source is at fault: report it and go on.
            Err(e @ (Error::InvalidInput(_) | Error::NotFound { .. })) => {
                self.report
                    .skipped
                    .push(SkippedSource::new(source, e.to_string()));
            }
            Err(e) => return Err(e),
        }
        self.messages_done += messages;
        (self.progress)(
            self.messages_done,
            self.messages_total.max(self.messages_done),
        );
        Ok(())
    }

    fn finish(self) -> ImportReport {
        self.report
    }
}

/// Bytes the JSON parser has taken from the file, and the limit for the value being parsed.
struct Meter {
    used: Cell<u64>,
    limit: Cell<u64>,
    max: u64,
    exceeded: Cell<bool>,
    /// Index of the session being parsed, for error messages.
    session: Cell<Option<usize>>,
}

impl Meter {
    /// The next value may take `max` bytes from here.
    fn restart(&self) {
        self.limit.set(self.used.get().saturating_add(self.max));
    }
}

/// A reader that fails once the value being parsed exceeds its byte budget, so an oversized
/// session is refused before it is held in memory.
struct Metered<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let used = self.meter.used.get() + n as u64;
        self.meter.used.set(used);
        if used > self.meter.limit.get() {
            self.meter.exceeded.set(true);
            return Err(std::io::Error::other("over the size limit"));
        }
        Ok(n)
    }
}

/// The top-level object of an export: header keys first, then each session imported as it is
/// parsed. Import errors are kept in `failure` (serde can only carry a message).
struct ExportVisitor<'v, 'a> {
    importer: &'v mut Importer<'a>,
    meter: &'v Meter,
    failure: &'v mut Option<Error>,
}

impl<'de> Visitor<'de> for ExportVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sessiondb export object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let (mut format, mut version, mut sessions) = (None::<String>, None::<u32>, false);
        while let Some(key) = map.next_key::<String>()? {
            self.meter.restart();
            match key.as_str() {
                "format" => format = Some(map.next_value()?),
                "version" => version = Some(map.next_value()?),
                "sessions" if !sessions => {
                    if let Err(e) = check_header(format.as_deref(), version) {
                        let message = e.to_string();
                        *self.failure = Some(e);
                        return Err(de::Error::custom(message));
                    }
                    map.next_value_seed(SessionsSeed {
                        importer: &mut *self.importer,
                        meter: self.meter,
                        failure: &mut *self.failure,
                    })?;
                    sessions = true;
                }
                "sessions" => return Err(de::Error::duplicate_field("sessions")),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !sessions {
            return Err(de::Error::missing_field("sessions"));
        }
        Ok(())
    }
}

struct SessionsSeed<'v, 'a> {
    importer: &'v mut Importer<'a>,
    meter: &'v Meter,
    failure: &'v mut Option<Error>,
}

impl<'de> DeserializeSeed<'de> for SessionsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SessionsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of sessions")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        for index in 0.. {
            self.meter.session.set(Some(index));
            self.meter.restart();
            let Some(session) = seq.next_element::<SessionExport>()? else {
                break;
            };
            if let Err(e) = self.importer.add(session.id.clone(), Ok(session)) {
                let message = e.to_string();
                *self.failure = Some(e);
                return Err(de::Error::custom(message));
            }
        }
        self.meter.session.set(None);
        Ok(())
    }
}

/// One branch of a session being written.
struct BranchImage<'m> {
    name: &'m str,
    created_at: &'m DateTime<Utc>,
    superseded_at: Option<&'m DateTime<Utc>>,
    messages: &'m [Message],
}

/// Writes a session that does not exist yet, exactly as described: branches share the rows
/// of their longest common prefix (with each other, and with the parent session's current
/// history when it exists) instead of copying them.
fn write_image(tx: &Tx<'_>, image: &SessionExport) -> Result<()> {
    for field in [
        &image.title,
        &image.agent_name,
        &image.agent_id,
        &image.user_id,
    ] {
        check_field("session field", field.as_deref())?;
    }
    check_json("metadata", &image.metadata)?;
    let branches: Vec<BranchImage<'_>> = match &image.branches {
        Some(branches) => branches
            .iter()
            .map(|b| BranchImage {
                name: &b.name,
                created_at: &b.created_at,
                superseded_at: b.superseded_at.as_ref(),
                messages: &b.messages,
            })
            .collect(),
        None => vec![BranchImage {
            name: &image.head_branch,
            created_at: &image.created_at,
            superseded_at: None,
            messages: &image.messages,
        }],
    };
    let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    let parent = match &image.parent_session {
        Some(parent) if *parent != image.id => head_of(tx, parent)?.map(|(head, _)| head),
        _ => None,
    };
    tx.execute(
        "INSERT INTO sessions (id, title, agent_name, agent_id, user_id, metadata,
             parent_session_id, head_branch_id, version, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, ?8, ?9)",
        args![
            image.id,
            image.title,
            image.agent_name,
            image.agent_id,
            image.user_id,
            Value::Object(image.metadata.clone()).to_string(),
            parent.and(image.parent_session.as_deref()),
            time(&image.created_at),
            time(&image.updated_at),
        ],
    )?;

    // Histories to share rows with: the parent's current one, then each branch written.
    let parent_history = match parent {
        Some(head) => {
            let segments = lineage::segments(tx, head.branch_id, head.length)?;
            Some((
                head.branch_id,
                lineage::read_range(tx, &segments, 1, head.length)?,
            ))
        }
        None => None,
    };
    let mut shared_rows = Prefixes::default();
    // Alone, a branch has nothing to share with: skip the hashing.
    let sharing = branches.len() > 1 || parent_history.is_some();
    if let Some((id, history)) = &parent_history {
        shared_rows.add(*id, history);
    }
    let mut written: Vec<(i64, &[Message])> = Vec::new();
    // Versions count up from the largest name: leave them room.
    const MAX_IMPORTED_VERSION: i64 = 1 << 53;
    let mut ids: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut max_superseded_version = 0;
    for (n, branch) in branches.iter().enumerate() {
        if branch.superseded_at.is_some() {
            // Superseded heads are named `<name>@<version>`: keep the name, and keep the
            // version counter past it so a later supersede cannot pick the same name.
            let (base, v) = branch.name.rsplit_once('@').unwrap_or((branch.name, ""));
            validate_branch_name(base)?;
            let version = v.parse::<i64>().unwrap_or(0);
            if version > MAX_IMPORTED_VERSION {
                return Err(Error::invalid(format!(
                    "branch {:?}: version {version} is too large",
                    branch.name
                )));
            }
            max_superseded_version = max_superseded_version.max(version);
        } else {
            validate_branch_name(branch.name)?;
        }
        if ids.contains_key(branch.name) {
            return Err(Error::invalid(format!(
                "branch {:?} appears twice",
                branch.name
            )));
        }
        let (from, shared) = if sharing {
            match shared_rows.longest(branch.messages) {
                Some((id, _)) => {
                    // Check the candidate message by message: a hash match is not proof.
                    let theirs: &[Message] = match &parent_history {
                        Some((pid, history)) if *pid == id => history,
                        _ => written
                            .iter()
                            .find(|(wid, _)| *wid == id)
                            .map_or(&[], |(_, m)| *m),
                    };
                    (Some(id), common_prefix(theirs, branch.messages))
                }
                None => (None, 0),
            }
        } else {
            (None, 0)
        };
        let fork = match from {
            Some(id) if shared > 0 => {
                let segments = lineage::segments(tx, id, shared as i64)?;
                lineage::fork_point(&segments, shared as i64)
            }
            _ => None,
        };
        let created = time(branch.created_at);
        let id = lineage::create_branch(tx, &image.id, branch.name, fork, &created)?;
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
        if let Some(at) = branch.superseded_at {
            tx.execute(
                "UPDATE branches SET superseded_at = ?2 WHERE id = ?1",
                args![id, time(at)],
            )?;
        }
        ids.insert(branch.name, (id, head.length));
        if sharing && n + 1 < branches.len() {
            shared_rows.add(id, branch.messages);
        }
        written.push((id, branch.messages));
    }
    drop(parent_history);

    let &(head_id, length) = ids.get(image.head_branch.as_str()).ok_or_else(|| {
        Error::invalid(format!(
            "head branch {:?} is not among the branches",
            image.head_branch
        ))
    })?;
    if let Some((_, history)) = written.iter().find(|(id, _)| *id == head_id) {
        if !history
            .iter()
            .map(|m| &m.body)
            .eq(image.messages.iter().map(|m| &m.body))
        {
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
        if snapshot.length > branch_len as u64 {
            return Err(Error::invalid(format!(
                "snapshot pins {} messages of branch {:?}, which has {branch_len}",
                snapshot.length, snapshot.branch
            )));
        }
        check_field("label", snapshot.label.as_deref())?;
        check_json("metadata", &snapshot.metadata)?;
        tx.execute(
            "INSERT INTO snapshots (session_id, label, metadata, branch_id, seq, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            args![
                image.id,
                snapshot.label,
                Value::Object(snapshot.metadata.clone()).to_string(),
                branch,
                snapshot.length as i64,
                time(&snapshot.created_at),
            ],
        )?;
    }

    tx.execute(
        tx.pick(
            "UPDATE version_clock SET version = max(version, ?1) WHERE id = 1",
            "UPDATE version_clock SET version = GREATEST(version, ?1) WHERE id = 1",
        ),
        args![max_superseded_version],
    )?;
    let segments = lineage::segments(tx, head_id, length)?;
    let usage = lineage::usage_at(tx, &segments, length)?;
    let version = first_version(tx)?;
    tx.execute(
        "UPDATE sessions SET head_branch_id = ?2, head_since = ?7, message_count = ?3,
             input_tokens = ?4, output_tokens = ?5, cost = ?6, version = ?7 WHERE id = ?1",
        args![
            image.id,
            head_id,
            length,
            usage.input_tokens as i64,
            usage.output_tokens as i64,
            usage.cost,
            version
        ],
    )?;
    Ok(())
}

/// Messages two histories share from the start (same content and time, so a shared row is
/// exactly what each imported branch says).
fn common_prefix(a: &[Message], b: &[Message]) -> usize {
    a.iter()
        .zip(b)
        .take_while(|(a, b)| a.body == b.body && a.created_at == b.created_at)
        .count()
}

/// Every prefix of the histories written so far, by (length, running hash) → branch, so the
/// longest prefix a new branch shares with any of them is found in one pass over it instead
/// of comparing it with each (branches × history).
#[derive(Default)]
struct Prefixes(HashMap<(usize, u64), i64>);

impl Prefixes {
    fn add(&mut self, branch: i64, history: &[Message]) {
        for (n, hash) in running_hashes(history).enumerate() {
            self.0.entry((n + 1, hash)).or_insert(branch);
        }
    }

    /// The branch whose history seems to share the longest prefix with `history`, and its
    /// length (a candidate: hashes can collide, so the caller compares).
    fn longest(&self, history: &[Message]) -> Option<(i64, usize)> {
        let mut best = None;
        for (n, hash) in running_hashes(history).enumerate() {
            match self.0.get(&(n + 1, hash)) {
                Some(&branch) => best = Some((branch, n + 1)),
                None => break,
            }
        }
        best
    }
}

/// Hash of each prefix `history[..=i]`.
fn running_hashes(history: &[Message]) -> impl Iterator<Item = u64> + '_ {
    let mut running = 0u64;
    history.iter().map(move |m| {
        let mut hasher = DefaultHasher::new();
        running.hash(&mut hasher);
        m.created_at.hash(&mut hasher);
        // The JSON of the body: equal bodies give equal text (serde_json maps are ordered).
        let _ = serde_json::to_writer(HashWriter(&mut hasher), &m.body);
        running = hasher.finish();
        running
    })
}

struct HashWriter<'h>(&'h mut DefaultHasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
