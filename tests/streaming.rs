//! Streamed replies: persisted chunk by chunk, surviving a crash, and stored exactly like a
//! reply added in one go.

mod common;

use std::io::{BufRead, BufReader};

use common::{spawn_worker, temp_db, worker_env};
use rusqlite::Connection;
use serde_json::json;
use sessiondb::{Error, NewMessage, Store, StreamEnd};

fn contents(history: &[sessiondb::Message]) -> Vec<String> {
    history.iter().map(|m| m.content().to_string()).collect()
}

#[test]
fn chunks_are_readable_as_a_partial_and_join_the_history_when_finished() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "tell me a story").unwrap();
    let version = store.session("s").unwrap().version;
    let started = store.start_stream("s", Some("gpt-x"), None).unwrap();
    assert_eq!((started.content.as_str(), started.chunks), ("", 0));
    for chunk in ["Once ", "upon ", "a time"] {
        store.append_stream("s", chunk).unwrap();
    }
    let partial = store.partial_message("s").unwrap().unwrap();
    assert_eq!(
        (partial.content.as_str(), partial.chunks),
        ("Once upon a time", 3)
    );
    assert_eq!(partial.model.as_deref(), Some("gpt-x"));
    // Readers who do not ask for it never see half a reply; the history did not change.
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["tell me a story"]
    );
    assert_eq!(store.session("s").unwrap().version, version);
    let (history, partial) = store.chat_history_with_partial("s", None).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(partial.unwrap().content, "Once upon a time");

    let stored = store
        .finish_stream(
            "s",
            StreamEnd {
                input_tokens: Some(12),
                output_tokens: Some(4),
                cost: Some(0.01),
                ..StreamEnd::default()
            },
        )
        .unwrap();
    assert_eq!(stored.index, 1);
    assert_eq!(stored.content(), "Once upon a time");
    assert_eq!(stored.body.model.as_deref(), Some("gpt-x"));
    assert!(store.partial_message("s").unwrap().is_none());
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["tell me a story", "Once upon a time"]
    );
    let usage = store.session("s").unwrap().usage;
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.cost),
        (12, 4, 0.01)
    );
}

/// Every column of every message row but ids, branch and timestamps.
fn rows(path: &std::path::Path) -> Vec<Vec<String>> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT seq, role, content, tool_calls, tool_call_id, metadata, model, input_tokens,
                    output_tokens, cost, running_input_tokens, running_output_tokens, running_cost
             FROM messages ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([], |r| {
        (0..13)
            .map(|i| {
                r.get::<_, rusqlite::types::Value>(i)
                    .map(|v| format!("{v:?}"))
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn a_streamed_reply_is_stored_exactly_like_one_added_in_one_go() {
    // Compares the raw SQLite rows; the same API on PostgreSQL is covered by the rest.
    if common::sqlite_only("raw rows") {
        return;
    }
    let meta = json!({"turn": 1}).as_object().unwrap().clone();
    let (_dir_a, direct) = temp_db();
    let store = Store::open(&direct).unwrap();
    store.add_user_message("s", "hi").unwrap();
    store
        .add_message(
            "s",
            NewMessage::assistant("Hello there!")
                .with_model("gpt-x")
                .with_metadata(meta.clone())
                .with_usage(5, 3, Some(0.002)),
        )
        .unwrap();

    let (_dir_b, streamed) = temp_db();
    let store = Store::open(&streamed).unwrap();
    store.add_user_message("s", "hi").unwrap();
    store.start_stream("s", Some("gpt-x"), Some(meta)).unwrap();
    for chunk in ["Hel", "lo ", "there", "!"] {
        store.append_stream("s", chunk).unwrap();
    }
    store
        .finish_stream(
            "s",
            StreamEnd {
                input_tokens: Some(5),
                output_tokens: Some(3),
                cost: Some(0.002),
                ..StreamEnd::default()
            },
        )
        .unwrap();

    assert_eq!(rows(&direct), rows(&streamed));
    assert_eq!(rows(&direct).len(), 2);
    let usage = |p| Store::open(p).unwrap().session("s").unwrap().usage;
    assert_eq!(usage(&direct), usage(&streamed));
}

#[test]
fn a_session_has_at_most_one_stream_and_discarding_changes_nothing() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "q").unwrap();
    let before = store.session("s").unwrap();
    store.start_stream("s", None, None).unwrap();
    store.append_stream("s", "partial text").unwrap();
    let err = store.start_stream("s", None, None).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("in progress")),
        "{err:?}"
    );
    assert_eq!(
        store.partial_message("s").unwrap().unwrap().content,
        "partial text"
    );

    store.discard_stream("s").unwrap();
    assert!(store.partial_message("s").unwrap().is_none());
    assert_eq!(store.session("s").unwrap(), before);
    assert!(matches!(
        store.append_stream("s", "x"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.discard_stream("s"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.finish_stream("s", StreamEnd::default()),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.start_stream("ghost", None, None),
        Err(Error::NotFound {
            kind: "session",
            ..
        })
    ));
    assert!(!store.session_exists("ghost").unwrap());
    assert_eq!(store.chat_history("s", None).unwrap().len(), 1);
}

/// Child process: streams chunks into "s", printing after each durable flush, until killed.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_stream_until_killed() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    store.start_stream("s", Some("gpt-x"), None).unwrap();
    for i in 0.. {
        store.append_stream("s", &format!("chunk{i} ")).unwrap();
        println!("RESULT flushed {i}");
        if i >= 1_000_000 {
            break;
        }
    }
}

#[test]
fn a_crash_mid_stream_leaves_the_flushed_text_for_another_process_to_finish() {
    let (_dir, path) = temp_db();
    Store::open(&path)
        .unwrap()
        .add_user_message("s", "q")
        .unwrap();
    let mut child = spawn_worker(
        "worker_stream_until_killed",
        &[("SESSIONDB_TEST_DB", path.display().to_string())],
    );
    drop(child.stdin.take());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut flushed = 0;
    while flushed < 5 {
        let line = lines.next().unwrap().unwrap();
        if line.contains("RESULT flushed") {
            flushed += 1;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let store = Store::open(&path).unwrap();
    let partial = store.partial_message("s").unwrap().unwrap();
    // At least the five acknowledged chunks are there, each whole and in order.
    assert!(partial.chunks >= 5, "{partial:?}");
    let expected: String = (0..partial.chunks).map(|i| format!("chunk{i} ")).collect();
    assert_eq!(partial.content, expected);
    let stored = store.finish_stream("s", StreamEnd::default()).unwrap();
    assert_eq!(stored.content(), expected);
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["q".to_string(), expected]
    );
}

#[test]
fn history_since_a_version_is_none_only_while_unchanged_with_no_stream() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "first").unwrap();
    let since = |known| store.chat_history_with_partial_since("s", None, known);
    let version = store.version("s").unwrap();
    assert!(since(version).unwrap().is_none());
    // Another version: the history of the current one.
    let (history, partial) = since(version - 1).unwrap().unwrap();
    assert_eq!(
        (contents(&history), history.version()),
        (vec!["first".to_string()], version)
    );
    assert!(partial.is_none());
    // A streamed reply in progress is news even at the same version.
    store.start_stream("s", None, None).unwrap();
    store.append_stream("s", "half").unwrap();
    assert_eq!(store.version("s").unwrap(), version);
    let (history, partial) = since(version).unwrap().unwrap();
    assert_eq!(
        (history.version(), partial.unwrap().content.as_str()),
        (version, "half")
    );
    store.finish_stream("s", StreamEnd::default()).unwrap();
    let (history, partial) = since(version).unwrap().unwrap();
    assert_eq!(contents(&history), ["first", "half"]);
    assert!(partial.is_none());
    assert!(since(history.version()).unwrap().is_none());
    // Through another handle (as another process would write).
    Store::open(&path)
        .unwrap()
        .add_user_message("s", "more")
        .unwrap();
    let (history, _) = since(history.version()).unwrap().unwrap();
    assert_eq!(contents(&history), ["first", "half", "more"]);
    // A window, and a missing session, as `chat_history_with_partial`.
    let (window, _) = store
        .chat_history_with_partial_since("s", Some(1), 0)
        .unwrap()
        .unwrap();
    assert_eq!(contents(&window), ["more"]);
    assert!(matches!(
        store.chat_history_with_partial_since("ghost", None, 1),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.chat_history_with_partial_since("", None, 1),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn session_with_history_reads_the_session_history_and_stream_together() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "first").unwrap();
    store.start_stream("s", None, None).unwrap();
    store.append_stream("s", "half").unwrap();
    let (session, history, partial) = store.session_with_history("s").unwrap();
    assert_eq!(session.id, store.session("s").unwrap().id);
    assert_eq!(session.version, history.version());
    assert_eq!(contents(&history), ["first"]);
    assert_eq!(partial.unwrap().content, "half");
    assert!(matches!(
        store.session_with_history("ghost"),
        Err(Error::NotFound { .. })
    ));
}
