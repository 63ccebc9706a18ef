//! Messages: one to store ([`NewMessage`]), one stored ([`Message`]), and the usage they add
//! up to.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::content::{Content, Role};
use super::time::{stored_time, timestamp};
use super::validate::{
    check_field, check_json, check_json_within, check_key, check_tool_calls, json_kind,
};
use super::{Metadata, MAX_CONTENT_BYTES, MAX_COST};
use crate::error::{Error, Result};

/// Token usage totals of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: f64,
}

impl Usage {
    /// Adds the usage of `message` (saturating: totals never wrap).
    pub(crate) fn add(&mut self, message: &NewMessage) {
        self.input_tokens = self
            .input_tokens
            .saturating_add(message.input_tokens.unwrap_or(0))
            .min(i64::MAX as u64);
        self.output_tokens = self
            .output_tokens
            .saturating_add(message.output_tokens.unwrap_or(0))
            .min(i64::MAX as u64);
        self.cost += message.cost.unwrap_or(0.0);
    }
}

/// Keys of a message's JSON that sessiondb itself defines; any other key is kept in
/// [`NewMessage::extra`]. `index` is output only (a position comes from the list).
pub const MESSAGE_KEYS: &[&str] = &[
    "role",
    "content",
    "tool_calls",
    "tool_call_id",
    "metadata",
    "model",
    "input_tokens",
    "output_tokens",
    "cost",
    "created_at",
    "key",
    "index",
];

/// A message to store. Build one with [`NewMessage::new`], [`NewMessage::user`],
/// [`NewMessage::assistant`] or [`NewMessage::tool`], then the `with_*` methods.
///
/// Its JSON form is the one `sessiondb history --json` prints and `set-history` reads: an
/// OpenAI chat message (`content` a string, parts, `null` or absent; any key sessiondb does
/// not know, such as `name`, kept in `extra` and written back as it came) plus sessiondb's
/// usage fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "MessageJson")]
pub struct NewMessage {
    pub role: Role,
    #[serde(skip_serializing_if = "Content::is_absent")]
    pub content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// A caller-chosen idempotency key, unique within the session's current history: a retried
    /// append of a message (or batch) whose keys are stored writes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Top-level keys sessiondb does not know (`name`, `refusal`, `audio`, …), kept exactly.
    #[serde(flatten)]
    pub extra: Metadata,
    /// When set, the message is stored with this time instead of the time of the write (a
    /// restored or imported history keeps its times). Read messages carry theirs in
    /// [`Message::created_at`]; this stays `None` there.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "timestamp::serialize_option"
    )]
    pub created_at: Option<DateTime<Utc>>,
}

/// The JSON form of a message as read: [`NewMessage`] less the output-only `index`.
#[derive(Deserialize)]
struct MessageJson {
    role: Role,
    #[serde(default)]
    content: Content,
    #[serde(default)]
    tool_calls: Option<Vec<Value>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cost: Option<f64>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    key: Option<String>,
    #[serde(flatten)]
    extra: Metadata,
}

impl From<MessageJson> for NewMessage {
    fn from(m: MessageJson) -> Self {
        let mut extra = m.extra;
        extra.remove("index");
        NewMessage {
            role: m.role,
            content: m.content,
            tool_calls: m.tool_calls,
            tool_call_id: m.tool_call_id,
            metadata: m.metadata,
            model: m.model,
            input_tokens: m.input_tokens,
            output_tokens: m.output_tokens,
            cost: m.cost,
            extra,
            created_at: m.created_at,
            key: m.key,
        }
    }
}

impl NewMessage {
    pub fn new(role: Role, content: impl Into<Content>) -> Self {
        NewMessage {
            role,
            content: content.into(),
            tool_calls: None,
            tool_call_id: None,
            metadata: None,
            model: None,
            input_tokens: None,
            output_tokens: None,
            cost: None,
            key: None,
            extra: Metadata::new(),
            created_at: None,
        }
    }

    pub fn system(content: impl Into<Content>) -> Self {
        Self::new(Role::System, content)
    }

    pub fn user(content: impl Into<Content>) -> Self {
        Self::new(Role::User, content)
    }

    pub fn assistant(content: impl Into<Content>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// The result of the tool call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<Content>) -> Self {
        Self::new(Role::Tool, content).with_tool_call_id(tool_call_id)
    }

    /// The text content, or `""` when the content is parts, `null` or absent
    /// ([`Content::text`] joins the text of parts).
    pub fn content(&self) -> &str {
        match &self.content {
            Content::Text(text) => text,
            _ => "",
        }
    }

    /// Tool calls the assistant asked for, as a JSON array (OpenAI's `tool_calls` shape).
    pub fn with_tool_calls(mut self, calls: Vec<Value>) -> Self {
        self.tool_calls = Some(calls);
        self
    }

    pub fn with_tool_call_id(mut self, id: impl Into<String>) -> Self {
        self.tool_call_id = Some(id.into());
        self
    }

    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// A top-level key of the message that sessiondb has no field for (e.g. `name`).
    pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// Store the message with this time instead of the time of the write.
    pub fn with_created_at(mut self, at: DateTime<Utc>) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Token usage of this message; added to the session's totals when it is stored.
    pub fn with_usage(mut self, input_tokens: u64, output_tokens: u64, cost: Option<f64>) -> Self {
        self.input_tokens = Some(input_tokens);
        self.output_tokens = Some(output_tokens);
        self.cost = cost;
        self
    }

    /// An idempotency key (see [`NewMessage::key`]).
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Parses tool calls from JSON text: an array of OpenAI tool calls (checked when the
    /// message is stored).
    pub fn parse_tool_calls(text: &str) -> Result<Vec<Value>> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(calls)) => Ok(calls),
            Ok(other) => Err(Error::invalid(format!(
                "tool calls must be a JSON array, got {}",
                json_kind(&other)
            ))),
            Err(e) => Err(Error::invalid(format!(
                "tool calls are not valid JSON: {e}"
            ))),
        }
    }

    /// Whether `stored` is this message: every field equal, and the same time if this one
    /// names a time.
    pub(crate) fn matches(&self, stored: &Message) -> bool {
        let body = &stored.body;
        self.created_at
            .is_none_or(|t| stored_time(t) == stored.created_at)
            && self.role == body.role
            && self.content == body.content
            && self.tool_calls == body.tool_calls
            && self.tool_call_id == body.tool_call_id
            && self.metadata == body.metadata
            && self.model == body.model
            && self.input_tokens == body.input_tokens
            && self.output_tokens == body.output_tokens
            && self.cost == body.cost
            && self.extra == body.extra
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(cost) = self.cost {
            if !(0.0..=MAX_COST).contains(&cost) {
                return Err(Error::invalid(format!(
                    "cost must be a number from 0 to {MAX_COST}, got {cost}"
                )));
            }
        }
        for (name, value) in [
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
        ] {
            if value.is_some_and(|v| v > i64::MAX as u64) {
                return Err(Error::invalid(format!("{name} is too large")));
            }
        }
        match &self.content {
            Content::Text(text) if text.len() > MAX_CONTENT_BYTES => {
                return Err(Error::invalid(format!(
                    "content is {} bytes; the limit is {MAX_CONTENT_BYTES}",
                    text.len()
                )));
            }
            Content::Parts(parts) => {
                if let Some(i) = parts.iter().position(|p| !p.is_object()) {
                    return Err(Error::invalid(format!(
                        "content[{i}] must be a JSON object (a content part), got {}",
                        json_kind(&parts[i])
                    )));
                }
                check_json_within("content", parts, MAX_CONTENT_BYTES)?;
            }
            _ => {}
        }
        check_field("tool_call_id", self.tool_call_id.as_deref())?;
        check_field("model", self.model.as_deref())?;
        check_key(self.key.as_deref())?;
        if let Some(calls) = &self.tool_calls {
            check_tool_calls(calls)?;
            check_json("tool_calls", calls)?;
        }
        if self.role == Role::Tool && self.tool_call_id.is_none() {
            return Err(Error::invalid(
                "tool_call_id is missing: a tool message answers a tool call",
            ));
        }
        if let Some(metadata) = &self.metadata {
            check_json("metadata", metadata)?;
        }
        if let Some(key) = self
            .extra
            .keys()
            .find(|k| MESSAGE_KEYS.contains(&k.as_str()))
        {
            return Err(Error::invalid(format!(
                "extra key {key:?} is a field of the message; set the field instead"
            )));
        }
        check_json("extra keys", &self.extra)?;
        Ok(())
    }
}

impl NewMessage {
    /// The message as stored at position `index` by a write at `now`: with its own
    /// `created_at` when it named one.
    pub(crate) fn stored_at(mut self, index: u64, now: DateTime<Utc>) -> Message {
        Message {
            index,
            created_at: self.created_at.take().map_or(now, stored_time),
            body: self,
        }
    }
}

/// A stored message of a session's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// 0-based position in the session's history.
    pub index: u64,
    #[serde(flatten)]
    pub body: NewMessage,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

impl Message {
    pub fn role(&self) -> Role {
        self.body.role
    }

    /// The text content ([`NewMessage::content`]).
    pub fn content(&self) -> &str {
        self.body.content()
    }

    /// The text of the content in any form ([`Content::text`]).
    pub fn text(&self) -> Cow<'_, str> {
        self.body.content.text()
    }

    /// The message to store again with its time (`From` leaves the time to the write; a
    /// history written back either way keeps the times of the messages it shares).
    pub fn into_dated(self) -> NewMessage {
        NewMessage {
            created_at: Some(self.created_at),
            ..self.body
        }
    }
}

impl From<Message> for NewMessage {
    fn from(message: Message) -> Self {
        message.body
    }
}

/// Refuses a list of messages in which a key appears twice: a history holds each key once.
pub(crate) fn check_unique_keys(messages: &[NewMessage]) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, m) in messages.iter().enumerate() {
        if let Some(key) = &m.key {
            if !seen.insert(key.as_str()) {
                return Err(Error::invalid(format!(
                    "message {i}: key {key:?} appears twice; a history holds each key once"
                )));
            }
        }
    }
    Ok(())
}
