//! Appending, reading and replacing a history, and compacting it.

use pyo3::prelude::*;
use sessiondb::{AddOptions, KeyMode, Metadata, NewMessage, NewSession, RecordedUsage};

use super::Store;
use crate::convert::{self, count, from_py, index, to_py};
use crate::errors::invalid;

/// The fields `add_messages(new_session=...)` takes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSessionFields {
    title: Option<String>,
    agent_name: Option<String>,
    agent_id: Option<String>,
    user_id: Option<String>,
    metadata: Option<Metadata>,
}

#[pymethods]
impl Store {
    #[pyo3(signature = (session_id, message, *, expected_version=None))]
    fn add_message(
        &self,
        py: Python<'_>,
        session_id: String,
        message: &Bound<'_, PyAny>,
        expected_version: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let message: NewMessage = from_py("message", message)?;
        self.run_to_py(py, move |s| match expected_version {
            Some(v) => s.add_message_at_version(&session_id, message, v),
            None => s.add_message(&session_id, message),
        })
    }

    fn add_user_message(
        &self,
        py: Python<'_>,
        session_id: String,
        content: String,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.add_user_message(&session_id, &content))
    }

    fn add_assistant_message(
        &self,
        py: Python<'_>,
        session_id: String,
        content: String,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.add_assistant_message(&session_id, &content))
    }

    /// Appends `messages` in one transaction: all of them or none. Returns
    /// `{"messages": [...stored...], "written": [bool, ...], "already_stored": bool,
    /// "version": int}`. `keys="each"` stores exactly the new messages of a batch that mixes
    /// stored and new keys; `metadata` is merged into the session's in the same transaction.
    /// `new_session` (`{"title", "agent_name", "agent_id", "user_id", "metadata"}`, each
    /// optional) creates the session in the same transaction; it must not exist.
    #[pyo3(signature = (session_id, messages, *, expected_version=None, keys="batch", metadata=None, new_session=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_messages(
        &self,
        py: Python<'_>,
        session_id: String,
        messages: &Bound<'_, PyAny>,
        expected_version: Option<i64>,
        keys: &str,
        metadata: Option<&Bound<'_, PyAny>>,
        new_session: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let keys = match keys {
            "batch" => KeyMode::Batch,
            "each" => KeyMode::Each,
            other => {
                return Err(invalid(format!(
                    "keys must be \"batch\" or \"each\", not {other:?}"
                )))
            }
        };
        let messages: Vec<NewMessage> = from_py("messages", messages)?;
        let new_session = match new_session.filter(|v| !v.is_none()) {
            Some(fields) => {
                let f: NewSessionFields = from_py("new_session", fields)?;
                Some(NewSession {
                    id: None,
                    title: f.title,
                    agent_name: f.agent_name,
                    agent_id: f.agent_id,
                    user_id: f.user_id,
                    metadata: f.metadata.unwrap_or_default(),
                })
            }
            None => None,
        };
        let options = AddOptions {
            keys,
            expected_version,
            metadata: convert::metadata(metadata)?,
            new_session,
        };
        self.run_to_py(py, move |s| {
            s.add_messages_with(&session_id, &messages, &options)
        })
    }

    /// `{"version": int, "indices": [int | None, ...]}`: where each of `keys` is in the
    /// session's current history, read with its version.
    fn find_keys(
        &self,
        py: Python<'_>,
        session_id: String,
        keys: Vec<String>,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            s.find_keys(&session_id, &keys)
        })
    }

    /// Removes the last message and returns it (`None` when the history is empty). The old
    /// history stays readable as a superseded branch.
    fn pop_message(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.pop_message(&session_id))
    }

    /// Compacts the history: the working history (`chat_history`) becomes `summary` followed
    /// by the messages after `through_index`; `full_history` still has every message.
    #[pyo3(signature = (session_id, summary, through_index, *, expected_version=None))]
    fn compact(
        &self,
        py: Python<'_>,
        session_id: String,
        summary: &Bound<'_, PyAny>,
        through_index: i64,
        expected_version: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let summary: NewMessage = from_py("summary", summary)?;
        let through = index("through_index", through_index)?;
        self.run_to_py(py, move |s| match expected_version {
            Some(v) => s.compact_at_version(&session_id, summary, through, v),
            None => s.compact(&session_id, summary, through),
        })
    }

    /// Every message of the current history, compacted ones included.
    fn full_history(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        let history = self.run(py, move |s| s.full_history(&session_id))?;
        to_py(py, &*history)
    }

    /// The compactions of the current history, oldest range first; the last is in effect.
    fn compactions(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.compactions(&session_id))
    }

    /// The latest `max_messages` of the working history (all when `None`), oldest first.
    /// With `whole_turns` (the default) a window never starts on a tool result whose call
    /// was cut off; without it, exactly the last `max_messages` (`last_messages`).
    #[pyo3(signature = (session_id, max_messages=None, *, cached=true, whole_turns=true))]
    fn chat_history(
        &self,
        py: Python<'_>,
        session_id: String,
        max_messages: Option<i64>,
        cached: bool,
        whole_turns: bool,
    ) -> PyResult<Py<PyAny>> {
        let max = count("max_messages", max_messages)?;
        let history = self.run(py, move |s| match (whole_turns, cached) {
            (true, true) => s.chat_history(&session_id, max),
            (true, false) => s.chat_history_uncached(&session_id, max),
            (false, true) => s.last_messages(&session_id, max.unwrap_or(usize::MAX)),
            (false, false) => s.last_messages_uncached(&session_id, max.unwrap_or(usize::MAX)),
        })?;
        to_py(py, &*history)
    }

    /// `(messages, version, total_len)` read in one transaction.
    #[pyo3(signature = (session_id, max_messages=None))]
    fn chat_history_versioned(
        &self,
        py: Python<'_>,
        session_id: String,
        max_messages: Option<i64>,
    ) -> PyResult<(Py<PyAny>, i64, u64)> {
        let max = count("max_messages", max_messages)?;
        let history = self.run(py, move |s| s.chat_history(&session_id, max))?;
        Ok((
            to_py(py, &*history)?,
            history.version(),
            history.total_len(),
        ))
    }

    fn messages_before(
        &self,
        py: Python<'_>,
        session_id: String,
        index: i64,
        limit: i64,
    ) -> PyResult<Py<PyAny>> {
        let (i, n) = (
            self::index("index", index)?,
            self::index("limit", limit)? as usize,
        );
        let page = self.run(py, move |s| s.messages_before(&session_id, i, n))?;
        to_py(py, &*page)
    }

    fn messages_after(
        &self,
        py: Python<'_>,
        session_id: String,
        index: i64,
        limit: i64,
    ) -> PyResult<Py<PyAny>> {
        let (i, n) = (
            self::index("index", index)?,
            self::index("limit", limit)? as usize,
        );
        let page = self.run(py, move |s| s.messages_after(&session_id, i, n))?;
        to_py(py, &*page)
    }

    #[pyo3(signature = (session_id, messages, *, expected_version=None))]
    fn set_chat_history(
        &self,
        py: Python<'_>,
        session_id: String,
        messages: &Bound<'_, PyAny>,
        expected_version: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let messages: Vec<NewMessage> = from_py("messages", messages)?;
        self.run_to_py(py, move |s| match expected_version {
            Some(v) => s.set_chat_history_at_version(&session_id, &messages, v),
            None => s.set_chat_history(&session_id, &messages),
        })
    }

    /// Records what a turn or run used against message `index` of the current history
    /// (`{"requests", "input_tokens", "output_tokens", "total_tokens", "details"}`, each
    /// optional), replacing what was recorded there. The record stays with the message: in
    /// forks and branches that hold it, gone when it is popped or replaced.
    fn record_usage(
        &self,
        py: Python<'_>,
        session_id: String,
        index: i64,
        usage: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let i = self::index("index", index)?;
        let usage: RecordedUsage = from_py("usage", usage)?;
        self.run(py, move |s| s.record_usage(&session_id, i, &usage))
    }

    /// The usage records of the current history (of branch `branch`), oldest first: each
    /// `{"index", "requests", "input_tokens", "output_tokens", "total_tokens", "details",
    /// "recorded_at"}`.
    #[pyo3(signature = (session_id, branch=None))]
    fn recorded_usage(
        &self,
        py: Python<'_>,
        session_id: String,
        branch: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| {
            s.recorded_usage(&session_id, branch.as_deref())
        })
    }
}
