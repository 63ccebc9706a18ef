//! Leases: one holder per session across real processes, takeover after expiry, and writes
//! under a lost lease refused with nothing written.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{release, results, spawn_worker, temp_db, wait_for_release, worker_env};
use sessiondb::{Error, NewMessage, Role, Store, StreamEnd};

const RACERS: usize = 4;
const ROUNDS: usize = 10;

/// Child process: claims session "s" ROUNDS times as `SESSIONDB_TEST_NAME`, each time writing
/// a start and an end message under the lease, with a pause between them, then releasing.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_lease_race() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    let me = worker_env("SESSIONDB_TEST_NAME");
    wait_for_release();
    let (mut held, mut refused) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while held < ROUNDS && Instant::now() < deadline {
        match store.claim("s", &me, Duration::from_secs(20)) {
            Ok(lease) => {
                let run = store.with_lease(&lease);
                run.add_message(NewMessage::user(format!("{me} start {held}")))
                    .unwrap();
                // Long enough that an overlapping holder would interleave its messages.
                std::thread::sleep(Duration::from_millis(3));
                run.add_message(NewMessage::user(format!("{me} end {held}")))
                    .unwrap();
                assert!(store.release(&lease).unwrap());
                held += 1;
            }
            Err(Error::LeaseHeld { owner, session, .. }) => {
                assert_ne!(owner, me, "refused by its own lease");
                assert_eq!(session, "s");
                refused += 1;
                std::thread::sleep(Duration::from_micros(500));
            }
            Err(e) => panic!("claim failed: {e}"),
        }
    }
    println!("RESULT {held} {refused}");
}

#[test]
fn processes_racing_for_one_session_never_both_hold_its_lease() {
    let (_dir, path) = temp_db();
    Store::open(&path).unwrap();
    let mut children: Vec<_> = (0..RACERS)
        .map(|w| {
            spawn_worker(
                "worker_lease_race",
                &[
                    ("SESSIONDB_TEST_DB", path.display().to_string()),
                    ("SESSIONDB_TEST_NAME", format!("w{w}")),
                ],
            )
        })
        .collect();
    release(&mut children);
    for child in children {
        let result = results(child);
        assert_eq!(result.len(), 1);
        let held = result[0].split(' ').next().unwrap();
        assert_eq!(held, ROUNDS.to_string(), "every worker got its turns");
    }
    let store = Store::open(&path).unwrap();
    let history = store.chat_history("s", None).unwrap();
    assert_eq!(history.len(), RACERS * ROUNDS * 2);
    // Each holder's start is followed by its own end: no two runs overlapped.
    for pair in history.chunks(2) {
        let (start, end) = (pair[0].content(), pair[1].content());
        let (owner, round) = start.split_once(" start ").expect("a start message");
        assert_eq!(end, format!("{owner} end {round}"), "after {start:?}");
    }
    assert_eq!(store.lease_holder("s").unwrap(), None);
}

/// Child process: claims "s" as "victim" for `SESSIONDB_TEST_TTL_MS`, prints its expiry and
/// waits to be killed.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_hold_lease() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    let ttl: u64 = worker_env("SESSIONDB_TEST_TTL_MS").parse().unwrap();
    let lease = store
        .claim("s", "victim", Duration::from_millis(ttl))
        .unwrap();
    store
        .with_lease(&lease)
        .add_message(NewMessage::user("victim was here"))
        .unwrap();
    println!("RESULT claimed {}", lease.expires_at.to_rfc3339());
    wait_for_release();
}

#[test]
fn a_holder_killed_with_sigkill_loses_its_lease_at_expiry_and_another_takes_over() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let mut child = spawn_worker(
        "worker_hold_lease",
        &[
            ("SESSIONDB_TEST_DB", path.display().to_string()),
            ("SESSIONDB_TEST_TTL_MS", "1500".into()),
        ],
    );
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    while !line.contains("RESULT claimed ") {
        line.clear();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "worker died");
    }
    let expires_at: DateTime<Utc> = line
        .split("RESULT claimed ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    child.kill().unwrap(); // SIGKILL: no release, no cleanup
    child.wait().unwrap();

    match store.claim("s", "heir", Duration::from_secs(10)) {
        Err(Error::LeaseHeld {
            session,
            owner,
            expires_at: until,
        }) => assert_eq!(
            (session.as_str(), owner.as_str(), until),
            ("s", "victim", expires_at)
        ),
        other => panic!("expected the dead holder's lease to hold until expiry: {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let lease = loop {
        match store.claim("s", "heir", Duration::from_secs(10)) {
            Ok(lease) => break lease,
            Err(Error::LeaseHeld { owner, .. }) => assert_eq!(owner, "victim"),
            Err(e) => panic!("claim failed: {e}"),
        }
        assert!(Instant::now() < deadline, "the lease never expired");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(Utc::now() >= expires_at, "taken over before the expiry");
    assert_eq!(lease.owner, "heir");
    store
        .with_lease(&lease)
        .add_message(NewMessage::user("heir took over"))
        .unwrap();
    let history = store.chat_history("s", None).unwrap();
    let contents: Vec<&str> = history.iter().map(|m| m.content()).collect();
    assert_eq!(contents, ["victim was here", "heir took over"]);
    assert_eq!(store.lease_holder("s").unwrap().unwrap().owner, "heir");
}

/// Child process: claims "s" as "new" (the old lease has expired) and writes one message.
#[test]
#[ignore = "child-process entry point, spawned by other tests"]
fn worker_take_over() {
    let store = Store::open(worker_env("SESSIONDB_TEST_DB")).unwrap();
    let lease = store.claim("s", "new", Duration::from_secs(30)).unwrap();
    store
        .with_lease(&lease)
        .add_message(NewMessage::user("new holder"))
        .unwrap();
    println!("RESULT took over");
}

#[test]
fn a_writer_with_a_stale_lease_writes_nothing() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let old = store.claim("s", "old", Duration::from_millis(300)).unwrap();
    let run = store.with_lease(&old);
    run.add_message(NewMessage::user("old holder")).unwrap();
    run.start_stream(Some("m"), None).unwrap();
    run.append_stream("half").unwrap();
    while Utc::now() <= old.expires_at {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Expired and not yet taken: already lost.
    match run.append_stream(" more") {
        Err(Error::LeaseLost {
            session,
            owner,
            holder,
            reason,
        }) => {
            assert_eq!(
                (session.as_str(), owner.as_str(), holder),
                ("s", "old", None)
            );
            assert!(reason.starts_with("it expired at "), "{reason}");
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    let child = spawn_worker(
        "worker_take_over",
        &[("SESSIONDB_TEST_DB", path.display().to_string())],
    );
    assert_eq!(results(child), ["took over"]);
    let before = store.chat_history_with_partial("s", None).unwrap();
    let version = store.version("s").unwrap();

    let lost = |result: Result<(), Error>, what: &str| match result {
        Err(Error::LeaseLost { holder, .. }) => {
            assert_eq!(holder.as_deref(), Some("new"), "{what}")
        }
        other => panic!("{what}: expected LeaseLost, got {other:?}"),
    };
    lost(
        run.add_message(NewMessage::user("stale")).map(drop),
        "add_message",
    );
    lost(
        run.set_chat_history(&[NewMessage::user("stale")]).map(drop),
        "set_chat_history",
    );
    lost(run.append_stream("stale").map(drop), "append_stream");
    lost(
        run.finish_stream(StreamEnd::default()).map(drop),
        "finish_stream",
    );
    lost(run.discard_stream(), "discard_stream");
    lost(run.start_stream(None, None).map(drop), "start_stream");
    lost(
        run.store().set_title("s", Some("stale")).map(drop),
        "set_title through the leased store",
    );
    lost(
        store.renew(&old, Duration::from_secs(10)).map(drop),
        "renew",
    );
    assert!(
        !store.release(&old).unwrap(),
        "a lost lease is not released"
    );

    assert_eq!(store.version("s").unwrap(), version);
    assert_eq!(store.chat_history_with_partial("s", None).unwrap(), before);
    let (history, partial) = before;
    let contents: Vec<(Role, &str)> = history.iter().map(|m| (m.role(), m.content())).collect();
    assert_eq!(
        contents,
        [(Role::User, "old holder"), (Role::User, "new holder")]
    );
    assert_eq!(partial.map(|p| p.content), Some("half".to_string()));
    assert_eq!(store.session("s").unwrap().title, None);
    assert_eq!(store.lease_holder("s").unwrap().unwrap().owner, "new");
}

#[test]
fn a_claim_while_held_names_the_holder_and_expiry_until_released() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let a = store.claim("s", "a", Duration::from_secs(60)).unwrap();
    let refused = store.claim("s", "b", Duration::from_secs(60)).unwrap_err();
    match &refused {
        Error::LeaseHeld {
            session,
            owner,
            expires_at,
        } => assert_eq!(
            (session.as_str(), owner.as_str(), *expires_at),
            ("s", "a", a.expires_at)
        ),
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    assert!(refused
        .to_string()
        .starts_with("session \"s\" is leased to \"a\" until "));

    let renewed = store.renew(&a, Duration::from_secs(120)).unwrap();
    assert!(renewed.expires_at > a.expires_at);
    assert_eq!(renewed.token(), a.token());
    match store.claim("s", "b", Duration::from_secs(60)) {
        Err(Error::LeaseHeld { expires_at, .. }) => assert_eq!(expires_at, renewed.expires_at),
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    // The handle made before the renewal still writes.
    store
        .with_lease(&a)
        .add_message(NewMessage::user("by a"))
        .unwrap();

    assert!(store.release(&renewed).unwrap());
    assert_eq!(store.lease_holder("s").unwrap(), None);
    let b = store.claim("s", "b", Duration::from_secs(60)).unwrap();
    assert_ne!(b.token(), a.token());
    assert!(matches!(
        store.with_lease(&a).add_message(NewMessage::user("by a again")),
        Err(Error::LeaseLost { holder: Some(h), .. }) if h == "b"
    ));
    assert_eq!(store.chat_history("s", None).unwrap().len(), 1);
}

#[test]
fn a_claim_by_the_same_owner_takes_a_new_token_and_the_old_one_stops_working() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let first = store.claim("s", "w", Duration::from_secs(60)).unwrap();
    let second = store.claim("s", "w", Duration::from_secs(60)).unwrap();
    assert_ne!(first.token(), second.token());
    assert!(matches!(
        store
            .with_lease(&first)
            .add_message(NewMessage::user("old token")),
        Err(Error::LeaseLost { .. })
    ));
    store
        .with_lease(&second)
        .add_message(NewMessage::user("new token"))
        .unwrap();
    let history = store.chat_history("s", None).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].content(), "new token");
}

#[test]
fn leases_are_plain_rows_with_iso_8601_utc_expiry() {
    if common::sqlite_only("leases are plain rows with iso 8601 utc expiry") {
        return;
    }
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    let lease = store.claim("s", "w", Duration::from_secs(30)).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (owner, token, expires_at): (String, String, String) = conn
        .query_row(
            "SELECT owner, token, expires_at FROM leases WHERE session_id = 's'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((owner.as_str(), token.as_str()), ("w", lease.token()));
    assert!(
        expires_at.ends_with('Z') && expires_at.contains('T'),
        "{expires_at}"
    );
    assert_eq!(
        expires_at.parse::<DateTime<Utc>>().unwrap(),
        lease.expires_at
    );
    assert_eq!(lease.token().len(), 32);
}

#[test]
fn a_bad_claim_is_invalid_input_and_claims_nothing() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for (owner, ttl) in [
        ("", Duration::from_secs(1)),
        ("w", Duration::ZERO),
        ("w", Duration::MAX),
    ] {
        match store.claim("s", owner, ttl) {
            Err(Error::InvalidInput(msg)) => assert!(msg.contains("lease"), "{msg}"),
            other => panic!("{owner:?} {ttl:?}: expected InvalidInput, got {other:?}"),
        }
    }
    assert_eq!(store.lease_holder("s").unwrap(), None);
}

#[test]
fn deleting_or_expiring_a_session_ends_its_lease() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for expire in [false, true] {
        store.add_user_message("s", "hi").unwrap();
        let lease = store
            .claim("s", "worker-1", Duration::from_secs(60))
            .unwrap();
        if expire {
            std::thread::sleep(Duration::from_millis(20));
            let report = store
                .expire_sessions(Duration::from_millis(10), false)
                .unwrap();
            assert_eq!(report.sessions, vec!["s".to_string()]);
        } else {
            store.delete_session("s").unwrap();
        }
        assert!(store.lease_holder("s").unwrap().is_none());
        // The old holder writes nothing to a session created again under the same id.
        store.add_user_message("s", "new life").unwrap();
        let err = store
            .with_lease(&lease)
            .add_message(NewMessage::user("stale"))
            .unwrap_err();
        assert!(matches!(err, Error::LeaseLost { .. }), "{err:?}");
        let other = store
            .claim("s", "worker-2", Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            store.lease_holder("s").unwrap().map(|h| h.owner),
            Some("worker-2".to_string())
        );
        store.release(&other).unwrap();
        let history = store.chat_history("s", None).unwrap();
        let contents: Vec<_> = history.iter().map(|m| m.text().to_string()).collect();
        assert_eq!(contents, vec!["new life"]);
        store.delete_session("s").unwrap();
    }
}

/// An operator with a stuck worker: `lease list` and `lease show` say who holds what until
/// when, `lease break` removes it, and the worker's next write under it is refused.
#[test]
fn the_cli_lists_shows_and_breaks_leases() {
    let (_dir, db) = temp_db();
    let store = Store::open(&db).unwrap();
    let stuck = store
        .claim("s", "worker-1", Duration::from_secs(600))
        .unwrap();
    let run = store.with_lease(&stuck);
    run.add_message(NewMessage::user("before")).unwrap();
    let gone = store
        .claim("t", "worker-2", Duration::from_millis(1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

    let listed = common::cli_json(&db, &["lease", "list", "--json"]);
    assert_eq!(
        listed,
        serde_json::json!([
            {"session_id": "s", "owner": "worker-1", "acquired_at": time(stuck.acquired_at),
             "expires_at": time(stuck.expires_at), "expired": false},
            {"session_id": "t", "owner": "worker-2", "acquired_at": time(gone.acquired_at),
             "expires_at": time(gone.expires_at), "expired": true},
        ])
    );
    let table = common::cli_ok(&db, &["lease", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[1].starts_with("s ") && lines[1].ends_with(" held"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("t ") && lines[2].ends_with(" expired"),
        "{table}"
    );
    assert_eq!(
        common::cli_json(&db, &["lease", "show", "s", "--json"])["owner"],
        "worker-1"
    );
    assert_eq!(
        common::cli_json(&db, &["lease", "show", "t", "--json"]),
        serde_json::Value::Null
    );

    let broken = common::cli_ok(&db, &["lease", "break", "s"]);
    assert!(
        broken.starts_with("s: broke the lease worker-1 held until "),
        "{broken}"
    );
    let err = run.add_message(NewMessage::user("after")).unwrap_err();
    assert!(
        matches!(&err, Error::LeaseLost { reason, .. } if reason == "it was released"),
        "{err:?}"
    );
    let contents: Vec<String> = store
        .chat_history("s", None)
        .unwrap()
        .iter()
        .map(|m| m.content().to_string())
        .collect();
    assert_eq!(contents, ["before"]);
    assert_eq!(
        common::cli_ok(&db, &["lease", "break", "s"]),
        "s: had no lease; nothing changed\n"
    );
    assert_eq!(
        common::cli_json(&db, &["lease", "break", "t", "--json"])["expired"],
        true
    );
    assert_eq!(common::cli_ok(&db, &["lease", "list"]), "no leases\n");
    store
        .claim("s", "worker-3", Duration::from_secs(5))
        .unwrap();
}
