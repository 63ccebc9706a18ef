//! Reading an export file one session at a time, each within a byte budget, and importing
//! each as it is parsed.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};
use crate::out_file::refuse_database_file;
use crate::store::Store;

use super::image::{check_header, ImportOptions, ImportReport, SessionExport};
use super::importer::Importer;

impl Store {
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
        refuse_database_file(self.path(), path, "import from")?;
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
