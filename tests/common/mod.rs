//! Shared test plumbing: temporary database files and real child processes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

/// A fresh directory and a database path inside it (the file does not exist yet).
pub fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    if let Some(server) = postgres_server() {
        return (dir, PathBuf::from(fresh_database(&server)));
    }
    let path = dir.path().join("sessions.db");
    (dir, path)
}

/// A SQLite file in a new directory, whatever backend the suite runs on: for the tests of
/// what only a file has (its `-wal`, permissions, bytes on disk), which run on a file also
/// when run by hand with `SESSIONDB_TEST_BACKEND=postgres`.
pub fn file_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sessions.db");
    (dir, path)
}

/// The PostgreSQL server the suite runs against: with `SESSIONDB_TEST_BACKEND=postgres`
/// directly, with `SESSIONDB_TEST_BACKEND=pgbouncer` through PgBouncer in transaction mode
/// (`tests/postgres/with-server.sh` sets the URLs); `None` runs it on SQLite.
pub fn postgres_server() -> Option<String> {
    let via = match std::env::var("SESSIONDB_TEST_BACKEND").as_deref() {
        Ok("postgres") => "SESSIONDB_TEST_PG_TCP",
        Ok("pgbouncer") => "SESSIONDB_TEST_PGBOUNCER",
        _ => return None,
    };
    // Over TCP: every test then connects as another host would.
    match std::env::var(via) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => panic!("SESSIONDB_TEST_BACKEND needs {via} (run the tests through tests/postgres/with-server.sh)"),
    }
}

/// The URL the test itself connects to, straight to the server, for a store's URL: the
/// test's own statements are not sessiondb's, so they do not go through the pooler.
pub fn direct(target: &str) -> String {
    let (Ok(pooler), Ok(server)) = (
        std::env::var("SESSIONDB_TEST_PGBOUNCER"),
        std::env::var("SESSIONDB_TEST_PG_TCP"),
    ) else {
        return target.to_string();
    };
    let pooler_host = pooler.split("/postgres").next().unwrap_or_default();
    match target.strip_prefix(pooler_host) {
        Some(rest) => {
            let name = rest.split('?').next().unwrap_or_default();
            server.replacen("/postgres", name, 1)
        }
        None => target.to_string(),
    }
}

/// Whether the suite runs on PostgreSQL.
pub fn on_postgres() -> bool {
    postgres_server().is_some()
}

/// For a test of what only PostgreSQL has: `true`, with a line saying so, when the suite
/// runs on SQLite.
pub fn postgres_only() -> bool {
    let skip = !on_postgres();
    if skip {
        eprintln!("skipped: runs with SESSIONDB_TEST_BACKEND=postgres or pgbouncer");
    }
    skip
}

/// For a test of what only a SQLite file has (its -wal, permissions, `sqlite3` reads):
/// `true`, with a line saying so, when the suite runs on PostgreSQL.
pub fn sqlite_only(what: &str) -> bool {
    let skip = on_postgres();
    if skip {
        eprintln!("skipped on PostgreSQL: {what} is about SQLite files");
    }
    skip
}

/// A new, empty database on `server` (a URL naming its `postgres` database) for one test.
fn fresh_database(server: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    // On a thread of its own: the driver blocks on a runtime of its own, which an async
    // test's thread cannot do.
    let admin_url = direct(server);
    let create = format!("CREATE DATABASE {name}");
    std::thread::spawn(move || {
        let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls)
            .expect("connect to the test server");
        admin
            .batch_execute(&create)
            .expect("create a test database");
    })
    .join()
    .expect("create a test database");
    server.replacen("/postgres", &format!("/{name}"), 1)
}

/// Spawns this test binary again, running only the ignored test `entry` as a child process.
/// The child gets `env`, waits for [`release`] on its stdin, and reports lines starting with
/// `RESULT ` on its stdout.
pub fn spawn_worker(entry: &str, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args([
        entry,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.spawn().expect("spawn worker")
}

/// Starts all workers at once: each is blocked reading its stdin until now.
pub fn release(children: &mut [Child]) {
    for child in children.iter_mut() {
        let mut stdin = child.stdin.take().expect("worker stdin");
        stdin.write_all(b"go\n").expect("release worker");
    }
}

/// Waits for the worker to exit successfully and returns its `RESULT ` lines.
pub fn results(child: Child) -> Vec<String> {
    let output = child.wait_with_output().expect("wait for worker");
    assert!(
        output.status.success(),
        "worker failed: {:?}",
        output.status
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once("RESULT ").map(|(_, r)| r.to_string()))
        .collect()
}

/// In a worker: the environment variable `name`.
pub fn worker_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("worker needs {name}"))
}

/// In a worker: blocks until the parent calls [`release`].
pub fn wait_for_release() {
    let mut line = String::new();
    BufReader::new(std::io::stdin())
        .read_line(&mut line)
        .expect("read release line");
}

/// Bytes of a file, for byte-for-byte comparisons.
pub fn file_bytes(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).expect("read file")
}

/// Whether this process can bypass file permissions (root), which makes a chmod-based
/// read-only test meaningless.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Path of the built `sessiondb` binary.
pub fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sessiondb"))
}

/// Runs the CLI on the database `db` with `args` and an empty standard input.
pub fn run_cli(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    run_cli_with_input(db, args, "")
}

/// Runs the CLI on the database `db` with `args`, feeding `input` on standard input.
pub fn run_cli_with_input(
    db: &std::path::Path,
    args: &[&str],
    input: &str,
) -> std::process::Output {
    let mut child = cli()
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sessiondb");
    let mut stdin = child.stdin.take().expect("sessiondb stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("wait for sessiondb")
}

/// Asserts that a CLI run succeeded and returns its standard output.
pub fn expect_ok(out: std::process::Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Asserts that a CLI run failed with exit code 1 and printed nothing on standard output;
/// returns its standard error.
pub fn expect_failure(out: std::process::Output, args: &[&str]) -> String {
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
    assert!(
        out.stdout.is_empty(),
        "{args:?} printed to stdout on failure"
    );
    String::from_utf8(out.stderr).expect("utf-8 stderr")
}

/// The CLI's standard output for `args`, which must succeed.
pub fn cli_ok(db: &std::path::Path, args: &[&str]) -> String {
    expect_ok(run_cli(db, args), args)
}

/// The CLI's standard output for `args` parsed as JSON.
pub fn cli_json(db: &std::path::Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&cli_ok(db, args)).expect("JSON on stdout")
}

/// The CLI's standard error for `args`, which must fail with exit code 1.
pub fn cli_failure(db: &std::path::Path, args: &[&str]) -> String {
    expect_failure(run_cli(db, args), args)
}

/// The CLI's standard error for `args`, which clap must refuse as a usage error (exit 2).
pub fn cli_usage_error(db: &std::path::Path, args: &[&str]) -> String {
    let out = run_cli(db, args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} should be a usage error"
    );
    assert!(
        out.stdout.is_empty(),
        "{args:?} printed to stdout on failure"
    );
    String::from_utf8(out.stderr).expect("utf-8 stderr")
}

/// The integer the first column of `sql`'s first row holds, read straight from the
/// database behind `path` (a SQLite file or a PostgreSQL URL), past every cache.
pub fn db_i64(path: &std::path::Path, sql: &str) -> i64 {
    let target = path.to_str().unwrap_or_default();
    if target.starts_with("postgres") {
        let mut client =
            postgres::Client::connect(&direct(target), postgres::NoTls).expect("connect");
        let row = client.query_one(sql, &[]).expect(sql);
        return match row.columns()[0].type_() {
            &postgres::types::Type::INT4 => i64::from(row.get::<_, i32>(0)),
            _ => row.get::<_, i64>(0),
        };
    }
    rusqlite::Connection::open(path)
        .expect("open")
        .query_row(sql, [], |r| r.get(0))
        .expect(sql)
}

/// Runs `sql` straight on the database behind `path`: to tamper with it as a hand edit would.
pub fn db_exec(path: &std::path::Path, sql: &str) {
    let target = path.to_str().unwrap_or_default();
    if target.starts_with("postgres") {
        let mut client =
            postgres::Client::connect(&direct(target), postgres::NoTls).expect("connect");
        client.batch_execute(sql).expect(sql);
        return;
    }
    rusqlite::Connection::open(path)
        .expect("open")
        .execute_batch(sql)
        .expect(sql);
}
