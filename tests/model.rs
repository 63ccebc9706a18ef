//! Model-based test: random sequences of every history operation run against the store and
//! against a plain in-memory model; after every step the two must agree on every session's
//! history, named branches (and their contents), snapshots and parent links.
//!
//! Bounded by steps and time. `SESSIONDB_MODEL_STEPS=N` runs longer by hand.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::temp_db;
use sessiondb::{Error, NewMessage, SnapshotId, Store};

/// xorshift64*: a seeded generator, so a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[derive(Clone, Debug, Default)]
struct ModelSession {
    /// Named (not superseded) branches and their full histories.
    branches: BTreeMap<String, Vec<String>>,
    head: String,
    snapshots: BTreeMap<i64, Vec<String>>,
    parent: Option<String>,
    /// Per named branch: its compactions (through length, summary), oldest first.
    compactions: BTreeMap<String, Vec<(usize, String)>>,
    /// The head's compactions when each snapshot was taken.
    snapshot_compactions: BTreeMap<i64, Vec<(usize, String)>>,
}

impl ModelSession {
    fn new(history: Vec<String>, parent: Option<String>) -> Self {
        let mut branches = BTreeMap::new();
        branches.insert("main".to_string(), history);
        ModelSession {
            branches,
            head: "main".into(),
            snapshots: BTreeMap::new(),
            parent,
            compactions: BTreeMap::new(),
            snapshot_compactions: BTreeMap::new(),
        }
    }

    fn head_compactions(&self) -> Vec<(usize, String)> {
        self.compactions
            .get(&self.head)
            .cloned()
            .unwrap_or_default()
    }

    /// Keeps the head's compactions that end within its first `len` messages.
    fn keep_compactions(&mut self, len: usize) {
        let head = self.head.clone();
        self.compactions
            .entry(head)
            .or_default()
            .retain(|(t, _)| *t <= len);
    }

    /// What `chat_history` returns: the summary in effect, then what follows it.
    fn working(&self) -> Vec<String> {
        let history = self.history();
        match self
            .head_compactions()
            .iter()
            .filter(|(t, _)| *t <= history.len())
            .max_by_key(|(t, _)| *t)
        {
            Some((t, summary)) => std::iter::once(summary.clone())
                .chain(history[*t..].iter().cloned())
                .collect(),
            None => history.clone(),
        }
    }

    fn history(&self) -> &Vec<String> {
        &self.branches[&self.head]
    }

    fn history_mut(&mut self) -> &mut Vec<String> {
        self.branches.get_mut(&self.head).unwrap()
    }
}

#[derive(Default)]
struct Model {
    sessions: BTreeMap<String, ModelSession>,
}

const SESSION_NAMES: [&str; 4] = ["s1", "s2", "s3", "s4"];
const BRANCH_NAMES: [&str; 3] = ["alt", "try", "main"];

fn contents(history: &[sessiondb::Message]) -> Vec<String> {
    history.iter().map(|m| m.content().to_string()).collect()
}

struct Run {
    store: Store,
    model: Model,
    rng: Rng,
    counter: usize,
}

impl Run {
    fn fresh_text(&mut self) -> String {
        self.counter += 1;
        format!("m{}", self.counter)
    }

    fn any_session(&mut self) -> Option<String> {
        let ids: Vec<String> = self.model.sessions.keys().cloned().collect();
        (!ids.is_empty()).then(|| self.rng.pick(&ids).clone())
    }

    fn step(&mut self) -> String {
        let op = self.rng.below(16);
        let Some(id) = self.any_session().filter(|_| op != 0) else {
            let id = self.rng.pick(&SESSION_NAMES).to_string();
            let text = self.fresh_text();
            self.store.add_user_message(&id, &text).unwrap();
            self.model
                .sessions
                .entry(id.clone())
                .or_insert_with(|| ModelSession::new(Vec::new(), None))
                .history_mut()
                .push(text);
            return format!("append {id}");
        };
        let len = self.model.sessions[&id].history().len();
        let index = (len > 0 && self.rng.below(3) > 0).then(|| self.rng.below(len + 1) as u64);
        match op {
            1 | 2 => {
                let text = self.fresh_text();
                self.store.add_user_message(&id, &text).unwrap();
                self.model
                    .sessions
                    .get_mut(&id)
                    .unwrap()
                    .history_mut()
                    .push(text);
                format!("append {id}")
            }
            3 => {
                let result = self.store.fork_session(&id, index, None);
                match index {
                    Some(i) if i as usize >= len => {
                        assert!(matches!(result, Err(Error::InvalidInput(_))), "{result:?}");
                    }
                    _ => {
                        let keep = index.map_or(len, |i| i as usize + 1);
                        let source = &self.model.sessions[&id];
                        let history = source.history()[..keep].to_vec();
                        let carried: Vec<_> = source
                            .head_compactions()
                            .into_iter()
                            .filter(|(t, _)| *t <= keep)
                            .collect();
                        let fork = result.unwrap();
                        let mut forked = ModelSession::new(history, Some(id.clone()));
                        forked.compactions.insert("main".into(), carried);
                        self.model.sessions.insert(fork.id.clone(), forked);
                    }
                }
                format!("fork {id} at {index:?}")
            }
            4 => {
                let name = self.rng.pick(&BRANCH_NAMES).to_string();
                let result = self.store.create_branch(&id, &name, index);
                let session = self.model.sessions.get_mut(&id).unwrap();
                if session.branches.contains_key(&name) || index.is_some_and(|i| i as usize >= len)
                {
                    assert!(matches!(result, Err(Error::InvalidInput(_))), "{result:?}");
                } else {
                    result.unwrap();
                    let keep = index.map_or(len, |i| i as usize + 1);
                    let history = session.history()[..keep].to_vec();
                    session.branches.insert(name.clone(), history);
                    let carried: Vec<_> = session
                        .head_compactions()
                        .into_iter()
                        .filter(|(t, _)| *t <= keep)
                        .collect();
                    session.compactions.insert(name.clone(), carried);
                }
                format!("create branch {name} of {id} at {index:?}")
            }
            5 => {
                let name = self.rng.pick(&BRANCH_NAMES).to_string();
                let result = self.store.switch_branch(&id, &name);
                let session = self.model.sessions.get_mut(&id).unwrap();
                if session.branches.contains_key(&name) {
                    result.unwrap();
                    session.head = name.clone();
                } else {
                    assert!(matches!(result, Err(Error::NotFound { .. })), "{result:?}");
                }
                format!("switch {id} to {name}")
            }
            6 => {
                let name = self.rng.pick(&BRANCH_NAMES).to_string();
                let result = self.store.delete_branch(&id, &name);
                let session = self.model.sessions.get_mut(&id).unwrap();
                if session.head == name {
                    assert!(matches!(result, Err(Error::InvalidInput(_))), "{result:?}");
                } else if session.branches.remove(&name).is_some() {
                    session.compactions.remove(&name);
                    result.unwrap();
                } else {
                    assert!(matches!(result, Err(Error::NotFound { .. })), "{result:?}");
                }
                format!("delete branch {name} of {id}")
            }
            7 => {
                let snap = self.store.create_snapshot(&id, None, None).unwrap();
                let session = self.model.sessions.get_mut(&id).unwrap();
                session
                    .snapshots
                    .insert(snap.id.0, session.history().clone());
                let compactions = session.head_compactions();
                session.snapshot_compactions.insert(snap.id.0, compactions);
                format!("snapshot {id}")
            }
            8 => {
                let session = self.model.sessions.get_mut(&id).unwrap();
                let ids: Vec<i64> = session.snapshots.keys().copied().collect();
                if ids.is_empty() {
                    return "restore skipped".into();
                }
                let snap = ids[self.rng.below(ids.len())];
                self.store.restore_snapshot(&id, SnapshotId(snap)).unwrap();
                let history = session.snapshots[&snap].clone();
                *session.history_mut() = history;
                let head = session.head.clone();
                let compactions = session.snapshot_compactions[&snap].clone();
                session.compactions.insert(head, compactions);
                format!("restore {id} snapshot {snap}")
            }
            9 => {
                let Some(i) = index.filter(|&i| (i as usize) < len) else {
                    return "revert skipped".into();
                };
                self.store.revert_to_message(&id, i).unwrap();
                let session = self.model.sessions.get_mut(&id).unwrap();
                session.history_mut().truncate(i as usize + 1);
                session.keep_compactions(i as usize + 1);
                format!("revert {id} to {i}")
            }
            10 => {
                let keep = self.rng.below(len + 1);
                let mut history = self.model.sessions[&id].history()[..keep].to_vec();
                for _ in 0..self.rng.below(4) {
                    history.push(self.fresh_text());
                }
                let messages: Vec<NewMessage> = history
                    .iter()
                    .map(|t| NewMessage::user(t.clone()))
                    .collect();
                self.store.set_chat_history(&id, &messages).unwrap();
                let session = self.model.sessions.get_mut(&id).unwrap();
                *session.history_mut() = history;
                session.keep_compactions(keep);
                format!("set history of {id} keeping {keep}")
            }
            11 => {
                if self.rng.below(2) == 0 {
                    self.store.clear(&id).unwrap();
                    let session = self.model.sessions.get_mut(&id).unwrap();
                    session.history_mut().clear();
                    session.keep_compactions(0);
                    format!("clear {id}")
                } else {
                    self.store.delete_session(&id).unwrap();
                    self.model.sessions.remove(&id);
                    for session in self.model.sessions.values_mut() {
                        if session.parent.as_deref() == Some(id.as_str()) {
                            session.parent = None;
                        }
                    }
                    format!("delete {id}")
                }
            }
            12 => {
                self.store.prune(Duration::ZERO, false).unwrap();
                "prune".into()
            }
            13 => {
                let batch: Vec<String> = (0..1 + self.rng.below(4))
                    .map(|_| self.fresh_text())
                    .collect();
                let messages: Vec<NewMessage> =
                    batch.iter().map(|t| NewMessage::user(t.clone())).collect();
                let added = self.store.add_messages(&id, &messages).unwrap();
                assert_eq!(added.messages.len(), batch.len());
                let session = self.model.sessions.get_mut(&id).unwrap();
                session.history_mut().extend(batch);
                format!("add {} messages to {id}", added.messages.len())
            }
            14 => {
                let popped = self.store.pop_message(&id).unwrap();
                let session = self.model.sessions.get_mut(&id).unwrap();
                let expected = session.history_mut().pop();
                assert_eq!(popped.map(|m| m.content().to_string()), expected);
                let len = session.history().len();
                session.keep_compactions(len);
                format!("pop {id}")
            }
            _ => {
                let session = &self.model.sessions[&id];
                let floor = session
                    .head_compactions()
                    .iter()
                    .map(|(t, _)| *t)
                    .filter(|t| *t <= len)
                    .max()
                    .unwrap_or(1);
                if len == 0 {
                    return "compact skipped".into();
                }
                let through = floor - 1 + self.rng.below(len - floor + 1);
                let summary = format!("sum{}", self.fresh_text());
                self.store
                    .compact(&id, NewMessage::system(summary.clone()), through as u64)
                    .unwrap();
                let session = self.model.sessions.get_mut(&id).unwrap();
                let head = session.head.clone();
                session
                    .compactions
                    .entry(head)
                    .or_default()
                    .push((through + 1, summary));
                format!("compact {id} through {through}")
            }
        }
    }

    fn check(&self, context: &str) {
        let listed = self
            .store
            .list_sessions(&sessiondb::SessionQuery {
                limit: 10_000,
                ..Default::default()
            })
            .unwrap();
        let mut ids: Vec<String> = listed.sessions.iter().map(|s| s.id.clone()).collect();
        ids.sort();
        let expected: Vec<String> = self.model.sessions.keys().cloned().collect();
        assert_eq!(ids, expected, "{context}: sessions");
        for (id, model) in &self.model.sessions {
            let session = self.store.session(id).unwrap();
            let history = self.store.chat_history(id, None).unwrap();
            assert_eq!(
                contents(&history),
                model.working(),
                "{context}: working history of {id}"
            );
            let full = self.store.full_history(id).unwrap();
            assert_eq!(
                &contents(&full),
                model.history(),
                "{context}: full history of {id}"
            );
            let window = self.store.chat_history(id, Some(2)).unwrap();
            let working = model.working();
            assert_eq!(
                contents(&window),
                working[working.len().saturating_sub(2)..],
                "{context}: window of {id}"
            );
            assert_eq!(
                session.message_count as usize,
                model.history().len(),
                "{context}: {id}"
            );
            assert_eq!(session.head_branch, model.head, "{context}: head of {id}");
            assert_eq!(
                session.parent_session, model.parent,
                "{context}: parent of {id}"
            );
            let named: HashMap<String, u64> = self
                .store
                .branches(id)
                .unwrap()
                .into_iter()
                .filter(|b| b.superseded_at.is_none())
                .map(|b| (b.name, b.length))
                .collect();
            let expected: HashMap<String, u64> = model
                .branches
                .iter()
                .map(|(name, h)| (name.clone(), h.len() as u64))
                .collect();
            assert_eq!(named, expected, "{context}: branches of {id}");
            for (name, history) in &model.branches {
                let stored = self.store.branch_history(id, name).unwrap();
                assert_eq!(
                    &contents(&stored),
                    history,
                    "{context}: branch {name} of {id}"
                );
            }
            let snaps: Vec<(i64, u64)> = self
                .store
                .snapshots(id)
                .unwrap()
                .iter()
                .map(|s| (s.id.0, s.length))
                .collect();
            let expected: Vec<(i64, u64)> = model
                .snapshots
                .iter()
                .map(|(k, h)| (*k, h.len() as u64))
                .collect();
            assert_eq!(snaps, expected, "{context}: snapshots of {id}");
        }
    }
}

#[test]
fn random_operations_agree_with_an_in_memory_model() {
    let steps: usize = std::env::var("SESSIONDB_MODEL_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let budget = Duration::from_secs(60);
    let started = Instant::now();
    let mut total = 0;
    for seed in 1..=8u64 {
        let (_dir, path) = temp_db();
        let mut run = Run {
            store: Store::open(&path).unwrap(),
            model: Model::default(),
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            counter: 0,
        };
        let mut log = Vec::new();
        for step in 0..steps / 8 {
            let what = run.step();
            log.push(what);
            let context = format!("seed {seed} step {step} ({})", log.join("; "));
            run.check(&context);
            total += 1;
        }
        // A fresh store on the same file reads the same thing (nothing lived only in memory).
        run.store = Store::open(&path).unwrap();
        run.check(&format!("seed {seed} after reopening"));
        if started.elapsed() > budget {
            break;
        }
    }
    println!("model test: {total} steps in {:?}", started.elapsed());
    assert!(total >= 75, "ran only {total} steps");
}
