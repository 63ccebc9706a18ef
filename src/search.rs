//! Full-text search over message content (SQLite FTS5), across all sessions.
//!
//! The index costs every append about as much again as the append itself, so a file gets it
//! on its first search, not before: that search creates an external-content FTS5 table over
//! `messages.content`, indexes every message already stored, and installs triggers, all in
//! one transaction. From then on the index changes in the same transaction as the messages,
//! whichever process writes them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::sql::{args, Tx};
use crate::error::{Error, Result};
use crate::heads::{head_of, require_head};
use crate::lineage;
use crate::model::{validate_session_id, Role};
use crate::session_row::load_session;
use crate::store::Store;

/// Narrows a [`Store::search`]. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchFilter {
    /// Only this session's current history (including what it inherits from a fork).
    pub session: Option<String>,
    pub agent_name: Option<String>,
    pub user_id: Option<String>,
    pub role: Option<Role>,
}

/// One message that matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub session_id: String,
    /// The branch the message is found on: the session's head when it is in the current
    /// history (even if the row belongs to a branch the head grew from), otherwise the
    /// branch holding it.
    pub branch: String,
    /// The message's 0-based position in that branch's history.
    pub index: u64,
    pub role: Role,
    /// The matching passage, with matches between `[` and `]`.
    pub snippet: String,
    /// FTS5's bm25 score: lower is more relevant. Hits come best first.
    pub rank: f64,
    /// Whether the message is part of its session's current history (else it is on a
    /// branch that is not the head's lineage, such as a superseded head).
    #[serde(default)]
    pub in_current_history: bool,
}

/// Which hits a search returns first (and so which it keeps at its limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HitOrder {
    /// By relevance: every match is scored, then sorted.
    BestFirst,
    /// The most recently written first: the index is read from its newest entry.
    NewestFirst,
}

/// An FTS5 query that matches messages holding every word of `text`, whatever punctuation
/// it has (`what?`, `don't`, `c++`): each word becomes a quoted string, so nothing in it is
/// read as FTS5 syntax. Text with no word at all is [`Error::InvalidInput`].
pub fn words_query(text: &str) -> Result<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    if words.is_empty() {
        return Err(Error::invalid("the search query has no words"));
    }
    Ok(words.join(" "))
}

/// `snippet` with the rest of its last word taken from `content`, the message it was cut from,
/// when there is one: PostgreSQL's headline ends at the last word it indexed, which cuts
/// `c++` to `c` and `done?!` to `done`. The snippet is the message's text with `[`/`]` marks
/// around matches; where it cannot be lined up with `content` it is kept as it is.
fn complete_last_word(snippet: String, content: Option<String>) -> String {
    let Some(content) = content else {
        return snippet;
    };
    let Some(first) = snippet.trim_start_matches(['[', ']']).chars().next() else {
        return snippet;
    };
    // Each place the fragment lines up, with the rest of its last word there; a fragment
    // that lines up in places whose words end differently is left alone.
    let mut tails = content
        .match_indices(first)
        .filter_map(|(start, _)| fragment_end(&snippet, &content, start))
        .map(|end| {
            let rest = &content[end..];
            &rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())]
        });
    let Some(tail) = tails.next() else {
        return snippet;
    };
    if tails.any(|other| other != tail) {
        return snippet;
    }
    snippet + tail
}

/// Where in `content` the fragment `snippet` ends if it starts at byte `start`, reading `[`
/// and `]` in the snippet as marks when the content has no such character there.
fn fragment_end(snippet: &str, content: &str, start: usize) -> Option<usize> {
    let mut text = content[start..].char_indices().peekable();
    for c in snippet.chars() {
        match text.peek() {
            Some(&(_, t)) if t == c => {
                text.next();
            }
            _ if c == '[' || c == ']' => {}
            _ => return None,
        }
    }
    Some(start + text.peek().map_or(content.len() - start, |&(at, _)| at))
}

impl Store {
    /// Messages whose content matches the FTS5 `query` (words, `"phrases"`, `prefix*`,
    /// `AND`/`OR`/`NOT`), best first. A malformed query is [`Error::InvalidInput`] carrying
    /// SQLite's message.
    ///
    /// The first search on a file builds the index (see the module docs); on a read-only
    /// store that is [`Error::ReadOnly`] until a read-write store has searched once.
    ///
    /// On PostgreSQL the same query language is translated to a `tsquery` over
    /// `to_tsvector('simple', content)` (the schema's GIN index; nothing to build). What
    /// differs: words are split and matched by PostgreSQL's `simple` parser (lower-cased, no
    /// stemming, diacritics kept: `café` does not match `cafe`); `rank` is the negated
    /// `ts_rank`, so lower is still better but the numbers are not bm25's; the snippet is
    /// `ts_headline`'s fragment of up to 12 words, with no `…` marks; `NEAR` and column
    /// filters are [`Error::InvalidInput`]; a malformed query is [`Error::InvalidInput`]
    /// naming the same kind of fault as SQLite (`unterminated string`, `syntax error`) in our
    /// own words.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<SearchHit>> {
        self.search_with(query, &[], limit, filter, HitOrder::BestFirst)
    }

    /// Messages holding every word of `text`, whatever punctuation it has (`what?`,
    /// `don't`, `c++`, `c#`), best first: [`Store::search`] of [`words_query`], where a word
    /// with characters the index does not keep (`+`, `#`, `?`, `'` …) must also appear as
    /// written (ASCII letters in any case), so `c++` does not find `4°C`.
    pub fn search_words(
        &self,
        text: &str,
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<SearchHit>> {
        let query = words_query(text)?;
        let literal: Vec<&str> = text
            .split_whitespace()
            .filter(|w| w.chars().any(|c| !c.is_alphanumeric()))
            .collect();
        self.search_with(&query, &literal, limit, filter, HitOrder::BestFirst)
    }

    /// The same matches as [`Store::search`], the most recently written first. Nothing is
    /// ranked, so a query costs the same however many messages match it: the index is read
    /// from its newest entry and stops after `limit` hits. `rank` is still each hit's score.
    pub fn search_recent(
        &self,
        query: &str,
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<SearchHit>> {
        self.search_with(query, &[], limit, filter, HitOrder::NewestFirst)
    }

    /// Builds the full-text index if there is none yet; on a read-only store that is
    /// [`Error::ReadOnly`] saying how to get one.
    fn ensure_search_index(&self) -> Result<()> {
        if !self.read(|tx| tx.search_index_exists())? {
            self.enable_search().map_err(|e| match e {
                Error::ReadOnly { path, .. } => Error::ReadOnly {
                    path,
                    reason: "nobody has searched this file yet, and the first search builds \
                             its index, which is a write: run one search without read-only \
                             (`sessiondb search`, or `Store::enable_search`) by a user who may \
                             write the file, then read-only searches work"
                        .into(),
                },
                other => other,
            })?;
        }
        Ok(())
    }

    /// The sessions whose current history (what it inherits from a fork included) holds a
    /// message matching `query` (as [`Store::search`]), the one with the most recently
    /// written match first, up to `limit`. Nothing is ranked and no snippet is made: the
    /// index is read from its newest entry and stops once `limit` sessions are found.
    pub fn search_recent_sessions(&self, query: &str, limit: usize) -> Result<Vec<String>> {
        self.ensure_search_index()?;
        // Most matches of a session's current history are rows of its head; the rest (rows
        // a fork inherits, rows of other branches) are told apart by the session's lineage.
        const PAGE: i64 = 64;
        let sqlite_sql = "SELECT b.session_id, m.seq, m.branch_id, s.head_branch_id,
                                 h.fork_seq, s.message_count, m.id
                          FROM message_search
                          JOIN messages m ON m.id = message_search.rowid
                          JOIN branches b ON b.id = m.branch_id
                          JOIN sessions s ON s.id = b.session_id
                          JOIN branches h ON h.id = s.head_branch_id
                          WHERE message_search MATCH ?1 AND message_search.rowid < ?2
                          ORDER BY message_search.rowid DESC LIMIT ?3";
        let postgres_sql = "SELECT b.session_id, m.seq, m.branch_id, s.head_branch_id,
                                   h.fork_seq, s.message_count, m.id
                            FROM messages m
                            CROSS JOIN to_tsquery('simple', CAST(?1 AS TEXT)) q
                            JOIN branches b ON b.id = m.branch_id
                            JOIN sessions s ON s.id = b.session_id
                            JOIN branches h ON h.id = s.head_branch_id
                            WHERE to_tsvector('simple', m.content) @@ q AND m.id < ?2
                            ORDER BY m.id DESC LIMIT ?3";
        self.read(|tx| {
            let query_param = tx.text_query(query)?;
            let mut out: Vec<String> = Vec::new();
            let mut lineages: HashMap<String, Option<Vec<lineage::Segment>>> = HashMap::new();
            let mut before = i64::MAX;
            while out.len() < limit {
                let rows = tx
                    .query_map(
                        tx.pick(sqlite_sql, postgres_sql),
                        args![query_param, before, PAGE],
                        |r| {
                            Ok((
                                r.get::<String>(0)?,
                                r.get::<i64>(1)?,
                                r.get::<i64>(2)?,
                                r.get::<i64>(3)?,
                                r.get::<i64>(4)?,
                                r.get::<i64>(5)?,
                                r.get::<i64>(6)?,
                            ))
                        },
                    )
                    .map_err(|e| fts_refusal(e, query))?;
                let full = rows.len() as i64 == PAGE;
                for (session_id, seq, branch_id, head, head_fork, length, id) in rows {
                    before = id;
                    if out.len() == limit || out.contains(&session_id) {
                        continue;
                    }
                    // The head's own segment of its lineage, as `lineage::owner_of` reads it.
                    let current = if branch_id == head {
                        head_fork < seq && seq <= length
                    } else {
                        if !lineages.contains_key(&session_id) {
                            let segments = match head_of(tx, &session_id)? {
                                Some((head, _)) => {
                                    Some(lineage::segments(tx, head.branch_id, head.length)?)
                                }
                                None => None,
                            };
                            lineages.insert(session_id.clone(), segments);
                        }
                        matches!(lineages.get(&session_id), Some(Some(segments))
                            if lineage::owner_of(segments, seq) == Some(branch_id))
                    };
                    if current {
                        out.push(session_id);
                    }
                }
                if !full {
                    break;
                }
            }
            Ok(out)
        })
    }

    /// [`Store::search`] in `order`, where each of `literal` must also be in the content.
    fn search_with(
        &self,
        query: &str,
        literal: &[&str],
        limit: usize,
        filter: &SearchFilter,
        order: HitOrder,
    ) -> Result<Vec<SearchHit>> {
        if let Some(id) = &filter.session {
            validate_session_id(id)?;
        }
        self.ensure_search_index()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|tx| {
            // A session's history spans branches it may not own (a fork inherits its
            // parent's rows): restrict to its lineage segments.
            let mut head_name = None;
            let segments = match &filter.session {
                Some(id) => {
                    let head = require_head(tx, id)?;
                    head_name = Some(load_session(tx, id)?.head_branch);
                    let segments = lineage::segments(tx, head.branch_id, head.length)?;
                    let list: Vec<Value> = segments
                        .iter()
                        .map(|s| Value::from(vec![s.branch_id, s.fork_seq, s.upto]))
                        .collect();
                    Some(Value::Array(list).to_string())
                }
                None => None,
            };
            let query_param = tx.text_query(query)?;
            let literal_json = (!literal.is_empty()).then(|| Value::from(literal).to_string());
            let role = filter.role.map(Role::as_str);
            // Ordering by the rowid lets FTS5 walk its index backwards and stop at the
            // limit; ranking scores every match first.
            let (sqlite_order, postgres_order) = match order {
                HitOrder::BestFirst => ("bm25(message_search)", "6, m.id"),
                HitOrder::NewestFirst => ("message_search.rowid DESC", "m.id DESC"),
            };
            let sqlite_sql = format!(
                "SELECT b.session_id, b.name, m.seq, m.role,
                            snippet(message_search, 0, '[', ']', '…', 12), bm25(message_search),
                            m.branch_id, NULL
                     FROM message_search
                     JOIN messages m ON m.id = message_search.rowid
                     JOIN branches b ON b.id = m.branch_id
                     JOIN sessions s ON s.id = b.session_id
                     WHERE message_search MATCH ?1
                       AND (?2 IS NULL OR m.role = ?2)
                       AND (?3 IS NULL OR s.agent_name = ?3)
                       AND (?4 IS NULL OR s.user_id = ?4)
                       AND (?5 IS NULL OR EXISTS (
                            SELECT 1 FROM json_each(?5) seg
                            WHERE seg.value ->> 0 = m.branch_id
                              AND m.seq > seg.value ->> 1 AND m.seq <= seg.value ->> 2))
                       AND (?7 IS NULL OR NOT EXISTS (
                            SELECT 1 FROM json_each(?7) word
                            WHERE instr(lower(m.content), lower(word.value)) = 0))
                     ORDER BY {sqlite_order} LIMIT ?6"
            );
            let postgres_sql = format!(
                "SELECT b.session_id, b.name, m.seq, m.role,
                            ts_headline('simple', m.content, q, 'StartSel=[, StopSel=],
                                MaxWords=12, MinWords=4, ShortWord=0, MaxFragments=1,
                                FragmentDelimiter=…'),
                            CAST(-ts_rank(to_tsvector('simple', m.content), q) AS FLOAT8),
                            m.branch_id, m.content
                     FROM messages m
                     CROSS JOIN to_tsquery('simple', CAST(?1 AS TEXT)) q
                     JOIN branches b ON b.id = m.branch_id
                     JOIN sessions s ON s.id = b.session_id
                     WHERE to_tsvector('simple', m.content) @@ q
                       AND (CAST(?2 AS TEXT) IS NULL OR m.role = ?2)
                       AND (CAST(?3 AS TEXT) IS NULL OR s.agent_name = ?3)
                       AND (CAST(?4 AS TEXT) IS NULL OR s.user_id = ?4)
                       AND (CAST(?5 AS TEXT) IS NULL OR EXISTS (
                            SELECT 1 FROM jsonb_array_elements(CAST(CAST(?5 AS TEXT) AS JSONB)) seg
                            WHERE CAST(seg ->> 0 AS BIGINT) = m.branch_id
                              AND m.seq > CAST(seg ->> 1 AS BIGINT)
                              AND m.seq <= CAST(seg ->> 2 AS BIGINT)))
                       AND (CAST(?7 AS TEXT) IS NULL OR NOT EXISTS (
                            SELECT 1
                            FROM jsonb_array_elements_text(CAST(CAST(?7 AS TEXT) AS JSONB)) word
                            WHERE strpos(lower(m.content), lower(word)) = 0))
                     ORDER BY {postgres_order} LIMIT ?6"
            );
            let hits = tx.query_map(
                tx.pick(&sqlite_sql, &postgres_sql),
                args![
                    query_param,
                    role,
                    filter.agent_name,
                    filter.user_id,
                    segments,
                    limit,
                    literal_json
                ],
                |r| {
                    let hit = SearchHit {
                        session_id: r.get::<Option<String>>(0)?.unwrap_or_default(),
                        branch: r.get(1)?,
                        index: (r.get::<i64>(2)? - 1) as u64,
                        role: r.get(3)?,
                        snippet: complete_last_word(r.get(4)?, r.get(7)?),
                        rank: r.get(5)?,
                        in_current_history: filter.session.is_some(),
                    };
                    Ok((hit, r.get::<i64>(6)?))
                },
            );
            hits.map_err(|e| fts_refusal(e, query)).and_then(|hits| {
                // Per session, read once: its head's name and lineage (`None`: no head).
                let mut lineages: HashMap<String, Option<(String, Vec<lineage::Segment>)>> =
                    HashMap::new();
                let mut out = Vec::with_capacity(hits.len());
                for (mut hit, branch_id) in hits {
                    if let (Some(id), Some(head)) = (&filter.session, &head_name) {
                        hit.session_id = id.clone();
                        hit.branch = head.clone();
                    } else {
                        if !lineages.contains_key(&hit.session_id) {
                            let lineage = match head_of(tx, &hit.session_id)? {
                                Some((head, _)) => Some((
                                    branch_name(tx, head.branch_id)?,
                                    lineage::segments(tx, head.branch_id, head.length)?,
                                )),
                                None => None,
                            };
                            lineages.insert(hit.session_id.clone(), lineage);
                        }
                        let seq = hit.index as i64 + 1;
                        if let Some(Some((head, segments))) = lineages.get(&hit.session_id) {
                            hit.in_current_history =
                                lineage::owner_of(segments, seq) == Some(branch_id);
                            // Labelled as with `session`: a message of the current history
                            // is on the head, whichever branch row holds it.
                            if hit.in_current_history {
                                hit.branch = head.clone();
                            }
                        }
                    }
                    out.push(hit);
                }
                Ok(out)
            })
        })
    }
}

impl Store {
    /// Builds the full-text index if the file has none yet (what the first
    /// [`Store::search`] does). Returns whether it had to build it.
    pub fn enable_search(&self) -> Result<bool> {
        self.write(|tx| {
            if tx.search_index_exists()? {
                return Ok(false);
            }
            tx.build_search_index()?;
            Ok(true)
        })
    }
}

/// The name of branch `id`.
fn branch_name(tx: &Tx<'_>, id: i64) -> Result<String> {
    tx.query_one("SELECT name FROM branches WHERE id = ?1", args![id], |r| {
        r.get(0)
    })
}

/// `e`, or, when it is a plain SQL error, FTS5 refusing `query` (the only input of a search
/// statement) as [`Error::InvalidInput`].
fn fts_refusal(e: Error, query: &str) -> Error {
    match e {
        Error::Sqlite(rusqlite::Error::SqliteFailure(e, Some(msg)))
            if e.code == rusqlite::ErrorCode::Unknown =>
        {
            Error::invalid(format!("search query {query:?}: {msg}"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::complete_last_word;

    fn complete(snippet: &str, content: &str) -> String {
        complete_last_word(snippet.to_string(), Some(content.to_string()))
    }

    #[test]
    fn the_last_word_gets_back_its_punctuation() {
        assert_eq!(complete("I use [c]", "I use c++"), "I use [c]++");
        assert_eq!(
            complete("are we [done]", "are we done?! yes"),
            "are we [done]?!"
        );
        assert_eq!(
            complete("it is [[really]]", "it is [really] so"),
            "it is [[really]]"
        );
        // Lined up in two places whose words end differently: which one is unknown.
        assert_eq!(complete("[c]", "4°C or c#, c++"), "[c]");
        assert_eq!(complete("or [c]", "4°C or c#, c++"), "or [c]#,");
        assert_eq!(complete("[c]", "c++ and c++"), "[c]++");
        // Not from this content, or no content: unchanged.
        assert_eq!(
            complete("something [else]", "I use c++"),
            "something [else]"
        );
        assert_eq!(complete("", "I use c++"), "");
        assert_eq!(complete_last_word("a [b]".into(), None), "a [b]");
    }
}
