//! Commands that delete or replace many sessions are safe by default: durations need a
//! unit, nothing is deleted without a yes (asked on a terminal, `--yes` otherwise),
//! `--dry-run` changes nothing, and `restore` keeps what it replaces.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{cli, cli_failure, cli_json, cli_ok as ok, cli_usage_error, temp_db};
use serde_json::json;
use sessiondb::Store;

fn sessions(db: &Path) -> Vec<String> {
    let listed = cli_json(db, &["sessions", "--json"]);
    let mut ids: Vec<String> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn contents(db: &Path, session: &str) -> Vec<String> {
    cli_json(db, &["history", session, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_duration_without_a_unit_is_refused_everywhere() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "hi"]);
    for args in [
        &["expire", "--idle", "90"][..],
        &["expire", "--idle", "90", "--yes"],
        &["prune", "--older-than", "7", "--yes"],
        &["stats", "--older-than", "30"],
    ] {
        let err = cli_usage_error(&db, args);
        let number = args[2];
        assert!(
            err.contains(&format!(
                "\"{number}\" has no unit: write {number}s, {number}m"
            )),
            "{args:?}: {err}"
        );
    }
    for unit in ["1mo", "1y", "2M"] {
        let err = cli_usage_error(&db, &["expire", "--idle", unit, "--yes"]);
        assert!(
            err.contains("months and years vary in length; write days instead"),
            "{err}"
        );
    }
    assert_eq!(sessions(&db), ["s"]);
    // Zero needs no unit; a unit-less zero deletes what is idle for any time at all.
    assert_eq!(
        cli_json(&db, &["expire", "--idle", "0", "--dry-run", "--json"])["sessions"],
        json!(["s"])
    );
}

#[test]
fn expire_and_purge_need_a_yes_without_a_terminal() {
    let (_dir, db) = temp_db();
    for (s, n) in [("a", 2), ("b", 1), ("c", 3)] {
        for i in 0..n {
            ok(&db, &["add", s, "user", &format!("{s}{i}")]);
        }
    }
    ok(&db, &["edit", "c", "--user", "u1"]);
    let err = cli_failure(&db, &["expire", "--idle", "0s"]);
    assert_eq!(
        err,
        "sessiondb: expire would delete 3 sessions idle for longer than 0 (6 messages): pass \
         --yes to go ahead (no terminal to ask on), or --dry-run to see what it would do; \
         nothing was changed\n"
    );
    let err = cli_failure(&db, &["purge", "a", "b"]);
    assert!(
        err.starts_with("sessiondb: purge would erase 2 sessions (a, b) for good: pass --yes"),
        "{err}"
    );
    let err = cli_failure(&db, &["purge", "--user", "u1", "--with-forks"]);
    assert!(
        err.starts_with(
            "sessiondb: purge would erase the 1 session of user \"u1\" and every fork of them \
             for good: pass --yes"
        ),
        "{err}"
    );
    assert_eq!(sessions(&db), ["a", "b", "c"]);
    assert_eq!(contents(&db, "c"), ["c0", "c1", "c2"]);

    let purged = cli_json(&db, &["purge", "b", "--yes", "--json"]);
    assert_eq!(purged["purged"], json!(["b"]));
    assert_eq!(sessions(&db), ["a", "c"]);
    let expired = ok(&db, &["expire", "--idle", "0s", "-y"]);
    assert_eq!(expired, "a\nc\nexpired 2 sessions, 5 messages\n");
    assert_eq!(sessions(&db), Vec::<String>::new());
    // Nothing to delete: nothing to ask, and it says so.
    assert_eq!(
        ok(&db, &["expire", "--idle", "0s"]),
        "expired 0 sessions, 0 messages\n"
    );
}

/// Runs `sessiondb --db DB ARGS…` on a pseudo-terminal (through `script`), typing `answer`.
/// `None` when this machine has no `script` (then the caller skips, loudly).
fn on_a_terminal(db: &Path, args: &[&str], answer: &str) -> Option<(bool, String)> {
    if Command::new("script").arg("--version").output().is_err() {
        let note = "SKIPPED: no `script` command to give the CLI a terminal";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{note}");
        eprintln!("!!! {note}");
        return None;
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = format!(
        "{} --db {}",
        quote(env!("CARGO_BIN_EXE_sessiondb")),
        quote(db.to_str().unwrap())
    );
    for arg in args {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn script");
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(answer.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
    ))
}

#[test]
fn on_a_terminal_expire_asks_and_only_yes_goes_ahead() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "one"]);
    ok(&db, &["add", "s", "user", "two"]);
    let Some((done, shown)) = on_a_terminal(&db, &["expire", "--idle", "0s"], "n\n") else {
        return;
    };
    assert!(!done, "{shown}");
    assert!(
        shown.contains("sessiondb: delete 1 session idle for longer than 0 (2 messages)? [y/N] "),
        "{shown}"
    );
    assert!(
        shown.contains("expire stopped: nothing was changed"),
        "{shown}"
    );
    assert_eq!(sessions(&db), ["s"]);

    let (done, shown) = on_a_terminal(&db, &["expire", "--idle", "0s"], "yes\n").unwrap();
    assert!(done, "{shown}");
    assert!(shown.contains("expired 1 session, 2 messages"), "{shown}");
    assert_eq!(sessions(&db), Vec::<String>::new());
}

#[test]
fn restore_asks_can_dry_run_and_keeps_what_it_replaces() {
    let (dir, db) = temp_db();
    let backup = dir.path().join("backup.db");
    ok(&db, &["add", "old", "user", "before"]);
    ok(&db, &["backup", backup.to_str().unwrap()]);
    ok(&db, &["add", "live", "user", "l1"]);
    ok(&db, &["add", "live", "assistant", "l2"]);
    let from = backup.to_str().unwrap();
    // The automatic backup goes beside a database file; a PostgreSQL database has none,
    // so there it goes to the current directory: the test's own.
    let run = |args: &[&str]| {
        cli()
            .current_dir(dir.path())
            .arg("--db")
            .arg(&db)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let plan = format!("replace 2 sessions (3 messages) with the 1 session (1 message) of {from}");
    let refused = run(&["restore", from]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        format!(
            "sessiondb: restore would {plan}: pass --yes to go ahead (no terminal to ask on), \
             or --dry-run to see what it would do; nothing was changed\n"
        )
    );
    let dry = run(&["restore", from, "--dry-run"]);
    assert!(dry.status.success());
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout),
        format!("restore would {plan}; nothing was changed\n")
    );
    assert_eq!(sessions(&db), ["live", "old"]);
    let kept_before = std::fs::read_dir(dir.path()).unwrap().count();

    let done = run(&["restore", from, "--yes", "--json"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(report["sessions"], 1);
    assert_eq!(report["messages"], 1);
    let kept = Path::new(report["kept_backup"].as_str().unwrap());
    let kept = if kept.is_absolute() {
        kept.to_path_buf()
    } else {
        dir.path().join(kept)
    };
    assert!(
        kept.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .contains("before-restore-"),
        "{kept:?}"
    );
    assert_eq!(sessions(&db), ["old"]);
    // The kept copy holds exactly what was replaced.
    let copy = Store::open(&kept).unwrap();
    let live: Vec<String> = copy
        .chat_history("live", None)
        .unwrap()
        .iter()
        .map(|m| m.content().to_string())
        .collect();
    assert_eq!(live, ["l1", "l2"]);
    assert_eq!(copy.count_sessions(&Default::default()).unwrap(), 2);

    let files = || std::fs::read_dir(dir.path()).unwrap().count();
    let before = files();
    assert!(before > kept_before);
    let quiet = run(&["restore", from, "--yes", "--no-backup", "--json"]);
    assert!(quiet.status.success());
    let report: serde_json::Value = serde_json::from_slice(&quiet.stdout).unwrap();
    assert_eq!(report["kept_backup"], serde_json::Value::Null);
    assert_eq!(files(), before);
}

/// Reading the database as an input (a slip of the tab key) is refused before the file is
/// opened: closing that descriptor would drop the locks the command's own connections hold.
#[test]
fn the_database_itself_is_refused_as_an_input_file() {
    if common::sqlite_only("the database's own files") {
        return;
    }
    let (_dir, db) = temp_db();
    Store::open(&db)
        .unwrap()
        .add_user_message("s", "kept")
        .unwrap();
    let path = db.to_str().unwrap();
    let wal = format!("{path}-wal");
    for args in [
        vec!["import", path],
        vec!["append", "s", path],
        vec!["set-history", "s", wal.as_str()],
        vec!["compact", "s", "--at", "0", "--summary-file", path],
    ] {
        let err = cli_failure(&db, &args);
        assert!(err.contains("of the database itself"), "{args:?}: {err}");
    }
    assert_eq!(contents(&db, "s"), ["kept"]);
}
