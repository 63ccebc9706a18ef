//! Many processes appending to one database: throughput against a single process, p99
//! latency, errors, and whether every acknowledged message is stored exactly once; with one
//! session per process and with one session shared by all.
//!
//! Run: `cargo bench --bench contention` (SESSIONDB_CONTENTION_APPENDS sets the total per
//! run, default 20,000: shorter runs are noisier). The bench spawns itself as the worker
//! processes. On PostgreSQL, each process a host of its own over TCP:
//!
//! `bash tests/postgres/with-server.sh sh -c 'SESSIONDB_CONTENTION_PG=$SESSIONDB_TEST_PG_TCP cargo bench --features postgres --bench contention'`
//!
//! (`SESSIONDB_CONTENTION_PG` names a database the bench may create databases from.)

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sessiondb::{NewMessage, Store};

fn main() {
    if std::env::var_os("SESSIONDB_CONTENTION_WORKER").is_some() {
        return worker();
    }
    let total: usize = std::env::var("SESSIONDB_CONTENTION_APPENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let server = std::env::var("SESSIONDB_CONTENTION_PG").ok();
    if server.is_some() && cfg!(not(feature = "postgres")) {
        eprintln!("SESSIONDB_CONTENTION_PG needs --features postgres");
        std::process::exit(2);
    }
    println!(
        "{}: appends per run: {total} (each process appends total/processes); medians of 3 rounds",
        if server.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!(
        "{:<28} {:>10} {:>12} {:>9} {:>9} {:>9} {:>7} {:>8}",
        "workload", "processes", "appends/s", "p50 µs", "p99 µs", "max µs", "errors", "stored"
    );
    // Alternate the workloads and report medians: the machine's noise hits all of them alike.
    const ROUNDS: usize = 3;
    let workloads = [(false, 1), (false, 4), (false, 16), (true, 4), (true, 16)];
    let mut results: Vec<Vec<Run>> = workloads.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for (w, &(shared_session, processes)) in workloads.iter().enumerate() {
            let run = run(server.as_deref(), processes, total, shared_session);
            assert_eq!(
                run.stored, total,
                "acknowledged appends missing or duplicated"
            );
            results[w].push(run);
        }
    }
    let medians: Vec<Run> = results
        .into_iter()
        .map(|mut runs| {
            runs.sort_by(|a, b| a.throughput.total_cmp(&b.throughput));
            runs.swap_remove(runs.len() / 2)
        })
        .collect();
    let single = medians[0].throughput;
    for (run, &(shared_session, processes)) in medians.iter().zip(&workloads) {
        let label = if shared_session {
            "one shared session"
        } else {
            "one session per process"
        };
        println!(
            "{label:<28} {processes:>10} {:>12.0} {:>9} {:>9} {:>9} {:>7} {:>8}  {:.0}% of 1 process",
            run.throughput,
            run.p50,
            run.p99,
            run.max,
            run.errors,
            run.stored,
            100.0 * run.throughput / single
        );
    }
}

struct Run {
    throughput: f64,
    p50: u128,
    p99: u128,
    max: u128,
    errors: usize,
    stored: usize,
}

/// A fresh database for one run: a file in `dir`, or a new database on `server`.
fn database(server: Option<&str>, dir: &std::path::Path) -> String {
    let Some(server) = server else {
        return dir.join("contention.db").to_str().unwrap().to_string();
    };
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "contention_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = postgres::Client::connect(server, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let (base, query) = server.split_once('?').unwrap_or((server, ""));
    let (base, _) = base.rsplit_once('/').unwrap();
    match query {
        "" => format!("{base}/{name}"),
        query => format!("{base}/{name}?{query}"),
    }
}

fn run(server: Option<&str>, processes: usize, total: usize, shared_session: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = database(server, dir.path());
    Store::open(&path).unwrap();
    let per_process = total / processes;
    let mut children: Vec<_> = (0..processes)
        .map(|p| {
            let session = if shared_session {
                "shared".into()
            } else {
                format!("s{p}")
            };
            Command::new(std::env::current_exe().unwrap())
                .env("SESSIONDB_CONTENTION_WORKER", "1")
                .env("DB", &path)
                .env("SESSION", session)
                .env("COUNT", per_process.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Each worker says "ready" once its store is open; then all start together.
    let mut readers: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    for reader in &mut readers {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let started = Instant::now();
    for child in &mut children {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for (child, mut reader) in children.into_iter().zip(readers) {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut parts = line.trim().split(' ');
        errors += parts.next().unwrap().parse::<usize>().unwrap();
        latencies.extend(
            parts
                .filter(|p| !p.is_empty())
                .map(|p| p.parse::<u128>().unwrap()),
        );
        assert!(child.wait_with_output().unwrap().status.success());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let store = Store::open(&path).unwrap();
    let stored = if shared_session {
        store.chat_history_uncached("shared", None).unwrap().len()
    } else {
        (0..processes)
            .map(|p| {
                store
                    .chat_history_uncached(&format!("s{p}"), None)
                    .unwrap()
                    .len()
            })
            .sum()
    };
    Run {
        throughput: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        max: latencies.last().copied().unwrap_or(0),
        errors,
        stored,
    }
}

/// Appends COUNT messages to SESSION and prints "<errors> <latency µs>…" on one line.
fn worker() {
    let var = |name: &str| std::env::var(name).unwrap();
    let store = Store::open(var("DB")).unwrap();
    let session = var("SESSION");
    let count: usize = var("COUNT").parse().unwrap();
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let mut latencies = Vec::with_capacity(count);
    let mut errors = 0;
    for i in 0..count {
        let message = NewMessage::user(format!("{session} message {i}"));
        let t = Instant::now();
        while store.add_message(&session, message.clone()).is_err() {
            errors += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(t.elapsed().as_micros().to_string());
    }
    println!("{errors} {}", latencies.join(" "));
}
