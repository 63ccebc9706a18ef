//! Criterion benches of sessiondb's hot paths on a real file (WAL, synchronous=NORMAL).
//!
//! Run: `cargo bench --bench store` (one group: `cargo bench --bench store -- append`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use sessiondb::{NewMessage, Store};

fn message(i: usize) -> NewMessage {
    let text = format!("message {i}: the quick brown fox jumps over the lazy dog, twice over.");
    if i % 2 == 0 {
        NewMessage::user(text)
    } else {
        NewMessage::assistant(text).with_usage(120, 40, Some(0.0004))
    }
}

fn seeded(store: &Store, session: &str, n: usize) -> Vec<NewMessage> {
    let messages: Vec<NewMessage> = (0..n).map(message).collect();
    store.add_message(session, message(0)).unwrap();
    store.set_chat_history(session, &messages).unwrap();
    messages
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("bench.db")).unwrap();
    (dir, store)
}

/// Appending costs the same whatever the history's length; the raw baseline is what a
/// hand-written rusqlite program does for the same append: one insert per transaction, WAL,
/// synchronous=NORMAL.
fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    for stored in [10, 1_000, 100_000] {
        let (_dir, store) = open();
        seeded(&store, "s", stored);
        let mut i = stored;
        group.bench_with_input(BenchmarkId::from_parameter(stored), &stored, |b, _| {
            b.iter(|| {
                i += 1;
                store.add_message("s", message(i)).unwrap()
            })
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    raw.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE messages (id INTEGER PRIMARY KEY, session TEXT NOT NULL, seq INTEGER NOT NULL,
             role TEXT NOT NULL, content TEXT NOT NULL, created_at TEXT NOT NULL,
             UNIQUE (session, seq));",
    )
    .unwrap();
    let mut seq = 0;
    group.bench_function("raw_single_insert_transaction", |b| {
        b.iter(|| {
            seq += 1;
            let tx = raw.unchecked_transaction().unwrap();
            tx.prepare_cached(
                "INSERT INTO messages (session, seq, role, content, created_at)
                 VALUES ('s', ?1, 'user', ?2, '2026-01-01T00:00:00.000000Z')",
            )
            .unwrap()
            .execute(rusqlite::params![seq, message(seq as usize).content()])
            .unwrap();
            tx.commit().unwrap();
        })
    });
    group.finish();
}

/// Full-text search over 10 sessions of 1,000 messages.
fn search(c: &mut Criterion) {
    let (_dir, store) = open();
    for s in 0..10 {
        seeded(&store, &format!("s{s}"), 1_000);
    }
    store
        .add_user_message("s3", "the word zanzibar appears once")
        .unwrap();
    let filter = sessiondb::SearchFilter::default();
    c.bench_function("search/rare_word_10000", |b| {
        b.iter(|| black_box(store.search("zanzibar", 20, &filter).unwrap()))
    });
    c.bench_function("search/common_word_top20_10000", |b| {
        b.iter(|| black_box(store.search("fox", 20, &filter).unwrap()))
    });
}

/// Opening an existing store: bootstrap checks, WAL, migrations already applied.
fn open_store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.db");
    seeded(&Store::open(&path).unwrap(), "s", 100);
    c.bench_function("open_existing_store", |b| {
        b.iter(|| black_box(Store::open(&path).unwrap()))
    });
    // Opening a current file only reads it: with another connection holding the write
    // lock, open and read the last 20 messages (a CLI `history` or a worker start).
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    c.bench_function("open_and_read_while_another_holds_the_write_lock", |b| {
        b.iter(|| {
            let store = Store::open(&path).unwrap();
            black_box(store.chat_history("s", Some(20)).unwrap())
        })
    });
    holder.execute_batch("ROLLBACK").unwrap();
}

/// Reads of a 1,000-message session: cached, uncached, against the bare version check
/// every read starts with, and against a hand-written rusqlite range scan.
fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let store = Store::open(&path).unwrap();
    seeded(&store, "s", 1_000);
    group.bench_function("version_lookup", |b| {
        b.iter(|| black_box(store.version("s").unwrap()))
    });
    group.bench_function("full_1000_cached", |b| {
        b.iter(|| black_box(store.chat_history("s", None).unwrap()))
    });
    group.bench_function("full_1000_uncached", |b| {
        b.iter(|| black_box(store.chat_history_uncached("s", None).unwrap()))
    });
    group.bench_function("last_20_of_1000_cached", |b| {
        b.iter(|| black_box(store.chat_history("s", Some(20)).unwrap()))
    });
    group.bench_function("last_20_of_1000_uncached", |b| {
        b.iter(|| black_box(store.chat_history_uncached("s", Some(20)).unwrap()))
    });
    let raw = rusqlite::Connection::open(&path).unwrap();
    let branch: i64 = raw
        .query_row(
            "SELECT head_branch_id FROM sessions WHERE id = 's'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    group.bench_function("raw_scan_1000", |b| {
        b.iter(|| {
            let tx = raw.unchecked_transaction().unwrap();
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, role, content, tool_calls, tool_call_id, metadata, model,
                            input_tokens, output_tokens, cost, created_at
                     FROM messages WHERE branch_id = ?1 AND seq BETWEEN 1 AND 1000 ORDER BY seq",
                )
                .unwrap();
            let rows: Vec<(i64, String, String, Option<String>, String)> = stmt
                .query_map([branch], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(10)?))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            black_box(rows)
        })
    });
    group.finish();
}

/// Replacing a 1,000-message history: two changed messages at the end, or all new.
fn set_chat_history(c: &mut Criterion) {
    let mut group = c.benchmark_group("set_chat_history_1000");
    group.measurement_time(Duration::from_secs(8));
    let (_dir, store) = open();
    let base = seeded(&store, "s", 1_000);
    let mut round = 0;
    group.bench_function("2_new", |b| {
        b.iter_batched(
            || {
                round += 1;
                let mut edited = base.clone();
                edited[998] = NewMessage::assistant(format!("edit {round}"));
                edited[999] = NewMessage::user(format!("edit {round}"));
                edited
            },
            |edited| store.set_chat_history("s", &edited).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("all_new", |b| {
        b.iter_batched(
            || {
                round += 1;
                (0..1_000)
                    .map(|i| NewMessage::user(format!("round {round} message {i}")))
                    .collect::<Vec<_>>()
            },
            |fresh| store.set_chat_history("s", &fresh).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Fork, branch, snapshot, restore and revert cost the same at 100 and 100,000 messages.
fn history_operations(c: &mut Criterion) {
    let mut group = c.benchmark_group("history_ops");
    for stored in [100, 100_000] {
        let (_dir, store) = open();
        seeded(&store, "s", stored);
        let snap = store.create_snapshot("s", None, None).unwrap();
        let mut n = 0;
        group.bench_with_input(BenchmarkId::new("fork", stored), &stored, |b, _| {
            b.iter(|| {
                store
                    .fork_session("s", Some(stored as u64 / 2), None)
                    .unwrap()
            })
        });
        group.bench_with_input(
            BenchmarkId::new("create_branch", stored),
            &stored,
            |b, _| {
                b.iter(|| {
                    n += 1;
                    store.create_branch("s", &format!("b{n}"), None).unwrap()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("create_snapshot", stored),
            &stored,
            |b, _| b.iter(|| store.create_snapshot("s", Some("bench"), None).unwrap()),
        );
        group.bench_with_input(
            BenchmarkId::new("restore_snapshot", stored),
            &stored,
            |b, _| b.iter(|| store.restore_snapshot("s", snap.id).unwrap()),
        );
        group.bench_with_input(BenchmarkId::new("revert", stored), &stored, |b, _| {
            b.iter(|| store.revert_to_message("s", stored as u64 - 2).unwrap())
        });
    }
    group.finish();
}

/// A history whose lineage has 10 fork points reads about as fast as an unforked one.
fn read_forked(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_1000");
    let (_dir, store) = open();
    seeded(&store, "flat", 1_000);
    for k in 0..10 {
        for i in 0..100 {
            store.add_message("forked", message(k * 100 + i)).unwrap();
        }
        if k < 9 {
            let name = format!("segment{k}");
            store.create_branch("forked", &name, None).unwrap();
            store.switch_branch("forked", &name).unwrap();
        }
    }
    group.bench_function("unforked", |b| {
        b.iter(|| black_box(store.chat_history_uncached("flat", None).unwrap()))
    });
    group.bench_function("10_fork_points", |b| {
        b.iter(|| black_box(store.chat_history_uncached("forked", None).unwrap()))
    });
    group.finish();
}

/// A turn of 10 messages in one transaction, against 10 single appends, at 10 and at 100,000
/// stored messages: the batch's cost does not grow with the history.
fn add_messages(c: &mut Criterion) {
    let mut group = c.benchmark_group("add_messages");
    for stored in [10, 100_000] {
        let (_dir, store) = open();
        seeded(&store, "s", stored);
        let mut i = stored;
        group.bench_with_input(BenchmarkId::new("batch_of_10", stored), &stored, |b, _| {
            b.iter(|| {
                let batch: Vec<NewMessage> = (0..10).map(|k| message(i + k)).collect();
                i += 10;
                store.add_messages("s", &batch).unwrap()
            })
        });
        group.bench_with_input(
            BenchmarkId::new("10_single_appends", stored),
            &stored,
            |b, _| {
                b.iter(|| {
                    for _ in 0..10 {
                        i += 1;
                        store.add_message("s", message(i)).unwrap();
                    }
                })
            },
        );
    }
    group.finish();
}

/// Compacting records a pointer: the same cost at 100 and at 100,000 messages.
fn compact(c: &mut Criterion) {
    let mut group = c.benchmark_group("compact");
    for stored in [100, 100_000] {
        let (_dir, store) = open();
        seeded(&store, "s", stored);
        let through = (stored / 2) as u64;
        group.bench_with_input(BenchmarkId::from_parameter(stored), &stored, |b, _| {
            b.iter(|| {
                store
                    .compact(
                        "s",
                        NewMessage::system("summary of the first half"),
                        through,
                    )
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    add_messages,
    compact,
    append,
    read,
    set_chat_history,
    history_operations,
    read_forked,
    search,
    open_store
);
criterion_main!(benches);
