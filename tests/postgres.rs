//! What only the PostgreSQL backend has: row locks instead of one writer, migrations under an
//! advisory lock, a schema table. Runs when the suite runs on PostgreSQL
//! (`SESSIONDB_TEST_BACKEND=postgres`, see `tests/postgres/with-server.sh`); the rest of the
//! suite runs on both backends.

mod common;

#[cfg(not(feature = "postgres"))]
#[test]
fn a_postgres_url_without_the_feature_is_a_clear_error() {
    let err = sessiondb::Store::open("postgres://app@db.example/sessions").unwrap_err();
    match &err {
        sessiondb::Error::InvalidInput(msg) => {
            assert!(msg.contains("built without PostgreSQL support"), "{msg}");
            assert!(msg.contains("cargo feature `postgres`"), "{msg}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use sessiondb::{Error, Store};

    use super::common::{direct, on_postgres, temp_db};

    fn client(url: &str) -> postgres::Client {
        postgres::Client::connect(&direct(url), postgres::NoTls).expect("connect")
    }

    fn contents(store: &Store, id: &str) -> Vec<String> {
        store
            .chat_history_uncached(id, None)
            .unwrap()
            .iter()
            .map(|m| m.content().to_string())
            .collect()
    }

    fn skip() -> bool {
        if !on_postgres() {
            eprintln!("skipped: runs with SESSIONDB_TEST_BACKEND=postgres or pgbouncer");
            return true;
        }
        false
    }

    #[test]
    fn a_session_row_locked_past_the_busy_timeout_gives_busy_and_other_sessions_write_on() {
        if skip() {
            return;
        }
        let (_dir, path) = temp_db();
        let url = path.to_str().unwrap().to_string();
        let timeout = Duration::from_millis(300);
        let store = Store::builder(&path).busy_timeout(timeout).open().unwrap();
        store.add_user_message("held", "a").unwrap();
        store.add_user_message("free", "x").unwrap();

        // Another host's writer holds the session's row lock.
        let mut other = client(&url);
        let mut tx = other.transaction().unwrap();
        tx.execute("SELECT 1 FROM sessions WHERE id = 'held' FOR UPDATE", &[])
            .unwrap();

        let err = store.add_user_message("held", "b").unwrap_err();
        match &err {
            Error::Busy { timeout: t } => assert_eq!(*t, timeout),
            other => panic!("expected Busy, got {other:?}"),
        }
        // Writers of another session do not wait for it, and readers wait for nobody.
        store.add_user_message("free", "y").unwrap();
        assert_eq!(contents(&store, "held"), ["a"]);
        assert_eq!(contents(&store, "free"), ["x", "y"]);

        tx.rollback().unwrap();
        store.add_user_message("held", "c").unwrap();
        assert_eq!(contents(&store, "held"), ["a", "c"]);
    }

    #[test]
    fn writers_of_one_session_take_turns_and_versions_strictly_increase() {
        if skip() {
            return;
        }
        let (_dir, path) = temp_db();
        let store = Store::open(&path).unwrap();
        const THREADS: usize = 6;
        const EACH: usize = 40;
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                // Each thread its own store: its own pool and cache, as another host has.
                let store = Store::open(&path).unwrap();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut versions = Vec::new();
                    for i in 0..EACH {
                        store
                            .add_user_message("shared", &format!("{t}:{i}"))
                            .unwrap();
                        versions.push(store.version("shared").unwrap());
                    }
                    versions
                })
            })
            .collect();
        for handle in handles {
            let versions = handle.join().unwrap();
            assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        }
        let stored = contents(&store, "shared");
        assert_eq!(stored.len(), THREADS * EACH);
        for t in 0..THREADS {
            let mine: Vec<&String> = stored
                .iter()
                .filter(|c| c.starts_with(&format!("{t}:")))
                .collect();
            let expected: Vec<String> = (0..EACH).map(|i| format!("{t}:{i}")).collect();
            assert_eq!(mine, expected.iter().collect::<Vec<_>>());
        }
        let session = store.session("shared").unwrap();
        assert_eq!(session.message_count, (THREADS * EACH) as u64);
    }

    #[test]
    fn many_hosts_opening_a_fresh_database_at_once_all_succeed_and_migrate_once() {
        if skip() {
            return;
        }
        let (_dir, path) = temp_db();
        let url = path.to_str().unwrap().to_string();
        const HOSTS: usize = 8;
        let barrier = Arc::new(Barrier::new(HOSTS));
        let handles: Vec<_> = (0..HOSTS)
            .map(|h| {
                let (barrier, path) = (barrier.clone(), path.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let store = Store::open(&path).unwrap();
                    store.add_user_message(&format!("host{h}"), "up").unwrap();
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let mut admin = client(&url);
        let version: i64 = admin
            .query_one("SELECT version FROM sessiondb_schema WHERE id = 1", &[])
            .unwrap()
            .get(0);
        assert_eq!(version, 1);
        let sessions: i64 = admin
            .query_one("SELECT count(*) FROM sessions", &[])
            .unwrap()
            .get(0);
        assert_eq!(sessions, HOSTS as i64);
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_alone() {
        if skip() {
            return;
        }
        let (_dir, path) = temp_db();
        let url = path.to_str().unwrap().to_string();
        Store::open(&path)
            .unwrap()
            .add_user_message("s", "kept")
            .unwrap();
        client(&url)
            .execute("UPDATE sessiondb_schema SET version = 9", &[])
            .unwrap();
        match Store::open(&path).unwrap_err() {
            Error::SchemaTooNew {
                found, supported, ..
            } => assert_eq!((found, supported), (9, 1)),
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
        let kept: String = client(&url)
            .query_one("SELECT content FROM messages", &[])
            .unwrap()
            .get(0);
        assert_eq!(kept, "kept");
    }

    #[test]
    fn open_existing_on_an_empty_database_is_not_found_and_creates_nothing() {
        if skip() {
            return;
        }
        let (_dir, path) = temp_db();
        let url = path.to_str().unwrap().to_string();
        match Store::open_existing(&path).unwrap_err() {
            Error::NotFound { kind, .. } => assert_eq!(kind, "database"),
            other => panic!("expected NotFound, got {other:?}"),
        }
        let tables: i64 = client(&url)
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(tables, 0);
    }

    #[test]
    fn a_bad_url_is_invalid_input_and_a_password_never_shows() {
        let err = Store::open("postgres://app:s3cret@/db?port=notaport").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        assert!(!text.contains("s3cret"), "{text}");
        let err = Store::open("postgres://app:s3cret@127.0.0.1:1/db").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("cannot connect"), "{text}");
    }

    /// A fresh database behind the test server's PgBouncer (transaction mode, two server
    /// connections per database): its URL through the pooler, without `pgbouncer=`.
    fn behind_pgbouncer() -> Option<String> {
        let Ok(pooler) = std::env::var("SESSIONDB_TEST_PGBOUNCER") else {
            eprintln!("skipped: needs PgBouncer (tests/postgres/with-server.sh starts it)");
            return None;
        };
        let (_dir, path) = temp_db();
        let direct_url = direct(path.to_str().unwrap());
        let name = direct_url.rsplit('/').next().unwrap().to_string();
        let base = pooler.split("/postgres").next().unwrap().to_string();
        Some(format!("{base}/{name}"))
    }

    #[test]
    fn behind_a_transaction_pooler_prepared_statements_fail_clearly_and_pgbouncer_true_works() {
        if skip() {
            return;
        }
        let Some(url) = behind_pgbouncer() else {
            return;
        };
        for unnamed in [false, true] {
            let session = format!("s{unnamed}");
            let store = Store::builder(format!("{url}?pgbouncer={unnamed}"))
                .pool_size(1)
                .open()
                .unwrap();
            // The store prepares its statements on the only server connection, then another
            // client's open transaction holds that one: the next write gets a second.
            store.add_user_message(&session, "a").unwrap();
            let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            other.batch_execute("BEGIN; SELECT 1").unwrap();
            let second = store.add_user_message(&session, "b");
            other.batch_execute("COMMIT").unwrap();
            if unnamed {
                second.unwrap();
                assert_eq!(contents(&store, &session), ["a", "b"]);
            } else {
                match second.unwrap_err() {
                    Error::Pool(msg) => {
                        assert!(msg.contains("add pgbouncer=true to the URL"), "{msg}")
                    }
                    other => panic!("expected Pool, got {other:?}"),
                }
                assert_eq!(
                    contents(
                        &Store::open(format!("{url}?pgbouncer=true")).unwrap(),
                        &session
                    ),
                    ["a"]
                );
            }
        }
    }

    #[test]
    fn the_pgbouncer_parameter_takes_true_or_false_and_is_not_passed_to_the_server() {
        let err = Store::open("postgres://app:s3cret@127.0.0.1:1/db?pgbouncer=maybe").unwrap_err();
        match &err {
            Error::InvalidInput(msg) => {
                assert!(
                    msg.contains("pgbouncer=maybe: expected true or false"),
                    "{msg}"
                );
                assert!(!msg.contains("s3cret"), "{msg}");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
        // Taken out before the driver parses the rest: what fails is the connection.
        for url in [
            "postgres://app@127.0.0.1:1/db?pgbouncer=true",
            "postgres://app@127.0.0.1:1/db?connect_timeout=5&pgbouncer=false&sslmode=disable",
        ] {
            let text = Store::open(url).unwrap_err().to_string();
            assert!(text.contains("cannot connect"), "{url}: {text}");
        }
    }
}

#[cfg(feature = "postgres")]
mod moving {
    use sessiondb::{ExistingFile, NewMessage, Store};

    use super::common::{on_postgres, temp_db};

    fn contents(store: &Store, id: &str) -> Vec<String> {
        store
            .chat_history_uncached(id, None)
            .unwrap()
            .iter()
            .map(|m| m.content().to_string())
            .collect()
    }

    #[test]
    fn a_postgres_store_backs_up_to_a_sqlite_file_and_restores_from_one() {
        if !on_postgres() {
            eprintln!("skipped: runs with SESSIONDB_TEST_BACKEND=postgres or pgbouncer");
            return;
        }
        let (dir, url) = temp_db();
        let pg = Store::open(&url).unwrap();
        pg.add_user_message("s", "a").unwrap();
        pg.add_user_message("s", "b").unwrap();
        pg.create_snapshot("s", Some("two"), None).unwrap();
        pg.set_chat_history("s", &[NewMessage::user("a"), NewMessage::user("x")])
            .unwrap();
        pg.fork_session("s", Some(0), Some("fork")).unwrap();
        let file = dir.path().join("moved.db");
        pg.backup(&file, ExistingFile::Refuse).unwrap();

        // The file is an ordinary SQLite store with the same sessions, branches and snapshots.
        let lite = Store::open(&file).unwrap();
        assert_eq!(contents(&lite, "s"), ["a", "x"]);
        assert_eq!(lite.snapshots("s").unwrap().len(), 1);
        assert_eq!(
            lite.branches("s").unwrap().len(),
            pg.branches("s").unwrap().len()
        );
        assert_eq!(lite.count_sessions(&Default::default()).unwrap(), 2);
        assert!(lite.check().unwrap().is_ok());

        // And back into an empty PostgreSQL database.
        let (_dir2, url2) = temp_db();
        let pg2 = Store::open(&url2).unwrap();
        let report = pg2.restore(&file).unwrap();
        assert_eq!(report.sessions, 2);
        assert_eq!(contents(&pg2, "s"), ["a", "x"]);
        let snapshot = pg2.snapshots("s").unwrap()[0].id;
        pg2.restore_snapshot("s", snapshot).unwrap();
        assert_eq!(contents(&pg2, "s"), ["a", "b"]);
        assert!(pg2.check().unwrap().is_ok(), "{:?}", pg2.check().unwrap());
    }
}
