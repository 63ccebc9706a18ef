//! Message operations: append, windows, pages, set_chat_history, usage, optimistic writes.

mod common;

use common::temp_db;
use rusqlite::Connection;
use serde_json::json;
use sessiondb::{Error, NewMessage, Role, Store, Usage};

fn contents(history: &[sessiondb::Message]) -> Vec<String> {
    history.iter().map(|m| m.content().to_string()).collect()
}

fn texts(items: &[&str]) -> Vec<NewMessage> {
    items.iter().map(|t| NewMessage::user(*t)).collect()
}

fn message_rows(path: &std::path::Path) -> i64 {
    common::db_i64(path, "SELECT count(*) FROM messages")
}

#[test]
fn add_message_creates_the_session_and_stores_every_field() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let call = json!({"id": "call_1", "type": "function",
                      "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}});
    let asked = NewMessage::assistant("")
        .with_tool_calls(vec![call.clone()])
        .with_model("gpt-x")
        .with_usage(120, 15, Some(0.0021))
        .with_metadata(json!({"latency_ms": 812}).as_object().unwrap().clone());
    let stored = store.add_message("new", asked.clone()).unwrap();
    assert_eq!(stored.index, 0);
    assert_eq!(stored.body, asked);
    store
        .add_message("new", NewMessage::tool("call_1", "{\"temp\": 3}"))
        .unwrap();

    let history = store.chat_history("new", None).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].body, asked);
    assert_eq!(history[0].body.tool_calls, Some(vec![call]));
    assert_eq!(history[1].role(), Role::Tool);
    assert_eq!(history[1].body.tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(history[0].created_at, stored.created_at);
    let session = store.session("new").unwrap();
    assert_eq!(session.message_count, 2);
    assert_eq!(
        session.usage,
        Usage {
            input_tokens: 120,
            output_tokens: 15,
            cost: 0.0021
        }
    );
}

#[test]
fn appends_keep_order_and_contiguous_indexes() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for i in 0..50 {
        let m = store.add_user_message("s", &format!("m{i}")).unwrap();
        assert_eq!(m.index, i);
    }
    let history = store.chat_history("s", None).unwrap();
    let indexes: Vec<u64> = history.iter().map(|m| m.index).collect();
    assert_eq!(indexes, (0..50).collect::<Vec<_>>());
    assert_eq!(
        contents(&history),
        (0..50).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn usage_totals_add_up_every_message() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .add_message("s", NewMessage::user("q").with_usage(10, 0, None))
        .unwrap();
    store
        .add_message(
            "s",
            NewMessage::assistant("a").with_usage(0, 20, Some(0.25)),
        )
        .unwrap();
    store
        .add_message("s", NewMessage::assistant("b").with_usage(3, 4, Some(0.5)))
        .unwrap();
    let usage = store.session("s").unwrap().usage;
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.cost),
        (13, 24, 0.75)
    );
}

#[test]
fn chat_history_returns_the_latest_n_oldest_first() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for i in 0..10 {
        store.add_user_message("s", &format!("m{i}")).unwrap();
    }
    let last3 = store.chat_history("s", Some(3)).unwrap();
    assert_eq!(contents(&last3), ["m7", "m8", "m9"]);
    assert_eq!(last3[0].index, 7);
    assert_eq!(last3.total_len(), 10);
    assert_eq!(store.chat_history("s", Some(100)).unwrap().len(), 10);
    assert!(store.chat_history("s", Some(0)).unwrap().is_empty());
}

#[test]
fn a_window_never_starts_with_a_tool_result_whose_call_was_cut_off() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .add_user_message("s", "weather in Oslo and Rome?")
        .unwrap();
    store
        .add_message(
            "s",
            NewMessage::assistant("").with_tool_calls(vec![
                json!({"id": "a", "function": {"name": "weather", "arguments": "{}"}}),
                json!({"id": "b", "function": {"name": "weather", "arguments": "{}"}}),
            ]),
        )
        .unwrap();
    store.add_message("s", NewMessage::tool("a", "3C")).unwrap();
    store
        .add_message("s", NewMessage::tool("b", "14C"))
        .unwrap();
    store
        .add_assistant_message("s", "Oslo 3C, Rome 14C")
        .unwrap();

    let window = store.chat_history("s", Some(3)).unwrap();
    assert_eq!(contents(&window), ["Oslo 3C, Rome 14C"]);
    let window = store.chat_history("s", Some(4)).unwrap();
    assert_eq!(window[0].role(), Role::Assistant);
    assert_eq!(window.len(), 4);
}

#[test]
fn pages_walk_a_long_history_backwards_and_forwards() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for i in 0..10 {
        store.add_user_message("s", &format!("m{i}")).unwrap();
    }
    assert_eq!(
        contents(&store.messages_before("s", 5, 2).unwrap()),
        ["m3", "m4"]
    );
    assert_eq!(contents(&store.messages_before("s", 1, 5).unwrap()), ["m0"]);
    assert!(store.messages_before("s", 0, 5).unwrap().is_empty());
    assert_eq!(
        contents(&store.messages_after("s", 5, 2).unwrap()),
        ["m6", "m7"]
    );
    assert_eq!(
        contents(&store.messages_after("s", 7, 10).unwrap()),
        ["m8", "m9"]
    );
    assert!(store.messages_after("s", 9, 10).unwrap().is_empty());
    assert!(store.messages_after("s", 500, 10).unwrap().is_empty());
    assert_eq!(
        store
            .messages_before("s", u64::MAX, usize::MAX)
            .unwrap()
            .len(),
        10
    );
    assert!(store
        .messages_after("s", u64::MAX, usize::MAX)
        .unwrap()
        .is_empty());
}

#[test]
fn set_chat_history_that_extends_appends_only_the_new_tail() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "a").unwrap();
    store.add_user_message("s", "b").unwrap();
    let rows = message_rows(&path);
    let change = store
        .set_chat_history("s", &texts(&["a", "b", "c", "d"]))
        .unwrap();
    assert_eq!(
        (change.kept, change.written, change.superseded),
        (2, 2, false)
    );
    assert_eq!(message_rows(&path), rows + 2);
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["a", "b", "c", "d"]
    );
    assert_eq!(store.session("s").unwrap().head_branch, "main");
}

#[test]
fn set_chat_history_writes_only_the_changed_suffix_of_a_long_history() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let original: Vec<NewMessage> = (0..1000)
        .map(|i| NewMessage::user(format!("m{i}")))
        .collect();
    store.add_user_message("s", "seed").unwrap();
    store.set_chat_history("s", &original).unwrap();
    let rows = message_rows(&path);

    let mut edited = original.clone();
    edited[998] = NewMessage::assistant("changed 998");
    edited[999] = NewMessage::assistant("changed 999");
    let change = store.set_chat_history("s", &edited).unwrap();
    assert_eq!(
        (change.kept, change.written, change.superseded),
        (998, 2, true)
    );
    assert_eq!(message_rows(&path), rows + 2);

    let history = store.chat_history("s", None).unwrap();
    assert_eq!(history.len(), 1000);
    let stored: Vec<NewMessage> = history.iter().cloned().map(Into::into).collect();
    assert_eq!(stored, edited);
}

#[test]
fn set_chat_history_with_the_same_list_writes_nothing() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "a").unwrap();
    let version = store.session("s").unwrap().version;
    let change = store.set_chat_history("s", &texts(&["a"])).unwrap();
    assert_eq!(
        (change.kept, change.written, change.version),
        (1, 0, version)
    );
    assert_eq!(store.session("s").unwrap().version, version);
}

#[test]
fn set_chat_history_can_shorten_and_empty_a_history() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for t in ["a", "b", "c"] {
        store.add_user_message("s", t).unwrap();
    }
    let change = store.set_chat_history("s", &texts(&["a"])).unwrap();
    assert_eq!(
        (change.kept, change.written, change.superseded),
        (1, 0, true)
    );
    assert_eq!(contents(&store.chat_history("s", None).unwrap()), ["a"]);
    store.set_chat_history("s", &[]).unwrap();
    assert!(store.chat_history("s", None).unwrap().is_empty());
    assert_eq!(store.session("s").unwrap().message_count, 0);
    store.add_user_message("s", "z").unwrap();
    assert_eq!(contents(&store.chat_history("s", None).unwrap()), ["z"]);
}

#[test]
fn set_chat_history_keeps_the_replaced_history_readable_as_a_superseded_branch() {
    if common::sqlite_only(
        "set chat history keeps the replaced history readable as a superseded branch",
    ) {
        return;
    }
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for t in ["a", "b", "c"] {
        store.add_user_message("s", t).unwrap();
    }
    store.set_chat_history("s", &texts(&["a", "x"])).unwrap();
    let conn = Connection::open(&path).unwrap();
    let (name, superseded, length): (String, Option<String>, i64) = conn
        .query_row(
            "SELECT name, superseded_at, length
             FROM branches JOIN branch_lengths ON branch_id = id WHERE name LIKE 'main@%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    // Versions: created 1, three appends 2..=4, the replace 5.
    assert_eq!(name, "main@5");
    assert!(superseded.is_some());
    assert_eq!(length, 3);
    let old: Vec<String> = conn
        .prepare("SELECT content FROM messages m JOIN branches b ON b.id = m.branch_id WHERE b.name = ?1 ORDER BY seq")
        .unwrap()
        .query_map([&name], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(old, ["a", "b", "c"]);
}

#[test]
fn set_chat_history_recomputes_usage_for_the_new_history() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .add_message("s", NewMessage::user("q").with_usage(10, 0, None))
        .unwrap();
    store
        .add_message("s", NewMessage::assistant("a").with_usage(0, 20, Some(1.0)))
        .unwrap();
    store
        .set_chat_history(
            "s",
            &[
                NewMessage::user("q").with_usage(10, 0, None),
                NewMessage::assistant("b").with_usage(0, 5, Some(0.25)),
            ],
        )
        .unwrap();
    let usage = store.session("s").unwrap().usage;
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.cost),
        (10, 5, 0.25)
    );
}

#[test]
fn writes_at_a_stale_version_conflict_and_write_nothing() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "a").unwrap();
    let read = store.chat_history("s", None).unwrap();
    store.add_user_message("s", "someone else").unwrap();
    let actual = store.session("s").unwrap().version;

    let err = store
        .set_chat_history_at_version("s", &texts(&["a", "mine"]), read.version())
        .unwrap_err();
    match err {
        Error::Conflict {
            session,
            expected,
            actual: found,
        } => assert_eq!(
            (session.as_str(), expected, found),
            ("s", read.version(), actual)
        ),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let err = store
        .add_message_at_version("s", NewMessage::user("mine"), read.version())
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }));
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["a", "someone else"]
    );
    assert_eq!(store.session("s").unwrap().version, actual);

    let fresh = store.chat_history("s", None).unwrap();
    store
        .add_message_at_version("s", NewMessage::user("mine"), fresh.version())
        .unwrap();
    assert_eq!(store.chat_history("s", None).unwrap().len(), 3);
}

#[test]
fn bad_messages_are_refused_and_nothing_is_stored() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "kept").unwrap();
    let before = store.session("s").unwrap();

    assert!(matches!("robot".parse::<Role>(), Err(Error::InvalidInput(m)) if m.contains("robot")));
    assert!(
        matches!(NewMessage::parse_tool_calls("{\"a\":1}"), Err(Error::InvalidInput(m)) if m.contains("array"))
    );
    assert!(
        matches!(NewMessage::parse_tool_calls("[1,"), Err(Error::InvalidInput(m)) if m.contains("not valid JSON"))
    );
    assert!(
        matches!(sessiondb::parse_metadata("[1]"), Err(Error::InvalidInput(m)) if m.contains("object"))
    );
    assert!(matches!(
        sessiondb::parse_metadata("nope"),
        Err(Error::InvalidInput(_))
    ));

    let negative = NewMessage::assistant("x").with_usage(1, 1, Some(-1.0));
    assert!(
        matches!(store.add_message("s", negative.clone()), Err(Error::InvalidInput(m)) if m.contains("cost"))
    );
    let nan = NewMessage::assistant("x").with_usage(1, 1, Some(f64::NAN));
    assert!(matches!(
        store.add_message("s", nan),
        Err(Error::InvalidInput(_))
    ));
    let err = store
        .set_chat_history("s", &[NewMessage::user("kept"), negative])
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("message 1")),
        "{err:?}"
    );
    assert!(matches!(
        store.add_message("t", NewMessage::user("x").with_usage(u64::MAX, 0, None)),
        Err(Error::InvalidInput(_))
    ));

    assert_eq!(store.session("s").unwrap(), before);
    assert_eq!(contents(&store.chat_history("s", None).unwrap()), ["kept"]);
    assert!(!store.session_exists("t").unwrap());
}

#[test]
fn the_history_view_shows_the_current_history_in_sqlite() {
    if common::sqlite_only("the history view shows the current history in sqlite") {
        return;
    }
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for t in ["a", "b", "c"] {
        store.add_user_message("s", t).unwrap();
    }
    store
        .set_chat_history("s", &texts(&["a", "x", "y"]))
        .unwrap();
    store.add_user_message("other", "o").unwrap();
    let conn = Connection::open(&path).unwrap();
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT position, content FROM history WHERE session_id = 's' ORDER BY position")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [(0, "a".into()), (1, "x".into()), (2, "y".into())]);
    // The view reads each lineage segment by rowid range; it never scans all messages.
    let plan: Vec<String> = conn
        .prepare("EXPLAIN QUERY PLAN SELECT content FROM history WHERE session_id = 's'")
        .unwrap()
        .query_map([], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|l| l == "SEARCH messages USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|l| l.starts_with("SCAN messages")),
        "{plan:?}"
    );
}

/// A message's rowid is `branch_id * 2^32 + seq`: a history full at 2^32 - 1 messages, or a
/// file out of branch ids, refuses the write by name and changes nothing.
#[test]
fn a_full_history_or_exhausted_branch_ids_refuse_the_write_and_keep_the_file() {
    if common::sqlite_only(
        "a full history or exhausted branch ids refuse the write and keep the file",
    ) {
        return;
    }
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "a").unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("UPDATE sessions SET message_count = 4294967295 WHERE id = 's'")
        .unwrap();
    store.invalidate_cache(None);
    let err = store.add_user_message("s", "b").unwrap_err();
    assert!(
        matches!(&err, Error::StorageFull(m) if m == "a history holds at most 4294967295 messages"),
        "{err:?}"
    );
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM messages"), 1);

    conn.execute_batch("UPDATE sqlite_sequence SET seq = 2147483647 WHERE name = 'branches'")
        .unwrap();
    let before = store.session("s").unwrap();
    let err = store.create_branch("s", "side", None).unwrap_err();
    assert!(
        matches!(&err, Error::StorageFull(m) if m == "a file holds at most 2147483647 branches"),
        "{err:?}"
    );
    let err = store.add_user_message("new", "x").unwrap_err();
    assert!(matches!(err, Error::StorageFull(_)), "{err:?}");
    assert_eq!(count("SELECT count(*) FROM branches"), 1);
    assert_eq!(store.session("s").unwrap(), before);
    assert!(matches!(store.session("new"), Err(Error::NotFound { .. })));
}

/// Write amplification is what limits append throughput, alone and under contention: an
/// append writes the message row, the session row and the session's `updated_at` index entry
/// (schema 2 wrote seven pages). Counted as WAL frames over 100 appends; the few extra are
/// b-tree page splits.
#[test]
fn an_append_writes_three_pages() {
    if common::sqlite_only("an append writes three pages") {
        return;
    }
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for i in 0..300 {
        store
            .add_user_message("s", &format!("warm-up {i}"))
            .unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    let checkpoint = |mode: &str| -> (i64, i64) {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    assert_eq!(checkpoint("TRUNCATE"), (0, 0));
    for i in 0..100 {
        store
            .add_user_message("s", &format!("message number {i} with some text in it"))
            .unwrap();
    }
    let (busy, frames) = checkpoint("PASSIVE");
    assert_eq!(busy, 0);
    assert!(
        (300..=320).contains(&frames),
        "{frames} WAL frames for 100 appends"
    );
}

/// The NUL character: SQLite stores it in text and JSON as any other; PostgreSQL cannot
/// store it in `text` or `jsonb`, which is `InvalidInput` saying so, with nothing written.
#[test]
fn a_nul_character_is_stored_on_sqlite_and_refused_clearly_on_postgres() {
    let (_dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    store
        .add_message("s", NewMessage::new(Role::User, "before"))
        .unwrap();
    let version = store.version("s").unwrap();
    let mut meta = sessiondb::Metadata::new();
    meta.insert("note".into(), json!("x\u{0}y"));
    let attempts: Vec<(&str, sessiondb::Result<String>)> = vec![
        (
            "content",
            store
                .add_message("s", NewMessage::new(Role::User, "a\0b"))
                .map(|m| m.content().to_string()),
        ),
        (
            "metadata",
            store
                .add_message("s", NewMessage::new(Role::User, "m").with_metadata(meta))
                .map(|m| m.body.metadata.unwrap()["note"].to_string()),
        ),
        (
            "owner",
            store
                .claim("s", "w\0x", std::time::Duration::from_secs(5))
                .map(|l| l.owner),
        ),
    ];
    let contents: Vec<String> = store
        .chat_history("s", None)
        .unwrap()
        .iter()
        .map(|m| m.content().to_string())
        .collect();
    if common::on_postgres() {
        for (what, result) in attempts {
            match result {
                Err(Error::InvalidInput(msg)) => assert_eq!(
                    msg,
                    "PostgreSQL cannot store the NUL character (\\0) in text or JSON; \
                     nothing was written",
                    "{what}"
                ),
                other => panic!("{what}: {other:?}"),
            }
        }
        assert_eq!(contents, ["before"]);
        assert_eq!(store.version("s").unwrap(), version);
    } else {
        let stored: Vec<String> = attempts.into_iter().map(|(_, r)| r.unwrap()).collect();
        assert_eq!(stored, ["a\0b", "\"x\\u0000y\"", "w\0x"]);
        assert_eq!(contents, ["before", "a\0b", "m"]);
    }
}
