//! OpenAI Agents SDK items: the core maps them to messages and back
//! ([`sessiondb::NewMessage::from_openai_item`], [`sessiondb::Message::openai_item`]); these
//! methods only choose what to read and convert the items.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::PyList;
use sessiondb::{History, NewMessage};

use super::Store;
use crate::convert::{count, from_py, to_py, JsonToPy};
use crate::errors::raise;

/// `(version, items, working_len)` of a window of the working history.
type Items = (i64, Py<PyAny>, u64);

fn items_to_py(py: Python<'_>, history: &History) -> PyResult<Items> {
    let items = PyList::empty(py);
    let mut convert = JsonToPy::default();
    for message in history.iter() {
        match message.openai_item() {
            Cow::Borrowed(item) => items.append(convert.value(py, item)?)?,
            Cow::Owned(item) => items.append(JsonToPy::default().value(py, &item)?)?,
        }
    }
    Ok((
        history.version(),
        items.into_any().unbind(),
        history.working_len(),
    ))
}

#[pymethods]
impl Store {
    /// Appends OpenAI Agents SDK items (any shape) in one transaction; each reads back exactly
    /// from its message's `metadata["openai_item"]`. Returns `(version, items)`: the session's
    /// version afterwards and the items as they read back (JSON values: a tuple becomes a
    /// list). With `wait=False` a write lock held by someone else raises `Busy` at once
    /// (nothing written) instead of waiting for it.
    #[pyo3(signature = (session_id, items, *, wait=true))]
    fn add_openai_items(
        &self,
        py: Python<'_>,
        session_id: String,
        items: &Bound<'_, PyAny>,
        wait: bool,
    ) -> PyResult<(Option<i64>, Py<PyAny>)> {
        let items: Vec<serde_json::Value> = from_py("items", items)?;
        let messages = items
            .iter()
            .map(|item| NewMessage::from_openai_item(item.clone()))
            .collect::<sessiondb::Result<Vec<_>>>()
            .map_err(raise)?;
        if messages.is_empty() {
            return Ok((None, PyList::empty(py).into_any().unbind()));
        }
        let version = self.run_waiting(py, wait, move |s| {
            Ok(s.add_messages(&session_id, &messages)?.version)
        })?;
        Ok((Some(version), to_py(py, &items)?))
    }

    /// `(version, items, total)`: the latest `limit` OpenAI Agents SDK items (all when
    /// `None`; exactly the last `limit`, no whole-turn trimming), the session's version they
    /// were read at and the length of its working history. A message written by another API
    /// reads as its `{"role", "content"}`.
    #[pyo3(signature = (session_id, limit=None))]
    fn openai_items(
        &self,
        py: Python<'_>,
        session_id: String,
        limit: Option<i64>,
    ) -> PyResult<Items> {
        let n = count("limit", limit)?.unwrap_or(usize::MAX);
        let history = self.run(py, move |s| s.last_messages(&session_id, n))?;
        items_to_py(py, &history)
    }

    /// [`openai_items`](Self::openai_items) answered by this process's history cache (one
    /// primary-key read, plus the items appended since the cached version), else `None`: for
    /// an event loop, which then reads in a thread.
    #[pyo3(signature = (session_id, limit=None))]
    fn cached_openai_items(
        &self,
        py: Python<'_>,
        session_id: String,
        limit: Option<i64>,
    ) -> PyResult<Option<Items>> {
        let n = count("limit", limit)?.unwrap_or(usize::MAX);
        let history = self.run(py, move |s| s.cached_last_messages(&session_id, n))?;
        history.map(|h| items_to_py(py, &h)).transpose()
    }

    /// `[(index, item, created_at), ...]`: the OpenAI Agents SDK items of the working
    /// history, of a named branch's history (`branch`), or of the full history with compacted
    /// messages (`full=True`), oldest first, each with its message's index and time (RFC 3339
    /// text).
    #[pyo3(signature = (session_id, *, branch=None, full=false))]
    fn openai_history(
        &self,
        py: Python<'_>,
        session_id: String,
        branch: Option<String>,
        full: bool,
    ) -> PyResult<Py<PyAny>> {
        let history = self.run(py, move |s| match (branch, full) {
            (Some(name), _) => s.branch_history(&session_id, &name),
            (None, true) => s.full_history(&session_id),
            (None, false) => s.chat_history(&session_id, None),
        })?;
        let out = PyList::empty(py);
        let mut convert = JsonToPy::default();
        for message in history.iter() {
            let item = match message.openai_item() {
                Cow::Borrowed(item) => convert.value(py, item)?,
                Cow::Owned(item) => JsonToPy::default().value(py, &item)?,
            };
            out.append((message.index, item, to_py(py, &message.created_at)?))?;
        }
        Ok(out.into_any().unbind())
    }

    /// Removes the last message and returns the OpenAI Agents SDK item it held (`None` when
    /// the history is empty); as `pop_message`, the old history stays as a superseded branch.
    fn pop_openai_item(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        let popped = self.run(py, move |s| s.pop_message(&session_id))?;
        match popped {
            Some(message) => to_py(py, &*message.openai_item()),
            None => Ok(py.None()),
        }
    }
}
