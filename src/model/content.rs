//! What a message is made of: its role and its content.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::validate::json_kind;
use crate::error::{Error, Result};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    /// Instructions from the application's developer (current OpenAI chat APIs), which
    /// newer models prefer to `system`. Stored as itself.
    Developer,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
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
        [
            Role::System,
            Role::Developer,
            Role::User,
            Role::Assistant,
            Role::Tool,
        ]
        .into_iter()
        .find(|role| role.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            Error::invalid(format!(
                "unknown role {s:?}: expected system, developer, user, assistant or tool"
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
