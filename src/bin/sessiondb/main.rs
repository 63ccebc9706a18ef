//! `sessiondb`: inspect and edit a sessiondb file. Thin over the library: parse, call, print.
//! Human-readable output by default, `--json` for scripts, errors on stderr with exit code 1.

mod output;
mod print;
mod progress;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use output::{Failure, Output};
use sessiondb::{
    parse_metadata, Error, ExistingFile, ImportOptions, NewMessage, PurgeRequest, Result, Role,
    SearchFilter, SessionQuery, SnapshotId, Store,
};

#[derive(Parser)]
#[command(
    name = "sessiondb",
    version,
    about = "Inspect and edit a sessiondb file"
)]
struct Cli {
    /// Database file [default: $SESSIONDB_PATH, else sessions.db in the user's data directory]
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,

    /// Accept a database that other users own or may write: for a file a group shares on
    /// purpose (see README)
    #[arg(long, global = true, env = "SESSIONDB_SHARED")]
    shared: bool,

    #[command(subcommand)]
    command: Command,
}

impl Command {
    /// Whether the command writes, and so may create the database file.
    fn writes(&self) -> bool {
        match self {
            Command::History { .. }
            | Command::Sessions { .. }
            | Command::Show { .. }
            | Command::Tree { .. }
            | Command::Stats { .. }
            | Command::Export { .. }
            | Command::Backup { .. }
            | Command::Search { .. }
            | Command::Check { .. }
            | Command::Branch(BranchCommand::List { .. } | BranchCommand::History { .. })
            | Command::Snapshot(SnapshotCommand::List { .. }) => false,
            Command::Prune { dry_run, .. } | Command::Import { dry_run, .. } => !dry_run,
            _ => true,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Append a message (creates the session if needed)
    Add {
        session: String,
        /// system, user, assistant or tool
        role: String,
        /// The message text; `-` or nothing reads standard input
        content: Option<String>,
        /// Metadata as a JSON object
        #[arg(long)]
        metadata: Option<String>,
        #[arg(long)]
        tool_call_id: Option<String>,
        /// Tool calls as a JSON array
        #[arg(long)]
        tool_calls: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        input_tokens: Option<u64>,
        #[arg(long)]
        output_tokens: Option<u64>,
        #[arg(long)]
        cost: Option<f64>,
        /// Idempotency key: adding a message whose key is stored writes nothing
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Append a JSON array of messages (shaped like `history --json`, each may have "key")
    /// in one transaction: all or none
    Append {
        session: String,
        /// JSON file; `-` or nothing reads standard input
        file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Remove the last message (the old history stays readable as a branch)
    Pop {
        session: String,
        #[arg(long)]
        json: bool,
    },
    /// Compact: the working history becomes the summary plus the messages after INDEX
    /// (the full history keeps every message)
    Compact {
        session: String,
        #[arg(long, value_name = "INDEX")]
        through: u64,
        #[arg(
            long,
            conflicts_with = "summary_file",
            required_unless_present = "summary_file"
        )]
        summary: Option<String>,
        #[arg(long, value_name = "FILE")]
        summary_file: Option<PathBuf>,
        /// Role of the summary message
        #[arg(long, default_value = "system")]
        role: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete sessions idle for longer than a window (forks of them keep their history)
    Expire {
        /// e.g. 90d, 12h
        #[arg(long, value_parser = parse_duration)]
        idle: Duration,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Erase sessions for real: every branch, snapshot, partial and index row, and the bytes
    /// in the file and its WAL
    Purge {
        #[arg(required_unless_present = "user")]
        sessions: Vec<String>,
        /// Every session of this user
        #[arg(long)]
        user: Option<String>,
        /// Erase forks of the purged sessions too (otherwise they keep a copy of what they
        /// inherit)
        #[arg(long)]
        with_forks: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print a session's history, oldest first
    History {
        session: String,
        /// Only the latest N messages
        #[arg(long)]
        limit: Option<usize>,
        /// Every message, compacted ones included (no summary)
        #[arg(long, conflicts_with = "limit")]
        full: bool,
        #[arg(long)]
        json: bool,
    },
    /// Replace a session's history with a JSON array shaped like `history --json`
    SetHistory {
        session: String,
        /// JSON file; `-` or nothing reads standard input
        file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List sessions, most recently updated first
    Sessions {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show one session's fields
    Show {
        session: String,
        #[arg(long)]
        json: bool,
    },
    /// Empty a session's history (the old one stays readable as a branch)
    Clear { session: String },
    /// Delete a session and its history (forks of it keep theirs)
    Delete { session: String },
    /// Fork a session into a new one that shares its history up to a message
    Fork {
        session: String,
        /// Keep messages 0..=INDEX (default: all)
        #[arg(long, value_name = "INDEX")]
        at: Option<u64>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Create, list, switch, rename, delete or read branches of a session
    #[command(subcommand)]
    Branch(BranchCommand),
    /// Create, list, restore or delete snapshots of a session
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Make messages 0..=INDEX the history (the replaced one stays as a branch)
    Revert {
        session: String,
        #[arg(long, value_name = "INDEX")]
        to: u64,
    },
    /// Draw a session, its branches and its forks as a tree
    Tree {
        session: String,
        #[arg(long)]
        json: bool,
        /// Graphviz instead: `sessiondb tree S --dot | dot -Tsvg > tree.svg`
        #[arg(long, conflicts_with = "json")]
        dot: bool,
    },
    /// Sizes, counts, the largest sessions and what prune would remove
    Stats {
        #[arg(long, default_value = "30d", value_parser = parse_duration)]
        older_than: Duration,
        #[arg(long)]
        json: bool,
    },
    /// Remove history that nothing can reach any more
    Prune {
        /// Keep superseded history younger than this (e.g. 30d, 12h, 15m, 0)
        #[arg(long, default_value = "30d", value_parser = parse_duration)]
        older_than: Duration,
        /// Report what would be removed, remove nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Export sessions (all when none are named) as sessiondb JSON
    Export {
        sessions: Vec<String>,
        /// Write here instead of standard output (never over the database, its -wal or
        /// -shm; an existing file only with --force)
        #[arg(long)]
        out: Option<PathBuf>,
        /// Every branch and snapshot, not just the current histories
        #[arg(long)]
        all_branches: bool,
        /// Replace the --out file if it exists
        #[arg(long, requires = "out")]
        force: bool,
    },
    /// Write a consistent copy of the database to OUT while other processes go on writing
    /// (never over the database, its -wal or -shm; an existing file only with --force)
    Backup {
        out: PathBuf,
        /// Replace OUT if it exists
        #[arg(long)]
        force: bool,
    },
    /// Replace the whole contents of the database with those of a backup, in one
    /// transaction: running processes see the old contents or the restored ones
    Restore {
        from: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Import sessions from sessiondb JSON, a PraisonAI session directory or an OpenAI
    /// Agents SQLiteSession database
    Import {
        #[arg(long, value_enum)]
        format: ImportFormat,
        path: PathBuf,
        /// Leave sessions that already exist as they are (reported as skipped)
        #[arg(long)]
        no_overwrite: bool,
        /// Report what would be imported, updated, unchanged or skipped; write nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over message content (FTS5 syntax: words, "phrases", prefix*, OR, NOT)
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        session: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check the file: SQLite integrity, foreign keys and sessiondb's invariants; exits
    /// non-zero if anything is wrong
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Checkpoint the WAL into the file and optionally VACUUM it
    Maintain {
        #[arg(long)]
        vacuum: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ImportFormat {
    Sessiondb,
    Praisonai,
    OpenaiAgents,
}

#[derive(Subcommand)]
enum BranchCommand {
    /// Create a branch from the current history (the head does not move)
    Create {
        session: String,
        name: String,
        /// Keep messages 0..=INDEX (default: all)
        #[arg(long, value_name = "INDEX")]
        at: Option<u64>,
    },
    /// List branches; the head is marked with *
    List {
        session: String,
        #[arg(long)]
        json: bool,
    },
    /// Make a branch the head
    Switch { session: String, name: String },
    Rename {
        session: String,
        name: String,
        new_name: String,
    },
    /// Delete a branch (kept as superseded until prune)
    Delete { session: String, name: String },
    /// Print a branch's history without switching to it
    History {
        session: String,
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Pin the current history; prints the snapshot id
    Create {
        session: String,
        #[arg(long)]
        label: Option<String>,
        /// Metadata as a JSON object
        #[arg(long)]
        metadata: Option<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        session: String,
        #[arg(long)]
        json: bool,
    },
    /// Make a snapshot's history the current one
    Restore {
        session: String,
        id: SnapshotId,
    },
    Delete {
        session: String,
        id: SnapshotId,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = Output::stdout();
    match run(cli, &mut out).and_then(|code| out.flush().map(|()| code)) {
        Ok(code) => code,
        Err(failure) => {
            // What was printed before the failure goes out first; a closed pipe stays quiet.
            let _ = out.flush();
            failure.exit()
        }
    }
}

fn run(cli: Cli, out: &mut Output) -> Result<ExitCode, Failure> {
    let path = match cli.db.or_else(sessiondb::default_path) {
        Some(path) => path,
        None => {
            return Err(Error::InvalidInput(
                "no database path: pass --db PATH or set SESSIONDB_PATH".into(),
            )
            .into())
        }
    };
    // Only a command that writes may create the file: a typo in --db must not leave an
    // empty database behind.
    let store = Store::builder(&path)
        .create(cli.command.writes())
        .shared(cli.shared)
        .open()?;
    match cli.command {
        Command::Add {
            session,
            role,
            content,
            metadata,
            tool_call_id,
            tool_calls,
            model,
            input_tokens,
            output_tokens,
            cost,
            key,
            json,
        } => {
            let role: Role = role.parse()?;
            let content = match content.as_deref() {
                None | Some("-") => read_stdin()?,
                Some(text) => text.to_string(),
            };
            let mut message = NewMessage::new(role, content);
            message.metadata = metadata.as_deref().map(parse_metadata).transpose()?;
            message.tool_calls = tool_calls
                .as_deref()
                .map(NewMessage::parse_tool_calls)
                .transpose()?;
            message.tool_call_id = tool_call_id;
            message.model = model;
            message.input_tokens = input_tokens;
            message.output_tokens = output_tokens;
            message.cost = cost;
            message.key = key;
            let stored = store.add_message(&session, message)?;
            if json {
                print::json(out, &stored)?;
            } else {
                writeln!(
                    out,
                    "{session}: message {} ({})",
                    stored.index,
                    stored.role()
                )?;
            }
        }
        Command::Append {
            session,
            file,
            json,
        } => {
            let messages = read_messages(file)?;
            let added = store.add_messages(&session, &messages)?;
            if json {
                print::json(
                    out,
                    &serde_json::json!({
                        "already_stored": added.already_stored,
                        "version": added.version,
                        "messages": added.messages,
                    }),
                )?;
            } else {
                let (first, last) = match (added.messages.first(), added.messages.last()) {
                    (Some(f), Some(l)) => (f.index, l.index),
                    _ => (0, 0),
                };
                writeln!(
                    out,
                    "{session}: messages {first}..={last} {}",
                    if added.already_stored {
                        "were already stored; nothing written"
                    } else {
                        "stored"
                    }
                )?;
            }
        }
        Command::Pop { session, json } => {
            let popped = store.pop_message(&session)?;
            match (popped, json) {
                (popped, true) => print::json(out, &popped)?,
                (Some(m), false) => {
                    writeln!(out, "{session}: removed message {} ({})", m.index, m.role())?;
                    print::history(out, std::slice::from_ref(&m))?;
                }
                (None, false) => writeln!(out, "{session}: empty; nothing removed")?,
            }
        }
        Command::Compact {
            session,
            through,
            summary,
            summary_file,
            role,
            json,
        } => {
            let text = match (summary, summary_file) {
                (Some(text), _) => text,
                (None, Some(path)) => {
                    std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })?
                }
                (None, None) => {
                    return Err(
                        Error::InvalidInput("pass --summary or --summary-file".into()).into(),
                    )
                }
            };
            let compaction =
                store.compact(&session, NewMessage::new(role.parse()?, text), through)?;
            if json {
                print::json(out, &compaction)?;
            } else {
                writeln!(
                    out,
                    "{session}: messages 0..={through} compacted; the working history starts \
                     with the summary"
                )?;
            }
        }
        Command::Expire {
            idle,
            dry_run,
            json,
        } => {
            let report = store.expire_sessions(idle, dry_run)?;
            if json {
                print::json(out, &report)?;
            } else {
                for id in &report.sessions {
                    writeln!(out, "{id}")?;
                }
                writeln!(
                    out,
                    "{} {} sessions, {} messages",
                    if dry_run { "would expire" } else { "expired" },
                    report.sessions.len(),
                    report.messages
                )?;
            }
        }
        Command::Purge {
            sessions,
            user,
            with_forks,
            json,
        } => {
            let report = store.purge(&PurgeRequest {
                sessions,
                user_id: user,
                with_forks,
            })?;
            if json {
                print::json(out, &report)?;
            } else {
                for id in &report.purged {
                    writeln!(out, "purged {id}")?;
                }
                for id in &report.forks_kept {
                    writeln!(
                        out,
                        "kept fork {id} (its inherited messages were copied into it)"
                    )?;
                }
                writeln!(
                    out,
                    "erased {} branches, {} messages, {} snapshots{}",
                    report.branches,
                    report.messages,
                    report.snapshots,
                    if report.wal_truncated {
                        ""
                    } else {
                        "; a reader kept the WAL from being truncated: run `maintain` later"
                    }
                )?;
            }
        }
        Command::History {
            session,
            limit,
            full,
            json,
        } => {
            let history = if full {
                store.full_history(&session)?
            } else {
                store.chat_history(&session, limit)?
            };
            if json {
                print::json(out, &*history)?;
            } else {
                print::history(out, &history)?;
            }
        }
        Command::SetHistory {
            session,
            file,
            json,
        } => {
            let messages = read_messages(file)?;
            let change = store.set_chat_history(&session, &messages)?;
            if json {
                print::json(
                    out,
                    &serde_json::json!({
                        "version": change.version,
                        "kept": change.kept,
                        "written": change.written,
                        "superseded": change.superseded,
                    }),
                )?;
            } else {
                writeln!(
                    out,
                    "{session}: {} messages kept, {} written{}",
                    change.kept,
                    change.written,
                    if change.superseded {
                        "; the previous history is kept as a branch"
                    } else {
                        ""
                    }
                )?;
            }
        }
        Command::Sessions {
            agent,
            user,
            limit,
            json,
        } => {
            let page = store.list_sessions(&SessionQuery {
                agent_name: agent,
                user_id: user,
                limit,
                after: None,
            })?;
            if json {
                print::json(out, &page.sessions)?;
            } else {
                print::sessions(out, &page.sessions)?;
            }
        }
        Command::Show { session, json } => {
            let session = store.session(&session)?;
            if json {
                print::json(out, &session)?;
            } else {
                print::session(out, &session)?;
            }
        }
        Command::Clear { session } => {
            store.clear(&session)?;
            writeln!(out, "{session}: cleared")?;
        }
        Command::Delete { session } => {
            store.delete_session(&session)?;
            writeln!(out, "{session}: deleted")?;
        }
        Command::Fork {
            session,
            at,
            title,
            json,
        } => {
            let fork = store.fork_session(&session, at, title.as_deref())?;
            if json {
                print::json(out, &fork)?;
            } else {
                writeln!(out, "{}", fork.id)?;
            }
        }
        Command::Branch(command) => branch(out, &store, command)?,
        Command::Snapshot(command) => snapshot(out, &store, command)?,
        Command::Revert { session, to } => {
            let s = store.revert_to_message(&session, to)?;
            writeln!(
                out,
                "{session}: reverted to message {to}; {} messages",
                s.message_count
            )?;
        }
        Command::Tree { session, json, dot } => {
            let tree = store.session_tree(&session)?;
            if json {
                print::json(out, &tree)?;
            } else if dot {
                print::dot(out, &store, &tree)?;
            } else {
                print::tree(out, &store, &tree)?;
            }
        }
        Command::Stats { older_than, json } => {
            let stats = store.stats(older_than)?;
            if json {
                print::json(out, &stats)?;
            } else {
                print::stats(out, &stats)?;
            }
        }
        Command::Prune {
            older_than,
            dry_run,
            json,
        } => {
            let spinner = progress::spinner("pruning");
            let report = store.prune(older_than, dry_run)?;
            drop(spinner);
            if json {
                print::json(out, &report)?;
            } else {
                writeln!(
                    out,
                    "{} {} branches, {} messages, {} bytes",
                    if dry_run { "would remove" } else { "removed" },
                    report.branches,
                    report.messages,
                    report.bytes
                )?;
            }
        }
        Command::Export {
            sessions,
            out: Some(path),
            all_branches,
            force,
        } => {
            let mut bar = progress::bar("exporting");
            store.export_to(&path, &sessions, all_branches, existing(force), &mut bar)?;
        }
        Command::Export {
            sessions,
            out: None,
            all_branches,
            force: _,
        } => {
            let file = store.export(&sessions, all_branches, &mut progress::bar("exporting"))?;
            print::json(out, &file)?;
        }
        Command::Backup { out: path, force } => {
            let spinner = progress::spinner("backing up");
            let bytes = store.backup(&path, existing(force))?;
            drop(spinner);
            writeln!(out, "{}: {bytes} bytes", path.display())?;
        }
        Command::Restore { from, json } => {
            let spinner = progress::spinner("restoring");
            let report = store.restore(&from)?;
            drop(spinner);
            if json {
                print::json(out, &report)?;
            } else {
                writeln!(
                    out,
                    "restored {} sessions, {} branches, {} messages, {} snapshots from {}",
                    report.sessions,
                    report.branches,
                    report.messages,
                    report.snapshots,
                    from.display()
                )?;
            }
        }
        Command::Import {
            format,
            path,
            no_overwrite,
            dry_run,
            json,
        } => {
            let mut bar = progress::messages("importing");
            let options = ImportOptions {
                overwrite: !no_overwrite,
                dry_run,
                ..ImportOptions::default()
            };
            let report = match format {
                ImportFormat::Sessiondb => store.import_export_file(&path, &options, &mut bar)?,
                ImportFormat::Praisonai => store.import_praisonai(&path, &options, &mut bar)?,
                ImportFormat::OpenaiAgents => {
                    store.import_openai_agents(&path, &options, &mut bar)?
                }
            };
            drop(bar);
            if json {
                print::json(out, &report)?;
            } else {
                writeln!(
                    out,
                    "{}{} imported, {} updated, {} unchanged, {} skipped",
                    if dry_run {
                        "dry run, nothing written: "
                    } else {
                        ""
                    },
                    report.imported,
                    report.updated,
                    report.unchanged,
                    report.skipped.len()
                )?;
                for id in &report.updated_ids {
                    writeln!(out, "updated {id}")?;
                }
                for (source, reason) in &report.skipped {
                    output::warn(format_args!("skipped {source}: {reason}\n"));
                }
            }
        }
        Command::Search {
            query,
            limit,
            session,
            agent,
            user,
            role,
            json,
        } => {
            let filter = SearchFilter {
                session,
                agent_name: agent,
                user_id: user,
                role: role.as_deref().map(str::parse).transpose()?,
            };
            let hits = store.search(&query, limit, &filter)?;
            if json {
                print::json(out, &hits)?;
            } else {
                for hit in &hits {
                    writeln!(
                        out,
                        "{} [{}] {}: {}",
                        hit.session_id, hit.index, hit.role, hit.snippet
                    )?;
                }
            }
        }
        Command::Check { json } => {
            let report = store.check()?;
            if json {
                print::json(out, &report)?;
            } else {
                writeln!(
                    out,
                    "{} sessions, {} branches, {} messages, {} snapshots",
                    report.sessions, report.branches, report.messages, report.snapshots
                )?;
                for problem in &report.problems {
                    writeln!(out, "problem: {problem}")?;
                }
                writeln!(out, "{}", if report.is_ok() { "ok" } else { "FAILED" })?;
            }
            if !report.is_ok() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Maintain { vacuum } => {
            let report = store.maintain(vacuum)?;
            writeln!(
                out,
                "{} -> {} bytes{}",
                report.bytes_before,
                report.bytes_after,
                if report.wal_busy {
                    " (a reader kept part of the WAL; run again later)"
                } else {
                    ""
                }
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn branch(out: &mut Output, store: &Store, command: BranchCommand) -> Result<(), Failure> {
    match command {
        BranchCommand::Create { session, name, at } => {
            let b = store.create_branch(&session, &name, at)?;
            writeln!(
                out,
                "{session}: branch {} created with {} messages",
                b.name, b.length
            )?;
        }
        BranchCommand::List { session, json } => {
            let branches = store.branches(&session)?;
            if json {
                print::json(out, &branches)?;
            } else {
                print::branches(out, &branches)?;
            }
        }
        BranchCommand::Switch { session, name } => {
            let s = store.switch_branch(&session, &name)?;
            writeln!(
                out,
                "{session}: on branch {name}; {} messages",
                s.message_count
            )?;
        }
        BranchCommand::Rename {
            session,
            name,
            new_name,
        } => {
            store.rename_branch(&session, &name, &new_name)?;
            writeln!(out, "{session}: branch {name} renamed to {new_name}")?;
        }
        BranchCommand::Delete { session, name } => {
            store.delete_branch(&session, &name)?;
            writeln!(out, "{session}: branch {name} deleted (kept until prune)")?;
        }
        BranchCommand::History {
            session,
            name,
            json,
        } => {
            let history = store.branch_history(&session, &name)?;
            if json {
                print::json(out, &*history)?;
            } else {
                print::history(out, &history)?;
            }
        }
    }
    Ok(())
}

fn snapshot(out: &mut Output, store: &Store, command: SnapshotCommand) -> Result<(), Failure> {
    match command {
        SnapshotCommand::Create {
            session,
            label,
            metadata,
            json,
        } => {
            let metadata = metadata.as_deref().map(parse_metadata).transpose()?;
            let snap = store.create_snapshot(&session, label.as_deref(), metadata)?;
            if json {
                print::json(out, &snap)?;
            } else {
                writeln!(out, "{}", snap.id)?;
            }
        }
        SnapshotCommand::List { session, json } => {
            let snaps = store.snapshots(&session)?;
            if json {
                print::json(out, &snaps)?;
            } else {
                print::snapshots(out, &snaps)?;
            }
        }
        SnapshotCommand::Restore { session, id } => {
            let s = store.restore_snapshot(&session, id)?;
            writeln!(
                out,
                "{session}: restored snapshot {id}; {} messages",
                s.message_count
            )?;
        }
        SnapshotCommand::Delete { session, id } => {
            store.delete_snapshot(&session, id)?;
            writeln!(out, "{session}: snapshot {id} deleted")?;
        }
    }
    Ok(())
}

fn existing(force: bool) -> ExistingFile {
    if force {
        ExistingFile::Replace
    } else {
        ExistingFile::Refuse
    }
}

/// `30d`, `12h`, `15m`, `45s` or a plain number of seconds.
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30d, 12h, 15m or 0"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use s, m, h, d or w"
            ))
        }
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// A JSON array of messages from a file, or standard input for `-` or nothing.
fn read_messages(file: Option<PathBuf>) -> Result<Vec<NewMessage>> {
    let text = match file {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })?
        }
        _ => read_stdin()?,
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::InvalidInput(format!(
            "expected a JSON array of messages (role, content, …): {e}"
        ))
    })
}

fn read_stdin() -> Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|source| Error::Io {
            path: PathBuf::from("<stdin>"),
            source,
        })?;
    Ok(text)
}
