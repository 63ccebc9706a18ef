//! OpenAI Agents SDK items as messages, and back.
//!
//! An item of any shape (a message, a function call or its output, a reasoning item, a web
//! search, …) is stored as the chat message a person reads in `sessiondb history`, with the
//! item itself kept whole in the message's metadata under `openai_item`. Reading gives that
//! item back exactly; a message written through another API reads as its chat form
//! `{"role", "content"}`, which the SDK takes as an input item. Faces (the Python binding,
//! the importer) convert here and nowhere else.

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::model::{Content, Message, Metadata, NewMessage, Role};

/// The metadata key that holds the item a message was made from.
const ITEM_KEY: &str = "openai_item";

impl NewMessage {
    /// An OpenAI Agents SDK (Responses API) item as a message: messages keep their role and
    /// text, function calls become assistant tool calls, their outputs tool results, and any
    /// other item (reasoning, web search, …) an empty assistant message. The item itself is
    /// kept whole in the metadata under `openai_item`, so it reads back exactly
    /// ([`Message::openai_item`]).
    pub fn from_openai_item(item: Value) -> Result<NewMessage> {
        let mut message = chat_message(&item).map_err(Error::invalid)?;
        let mut metadata = Metadata::new();
        metadata.insert(ITEM_KEY.into(), item);
        message.metadata = Some(metadata);
        Ok(message)
    }
}

impl Message {
    /// The OpenAI Agents SDK item this message holds: the item it was stored from
    /// ([`NewMessage::from_openai_item`]), exactly; for a message written otherwise, its chat
    /// form `{"role": …, "content": …}` (content as stored: text, parts or `null`).
    pub fn openai_item(&self) -> Cow<'_, Value> {
        if let Some(item) = self.body.metadata.as_ref().and_then(|m| m.get(ITEM_KEY)) {
            return Cow::Borrowed(item);
        }
        let content = match &self.body.content {
            Content::Text(text) => Value::String(text.clone()),
            Content::Parts(parts) => Value::Array(parts.clone()),
            Content::Null | Content::Absent => Value::Null,
        };
        Cow::Owned(json!({"role": self.role().as_str(), "content": content}))
    }
}

/// One Responses-API item as the chat message a person reads.
fn chat_message(item: &Value) -> std::result::Result<NewMessage, String> {
    let kind = item.get("type").and_then(Value::as_str);
    let text = |v: Option<&Value>| -> String {
        match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| {
                    p.get("text")
                        .and_then(Value::as_str)
                        .or(p.get("refusal").and_then(Value::as_str))
                })
                .collect::<Vec<_>>()
                .join(""),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    };
    match kind {
        Some("function_call") => {
            // The SDK writes calls without a `call_id` too: the tool call then has an empty
            // id, and the item in the metadata keeps what was (not) there.
            let call_id = item.get("call_id").filter(|id| id.is_string());
            let call = json!({
                "id": call_id.cloned().unwrap_or(json!("")),
                "type": "function",
                "function": {
                    "name": item.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": item.get("arguments").cloned().unwrap_or(json!("")),
                },
            });
            Ok(NewMessage::assistant("").with_tool_calls(vec![call]))
        }
        Some("function_call_output") => {
            let call_id = item
                .get("call_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Ok(NewMessage::tool(call_id, text(item.get("output"))))
        }
        Some("message") | None => {
            let role = item
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("assistant");
            let role: Role = role.parse().map_err(|e: Error| match e {
                Error::InvalidInput(what) => what,
                other => other.to_string(),
            })?;
            let mut message = NewMessage::new(role, text(item.get("content")));
            // A chat-completions tool result answers the call it names.
            if role == Role::Tool {
                message.tool_call_id = item
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            Ok(message)
        }
        // Reasoning, web search, computer calls …: kept whole in metadata.
        Some(_) => Ok(NewMessage::assistant("")),
    }
}
