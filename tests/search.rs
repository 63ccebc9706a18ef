//! Full-text search across sessions.

mod common;

use common::{cli, temp_db};
use sessiondb::{Error, NewMessage, NewSession, Role, SearchFilter, Store};

fn setup() -> (tempfile::TempDir, Store) {
    let (dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    for (id, agent, user) in [("trip", "planner", "alice"), ("code", "coder", "bob")] {
        store
            .create_session(NewSession {
                id: Some(id.into()),
                agent_name: Some(agent.into()),
                user_id: Some(user.into()),
                ..NewSession::default()
            })
            .unwrap();
    }
    store
        .add_user_message("trip", "What is the weather in Oslo?")
        .unwrap();
    store
        .add_assistant_message("trip", "Snow in Oslo, bring boots.")
        .unwrap();
    store
        .add_user_message("code", "Why does my Rust build fail?")
        .unwrap();
    store
        .add_assistant_message("code", "The borrow checker rejects it; see Oslo notes.")
        .unwrap();
    (dir, store)
}

#[test]
fn search_finds_matches_across_sessions_with_snippets_best_first() {
    let (_dir, store) = setup();
    let hits = store.search("oslo", 10, &SearchFilter::default()).unwrap();
    let found: Vec<(&str, u64)> = hits
        .iter()
        .map(|h| (h.session_id.as_str(), h.index))
        .collect();
    assert_eq!(found.len(), 3);
    assert!(
        found.contains(&("trip", 0))
            && found.contains(&("trip", 1))
            && found.contains(&("code", 1))
    );
    assert!(hits.windows(2).all(|w| w[0].rank <= w[1].rank));
    let hit = hits
        .iter()
        .find(|h| h.session_id == "trip" && h.index == 1)
        .unwrap();
    assert_eq!(hit.snippet, "Snow in [Oslo], bring boots.");
    assert_eq!((hit.role, hit.branch.as_str()), (Role::Assistant, "main"));
    assert_eq!(
        store
            .search("oslo", 1, &SearchFilter::default())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn search_recent_returns_the_newest_matches_first_up_to_the_limit() {
    let (_dir, store) = setup();
    let newest = |limit| -> Vec<(String, u64)> {
        store
            .search_recent("oslo", limit, &SearchFilter::default())
            .unwrap()
            .into_iter()
            .map(|h| (h.session_id, h.index))
            .collect()
    };
    let all = vec![("code".into(), 1), ("trip".into(), 1), ("trip".into(), 0)];
    assert_eq!(newest(10), all);
    assert_eq!(newest(2), all[..2]);
    // The same filters as a ranked search.
    let filter = SearchFilter {
        session: Some("trip".into()),
        ..SearchFilter::default()
    };
    let hits = store.search_recent("oslo", 10, &filter).unwrap();
    assert_eq!(hits.iter().map(|h| h.index).collect::<Vec<_>>(), [1, 0]);
    assert!(hits.iter().all(|h| h.in_current_history));
}

#[test]
fn search_filters_by_session_agent_user_and_role() {
    let (_dir, store) = setup();
    let only = |filter: SearchFilter| -> Vec<(String, u64)> {
        store
            .search("oslo", 10, &filter)
            .unwrap()
            .into_iter()
            .map(|h| (h.session_id, h.index))
            .collect()
    };
    assert_eq!(
        only(SearchFilter {
            session: Some("code".into()),
            ..Default::default()
        }),
        [("code".into(), 1)]
    );
    assert_eq!(
        only(SearchFilter {
            agent_name: Some("coder".into()),
            ..Default::default()
        }),
        [("code".into(), 1)]
    );
    assert_eq!(
        only(SearchFilter {
            user_id: Some("alice".into()),
            role: Some(Role::User),
            ..Default::default()
        }),
        [("trip".into(), 0)]
    );
}

#[test]
fn search_within_a_fork_covers_what_it_inherits_and_the_index_follows_edits() {
    let (_dir, store) = setup();
    let fork = store.fork_session("trip", Some(0), None).unwrap();
    store.add_user_message(&fork.id, "And in Bergen?").unwrap();
    let in_fork = |q: &str| -> Vec<u64> {
        store
            .search(
                q,
                10,
                &SearchFilter {
                    session: Some(fork.id.clone()),
                    ..Default::default()
                },
            )
            .unwrap()
            .into_iter()
            .map(|h| h.index)
            .collect()
    };
    assert_eq!(in_fork("oslo"), [0]);
    assert_eq!(in_fork("bergen"), [1]);
    // Replaced and pruned rows leave the index with them.
    store
        .set_chat_history("code", &[NewMessage::user("nothing to see")])
        .unwrap();
    store.prune(std::time::Duration::ZERO, false).unwrap();
    let hits = store
        .search("borrow", 10, &SearchFilter::default())
        .unwrap();
    assert!(hits.is_empty(), "{hits:?}");
    assert_eq!(
        store
            .search("nothing", 10, &SearchFilter::default())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_malformed_query_is_invalid_input_with_sqlites_message() {
    let (_dir, store) = setup();
    for (query, sqlite_says) in [
        ("\"unterminated", "unterminated string"),
        ("AND", "syntax error"),
        ("oslo NOT", "syntax error"),
        ("((", "syntax error"),
    ] {
        match store.search(query, 10, &SearchFilter::default()) {
            Err(Error::InvalidInput(msg)) => assert!(msg.contains(sqlite_says), "{query}: {msg}"),
            other => panic!("{query:?}: expected InvalidInput, got {other:?}"),
        }
    }
}

#[test]
fn the_cli_search_prints_hits_and_json() {
    let (_dir, path) = temp_db();
    let store = Store::open(&path).unwrap();
    store.add_user_message("s", "the quick brown fox").unwrap();
    let out = cli()
        .arg("--db")
        .arg(&path)
        .args(["search", "fox", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hits[0]["session_id"], "s");
    assert_eq!(hits[0]["snippet"], "the quick brown [fox]");
    let out = cli()
        .arg("--db")
        .arg(&path)
        .args(["search", "fox", "--session", "s"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("s [0] user on main: the quick brown [fox]")
    );
    let out = cli()
        .arg("--db")
        .arg(&path)
        .args(["search", "--fts", "\"fox"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Plain-word search takes punctuation literally where the index drops it (`c++` is not
/// `4°C`); a hit in the current history is on the head whether or not `--session` is given;
/// no hits exits 1 as grep does; a read-only search of a file nobody searched yet says what
/// to run once.
#[test]
fn plain_words_labels_exit_status_and_read_only_search_from_the_cli() {
    let (_dir, db) = temp_db();
    let ok = |args: &[&str]| common::cli_ok(&db, args);
    ok(&["add", "s", "user", "It is 4°C outside"]);
    ok(&["add", "s", "user", "I write C++ and C# daily"]);
    let words = |text: &str| -> Vec<u64> {
        common::cli_json(&db, &["search", text, "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["index"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(words("c++"), [1]);
    assert_eq!(words("C#"), [1]);
    assert_eq!(words("outside"), [0]);
    // A revert moves the head to a new branch that inherits message 0 from the old one.
    ok(&["revert", "s", "--at", "0"]);
    ok(&["add", "s", "user", "later"]);
    let all = common::cli_json(&db, &["search", "outside", "--json"]);
    let one = common::cli_json(&db, &["search", "outside", "--session", "s", "--json"]);
    assert_eq!(all[0]["branch"], "main");
    assert_eq!(all[0]["in_current_history"], true);
    assert_eq!(
        (&all[0]["branch"], &all[0]["index"]),
        (&one[0]["branch"], &one[0]["index"])
    );
    let none = common::run_cli(&db, &["search", "nowhere"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(none.stdout.is_empty() && none.stderr.is_empty());
    if common::sqlite_only("an index built by the first search") {
        return;
    }
    let (_dir2, fresh) = temp_db();
    common::cli_ok(&fresh, &["add", "s", "user", "hello"]);
    let err = common::cli_failure(&fresh, &["--read-only", "search", "hello"]);
    assert!(err.contains("nobody has searched this file yet"), "{err}");
    common::cli_ok(&fresh, &["search", "hello"]);
    assert_eq!(
        common::cli_ok(&fresh, &["--read-only", "search", "hello"]),
        "s [0] user on main: [hello]\n"
    );
}

/// A snippet keeps the punctuation that ends its last word: `c++` at the end of a message is
/// not cut to `c` (PostgreSQL's headline ends at the last word it indexed).
#[test]
fn a_snippet_keeps_the_punctuation_after_its_last_word() {
    let (_dir, db) = temp_db();
    common::cli_ok(&db, &["add", "s", "user", "my favourite language is c++"]);
    common::cli_ok(&db, &["add", "s", "user", "Is it [really] c#?! yes"]);
    let snippets = |text: &str| -> Vec<String> {
        common::cli_json(&db, &["search", text, "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["snippet"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(snippets("c++"), ["my favourite language is [c]++"]);
    assert_eq!(snippets("really"), ["Is it [[really]] c#?! yes"]);
    assert_eq!(
        snippets("is"),
        [
            "my favourite language [is] c++",
            "[Is] it [really] c#?! yes"
        ]
    );
}

#[test]
fn search_recent_sessions_lists_sessions_whose_current_history_matches_newest_first() {
    let (_dir, store) = setup();
    // `code`'s Oslo message leaves its current history (its row stays, on a superseded
    // branch); a fork's inherited rows stay its source's; `long` has more matches than one
    // page of the index holds.
    store
        .set_chat_history("code", &[NewMessage::user("nothing to see")])
        .unwrap();
    let fork = store.fork_session("trip", Some(0), None).unwrap();
    store.add_user_message(&fork.id, "Oslo again").unwrap();
    for i in 0..70 {
        store
            .add_user_message("long", &format!("oslo {i}"))
            .unwrap();
    }
    // `trip` keeps its first message (a row of the branch it replaces) and gets a new one.
    let kept = NewMessage::user("What is the weather in Oslo?");
    store
        .set_chat_history("trip", &[kept, NewMessage::assistant("Rain in Oslo.")])
        .unwrap();
    let recent = |q: &str, limit| store.search_recent_sessions(q, limit).unwrap();
    assert_eq!(recent("oslo", 10), ["trip", "long", fork.id.as_str()]);
    assert_eq!(recent("oslo", 2), ["trip", "long"]);
    assert!(recent("oslo", 0).is_empty());
    assert!(recent("borrow", 10).is_empty());
    assert_eq!(recent("nothing", 10), ["code"]);
    assert_eq!(recent("weather", 10), ["trip"]);
    // The same sessions, in the same order, as the newest hits in the current history.
    for q in ["oslo", "borrow OR nothing", "weather", "again"] {
        let mut expected: Vec<String> = Vec::new();
        for hit in store
            .search_recent(q, 1000, &SearchFilter::default())
            .unwrap()
        {
            if hit.in_current_history && !expected.contains(&hit.session_id) {
                expected.push(hit.session_id);
            }
        }
        assert_eq!(recent(q, 10), expected, "{q}");
    }
    assert!(matches!(
        store.search_recent_sessions("\"unterminated", 10),
        Err(Error::InvalidInput(_))
    ));
}
