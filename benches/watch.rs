//! Watch latency and idle cost: how long after another process's commit `watch` returns,
//! and how much CPU a watcher burns while nothing changes.
//!
//! `cargo bench --bench watch`. The bench runs itself again as the writer process: for each
//! line on its stdin it sleeps a pseudo-random 0–10 ms (so commits land anywhere in the
//! watcher's poll interval), appends a message and prints the wall-clock time after the
//! commit. The watcher notes the time `watch` returned; the difference is the latency.
//! Then the watcher waits 3 s on a quiet session and `getrusage` gives its CPU time.
//! `SESSIONDB_BENCH_ROUNDS` sets the number of commits (default 300).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sessiondb::{NewMessage, Store, WatchCursor, WATCH_POLL_INTERVAL};

const WRITER_ENV: &str = "SESSIONDB_BENCH_WATCH_WRITER";

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn writer(path: &str) {
    let store = Store::open(path).expect("writer opens the store");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let stdout = std::io::stdout();
    for (i, line) in BufReader::new(std::io::stdin()).lines().enumerate() {
        if line.is_err() {
            break;
        }
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        std::thread::sleep(Duration::from_micros((seed >> 33) % 10_000));
        store
            .add_message("watched", NewMessage::user(format!("m{i}")))
            .expect("writer appends");
        let mut out = stdout.lock();
        writeln!(out, "{}", now_ns()).expect("writer reports");
        out.flush().expect("writer flushes");
    }
}

#[cfg(unix)]
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(not(unix))]
fn cpu_time() -> Duration {
    Duration::ZERO
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    if let Ok(path) = std::env::var(WRITER_ENV) {
        writer(&path);
        return;
    }
    let rounds: usize = std::env::var("SESSIONDB_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("watch.db");
    let store = Store::open(&path).expect("open");
    store
        .add_message("watched", NewMessage::user("start"))
        .expect("first message");
    store
        .add_message("quiet", NewMessage::user("nothing happens here"))
        .expect("quiet session");

    let mut child = Command::new(std::env::current_exe().expect("bench binary"))
        .env(WRITER_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the writer");
    let mut to_writer = child.stdin.take().expect("writer stdin");
    let mut from_writer = BufReader::new(child.stdout.take().expect("writer stdout"));

    let history = store.chat_history("watched", None).expect("history");
    let mut watcher = store
        .watcher("watched", WatchCursor::after(&history, None))
        .expect("watcher");
    let mut latencies = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        writeln!(to_writer, "go").expect("signal the writer");
        let change = watcher
            .wait(Duration::from_secs(10))
            .expect("watch")
            .expect("a change within 10 s");
        let returned = now_ns();
        assert!(change.length > 0);
        let mut line = String::new();
        from_writer
            .read_line(&mut line)
            .expect("writer's commit time");
        let committed: u128 = line.trim().parse().expect("a time");
        latencies.push(returned.saturating_sub(committed) as f64 / 1e6);
    }
    drop(to_writer);
    let _ = child.wait();
    latencies.sort_by(|a, b| a.total_cmp(b));

    // Idle: a quiet session, no writer at all.
    let quiet = store.chat_history("quiet", None).expect("quiet history");
    let mut idle = store
        .watcher("quiet", WatchCursor::after(&quiet, None))
        .expect("watcher");
    let idle_wall = Duration::from_secs(3);
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let none = idle.wait(idle_wall).expect("idle watch");
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    assert!(none.is_none(), "the quiet session changed");
    let polls = wall.as_secs_f64() / WATCH_POLL_INTERVAL.as_secs_f64();

    println!(
        "watch latency, commit in another process -> watch returned ({rounds} commits, poll every {} ms):",
        WATCH_POLL_INTERVAL.as_millis()
    );
    println!(
        "  p50 {:.2} ms   p90 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    println!(
        "idle watcher: {:.1} ms CPU in {:.2} s = {:.3} % of one core (~{:.1} µs per poll)",
        cpu.as_secs_f64() * 1e3,
        wall.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / polls
    );
}
