//! Crash campaign: a child process performs random writes and reports each one before and
//! after it commits; the parent kills it with SIGKILL at random moments, reopens the file and
//! checks that it is sound, that every acknowledged write is there, and that no transaction
//! is visible half-done (a replaced history is all old or all new, a batch of
//! `add_messages` all there or absent).
//!
//! At least 200 kills in the normal run, bounded in time. For a longer manual run:
//! `SESSIONDB_CRASH_ROUNDS=5000 cargo test --release --test crash -- --nocapture`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::{spawn_worker, temp_db, worker_env};
use sessiondb::{NewMessage, SnapshotId, Store, StreamEnd};

const SESSIONS: [&str; 3] = ["c0", "c1", "c2"];

/// A session's visible state: its history and its streamed reply in progress.
fn digest(history: &[String], partial: Option<&str>) -> String {
    // FNV-1a over the contents and their boundaries.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in history
        .iter()
        .flat_map(|m| m.as_bytes().iter().chain(b"\x1f"))
        .chain(b"\x1e")
        .chain(partial.map_or(b"-".as_slice(), str::as_bytes))
    {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
    }
    format!("{}:{}:{hash:x}", history.len(), partial.map_or(0, str::len))
}

fn state_of(store: &Store, id: &str) -> Option<String> {
    let history = store.chat_history_uncached(id, None).ok()?;
    let contents: Vec<String> = history.iter().map(|m| m.content().to_string()).collect();
    let partial = store.partial_message(id).ok()?;
    Some(digest(
        &contents,
        partial.as_ref().map(|p| p.content.as_str()),
    ))
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Child process: random writes on SESSIONS, printing `DO <session> <state after>` before
/// each write and `ACK <session>` once it has committed, until it is killed.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_random_writes() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    let seed: u64 = worker_env("SESSIONDB_TEST_SEED").parse().unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut model: HashMap<&str, (Vec<String>, Option<String>)> = HashMap::new();
    for id in SESSIONS {
        let history = store
            .chat_history_uncached(id, None)
            .map(|h| h.iter().map(|m| m.content().to_string()).collect())
            .unwrap_or_default();
        let partial = store.partial_message(id).ok().flatten().map(|p| p.content);
        model.insert(id, (history, partial));
    }
    let mut snapshots: Vec<(&str, SnapshotId, Vec<String>)> = Vec::new();
    for n in 0..100_000u64 {
        let id = SESSIONS[rng.below(SESSIONS.len() as u64) as usize];
        let (history, partial) = model[id].clone();
        let fresh = |k: u64| format!("{seed}-{n}-{k}");
        let (mut next, mut next_partial) = (history.clone(), partial.clone());
        let announce = |h: &[String], p: &Option<String>| {
            println!("DO {id} {}", digest(h, p.as_deref()));
        };
        match rng.below(12) {
            0..=2 => {
                next.push(fresh(0));
                announce(&next, &next_partial);
                store.add_message(id, NewMessage::user(fresh(0))).unwrap();
            }
            3 | 4 if !history.is_empty() => {
                // Replace a large part of the history: a long transaction to land a kill in.
                next.truncate(rng.below(history.len() as u64 + 1) as usize);
                next.extend((0..50 + rng.below(100)).map(fresh));
                announce(&next, &next_partial);
                let messages: Vec<NewMessage> = next.iter().map(NewMessage::user).collect();
                store.set_chat_history(id, &messages).unwrap();
            }
            5 if !history.is_empty() => {
                let at = rng.below(history.len() as u64);
                println!("DO FORK {id}");
                let fork = store.fork_session(id, Some(at), None).unwrap();
                let prefix = &history[..=at as usize];
                println!("ACK FORK {} {}", fork.id, digest(prefix, None));
                continue;
            }
            6 if !history.is_empty() => {
                announce(&next, &next_partial);
                let snap = store.create_snapshot(id, None, None).unwrap();
                snapshots.push((id, snap.id, history.clone()));
            }
            7 => match snapshots.iter().rev().find(|(s, _, _)| *s == id) {
                Some((_, snap, contents)) => {
                    next = contents.clone();
                    announce(&next, &next_partial);
                    store.restore_snapshot(id, *snap).unwrap();
                }
                None => continue,
            },
            10 | 11 => {
                // A whole turn: visible entirely or not at all, and a retry writes nothing.
                let batch: Vec<NewMessage> = (0..2 + rng.below(40))
                    .map(|k| NewMessage::user(fresh(k)).with_key(fresh(k)))
                    .collect();
                next.extend(batch.iter().map(|m| m.content().to_string()));
                announce(&next, &next_partial);
                let added = store.add_messages(id, &batch).unwrap();
                assert!(!added.already_stored);
                if rng.below(3) == 0 {
                    let retry = store.add_messages(id, &batch).unwrap();
                    assert!(retry.already_stored);
                    assert_eq!(retry.version, added.version);
                }
            }
            _ => {
                if !store.session_exists(id).unwrap() {
                    continue;
                }
                match partial {
                    None => {
                        next_partial = Some(String::new());
                        announce(&next, &next_partial);
                        store.start_stream(id, Some("m"), None).unwrap();
                    }
                    Some(text) if rng.below(4) > 0 => {
                        let chunk = format!("<{}>", fresh(0));
                        next_partial = Some(format!("{text}{chunk}"));
                        announce(&next, &next_partial);
                        store.append_stream(id, &chunk).unwrap();
                    }
                    Some(text) => {
                        next.push(text);
                        next_partial = None;
                        announce(&next, &next_partial);
                        store.finish_stream(id, StreamEnd::default()).unwrap();
                    }
                }
            }
        }
        println!("ACK {id}");
        model.insert(id, (next, next_partial));
    }
}

/// What the parent knows of one session: its last acknowledged state, and the state of a
/// write announced but not acknowledged before the kill.
#[derive(Default)]
struct Known {
    acked: Option<String>,
    pending: Option<String>,
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_write_and_shows_no_partial_one() {
    let rounds: usize = std::env::var("SESSIONDB_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let budget = Duration::from_secs(if rounds > 200 { 3600 * 24 } else { 240 });
    let (_dir, path) = temp_db();
    let mut known: HashMap<String, Known> = HashMap::new();
    let mut forks: Vec<(String, String)> = Vec::new();
    let mut rng = Rng(0x5eed_cafe);
    let started = Instant::now();
    let (mut kills, mut acked_writes, mut pending_committed) = (0, 0, 0);
    for round in 0..rounds {
        let mut child = spawn_worker(
            "worker_random_writes",
            &[
                ("SESSIONDB_TEST_DB", path.display().to_string()),
                ("SESSIONDB_TEST_SEED", (round + 1).to_string()),
            ],
        );
        drop(child.stdin.take());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let kill_after = 1 + rng.below(40);
        let mut seen = 0;
        let mut handle = |line: &str, known: &mut HashMap<String, Known>| {
            let (is_ack, rest) = match (line.split_once("ACK "), line.split_once("DO ")) {
                (Some((_, rest)), _) => (true, rest),
                (None, Some((_, rest))) => (false, rest),
                (None, None) => return,
            };
            match (is_ack, rest.split(' ').collect::<Vec<_>>().as_slice()) {
                (true, ["FORK", id, state]) => forks.push((id.to_string(), state.to_string())),
                (false, ["FORK", _]) => {}
                (false, [id, state]) => {
                    known.entry(id.to_string()).or_default().pending = Some(state.to_string())
                }
                (true, [id]) => {
                    let k = known.entry(id.to_string()).or_default();
                    k.acked = k.pending.take();
                    acked_writes += 1;
                }
                _ => panic!("unexpected worker line {line:?}"),
            }
        };
        for line in lines.by_ref() {
            let line = line.unwrap();
            handle(&line, &mut known);
            seen += 1;
            if seen >= kill_after {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        // Lines the child wrote before it died are still in the pipe.
        for line in lines {
            handle(&line.unwrap(), &mut known);
        }

        let store = Store::open(&path).unwrap();
        let report = store.check().unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
        for (id, k) in known.iter_mut() {
            let actual = state_of(&store, id);
            let ok = actual == k.acked || (actual.is_some() && actual == k.pending);
            assert!(
                ok,
                "round {round}: session {id} is {actual:?}; acknowledged {:?}, pending {:?}",
                k.acked, k.pending
            );
            if k.pending.is_some() && actual == k.pending {
                pending_committed += 1;
            }
            k.acked = actual;
            k.pending = None;
        }
        for (id, state) in forks.drain(..) {
            assert_eq!(
                state_of(&store, &id),
                Some(state),
                "round {round}: fork {id}"
            );
        }
        if started.elapsed() > budget {
            break;
        }
    }
    println!(
        "crash campaign: {kills} kills, {acked_writes} acknowledged writes, \
         {pending_committed} unacknowledged writes found committed, in {:?}",
        started.elapsed()
    );
    assert!(
        kills >= rounds.min(200),
        "only {kills} kills within the time budget"
    );
}
