//! sessiondb's side of the peer comparison (`benches/peers/run.sh`): the same workload the
//! Python script runs against the other stores, printed as JSON.
//!
//!   peer_bench workload DB          the single-process workload
//!   peer_bench append DB SESSION N  append N messages (a concurrency worker); prints the count acknowledged

use std::time::Instant;

use sessiondb::{NewMessage, Store};

const MESSAGES: usize = 1_000;
const READS: usize = 50;
const REPLACES: usize = 5;
const FORKS: usize = 20;

fn text(i: usize) -> String {
    format!(
        "message {i}: a typical chat turn of about a hundred characters, give or take a few words."
    )
}

fn message(i: usize) -> NewMessage {
    if i % 2 == 0 {
        NewMessage::user(text(i))
    } else {
        NewMessage::assistant(text(i))
    }
}

fn micros(t: Instant) -> f64 {
    t.elapsed().as_nanos() as f64 / 1_000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["workload", db] => workload(db),
        ["append", db, session, n] => {
            let store = Store::open(db)?;
            let mut acked = 0;
            for i in 0..n.parse::<usize>()? {
                if store.add_message(session, message(i)).is_ok() {
                    acked += 1;
                }
            }
            println!("{acked}");
            Ok(())
        }
        ["count", db, session] => {
            let store = Store::open(db)?;
            println!("{}", store.chat_history_uncached(session, None)?.len());
            Ok(())
        }
        _ => Err("usage: peer_bench workload DB | append DB SESSION N | count DB SESSION".into()),
    }
}

fn workload(db: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(db)?;
    let id = "bench";
    let mut appends = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let t = Instant::now();
        store.add_message(id, message(i))?;
        appends.push(micros(t));
    }
    let time = |n: usize, f: &mut dyn FnMut()| {
        median(
            (0..n)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    micros(t)
                })
                .collect(),
        )
    };
    let full_read = time(READS, &mut || {
        assert_eq!(store.chat_history(id, None).unwrap().len(), MESSAGES)
    });
    let full_read_uncached = time(READS, &mut || {
        assert_eq!(
            store.chat_history_uncached(id, None).unwrap().len(),
            MESSAGES
        )
    });
    let last20 = time(READS, &mut || {
        assert_eq!(store.chat_history(id, Some(20)).unwrap().len(), 20)
    });
    let mut round = 0;
    let replace = time(REPLACES, &mut || {
        round += 1;
        let fresh: Vec<NewMessage> = (0..MESSAGES)
            .map(|i| NewMessage::user(format!("round {round}: {}", text(i))))
            .collect();
        store.set_chat_history(id, &fresh).unwrap();
    });
    let fork = time(FORKS, &mut || {
        store
            .fork_session(id, Some(MESSAGES as u64 - 1), None)
            .unwrap();
    });
    let snapshot = time(FORKS, &mut || {
        store.create_snapshot(id, Some("bench"), None).unwrap();
    });
    let result = serde_json::json!({
        "append_us": appends,
        "full_read_us": full_read,
        "full_read_uncached_us": full_read_uncached,
        "last20_read_us": last20,
        "replace_1000_us": replace,
        "fork_us": fork,
        "snapshot_us": snapshot,
    });
    println!("{result}");
    Ok(())
}
