//! Session operations: create, read, list, metadata, title, clear, delete, ids, versions.

mod common;

use common::temp_db;
use serde_json::json;
use sessiondb::{Error, Metadata, NewSession, SessionQuery, Store, MAX_SESSION_ID_BYTES};

fn metadata(value: serde_json::Value) -> Metadata {
    value.as_object().unwrap().clone()
}

#[test]
fn create_session_stores_every_field() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let created = store
        .create_session(NewSession {
            id: Some("chat-1".into()),
            title: Some("Trip planning".into()),
            agent_name: Some("planner".into()),
            agent_id: Some("agent-7".into()),
            user_id: Some("alice".into()),
            metadata: metadata(json!({"lang": "en", "tier": 2})),
        })
        .unwrap();
    let read = store.session("chat-1").unwrap();
    assert_eq!(created, read);
    assert_eq!(read.title.as_deref(), Some("Trip planning"));
    assert_eq!(read.agent_name.as_deref(), Some("planner"));
    assert_eq!(read.agent_id.as_deref(), Some("agent-7"));
    assert_eq!(read.user_id.as_deref(), Some("alice"));
    assert_eq!(read.metadata, metadata(json!({"lang": "en", "tier": 2})));
    assert_eq!(read.head_branch, "main");
    assert_eq!(read.message_count, 0);
    assert_eq!(read.parent_session, None);
    assert_eq!(read.created_at, read.updated_at);
}

#[test]
fn create_session_without_id_generates_distinct_ids() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let a = store.create_session(NewSession::default()).unwrap();
    let b = store.create_session(NewSession::default()).unwrap();
    assert_ne!(a.id, b.id);
    assert!(store.session_exists(&a.id).unwrap());
    assert!(store.session_exists(&b.id).unwrap());
}

#[test]
fn creating_an_existing_session_is_refused_and_changes_nothing() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "hello").unwrap();
    let before = store.session("s").unwrap();
    let err = store.create_session(NewSession::with_id("s")).unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyExists(id) if id == "s"),
        "{err:?}"
    );
    assert_eq!(store.session("s").unwrap(), before);
}

#[test]
fn ids_that_differ_only_in_punctuation_are_different_sessions() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for id in [
        "a.b",
        "a_b",
        "a b",
        "x'); DROP TABLE sessions;--",
        "ünï/cødé",
    ] {
        store.add_user_message(id, &format!("I am {id}")).unwrap();
    }
    for id in [
        "a.b",
        "a_b",
        "a b",
        "x'); DROP TABLE sessions;--",
        "ünï/cødé",
    ] {
        let history = store.chat_history(id, None).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].content(), format!("I am {id}"));
    }
    let page = store.list_sessions(&SessionQuery::default()).unwrap();
    assert_eq!(page.sessions.len(), 5);
}

#[test]
fn bad_session_ids_are_invalid_input_naming_the_id() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let long = "x".repeat(MAX_SESSION_ID_BYTES + 1);
    let cases = [
        ("", "empty"),
        (long.as_str(), "bytes"),
        ("bad\nid", "control character"),
        ("tab\tid", "control character"),
    ];
    for (id, expected) in cases {
        let err = store.add_user_message(id, "hi").unwrap_err();
        match err {
            Error::InvalidInput(msg) => assert!(msg.contains(expected), "{id:?}: {msg}"),
            other => panic!("{id:?}: expected InvalidInput, got {other:?}"),
        }
    }
    let ok = "y".repeat(MAX_SESSION_ID_BYTES);
    store.add_user_message(&ok, "hi").unwrap();
    assert_eq!(
        store
            .list_sessions(&SessionQuery::default())
            .unwrap()
            .sessions
            .len(),
        1
    );
}

#[test]
fn operations_on_unknown_sessions_are_not_found_and_create_nothing() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let not_found = |r: Result<(), Error>| match r {
        Err(Error::NotFound {
            kind: "session",
            id,
        }) => assert_eq!(id, "ghost"),
        other => panic!("expected NotFound, got {other:?}"),
    };
    not_found(store.session("ghost").map(drop));
    not_found(store.chat_history("ghost", None).map(drop));
    not_found(store.messages_before("ghost", 3, 2).map(drop));
    not_found(store.update_metadata("ghost", Metadata::new()).map(drop));
    not_found(store.set_title("ghost", Some("t")).map(drop));
    not_found(store.clear("ghost").map(drop));
    not_found(store.delete_session("ghost"));
    assert!(!store.session_exists("ghost").unwrap());
    assert!(store
        .list_sessions(&SessionQuery::default())
        .unwrap()
        .sessions
        .is_empty());
}

#[test]
fn list_sessions_filters_by_agent_and_user_newest_first() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for (id, agent, user) in [
        ("s1", "coder", "alice"),
        ("s2", "coder", "bob"),
        ("s3", "writer", "alice"),
        ("s4", "coder", "alice"),
    ] {
        store
            .create_session(NewSession {
                id: Some(id.into()),
                agent_name: Some(agent.into()),
                user_id: Some(user.into()),
                ..NewSession::default()
            })
            .unwrap();
    }
    store.add_user_message("s1", "bump s1 to newest").unwrap();
    let ids = |q: SessionQuery| -> Vec<String> {
        let page = store.list_sessions(&q).unwrap();
        page.sessions.into_iter().map(|s| s.id).collect()
    };
    assert_eq!(ids(SessionQuery::default()), ["s1", "s4", "s3", "s2"]);
    let coder = SessionQuery {
        agent_name: Some("coder".into()),
        ..SessionQuery::default()
    };
    assert_eq!(ids(coder.clone()), ["s1", "s4", "s2"]);
    let coder_alice = SessionQuery {
        user_id: Some("alice".into()),
        ..coder
    };
    assert_eq!(ids(coder_alice), ["s1", "s4"]);
}

#[test]
fn list_sessions_pages_through_everything_exactly_once() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for i in 0..23 {
        store
            .create_session(NewSession::with_id(format!("s{i:02}")))
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut query = SessionQuery {
        limit: 5,
        ..SessionQuery::default()
    };
    let mut pages = 0;
    loop {
        let page = store.list_sessions(&query).unwrap();
        pages += 1;
        assert!(page.sessions.len() <= 5);
        seen.extend(page.sessions.iter().map(|s| s.id.clone()));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    let expected: Vec<String> = (0..23).rev().map(|i| format!("s{i:02}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn update_metadata_merges_keys_and_null_removes_one() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .create_session(NewSession {
            id: Some("s".into()),
            metadata: metadata(json!({"keep": 1, "change": "old", "drop": true})),
            ..NewSession::default()
        })
        .unwrap();
    let v0 = store.session("s").unwrap().version;
    let updated = store
        .update_metadata(
            "s",
            metadata(json!({"change": {"nested": [1, 2]}, "drop": null, "new": "x"})),
        )
        .unwrap();
    assert_eq!(
        updated.metadata,
        metadata(json!({"keep": 1, "change": {"nested": [1, 2]}, "new": "x"}))
    );
    assert!(updated.version > v0);
    assert_eq!(store.session("s").unwrap().metadata, updated.metadata);
}

#[test]
fn set_title_sets_and_removes_the_title() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "hi").unwrap();
    assert_eq!(
        store
            .set_title("s", Some("Greeting"))
            .unwrap()
            .title
            .as_deref(),
        Some("Greeting")
    );
    assert_eq!(
        store.session("s").unwrap().title.as_deref(),
        Some("Greeting")
    );
    assert_eq!(store.set_title("s", None).unwrap().title, None);
}

#[test]
fn clear_empties_the_history_and_resets_counts() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "one").unwrap();
    store
        .add_message(
            "s",
            sessiondb::NewMessage::assistant("two").with_usage(5, 7, Some(0.5)),
        )
        .unwrap();
    let before = store.session("s").unwrap();
    let cleared = store.clear("s").unwrap();
    assert_eq!(cleared.message_count, 0);
    assert_eq!(cleared.usage, sessiondb::Usage::default());
    assert!(cleared.version > before.version);
    assert_eq!(cleared.head_branch, "main");
    assert!(store.chat_history("s", None).unwrap().is_empty());
    store.add_user_message("s", "fresh").unwrap();
    let history = store.chat_history("s", None).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].index, history[0].content()), (0, "fresh"));
}

#[test]
fn delete_session_removes_it_and_all_its_rows() {
    if common::sqlite_only("delete session removes it and all its rows") {
        return;
    }
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("gone", "one").unwrap();
    store.add_user_message("gone", "two").unwrap();
    store
        .set_chat_history("gone", &[sessiondb::NewMessage::user("other")])
        .unwrap();
    store.add_user_message("stays", "three").unwrap();
    store.delete_session("gone").unwrap();
    assert!(!store.session_exists("gone").unwrap());
    assert_eq!(store.chat_history("stays", None).unwrap().len(), 1);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM messages"), 1);
    assert_eq!(count("SELECT count(*) FROM branches"), 1);
    assert_eq!(count("SELECT count(*) FROM sessions"), 1);
}

#[test]
fn every_write_gives_a_new_higher_version_and_a_recreated_session_never_repeats_one() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let mut versions = vec![
        store
            .create_session(NewSession::with_id("s"))
            .unwrap()
            .version,
    ];
    versions.push(
        store
            .add_user_message("s", "a")
            .map(|_| store.session("s").unwrap().version)
            .unwrap(),
    );
    versions.push(store.set_title("s", Some("t")).unwrap().version);
    versions.push(
        store
            .update_metadata("s", metadata(json!({"k": 1})))
            .unwrap()
            .version,
    );
    versions.push(store.clear("s").unwrap().version);
    // Another session's writes leave this one's version alone.
    store.add_user_message("t", "b").unwrap();
    assert_eq!(store.session("s").unwrap().version, 5);
    store.delete_session("s").unwrap();
    versions.push(
        store
            .create_session(NewSession::with_id("s"))
            .unwrap()
            .version,
    );
    // One more per change; the recreated session starts above the deleted one's last.
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn merge_metadata_object_keeps_every_concurrent_merge_and_fills_only_missing_defaults() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "hi").unwrap();
    store
        .update_metadata(
            "s",
            json_map(serde_json::json!({"tools": "not an object", "k": 1})),
        )
        .unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0..25 {
                    store
                        .merge_metadata_object(
                            "s",
                            "tools",
                            json_map(serde_json::json!({format!("t{t}-{i}"): i})),
                            json_map(serde_json::json!({"d": t, "t0-0": "default"})),
                        )
                        .unwrap();
                }
            });
        }
    });
    let metadata = store.session("s").unwrap().metadata;
    assert_eq!(metadata["k"], 1);
    let tools = metadata["tools"].as_object().unwrap();
    assert_eq!(tools.len(), 101);
    for t in 0..4 {
        for i in 0..25 {
            assert_eq!(tools[&format!("t{t}-{i}")], i, "t{t}-{i}");
        }
    }
    assert!(tools["d"].as_i64().is_some_and(|d| (0..4).contains(&d)));
    assert!(matches!(
        store.merge_metadata_object("missing", "tools", Metadata::new(), Metadata::new()),
        Err(Error::NotFound { .. })
    ));
}

fn json_map(value: serde_json::Value) -> Metadata {
    match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    }
}
