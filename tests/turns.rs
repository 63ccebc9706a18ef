//! Whole turns: batches, idempotency keys, pop.

mod common;

use common::{cli, temp_db};
use serde_json::json;
use sessiondb::{AddOptions, Error, KeyMode, NewMessage, Store};

fn contents(messages: &[sessiondb::Message]) -> Vec<String> {
    messages.iter().map(|m| m.content().to_string()).collect()
}

fn turn(n: usize) -> Vec<NewMessage> {
    let call = json!({"id": format!("call-{n}"), "type": "function",
                      "function": {"name": "lookup", "arguments": "{}"}});
    vec![
        NewMessage::user(format!("question {n}")).with_key(format!("t{n}-0")),
        NewMessage::assistant("")
            .with_tool_calls(vec![call])
            .with_key(format!("t{n}-1")),
        NewMessage::tool(format!("call-{n}"), format!("result {n}")).with_key(format!("t{n}-2")),
        NewMessage::assistant(format!("answer {n}")).with_key(format!("t{n}-3")),
    ]
}

#[test]
fn add_messages_appends_a_batch_in_order_and_creates_the_session() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let added = store.add_messages("s", &turn(1)).unwrap();
    assert!(!added.already_stored);
    assert_eq!(
        added.messages.iter().map(|m| m.index).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    let session = store.session("s").unwrap();
    assert_eq!(session.message_count, 4);
    assert_eq!(session.version, added.version);
    let history = store.chat_history("s", None).unwrap();
    assert_eq!(
        contents(&history),
        ["question 1", "", "result 1", "answer 1"]
    );
    assert_eq!(history[0].body.key.as_deref(), Some("t1-0"));
    // A second batch goes after the first; one version step per batch.
    let second = store.add_messages("s", &turn(2)).unwrap();
    assert_eq!(second.version, added.version + 1);
    assert_eq!(second.messages[0].index, 4);
    assert_eq!(store.session("s").unwrap().message_count, 8);
}

#[test]
fn a_batch_with_an_invalid_message_writes_nothing() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "before").unwrap();
    let version = store.version("s").unwrap();
    let mut batch = turn(1);
    batch[2].cost = Some(-1.0);
    let err = store.add_messages("s", &batch).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("message 3")),
        "{err}"
    );
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["before"]
    );
    assert_eq!(store.version("s").unwrap(), version);
    // Nor is a missing session created by a refused batch.
    assert!(store.add_messages("new", &batch).is_err());
    assert!(!store.session_exists("new").unwrap());
}

#[test]
fn a_retried_batch_with_stored_keys_writes_nothing_and_returns_the_stored_messages() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let first = store.add_messages("s", &turn(1)).unwrap();
    let retry = store.add_messages("s", &turn(1)).unwrap();
    assert!(retry.already_stored);
    assert_eq!(retry.version, first.version);
    assert_eq!(retry.messages, first.messages);
    assert_eq!(store.session("s").unwrap().message_count, 4);
    // A retry with an expected version from before the first commit still succeeds.
    let retry = store
        .add_messages_at_version("s", &turn(1), first.version - 1)
        .unwrap();
    assert!(retry.already_stored);
    // A single keyed message, too.
    let one = store
        .add_message("s", NewMessage::user("again").with_key("t1-3"))
        .unwrap();
    assert_eq!((one.index, one.content()), (3, "answer 1"));
    assert_eq!(store.version("s").unwrap(), first.version);
}

#[test]
fn a_batch_mixing_stored_and_new_keys_is_refused_whole() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_messages("s", &turn(1)).unwrap();
    let version = store.version("s").unwrap();
    let mut mixed = turn(2);
    mixed[1] = NewMessage::user("dup").with_key("t1-2");
    let err = store.add_messages("s", &mixed).unwrap_err();
    match err {
        Error::KeysPartlyStored {
            session,
            stored,
            new,
        } => {
            assert_eq!(session, "s");
            assert_eq!(stored, ["t1-2"]);
            assert_eq!(new, 3);
        }
        other => panic!("expected KeysPartlyStored, got {other}"),
    }
    // A keyless message beside stored keys is new too.
    let mut with_plain = turn(1);
    with_plain.push(NewMessage::user("plain"));
    assert!(matches!(
        store.add_messages("s", &with_plain),
        Err(Error::KeysPartlyStored { new: 1, .. })
    ));
    assert_eq!(store.version("s").unwrap(), version);
    assert_eq!(store.session("s").unwrap().message_count, 4);
}

#[test]
fn keys_repeated_within_a_batch_or_a_replaced_history_are_refused() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let twice = [
        NewMessage::user("a").with_key("k"),
        NewMessage::user("b").with_key("k"),
    ];
    assert!(matches!(
        store.add_messages("s", &twice),
        Err(Error::InvalidInput(m)) if m.contains("\"k\" appears twice")
    ));
    store.add_user_message("s", "x").unwrap();
    assert!(matches!(
        store.set_chat_history("s", &twice),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        store.add_message("s", NewMessage::user("e").with_key("")),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(contents(&store.chat_history("s", None).unwrap()), ["x"]);
}

#[test]
fn keys_are_unique_across_a_forks_inherited_history() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_messages("s", &turn(1)).unwrap();
    let fork = store.fork_session("s", Some(3), None).unwrap();
    let retry = store.add_messages(&fork.id, &turn(1)).unwrap();
    assert!(retry.already_stored);
    assert_eq!(store.session(&fork.id).unwrap().message_count, 4);
    // A fork that stops before a key may store it anew.
    let short = store.fork_session("s", Some(1), None).unwrap();
    let again = store
        .add_message(
            &short.id,
            NewMessage::tool("call-1", "fresh").with_key("t1-2"),
        )
        .unwrap();
    assert_eq!((again.index, again.content()), (2, "fresh"));
}

#[test]
fn pop_message_returns_the_last_message_and_keeps_the_old_head() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_messages("s", &turn(1)).unwrap();
    let snap = store.create_snapshot("s", None, None).unwrap();
    let popped = store.pop_message("s").unwrap().unwrap();
    assert_eq!((popped.index, popped.content()), (3, "answer 1"));
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["question 1", "", "result 1"]
    );
    let branches = store.branches("s").unwrap();
    assert_eq!(branches.len(), 2);
    assert!(branches[0].superseded_at.is_some() && branches[0].length == 4);
    // The popped key is free again in the current history.
    let re = store
        .add_message("s", NewMessage::assistant("answer 1b").with_key("t1-3"))
        .unwrap();
    assert_eq!(re.index, 3);
    // Restoring the snapshot brings the popped message back.
    store.restore_snapshot("s", snap.id).unwrap();
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["question 1", "", "result 1", "answer 1"]
    );
}

#[test]
fn pop_on_an_empty_history_writes_nothing_and_leaves_no_branch() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "only").unwrap();
    assert_eq!(store.pop_message("s").unwrap().unwrap().content(), "only");
    let version = store.version("s").unwrap();
    let branches = store.branches("s").unwrap().len();
    assert_eq!(store.pop_message("s").unwrap(), None);
    assert_eq!(store.version("s").unwrap(), version);
    assert_eq!(store.branches("s").unwrap().len(), branches);
    assert!(matches!(
        store.pop_message("missing"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn keys_survive_export_and_import() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_messages("s", &turn(1)).unwrap();
    let export = store.export(&[], false, &mut |_, _| {}).unwrap();
    let (_dir2, path2) = temp_db();
    let other = Store::open(&path2).unwrap();
    other
        .import_export(&export, &Default::default(), &mut |_, _| {})
        .unwrap();
    let history = other.chat_history("s", None).unwrap();
    let keys: Vec<_> = history
        .iter()
        .map(|m| m.body.key.clone().unwrap())
        .collect();
    assert_eq!(keys, ["t1-0", "t1-1", "t1-2", "t1-3"]);
    assert!(other.add_messages("s", &turn(1)).unwrap().already_stored);
}

#[test]
fn a_retried_batch_with_stored_keys_writes_nothing_across_processes() {
    let (dir, path) = temp_db();
    let file = dir.path().join("turn.json");
    std::fs::write(&file, serde_json::to_string(&turn(7)).unwrap()).unwrap();
    let run = || {
        let out = cli()
            .args(["--db", path.to_str().unwrap(), "append", "s"])
            .arg(&file)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run();
    let second = run();
    assert_eq!(first["already_stored"], false);
    assert_eq!(second["already_stored"], true);
    assert_eq!(first["version"], second["version"]);
    assert_eq!(first["messages"], second["messages"]);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.session("s").unwrap().message_count, 4);
    // add --key from another process finds the stored message too, and says so; the same
    // key with different content is refused.
    let add = |content: &str| {
        cli()
            .args(["--db", path.to_str().unwrap(), "add", "s", "user", content])
            .args(["--key", "t7-0"])
            .output()
            .unwrap()
    };
    let out = add("question 7");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "s: message 0 (user) was already stored under this key; nothing written\n"
    );
    let out = add("x");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("with different content"));
    assert_eq!(store.session("s").unwrap().message_count, 4);
    // pop from the CLI.
    let out = cli()
        .args(["--db", path.to_str().unwrap(), "pop", "s"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("s: removed message 3 (assistant)"));
    assert_eq!(store.session("s").unwrap().message_count, 3);
}

fn each() -> AddOptions {
    AddOptions {
        keys: KeyMode::Each,
        ..AddOptions::default()
    }
}

fn keys_of(store: &Store, session: &str) -> Vec<Option<String>> {
    let history = store.chat_history(session, None).unwrap();
    history.iter().map(|m| m.body.key.clone()).collect()
}

#[test]
fn each_key_mode_appends_exactly_the_new_messages_of_a_mixed_batch_in_order() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let first = store.add_messages("s", &turn(1)).unwrap();
    let mixed = vec![
        NewMessage::user("ignored: stored").with_key("t1-1"),
        NewMessage::user("a").with_key("a"),
        NewMessage::user("ignored too").with_key("t1-3"),
        NewMessage::user("plain"),
        NewMessage::assistant("c").with_key("c"),
    ];
    let added = store.add_messages_with("s", &mixed, &each()).unwrap();
    assert_eq!(added.written, [false, true, false, true, true]);
    assert!(!added.already_stored);
    assert_eq!(added.version, first.version + 1);
    // The batch as stored, in the batch's order: the stored ones as they were.
    assert_eq!(
        added
            .messages
            .iter()
            .map(|m| (m.index, m.content().to_string()))
            .collect::<Vec<_>>(),
        [
            (1, String::new()),
            (4, "a".to_string()),
            (3, "answer 1".to_string()),
            (5, "plain".to_string()),
            (6, "c".to_string()),
        ]
    );
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["question 1", "", "result 1", "answer 1", "a", "plain", "c"]
    );
    // The same batch in the default mode is refused whole, as before.
    let mut again = mixed.clone();
    again.push(NewMessage::user("d").with_key("d"));
    assert!(matches!(
        store.add_messages("s", &again),
        Err(Error::KeysPartlyStored { new: 2, .. })
    ));
    // A keyed batch whose keys are all stored writes nothing in this mode either.
    let keyed: Vec<NewMessage> = vec![mixed[1].clone(), mixed[4].clone(), mixed[0].clone()];
    let retry = store.add_messages_with("s", &keyed, &each()).unwrap();
    assert!(retry.already_stored);
    assert_eq!(retry.written, [false, false, false]);
    assert_eq!(retry.version, added.version);
    assert_eq!(
        retry.messages.iter().map(|m| m.index).collect::<Vec<_>>(),
        [4, 6, 1]
    );
    assert_eq!(store.session("s").unwrap().message_count, 7);
}

#[test]
fn each_key_mode_checks_the_expected_version_of_what_it_writes() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let first = store.add_messages("s", &turn(1)).unwrap();
    let stale = AddOptions {
        expected_version: Some(first.version - 1),
        ..each()
    };
    let mixed = vec![
        NewMessage::user("x").with_key("t1-0"),
        NewMessage::user("new").with_key("new"),
    ];
    match store.add_messages_with("s", &mixed, &stale) {
        Err(Error::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (first.version - 1, first.version)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.session("s").unwrap().message_count, 4);
    // A batch that is all stored is a retry: it succeeds at any version.
    let retry = store.add_messages_with("s", &turn(1)[..2], &stale).unwrap();
    assert!(retry.already_stored);
    // At the right version it writes the new one; a missing session is NotFound.
    let current = AddOptions {
        expected_version: Some(first.version),
        ..each()
    };
    let added = store.add_messages_with("s", &mixed, &current).unwrap();
    assert_eq!(added.written, [false, true]);
    assert!(matches!(
        store.add_messages_with("none", &mixed, &current),
        Err(Error::NotFound { .. })
    ));
    assert!(!store.session_exists("none").unwrap());
}

#[test]
fn a_metadata_patch_is_written_with_the_append_and_only_then() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let session = store
        .create_session(sessiondb::NewSession {
            id: Some("s".into()),
            metadata: json!({"keep": 1, "drop": 2}).as_object().unwrap().clone(),
            ..Default::default()
        })
        .unwrap();
    let patch = json!({"summary": {"n": 1}, "drop": null});
    let options = AddOptions {
        expected_version: Some(session.version),
        metadata: Some(patch.as_object().unwrap().clone()),
        ..each()
    };
    let added = store.add_messages_with("s", &turn(1), &options).unwrap();
    assert_eq!(added.version, session.version + 1);
    let after = store.session("s").unwrap();
    assert_eq!(after.version, added.version);
    assert_eq!(
        serde_json::Value::Object(after.metadata.clone()),
        json!({"keep": 1, "summary": {"n": 1}})
    );
    // A retry writes nothing, the metadata included.
    let other = AddOptions {
        metadata: Some(json!({"summary": {"n": 2}}).as_object().unwrap().clone()),
        ..each()
    };
    assert!(
        store
            .add_messages_with("s", &turn(1), &other)
            .unwrap()
            .already_stored
    );
    assert_eq!(store.session("s").unwrap().metadata, after.metadata);
    // A patch too deep for metadata is refused before anything is written.
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let bad = AddOptions {
        metadata: Some(json!({"deep": deep}).as_object().unwrap().clone()),
        ..each()
    };
    let err = store.add_messages_with("s", &turn(2), &bad).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert_eq!(store.session("s").unwrap().version, after.version);
    assert_eq!(store.session("s").unwrap().message_count, 4);
}

#[test]
fn find_keys_says_where_keys_are_with_the_version_read() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let added = store.add_messages("s", &turn(1)).unwrap();
    let found = store.find_keys("s", &["t1-2", "nope", "t1-0"]).unwrap();
    assert_eq!(found.version, added.version);
    assert_eq!(found.indices, [Some(2), None, Some(0)]);
    // A fork's inherited history holds its parent's keys.
    let fork = store.fork_session("s", Some(1), None).unwrap();
    store
        .add_message(&fork.id, NewMessage::user("f").with_key("f"))
        .unwrap();
    let found = store.find_keys(&fork.id, &["t1-1", "t1-2", "f"]).unwrap();
    assert_eq!(found.indices, [Some(1), None, Some(2)]);
    assert!(matches!(
        store.find_keys("missing", &["k"]),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn racers_with_the_same_mixed_batch_store_each_new_message_once() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_messages("s", &turn(1)).unwrap();
    // Half stored, half new, interleaved.
    let batch: Vec<NewMessage> = (0..8)
        .map(|i| match i % 2 {
            0 => NewMessage::user("stored").with_key(format!("t1-{}", i / 2)),
            _ => NewMessage::user(format!("new {i}")).with_key(format!("n{i}")),
        })
        .collect();
    const RACERS: usize = 8;
    let barrier = std::sync::Barrier::new(RACERS);
    let outcomes: Vec<Vec<bool>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..RACERS)
            .map(|_| {
                scope.spawn(|| {
                    let own = Store::open(&path).unwrap();
                    barrier.wait();
                    own.add_messages_with("s", &batch, &each()).unwrap().written
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Exactly one racer wrote the new ones; the others found them all stored.
    let writers: Vec<&Vec<bool>> = outcomes.iter().filter(|w| w.contains(&true)).collect();
    assert_eq!(writers.len(), 1, "{outcomes:?}");
    assert_eq!(
        *writers[0],
        [false, true, false, true, false, true, false, true]
    );
    let mut expected: Vec<Option<String>> = (0..4).map(|i| Some(format!("t1-{i}"))).collect();
    expected.extend([1, 3, 5, 7].map(|i| Some(format!("n{i}"))));
    assert_eq!(keys_of(&store, "s"), expected);
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap())[4..],
        ["new 1", "new 3", "new 5", "new 7"]
    );
}

#[test]
fn a_batch_can_create_its_session_with_fields_in_the_same_transaction() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let new_session = sessiondb::NewSession {
        agent_name: Some("agent".into()),
        user_id: Some("u".into()),
        metadata: json!({"k": "v"}).as_object().unwrap().clone(),
        ..Default::default()
    };
    let creating = AddOptions {
        new_session: Some(new_session.clone()),
        ..each()
    };
    // A bad batch leaves no session behind.
    let mut bad = turn(1);
    bad[3].cost = Some(-1.0);
    assert!(matches!(
        store.add_messages_with("s", &bad, &creating),
        Err(Error::InvalidInput(_))
    ));
    assert!(!store.session_exists("s").unwrap());
    let added = store.add_messages_with("s", &turn(1), &creating).unwrap();
    assert_eq!(added.written, [true; 4]);
    let session = store.session("s").unwrap();
    assert_eq!(
        (session.agent_name.as_deref(), session.user_id.as_deref()),
        (Some("agent"), Some("u"))
    );
    assert_eq!(
        serde_json::Value::Object(session.metadata),
        json!({"k": "v"})
    );
    assert_eq!((session.version, session.message_count), (added.version, 4));
    // It must not exist: a second creator learns so and writes nothing.
    match store.add_messages_with("s", &turn(2), &creating) {
        Err(Error::AlreadyExists(id)) => assert_eq!(id, "s"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(store.session("s").unwrap().version, added.version);
    // With an expected version, or another id, it is refused before anything is read.
    let both = AddOptions {
        expected_version: Some(added.version),
        ..creating.clone()
    };
    assert!(matches!(
        store.add_messages_with("t", &turn(2), &both),
        Err(Error::InvalidInput(_))
    ));
    let other_id = AddOptions {
        new_session: Some(sessiondb::NewSession {
            id: Some("x".into()),
            ..new_session
        }),
        ..each()
    };
    assert!(matches!(
        store.add_messages_with("t", &turn(2), &other_id),
        Err(Error::InvalidInput(_))
    ));
    assert!(!store.session_exists("t").unwrap());
}
