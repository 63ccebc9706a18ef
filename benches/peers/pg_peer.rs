//! sessiondb's part of the PostgreSQL peer comparison (`benches/peers/pg_peers.sh` runs it
//! beside the OpenAI Agents SDK's SQLAlchemySession and Google ADK's DatabaseSessionService on
//! the same server, in one run).
//!
//! `pg_peer URL MESSAGES REPEAT` prints one JSON object of medians in microseconds:
//! append at MESSAGES, full read cached and uncached, and 4 processes appending 200
//! messages each to one session (wall time, messages stored).
//! `pg_peer --writer URL SESSION N TAG` is one of those processes.

use std::process::Command;
use std::time::Instant;

#[cfg(feature = "postgres")]
fn main() {
    use sessiondb::{NewMessage, Store};
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--writer") {
        let store = Store::open(&args[2]).expect("open");
        let n: usize = args[4].parse().expect("N");
        for i in 0..n {
            store
                .add_message(&args[3], NewMessage::user(format!("{} {i}", args[5])))
                .expect("append");
        }
        return;
    }
    let (url, messages, repeat) = match &args[1..] {
        [url, messages, repeat] => (
            url.clone(),
            messages.parse::<usize>().expect("MESSAGES"),
            repeat.parse::<usize>().expect("REPEAT"),
        ),
        _ => {
            eprintln!("usage: pg_peer URL MESSAGES REPEAT");
            std::process::exit(2);
        }
    };
    let store = Store::open(&url).expect("open");
    let seed: Vec<NewMessage> = (0..messages)
        .map(|i| NewMessage::user(format!("message {i} {}", "x".repeat(200))))
        .collect();
    store.set_chat_history("peer", &seed).expect("seed");
    let median = |mut f: Box<dyn FnMut() + '_>| {
        let mut times: Vec<f64> = (0..repeat)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let append = median(Box::new(|| {
        store
            .add_message("peer", NewMessage::user("more"))
            .expect("append");
    }));
    store.chat_history("peer", None).expect("read");
    let read_cached = median(Box::new(|| {
        std::hint::black_box(store.chat_history("peer", None).expect("read"));
    }));
    let read_uncached = median(Box::new(|| {
        std::hint::black_box(store.chat_history_uncached("peer", None).expect("read"));
    }));
    let exe = std::env::current_exe().expect("exe");
    let started = Instant::now();
    let children: Vec<_> = (0..4)
        .map(|w| {
            Command::new(&exe)
                .args(["--writer", &url, "four", "200", &format!("w{w}")])
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success());
    }
    let four_ms = started.elapsed().as_secs_f64() * 1e3;
    let stored = store
        .chat_history_uncached("four", None)
        .expect("read")
        .len();
    println!(
        "{{\"append_us\": {append:.1}, \"read_full_cached_us\": {read_cached:.1}, \
         \"read_full_uncached_us\": {read_uncached:.1}, \"four_writers_ms\": {four_ms:.1}, \
         \"four_writers_stored\": {stored}}}"
    );
}

#[cfg(not(feature = "postgres"))]
fn main() {
    let _ = (Command::new("true"), Instant::now());
    eprintln!("pg_peer needs the `postgres` feature");
    std::process::exit(2);
}
