//! Checks of what callers store: ids, names, short fields, JSON size and depth, tool calls
//! and message keys.

use serde::Serialize;
use serde_json::Value;

use super::{
    Metadata, MAX_BRANCH_NAME_BYTES, MAX_FIELD_BYTES, MAX_JSON_BYTES, MAX_JSON_DEPTH,
    MAX_SESSION_ID_BYTES,
};
use crate::error::{Error, Result};

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

/// A key is a short non-empty text without control characters.
pub(super) fn check_key(key: Option<&str>) -> Result<()> {
    match key {
        Some(k) if k.is_empty() || k.chars().any(char::is_control) => Err(Error::invalid(format!(
            "key {k:?} is empty or contains a control character"
        ))),
        _ => check_field("key", key),
    }
}

/// Each tool call must be an object with a string `id` and a `function` object with a string
/// `name` and string `arguments`: what a model's next request needs to send back.
pub(super) fn check_tool_calls(calls: &[Value]) -> Result<()> {
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
pub(super) fn check_json_within(
    name: &str,
    value: &impl Serialize,
    max_bytes: usize,
) -> Result<()> {
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

pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
