//! Streamed replies: a reply kept outside the history while it is written, then appended.

use pyo3::prelude::*;
use sessiondb::StreamEnd;

use super::Store;
use crate::convert::{count, from_py, index, metadata, to_py};

#[pymethods]
impl Store {
    #[pyo3(signature = (session_id, model=None, metadata=None))]
    fn start_stream(
        &self,
        py: Python<'_>,
        session_id: String,
        model: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let metadata = self::metadata(metadata)?;
        self.run_to_py(py, move |s| {
            s.start_stream(&session_id, model.as_deref(), metadata)
        })
    }

    fn append_stream(&self, py: Python<'_>, session_id: String, chunk: String) -> PyResult<()> {
        self.run(py, move |s| s.append_stream(&session_id, &chunk))
    }

    #[pyo3(signature = (session_id, *, content=None, model=None, metadata=None, tool_calls=None, input_tokens=None, output_tokens=None, cost=None))]
    #[allow(clippy::too_many_arguments)]
    fn finish_stream(
        &self,
        py: Python<'_>,
        session_id: String,
        content: Option<String>,
        model: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        tool_calls: Option<&Bound<'_, PyAny>>,
        input_tokens: Option<i64>,
        output_tokens: Option<i64>,
        cost: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let end = stream_end(
            content,
            model,
            metadata,
            tool_calls,
            input_tokens,
            output_tokens,
            cost,
        )?;
        self.run_to_py(py, move |s| s.finish_stream(&session_id, end))
    }

    fn discard_stream(&self, py: Python<'_>, session_id: String) -> PyResult<()> {
        self.run(py, move |s| s.discard_stream(&session_id))
    }

    fn partial_message(&self, py: Python<'_>, session_id: String) -> PyResult<Py<PyAny>> {
        self.run_to_py(py, move |s| s.partial_message(&session_id))
    }

    /// `(messages, partial or None)` read in one transaction.
    #[pyo3(signature = (session_id, max_messages=None))]
    fn chat_history_with_partial(
        &self,
        py: Python<'_>,
        session_id: String,
        max_messages: Option<i64>,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        let max = count("max_messages", max_messages)?;
        let (history, partial) =
            self.run(py, move |s| s.chat_history_with_partial(&session_id, max))?;
        Ok((to_py(py, &*history)?, to_py(py, &partial)?))
    }

    /// `(session, messages, partial or None)`: what `session` and
    /// `chat_history_with_partial` return, read in one transaction.
    fn session_with_history(
        &self,
        py: Python<'_>,
        session_id: String,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>, Py<PyAny>)> {
        let (session, history, partial) =
            self.run(py, move |s| s.session_with_history(&session_id))?;
        Ok((
            to_py(py, &session)?,
            to_py(py, &*history)?,
            to_py(py, &partial)?,
        ))
    }

    /// `(version, messages, partial)` as [`Store::chat_history_with_partial`] reads them in
    /// one snapshot, with `messages` `None` when the history is at `known_version`: a caller
    /// that keeps its own converted copy of that version converts nothing again, and when
    /// no reply is streaming either, one statement answers without reading the history.
    #[pyo3(signature = (session_id, max_messages=None, *, known_version=None))]
    fn chat_history_if_changed(
        &self,
        py: Python<'_>,
        session_id: String,
        max_messages: Option<i64>,
        known_version: Option<i64>,
    ) -> PyResult<(i64, Py<PyAny>, Py<PyAny>)> {
        let max = count("max_messages", max_messages)?;
        let read = self.run(py, move |s| match known_version {
            Some(known) => s.chat_history_with_partial_since(&session_id, max, known),
            None => s.chat_history_with_partial(&session_id, max).map(Some),
        })?;
        let Some((history, partial)) = read else {
            // Still at `known_version`, with no reply streaming.
            return Ok((known_version.unwrap_or_default(), py.None(), py.None()));
        };
        let messages = if known_version == Some(history.version()) {
            py.None()
        } else {
            to_py(py, &*history)?
        };
        Ok((history.version(), messages, to_py(py, &partial)?))
    }
}

/// The end of a streamed reply from `finish_stream`'s keyword arguments (a store's, or a
/// leased session's).
#[allow(clippy::too_many_arguments)]
pub(crate) fn stream_end(
    content: Option<String>,
    model: Option<String>,
    metadata: Option<&Bound<'_, PyAny>>,
    tool_calls: Option<&Bound<'_, PyAny>>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cost: Option<f64>,
) -> PyResult<StreamEnd> {
    Ok(StreamEnd {
        content,
        model,
        metadata: self::metadata(metadata)?,
        tool_calls: tool_calls
            .filter(|v| !v.is_none())
            .map(|v| from_py("tool_calls", v))
            .transpose()?,
        input_tokens: input_tokens.map(|n| index("input_tokens", n)).transpose()?,
        output_tokens: output_tokens
            .map(|n| index("output_tokens", n))
            .transpose()?,
        cost,
    })
}
