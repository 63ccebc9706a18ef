//! `sessiondb demo`: a simulated agent conversation (a few turns with tool calls and token
//! usage) written to a database of its own, never the user's real default one, then a
//! summary of what was stored and how to look at it.

use serde_json::json;
use sessiondb::{Content, NewMessage, NewSession, Store};

use crate::output::{Failure, Output};
use crate::print;

/// Where the demo writes without `--db`: `demo.db` beside the default database, so a first
/// try leaves the user's real sessions alone.
pub fn default_path() -> Option<std::path::PathBuf> {
    let real = sessiondb::default_path()?;
    Some(real.with_file_name("demo.db"))
}

/// (prompt, tool, arguments, tool result, answer) of each turn.
const TURNS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "What will the weather be in Oslo on Saturday?",
        "weather",
        r#"{"city":"Oslo","day":"Saturday"}"#,
        r#"{"forecast": "snow", "high_c": -2}"#,
        "Expect snow and a high of -2°C: pack a warm coat.",
    ),
    (
        "Find me a museum that is open then.",
        "search_places",
        r#"{"city":"Oslo","kind":"museum"}"#,
        r#"["Munch Museum", "Fram Museum"]"#,
        "The Munch Museum and the Fram Museum are both open on Saturday.",
    ),
    (
        "Book two tickets for the Fram Museum.",
        "book_tickets",
        r#"{"venue":"Fram Museum","count":2}"#,
        r#"{"confirmation": "FRAM-2291"}"#,
        "Booked: two tickets, confirmation FRAM-2291.",
    ),
];

pub fn run(store: &Store, out: &mut Output) -> Result<(), Failure> {
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
    for (turn, (prompt, tool, arguments, result, answer)) in TURNS.into_iter().enumerate() {
        let turn = turn as u64;
        let call_id = format!("call_{turn}");
        let call = json!({"id": call_id, "type": "function",
                          "function": {"name": tool, "arguments": arguments}});
        store.add_messages(
            id,
            &[
                NewMessage::user(prompt),
                NewMessage::assistant(Content::Null)
                    .with_tool_calls(vec![call])
                    .with_model("demo-model")
                    .with_usage(180 + 60 * turn, 24, Some(0.0006)),
                NewMessage::tool(&call_id, result),
                NewMessage::assistant(answer)
                    .with_model("demo-model")
                    .with_usage(240 + 60 * turn, 32, Some(0.0008)),
            ],
        )?;
    }
    let session = store.session(id)?;
    let last_turn = store.chat_history(id, Some(4))?;
    print::demo(out, store.path(), &session, &last_turn)
}
