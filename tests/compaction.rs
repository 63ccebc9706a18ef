//! Lossless compaction: working history versus full history.

mod common;

use common::{cli, temp_db};
use serde_json::json;
use sessiondb::{Error, NewMessage, Role, SearchFilter, Store};

fn contents(messages: &[sessiondb::Message]) -> Vec<String> {
    messages.iter().map(|m| m.content().to_string()).collect()
}

fn filled(store: &Store, id: &str, n: usize) {
    let batch: Vec<NewMessage> = (0..n).map(|i| NewMessage::user(format!("m{i}"))).collect();
    store.add_messages(id, &batch).unwrap();
}

#[test]
fn compact_makes_the_working_history_the_summary_and_what_follows() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    filled(&store, "s", 6);
    let version = store.version("s").unwrap();
    let c = store
        .compact(
            "s",
            NewMessage::system("summary of m0-m3").with_usage(400, 20, None),
            3,
        )
        .unwrap();
    assert_eq!(c.through_index, 3);
    assert_eq!((c.tokens_before, c.tokens_after), (Some(400), Some(20)));
    assert_eq!(store.version("s").unwrap(), version + 1);
    let working = store.chat_history("s", None).unwrap();
    assert_eq!(contents(&working), ["summary of m0-m3", "m4", "m5"]);
    assert_eq!(
        working.iter().map(|m| m.index).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(working[0].role(), Role::System);
    // The full history keeps everything; the session's count and usage are the full ones.
    let full = store.full_history("s").unwrap();
    assert_eq!(contents(&full), ["m0", "m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(store.session("s").unwrap().message_count, 6);
    // Uncached and cached reads agree, and a fresh store reads the same.
    assert_eq!(store.chat_history_uncached("s", None).unwrap(), working);
    let again = Store::open(&path).unwrap();
    assert_eq!(
        contents(&again.chat_history("s", None).unwrap()),
        contents(&working)
    );
    let recorded = store.compactions("s").unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].summary.content(), "summary of m0-m3");
}

#[test]
fn compacted_messages_stay_searchable() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .add_user_message("s", "the aardvark question")
        .unwrap();
    store.add_user_message("s", "later").unwrap();
    store.compact("s", NewMessage::system("sum"), 0).unwrap();
    let hits = store
        .search(
            "aardvark",
            10,
            &SearchFilter {
                session: Some("s".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].index, 0);
}

#[test]
fn windows_count_the_summary_and_appends_follow_it() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    filled(&store, "s", 10);
    store.compact("s", NewMessage::system("S"), 6).unwrap();
    assert_eq!(
        contents(&store.chat_history("s", Some(2)).unwrap()),
        ["m8", "m9"]
    );
    assert_eq!(
        contents(&store.chat_history("s", Some(4)).unwrap()),
        ["S", "m7", "m8", "m9"]
    );
    assert_eq!(
        contents(&store.chat_history("s", Some(50)).unwrap()),
        ["S", "m7", "m8", "m9"]
    );
    store.add_user_message("s", "m10").unwrap();
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["S", "m7", "m8", "m9", "m10"]
    );
    let stats = store.cache_stats();
    assert!(stats.hits + stats.tail_refreshes >= 1, "{stats:?}");
}

#[test]
fn compaction_never_separates_a_tool_call_from_its_results() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let call =
        json!({"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}});
    store
        .add_messages(
            "s",
            &[
                NewMessage::user("q"),
                NewMessage::assistant("").with_tool_calls(vec![call]),
                NewMessage::tool("c1", "r"),
                NewMessage::assistant("a"),
            ],
        )
        .unwrap();
    let version = store.version("s").unwrap();
    let err = store.compact("s", NewMessage::system("S"), 1).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("tool result")),
        "{err}"
    );
    assert!(matches!(
        store.compact("s", NewMessage::system("S"), 4),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(store.version("s").unwrap(), version);
    store.compact("s", NewMessage::system("S"), 2).unwrap();
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["S", "a"]
    );
}

#[test]
fn a_later_compaction_covers_the_earlier_one_and_may_not_end_before_it() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    filled(&store, "s", 8);
    store.compact("s", NewMessage::system("S1"), 2).unwrap();
    assert!(matches!(
        store.compact("s", NewMessage::system("S0"), 1),
        Err(Error::InvalidInput(_))
    ));
    store.compact("s", NewMessage::system("S2"), 5).unwrap();
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["S2", "m6", "m7"]
    );
    let recorded: Vec<_> = store
        .compactions("s")
        .unwrap()
        .into_iter()
        .map(|c| (c.through_index, c.summary.content().to_string()))
        .collect();
    assert_eq!(recorded, [(2, "S1".to_string()), (5, "S2".to_string())]);
    // Reverting into the second range goes back to the first compaction.
    store.revert_to_message("s", 4).unwrap();
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["S1", "m3", "m4"]
    );
}

#[test]
fn forks_snapshots_reverts_and_pops_keep_working_across_compactions() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    filled(&store, "s", 6);
    let before = store.create_snapshot("s", Some("before"), None).unwrap();
    store.compact("s", NewMessage::system("S"), 2).unwrap();
    let after = store.create_snapshot("s", Some("after"), None).unwrap();
    // A fork past the compacted range inherits the working view; one inside it does not.
    let fork = store.fork_session("s", Some(4), None).unwrap();
    assert_eq!(
        contents(&store.chat_history(&fork.id, None).unwrap()),
        ["S", "m3", "m4"]
    );
    let early = store.fork_session("s", Some(1), None).unwrap();
    assert_eq!(
        contents(&store.chat_history(&early.id, None).unwrap()),
        ["m0", "m1"]
    );
    // Pop until the summary's range is reached: the compaction stops applying there.
    for expected in ["m5", "m4", "m3"] {
        assert_eq!(store.pop_message("s").unwrap().unwrap().content(), expected);
    }
    assert_eq!(contents(&store.chat_history("s", None).unwrap()), ["S"]);
    assert_eq!(store.pop_message("s").unwrap().unwrap().content(), "m2");
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["m0", "m1"]
    );
    // Snapshots restore the view they pinned.
    store.restore_snapshot("s", after.id).unwrap();
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["S", "m3", "m4", "m5"]
    );
    store.restore_snapshot("s", before.id).unwrap();
    assert_eq!(store.chat_history("s", None).unwrap().len(), 6);
    // The pre-compaction head is a superseded branch: switching to it undoes the compaction.
    let branches = store.branches("s").unwrap();
    assert!(
        branches
            .iter()
            .filter(|b| b.superseded_at.is_some())
            .count()
            >= 2
    );
}

#[test]
fn set_chat_history_compares_against_the_full_history() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    filled(&store, "s", 4);
    store.compact("s", NewMessage::system("S"), 1).unwrap();
    let mut full: Vec<NewMessage> = store
        .full_history("s")
        .unwrap()
        .iter()
        .cloned()
        .map(Into::into)
        .collect();
    full.push(NewMessage::user("m4"));
    let change = store.set_chat_history("s", &full).unwrap();
    assert_eq!(
        (change.kept, change.written, change.superseded),
        (4, 1, false)
    );
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["S", "m2", "m3", "m4"]
    );
    assert_eq!(store.full_history("s").unwrap().len(), 5);
}

#[test]
fn export_writes_the_full_history_of_a_compacted_session() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    filled(&store, "s", 3);
    store.compact("s", NewMessage::system("S"), 1).unwrap();
    let export = store.export(&[], false, &mut |_, _| {}).unwrap();
    assert_eq!(contents(&export.sessions[0].messages), ["m0", "m1", "m2"]);
}

#[test]
fn cli_compact_and_history_full() {
    let (dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    filled(&store, "s", 3);
    let db = path.to_str().unwrap();
    let summary = dir.path().join("summary.txt");
    std::fs::write(&summary, "short version").unwrap();
    let out = cli()
        .args([
            "--db",
            db,
            "compact",
            "s",
            "--through",
            "1",
            "--summary-file",
        ])
        .arg(&summary)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history = cli().args(["--db", db, "history", "s"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&history.stdout),
        "[1] system: short version\n[2] user: m2\n"
    );
    let full = cli()
        .args(["--db", db, "history", "s", "--full"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&full.stdout),
        "[0] user: m0\n[1] user: m1\n[2] user: m2\n"
    );
    let bad = cli()
        .args([
            "--db",
            db,
            "compact",
            "s",
            "--through",
            "9",
            "--summary",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("past the end"));
}
