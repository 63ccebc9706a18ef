//! A simulated agent conversation stored in the default database file: a few turns with tool
//! calls and token usage, then a summary of what was stored and where.
//!
//! Run: `cargo run --release --example agent_demo` (set `SESSIONDB_PATH` to choose the file).

use serde_json::json;
use sessiondb::{NewMessage, NewSession, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = sessiondb::default_path().ok_or("no data directory: set SESSIONDB_PATH")?;
    let store = Store::open(&path)?;

    let session = store.create_session(NewSession {
        title: Some("Weekend trip to Oslo".into()),
        agent_name: Some("travel-agent".into()),
        user_id: Some("demo-user".into()),
        ..NewSession::default()
    })?;
    let id = session.id.as_str();
    store.add_message(
        id,
        NewMessage::system("You plan trips. Use tools for facts."),
    )?;

    let turns = [
        (
            "What will the weather be in Oslo on Saturday?",
            "weather",
            json!({"city": "Oslo", "day": "Saturday"}),
            "{\"forecast\": \"snow\", \"high_c\": -2}",
            "Expect snow and a high of -2°C: pack a warm coat.",
        ),
        (
            "Find me a museum that is open then.",
            "search_places",
            json!({"city": "Oslo", "kind": "museum"}),
            "[\"Munch Museum\", \"Fram Museum\"]",
            "The Munch Museum and the Fram Museum are both open on Saturday.",
        ),
        (
            "Book two tickets for the Fram Museum.",
            "book_tickets",
            json!({"venue": "Fram Museum", "count": 2}),
            "{\"confirmation\": \"FRAM-2291\"}",
            "Booked: two tickets, confirmation FRAM-2291.",
        ),
    ];
    for (turn, (prompt, tool, args, result, answer)) in turns.into_iter().enumerate() {
        store.add_user_message(id, prompt)?;
        let call_id = format!("call_{turn}");
        let call = json!({"id": call_id, "type": "function",
                          "function": {"name": tool, "arguments": args.to_string()}});
        store.add_message(
            id,
            NewMessage::assistant(sessiondb::Content::Null)
                .with_tool_calls(vec![call])
                .with_model("demo-model")
                .with_usage(180 + 60 * turn as u64, 24, Some(0.0006)),
        )?;
        store.add_message(id, NewMessage::tool(&call_id, result))?;
        store.add_message(
            id,
            NewMessage::assistant(answer)
                .with_model("demo-model")
                .with_usage(240 + 60 * turn as u64, 32, Some(0.0008)),
        )?;
    }

    let session = store.session(id)?;
    let recent = store.chat_history(id, Some(4))?;
    println!("Stored session {id} in {}", path.display());
    println!(
        "  {} messages, {} input + {} output tokens, cost ${:.4}, version {}",
        session.message_count,
        session.usage.input_tokens,
        session.usage.output_tokens,
        session.usage.cost,
        session.version
    );
    println!("  last turn:");
    for m in recent.iter() {
        // A tool-call turn has no text: show the call itself.
        let calls: Vec<String> = m
            .body
            .tool_calls
            .iter()
            .flatten()
            .map(|c| {
                let f = &c["function"];
                format!(
                    "calls {}({})",
                    f["name"].as_str().unwrap_or("?"),
                    f["arguments"].as_str().unwrap_or("")
                )
            })
            .collect();
        let shown = if calls.is_empty() {
            m.content().to_string()
        } else {
            calls.join("; ")
        };
        println!("    [{}] {}: {}", m.index, m.role(), shown);
    }
    println!("Look at it with:");
    println!("  cargo run --release -- history {id}");
    println!(
        "  sqlite3 '{}' \"SELECT position, role, content FROM history WHERE session_id = '{id}' ORDER BY position\"",
        path.display()
    );
    Ok(())
}
