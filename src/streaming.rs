//! Streamed replies: an assistant message persisted chunk by chunk as it arrives.
//!
//! The partial text lives beside the history (table `partial_messages`, one per session),
//! so readers of the history never see half a reply unless they ask for it, and a process
//! that crashes mid-stream leaves the text for another process to finish or discard.
//! Finishing appends the reply through the same path as [`Store::add_message`].

use serde_json::Value;

use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::heads::require_head;
use crate::history::{partial, History, Window};
use crate::model::{
    check_field, check_json, now_text, validate_session_id, Message, Metadata, NewMessage,
    PartialMessage, Session, StreamEnd, MAX_CONTENT_BYTES,
};
use crate::session_row::load_session;
use crate::store::Store;

impl Store {
    /// Starts a streamed assistant reply in the session (which must exist). A session has at
    /// most one: starting another before finishing or discarding is [`Error::InvalidInput`].
    pub fn start_stream(
        &self,
        session_id: &str,
        model: Option<&str>,
        metadata: Option<Metadata>,
    ) -> Result<PartialMessage> {
        validate_session_id(session_id)?;
        check_field("model", model)?;
        if let Some(m) = &metadata {
            check_json("metadata", m)?;
        }
        let metadata = metadata.map(|m| Value::Object(m).to_string());
        self.write(|tx| {
            require_head(tx, session_id)?;
            if partial(tx, session_id)?.is_some() {
                return Err(Error::invalid(format!(
                    "session {session_id:?} already has a streamed reply in progress; \
                     finish or discard it first"
                )));
            }
            let now = now_text();
            tx.execute(
                "INSERT INTO partial_messages (session_id, model, metadata, started_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                args![session_id, model, metadata, now],
            )?;
            required(tx, session_id)
        })
    }

    /// Durably appends `chunk` to the session's streamed reply: one small transaction. Call
    /// it as often as you want the text to survive a crash (every chunk, or every 100 ms).
    pub fn append_stream(&self, session_id: &str, chunk: &str) -> Result<()> {
        validate_session_id(session_id)?;
        self.write(|tx| {
            // The row stays locked until the append, so two writers of one stream cannot
            // both pass the size check.
            let length: i64 = tx
                .query_opt(
                    tx.pick(
                        "SELECT coalesce(length(CAST(content AS BLOB)), 0) FROM partial_messages
                         WHERE session_id = ?1",
                        &tx.locked(
                            "SELECT octet_length(content) FROM partial_messages
                         WHERE session_id = ?1",
                        ),
                    ),
                    args![session_id],
                    |r| r.get(0),
                )?
                .unwrap_or(0);
            if length as usize + chunk.len() > MAX_CONTENT_BYTES {
                return Err(Error::invalid(format!(
                    "the streamed reply would exceed {MAX_CONTENT_BYTES} bytes of content"
                )));
            }
            let changed = tx.execute(
                "UPDATE partial_messages
                     SET content = content || ?2, chunks = chunks + 1, updated_at = ?3
                     WHERE session_id = ?1",
                args![session_id, chunk, now_text()],
            )?;
            if changed == 0 {
                return Err(no_stream(tx, session_id));
            }
            Ok(())
        })
    }

    /// Finishes the streamed reply: appends it to the history as an ordinary assistant
    /// message (with the final content, model and usage from `end`) and removes the partial,
    /// in one transaction. Returns the stored message.
    pub fn finish_stream(&self, session_id: &str, end: StreamEnd) -> Result<Message> {
        validate_session_id(session_id)?;
        self.append_with(session_id, None, |tx| {
            let partial = required(tx, session_id)?;
            tx.execute(
                "DELETE FROM partial_messages WHERE session_id = ?1",
                args![session_id],
            )?;
            Ok(NewMessage {
                content: end.content.unwrap_or(partial.content).into(),
                model: end.model.or(partial.model),
                metadata: end.metadata.or(partial.metadata),
                tool_calls: end.tool_calls,
                input_tokens: end.input_tokens,
                output_tokens: end.output_tokens,
                cost: end.cost,
                ..NewMessage::assistant("")
            })
        })
    }

    /// Drops the streamed reply; the history is unchanged.
    pub fn discard_stream(&self, session_id: &str) -> Result<()> {
        validate_session_id(session_id)?;
        self.write(|tx| {
            let deleted = tx.execute(
                "DELETE FROM partial_messages WHERE session_id = ?1",
                args![session_id],
            )?;
            if deleted == 0 {
                return Err(no_stream(tx, session_id));
            }
            Ok(())
        })
    }

    /// The session's streamed reply in progress, if any.
    pub fn partial_message(&self, session_id: &str) -> Result<Option<PartialMessage>> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            require_head(tx, session_id)?;
            partial(tx, session_id)
        })
    }

    /// [`Store::chat_history`] plus the streamed reply in progress, read from one snapshot.
    pub fn chat_history_with_partial(
        &self,
        session_id: &str,
        max_messages: Option<usize>,
    ) -> Result<(History, Option<PartialMessage>)> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            let history =
                self.history_in(tx, session_id, Window::WholeTurns(max_messages), true)?;
            Ok((history, partial(tx, session_id)?))
        })
    }

    /// [`Store::session`] and [`Store::chat_history_with_partial`] read from one snapshot.
    pub fn session_with_history(
        &self,
        session_id: &str,
    ) -> Result<(Session, History, Option<PartialMessage>)> {
        validate_session_id(session_id)?;
        self.read(|tx| {
            let session = load_session(tx, session_id)?;
            let history = self.history_in(tx, session_id, Window::WholeTurns(None), true)?;
            Ok((session, history, partial(tx, session_id)?))
        })
    }

    /// [`Store::chat_history_with_partial`], or `None` when the history is still at
    /// `known_version` and no reply is streaming: a caller that keeps its own copy of that
    /// version learns so from one statement, which reads neither the history nor the cache.
    pub fn chat_history_with_partial_since(
        &self,
        session_id: &str,
        max_messages: Option<usize>,
        known_version: i64,
    ) -> Result<Option<(History, Option<PartialMessage>)>> {
        validate_session_id(session_id)?;
        let unchanged = self.read_statement(|tx| {
            let row = tx.query_opt(
                "SELECT version, EXISTS (SELECT 1 FROM partial_messages WHERE session_id = ?1)
                 FROM sessions WHERE id = ?1",
                args![session_id],
                |r| Ok((r.get::<i64>(0)?, r.get::<bool>(1)?)),
            )?;
            Ok(row == Some((known_version, false)))
        })?;
        if unchanged {
            return Ok(None);
        }
        self.chat_history_with_partial(session_id, max_messages)
            .map(Some)
    }
}

fn required(tx: &Tx<'_>, session_id: &str) -> Result<PartialMessage> {
    match partial(tx, session_id)? {
        Some(p) => Ok(p),
        None => Err(no_stream(tx, session_id)),
    }
}

/// NotFound naming the session if it does not exist, else naming the missing stream.
fn no_stream(tx: &Tx<'_>, session_id: &str) -> Error {
    match require_head(tx, session_id) {
        Err(e) => e,
        Ok(_) => Error::not_found("streamed reply of session", session_id),
    }
}
