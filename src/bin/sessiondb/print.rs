//! Human-readable and JSON output of the CLI.

use chrono::{DateTime, SecondsFormat, Utc};
use sessiondb::{
    Branch, BranchDiff, Content, Message, SearchHit, Session, SessionTree, Snapshot, Stats,
};

use crate::output::{warn, Failure, Output};

mod outcome;
mod shapes;
pub use outcome::*;
pub use shapes::*;

/// What every printer returns: a failed write to stdout, or a failed read of the store.
type Printed = Result<(), Failure>;

pub fn json<T: serde::Serialize + ?Sized>(out: &mut Output, value: &T) -> Printed {
    match serde_json::to_string_pretty(value) {
        Ok(text) => writeln!(out, "{text}"),
        Err(e) => {
            warn(format_args!("sessiondb: cannot print JSON: {e}\n"));
            Ok(())
        }
    }
}

/// `value` as a JSON object with its keys in alphabetical order: the order these objects
/// have always been printed in, whatever the order of the type's fields.
pub fn json_sorted<T: serde::Serialize + ?Sized>(out: &mut Output, value: &T) -> Printed {
    match serde_json::to_value(value) {
        Ok(value) => json(out, &value),
        Err(e) => {
            warn(format_args!("sessiondb: cannot print JSON: {e}\n"));
            Ok(())
        }
    }
}

pub fn history(out: &mut Output, messages: &[Message]) -> Printed {
    for m in messages {
        let mut extra = Vec::new();
        if let Some(name) = m.body.extra.get("name").and_then(|n| n.as_str()) {
            extra.push(format!("name {}", cell(name)));
        }
        if let Some(id) = &m.body.tool_call_id {
            extra.push(format!("for {}", terminal_safe(id)));
        }
        if let Some(model) = &m.body.model {
            extra.push(terminal_safe(model));
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" ({})", extra.join(", "))
        };
        let mut text = shown_content(&m.body.content);
        if text.is_empty() && m.body.tool_calls.is_none() {
            text = other_item(m);
        }
        for call in m.body.tool_calls.iter().flatten() {
            let function = &call["function"];
            let line = format!(
                "calls {}({})",
                function["name"].as_str().unwrap_or("?"),
                function["arguments"].as_str().unwrap_or("")
            );
            text = if text.is_empty() {
                line
            } else {
                format!("{text}\n{line}")
            };
        }
        writeln!(
            out,
            "[{}] {}{extra}: {}",
            m.index,
            m.role(),
            indented(&terminal_safe(&text))
        )?;
    }
    Ok(())
}

/// `history --follow`: the start of a reply being streamed as message `index`, on a line
/// left open for the chunks that follow. Escaped and indented as committed text is, so a
/// chunk can neither drive the terminal nor fake a `[n] role:` line.
pub fn streamed(out: &mut Output, index: u64, text: &str) -> Printed {
    write!(out, "[{index}] assistant (streaming): ")?;
    streamed_more(out, text)
}

/// More of the streamed reply. Escaping and indenting work a character at a time, so text
/// shown in chunks reads exactly as the whole would.
pub fn streamed_more(out: &mut Output, text: &str) -> Printed {
    write!(out, "{}", indented(&terminal_safe(text)))
}

/// Ends the open line of a streamed reply.
pub fn line_end(out: &mut Output) -> Printed {
    writeln!(out)
}

/// The streamed reply was discarded, not finished.
pub fn stream_discarded(out: &mut Output) -> Printed {
    writeln!(out, " (discarded)")
}

pub fn history_replaced(out: &mut Output, version: i64) -> Printed {
    writeln!(out, "-- history replaced (version {version}) --")
}

/// `n` and a noun: `1 session`, `2 sessions`, `0 branches`.
pub fn count(n: impl TryInto<u64>, noun: &str) -> String {
    match n.try_into().unwrap_or(u64::MAX) {
        1 => format!("1 {noun}"),
        n if noun.ends_with("ch") || noun.ends_with('s') => format!("{n} {noun}es"),
        n => format!("{n} {noun}s"),
    }
}

/// A message with no text standing for another kind of item an agent SDK stored (a
/// reasoning step, a web search): `[reasoning] ` and its summary's text, if any.
fn other_item(m: &Message) -> String {
    let Some(item) = m
        .body
        .metadata
        .as_ref()
        .and_then(|md| md.get("openai_item"))
    else {
        return String::new();
    };
    let kind = item["type"].as_str().unwrap_or("item");
    let summary: Vec<&str> = item["summary"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|part| part["text"].as_str())
        .collect();
    if summary.is_empty() {
        format!("[{kind}]")
    } else {
        format!("[{kind}] {}", summary.join("\n"))
    }
}

/// The content as a reader sees it: the text, with `[type]` for a part that has none.
fn shown_content(content: &Content) -> String {
    match content {
        Content::Parts(parts) => parts
            .iter()
            .map(
                |p| match (p.get("text").and_then(|t| t.as_str()), p.get("type")) {
                    (Some(text), _) => text.to_string(),
                    (None, Some(kind)) => format!("[{}]", kind.as_str().unwrap_or("part")),
                    (None, None) => "[part]".to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.text().into_owned(),
    }
}

/// Text from a model or a tool, made safe for a terminal: control characters (escape
/// sequences, carriage returns, bells) are shown escaped, newlines and tabs kept.
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Continuation lines indented, so a line of content cannot pass for a new `[n] role:` line.
fn indented(text: &str) -> String {
    text.replace('\n', "\n    ")
}

/// One line of a table cell or list: control characters and newlines shown escaped.
fn cell(text: &str) -> String {
    terminal_safe(text)
        .replace('\n', "\\n")
        .replace('\t', "\\t")
}

pub fn hits(out: &mut Output, hits: &[SearchHit]) -> Printed {
    for hit in hits {
        let note = if hit.in_current_history {
            ""
        } else {
            " (not in the current history)"
        };
        writeln!(
            out,
            "{} [{}] {} on {}{note}: {}",
            cell(&hit.session_id),
            hit.index,
            hit.role,
            cell(&hit.branch),
            cell(&hit.snippet)
        )?;
    }
    Ok(())
}

pub fn sessions(out: &mut Output, sessions: &[Session]) -> Printed {
    let rows: Vec<[String; 5]> = sessions
        .iter()
        .map(|s| {
            [
                cell(&s.id),
                cell(s.title.as_deref().unwrap_or_default()),
                cell(s.agent_name.as_deref().unwrap_or_default()),
                s.message_count.to_string(),
                s.updated_at.format(TABLE_TIME).to_string(),
            ]
        })
        .collect();
    table(
        out,
        ["ID", "TITLE", "AGENT", "MESSAGES", "UPDATED (UTC)"],
        &rows,
    )
}

pub fn session(out: &mut Output, s: &Session) -> Printed {
    let or_dash = |v: &Option<String>| v.as_deref().map_or("-".into(), cell);
    let agent = match (&s.agent_name, &s.agent_id) {
        (None, None) => "-".to_string(),
        (Some(name), None) => cell(name),
        (None, Some(id)) => format!("- (id {})", cell(id)),
        (Some(name), Some(id)) => format!("{} (id {})", cell(name), cell(id)),
    };
    writeln!(out, "id:          {}", cell(&s.id))?;
    writeln!(out, "title:       {}", or_dash(&s.title))?;
    writeln!(out, "agent:       {agent}")?;
    writeln!(out, "user:        {}", or_dash(&s.user_id))?;
    writeln!(out, "parent:      {}", or_dash(&s.parent_session))?;
    writeln!(out, "head branch: {}", s.head_branch)?;
    writeln!(out, "messages:    {}", s.message_count)?;
    writeln!(
        out,
        "usage:       {} input, {} output tokens, cost {}",
        s.usage.input_tokens, s.usage.output_tokens, s.usage.cost
    )?;
    writeln!(
        out,
        "metadata:    {}",
        serde_json::Value::Object(s.metadata.clone())
    )?;
    writeln!(out, "version:     {}", s.version)?;
    writeln!(out, "created:     {}", time(&s.created_at))?;
    writeln!(out, "updated:     {}", time(&s.updated_at))
}

/// Times in tables: to the second, in UTC as the column heads say, so columns stay narrow;
/// `show` and `--json` print the exact form below.
const TABLE_TIME: &str = "%Y-%m-%d %H:%M:%S";

/// A time as the file stores it and `--json` prints it: the form of the core's
/// `model::time_text`, spelled here because the CLI sees only the public API.
fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Left-aligned columns, widths fitted to the content.
pub fn table<const N: usize>(out: &mut Output, header: [&str; N], rows: &[[String; N]]) -> Printed {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut Output, cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", padded.join("  ").trim_end())
    };
    line(out, header.to_vec())?;
    for row in rows {
        line(out, row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

pub fn branches(out: &mut Output, branches: &[Branch]) -> Printed {
    let rows: Vec<[String; 5]> = branches
        .iter()
        .map(|b| {
            [
                format!("{}{}", if b.is_head { "* " } else { "  " }, b.name),
                b.length.to_string(),
                b.fork_point
                    .as_ref()
                    .map(|f| format!("{} @ {}", f.branch, f.at_index))
                    .unwrap_or_default(),
                b.created_at.format(TABLE_TIME).to_string(),
                b.superseded_at
                    .map(|t| t.format(TABLE_TIME).to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table(
        out,
        [
            "  BRANCH",
            "MESSAGES",
            "FORKED FROM",
            "CREATED (UTC)",
            "SUPERSEDED",
        ],
        &rows,
    )
}

pub fn snapshots(out: &mut Output, snapshots: &[Snapshot]) -> Printed {
    let rows: Vec<[String; 5]> = snapshots
        .iter()
        .map(|s| {
            [
                s.id.to_string(),
                s.label.clone().unwrap_or_default(),
                s.branch.clone(),
                s.length.to_string(),
                s.created_at.format(TABLE_TIME).to_string(),
            ]
        })
        .collect();
    table(
        out,
        ["ID", "LABEL", "BRANCH", "MESSAGES", "CREATED (UTC)"],
        &rows,
    )
}

/// Draws a session, its live branches and its forks as a tree; a fork names its parent.
pub fn tree(out: &mut Output, root: &SessionTree) -> Printed {
    let parent = root
        .parent_session
        .as_deref()
        .map(|p| format!(", forked from {}", cell(p)))
        .unwrap_or_default();
    writeln!(out, "{}{parent}", session_line(root))?;
    tree_children(out, root, "")
}

fn session_line(node: &SessionTree) -> String {
    let plural = if node.message_count == 1 { "" } else { "s" };
    match &node.title {
        Some(title) => format!(
            "{} — {title} ({} message{plural})",
            node.id, node.message_count
        ),
        None => format!("{} ({} message{plural})", node.id, node.message_count),
    }
}

fn tree_children(out: &mut Output, node: &SessionTree, prefix: &str) -> Printed {
    let all = &node.branches;
    let superseded = all.iter().filter(|b| b.superseded_at.is_some()).count();
    let mut lines: Vec<(String, Option<&SessionTree>)> = all
        .iter()
        .filter(|b| b.superseded_at.is_none())
        .map(|b| {
            let from = b
                .fork_point
                .as_ref()
                .filter(|f| f.session.as_deref() == Some(node.id.as_str()))
                .map(|f| format!(", from {} @ {}", f.branch, f.at_index))
                .unwrap_or_default();
            let head = if b.is_head { "*" } else { "" };
            (
                format!("branch {}{head} ({}{from})", b.name, b.length),
                None,
            )
        })
        .collect();
    if superseded > 0 {
        lines.push((
            format!("{superseded} previous head(s), kept until prune"),
            None,
        ));
    }
    for child in &node.children {
        lines.push((format!("fork {}", session_line(child)), Some(child)));
    }
    let count = lines.len();
    for (i, (line, child)) in lines.into_iter().enumerate() {
        let last = i + 1 == count;
        writeln!(out, "{prefix}{}{line}", if last { "└─ " } else { "├─ " })?;
        if let Some(child) = child {
            let nested = format!("{prefix}{}", if last { "   " } else { "│  " });
            tree_children(out, child, &nested)?;
        }
    }
    Ok(())
}

/// The tree as a Graphviz digraph: sessions as boxes, branches as ellipses, forks as edges.
pub fn dot(out: &mut Output, root: &SessionTree) -> Printed {
    writeln!(out, "digraph sessions {{")?;
    writeln!(out, "  rankdir=LR; node [fontname=\"Helvetica\"];")?;
    dot_node(out, root)?;
    writeln!(out, "}}")?;
    Ok(())
}

fn dot_node(out: &mut Output, node: &SessionTree) -> Printed {
    let quote = |s: &str| {
        let escaped = s
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        format!("\"{escaped}\"")
    };
    let label = format!(
        "{}\n{} ({})",
        node.id,
        node.title.as_deref().unwrap_or(""),
        count(node.message_count, "message")
    );
    writeln!(
        out,
        "  {} [shape=box, label={}];",
        quote(&node.id),
        quote(&label)
    )?;
    for b in node.branches.iter().filter(|b| b.superseded_at.is_none()) {
        let id = format!("{}/{}", node.id, b.name);
        let style = if b.is_head { ", style=bold" } else { "" };
        writeln!(
            out,
            "  {} [label={}{style}];",
            quote(&id),
            quote(&format!("{} ({})", b.name, b.length))
        )?;
        writeln!(
            out,
            "  {} -> {} [arrowhead=none];",
            quote(&node.id),
            quote(&id)
        )?;
    }
    for child in &node.children {
        dot_node(out, child)?;
        writeln!(
            out,
            "  {} -> {} [label=\"fork\"];",
            quote(&node.id),
            quote(&child.id)
        )?;
    }
    Ok(())
}

/// `server`: the store is a PostgreSQL database, whose size the server reports (no file
/// or WAL of sessiondb's own).
pub fn stats(out: &mut Output, s: &Stats, server: bool) -> Printed {
    if server {
        writeln!(out, "database:  {} bytes on the server", s.file_bytes)?;
    } else {
        writeln!(
            out,
            "file:      {} bytes (+ {} bytes of WAL)",
            s.file_bytes, s.wal_bytes
        )?;
    }
    writeln!(
        out,
        "rows:      {}, {}, {}, {}",
        count(s.sessions, "session"),
        count(s.messages, "message"),
        count(s.branches, "branch"),
        count(s.snapshots, "snapshot")
    )?;
    writeln!(
        out,
        "prunable:  {}, {}, {}",
        count(s.prunable.branches, "branch"),
        count(s.prunable.messages, "message"),
        count(s.prunable.bytes, "byte")
    )?;
    writeln!(out, "largest sessions:")?;
    for largest in &s.largest_sessions {
        writeln!(
            out,
            "  {}: {}",
            cell(&largest.id),
            count(largest.messages, "message")
        )?;
    }
    // No cache line: this process's cache is empty, it lives for one command (`--json`
    // keeps the field, for the library's long-running callers).
    Ok(())
}

/// Where two branches diverge, then each side's messages after the shared ones.
pub fn branch_diff(out: &mut Output, d: &BranchDiff) -> Printed {
    let (a, b) = (cell(&d.a.branch), cell(&d.b.branch));
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    if d.a.messages.is_empty() && d.b.messages.is_empty() {
        return writeln!(
            out,
            "{a} and {b} hold the same {} message{}",
            d.common,
            plural(d.common)
        );
    }
    writeln!(
        out,
        "{a} and {b} share {} message{} and diverge at index {}",
        d.common,
        plural(d.common),
        d.common
    )?;
    for side in [&d.a, &d.b] {
        let n = side.messages.len() as u64;
        writeln!(
            out,
            "{} ({}) has {n} more message{}:",
            cell(&side.branch),
            count(side.length, "message"),
            plural(n)
        )?;
        history(out, &side.messages)?;
    }
    Ok(())
}

/// What `sessiondb demo` stored, where, and how to look at it.
pub fn demo(out: &mut Output, db: &std::path::Path, s: &Session, last_turn: &[Message]) -> Printed {
    let db_text = db.display().to_string();
    writeln!(out, "Stored session {} in {db_text}", s.id)?;
    writeln!(
        out,
        "  {}, {} input + {} output tokens, cost ${:.4}, version {}",
        count(s.message_count, "message"),
        s.usage.input_tokens,
        s.usage.output_tokens,
        s.usage.cost,
        s.version
    )?;
    writeln!(out, "  the last turn:")?;
    history(out, last_turn)?;
    let quoted = format!("'{}'", db_text.replace('\'', r"'\''"));
    writeln!(out, "Look at it with:")?;
    writeln!(out, "  sessiondb --db {quoted} history {}", s.id)?;
    writeln!(
        out,
        "  sqlite3 {quoted} \"SELECT position, role, content FROM history WHERE session_id = \
         '{}' ORDER BY position\"",
        s.id
    )
}
