//! Search, export and import, backup, and upkeep (prune, expire, purge, maintain, check).

use std::path::PathBuf;

use pyo3::prelude::*;
use sessiondb::{ExportFile, ImportOptions, Role, SearchFilter};

use super::Store;
use crate::convert::{existing, from_py, index, seconds};
use crate::errors::raise;

#[pymethods]
impl Store {
    #[pyo3(signature = (query, *, limit=20, session_id=None, agent_name=None, user_id=None, role=None, newest_first=false))]
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        py: Python<'_>,
        query: String,
        limit: i64,
        session_id: Option<String>,
        agent_name: Option<String>,
        user_id: Option<String>,
        role: Option<String>,
        newest_first: bool,
    ) -> PyResult<Py<PyAny>> {
        let limit = self::index("limit", limit)? as usize;
        let role: Option<Role> = role.map(|r| r.parse().map_err(raise)).transpose()?;
        let filter = SearchFilter {
            session: session_id,
            agent_name,
            user_id,
            role,
        };
        self.run_to_py(py, move |s| {
            if newest_first {
                s.search_recent(&query, limit, &filter)
            } else {
                s.search(&query, limit, &filter)
            }
        })
    }

    /// Ids of the sessions whose current history has a message matching `query`, the most
    /// recently matched first, up to `limit`; nothing ranked, no snippets.
    #[pyo3(signature = (query, *, limit=20))]
    fn search_recent_sessions(
        &self,
        py: Python<'_>,
        query: String,
        limit: i64,
    ) -> PyResult<Vec<String>> {
        let limit = self::index("limit", limit)? as usize;
        self.run(py, move |s| s.search_recent_sessions(&query, limit))
    }

    /// The export document (the JSON `sessiondb export` writes) of `session_ids`, or of every
    /// session when empty.
    #[pyo3(signature = (session_ids=Vec::new(), *, all_branches=false))]
    fn export(
        &self,
        py: Python<'_>,
        session_ids: Vec<String>,
        all_branches: bool,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| {
            s.export(&session_ids, all_branches, &mut |_, _| {})
        })
    }

    #[pyo3(signature = (document, *, overwrite=true, dry_run=false))]
    fn import_export(
        &self,
        py: Python<'_>,
        document: &Bound<'_, PyAny>,
        overwrite: bool,
        dry_run: bool,
    ) -> PyResult<Py<PyAny>> {
        let file: ExportFile = from_py("document", document)?;
        let options = ImportOptions {
            overwrite,
            dry_run,
            ..ImportOptions::default()
        };
        self.run_to_py(py, move |s| {
            s.import_export(&file, &options, &mut |_, _| {})
        })
    }

    #[pyo3(signature = (path, *, overwrite=true, dry_run=false))]
    fn import_praisonai(
        &self,
        py: Python<'_>,
        path: PathBuf,
        overwrite: bool,
        dry_run: bool,
    ) -> PyResult<Py<PyAny>> {
        let options = ImportOptions {
            overwrite,
            dry_run,
            ..ImportOptions::default()
        };
        self.run_to_py(py, move |s| {
            s.import_praisonai(&path, &options, &mut |_, _| {})
        })
    }

    #[pyo3(signature = (out, *, force=false))]
    fn backup(&self, py: Python<'_>, out: PathBuf, force: bool) -> PyResult<u64> {
        self.run(py, move |s| s.backup(&out, existing(force)))
    }

    /// Replaces the whole contents with those of the backup at `source`, in one transaction:
    /// other processes see the old contents or the restored ones. Returns the counts restored.
    fn restore(&self, py: Python<'_>, source: PathBuf) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.restore(&source))
    }

    #[pyo3(signature = (older_than=30.0 * 86400.0, *, dry_run=false))]
    fn prune(&self, py: Python<'_>, older_than: f64, dry_run: bool) -> PyResult<Py<PyAny>> {
        let window = seconds("older_than", older_than)?;
        self.run_to_py(py, move |s| s.prune(window, dry_run))
    }

    /// Deletes sessions not updated within `idle_longer_than` seconds (forks keep their rows).
    #[pyo3(signature = (idle_longer_than, *, dry_run=false))]
    fn expire_sessions(
        &self,
        py: Python<'_>,
        idle_longer_than: f64,
        dry_run: bool,
    ) -> PyResult<Py<PyAny>> {
        let window = seconds("idle_longer_than", idle_longer_than)?;
        self.run_to_py(py, move |s| s.expire_sessions(window, dry_run))
    }

    /// Erases sessions for real (every branch, snapshot and byte in the file and WAL).
    #[pyo3(signature = (session_ids=Vec::new(), *, user_id=None, with_forks=false))]
    fn purge(
        &self,
        py: Python<'_>,
        session_ids: Vec<String>,
        user_id: Option<String>,
        with_forks: bool,
    ) -> PyResult<Py<PyAny>> {
        let request = sessiondb::PurgeRequest {
            sessions: session_ids,
            user_id,
            with_forks,
        };
        self.run_to_py(py, move |s| s.purge(&request))
    }

    #[pyo3(signature = (*, vacuum=false))]
    fn maintain(&self, py: Python<'_>, vacuum: bool) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.maintain(vacuum))
    }

    fn check(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, |s| s.check())
    }

    #[pyo3(signature = (older_than=30.0 * 86400.0))]
    fn stats(&self, py: Python<'_>, older_than: f64) -> PyResult<Py<PyAny>> {
        let window = seconds("older_than", older_than)?;
        self.run_to_py(py, move |s| s.stats(window))
    }

    #[pyo3(signature = (session_id=None))]
    fn invalidate_cache(&self, py: Python<'_>, session_id: Option<String>) -> PyResult<()> {
        self.run(py, move |s| {
            s.invalidate_cache(session_id.as_deref());
            Ok(())
        })
    }

    fn cache_stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, |s| Ok(s.cache_stats()))
    }
}
