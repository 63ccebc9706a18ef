//! Who may open the file: only writing commands create it, what sessiondb creates is private
//! whatever the umask, files other users can change are refused unless shared on purpose,
//! and a user without write access gets `ReadOnly` naming the path.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;

use common::{cli, file_db, is_root};
use sessiondb::{Error, Store};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

#[test]
fn read_commands_never_create_a_missing_database_or_its_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo").join("sesions.db");
    let reads: [&[&str]; 11] = [
        &["history", "s"],
        &["sessions"],
        &["show", "s"],
        &["tree", "s"],
        &["stats"],
        &["search", "hello"],
        &["check"],
        &["export"],
        &["branch", "list", "s"],
        &["snapshot", "list", "s"],
        &["prune", "--dry-run"],
    ];
    for args in reads {
        let out = cli().arg("--db").arg(&path).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim(),
            format!(
                "sessiondb: nothing has been stored at {} yet: there is no database there (a \
                 command that writes, such as `add`, creates it)",
                path.display()
            ),
            "{args:?}"
        );
        assert!(!dir.path().join("typo").exists(), "{args:?} created files");
    }
    // A write creates it.
    let out = cli()
        .arg("--db")
        .arg(&path)
        .args(["add", "s", "user", "hi"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(path.exists());
}

#[test]
fn open_existing_and_read_only_refuse_a_missing_file_naming_it() {
    let (dir, path) = file_db();
    for result in [
        Store::open_existing(&path),
        Store::builder(&path).read_only(true).open(),
        Store::builder(&path).create(false).open(),
    ] {
        match result {
            Err(Error::NotFound { kind, id }) => {
                assert_eq!((kind, id), ("database", path.display().to_string()))
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    Store::open(&path)
        .unwrap()
        .add_user_message("s", "hi")
        .unwrap();
    let store = Store::open_existing(&path).unwrap();
    assert_eq!(store.chat_history("s", None).unwrap()[0].content(), "hi");
}

/// Under umask 000 the directories and files sessiondb creates are still private.
#[test]
fn what_sessiondb_creates_is_private_under_any_umask() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("sessions.db");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"umask 000 && exec "$0" --db "$1" add s user hi"#)
        .arg(env!("CARGO_BIN_EXE_sessiondb"))
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&dir.path().join("a")), 0o700);
    assert_eq!(mode(&dir.path().join("a").join("b")), 0o700);
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn a_world_writable_database_wal_or_shm_is_refused_unless_shared() {
    for suffix in ["", "-wal", "-shm"] {
        let (_dir, path) = file_db();
        Store::open(&path)
            .unwrap()
            .add_user_message("s", "hi")
            .unwrap();
        let target = with_suffix(&path, suffix);
        if !target.exists() {
            std::fs::write(&target, b"").unwrap();
        }
        chmod(&target, 0o666);
        let before = std::fs::read(&path).unwrap();
        match Store::open(&path) {
            Err(Error::UnsafePermissions { path: p, reason }) => {
                assert_eq!(p, target);
                assert_eq!(reason, "it is writable by every user (mode 666)");
            }
            other => panic!("{suffix}: expected UnsafePermissions, got {other:?}"),
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "{suffix}: file changed"
        );
        let store = Store::builder(&path).shared(true).open().unwrap();
        assert_eq!(store.chat_history("s", None).unwrap()[0].content(), "hi");
    }
}

/// Another user pre-creates an empty database everyone may write, hoping it gets adopted.
#[test]
fn an_empty_world_writable_file_is_not_adopted() {
    let (_dir, path) = file_db();
    std::fs::write(&path, b"").unwrap();
    chmod(&path, 0o666);
    let out = cli()
        .arg("--db")
        .arg(&path)
        .args(["add", "s", "user", "secret"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "sessiondb: {}: refusing a file other users can change: it is writable by every \
             user (mode 666)\nsessiondb: fix its owner or mode, or pass --shared if other \
             users share it on purpose",
            path.display()
        )
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn a_world_writable_directory_without_the_sticky_bit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shared_dir = dir.path().join("open");
    std::fs::create_dir(&shared_dir).unwrap();
    chmod(&shared_dir, 0o777);
    let path = shared_dir.join("sessions.db");
    match Store::open(&path) {
        Err(Error::UnsafePermissions { path: p, reason }) => {
            assert_eq!(p, shared_dir);
            assert_eq!(
                reason,
                "the directory is writable by every user (mode 777) without the sticky bit"
            );
        }
        other => panic!("expected UnsafePermissions, got {other:?}"),
    }
    chmod(&shared_dir, 0o1777);
    Store::open(&path)
        .unwrap()
        .add_user_message("s", "hi")
        .unwrap();
}

const NOBODY: u32 = 65534;

/// Runs the CLI as another user (needs root to switch users).
fn as_nobody(path: &Path, args: &[&str]) -> std::process::Output {
    cli()
        .arg("--db")
        .arg(path)
        .args(args)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap()
}

/// Why user `nobody` cannot run the built CLI, if it cannot: the binary lives under the
/// checkout, which may sit in a directory other users may not enter. Running it is the
/// only sure check (every directory up the path, mounts, security modules all play a part).
fn nobody_cannot_run_the_cli() -> Option<String> {
    let binary = env!("CARGO_BIN_EXE_sessiondb");
    match cli().arg("--version").uid(NOBODY).gid(NOBODY).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`{binary} --version` as user {NOBODY} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => Some(format!(
            "user {NOBODY} cannot run {binary}: {err}; a checkout where other users may \
             enter every directory runs this test"
        )),
    }
}

/// A directory other users may enter, with a database in it.
fn database_others_can_read() -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, path) = file_db();
    Store::open(&path)
        .unwrap()
        .add_user_message("s", "hi")
        .unwrap();
    chmod(dir.path(), 0o755);
    chmod(&path, 0o644);
    (dir, path)
}

#[test]
fn a_wal_pre_created_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to create a file owned by another user");
        return;
    }
    let (_dir, path) = file_db();
    Store::open(&path)
        .unwrap()
        .add_user_message("s", "hi")
        .unwrap();
    let wal = with_suffix(&path, "-wal");
    if !wal.exists() {
        std::fs::write(&wal, b"").unwrap();
    }
    std::os::unix::fs::chown(&wal, Some(NOBODY), Some(NOBODY)).unwrap();
    chmod(&wal, 0o600);
    match Store::open(&path) {
        Err(Error::UnsafePermissions { path: p, reason }) => {
            assert_eq!(p, wal);
            assert_eq!(
                reason,
                format!("it is owned by user {NOBODY}, not by this user (0)")
            );
        }
        other => panic!("expected UnsafePermissions, got {other:?}"),
    }
    assert_eq!(std::fs::metadata(&wal).unwrap().uid(), NOBODY);
}

#[test]
fn another_user_gets_unsafe_permissions_then_read_only_naming_the_path() {
    if !is_root() {
        eprintln!("skipped: needs root to run a command as another user");
        return;
    }
    if let Some(reason) = nobody_cannot_run_the_cli() {
        eprintln!("skipped: {reason}");
        return;
    }
    let (dir, path) = database_others_can_read();
    // Not opted in: the file belongs to someone else.
    let out = as_nobody(&path, &["history", "s"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "sessiondb: {}: refusing a file other users can change: it is owned by user 0, not \
             by this user ({NOBODY})\nsessiondb: fix its owner or mode, or pass --shared if \
             other users share it on purpose",
            path.display()
        )
    );
    // Opted in, but no write access to the file nor the directory (no -wal/-shm yet):
    // SQLite cannot even read, and the error says why and where.
    for args in [
        &["--shared", "history", "s"][..],
        &["--shared", "add", "s", "user", "x"],
    ] {
        let out = as_nobody(&path, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!(
            "sessiondb: {}: the database is read-only: attempt to write a readonly database: \
             this user may not write the file and may not create files in {}, where the -wal \
             and -shm files go (SQLite needs them even to read a WAL database)",
            path.display(),
            dir.path().display()
        );
        assert_eq!(stderr.trim(), expected, "{args:?}");
    }
    assert_eq!(
        Store::open(&path)
            .unwrap()
            .chat_history("s", None)
            .unwrap()
            .len(),
        1
    );
}

/// SQLite follows a symbolic link and puts `-wal`/`-shm` beside its target: the checks look
/// there, and the WAL guard still notices the real WAL being deleted.
#[test]
fn a_database_reached_through_a_symbolic_link_is_checked_and_guarded_at_its_target() {
    let (dir, real) = file_db();
    Store::open(&real)
        .unwrap()
        .add_user_message("s", "hi")
        .unwrap();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let store = Store::open(&link).unwrap();
    assert_eq!(store.path(), real.canonicalize().unwrap());
    store.add_user_message("s", "through the link").unwrap();
    std::fs::remove_file(with_suffix(&real, "-wal")).unwrap();
    match store.add_user_message("s", "lost") {
        Err(Error::FileReplaced { reason, .. }) => {
            assert_eq!(
                reason,
                "its -wal file was deleted or replaced since it was opened"
            )
        }
        other => panic!("expected FileReplaced, got {other:?}"),
    }
    drop(store);
    // A world-writable -wal at the target is refused through the link too.
    Store::open(&real)
        .unwrap()
        .add_user_message("s", "again")
        .unwrap();
    let wal = with_suffix(&real, "-wal");
    if !wal.exists() {
        std::fs::write(&wal, b"").unwrap();
    }
    chmod(&wal, 0o666);
    match Store::open(&link) {
        Err(Error::UnsafePermissions { path, .. }) => {
            assert_eq!(path, wal.canonicalize().unwrap())
        }
        other => panic!("expected UnsafePermissions, got {other:?}"),
    }
}

#[test]
fn a_symbolic_link_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to create a link owned by another user");
        return;
    }
    let (dir, real) = file_db();
    Store::open(&real)
        .unwrap()
        .add_user_message("s", "hi")
        .unwrap();
    let link = dir.path().join("theirs.db");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
    match Store::open(&link) {
        Err(Error::UnsafePermissions { path, reason }) => {
            assert_eq!(path, link);
            assert_eq!(
                reason,
                format!("it is a symbolic link owned by user {NOBODY}, not by this user (0)")
            );
        }
        other => panic!("expected UnsafePermissions, got {other:?}"),
    }
}

#[test]
fn a_directory_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to create a directory owned by another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    chmod(&theirs, 0o755);
    match Store::open(theirs.join("sessions.db")) {
        Err(Error::UnsafePermissions { path, reason }) => {
            assert_eq!(path, theirs);
            assert_eq!(
                reason,
                format!("the directory is owned by user {NOBODY}, not by this user (0)")
            );
        }
        other => panic!("expected UnsafePermissions, got {other:?}"),
    }
}
