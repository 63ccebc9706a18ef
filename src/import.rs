//! Importing other stores' sessions: PraisonAI's JSON session files and the OpenAI Agents
//! SDK's `SQLiteSession` database. Each source becomes a [`SessionExport`] and goes through
//! [`Store::import_sessions`], so imports are per-session transactions and idempotent.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags};
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::heads::DEFAULT_BRANCH;
use crate::model::{invalid_at, Message, Metadata, NewMessage, Role};
use crate::store::Store;
use crate::transfer::{BranchExport, ImportOptions, ImportReport, SessionExport, SnapshotExport};

impl Store {
    /// Imports a directory of PraisonAI session files (`DefaultSessionStore` and
    /// `HierarchicalSessionStore`): same session ids, messages with their timestamps, tool
    /// calls, metadata, titles, parent links and snapshots. Files are read one at a time,
    /// parents before their forks (so forks share their rows). Files that are not UTF-8, not
    /// valid session JSON, or larger than [`ImportOptions::max_session_bytes`] (checked
    /// before reading) are reported and skipped. `progress(messages, total)` counts messages.
    pub fn import_praisonai(
        &self,
        dir: &Path,
        options: &ImportOptions,
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
            // Never the database itself (see `refuse_database_file`).
            .filter(|p| crate::out_file::database_file(self.path(), p).is_none())
            .collect();
        files.sort();
        // A first light pass (ids, parents, message counts; nothing kept) orders parents first.
        let headers: Vec<Header> = files
            .iter()
            .map(|path| praisonai_header(path, options.max_session_bytes))
            .collect();
        let depths = fork_depths(&headers);
        let mut order: Vec<usize> = (0..files.len()).collect();
        order.sort_by_key(|&i| depths[i]);
        let total = headers.iter().map(|h| h.messages).sum();
        let sessions = order.into_iter().map(|i| {
            let path = &files[i];
            (
                path.display().to_string(),
                praisonai_session(path, options.max_session_bytes),
            )
        });
        self.import_counted(sessions, total, options, progress)
    }

    /// Imports an OpenAI Agents SDK `SQLiteSession` database (tables `agent_sessions` and
    /// `agent_messages`): one session per `session_id`, items in order, read one session at
    /// a time. Messages keep their role and text; function calls become assistant tool calls
    /// and their outputs tool results; every item's original JSON is kept in the message
    /// metadata under `openai_item`. `progress(messages, total)` counts messages.
    pub fn import_openai_agents(
        &self,
        path: &Path,
        options: &ImportOptions,
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
            let known: HashSet<String> = ids.iter().map(|(id, _, _)| id.clone()).collect();
            ids.extend(empty.into_iter().filter(|row| !known.contains(&row.0)));
        }
        let total: i64 = conn
            .query_row("SELECT count(*) FROM agent_messages", [], |r| r.get(0))
            .map_err(|e| not_openai(path, e.to_string()))?;
        let sessions = ids.into_iter().map(|(id, first, last)| {
            let source = format!("{}: session {id:?}", path.display());
            let session = openai_session(&conn, &id, first, last);
            (source, session)
        });
        self.import_counted(
            sessions,
            usize::try_from(total).unwrap_or(0),
            options,
            progress,
        )
    }
}

/// What the ordering pass needs of a PraisonAI file.
struct Header {
    id: Option<String>,
    parent: Option<String>,
    messages: usize,
}

fn praisonai_header(path: &Path, max_bytes: u64) -> Header {
    #[derive(Deserialize)]
    struct Fields {
        session_id: Option<Value>,
        parent_id: Option<Value>,
        #[serde(default)]
        messages: Count,
        #[serde(default)]
        archived_messages: Count,
    }
    let fields = read_limited(path, max_bytes)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Fields>(&bytes).ok());
    let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_string);
    match fields {
        Some(f) => Header {
            id: text(&f.session_id).or_else(|| file_stem(path)),
            parent: text(&f.parent_id),
            messages: f.messages.0 + f.archived_messages.0,
        },
        None => Header {
            id: None,
            parent: None,
            messages: 0,
        },
    }
}

fn file_stem(path: &Path) -> Option<String> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_string)
}

/// How deep each session sits in the fork tree of the directory (0 for a root, or a parent
/// outside it); a cycle stops at the number of files.
fn fork_depths(headers: &[Header]) -> Vec<usize> {
    let parent_of: HashMap<&str, &str> = headers
        .iter()
        .filter_map(|h| Some((h.id.as_deref()?, h.parent.as_deref()?)))
        .collect();
    headers
        .iter()
        .map(|h| {
            let mut depth = 0;
            let mut at = h.id.as_deref();
            while let Some(parent) = at.and_then(|id| parent_of.get(id)) {
                depth += 1;
                if depth >= headers.len() {
                    break;
                }
                at = Some(parent);
            }
            depth
        })
        .collect()
}

/// The length of a JSON array without keeping its elements (0 for anything else).
#[derive(Default)]
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Counter;
        impl<'de> Visitor<'de> for Counter {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Count, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Count(0))
            }
            fn visit_unit<E>(self) -> std::result::Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<Count, E> {
                Ok(Count(0))
            }
        }
        d.deserialize_any(Counter)
    }
}

/// The file's bytes, refused without reading when it is larger than `max_bytes`.
fn read_limited(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > max_bytes {
        return Err(Error::invalid(format!(
            "{}: {size} bytes, over the limit of {max_bytes} bytes for one session              (MAX_IMPORT_SESSION_BYTES; raise ImportOptions::max_session_bytes to import it)",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    // A file that grows after the check is still read no further than the limit.
    std::fs::File::open(path)
        .and_then(|f| f.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(Error::invalid(format!(
            "{}: grew past the limit of {max_bytes} bytes while being read",
            path.display()
        )));
    }
    Ok(bytes)
}

fn not_openai(path: &Path, reason: String) -> Error {
    Error::invalid(format!(
        "{}: not an OpenAI Agents SQLiteSession database: {reason}",
        path.display()
    ))
}

fn praisonai_session(path: &Path, max_bytes: u64) -> Result<SessionExport> {
    let obj = praisonai_object(path, max_bytes)?;
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
    let messages = praisonai_history(&obj)?;
    let first = messages.first().map(|m| m.created_at);
    let created_at = time_field("created_at").or(first).unwrap_or_else(Utc::now);
    let updated_at = time_field("updated_at").unwrap_or(created_at);
    let metadata = match obj.get("metadata") {
        Some(Value::Object(map)) => map.clone(),
        _ => Metadata::new(),
    };
    let (mut extra, pins) = pin_snapshots(&praisonai_snapshots(&obj)?, &messages)?;
    // Only when there are other branches is the history written out as `main` a second time.
    let branches = (!extra.is_empty()).then(|| {
        let mut all = vec![BranchExport {
            name: DEFAULT_BRANCH.into(),
            created_at,
            superseded_at: None,
            messages: messages.clone(),
            ..BranchExport::default()
        }];
        all.append(&mut extra);
        all
    });
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
        branches,
        snapshots: Some(pins),
        ..SessionExport::default()
    })
}

/// The file's JSON object, refused unless it looks like a PraisonAI session.
fn praisonai_object(path: &Path, max_bytes: u64) -> Result<Map<String, Value>> {
    let bytes = read_limited(path, max_bytes)?;
    let text = String::from_utf8(bytes).map_err(|_| Error::invalid("the file is not UTF-8"))?;
    let data: Value =
        serde_json::from_str(&text).map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?;
    drop(text);
    let Value::Object(obj) = data else {
        return Err(Error::invalid("the file is not a JSON object"));
    };
    // PraisonAI writes "messages" into every session file, empty or not; any other JSON
    // object would otherwise become an empty session named after the file.
    if !obj.contains_key("messages") && !obj.contains_key("archived_messages") {
        return Err(Error::invalid(
            "not a PraisonAI session file (it has no \"messages\")",
        ));
    }
    Ok(obj)
}

/// The whole history: the archived messages, then the current ones.
fn praisonai_history(obj: &Map<String, Value>) -> Result<Vec<Message>> {
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
    Ok(messages)
}

/// Each snapshot becomes a pointer: into the history when it is a prefix of it, else into
/// a branch of its own, which snapshots that are prefixes of it share (longest first).
/// Returns those branches and the snapshots, in the file's order.
fn pin_snapshots(
    snapshots: &[PraisonSnapshot<'_>],
    messages: &[Message],
) -> Result<(Vec<BranchExport>, Vec<SnapshotExport>)> {
    let mut order: Vec<usize> = (0..snapshots.len()).collect();
    order.sort_by_key(|&n| std::cmp::Reverse(snapshots[n].items.as_ref().map_or(0, Vec::len)));
    let mut extra: Vec<BranchExport> = Vec::new();
    let mut pins: Vec<Option<SnapshotExport>> = vec![None; snapshots.len()];
    for n in order {
        let snap = &snapshots[n];
        let (branch, length) = match &snap.items {
            None => (DEFAULT_BRANCH.to_string(), snap.upto.min(messages.len())),
            Some(items) if is_prefix_of(items, messages)? => {
                (DEFAULT_BRANCH.to_string(), items.len())
            }
            Some(items) => {
                let mut found = None;
                for b in &extra {
                    if is_prefix_of(items, &b.messages)? {
                        found = Some(b.name.clone());
                        break;
                    }
                }
                match found {
                    Some(name) => (name, items.len()),
                    None => {
                        let name = format!("snapshot-{}", n + 1);
                        extra.push(BranchExport {
                            name: name.clone(),
                            created_at: snap.created,
                            superseded_at: None,
                            messages: items
                                .iter()
                                .enumerate()
                                .map(|(i, m)| praisonai_message(i, m))
                                .collect::<Result<_>>()?,
                            ..BranchExport::default()
                        });
                        (name, items.len())
                    }
                }
            }
        };
        pins[n] = Some(SnapshotExport {
            label: snap.label.clone(),
            metadata: snap.metadata.clone(),
            branch,
            length: length as u64,
            created_at: snap.created,
        });
    }
    Ok((extra, pins.into_iter().flatten().collect()))
}

fn praisonai_message(i: usize, m: &Value) -> Result<Message> {
    let role: Role = m
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("user")
        .parse()
        .map_err(|e| invalid_at(&format!("message {i}"), e))?;
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

/// A PraisonAI snapshot, its messages not yet converted.
struct PraisonSnapshot<'a> {
    label: Option<String>,
    metadata: Metadata,
    created: DateTime<Utc>,
    /// The messages it references or holds, or `None` for an older file's `message_index`.
    items: Option<Vec<&'a Value>>,
    /// With no items: how many messages of the history it pins.
    upto: usize,
}

/// Whether `items`, converted one at a time, are the first messages of `history`.
fn is_prefix_of(items: &[&Value], history: &[Message]) -> Result<bool> {
    if items.len() > history.len() {
        return Ok(false);
    }
    for (i, (item, message)) in items.iter().zip(history).enumerate() {
        if praisonai_message(i, item)?.body != message.body {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Snapshots of a hierarchical session file: the transcript they reference (current format)
/// or hold inline, or the prefix up to their `message_index` (older files).
fn praisonai_snapshots(obj: &Map<String, Value>) -> Result<Vec<PraisonSnapshot<'_>>> {
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
        let inline = snap
            .get("transcript")
            .and_then(|t| t.get("messages"))
            .and_then(Value::as_array);
        let items: Option<Vec<&Value>> = match (referenced, records, inline) {
            (Some(refs), Some(records), _) => Some(
                refs.iter()
                    .filter_map(|r| r.as_str().and_then(|k| records.get(k)))
                    .filter(|m| m.is_object())
                    .collect(),
            ),
            (_, _, Some(inline)) => Some(inline.iter().filter(|m| m.is_object()).collect()),
            _ => None,
        };
        let upto = snap
            .get("message_index")
            .and_then(Value::as_i64)
            .map_or(0, |i| usize::try_from(i.saturating_add(1)).unwrap_or(0));
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
        out.push(PraisonSnapshot {
            label,
            metadata,
            created,
            items,
            upto,
        });
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
        let body =
            NewMessage::from_openai_item(item).map_err(|e| invalid_at(&format!("item {i}"), e))?;
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
        ..SessionExport::default()
    })
}
