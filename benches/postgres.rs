//! sessiondb on PostgreSQL against what a hand-written program does on the same server, in
//! the same run. Needs a server: `SESSIONDB_BENCH_PG` is the URL of a database the bench may
//! create databases in (its `postgres` database, say). With a throwaway server:
//!
//! `bash tests/postgres/with-server.sh sh -c 'SESSIONDB_BENCH_PG=$SESSIONDB_TEST_PG_TCP cargo bench --features postgres --bench postgres'`
//!
//! Without the feature or the variable it says so and measures nothing.

#[cfg(feature = "postgres")]
mod pg {
    use std::hint::black_box;
    use std::time::Duration;

    use criterion::{BenchmarkId, Criterion};
    use sessiondb::{NewMessage, Store};

    fn message(i: usize) -> NewMessage {
        let text = format!("message {i}: the quick brown fox jumps over the lazy dog, twice over.");
        if i % 2 == 0 {
            NewMessage::user(text)
        } else {
            NewMessage::assistant(text).with_usage(120, 40, Some(0.0004))
        }
    }

    /// A fresh database on the server; returns its URL.
    fn database(server: &str, name: &str) -> String {
        let mut admin = postgres::Client::connect(server, postgres::NoTls).unwrap();
        // One statement each: DROP DATABASE refuses to run in a transaction block.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        match server.rsplit_once('/') {
            Some((base, rest)) => match rest.split_once('?') {
                Some((_, query)) => format!("{base}/{name}?{query}"),
                None => format!("{base}/{name}"),
            },
            None => server.to_string(),
        }
    }

    fn seeded(store: &Store, session: &str, n: usize) {
        let messages: Vec<NewMessage> = (0..n).map(message).collect();
        store.add_message(session, message(0)).unwrap();
        store.set_chat_history(session, &messages).unwrap();
    }

    pub fn run(c: &mut Criterion, server: &str) {
        let url = database(server, "bench_store");
        let store = Store::open(&url).unwrap();

        let mut group = c.benchmark_group("pg_append");
        for stored in [10usize, 1_000] {
            let session = format!("append{stored}");
            seeded(&store, &session, stored);
            let mut i = stored;
            group.bench_with_input(BenchmarkId::from_parameter(stored), &stored, |b, _| {
                b.iter(|| {
                    i += 1;
                    store.add_message(&session, message(i)).unwrap()
                })
            });
        }
        let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        raw.batch_execute(
            "CREATE TABLE raw_messages (id BIGSERIAL PRIMARY KEY, session TEXT NOT NULL,
                 seq BIGINT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
                 created_at TEXT NOT NULL, UNIQUE (session, seq))",
        )
        .unwrap();
        let insert = raw
            .prepare(
                "INSERT INTO raw_messages (session, seq, role, content, created_at)
                 VALUES ('s', $1, 'user', $2, '2026-01-01T00:00:00.000Z')",
            )
            .unwrap();
        let mut seq = 0i64;
        group.bench_function("raw_single_insert_transaction", |b| {
            b.iter(|| {
                seq += 1;
                let mut tx = raw.transaction().unwrap();
                tx.execute(
                    &insert,
                    &[&seq, &message(seq as usize).content().to_string()],
                )
                .unwrap();
                tx.commit().unwrap();
            })
        });
        group.finish();

        let mut group = c.benchmark_group("pg_read");
        seeded(&store, "read", 1_000);
        store.chat_history("read", Some(20)).unwrap();
        group.bench_function("last_20_of_1000_cached", |b| {
            b.iter(|| black_box(store.chat_history("read", Some(20)).unwrap()))
        });
        group.bench_function("full_1000_cached", |b| {
            b.iter(|| black_box(store.chat_history("read", None).unwrap()))
        });
        let lookup = raw
            .prepare("SELECT version FROM sessions WHERE id = $1")
            .unwrap();
        group.bench_function("raw_primary_key_select", |b| {
            b.iter(|| black_box(raw.query_one(&lookup, &[&"read"]).unwrap()))
        });
        group.finish();

        let mut group = c.benchmark_group("pg_fork_snapshot");
        for n in [100usize, 100_000] {
            let session = format!("tree{n}");
            seeded(&store, &session, n);
            group.bench_with_input(BenchmarkId::new("fork", n), &n, |b, _| {
                b.iter(|| {
                    store
                        .fork_session(&session, Some(n as u64 / 2), None)
                        .unwrap()
                })
            });
            group.bench_with_input(BenchmarkId::new("snapshot", n), &n, |b, _| {
                b.iter(|| store.create_snapshot(&session, None, None).unwrap())
            });
        }
        group.finish();
    }

    pub fn config() -> Criterion {
        Criterion::default()
            .sample_size(30)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1))
    }
}

fn main() {
    #[cfg(feature = "postgres")]
    if let Ok(server) = std::env::var("SESSIONDB_BENCH_PG") {
        let mut c = pg::config().configure_from_args();
        pg::run(&mut c, &server);
        c.final_summary();
        return;
    }
    eprintln!(
        "benches/postgres: nothing measured: needs the `postgres` feature and SESSIONDB_BENCH_PG (see the file's header)"
    );
}
