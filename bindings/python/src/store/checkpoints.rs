//! LangGraph checkpoints (the core's `checkpoints`), for `sessiondb.langgraph`. Values cross
//! as the saver's serde gives them: a type name and bytes.

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyList, PyTuple};
use sessiondb::{
    ChannelBlob, CheckpointQuery, CheckpointRecord, Metadata, NewCheckpoint, PendingWrite,
    PruneStrategy, Serialized,
};

use super::Store;
use crate::convert::{count, from_py, to_py};
use crate::errors::invalid;

type Typed = (String, Option<PyBackedBytes>);

fn serialized((kind, bytes): Typed) -> Serialized {
    Serialized {
        kind,
        bytes: bytes.map(|b| b.to_vec()),
    }
}

/// (channel, version, type, bytes)
type Blob = (String, String, String, Option<PyBackedBytes>);

fn blob((channel, version, kind, bytes): Blob) -> ChannelBlob {
    ChannelBlob {
        channel,
        version,
        value: serialized((kind, bytes)),
    }
}

fn metadata_arg(what: &str, value: &Bound<'_, PyAny>) -> PyResult<Metadata> {
    if value.is_none() {
        return Ok(Metadata::new());
    }
    from_py(what, value)
}

fn typed_py<'py>(py: Python<'py>, value: &Serialized) -> PyResult<Bound<'py, PyTuple>> {
    let bytes = value.bytes.as_ref().map(|b| PyBytes::new(py, b));
    (value.kind.as_str(), bytes).into_pyobject(py)
}

/// A record as a tuple: (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
/// (type, bytes), metadata, [(channel, type, bytes)], [(task_id, channel, type, bytes,
/// task_path)]).
fn record_py(py: Python<'_>, r: &CheckpointRecord) -> PyResult<Py<PyAny>> {
    let values = PyList::empty(py);
    for (channel, value) in &r.channel_values {
        let bytes = value.bytes.as_ref().map(|b| PyBytes::new(py, b));
        values.append((channel.as_str(), value.kind.as_str(), bytes))?;
    }
    let writes = PyList::empty(py);
    for w in &r.pending_writes {
        let bytes = w.value.bytes.as_ref().map(|b| PyBytes::new(py, b));
        writes.append((
            w.task_id.as_str(),
            w.channel.as_str(),
            w.value.kind.as_str(),
            bytes,
            w.task_path.as_str(),
        ))?;
    }
    let tuple = (
        r.thread_id.as_str(),
        r.checkpoint_ns.as_str(),
        r.checkpoint_id.as_str(),
        r.parent_checkpoint_id.as_deref(),
        typed_py(py, &r.checkpoint)?,
        to_py(py, &r.metadata)?,
        values,
        writes,
    );
    Ok(tuple.into_pyobject(py)?.into_any().unbind())
}

#[pymethods]
impl Store {
    /// Stores a checkpoint (see `sessiondb.langgraph`).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
        checkpoint, metadata, channel_versions, new_blobs, other_values))]
    fn put_checkpoint(
        &self,
        py: Python<'_>,
        thread_id: String,
        checkpoint_ns: String,
        checkpoint_id: String,
        parent_checkpoint_id: Option<String>,
        checkpoint: Typed,
        metadata: &Bound<'_, PyAny>,
        channel_versions: Vec<(String, String)>,
        new_blobs: Vec<Blob>,
        other_values: Vec<Blob>,
    ) -> PyResult<()> {
        let new = NewCheckpoint {
            thread_id,
            checkpoint_ns,
            checkpoint_id,
            parent_checkpoint_id,
            checkpoint: serialized(checkpoint),
            metadata: metadata_arg("metadata", metadata)?,
            channel_versions,
            new_blobs: new_blobs.into_iter().map(blob).collect(),
            other_values: other_values.into_iter().map(blob).collect(),
        };
        self.run(py, move |s| s.put_checkpoint(&new))
    }

    /// Stores a task's pending writes, each (idx, channel, type, bytes).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, writes,
        replace))]
    fn put_checkpoint_writes(
        &self,
        py: Python<'_>,
        thread_id: String,
        checkpoint_ns: String,
        checkpoint_id: String,
        task_id: String,
        task_path: String,
        writes: Vec<(i64, String, String, PyBackedBytes)>,
        replace: bool,
    ) -> PyResult<()> {
        let writes: Vec<PendingWrite> = writes
            .into_iter()
            .map(|(idx, channel, kind, bytes)| PendingWrite {
                task_id: task_id.clone(),
                idx,
                channel,
                value: Serialized {
                    kind,
                    bytes: Some(bytes.to_vec()),
                },
                task_path: task_path.clone(),
            })
            .collect();
        self.run(py, move |s| {
            s.put_checkpoint_writes(&thread_id, &checkpoint_ns, &checkpoint_id, &writes, replace)
        })
    }

    /// One checkpoint (the latest of the namespace without an id), or None.
    #[pyo3(signature = (thread_id, checkpoint_ns, checkpoint_id=None))]
    fn get_checkpoint(
        &self,
        py: Python<'_>,
        thread_id: String,
        checkpoint_ns: String,
        checkpoint_id: Option<String>,
    ) -> PyResult<Option<Py<PyAny>>> {
        let found = self.run(py, move |s| {
            s.get_checkpoint(&thread_id, &checkpoint_ns, checkpoint_id.as_deref())
        })?;
        found.map(|r| record_py(py, &r)).transpose()
    }

    /// Checkpoints, newest id first.
    #[pyo3(signature = (thread_id=None, checkpoint_ns=None, checkpoint_id=None, filter=None,
        before=None, limit=None))]
    #[allow(clippy::too_many_arguments)]
    fn list_checkpoints(
        &self,
        py: Python<'_>,
        thread_id: Option<String>,
        checkpoint_ns: Option<String>,
        checkpoint_id: Option<String>,
        filter: Option<&Bound<'_, PyAny>>,
        before: Option<String>,
        limit: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let query = CheckpointQuery {
            thread_id,
            checkpoint_ns,
            checkpoint_id,
            filter: match filter {
                Some(f) => metadata_arg("filter", f)?,
                None => Metadata::new(),
            },
            before,
            limit: count("limit", limit)?,
        };
        let records = self.run(py, move |s| s.list_checkpoints(&query))?;
        let out = PyList::empty(py);
        for r in &records {
            out.append(record_py(py, r)?)?;
        }
        Ok(out.into_any().unbind())
    }

    /// Deletes a thread and everything no copy of it inherits.
    fn delete_checkpoint_thread(&self, py: Python<'_>, thread_id: String) -> PyResult<()> {
        self.run(py, move |s| s.delete_checkpoint_thread(&thread_id))
    }

    /// Makes `target` a copy of `source` (a fork: nothing is copied).
    fn copy_checkpoint_thread(
        &self,
        py: Python<'_>,
        source: String,
        target: String,
    ) -> PyResult<()> {
        self.run(py, move |s| s.copy_checkpoint_thread(&source, &target))
    }

    /// Removes the checkpoints and writes of these runs from every thread.
    fn delete_checkpoint_runs(&self, py: Python<'_>, run_ids: Vec<String>) -> PyResult<()> {
        self.run(py, move |s| s.delete_checkpoint_runs(&run_ids))
    }

    /// Prunes threads: strategy "keep_latest" or "delete".
    fn prune_checkpoints(
        &self,
        py: Python<'_>,
        thread_ids: Vec<String>,
        strategy: &str,
    ) -> PyResult<()> {
        let strategy = match strategy {
            "keep_latest" => PruneStrategy::KeepLatest,
            "delete" => PruneStrategy::Delete,
            other => {
                return Err(invalid(format!(
                    "strategy must be \"keep_latest\" or \"delete\", got {other:?}"
                )))
            }
        };
        self.run(py, move |s| s.prune_checkpoints(&thread_ids, strategy))
    }
}
