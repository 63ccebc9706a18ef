//! Public types: sessions, messages, roles, usage, and the limits on what callers may store.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Longest session id, in bytes of UTF-8.
pub const MAX_SESSION_ID_BYTES: usize = 256;
/// Largest message content, in bytes of UTF-8.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024 * 1024;
/// Largest metadata object or tool-call array, serialized, in bytes.
pub const MAX_JSON_BYTES: usize = 1024 * 1024;
/// Deepest nesting of arrays and objects in metadata and tool calls.
pub const MAX_JSON_DEPTH: usize = 32;
/// Largest cost of one message: far above any real bill, far below where sums lose meaning.
pub const MAX_COST: f64 = 1e12;
/// Longest short text field (title, agent and user ids, model, tool call id, label), in bytes.
pub const MAX_FIELD_BYTES: usize = 4096;

/// A JSON object, as stored in `metadata` columns.
pub type Metadata = Map<String, Value>;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    /// Case-insensitive: `User` and `USER` are `user`.
    fn from_str(s: &str) -> Result<Self> {
        [Role::System, Role::User, Role::Assistant, Role::Tool]
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown role {s:?}: expected system, user, assistant or tool"
                ))
            })
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl ToSql for Role {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Role {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e: Error| FromSqlError::Other(Box::new(e)))
    }
}

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

/// What a message says: OpenAI's `content`, which may be text, a list of parts, `null`, or
/// missing altogether. Each form is stored as given and read back the same.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Content {
    /// No `content` key at all.
    #[default]
    Absent,
    /// `"content": null`, as an assistant message that only calls tools has.
    Null,
    Text(String),
    /// Content parts (`{"type": "text", "text": …}`, `{"type": "image_url", …}`, …), each a
    /// JSON object, kept exactly.
    Parts(Vec<Value>),
}

impl Content {
    /// The text: the string itself, the `text` of every part that has one (joined by
    /// newlines), or nothing. This is what `history` shows and search finds.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Content::Text(text) => Cow::Borrowed(text),
            Content::Parts(parts) => Cow::Owned(
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Content::Absent | Content::Null => Cow::Borrowed(""),
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Content::Absent)
    }

    /// How the form is recorded in `messages.content_kind` (`NULL` for text).
    pub(crate) fn kind(&self) -> Option<&'static str> {
        match self {
            Content::Absent => Some("absent"),
            Content::Null => Some("null"),
            Content::Text(_) => None,
            Content::Parts(_) => Some("parts"),
        }
    }
}

impl From<&str> for Content {
    fn from(text: &str) -> Self {
        Content::Text(text.to_string())
    }
}

impl From<String> for Content {
    fn from(text: String) -> Self {
        Content::Text(text)
    }
}

impl From<&String> for Content {
    fn from(text: &String) -> Self {
        Content::Text(text.clone())
    }
}

impl From<Vec<Value>> for Content {
    fn from(parts: Vec<Value>) -> Self {
        Content::Parts(parts)
    }
}

impl Serialize for Content {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Content::Absent | Content::Null => s.serialize_none(),
            Content::Text(text) => s.serialize_str(text),
            Content::Parts(parts) => parts.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(Content::Null),
            Value::String(text) => Ok(Content::Text(text)),
            Value::Array(parts) => Ok(Content::Parts(parts)),
            other => Err(serde::de::Error::custom(format!(
                "content must be a string, an array of parts or null, got {}",
                json_kind(&other)
            ))),
        }
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

/// A key is a short non-empty text without control characters.
fn check_key(key: Option<&str>) -> Result<()> {
    match key {
        Some(k) if k.is_empty() || k.chars().any(char::is_control) => Err(Error::invalid(format!(
            "key {k:?} is empty or contains a control character"
        ))),
        _ => check_field("key", key),
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

/// Each tool call must be an object with a string `id` and a `function` object with a string
/// `name` and string `arguments`: what a model's next request needs to send back.
fn check_tool_calls(calls: &[Value]) -> Result<()> {
    for (i, call) in calls.iter().enumerate() {
        let field = |path: &str, value: Option<&Value>, want: &str| {
            let got = value.map_or("missing", json_kind);
            Error::invalid(format!("tool_calls[{i}]{path} must be {want}, got {got}"))
        };
        let Some(call) = call.as_object() else {
            return Err(field("", Some(call), "an object"));
        };
        if !call.get("id").is_some_and(Value::is_string) {
            return Err(field(".id", call.get("id"), "a string"));
        }
        let Some(function) = call.get("function").and_then(Value::as_object) else {
            return Err(field(".function", call.get("function"), "an object"));
        };
        for key in ["name", "arguments"] {
            if !function.get(key).is_some_and(Value::is_string) {
                return Err(field(
                    &format!(".function.{key}"),
                    function.get(key),
                    "a string",
                ));
            }
        }
    }
    Ok(())
}

/// `e` with `place` (such as `message 3`) in front of what was wrong, without saying
/// "invalid input" twice.
pub(crate) fn invalid_at(place: &str, e: Error) -> Error {
    match e {
        Error::InvalidInput(what) => Error::InvalidInput(format!("{place}: {what}")),
        other => other,
    }
}

/// Refuses a short text field longer than [`MAX_FIELD_BYTES`].
pub(crate) fn check_field(name: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) if v.len() > MAX_FIELD_BYTES => Err(Error::invalid(format!(
            "{name} is {} bytes; the limit is {MAX_FIELD_BYTES}",
            v.len()
        ))),
        _ => Ok(()),
    }
}

/// Refuses JSON nested deeper than [`MAX_JSON_DEPTH`] or larger than [`MAX_JSON_BYTES`].
pub(crate) fn check_json(name: &str, value: &impl Serialize) -> Result<()> {
    check_json_within(name, value, MAX_JSON_BYTES)
}

/// [`check_json`] with another size limit (content parts may carry images).
fn check_json_within(name: &str, value: &impl Serialize, max_bytes: usize) -> Result<()> {
    let value = serde_json::to_value(value)
        .map_err(|e| Error::invalid(format!("{name} cannot be serialized: {e}")))?;
    // Iterative, so a hostile depth cannot exhaust the stack here.
    let mut stack = vec![(&value, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth > MAX_JSON_DEPTH {
            return Err(Error::invalid(format!(
                "{name} nests deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    let size = serde_json::to_string(&value).map_or(0, |t| t.len());
    if size > max_bytes {
        return Err(Error::invalid(format!(
            "{name} is {size} bytes as JSON; the limit is {max_bytes}"
        )));
    }
    Ok(())
}

/// Parses a JSON object (metadata) from text.
pub fn parse_metadata(text: &str) -> Result<Metadata> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Error::invalid(format!(
            "metadata must be a JSON object, got {}",
            json_kind(&other)
        ))),
        Err(e) => Err(Error::invalid(format!("metadata is not valid JSON: {e}"))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
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

/// A session as stored: identity, descriptive fields, totals and its current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub title: Option<String>,
    pub agent_name: Option<String>,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub metadata: Metadata,
    /// The session this one was forked from, while that session exists.
    pub parent_session: Option<String>,
    /// Name of the branch whose lineage is the current history.
    pub head_branch: String,
    pub message_count: u64,
    pub usage: Usage,
    /// One more with every write to the session; never repeats for an id within a file, even
    /// after the session is deleted and recreated.
    pub version: i64,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// Fields of a session to create. Every field is optional; a missing id is generated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewSession {
    pub id: Option<String>,
    pub title: Option<String>,
    pub agent_name: Option<String>,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub metadata: Metadata,
}

impl NewSession {
    pub fn with_id(id: impl Into<String>) -> Self {
        NewSession {
            id: Some(id.into()),
            ..Self::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_field("title", self.title.as_deref())?;
        check_field("agent_name", self.agent_name.as_deref())?;
        check_field("agent_id", self.agent_id.as_deref())?;
        check_field("user_id", self.user_id.as_deref())?;
        check_json("metadata", &self.metadata)
    }
}

/// Checks a caller-supplied session id: non-empty, at most [`MAX_SESSION_ID_BYTES`] bytes, no
/// control characters. Anything else (dots, spaces, quotes, any script) is allowed and kept
/// exactly: `a.b` and `a_b` are different sessions.
pub fn validate_session_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid("session id is empty"));
    }
    if id.len() > MAX_SESSION_ID_BYTES {
        return Err(Error::invalid(format!(
            "session id {:?}… is {} bytes; the limit is {MAX_SESSION_ID_BYTES}",
            id.chars().take(32).collect::<String>(),
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "session id {id:?} contains a control character"
        )));
    }
    Ok(())
}

/// Timestamps are stored as ISO-8601 UTC text with microseconds, so they sort as text.
pub(crate) fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `t` as it is stored: microseconds, the rest dropped.
pub(crate) fn stored_time(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(6)
}

/// `t` as the file stores it.
pub(crate) fn time_text(t: &DateTime<Utc>) -> String {
    stored_time(*t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Serializes times in the one form the file stores (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), for
/// `#[serde(serialize_with)]`: chrono's default drops zero fractions and would print
/// `…:05Z` for one message and `…:05.120Z` for the next. Reading accepts any RFC 3339.
pub(crate) mod timestamp {
    use chrono::{DateTime, Utc};

    pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::time_text(t))
    }

    pub fn serialize_option<S: serde::Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::time_text(t)),
            None => s.serialize_none(),
        }
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

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    if let Some(t) = parse_our_time(text.as_bytes()) {
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::Corrupt(format!("timestamp {text:?} is not ISO-8601: {e}")))
}

/// The exact form [`now_text`] writes, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, parsed without the
/// general RFC 3339 machinery: reading a history parses one per message.
fn parse_our_time(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 27
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[26] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| {
        b[range].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = date.and_hms_micro_opt(num(11..13)?, num(14..16)?, num(17..19)?, num(20..26)?)?;
    Some(time.and_utc())
}

/// Longest branch name, in bytes of UTF-8.
pub const MAX_BRANCH_NAME_BYTES: usize = 128;

/// Checks a caller-chosen branch name: non-empty, at most [`MAX_BRANCH_NAME_BYTES`] bytes, no
/// control characters, and no `@` (reserved for superseded heads, named `<name>@<version>`).
pub(crate) fn validate_branch_name(name: &str) -> Result<()> {
    let problem = if name.trim().is_empty() {
        "is empty"
    } else if name.len() > MAX_BRANCH_NAME_BYTES {
        "is too long"
    } else if name.chars().any(char::is_control) {
        "contains a control character"
    } else if name.contains('@') {
        "contains '@', which is reserved for superseded heads"
    } else {
        return Ok(());
    };
    Err(Error::invalid(format!("branch name {name:?} {problem}")))
}

/// Where a branch starts: it inherits the first `at_index + 1` messages of `branch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkPoint {
    /// The session owning the parent branch; `None` if that session was deleted.
    pub session: Option<String>,
    pub branch: String,
    pub at_index: u64,
}

/// A branch of a session: an append-only log whose history is its lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Branch {
    pub name: String,
    /// Messages in the branch's full history, inherited ones included.
    pub length: u64,
    pub fork_point: Option<ForkPoint>,
    pub is_head: bool,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    /// When set, this branch is a former head replaced by `set_chat_history`, `clear`,
    /// `revert_to_message` or `restore_snapshot`, or a deleted branch. It stays readable (and
    /// `switch_branch` brings it back) until `prune` collects it after the retention window.
    #[serde(serialize_with = "timestamp::serialize_option")]
    pub superseded_at: Option<DateTime<Utc>>,
}

/// Identifies a snapshot within its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SnapshotId(pub i64);

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for SnapshotId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        s.parse()
            .map(SnapshotId)
            .map_err(|_| Error::invalid(format!("snapshot id {s:?} is not a number")))
    }
}

/// A named pointer to a session's history at one moment. Restoring it copies nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub session_id: String,
    pub label: Option<String>,
    pub metadata: Metadata,
    /// The branch the snapshot was taken on (its current name).
    pub branch: String,
    /// Number of messages it pins.
    pub length: u64,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

/// A session, its branches and the sessions forked from it, recursively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionTree {
    pub id: String,
    pub title: Option<String>,
    pub message_count: u64,
    /// The session this one was forked from, while that session exists.
    pub parent_session: Option<String>,
    /// Name of the branch whose lineage is the current history.
    pub head_branch: String,
    /// Every branch of the session, oldest first, superseded ones included (flagged).
    pub branches: Vec<Branch>,
    pub children: Vec<SessionTree>,
}

/// Where two branches of a session diverge, from [`crate::Store::diff_branches`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchDiff {
    pub session_id: String,
    /// How many leading messages the two histories share: they diverge at this index.
    pub common: u64,
    pub a: BranchSide,
    pub b: BranchSide,
}

/// One side of a [`BranchDiff`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchSide {
    pub branch: String,
    /// Messages in the branch's full history.
    pub length: u64,
    /// Its messages after the common prefix (indexes from `common` on).
    pub messages: Vec<Message>,
}

/// What [`crate::Store::prune`] removed (or, on a dry run, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub branches: u64,
    pub messages: u64,
    /// Bytes of message content, tool calls and metadata in the removed rows.
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_time_reads_what_now_text_writes_and_other_rfc3339() {
        let now = now_text();
        let parsed = parse_time(&now).unwrap();
        assert_eq!(parsed.to_rfc3339_opts(SecondsFormat::Micros, true), now);
        let other = parse_time("2026-01-02T03:04:05+01:00").unwrap();
        assert_eq!(
            other.to_rfc3339_opts(SecondsFormat::Secs, true),
            "2026-01-02T02:04:05Z"
        );
        assert!(matches!(
            parse_time("2026-13-02T03:04:05.000000Z"),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(parse_time("yesterday"), Err(Error::Corrupt(_))));
    }
}
