//! Forks, branches, snapshots, reverts and prune: nothing copied, nothing lost.

mod common;

use std::time::Duration;

use common::temp_db;
use sessiondb::{Error, NewMessage, NewSession, SnapshotId, Store};

fn contents(store: &Store, id: &str) -> Vec<String> {
    store
        .chat_history(id, None)
        .unwrap()
        .iter()
        .map(|m| m.content().to_string())
        .collect()
}

fn seeded(store: &Store, id: &str, items: &[&str]) {
    for item in items {
        store.add_user_message(id, item).unwrap();
    }
}

fn count(path: &std::path::Path, sql: &str) -> i64 {
    common::db_i64(path, sql)
}

#[test]
fn fork_session_shares_the_prefix_without_copying_rows() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .create_session(NewSession {
            id: Some("src".into()),
            title: Some("Plan".into()),
            agent_name: Some("planner".into()),
            user_id: Some("alice".into()),
            metadata: serde_json::json!({"k": 1}).as_object().unwrap().clone(),
            ..NewSession::default()
        })
        .unwrap();
    store
        .add_message("src", NewMessage::user("a").with_usage(5, 0, None))
        .unwrap();
    store
        .add_message(
            "src",
            NewMessage::assistant("b").with_usage(0, 7, Some(0.5)),
        )
        .unwrap();
    seeded(&store, "src", &["c", "d"]);
    let rows = count(&path, "SELECT count(*) FROM messages");

    let fork = store.fork_session("src", Some(1), None).unwrap();
    assert_eq!(count(&path, "SELECT count(*) FROM messages"), rows);
    assert_eq!(contents(&store, &fork.id), ["a", "b"]);
    assert_eq!(fork.title.as_deref(), Some("Fork of Plan"));
    assert_eq!(fork.parent_session.as_deref(), Some("src"));
    assert_eq!(fork.agent_name.as_deref(), Some("planner"));
    assert_eq!(fork.user_id.as_deref(), Some("alice"));
    assert_eq!(
        fork.metadata,
        serde_json::json!({"k": 1}).as_object().unwrap().clone()
    );
    assert_eq!(fork.message_count, 2);
    assert_eq!(
        (
            fork.usage.input_tokens,
            fork.usage.output_tokens,
            fork.usage.cost
        ),
        (5, 7, 0.5)
    );

    store.add_user_message(&fork.id, "fork only").unwrap();
    store.add_user_message("src", "source only").unwrap();
    assert_eq!(contents(&store, &fork.id), ["a", "b", "fork only"]);
    assert_eq!(contents(&store, "src"), ["a", "b", "c", "d", "source only"]);

    let whole = store.fork_session("src", None, Some("Everything")).unwrap();
    assert_eq!(whole.title.as_deref(), Some("Everything"));
    assert_eq!(contents(&store, &whole.id), contents(&store, "src"));
}

#[test]
fn forking_an_unknown_session_or_past_the_end_creates_nothing() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", &["a", "b"]);
    let err = store.fork_session("ghost", None, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: "session",
                ..
            }
        ),
        "{err:?}"
    );
    let err = store.fork_session("s", Some(2), None).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("index 2")),
        "{err:?}"
    );
    assert_eq!(count(&path, "SELECT count(*) FROM sessions"), 1);
    assert_eq!(count(&path, "SELECT count(*) FROM branches"), 1);
}

#[test]
fn session_tree_shows_forks_of_forks_with_counts() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "root", &["a", "b", "c"]);
    let f1 = store.fork_session("root", Some(0), Some("one")).unwrap();
    let f2 = store.fork_session("root", Some(2), Some("two")).unwrap();
    let f11 = store.fork_session(&f1.id, None, Some("one-one")).unwrap();
    let tree = store.session_tree("root").unwrap();
    assert_eq!(tree.id, "root");
    assert_eq!(tree.message_count, 3);
    let kids: Vec<(&str, u64)> = tree
        .children
        .iter()
        .map(|c| (c.id.as_str(), c.message_count))
        .collect();
    assert_eq!(kids, [(f1.id.as_str(), 1), (f2.id.as_str(), 3)]);
    assert_eq!(tree.children[0].children.len(), 1);
    assert_eq!(tree.children[0].children[0].id, f11.id);
    assert_eq!(
        tree.children[0].children[0].title.as_deref(),
        Some("one-one")
    );
    assert_eq!(
        store.parent_session(&f11.id).unwrap().as_deref(),
        Some(f1.id.as_str())
    );
    let children: Vec<String> = store
        .child_sessions("root")
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(children, [f1.id, f2.id]);
}

#[test]
fn branches_can_be_created_switched_renamed_and_deleted() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", &["a", "b", "c"]);
    let alt = store.create_branch("s", "alt", Some(0)).unwrap();
    assert_eq!((alt.length, alt.is_head), (1, false));
    assert_eq!(alt.fork_point.as_ref().unwrap().at_index, 0);
    assert_eq!(alt.fork_point.as_ref().unwrap().branch, "main");
    assert_eq!(contents(&store, "s"), ["a", "b", "c"]);

    let session = store.switch_branch("s", "alt").unwrap();
    assert_eq!(
        (session.head_branch.as_str(), session.message_count),
        ("alt", 1)
    );
    store.add_user_message("s", "x").unwrap();
    assert_eq!(contents(&store, "s"), ["a", "x"]);

    store.switch_branch("s", "main").unwrap();
    assert_eq!(contents(&store, "s"), ["a", "b", "c"]);
    let names: Vec<(String, u64, bool)> = store
        .branches("s")
        .unwrap()
        .into_iter()
        .map(|b| (b.name, b.length, b.is_head))
        .collect();
    assert_eq!(names, [("main".into(), 3, true), ("alt".into(), 2, false)]);

    store.rename_branch("s", "alt", "experiment").unwrap();
    store.switch_branch("s", "experiment").unwrap();
    assert_eq!(contents(&store, "s"), ["a", "x"]);
    let err = store.delete_branch("s", "experiment").unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("head")),
        "{err:?}"
    );
    store.switch_branch("s", "main").unwrap();
    store.delete_branch("s", "experiment").unwrap();
    let live: Vec<String> = store
        .branches("s")
        .unwrap()
        .into_iter()
        .filter(|b| b.superseded_at.is_none())
        .map(|b| b.name)
        .collect();
    assert_eq!(live, ["main"]);
    assert!(matches!(
        store.switch_branch("s", "experiment"),
        Err(Error::NotFound { kind: "branch", .. })
    ));
}

#[test]
fn branch_names_are_validated_and_unique_per_session() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", &["a"]);
    seeded(&store, "t", &["a"]);
    store.create_branch("s", "alt", None).unwrap();
    store.create_branch("t", "alt", None).unwrap();
    for (name, expected) in [
        ("alt", "already has a branch"),
        ("main", "already has a branch"),
        ("", "is empty"),
        ("a@b", "reserved"),
        ("tab\there", "control character"),
    ] {
        match store.create_branch("s", name, None) {
            Err(Error::InvalidInput(m)) => assert!(m.contains(expected), "{name:?}: {m}"),
            other => panic!("{name:?}: expected InvalidInput, got {other:?}"),
        }
    }
    assert!(matches!(
        store.rename_branch("s", "alt", "main"),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        store.create_branch("s", "late", Some(1)),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(store.branches("s").unwrap().len(), 2);
}

#[test]
fn snapshots_pin_a_history_and_restore_it_as_a_new_head() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", &["a", "b"]);
    let meta = serde_json::json!({"reason": "before tool"})
        .as_object()
        .unwrap()
        .clone();
    let snap = store
        .create_snapshot("s", Some("safe"), Some(meta.clone()))
        .unwrap();
    assert_eq!(
        (snap.label.as_deref(), snap.length, snap.metadata.clone()),
        (Some("safe"), 2, meta)
    );
    seeded(&store, "s", &["risky", "worse"]);
    let rows = count(&path, "SELECT count(*) FROM messages");

    let session = store.restore_snapshot("s", snap.id).unwrap();
    assert_eq!(session.message_count, 2);
    assert_eq!(contents(&store, "s"), ["a", "b"]);
    assert_eq!(count(&path, "SELECT count(*) FROM messages"), rows);

    // The restore itself can be undone: the replaced head is a superseded branch.
    let previous = store
        .branches("s")
        .unwrap()
        .into_iter()
        .find(|b| b.superseded_at.is_some())
        .unwrap();
    assert_eq!(previous.length, 4);
    store.switch_branch("s", &previous.name).unwrap();
    assert_eq!(contents(&store, "s"), ["a", "b", "risky", "worse"]);

    let listed = store.snapshots("s").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, snap.id);
    store.delete_snapshot("s", snap.id).unwrap();
    assert!(store.snapshots("s").unwrap().is_empty());
    assert!(matches!(
        store.restore_snapshot("s", snap.id),
        Err(Error::NotFound {
            kind: "snapshot",
            ..
        })
    ));
    assert!(matches!(
        store.delete_snapshot("s", SnapshotId(999)),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn a_snapshot_of_another_session_cannot_be_restored_here() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", &["a"]);
    seeded(&store, "t", &["b"]);
    let snap = store.create_snapshot("t", None, None).unwrap();
    assert!(matches!(
        store.restore_snapshot("s", snap.id),
        Err(Error::NotFound {
            kind: "snapshot",
            ..
        })
    ));
    assert_eq!(contents(&store, "s"), ["a"]);
}

#[test]
fn revert_to_message_keeps_a_prefix_and_can_be_undone() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .add_message("s", NewMessage::user("a").with_usage(1, 0, None))
        .unwrap();
    store
        .add_message("s", NewMessage::assistant("b").with_usage(0, 2, None))
        .unwrap();
    store
        .add_message("s", NewMessage::user("c").with_usage(4, 0, None))
        .unwrap();
    let session = store.revert_to_message("s", 1).unwrap();
    assert_eq!(session.message_count, 2);
    assert_eq!(
        (session.usage.input_tokens, session.usage.output_tokens),
        (1, 2)
    );
    assert_eq!(contents(&store, "s"), ["a", "b"]);
    store.add_user_message("s", "c2").unwrap();
    assert_eq!(contents(&store, "s"), ["a", "b", "c2"]);
    let err = store.revert_to_message("s", 3).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));

    let old = store
        .branches("s")
        .unwrap()
        .into_iter()
        .find(|b| b.superseded_at.is_some())
        .unwrap();
    assert!(old.name.starts_with("main@"), "{}", old.name);
    store.switch_branch("s", &old.name).unwrap();
    assert_eq!(contents(&store, "s"), ["a", "b", "c"]);
    assert_eq!(store.session("s").unwrap().usage.input_tokens, 5);
}

#[test]
fn clear_and_set_chat_history_keep_the_old_history_as_a_branch_to_switch_back_to() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", &["a", "b"]);
    store
        .set_chat_history("s", &[NewMessage::user("z")])
        .unwrap();
    store.clear("s").unwrap();
    let previous: Vec<(u64, bool)> = store
        .branches("s")
        .unwrap()
        .into_iter()
        .map(|b| (b.length, b.superseded_at.is_some()))
        .collect();
    assert_eq!(previous, [(2, true), (1, true), (0, false)]);
    let first = store.branches("s").unwrap().remove(0);
    store.switch_branch("s", &first.name).unwrap();
    assert_eq!(contents(&store, "s"), ["a", "b"]);
    // Replacing a revived head keeps names unique.
    store
        .set_chat_history("s", &[NewMessage::user("again")])
        .unwrap();
    assert_eq!(contents(&store, "s"), ["again"]);
    let names: std::collections::HashSet<String> = store
        .branches("s")
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names.len(), 4);
}

#[test]
fn deleting_a_session_keeps_its_forks_complete() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "src", &["a", "b", "c"]);
    let fork = store.fork_session("src", Some(1), None).unwrap();
    store.add_user_message(&fork.id, "f").unwrap();
    let fork_of_fork = store.fork_session(&fork.id, None, None).unwrap();
    store.delete_session("src").unwrap();
    assert_eq!(contents(&store, &fork.id), ["a", "b", "f"]);
    assert_eq!(contents(&store, &fork_of_fork.id), ["a", "b", "f"]);
    assert_eq!(store.session(&fork.id).unwrap().parent_session, None);
    assert!(!store.session_exists("src").unwrap());
    // Message "c" belonged only to the deleted session's history; "a" and "b" stay for the fork.
    assert_eq!(count(&path, "SELECT count(*) FROM messages"), 3);

    store.delete_session(&fork.id).unwrap();
    assert_eq!(contents(&store, &fork_of_fork.id), ["a", "b", "f"]);
    store.delete_session(&fork_of_fork.id).unwrap();
    store.prune(Duration::ZERO, false).unwrap();
    assert_eq!(count(&path, "SELECT count(*) FROM messages"), 0);
    assert_eq!(count(&path, "SELECT count(*) FROM branches"), 0);
}

#[test]
fn prune_removes_only_unreachable_history_older_than_the_window() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", &["a", "b", "c"]);
    let snap = store.create_snapshot("s", Some("pin"), None).unwrap();
    store
        .set_chat_history("s", &[NewMessage::user("a"), NewMessage::user("x")])
        .unwrap();
    store
        .set_chat_history("s", &[NewMessage::user("y")])
        .unwrap();
    store.create_branch("s", "keep", Some(0)).unwrap();
    let fork = store.fork_session("s", None, None).unwrap();
    let before_s = contents(&store, "s");
    let before_fork = contents(&store, &fork.id);

    // Inside the window nothing goes.
    assert_eq!(
        store
            .prune(Duration::from_secs(3600), false)
            .unwrap()
            .branches,
        0
    );

    let dry = store.prune(Duration::ZERO, true).unwrap();
    assert_eq!((dry.branches, dry.messages, dry.bytes), (1, 1, 1));
    assert_eq!(count(&path, "SELECT count(*) FROM messages"), 5);
    let report = store.prune(Duration::ZERO, false).unwrap();
    assert_eq!(report, dry);
    assert_eq!(count(&path, "SELECT count(*) FROM messages"), 4);

    assert_eq!(contents(&store, "s"), before_s);
    assert_eq!(contents(&store, &fork.id), before_fork);
    store.restore_snapshot("s", snap.id).unwrap();
    assert_eq!(contents(&store, "s"), ["a", "b", "c"]);
    store.switch_branch("s", "keep").unwrap();
    assert_eq!(contents(&store, "s"), ["y"]);
}

#[test]
fn maintain_checkpoints_and_vacuums() {
    if common::sqlite_only("maintain checkpoints and vacuums") {
        return;
    }
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for i in 0..200 {
        store.add_user_message("s", &"x".repeat(1000 + i)).unwrap();
    }
    store.delete_session("s").unwrap();
    let report = store.maintain(true).unwrap();
    assert!(!report.wal_busy);
    assert!(report.bytes_after < report.bytes_before, "{report:?}");
    let wal = std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0);
}
