//! Opening files: creation, WAL, migrations under concurrent first opens, and refusing files
//! that are not ours without touching them.

mod common;

use common::{
    file_bytes, file_db, is_root, release, results, spawn_worker, wait_for_release, worker_env,
};
use rusqlite::Connection;
use sessiondb::{Error, NewMessage, Store, APPLICATION_ID, SCHEMA_VERSION};

#[test]
fn open_creates_file_and_missing_parent_directories_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("sessions.db");
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "hi").unwrap();

    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(app, APPLICATION_ID);
    assert_eq!(version, SCHEMA_VERSION);
}

#[cfg(unix)]
#[test]
fn database_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = file_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "hi").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let wal = path.with_extension("db-wal");
    let wal_mode = std::fs::metadata(&wal).unwrap().permissions().mode() & 0o777;
    assert_eq!(wal_mode, 0o600);
}

#[test]
fn reopening_keeps_everything() {
    let (_dir, path) = file_db();
    {
        let store = Store::open(&path).unwrap();
        store.add_user_message("s", "one").unwrap();
        store.add_assistant_message("s", "two").unwrap();
    }
    let store = Store::open(&path).unwrap();
    let history = store.chat_history("s", None).unwrap();
    let contents: Vec<&str> = history.iter().map(|m| m.content()).collect();
    assert_eq!(contents, ["one", "two"]);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
    let (_dir, path) = file_db();
    std::fs::write(
        &path,
        b"{\"sessions\": []} this is a JSON file, not a database",
    )
    .unwrap();
    let before = file_bytes(&path);
    let err = Store::open(&path).unwrap_err();
    match &err {
        Error::NotSessionDb { path: p, reason } => {
            assert_eq!(p, &path);
            assert!(reason.contains("not a SQLite database"), "{reason}");
        }
        other => panic!("expected NotSessionDb, got {other:?}"),
    }
    assert!(err.to_string().contains(path.to_str().unwrap()));
    assert_eq!(file_bytes(&path), before);
    assert!(!path.with_extension("db-wal").exists());
    assert!(!path.with_extension("db-shm").exists());
}

#[test]
fn another_programs_sqlite_file_is_refused_and_left_untouched() {
    let (_dir, path) = file_db();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');")
            .unwrap();
    }
    let before = file_bytes(&path);
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(&err, Error::NotSessionDb { reason, .. } if reason.contains("another program")),
        "{err:?}"
    );
    assert_eq!(file_bytes(&path), before);
    assert!(!path.with_extension("db-wal").exists());
}

#[test]
fn a_file_with_a_foreign_application_id_is_refused() {
    let (_dir, path) = file_db();
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA application_id = 1234;")
        .unwrap();
    let before = file_bytes(&path);
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(&err, Error::NotSessionDb { reason, .. } if reason.contains("0x4d2")),
        "{err:?}"
    );
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn a_newer_schema_is_refused_with_both_versions() {
    let (_dir, path) = file_db();
    Store::open(&path)
        .unwrap()
        .add_user_message("s", "hi")
        .unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {};", SCHEMA_VERSION + 5))
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    match err {
        Error::SchemaTooNew {
            found, supported, ..
        } => assert_eq!((found, supported), (SCHEMA_VERSION + 5, SCHEMA_VERSION)),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn a_read_only_store_reads_and_refuses_every_write() {
    let (_dir, path) = file_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "kept").unwrap();
    let version = store.session("s").unwrap().version;
    drop(store);

    let ro = Store::builder(&path).read_only(true).open().unwrap();
    assert_eq!(ro.chat_history("s", None).unwrap()[0].content(), "kept");
    let err = ro.add_user_message("s", "more").unwrap_err();
    assert!(matches!(err, Error::ReadOnly { .. }), "{err:?}");
    assert!(matches!(ro.clear("s").unwrap_err(), Error::ReadOnly { .. }));
    assert!(matches!(
        ro.delete_session("s").unwrap_err(),
        Error::ReadOnly { .. }
    ));

    let store = Store::open(&path).unwrap();
    assert_eq!(store.session("s").unwrap().version, version);
    assert_eq!(store.chat_history("s", None).unwrap().len(), 1);
}

#[cfg(unix)]
#[test]
fn a_file_without_write_permission_gives_read_only_errors() {
    use std::os::unix::fs::PermissionsExt;
    if is_root() {
        eprintln!("skipped: root ignores file permissions; the read-only store test covers this");
        return;
    }
    let (dir, path) = file_db();
    Store::open(&path)
        .unwrap()
        .add_user_message("s", "kept")
        .unwrap();
    let before = file_bytes(&path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
    let outcome = Store::open(&path).and_then(|s| s.add_user_message("s", "more"));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(
        matches!(outcome, Err(Error::ReadOnly { .. })),
        "{outcome:?}"
    );
    assert_eq!(file_bytes(&path), before);
}

/// Child process: opens the brand-new file and appends one message named after itself.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_open_and_append() {
    let path = worker_env("SESSIONDB_TEST_DB");
    let name = worker_env("SESSIONDB_TEST_NAME");
    wait_for_release();
    let store = Store::open(&path).unwrap();
    store
        .add_message("s", NewMessage::user(name.clone()))
        .unwrap();
    println!("RESULT {name}");
}

#[test]
fn processes_opening_a_brand_new_file_at_once_all_succeed() {
    const ROUNDS: usize = 25;
    const PROCESSES: usize = 4;
    for round in 0..ROUNDS {
        let (_dir, path) = file_db();
        let mut children: Vec<_> = (0..PROCESSES)
            .map(|i| {
                spawn_worker(
                    "worker_open_and_append",
                    &[
                        ("SESSIONDB_TEST_DB", path.display().to_string()),
                        ("SESSIONDB_TEST_NAME", format!("p{i}")),
                    ],
                )
            })
            .collect();
        release(&mut children);
        for (i, child) in children.into_iter().enumerate() {
            assert_eq!(results(child), [format!("p{i}")], "round {round}");
        }
        let store = Store::open(&path).unwrap();
        let mut names: Vec<String> = store
            .chat_history("s", None)
            .unwrap()
            .iter()
            .map(|m| m.content().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["p0", "p1", "p2", "p3"], "round {round}");
    }
}

#[test]
fn a_schema_1_file_is_upgraded_in_place_keeping_its_data() {
    let (_dir, path) = file_db();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../migrations/0001_init.sql"))
            .unwrap();
        conn.execute_batch(&format!(
            "PRAGMA user_version = 1; PRAGMA application_id = {APPLICATION_ID};
             PRAGMA foreign_keys = ON;
             BEGIN;
             INSERT INTO sessions (id, head_branch_id, message_count, version, created_at, updated_at)
                 VALUES ('old', 1, 1, 1, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
             INSERT INTO branches (id, session_id, name, length, created_at)
                 VALUES (1, 'old', 'main', 1, '2026-01-01T00:00:00.000000Z');
             INSERT INTO messages (branch_id, seq, role, content, running_input_tokens,
                                   running_output_tokens, running_cost, created_at)
                 VALUES (1, 1, 'user', 'written by schema 1', 0, 0, 0, '2026-01-01T00:00:00.000000Z');
             UPDATE version_clock SET version = 1;
             COMMIT;"
        ))
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let history = store.chat_history("old", None).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].content(), "written by schema 1");
    // The search index, built by the first search, covers messages written before it.
    let hits = store
        .search("schema", 10, &sessiondb::SearchFilter::default())
        .unwrap();
    assert_eq!((hits.len(), hits[0].session_id.as_str()), (1, "old"));
    // What schema 2 added works on the upgraded file.
    store.start_stream("old", None, None).unwrap();
    store.append_stream("old", "new").unwrap();
    store
        .finish_stream("old", sessiondb::StreamEnd::default())
        .unwrap();
    assert_eq!(store.chat_history("old", None).unwrap()[1].content(), "new");
    assert!(store.session("old").unwrap().version > 1);
}

#[cfg(target_os = "linux")]
#[test]
fn opening_many_stores_does_not_pile_up_threads() {
    let threads = || -> usize {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (_dir, path) = file_db();
    Store::open(&path)
        .unwrap()
        .add_user_message("s", "x")
        .unwrap();
    let before = threads();
    for _ in 0..200 {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.chat_history("s", None).unwrap().len(), 1);
    }
    // Other tests of this binary run in parallel threads; allow for them, not for 3 per store.
    assert!(
        threads() < before + 40,
        "threads grew from {before} to {}",
        threads()
    );
}

/// `tests/fixtures/schema2.db` was written by the last schema-2 release through its CLI
/// (`tests/fixtures/make_schema2.sh`): a session with a fork, a snapshot, a revert, a named
/// branch, a search index and a deleted session. Schema 3 rebuilds the messages table.
#[test]
fn a_schema_2_file_is_upgraded_keeping_histories_branches_snapshots_and_versions() {
    let (_dir, path) = file_db();
    std::fs::copy("tests/fixtures/schema2.db", &path).unwrap();
    let store = Store::open(&path).unwrap();
    let contents = |h: &sessiondb::History| -> Vec<String> {
        h.iter().map(|m| m.content().to_string()).collect()
    };

    let s = store.session("s").unwrap();
    assert_eq!((s.version, s.message_count), (12, 4));
    assert_eq!(
        (s.usage.input_tokens, s.usage.output_tokens, s.usage.cost),
        (11, 22, 0.5)
    );
    let history = store.chat_history("s", None).unwrap();
    assert_eq!(
        contents(&history),
        [
            "hello world",
            "a searchable reply",
            "after revert",
            "indexed later"
        ]
    );
    assert_eq!(history[1].body.model.as_deref(), Some("m1"));
    let branches: Vec<(String, u64, bool, bool)> = store
        .branches("s")
        .unwrap()
        .into_iter()
        .map(|b| (b.name, b.length, b.is_head, b.superseded_at.is_some()))
        .collect();
    assert_eq!(
        branches,
        [
            ("main@9".to_string(), 5, false, true),
            ("main".to_string(), 4, true, false),
            ("alt".to_string(), 1, false, false),
        ]
    );
    let old = store.branch_history("s", "main@9").unwrap();
    assert_eq!(old[3].body.tool_calls.as_ref().unwrap()[0]["id"], "c1");
    assert_eq!(old[4].body.tool_call_id.as_deref(), Some("c1"));
    assert_eq!(old[4].body.metadata.as_ref().unwrap()["k"], 1);

    let forks = store.child_sessions("s").unwrap();
    assert_eq!(forks.len(), 1);
    assert_eq!(
        contents(&store.chat_history(&forks[0].id, None).unwrap()),
        ["hello world", "a searchable reply", "third"]
    );

    // The search index is rebuilt on the next search, rows from before and after it included.
    let hits = |q: &str| -> Vec<(String, u64)> {
        store
            .search(q, 10, &sessiondb::SearchFilter::default())
            .unwrap()
            .into_iter()
            .map(|h| (h.session_id, h.index))
            .collect()
    };
    assert_eq!(hits("searchable"), [("s".to_string(), 1)]);
    assert_eq!(hits("indexed"), [("s".to_string(), 3)]);

    let report = store.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(
        (
            report.sessions,
            report.branches,
            report.messages,
            report.snapshots
        ),
        (2, 4, 7, 1)
    );

    // Versions go on from where they were; a new session starts above the file's clock.
    store.add_user_message("s", "after upgrade").unwrap();
    assert_eq!(store.session("s").unwrap().version, 13);
    store.add_user_message("new", "x").unwrap();
    assert_eq!(store.session("new").unwrap().version, 16);
    assert!(matches!(store.session("gone"), Err(Error::NotFound { .. })));

    let snapshot = &store.snapshots("s").unwrap()[0];
    assert_eq!(
        (snapshot.label.as_deref(), snapshot.length),
        (Some("before-revert"), 5)
    );
    store.restore_snapshot("s", snapshot.id).unwrap();
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        [
            "hello world",
            "a searchable reply",
            "third",
            "",
            "tool output"
        ]
    );

    let conn = Connection::open(&path).unwrap();
    let (misplaced, indexes): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM messages WHERE id != branch_id * 4294967296 + seq),
                    (SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'messages'
                        AND name != 'messages_by_key')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // The keys' partial index (schema 6) holds no row of a keyless message.
    assert_eq!((misplaced, indexes), (0, 0));
}

/// Child process: takes the write lock of `SESSIONDB_TEST_DB` and holds it until released.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_hold_write_lock() {
    let conn = Connection::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE; UPDATE sessions SET title = 'held' WHERE id = 's';")
        .unwrap();
    println!("RESULT locked");
    wait_for_release();
    conn.execute_batch("ROLLBACK").unwrap();
}

/// Opening a current file only reads it: with another process holding the write lock, a
/// store with no patience at all opens and reads, and so does every read-only CLI command.
#[test]
fn opening_and_reading_do_not_wait_for_another_processs_write_lock() {
    use std::io::BufRead;
    let (_dir, path) = file_db();
    Store::open(&path)
        .unwrap()
        .add_user_message("s", "hello")
        .unwrap();
    let mut holder = spawn_worker(
        "worker_hold_write_lock",
        &[("SESSIONDB_TEST_DB", path.display().to_string())],
    );
    let mut lines = std::io::BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.unwrap().ends_with("RESULT locked")),
        "the worker did not take the lock"
    );

    let store = Store::builder(&path)
        .busy_timeout(std::time::Duration::ZERO)
        .open()
        .unwrap();
    let history = store.chat_history("s", None).unwrap();
    assert_eq!(
        history.iter().map(|m| m.content()).collect::<Vec<_>>(),
        ["hello"]
    );
    assert_eq!(store.session("s").unwrap().title, None);
    // Writes still wait for the lock, and say so.
    assert!(matches!(
        store.add_user_message("s", "no"),
        Err(Error::Busy { .. })
    ));
    for args in [&["history", "s"][..], &["sessions"], &["show", "s"]] {
        let out = common::cli()
            .arg("--db")
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    release(std::slice::from_mut(&mut holder));
    assert!(holder.wait().unwrap().success());
    drop(lines);
}

/// Schema 8 widens the role check in place: an upgraded file (here from schema 2) takes a
/// `developer` message, still refuses a role outside the list at the SQL level, and passes
/// SQLite's integrity check.
#[test]
fn an_upgraded_file_takes_the_developer_role_and_still_checks_roles() {
    let (_dir, path) = file_db();
    std::fs::copy("tests/fixtures/schema2.db", &path).unwrap();
    let store = Store::open(&path).unwrap();
    store
        .add_message(
            "s",
            sessiondb::NewMessage::new(sessiondb::Role::Developer, "dev"),
        )
        .unwrap();
    let last = store.chat_history("s", Some(1)).unwrap();
    assert_eq!(last[0].role(), sessiondb::Role::Developer);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let err = conn
        .execute(
            "UPDATE messages SET role = 'robot' WHERE id = (SELECT min(id) FROM messages)",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
}

/// The POSIX locks this process holds on `path` (Linux lists them in `/proc/locks`).
#[cfg(target_os = "linux")]
fn own_locks_on(path: &std::path::Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    let (dev, ino) = (meta.dev(), meta.ino());
    let key = format!(
        "{:02x}:{:02x}:{ino}",
        (dev >> 8) & 0xfff,
        (dev & 0xff) | ((dev >> 12) & 0xfff00)
    );
    let pid = std::process::id().to_string();
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.windows(2).any(|w| w[0] == pid && w[1] == key)
        })
        .count()
}

/// Closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
/// included: opening the file again (a second store, a read-only one, one that fails) must
/// not open and close a descriptor of its own beside SQLite's. Without SQLite's read lock on
/// the file, another process closing its last connection takes the file for itself,
/// checkpoints and deletes the `-wal` under this one.
#[cfg(target_os = "linux")]
#[test]
fn opening_the_file_again_in_this_process_keeps_the_locks_sqlite_holds_on_it() {
    let (_dir, path) = file_db();
    let first = Store::open(&path).unwrap();
    first.add_user_message("s", "hi").unwrap();
    let held = own_locks_on(&path);
    assert!(held > 0, "SQLite holds no lock on an open WAL file");
    let second = Store::open(&path).unwrap();
    assert_eq!(own_locks_on(&path), held, "a second open");
    let reader = Store::builder(&path).read_only(true).open().unwrap();
    assert_eq!(own_locks_on(&path), held, "a read-only open");
    drop((second, reader));
    // Importing or restoring from the database itself is refused before it is opened.
    let shm = path.with_extension("db-shm");
    for from in [&path, &shm] {
        let err = first
            .import_export_file(from, &sessiondb::ImportOptions::default(), &mut |_, _| {})
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(m) if m.contains("cannot import from")),
            "{err:?}"
        );
        assert!(matches!(first.restore(from), Err(Error::InvalidInput(_))));
    }
    assert_eq!(first.chat_history("s", None).unwrap().len(), 1);
    assert_eq!(own_locks_on(&path), held);
}
