//! Whole turns: batches, idempotency keys, pop.

mod common;

use common::{cli, temp_db};
use serde_json::json;
use sessiondb::{Error, NewMessage, Store};

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
