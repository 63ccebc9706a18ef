//! The command line for everyday use: safe terminal output, paging, filters, editing,
//! imports that detect their format, plain-word search, and the global options.

mod common;

use common::{cli_json as json_out, cli_ok as ok, run_cli_with_input as run};

use common::{cli, temp_db};
use serde_json::{json, Value};
use sessiondb::{NewSession, SessionQuery, Store};

#[test]
fn history_escapes_control_characters_and_indents_continuation_lines() {
    let (_dir, db) = temp_db();
    ok(
        &db,
        &[
            "add",
            "s",
            "assistant",
            "\x1b[2Jcleared\x07\r\nline two\n[9] user: forged",
        ],
    );
    assert_eq!(
        ok(&db, &["history", "s"]),
        "[0] assistant: \\u{1b}[2Jcleared\\u{7}\\r\n    line two\n    [9] user: forged\n"
    );
    // JSON stays exact.
    assert_eq!(
        json_out(&db, &["history", "s", "--json"])[0]["content"],
        "\x1b[2Jcleared\x07\r\nline two\n[9] user: forged"
    );
}

#[test]
fn history_shows_tool_calls_and_the_parts_of_content() {
    let (_dir, db) = temp_db();
    let doc = json!([
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": "u"}}]},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "zoom", "arguments": "{\"x\":2}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "zoomed"}
    ]);
    let out = run(&db, &["set-history", "s"], &doc.to_string());
    assert!(out.status.success());
    assert_eq!(
        ok(&db, &["history", "s"]),
        "[0] user: look\n    [image_url]\n[1] assistant: calls zoom({\"x\":2})\n[2] tool (for c1): zoomed\n"
    );
}

#[test]
fn history_limit_that_cuts_off_a_call_says_so_on_stderr() {
    let (_dir, db) = temp_db();
    let doc = json!([
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
        {"role": "assistant", "content": "a"}
    ]);
    assert!(run(&db, &["set-history", "s"], &doc.to_string())
        .status
        .success());
    let out = run(&db, &["history", "s", "--limit", "2"], "");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "[3] assistant: a\n");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "sessiondb: left out 1 tool result(s) at the start: the call they answer is before the last 2 messages\n"
    );
}

#[test]
fn add_from_stdin_drops_the_final_newline_unless_asked_and_roles_ignore_case() {
    let (_dir, db) = temp_db();
    assert!(run(&db, &["add", "s", "User"], "hello\n").status.success());
    assert!(
        run(&db, &["add", "s", "USER", "-", "--keep-newline"], "kept\n")
            .status
            .success()
    );
    ok(&db, &["add", "s", "user", "arg\n"]);
    let history = json_out(&db, &["history", "s", "--json"]);
    let contents: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["hello", "kept\n", "arg\n"]);
}

#[test]
fn sessions_pages_with_a_cursor_and_says_how_many_more() {
    let (_dir, db) = temp_db();
    for id in ["a", "b", "c", "d", "e"] {
        ok(&db, &["add", id, "user", "x"]);
    }
    let first = json_out(&db, &["sessions", "--limit", "2", "--json"]);
    let ids = |page: &Value| -> Vec<String> {
        page["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&first), ["e", "d"]);
    assert_eq!(first["more"], 3);
    let cursor = first["next"].as_str().unwrap().to_string();
    let second = json_out(
        &db,
        &["sessions", "--limit", "2", "--after", &cursor, "--json"],
    );
    assert_eq!(ids(&second), ["c", "b"]);
    assert_eq!(second["more"], 1);
    let cursor = second["next"].as_str().unwrap().to_string();
    let last = json_out(
        &db,
        &["sessions", "--limit", "2", "--after", &cursor, "--json"],
    );
    assert_eq!(ids(&last), ["a"]);
    assert_eq!(
        (last["next"].clone(), last["more"].clone()),
        (Value::Null, json!(0))
    );
    // The human table says it on stderr, with the command to go on.
    let out = run(&db, &["sessions", "--limit", "4"], "");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "1 more: sessiondb sessions --after '{}' (with the same filters)\n",
            json_out(&db, &["sessions", "--limit", "4", "--json"])["next"]
                .as_str()
                .unwrap()
        )
    );
}

#[test]
fn sessions_limit_zero_and_a_bad_cursor_are_errors() {
    let (_dir, db) = temp_db();
    let out = run(&db, &["sessions", "--limit", "0"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be at least 1"));
    let out = run(&db, &["sessions", "--after", "nonsense"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not one printed by `sessions`"));
}

#[test]
fn edit_sets_and_clears_fields_and_the_filters_find_them() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s1", "user", "x"]);
    ok(&db, &["add", "s2", "user", "y"]);
    let edited = json_out(
        &db,
        &[
            "edit",
            "s1",
            "--title",
            "Trip to Oslo",
            "--agent-name",
            "travel",
            "--agent-id",
            "a-1",
            "--user",
            "ada",
            "--metadata",
            r#"{"tier":"gold","n":3}"#,
            "--json",
        ],
    );
    assert_eq!(
        (
            &edited["title"],
            &edited["agent_name"],
            &edited["agent_id"],
            &edited["user_id"],
            &edited["metadata"]
        ),
        (
            &json!("Trip to Oslo"),
            &json!("travel"),
            &json!("a-1"),
            &json!("ada"),
            &json!({"tier": "gold", "n": 3})
        )
    );
    let found = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["sessions", "--json"];
        all.extend_from_slice(args);
        json_out(&db, &all)["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(found(&["--agent", "travel"]), ["s1"]);
    assert_eq!(found(&["--user", "ada"]), ["s1"]);
    assert_eq!(found(&["--title", "oslo"]), ["s1"]);
    assert_eq!(
        found(&["--metadata", "tier=gold", "--metadata", "n=3"]),
        ["s1"]
    );
    assert!(found(&["--metadata", "tier=silver"]).is_empty());
    assert_eq!(found(&["--created-since", "2000-01-01"]).len(), 2);
    assert!(found(&["--updated-before", "2000-01-01"]).is_empty());
    let cleared = json_out(&db, &["edit", "s1", "--title", "", "--json"]);
    assert_eq!(
        (&cleared["title"], &cleared["agent_name"]),
        (&Value::Null, &json!("travel"))
    );
}

#[test]
fn list_sessions_filters_by_time_ranges_in_the_library() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.create_session(NewSession::with_id("old")).unwrap();
    let between = chrono::Utc::now();
    std::thread::sleep(std::time::Duration::from_millis(5));
    store.create_session(NewSession::with_id("new")).unwrap();
    let ids = |query: SessionQuery| -> Vec<String> {
        store
            .list_sessions(&query)
            .unwrap()
            .sessions
            .into_iter()
            .map(|s| s.id)
            .collect()
    };
    assert_eq!(
        ids(SessionQuery {
            created_since: Some(between),
            ..SessionQuery::default()
        }),
        ["new"]
    );
    assert_eq!(
        ids(SessionQuery {
            created_before: Some(between),
            ..SessionQuery::default()
        }),
        ["old"]
    );
    assert_eq!(
        ids(SessionQuery {
            updated_since: Some(between),
            limit: 1,
            ..SessionQuery::default()
        }),
        ["new"]
    );
}

#[test]
fn import_detects_the_format_and_fails_when_anything_was_skipped() {
    let (dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "hello"]);
    let export = dir.path().join("export.json");
    ok(&db, &["export", "--out", export.to_str().unwrap()]);
    let other = dir.path().join("other.db");
    let report: Value =
        serde_json::from_str(&ok(&other, &["import", export.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(report["imported"], 1);

    // A PraisonAI directory with one good and one broken file: the good one is imported, the
    // summary lists both, and the exit status says something was skipped.
    let sessions = dir.path().join("praison");
    std::fs::create_dir(&sessions).unwrap();
    std::fs::write(
        sessions.join("good.json"),
        json!({"session_id": "p1", "messages": [{"role": "user", "content": "hi"}]}).to_string(),
    )
    .unwrap();
    std::fs::write(sessions.join("bad.json"), "{not json").unwrap();
    let out = run(
        &other,
        &["import", sessions.to_str().unwrap(), "--json"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["imported"], 1);
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        skipped[0]["source"],
        sessions.join("bad.json").display().to_string()
    );
    assert!(!skipped[0]["reason"]
        .as_str()
        .unwrap()
        .contains("invalid input: invalid input"));

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just text").unwrap();
    let out = run(&other, &["import", text.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "sessiondb: invalid input: {}: cannot tell its format (not a directory, an SQLite database or a JSON export); pass --format\n",
            text.display()
        )
    );
}

#[test]
fn search_takes_plain_words_shows_the_branch_and_flags_old_history() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "what? don't use c++ here"]);
    // Replace the history: the old message lives on only in a superseded branch.
    assert!(run(
        &db,
        &["set-history", "s"],
        r#"[{"role":"user","content":"what? something else"}]"#
    )
    .status
    .success());
    // PostgreSQL's headline marks each word of "don't" (README: search differences).
    let marked = if common::on_postgres() {
        "[don]'[t]"
    } else {
        "[don't]"
    };
    assert_eq!(
        ok(&db, &["search", "don't c++"]),
        format!(
            "s [0] user on main@3 (not in the current history): what? {marked} use [c]++ here\n"
        )
    );
    let hits = json_out(&db, &["search", "what?", "--json"]);
    let mut flags: Vec<(String, bool)> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["branch"].as_str().unwrap().to_string(),
                h["in_current_history"].as_bool().unwrap(),
            )
        })
        .collect();
    flags.sort();
    assert_eq!(flags, [("main".into(), true), ("main@3".into(), false)]);
    let out = run(&db, &["search", "--fts", "\"unclosed"], "");
    assert_eq!(out.status.code(), Some(1));
    let out = run(&db, &["search", "   "], "");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "sessiondb: invalid input: the search query has no words\n"
    );
}

#[test]
fn maintain_json_names_its_fields() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "x"]);
    let report = json_out(&db, &["maintain", "--json"]);
    let mut keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["bytes_after", "bytes_before", "wal_busy"]);
    assert_eq!(report["wal_busy"], false);
}

#[test]
fn read_only_refuses_writes_and_busy_timeout_is_accepted() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "x"]);
    let out = run(&db, &["--read-only", "add", "s", "user", "y"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("read-only"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        ok(
            &db,
            &["--read-only", "--busy-timeout", "250ms", "history", "s"]
        ),
        "[0] user: x\n"
    );
    let out = run(&db, &["--busy-timeout", "soon", "history", "s"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn completions_print_a_script_for_each_shell_without_a_database() {
    for (shell, marker) in [
        ("bash", "_sessiondb()"),
        ("zsh", "#compdef sessiondb"),
        ("fish", "complete -c sessiondb"),
    ] {
        let out = cli().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains(marker),
            "{shell}: {}",
            &script[..script.len().min(200)]
        );
        assert!(script.contains("set-history"), "{shell}");
    }
}

/// The subcommands a `--help` text lists under "Commands:", `help` aside.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

fn help_of(path: &[String]) -> String {
    let out = cli().args(path).arg("--help").output().unwrap();
    assert!(out.status.success(), "{path:?} --help");
    String::from_utf8(out.stdout).unwrap()
}

/// Lines of a help section ("Options:", "Arguments:") that have no help text: the item
/// (`--flag <VALUE>` or `<SESSION>`) is parted from its help by two spaces.
fn items_without_help<'h>(help: &'h str, section: &str, starts: &[char]) -> Vec<&'h str> {
    help.lines()
        .skip_while(|l| *l != section)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(str::trim)
        .filter(|l| l.starts_with(starts) && !l.contains("  "))
        .collect()
}

#[test]
fn every_option_and_argument_of_every_command_and_subcommand_has_help() {
    let mut pending: Vec<Vec<String>> = subcommands(&help_of(&[]))
        .into_iter()
        .map(|c| vec![c])
        .collect();
    assert!(pending.len() > 20, "{pending:?}");
    let mut checked = Vec::new();
    while let Some(path) = pending.pop() {
        let help = help_of(&path);
        for sub in subcommands(&help) {
            let mut nested = path.clone();
            nested.push(sub);
            pending.push(nested);
        }
        let about = help.lines().next().unwrap_or_default();
        assert!(
            !about.is_empty() && !about.starts_with("Usage:"),
            "`sessiondb {}` has no description",
            path.join(" ")
        );
        assert_eq!(
            items_without_help(&help, "Options:", &['-']),
            Vec::<&str>::new(),
            "`sessiondb {}`: options without help",
            path.join(" ")
        );
        assert_eq!(
            items_without_help(&help, "Arguments:", &['<', '[']),
            Vec::<&str>::new(),
            "`sessiondb {}`: arguments without help",
            path.join(" ")
        );
        checked.push(path.join(" "));
    }
    for nested in [
        "branch create",
        "branch list",
        "branch switch",
        "branch rename",
        "branch delete",
        "branch history",
        "branch diff",
        "snapshot create",
        "snapshot list",
        "snapshot restore",
        "snapshot delete",
    ] {
        assert!(checked.iter().any(|c| c == nested), "{nested} not checked");
    }
}

/// The JSON of outcomes that have no value of their own (a deletion, a backup) and of a page
/// of sessions, byte for byte: scripts parse these, and their keys keep alphabetical order.
#[test]
fn json_outcomes_are_exact_text() {
    let (dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "hi"]);
    ok(&db, &["add", "t", "user", "hi"]);
    ok(&db, &["snapshot", "create", "s"]);
    assert_eq!(
        ok(&db, &["snapshot", "delete", "s", "1", "--json"]),
        "{\n  \"deleted\": 1,\n  \"session_id\": \"s\"\n}\n"
    );
    assert_eq!(
        ok(&db, &["delete", "t", "--json"]),
        "{\n  \"deleted\": \"t\"\n}\n"
    );
    let copy = dir.path().join("copy.db");
    let backup = json_out(&db, &["backup", copy.to_str().unwrap(), "--json"]);
    let bytes = std::fs::metadata(&copy).unwrap().len();
    assert_eq!(
        backup,
        json!({"bytes": bytes, "path": copy.display().to_string()})
    );
    let listing = ok(&db, &["sessions", "--limit", "1", "--json"]);
    let keys: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("  \""))
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    assert_eq!(keys, ["more", "next", "sessions"]);
    let listing: Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(listing["more"], 0);
    assert_eq!(listing["next"], Value::Null);
    assert_eq!(listing["sessions"][0]["id"], "s");
    let check = ok(&db, &["check", "--json"]);
    assert!(check.starts_with("{\n  \"branches\": 1,\n"), "{check}");
    assert_eq!(
        serde_json::from_str::<Value>(&check).unwrap(),
        json!({"ok": true, "sessions": 1, "branches": 1, "messages": 1, "snapshots": 0,
               "problems": []})
    );
}

/// `sessiondb completions bash | head -1`: the script is written to a pipe whose reader is
/// gone. The writer starts only after the reader closed its end, so the write fails every
/// time; it must end quietly with status 141 like every other command, not panic.
#[test]
fn completions_into_a_closed_pipe_exit_141_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
        { while [ ! -e "$1/closed" ]; do sleep 0.01; done
          "$0" completions bash 2>"$1/stderr"; echo $? >"$1/status"; } |
        { exec 0<&-; : >"$1/closed"; }"#;
    let status = std::process::Command::new("sh")
        .args(["-c", script, env!("CARGO_BIN_EXE_sessiondb")])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("status"), "141\n");
    assert_eq!(read("stderr"), "");
}

/// One of a thing is singular; `show` prints a missing agent as one dash; a snapshot restore
/// says where the replaced history went; `stats` shows no cache of its own one-shot process.
#[test]
fn wording_counts_agents_and_restores_read_right() {
    let (_dir, db) = temp_db();
    ok(&db, &["add", "s", "user", "one"]);
    assert_eq!(
        ok(&db, &["check"]),
        "1 session, 1 branch, 1 message, 0 snapshots\nok\n"
    );
    let show = ok(&db, &["show", "s"]);
    assert!(show.contains("\nagent:       -\n"), "{show}");
    ok(&db, &["edit", "s", "--agent-id", "a1"]);
    assert!(ok(&db, &["show", "s"]).contains("\nagent:       - (id a1)\n"));
    ok(&db, &["edit", "s", "--agent-name", "helper"]);
    assert!(ok(&db, &["show", "s"]).contains("\nagent:       helper (id a1)\n"));
    let id = ok(&db, &["snapshot", "create", "s"]).trim().to_string();
    ok(&db, &["add", "s", "user", "two"]);
    let version = json_out(&db, &["show", "s", "--json"])["version"]
        .as_i64()
        .unwrap();
    assert_eq!(
        ok(&db, &["snapshot", "restore", "s", &id]),
        format!(
            "s: restored snapshot {id}; 1 message; the previous history is kept as branch \
             main@{}\n",
            version + 1
        )
    );
    let stats = ok(&db, &["stats"]);
    assert!(
        stats.contains("rows:      1 session, 2 messages, 2 branches, 1 snapshot\n"),
        "{stats}"
    );
    assert!(!stats.contains("cache"), "{stats}");
    assert!(json_out(&db, &["stats", "--json"])["cache"].is_object());
}

/// A user's `name` is shown; an item an agent SDK stored without text (a reasoning step)
/// shows its kind and summary instead of an empty assistant line.
#[test]
fn history_shows_names_and_items_without_text() {
    let (_dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    let named: sessiondb::NewMessage =
        serde_json::from_value(json!({"role": "user", "content": "hi", "name": "alice"})).unwrap();
    store.add_message("s", named).unwrap();
    let reasoning = json!({"type": "reasoning", "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "look it up\n[9] user: no"}]});
    store
        .add_message(
            "s",
            sessiondb::NewMessage::from_openai_item(reasoning).unwrap(),
        )
        .unwrap();
    let bare = json!({"type": "web_search_call", "id": "ws_1", "status": "completed"});
    store
        .add_message("s", sessiondb::NewMessage::from_openai_item(bare).unwrap())
        .unwrap();
    assert_eq!(
        ok(&db, &["history", "s"]),
        "[0] user (name alice): hi\n\
         [1] assistant: [reasoning] look it up\n    [9] user: no\n\
         [2] assistant: [web_search_call]\n"
    );
}

/// `add --key` again: the same message says it was already stored (and `--json` has
/// `already_stored`); different content under a stored key is refused, nothing written.
#[test]
fn add_with_a_stored_key_says_so_and_refuses_different_content() {
    let (_dir, db) = temp_db();
    let first = json_out(&db, &["add", "s", "user", "hello", "--key", "k1", "--json"]);
    assert_eq!(first["already_stored"], false);
    assert_eq!(first["content"], "hello");
    assert_eq!(
        ok(&db, &["add", "s", "user", "hello", "--key", "k1"]),
        "s: message 0 (user) was already stored under this key; nothing written\n"
    );
    let again = json_out(&db, &["add", "s", "user", "hello", "--key", "k1", "--json"]);
    assert_eq!(again["already_stored"], true);
    assert_eq!(again["index"], 0);
    let err = common::cli_failure(&db, &["add", "s", "user", "HELLO", "--key", "k1"]);
    assert!(
        err.contains(
            "key \"k1\" is already stored in session \"s\" as message 0 with different \
             content; nothing was written"
        ),
        "{err}"
    );
    let history = json_out(&db, &["history", "s", "--json"]);
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["content"], "hello");
}

/// One name per concept: a message index is `--at`, an age `--older-than`, an agent
/// `--agent`; the old names still work, hidden. Global options are listed once per help,
/// under their own heading.
#[test]
fn one_name_per_concept_and_global_options_under_a_heading() {
    let (_dir, db) = temp_db();
    for i in 0..4 {
        ok(&db, &["add", "s", "user", &format!("m{i}")]);
    }
    ok(&db, &["compact", "s", "--at", "0", "--summary", "sum"]);
    ok(
        &db,
        &["compact", "s", "--through", "1", "--summary", "sum2"],
    );
    ok(&db, &["revert", "s", "--at", "2"]);
    ok(&db, &["revert", "s", "--to", "1"]);
    assert_eq!(json_out(&db, &["show", "s", "--json"])["message_count"], 2);
    ok(&db, &["edit", "s", "--agent", "a"]);
    assert_eq!(json_out(&db, &["show", "s", "--json"])["agent_name"], "a");
    ok(&db, &["edit", "s", "--agent-name", "b"]);
    assert_eq!(json_out(&db, &["show", "s", "--json"])["agent_name"], "b");
    for flag in ["--older-than", "--idle"] {
        let dry = json_out(&db, &["expire", flag, "1d", "--dry-run", "--json"]);
        assert_eq!(dry["sessions"], json!([]));
    }
    for (command, shown, hidden) in [
        (&["revert", "--help"][..], "--at <INDEX>", "--to"),
        (&["compact", "--help"], "--at <INDEX>", "--through"),
        (&["expire", "--help"], "--older-than <DURATION>", "--idle"),
        (&["edit", "--help"], "--agent <NAME>", "--agent-name"),
    ] {
        let help = ok(&db, command);
        assert!(help.contains(shown), "{help}");
        assert!(!help.contains(hidden), "{help}");
        assert_eq!(help.matches("Global options:").count(), 1, "{help}");
        assert_eq!(help.matches("--db <PATH|URL>").count(), 1, "{help}");
        let global = help.split("Global options:").nth(1).unwrap();
        assert!(global.contains("--read-only"), "{help}");
    }
}

/// Before anything is stored, a read fails saying where it looked and what creates a
/// database; the first write says it created one.
#[test]
fn first_run_says_nothing_is_stored_yet_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let shown = db.display().to_string();
    for args in [
        &["sessions"][..],
        &["sessions", "--json"],
        &["history", "s"],
    ] {
        let err = common::cli_failure(&db, args);
        assert_eq!(
            err,
            format!(
                "sessiondb: nothing has been stored at {shown} yet: there is no database there \
                 (a command that writes, such as `add`, creates it)\n"
            )
        );
    }
    assert!(!db.exists());
    let out = run(&db, &["add", "s", "user", "hi"], "");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("sessiondb: created a new database at {shown}\n")
    );
    let out = run(&db, &["add", "s", "user", "again"], "");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// `sessiondb demo` writes a conversation of its own to demo.db beside the default
/// database, never into the default one, and says where and how to look at it.
#[test]
fn the_demo_writes_demo_db_beside_the_default_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("sessions.db");
    let out = cli()
        .env("SESSIONDB_PATH", &real)
        .arg("demo")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8(out.stdout).unwrap();
    let demo = dir.path().join("demo.db");
    assert!(!real.exists());
    let store = Store::open_existing(&demo).unwrap();
    let page = store.list_sessions(&SessionQuery::default()).unwrap();
    assert_eq!(page.sessions.len(), 1);
    let session = &page.sessions[0];
    assert_eq!(session.message_count, 13);
    assert_eq!(session.usage.input_tokens, 1620);
    let first = format!("Stored session {} in {}\n", session.id, demo.display());
    assert!(shown.starts_with(&first), "{shown}");
    assert!(
        shown.contains(
            "[12] assistant (demo-model): Booked: two tickets, confirmation FRAM-2291.\n"
        ),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "sessiondb --db '{}' history {}",
            demo.display(),
            session.id
        )),
        "{shown}"
    );
    // --db names the file instead.
    let other = dir.path().join("elsewhere.db");
    ok(&other, &["demo"]);
    assert_eq!(
        Store::open_existing(&other)
            .unwrap()
            .count_sessions(&SessionQuery::default())
            .unwrap(),
        1
    );
}

/// The documented edit round trip on a compacted session: `history --json` (the working
/// view) is refused by set-history with what to run instead, nothing changes; `history
/// --full --json` round-trips exactly, keeping the compaction.
#[test]
fn the_edit_round_trip_on_a_compacted_session_is_exact_or_refused() {
    let (dir, db) = temp_db();
    for i in 0..4 {
        ok(&db, &["add", "s", "user", &format!("m{i}")]);
    }
    ok(&db, &["compact", "s", "--at", "1", "--summary", "sum"]);
    let before = json_out(&db, &["show", "s", "--json"]);
    let working = dir.path().join("working.json");
    std::fs::write(&working, ok(&db, &["history", "s", "--json"])).unwrap();
    let err = common::cli_failure(&db, &["set-history", "s", working.to_str().unwrap()]);
    assert!(
        err.contains("message 0 of the array has index 1: this is not a whole history"),
        "{err}"
    );
    assert!(err.contains("history --full --json"), "{err}");
    let limited = dir.path().join("limited.json");
    std::fs::write(
        &limited,
        ok(&db, &["history", "s", "--limit", "2", "--json"]),
    )
    .unwrap();
    common::cli_failure(&db, &["set-history", "s", limited.to_str().unwrap()]);
    assert_eq!(json_out(&db, &["show", "s", "--json"]), before);

    let full = dir.path().join("full.json");
    std::fs::write(&full, ok(&db, &["history", "s", "--full", "--json"])).unwrap();
    let change = json_out(&db, &["set-history", "s", full.to_str().unwrap(), "--json"]);
    assert_eq!(change["written"], 0);
    assert_eq!(change["kept"], 4);
    assert_eq!(json_out(&db, &["show", "s", "--json"]), before);
    let view: Vec<String> = json_out(&db, &["history", "s", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(view, ["sum", "m2", "m3"]);
}
