//! Peak memory of importing a sessiondb export: it should follow the largest session, not the
//! file (the target is at most twice the largest session's JSON plus a constant).
//!
//! ```sh
//! cargo build --release --bin sessiondb --example import_memory
//! target/release/examples/import_memory generate export.json   # prints the sizes
//! /usr/bin/time -v target/release/sessiondb --db import.db \
//!     import --format sessiondb export.json                  # "Maximum resident set size"
//! target/release/examples/import_memory import export.json import2.db  # prints VmHWM
//! ```
//!
//! `generate OUT [SESSIONS] [MESSAGES] [CONTENT_BYTES]` writes SESSIONS sessions of MESSAGES
//! messages (default 60 × 1,000 × 2,000 bytes) plus one session four times as large with
//! two extra branches, and prints the file's size and its largest session's JSON size.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use chrono::{TimeZone, Utc};
use sessiondb::{
    BranchExport, ImportOptions, Message, NewMessage, SessionExport, Store, EXPORT_FORMAT,
    EXPORT_VERSION,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| {
        args.get(i)
            .and_then(|a| a.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let result = match args.first().map(String::as_str) {
        Some("generate") if args.len() >= 2 => generate(
            Path::new(&args[1]),
            number(2, 60),
            number(3, 1_000),
            number(4, 2_000),
        ),
        Some("import") if args.len() >= 3 => import(Path::new(&args[1]), Path::new(&args[2])),
        _ => Err(
            "usage: import_memory generate OUT [SESSIONS] [MESSAGES] [CONTENT_BYTES] \
                  | import EXPORT DB"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("import_memory: {e}");
            ExitCode::FAILURE
        }
    }
}

fn history(session: usize, messages: usize, bytes: usize, tag: &str) -> Vec<Message> {
    let t0 = Utc
        .timestamp_opt(1_700_000_000, 0)
        .single()
        .unwrap_or_else(Utc::now);
    (0..messages)
        .map(|i| {
            let text = format!("{session}/{tag}/{i} ");
            let content = text.repeat(bytes / text.len() + 1)[..bytes].to_string();
            Message {
                index: i as u64,
                body: if i % 2 == 0 {
                    NewMessage::user(content)
                } else {
                    NewMessage::assistant(content).with_usage(10, 20, Some(0.001))
                },
                created_at: t0 + chrono::Duration::seconds(i as i64),
            }
        })
        .collect()
}

fn session(n: usize, messages: usize, bytes: usize, branches: bool) -> SessionExport {
    let current = history(n, messages, bytes, "main");
    let created_at = current.first().map_or_else(Utc::now, |m| m.created_at);
    let branches = branches.then(|| {
        // Two alternatives that share the first half of the history.
        let mut all = vec![BranchExport {
            name: "main".into(),
            created_at,
            superseded_at: None,
            messages: current.clone(),
            ..BranchExport::default()
        }];
        for alt in ["alt-1", "alt-2"] {
            let mut messages = current[..current.len() / 2].to_vec();
            messages.extend(history(n, current.len() / 2, bytes, alt));
            all.push(BranchExport {
                name: alt.into(),
                created_at,
                superseded_at: None,
                messages,
                ..BranchExport::default()
            });
        }
        all
    });
    SessionExport {
        id: format!("session-{n}"),
        title: Some(format!("Session {n}")),
        agent_name: None,
        agent_id: None,
        user_id: None,
        metadata: Default::default(),
        parent_session: None,
        created_at,
        updated_at: created_at,
        head_branch: "main".into(),
        messages: current,
        branches,
        snapshots: None,
        ..SessionExport::default()
    }
}

/// Writes the export one session at a time, as `sessiondb export` lays it out.
fn generate(out: &Path, sessions: usize, messages: usize, bytes: usize) -> Result<(), String> {
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = BufWriter::new(file);
    let io = |e: std::io::Error| e.to_string();
    write!(
        w,
        "{{\"format\": \"{EXPORT_FORMAT}\", \"version\": {EXPORT_VERSION}, \
         \"exported_at\": \"{}\", \"sessions\": [",
        Utc::now().to_rfc3339()
    )
    .map_err(io)?;
    let mut largest = 0;
    for n in 0..=sessions {
        // The session in the middle is the largest: four times the messages, three branches.
        let big = n == sessions / 2;
        let s = if big {
            session(n, messages * 4, bytes, true)
        } else {
            session(n, messages, bytes, false)
        };
        let text = serde_json::to_string(&s).map_err(|e| e.to_string())?;
        largest = largest.max(text.len());
        if n > 0 {
            w.write_all(b",").map_err(io)?;
        }
        w.write_all(text.as_bytes()).map_err(io)?;
    }
    w.write_all(b"]}\n").map_err(io)?;
    w.flush().map_err(io)?;
    let size = std::fs::metadata(out).map_err(io)?.len();
    println!(
        "{}: {} sessions, {size} bytes; largest session {largest} bytes of JSON",
        out.display(),
        sessions + 1
    );
    Ok(())
}

fn import(export: &Path, db: &Path) -> Result<(), String> {
    let store = Store::open(db).map_err(|e| e.to_string())?;
    let report = store
        .import_export_file(export, &ImportOptions::default(), &mut |_, _| {})
        .map_err(|e| e.to_string())?;
    println!(
        "{} imported, {} updated, {} unchanged, {} skipped",
        report.imported,
        report.updated,
        report.unchanged,
        report.skipped.len()
    );
    // Linux reports the peak resident set size of the process as VmHWM.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines().filter(|l| l.starts_with("VmHWM")) {
            println!("{line}");
        }
    }
    Ok(())
}
