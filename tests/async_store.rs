//! `AsyncStore`: the same operations and errors as `Store`, off the runtime's worker threads,
//! and `watch` as a channel of changes.
#![cfg(feature = "tokio")]

mod common;

use std::time::Duration;

use common::temp_db;
use sessiondb::{
    AddOptions, AsyncStore, Change, ChangeReceiver, Error, HistoryUpdate, NewMessage, StreamEnd,
    StreamUpdate, WatchCursor,
};

const TASKS: usize = 32;
const APPENDS: usize = 10;
/// Never reached when the change comes: the tests assert it comes.
const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_appending_on_one_store_store_every_message_once() {
    let (_dir, path) = temp_db();
    let store = AsyncStore::open(&path).await.unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..APPENDS {
                    let session = format!("s{}", t % 4);
                    store
                        .add_message(&session, NewMessage::user(format!("t{t}-{i}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut total = 0;
    for s in 0..4 {
        let history = store.chat_history(&format!("s{s}"), None).await.unwrap();
        total += history.len();
        for t in (s..TASKS).step_by(4) {
            let own: Vec<&str> = history
                .iter()
                .map(|m| m.content())
                .filter(|c| c.starts_with(&format!("t{t}-")))
                .collect();
            let expected: Vec<String> = (0..APPENDS).map(|i| format!("t{t}-{i}")).collect();
            assert_eq!(own, expected, "task {t} in s{s}");
        }
        assert_eq!(
            store.version(&format!("s{s}")).await.unwrap(),
            history.version()
        );
    }
    assert_eq!(total, TASKS * APPENDS);
}

#[tokio::test]
async fn errors_are_the_stores_errors() {
    let (_dir, path) = temp_db();
    let store = AsyncStore::open(&path).await.unwrap();
    match store.chat_history("missing", None).await {
        Err(Error::NotFound { kind, id }) => {
            assert_eq!((kind, id.as_str()), ("session", "missing"))
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let v = store.add_message("s", NewMessage::user("a")).await.unwrap();
    assert_eq!(v.index, 0);
    let version = store.version("s").await.unwrap();
    match store
        .add_message_at_version("s", NewMessage::user("b"), version - 1)
        .await
    {
        Err(Error::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (version - 1, version)),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let lease = store
        .claim("s", "a", Duration::from_secs(60))
        .await
        .unwrap();
    match store.claim("s", "b", Duration::from_secs(60)).await {
        Err(Error::LeaseHeld { owner, .. }) => assert_eq!(owner, "a"),
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    store
        .add_message_with_lease(&lease, NewMessage::user("leased"))
        .await
        .unwrap();
    assert!(store.release(&lease).await.unwrap());
    assert!(matches!(
        store
            .add_message_with_lease(&lease, NewMessage::user("lost"))
            .await,
        Err(Error::LeaseLost { .. })
    ));
    let contents = store
        .run(|s| {
            Ok(s.chat_history("s", None)?
                .iter()
                .map(|m| m.content().to_string())
                .collect::<Vec<_>>())
        })
        .await
        .unwrap();
    assert_eq!(contents, ["a", "leased"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_one_transaction_each_and_a_retry_writes_nothing() {
    let (_dir, path) = temp_db();
    let store = AsyncStore::open(&path).await.unwrap();
    let batch = |t: usize| {
        vec![
            NewMessage::user(format!("q{t}")).with_key(format!("q{t}")),
            NewMessage::assistant(format!("a{t}")).with_key(format!("a{t}")),
        ]
    };
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move { store.add_messages("s", batch(t)).await.unwrap() })
        })
        .collect();
    for task in tasks {
        let added = task.await.unwrap();
        assert_eq!(added.written, [true, true]);
    }
    // Each question is right before its answer: no batch was split by another.
    let history = store.chat_history("s", None).await.unwrap();
    let contents: Vec<&str> = history.iter().map(|m| m.content()).collect();
    assert_eq!(contents.len(), 16);
    for pair in contents.chunks(2) {
        assert_eq!(pair[0].replace('q', "a"), pair[1]);
    }
    let retry = store.add_messages("s", batch(3)).await.unwrap();
    assert!(retry.already_stored);
    assert_eq!(retry.version, history.version());
    let stale = AddOptions {
        expected_version: Some(history.version() - 1),
        ..AddOptions::default()
    };
    match store.add_messages_with("s", batch(9), stale).await {
        Err(Error::Conflict { actual, .. }) => assert_eq!(actual, history.version()),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.chat_history("s", None).await.unwrap().len(), 16);
}

/// The next change, within the wait.
async fn next(changes: &mut ChangeReceiver) -> Change {
    tokio::time::timeout(WAIT, changes.recv())
        .await
        .expect("a change within the wait")
        .expect("the watch is running")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_changes_written_by_another_store_chunk_by_chunk() {
    let (_dir, path) = temp_db();
    let store = AsyncStore::open(&path).await.unwrap();
    store.add_message("s", NewMessage::user("q")).await.unwrap();
    let history = store.chat_history("s", None).await.unwrap();
    let mut changes = store
        .watch("s", WatchCursor::after(&history, None))
        .await
        .unwrap();
    // A second store on the file: its commits reach the watch only through the file.
    let other = AsyncStore::open(&path).await.unwrap();
    other.start_stream("s", None, None).await.unwrap();
    assert_eq!(next(&mut changes).await.stream, StreamUpdate::Started);
    other.append_stream("s", "an").await.unwrap();
    assert_eq!(
        next(&mut changes).await.stream,
        StreamUpdate::Grew("an".into())
    );
    other.append_stream("s", "swer").await.unwrap();
    assert_eq!(
        next(&mut changes).await.stream,
        StreamUpdate::Grew("swer".into())
    );
    other
        .finish_stream("s", StreamEnd::default())
        .await
        .unwrap();
    let change = next(&mut changes).await;
    assert_eq!(change.stream, StreamUpdate::Ended);
    match &change.history {
        HistoryUpdate::Appended(m) => {
            assert_eq!((m.len(), m[0].index, m[0].content()), (1, 1, "answer"))
        }
        other => panic!("expected the finished reply, got {other:?}"),
    }
    other.delete_session("s").await.unwrap();
    let end = tokio::time::timeout(WAIT, changes.recv()).await.unwrap();
    assert!(matches!(end, Some(Err(Error::NotFound { .. }))), "{end:?}");
    assert!(tokio::time::timeout(WAIT, changes.recv())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_watches_each_see_the_change() {
    let (_dir, path) = temp_db();
    let store = AsyncStore::open(&path).await.unwrap();
    store.add_message("s", NewMessage::user("q")).await.unwrap();
    let history = store.chat_history("s", None).await.unwrap();
    let mut watches = Vec::new();
    for _ in 0..8 {
        watches.push(
            store
                .watch("s", WatchCursor::after(&history, None))
                .await
                .unwrap(),
        );
    }
    store
        .add_message("s", NewMessage::assistant("a"))
        .await
        .unwrap();
    for mut changes in watches {
        let change = tokio::time::timeout(WAIT, changes.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((change.length, change.version), (2, history.version() + 1));
    }
}
