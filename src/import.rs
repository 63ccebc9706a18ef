//! Importing other stores' sessions: PraisonAI's JSON session files and the OpenAI Agents
//! SDK's `SQLiteSession` database. Each source becomes a [`SessionExport`] and goes through
//! [`Store::import_sessions`], so imports are per-session transactions and idempotent.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::model::{Message, Metadata, NewMessage, Role};
use crate::sessions::DEFAULT_BRANCH;
use crate::store::Store;
use crate::transfer::{BranchExport, ImportReport, SessionExport, SnapshotExport};

impl Store {
    /// Imports a directory of PraisonAI session files (`DefaultSessionStore` and
    /// `HierarchicalSessionStore`): same session ids, messages with their timestamps, tool
    /// calls, metadata, titles, parent links and snapshots. Files that are not UTF-8 or not
    /// valid session JSON are reported and skipped.
    pub fn import_praisonai(
        &self,
        dir: &Path,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportReport> {
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
            .collect();
        files.sort();
        // Parents first, so forks can share their rows.
        let mut sessions: Vec<(String, Result<SessionExport>)> = files
            .iter()
            .map(|path| (path.display().to_string(), praisonai_session(path)))
            .collect();
        sessions.sort_by_key(|(_, s)| {
            s.as_ref()
                .map_or(0, |s| usize::from(s.parent_session.is_some()))
        });
        self.import_sessions(sessions, progress)
    }

    /// Imports an OpenAI Agents SDK `SQLiteSession` database (tables `agent_sessions` and
    /// `agent_messages`): one session per `session_id`, items in order. Messages keep their
    /// role and text; function calls become assistant tool calls and their outputs tool
    /// results; every item's original JSON is kept in the message metadata under
    /// `openai_item`.
    pub fn import_openai_agents(
        &self,
        path: &Path,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportReport> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| not_openai(path, e.to_string()))?;
        let mut ids: Vec<(String, Option<String>, Option<String>)> = conn
            .prepare(
                "SELECT session_id, min(created_at), max(created_at) FROM agent_messages
                 GROUP BY session_id ORDER BY min(id)",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(|e| not_openai(path, e.to_string()))?;
        // Sessions with no messages yet still exist in agent_sessions.
        if let Ok(mut stmt) = conn.prepare(
            "SELECT session_id, created_at, updated_at FROM agent_sessions ORDER BY created_at",
        ) {
            let empty: Vec<(String, Option<String>, Option<String>)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
                .unwrap_or_default();
            for row in empty {
                if !ids.iter().any(|(id, _, _)| *id == row.0) {
                    ids.push(row);
                }
            }
        }
        let sessions: Vec<(String, Result<SessionExport>)> = ids
            .into_iter()
            .map(|(id, first, last)| {
                let source = format!("{}: session {id:?}", path.display());
                (source, openai_session(&conn, &id, first, last))
            })
            .collect();
        self.import_sessions(sessions, progress)
    }
}

fn not_openai(path: &Path, reason: String) -> Error {
    Error::invalid(format!(
        "{}: not an OpenAI Agents SQLiteSession database: {reason}",
        path.display()
    ))
}

fn praisonai_session(path: &Path) -> Result<SessionExport> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| Error::invalid("the file is not UTF-8"))?;
    let data: Value =
        serde_json::from_str(&text).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?;
    let Some(obj) = data.as_object() else {
        return Err(Error::invalid("the file is not a JSON object"));
    };
    let id = obj
        .get("session_id")
        .and_then(Value::as_str)
        .or_else(|| path.file_stem().and_then(|s| s.to_str()))
        .ok_or_else(|| Error::invalid("no session_id"))?
        .to_string();
    let text_field = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_string);
    let time_field = |key: &str| {
        text_field(key)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let messages_of = |key: &str| -> Result<Vec<Message>> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .filter(|m| m.is_object()) // PraisonAI itself skips non-object entries
                .enumerate()
                .map(|(i, m)| praisonai_message(i, m))
                .collect(),
            Some(_) => Err(Error::invalid(format!("{key} is not an array"))),
        }
    };
    let mut messages = messages_of("archived_messages")?;
    messages.extend(messages_of("messages")?);
    for (i, m) in messages.iter_mut().enumerate() {
        m.index = i as u64;
    }
    let first = messages.first().map(|m| m.created_at);
    let created_at = time_field("created_at").or(first).unwrap_or_else(Utc::now);
    let updated_at = time_field("updated_at").unwrap_or(created_at);
    let metadata = match obj.get("metadata") {
        Some(Value::Object(map)) => map.clone(),
        _ => Metadata::new(),
    };
    let snapshots = praisonai_snapshots(obj, &messages)?;
    let mut branches = vec![BranchExport {
        name: DEFAULT_BRANCH.into(),
        created_at,
        superseded_at: None,
        messages: messages.clone(),
    }];
    let mut pins = Vec::new();
    for (n, (label, metadata, created, history)) in snapshots.into_iter().enumerate() {
        // A snapshot of a prefix of the history pins it; any other gets a branch of its own.
        let is_prefix = history.len() <= messages.len()
            && history.iter().zip(&messages).all(|(a, b)| a.body == b.body);
        let branch = if is_prefix {
            DEFAULT_BRANCH.to_string()
        } else {
            let name = format!("snapshot-{}", n + 1);
            branches.push(BranchExport {
                name: name.clone(),
                created_at: created,
                superseded_at: None,
                messages: history.clone(),
            });
            name
        };
        pins.push(SnapshotExport {
            label,
            metadata,
            branch,
            length: history.len() as u64,
            created_at: created,
        });
    }
    Ok(SessionExport {
        id,
        title: text_field("title"),
        agent_name: text_field("agent_name"),
        agent_id: text_field("agent_id"),
        user_id: text_field("user_id"),
        metadata,
        parent_session: text_field("parent_id"),
        created_at,
        updated_at,
        head_branch: DEFAULT_BRANCH.into(),
        messages,
        branches: Some(branches),
        snapshots: Some(pins),
    })
}

fn praisonai_message(i: usize, m: &Value) -> Result<Message> {
    let role: Role = m
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("user")
        .parse()
        .map_err(|e| Error::invalid(format!("message {i}: {e}")))?;
    let content = match m.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let created_at = m
        .get("timestamp")
        .and_then(Value::as_f64)
        .and_then(|t| Utc.timestamp_micros((t * 1e6).round() as i64).single())
        .unwrap_or_else(Utc::now);
    let metadata = match m.get("metadata") {
        Some(Value::Object(map)) if !map.is_empty() => Some(map.clone()),
        _ => None,
    };
    let tool_calls = match m.get("tool_calls") {
        Some(Value::Array(calls)) if !calls.is_empty() => Some(calls.clone()),
        _ => None,
    };
    let mut body = NewMessage::new(role, content);
    body.metadata = metadata;
    body.tool_calls = tool_calls;
    body.tool_call_id = m
        .get("tool_call_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    body.model = body
        .metadata
        .as_ref()
        .and_then(|m| m.get("model"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Message {
        index: i as u64,
        body,
        created_at,
    })
}

type PraisonSnapshot = (Option<String>, Metadata, DateTime<Utc>, Vec<Message>);

/// Snapshots of a hierarchical session file: the transcript they reference (current format)
/// or the prefix up to their `message_index` (older files).
fn praisonai_snapshots(
    obj: &Map<String, Value>,
    messages: &[Message],
) -> Result<Vec<PraisonSnapshot>> {
    let Some(Value::Array(items)) = obj.get("snapshots") else {
        return Ok(Vec::new());
    };
    let records = obj
        .get("snapshot_storage")
        .and_then(|s| s.get("records"))
        .and_then(Value::as_object);
    let mut out = Vec::new();
    for snap in items.iter().filter_map(Value::as_object) {
        let referenced = snap
            .get("transcript_refs")
            .and_then(|r| r.get("messages"))
            .and_then(|m| m.get("items"))
            .and_then(Value::as_array);
        let history: Vec<Message> = match (referenced, records) {
            (Some(refs), Some(records)) => refs
                .iter()
                .filter_map(|r| r.as_str().and_then(|k| records.get(k)))
                .filter(|m| m.is_object())
                .enumerate()
                .map(|(i, m)| praisonai_message(i, m))
                .collect::<Result<_>>()?,
            _ => match snap
                .get("transcript")
                .and_then(|t| t.get("messages"))
                .and_then(Value::as_array)
            {
                Some(inline) => inline
                    .iter()
                    .filter(|m| m.is_object())
                    .enumerate()
                    .map(|(i, m)| praisonai_message(i, m))
                    .collect::<Result<_>>()?,
                None => {
                    let upto = snap
                        .get("message_index")
                        .and_then(Value::as_i64)
                        .unwrap_or(-1);
                    messages
                        .iter()
                        .take((upto + 1).max(0) as usize)
                        .cloned()
                        .collect()
                }
            },
        };
        let mut metadata = match snap.get("metadata") {
            Some(Value::Object(m)) => m.clone(),
            _ => Metadata::new(),
        };
        if let Some(id) = snap.get("id").and_then(Value::as_str) {
            metadata.insert("praisonai_snapshot_id".into(), json!(id));
        }
        let created = snap
            .get("created_at")
            .and_then(Value::as_f64)
            .and_then(|t| Utc.timestamp_micros((t * 1e6).round() as i64).single())
            .unwrap_or_else(Utc::now);
        let label = snap
            .get("label")
            .and_then(Value::as_str)
            .map(str::to_string);
        out.push((label, metadata, created, history));
    }
    Ok(out)
}

fn openai_session(
    conn: &Connection,
    id: &str,
    first: Option<String>,
    last: Option<String>,
) -> Result<SessionExport> {
    let mut stmt = conn.prepare(
        "SELECT message_data, created_at FROM agent_messages WHERE session_id = ?1 ORDER BY id",
    )?;
    let rows: Vec<(String, Option<String>)> = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let sqlite_time = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok())
            .map(|t| t.and_utc())
    };
    let mut messages = Vec::with_capacity(rows.len());
    for (i, (data, created)) in rows.iter().enumerate() {
        let item: Value = serde_json::from_str(data)
            .map_err(|e| Error::invalid(format!("item {i} is not valid JSON: {e}")))?;
        let mut body = openai_item(&item).map_err(|e| Error::invalid(format!("item {i}: {e}")))?;
        let mut metadata = Metadata::new();
        metadata.insert("openai_item".into(), item);
        body.metadata = Some(metadata);
        messages.push(Message {
            index: i as u64,
            body,
            created_at: sqlite_time(created).unwrap_or_else(Utc::now),
        });
    }
    let created_at = sqlite_time(&first).unwrap_or_else(Utc::now);
    Ok(SessionExport {
        id: id.to_string(),
        title: None,
        agent_name: None,
        agent_id: None,
        user_id: None,
        metadata: Metadata::new(),
        parent_session: None,
        created_at,
        updated_at: sqlite_time(&last).unwrap_or(created_at),
        head_branch: DEFAULT_BRANCH.into(),
        messages,
        branches: None,
        snapshots: None,
    })
}

/// One Responses-API item as a chat message.
fn openai_item(item: &Value) -> std::result::Result<NewMessage, String> {
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
            let call = json!({
                "id": item.get("call_id").cloned().unwrap_or(Value::Null),
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
            let role: Role = match role {
                "developer" => Role::System,
                other => other.parse().map_err(|e: Error| e.to_string())?,
            };
            Ok(NewMessage::new(role, text(item.get("content"))))
        }
        // Reasoning, web search, computer calls …: kept whole in metadata.
        Some(_) => Ok(NewMessage::assistant("")),
    }
}
