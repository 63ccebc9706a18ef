//! The version-checked cache: hits when nothing changed, only the tail when a session grew,
//! a reload otherwise — and never a stale read, whichever process wrote last.

mod common;

use common::{cli, temp_db};
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

fn run_cli(path: &std::path::Path, args: &[&str]) {
    let out = cli().arg("--db").arg(path).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
