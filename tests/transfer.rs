//! Export and import: sessiondb's own format round-trips; PraisonAI and OpenAI Agents SDK
//! stores come in with their ids, messages, tool calls, titles, parents and snapshots.

mod common;

use std::path::{Path, PathBuf};

use common::{cli, temp_db};
use serde_json::json;
use sessiondb::{ImportOptions, NewMessage, NewSession, Role, SkippedSource, Store};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn none(_: usize, _: usize) {}

fn opts() -> ImportOptions {
    ImportOptions::default()
}

fn contents(store: &Store, id: &str) -> Vec<String> {
    store
        .chat_history(id, None)
        .unwrap()
        .iter()
        .map(|m| m.content().to_string())
        .collect()
}

fn rich(store: &Store) {
    store
        .create_session(NewSession {
            id: Some("s".into()),
            title: Some("Rich".into()),
            agent_name: Some("a".into()),
            user_id: Some("u".into()),
            metadata: json!({"k": [1, 2]}).as_object().unwrap().clone(),
            ..NewSession::default()
        })
        .unwrap();
    store.add_message("s", NewMessage::system("sys")).unwrap();
    store
        .add_message(
            "s",
            NewMessage::assistant("")
                .with_tool_calls(vec![json!({"id": "c1", "type": "function",
                    "function": {"name": "f", "arguments": "{}"}})])
                .with_usage(10, 2, Some(0.5))
                .with_model("m"),
        )
        .unwrap();
    store
        .add_message("s", NewMessage::tool("c1", "result"))
        .unwrap();
    store.create_snapshot("s", Some("three"), None).unwrap();
    store.create_branch("s", "alt", Some(0)).unwrap();
    store
        .set_chat_history(
            "s",
            &[NewMessage::system("sys"), NewMessage::user("changed")],
        )
        .unwrap();
    let fork = store.fork_session("s", Some(0), Some("forked")).unwrap();
    store.add_user_message(&fork.id, "fork only").unwrap();
}

#[test]
fn an_export_imported_into_an_empty_file_exports_identically() {
    let (_d1, first) = temp_db();
    let store = Store::open(&first).unwrap();
    rich(&store);
    let exported = store.export(&[], true, &mut none).unwrap();
    assert_eq!(exported.sessions.len(), 2);

    let (_d2, second) = temp_db();
    let copy = Store::open(&second).unwrap();
    let report = copy.import_export(&exported, &opts(), &mut none).unwrap();
    assert_eq!(
        (report.imported, report.updated, report.unchanged),
        (2, 0, 0)
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let again = copy.export(&[], true, &mut none).unwrap();
    assert_eq!(again.sessions, exported.sessions);
    assert!(copy.check().unwrap().is_ok());
    assert_eq!(
        copy.session("s").unwrap().usage,
        store.session("s").unwrap().usage
    );
    // The superseded head came back by name, and can still be switched to.
    let old = again.sessions[0].branches.as_ref().unwrap()[0].name.clone();
    assert!(old.starts_with("main@"), "{old}");
    copy.switch_branch("s", &old).unwrap();
    assert_eq!(contents(&copy, "s"), ["sys", "", "result"]);
    copy.restore_snapshot("s", copy.snapshots("s").unwrap()[0].id)
        .unwrap();
    assert_eq!(contents(&copy, "s"), ["sys", "", "result"]);
}

#[test]
fn importing_the_same_export_twice_changes_nothing() {
    let (_d1, first) = temp_db();
    let store = Store::open(&first).unwrap();
    rich(&store);
    let exported = store.export(&[], true, &mut none).unwrap();
    let (_d2, second) = temp_db();
    let copy = Store::open(&second).unwrap();
    copy.import_export(&exported, &opts(), &mut none).unwrap();
    let versions: Vec<i64> = exported
        .sessions
        .iter()
        .map(|s| copy.session(&s.id).unwrap().version)
        .collect();
    let report = copy.import_export(&exported, &opts(), &mut none).unwrap();
    assert_eq!(
        (report.imported, report.updated, report.unchanged),
        (0, 0, 2)
    );
    let after: Vec<i64> = exported
        .sessions
        .iter()
        .map(|s| copy.session(&s.id).unwrap().version)
        .collect();
    assert_eq!(versions, after);
}

#[test]
fn a_single_session_exports_its_current_history_only() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    rich(&store);
    let file = store.export(&["s".to_string()], false, &mut none).unwrap();
    assert_eq!(file.format, "sessiondb-export");
    assert_eq!(file.sessions.len(), 1);
    let s = &file.sessions[0];
    assert!(s.branches.is_none() && s.snapshots.is_none());
    let texts: Vec<&str> = s.messages.iter().map(|m| m.content()).collect();
    assert_eq!(texts, ["sys", "changed"]);
}

#[test]
fn praisonai_session_files_import_with_ids_messages_and_tool_calls() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let report = store
        .import_praisonai(&fixtures().join("praisonai"), &opts(), &mut none)
        .unwrap();
    assert_eq!((report.imported, report.skipped.len()), (2, 0));
    // "chat.2" is stored by PraisonAI as chat_2.json; its id is what the file says.
    assert_eq!(
        contents(&store, "chat.2"),
        ["Second session, with a dot in its id.", "Noted."]
    );
    let history = store.chat_history("chat-1", None).unwrap();
    let roles: Vec<Role> = history.iter().map(|m| m.role()).collect();
    assert_eq!(
        roles,
        [
            Role::System,
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Assistant
        ]
    );
    assert_eq!(
        history[2].body.tool_calls.as_ref().unwrap()[0]["function"]["name"],
        "weather"
    );
    assert_eq!(history[3].body.tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(history[4].body.model.as_deref(), Some("gpt-4o-mini"));
    let session = store.session("chat-1").unwrap();
    assert_eq!(session.agent_name.as_deref(), Some("travel-agent"));
    assert_eq!(session.user_id.as_deref(), Some("alice"));
    assert!(history
        .windows(2)
        .all(|w| w[0].created_at <= w[1].created_at));

    let again = store
        .import_praisonai(&fixtures().join("praisonai"), &opts(), &mut none)
        .unwrap();
    assert_eq!((again.imported, again.updated, again.unchanged), (0, 0, 2));
}

#[test]
fn praisonai_hierarchy_files_bring_titles_parents_snapshots_and_shared_forks() {
    if common::sqlite_only(
        "praisonai hierarchy files bring titles parents snapshots and shared forks",
    ) {
        return;
    }
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let report = store
        .import_praisonai(&fixtures().join("praisonai-hierarchy"), &opts(), &mut none)
        .unwrap();
    assert_eq!(
        (report.imported, report.skipped.len()),
        (2, 0),
        "{:?}",
        report.skipped
    );
    let root = store
        .list_sessions(&Default::default())
        .unwrap()
        .sessions
        .into_iter()
        .find(|s| s.title.as_deref() == Some("Main conversation"))
        .unwrap();
    let children = store.child_sessions(&root.id).unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].title.as_deref(), Some("Alternative"));
    assert_eq!(
        contents(&store, &children[0].id).last().unwrap(),
        "alternative question"
    );
    assert_eq!(contents(&store, &root.id).len(), 9);
    let snaps = store.snapshots(&root.id).unwrap();
    assert_eq!(snaps.len(), 1);
    assert_eq!(
        (snaps[0].label.as_deref(), snaps[0].length),
        (Some("Before detour"), 8)
    );
    // The fork shares the parent's first four messages instead of copying them.
    let rows: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 9 + 1);
}

#[test]
fn corrupt_and_non_utf8_praisonai_files_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("praisonai")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    std::fs::write(
        dir.path().join("broken.json"),
        "{\"session_id\": \"b\", \"messages\": [",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("latin1.json"),
        b"{\"session_id\": \"caf\xe9\"}",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("badrole.json"),
        r#"{"session_id": "r", "messages": [{"role": "robot", "content": "x"}]}"#,
    )
    .unwrap();
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let report = store
        .import_praisonai(dir.path(), &opts(), &mut none)
        .unwrap();
    assert_eq!(report.imported, 2);
    let mut skipped: Vec<(String, String)> = report
        .skipped
        .iter()
        .map(|skip| {
            (
                Path::new(&skip.source)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                skip.reason.clone(),
            )
        })
        .collect();
    skipped.sort();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped[0].0 == "badrole.json" && skipped[0].1.contains("unknown role \"robot\""));
    assert!(skipped[1].0 == "broken.json" && skipped[1].1.contains("invalid JSON"));
    assert!(skipped[2].0 == "latin1.json" && skipped[2].1.contains("not UTF-8"));
    assert!(!store.session_exists("b").unwrap() && !store.session_exists("r").unwrap());
}

#[test]
fn openai_agents_sessions_import_with_function_calls_and_outputs() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let report = store
        .import_openai_agents(&fixtures().join("openai-agents.db"), &opts(), &mut none)
        .unwrap();
    assert_eq!(
        (report.imported, report.skipped.len()),
        (2, 0),
        "{:?}",
        report.skipped
    );
    let history = store.chat_history("conv-1", None).unwrap();
    let shape: Vec<(Role, &str)> = history.iter().map(|m| (m.role(), m.content())).collect();
    assert_eq!(
        shape,
        [
            (Role::User, "What's 2+2? Use the calculator."),
            (Role::Assistant, ""),
            (Role::Tool, "4"),
            (Role::Assistant, "It is 4."),
        ]
    );
    let call = &history[1].body.tool_calls.as_ref().unwrap()[0];
    assert_eq!(
        (call["id"].as_str(), call["function"]["name"].as_str()),
        (Some("call_a"), Some("calculator"))
    );
    assert_eq!(history[2].body.tool_call_id.as_deref(), Some("call_a"));
    assert_eq!(
        history[3].body.metadata.as_ref().unwrap()["openai_item"]["id"],
        "msg_1"
    );
    assert_eq!(contents(&store, "conv-2"), ["Be brief.", "Hi", "Hello!"]);
    let again = store
        .import_openai_agents(&fixtures().join("openai-agents.db"), &opts(), &mut none)
        .unwrap();
    assert_eq!(again.unchanged, 2);
    let err = store
        .import_openai_agents(
            &fixtures().join("praisonai/chat-1.json"),
            &opts(),
            &mut none,
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not an OpenAI Agents SQLiteSession database"),
        "{err}"
    );
}

#[test]
fn the_cli_exports_to_a_file_and_imports_it() {
    let (dir, first) = temp_db();
    rich(&Store::open(&first).unwrap());
    let out = dir.path().join("export.json");
    let status = cli()
        .arg("--db")
        .arg(&first)
        .args(["export", "--all-branches", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let second = dir.path().join("second.db");
    let run = cli()
        .arg("--db")
        .arg(&second)
        .args(["import", "--format", "sessiondb", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["imported"], 2);
    let run = cli()
        .arg("--db")
        .arg(&second)
        .args(["import", "--format", "praisonai"])
        .arg(fixtures().join("praisonai"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "2 imported, 0 updated, 0 unchanged, 0 skipped"
    );
}

#[test]
fn an_imported_superseded_name_keeps_later_versions_above_it_and_a_huge_one_is_refused() {
    let (_d1, first) = temp_db();
    let store = Store::open(&first).unwrap();
    rich(&store);
    let exported = store.export(&["s".to_string()], true, &mut none).unwrap();
    let renamed = |name: &str| {
        let mut e = exported.clone();
        let branches = e.sessions[0].branches.as_mut().unwrap();
        let old = branches
            .iter_mut()
            .find(|b| b.superseded_at.is_some())
            .unwrap();
        let was = std::mem::replace(&mut old.name, name.to_string());
        for snapshot in e.sessions[0].snapshots.iter_mut().flatten() {
            if snapshot.branch == was {
                snapshot.branch = name.to_string();
            }
        }
        e
    };

    let (_d2, second) = temp_db();
    let copy = Store::open(&second).unwrap();
    let report = copy
        .import_export(&renamed("main@1000"), &opts(), &mut none)
        .unwrap();
    assert_eq!(report.imported, 1, "{report:?}");
    assert!(copy.session("s").unwrap().version > 1000);
    copy.clear("s").unwrap();
    let superseded: Vec<String> = copy
        .branches("s")
        .unwrap()
        .into_iter()
        .filter(|b| b.superseded_at.is_some())
        .map(|b| b.name)
        .collect();
    assert_eq!(superseded.len(), 2, "{superseded:?}");
    assert_eq!(superseded[0], "main@1000");
    assert_ne!(superseded[1], "main@1000");

    let (_d3, third) = temp_db();
    let other = Store::open(&third).unwrap();
    let report = other
        .import_export(&renamed("main@9007199254740993"), &opts(), &mut none)
        .unwrap();
    assert_eq!(
        report.skipped,
        [SkippedSource {
            source: "s".to_string(),
            reason: "invalid input: branch \"main@9007199254740993\": version 9007199254740993 is too large"
                .to_string()
        }]
    );
    assert_eq!(report.imported, 0);
    assert!(matches!(
        other.session("s"),
        Err(sessiondb::Error::NotFound { .. })
    ));
}
