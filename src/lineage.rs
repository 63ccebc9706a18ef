//! How a branch's history is found and read. A branch owns the rows it appended; it inherits
//! the rest from its fork point. Its lineage is the chain of (branch, seq range) segments, root
//! first, and reading a range of history is one index range scan per segment.

use serde_json::Value;

use crate::db::sql::{args, Param, Row, Tx};
use crate::error::{Error, Result};
use crate::model::{
    invalid_at, parse_time, time_text, Content, Message, Metadata, NewMessage, Usage,
};

/// A deeper lineage than this means a cycle in a damaged file.
const MAX_LINEAGE_DEPTH: i64 = 100_000;

/// A message's rowid is `branch_id * 2^32 + seq` (schema 3), so a branch's rows are one
/// contiguous rowid range: an append writes one b-tree page and a read is one range scan.
const SEQ_BITS: u32 = 32;
/// The largest seq, and so the most messages one history can hold.
pub(crate) const MAX_SEQ: i64 = (1 << SEQ_BITS) - 1;
/// The largest branch id whose rowids fit in 63 bits.
const MAX_BRANCH_ID: i64 = (1 << 31) - 1;

/// The rowid of message `seq` of `branch_id`.
pub(crate) fn row_id(branch_id: i64, seq: i64) -> i64 {
    (branch_id << SEQ_BITS) | seq
}

/// The number of messages in `branch_id`'s full history: its last own seq, or its fork point
/// if it has no rows of its own.
pub(crate) fn branch_length(tx: &Tx<'_>, branch_id: i64) -> Result<i64> {
    // The view seeks the branch's last rowid; schema 3 defines it once for SQL and for us.
    tx.value(
        "SELECT length FROM branch_lengths WHERE branch_id = ?1",
        args![branch_id],
    )?
    .ok_or_else(|| Error::Corrupt(format!("branch {branch_id} is missing")))
}

/// The id of branch `name` of the session, or [`Error::NotFound`].
pub(crate) fn branch_id(tx: &Tx<'_>, session_id: &str, name: &str) -> Result<i64> {
    tx.query_opt(
        "SELECT id FROM branches WHERE session_id = ?1 AND name = ?2",
        args![session_id, name],
        |r| r.get(0),
    )?
    .ok_or_else(|| Error::not_found("branch", name))
}

/// Where a session's current history ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Head {
    pub branch_id: i64,
    /// Number of messages (the seq of the last one).
    pub length: i64,
    /// Usage totals of the whole history.
    pub usage: Usage,
}

/// What a read needs to know about a session's current history, from one primary-key read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Current {
    pub head: Head,
    pub version: i64,
    /// The version at which `head.branch_id` became the head. A branch only grows while it
    /// is head; before that, prune may have trimmed it.
    pub head_since: i64,
}

/// `branch_id` owns the rows with seq in `fork_seq + 1 ..= upto` of this lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub branch_id: i64,
    pub fork_seq: i64,
    pub upto: i64,
}

/// The segments of `branch_id`'s history up to `upto`, root first.
pub(crate) fn segments(tx: &Tx<'_>, branch_id: i64, upto: i64) -> Result<Vec<Segment>> {
    segments_with(
        tx,
        LineageOf::Branch(branch_id, upto),
        "",
        "",
        args![],
        |_| Ok(()),
    )
}

/// Whose history [`segments_with`] reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LineageOf<'a> {
    /// A branch's, up to a length.
    Branch(i64, i64),
    /// A session's current history, read with its session row (`head`, which `columns` and
    /// `joins` may name: `CROSS JOIN head h`). In a write the row is locked, as
    /// [`crate::heads::current_of`] locks it. No such session is no segment.
    HeadOf(&'a str),
}

/// [`segments`], read by one statement that also reads something per segment: `columns`
/// (from the sixth on, starting with a comma) and `joins` extend `SELECT l.branch_id,
/// l.fork_seq, l.upto, l.depth, stale FROM lineage l` (a segment's rows are `l.fork_seq + 1
/// ..= l.upto` of `l.branch_id`), with parameters `?4` … (`more`). `each` gets every row,
/// root first.
///
/// In a write on PostgreSQL, [`LineageOf::HeadOf`] locks the session's row; a statement that
/// had to wait for that lock reads the row as the writer it waited for left it, but the other
/// tables as they were when it began. Such a read (`stale`) is not handed to `each`: it runs
/// again, now holding the lock, and sees everything that writer committed.
pub(crate) fn segments_with(
    tx: &Tx<'_>,
    of: LineageOf<'_>,
    columns: &str,
    joins: &str,
    more: &[&dyn Param],
    mut each: impl FnMut(&Row<'_>) -> Result<()>,
) -> Result<Vec<Segment>> {
    // ?1 and ?2 say where the lineage starts and how long it is (a branch and a length, or
    // the session twice, so that the numbers of `more` never move); ?3 is the depth limit.
    // The session row's `xmin` as locked and as this statement's snapshot has it differ when
    // the lock was waited for.
    let head = tx.locked(tx.pick(
        "SELECT head_branch_id, message_count, input_tokens, output_tokens, cost, version,
             head_since, 0 AS stale
         FROM sessions WHERE id = ?1 AND id = ?2",
        "SELECT head_branch_id, message_count, input_tokens, output_tokens, cost, version,
             head_since,
             CASE WHEN xmin = (SELECT v.xmin FROM sessions v WHERE v.id = ?1) THEN 0 ELSE 1 END
                 AS stale
         FROM sessions WHERE id = ?1 AND id = ?2",
    ));
    // A head branch that is missing is a row without fork_seq: no second statement (with
    // another snapshot, in a write) to tell it from a missing session.
    let (head, start, stale, params): (String, &str, &str, [&dyn Param; 2]) = match &of {
        LineageOf::Branch(branch_id, upto) => (
            String::new(),
            tx.pick(
                "SELECT id, parent_branch_id, fork_seq, ?2, 0 FROM branches WHERE id = ?1",
                "SELECT id, parent_branch_id, fork_seq, CAST(?2 AS BIGINT), CAST(0 AS BIGINT)
                 FROM branches WHERE id = ?1",
            ),
            "0",
            [branch_id, upto],
        ),
        LineageOf::HeadOf(session_id) => (
            format!("head AS ({head}),"),
            tx.pick(
                "SELECT coalesce(b.id, s.head_branch_id), b.parent_branch_id, b.fork_seq,
                     s.message_count, 0
                 FROM head s LEFT JOIN branches b ON b.id = s.head_branch_id",
                "SELECT coalesce(b.id, s.head_branch_id), b.parent_branch_id, b.fork_seq,
                     s.message_count, CAST(0 AS BIGINT)
                 FROM head s LEFT JOIN branches b ON b.id = s.head_branch_id",
            ),
            "(SELECT stale FROM head)",
            [session_id, session_id],
        ),
    };
    // PostgreSQL's planner expects many lineage rows and may hash the whole branches table
    // at each step; a LATERAL read with a LIMIT is one index read per step, as on SQLite.
    let parent = tx.pick(
        "SELECT b.id, b.parent_branch_id, b.fork_seq, min(l.fork_seq, l.upto), l.depth + 1
         FROM lineage l JOIN branches b ON b.id = l.parent_id
         WHERE l.depth < ?3",
        "SELECT b.id, b.parent_branch_id, b.fork_seq, LEAST(l.fork_seq, l.upto), l.depth + 1
         FROM lineage l CROSS JOIN LATERAL (
             SELECT id, parent_branch_id, fork_seq FROM branches WHERE id = l.parent_id LIMIT 1
         ) b
         WHERE l.depth < ?3",
    );
    let sql = format!(
        "WITH RECURSIVE {head} lineage (branch_id, parent_id, fork_seq, upto, depth) AS (
             {start}
             UNION ALL
             {parent}
         )
         SELECT l.branch_id, l.fork_seq, l.upto, l.depth, {stale}{columns} FROM lineage l{joins}
         ORDER BY l.depth DESC"
    );
    let mut all: Vec<&dyn Param> = vec![params[0], params[1], &MAX_LINEAGE_DEPTH];
    all.extend_from_slice(more);
    // The second read holds the lock: nothing can change the row under it.
    for _ in 0..2 {
        let mut out = Vec::new();
        let mut too_deep = false;
        let mut stale = false;
        let mut missing = None;
        tx.query_each(&sql, &all, |row| {
            stale |= row.get::<i64>(4)? != 0;
            if stale {
                return Ok(());
            }
            too_deep |= row.get::<i64>(3)? >= MAX_LINEAGE_DEPTH;
            let branch_id = row.get(0)?;
            let Some(fork_seq) = row.get::<Option<i64>>(1)? else {
                missing = Some(branch_id);
                return Ok(());
            };
            out.push(Segment {
                branch_id,
                fork_seq,
                upto: row.get(2)?,
            });
            each(row)
        })?;
        if stale {
            continue;
        }
        if let Some(branch_id) = missing {
            return Err(Error::Corrupt(format!("branch {branch_id} is missing")));
        }
        if too_deep {
            return Err(Error::Corrupt(format!(
                "branch {}: lineage deeper than {MAX_LINEAGE_DEPTH} (a cycle?)",
                out.last().map(|s| s.branch_id).unwrap_or_default()
            )));
        }
        if let (true, LineageOf::Branch(branch_id, _)) = (out.is_empty(), of) {
            return Err(Error::Corrupt(format!("branch {branch_id} is missing")));
        }
        return Ok(out);
    }
    Err(Error::Corrupt(
        "a session row changed while this transaction held its lock".into(),
    ))
}

/// The branch that owns `seq` in this lineage, if any (`seq` 0 has no owner).
pub(crate) fn owner_of(segments: &[Segment], seq: i64) -> Option<i64> {
    segments
        .iter()
        .find(|s| s.fork_seq < seq && seq <= s.upto)
        .map(|s| s.branch_id)
}

const MESSAGE_COLUMNS: &str = "seq, role, content, tool_calls, tool_call_id, metadata, model, \
     input_tokens, output_tokens, cost, created_at, content_kind, content_parts, extra, key";

/// Messages with seq in `lo..=hi` of the lineage, in order.
pub(crate) fn read_range(
    tx: &Tx<'_>,
    segments: &[Segment],
    lo: i64,
    hi: i64,
) -> Result<Vec<Message>> {
    let mut out = Vec::with_capacity((hi - lo + 1).clamp(0, 1 << 16) as usize);
    let sql =
        format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id BETWEEN ?1 AND ?2 ORDER BY id");
    for seg in segments {
        let (from, to) = (lo.max(seg.fork_seq + 1), hi.min(seg.upto));
        if from > to {
            continue;
        }
        tx.query_each(
            &sql,
            args![row_id(seg.branch_id, from), row_id(seg.branch_id, to)],
            |row| {
                out.push(message_from_row(row)?);
                Ok(())
            },
        )?;
    }
    let expected = (hi.min(segments.last().map_or(0, |s| s.upto)) - lo + 1).max(0);
    if out.len() as i64 != expected {
        return Err(Error::Corrupt(format!(
            "expected {expected} messages at positions {lo}..={hi}, found {}",
            out.len()
        )));
    }
    Ok(out)
}

/// Messages `lo..=hi` (seqs) of the head's history.
pub(crate) fn read_head(tx: &Tx<'_>, head: &Head, lo: i64, hi: i64) -> Result<Vec<Message>> {
    if lo > hi {
        return Ok(Vec::new());
    }
    let segments = segments(tx, head.branch_id, head.length)?;
    read_range(tx, &segments, lo, hi)
}

/// Usage totals of the history up to and including `seq` (zero for seq 0).
pub(crate) fn usage_at(tx: &Tx<'_>, segments: &[Segment], seq: i64) -> Result<Usage> {
    let Some(branch_id) = owner_of(segments, seq) else {
        return Ok(Usage::default());
    };
    tx.query_opt(
        "SELECT running_input_tokens, running_output_tokens, running_cost
         FROM messages WHERE id = ?1",
        args![row_id(branch_id, seq)],
        |r| {
            Ok(Usage {
                input_tokens: r.get::<i64>(0)? as u64,
                output_tokens: r.get::<i64>(1)? as u64,
                cost: r.get(2)?,
            })
        },
    )?
    .ok_or_else(|| Error::Corrupt(format!("branch {branch_id} has no message at seq {seq}")))
}

/// Appends `messages` to the head branch and advances `head` past them. A message that names
/// its `created_at` keeps it; the others take `now`. The caller updates the session row.
pub(crate) fn append(
    tx: &Tx<'_>,
    head: &mut Head,
    messages: &[NewMessage],
    now: &str,
) -> Result<()> {
    let times: Vec<String> = messages
        .iter()
        .map(|m| {
            m.created_at
                .map_or_else(|| now.to_string(), |t| time_text(&t))
        })
        .collect();
    append_dated(
        tx,
        head,
        messages.iter().zip(times.iter().map(String::as_str)),
    )
}

/// Appends `messages` to the head branch, each with the time given beside it, and advances
/// `head` past them. The caller updates the session row; the branch row is not touched (its
/// length is its last row).
/// Every message row is written here, so this is where messages are validated; a refusal
/// names the message's index and rolls the caller's transaction back.
pub(crate) fn append_dated<'a>(
    tx: &Tx<'_>,
    head: &mut Head,
    messages: impl IntoIterator<Item = (&'a NewMessage, &'a str)>,
) -> Result<()> {
    const INSERT: &str = "INSERT INTO messages (id, branch_id, seq, role, content, tool_calls,
             tool_call_id, metadata, model, input_tokens, output_tokens, cost,
             running_input_tokens, running_output_tokens, running_cost, created_at,
             content_kind, content_parts, extra, key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
             ?17, ?18, ?19, ?20)";
    let mut insert = tx.repeated(INSERT)?;
    for (message, created_at) in messages {
        message
            .validate()
            .map_err(|e| invalid_at(&format!("message {}", head.length), e))?;
        if head.length >= MAX_SEQ {
            return Err(Error::StorageFull(format!(
                "a history holds at most {MAX_SEQ} messages"
            )));
        }
        head.length += 1;
        head.usage.add(message);
        insert.execute(args![
            row_id(head.branch_id, head.length),
            head.branch_id,
            head.length,
            message.role.as_str(),
            message.content.text(),
            message.tool_calls.as_ref().map(json_text),
            message.tool_call_id,
            message.metadata.as_ref().map(json_text),
            message.model,
            message.input_tokens.map(|t| t as i64),
            message.output_tokens.map(|t| t as i64),
            message.cost,
            head.usage.input_tokens as i64,
            head.usage.output_tokens as i64,
            head.usage.cost,
            created_at,
            message.content.kind(),
            match &message.content {
                Content::Parts(parts) => Some(json_text(parts)),
                _ => None,
            },
            (!message.extra.is_empty()).then(|| json_text(&message.extra)),
            message.key,
        ])?;
    }
    Ok(())
}

/// Creates a branch of `session_id` that inherits `fork` = (parent branch, seq) and returns
/// its id. The branch is empty beyond its fork point.
pub(crate) fn create_branch(
    tx: &Tx<'_>,
    session_id: &str,
    name: &str,
    fork: Option<(i64, i64)>,
    now: &str,
) -> Result<i64> {
    let (parent, fork_seq) = match fork {
        Some((parent, seq)) => (Some(parent), seq),
        None => (None, 0),
    };
    let id: i64 = tx.query_one(
        "INSERT INTO branches (session_id, name, parent_branch_id, fork_seq, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        args![session_id, name, parent, fork_seq, now],
        |r| r.get(0),
    )?;
    check_branch_id(id)?;
    Ok(id)
}

/// `Ok` for the id of a new branch whose rowids fit, [`Error::StorageFull`] otherwise.
pub(crate) fn check_branch_id(id: i64) -> Result<()> {
    if id > MAX_BRANCH_ID {
        return Err(Error::StorageFull(format!(
            "a file holds at most {MAX_BRANCH_ID} branches"
        )));
    }
    Ok(())
}

/// Where a new branch that starts with the first `seq` messages of `segments` forks from:
/// the branch that owns message `seq`, or nothing for an empty start.
pub(crate) fn fork_point(segments: &[Segment], seq: i64) -> Option<(i64, i64)> {
    owner_of(segments, seq).map(|branch| (branch, seq))
}

fn json_text(value: &impl serde::Serialize) -> String {
    // Serializing a serde_json value cannot fail: its keys are strings.
    serde_json::to_string(value).unwrap_or_default()
}

fn message_from_row(row: &Row<'_>) -> Result<Message> {
    let seq: i64 = row.get(0)?;
    let tool_calls = row
        .get::<Option<String>>(3)?
        .map(|text| match serde_json::from_str(&text) {
            Ok(Value::Array(calls)) => Ok(calls),
            _ => Err(Error::Corrupt(format!(
                "message {seq}: tool_calls is not a JSON array"
            ))),
        })
        .transpose()?;
    let metadata = row
        .get::<Option<String>>(5)?
        .map(|text| parse_object(&text, seq))
        .transpose()?;
    let created_at: String = row.get(10)?;
    let kind: Option<String> = row.get(11)?;
    let content = match kind.as_deref() {
        None => Content::Text(row.get(2)?),
        Some("null") => Content::Null,
        Some("absent") => Content::Absent,
        Some("parts") => match row
            .get::<Option<String>>(12)?
            .map(|t| serde_json::from_str(&t))
        {
            Some(Ok(Value::Array(parts))) => Content::Parts(parts),
            _ => {
                return Err(Error::Corrupt(format!(
                    "message {seq}: content_parts is not a JSON array"
                )))
            }
        },
        Some(other) => {
            return Err(Error::Corrupt(format!(
                "message {seq}: unknown content_kind {other:?}"
            )))
        }
    };
    let extra = row
        .get::<Option<String>>(13)?
        .map(|text| parse_object(&text, seq))
        .transpose()?
        .unwrap_or_default();
    Ok(Message {
        index: (seq - 1) as u64,
        body: NewMessage {
            role: row.get(1)?,
            content,
            tool_calls,
            tool_call_id: row.get(4)?,
            metadata,
            model: row.get(6)?,
            input_tokens: row.get::<Option<i64>>(7)?.map(|t| t as u64),
            output_tokens: row.get::<Option<i64>>(8)?.map(|t| t as u64),
            cost: row.get(9)?,
            extra,
            created_at: None,
            key: row.get(14)?,
        },
        created_at: parse_time(&created_at)?,
    })
}

fn parse_object(text: &str, seq: i64) -> Result<Metadata> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Corrupt(format!(
            "message {seq}: metadata is not a JSON object"
        ))),
    }
}

/// Deletes branch row `branch` (its rows deleted by the caller), with the checkpoints it hid
/// (`langgraph_hidden` names branches without a foreign key); its pending writes cascade.
pub(crate) fn delete_branch(tx: &Tx<'_>, branch: i64) -> Result<()> {
    tx.execute(
        "DELETE FROM langgraph_hidden WHERE branch_id = ?1",
        args![branch],
    )?;
    tx.execute("DELETE FROM branches WHERE id = ?1", args![branch])?;
    Ok(())
}

/// Whether `table` (keyed by `message_id`, as the tables kept beside messages are) has a row
/// for any message of `segments`, shown or hidden.
pub(crate) fn any_row_in(tx: &Tx<'_>, table: &str, segments: &[Segment]) -> Result<bool> {
    let sql = format!("SELECT 1 FROM {table} WHERE message_id BETWEEN ?1 AND ?2 LIMIT 1");
    for seg in segments.iter().filter(|s| s.upto > s.fork_seq) {
        let lo = row_id(seg.branch_id, seg.fork_seq + 1);
        if tx
            .query_opt(&sql, args![lo, row_id(seg.branch_id, seg.upto)], |r| {
                r.get::<i64>(0)
            })?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}
