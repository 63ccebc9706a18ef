//! The version-checked cache: hits when nothing changed, only the tail when a session grew,
//! a reload otherwise — and never a stale read, whichever process wrote last.

mod common;

use common::temp_db;

fn run_cli(path: &std::path::Path, args: &[&str]) {
    common::cli_ok(path, args);
}
use sessiondb::{CacheStats, NewMessage, Store};

fn contents(history: &[sessiondb::Message]) -> Vec<String> {
    history.iter().map(|m| m.content().to_string()).collect()
}

fn seeded(store: &Store, id: &str, items: &[&str]) {
    for item in items {
        store.add_user_message(id, item).unwrap();
    }
}

/// Counters changed since `before`.
fn delta(store: &Store, before: CacheStats) -> (u64, u64, u64, u64) {
    let now = store.cache_stats();
    (
        now.hits - before.hits,
        now.misses - before.misses,
        now.tail_refreshes - before.tail_refreshes,
        now.full_reloads - before.full_reloads,
    )
}

#[test]
fn a_read_after_our_own_writes_is_a_cache_hit() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", &["a"]);
    store.chat_history("s", None).unwrap();
    let before = store.cache_stats();
    store.add_user_message("s", "b").unwrap();
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["a", "b"]
    );
    store
        .set_chat_history("s", &[NewMessage::user("a"), NewMessage::user("c")])
        .unwrap();
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["a", "c"]
    );
    assert_eq!(delta(&store, before), (2, 0, 0, 0));
}

#[test]
fn another_writer_appending_costs_only_a_tail_refresh() {
    let (_dir, path) = temp_db();
    let reader = Store::open(&path).unwrap();
    let writer = Store::open(&path).unwrap();
    seeded(&writer, "s", &["a", "b"]);
    assert_eq!(
        contents(&reader.chat_history("s", None).unwrap()),
        ["a", "b"]
    );
    let before = reader.cache_stats();
    seeded(&writer, "s", &["c", "d"]);
    let history = reader.chat_history("s", None).unwrap();
    assert_eq!(contents(&history), ["a", "b", "c", "d"]);
    assert_eq!(history.version(), writer.session("s").unwrap().version);
    assert_eq!(delta(&reader, before), (0, 0, 1, 0));
    reader.chat_history("s", None).unwrap();
    assert_eq!(delta(&reader, before), (1, 0, 1, 0));
}

#[test]
fn a_replaced_history_is_reloaded() {
    let (_dir, path) = temp_db();
    let reader = Store::open(&path).unwrap();
    let writer = Store::open(&path).unwrap();
    seeded(&writer, "s", &["a", "b", "c"]);
    reader.chat_history("s", None).unwrap();
    let before = reader.cache_stats();
    writer
        .set_chat_history(
            "s",
            &[
                NewMessage::user("a"),
                NewMessage::user("x"),
                NewMessage::user("y"),
            ],
        )
        .unwrap();
    assert_eq!(
        contents(&reader.chat_history("s", None).unwrap()),
        ["a", "x", "y"]
    );
    assert_eq!(delta(&reader, before), (0, 0, 0, 1));
}

#[test]
fn windows_are_served_from_a_cached_full_history() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", &["a", "b", "c", "d"]);
    store.invalidate_cache(None);
    let before = store.cache_stats();
    assert_eq!(
        contents(&store.chat_history("s", Some(2)).unwrap()),
        ["c", "d"]
    );
    // The cached window does not reach back far enough for a full read: load once.
    assert_eq!(
        contents(&store.chat_history("s", None).unwrap()),
        ["a", "b", "c", "d"]
    );
    assert_eq!(
        contents(&store.chat_history("s", Some(3)).unwrap()),
        ["b", "c", "d"]
    );
    assert_eq!(contents(&store.chat_history("s", Some(1)).unwrap()), ["d"]);
    assert_eq!(delta(&store, before), (2, 2, 0, 0));
}

#[test]
fn invalidate_cache_drops_one_or_all_entries_and_uncached_reads_skip_the_cache() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", &["a"]);
    seeded(&store, "t", &["b"]);
    store.chat_history("s", None).unwrap();
    store.chat_history("t", None).unwrap();
    assert_eq!(store.cache_stats().entries, 2);
    store.invalidate_cache(Some("s"));
    assert_eq!(store.cache_stats().entries, 1);
    store.invalidate_cache(None);
    assert_eq!(
        (store.cache_stats().entries, store.cache_stats().bytes),
        (0, 0)
    );

    let before = store.cache_stats();
    assert_eq!(
        contents(&store.chat_history_uncached("s", None).unwrap()),
        ["a"]
    );
    assert_eq!(delta(&store, before), (0, 0, 0, 0));
    assert_eq!(store.cache_stats().entries, 0);
}

#[test]
fn the_cache_stays_within_its_entry_and_byte_bounds() {
    let (_dir, path) = temp_db();
    let store = Store::builder(&path).cache_entries(2).open().unwrap();
    for id in ["a", "b", "c"] {
        seeded(&store, id, &["x"]);
        store.chat_history(id, None).unwrap();
    }
    let stats = store.cache_stats();
    assert_eq!((stats.entries, stats.evictions), (2, 1));

    let (_dir2, path2) = temp_db();
    let small = Store::builder(&path2).cache_bytes(4_000).open().unwrap();
    let big = "y".repeat(1_500);
    for id in ["a", "b", "c"] {
        small.add_user_message(id, &big).unwrap();
        small.chat_history(id, None).unwrap();
    }
    let stats = small.cache_stats();
    assert!(stats.bytes <= 4_000, "{stats:?}");
    assert_eq!(stats.entries, 2);
    assert_eq!(stats.evictions, 1);

    let off = Store::builder(&path).cache_entries(0).open().unwrap();
    assert_eq!(contents(&off.chat_history("a", None).unwrap()), ["x"]);
    assert_eq!(off.cache_stats(), CacheStats::default());
}

/// Process A (this test) has the session cached; process B (the CLI) changes it; A's very
/// next read returns exactly what B left, for every kind of change.
#[test]
fn a_cached_reader_sees_every_change_another_process_makes() {
    let (dir, path) = temp_db();
    let a = Store::open(&path).unwrap();
    seeded(&a, "s", &["a", "b", "c"]);
    let history_file = dir.path().join("history.json");
    std::fs::write(
        &history_file,
        r#"[{"role":"user","content":"a"},{"role":"assistant","content":"replaced"}]"#,
    )
    .unwrap();
    let file = history_file.to_str().unwrap();

    type Step<'a> = (&'a [&'a [&'a str]], Option<&'a [&'a str]>);
    let steps: [Step; 8] = [
        (&[&["add", "s", "user", "d"]], Some(&["a", "b", "c", "d"])),
        (&[&["set-history", "s", file]], Some(&["a", "replaced"])),
        (&[&["revert", "s", "--to", "0"]], Some(&["a"])),
        (
            &[
                &["branch", "create", "s", "alt"],
                &["add", "s", "user", "e"],
                &["branch", "switch", "s", "alt"],
            ],
            Some(&["a"]),
        ),
        (&[&["branch", "switch", "s", "main"]], Some(&["a", "e"])),
        (&[&["clear", "s"]], Some(&[])),
        (&[&["delete", "s"]], None),
        // Deleted and recreated with the same number of messages: still not confused.
        (
            &[&["add", "s", "user", "new1"], &["add", "s", "user", "new2"]],
            Some(&["new1", "new2"]),
        ),
    ];
    for (i, (commands, expected)) in steps.iter().enumerate() {
        // Cache the current state in A, then let B change it.
        let _ = a.chat_history("s", None);
        for command in *commands {
            run_cli(&path, command);
        }
        match expected {
            Some(expected) => {
                let history = a.chat_history("s", None).unwrap();
                assert_eq!(contents(&history), *expected, "step {i}: {commands:?}");
                assert_eq!(
                    history.version(),
                    a.session("s").unwrap().version,
                    "step {i}"
                );
                assert_eq!(
                    *history,
                    *a.chat_history_uncached("s", None).unwrap(),
                    "step {i}"
                );
            }
            None => assert!(
                matches!(
                    a.chat_history("s", None),
                    Err(sessiondb::Error::NotFound { .. })
                ),
                "step {i}"
            ),
        }
    }
}

#[test]
fn a_recreated_session_with_a_longer_history_is_not_mistaken_for_growth() {
    let (_dir, path) = temp_db();
    let a = Store::open(&path).unwrap();
    seeded(&a, "s", &["old"]);
    assert_eq!(contents(&a.chat_history("s", None).unwrap()), ["old"]);
    run_cli(&path, &["delete", "s"]);
    run_cli(&path, &["add", "s", "user", "x"]);
    run_cli(&path, &["add", "s", "user", "y"]);
    assert_eq!(contents(&a.chat_history("s", None).unwrap()), ["x", "y"]);
}

/// The reproduction from the red-team run: prune trims a superseded branch to what a snapshot
/// pins, the branch comes back as head and grows to its old length. Its length proves nothing
/// about its content, so the cached history must not be extended.
#[test]
fn a_branch_trimmed_by_prune_and_switched_back_is_reloaded_not_extended() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", &["a", "b", "c"]);
    store.create_snapshot("s", Some("abc"), None).unwrap();
    seeded(&store, "s", &["d", "e", "f"]);
    assert_eq!(store.chat_history("s", None).unwrap().len(), 6);
    store.revert_to_message("s", 0).unwrap();
    let report = store.prune(std::time::Duration::ZERO, false).unwrap();
    assert_eq!(report.messages, 3, "prune trims d, e, f");
    let superseded = store
        .branches("s")
        .unwrap()
        .into_iter()
        .find(|b| b.name.starts_with("main@"))
        .unwrap();
    store.switch_branch("s", &superseded.name).unwrap();
    seeded(&store, "s", &["X", "Y", "Z"]);
    let expected = ["a", "b", "c", "X", "Y", "Z"];
    assert_eq!(contents(&store.chat_history("s", None).unwrap()), expected);
    assert_eq!(
        contents(&store.chat_history_uncached("s", None).unwrap()),
        expected
    );
    // A replace built on the cached history writes what was asked, nothing else.
    let wanted = [NewMessage::user("a"), NewMessage::user("q")];
    store.set_chat_history("s", &wanted).unwrap();
    assert_eq!(
        contents(&store.chat_history_uncached("s", None).unwrap()),
        ["a", "q"]
    );
}

/// Model-style: bursts of random operations, prune among them, each done by this process or
/// by another process (the CLI); this process keeps the session cached, and after every burst
/// its cached read equals an uncached read of the file, and a replace built on it writes
/// exactly what was asked. Bounded by steps and time.
#[test]
fn a_cached_reader_stays_exact_under_random_operations_with_prune_in_another_process() {
    use std::time::{Duration, Instant};
    let (dir, path) = temp_db();
    let local = Store::open(&path).unwrap();
    let history_file = dir.path().join("history.json");
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    seeded(&local, "s", &["m0", "m1"]);
    let started = Instant::now();
    let (mut counter, mut remote_ops, mut stale_chances) = (2, 0, 0);
    for step in 0..150 {
        if started.elapsed() > Duration::from_secs(40) {
            break;
        }
        let mut done = Vec::new();
        for _ in 0..1 + next(10) {
            let len = local.chat_history_uncached("s", None).unwrap().len() as u64;
            let branches = local.branches("s").unwrap();
            let snapshots = local.snapshots("s").unwrap();
            let remote = next(2) == 0;
            remote_ops += remote as u32;
            counter += 1;
            let text = format!("m{counter}");
            let op = match next(10) {
                0..=2 => {
                    // Several at once: a trimmed branch can regain its old length in one burst.
                    for i in 0..1 + next(6) {
                        let text = format!("{text}.{i}");
                        if remote {
                            run_cli(&path, &["add", "s", "user", &text]);
                        } else {
                            local.add_user_message("s", &text).unwrap();
                        }
                    }
                    format!("append {text}")
                }
                3 if len > 0 => {
                    // Mostly near the end, so a branch trimmed there regains its length soon.
                    let span = if next(2) == 0 { len.min(3) } else { len };
                    let to = len - 1 - next(span);
                    if remote {
                        run_cli(&path, &["revert", "s", "--to", &to.to_string()]);
                    } else {
                        local.revert_to_message("s", to).unwrap();
                    }
                    format!("revert to {to}")
                }
                4 => {
                    if remote {
                        run_cli(&path, &["snapshot", "create", "s"]);
                    } else {
                        local.create_snapshot("s", None, None).unwrap();
                    }
                    "snapshot".to_string()
                }
                5 if !snapshots.is_empty() => {
                    let id = snapshots[next(snapshots.len() as u64) as usize].id;
                    if remote {
                        run_cli(&path, &["snapshot", "restore", "s", &id.to_string()]);
                    } else {
                        local.restore_snapshot("s", id).unwrap();
                    }
                    format!("restore snapshot {id}")
                }
                6 if len > 1 => {
                    // A detour: leave the head, prune, come back to the branch prune trimmed.
                    let to = len - 2 - next(len.min(3) - 1);
                    let at = |remote: bool| if remote { "remote" } else { "local" };
                    let (r1, r2, r3) = (next(2) == 0, next(2) == 0, next(2) == 0);
                    let head = branches.iter().find(|b| b.is_head).map(|b| b.created_at);
                    if r1 {
                        run_cli(&path, &["revert", "s", "--to", &to.to_string()]);
                    } else {
                        local.revert_to_message("s", to).unwrap();
                    }
                    if r2 {
                        run_cli(&path, &["prune", "--older-than", "0", "--yes"]);
                    } else {
                        local.prune(Duration::ZERO, false).unwrap();
                    }
                    // Gone when nothing inherits from it: prune removed it whole.
                    let Some(name) = local
                        .branches("s")
                        .unwrap()
                        .into_iter()
                        .find(|b| Some(b.created_at) == head)
                        .map(|b| b.name)
                    else {
                        done.push(format!("detour: {} revert to {to}, prune", at(r1)));
                        continue;
                    };
                    if r3 {
                        run_cli(&path, &["branch", "switch", "s", &name]);
                    } else {
                        local.switch_branch("s", &name).unwrap();
                    }
                    stale_chances += 1;
                    format!(
                        "detour: {} revert to {to}, {} prune, {} switch back to {name}",
                        at(r1),
                        at(r2),
                        at(r3)
                    )
                }
                7 => {
                    let name = &branches[next(branches.len() as u64) as usize].name;
                    if remote {
                        run_cli(&path, &["branch", "switch", "s", name]);
                    } else {
                        local.switch_branch("s", name).unwrap();
                    }
                    format!("switch to {name}")
                }
                _ => {
                    if remote {
                        run_cli(&path, &["prune", "--older-than", "0", "--yes"]);
                    } else {
                        local.prune(Duration::ZERO, false).unwrap();
                    }
                    "prune".to_string()
                }
            };
            done.push(format!("{} {op}", if remote { "remote" } else { "local" }));
        }
        let cached = local.chat_history("s", None).unwrap();
        let uncached = local.chat_history_uncached("s", None).unwrap();
        assert_eq!(
            contents(&cached),
            contents(&uncached),
            "step {step}: {done:?}"
        );
        assert_eq!(cached.version(), uncached.version(), "step {step}");
        // Every other step, a replace built on the cached history, by either process.
        if step % 2 == 0 {
            let mut edited: Vec<NewMessage> = cached.iter().cloned().map(Into::into).collect();
            edited.push(NewMessage::user(format!("e{step}")));
            if step % 4 == 0 {
                std::fs::write(&history_file, serde_json::to_string(&edited).unwrap()).unwrap();
                run_cli(&path, &["set-history", "s", history_file.to_str().unwrap()]);
            } else {
                local.set_chat_history("s", &edited).unwrap();
            }
            assert_eq!(
                contents(&local.chat_history_uncached("s", None).unwrap()),
                edited
                    .iter()
                    .map(|m| m.content().to_string())
                    .collect::<Vec<_>>(),
                "step {step}: set_chat_history after {done:?}"
            );
            let _ = local.chat_history("s", None).unwrap();
        }
    }
    assert!(remote_ops >= 20, "only {remote_ops} remote operations ran");
    assert!(stale_chances >= 5, "only {stale_chances} detours ran");
}
