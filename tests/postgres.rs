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
    use std::path::Path;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use sessiondb::{Error, Store};

    use super::common::{direct, postgres_only as skip, temp_db};

    /// The number of PostgreSQL migrations this build has (migrations/postgres/).
    const PG_SCHEMA_VERSION: i64 = 4;

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

    /// What the server said reaches the caller: a missing database, a missing role, a
    /// refused connection; a database without sessiondb's tables is named as such.
    /// The driver closes a connection by blocking on a runtime of its own, which panics on a
    /// thread already running one: the last clone of a store (an `AsyncStore`'s, the MCP
    /// server's) dropped in an async function aborted the program.
    #[test]
    fn a_store_dropped_inside_an_async_function_closes_its_connections() {
        if skip() {
            return;
        }
        let (_dir, path) = temp_db();
        let url = path.to_str().unwrap().to_string();
        let database = url.rsplit_once('/').unwrap().1.to_string();
        let store = Store::open(&path).unwrap();
        store.add_user_message("s", "kept").unwrap();
        let copy = store.clone();
        std::thread::spawn(move || copy.add_user_message("t", "also kept").unwrap())
            .join()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move { drop(store) });
        let again = Store::open(&path).unwrap();
        assert_eq!(contents(&again, "s"), ["kept"]);
        assert_eq!(contents(&again, "t"), ["also kept"]);
        drop(again);
        if direct(&url) != url {
            // Through PgBouncer the server's sessions are the pooler's, which keeps them.
            return;
        }
        let mut watcher = client(&url);
        let open = |watcher: &mut postgres::Client| -> i64 {
            watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = $1 AND application_name = 'sessiondb'",
                    &[&database],
                )
                .unwrap()
                .get(0)
        };
        // The server ends a session when it reads the client's goodbye, a moment later.
        let mut left = open(&mut watcher);
        for _ in 0..100 {
            if left == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            left = open(&mut watcher);
        }
        assert_eq!(left, 0, "connections of the dropped stores still open");
    }

    #[test]
    fn connection_errors_say_what_the_server_said() {
        if skip() {
            return;
        }
        let (_dir, path) = temp_db();
        let url = path.to_str().unwrap().to_string();
        let (base, _) = url.rsplit_once('/').unwrap();
        let text = |url: &str| Store::open(url).unwrap_err().to_string();
        let missing = text(&format!("{base}/no_such_database"));
        assert!(
            missing.contains("cannot connect: FATAL: database \"no_such_database\" does not exist"),
            "{missing}"
        );
        let (scheme, rest) = base.split_once("://").unwrap();
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let nobody = text(&format!("{scheme}://no_such_role@{host}/postgres"));
        // The server says the role does not exist; PgBouncer says its authentication failed.
        assert!(
            nobody.contains("cannot connect: FATAL: role \"no_such_role\" does not exist")
                || nobody.contains("cannot connect: FATAL: \"trust\" authentication failed"),
            "{nobody}"
        );
        let refused = text("postgres://sessiondb@127.0.0.1:1/postgres");
        assert!(refused.contains("Connection refused"), "{refused}");

        // An existing database with no sessiondb tables, read without creating them.
        let database = url.rsplit('/').next().unwrap().split('?').next().unwrap();
        let name = format!("{database}_empty");
        // The same URL (parameters included) naming the other database.
        let empty = url.replacen(&format!("/{database}"), &format!("/{name}"), 1);
        let mut admin = client(&format!("{base}/postgres"));
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let out = super::common::cli()
            .args(["--db", &empty, "sessions"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("yet: the database holds no sessiondb tables"),
            "{stderr}"
        );
        // A write creates them, and stats speaks of the server's database.
        super::common::cli_ok(Path::new(&empty), &["add", "s", "user", "hi"]);
        let stats = super::common::cli_ok(Path::new(&empty), &["stats"]);
        assert!(stats.starts_with("database:  "), "{stats}");
        assert!(!stats.contains("WAL"), "{stats}");
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
        assert_eq!(version, PG_SCHEMA_VERSION);
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
            } => assert_eq!((found, supported), (9, PG_SCHEMA_VERSION)),
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

/// A connection lost during COMMIT, made deterministic: a TCP relay between the store and the
/// server (or PgBouncer) that cuts both sides when the store sends COMMIT, before or after
/// passing it on.
#[cfg(feature = "postgres")]
mod lost_commit {
    use std::io::{self, Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
    use std::sync::{mpsc, Arc};
    use std::thread;

    use sessiondb::{Error, NewMessage, Store};

    use super::common::{postgres_only as skip, temp_db};

    const PASS: u8 = 0;
    /// Cut without passing COMMIT on: the server never commits.
    const CUT_BEFORE_THE_SERVER: u8 = 1;
    /// Pass COMMIT on, wait for the server's answer and drop it, then cut.
    const CUT_AFTER_THE_SERVER: u8 = 2;

    /// `SSLRequest` and `GSSENCRequest`: startup packets after which another one follows.
    const ENCRYPTION_REQUESTS: [u32; 2] = [80_877_103, 80_877_104];

    /// The relay. Armed, it acts on the next COMMIT any client sends, and on that one only.
    struct CommitCutter {
        url: String,
        mode: Arc<AtomicU8>,
        cuts: Arc<AtomicUsize>,
    }

    impl CommitCutter {
        /// Listens on a free local port and relays every connection to the host and port of
        /// `target`, a TCP URL; [`CommitCutter::url`] is `target` through the relay.
        fn start(target: &str) -> CommitCutter {
            let without_query = target.split('?').next().unwrap_or(target);
            let config: postgres::Config = without_query.parse().expect("a PostgreSQL URL");
            let host = match &config.get_hosts()[0] {
                postgres::config::Host::Tcp(host) => host.clone(),
                other => panic!("the relay needs a TCP URL, got {other:?}"),
            };
            let upstream = format!("{host}:{}", config.get_ports()[0]);
            assert!(
                target.contains(&upstream),
                "{target} does not name {upstream}"
            );
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
            let port = listener.local_addr().expect("local address").port();
            let mode = Arc::new(AtomicU8::new(PASS));
            let cuts = Arc::new(AtomicUsize::new(0));
            let url = target.replacen(&upstream, &format!("127.0.0.1:{port}"), 1);
            let (relay_mode, relay_cuts) = (mode.clone(), cuts.clone());
            thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { return };
                    let (upstream, mode, cuts) =
                        (upstream.clone(), relay_mode.clone(), relay_cuts.clone());
                    thread::spawn(move || relay(client, &upstream, &mode, &cuts));
                }
            });
            CommitCutter { url, mode, cuts }
        }

        fn url(&self) -> &str {
            &self.url
        }

        fn arm(&self, cut: u8) {
            self.mode.store(cut, SeqCst);
        }

        /// How many connections it has cut.
        fn cuts(&self) -> usize {
            self.cuts.load(SeqCst)
        }
    }

    /// Relays one client connection until either side closes it or a cut ends it.
    fn relay(client: TcpStream, upstream: &str, mode: &AtomicU8, cuts: &AtomicUsize) {
        let Ok(server) = TcpStream::connect(upstream) else {
            return;
        };
        let _ = relay_client_messages(&client, &server, mode, cuts);
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }

    /// Passes the client's messages to the server one by one, and the server's bytes back on
    /// a second thread; returns when a cut was made or a side closed.
    fn relay_client_messages(
        client: &TcpStream,
        server: &TcpStream,
        mode: &AtomicU8,
        cuts: &AtomicUsize,
    ) -> io::Result<()> {
        let hold_answers = Arc::new(AtomicBool::new(false));
        let (answered, answer_arrived) = mpsc::channel::<()>();
        {
            let (mut from, mut to) = (server.try_clone()?, client.try_clone()?);
            let hold_answers = hold_answers.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match from.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        // The client sends COMMIT only once it has read every earlier answer,
                        // so what arrives now is COMMIT's.
                        Ok(_) if hold_answers.load(SeqCst) => {
                            let _ = answered.send(());
                            return;
                        }
                        Ok(n) => {
                            if to.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
        let (mut from, mut to) = (client.try_clone()?, server.try_clone()?);
        // Startup packets carry no type byte: a length, then a protocol or request code.
        loop {
            let packet = read_packet(&mut from, None)?;
            to.write_all(&packet)?;
            let code = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
            if !ENCRYPTION_REQUESTS.contains(&code) {
                break;
            }
        }
        loop {
            let mut kind = [0u8; 1];
            from.read_exact(&mut kind)?;
            let message = read_packet(&mut from, Some(kind[0]))?;
            // A simple query holding exactly COMMIT: how the store commits.
            let commit = kind[0] == b'Q' && message[5..] == *b"COMMIT\0";
            match if commit {
                mode.swap(PASS, SeqCst)
            } else {
                PASS
            } {
                CUT_BEFORE_THE_SERVER => {
                    cuts.fetch_add(1, SeqCst);
                    return Ok(());
                }
                CUT_AFTER_THE_SERVER => {
                    hold_answers.store(true, SeqCst);
                    to.write_all(&message)?;
                    let _ = answer_arrived.recv();
                    cuts.fetch_add(1, SeqCst);
                    return Ok(());
                }
                _ => to.write_all(&message)?,
            }
        }
    }

    /// One protocol message as it was sent: its type byte (if it has one), its length, the
    /// rest.
    fn read_packet(from: &mut TcpStream, kind: Option<u8>) -> io::Result<Vec<u8>> {
        let mut length = [0u8; 4];
        from.read_exact(&mut length)?;
        let body = (u32::from_be_bytes(length) as usize)
            .checked_sub(4)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "length below 4"))?;
        let mut packet: Vec<u8> = kind.into_iter().collect();
        packet.extend_from_slice(&length);
        let start = packet.len();
        packet.resize(start + body, 0);
        from.read_exact(&mut packet[start..])?;
        Ok(packet)
    }

    fn contents(url: &str, id: &str) -> Vec<String> {
        Store::open(url)
            .unwrap()
            .chat_history_uncached(id, None)
            .unwrap()
            .iter()
            .map(|m| m.content().to_string())
            .collect()
    }

    /// A store writing through a [`CommitCutter`] armed with `cut`, and its keyed write of
    /// "during" after "before": the store, its URL without the relay, the write's result.
    fn keyed_write_through(
        cut: u8,
    ) -> (
        tempfile::TempDir,
        String,
        Store,
        sessiondb::Result<sessiondb::AddedMessages>,
        usize,
    ) {
        let (dir, path) = temp_db();
        let url = path.to_str().unwrap().to_string();
        let cutter = CommitCutter::start(&url);
        let store = Store::open(cutter.url()).unwrap();
        store.add_user_message("s", "before").unwrap();
        cutter.arm(cut);
        let written = store.add_messages("s", &[NewMessage::user("during").with_key("turn-2")]);
        (dir, url, store, written, cutter.cuts())
    }

    #[test]
    fn a_connection_lost_after_the_server_got_commit_is_outcome_unknown_and_the_write_is_stored() {
        if skip() {
            return;
        }
        let (_dir, url, store, written, cuts) = keyed_write_through(CUT_AFTER_THE_SERVER);
        assert_eq!(cuts, 1);
        match written {
            Err(Error::CommitOutcomeUnknown { .. }) => {}
            other => panic!("expected CommitOutcomeUnknown, got {other:?}"),
        }
        assert_eq!(contents(&url, "s"), ["before", "during"]);
        // The keyed write sent again finds itself stored and writes nothing.
        let retry = store
            .add_messages("s", &[NewMessage::user("during").with_key("turn-2")])
            .unwrap();
        assert!(retry.already_stored);
        assert_eq!(retry.messages.len(), 1);
        assert_eq!(retry.messages[0].content(), "during");
        assert_eq!(contents(&url, "s"), ["before", "during"]);
    }

    #[test]
    fn a_connection_lost_before_commit_reached_the_server_is_outcome_unknown_and_nothing_is_stored()
    {
        if skip() {
            return;
        }
        let (_dir, url, store, written, cuts) = keyed_write_through(CUT_BEFORE_THE_SERVER);
        assert_eq!(cuts, 1);
        match written {
            Err(Error::CommitOutcomeUnknown { .. }) => {}
            other => panic!("expected CommitOutcomeUnknown, got {other:?}"),
        }
        assert_eq!(contents(&url, "s"), ["before"]);
        // The same retry writes it this time, once.
        let retry = store
            .add_messages("s", &[NewMessage::user("during").with_key("turn-2")])
            .unwrap();
        assert!(!retry.already_stored);
        assert_eq!(contents(&url, "s"), ["before", "during"]);
    }
}
