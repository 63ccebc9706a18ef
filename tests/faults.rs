//! Faults: damaged pages, a file deleted under a running process, a full disk. Each gives a
//! typed error, never a panic, and what was committed before stays readable.

mod common;

use std::process::Command;

use common::{is_root, temp_db};
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
        matches!(&err, Error::ReadOnly { reason, .. } if reason.contains("deleted or replaced")),
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
