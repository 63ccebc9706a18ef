//! Human-readable and JSON output of the CLI.

use sessiondb::{Branch, Message, Result, Session, SessionTree, Snapshot, Stats, Store};

pub fn json<T: serde::Serialize + ?Sized>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("sessiondb: cannot print JSON: {e}"),
    }
}

pub fn history(messages: &[Message]) {
    for m in messages {
        let mut extra = Vec::new();
        if let Some(calls) = &m.body.tool_calls {
            extra.push(format!("{} tool call(s)", calls.len()));
        }
        if let Some(id) = &m.body.tool_call_id {
            extra.push(format!("for {id}"));
        }
        if let Some(model) = &m.body.model {
            extra.push(model.clone());
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" ({})", extra.join(", "))
        };
        println!("[{}] {}{extra}: {}", m.index, m.role(), m.content());
    }
}

pub fn sessions(sessions: &[Session]) {
    let rows: Vec<[String; 5]> = sessions
        .iter()
        .map(|s| {
            [
                s.id.clone(),
                s.title.clone().unwrap_or_default(),
                s.agent_name.clone().unwrap_or_default(),
                s.message_count.to_string(),
                s.updated_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            ]
        })
        .collect();
    table(["ID", "TITLE", "AGENT", "MESSAGES", "UPDATED (UTC)"], &rows);
}

pub fn session(s: &Session) {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("id:          {}", s.id);
    println!("title:       {}", or_dash(&s.title));
    println!(
        "agent:       {} ({})",
        or_dash(&s.agent_name),
        or_dash(&s.agent_id)
    );
    println!("user:        {}", or_dash(&s.user_id));
    println!("parent:      {}", or_dash(&s.parent_session));
    println!("head branch: {}", s.head_branch);
    println!("messages:    {}", s.message_count);
    println!(
        "usage:       {} input, {} output tokens, cost {}",
        s.usage.input_tokens, s.usage.output_tokens, s.usage.cost
    );
    println!(
        "metadata:    {}",
        serde_json::Value::Object(s.metadata.clone())
    );
    println!("version:     {}", s.version);
    println!("created:     {}", s.created_at.to_rfc3339());
    println!("updated:     {}", s.updated_at.to_rfc3339());
}

/// Left-aligned columns, widths fitted to the content.
pub fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub fn branches(branches: &[Branch]) {
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
                b.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                b.superseded_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table(
        [
            "  BRANCH",
            "MESSAGES",
            "FORKED FROM",
            "CREATED (UTC)",
            "SUPERSEDED",
        ],
        &rows,
    );
}

pub fn snapshots(snapshots: &[Snapshot]) {
    let rows: Vec<[String; 5]> = snapshots
        .iter()
        .map(|s| {
            [
                s.id.to_string(),
                s.label.clone().unwrap_or_default(),
                s.branch.clone(),
                s.length.to_string(),
                s.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            ]
        })
        .collect();
    table(
        ["ID", "LABEL", "BRANCH", "MESSAGES", "CREATED (UTC)"],
        &rows,
    );
}

/// Draws a session, its live branches and its forks as a tree.
pub fn tree(store: &Store, root: &SessionTree) -> Result<()> {
    println!("{}", session_line(root));
    tree_children(store, root, "")
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

fn tree_children(store: &Store, node: &SessionTree, prefix: &str) -> Result<()> {
    let all = store.branches(&node.id)?;
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
        println!("{prefix}{}{line}", if last { "└─ " } else { "├─ " });
        if let Some(child) = child {
            let nested = format!("{prefix}{}", if last { "   " } else { "│  " });
            tree_children(store, child, &nested)?;
        }
    }
    Ok(())
}

/// The tree as a Graphviz digraph: sessions as boxes, branches as ellipses, forks as edges.
pub fn dot(store: &Store, root: &SessionTree) -> Result<()> {
    println!("digraph sessions {{");
    println!("  rankdir=LR; node [fontname=\"Helvetica\"];");
    dot_node(store, root)?;
    println!("}}");
    Ok(())
}

fn dot_node(store: &Store, node: &SessionTree) -> Result<()> {
    let quote = |s: &str| {
        let escaped = s
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        format!("\"{escaped}\"")
    };
    let label = format!(
        "{}\n{} ({} messages)",
        node.id,
        node.title.as_deref().unwrap_or(""),
        node.message_count
    );
    println!(
        "  {} [shape=box, label={}];",
        quote(&node.id),
        quote(&label)
    );
    for b in store
        .branches(&node.id)?
        .iter()
        .filter(|b| b.superseded_at.is_none())
    {
        let id = format!("{}/{}", node.id, b.name);
        let style = if b.is_head { ", style=bold" } else { "" };
        println!(
            "  {} [label={}{style}];",
            quote(&id),
            quote(&format!("{} ({})", b.name, b.length))
        );
        println!("  {} -> {} [arrowhead=none];", quote(&node.id), quote(&id));
    }
    for child in &node.children {
        dot_node(store, child)?;
        println!(
            "  {} -> {} [label=\"fork\"];",
            quote(&node.id),
            quote(&child.id)
        );
    }
    Ok(())
}

pub fn stats(s: &Stats) {
    println!(
        "file:      {} bytes (+ {} bytes of WAL)",
        s.file_bytes, s.wal_bytes
    );
    println!(
        "rows:      {} sessions, {} messages, {} branches, {} snapshots",
        s.sessions, s.messages, s.branches, s.snapshots
    );
    println!(
        "prunable:  {} branches, {} messages, {} bytes",
        s.prunable.branches, s.prunable.messages, s.prunable.bytes
    );
    println!("largest sessions:");
    for (id, count) in &s.largest_sessions {
        println!("  {id}: {count} messages");
    }
    println!(
        "cache (this process): {} hits, {} misses, {} entries",
        s.cache.hits, s.cache.misses, s.cache.entries
    );
}
