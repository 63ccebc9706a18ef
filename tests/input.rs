//! Bad input, generated: whatever a caller passes, no panic, every failure a typed error, and
//! nothing stored changes when a call is refused.

mod common;

use common::temp_db;
use proptest::prelude::*;
use sessiondb::{Error, NewMessage, NewSession, SnapshotId, Store};

#[derive(Debug, Clone)]
enum Call {
    Add {
        id: String,
        role: String,
        content: String,
        metadata: String,
        tool_calls: String,
    },
    Create {
        id: String,
        title: String,
        metadata: String,
    },
    Fork {
        id: String,
        at: Option<u64>,
    },
    Branch {
        id: String,
        name: String,
        at: Option<u64>,
    },
    Switch {
        id: String,
        name: String,
    },
    Revert {
        id: String,
        at: u64,
    },
    Restore {
        id: String,
        snapshot: i64,
    },
    Metadata {
        id: String,
        patch: String,
    },
    Page {
        id: String,
        at: u64,
        limit: usize,
    },
    Set {
        id: String,
        json: String,
    },
}

/// Ids and names that hit the edges: empty, long, control characters, quotes, SQL.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("s".to_string()),
        Just("main".to_string()),
        Just(String::new()),
        Just("x'); DROP TABLE sessions;--".to_string()),
        Just("a@b".to_string()),
        Just("x".repeat(300)),
        "\\PC{0,12}",
        any::<String>(),
    ]
}

/// JSON-ish text: valid and invalid, objects and not, and deeply nested.
fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{}".to_string()),
        Just("[]".to_string()),
        Just("null".to_string()),
        Just("{\"k\": null}".to_string()),
        (1usize..80).prop_map(|d| format!("{}1{}", "[".repeat(d), "]".repeat(d))),
        (1usize..80).prop_map(|d| format!("{}{}", "{\"a\":".repeat(d), "}".repeat(d))),
        "[\\[\\]{}\":,0-9a-z ]{0,30}",
    ]
}

fn index() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..5, Just(u64::MAX), any::<u64>()]
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (
            name(),
            "[a-z]{0,10}",
            "\\PC{0,20}",
            json_text(),
            json_text()
        )
            .prop_map(|(id, role, content, metadata, tool_calls)| Call::Add {
                id,
                role,
                content,
                metadata,
                tool_calls
            }),
        (name(), "\\PC{0,10}", json_text()).prop_map(|(id, title, metadata)| Call::Create {
            id,
            title,
            metadata
        }),
        (name(), proptest::option::of(index())).prop_map(|(id, at)| Call::Fork { id, at }),
        (name(), name(), proptest::option::of(index())).prop_map(|(id, name, at)| Call::Branch {
            id,
            name,
            at
        }),
        (name(), name()).prop_map(|(id, name)| Call::Switch { id, name }),
        (name(), index()).prop_map(|(id, at)| Call::Revert { id, at }),
        (name(), any::<i64>()).prop_map(|(id, snapshot)| Call::Restore { id, snapshot }),
        (name(), json_text()).prop_map(|(id, patch)| Call::Metadata { id, patch }),
        (name(), index(), any::<usize>()).prop_map(|(id, at, limit)| Call::Page { id, at, limit }),
        (name(), json_text()).prop_map(|(id, json)| Call::Set { id, json }),
    ]
}

fn apply(store: &Store, call: &Call) -> Result<(), Error> {
    match call {
        Call::Add {
            id,
            role,
            content,
            metadata,
            tool_calls,
        } => {
            let mut message = NewMessage::new(role.parse()?, content.clone());
            message.metadata = Some(sessiondb::parse_metadata(metadata)?);
            message.tool_calls = Some(NewMessage::parse_tool_calls(tool_calls)?);
            store.add_message(id, message).map(drop)
        }
        Call::Create {
            id,
            title,
            metadata,
        } => store
            .create_session(NewSession {
                id: Some(id.clone()),
                title: Some(title.clone()),
                metadata: sessiondb::parse_metadata(metadata)?,
                ..NewSession::default()
            })
            .map(drop),
        Call::Fork { id, at } => store.fork_session(id, *at, None).map(drop),
        Call::Branch { id, name, at } => store.create_branch(id, name, *at).map(drop),
        Call::Switch { id, name } => store.switch_branch(id, name).map(drop),
        Call::Revert { id, at } => store.revert_to_message(id, *at).map(drop),
        Call::Restore { id, snapshot } => {
            store.restore_snapshot(id, SnapshotId(*snapshot)).map(drop)
        }
        Call::Metadata { id, patch } => store
            .update_metadata(id, sessiondb::parse_metadata(patch)?)
            .map(drop),
        Call::Page { id, at, limit } => {
            store.messages_before(id, *at, *limit)?;
            store.messages_after(id, *at, *limit).map(drop)
        }
        Call::Set { id, json } => {
            let messages: Vec<NewMessage> =
                serde_json::from_str(json).map_err(|e| Error::InvalidInput(e.to_string()))?;
            store.set_chat_history(id, &messages).map(drop)
        }
    }
}

/// Everything a caller can observe, to compare before and after a refused call.
fn observed(store: &Store) -> String {
    let page = store
        .list_sessions(&sessiondb::SessionQuery {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    let mut out = String::new();
    for s in page.sessions {
        let history = store.chat_history_uncached(&s.id, None).unwrap();
        let branches = store.branches(&s.id).unwrap();
        out += &format!("{s:?}{:?}{branches:?}", &*history);
    }
    out
}

proptest! {
    // 48 cases in the normal run; PROPTEST_CASES=N for a longer one.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_call_either_succeeds_or_fails_typed_without_changing_anything(
        calls in proptest::collection::vec(call(), 1..24)
    ) {
        let (_dir, path) = temp_db();
        let store = Store::open(&path).unwrap();
        store.add_user_message("s", "seed").unwrap();
        store.create_snapshot("s", None, None).unwrap();
        for call in &calls {
            let before = observed(&store);
            match apply(&store, call) {
                Ok(()) => {}
                Err(Error::InvalidInput(_)) | Err(Error::NotFound { .. }) | Err(Error::AlreadyExists(_)) => {
                    prop_assert_eq!(observed(&store), before, "refused {:?} changed the store", call);
                }
                Err(other) => prop_assert!(false, "{:?} failed untyped: {:?}", call, other),
            }
        }
        let report = store.check().unwrap();
        prop_assert!(report.is_ok(), "{:?}", report.problems);
    }
}

/// `{"k":{"k":…1…}}`, `depth` objects deep.
fn nested_json(depth: usize) -> String {
    format!("{}1{}", "{\"k\":".repeat(depth), "}".repeat(depth))
}

/// Asserts the CLI run failed with exit code 1 and an error message (not a crash or a
/// panic), and returns its standard error.
fn refused_cleanly(out: std::process::Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("overflow"),
        "{what}: {stderr}"
    );
    stderr
}

#[test]
fn json_nested_200000_deep_is_refused_by_every_cli_entry_without_a_crash() {
    let (dir, path) = temp_db();
    let deep = nested_json(200_000);
    common::cli_ok(&path, &["add", "s", "user", "kept"]);
    let before = common::cli_ok(&path, &["history", "s", "--json"]);

    // An argument may hold at most 128 KiB: 20,000 levels there, 200,000 in stdin and files.
    let in_argument = nested_json(20_000);
    let out = common::run_cli(
        &path,
        &["add", "s", "user", "x", "--metadata", &in_argument],
    );
    let stderr = refused_cleanly(out, "add --metadata");
    assert!(stderr.contains("recursion limit"), "{stderr}");

    let message = format!("[{{\"role\":\"user\",\"content\":\"x\",\"metadata\":{deep}}}]");
    for command in ["append", "set-history"] {
        let out = common::run_cli_with_input(&path, &[command, "s", "-"], &message);
        refused_cleanly(out, command);
    }

    let export = dir.path().join("export.json");
    std::fs::write(
        &export,
        format!(
            "{{\"format\":\"sessiondb-export\",\"version\":1,\"sessions\":[{{\"id\":\"t\",\"metadata\":{deep},\"messages\":[]}}]}}"
        ),
    )
    .unwrap();
    let out = common::cli()
        .arg("--db")
        .arg(&path)
        .args(["import", "--format", "sessiondb"])
        .arg(&export)
        .output()
        .unwrap();
    refused_cleanly(out, "import sessiondb");

    let praisonai = dir.path().join("praisonai");
    std::fs::create_dir(&praisonai).unwrap();
    std::fs::write(
        praisonai.join("p.json"),
        format!("{{\"session_id\":\"p\",\"messages\":[{{\"role\":\"user\",\"content\":\"x\",\"metadata\":{deep}}}]}}"),
    )
    .unwrap();
    let out = common::cli()
        .arg("--db")
        .arg(&path)
        .args(["import", "--format", "praisonai", "--json"])
        .arg(&praisonai)
        .output()
        .unwrap();
    // A PraisonAI directory import skips a file it cannot read and says so.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.code().is_some(), "killed by a signal: {stderr}");
    assert!(!stdout.contains("\"imported\":1"), "{stdout}");

    assert_eq!(common::cli_ok(&path, &["history", "s", "--json"]), before);
    let sessions = common::cli_json(&path, &["sessions", "--json"]);
    let ids: Vec<_> = sessions["sessions"]
        .as_array()
        .map(|all| all.iter().map(|s| s["id"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![serde_json::json!("s")], "{sessions}");
}
