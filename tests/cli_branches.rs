//! Branch commands that explain themselves, no-op edits that write nothing, and JSON objects
//! on every command.

mod common;

use common::{cli_json as json_out, cli_ok as ok, run_cli as run};

use std::path::Path;

use common::{cli, temp_db};
use serde_json::{json, Value};
use sessiondb::{NewMessage, Store};

fn branch_names(db: &Path, session: &str) -> Vec<String> {
    json_out(db, &["branch", "list", session, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect()
}

fn three_messages(db: &Path) {
    for m in ["a", "b", "c"] {
        ok(db, &["add", "s", "user", m]);
    }
}

#[test]
fn clear_of_an_empty_history_writes_nothing_and_says_so() {
    let (_dir, db) = temp_db();
    three_messages(&db);
    assert_eq!(
        ok(&db, &["clear", "s"]),
        "s: cleared; the previous history is kept as branch main@5\n"
    );
    assert_eq!(
        ok(&db, &["clear", "s"]),
        "s: already empty; nothing written\n"
    );
    assert_eq!(branch_names(&db, "s"), ["main@5", "main"]);
    assert_eq!(json_out(&db, &["show", "s", "--json"])["version"], 5);
}

#[test]
fn revert_to_the_last_message_writes_nothing_and_says_so() {
    let (_dir, db) = temp_db();
    three_messages(&db);
    assert_eq!(
        ok(&db, &["revert", "s", "--to", "2"]),
        "s: message 2 is already the last; nothing written\n"
    );
    assert_eq!(branch_names(&db, "s"), ["main"]);
    assert_eq!(
        ok(&db, &["revert", "s", "--to", "0"]),
        "s: reverted to message 0; 1 message; the previous history is kept as branch main@5\n"
    );
    let reverted = json_out(&db, &["revert", "s", "--to", "0", "--json"]);
    assert_eq!(
        (&reverted["version"], &reverted["message_count"]),
        (&json!(5), &json!(1))
    );
}

#[test]
fn set_history_with_the_same_history_writes_nothing() {
    let (_dir, db) = temp_db();
    three_messages(&db);
    let history = ok(&db, &["history", "s", "--json"]);
    let mut child = cli()
        .arg("--db")
        .arg(&db)
        .args(["set-history", "s", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), history.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"version": 4, "kept": 3, "written": 0, "superseded": false})
    );
    assert_eq!(branch_names(&db, "s"), ["main"]);
}

#[test]
fn no_op_clear_revert_and_set_history_keep_the_version_in_the_library() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .create_session(sessiondb::NewSession::with_id("e"))
        .unwrap();
    let version = store.version("e").unwrap();
    assert_eq!(store.clear("e").unwrap().version, version);
    for m in ["a", "b"] {
        store.add_user_message("s", m).unwrap();
    }
    let version = store.version("s").unwrap();
    assert_eq!(store.revert_to_message("s", 1).unwrap().version, version);
    let same: Vec<NewMessage> = store
        .chat_history("s", None)
        .unwrap()
        .iter()
        .cloned()
        .map(NewMessage::from)
        .collect();
    assert_eq!(store.set_chat_history("s", &same).unwrap().version, version);
    assert_eq!(store.version("s").unwrap(), version);
    assert_eq!(store.branches("s").unwrap().len(), 1);
    assert_eq!(store.branches("e").unwrap().len(), 1);
}

#[test]
fn branch_delete_says_what_became_of_the_branch_and_refuses_the_head() {
    let (_dir, db) = temp_db();
    three_messages(&db);
    ok(&db, &["branch", "create", "s", "alt", "--at", "0"]);
    assert_eq!(
        ok(&db, &["branch", "delete", "s", "alt"]),
        "s: branch alt deleted; readable as alt@6 until prune (`branch switch s alt@6` brings it back)\n"
    );
    let out = run(&db, &["branch", "delete", "s", "main"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "sessiondb: invalid input: branch \"main\" is the head of session \"s\": nothing was \
         deleted; switch to another branch first (or `clear` the session to start an empty \
         history)\n"
    );
    ok(&db, &["branch", "create", "s", "other"]);
    let deleted = json_out(&db, &["branch", "delete", "s", "other", "--json"]);
    assert_eq!(
        (&deleted["name"], &deleted["is_head"], &deleted["length"]),
        (&json!("other@8"), &json!(false), &json!(3))
    );
}

#[test]
fn branch_diff_shows_the_common_prefix_and_what_follows_on_each_side() {
    let (_dir, db) = temp_db();
    three_messages(&db);
    ok(&db, &["branch", "create", "s", "alt", "--at", "0"]);
    ok(&db, &["branch", "switch", "s", "alt"]);
    ok(&db, &["add", "s", "assistant", "x"]);
    assert_eq!(
        ok(&db, &["branch", "diff", "s", "main", "alt"]),
        "main and alt share 1 message and diverge at index 1\n\
         main (3 messages) has 2 more messages:\n\
         [1] user: b\n\
         [2] user: c\n\
         alt (2 messages) has 1 more message:\n\
         [1] assistant: x\n"
    );
    let diff = json_out(&db, &["branch", "diff", "s", "main", "alt", "--json"]);
    let contents = |side: &str| -> Vec<(u64, String)> {
        diff[side]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["index"].as_u64().unwrap(),
                    m["content"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        (
            &diff["session_id"],
            &diff["common"],
            &diff["a"]["branch"],
            &diff["a"]["length"],
            &diff["b"]["branch"],
            &diff["b"]["length"]
        ),
        (
            &json!("s"),
            &json!(1),
            &json!("main"),
            &json!(3),
            &json!("alt"),
            &json!(2)
        )
    );
    assert_eq!(contents("a"), [(1, "b".to_string()), (2, "c".to_string())]);
    assert_eq!(contents("b"), [(1, "x".to_string())]);
    ok(&db, &["branch", "create", "s", "copy"]);
    assert_eq!(
        ok(&db, &["branch", "diff", "s", "alt", "copy"]),
        "alt and copy hold the same 2 messages\n"
    );
    let out = run(&db, &["branch", "diff", "s", "main", "nope"]);
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "sessiondb: branch \"nope\" not found\n"
    );
}

#[test]
fn tree_of_a_fork_names_its_parent_and_tree_json_has_branches() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "a"]);
    let fork = ok(&db, &["fork", "s", "--title", "side"])
        .trim()
        .to_string();
    assert_eq!(
        ok(&db, &["tree", &fork]),
        format!("{fork} — side (1 message), forked from s\n└─ branch main* (1)\n")
    );
    let tree = json_out(&db, &["tree", "s", "--json"]);
    assert_eq!(
        (&tree["parent_session"], &tree["head_branch"]),
        (&Value::Null, &json!("main"))
    );
    let branch = &tree["branches"][0];
    assert_eq!(
        (
            &branch["name"],
            &branch["is_head"],
            &branch["superseded_at"]
        ),
        (&json!("main"), &json!(true), &Value::Null)
    );
    assert_eq!(tree["children"][0]["parent_session"], "s");
    assert_eq!(tree["children"][0]["branches"][0]["length"], 1);
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, the form the file stores.
fn is_stored_time(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let b = text.as_bytes();
    b.len() == 27
        && b[19] == b'.'
        && b[26] == b'Z'
        && b[20..26].iter().all(u8::is_ascii_digit)
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

#[test]
fn every_timestamp_prints_with_microseconds_and_z_even_a_whole_second() {
    let (dir, db) = temp_db();
    let file = dir.path().join("h.json");
    std::fs::write(
        &file,
        r#"[{"role":"user","content":"a","created_at":"2025-01-02T03:04:05Z"}]"#,
    )
    .unwrap();
    ok(&db, &["set-history", "s", file.to_str().unwrap()]);
    let history = json_out(&db, &["history", "s", "--json"]);
    assert_eq!(history[0]["created_at"], "2025-01-02T03:04:05.000000Z");
    let show = json_out(&db, &["show", "s", "--json"]);
    assert!(is_stored_time(&show["created_at"]), "{show}");
    assert!(is_stored_time(&show["updated_at"]), "{show}");
    let text = ok(&db, &["show", "s"]);
    let created = text
        .lines()
        .find_map(|l| l.strip_prefix("created:     "))
        .unwrap();
    assert_eq!(json!(created), show["created_at"]);
    let branch = &json_out(&db, &["branch", "list", "s", "--json"])[0];
    assert!(is_stored_time(&branch["created_at"]), "{branch}");
}

#[test]
fn commands_that_printed_only_text_print_json_objects_too() {
    let (dir, db) = temp_db();
    three_messages(&db);
    let created = json_out(&db, &["branch", "create", "s", "alt", "--json"]);
    assert_eq!(
        (&created["name"], &created["length"], &created["is_head"]),
        (&json!("alt"), &json!(3), &json!(false))
    );
    let renamed = json_out(&db, &["branch", "rename", "s", "alt", "alt2", "--json"]);
    assert_eq!(renamed["name"], "alt2");
    let switched = json_out(&db, &["branch", "switch", "s", "alt2", "--json"]);
    assert_eq!(switched["head_branch"], "alt2");
    let snap = json_out(&db, &["snapshot", "create", "s", "--json"]);
    let id = snap["id"].to_string();
    let restored = json_out(&db, &["snapshot", "restore", "s", &id, "--json"]);
    assert_eq!(restored["message_count"], 3);
    assert_eq!(
        json_out(&db, &["snapshot", "delete", "s", &id, "--json"]),
        json!({"session_id": "s", "deleted": snap["id"]})
    );
    let cleared = json_out(&db, &["clear", "s", "--json"]);
    assert_eq!(cleared["message_count"], 0);
    // A backup is a copy of the SQLite file (tests/backup.rs).
    if !common::on_postgres() {
        let copy = dir.path().join("copy.db");
        let backup = json_out(&db, &["backup", copy.to_str().unwrap(), "--json"]);
        assert_eq!(backup["path"], copy.display().to_string());
        assert_eq!(
            backup["bytes"].as_u64(),
            Some(std::fs::metadata(&copy).unwrap().len())
        );
    }
    assert_eq!(
        json_out(&db, &["delete", "s", "--json"]),
        json!({"deleted": "s"})
    );
}

#[test]
fn check_json_says_ok_and_names_every_field() {
    let (_dir, db) = temp_db();
    three_messages(&db);
    assert_eq!(
        json_out(&db, &["check", "--json"]),
        json!({"ok": true, "sessions": 1, "branches": 1, "messages": 3, "snapshots": 0,
               "problems": []})
    );
}

#[test]
fn history_json_with_a_trimmed_window_stays_the_array_and_says_so_in_json_on_stderr() {
    let (dir, db) = temp_db();
    let file = dir.path().join("h.json");
    std::fs::write(
        &file,
        json!([
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "r"},
            {"role": "assistant", "content": "a"}
        ])
        .to_string(),
    )
    .unwrap();
    ok(&db, &["set-history", "s", file.to_str().unwrap()]);
    let out = run(&db, &["history", "s", "--limit", "2", "--json"]);
    assert!(out.status.success());
    let window: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(window.as_array().map(Vec::len), Some(1));
    assert_eq!(window[0]["content"], "a");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "{\"trimmed_tool_results\":1}\n"
    );
    let out = run(&db, &["history", "s", "--limit", "3", "--json"]);
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "");
}

#[test]
fn import_refuses_json_that_is_not_a_session_of_the_named_format() {
    let (dir, db) = temp_db();
    let praison = dir.path().join("praison");
    std::fs::create_dir(&praison).unwrap();
    std::fs::write(praison.join("notes.json"), r#"{"foo": 1}"#).unwrap();
    let out = run(
        &db,
        &[
            "import",
            "--format",
            "praisonai",
            praison.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report,
        json!({"imported": 0, "updated": 0, "updated_ids": [], "unchanged": 0,
               "skipped": [{"source": praison.join("notes.json").display().to_string(),
                            "reason": "invalid input: not a PraisonAI session file (it has no \"messages\")"}],
               "dry_run": false})
    );
    let not_export = dir.path().join("x.json");
    std::fs::write(&not_export, r#"{"foo": 1}"#).unwrap();
    for format in [None, Some("sessiondb")] {
        let mut args = vec!["import", not_export.to_str().unwrap()];
        if let Some(format) = format {
            args.extend(["--format", format]);
        }
        let out = run(&db, &args);
        assert_eq!(out.status.code(), Some(1), "{format:?}");
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!(
                "sessiondb: invalid input: {}: not a sessiondb export (the document): missing field `sessions` at line 1 column 10\n",
                not_export.display()
            )
        );
    }
    assert_eq!(
        json_out(&db, &["sessions", "--json"])["sessions"],
        json!([])
    );
}
