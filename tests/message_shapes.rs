//! Messages as agents send them: null or absent content, content parts, unknown keys, tool
//! calls checked at the boundary, given timestamps kept.

mod common;

use std::path::Path;

use common::temp_db;
use serde_json::{json, Value};
use sessiondb::{Content, Error, NewMessage, Role, SearchFilter, Store};

/// An OpenAI chat history with every shape the issue names.
fn openai_history() -> Value {
    json!([
        {"role": "system", "content": "You plan trips."},
        {"role": "user", "name": "ada", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/fjord.png", "detail": "low"}}
        ]},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "describe", "arguments": "{\"detail\":\"low\"}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a fjord at dusk"},
        {"role": "assistant", "tool_calls": [
            {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_2", "name": "weather", "content": [
            {"type": "text", "text": "snow"}
        ]},
        {"role": "assistant", "content": "A fjord at dusk; snow expected.", "refusal": null,
         "audio": {"id": "audio_1"}}
    ])
}

fn without_keys(mut value: Value, keys: &[&str]) -> Value {
    for item in value.as_array_mut().into_iter().flatten() {
        for key in keys {
            item.as_object_mut().map(|o| o.remove(*key));
        }
    }
    value
}

fn parse(value: &Value) -> Vec<NewMessage> {
    serde_json::from_value(value.clone()).unwrap()
}

#[test]
fn openai_shaped_history_round_trips_key_for_key_through_the_library() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .set_chat_history("s", &parse(&openai_history()))
        .unwrap();
    // From the file, not the cache: what was stored is what comes back.
    let fresh = Store::open(&path).unwrap();
    let read = serde_json::to_value(&*fresh.chat_history("s", None).unwrap()).unwrap();
    assert_eq!(
        without_keys(read, &["index", "created_at"]),
        openai_history()
    );
}

/// Responses-API items of the shapes the Agents SDK writes besides chat messages.
fn responses_items() -> Value {
    json!([
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Looking.", "annotations": []}]},
        {"type": "function_call", "call_id": "call_9", "name": "weather",
         "arguments": "{\"city\":\"Oslo\"}", "id": "fc_1"},
        {"type": "function_call_output", "call_id": "call_9", "output": "3C"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "cold"}]},
        {"type": "function_call", "name": "no_call_id", "arguments": "{}"},
        {"role": "developer", "content": "Be brief."}
    ])
}

#[test]
fn openai_items_of_every_shape_read_back_exactly() {
    let (_dir, path) = temp_db();
    let items: Vec<Value> = [openai_history(), responses_items()]
        .iter()
        .flat_map(|list| list.as_array().unwrap().clone())
        .collect();
    let messages: Vec<NewMessage> = items
        .iter()
        .map(|item| NewMessage::from_openai_item(item.clone()).unwrap())
        .collect();
    Store::open(&path)
        .unwrap()
        .add_messages("s", &messages)
        .unwrap();
    // From the file, not the cache.
    let history = Store::open(&path).unwrap().chat_history("s", None).unwrap();
    let read: Vec<Value> = history
        .iter()
        .map(|m| m.openai_item().into_owned())
        .collect();
    assert_eq!(read, items);
    // Stored as the chat messages a person reads.
    let n = openai_history().as_array().unwrap().len();
    assert_eq!(history[n].role(), Role::Assistant);
    assert_eq!(history[n].content(), "Looking.");
    let call = &history[n + 1].body.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call["id"], "call_9");
    assert_eq!(call["function"]["name"], "weather");
    assert_eq!(history[n + 2].role(), Role::Tool);
    assert_eq!(history[n + 2].body.tool_call_id.as_deref(), Some("call_9"));
    assert_eq!(history[n + 3].role(), Role::Assistant);
    assert_eq!(history[n + 5].role(), Role::Developer);
}

#[test]
fn a_message_written_otherwise_reads_as_the_openai_item_of_its_chat_form() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .set_chat_history("s", &parse(&openai_history()))
        .unwrap();
    let history = Store::open(&path).unwrap().chat_history("s", None).unwrap();
    let read: Vec<Value> = history
        .iter()
        .map(|m| m.openai_item().into_owned())
        .collect();
    let parts = openai_history()[1]["content"].clone();
    let snow = openai_history()[5]["content"].clone();
    assert_eq!(
        read,
        [
            json!({"role": "system", "content": "You plan trips."}),
            json!({"role": "user", "content": parts}),
            json!({"role": "assistant", "content": null}),
            json!({"role": "tool", "content": "a fjord at dusk"}),
            json!({"role": "assistant", "content": null}),
            json!({"role": "tool", "content": snow}),
            json!({"role": "assistant", "content": "A fjord at dusk; snow expected."}),
        ]
    );
}

#[test]
fn an_openai_item_with_an_unknown_role_is_refused() {
    let refused = NewMessage::from_openai_item(json!({"role": "wizard", "content": "hi"}));
    assert!(matches!(refused, Err(Error::InvalidInput(what)) if what.contains("wizard")));
}

#[test]
fn content_forms_are_told_apart_when_read() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .set_chat_history("s", &parse(&openai_history()))
        .unwrap();
    let history = Store::open(&path)
        .unwrap()
        .chat_history_uncached("s", None)
        .unwrap();
    assert_eq!(
        history[0].body.content,
        Content::Text("You plan trips.".into())
    );
    assert_eq!(history[2].body.content, Content::Null);
    assert_eq!(history[4].body.content, Content::Absent);
    assert!(matches!(&history[1].body.content, Content::Parts(p) if p.len() == 2));
    assert_eq!(history[1].text(), "What is in this picture?");
    assert_eq!(history[1].content(), "");
    assert_eq!(history[1].body.extra["name"], "ada");
}

/// position, content, content_kind, the image URL of part 1, the `name` extra key.
type ViewRow = (i64, String, Option<String>, Option<String>, Option<String>);

#[test]
fn the_history_view_shows_the_text_of_parts_and_the_parts_as_json() {
    if common::sqlite_only("the history view shows the text of parts and the parts as json") {
        return;
    }
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .set_chat_history("s", &parse(&openai_history()))
        .unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: Vec<ViewRow> = conn
        .prepare(
            "SELECT position, content, content_kind,
                    json_extract(content_parts, '$[1].image_url.url'),
                    json_extract(extra, '$.name')
             FROM history WHERE session_id = 's' ORDER BY position",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(rows[0], (0, "You plan trips.".into(), None, None, None));
    assert_eq!(
        rows[1],
        (
            1,
            "What is in this picture?".into(),
            some("parts"),
            some("https://example.com/fjord.png"),
            some("ada")
        )
    );
    assert_eq!(rows[2], (2, String::new(), some("null"), None, None));
    assert_eq!(rows[4], (4, String::new(), some("absent"), None, None));
    assert_eq!(
        rows[5],
        (5, "snow".into(), some("parts"), None, some("weather"))
    );
}

#[test]
fn search_finds_the_text_of_content_parts() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .set_chat_history("s", &parse(&openai_history()))
        .unwrap();
    let hits = store
        .search("picture", 10, &SearchFilter::default())
        .unwrap();
    assert_eq!(
        hits.iter().map(|h| (h.index, h.role)).collect::<Vec<_>>(),
        [(1, Role::User)]
    );
}

fn refusal(store: &Store, message: NewMessage) -> String {
    match store.add_message("s", message) {
        Err(Error::InvalidInput(what)) => what,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn tool_calls_are_refused_naming_the_message_and_the_field() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "hi").unwrap();
    let calls = |call: Value| NewMessage::assistant("").with_tool_calls(vec![call]);
    let cases = [
        (
            json!(1),
            "message 1: tool_calls[0] must be an object, got a number",
        ),
        (
            json!({"function": {"name": "f", "arguments": "{}"}}),
            "message 1: tool_calls[0].id must be a string, got missing",
        ),
        (
            json!({"id": 7, "function": {"name": "f", "arguments": "{}"}}),
            "message 1: tool_calls[0].id must be a string, got a number",
        ),
        (
            json!({"id": "c"}),
            "message 1: tool_calls[0].function must be an object, got missing",
        ),
        (
            json!({"id": "c", "function": {"arguments": "{}"}}),
            "message 1: tool_calls[0].function.name must be a string, got missing",
        ),
        (
            json!({"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}),
            "message 1: tool_calls[0].function.arguments must be a string, got an object",
        ),
    ];
    for (call, expected) in cases {
        assert_eq!(refusal(&store, calls(call)), expected);
    }
    assert_eq!(store.session("s").unwrap().message_count, 1);
}

#[test]
fn a_tool_message_without_a_tool_call_id_is_refused() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    assert_eq!(
        refusal(&store, NewMessage::new(Role::Tool, "sunny")),
        "message 0: tool_call_id is missing: a tool message answers a tool call"
    );
}

#[test]
fn content_parts_must_be_objects_and_extra_keys_must_not_name_fields() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    assert_eq!(
        refusal(
            &store,
            NewMessage::user(vec![json!({"type": "text", "text": "a"}), json!("b")])
        ),
        "message 0: content[1] must be a JSON object (a content part), got a string"
    );
    assert_eq!(
        refusal(
            &store,
            NewMessage::user("x").with_extra("model", json!("m"))
        ),
        "message 0: extra key \"model\" is a field of the message; set the field instead"
    );
}

#[test]
fn set_chat_history_creates_an_unknown_session() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let change = store
        .set_chat_history("new", &[NewMessage::user("restored")])
        .unwrap();
    assert_eq!(
        (change.kept, change.written, change.superseded),
        (0, 1, false)
    );
    let history = store.chat_history_uncached("new", None).unwrap();
    assert_eq!(history[0].content(), "restored");
    assert_eq!(store.session("new").unwrap().head_branch, "main");
    // With an expected version there is nothing to expect of a missing session.
    assert!(matches!(
        store.set_chat_history_at_version("ghost", &[], 1),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn given_timestamps_are_kept_and_a_matching_time_keeps_the_prefix() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let doc = json!([
        {"role": "user", "content": "a", "created_at": "2024-05-01T10:00:00.123456Z"},
        {"role": "assistant", "content": "b", "created_at": "2024-05-01T10:00:05Z"},
        {"role": "user", "content": "c"}
    ]);
    store.set_chat_history("s", &parse(&doc)).unwrap();
    let history = Store::open(&path)
        .unwrap()
        .chat_history_uncached("s", None)
        .unwrap();
    let times: Vec<String> = history
        .iter()
        .map(|m| {
            m.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        })
        .collect();
    assert_eq!(times[0], "2024-05-01T10:00:00.123456Z");
    assert_eq!(times[1], "2024-05-01T10:00:05.000000Z");
    assert!(times[2].as_str() > "2025", "{}", times[2]);
    // Writing the read history back (times included) changes nothing.
    let again: Vec<NewMessage> = history.iter().cloned().map(|m| m.into_dated()).collect();
    let change = store.set_chat_history("s", &again).unwrap();
    assert_eq!((change.kept, change.written), (3, 0));
    // Another time for the same message is a change from there on.
    let mut moved = again.clone();
    moved[1].created_at = Some("2024-05-01T11:00:00Z".parse().unwrap());
    let change = store.set_chat_history("s", &moved).unwrap();
    assert_eq!(
        (change.kept, change.written, change.superseded),
        (1, 2, true)
    );
}

#[test]
fn roles_are_read_case_insensitively() {
    assert_eq!("User".parse::<Role>().unwrap(), Role::User);
    assert_eq!("ASSISTANT".parse::<Role>().unwrap(), Role::Assistant);
    let m: NewMessage = serde_json::from_value(json!({"role": "System", "content": "x"})).unwrap();
    assert_eq!(m.role, Role::System);
    assert_eq!(
        "robot".parse::<Role>().unwrap_err().to_string(),
        "invalid input: unknown role \"robot\": expected system, developer, user, assistant or tool"
    );
}

#[test]
fn set_history_then_history_json_gives_back_the_same_json() {
    let (_dir, db) = temp_db();
    ok(
        &db,
        &["set-history", "s", "-"],
        Some(&openai_history().to_string()),
    );
    let read: Value = serde_json::from_str(&ok(&db, &["history", "s", "--json"], None)).unwrap();
    assert_eq!(
        without_keys(read, &["index", "created_at"]),
        openai_history()
    );
}

#[test]
fn export_import_export_keeps_openai_shapes_unchanged() {
    let (dir, db) = temp_db();
    ok(
        &db,
        &["set-history", "s", "-"],
        Some(&openai_history().to_string()),
    );
    let exported = ok(&db, &["export"], None);
    let first: Value = serde_json::from_str(&exported).unwrap();
    let file = dir.path().join("export.json");
    std::fs::write(&file, exported).unwrap();
    let other = dir.path().join("other.db");
    ok(
        &other,
        &["import", "--format", "sessiondb", file.to_str().unwrap()],
        None,
    );
    let second: Value = serde_json::from_str(&ok(&other, &["export"], None)).unwrap();
    let strip = |mut v: Value| {
        v.as_object_mut().map(|o| o.remove("exported_at"));
        v
    };
    assert_eq!(strip(second), strip(first.clone()));
    let messages = first["sessions"][0]["messages"].clone();
    assert_eq!(
        without_keys(messages, &["index", "created_at"]),
        openai_history()
    );
}

#[test]
fn sdk_items_of_every_kind_are_stored_and_read_back_exactly_calls_without_ids_included() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let items = [
        json!({"role": "user", "content": "add 2 and 2"}),
        json!({"type": "function_call", "name": "add", "arguments": "{\"a\":2,\"b\":2}"}),
        json!({"type": "function_call", "name": "add", "arguments": "{}", "call_id": null}),
        json!({"type": "function_call", "call_id": "c1", "name": "add", "arguments": "{}"}),
        json!({"type": "function_call_output", "call_id": "c1", "output": "4"}),
        json!({"type": "reasoning", "id": "rs_1", "summary": []}),
    ];
    let messages: Vec<NewMessage> = items
        .iter()
        .map(|item| NewMessage::from_openai_item(item.clone()).unwrap())
        .collect();
    store.add_messages("sdk", &messages).unwrap();
    let history = store.chat_history_uncached("sdk", None).unwrap();
    let kept: Vec<&Value> = history
        .iter()
        .map(|m| &m.body.metadata.as_ref().unwrap()["openai_item"])
        .collect();
    assert_eq!(kept, items.iter().collect::<Vec<_>>());
    let ids: Vec<Option<&str>> = history[1..4]
        .iter()
        .map(|m| m.body.tool_calls.as_ref().unwrap()[0]["id"].as_str())
        .collect();
    assert_eq!(ids, [Some(""), Some(""), Some("c1")]);
    assert_eq!(history[4].role(), Role::Tool);
    assert_eq!(history[4].body.tool_call_id.as_deref(), Some("c1"));
}

#[test]
fn add_refuses_malformed_tool_calls_on_stderr_naming_the_field() {
    let (_dir, db) = temp_db();
    let out = run(
        &db,
        &["add", "s", "assistant", "", "--tool-calls", "[1]"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "sessiondb: invalid input: message 0: tool_calls[0] must be an object, got a number\n"
    );
    assert!(out.stdout.is_empty());
}

fn run(db: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    common::run_cli_with_input(db, args, stdin.unwrap_or(""))
}

fn ok(db: &Path, args: &[&str], stdin: Option<&str>) -> String {
    common::expect_ok(run(db, args, stdin), args)
}

/// The `developer` role of current OpenAI chat APIs is stored as itself: from the library,
/// from JSON, from an OpenAI Responses item and from the CLI, and read back the same.
#[test]
fn the_developer_role_is_stored_as_itself() {
    let (_dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    store
        .add_message("s", NewMessage::new(Role::Developer, "Answer in French."))
        .unwrap();
    let from_json: NewMessage =
        serde_json::from_value(json!({"role": "Developer", "content": "Be brief."})).unwrap();
    store.add_message("s", from_json).unwrap();
    let item = json!({"type": "message", "role": "developer", "content": "No emojis."});
    store
        .add_message("s", NewMessage::from_openai_item(item).unwrap())
        .unwrap();
    common::cli_ok(&db, &["add", "s", "developer", "Cite sources."]);
    let history = store.chat_history("s", None).unwrap();
    let roles: Vec<Role> = history.iter().map(|m| m.role()).collect();
    assert_eq!(roles, [Role::Developer; 4]);
    let json = common::cli_json(&db, &["history", "s", "--json"]);
    assert_eq!(
        json[0],
        json!({"index": 0, "role": "developer", "content": "Answer in French.",
                                "created_at": json[0]["created_at"]})
    );
    assert_eq!(
        common::cli_ok(&db, &["history", "s", "--limit", "1"]),
        "[3] developer: Cite sources.\n"
    );
}
