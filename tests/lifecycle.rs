//! Retention (expire) and erasure (purge).

mod common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::{cli, release, spawn_worker, temp_db, wait_for_release, worker_env};
use sessiondb::{
    ChannelBlob, Error, NewCheckpoint, NewMessage, NewSession, PendingWrite, PurgeRequest,
    SearchFilter, Serialized, Store,
};

fn contents(messages: &[sessiondb::Message]) -> Vec<String> {
    messages.iter().map(|m| m.content().to_string()).collect()
}

/// Whether `needle` occurs anywhere in the database file or its WAL. On PostgreSQL, whose
/// files are the server's: whether any row of any table still holds it.
fn on_disk(path: &std::path::Path, needle: &str) -> bool {
    if common::on_postgres() {
        return !tables_holding(path, &[needle]).is_empty();
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_path_buf(), std::path::PathBuf::from(wal)]
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

/// Every table of the database, from its catalog (so a table a later migration adds is in
/// it), with SQLite's own and the search index's tables apart: their bytes are what
/// [`on_disk`] greps.
fn tables(path: &std::path::Path) -> Vec<String> {
    let target = path.to_str().unwrap();
    if common::on_postgres() {
        let mut client =
            postgres::Client::connect(&common::direct(target), postgres::NoTls).unwrap();
        return client
            .query(
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
                 ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name NOT LIKE 'sqlite%' AND name NOT LIKE 'message_search%' ORDER BY 1",
        )
        .unwrap();
    let names = statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    names
}

/// The tables of [`tables`] with a row where some column holds one of `needles`.
fn tables_holding(path: &std::path::Path, needles: &[&str]) -> Vec<String> {
    let target = path.to_str().unwrap();
    let mut holding = Vec::new();
    if common::on_postgres() {
        let mut client =
            postgres::Client::connect(&common::direct(target), postgres::NoTls).unwrap();
        for table in tables(path) {
            for needle in needles {
                // A row cast to text holds every column.
                let sql = format!(
                    "SELECT count(*) FROM \"{table}\" AS r WHERE strpos(CAST(r AS TEXT), $1) > 0"
                );
                let rows: i64 = client.query_one(&sql, &[needle]).unwrap().get(0);
                if rows > 0 {
                    holding.push(table);
                    break;
                }
            }
        }
        return holding;
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    for table in tables(path) {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let any_column = columns
            .iter()
            .map(|c| format!("instr(CAST(\"{c}\" AS TEXT), ?1) > 0"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("SELECT count(*) FROM \"{table}\" WHERE {any_column}");
        if needles.iter().any(|needle| {
            conn.query_row(&sql, [needle], |r| r.get::<_, i64>(0))
                .unwrap()
                > 0
        }) {
            holding.push(table);
        }
    }
    holding
}

#[test]
fn expire_deletes_idle_sessions_and_keeps_forks_whole() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for m in ["a", "b", "c"] {
        store.add_user_message("old", m).unwrap();
    }
    let fork = store.fork_session("old", Some(1), None).unwrap();
    store.add_user_message(&fork.id, "fork's own").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    store.add_user_message("fresh", "x").unwrap();
    let dry = store
        .expire_sessions(Duration::from_millis(200), true)
        .unwrap();
    assert_eq!(dry.sessions, ["old".to_string(), fork.id.clone()]);
    assert_eq!(dry.messages, 6);
    assert!(store.session_exists("old").unwrap());
    // Touch the fork: only `old` is idle now.
    store.set_title(&fork.id, Some("busy")).unwrap();
    let report = store
        .expire_sessions(Duration::from_millis(200), false)
        .unwrap();
    assert_eq!(report.sessions, ["old"]);
    assert!(!store.session_exists("old").unwrap());
    assert_eq!(
        contents(&store.chat_history(&fork.id, None).unwrap()),
        ["a", "b", "fork's own"]
    );
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn cli_expire_reports_json() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "x").unwrap();
    let db = path.to_str().unwrap();
    let out = cli()
        .args(["--db", db, "expire", "--idle", "0", "--dry-run", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sessions"], serde_json::json!(["s"]));
    assert_eq!(report["dry_run"], true);
    assert!(store.session_exists("s").unwrap());
    let out = cli()
        .args(["--db", db, "expire", "--idle", "90d"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "expired 0 sessions, 0 messages\n"
    );
}

/// A session holding `secret` in every place content can live: current and superseded
/// branches, a key, a compaction summary, a snapshot, a streamed partial, title, metadata,
/// the search index, a usage record, and a lease of `owner`: a row in every table the schema
/// has.
fn secret_session(store: &Store, id: &str, secret: &str, owner: &str) {
    let mut meta = serde_json::Map::new();
    meta.insert("note".into(), format!("{secret}-meta").into());
    store
        .create_session(NewSession {
            id: Some(id.into()),
            title: Some(format!("{secret}-title")),
            user_id: Some("alice".into()),
            metadata: meta,
            ..Default::default()
        })
        .unwrap();
    for i in 0..30 {
        store
            .add_message(
                id,
                NewMessage::user(format!("{secret} message {i} {}", "x".repeat(200)))
                    .with_key(format!("{secret}-key-{i}")),
            )
            .unwrap();
    }
    store
        .set_chat_history(id, &[NewMessage::user(format!("{secret} replacement"))])
        .unwrap();
    store
        .add_user_message(id, &format!("{secret} after"))
        .unwrap();
    store
        .compact(id, NewMessage::system(format!("{secret} summary")), 0)
        .unwrap();
    let mut details = serde_json::Map::new();
    details.insert("note".into(), format!("{secret}-usage").into());
    let usage = sessiondb::RecordedUsage {
        requests: 1,
        details: Some(details),
        ..Default::default()
    };
    store.record_usage(id, 1, &usage).unwrap();
    store
        .create_snapshot(id, Some(&format!("{secret}-label")), None)
        .unwrap();
    store.start_stream(id, None, None).unwrap();
    store
        .append_stream(id, &format!("{secret} partial"))
        .unwrap();
    let hits = store.search(secret, 100, &SearchFilter::default()).unwrap();
    assert!(hits.len() >= 32, "{}", hits.len());
    store.claim(id, owner, Duration::from_secs(600)).unwrap();
    secret_thread(store, id, secret);
}

/// LangGraph thread `id` (session `langgraph:<id>`) with rows in every `langgraph_*` table:
/// two checkpoints, a pop that makes the first an inherited row, then its run deleted,
/// which hides it.
fn secret_thread(store: &Store, id: &str, secret: &str) {
    let channel = format!("{secret}-channel");
    let bytes = |what: &str| Serialized {
        kind: "bytes".into(),
        bytes: Some(format!("{secret} {what}").into_bytes()),
    };
    for (n, parent) in [("1", None), ("2", Some("1"))] {
        let mut metadata = serde_json::Map::new();
        metadata.insert("run_id".into(), format!("{secret}-run-{n}").into());
        store
            .put_checkpoint(&NewCheckpoint {
                thread_id: id.into(),
                checkpoint_ns: String::new(),
                checkpoint_id: n.into(),
                parent_checkpoint_id: parent.map(str::to_string),
                checkpoint: bytes("checkpoint"),
                metadata,
                channel_versions: vec![(channel.clone(), n.into())],
                new_blobs: vec![ChannelBlob {
                    channel: channel.clone(),
                    version: n.into(),
                    value: bytes("value"),
                }],
                other_values: Vec::new(),
            })
            .unwrap();
    }
    let write = PendingWrite {
        task_id: format!("{secret}-task"),
        idx: 0,
        channel: channel.clone(),
        value: bytes("write"),
        task_path: String::new(),
    };
    store
        .put_checkpoint_writes(id, "", "1", &[write], false)
        .unwrap();
    let thread = format!("langgraph:{id}");
    store.pop_message(&thread).unwrap();
    store
        .delete_checkpoint_runs(&[format!("{secret}-run-1")])
        .unwrap();
}

/// The tables of the schema. A migration that adds one must give it a row in
/// [`secret_session`] and add it here, so the purge test covers it.
fn schema_tables() -> Vec<&'static str> {
    let mut tables = vec![
        "branches",
        "compactions",
        "langgraph_blobs",
        "langgraph_channels",
        "langgraph_checkpoints",
        "langgraph_hidden",
        "langgraph_writes",
        "leases",
        "messages",
        "partial_messages",
        "sessions",
        "snapshots",
        "usage_records",
        "version_clock",
    ];
    if common::on_postgres() {
        tables.push("sessiondb_schema");
        tables.sort_unstable();
    }
    tables
}

/// Rows of `langgraph_hidden`: ids only, so the byte search above cannot see them.
fn hidden_checkpoints(path: &std::path::Path) -> i64 {
    const COUNT: &str = "SELECT count(*) FROM langgraph_hidden";
    let target = path.to_str().unwrap();
    if common::on_postgres() {
        let mut client =
            postgres::Client::connect(&common::direct(target), postgres::NoTls).unwrap();
        return client.query_one(COUNT, &[]).unwrap().get(0);
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(COUNT, [], |r| r.get(0)).unwrap()
}

#[test]
fn purge_leaves_no_byte_of_purged_content_in_the_file_or_wal() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let owner = "Quillfeather-worker-7";
    secret_session(&store, "victim", "Zqxjvorpal", owner);
    store
        .add_user_message("bystander", "Keepsake words")
        .unwrap();
    store
        .claim("bystander", "Keepsake-owner", Duration::from_secs(600))
        .unwrap();
    store.maintain(false).unwrap();
    // The test can fail: before the purge the victim and its LangGraph thread have rows in
    // every table that holds a session's (all but the clock and the schema version; the
    // hidden checkpoints hold ids only, counted below), and its bytes are on disk: the
    // search index's lower-cased term too.
    assert_eq!(tables(&path), schema_tables());
    let needles = ["victim", "Zqxjvorpal", owner];
    let expected: Vec<&str> = schema_tables()
        .into_iter()
        .filter(|t| !["version_clock", "sessiondb_schema", "langgraph_hidden"].contains(t))
        .collect();
    assert_eq!(tables_holding(&path, &needles), expected);
    assert_eq!(hidden_checkpoints(&path), 1);
    for needle in ["Zqxjvorpal", owner] {
        assert!(on_disk(&path, needle), "{needle} was never on disk");
    }
    if !common::on_postgres() {
        assert!(on_disk(&path, "zqxjvorpal"));
    }
    let report = store
        .purge(&PurgeRequest {
            sessions: vec!["victim".into(), "langgraph:victim".into()],
            ..PurgeRequest::default()
        })
        .unwrap();
    assert_eq!(report.purged, ["langgraph:victim", "victim"]);
    assert!(report.forks_kept.is_empty());
    assert_eq!(report.snapshots, 1);
    assert_eq!(report.branches, 5);
    assert_eq!(hidden_checkpoints(&path), 0);
    assert_eq!(report.wal_truncated, !common::on_postgres());
    assert_eq!(tables_holding(&path, &needles), Vec::<String>::new());
    for needle in [
        "Zqxjvorpal",
        "zqxjvorpal",
        "Zqxjvorpal-title",
        "victim",
        owner,
    ] {
        assert!(!on_disk(&path, needle), "{needle} is still on disk");
    }
    assert_eq!(store.lease_holder("victim").unwrap().map(|h| h.owner), None);
    assert_eq!(
        store.lease_holder("bystander").unwrap().map(|h| h.owner),
        Some("Keepsake-owner".to_string())
    );
    assert!(on_disk(&path, "Keepsake words"));
    assert!(!store.session_exists("victim").unwrap());
    assert!(store
        .search("Zqxjvorpal", 10, &SearchFilter::default())
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .search("Keepsake", 10, &SearchFilter::default())
            .unwrap()
            .len(),
        1
    );
    assert!(store.check().unwrap().is_ok());
}

/// Another process (an ordinary `sqlite3` reader, say) holds a read transaction for
/// [`READER_HOLDS`], which keeps the WAL from being truncated, then writes a marker file and
/// only after that ends its transaction.
const READER_HOLDS: Duration = Duration::from_secs(6);

#[test]
fn purge_and_maintain_return_without_waiting_for_a_reader_that_keeps_the_wal() {
    if common::sqlite_only("a reader keeping the -wal") {
        return;
    }
    let (dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store
        .add_user_message("victim", "Brindlewhisk secret")
        .unwrap();
    store.add_user_message("bystander", "kept").unwrap();
    let marker = dir.path().join("reader-released");
    let mut reader = [spawn_worker(
        "hold_a_read_transaction_then_mark_its_end",
        &[
            ("READER_DB", path.display().to_string()),
            ("READER_MARKER", marker.display().to_string()),
        ],
    )];
    let mut out = BufReader::new(reader[0].stdout.take().unwrap()).lines();
    release(&mut reader);
    // The harness may print the test's name on the same line first.
    let reading = out
        .by_ref()
        .map(|line| line.unwrap())
        .find_map(|line| line.split_once("RESULT ").map(|(_, r)| r.to_string()));
    assert_eq!(reading.as_deref(), Some("reading 2 messages"));

    let report = store.purge_session("victim").unwrap();
    // It returned while the reader still held its snapshot: the marker comes first.
    assert!(!marker.exists(), "the purge waited for the reader");
    assert_eq!(report.purged, ["victim"]);
    assert_eq!(report.messages, 1);
    assert!(!report.wal_truncated);
    // What the store reads is erased at once, for this store and any other.
    for reader in [&store, &Store::open(&path).unwrap()] {
        assert!(!reader.session_exists("victim").unwrap());
        assert!(reader
            .search("Brindlewhisk", 10, &SearchFilter::default())
            .unwrap()
            .is_empty());
        assert_eq!(
            contents(&reader.chat_history("bystander", None).unwrap()),
            ["kept"]
        );
    }
    // maintain does not wait for the reader either.
    assert!(store.maintain(false).unwrap().wal_busy);
    assert!(!marker.exists(), "maintain waited for the reader");

    let rest: Vec<String> = out.map(|line| line.unwrap()).collect();
    let status = reader[0].wait().unwrap();
    assert!(status.success(), "reader failed: {status:?} {rest:?}");
    assert!(marker.exists());
    // Once the reader is gone, maintain truncates the WAL, and no byte is left.
    assert!(on_disk(&path, "Brindlewhisk"));
    assert!(!store.maintain(false).unwrap().wal_busy);
    assert!(!on_disk(&path, "Brindlewhisk"));
}

#[test]
#[ignore = "a worker of purge_and_maintain_return_without_waiting_for_a_reader_that_keeps_the_wal"]
fn hold_a_read_transaction_then_mark_its_end() {
    let path = worker_env("READER_DB");
    let marker = worker_env("READER_MARKER");
    wait_for_release();
    let conn = rusqlite::Connection::open(&path).unwrap();
    // The snapshot is taken by the first read, and held until COMMIT.
    conn.execute_batch("BEGIN").unwrap();
    let messages: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    println!("RESULT reading {messages} messages");
    std::thread::sleep(READER_HOLDS);
    std::fs::write(&marker, b"released").unwrap();
    conn.execute_batch("COMMIT").unwrap();
}

#[test]
fn purge_keeps_forks_of_others_materialized_unless_asked_to_purge_them() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for i in 0..4 {
        store
            .add_user_message("p", &format!("Blorptastic {i}"))
            .unwrap();
    }
    let fork = store.fork_session("p", Some(2), None).unwrap();
    store.add_user_message(&fork.id, "fork reply").unwrap();
    let grandchild = store.fork_session(&fork.id, None, None).unwrap();
    let before = contents(&store.chat_history(&fork.id, None).unwrap());
    let version = store.version(&fork.id).unwrap();

    let report = store.purge_session("p").unwrap();
    assert_eq!(report.purged, ["p"]);
    assert_eq!(report.forks_kept, vec![fork.id.clone()]);
    assert!(report.forks_purged.is_empty());
    assert_eq!(
        contents(&store.chat_history(&fork.id, None).unwrap()),
        before
    );
    assert_eq!(
        contents(&store.chat_history(&grandchild.id, None).unwrap()),
        before
    );
    assert!(store.version(&fork.id).unwrap() > version);
    assert!(store.check().unwrap().is_ok());
    // The kept fork's copy is its own: the inherited text stays, nothing of `p` beyond it.
    assert!(on_disk(&path, "Blorptastic 2"));
    assert!(!on_disk(&path, "Blorptastic 3"));

    let all = store
        .purge(&PurgeRequest {
            sessions: vec![fork.id.clone()],
            with_forks: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.forks_purged, vec![grandchild.id.clone()]);
    assert!(!store.session_exists(&grandchild.id).unwrap());
    assert!(!on_disk(&path, "Blorptastic"));
}

#[test]
fn purge_user_erases_every_session_of_the_user_and_nothing_else() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for (id, user) in [("a1", "alice"), ("a2", "alice"), ("b1", "bob")] {
        store
            .create_session(NewSession {
                id: Some(id.into()),
                user_id: Some(user.into()),
                ..Default::default()
            })
            .unwrap();
        store
            .add_user_message(id, &format!("{user} says Quuxword{id}"))
            .unwrap();
    }
    let report = store.purge_user("alice").unwrap();
    assert_eq!(report.purged, ["a1", "a2"]);
    assert_eq!(report.messages, 2);
    assert!(!on_disk(&path, "alice says"));
    assert!(on_disk(&path, "bob says"));
    assert!(matches!(
        store.purge_session("nobody"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn cli_purge_with_forks_reports_json() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("p", "hello").unwrap();
    let fork = store.fork_session("p", None, None).unwrap();
    let out = cli()
        .args([
            "--db",
            path.to_str().unwrap(),
            "purge",
            "p",
            "--with-forks",
            "--yes",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut purged = vec!["p".to_string(), fork.id.clone()];
    purged.sort();
    assert_eq!(report["purged"], serde_json::json!(purged));
    assert_eq!(report["forks_purged"], serde_json::json!([fork.id]));
    // A PostgreSQL store has no WAL file of its own to truncate.
    assert_eq!(report["wal_truncated"], !common::on_postgres());
}
