//! `last_messages`: exactly the last n messages of the working history, with its version and
//! lengths, read through the cache; a cold read reads only those n; `cached_last_messages`
//! answers from the cache or not at all.

mod common;

use common::temp_db;
use serde_json::json;
use sessiondb::{CacheStats, Error, NewMessage, Store};

fn contents(history: &[sessiondb::Message]) -> Vec<String> {
    history.iter().map(|m| m.content().to_string()).collect()
}

fn indexes(history: &[sessiondb::Message]) -> Vec<u64> {
    history.iter().map(|m| m.index).collect()
}

fn seeded(store: &Store, id: &str, n: usize) {
    let messages: Vec<NewMessage> = (0..n).map(|i| NewMessage::user(format!("m{i}"))).collect();
    store.add_messages(id, &messages).unwrap();
}

/// (hits, misses) since `before`.
fn reads(store: &Store, before: CacheStats) -> (u64, u64) {
    let now = store.cache_stats();
    (now.hits - before.hits, now.misses - before.misses)
}

#[test]
fn last_messages_returns_exactly_the_last_n_with_version_and_lengths() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", 10);
    let last = store.last_messages("s", 3).unwrap();
    assert_eq!(contents(&last), ["m7", "m8", "m9"]);
    assert_eq!(indexes(&last), [7, 8, 9]);
    assert_eq!(last.version(), store.version("s").unwrap());
    assert_eq!((last.total_len(), last.working_len()), (10, 10));
}

#[test]
fn last_messages_of_zero_is_empty_and_still_reports_version_and_lengths() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", 4);
    let none = store.last_messages("s", 0).unwrap();
    assert!(none.is_empty());
    assert_eq!(none.version(), store.version("s").unwrap());
    assert_eq!((none.total_len(), none.working_len()), (4, 4));
}

#[test]
fn last_messages_beyond_the_length_is_the_whole_history() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", 4);
    for n in [4, 5, usize::MAX] {
        let all = store.last_messages("s", n).unwrap();
        assert_eq!(contents(&all), ["m0", "m1", "m2", "m3"], "n = {n}");
        assert_eq!(indexes(&all), [0, 1, 2, 3]);
    }
}

#[test]
fn last_messages_keeps_a_leading_tool_result_that_chat_history_drops() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let call = json!({"id": "a", "type": "function",
                      "function": {"name": "weather", "arguments": "{}"}});
    store
        .add_messages(
            "s",
            &[
                NewMessage::user("weather?"),
                NewMessage::assistant("").with_tool_calls(vec![call]),
                NewMessage::tool("a", "3C"),
                NewMessage::assistant("3C in Oslo"),
            ],
        )
        .unwrap();
    let last = store.last_messages("s", 2).unwrap();
    assert_eq!(contents(&last), ["3C", "3C in Oslo"]);
    assert_eq!(last.trimmed_tool_results(), 0);
    assert_eq!(
        contents(&store.chat_history("s", Some(2)).unwrap()),
        ["3C in Oslo"]
    );
}

#[test]
fn last_messages_of_a_compacted_history_reads_its_working_view() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", 6);
    // m0..=m3 behind a summary, which stands at index 3 of the working view.
    store
        .compact("s", NewMessage::system("summary of m0-m3"), 3)
        .unwrap();
    let version = store.version("s").unwrap();
    for fresh in [false, true] {
        let store = if fresh {
            Store::open(&path).unwrap()
        } else {
            store.clone()
        };
        let all = store.last_messages("s", 100).unwrap();
        assert_eq!(contents(&all), ["summary of m0-m3", "m4", "m5"]);
        assert_eq!(indexes(&all), [3, 4, 5]);
        assert_eq!((all.total_len(), all.working_len()), (6, 3));
        assert_eq!(all.version(), version);
        let last = store.last_messages("s", 2).unwrap();
        assert_eq!(contents(&last), ["m4", "m5"]);
        assert_eq!((last.total_len(), last.working_len()), (6, 3));
        let exact = store.last_messages("s", 3).unwrap();
        assert_eq!(contents(&exact), ["summary of m0-m3", "m4", "m5"]);
        assert!(store.last_messages("s", 0).unwrap().is_empty());
    }
}

#[test]
fn a_cold_last_messages_reads_and_caches_only_those_messages() {
    let (_dir, path) = temp_db();
    seeded(&Store::open(&path).unwrap(), "s", 50);
    let store = Store::open(&path).unwrap();
    let before = store.cache_stats();
    assert_eq!(
        contents(&store.last_messages("s", 2).unwrap()),
        ["m48", "m49"]
    );
    assert_eq!(reads(&store, before), (0, 1));
    // The same window again is a hit; a longer one is not in the cache.
    let before = store.cache_stats();
    store.last_messages("s", 2).unwrap();
    assert_eq!(reads(&store, before), (1, 0));
    let before = store.cache_stats();
    assert_eq!(store.last_messages("s", 3).unwrap().len(), 3);
    assert_eq!(reads(&store, before), (0, 1));
}

#[test]
fn last_messages_after_another_writer_appended_is_exact() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let other = Store::open(&path).unwrap();
    seeded(&store, "s", 3);
    store.last_messages("s", 10).unwrap();
    other.add_user_message("s", "m3").unwrap();
    let last = store.last_messages("s", 2).unwrap();
    assert_eq!(contents(&last), ["m2", "m3"]);
    assert_eq!(last.version(), other.version("s").unwrap());
    assert_eq!(last.total_len(), 4);
}

#[test]
fn cached_last_messages_answers_from_the_cache_or_not_at_all() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let other = Store::open(&path).unwrap();
    seeded(&other, "s", 5);
    // Nothing cached yet: no answer, and nothing read into the cache or counted.
    let before = store.cache_stats();
    assert!(store.cached_last_messages("s", 2).unwrap().is_none());
    assert!(store.cached_last_messages("s", 2).unwrap().is_none());
    assert_eq!(reads(&store, before), (0, 0));
    assert_eq!(store.cache_stats().entries, 0);
    store.last_messages("s", 3).unwrap();
    let cached = store.cached_last_messages("s", 2).unwrap().unwrap();
    assert_eq!(contents(&cached), ["m3", "m4"]);
    assert_eq!(cached.version(), other.version("s").unwrap());
    // Further back than the cached window: no answer, and the entry stays.
    assert!(store.cached_last_messages("s", 4).unwrap().is_none());
    assert!(store.cached_last_messages("s", 3).unwrap().is_some());
}

#[test]
fn cached_last_messages_reads_only_what_another_writer_appended() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let other = Store::open(&path).unwrap();
    seeded(&store, "s", 3);
    store.last_messages("s", 10).unwrap();
    other.add_user_message("s", "m3").unwrap();
    let before = store.cache_stats();
    let cached = store.cached_last_messages("s", 2).unwrap().unwrap();
    assert_eq!(contents(&cached), ["m2", "m3"]);
    assert_eq!(cached.version(), other.version("s").unwrap());
    assert_eq!(
        store.cache_stats().tail_refreshes - before.tail_refreshes,
        1
    );
    // A history replaced by another writer is not answered: reading it is a reload.
    other
        .set_chat_history("s", &[NewMessage::user("new")])
        .unwrap();
    assert!(store.cached_last_messages("s", 2).unwrap().is_none());
    assert_eq!(contents(&store.last_messages("s", 2).unwrap()), ["new"]);
    assert_eq!(
        contents(&store.cached_last_messages("s", 2).unwrap().unwrap()),
        ["new"]
    );
}

#[test]
fn last_messages_uncached_neither_uses_nor_fills_the_cache() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", 4);
    store.invalidate_cache(None);
    let before = store.cache_stats();
    let last = store.last_messages_uncached("s", 2).unwrap();
    assert_eq!(contents(&last), ["m2", "m3"]);
    assert_eq!(indexes(&last), [2, 3]);
    assert_eq!(reads(&store, before), (0, 0));
    assert_eq!(store.cache_stats().entries, 0);
}

#[test]
fn last_messages_of_an_unknown_session_is_not_found() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    assert!(matches!(
        store.last_messages("nobody", 3),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.cached_last_messages("nobody", 3),
        Err(Error::NotFound { .. })
    ));
}
