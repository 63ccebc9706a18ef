//! Faults: damaged pages, a file deleted under a running process, a file moved over a live
//! one, a full disk. Each gives a typed error, never a panic, and what was committed before
//! stays readable.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{
    cli, cli_failure, cli_json, cli_ok, file_bytes, file_db, is_root, release, spawn_worker,
    wait_for_release, worker_env,
};
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
    let (dir, path) = file_db();
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
    let (_dir, path) = file_db();
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
        let (dir, path) = file_db();
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
    let (dir, path) = file_db();
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

/// `sessiondb --db PATH history s --follow`, running until dropped (SIGKILL), once it has
/// printed the session's first message: from then on it has the file and its `-wal` open.
struct Follower(std::process::Child);

impl Follower {
    fn start(path: &Path) -> Follower {
        use std::io::BufRead;
        let mut child = cli()
            .args([
                "--db",
                &path.display().to_string(),
                "history",
                "s",
                "--follow",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.starts_with("[0] "), "follow printed {first:?}");
        Follower(child)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wal_of(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

fn add(path: &Path, session: &str, text: &str) {
    cli_ok(path, &["add", session, "user", text]);
}

fn history(path: &Path, session: &str) -> Vec<String> {
    cli_json(path, &["history", session, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

/// Issue 23, item 3, exactly: `mv y.db x.db` while `history --follow` keeps x.db's `-wal`
/// from being checkpointed. Before: a new process read x's messages as y's, `add` was
/// acknowledged into the mix and `check` failed for good. Now every new process refuses,
/// naming both files and `sessiondb restore`, and leaves both files as they were.
#[test]
fn a_database_moved_over_a_live_one_is_refused_naming_both_files_and_nothing_is_written() {
    let (dir, x) = file_db();
    let y = dir.path().join("y.db");
    add(&y, "t", "y1");
    add(&x, "s", "x1");
    let follower = Follower::start(&x);
    for text in ["x2", "x3", "x4"] {
        add(&x, "s", text);
    }
    std::fs::rename(&y, &x).unwrap();
    let wal = wal_of(&x);
    let (db_bytes, wal_bytes) = (file_bytes(&x), file_bytes(&wal));
    assert!(!wal_bytes.is_empty(), "x's commits are still in its -wal");

    for args in [
        &["add", "t", "user", "q1"][..],
        &["sessions"],
        &["history", "t"],
        &["check"],
        &["--read-only", "sessions"],
    ] {
        let stderr = cli_failure(&x, args);
        for needle in [
            format!("{} belongs to another database file", wal.display()),
            format!("not to {}", x.display()),
            "nothing was read or written".into(),
            "sessiondb restore".into(),
        ] {
            assert!(stderr.contains(&needle), "{args:?}: {stderr}");
        }
    }
    match Store::open(&x) {
        Err(Error::ForeignWal { path, wal: named }) => {
            assert_eq!((path, named), (x.clone(), wal.clone()));
        }
        other => panic!("expected ForeignWal, got {other:?}"),
    }
    assert!(file_bytes(&x) == db_bytes, "the moved-in file was changed");
    assert!(file_bytes(&wal) == wal_bytes, "the -wal was changed");

    // Killed rather than stopped, the follower leaves x's commits behind: still refused.
    drop(follower);
    cli_failure(&x, &["sessions"]);
    // What the error says to do: move the -wal and -shm aside; y's contents are whole.
    for suffix in ["-wal", "-shm"] {
        let mut from = x.as_os_str().to_owned();
        from.push(suffix);
        std::fs::rename(&from, dir.path().join(format!("aside{suffix}"))).unwrap();
    }
    assert_eq!(history(&x, "t"), ["y1"]);
    assert_eq!(cli_json(&x, &["check", "--json"])["ok"], true);
}

/// `rm sessions.db-wal` under a running process: a process opening afterwards gets
/// `WalDeleted` naming the cause (before: `sqlite: disk I/O error`).
#[test]
fn a_process_opening_after_the_wal_was_deleted_under_a_live_one_gets_wal_deleted() {
    let (_dir, x) = file_db();
    add(&x, "s", "x1");
    let _follower = Follower::start(&x);
    add(&x, "s", "x2");
    std::fs::remove_file(wal_of(&x)).unwrap();
    match Store::open(&x).and_then(|store| store.chat_history("s", None)) {
        Err(Error::WalDeleted { path, wal }) => assert_eq!((path, wal), (x.clone(), wal_of(&x))),
        other => panic!("expected WalDeleted, got {other:?}"),
    }
    let stderr = cli_failure(&x, &["history", "s"]);
    assert!(
        stderr.contains("was deleted or truncated while other processes had"),
        "{stderr}"
    );
}

/// Child process: appends 20 messages (left in the `-wal`), then waits to be killed.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_append_then_wait() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    for i in 0..20 {
        store.add_user_message("s", &format!("m{i}")).unwrap();
    }
    println!("RESULT ready");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// A writer killed with SIGKILL leaves a hot `-wal` stamped for its file: the next process
/// recovers it, also after a `chmod` of the database, instead of taking it for another
/// file's.
#[test]
fn a_hot_wal_after_a_killed_writer_and_a_chmod_is_recovered_not_refused() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = file_db();
    let mut worker = spawn_worker(
        "worker_append_then_wait",
        &[("SESSIONDB_TEST_DB", path.display().to_string())],
    );
    let mut lines = std::io::BufReader::new(worker.stdout.take().unwrap()).lines();
    while !lines
        .next()
        .expect("worker output")
        .unwrap()
        .contains("RESULT ready")
    {}
    worker.kill().unwrap();
    worker.wait().unwrap();
    assert!(std::fs::metadata(wal_of(&path)).unwrap().len() > 0);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();

    let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(history(&path, "s"), expected);
    add(&path, "s", "after");
    assert_eq!(history(&path, "s").len(), 21);
    assert_eq!(cli_json(&path, &["check", "--json"])["ok"], true);
}

/// A reader holding an old snapshot keeps checkpoints partial; other processes, read-only
/// opens included, go on; once it is gone the WAL restarts, and still nothing is refused.
#[test]
fn partial_checkpoints_and_wal_restarts_are_never_taken_for_another_files_wal() {
    let (_dir, path) = file_db();
    add(&path, "s", "a");
    let _follower = Follower::start(&path);
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 1);
    for text in ["b", "c", "d"] {
        add(&path, "s", text);
    }
    let checkpointer = rusqlite::Connection::open(&path).unwrap();
    let checkpoint = |mode: &str| -> (i64, i64) {
        checkpointer
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .unwrap()
    };
    let (frames, backfilled) = checkpoint("PASSIVE");
    assert!(
        backfilled < frames,
        "the reader keeps the checkpoint partial"
    );
    add(&path, "s", "e");
    let read_only = Store::builder(&path).read_only(true).open().unwrap();
    assert_eq!(read_only.chat_history("s", None).unwrap().len(), 5);

    reader.execute_batch("COMMIT").unwrap();
    let (frames, backfilled) = checkpoint("RESTART");
    assert_eq!(backfilled, frames);
    add(&path, "s", "f"); // the first commit of a new WAL generation
    assert_eq!(history(&path, "s"), ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(cli_json(&path, &["check", "--json"])["ok"], true);
}

/// `sessiondb restore` is the supported way to replace a live database: it keeps working
/// while another process has the file open, and so do the processes after it.
#[test]
fn restore_under_a_live_process_is_not_refused() {
    let (dir, path) = file_db();
    let backup = dir.path().join("backup.db");
    add(&path, "s", "old");
    cli_ok(&path, &["backup", &backup.display().to_string()]);
    add(&path, "s", "newer");
    let _follower = Follower::start(&path);
    cli_ok(
        &path,
        &[
            "restore",
            &backup.display().to_string(),
            "--yes",
            "--no-backup",
        ],
    );
    assert_eq!(history(&path, "s"), ["old"]);
    add(&path, "s", "after");
    assert_eq!(history(&path, "s"), ["old", "after"]);
    assert_eq!(cli_json(&path, &["check", "--json"])["ok"], true);
}

/// A reader killed with SIGKILL leaves an empty `-wal` behind; a backup moved over the file
/// while nothing runs is then opened and written, not refused: there is nothing to mix.
#[test]
fn a_file_moved_over_while_nothing_runs_is_opened_even_beside_an_empty_leftover_wal() {
    let (dir, x) = file_db();
    let y = dir.path().join("y.db");
    add(&y, "t", "y1");
    add(&x, "s", "x1");
    drop(Follower::start(&x));
    assert_eq!(std::fs::metadata(wal_of(&x)).unwrap().len(), 0);
    std::fs::rename(&y, &x).unwrap();
    add(&x, "t", "y2");
    assert_eq!(history(&x, "t"), ["y1", "y2"]);
    assert_eq!(cli_json(&x, &["check", "--json"])["ok"], true);
}

/// `maintain` empties the `-wal` while `history --follow` runs, then a file is moved over:
/// nothing is mixed yet, but the follower, closing last, would checkpoint into its own file
/// and delete the `-wal` under the new one. Refused while it runs (Linux: `/proc/locks`);
/// once it is killed, the empty `-wal` it left is taken over.
#[cfg(target_os = "linux")]
#[test]
fn an_empty_wal_is_refused_while_the_old_files_processes_still_have_it_open() {
    let (dir, x) = file_db();
    let y = dir.path().join("y.db");
    add(&y, "t", "y1");
    add(&x, "s", "x1");
    let follower = Follower::start(&x);
    add(&x, "s", "x2");
    cli_ok(&x, &["maintain"]);
    assert_eq!(std::fs::metadata(wal_of(&x)).unwrap().len(), 0);
    std::fs::rename(&y, &x).unwrap();
    let db_bytes = file_bytes(&x);
    let stderr = cli_failure(&x, &["add", "t", "user", "q1"]);
    assert!(
        stderr.contains("belongs to another database file"),
        "{stderr}"
    );
    assert!(file_bytes(&x) == db_bytes, "the moved-in file was changed");

    drop(follower);
    add(&x, "t", "y2");
    assert_eq!(history(&x, "t"), ["y1", "y2"]);
    assert_eq!(cli_json(&x, &["check", "--json"])["ok"], true);
}
