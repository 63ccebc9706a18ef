//! Shared test plumbing: temporary database files and real child processes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

/// A fresh directory and a database path inside it (the file does not exist yet).
pub fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sessions.db");
    (dir, path)
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
