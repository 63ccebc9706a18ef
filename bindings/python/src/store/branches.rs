//! Forks, branches and snapshots.

use pyo3::prelude::*;
use sessiondb::SnapshotId;

use super::Store;
use crate::convert::{index, metadata, to_py};

#[pymethods]
impl Store {
    #[pyo3(signature = (source, at_index=None, title=None))]
    fn fork_session(
        &self,
        py: Python<'_>,
        source: String,
        at_index: Option<i64>,
        title: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let at = at_index.map(|i| index("at_index", i)).transpose()?;
        self.run_to_py(py, move |s| s.fork_session(&source, at, title.as_deref()))
    }

    fn parent_session(&self, py: Python<'_>, session_id: String) -> PyResult<Option<String>> {
        self.run(py, move |s| s.parent_session(&session_id))
    }

    fn child_sessions(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.child_sessions(&session_id))
    }

    fn session_tree(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.session_tree(&session_id))
    }

    #[pyo3(signature = (session_id, name, at_index=None))]
    fn create_branch(
        &self,
        py: Python<'_>,
        session_id: String,
        name: String,
        at_index: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let at = at_index.map(|i| index("at_index", i)).transpose()?;
        self.run_to_py(py, move |s| s.create_branch(&session_id, &name, at))
    }

    fn switch_branch(
        &self,
        py: Python<'_>,
        session_id: String,
        name: String,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.switch_branch(&session_id, &name))
    }

    fn branch_history(
        &self,
        py: Python<'_>,
        session_id: String,
        name: String,
    ) -> PyResult<Py<PyAny>> {
        let history = self.run(py, move |s| s.branch_history(&session_id, &name))?;
        to_py(py, &*history)
    }

    fn branches(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.branches(&session_id))
    }

    fn rename_branch(
        &self,
        py: Python<'_>,
        session_id: String,
        name: String,
        new_name: String,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.rename_branch(&session_id, &name, &new_name))
    }

    fn delete_branch(
        &self,
        py: Python<'_>,
        session_id: String,
        name: String,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.delete_branch(&session_id, &name))
    }

    fn revert_to_message(
        &self,
        py: Python<'_>,
        session_id: String,
        index: i64,
    ) -> PyResult<Py<PyAny>> {
        let i = self::index("index", index)?;
        self.run_to_py(py, move |s| s.revert_to_message(&session_id, i))
    }

    #[pyo3(signature = (session_id, label=None, metadata=None))]
    fn create_snapshot(
        &self,
        py: Python<'_>,
        session_id: String,
        label: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let metadata = self::metadata(metadata)?;
        self.run_to_py(py, move |s| {
            s.create_snapshot(&session_id, label.as_deref(), metadata)
        })
    }

    fn snapshots(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.snapshots(&session_id))
    }

    fn restore_snapshot(
        &self,
        py: Python<'_>,
        session_id: String,
        snapshot_id: i64,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| {
            s.restore_snapshot(&session_id, SnapshotId(snapshot_id))
        })
    }

    fn delete_snapshot(
        &self,
        py: Python<'_>,
        session_id: String,
        snapshot_id: i64,
    ) -> PyResult<()> {
        self.run(py, move |s| {
            s.delete_snapshot(&session_id, SnapshotId(snapshot_id))
        })
    }
}
