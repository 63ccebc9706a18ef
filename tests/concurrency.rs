//! Many real processes on one file: nothing lost, nothing duplicated, nothing half-written.

mod common;

use std::collections::HashSet;

use common::{release, results, spawn_worker, temp_db, wait_for_release, worker_env};
use sessiondb::{NewMessage, Store};

const WRITERS: usize = 4;
const APPENDS_PER_WRITER: usize = 100;

/// Child process: appends `w{id}-{i}` for i in 0..APPENDS_PER_WRITER to session "shared".
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_append() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    let id = worker_env("SESSIONDB_TEST_NAME");
    wait_for_release();
    for i in 0..APPENDS_PER_WRITER {
        store
            .add_message("shared", NewMessage::user(format!("{id}-{i}")))
            .unwrap();
    }
    println!("RESULT done {id}");
}

#[test]
fn four_processes_appending_to_one_session_store_every_message_exactly_once_in_order() {
    let (_dir, path) = temp_db();
    Store::open(&path).unwrap();
    let mut children: Vec<_> = (0..WRITERS)
        .map(|w| {
            spawn_worker(
                "worker_append",
                &[
                    ("SESSIONDB_TEST_DB", path.display().to_string()),
                    ("SESSIONDB_TEST_NAME", format!("w{w}")),
                ],
            )
        })
        .collect();
    release(&mut children);
    for (w, child) in children.into_iter().enumerate() {
        assert_eq!(results(child), [format!("done w{w}")]);
    }

    let store = Store::open(&path).unwrap();
    let history = store.chat_history("shared", None).unwrap();
    assert_eq!(history.len(), WRITERS * APPENDS_PER_WRITER);
    let indexes: Vec<u64> = history.iter().map(|m| m.index).collect();
    assert_eq!(indexes, (0..history.len() as u64).collect::<Vec<_>>());
    let unique: HashSet<&str> = history.iter().map(|m| m.content()).collect();
    assert_eq!(unique.len(), history.len(), "a message was stored twice");
    for w in 0..WRITERS {
        let own: Vec<usize> = history
            .iter()
            .filter_map(|m| m.content().strip_prefix(&format!("w{w}-")))
            .map(|i| i.parse().unwrap())
            .collect();
        assert_eq!(
            own,
            (0..APPENDS_PER_WRITER).collect::<Vec<_>>(),
            "writer w{w}"
        );
    }
    assert_eq!(
        store.session("shared").unwrap().message_count,
        (WRITERS * APPENDS_PER_WRITER) as u64
    );
}

fn version_a() -> Vec<NewMessage> {
    (0..200)
        .map(|i| NewMessage::user(format!("a-{i}")))
        .collect()
}

/// Shares its first 50 messages with `version_a`, then differs and is shorter.
fn version_b() -> Vec<NewMessage> {
    (0..150)
        .map(|i| {
            if i < 50 {
                NewMessage::user(format!("a-{i}"))
            } else {
                NewMessage::assistant(format!("b-{i}"))
            }
        })
        .collect()
}

const REPLACEMENTS: usize = 60;
const READS: usize = 300;

/// Child process: alternates the history of "swap" between version A and version B.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_replace() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    wait_for_release();
    let (a, b) = (version_a(), version_b());
    for round in 0..REPLACEMENTS {
        store
            .set_chat_history("swap", if round % 2 == 0 { &b } else { &a })
            .unwrap();
    }
    println!("RESULT replaced {REPLACEMENTS}");
}

/// Child process: reads "swap" repeatedly and reports how many reads saw A and B; any other
/// history fails the worker.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_read() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    wait_for_release();
    let (a, b) = (version_a(), version_b());
    let (mut saw_a, mut saw_b) = (0, 0);
    for read in 0..READS {
        let history: Vec<NewMessage> = store
            .chat_history("swap", None)
            .unwrap()
            .iter()
            .cloned()
            .map(Into::into)
            .collect();
        if history == a {
            saw_a += 1;
        } else if history == b {
            saw_b += 1;
        } else {
            panic!(
                "read {read} saw a history of {} messages that no writer committed",
                history.len()
            );
        }
    }
    println!("RESULT {saw_a} {saw_b}");
}

#[test]
fn set_chat_history_is_atomic_under_concurrent_readers_in_other_processes() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("swap", "seed").unwrap();
    store.set_chat_history("swap", &version_a()).unwrap();
    let env = [("SESSIONDB_TEST_DB", path.display().to_string())];
    let mut children = vec![
        spawn_worker("worker_replace", &env),
        spawn_worker("worker_read", &env),
        spawn_worker("worker_read", &env),
    ];
    release(&mut children);
    let mut children = children.into_iter();
    assert_eq!(
        results(children.next().unwrap()),
        [format!("replaced {REPLACEMENTS}")]
    );
    for reader in children {
        let line = results(reader).pop().expect("reader result");
        let counts: Vec<usize> = line.split(' ').map(|n| n.parse().unwrap()).collect();
        assert_eq!(counts.iter().sum::<usize>(), READS);
    }
    let final_history: Vec<NewMessage> = store
        .chat_history("swap", None)
        .unwrap()
        .iter()
        .cloned()
        .map(Into::into)
        .collect();
    assert_eq!(final_history, version_a());
}

#[test]
fn a_write_lock_held_past_the_busy_timeout_gives_busy_naming_the_timeout() {
    // PostgreSQL's row locks: tests/postgres.rs.
    if common::sqlite_only("the SQLite write lock") {
        return;
    }
    let (_dir, path) = temp_db();
    let timeout = std::time::Duration::from_millis(200);
    let store = Store::builder(&path).busy_timeout(timeout).open().unwrap();
    store.add_user_message("s", "a").unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let err = store.add_user_message("s", "b").unwrap_err();
    match &err {
        sessiondb::Error::Busy { timeout: t } => assert_eq!(*t, timeout),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(err.to_string().contains("200ms"), "{err}");
    // Readers are not blocked by the writer (WAL).
    let history = store.chat_history_uncached("s", None).unwrap();
    assert_eq!(history.len(), 1);

    other.execute_batch("ROLLBACK").unwrap();
    store.add_user_message("s", "c").unwrap();
    let contents: Vec<String> = store
        .chat_history("s", None)
        .unwrap()
        .iter()
        .map(|m| m.content().to_string())
        .collect();
    assert_eq!(contents, ["a", "c"]);
}

const CAMPAIGN_PROCESSES: usize = 8;
const CAMPAIGN_SESSIONS: [&str; 3] = ["k0", "k1", "k2"];

fn fnv(contents: &[String]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in contents
        .iter()
        .flat_map(|c| c.as_bytes().iter().chain(b"\x1f"))
    {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
    }
    hash
}

/// Child process: for a bounded time, mixes reads, appends, optimistic replaces and forks on
/// the campaign sessions; reports what it added, forked and saw.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_campaign() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    let me = worker_env("SESSIONDB_TEST_NAME");
    let mut rng: u64 = 0x9e37_79b9 ^ me.bytes().fold(7, |h, b| h * 31 + u64::from(b));
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    wait_for_release();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut i = 0;
    while i < 400 && std::time::Instant::now() < deadline {
        let session = CAMPAIGN_SESSIONS[next(3) as usize];
        let content = format!("{me}-{i}");
        match next(10) {
            0..=3 => {
                let history = store.chat_history(session, None).unwrap();
                let contents: Vec<String> =
                    history.iter().map(|m| m.content().to_string()).collect();
                println!(
                    "RESULT SAW {session} {} {} {}",
                    history.version(),
                    contents.len(),
                    fnv(&contents)
                );
            }
            4..=6 => {
                store.add_user_message(session, &content).unwrap();
                println!("RESULT ADDED {session} {content}");
            }
            7 | 8 => loop {
                // Read-modify-write: extend what we read, unless someone wrote in between.
                let history = store.chat_history(session, None).unwrap();
                let mut messages: Vec<NewMessage> =
                    history.iter().cloned().map(Into::into).collect();
                messages.push(NewMessage::user(content.clone()));
                match store.set_chat_history_at_version(session, &messages, history.version()) {
                    Ok(_) => {
                        println!("RESULT ADDED {session} {content}");
                        break;
                    }
                    Err(sessiondb::Error::Conflict { .. }) => continue,
                    Err(sessiondb::Error::NotFound { .. }) => break,
                    Err(e) => panic!("replace failed: {e}"),
                }
            },
            _ => match store.fork_session(session, None, None) {
                Ok(fork) => println!("RESULT FORK {session} {} {}", fork.id, fork.message_count),
                Err(sessiondb::Error::NotFound { .. }) => {}
                Err(e) => panic!("fork failed: {e}"),
            },
        }
        i += 1;
    }
}

#[test]
fn eight_processes_mixing_reads_appends_replaces_and_forks_lose_and_invent_nothing() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for session in CAMPAIGN_SESSIONS {
        store
            .add_user_message(session, &format!("seed-{session}"))
            .unwrap();
    }
    let mut children: Vec<_> = (0..CAMPAIGN_PROCESSES)
        .map(|p| {
            spawn_worker(
                "worker_campaign",
                &[
                    ("SESSIONDB_TEST_DB", path.display().to_string()),
                    ("SESSIONDB_TEST_NAME", format!("p{p}")),
                ],
            )
        })
        .collect();
    release(&mut children);
    let lines: Vec<String> = children.into_iter().flat_map(results).collect();

    let final_history = |session: &str| -> Vec<String> {
        store
            .chat_history_uncached(session, None)
            .unwrap()
            .iter()
            .map(|m| m.content().to_string())
            .collect()
    };
    let finals: std::collections::HashMap<&str, Vec<String>> = CAMPAIGN_SESSIONS
        .iter()
        .map(|s| (*s, final_history(s)))
        .collect();
    let mut added: std::collections::HashMap<&str, Vec<String>> = Default::default();
    let mut seen_versions: Vec<(i64, usize, String)> = Vec::new();
    let (mut saw, mut forks) = (0, 0);
    for line in &lines {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["ADDED", session, content] => added
                .entry(CAMPAIGN_SESSIONS.iter().find(|s| *s == session).unwrap())
                .or_default()
                .push(content.to_string()),
            ["SAW", session, version, len, hash] => {
                let len: usize = len.parse().unwrap();
                let prefix = &finals[session][..len];
                assert_eq!(
                    fnv(prefix).to_string(),
                    *hash,
                    "{session}: a reader saw a history no writer committed"
                );
                seen_versions.push((version.parse().unwrap(), len, session.to_string()));
                saw += 1;
            }
            ["FORK", session, id, len] => {
                let len: usize = len.parse().unwrap();
                assert_eq!(
                    final_history(id),
                    finals[session][..len],
                    "fork {id} of {session}"
                );
                forks += 1;
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    for session in CAMPAIGN_SESSIONS {
        let history = &finals[session];
        let mut expected: Vec<&String> = added
            .get(session)
            .map_or(Vec::new(), |a| a.iter().collect());
        let mut stored: Vec<&String> = history[1..].iter().collect();
        expected.sort();
        stored.sort();
        assert_eq!(
            stored, expected,
            "{session}: lost, duplicated or invented messages"
        );
        // Each process's own messages keep their order.
        for p in 0..CAMPAIGN_PROCESSES {
            let own: Vec<usize> = history
                .iter()
                .filter_map(|c| c.strip_prefix(&format!("p{p}-")))
                .map(|i| i.parse().unwrap())
                .collect();
            assert!(
                own.windows(2).all(|w| w[0] < w[1]),
                "{session}: p{p} out of order: {own:?}"
            );
        }
    }
    // A higher version never shows a shorter history of the same session: versions only grow.
    seen_versions.sort();
    for pair in seen_versions.windows(2) {
        let ((v1, l1, s1), (v2, l2, s2)) = (&pair[0], &pair[1]);
        if s1 == s2 {
            assert!(
                l1 <= l2,
                "{s1}: version {v1} had {l1} messages but later version {v2} had {l2}"
            );
            if v1 == v2 {
                assert_eq!(l1, l2, "{s1}: version {v1} seen with two lengths");
            }
        }
    }
    assert!(
        saw > 0 && forks > 0,
        "the campaign did too little: {saw} reads, {forks} forks"
    );
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// Eight stores (eight hosts, on PostgreSQL) each merging ten keys into one session's
/// metadata at once: every merge reads the row it changes under the session's write lock, so
/// no merge overwrites another's keys.
#[test]
fn concurrent_metadata_merges_from_eight_stores_keep_every_key() {
    let (_dir, path) = temp_db();
    let first = Store::open(&path).unwrap();
    first.add_user_message("meta", "hi").unwrap();
    let before = first.session("meta").unwrap().version;
    let barrier = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (path, barrier) = (&path, &barrier);
            scope.spawn(move || {
                let store = Store::open(path).unwrap();
                barrier.wait();
                for k in 0..10 {
                    let mut patch = sessiondb::Metadata::new();
                    patch.insert(format!("t{t}k{k}"), serde_json::json!(t * 10 + k));
                    store.update_metadata("meta", patch).unwrap();
                }
            });
        }
    });
    let session = first.session("meta").unwrap();
    let mut keys: Vec<&String> = session.metadata.keys().collect();
    keys.sort();
    let mut expected: Vec<String> = (0..8)
        .flat_map(|t| (0..10).map(move |k| format!("t{t}k{k}")))
        .collect();
    expected.sort();
    assert_eq!(keys, expected.iter().collect::<Vec<_>>());
    assert_eq!(session.metadata["t7k9"], serde_json::json!(79));
    assert_eq!(session.version, before + 80);
}

/// A session deleted while other stores fork its forks: the delete clears the forks' parent
/// while the forks are being read and copied from. Every operation succeeds (no deadlock
/// surfaces as `Busy`), every fork keeps the history it inherited, and the check is clean.
#[test]
fn deleting_a_session_while_its_forks_are_forked_again_succeeds_and_orphans_nothing() {
    for round in 0..3 {
        let (_dir, path) = temp_db();
        let store = Store::open(&path).unwrap();
        for i in 0..5 {
            store
                .add_user_message("root", &format!("r{round}-{i}"))
                .unwrap();
        }
        let forks: Vec<String> = (0..3)
            .map(|_| store.fork_session("root", Some(2), None).unwrap().id)
            .collect();
        let barrier = std::sync::Barrier::new(forks.len() + 1);
        let grandchildren: Vec<Vec<String>> = std::thread::scope(|scope| {
            let forking: Vec<_> = forks
                .iter()
                .map(|fork| {
                    let (path, barrier) = (&path, &barrier);
                    scope.spawn(move || {
                        let store = Store::open(path).unwrap();
                        barrier.wait();
                        (0..4)
                            .map(|_| store.fork_session(fork, None, None).unwrap().id)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let deleter = Store::open(&path).unwrap();
            barrier.wait();
            deleter.delete_session("root").unwrap();
            forking.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let inherited: Vec<String> = (0..3).map(|i| format!("r{round}-{i}")).collect();
        let contents = |id: &str| -> Vec<String> {
            store
                .chat_history_uncached(id, None)
                .unwrap()
                .iter()
                .map(|m| m.content().to_string())
                .collect()
        };
        assert!(matches!(
            store.session("root"),
            Err(sessiondb::Error::NotFound { .. })
        ));
        for (fork, children) in forks.iter().zip(&grandchildren) {
            assert_eq!(contents(fork), inherited, "fork {fork}");
            assert_eq!(store.session(fork).unwrap().parent_session, None);
            for child in children {
                assert_eq!(contents(child), inherited, "fork of {fork}");
                assert_eq!(
                    store.session(child).unwrap().parent_session.as_deref(),
                    Some(fork.as_str())
                );
            }
        }
        let report = store.check().unwrap();
        assert!(report.is_ok(), "{report:?}");
    }
}
