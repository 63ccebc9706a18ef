//! Imports under concurrency, kills and hostile sizes: each session's import is one
//! transaction, concurrent importers get typed outcomes, `--no-overwrite` and `--dry-run`
//! write nothing they should not, and memory follows one session, not the whole input.
//! Every test here uses real files and, where processes matter, the built `sessiondb` binary.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{cli, temp_db};
use serde_json::{json, Value};
use sessiondb::{
    Error, ExportFile, ImportOptions, NewMessage, NewSession, Store, MAX_IMPORT_SESSION_BYTES,
};

fn none(_: usize, _: usize) {}

struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        println!("seed {seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn contents(store: &Store, id: &str) -> Vec<String> {
    store
        .chat_history_uncached(id, None)
        .unwrap()
        .iter()
        .map(|m| m.content().to_string())
        .collect()
}

fn write_export(path: &Path, file: &ExportFile) {
    std::fs::write(path, serde_json::to_vec_pretty(file).unwrap()).unwrap();
}

/// `roots` sessions of `len` messages, each followed by a fork of it with one more message,
/// exported with every branch: parents come before their forks, as the exporter orders them.
fn forked_export(dir: &Path, roots: usize, len: usize) -> (PathBuf, ExportFile) {
    let source = dir.join("source.db");
    let store = Store::open(&source).unwrap();
    for r in 0..roots {
        let id = format!("root-{r}");
        store
            .create_session(NewSession {
                id: Some(id.clone()),
                title: Some(format!("Root {r}")),
                ..NewSession::default()
            })
            .unwrap();
        let messages: Vec<NewMessage> = (0..len)
            .map(|i| NewMessage::user(format!("{id} message {i}")))
            .collect();
        store.set_chat_history(&id, &messages).unwrap();
        let fork = store.fork_session(&id, None, None).unwrap();
        store
            .add_user_message(&fork.id, &format!("{id} fork"))
            .unwrap();
    }
    let export = store.export(&[], true, &mut none).unwrap();
    let path = dir.join("export.json");
    write_export(&path, &export);
    (path, export)
}

fn import_cmd(db: &Path, format: &str, source: &Path) -> Command {
    let mut cmd = cli();
    cmd.arg("--db")
        .arg(db)
        .args(["import", "--format", format])
        .arg(source);
    cmd
}

/// Runs `cmd`, killing it if it outlives `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

/// The `--json` report; the exit status says whether anything was skipped.
fn json_report(output: &Output) -> Value {
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "import failed ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let skipped = report["skipped"].as_array().is_some_and(|s| !s.is_empty());
    assert_eq!(output.status.code(), Some(i32::from(skipped)), "{report}");
    report
}

/// What a reader can observe of every session at once: id, version, title, parent, history.
/// id, version, title, parent, history.
type Observed = (String, i64, Option<String>, Option<String>, Vec<String>);

fn snapshot_of(path: &Path) -> Vec<Observed> {
    let store = Store::open(path).unwrap();
    store
        .list_sessions(&Default::default())
        .unwrap()
        .sessions
        .into_iter()
        .map(|s| {
            let history = contents(&store, &s.id);
            (s.id, s.version, s.title, s.parent_session, history)
        })
        .collect()
}

fn row_count(path: &Path, table: &str) -> i64 {
    common::db_i64(path, &format!("SELECT count(*) FROM {table}"))
}

#[test]
fn a_reader_never_sees_an_imported_history_with_the_old_title() {
    if common::sqlite_only("a reader never sees an imported history with the old title") {
        return;
    }
    let (dir, path) = temp_db();
    let versions: Vec<(String, Vec<String>)> = vec![
        ("First".into(), vec!["a1".into(), "b1".into()]),
        ("Second".into(), vec!["a2".into(), "b2".into(), "c2".into()]),
    ];
    let exports: Vec<PathBuf> = versions
        .iter()
        .enumerate()
        .map(|(n, (title, history))| {
            let source = dir.path().join(format!("v{n}.db"));
            let store = Store::open(&source).unwrap();
            store
                .create_session(NewSession {
                    id: Some("s".into()),
                    title: Some(title.clone()),
                    ..NewSession::default()
                })
                .unwrap();
            for m in history {
                store.add_user_message("s", m).unwrap();
            }
            let out = dir.path().join(format!("v{n}.json"));
            write_export(&out, &store.export(&[], false, &mut none).unwrap());
            out
        })
        .collect();
    let first = run_within(
        &mut import_cmd(&path, "sessiondb", &exports[0]),
        Duration::from_secs(30),
    );
    assert!(first.status.success());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (path, stop, versions) = (path.clone(), stop.clone(), versions.clone());
        std::thread::spawn(move || {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            let (mut reads, deadline) = (0u64, Instant::now() + Duration::from_secs(60));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                // Title and history from one read transaction: one state of the file.
                let tx = conn.transaction().unwrap();
                let title: Option<String> = tx
                    .query_row("SELECT title FROM sessions WHERE id = 's'", [], |r| {
                        r.get(0)
                    })
                    .unwrap();
                let history: Vec<String> = tx
                    .prepare("SELECT content FROM history WHERE session_id = 's' ORDER BY position")
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<rusqlite::Result<_>>()
                    .unwrap();
                tx.finish().unwrap();
                let seen = (title.unwrap_or_default(), history);
                assert!(
                    versions.contains(&seen),
                    "read {seen:?}, which no import wrote"
                );
                reads += 1;
            }
            reads
        })
    };
    let (rounds, deadline) = (40, Instant::now() + Duration::from_secs(20));
    let mut done = 0;
    while done < rounds && Instant::now() < deadline {
        let export = &exports[(done + 1) % 2];
        let run = run_within(
            import_cmd(&path, "sessiondb", export).arg("--json"),
            Duration::from_secs(30),
        );
        let report = json_report(&run);
        assert_eq!(report["updated"], 1, "{report}");
        done += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().expect("the reader saw a mixed state");
    assert!(done >= 10, "only {done} imports within the time budget");
    assert!(
        reads > done as u64,
        "only {reads} reads during {done} imports"
    );
    let store = Store::open(&path).unwrap();
    let last = &versions[done % 2];
    assert_eq!(store.session("s").unwrap().title.as_ref(), Some(&last.0));
    assert_eq!(contents(&store, "s"), last.1);
}

#[test]
fn killed_imports_leave_every_session_absent_or_whole_with_its_parent_link() {
    let dir = tempfile::tempdir().unwrap();
    let (export_path, export) = forked_export(dir.path(), 15, 12);
    let sessions = export.sessions.len();
    // How long a whole import takes here, so kills land anywhere in it.
    let start = Instant::now();
    let full = run_within(
        &mut import_cmd(&dir.path().join("timing.db"), "sessiondb", &export_path),
        Duration::from_secs(60),
    );
    assert!(full.status.success());
    let span = start.elapsed().as_micros() as u64;

    let check = |path: &Path, all: bool| {
        let store = Store::open(path).unwrap();
        let present: Vec<bool> = export
            .sessions
            .iter()
            .map(|s| store.session_exists(&s.id).unwrap())
            .collect();
        for (s, &here) in export.sessions.iter().zip(&present) {
            assert!(here || !all, "{} missing after a complete import", s.id);
            if !here {
                continue;
            }
            let session = store.session(&s.id).unwrap();
            let wanted: Vec<&str> = s.messages.iter().map(|m| m.content()).collect();
            assert_eq!(contents(&store, &s.id), wanted, "{} is not whole", s.id);
            assert_eq!(session.title, s.title);
            assert_eq!(store.branches(&s.id).unwrap().len(), 1, "{}", s.id);
            if let Some(parent) = &s.parent_session {
                if store.session_exists(parent).unwrap() {
                    assert_eq!(
                        session.parent_session.as_ref(),
                        Some(parent),
                        "{} lost its parent link",
                        s.id
                    );
                }
            }
        }
        assert!(store.check().unwrap().is_ok());
        present.iter().filter(|&&p| p).count()
    };

    let mut rng = Rng::seeded();
    let (rounds, deadline) = (8, Instant::now() + Duration::from_secs(25));
    let (mut kills, mut partial) = (0, 0);
    while kills < rounds && Instant::now() < deadline {
        let path = dir.path().join(format!("round-{kills}.db"));
        Store::open(&path).unwrap();
        let mut child: Child = import_cmd(&path, "sessiondb", &export_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(span)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let present = check(&path, false);
        if 0 < present && present < sessions {
            partial += 1;
        }
        // Importing again completes it: the killed run left nothing to repair.
        let run = run_within(
            import_cmd(&path, "sessiondb", &export_path).arg("--json"),
            Duration::from_secs(60),
        );
        let report = json_report(&run);
        assert_eq!(
            (report["imported"].as_u64(), report["unchanged"].as_u64()),
            (Some((sessions - present) as u64), Some(present as u64)),
            "{report}"
        );
        assert_eq!(report["skipped"], json!([]));
        check(&path, true);
    }
    println!("{kills} kills, {partial} in the middle of the import");
    assert!(kills >= 4, "only {kills} kills within the time budget");
}

#[test]
fn two_processes_importing_the_same_new_sessions_both_get_typed_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let (export_path, export) = forked_export(dir.path(), 20, 5);
    let sessions = export.sessions.len() as u64;
    for round in 0..3 {
        let path = dir.path().join(format!("shared-{round}.db"));
        Store::open(&path).unwrap();
        let children: Vec<Child> = (0..2)
            .map(|_| {
                import_cmd(&path, "sessiondb", &export_path)
                    .arg("--json")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let reports: Vec<Value> = children
            .into_iter()
            .map(|c| json_report(&c.wait_with_output().unwrap()))
            .collect();
        let sum = |key: &str| -> u64 { reports.iter().map(|r| r[key].as_u64().unwrap()).sum() };
        for r in &reports {
            assert_eq!(r["skipped"], json!([]), "{r}");
        }
        assert_eq!(sum("imported"), sessions, "{reports:?}");
        assert_eq!(sum("unchanged"), sessions, "{reports:?}");
        assert_eq!(sum("updated"), 0, "{reports:?}");
        let store = Store::open(&path).unwrap();
        for s in &export.sessions {
            assert_eq!(
                store.session(&s.id).unwrap().parent_session,
                s.parent_session
            );
        }
    }
}

/// A file holding sessions `a` (changed since the export), `c` (as exported), and an export
/// of `a`, `b` and `c`.
fn existing_and_export(dir: &Path) -> (PathBuf, PathBuf) {
    let path = dir.join("target.db");
    let store = Store::open(&path).unwrap();
    for id in ["a", "c"] {
        store
            .create_session(NewSession {
                id: Some(id.into()),
                title: Some(format!("title {id}")),
                ..NewSession::default()
            })
            .unwrap();
        store.add_user_message(id, &format!("{id} one")).unwrap();
    }
    let source = dir.join("source.db");
    let other = Store::open(&source).unwrap();
    let mut export = store.export(&[], true, &mut none).unwrap();
    other
        .import_export(&export, &ImportOptions::default(), &mut none)
        .unwrap();
    other.add_user_message("b", "b one").unwrap();
    export = other.export(&[], true, &mut none).unwrap();
    let out = dir.join("export.json");
    write_export(&out, &export);
    store.add_user_message("a", "a two, local").unwrap();
    store.set_title("a", Some("local title")).unwrap();
    (path, out)
}

#[test]
fn no_overwrite_leaves_existing_sessions_exactly_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let (path, export) = existing_and_export(dir.path());
    let store = Store::open(&path).unwrap();
    let before = store
        .export(&["a".into(), "c".into()], true, &mut none)
        .unwrap();
    let versions: Vec<i64> = ["a", "c"]
        .iter()
        .map(|id| store.version(id).unwrap())
        .collect();
    drop(store);

    let run = run_within(
        import_cmd(&path, "sessiondb", &export).args(["--no-overwrite", "--json"]),
        Duration::from_secs(30),
    );
    let report = json_report(&run);
    assert_eq!(report["imported"], 1);
    assert_eq!(
        (report["updated"].clone(), report["unchanged"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(report["updated_ids"], json!([]));
    let skipped: Vec<&str> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["a", "c"]);
    assert!(report["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("exists and the import does not overwrite"));

    let store = Store::open(&path).unwrap();
    let after = store
        .export(&["a".into(), "c".into()], true, &mut none)
        .unwrap();
    assert_eq!(
        serde_json::to_string(&after.sessions).unwrap(),
        serde_json::to_string(&before.sessions).unwrap()
    );
    let now: Vec<i64> = ["a", "c"]
        .iter()
        .map(|id| store.version(id).unwrap())
        .collect();
    assert_eq!(now, versions);
    assert_eq!(contents(&store, "b"), ["b one"]);
}

#[test]
fn a_dry_run_reports_what_an_import_would_do_and_writes_nothing() {
    if common::sqlite_only("a dry run reports what an import would do and writes nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, export) = existing_and_export(dir.path());
    let before = snapshot_of(&path);
    let rows = |p: &Path| {
        (
            row_count(p, "messages"),
            row_count(p, "branches"),
            row_count(p, "snapshots"),
        )
    };
    let counts = rows(&path);
    let clock: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT version FROM version_clock", [], |r| r.get(0))
        .unwrap();

    let run = run_within(
        import_cmd(&path, "sessiondb", &export).args(["--dry-run", "--json"]),
        Duration::from_secs(30),
    );
    let report = json_report(&run);
    assert_eq!(
        report,
        json!({"imported": 1, "updated": 1, "updated_ids": ["a"], "unchanged": 1,
               "skipped": [], "dry_run": true})
    );
    let text = run_within(
        import_cmd(&path, "sessiondb", &export).arg("--dry-run"),
        Duration::from_secs(30),
    );
    assert_eq!(
        String::from_utf8_lossy(&text.stdout),
        "dry run, nothing written: 1 imported, 1 updated, 1 unchanged, 0 skipped\nupdated a\n"
    );
    assert_eq!(snapshot_of(&path), before);
    assert_eq!(rows(&path), counts);
    let clock_after: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT version FROM version_clock", [], |r| r.get(0))
        .unwrap();
    assert_eq!(clock_after, clock);

    // The same import for real does what the dry run said, and names what it replaced.
    let real = run_within(
        &mut import_cmd(&path, "sessiondb", &export),
        Duration::from_secs(30),
    );
    assert_eq!(
        String::from_utf8_lossy(&real.stdout),
        "1 imported, 1 updated, 1 unchanged, 0 skipped\nupdated a\n"
    );
    let store = Store::open(&path).unwrap();
    assert_eq!(contents(&store, "a"), ["a one"]);
    assert_eq!(
        store.session("a").unwrap().title.as_deref(),
        Some("title a")
    );
}

#[test]
fn a_praisonai_file_over_the_size_limit_is_refused_naming_the_limit_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/praisonai");
    std::fs::copy(fixtures.join("chat-1.json"), dir.path().join("chat-1.json")).unwrap();
    // Sparse: no disk space, and reading it would take seconds and gigabytes of memory.
    let big = dir.path().join("huge.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(MAX_IMPORT_SESSION_BYTES + 1)
        .unwrap();
    let (_d, path) = temp_db();
    let start = Instant::now();
    let run = run_within(
        import_cmd(&path, "praisonai", dir.path()).arg("--json"),
        Duration::from_secs(30),
    );
    let report = json_report(&run);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(report["imported"], 1);
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{report}");
    assert_eq!(
        skipped[0]["source"].as_str(),
        Some(big.display().to_string().as_str())
    );
    let reason = skipped[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("huge.json: 268435457 bytes, over the limit of 268435456 bytes"),
        "{reason}"
    );
}

#[test]
fn an_export_session_over_the_size_limit_stops_the_import_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(dir.path().join("source.db")).unwrap();
    source.add_user_message("small", "hello").unwrap();
    source
        .add_user_message("large", &"x".repeat(20_000))
        .unwrap();
    let export = source.export(&[], false, &mut none).unwrap();
    let file = dir.path().join("export.json");
    write_export(&file, &export);

    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let options = ImportOptions {
        max_session_bytes: 10_000,
        ..ImportOptions::default()
    };
    let err = store
        .import_export_file(&file, &options, &mut none)
        .unwrap_err();
    let Error::InvalidInput(message) = &err else {
        panic!("{err:?}");
    };
    assert!(
        message
            .contains("session 1 of the sessions array takes more than the limit of 10000 bytes"),
        "{message}"
    );
    assert!(message.contains("export.json"), "{message}");
    assert_eq!(contents(&store, "small"), ["hello"]);
    assert!(!store.session_exists("large").unwrap());
}

#[test]
fn an_export_of_another_format_or_with_its_header_after_the_sessions_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(dir.path().join("source.db")).unwrap();
    source.add_user_message("s", "hello").unwrap();
    let export = serde_json::to_value(source.export(&[], false, &mut none).unwrap()).unwrap();
    let sessions = export["sessions"].clone();
    let cases = [
        (
            json!({"sessions": sessions, "format": "sessiondb-export", "version": 1}),
            "(format missing, version missing); format and version must come before sessions",
        ),
        (
            json!({"format": "other", "version": 1, "sessions": sessions}),
            "(format \"other\", version 1)",
        ),
        (
            json!({"format": "sessiondb-export", "version": 2, "sessions": sessions}),
            "(format \"sessiondb-export\", version 2)",
        ),
    ];
    let (_d, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for (n, (document, expected)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("case-{n}.json"));
        let mut out = std::fs::File::create(&file).unwrap();
        // serde_json's maps are sorted: write the keys in the order of the case by hand.
        write!(out, "{{").unwrap();
        for (i, (key, value)) in document_keys(document, n).into_iter().enumerate() {
            write!(out, "{}{key:?}: {value}", if i > 0 { ", " } else { "" }).unwrap();
        }
        write!(out, "}}").unwrap();
        drop(out);
        let err = store
            .import_export_file(&file, &ImportOptions::default(), &mut none)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(!store.session_exists("s").unwrap());
    }
}

/// The keys of case `n` in the order the case means: the first case puts `sessions` first.
fn document_keys(document: &Value, n: usize) -> Vec<(String, String)> {
    let order: &[&str] = if n == 0 {
        &["sessions", "format", "version"]
    } else {
        &["format", "version", "sessions"]
    };
    order
        .iter()
        .map(|k| (k.to_string(), document[*k].to_string()))
        .collect()
}

#[test]
fn a_praisonai_file_with_many_snapshots_imports_them_as_pointers_in_bounded_memory() {
    const HISTORY: usize = 4_000;
    let dir = tempfile::tempdir().unwrap();
    let message = |i: usize, text: String| {
        json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": text,
               "timestamp": 1_700_000_000.0 + i as f64, "metadata": {}})
    };
    let messages: Vec<Value> = (0..HISTORY).map(|i| message(i, format!("m{i}"))).collect();
    let records: serde_json::Map<String, Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (i.to_string(), m.clone()))
        .collect();
    // One snapshot per message in the older format, a few referencing records, and three
    // of an abandoned history that diverged after ten messages.
    let mut snapshots: Vec<Value> = (0..HISTORY)
        .map(|i| json!({"id": format!("old-{i}"), "message_index": i, "created_at": 1.8e9}))
        .collect();
    for n in [10, 500, 4_000] {
        let refs: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        snapshots.push(json!({"id": format!("ref-{n}"), "created_at": 1.8e9,
            "transcript_refs": {"messages": {"items": refs}}}));
    }
    for n in [5, 10, 3] {
        let mut inline: Vec<Value> = messages[..10].to_vec();
        inline.extend((0..n).map(|i| message(10 + i, format!("x{i}"))));
        snapshots.push(json!({"id": format!("alt-{n}"), "created_at": 1.8e9,
            "transcript": {"messages": inline}}));
    }
    let file = json!({"session_id": "many", "messages": messages, "snapshots": snapshots,
                      "snapshot_storage": {"version": 1, "records": records}});
    let sessions = dir.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    std::fs::write(sessions.join("many.json"), file.to_string()).unwrap();

    let (_d, path) = temp_db();
    // Materializing every snapshot's prefix (HISTORY² / 2 messages) needs gigabytes; a
    // pointer per snapshot needs next to nothing. The cap makes the first fail.
    let mut capped = Command::new("sh");
    capped
        .args(["-c", "ulimit -v 1048576 && exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_sessiondb"))
        .arg("--db")
        .arg(&path)
        .args(["import", "--format", "praisonai", "--json"])
        .arg(&sessions);
    let report = json_report(&run_within(&mut capped, Duration::from_secs(60)));
    assert_eq!(report["imported"], 1, "{report}");

    assert_eq!(row_count(&path, "messages"), (HISTORY + 10) as i64);
    let store = Store::open(&path).unwrap();
    let branches = store.branches("many").unwrap();
    let names: Vec<&str> = branches.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"main"));
    let alt = *names.iter().find(|n| **n != "main").unwrap();
    let mut pins: Vec<(String, String, u64)> = store
        .snapshots("many")
        .unwrap()
        .into_iter()
        .map(|s| {
            let id = s.metadata["praisonai_snapshot_id"]
                .as_str()
                .unwrap()
                .to_string();
            (id, s.branch, s.length)
        })
        .collect();
    assert_eq!(pins.len(), HISTORY + 6);
    pins.sort();
    let mut expected: Vec<(String, String, u64)> = (0..HISTORY)
        .map(|i| (format!("old-{i}"), "main".to_string(), i as u64 + 1))
        .collect();
    for n in [10, 500, 4_000] {
        expected.push((format!("ref-{n}"), "main".into(), n as u64));
    }
    for n in [5, 10, 3] {
        expected.push((format!("alt-{n}"), alt.to_string(), 10 + n as u64));
    }
    expected.sort();
    assert_eq!(pins, expected);
    let alt_history: Vec<String> = store
        .branch_history("many", alt)
        .unwrap()
        .iter()
        .map(|m| m.content().to_string())
        .collect();
    let mut wanted: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    wanted.extend((0..10).map(|i| format!("x{i}")));
    assert_eq!(alt_history, wanted);
    assert_eq!(contents(&store, "many").len(), HISTORY);
}

/// Ctrl-C during `import`: exit status 130 with a line saying how far it got and that a
/// rerun resumes; what was imported stays whole, and the rerun completes the import.
#[cfg(unix)]
#[test]
fn ctrl_c_during_an_import_says_how_far_it_got_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (export, file) = forked_export(dir.path(), 400, 20);
    let total: usize = file.sessions.len();
    let (_db_dir, db) = temp_db();
    let target = db.display().to_string();
    let child = cli()
        .args(["--db", &target, "import", export.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first sessions are in: sessions are listed as they commit.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "the import wrote nothing within 60 s"
        );
        let listed = Store::open_existing(&db).and_then(|s| s.count_sessions(&Default::default()));
        if listed.is_ok_and(|n| n >= 2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child, which is still running or a zombie (not reaped).
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let store = Store::open_existing(&db).unwrap();
    let imported = store.count_sessions(&Default::default()).unwrap() as usize;
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("sessiondb: import interrupted after "),
        "{stderr}"
    );
    assert!(
        stderr.contains("Run the same command again to resume"),
        "{stderr}"
    );
    assert!(imported < total, "{imported} of {total}");
    assert!(store.check().unwrap().is_ok());
    // Every imported session is whole.
    let page = store
        .list_sessions(&sessiondb::SessionQuery {
            limit: 10_000,
            ..Default::default()
        })
        .unwrap();
    for s in &page.sessions {
        let expected = if s.id.starts_with("root-") { 20 } else { 21 };
        assert_eq!(s.message_count, expected, "{}", s.id);
    }
    let rerun = cli()
        .args([
            "--db",
            &target,
            "import",
            export.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let report: Value = serde_json::from_slice(&rerun.stdout).unwrap();
    assert_eq!(report["unchanged"].as_u64().unwrap() as usize, imported);
    assert_eq!(
        report["imported"].as_u64().unwrap() as usize,
        total - imported
    );
    assert_eq!(
        store.count_sessions(&Default::default()).unwrap() as usize,
        total
    );
}
