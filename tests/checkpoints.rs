//! LangGraph checkpoints on sessions (docs/design.md, "LangGraph checkpoints"): what the
//! core keeps for `sessiondb.langgraph`, on either backend. LangGraph's own conformance
//! suite runs against the Python saver (bindings/python/tests/test_langgraph.py).

mod common;

use common::temp_db;
use serde_json::json;
use sessiondb::{
    ChannelBlob, CheckpointQuery, Error, Metadata, NewCheckpoint, PendingWrite, PruneStrategy,
    Serialized, Store,
};

fn value(text: &str) -> Serialized {
    Serialized {
        kind: "text".into(),
        bytes: Some(text.as_bytes().to_vec()),
    }
}

fn metadata(run: &str, step: i64) -> Metadata {
    match json!({"run_id": run, "step": step, "source": "loop"}) {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// Checkpoint `id` of `thread`, child of `parent`, with channel `a` at `version` (new when
/// `new`) holding `text`.
fn put(store: &Store, thread: &str, id: &str, parent: Option<&str>, version: &str, text: &str) {
    store
        .put_checkpoint(&NewCheckpoint {
            thread_id: thread.into(),
            checkpoint_ns: String::new(),
            checkpoint_id: id.into(),
            parent_checkpoint_id: parent.map(str::to_string),
            checkpoint: value(&format!("checkpoint {id}")),
            metadata: metadata(&format!("run-{id}"), 0),
            channel_versions: vec![("a".into(), version.into())],
            new_blobs: if text.is_empty() {
                Vec::new()
            } else {
                vec![ChannelBlob {
                    channel: "a".into(),
                    version: version.into(),
                    value: value(text),
                }]
            },
            other_values: Vec::new(),
        })
        .unwrap();
}

fn write(store: &Store, thread: &str, id: &str, task: &str, text: &str) {
    let writes = [PendingWrite {
        task_id: task.into(),
        idx: 0,
        channel: "a".into(),
        value: value(text),
        task_path: String::new(),
    }];
    store
        .put_checkpoint_writes(thread, "", id, &writes, false)
        .unwrap();
}

/// (checkpoint id, the text of channel `a`, the texts of the pending writes), newest first.
fn listed(store: &Store, thread: &str) -> Vec<(String, String, Vec<String>)> {
    let text = |s: &Serialized| String::from_utf8(s.bytes.clone().unwrap()).unwrap();
    store
        .list_checkpoints(&CheckpointQuery {
            thread_id: Some(thread.into()),
            ..CheckpointQuery::default()
        })
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.checkpoint_id.clone(),
                r.channel_values.iter().map(|(_, v)| text(v)).collect(),
                r.pending_writes.iter().map(|w| text(&w.value)).collect(),
            )
        })
        .collect()
}

fn row(id: &str, a: &str, writes: &[&str]) -> (String, String, Vec<String>) {
    (
        id.into(),
        a.into(),
        writes.iter().map(|w| w.to_string()).collect(),
    )
}

#[test]
fn an_unchanged_channel_is_read_from_the_checkpoint_that_stored_it() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    put(&store, "t", "1", None, "v1", "first");
    put(&store, "t", "2", Some("1"), "v1", "");
    put(&store, "t", "3", Some("2"), "v2", "second");
    assert_eq!(
        listed(&store, "t"),
        [
            row("3", "second", &[]),
            row("2", "first", &[]),
            row("1", "first", &[])
        ]
    );
    let latest = store.get_checkpoint("t", "", None).unwrap().unwrap();
    assert_eq!(latest.checkpoint_id, "3");
    assert_eq!(latest.parent_checkpoint_id.as_deref(), Some("2"));
    assert_eq!(latest.checkpoint, value("checkpoint 3"));
    let thread = store.session("langgraph:t").unwrap();
    assert_eq!(thread.message_count, 3);
}

#[test]
fn a_copy_shares_the_checkpoints_and_each_side_keeps_its_own_writes() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    put(&store, "s", "1", None, "v1", "x");
    write(&store, "s", "1", "before", "seen by both");
    store.copy_checkpoint_thread("s", "c").unwrap();
    write(&store, "s", "1", "source", "only the source");
    write(&store, "c", "1", "copy", "only the copy");
    assert_eq!(
        listed(&store, "s"),
        [row("1", "x", &["seen by both", "only the source"])]
    );
    assert_eq!(
        listed(&store, "c"),
        [row("1", "x", &["seen by both", "only the copy"])]
    );
    assert!(matches!(
        store.copy_checkpoint_thread("s", "c"),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        store.copy_checkpoint_thread("missing", "d"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn delete_for_runs_removes_one_run_from_the_thread_and_its_copies() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    put(&store, "t", "1", None, "v1", "one");
    put(&store, "t", "2", Some("1"), "v2", "two");
    write(&store, "t", "2", "task", "w");
    store.copy_checkpoint_thread("t", "copy").unwrap();
    store
        .copy_checkpoint_thread("copy", "copy of copy")
        .unwrap();
    put(&store, "other", "9", None, "v1", "nine");
    store.delete_checkpoint_runs(&["run-2".into()]).unwrap();
    for thread in ["t", "copy", "copy of copy"] {
        assert_eq!(listed(&store, thread), [row("1", "one", &[])], "{thread}");
    }
    assert_eq!(listed(&store, "other"), [row("9", "nine", &[])]);
    // A copy made now starts from what the thread shows.
    store.copy_checkpoint_thread("t", "late").unwrap();
    assert_eq!(listed(&store, "late"), [row("1", "one", &[])]);
    // The history says what happened.
    let history = store.chat_history("langgraph:t", None).unwrap();
    assert_eq!(
        history.last().unwrap().content(),
        "delete_for_runs: removed 1 checkpoint"
    );
    // No thread sees checkpoint 2 any more, so it is gone, with its blob and its write:
    // checkpoints 1 and 9, their blobs and references are left.
    assert_eq!(stored_rows(&path), [2, 2, 2, 0, 0]);
}

#[test]
fn delete_for_runs_keeps_what_a_copy_made_before_a_hide_still_reads() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    put(&store, "t", "1", None, "v1", "one");
    put(&store, "t", "2", Some("1"), "v2", "two");
    store.copy_checkpoint_thread("t", "early").unwrap();
    // `early` hides 1 from itself; the thread still reads it.
    store
        .prune_checkpoints(&["early".into()], PruneStrategy::KeepLatest)
        .unwrap();
    assert_eq!(listed(&store, "early"), [row("2", "two", &[])]);
    // Now the thread drops run 1 too: nobody reads it, and it goes.
    store.delete_checkpoint_runs(&["run-1".into()]).unwrap();
    assert_eq!(listed(&store, "t"), [row("2", "two", &[])]);
    assert_eq!(stored_rows(&path), [1, 1, 1, 0, 0]);
    // Dropping run 2 from `early` alone is not possible (runs go from every thread), but a
    // keep_latest of the thread after a later put leaves 2 to `early`, which reads it.
    put(&store, "t", "3", Some("2"), "v3", "three");
    store
        .prune_checkpoints(&["t".into()], PruneStrategy::KeepLatest)
        .unwrap();
    assert_eq!(listed(&store, "t"), [row("3", "three", &[])]);
    assert_eq!(listed(&store, "early"), [row("2", "two", &[])]);
    assert_eq!(stored_rows(&path), [2, 2, 2, 0, 1]);
}

#[test]
fn keep_latest_keeps_one_checkpoint_per_namespace_and_delete_removes_the_thread() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    put(&store, "t", "1", None, "v1", "one");
    put(&store, "t", "2", Some("1"), "v1", "");
    put(&store, "t", "3", Some("2"), "v1", "");
    store
        .prune_checkpoints(&["t".into(), "unknown".into()], PruneStrategy::KeepLatest)
        .unwrap();
    // The latest reads the value the first checkpoint stored, which stays; its parent is
    // gone, so it has none.
    assert_eq!(listed(&store, "t"), [row("3", "one", &[])]);
    let latest = store.get_checkpoint("t", "", None).unwrap().unwrap();
    assert_eq!(latest.parent_checkpoint_id, None);
    store
        .prune_checkpoints(&["t".into()], PruneStrategy::Delete)
        .unwrap();
    assert_eq!(listed(&store, "t"), []);
    assert!(!store.session_exists("langgraph:t").unwrap());
}

/// Thread `t` of checkpoints 1, 2 and 3 (each the parent of the next, each with a new
/// value of `a`), and `c`, a copy of it.
fn three_and_a_copy(store: &Store) {
    put(store, "t", "1", None, "v1", "one");
    put(store, "t", "2", Some("1"), "v2", "two");
    put(store, "t", "3", Some("2"), "v3", "three");
    store.copy_checkpoint_thread("t", "c").unwrap();
}

/// (checkpoint id, parent id) of every checkpoint of `thread`, newest first.
fn parents(store: &Store, thread: &str) -> Vec<(String, Option<String>)> {
    records(store, thread)
        .into_iter()
        .map(|r| (r.checkpoint_id, r.parent_checkpoint_id))
        .collect()
}

fn parent_of(store: &Store, thread: &str, id: Option<&str>) -> Option<String> {
    let record = store.get_checkpoint(thread, "", id).unwrap().unwrap();
    let by_id = store
        .list_checkpoints(&CheckpointQuery {
            thread_id: Some(thread.into()),
            checkpoint_id: Some(record.checkpoint_id.clone()),
            ..CheckpointQuery::default()
        })
        .unwrap();
    assert_eq!(by_id, std::slice::from_ref(&record), "{thread} {id:?}");
    record.parent_checkpoint_id
}

#[test]
fn a_parent_hidden_from_a_thread_is_no_parent_there_and_still_one_in_the_copy_that_reads_it() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    three_and_a_copy(&store);
    // The copy still reads 1 and 2, so keep_latest hides them from the thread: 3 is a row
    // both share, and only the copy shows its parent.
    store
        .prune_checkpoints(&["t".into()], PruneStrategy::KeepLatest)
        .unwrap();
    assert_eq!(stored_rows(&path)[0], 3);
    let some = |id: &str| Some(id.to_string());
    let three = ("3".to_string(), None);
    assert_eq!(parents(&store, "t"), std::slice::from_ref(&three));
    assert_eq!(parent_of(&store, "t", None), None);
    assert_eq!(parent_of(&store, "t", Some("3")), None);
    let whole = [
        ("3".to_string(), some("2")),
        ("2".to_string(), some("1")),
        ("1".to_string(), None),
    ];
    assert_eq!(parents(&store, "c"), whole);
    assert_eq!(parent_of(&store, "c", None), some("2"));
    // A copy made now sees what the thread sees; so does the copy after a purge of the
    // thread, which leaves it the rows it read (and not the hidden ones).
    store.copy_checkpoint_thread("t", "late").unwrap();
    assert_eq!(parents(&store, "late"), std::slice::from_ref(&three));
    assert_eq!(parent_of(&store, "late", Some("3")), None);
    put(&store, "late", "4", Some("3"), "v4", "four");
    let report = store.purge_session("langgraph:t").unwrap();
    assert_eq!(report.forks_kept, ["langgraph:c", "langgraph:late"]);
    assert_eq!(
        parents(&store, "late"),
        [("4".to_string(), some("3")), three]
    );
    assert_eq!(parent_of(&store, "late", Some("3")), None);
    assert_eq!(parents(&store, "c"), whole);
    assert_eq!(stored_rows(&path)[..2], [5, 4]);
}

#[test]
fn a_thread_id_the_session_rules_refuse_is_named_in_the_error() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let err = store.get_checkpoint("a\u{0}b", "", None).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert!(err.to_string().contains("thread_id \"a\\0b\""), "{err}");
}

#[test]
fn a_list_without_a_thread_reads_every_thread_and_filters_by_metadata() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("not a thread", "hi").unwrap();
    put(&store, "a", "1", None, "v1", "x");
    put(&store, "b", "2", None, "v1", "y");
    let all = store.list_checkpoints(&CheckpointQuery::default()).unwrap();
    let found: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r.thread_id.as_str(), r.checkpoint_id.as_str()))
        .collect();
    assert_eq!(found, [("b", "2"), ("a", "1")]);
    let filtered = store
        .list_checkpoints(&CheckpointQuery {
            filter: metadata("run-1", 0),
            ..CheckpointQuery::default()
        })
        .unwrap();
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0].thread_id, "a");
}

/// Every checkpoint record of the thread, whole, newest first.
fn records(store: &Store, thread: &str) -> Vec<sessiondb::CheckpointRecord> {
    store
        .list_checkpoints(&CheckpointQuery {
            thread_id: Some(thread.into()),
            ..CheckpointQuery::default()
        })
        .unwrap()
}

#[test]
fn purging_a_thread_leaves_its_copies_reading_what_they_read_before() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    put(&store, "t", "1", None, "v1", "one");
    put(&store, "t", "2", Some("1"), "v2", "two");
    put(&store, "t", "3", Some("2"), "v2", "");
    write(&store, "t", "3", "before", "seen by the copies");
    // `early` forks before the thread hides anything; `c` after it hid 1 and 2.
    store.copy_checkpoint_thread("t", "early").unwrap();
    store
        .prune_checkpoints(&["t".into()], PruneStrategy::KeepLatest)
        .unwrap();
    store.copy_checkpoint_thread("t", "c").unwrap();
    write(&store, "t", "3", "source", "only the source");
    // `c` grows, is copied (`cc` sees 4 and 3), then hides 3 from itself.
    put(&store, "c", "4", Some("3"), "v4", "four");
    write(&store, "c", "4", "copy", "only c");
    store.copy_checkpoint_thread("c", "cc").unwrap();
    store
        .prune_checkpoints(&["c".into()], PruneStrategy::KeepLatest)
        .unwrap();
    let threads = ["early", "c", "cc"];
    let before: Vec<_> = threads.iter().map(|t| records(&store, t)).collect();
    assert_eq!(
        listed(&store, "early"),
        [
            row("3", "two", &["seen by the copies"]),
            row("2", "two", &[]),
            row("1", "one", &[])
        ]
    );
    assert_eq!(listed(&store, "c"), [row("4", "four", &["only c"])]);
    assert_eq!(
        listed(&store, "cc"),
        [
            row("4", "four", &["only c"]),
            row("3", "two", &["seen by the copies"])
        ]
    );

    let report = store.purge_session("langgraph:t").unwrap();
    assert_eq!(report.forks_kept, ["langgraph:c", "langgraph:early"]);
    let after: Vec<_> = threads.iter().map(|t| records(&store, t)).collect();
    assert_eq!(after, before);
    assert_eq!(store.get_checkpoint("t", "", None).unwrap(), None);
    for thread in threads {
        let latest = store.get_checkpoint(thread, "", None).unwrap().unwrap();
        assert_eq!(Some(&latest), records(&store, thread).first(), "{thread}");
    }
    // The copies go on on their own: a put reads the unchanged channel from what was copied.
    put(&store, "early", "5", Some("3"), "v2", "");
    assert_eq!(listed(&store, "early")[0], row("5", "two", &[]));
    // Deleting every copy leaves no checkpoint row, blob or hidden mark behind (once prune
    // collects the branch `c` left to `cc`, deleted after it).
    for thread in ["early", "c", "cc"] {
        store.delete_checkpoint_thread(thread).unwrap();
    }
    store.prune(std::time::Duration::ZERO, false).unwrap();
    assert_eq!(stored_rows(&path), [0, 0, 0, 0, 0]);
}

/// Rows of langgraph_checkpoints, _blobs, _channels, _writes and _hidden.
fn stored_rows(path: &std::path::Path) -> Vec<i64> {
    [
        "langgraph_checkpoints",
        "langgraph_blobs",
        "langgraph_channels",
        "langgraph_writes",
        "langgraph_hidden",
    ]
    .iter()
    .map(|t| common::db_i64(path, &format!("SELECT count(*) FROM {t}")))
    .collect()
}

fn text(s: &Serialized) -> String {
    String::from_utf8(s.bytes.clone().unwrap()).unwrap()
}

/// The checkpoint bytes of checkpoint `id` (or the latest) of `thread`, as text.
fn got(store: &Store, thread: &str, id: Option<&str>) -> Option<String> {
    store
        .get_checkpoint(thread, "", id)
        .unwrap()
        .map(|r| text(&r.checkpoint))
}

#[test]
fn get_by_id_and_latest_pass_over_the_checkpoints_a_copy_hides() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    three_and_a_copy(&store);
    // The copy inherits the three rows: keep_latest hides two of them from it only.
    store
        .prune_checkpoints(&["c".into()], PruneStrategy::KeepLatest)
        .unwrap();
    assert_eq!(got(&store, "c", Some("1")), None);
    assert_eq!(got(&store, "c", Some("2")), None);
    assert_eq!(got(&store, "c", None).as_deref(), Some("checkpoint 3"));
    assert_eq!(got(&store, "t", Some("1")).as_deref(), Some("checkpoint 1"));
    // A put on the copy whose parent is hidden finds no parent: its unchanged channel is
    // read from what the lineage still shows.
    put(&store, "c", "4", Some("2"), "v3", "");
    let four = store.get_checkpoint("c", "", Some("4")).unwrap().unwrap();
    assert_eq!(four.channel_values.len(), 1);
    assert_eq!(text(&four.channel_values[0].1), "three");
    assert_eq!(got(&store, "c", None).as_deref(), Some("checkpoint 4"));
    assert_eq!(got(&store, "t", None).as_deref(), Some("checkpoint 3"));
}

#[test]
fn a_checkpoint_put_again_replaces_its_own_row_and_shadows_an_inherited_one() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let again = |thread: &str, bytes: &str| {
        store
            .put_checkpoint(&NewCheckpoint {
                thread_id: thread.into(),
                checkpoint_ns: String::new(),
                checkpoint_id: "1".into(),
                parent_checkpoint_id: None,
                checkpoint: value(bytes),
                metadata: metadata("run-1", 0),
                channel_versions: vec![("a".into(), "v1".into())],
                new_blobs: Vec::new(),
                other_values: Vec::new(),
            })
            .unwrap()
    };
    put(&store, "t", "1", None, "v1", "one");
    again("t", "replaced");
    assert_eq!(got(&store, "t", Some("1")).as_deref(), Some("replaced"));
    assert_eq!(store.session("langgraph:t").unwrap().message_count, 1);
    store.copy_checkpoint_thread("t", "c").unwrap();
    again("c", "the copy's");
    assert_eq!(got(&store, "c", Some("1")).as_deref(), Some("the copy's"));
    assert_eq!(got(&store, "c", None).as_deref(), Some("the copy's"));
    assert_eq!(got(&store, "t", Some("1")).as_deref(), Some("replaced"));
    assert_eq!(store.session("langgraph:c").unwrap().message_count, 2);
    // The copy's row took the channel value from the row it shadows.
    let copy = store.get_checkpoint("c", "", None).unwrap().unwrap();
    assert_eq!(text(&copy.channel_values[0].1), "one");
    let err = store.copy_checkpoint_thread("t", "c").unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyExists(what) if what == "thread \"c\""),
        "{err:?}"
    );
}

#[test]
fn an_unchanged_channel_the_parent_has_at_another_version_is_found_further_up() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    put(&store, "t", "1", None, "v1", "first");
    put(&store, "t", "2", Some("1"), "v2", "second");
    put(&store, "t", "3", Some("2"), "v1", "");
    let three = store.get_checkpoint("t", "", Some("3")).unwrap().unwrap();
    assert_eq!(text(&three.channel_values[0].1), "first");
}

#[test]
fn writes_of_a_task_at_one_index_keep_the_first_or_with_replace_the_last() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    put(&store, "t", "1", None, "v1", "x");
    let at = |idx: i64, text: &str| PendingWrite {
        task_id: "task".into(),
        idx,
        channel: "a".into(),
        value: value(text),
        task_path: String::new(),
    };
    let writes = [at(0, "first"), at(1, "other"), at(0, "second")];
    store
        .put_checkpoint_writes("t", "", "1", &writes, false)
        .unwrap();
    assert_eq!(listed(&store, "t"), [row("1", "x", &["first", "other"])]);
    let writes = [at(-1, "error 1"), at(0, "ignored"), at(-1, "error 2")];
    store
        .put_checkpoint_writes("t", "", "1", &writes, true)
        .unwrap();
    assert_eq!(
        listed(&store, "t"),
        [row("1", "x", &["error 2", "ignored", "other"])]
    );
}

#[test]
fn a_checkpoint_with_hundreds_of_channels_and_writes_stores_them_all() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let channels: Vec<String> = (0..300).map(|i| format!("c{i:03}")).collect();
    store
        .put_checkpoint(&NewCheckpoint {
            thread_id: "t".into(),
            checkpoint_ns: String::new(),
            checkpoint_id: "1".into(),
            parent_checkpoint_id: None,
            checkpoint: value("checkpoint 1"),
            metadata: metadata("run-1", 0),
            channel_versions: channels.iter().map(|c| (c.clone(), "v1".into())).collect(),
            new_blobs: channels
                .iter()
                .map(|c| ChannelBlob {
                    channel: c.clone(),
                    version: "v1".into(),
                    value: value(&format!("value of {c}")),
                })
                .collect(),
            other_values: Vec::new(),
        })
        .unwrap();
    let writes: Vec<PendingWrite> = (0..300)
        .map(|i| PendingWrite {
            task_id: "task".into(),
            idx: i,
            channel: "a".into(),
            value: value(&format!("write {i:03}")),
            task_path: String::new(),
        })
        .collect();
    store
        .put_checkpoint_writes("t", "", "1", &writes, false)
        .unwrap();
    let got = store.get_checkpoint("t", "", None).unwrap().unwrap();
    let values: Vec<(String, String)> = got
        .channel_values
        .iter()
        .map(|(c, v)| (c.clone(), text(v)))
        .collect();
    let expected: Vec<(String, String)> = channels
        .iter()
        .map(|c| (c.clone(), format!("value of {c}")))
        .collect();
    assert_eq!(values, expected);
    let written: Vec<String> = got.pending_writes.iter().map(|w| text(&w.value)).collect();
    let expected: Vec<String> = (0..300).map(|i| format!("write {i:03}")).collect();
    assert_eq!(written, expected);
}

/// Ids a careless quoting would break: quotes, backslashes, placeholders, statement ends,
/// an escape string's own syntax, and text beyond ASCII.
const HOSTILE_IDS: &[&str] = &[
    "it's",
    "back\\slash\\",
    "\\'; DROP TABLE sessions; --",
    "$1 ?1 ?2",
    "E'x' || 'y'",
    "semi;colon",
    "naïve – 日本語 🚀",
    "\"double\"",
];

/// On PostgreSQL a transaction's first statement goes with its `BEGIN`, its values written
/// into its text: every id arrives exactly, through a put, a read and a copy.
#[test]
fn hostile_thread_and_checkpoint_ids_are_stored_and_copied_exactly() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for (i, id) in HOSTILE_IDS.iter().enumerate() {
        let copy = format!("copy of {id}");
        put(&store, id, id, None, "v1", &format!("value {i}"));
        put(&store, id, &format!("{id}'2"), Some(id), "v2", "");
        store.copy_checkpoint_thread(id, &copy).unwrap();
        for thread in [id.to_string(), copy.clone()] {
            let latest = store.get_checkpoint(&thread, "", None).unwrap().unwrap();
            assert_eq!(latest.thread_id, thread);
            assert_eq!(latest.checkpoint_id, format!("{id}'2"));
            assert_eq!(latest.parent_checkpoint_id.as_deref(), Some(*id));
            let first = store
                .get_checkpoint(&thread, "", Some(id))
                .unwrap()
                .unwrap();
            assert_eq!(
                first.channel_values,
                [("a".into(), value(&format!("value {i}")))]
            );
        }
        // A pending write's put begins with the locked read of its thread's head.
        write(&store, &copy, &format!("{id}'2"), id, &format!("write {i}"));
        assert_eq!(
            listed(&store, &copy)[0],
            row(&format!("{id}'2"), "", &[&format!("write {i}")])
        );
        let session = store.session(&format!("langgraph:{copy}")).unwrap();
        assert_eq!(session.title, Some(format!("Copy of thread {id}")));
        assert_eq!(session.parent_session, Some(format!("langgraph:{id}")));
        assert_eq!(session.message_count, 2);
        assert!(matches!(
            store.copy_checkpoint_thread(id, &copy),
            Err(Error::AlreadyExists(_))
        ));
    }
    let mut stored: Vec<String> = store
        .list_sessions(&Default::default())
        .unwrap()
        .sessions
        .into_iter()
        .map(|s| s.id)
        .collect();
    stored.sort();
    let mut expected: Vec<String> = HOSTILE_IDS
        .iter()
        .flat_map(|id| [format!("langgraph:{id}"), format!("langgraph:copy of {id}")])
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
    // Deleting a thread begins with the locked read of its head.
    store.delete_checkpoint_thread(HOSTILE_IDS[0]).unwrap();
    assert!(!store
        .session_exists(&format!("langgraph:{}", HOSTILE_IDS[0]))
        .unwrap());
    assert!(store
        .session_exists(&format!("langgraph:copy of {}", HOSTILE_IDS[0]))
        .unwrap());
    store
        .delete_checkpoint_runs(&[format!("run-{}", HOSTILE_IDS[2])])
        .unwrap();
    let left: Vec<String> = store
        .list_checkpoints(&CheckpointQuery {
            thread_id: Some(HOSTILE_IDS[2].into()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|r| r.checkpoint_id)
        .collect();
    assert_eq!(left, [format!("{}'2", HOSTILE_IDS[2])]);
}

/// The head's usage totals go through the locked read that begins each append (its rows as
/// text on PostgreSQL) into the next append's totals, the copy's head and the next put's:
/// floats and large counts arrive exactly.
#[test]
fn usage_totals_reach_a_copy_and_the_next_put_exactly() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let costs = [0.1, 0.2, 1e-300 / 3.0, 123456.789e-3 / 7.0];
    for cost in costs {
        store
            .add_message(
                "langgraph:u",
                sessiondb::NewMessage::new(sessiondb::Role::Assistant, "m").with_usage(
                    (1 << 40) + 1,
                    7,
                    Some(cost),
                ),
            )
            .unwrap();
    }
    let before = store.session("langgraph:u").unwrap().usage;
    assert_eq!(before.cost, costs.iter().sum::<f64>());
    assert_eq!(before.input_tokens, 4 * ((1 << 40) + 1));
    store.copy_checkpoint_thread("u", "v").unwrap();
    assert_eq!(store.session("langgraph:v").unwrap().usage, before);
    put(&store, "v", "1", None, "v1", "x");
    let after = store.session("langgraph:v").unwrap();
    assert_eq!(after.usage, before);
    assert_eq!(after.message_count, 5);
}

/// Several handles (each its own pool: on a server, its own connections) put to one thread,
/// create it at once, and copy it, all at the same time: every put is kept, every copy is a
/// whole prefix of the thread, and of the copies to one target exactly one is made.
#[test]
fn handles_putting_and_copying_one_thread_at_once_lose_nothing() {
    let (_dir, path) = temp_db();
    let handles: Vec<Store> = (0..4).map(|_| Store::open(&path).unwrap()).collect();
    const PUTS: usize = 15;
    let outcomes: Vec<Vec<bool>> = std::thread::scope(|scope| {
        let workers: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(h, store)| {
                scope.spawn(move || {
                    let mut made = Vec::new();
                    for i in 0..PUTS {
                        put(
                            store,
                            "t",
                            &format!("{h}-{i:02}"),
                            None,
                            &format!("{h}-{i}"),
                            "x",
                        );
                        match store.copy_checkpoint_thread("t", &format!("copy {h}-{i}")) {
                            Ok(()) => {}
                            Err(e) => panic!("copy {h}-{i}: {e}"),
                        }
                        match store.copy_checkpoint_thread("t", &format!("shared {i}")) {
                            Ok(()) => made.push(true),
                            Err(Error::AlreadyExists(_)) => made.push(false),
                            Err(e) => panic!("shared {i}: {e}"),
                        }
                    }
                    made
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let store = &handles[0];
    let thread = store.session("langgraph:t").unwrap();
    assert_eq!(thread.message_count, (4 * PUTS) as u64);
    let all = listed(store, "t");
    assert_eq!(all.len(), 4 * PUTS);
    for i in 0..PUTS {
        let made = outcomes.iter().filter(|o| o[i]).count();
        assert_eq!(made, 1, "copies to shared {i}");
    }
    // The thread's checkpoint ids in history order.
    let history: Vec<String> = store
        .chat_history("langgraph:t", None)
        .unwrap()
        .iter()
        .map(|m| m.content().split(' ').nth(1).unwrap().to_string())
        .collect();
    let mut sorted = history.clone();
    sorted.sort();
    let mut every: Vec<String> = all.iter().map(|r| r.0.clone()).collect();
    every.sort();
    assert_eq!(sorted, every);
    for h in 0..4 {
        for i in 0..PUTS {
            // A copy is the thread as it was: exactly its first `message_count` checkpoints,
            // the put just before it among them.
            let copy = format!("copy {h}-{i}");
            let session = store.session(&format!("langgraph:{copy}")).unwrap();
            let mut ids: Vec<String> = listed(store, &copy).into_iter().map(|r| r.0).collect();
            ids.sort();
            let mut prefix = history[..session.message_count as usize].to_vec();
            prefix.sort();
            assert_eq!(ids, prefix, "{copy}");
            assert!(
                ids.contains(&format!("{h}-{i:02}")),
                "{copy} has its own put"
            );
        }
    }
}

/// Several handles put the same checkpoints at the same moment, each the child of the one
/// before: the first put of each id stores it, the others find it (a put that waited for
/// the thread's lock reads what the writer before it committed) and replace it in place.
#[test]
fn handles_putting_one_checkpoint_at_once_store_it_once() {
    let (_dir, path) = temp_db();
    let handles: Vec<Store> = (0..4).map(|_| Store::open(&path).unwrap()).collect();
    const STEPS: usize = 20;
    let barrier = std::sync::Barrier::new(handles.len());
    // A failed put does not stop its thread: the others wait for it at the barrier.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = handles
            .iter()
            .map(|store| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for i in 0..STEPS {
                        barrier.wait();
                        let put = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            let parent = (i > 0).then(|| format!("{:03}", i - 1));
                            let id = format!("{i:03}");
                            put(
                                store,
                                "t",
                                &id,
                                parent.as_deref(),
                                &format!("v{i}"),
                                &format!("x{i}"),
                            );
                        }));
                        if put.is_err() {
                            failures.push(format!("put {i}"));
                        }
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(failures, Vec::<String>::new());
    let store = &handles[0];
    assert_eq!(
        store.session("langgraph:t").unwrap().message_count,
        STEPS as u64
    );
    let expected: Vec<_> = (0..STEPS)
        .rev()
        .map(|i| row(&format!("{i:03}"), &format!("x{i}"), &[]))
        .collect();
    assert_eq!(listed(store, "t"), expected);
}
