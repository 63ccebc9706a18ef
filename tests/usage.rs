//! Usage recorded against a message: kept by every history that holds the message, gone with
//! the message's row, never changing the history or its version.

mod common;

use std::time::Duration;

use common::temp_db;
use serde_json::json;
use sessiondb::{Error, ExistingFile, NewMessage, RecordedUsage, Store};

fn usage(input: u64, output: u64) -> RecordedUsage {
    RecordedUsage {
        requests: 1,
        input_tokens: input,
        output_tokens: output,
        total_tokens: input + output,
        details: None,
    }
}

fn seeded(store: &Store, id: &str, n: usize) {
    let messages: Vec<NewMessage> = (0..n).map(|i| NewMessage::user(format!("m{i}"))).collect();
    store.add_messages(id, &messages).unwrap();
}

/// (index, input tokens) of each record of the current history, or of `branch`.
fn recorded(store: &Store, branch: Option<&str>) -> Vec<(u64, u64)> {
    store
        .recorded_usage("s", branch)
        .unwrap()
        .iter()
        .map(|r| (r.index, r.usage.input_tokens))
        .collect()
}

#[test]
fn a_record_reads_back_whole_against_its_message_and_a_second_one_replaces_it() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", 4);
    let version = store.version("s").unwrap();
    let detailed = RecordedUsage {
        requests: 2,
        input_tokens: 75,
        output_tokens: 45,
        total_tokens: 120,
        details: Some(
            json!({"input_tokens_details": {"cached_tokens": 20},
                   "output_tokens_details": {"reasoning_tokens": 15}})
            .as_object()
            .unwrap()
            .clone(),
        ),
    };
    store.record_usage("s", 1, &usage(50, 30)).unwrap();
    store.record_usage("s", 3, &detailed).unwrap();
    let records = Store::open(&path)
        .unwrap()
        .recorded_usage("s", None)
        .unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!((records[0].index, &records[0].usage), (1, &usage(50, 30)));
    assert_eq!((records[1].index, &records[1].usage), (3, &detailed));
    store.record_usage("s", 1, &usage(7, 8)).unwrap();
    assert_eq!(recorded(&store, None), [(1, 7), (3, 75)]);
    // The history did not change.
    assert_eq!(store.version("s").unwrap(), version);
}

#[test]
fn records_follow_their_messages_into_forks_and_branches() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", 4);
    store.record_usage("s", 0, &usage(10, 1)).unwrap();
    store.record_usage("s", 2, &usage(30, 3)).unwrap();
    store.create_branch("s", "early", Some(1)).unwrap();
    assert_eq!(recorded(&store, Some("early")), [(0, 10)]);
    assert_eq!(recorded(&store, Some("main")), [(0, 10), (2, 30)]);
    let fork = store.fork_session("s", Some(2), None).unwrap();
    let forked: Vec<u64> = store
        .recorded_usage(&fork.id, None)
        .unwrap()
        .iter()
        .map(|r| r.index)
        .collect();
    assert_eq!(forked, [0, 2]);
    // A record made on the fork stays the fork's.
    store.add_user_message(&fork.id, "f3").unwrap();
    store.record_usage(&fork.id, 3, &usage(99, 9)).unwrap();
    assert_eq!(recorded(&store, None), [(0, 10), (2, 30)]);
}

#[test]
fn a_popped_message_takes_its_record_out_of_the_current_history_only() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", 3);
    store.record_usage("s", 2, &usage(30, 3)).unwrap();
    store.record_usage("s", 1, &usage(20, 2)).unwrap();
    store.pop_message("s").unwrap();
    assert_eq!(recorded(&store, None), [(1, 20)]);
    // The superseded branch keeps the message and its record.
    let old = store
        .branches("s")
        .unwrap()
        .into_iter()
        .find(|b| b.name.starts_with("main@"))
        .unwrap();
    assert_eq!(recorded(&store, Some(&old.name)), [(1, 20), (2, 30)]);
    store.clear("s").unwrap();
    assert!(recorded(&store, None).is_empty());
}

#[test]
fn a_record_goes_with_its_row_so_a_regrown_branch_never_finds_it() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", 3);
    store.record_usage("s", 2, &usage(30, 3)).unwrap();
    // Main leaves the head and is superseded; prune trims it to the one row `side` needs.
    store.create_branch("s", "side", Some(0)).unwrap();
    store.switch_branch("s", "side").unwrap();
    let old = store.delete_branch("s", "main").unwrap();
    store.prune(Duration::ZERO, false).unwrap();
    // Back as head, the same branch grows over the trimmed seqs with other messages.
    store.switch_branch("s", &old.name).unwrap();
    store.add_user_message("s", "n1").unwrap();
    store.add_user_message("s", "n2").unwrap();
    assert_eq!(store.chat_history("s", None).unwrap().len(), 3);
    assert!(recorded(&store, None).is_empty());
}

#[test]
fn deleting_or_purging_a_session_deletes_its_records() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for id in ["s", "t"] {
        seeded(&store, id, 2);
        store.record_usage(id, 1, &usage(5, 5)).unwrap();
    }
    store.delete_session("s").unwrap();
    seeded(&store, "s", 2);
    assert!(recorded(&store, None).is_empty());
    store
        .purge(&sessiondb::PurgeRequest {
            sessions: vec!["t".into()],
            user_id: None,
            with_forks: false,
        })
        .unwrap();
    seeded(&store, "t", 2);
    assert!(store.recorded_usage("t", None).unwrap().is_empty());
}

#[test]
fn a_fork_kept_by_a_purge_keeps_the_records_of_what_it_inherited() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "p", 3);
    store.record_usage("p", 0, &usage(10, 1)).unwrap();
    store.record_usage("p", 2, &usage(30, 3)).unwrap();
    let fork = store.fork_session("p", Some(1), None).unwrap();
    store.add_user_message(&fork.id, "own").unwrap();
    store.record_usage(&fork.id, 2, &usage(7, 7)).unwrap();
    let read = |store: &Store| -> Vec<(u64, u64)> {
        store
            .recorded_usage(&fork.id, None)
            .unwrap()
            .iter()
            .map(|r| (r.index, r.usage.input_tokens))
            .collect()
    };
    assert_eq!(read(&store), [(0, 10), (2, 7)]);
    let report = store.purge_session("p").unwrap();
    assert_eq!(report.forks_kept, vec![fork.id.clone()]);
    assert_eq!(read(&store), [(0, 10), (2, 7)]);
}

#[test]
fn backup_and_restore_keep_records() {
    let (dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", 3);
    store.record_usage("s", 2, &usage(30, 3)).unwrap();
    let copy = dir.path().join("copy.db");
    store.backup(&copy, ExistingFile::Refuse).unwrap();
    assert_eq!(recorded(&Store::open(&copy).unwrap(), None), [(2, 30)]);
    let (_other_dir, other_path) = temp_db();
    let other = Store::open(&other_path).unwrap();
    other.restore(&copy).unwrap();
    assert_eq!(recorded(&other, None), [(2, 30)]);
}

#[test]
fn bad_records_are_refused_and_nothing_is_written() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    assert!(matches!(
        store.record_usage("nobody", 0, &usage(1, 1)),
        Err(Error::NotFound { .. })
    ));
    seeded(&store, "s", 2);
    assert!(
        matches!(store.record_usage("s", 2, &usage(1, 1)), Err(Error::InvalidInput(what)) if what.contains("index 2"))
    );
    assert!(matches!(
        store.record_usage("s", u64::MAX, &usage(1, 1)),
        Err(Error::InvalidInput(_))
    ));
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({ "d": deep });
    }
    let nested = RecordedUsage {
        details: Some(deep.as_object().unwrap().clone()),
        ..usage(1, 1)
    };
    assert!(matches!(
        store.record_usage("s", 0, &nested),
        Err(Error::InvalidInput(_))
    ));
    assert!(recorded(&store, None).is_empty());
    assert!(matches!(
        store.recorded_usage("s", Some("nope")),
        Err(Error::NotFound { .. })
    ));
}
