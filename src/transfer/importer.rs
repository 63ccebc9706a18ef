//! Import: each session in its own transaction, created whole from its image, brought to it,
//! or left alone, with a report of what happened.

use std::collections::HashMap;

use serde_json::Value;

use crate::cache::Entry;
use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::heads::{head_of, touch};
use crate::history::in_effect;
use crate::model::{check_field, check_json, validate_session_id, Message, NewMessage};
use crate::session_row::load_session;
use crate::store::Store;

use super::image::{
    check_header, ExportFile, ImportOptions, ImportReport, SessionExport, SkippedSource,
};
use super::plan::has_beside;
use super::write::{replace_head, write_image};

impl Store {
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

    /// Imports sessions, each in one `BEGIN IMMEDIATE` transaction that reads what it needs
    /// inside it, so concurrent importers of the same sessions get typed outcomes and a kill
    /// at any moment leaves each session absent or whole. A session that does not exist is
    /// created with its branches, snapshots, original timestamps and its parent link (a
    /// parent imported later in the same import links it in its own transaction). One whose
    /// current history (compactions included) and fields are already the imported ones is
    /// left alone, so importing twice changes nothing; one with another history gets the
    /// imported one the way [`Store::set_chat_history`] would (the old one stays as a
    /// superseded branch), with its compactions, title and metadata, in the same transaction. Sources that fail (`Err` items, invalid
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
        let id = image.id.clone();
        let session = load_session(tx, &id)?;
        let linked = match (&session.parent_session, &image.parent_session) {
            (None, Some(parent)) => link_parent(tx, &id, parent)?,
            _ => false,
        };
        let fields_changed = session.title != image.title || session.metadata != image.metadata;
        if fields_changed {
            check_field("title", image.title.as_deref())?;
            check_json("metadata", &image.metadata)?;
            tx.execute(
                "UPDATE sessions SET title = ?2, metadata = ?3 WHERE id = ?1",
                args![
                    id,
                    image.title,
                    Value::Object(image.metadata.clone()).to_string()
                ],
            )?;
            touch(tx, &id)?;
        }
        let compacted = match head_of(tx, &id)? {
            Some((head, _)) => in_effect(tx, head.branch_id, head.length)?.is_some(),
            None => false,
        };
        let (history_changed, entry) =
            if has_beside(&image) || !image.compactions.is_empty() || compacted {
                (replace_head(tx, &image)?, None)
            } else {
                let wanted: Vec<NewMessage> = image
                    .messages
                    .into_iter()
                    .map(Message::into_dated)
                    .collect();
                let (change, entry) = self.replace_in(tx, &id, &wanted, None)?;
                (change.written > 0 || change.superseded, Some(entry))
            };
        let outcome = if linked || fields_changed || history_changed {
            Outcome::Updated
        } else {
            Outcome::Unchanged
        };
        Ok((outcome, entry))
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
pub(super) struct Importer<'a> {
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
    pub(super) fn new(
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

    pub(super) fn add(&mut self, source: String, session: Result<SessionExport>) -> Result<()> {
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

    pub(super) fn finish(self) -> ImportReport {
        self.report
    }
}
