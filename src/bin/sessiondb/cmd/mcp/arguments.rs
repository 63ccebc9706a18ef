//! The arguments each tool takes, written once: the same table gives the JSON Schema a client
//! lists and checks what a call passes, so a bad argument is refused by name before the
//! store is asked anything.

use std::sync::Arc;

use rmcp::model::JsonObject;
use serde_json::{json, Map, Value};
use sessiondb::{Error, Result};

/// The most hits, sessions or messages one call returns.
pub const MAX_ITEMS: u64 = 100;

/// What an argument holds.
pub enum Kind {
    Text,
    /// A whole number from `min` to [`MAX_ITEMS`].
    Count {
        min: u64,
    },
    /// A 0-based message index.
    Index,
}

pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub about: &'static str,
}

const fn text(name: &'static str, about: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Text,
        required: false,
        about,
    }
}

const fn required(param: Param) -> Param {
    Param {
        required: true,
        ..param
    }
}

const fn count(name: &'static str, min: u64, about: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Count { min },
        required: false,
        about,
    }
}

const fn index(name: &'static str, about: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Index,
        required: false,
        about,
    }
}

const SESSION: Param = required(text("session", "The session's id"));
const AGENT: Param = text("agent", "Only sessions of this agent name");
const USER: Param = text("user", "Only sessions of this user id");

pub const SEARCH: &[Param] = &[
    required(text(
        "query",
        "Words that must all appear in a message (punctuation is fine)",
    )),
    count(
        "limit",
        1,
        "At most this many hits, best first (default 10)",
    ),
    text("session", "Only this session's current history"),
    AGENT,
    USER,
];

pub const LIST: &[Param] = &[
    count("limit", 1, "At most this many sessions (default 20)"),
    text(
        "after",
        "Continue after this cursor: the `next` of the previous page",
    ),
    AGENT,
    USER,
    text(
        "title",
        "Only sessions whose title contains this text (ASCII case-insensitive)",
    ),
];

pub const HISTORY: &[Param] = &[
    SESSION,
    index(
        "index",
        "Read a window around this message (0-based, as in search hits)",
    ),
    count(
        "before",
        0,
        "With index: this many messages before it (default 5)",
    ),
    count(
        "after",
        0,
        "With index: this many messages after it (default 5)",
    ),
    count(
        "last",
        1,
        "Without index: the last N messages of the current history (default 20)",
    ),
];

pub const TREE: &[Param] = &[SESSION];

pub const FORK: &[Param] = &[
    SESSION,
    index(
        "at",
        "Keep messages 0..=at in the fork (default: all of them)",
    ),
    text(
        "title",
        "The fork's title (default: \"Fork of <title or id>\")",
    ),
];

pub const SNAPSHOT: &[Param] = &[SESSION, text("label", "A label for the snapshot")];

/// The JSON Schema of `params`: an object with exactly these properties.
pub fn schema(params: &[Param]) -> Arc<JsonObject> {
    let properties: Map<String, Value> = params
        .iter()
        .map(|p| {
            let mut property = match p.kind {
                Kind::Text => json!({"type": "string"}),
                Kind::Count { min } => {
                    json!({"type": "integer", "minimum": min, "maximum": MAX_ITEMS})
                }
                Kind::Index => json!({"type": "integer", "minimum": 0}),
            };
            property["description"] = p.about.into();
            (p.name.to_string(), property)
        })
        .collect();
    let required: Vec<&str> = params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    let schema = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
    match schema {
        Value::Object(object) => Arc::new(object),
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// A call's arguments, each checked against its tool's table.
pub struct Arguments(JsonObject);

impl Arguments {
    /// Refuses an argument the tool does not take, a required one missing, or a value of
    /// the wrong kind, naming it. A `null` is taken as the argument left out.
    pub fn check(params: &[Param], mut given: JsonObject) -> Result<Arguments> {
        given.retain(|_, value| !value.is_null());
        if let Some(name) = given.keys().find(|k| params.iter().all(|p| p.name != *k)) {
            let known: Vec<&str> = params.iter().map(|p| p.name).collect();
            return Err(Error::InvalidInput(format!(
                "unknown argument {name:?} (this tool takes {})",
                known.join(", ")
            )));
        }
        for p in params {
            match given.get(p.name) {
                None if p.required => {
                    return Err(Error::InvalidInput(format!(
                        "argument {:?} is required",
                        p.name
                    )))
                }
                None => {}
                Some(value) => check_value(p, value)?,
            }
        }
        Ok(Arguments(given))
    }

    pub fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(Value::as_str).map(str::to_string)
    }

    /// A number [`Arguments::check`] passed, or `default`.
    pub fn number(&self, name: &str, default: u64) -> u64 {
        self.0.get(name).and_then(Value::as_u64).unwrap_or(default)
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

fn check_value(p: &Param, value: &Value) -> Result<()> {
    let wrong = |what: String| {
        Err(Error::InvalidInput(format!(
            "argument {:?} must be {what}, not {}",
            p.name,
            shown(value)
        )))
    };
    match p.kind {
        Kind::Text if value.is_string() => Ok(()),
        Kind::Text => wrong("a string".into()),
        Kind::Count { min } => match value.as_u64() {
            Some(n) if (min..=MAX_ITEMS).contains(&n) => Ok(()),
            _ => wrong(format!("a whole number from {min} to {MAX_ITEMS}")),
        },
        Kind::Index => match value.as_u64() {
            Some(_) => Ok(()),
            None => wrong("a message index, a whole number from 0".into()),
        },
    }
}

/// `value` in an error message: short, whatever was passed.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
