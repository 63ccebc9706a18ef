//! Human-readable and JSON output of the CLI.

use sessiondb::{Message, Session};

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
