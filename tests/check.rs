//! `check` passes on every file sessiondb writes and names what is wrong in a damaged one.

mod common;

use common::{cli, temp_db};
use sessiondb::{NewMessage, Store};

fn populated(path: &std::path::Path) -> Store {
    let store = Store::open(path).unwrap();
    for i in 0..5 {
        store
            .add_message(
                "s",
                NewMessage::assistant(format!("m{i}")).with_usage(2, 3, Some(0.5)),
            )
            .unwrap();
    }
    let fork = store.fork_session("s", Some(2), None).unwrap();
    store.add_user_message(&fork.id, "f").unwrap();
    store.create_snapshot("s", None, None).unwrap();
    store.revert_to_message("s", 1).unwrap();
    store.add_user_message("s", "after revert").unwrap();
    store.start_stream("s", None, None).unwrap();
    store
}

fn problems_after(sql: &str) -> Vec<String> {
    let (_dir, path) = temp_db();
    let store = populated(&path);
    common::db_exec(&path, sql);
    store.check().unwrap().problems
}

#[test]
fn a_file_written_by_sessiondb_checks_clean() {
    let (_dir, path) = temp_db();
    let store = populated(&path);
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.sessions, report.snapshots), (2, 1));
    assert_eq!(report.messages, 7);
    let out = cli().arg("--db").arg(&path).arg("check").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim_end()
        .ends_with("ok"));
}

#[test]
fn a_missing_message_is_a_gap_in_its_branch() {
    let problems = problems_after("DELETE FROM messages WHERE seq = 2 AND branch_id = 1;");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("should hold seqs 1..=5")),
        "{problems:?}"
    );
}

#[test]
fn a_wrong_message_count_is_named() {
    let problems = problems_after("UPDATE sessions SET message_count = 99 WHERE id = 's';");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("message_count 99 but its head has 3")),
        "{problems:?}"
    );
}

#[test]
fn usage_totals_that_do_not_match_the_rows_are_named() {
    let problems = problems_after("UPDATE sessions SET input_tokens = 1000 WHERE id = 's';");
    assert!(
        problems.iter().any(|p| p.contains("usage totals")),
        "{problems:?}"
    );
    let problems = problems_after(
        "UPDATE messages SET running_output_tokens = 7 WHERE seq = 4 AND branch_id = 1;",
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("running totals do not add up")),
        "{problems:?}"
    );
}

#[test]
fn a_lineage_cycle_and_a_version_that_would_reuse_a_name_are_named() {
    let problems = problems_after("UPDATE branches SET parent_branch_id = 3 WHERE id = 1;");
    assert!(
        problems.iter().any(|p| p.contains("not an older branch")),
        "{problems:?}"
    );
    // The revert in `populated` superseded main as main@<version>.
    let problems = problems_after("UPDATE sessions SET version = 1 WHERE id = 's';");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("'s': version 1 is below its superseded branch 'main@")),
        "{problems:?}"
    );
}

#[test]
fn a_message_off_its_rowid_or_without_a_branch_is_named() {
    // PostgreSQL enforces the CHECK constraints this damage needs switched off.
    if common::sqlite_only("ignore_check_constraints") {
        return;
    }
    let problems = problems_after(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE messages SET id = id + 1000 WHERE seq = 5 AND branch_id = 1;",
    );
    assert!(
        problems.iter().any(|p| p
            == &format!(
                "message row {} is not at branch 1 seq 5",
                (1i64 << 32) + 1005
            )),
        "{problems:?}"
    );
    let problems = problems_after(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE messages SET branch_id = 99, id = 99 * 4294967296 + seq WHERE branch_id = 1;",
    );
    assert!(
        problems
            .iter()
            .any(|p| p == "5 messages belong to missing branch 99"),
        "{problems:?}"
    );
}

#[test]
fn the_cli_check_exits_non_zero_and_lists_problems() {
    let (_dir, path) = temp_db();
    populated(&path);
    common::db_exec(
        &path,
        "UPDATE sessions SET message_count = 99 WHERE id = 's';",
    );
    let out = cli()
        .arg("--db")
        .arg(&path)
        .args(["check", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"].as_array().unwrap().len(), 1);
}
