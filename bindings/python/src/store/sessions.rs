//! Sessions: creating, reading, listing and changing them.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use sessiondb::{NewSession, SessionQuery};

use super::Store;
use crate::convert::{count, metadata};
use crate::errors::invalid;

#[pymethods]
impl Store {
    #[pyo3(signature = (session_id=None, *, title=None, agent_name=None, agent_id=None, user_id=None, metadata=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_session(
        &self,
        py: Python<'_>,
        session_id: Option<String>,
        title: Option<String>,
        agent_name: Option<String>,
        agent_id: Option<String>,
        user_id: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let new = NewSession {
            id: session_id,
            title,
            agent_name,
            agent_id,
            user_id,
            metadata: self::metadata(metadata)?.unwrap_or_default(),
        };
        self.run_to_py(py, move |s| s.create_session(new))
    }

    fn session(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.session(&session_id))
    }

    fn session_exists(&self, py: Python<'_>, session_id: String) -> PyResult<bool> {
        self.run(py, move |s| s.session_exists(&session_id))
    }

    /// The session's version: one primary-key read. With `wait=False` it never waits (in WAL
    /// mode a read waits only in rare cases such as recovery; then it raises `Busy` at once).
    #[pyo3(signature = (session_id, *, wait=true))]
    fn version(&self, py: Python<'_>, session_id: String, wait: bool) -> PyResult<i64> {
        self.run_waiting(py, wait, move |s| s.version(&session_id))
    }

    /// Sessions, newest `updated_at` first; every page up to `limit` (all when `None`).
    #[pyo3(signature = (*, agent_name=None, user_id=None, title_contains=None, limit=None))]
    fn list_sessions(
        &self,
        py: Python<'_>,
        agent_name: Option<String>,
        user_id: Option<String>,
        title_contains: Option<String>,
        limit: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let limit = count("limit", limit)?;
        self.run_to_py(py, move |s| {
            let mut out = Vec::new();
            let mut query = SessionQuery {
                agent_name,
                user_id,
                title_contains,
                ..SessionQuery::default()
            };
            loop {
                let want = limit.map_or(500, |l| (l - out.len()).min(500));
                if want == 0 {
                    break;
                }
                query.limit = want;
                let page = s.list_sessions(&query)?;
                out.extend(page.sessions);
                match page.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
            Ok(out)
        })
    }

    fn update_metadata(
        &self,
        py: Python<'_>,
        session_id: String,
        patch: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let patch = self::metadata(Some(patch))?.unwrap_or_default();
        self.run_to_py(py, move |s| s.update_metadata(&session_id, patch))
    }

    /// Merges `updates` into the dict at `metadata[key]` and fills in from `defaults` the
    /// keys it still lacks, in one write (processes merging at once all keep theirs).
    #[pyo3(signature = (session_id, key, updates, defaults=None))]
    fn merge_metadata_object(
        &self,
        py: Python<'_>,
        session_id: String,
        key: String,
        updates: &Bound<'_, PyAny>,
        defaults: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let updates = self::metadata(Some(updates))?.unwrap_or_default();
        let defaults = self::metadata(defaults)?.unwrap_or_default();
        self.run_to_py(py, move |s| {
            s.merge_metadata_object(&session_id, &key, updates, defaults)
        })
    }

    /// Changes the named fields: `title`, `agent_name`, `agent_id`, `user_id` (a `None`
    /// value clears one) and `metadata` (merged; a `None` value removes a key).
    #[pyo3(signature = (session_id, **fields))]
    fn update_session(
        &self,
        py: Python<'_>,
        session_id: String,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let mut update = sessiondb::SessionUpdate::default();
        for (key, value) in fields.into_iter().flat_map(|f| f.iter()) {
            let key: String = key.extract()?;
            let text = || -> PyResult<Option<String>> {
                if value.is_none() {
                    Ok(None)
                } else {
                    value
                        .extract()
                        .map(Some)
                        .map_err(|_| invalid(format!("{key} must be a string or None")))
                }
            };
            match key.as_str() {
                "title" => update.title = Some(text()?),
                "agent_name" => update.agent_name = Some(text()?),
                "agent_id" => update.agent_id = Some(text()?),
                "user_id" => update.user_id = Some(text()?),
                "metadata" => update.metadata = self::metadata(Some(&value))?,
                other => {
                    return Err(invalid(format!(
                        "unknown session field {other:?}: expected title, agent_name, agent_id, user_id or metadata"
                    )))
                }
            }
        }
        self.run_to_py(py, move |s| s.update_session(&session_id, &update))
    }

    #[pyo3(signature = (session_id, title))]
    fn set_title(
        &self,
        py: Python<'_>,
        session_id: String,
        title: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.set_title(&session_id, title.as_deref()))
    }

    fn clear(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.clear(&session_id))
    }

    fn delete_session(&self, py: Python<'_>, session_id: String) -> PyResult<()> {
        self.run(py, move |s| s.delete_session(&session_id))
    }
}
