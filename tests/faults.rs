//! Faults: damaged pages, a file deleted under a running process, a full disk. Each gives a
//! typed error, never a panic, and what was committed before stays readable.

mod common;

use std::process::Command;

use common::{is_root, release, spawn_worker, temp_db, wait_for_release, worker_env};
use sessiondb::{Error, NewMessage, Store};

fn populated(path: &std::path::Path) {
    let store = Store::open(path).unwrap();
    for s in 0..4 {
        for i in 0..60 {
            store
                .add_message(
                    &format!("s{s}"),
                    NewMessage::user(format!("message {i} {}", "x".repeat(200))),
                )
                .unwrap();
        }
    }
    store.fork_session("s0", Some(10), None).unwrap();
    // Move everything from the WAL into the database file, so damage to the file shows.
    store.maintain(false).unwrap();
}

/// Runs every read and a write on the store; returns how many calls failed as Corrupt.
fn exercise(store: &Store) -> usize {
    let mut corrupt = 0;
    let mut note = |r: Result<(), Error>| {
        if let Err(Error::Corrupt(_)) = r {
            corrupt += 1;
        }
    };
    note(store.list_sessions(&Default::default()).map(drop));
    for s in ["s0", "s1", "s2", "s3"] {
        note(store.chat_history_uncached(s, None).map(drop));
        note(store.branches(s).map(drop));
        note(store.add_user_message(s, "after damage").map(drop));
    }
    note(store.check().map(drop));
    corrupt
}

#[test]
fn damaged_pages_give_corrupt_errors_and_never_panic() {
    let (dir, path) = temp_db();
    populated(&path);
    let pristine = std::fs::read(&path).unwrap();
    let page = 4096;
    let pages = pristine.len() / page;
    assert!(pages > 8, "the file is too small to damage meaningfully");
    let mut corrupt_seen = 0;
    for (n, target) in (1..pages).step_by(2).enumerate() {
        let copy = dir.path().join(format!("damaged-{n}.db"));
        let mut bytes = pristine.clone();
        // Scribble over the page header and some cells.
        for (i, b) in bytes[target * page..target * page + 600]
            .iter_mut()
            .enumerate()
        {
            *b = (i as u8).wrapping_mul(37) ^ 0xa5;
        }
        std::fs::write(&copy, &bytes).unwrap();
        match Store::open(&copy) {
            Ok(store) => corrupt_seen += exercise(&store),
            Err(Error::Corrupt(_)) | Err(Error::NotSessionDb { .. }) => corrupt_seen += 1,
            Err(other) => panic!("page {target}: unexpected error kind {other:?}"),
        }
    }
    assert!(corrupt_seen > 0, "no damage was ever reported as Corrupt");
}

#[test]
fn writes_to_a_file_deleted_under_a_running_process_are_refused_not_lost() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "before").unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    // Writing on would be acknowledged and lost with the deleted file: refused instead.
    let err = store.add_user_message("s", "after delete").unwrap_err();
    assert!(
        matches!(&err, Error::FileReplaced { path: p, reason }
            if *p == path && reason == "the database file was deleted or replaced since it was opened"),
        "{err:?}"
    );
    // A new store at the path starts a new, empty file.
    let fresh = Store::open(&path).unwrap();
    assert!(!fresh.session_exists("s").unwrap());
    fresh.add_user_message("s", "new file").unwrap();
    assert_eq!(
        fresh.chat_history("s", None).unwrap()[0].content(),
        "new file"
    );
}

#[test]
fn a_full_disk_refuses_the_write_and_keeps_what_was_stored() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipped: this machine does not allow mounting a tmpfs");
        return;
    }
    let outcome = std::panic::catch_unwind(|| {
        let path = dir.path().join("full.db");
        let store = Store::open(&path).unwrap();
        let big = "z".repeat(64 * 1024);
        let mut stored = 0;
        let err = loop {
            match store.add_user_message("s", &big) {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
            assert!(stored < 1_000, "a 1 MiB file system never filled up");
        };
        assert!(matches!(err, Error::StorageFull(_)), "{err:?}");
        assert!(stored > 0);
        let history = store.chat_history_uncached("s", None).unwrap();
        assert_eq!(history.len(), stored);
        assert!(history.iter().all(|m| m.content() == big));
    });
    let _ = Command::new("umount").arg(dir.path()).status();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Child process: appends and checkpoints 10 messages, waits while the parent tampers with
/// the files, then tries 40 more appends and reports how many were acknowledged.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_write_across_tampering() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    for i in 0..10 {
        store.add_user_message("s", &format!("before {i}")).unwrap();
    }
    store.maintain(false).unwrap();
    println!("RESULT ready");
    wait_for_release();
    let (mut acked, mut refused) = (0, 0);
    for i in 0..40 {
        match store.add_user_message("s", &format!("after {i}")) {
            Ok(_) => acked += 1,
            Err(Error::FileReplaced { .. }) => refused += 1,
            Err(other) => panic!("untyped refusal: {other:?}"),
        }
    }
    println!("RESULT acked {acked} refused {refused}");
    // Stay alive until killed, like a worker that is still running.
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// `rm sessions.db-wal` or `mv backup.db sessions.db` under a running writer: its later
/// writes are refused with a typed error instead of acknowledged and lost at the next crash.
#[test]
fn writes_after_the_wal_is_deleted_or_the_file_is_moved_over_are_refused_not_lost() {
    use std::io::BufRead;
    for tamper in ["rm wal", "mv over"] {
        let (dir, path) = temp_db();
        let other = dir.path().join("other.db");
        Store::open(&other)
            .unwrap()
            .add_user_message("o", "other")
            .unwrap();
        let mut worker = spawn_worker(
            "worker_write_across_tampering",
            &[("SESSIONDB_TEST_DB", path.display().to_string())],
        );
        let mut lines = std::io::BufReader::new(worker.stdout.take().unwrap()).lines();
        let mut next_result = || loop {
            let line = lines.next().expect("worker output").unwrap();
            if let Some((_, result)) = line.split_once("RESULT ") {
                return result.to_string();
            }
        };
        assert_eq!(next_result(), "ready");
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        match tamper {
            "rm wal" => std::fs::remove_file(&wal).unwrap(),
            _ => std::fs::rename(&other, &path).unwrap(),
        }
        release(std::slice::from_mut(&mut worker));
        assert_eq!(next_result(), "acked 0 refused 40", "{tamper}");
        worker.kill().unwrap();
        worker.wait().unwrap();
        if tamper == "rm wal" {
            let store = Store::open(&path).unwrap();
            let history = store.chat_history("s", None).unwrap();
            let contents: Vec<&str> = history.iter().map(|m| m.content()).collect();
            let expected: Vec<String> = (0..10).map(|i| format!("before {i}")).collect();
            assert_eq!(contents, expected);
        }
    }
}

/// A connection that cannot be opened gives its pool slot back: with a pool of one, the
/// next call opens again instead of waiting for a slot nobody holds.
#[test]
fn a_failed_connection_open_gives_its_pool_slot_back() {
    let (dir, path) = temp_db();
    Store::open(&path)
        .unwrap()
        .add_user_message("s", "hi")
        .unwrap();
    let store = Store::builder(&path)
        .pool_size(1)
        .busy_timeout(std::time::Duration::from_millis(200))
        .open()
        .unwrap();
    let aside = dir.path().join("aside.db");
    std::fs::rename(&path, &aside).unwrap();
    for _ in 0..3 {
        match store.chat_history("s", None) {
            Err(Error::FileReplaced { path: p, reason }) => {
                assert_eq!(p, path);
                assert_eq!(
                    reason,
                    "the database file was deleted or moved since it was opened"
                );
            }
            other => panic!("expected FileReplaced for the missing file, got {other:?}"),
        }
    }
    std::fs::rename(&aside, &path).unwrap();
    assert_eq!(store.chat_history("s", None).unwrap()[0].content(), "hi");
}
