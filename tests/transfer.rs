//! Export and import: sessiondb's own format round-trips; PraisonAI and OpenAI Agents SDK
//! stores come in with their ids, messages, tool calls, titles, parents and snapshots.

mod common;

use std::path::{Path, PathBuf};

use common::{cli, temp_db};
use serde_json::json;
use sessiondb::{
    Compaction, ImportOptions, Message, NewMessage, NewSession, Role, SkippedSource, Store,
};

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
    let second = dir.path().join("second.db");
    let stdout = move_with_cli(&first, &out, &second, &["--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
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

// -- what is kept beside messages: usage records and LangGraph checkpoints

use sessiondb::{
    ChannelBlob, CheckpointQuery, CheckpointRecord, ExportFile, NewCheckpoint, PendingWrite,
    PruneStrategy, RecordedUsage, Serialized,
};

fn blob(bytes: Option<&[u8]>) -> Serialized {
    Serialized {
        kind: if bytes.is_some() { "bytes" } else { "empty" }.into(),
        bytes: bytes.map(<[u8]>::to_vec),
    }
}

/// Checkpoint `id` of run `run` on `thread`, child of `parent`, reading `channels`
/// (name, version), of which `new` are new versions with their bytes.
fn checkpoint(
    store: &Store,
    thread: &str,
    id: &str,
    parent: Option<&str>,
    run: &str,
    channels: &[(&str, &str)],
    new: &[(&str, &str, Option<&[u8]>)],
) {
    store
        .put_checkpoint(&NewCheckpoint {
            thread_id: thread.into(),
            checkpoint_ns: String::new(),
            checkpoint_id: id.into(),
            parent_checkpoint_id: parent.map(str::to_string),
            checkpoint: blob(Some(format!("checkpoint {id}\0\u{ff}").as_bytes())),
            metadata: json!({"run_id": run, "step": 1, "source": "loop", "deep": {"x": [1]}})
                .as_object()
                .unwrap()
                .clone(),
            channel_versions: channels
                .iter()
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect(),
            new_blobs: new
                .iter()
                .map(|(c, v, bytes)| ChannelBlob {
                    channel: c.to_string(),
                    version: v.to_string(),
                    value: blob(*bytes),
                })
                .collect(),
            other_values: Vec::new(),
        })
        .unwrap();
}

fn pending(store: &Store, thread: &str, id: &str, task: &str, idx: i64, bytes: &[u8]) {
    let write = PendingWrite {
        task_id: task.into(),
        idx,
        channel: "a".into(),
        value: blob(Some(bytes)),
        task_path: format!("path-{task}"),
    };
    store
        .put_checkpoint_writes(thread, "", id, &[write], false)
        .unwrap();
}

fn listed(store: &Store, thread: &str) -> Vec<CheckpointRecord> {
    store
        .list_checkpoints(&CheckpointQuery {
            thread_id: Some(thread.into()),
            ..CheckpointQuery::default()
        })
        .unwrap()
}

fn ids(records: &[CheckpointRecord]) -> Vec<&str> {
    records.iter().map(|r| r.checkpoint_id.as_str()).collect()
}

fn recorded(input: u64, details: Option<serde_json::Value>) -> RecordedUsage {
    RecordedUsage {
        requests: 2,
        input_tokens: input,
        output_tokens: 7,
        total_tokens: input + 7,
        details: details.map(|d| d.as_object().unwrap().clone()),
    }
}

/// Every byte value, and the values the threads below read.
fn all_bytes() -> Vec<u8> {
    (0..=255).collect()
}

/// A session with usage records; thread `t` and its copy `c`, each then going on alone,
/// `t` pruned to its latest checkpoint (hiding those `c` inherits) and run `r2` removed
/// from both; thread `m` with a second branch `alt` that forks after its second checkpoint.
fn beside_messages(store: &Store) {
    store.add_user_message("u", "hello").unwrap();
    store
        .add_message(
            "u",
            NewMessage::assistant("hi").with_usage(30, 4, Some(0.25)),
        )
        .unwrap();
    store.add_user_message("u", "more").unwrap();
    store
        .record_usage(
            "u",
            1,
            &recorded(30, Some(json!({"cached": {"tokens": 3}}))),
        )
        .unwrap();
    store.record_usage("u", 2, &recorded(5, None)).unwrap();

    let every = all_bytes();
    checkpoint(
        store,
        "t",
        "01",
        None,
        "r1",
        &[("a", "1"), ("b", "1")],
        &[("a", "1", Some(&every)), ("b", "1", None)],
    );
    checkpoint(
        store,
        "t",
        "02",
        Some("01"),
        "r1",
        &[("a", "1"), ("b", "2")],
        &[("b", "2", Some(b""))],
    );
    checkpoint(
        store,
        "t",
        "03",
        Some("02"),
        "r2",
        &[("a", "2"), ("b", "2")],
        &[("a", "2", Some(&[0xff, 0, 0x80]))],
    );
    checkpoint(
        store,
        "t",
        "04",
        Some("03"),
        "r3",
        &[("a", "3"), ("b", "2")],
        &[("a", "3", Some(b"three"))],
    );
    pending(store, "t", "04", "task-2", 0, b"w2");
    pending(store, "t", "04", "task-1", -1, &[0, 1, 2]);
    store
        .record_usage("langgraph:t", 3, &recorded(11, None))
        .unwrap();
    store.copy_checkpoint_thread("t", "c").unwrap();
    checkpoint(
        store,
        "c",
        "05",
        Some("04"),
        "r4",
        &[("a", "4"), ("b", "2")],
        &[("a", "4", Some(b"four"))],
    );
    pending(store, "c", "04", "task-c", 0, b"only c");
    pending(store, "t", "04", "task-t", 0, b"only t");
    store
        .prune_checkpoints(&["t".to_string()], PruneStrategy::KeepLatest)
        .unwrap();
    store.delete_checkpoint_runs(&["r2".to_string()]).unwrap();

    checkpoint(
        store,
        "m",
        "m1",
        None,
        "r5",
        &[("a", "1")],
        &[("a", "1", Some(b"m1"))],
    );
    checkpoint(
        store,
        "m",
        "m2",
        Some("m1"),
        "r5",
        &[("a", "2")],
        &[("a", "2", Some(b"m2"))],
    );
    checkpoint(
        store,
        "m",
        "m3",
        Some("m2"),
        "r5",
        &[("a", "3")],
        &[("a", "3", Some(b"m3"))],
    );
    pending(store, "m", "m2", "on-main", 0, b"main's");
    store.create_branch("langgraph:m", "alt", Some(1)).unwrap();
    store.switch_branch("langgraph:m", "alt").unwrap();
    checkpoint(store, "m", "m4", Some("m2"), "r6", &[("a", "2")], &[]);
    pending(store, "m", "m2", "on-alt", 0, b"alt's");
}

/// What the threads and the usage session read: every thread's checkpoints on each branch
/// (the head last), the latest, and the records and totals of `u`.
fn reads(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for thread in ["t", "c"] {
        out.push(format!("{thread}: {:?}", listed(store, thread)));
        out.push(format!(
            "{:?}",
            store.get_checkpoint(thread, "", None).unwrap()
        ));
        out.push(format!(
            "{:?}",
            store.get_checkpoint(thread, "", Some("01")).unwrap()
        ));
    }
    for branch in ["main", "alt"] {
        store.switch_branch("langgraph:m", branch).unwrap();
        out.push(format!("m {branch}: {:?}", listed(store, "m")));
    }
    out.push(format!("{:?}", store.recorded_usage("u", None).unwrap()));
    out.push(format!(
        "{:?}",
        store.recorded_usage("langgraph:t", None).unwrap()
    ));
    out.push(format!("{:?}", store.session("u").unwrap().usage));
    out
}

fn import_fresh(exported: &ExportFile) -> (tempfile::TempDir, Store) {
    let (dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let report = store.import_export(exported, &opts(), &mut none).unwrap();
    assert_eq!(
        (
            report.imported,
            report.updated,
            report.unchanged,
            report.skipped
        ),
        (exported.sessions.len() as u64, 0, 0, Vec::new())
    );
    (dir, store)
}

#[test]
fn the_fixture_shows_what_was_kept_hidden_and_removed() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    beside_messages(&store);
    assert_eq!(ids(&listed(&store, "t")), ["04"]);
    assert_eq!(ids(&listed(&store, "c")), ["05", "04", "02", "01"]);
    let c04 = store.get_checkpoint("c", "", Some("04")).unwrap().unwrap();
    let writes: Vec<(&str, i64, &[u8])> = c04
        .pending_writes
        .iter()
        .map(|w| (w.task_id.as_str(), w.idx, w.value.bytes.as_deref().unwrap()))
        .collect();
    assert_eq!(
        writes,
        [
            ("task-1", -1, &[0u8, 1, 2][..]),
            ("task-2", 0, b"w2"),
            ("task-c", 0, b"only c")
        ]
    );
    let c01 = store.get_checkpoint("c", "", Some("01")).unwrap().unwrap();
    assert_eq!(
        c01.channel_values,
        [
            ("a".to_string(), blob(Some(&all_bytes()))),
            ("b".to_string(), blob(None))
        ]
    );
    store.switch_branch("langgraph:m", "main").unwrap();
    assert_eq!(ids(&listed(&store, "m")), ["m3", "m2", "m1"]);
}

#[test]
fn usage_records_and_checkpoints_come_back_equal_after_export_and_import() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    beside_messages(&store);
    for all_branches in [false, true] {
        let exported = store.export(&[], all_branches, &mut none).unwrap();
        let (_d2, copy) = import_fresh(&exported);
        // Exported again, the import is the same file: each value stored once.
        let again = copy.export(&[], all_branches, &mut none).unwrap();
        assert_eq!(again.sessions, exported.sessions);
        assert!(copy.check().unwrap().is_ok());
        if all_branches {
            assert_eq!(reads(&copy), reads(&store));
        } else {
            // Without branches, m's current history (alt) alone comes over.
            assert_eq!(listed(&copy, "m"), listed(&store, "m"));
            for thread in ["t", "c"] {
                assert_eq!(listed(&copy, thread), listed(&store, thread));
            }
            assert_eq!(
                copy.recorded_usage("u", None).unwrap(),
                store.recorded_usage("u", None).unwrap()
            );
        }
    }
}

#[test]
fn channel_values_are_exported_once_per_version_as_base64() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    beside_messages(&store);
    let exported = store
        .export(&["langgraph:c".to_string()], false, &mut none)
        .unwrap();
    let c = &exported.sessions[0];
    // c reads a@1, b@1, b@2, a@3, a@4 (a@2 went with r2's checkpoint), once each.
    let values: Vec<(&str, &str, Option<&str>)> = c
        .checkpoint_values
        .iter()
        .map(|v| (v.channel.as_str(), v.version.as_str(), v.bytes.as_deref()))
        .collect();
    let every = base64_of(&all_bytes());
    assert_eq!(
        values,
        [
            ("a", "1", Some(every.as_str())),
            ("b", "1", None),
            ("b", "2", Some("")),
            ("a", "3", Some("dGhyZWU=")),
            ("a", "4", Some("Zm91cg==")),
        ]
    );
    let refs: Vec<(u64, &str, &[u64])> = c
        .checkpoints
        .iter()
        .map(|k| (k.index, k.checkpoint_id.as_str(), k.channels.as_slice()))
        .collect();
    assert_eq!(
        refs,
        [
            (0, "01", &[0, 1][..]),
            (1, "02", &[0, 2]),
            (3, "04", &[3, 2]),
            (4, "05", &[4, 2])
        ]
    );
    assert_eq!(
        c.checkpoints[0].checkpoint,
        base64_of(b"checkpoint 01\0\xc3\xbf")
    );
    let json = serde_json::to_value(c).unwrap();
    assert_eq!(json["checkpoint_writes"][0]["bytes"], "AAEC");
    assert_eq!(json["checkpoints"][0]["type"], "bytes");
}

/// Standard base64 with padding, spelled out here so the test does not use the encoder it
/// checks.
fn base64_of(bytes: &[u8]) -> String {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(DIGITS[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_session_with_nothing_beside_its_messages_exports_as_before() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    rich(&store);
    let exported = store.export(&[], true, &mut none).unwrap();
    let text = serde_json::to_string(&exported).unwrap();
    for key in [
        "usage_records",
        "checkpoints",
        "checkpoint_writes",
        "checkpoint_values",
        "compactions",
    ] {
        assert!(!text.contains(key), "{key} in {text}");
    }
    assert_eq!(exported.version, 1);
}

#[test]
fn an_old_export_without_the_new_fields_imports_unchanged() {
    let (dir, path) = temp_db();
    let file = dir.path().join("old.json");
    std::fs::write(
        &file,
        r#"{"format": "sessiondb-export", "version": 1,
            "exported_at": "2026-01-02T03:04:05.000000Z",
            "sessions": [{"id": "langgraph:old", "created_at": "2026-01-02T03:04:05Z",
                          "updated_at": "2026-01-02T03:04:06Z",
                          "messages": [{"index": 0, "role": "assistant", "content": "checkpoint 1",
                                        "created_at": "2026-01-02T03:04:05Z"}]}]}"#,
    )
    .unwrap();
    let store = Store::open(&path).unwrap();
    let report = store.import_export_file(&file, &opts(), &mut none).unwrap();
    assert_eq!((report.imported, report.skipped.len()), (1, 0));
    assert_eq!(contents(&store, "langgraph:old"), ["checkpoint 1"]);
    assert_eq!(listed(&store, "old"), []);
    assert_eq!(store.recorded_usage("langgraph:old", None).unwrap(), []);
    let (working, full, compactions) = compacted_reads(&store, "langgraph:old");
    assert_eq!(texts(&working), ["checkpoint 1"]);
    assert_eq!((working, compactions), (full, vec![]));
}

#[test]
fn malformed_new_fields_are_refused_by_session_and_field_and_nothing_of_it_is_written() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    beside_messages(&store);
    // Without branches, the current history's lists are the ones written; with them, each
    // branch's.
    let good = store.export(&[], false, &mut none).unwrap();
    type Spoil = fn(&mut sessiondb::SessionExport);
    let cases: [(&str, Spoil, &str); 6] = [
        (
            "langgraph:c",
            |s| s.checkpoints[1].checkpoint = "not base64!".into(),
            "checkpoints[1].checkpoint: not base64",
        ),
        (
            "langgraph:c",
            |s| s.checkpoint_values[2].bytes = Some("@@".into()),
            "checkpoint_values[2].bytes: not base64",
        ),
        (
            "langgraph:c",
            |s| s.checkpoints[0].channels.push(99),
            "checkpoints[0].channels[2]: 99 is not an index of checkpoint_values, which has 5",
        ),
        (
            "langgraph:c",
            |s| s.checkpoints[3].index = 40,
            "checkpoints[3].index: 40 is past the end of the history, which has 6 messages",
        ),
        (
            "langgraph:c",
            |s| s.checkpoint_writes[0].checkpoint_id = "zz".into(),
            "checkpoint_writes[0]: no checkpoint \"zz\" of namespace \"\" in this history",
        ),
        (
            "u",
            |s| s.usage_records[1].index = 1,
            "usage_records[1].index: 1 is not above the index before it (1)",
        ),
    ];
    let all = store.export(&[], true, &mut none).unwrap();
    let branch_cases: [(&str, Spoil, &str); 2] = [
        ("langgraph:m", |s| s.branches.as_mut().unwrap()[0].checkpoints[1].channels = vec![0, 0],
            "branch \"main\": checkpoints[1].channels[1]: a second value of channel \"a\""),
        ("langgraph:m", |s| s.checkpoints[0].checkpoint_id = "other".into(),
            "usage_records, checkpoints or checkpoint_writes differ from those of head branch \"alt\""),
    ];
    let cases = cases
        .into_iter()
        .map(|case| (&good, case))
        .chain(branch_cases.into_iter().map(|case| (&all, case)));
    for (good, (id, spoil, reason)) in cases {
        let mut file = good.clone();
        let session = file.sessions.iter_mut().find(|s| s.id == id).unwrap();
        spoil(session);
        let (_d2, path2) = temp_db();
        let copy = Store::open(&path2).unwrap();
        let report = copy.import_export(&file, &opts(), &mut none).unwrap();
        assert_eq!(report.skipped.len(), 1, "{reason}: {:?}", report.skipped);
        assert_eq!(report.skipped[0].source, id);
        assert!(
            report.skipped[0].reason.contains(reason),
            "{}",
            report.skipped[0].reason
        );
        assert_eq!(report.imported, good.sessions.len() as u64 - 1);
        assert!(!copy.session_exists(id).unwrap(), "{id}");
        assert!(copy.check().unwrap().is_ok());
    }
}

#[test]
fn importing_again_leaves_threads_alone_and_brings_a_changed_thread_back_to_the_file() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    beside_messages(&store);
    let exported = store.export(&[], true, &mut none).unwrap();
    let (_d2, copy) = import_fresh(&exported);
    let before = reads(&copy);
    let report = copy.import_export(&exported, &opts(), &mut none).unwrap();
    assert_eq!(
        (report.imported, report.updated, report.unchanged),
        (0, 0, exported.sessions.len() as u64)
    );
    assert_eq!(reads(&copy), before);

    // The thread goes on (and its usage record changes); importing the file again brings it
    // back to the file's checkpoints, the rest unchanged.
    copy.switch_branch("langgraph:m", "alt").unwrap();
    checkpoint(
        &copy,
        "c",
        "06",
        Some("05"),
        "r7",
        &[("a", "6")],
        &[("a", "6", Some(b"six"))],
    );
    pending(&copy, "c", "05", "later", 0, b"later");
    copy.record_usage("u", 2, &recorded(99, None)).unwrap();
    let report = copy.import_export(&exported, &opts(), &mut none).unwrap();
    assert_eq!(report.updated_ids, ["u", "langgraph:c"]);
    assert_eq!(report.unchanged, exported.sessions.len() as u64 - 2);
    assert_eq!(listed(&copy, "c"), listed(&store, "c"));
    assert_eq!(
        copy.recorded_usage("u", None).unwrap(),
        store.recorded_usage("u", None).unwrap()
    );
    assert_eq!(
        copy.session("u").unwrap().usage,
        store.session("u").unwrap().usage
    );
    assert!(copy.check().unwrap().is_ok());
}

#[test]
fn an_import_cut_short_resumes_where_it_stopped() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    beside_messages(&store);
    let exported = store.export(&[], true, &mut none).unwrap();
    let (_d2, path2) = temp_db();
    let copy = Store::open(&path2).unwrap();
    let mut first = exported.clone();
    first.sessions.truncate(2);
    copy.import_export(&first, &opts(), &mut none).unwrap();
    let resume = ImportOptions {
        overwrite: false,
        ..opts()
    };
    let report = copy.import_export(&exported, &resume, &mut none).unwrap();
    assert_eq!(report.imported, exported.sessions.len() as u64 - 2);
    assert_eq!(report.skipped.len(), 2);
    assert_eq!(reads(&copy), reads(&store));
}

#[test]
fn the_cli_carries_a_thread_with_its_checkpoints_and_usage() {
    let (dir, first) = temp_db();
    let store = Store::open(&first).unwrap();
    beside_messages(&store);
    let out = dir.path().join("export.json");
    let second = dir.path().join("second.db");
    assert_eq!(
        move_with_cli(&first, &out, &second, &[]).trim(),
        "4 imported, 0 updated, 0 unchanged, 0 skipped"
    );
    assert_eq!(reads(&Store::open(&second).unwrap()), reads(&store));

    // A file spoilt in one field: that session is refused by name, and the status says so.
    let mut file: ExportFile = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let c = file
        .sessions
        .iter_mut()
        .find(|s| s.id == "langgraph:c")
        .unwrap();
    c.checkpoint_writes[0].bytes = "%%%".into();
    c.branches.as_mut().unwrap()[0].checkpoint_writes[0].bytes = "%%%".into();
    std::fs::write(&out, serde_json::to_string(&file).unwrap()).unwrap();
    let third = dir.path().join("third.db");
    let run = cli()
        .arg("--db")
        .arg(&third)
        .args(["import", "--format", "sessiondb"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(
            "skipped langgraph:c: invalid input: branch \"main\": checkpoint_writes[0].bytes: \
             not base64"
        ),
        "{stderr}"
    );
}

/// Session "s": six messages compacted twice (through index 1, then through 4 with a
/// summary that carries usage and a key of its own), then one more message; branch "alt"
/// made from the compacted history at index 2 (it keeps the first compaction) and grown by
/// one message. The heads before each compaction stay as superseded branches. Session
/// "plain" is never compacted.
fn compacted(store: &Store) {
    let call =
        json!({"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}});
    store
        .add_messages(
            "s",
            &[
                NewMessage::user("q0"),
                NewMessage::assistant("a1"),
                NewMessage::user("q2"),
                NewMessage::assistant("").with_tool_calls(vec![call]),
                NewMessage::tool("c1", "r4"),
                NewMessage::assistant("a5"),
            ],
        )
        .unwrap();
    store
        .compact("s", NewMessage::system("sum 0-1"), 1)
        .unwrap();
    store
        .compact(
            "s",
            NewMessage::system("sum 0-4")
                .with_usage(300, 25, None)
                .with_extra("name", json!("summarizer")),
            4,
        )
        .unwrap();
    store.add_user_message("s", "q6").unwrap();
    store.create_branch("s", "alt", Some(2)).unwrap();
    store.switch_branch("s", "alt").unwrap();
    store.add_user_message("s", "alt q3").unwrap();
    store.switch_branch("s", "main").unwrap();
    store.add_user_message("plain", "p0").unwrap();
    store.add_user_message("plain", "p1").unwrap();
}

/// A session's working view (cached and uncached, which must agree), full history and
/// compactions.
fn compacted_reads(store: &Store, id: &str) -> (Vec<Message>, Vec<Message>, Vec<Compaction>) {
    let working = store.chat_history_uncached(id, None).unwrap().to_vec();
    assert_eq!(store.chat_history(id, None).unwrap().to_vec(), working);
    let full = store.full_history(id).unwrap().to_vec();
    (working, full, store.compactions(id).unwrap())
}

/// `compacted_reads` of each branch of `id` by name, switched to in turn, then the head's
/// again.
fn branch_reads(store: &Store, id: &str) -> Vec<(String, Vec<Message>, Vec<Compaction>)> {
    let branches = store.branches(id).unwrap();
    let head = branches.iter().find(|b| b.is_head).unwrap().name.clone();
    let mut out = Vec::new();
    for branch in branches.iter().map(|b| &b.name).chain([&head]) {
        store.switch_branch(id, branch).unwrap();
        let (working, _, compactions) = compacted_reads(store, id);
        out.push((branch.clone(), working, compactions));
    }
    out
}

fn texts(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.content()).collect()
}

#[test]
fn a_compacted_session_comes_back_with_its_working_view_and_compactions() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    compacted(&store);
    let (working, full, compactions) = compacted_reads(&store, "s");
    assert_eq!(texts(&working), ["sum 0-4", "a5", "q6"]);
    assert_eq!(full.len(), 7);
    for all_branches in [false, true] {
        let exported = store.export(&[], all_branches, &mut none).unwrap();
        let (_d2, copy) = import_fresh(&exported);
        assert_eq!(
            compacted_reads(&copy, "s"),
            (working.clone(), full.clone(), compactions.clone())
        );
        assert_eq!(
            compacted_reads(&copy, "plain"),
            compacted_reads(&store, "plain")
        );
        assert_eq!(copy.compactions("plain").unwrap(), []);
        // Exported again, the copy is the same file.
        assert_eq!(
            copy.export(&[], all_branches, &mut none).unwrap().sessions,
            exported.sessions
        );
        assert!(copy.check().unwrap().is_ok());
        // Appending to the copy goes on after the summary, as on the source.
        copy.add_user_message("s", "q7").unwrap();
        assert_eq!(
            texts(&copy.chat_history("s", None).unwrap()),
            ["sum 0-4", "a5", "q6", "q7"]
        );
    }
}

#[test]
fn two_compactions_of_one_history_are_exported_in_order_with_their_fields() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    compacted(&store);
    let exported = store.export(&["s".to_string()], false, &mut none).unwrap();
    let json = serde_json::to_value(&exported.sessions[0]).unwrap();
    let listed = json["compactions"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0],
        json!({"through_index": 1, "summary": {"role": "system", "content": "sum 0-1"},
               "created_at": listed[0]["created_at"]})
    );
    assert_eq!(
        listed[1],
        json!({"through_index": 4,
               "summary": {"role": "system", "content": "sum 0-4", "input_tokens": 300,
                           "output_tokens": 25, "name": "summarizer"},
               "tokens_before": 300, "tokens_after": 25,
               "created_at": listed[1]["created_at"]})
    );
    let recorded = store.compactions("s").unwrap();
    for (listed, recorded) in listed.iter().zip(&recorded) {
        let at: chrono::DateTime<chrono::Utc> =
            listed["created_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(at, recorded.created_at);
    }
    assert!(recorded[0].created_at <= recorded[1].created_at);
}

#[test]
fn all_branches_bring_back_the_superseded_heads_and_the_compacted_branch() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    compacted(&store);
    let exported = store.export(&[], true, &mut none).unwrap();
    let (_d2, copy) = import_fresh(&exported);
    let names: Vec<String> = store
        .branches("s")
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    // main@v (before the first compaction), main@w (before the second), main, alt.
    assert_eq!(names.len(), 4, "{names:?}");
    let copied = branch_reads(&copy, "s");
    assert_eq!(copied, branch_reads(&store, "s"));
    let by_name = |name: &str| copied.iter().find(|(n, ..)| n == name).unwrap();
    // The head before any compaction reads uncompacted; the one before the second shows
    // the first; alt kept the first and grew.
    let (_, first_head, none_recorded) = by_name(&names[0]);
    assert_eq!(first_head.len(), 6);
    assert_eq!(none_recorded, &[]);
    let (_, second_head, one) = by_name(&names[1]);
    assert_eq!(texts(second_head), ["sum 0-1", "q2", "", "r4", "a5"]);
    assert_eq!(one.len(), 1);
    let (_, alt, alt_compactions) = by_name("alt");
    assert_eq!(texts(alt), ["sum 0-1", "q2", "alt q3"]);
    assert_eq!(alt_compactions.len(), 1);
    assert_eq!(
        compacted_reads(&copy, "s").0,
        compacted_reads(&store, "s").0
    );
}

#[test]
fn a_compacted_sqlite_file_moves_to_the_backend_under_test_through_the_cli() {
    // The source is always a SQLite file; the target is the suite's backend, so with
    // SESSIONDB_TEST_BACKEND=postgres this is the move from SQLite to PostgreSQL.
    let (dir, source) = common::file_db();
    let store = Store::open(&source).unwrap();
    compacted(&store);
    let out = dir.path().join("export.json");
    let (_d2, target) = temp_db();
    assert_eq!(
        move_with_cli(&source, &out, &target, &[]).trim(),
        "2 imported, 0 updated, 0 unchanged, 0 skipped"
    );
    let moved = Store::open(&target).unwrap();
    assert_eq!(compacted_reads(&moved, "s"), compacted_reads(&store, "s"));
    assert_eq!(branch_reads(&moved, "s"), branch_reads(&store, "s"));
    assert!(moved.check().unwrap().is_ok());
}

#[test]
fn a_compaction_followed_by_a_tool_result_imports_as_compact_made_it() {
    // Compacting through the last message is allowed whatever follows later: here the tool
    // result its call asked for.
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let call =
        json!({"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}});
    store.add_user_message("s", "q").unwrap();
    store
        .add_message("s", NewMessage::assistant("").with_tool_calls(vec![call]))
        .unwrap();
    store.compact("s", NewMessage::system("sum"), 1).unwrap();
    store
        .add_message("s", NewMessage::tool("c1", "result"))
        .unwrap();
    let exported = store.export(&[], true, &mut none).unwrap();
    let (_d2, copy) = import_fresh(&exported);
    assert_eq!(compacted_reads(&copy, "s"), compacted_reads(&store, "s"));
    assert_eq!(
        texts(&copy.chat_history_uncached("s", None).unwrap()),
        ["sum", "result"]
    );
}

#[test]
fn hostile_compactions_are_refused_by_session_and_index_and_nothing_is_written() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    compacted(&store);
    let current = store.export(&[], false, &mut none).unwrap();
    let all = store.export(&[], true, &mut none).unwrap();
    type Spoil = fn(&mut sessiondb::SessionExport);
    let cases: [(&ExportFile, Spoil, &str); 6] = [
        (
            &current,
            |s| s.compactions[1].through_index = 7,
            "session \"s\": compactions[1]: through index 7 is past the end of the history, \
             which has 7 messages",
        ),
        (
            &current,
            |s| s.compactions[0].through_index = 5,
            "session \"s\": compactions[1]: through index 4 ends before the compaction in \
             effect (through index 5); a later compaction must cover it",
        ),
        (
            &current,
            |s| s.compactions[0].summary = NewMessage::tool("c1", "sum"),
            "session \"s\": compactions[0]: a summary cannot be a tool result or carry a key",
        ),
        (
            &current,
            |s| s.compactions[1].summary.key = Some("k".into()),
            "session \"s\": compactions[1]: a summary cannot be a tool result or carry a key",
        ),
        (
            &current,
            |s| s.compactions[0].tokens_before = Some(u64::MAX),
            "session \"s\": compactions[0]: tokens_before is too large",
        ),
        (
            &all,
            |s| s.branches.as_mut().unwrap()[3].compactions[0].through_index = 4,
            "session \"s\": branch \"alt\": compactions[0]: through index 4 is past the end \
             of the history, which has 4 messages",
        ),
    ];
    // Imported into an empty file, and over the sessions as they are.
    let (_d2, path2) = temp_db();
    let existing = Store::open(&path2).unwrap();
    existing.import_export(&all, &opts(), &mut none).unwrap();
    let before = existing.export(&[], true, &mut none).unwrap();
    let version = existing.version("s").unwrap();
    for (good, spoil, reason) in cases {
        let mut file = good.clone();
        spoil(file.sessions.iter_mut().find(|s| s.id == "s").unwrap());
        let (_d3, path3) = temp_db();
        let empty = Store::open(&path3).unwrap();
        for store in [&empty, &existing] {
            let report = store.import_export(&file, &opts(), &mut none).unwrap();
            assert_eq!(
                report.skipped,
                [SkippedSource {
                    source: "s".into(),
                    reason: format!("invalid input: {reason}")
                }]
            );
        }
        assert!(!empty.session_exists("s").unwrap());
        assert_eq!(empty.session("plain").unwrap().message_count, 2);
        assert_eq!(existing.version("s").unwrap(), version);
        assert_eq!(
            existing.export(&[], true, &mut none).unwrap().sessions,
            before.sessions
        );
    }
    // A new session's branches must agree with its current history.
    let mut file = all.clone();
    file.sessions[0].compactions.pop();
    let (_d3, path3) = temp_db();
    let empty = Store::open(&path3).unwrap();
    let report = empty.import_export(&file, &opts(), &mut none).unwrap();
    assert_eq!(
        report.skipped,
        [SkippedSource {
            source: "s".into(),
            reason: "invalid input: compactions differ from those of head branch \"main\"".into()
        }]
    );
    assert!(!empty.session_exists("s").unwrap());
}

#[test]
fn importing_over_an_existing_session_brings_its_compactions_to_the_file() {
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    compacted(&store);
    let exported = store.export(&["s".to_string()], false, &mut none).unwrap();
    let wanted = compacted_reads(&store, "s");

    // The same messages, never compacted: the compactions come, on a new head.
    let (_d2, path2) = temp_db();
    let copy = Store::open(&path2).unwrap();
    let mut uncompacted = exported.clone();
    uncompacted.sessions[0].compactions.clear();
    copy.import_export(&uncompacted, &opts(), &mut none)
        .unwrap();
    assert_eq!(copy.compactions("s").unwrap(), []);
    let report = copy.import_export(&exported, &opts(), &mut none).unwrap();
    assert_eq!(
        (report.updated_ids, report.unchanged),
        (vec!["s".to_string()], 0)
    );
    assert_eq!(compacted_reads(&copy, "s"), wanted);
    let branches = copy.branches("s").unwrap();
    assert_eq!(branches.len(), 2);
    assert!(branches[0].superseded_at.is_some() && branches[1].is_head);

    // Again: unchanged, the version stays.
    let version = copy.version("s").unwrap();
    let report = copy.import_export(&exported, &opts(), &mut none).unwrap();
    assert_eq!((report.updated, report.unchanged), (0, 1));
    assert_eq!(copy.version("s").unwrap(), version);

    // Without overwriting, a file without compactions leaves them alone.
    let keep = ImportOptions {
        overwrite: false,
        ..opts()
    };
    let report = copy.import_export(&uncompacted, &keep, &mut none).unwrap();
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(compacted_reads(&copy, "s"), wanted);
    assert_eq!(copy.version("s").unwrap(), version);

    // Overwriting, it takes them away: the working view is the whole history again, and
    // the compacted head stays as a superseded branch.
    let report = copy
        .import_export(&uncompacted, &opts(), &mut none)
        .unwrap();
    assert_eq!(report.updated, 1);
    let (working, full, compactions) = compacted_reads(&copy, "s");
    assert_eq!((&working, compactions), (&full, Vec::new()));
    assert_eq!(full, wanted.1);

    // A file whose history goes on past the stored one, with the compaction in effect,
    // comes back whole too.
    let mut longer = exported.clone();
    let mut extra = longer.sessions[0].messages[6].clone();
    extra.index = 7;
    extra.body = NewMessage::assistant("a7");
    longer.sessions[0].messages.push(extra);
    copy.import_export(&longer, &opts(), &mut none).unwrap();
    let (working, full, compactions) = compacted_reads(&copy, "s");
    assert_eq!(texts(&working), ["sum 0-4", "a5", "q6", "a7"]);
    assert_eq!((full.len(), compactions), (8, wanted.2.clone()));
    assert!(copy.check().unwrap().is_ok());
}

/// `sessiondb export --all-branches` of `from` into the file `out`, then `sessiondb import`
/// of it into `to` with `options`; the import's standard output.
fn move_with_cli(from: &Path, out: &Path, to: &Path, options: &[&str]) -> String {
    let status = cli()
        .arg("--db")
        .arg(from)
        .args(["export", "--all-branches", "--out"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
    let run = cli()
        .arg("--db")
        .arg(to)
        .args(["import", "--format", "sessiondb"])
        .args(options)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout).unwrap()
}
