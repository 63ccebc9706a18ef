//! Files written next to the database (`export --out`, `backup`) and `restore`: never over the
//! database or its WAL, private, atomic; a backup taken under writers is consistent; a restore
//! is seen whole by running processes, their caches included.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{release, results, spawn_worker, temp_db, wait_for_release, worker_env};
use serde_json::Value;
use sessiondb::{Error, ExistingFile, Store, SCHEMA_VERSION};

/// Runs the CLI under umask 022, the usual default, so created files would be 0644 unless
/// sessiondb makes them private.
fn ok(db: &Path, args: &[&str]) -> String {
    common::expect_ok(run(db, args), args)
}

fn failure(db: &Path, args: &[&str]) -> String {
    common::expect_failure(run(db, args), args)
}

/// The CLI under umask 022, the usual one, so file modes show what sessiondb chose.
fn run(db: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_sessiondb"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

fn contents(store: &Store, session: &str) -> Vec<String> {
    store
        .chat_history_uncached(session, None)
        .unwrap()
        .iter()
        .map(|m| m.content().to_string())
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Names in `dir` that start with a dot: temporary files left behind.
fn stray_temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Raw SQL on a file, for what the API does not show (versions handed out, id sequences).
fn query_i64(path: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

const MAX_VERSION: &str = "SELECT max((SELECT version FROM version_clock),
                                      coalesce((SELECT max(version) FROM sessions), 0))";
const BRANCH_SEQ: &str = "SELECT seq FROM sqlite_sequence WHERE name = 'branches'";
const SNAPSHOT_SEQ: &str = "SELECT seq FROM sqlite_sequence WHERE name = 'snapshots'";

#[test]
fn export_out_refuses_the_database_its_wal_and_shm_under_any_name() {
    let (dir, db) = common::file_db();
    // This store stays open with a write in the WAL, as a running agent's would.
    let store = Store::open(&db).unwrap();
    for m in ["a", "b", "c", "d"] {
        store.add_user_message("s", m).unwrap();
    }
    let wal = with_suffix(&db, "-wal");
    let shm = with_suffix(&db, "-shm");
    assert!(wal.exists() && shm.exists());
    let linked_dir = dir.path().join("linked-dir");
    std::os::unix::fs::symlink(dir.path(), &linked_dir).unwrap();
    let symlink = dir.path().join("export.json");
    std::os::unix::fs::symlink(&db, &symlink).unwrap();
    let wal_link = dir.path().join("wal-link.json");
    std::os::unix::fs::symlink(&wal, &wal_link).unwrap();
    let hardlink = dir.path().join("hard.json");
    std::fs::hard_link(&db, &hardlink).unwrap();
    let db_bytes = std::fs::metadata(&db).unwrap().len();

    let cases: [(PathBuf, &str); 8] = [
        (db.clone(), "the file"),
        (wal.clone(), "the WAL"),
        (shm.clone(), "the shared-memory file"),
        (dir.path().join(".").join("sessions.db"), "the file"),
        (symlink.clone(), "the file"),
        (hardlink.clone(), "the file"),
        (wal_link.clone(), "the WAL"),
        (linked_dir.join("sessions.db-wal"), "the WAL"),
    ];
    for (out, what) in &cases {
        for force in [false, true] {
            let mut args = vec!["export", "--out", out.to_str().unwrap()];
            if force {
                args.push("--force");
            }
            let err = failure(&db, &args);
            assert_eq!(
                err,
                format!(
                    "sessiondb: invalid input: {}: refusing to write over {what} of the open \
                     database {}\n",
                    out.display(),
                    db.display()
                ),
                "{args:?}"
            );
        }
    }
    assert_eq!(contents(&store, "s"), ["a", "b", "c", "d"]);
    assert_eq!(std::fs::read_link(&symlink).unwrap(), db);
    assert_eq!(std::fs::read_link(&wal_link).unwrap(), wal);
    assert_eq!(std::fs::metadata(&db).unwrap().len(), db_bytes);
    assert_eq!(stray_temporaries(dir.path()), Vec::<String>::new());
    // A fresh process reads every acknowledged write.
    drop(store);
    assert_eq!(
        contents(&Store::open(&db).unwrap(), "s"),
        ["a", "b", "c", "d"]
    );
}

#[test]
fn export_out_refuses_an_existing_file_and_with_force_replaces_it_privately() {
    let (dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    store.add_user_message("s", "hello").unwrap();
    let out = dir.path().join("export.json");
    std::fs::write(&out, "keep me").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();

    let err = failure(&db, &["export", "--out", out.to_str().unwrap()]);
    assert_eq!(
        err,
        format!(
            "sessiondb: {}: file already exists; refusing to replace it (--force replaces it)\n",
            out.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");

    assert_eq!(
        ok(&db, &["export", "--out", out.to_str().unwrap(), "--force"]),
        ""
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with("}\n"), "{text}");
    let export: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        export["sessions"][0]["messages"].as_array().unwrap().len(),
        1
    );
    assert_eq!(export["format"], "sessiondb-export");
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(export["sessions"][0]["id"], "s");
    assert_eq!(export["sessions"][0]["messages"][0]["content"], "hello");
    assert_eq!(mode(&out), 0o600);

    let fresh = dir.path().join("fresh.json");
    ok(&db, &["export", "s", "--out", fresh.to_str().unwrap()]);
    assert_eq!(mode(&fresh), 0o600);
    let without_time = |mut v: Value| {
        v.as_object_mut().unwrap().remove("exported_at");
        v
    };
    let fresh_export: Value =
        serde_json::from_str(&std::fs::read_to_string(&fresh).unwrap()).unwrap();
    assert_eq!(without_time(fresh_export), without_time(export));
    assert_eq!(stray_temporaries(dir.path()), Vec::<String>::new());
}

#[test]
fn backup_follows_the_out_file_rules_and_copies_everything() {
    let (dir, db) = common::file_db();
    let store = Store::open(&db).unwrap();
    store.add_user_message("s", "a").unwrap();
    store.add_user_message("s", "b").unwrap();
    let snap = store.create_snapshot("s", Some("one"), None).unwrap();
    store.revert_to_message("s", 0).unwrap();
    let out = dir.path().join("backup.db");

    for target in [db.clone(), with_suffix(&db, "-wal")] {
        let err = store.backup(&target, ExistingFile::Replace).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(m) if m.contains("refusing to write over")),
            "{err:?}"
        );
    }
    let printed = ok(&db, &["backup", out.to_str().unwrap()]);
    let bytes = std::fs::metadata(&out).unwrap().len();
    assert_eq!(printed, format!("{}: {bytes} bytes\n", out.display()));
    assert_eq!(mode(&out), 0o600);
    let err = failure(&db, &["backup", out.to_str().unwrap()]);
    assert!(err.contains("file already exists"), "{err}");
    let err = store.backup(&out, ExistingFile::Refuse).unwrap_err();
    assert!(
        matches!(&err, Error::FileExists { path } if *path == out),
        "{err:?}"
    );
    store.add_user_message("s", "later").unwrap();
    assert_eq!(
        store.backup(&out, ExistingFile::Replace).unwrap(),
        std::fs::metadata(&out).unwrap().len()
    );
    assert_eq!(mode(&out), 0o600);
    assert_eq!(stray_temporaries(dir.path()), Vec::<String>::new());

    let copy = Store::open(&out).unwrap();
    assert_eq!(contents(&copy, "s"), ["a", "later"]);
    assert_eq!(copy.session("s").unwrap(), store.session("s").unwrap());
    assert_eq!(copy.branches("s").unwrap(), store.branches("s").unwrap());
    assert_eq!(copy.snapshots("s").unwrap()[0].id, snap.id);
    assert!(copy.check().unwrap().is_ok());

    // A backup straight from VACUUM INTO (never opened) restores as it is.
    let untouched = dir.path().join("untouched.db");
    store.backup(&untouched, ExistingFile::Refuse).unwrap();
    store.add_user_message("s", "after the backup").unwrap();
    let report = store.restore(&untouched).unwrap();
    assert_eq!(
        (
            report.sessions,
            report.branches,
            report.messages,
            report.snapshots
        ),
        (1, 2, 3, 1)
    );
    assert_eq!(contents(&store, "s"), ["a", "later"]);
    assert_eq!(store.snapshots("s").unwrap()[0].id, snap.id);
    assert!(store.check().unwrap().is_ok());
}

/// Child process: appends 0, 1, 2, … to session `s` and then to `t`, until the stop file
/// appears (at most 20 s or 50,000 rounds). Reports the number of rounds.
#[test]
#[ignore]
fn backup_writer_worker() {
    let store = Store::open(worker_env("DB")).unwrap();
    let stop = PathBuf::from(worker_env("STOP"));
    wait_for_release();
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < 50_000 && started.elapsed() < Duration::from_secs(20) && !stop.exists() {
        store.add_user_message("s", &rounds.to_string()).unwrap();
        store.add_user_message("t", &rounds.to_string()).unwrap();
        rounds += 1;
    }
    println!("RESULT {rounds}");
}

#[test]
fn a_backup_taken_while_another_process_writes_is_consistent_and_checks_clean() {
    let (dir, db) = temp_db();
    Store::open(&db).unwrap();
    let stop = dir.path().join("stop");
    let mut worker = [spawn_worker(
        "backup_writer_worker",
        &[
            ("DB", db.display().to_string()),
            ("STOP", stop.display().to_string()),
        ],
    )];
    release(&mut worker);
    let live = Store::open(&db).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !live.session_exists("t").unwrap() || live.session("t").unwrap().message_count < 20 {
        assert!(Instant::now() < deadline, "the writer did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let backups: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("b{i}.db")))
        .collect();
    for out in &backups {
        ok(&db, &["backup", out.to_str().unwrap()]);
        std::thread::sleep(Duration::from_millis(30));
    }
    std::fs::write(&stop, "").unwrap();
    let [worker] = worker;
    let rounds: usize = results(worker)[0].parse().unwrap();

    let mut previous = 0;
    for out in &backups {
        assert_eq!(mode(out), 0o600);
        let report = ok(out, &["check"]);
        assert!(report.ends_with("\nok\n"), "{report}");
        let copy = Store::open(out).unwrap();
        let s = contents(&copy, "s");
        let t = contents(&copy, "t");
        // A prefix of the writer's work: s and t are 0..n, and s is at most one ahead.
        let expected = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(s, expected(s.len()));
        assert_eq!(t, expected(t.len()));
        assert!(
            s.len() == t.len() || s.len() == t.len() + 1,
            "{} {}",
            s.len(),
            t.len()
        );
        assert!(
            t.len() >= previous && s.len() <= rounds,
            "{} of {rounds}",
            s.len()
        );
        previous = t.len();
    }
    // The writer went on after the last backup: every backup was taken under writes.
    assert!(
        previous >= 20 && previous < rounds,
        "{previous} of {rounds}"
    );
}

/// Child process: caches the histories of `s` and `t`, tells the parent (file `CACHED`),
/// waits for the file `RESTORED`, reads again, appends, and reports what it saw.
#[test]
#[ignore]
fn cached_reader_worker() {
    let store = Store::open(worker_env("DB")).unwrap();
    wait_for_release();
    let text = |h: sessiondb::History| -> Vec<String> {
        h.iter().map(|m| m.content().to_string()).collect()
    };
    let before = (
        text(store.chat_history("s", None).unwrap()),
        text(store.chat_history("t", None).unwrap()),
    );
    std::fs::write(worker_env("CACHED"), "").unwrap();
    let restored = PathBuf::from(worker_env("RESTORED"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !restored.exists() {
        assert!(Instant::now() < deadline, "no restore within 20 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = serde_json::json!({
        "before": [before.0, before.1],
        "s": text(store.chat_history("s", None).unwrap()),
        "s_uncached": text(store.chat_history_uncached("s", None).unwrap()),
        "t": text(store.chat_history("t", None).unwrap()),
        "t_uncached": text(store.chat_history_uncached("t", None).unwrap()),
        "s_version": store.version("s").unwrap(),
        "appended_version": store.add_user_message("s", "after").unwrap().index,
        "s_after": text(store.chat_history("s", None).unwrap()),
        "s_after_uncached": text(store.chat_history_uncached("s", None).unwrap()),
        "s_version_after": store.version("s").unwrap(),
    });
    println!("RESULT {after}");
}

/// Live file and backup made by the same steps with other contents, so the backup's sessions
/// have the very (version, head branch id) the live ones had: a cache keyed by them alone
/// would serve the old messages.
fn live_and_backup(dir: &Path) -> (PathBuf, PathBuf) {
    let live = dir.join("live.db");
    let backup = dir.join("backup.db");
    for (path, s, t) in [
        (&live, &["a", "b"][..], &["p", "q"][..]),
        (&backup, &["x", "y", "z", "w"][..], &["P", "Q"][..]),
    ] {
        let store = Store::open(path).unwrap();
        for m in s {
            store.add_user_message("s", m).unwrap();
        }
        for m in t {
            store.add_user_message("t", m).unwrap();
        }
    }
    (live, backup)
}

#[test]
fn a_restore_is_seen_whole_by_a_process_holding_cached_histories() {
    let dir = tempfile::tempdir().unwrap();
    let (live, backup) = live_and_backup(dir.path());
    let heads = "SELECT group_concat(id || ':' || head_branch_id || ':' || version, ' ')
                 FROM (SELECT * FROM sessions ORDER BY id)";
    let backup_heads = rusqlite::Connection::open(&backup)
        .unwrap()
        .query_row(heads, [], |r| r.get::<_, String>(0))
        .unwrap();
    let live_heads = rusqlite::Connection::open(&live)
        .unwrap()
        .query_row(heads, [], |r| r.get::<_, String>(0))
        .unwrap();
    // s: same head branch, longer in the backup; t: same head branch, version and length.
    assert_eq!(live_heads, "s:1:3 t:2:4");
    assert_eq!(backup_heads, "s:1:5 t:2:4");
    let (live_max, backup_max) = (
        query_i64(&live, MAX_VERSION),
        query_i64(&backup, MAX_VERSION),
    );
    let (live_branches, backup_branches) =
        (query_i64(&live, BRANCH_SEQ), query_i64(&backup, BRANCH_SEQ));

    let cached = dir.path().join("cached");
    let restored = dir.path().join("restored");
    let mut worker = [spawn_worker(
        "cached_reader_worker",
        &[
            ("DB", live.display().to_string()),
            ("CACHED", cached.display().to_string()),
            ("RESTORED", restored.display().to_string()),
        ],
    )];
    release(&mut worker);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cached.exists() {
        assert!(Instant::now() < deadline, "the reader did not cache");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        ok(
            &live,
            &["restore", backup.to_str().unwrap(), "--yes", "--no-backup"]
        ),
        format!(
            "restored 2 sessions, 2 branches, 6 messages, 0 snapshots from {}\n",
            backup.display()
        )
    );
    std::fs::write(&restored, "").unwrap();
    let [worker] = worker;
    let seen: Value = serde_json::from_str(&results(worker)[0]).unwrap();

    assert_eq!(seen["before"], serde_json::json!([["a", "b"], ["p", "q"]]));
    assert_eq!(seen["s"], serde_json::json!(["x", "y", "z", "w"]));
    assert_eq!(seen["s_uncached"], seen["s"]);
    assert_eq!(seen["t"], serde_json::json!(["P", "Q"]));
    assert_eq!(seen["t_uncached"], seen["t"]);
    // Restored versions sit above every version the live file had handed out.
    assert_eq!(seen["s_version"], 5 + live_max);
    assert_eq!(seen["appended_version"], 4);
    assert_eq!(
        seen["s_after"],
        serde_json::json!(["x", "y", "z", "w", "after"])
    );
    assert_eq!(seen["s_after_uncached"], seen["s_after"]);
    assert_eq!(seen["s_version_after"], 6 + live_max);

    let store = Store::open(&live).unwrap();
    assert_eq!(store.version("t").unwrap(), 4 + live_max);
    assert_eq!(
        query_i64(&live, "SELECT version FROM version_clock"),
        backup_max + live_max
    );
    // Branch ids moved above the live file's and the sequence continues above both.
    assert_eq!(
        query_i64(&live, "SELECT head_branch_id FROM sessions WHERE id = 's'"),
        1 + live_branches
    );
    assert_eq!(
        query_i64(&live, BRANCH_SEQ),
        live_branches + backup_branches
    );
    // The worker's append after the restore kept s on the head the restore set.
    assert_eq!(
        query_i64(&live, "SELECT head_since FROM sessions WHERE id = 's'"),
        5 + live_max
    );
    assert_eq!(
        query_i64(&live, "SELECT head_since FROM sessions WHERE id = 't'"),
        4 + live_max
    );
    assert!(store.check().unwrap().is_ok());
    // The backup itself is untouched.
    assert_eq!(
        contents(&Store::open(&backup).unwrap(), "s"),
        ["x", "y", "z", "w"]
    );
}

#[test]
fn restore_refuses_what_is_not_a_current_sessiondb_file_and_leaves_the_live_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (live, backup) = live_and_backup(dir.path());
    let store = Store::open(&live).unwrap();
    let before = (contents(&store, "s"), store.session("s").unwrap());

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello, not sqlite").unwrap();
    let other_app = dir.path().join("other.db");
    rusqlite::Connection::open(&other_app)
        .unwrap()
        .execute_batch("CREATE TABLE foo (x); INSERT INTO foo VALUES (1);")
        .unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, "").unwrap();
    let newer = dir.path().join("newer.db");
    std::fs::copy(&backup, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    let missing = dir.path().join("missing.db");

    for from in [&text, &other_app, &empty] {
        let err = store.restore(from).unwrap_err();
        assert!(
            matches!(&err, Error::NotSessionDb { path, .. } if path == from),
            "{from:?}: {err:?}"
        );
    }
    let err = store.restore(&newer).unwrap_err();
    assert!(
        matches!(&err, Error::SchemaTooNew { path, found, supported }
            if *path == newer && *found == SCHEMA_VERSION + 1 && *supported == SCHEMA_VERSION),
        "{err:?}"
    );
    let err = store.restore(&missing).unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { kind: "database", id } if *id == missing.display().to_string()),
        "{err:?}"
    );
    for itself in [live.clone(), with_suffix(&live, "-wal")] {
        let err = store.restore(&itself).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(m) if m.contains("the database itself")),
            "{err:?}"
        );
    }
    let err = failure(&live, &["restore", newer.to_str().unwrap(), "--yes"]);
    let expected = format!("schema version {} is newer", SCHEMA_VERSION + 1);
    assert!(err.contains(&expected), "{err}");

    assert_eq!((contents(&store, "s"), store.session("s").unwrap()), before);
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "hello, not sqlite");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn restore_upgrades_an_older_schema_file_on_a_copy_and_rebuilds_the_search_index() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let store = Store::open(&live).unwrap();
    store.add_user_message("old", "alpha words").unwrap();
    store.create_snapshot("old", None, None).unwrap();
    assert_eq!(
        store
            .search("alpha", 10, &Default::default())
            .unwrap()
            .len(),
        1
    );
    let live_snapshots = query_i64(&live, SNAPSHOT_SEQ);
    let fixture = std::fs::read("tests/fixtures/schema2.db").unwrap();
    let old_schema = dir.path().join("schema2.db");
    std::fs::write(&old_schema, &fixture).unwrap();
    let probe = tempfile::tempdir().unwrap();
    std::fs::write(probe.path().join("probe.db"), &fixture).unwrap();
    let fixture_snapshots = query_i64(&probe.path().join("probe.db"), SNAPSHOT_SEQ);

    let report = store.restore(&old_schema).unwrap();
    assert_eq!(
        (
            report.sessions,
            report.branches,
            report.messages,
            report.snapshots
        ),
        (2, 4, 7, 1)
    );
    assert_eq!(std::fs::read(&old_schema).unwrap(), fixture);
    assert_eq!(stray_temporaries(dir.path()), Vec::<String>::new());
    assert!(!store.session_exists("old").unwrap());
    assert_eq!(
        contents(&store, "s"),
        [
            "hello world",
            "a searchable reply",
            "after revert",
            "indexed later"
        ]
    );
    // The old file's words are gone from the index, the restored ones are found.
    assert_eq!(store.search("alpha", 10, &Default::default()).unwrap(), []);
    let hits = store.search("searchable", 10, &Default::default()).unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!((hits[0].session_id.as_str(), hits[0].index), ("s", 1));
    assert_eq!(
        query_i64(&live, SNAPSHOT_SEQ),
        live_snapshots.max(fixture_snapshots)
    );
    assert!(store.check().unwrap().is_ok());
}
