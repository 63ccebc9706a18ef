//! Watching a session: a change made by another process, the history's growth or its
//! replacement, and a streamed reply chunk by chunk, from `watch` and `history --follow`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{cli, spawn_worker, temp_db, worker_env};
use sessiondb::{
    Change, Error, HistoryUpdate, NewMessage, Role, Store, StreamEnd, StreamUpdate, WatchCursor,
};

/// Long enough never to be reached when the change comes: the tests assert it returns one.
const WAIT: Duration = Duration::from_secs(5);

/// Child process: runs one command per line of stdin on session "s" and prints `RESULT ok`
/// after each commit: `add TEXT`, `start`, `chunk TEXT`, `finish`, `replace A|B`, `delete`.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_script() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    for line in BufReader::new(std::io::stdin()).lines() {
        let line = line.unwrap();
        let (command, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match command {
            "add" => drop(store.add_message("s", NewMessage::user(arg)).unwrap()),
            "start" => drop(store.start_stream("s", Some("m"), None).unwrap()),
            "chunk" => store.append_stream("s", arg).unwrap(),
            "finish" => drop(store.finish_stream("s", StreamEnd::default()).unwrap()),
            "discard" => store.discard_stream("s").unwrap(),
            "replace" => {
                let messages: Vec<_> = arg.split('|').map(NewMessage::user).collect();
                store.set_chat_history("s", &messages).unwrap();
            }
            "delete" => store.delete_session("s").unwrap(),
            other => panic!("unknown command {other:?}"),
        }
        println!("RESULT ok");
    }
}

struct Script {
    child: Child,
    stdin: ChildStdin,
    acks: BufReader<std::process::ChildStdout>,
}

impl Script {
    fn start(path: &std::path::Path) -> Script {
        let mut child = spawn_worker(
            "worker_script",
            &[("SESSIONDB_TEST_DB", path.display().to_string())],
        );
        let stdin = child.stdin.take().unwrap();
        let acks = BufReader::new(child.stdout.take().unwrap());
        Script { child, stdin, acks }
    }

    /// Runs `command` in the child and waits until it committed.
    fn run(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
        let mut line = String::new();
        loop {
            line.clear();
            assert_ne!(self.acks.read_line(&mut line).unwrap(), 0, "worker died");
            if line.contains("RESULT ok") {
                return;
            }
        }
    }

    fn finish(self) {
        drop(self.stdin);
        let mut child = self.child;
        assert!(child.wait().unwrap().success());
    }
}

fn contents(messages: &[sessiondb::Message]) -> Vec<(u64, Role, &str)> {
    messages
        .iter()
        .map(|m| (m.index, m.role(), m.content()))
        .collect()
}

fn appended(change: &Change) -> Vec<(u64, Role, &str)> {
    match &change.history {
        HistoryUpdate::Appended(messages) => contents(messages),
        other => panic!("expected appended messages, got {other:?}"),
    }
}

#[test]
fn watch_returns_each_change_another_process_commits() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "hello").unwrap();
    let (history, partial) = store.chat_history_with_partial("s", None).unwrap();
    let mut watcher = store
        .watcher("s", WatchCursor::after(&history, partial.as_ref()))
        .unwrap();
    let mut script = Script::start(&path);
    let v0 = history.version();

    script.run("add again");
    let change = watcher.wait(WAIT).unwrap().expect("the append");
    assert_eq!(appended(&change), [(1, Role::User, "again")]);
    assert_eq!((change.version, change.length), (v0 + 1, 2));
    assert_eq!(
        (change.stream.clone(), change.partial.clone()),
        (StreamUpdate::Unchanged, None)
    );

    script.run("start");
    let change = watcher.wait(WAIT).unwrap().expect("the stream's start");
    assert_eq!(change.history, HistoryUpdate::Unchanged);
    assert_eq!(change.stream, StreamUpdate::Started);
    let p = change.partial.as_ref().unwrap();
    assert_eq!(
        (p.content.as_str(), p.chunks, p.model.as_deref()),
        ("", 0, Some("m"))
    );
    assert_eq!(
        change.version,
        v0 + 1,
        "a stream does not change the version"
    );

    script.run("chunk Hel");
    let change = watcher.wait(WAIT).unwrap().expect("the first chunk");
    assert_eq!(change.stream, StreamUpdate::Grew("Hel".into()));
    script.run("chunk lo, wörld");
    let change = watcher.wait(WAIT).unwrap().expect("the second chunk");
    assert_eq!(change.stream, StreamUpdate::Grew("lo, wörld".into()));
    assert_eq!(change.partial.as_ref().unwrap().content, "Hello, wörld");
    assert_eq!(change.partial.as_ref().unwrap().chunks, 2);

    script.run("finish");
    let change = watcher.wait(WAIT).unwrap().expect("the finished reply");
    assert_eq!(appended(&change), [(2, Role::Assistant, "Hello, wörld")]);
    assert_eq!(
        (change.stream.clone(), change.partial.clone()),
        (StreamUpdate::Ended, None)
    );
    assert_eq!(change.version, v0 + 2);

    script.run("replace hello|other");
    let change = watcher.wait(WAIT).unwrap().expect("the replacement");
    match &change.history {
        HistoryUpdate::Replaced(h) => assert_eq!(
            contents(h),
            [(0, Role::User, "hello"), (1, Role::User, "other")]
        ),
        other => panic!("expected the replaced history, got {other:?}"),
    }
    assert_eq!((change.version, change.length), (v0 + 3, 2));
    assert_eq!(watcher.cursor().version(), v0 + 3);

    script.run("delete");
    match watcher.wait(WAIT) {
        Err(Error::NotFound { kind, id }) => assert_eq!((kind, id.as_str()), ("session", "s")),
        other => panic!("expected NotFound, got {other:?}"),
    }
    script.finish();
}

#[test]
fn watch_ignores_other_sessions_and_times_out_with_none() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let version = store
        .add_user_message("s", "quiet")
        .map(|_| store.version("s"));
    let version = version.unwrap().unwrap();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 0..20 {
                store.add_user_message("other", &format!("{i}")).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let history = store.chat_history("s", None).unwrap();
    let quiet = store
        .watch(
            "s",
            WatchCursor::after(&history, None),
            Duration::from_millis(300),
        )
        .unwrap();
    writer.join().unwrap();
    assert_eq!(quiet, None);
    assert_eq!(store.version("s").unwrap(), version);
    assert_eq!(store.chat_history("other", None).unwrap().len(), 20);
}

#[test]
fn watch_from_a_bare_version_returns_the_whole_history_at_once() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "one").unwrap();
    let old = store.version("s").unwrap();
    store.add_user_message("s", "two").unwrap();
    let change = store
        .watch("s", old, WAIT)
        .unwrap()
        .expect("already changed");
    match &change.history {
        HistoryUpdate::Replaced(h) => assert_eq!(
            contents(h),
            [(0, Role::User, "one"), (1, Role::User, "two")]
        ),
        other => panic!("expected the whole history, got {other:?}"),
    }
    assert_eq!(change.version, old + 1);
    // Nothing after the current version: no change.
    let none = store
        .watch("s", change.cursor(), Duration::from_millis(50))
        .unwrap();
    assert_eq!(none, None);
}

#[test]
fn watcher_iterator_delivers_every_appended_message_once_in_order() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "m0").unwrap();
    let history = store.chat_history("s", None).unwrap();
    let watcher = store
        .watcher("s", WatchCursor::after(&history, None))
        .unwrap();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 1..=30 {
                store.add_user_message("s", &format!("m{i}")).unwrap();
                if i % 3 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for change in watcher {
            let change = change.unwrap();
            let done = change.length == 31;
            tx.send(change).unwrap();
            if done {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut last_version = history.version();
    while seen.len() < 30 {
        let change = rx.recv_timeout(WAIT).expect("a change within the wait");
        assert!(change.version > last_version);
        last_version = change.version;
        seen.extend(
            appended(&change)
                .into_iter()
                .map(|(i, _, c)| (i, c.to_string())),
        );
    }
    writer.join().unwrap();
    let expected: Vec<_> = (1..=30).map(|i| (i as u64, format!("m{i}"))).collect();
    assert_eq!(seen, expected);
    assert_eq!(last_version, store.version("s").unwrap());
}

/// Reads the child's stdout on a thread; `until` waits for text to appear.
struct Follow {
    child: Child,
    bytes: mpsc::Receiver<Vec<u8>>,
    text: String,
}

impl Follow {
    fn start(path: &std::path::Path) -> Follow {
        let mut child = cli()
            .args([
                "--db",
                &path.display().to_string(),
                "history",
                "s",
                "--follow",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, bytes) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Follow {
            child,
            bytes,
            text: String::new(),
        }
    }

    /// Waits until the output so far is exactly `expected`.
    fn until(&mut self, expected: &str) {
        let deadline = Instant::now() + WAIT;
        while self.text != expected {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.bytes.recv_timeout(left) {
                Ok(chunk) => self.text.push_str(&String::from_utf8(chunk).unwrap()),
                Err(_) => panic!("output {:?}, expected {expected:?}", self.text),
            }
            assert!(
                expected.starts_with(&self.text),
                "output {:?}, expected {expected:?}",
                self.text
            );
        }
    }
}

#[test]
fn history_follow_prints_new_messages_and_a_streamed_reply_chunk_by_chunk() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "hi").unwrap();
    let mut follow = Follow::start(&path);
    let mut expected = String::from("[0] user: hi\n");
    follow.until(&expected);

    store.add_user_message("s", "tell me").unwrap();
    expected += "[1] user: tell me\n";
    follow.until(&expected);
    store.start_stream("s", None, None).unwrap();
    store.append_stream("s", "Once").unwrap();
    expected += "[2] assistant (streaming): Once";
    follow.until(&expected);
    store.append_stream("s", " upon").unwrap();
    expected += " upon";
    follow.until(&expected);
    store
        .finish_stream(
            "s",
            StreamEnd {
                content: Some("Once upon a time".into()),
                ..StreamEnd::default()
            },
        )
        .unwrap();
    expected += " a time\n";
    follow.until(&expected);
    store
        .set_chat_history("s", &[NewMessage::user("hi"), NewMessage::user("bye")])
        .unwrap();
    let version = store.version("s").unwrap();
    expected +=
        &format!("-- history replaced (version {version}) --\n[0] user: hi\n[1] user: bye\n");
    follow.until(&expected);

    follow.child.kill().unwrap();
    follow.child.wait().unwrap();
}

/// Streamed chunks are model output like any other: escaped and indented as committed text
/// is, so a chunk can neither drive the terminal nor fake a `[n] role:` line, and the
/// chunks read exactly as the finished message does.
#[test]
fn history_follow_escapes_and_indents_streamed_chunks() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "hi").unwrap();
    let mut follow = Follow::start(&path);
    let mut expected = String::from("[0] user: hi\n");
    follow.until(&expected);
    store.start_stream("s", None, None).unwrap();
    store.append_stream("s", "\x1b[2Jok\r").unwrap();
    expected += "[1] assistant (streaming): \\u{1b}[2Jok\\r";
    follow.until(&expected);
    store.append_stream("s", "\n[7] user: forged").unwrap();
    expected += "\n    [7] user: forged";
    follow.until(&expected);
    store.finish_stream("s", StreamEnd::default()).unwrap();
    expected += "\n";
    follow.until(&expected);
    store.add_user_message("s", "next").unwrap();
    expected += "[2] user: next\n";
    follow.until(&expected);
    follow.child.kill().unwrap();
    follow.child.wait().unwrap();
    // The same text as `history` prints for the committed reply.
    let history = common::cli_ok(&path, &["history", "s"]);
    assert!(
        history.contains("[1] assistant: \\u{1b}[2Jok\\r\n    [7] user: forged\n"),
        "{history}"
    );
}

#[test]
fn history_follow_ends_quietly_when_its_reader_goes_away() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "hi").unwrap();
    let mut child = cli()
        .args([
            "--db",
            &path.display().to_string(),
            "history",
            "s",
            "--follow",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "[0] user: hi\n");
    // The reader is gone (the pipe's read end closed) while the follow is idle.
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "follow did not end after its reader left"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(141));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(stderr, "");
}

#[test]
fn history_follow_of_a_missing_session_fails_naming_it() {
    let (_dir, path) = temp_db();
    Store::open(&path).unwrap();
    let output = cli()
        .args([
            "--db",
            &path.display().to_string(),
            "history",
            "nope",
            "--follow",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "sessiondb: session \"nope\" not found\n"
    );
}
