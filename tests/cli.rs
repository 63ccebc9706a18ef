//! The `sessiondb` binary: commands, JSON output, errors on stderr with a non-zero exit.

mod common;

use common::{cli_failure as failure, cli_json as json_out, cli_ok as ok};

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{cli, temp_db};
use serde_json::json;

#[test]
fn add_then_history_json_round_trips_every_field() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "What is the weather?"]);
    ok(
        &db,
        &[
            "add",
            "s",
            "assistant",
            "",
            "--tool-calls",
            r#"[{"id":"c1","type":"function","function":{"name":"weather","arguments":"{}"}}]"#,
            "--model",
            "gpt-x",
            "--input-tokens",
            "12",
            "--output-tokens",
            "3",
            "--metadata",
            r#"{"turn":1}"#,
        ],
    );
    ok(&db, &["add", "s", "tool", "sunny", "--tool-call-id", "c1"]);
    let history = json_out(&db, &["history", "s", "--json"]);
    let items = history.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["role"], "user");
    assert_eq!(items[0]["content"], "What is the weather?");
    assert_eq!(items[0]["index"], 0);
    assert_eq!(
        items[1]["tool_calls"],
        json!([{"id": "c1", "type": "function",
                "function": {"name": "weather", "arguments": "{}"}}])
    );
    assert_eq!(items[1]["model"], "gpt-x");
    assert_eq!(items[1]["input_tokens"], 12);
    assert_eq!(items[1]["output_tokens"], 3);
    assert_eq!(items[1]["metadata"], json!({"turn": 1}));
    assert_eq!(items[2]["tool_call_id"], "c1");
    assert!(items[0].get("tool_calls").is_none());

    let text = ok(&db, &["history", "s", "--limit", "2"]);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "[1] assistant (gpt-x): calls weather({})",
            "[2] tool (for c1): sunny"
        ]
    );
    // A window of one would start with a tool result whose call it cut off.
    assert_eq!(ok(&db, &["history", "s", "--limit", "1"]), "");
}

#[test]
fn add_reads_content_from_stdin() {
    let (_dir, db) = temp_db();
    let mut child = cli()
        .arg("--db")
        .arg(&db)
        .args(["add", "s", "user", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("line one\nline two".as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let history = json_out(&db, &["history", "s", "--json"]);
    assert_eq!(history[0]["content"], "line one\nline two");
}

#[test]
fn set_history_reads_the_history_json_shape_from_a_file() {
    let (dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "a"]);
    ok(&db, &["add", "s", "assistant", "b"]);
    let mut history = json_out(&db, &["history", "s", "--json"]);
    history[1]["content"] = json!("B");
    history
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "user", "content": "c"}));
    let file = dir.path().join("history.json");
    std::fs::write(&file, history.to_string()).unwrap();

    let change = json_out(&db, &["set-history", "s", file.to_str().unwrap(), "--json"]);
    assert_eq!(change["kept"], 1);
    assert_eq!(change["written"], 2);
    assert_eq!(change["superseded"], true);
    let after = json_out(&db, &["history", "s", "--json"]);
    let contents: Vec<&str> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["a", "B", "c"]);
}

#[test]
fn sessions_and_show_list_what_is_stored() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "first", "user", "x"]);
    ok(&db, &["add", "second", "user", "y"]);
    ok(&db, &["add", "second", "assistant", "z"]);
    let list = json_out(&db, &["sessions", "--json"]);
    let ids: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["second", "first"]);
    let table = ok(&db, &["sessions"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("ID"));
    assert!(
        lines[1].starts_with("second") && lines[1].contains(" 2 "),
        "{}",
        lines[1]
    );

    let show = json_out(&db, &["show", "second", "--json"]);
    assert_eq!(show["message_count"], 2);
    assert_eq!(show["head_branch"], "main");
    assert!(ok(&db, &["show", "second"]).contains("messages:    2"));
}

#[test]
fn clear_and_delete_change_what_history_shows() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "x"]);
    ok(&db, &["clear", "s"]);
    assert_eq!(json_out(&db, &["history", "s", "--json"]), json!([]));
    ok(&db, &["delete", "s"]);
    let err = failure(&db, &["history", "s"]);
    assert!(err.contains("session \"s\" not found"), "{err}");
}

#[test]
fn bad_input_fails_on_stderr_and_stores_nothing() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "kept"]);
    let cases: [(&[&str], &str); 5] = [
        (&["add", "s", "robot", "x"], "unknown role \"robot\""),
        (
            &["add", "s", "user", "x", "--metadata", "[1,2]"],
            "metadata must be a JSON object",
        ),
        (
            &["add", "s", "user", "x", "--metadata", "{oops"],
            "metadata is not valid JSON",
        ),
        (
            &["add", "s", "assistant", "x", "--tool-calls", "{}"],
            "tool calls must be a JSON array",
        ),
        (&["add", "", "user", "x"], "session id is empty"),
    ];
    for (args, expected) in cases {
        let err = failure(&db, args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let history = json_out(&db, &["history", "s", "--json"]);
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(
        json_out(&db, &["sessions", "--json"])["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_file_that_is_not_a_database_is_named_in_the_error() {
    if common::sqlite_only("a file that is not a database") {
        return;
    }
    let (_dir, db) = temp_db();
    std::fs::write(&db, "hello, not sqlite").unwrap();
    let err = failure(&db, &["sessions"]);
    assert!(
        err.contains(db.to_str().unwrap()) && err.contains("not a sessiondb database"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&db).unwrap(), "hello, not sqlite");
}

#[test]
fn the_database_path_defaults_to_sessiondb_path() {
    let (_dir, db) = temp_db();
    let out = cli()
        .env("SESSIONDB_PATH", &db)
        .args(["add", "s", "user", "via env"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        json_out(&db, &["history", "s", "--json"])[0]["content"],
        "via env"
    );
}

fn history_contents(db: &Path, session: &str) -> Vec<String> {
    json_out(db, &["history", session, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn fork_prints_the_new_session_id_and_json_prints_an_object() {
    let (_dir, db) = temp_db();
    for m in ["a", "b", "c"] {
        ok(&db, &["add", "s", "user", m]);
    }
    let id = ok(&db, &["fork", "s", "--at", "1"]).trim().to_string();
    assert_eq!(history_contents(&db, &id), ["a", "b"]);
    let fork = json_out(&db, &["fork", "s", "--title", "whole", "--json"]);
    let id2 = fork["id"].as_str().unwrap();
    assert_eq!(fork["title"], "whole");
    assert_eq!(fork["parent_session"], "s");
    assert_eq!(history_contents(&db, id2), ["a", "b", "c"]);
    let err = failure(&db, &["fork", "s", "--at", "9"]);
    assert!(err.contains("past the end"), "{err}");
}

#[test]
fn branch_commands_create_list_switch_rename_and_delete() {
    let (_dir, db) = temp_db();
    for m in ["a", "b", "c"] {
        ok(&db, &["add", "s", "user", m]);
    }
    ok(&db, &["branch", "create", "s", "alt", "--at", "0"]);
    ok(&db, &["branch", "switch", "s", "alt"]);
    ok(&db, &["add", "s", "user", "x"]);
    assert_eq!(history_contents(&db, "s"), ["a", "x"]);
    let list = json_out(&db, &["branch", "list", "s", "--json"]);
    let rows: Vec<(String, u64, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().into(),
                b["length"].as_u64().unwrap(),
                b["is_head"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [("main".into(), 3, false), ("alt".into(), 2, true)]);
    let text = ok(&db, &["branch", "list", "s"]);
    assert!(text.lines().any(|l| l.starts_with("* alt")), "{text}");
    let main = json_out(&db, &["branch", "history", "s", "main", "--json"]);
    assert_eq!(main.as_array().unwrap().len(), 3);
    ok(&db, &["branch", "rename", "s", "main", "first"]);
    ok(&db, &["branch", "delete", "s", "first"]);
    let err = failure(&db, &["branch", "delete", "s", "alt"]);
    assert!(err.contains("head"), "{err}");
    let err = failure(&db, &["branch", "switch", "s", "first"]);
    assert!(err.contains("branch \"first\" not found"), "{err}");
}

#[test]
fn snapshot_commands_create_list_restore_and_delete() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "a"]);
    let id = ok(&db, &["snapshot", "create", "s", "--label", "safe"])
        .trim()
        .to_string();
    ok(&db, &["add", "s", "user", "risky"]);
    let list = json_out(&db, &["snapshot", "list", "s", "--json"]);
    assert_eq!(list[0]["id"].to_string(), id);
    assert_eq!(list[0]["label"], "safe");
    assert_eq!(list[0]["length"], 1);
    ok(&db, &["snapshot", "restore", "s", &id]);
    assert_eq!(history_contents(&db, "s"), ["a"]);
    ok(&db, &["snapshot", "delete", "s", &id]);
    assert_eq!(
        json_out(&db, &["snapshot", "list", "s", "--json"]),
        json!([])
    );
    let err = common::cli_usage_error(&db, &["snapshot", "restore", "s", "abc"]);
    assert!(err.contains("abc"), "{err}");
}

#[test]
fn revert_tree_and_prune_work_from_the_command_line() {
    let (_dir, db) = temp_db();
    for m in ["a", "b", "c"] {
        ok(&db, &["add", "s", "user", m]);
    }
    let fork = ok(&db, &["fork", "s", "--title", "side"])
        .trim()
        .to_string();
    ok(&db, &["revert", "s", "--to", "0"]);
    assert_eq!(history_contents(&db, "s"), ["a"]);
    let tree = ok(&db, &["tree", "s"]);
    let lines: Vec<&str> = tree.lines().collect();
    assert_eq!(lines[0], "s (1 message)");
    assert!(
        lines.contains(&"├─ branch main* (1, from main@5 @ 0)"),
        "{tree}"
    );
    assert!(
        lines.contains(&"├─ 1 previous head(s), kept until prune"),
        "{tree}"
    );
    assert!(
        lines.contains(&format!("└─ fork {fork} — side (3 messages)").as_str()),
        "{tree}"
    );
    let tree_json = json_out(&db, &["tree", "s", "--json"]);
    assert_eq!(tree_json["children"][0]["id"], fork.as_str());

    let dry = json_out(&db, &["prune", "--older-than", "0", "--dry-run", "--json"]);
    // The old head's rows are still inherited by the fork: nothing is unreachable.
    assert_eq!(dry, json!({"branches": 0, "messages": 0, "bytes": 0}));
    ok(&db, &["delete", &fork]);
    // Now only "a" of the old head is reachable (the new head inherits it): "b" and "c" go.
    let dry = json_out(&db, &["prune", "--older-than", "0", "--dry-run", "--json"]);
    assert_eq!(dry, json!({"branches": 0, "messages": 2, "bytes": 2}));
    assert_eq!(
        json_out(&db, &["prune", "--older-than", "1h", "--json"])["branches"],
        0
    );
    // No terminal to ask on: refused, nothing removed.
    let refused = common::cli_failure(&db, &["prune", "--older-than", "0"]);
    assert_eq!(
        refused,
        "sessiondb: prune would remove 2 messages of superseded history older than 0 \
         (0 whole branches, 2 bytes): pass --yes to go ahead (no terminal to ask on), or \
         --dry-run to see what it would do; nothing was changed\n"
    );
    assert_eq!(
        json_out(&db, &["prune", "--older-than", "0", "--dry-run", "--json"]),
        dry
    );
    assert_eq!(
        json_out(&db, &["prune", "--older-than", "0", "--yes", "--json"]),
        dry
    );
    assert_eq!(
        json_out(&db, &["prune", "--older-than", "0", "--dry-run", "--json"]),
        json!({"branches": 0, "messages": 0, "bytes": 0})
    );
    assert_eq!(history_contents(&db, "s"), ["a"]);
    let err = common::cli_usage_error(&db, &["prune", "--older-than", "3x"]);
    assert!(err.contains("unknown unit"), "{err}");
}

#[test]
fn stats_counts_rows_and_what_prune_would_remove() {
    let (_dir, db) = temp_db();
    for m in ["a", "b", "c"] {
        ok(&db, &["add", "s", "user", m]);
    }
    ok(&db, &["add", "t", "user", "x"]);
    ok(&db, &["clear", "t"]);
    let stats = json_out(&db, &["stats", "--older-than", "0", "--json"]);
    assert_eq!(stats["sessions"], 2);
    assert_eq!(stats["messages"], 4);
    assert_eq!(stats["branches"], 3);
    assert_eq!(
        stats["prunable"],
        json!({"branches": 1, "messages": 1, "bytes": 1})
    );
    assert_eq!(
        stats["largest_sessions"],
        json!([{"id": "s", "messages": 3}, {"id": "t", "messages": 0}])
    );
    assert!(stats["file_bytes"].as_u64().unwrap() > 0);
    assert!(
        ok(&db, &["stats"]).contains("rows:      2 sessions, 4 messages, 3 branches, 0 snapshots")
    );
}

#[test]
fn tree_dot_draws_sessions_branches_and_forks_for_graphviz() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "a"]);
    ok(&db, &["branch", "create", "s", "alt"]);
    let fork = ok(&db, &["fork", "s", "--title", "say \"hi\""])
        .trim()
        .to_string();
    let dot = ok(&db, &["tree", "s", "--dot"]);
    let lines: Vec<&str> = dot.lines().collect();
    assert_eq!(lines[0], "digraph sessions {");
    assert_eq!(*lines.last().unwrap(), "}");
    assert!(
        lines.contains(&"  \"s\" [shape=box, label=\"s\\n (1 message)\"];"),
        "{dot}"
    );
    assert!(
        lines.contains(&"  \"s/main\" [label=\"main (1)\", style=bold];"),
        "{dot}"
    );
    assert!(lines.contains(&"  \"s/alt\" [label=\"alt (1)\"];"), "{dot}");
    let fork_label =
        format!("  \"{fork}\" [shape=box, label=\"{fork}\\nsay \\\"hi\\\" (1 message)\"];");
    assert!(lines.contains(&fork_label.as_str()), "{dot}");
    assert!(
        lines.contains(&format!("  \"s\" -> \"{fork}\" [label=\"fork\"];").as_str()),
        "{dot}"
    );
}

/// `sessiondb history big | head -1`: the reader closes the pipe after one line while the
/// command still has far more than a pipe buffer (64 KiB) to write.
#[test]
fn a_closed_stdout_ends_the_command_quietly_with_status_141_not_a_panic() {
    let (_dir, db) = temp_db();
    let store = sessiondb::Store::open(&db).unwrap();
    let filler = "x".repeat(100);
    for i in 0..2000 {
        store
            .add_user_message("big", &format!("message {i} {filler}"))
            .unwrap();
    }
    drop(store);
    let cases: [(&[&str], String); 3] = [
        (
            &["history", "big"],
            format!("[0] user: message 0 {filler}\n"),
        ),
        (&["history", "big", "--json"], "[\n".to_string()),
        (&["export"], "{\n".to_string()),
    ];
    for (args, first_line) in cases {
        let mut child = cli()
            .arg("--db")
            .arg(&db)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        drop(reader);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{args:?} still running after 30 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(line, first_line, "{args:?}");
        assert_eq!(stderr, "", "{args:?} wrote to stderr");
        assert_eq!(status.code(), Some(141), "{args:?}: {status:?}");
    }
}
