//! Session operations: create, read, list, edit, clear, delete.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::sql::{args, Param, Tx};
use crate::error::{Error, Result};
use crate::heads::{
    fork_new_head, head_of, insert_session, next_step, require_head, save_head, touch, Step,
};
use crate::model::{
    check_field, check_json, parse_time, time_text, validate_session_id, Metadata, NewSession,
    Session,
};
use crate::session_row::{
    apply_metadata_patch, delete_session_in, edit_metadata, load_session, merge_metadata,
    session_from_row, SESSION_COLUMNS,
};
use crate::store::Store;

/// Which sessions [`Store::list_sessions`] returns, newest `updated_at` first. Every filter
/// is optional; together they must all hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionQuery {
    pub agent_name: Option<String>,
    pub user_id: Option<String>,
    /// The title contains this text (ASCII letters compared case-insensitively).
    pub title_contains: Option<String>,
    /// The metadata has each of these keys with exactly this JSON value.
    pub metadata: Vec<(String, Value)>,
    /// Created at or after this time.
    pub created_since: Option<DateTime<Utc>>,
    /// Created before this time.
    pub created_before: Option<DateTime<Utc>>,
    /// Updated at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// Updated before this time.
    pub updated_before: Option<DateTime<Utc>>,
    /// At most this many (default 100 when 0).
    pub limit: usize,
    /// Continue after this position: the `next` of the previous page.
    pub after: Option<SessionCursor>,
}

/// A position in the session list (keyset pagination: stable while sessions change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCursor {
    pub updated_at: String,
    pub id: String,
}

/// The cursor as one word for a command line: `<updated_at>/<id>`.
impl std::fmt::Display for SessionCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.updated_at, self.id)
    }
}

impl std::str::FromStr for SessionCursor {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        // A timestamp has no '/', so the first one ends it; the id may hold more.
        match text.split_once('/') {
            Some((time, id)) if parse_time(time).is_ok() && !id.is_empty() => Ok(SessionCursor {
                updated_at: time.to_string(),
                id: id.to_string(),
            }),
            _ => Err(Error::invalid(format!(
                "cursor {text:?} is not one printed by `sessions` (<updated_at>/<id>)"
            ))),
        }
    }
}

/// Fields of a session to change with [`Store::update_session`]; `None` leaves a field as
/// it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionUpdate {
    pub title: Option<Option<String>>,
    pub agent_name: Option<Option<String>>,
    pub agent_id: Option<Option<String>>,
    pub user_id: Option<Option<String>>,
    /// Merged into the metadata: each key replaces the stored one; a `null` removes it.
    pub metadata: Option<Metadata>,
}

/// One page of [`Store::list_sessions`]. As JSON, `next` is the cursor's text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionPage {
    pub sessions: Vec<Session>,
    /// Pass as `after` to get the next page; `None` on the last page.
    #[serde(serialize_with = "cursor_text")]
    pub next: Option<SessionCursor>,
}

fn cursor_text<S: serde::Serializer>(
    next: &Option<SessionCursor>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match next {
        Some(cursor) => serializer.collect_str(cursor),
        None => serializer.serialize_none(),
    }
}

/// The conditions of a [`SessionQuery`], parameters ?1 to ?10 (see [`FilterParams`]).
/// A metadata value is compared as JSON text: json_each gives scalars as SQL values.
const SESSION_FILTER: &str = "(?1 IS NULL OR s.agent_name = ?1) AND (?2 IS NULL OR s.user_id = ?2)
    AND (?3 IS NULL OR (s.updated_at, s.id) < (?3, ?4))
    AND (?5 IS NULL OR instr(lower(s.title), lower(?5)) > 0)
    AND (?6 IS NULL OR NOT EXISTS (
         SELECT 1 FROM json_each(?6) wanted WHERE NOT EXISTS (
             SELECT 1 FROM json_each(s.metadata) e
             WHERE e.key = wanted.value ->> 0
               AND (CASE e.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                                WHEN 'null' THEN 'null' WHEN 'object' THEN e.value
                                WHEN 'array' THEN e.value ELSE json_quote(e.value) END)
                   = wanted.value ->> 1)))
    AND (?7 IS NULL OR s.created_at >= ?7) AND (?8 IS NULL OR s.created_at < ?8)
    AND (?9 IS NULL OR s.updated_at >= ?9) AND (?10 IS NULL OR s.updated_at < ?10)";

/// [`SESSION_FILTER`] in PostgreSQL's words: `strpos` for `instr`, jsonb for `json_each`.
/// Metadata values compare as JSON values (`1` equals `1.0`), not as text.
const SESSION_FILTER_PG: &str = "(CAST(?1 AS TEXT) IS NULL OR s.agent_name = ?1)
    AND (CAST(?2 AS TEXT) IS NULL OR s.user_id = ?2)
    AND (CAST(?3 AS TEXT) IS NULL OR (s.updated_at, s.id) < (CAST(?3 AS TEXT), CAST(?4 AS TEXT)))
    AND (CAST(?5 AS TEXT) IS NULL OR strpos(lower(s.title), lower(?5)) > 0)
    AND (CAST(?6 AS TEXT) IS NULL OR NOT EXISTS (
         SELECT 1 FROM jsonb_array_elements(CAST(CAST(?6 AS TEXT) AS JSONB)) wanted
         WHERE (CAST(s.metadata AS JSONB) -> (wanted ->> 0))
               IS DISTINCT FROM CAST(wanted ->> 1 AS JSONB)))
    AND (CAST(?7 AS TEXT) IS NULL OR s.created_at >= ?7)
    AND (CAST(?8 AS TEXT) IS NULL OR s.created_at < ?8)
    AND (CAST(?9 AS TEXT) IS NULL OR s.updated_at >= ?9)
    AND (CAST(?10 AS TEXT) IS NULL OR s.updated_at < ?10)";

fn session_filter(tx: &Tx<'_>) -> &'static str {
    tx.pick(SESSION_FILTER, SESSION_FILTER_PG)
}

/// A [`SessionQuery`] as the parameters of [`SESSION_FILTER`].
struct FilterParams<'q> {
    agent_name: Option<&'q str>,
    user_id: Option<&'q str>,
    after_time: Option<&'q str>,
    after_id: Option<&'q str>,
    title: Option<&'q str>,
    metadata: Option<String>,
    created_since: Option<String>,
    created_before: Option<String>,
    updated_since: Option<String>,
    updated_before: Option<String>,
}

impl<'q> FilterParams<'q> {
    /// The values of `?1` … `?10` in [`SESSION_FILTER`].
    fn values(&self) -> Vec<&dyn Param> {
        vec![
            &self.agent_name,
            &self.user_id,
            &self.after_time,
            &self.after_id,
            &self.title,
            &self.metadata,
            &self.created_since,
            &self.created_before,
            &self.updated_since,
            &self.updated_before,
        ]
    }

    fn new(query: &'q SessionQuery) -> Self {
        let time = |t: &Option<DateTime<Utc>>| t.as_ref().map(time_text);
        let metadata = (!query.metadata.is_empty()).then(|| {
            let pairs: Vec<Value> = query
                .metadata
                .iter()
                .map(|(k, v)| Value::from(vec![Value::from(k.as_str()), v.to_string().into()]))
                .collect();
            Value::Array(pairs).to_string()
        });
        FilterParams {
            agent_name: query.agent_name.as_deref(),
            user_id: query.user_id.as_deref(),
            after_time: query.after.as_ref().map(|c| c.updated_at.as_str()),
            after_id: query.after.as_ref().map(|c| c.id.as_str()),
            title: query.title_contains.as_deref(),
            metadata,
            created_since: time(&query.created_since),
            created_before: time(&query.created_before),
            updated_since: time(&query.updated_since),
            updated_before: time(&query.updated_before),
        }
    }
}

impl Store {
    /// Creates a session. A missing id is generated; an existing id is
    /// [`Error::AlreadyExists`].
    pub fn create_session(&self, new: NewSession) -> Result<Session> {
        new.validate()?;
        let id = match &new.id {
            Some(id) => {
                validate_session_id(id)?;
                id.clone()
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        self.write(|tx| {
            if head_of(tx, &id)?.is_some() {
                return Err(Error::AlreadyExists(id.clone()));
            }
            insert_session(tx, &id, &new, None, None)?;
            load_session(tx, &id)
        })
    }

    /// The session, or [`Error::NotFound`].
    pub fn session(&self, id: &str) -> Result<Session> {
        validate_session_id(id)?;
        self.read(|tx| load_session(tx, id))
    }

    /// Whether a session with this id exists.
    pub fn session_exists(&self, id: &str) -> Result<bool> {
        validate_session_id(id)?;
        self.read(|tx| Ok(head_of(tx, id)?.is_some()))
    }

    /// The session's current version: one primary-key read. Compare it with
    /// [`crate::History::version`] to learn whether anything changed.
    pub fn version(&self, id: &str) -> Result<i64> {
        validate_session_id(id)?;
        self.read(|tx| {
            head_of(tx, id)?
                .map(|(_, version)| version)
                .ok_or_else(|| Error::not_found("session", id))
        })
    }

    /// A page of sessions, newest `updated_at` first. Reads no message content.
    pub fn list_sessions(&self, query: &SessionQuery) -> Result<SessionPage> {
        let limit = if query.limit == 0 { 100 } else { query.limit };
        self.read(|tx| {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM sessions s JOIN branches b ON b.id = s.head_branch_id
                 WHERE {}
                 ORDER BY s.updated_at DESC, s.id DESC LIMIT ?11",
                session_filter(tx)
            );
            let filter = FilterParams::new(query);
            let limit_param = limit as i64 + 1;
            let mut values = filter.values();
            values.push(&limit_param);
            let mut sessions = Vec::new();
            let mut updated = Vec::new();
            tx.query_each(&sql, &values, |row| {
                updated.push(row.get::<String>(14)?);
                sessions.push(session_from_row(row)?);
                Ok(())
            })?;
            if sessions.len() > limit {
                sessions.truncate(limit);
                let last = &sessions[limit - 1];
                return Ok(SessionPage {
                    next: Some(SessionCursor {
                        updated_at: updated.swap_remove(limit - 1),
                        id: last.id.clone(),
                    }),
                    sessions,
                });
            }
            Ok(SessionPage {
                sessions,
                next: None,
            })
        })
    }

    /// How many sessions match `query` from its `after` cursor on (its `limit` aside): what
    /// is left to page through.
    pub fn count_sessions(&self, query: &SessionQuery) -> Result<u64> {
        self.read(|tx| {
            let filter = FilterParams::new(query);
            let count: i64 = tx.query_one(
                &format!(
                    "SELECT count(*) FROM sessions s WHERE {}",
                    session_filter(tx)
                ),
                &filter.values(),
                |r| r.get(0),
            )?;
            Ok(count as u64)
        })
    }

    /// Merges `patch` into the session's metadata: each key replaces the stored one, and a
    /// `null` value removes the key. Returns the updated session.
    pub fn update_metadata(&self, id: &str, patch: Metadata) -> Result<Session> {
        validate_session_id(id)?;
        self.write(|tx| {
            merge_metadata(tx, id, patch)?;
            touch(tx, id)?;
            load_session(tx, id)
        })
    }

    /// Merges `updates` into the object stored at `metadata[key]`, and fills in from
    /// `defaults` the keys it still lacks, in one write: two processes merging different
    /// keys into the same object at once both keep theirs. A missing `key`, or one that
    /// holds no object, starts from `{}`. Returns the updated session.
    pub fn merge_metadata_object(
        &self,
        id: &str,
        key: &str,
        updates: Metadata,
        defaults: Metadata,
    ) -> Result<Session> {
        validate_session_id(id)?;
        self.write(|tx| {
            edit_metadata(tx, id, |metadata| {
                let mut object = match metadata.remove(key) {
                    Some(Value::Object(stored)) => stored,
                    _ => Metadata::new(),
                };
                object.extend(updates.clone());
                for (name, value) in &defaults {
                    object.entry(name.clone()).or_insert_with(|| value.clone());
                }
                metadata.insert(key.to_string(), Value::Object(object));
            })?;
            touch(tx, id)?;
            load_session(tx, id)
        })
    }

    /// Changes the session's descriptive fields in one write: each `Some` field is set
    /// (`Some(None)` clears it), and `metadata` is merged as by [`Store::update_metadata`].
    /// Returns the updated session.
    pub fn update_session(&self, id: &str, update: &SessionUpdate) -> Result<Session> {
        validate_session_id(id)?;
        let fields = [
            ("title", &update.title),
            ("agent_name", &update.agent_name),
            ("agent_id", &update.agent_id),
            ("user_id", &update.user_id),
        ];
        for (name, value) in fields {
            check_field(name, value.as_ref().and_then(|v| v.as_deref()))?;
        }
        self.write(|tx| {
            let current = load_session(tx, id)?;
            let pick = |new: &Option<Option<String>>, old: &Option<String>| match new {
                Some(value) => value.clone(),
                None => old.clone(),
            };
            let mut metadata = current.metadata.clone();
            apply_metadata_patch(&mut metadata, update.metadata.clone().unwrap_or_default());
            check_json("metadata", &metadata)?;
            tx.execute(
                "UPDATE sessions SET title = ?2, agent_name = ?3, agent_id = ?4, user_id = ?5,
                     metadata = ?6 WHERE id = ?1",
                args![
                    id,
                    pick(&update.title, &current.title),
                    pick(&update.agent_name, &current.agent_name),
                    pick(&update.agent_id, &current.agent_id),
                    pick(&update.user_id, &current.user_id),
                    Value::Object(metadata).to_string(),
                ],
            )?;
            touch(tx, id)?;
            load_session(tx, id)
        })
    }

    /// Sets (or with `None` removes) the session's title.
    pub fn set_title(&self, id: &str, title: Option<&str>) -> Result<Session> {
        validate_session_id(id)?;
        check_field("title", title)?;
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE sessions SET title = ?2 WHERE id = ?1",
                args![id, title],
            )?;
            if changed == 0 {
                return Err(Error::not_found("session", id));
            }
            touch(tx, id)?;
            load_session(tx, id)
        })
    }

    /// Empties the session's history. The old history is kept as a superseded branch. An
    /// empty history is left as it is: nothing is written and the version stays.
    pub fn clear(&self, id: &str) -> Result<Session> {
        validate_session_id(id)?;
        self.write(|tx| {
            let head = require_head(tx, id)?;
            if head.length == 0 {
                return load_session(tx, id);
            }
            let Step { version, now } = next_step(tx, id)?;
            let head = fork_new_head(tx, id, head.branch_id, &[], 0, version, &now)?;
            save_head(tx, id, &head, version, &now)?;
            load_session(tx, id)
        })
    }

    /// Deletes the session, its branches, snapshots and messages. Messages that a fork of
    /// this session still inherits are kept for that fork.
    pub fn delete_session(&self, id: &str) -> Result<()> {
        validate_session_id(id)?;
        self.cache().invalidate(Some(id));
        self.write(|tx| delete_session_in(tx, id))
    }
}
