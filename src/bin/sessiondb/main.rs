//! `sessiondb`: inspect and edit a sessiondb file. Thin over the library: parse, call, print.
//! Human-readable output by default, `--json` for scripts, errors on stderr with exit code 1.

mod follow;
mod output;
mod print;
mod progress;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use output::{Failure, Output};
use sessiondb::{
    parse_metadata, Error, ExistingFile, ImportOptions, NewMessage, PurgeRequest, Result, Role,
    SearchFilter, SessionCursor, SessionQuery, SessionUpdate, SnapshotId, Store,
};

#[derive(Parser)]
#[command(
    name = "sessiondb",
    version,
    about = "Inspect and edit a sessiondb file"
)]
struct Cli {
    /// Database file, or a postgres:// URL (a build with the `postgres` feature) [default:
    /// $SESSIONDB_PATH, else sessions.db in the user's data directory]
    #[arg(long, global = true, value_name = "PATH|URL")]
    db: Option<PathBuf>,

    /// Accept a database that other users own or may write: for a file a group shares on
    /// purpose (see README)
    #[arg(long, global = true, env = "SESSIONDB_SHARED")]
    shared: bool,

    /// How long a write waits for another process's write lock before failing as busy
    /// (e.g. 500ms, 30s) [default: 10s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    busy_timeout: Option<Duration>,

    /// Open the file read-only: any command that writes fails, and nothing is created
    #[arg(long, global = true)]
    read_only: bool,

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
            | Command::Branch(
                BranchCommand::List { .. }
                | BranchCommand::History { .. }
                | BranchCommand::Diff { .. },
            )
            | Command::Snapshot(SnapshotCommand::List { .. }) => false,
            Command::Prune { dry_run, .. }
            | Command::Import { dry_run, .. }
            | Command::Expire { dry_run, .. } => !dry_run,
            _ => true,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Append a message (creates the session if needed)
    Add {
        /// The session's id
        session: String,
        /// system, user, assistant or tool (any case)
        role: String,
        /// The message text; `-` or nothing reads standard input (one trailing newline
        /// dropped)
        content: Option<String>,
        /// Metadata as a JSON object
        #[arg(long)]
        metadata: Option<String>,
        /// The tool call this `tool` message answers
        #[arg(long)]
        tool_call_id: Option<String>,
        /// Tool calls as a JSON array of {"id", "type", "function": {"name", "arguments"}}
        #[arg(long)]
        tool_calls: Option<String>,
        /// The model that wrote the message
        #[arg(long)]
        model: Option<String>,
        /// Input (prompt) tokens, added to the session's totals
        #[arg(long)]
        input_tokens: Option<u64>,
        /// Output (completion) tokens, added to the session's totals
        #[arg(long)]
        output_tokens: Option<u64>,
        /// Cost of the message, added to the session's totals
        #[arg(long)]
        cost: Option<f64>,
        /// Idempotency key: adding a message whose key is stored writes nothing
        #[arg(long)]
        key: Option<String>,
        /// Keep the trailing newline of text read from standard input
        #[arg(long)]
        keep_newline: bool,
        /// Print the stored message as JSON
        #[arg(long)]
        json: bool,
    },
    /// Append a JSON array of messages (shaped like `history --json`, each may have "key")
    /// in one transaction: all or none
    Append {
        /// The session's id
        session: String,
        /// JSON file; `-` or nothing reads standard input
        file: Option<PathBuf>,
        /// Print what was stored and what was already there as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove the last message (the old history stays readable as a branch)
    Pop {
        /// The session's id
        session: String,
        /// Print the removed message as JSON
        #[arg(long)]
        json: bool,
    },
    /// Compact: the working history becomes the summary plus the messages after INDEX
    /// (the full history keeps every message)
    Compact {
        /// The session's id
        session: String,
        /// The last message the summary replaces
        #[arg(long, value_name = "INDEX")]
        through: u64,
        /// The summary's text
        #[arg(
            long,
            conflicts_with = "summary_file",
            required_unless_present = "summary_file"
        )]
        summary: Option<String>,
        /// Read the summary's text from this file
        #[arg(long, value_name = "FILE")]
        summary_file: Option<PathBuf>,
        /// Role of the summary message
        #[arg(long, default_value = "system")]
        role: String,
        /// Print the compaction as JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete sessions idle for longer than a window (forks of them keep their history)
    Expire {
        /// e.g. 90d, 12h
        #[arg(long, value_parser = parse_duration)]
        idle: Duration,
        /// Report what would be deleted, delete nothing
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Erase sessions for real: every branch, snapshot, partial and index row, and the bytes
    /// in the file and its WAL
    Purge {
        /// Sessions to erase
        #[arg(required_unless_present = "user")]
        sessions: Vec<String>,
        /// Every session of this user
        #[arg(long)]
        user: Option<String>,
        /// Erase forks of the purged sessions too (otherwise they keep a copy of what they
        /// inherit)
        #[arg(long)]
        with_forks: bool,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a session's history, oldest first
    History {
        /// The session's id
        session: String,
        /// Only the latest N messages (leading tool results whose call is cut off are left
        /// out, with a note on stderr)
        #[arg(long)]
        limit: Option<usize>,
        /// Every message, compacted ones included (no summary)
        #[arg(long, conflicts_with = "limit")]
        full: bool,
        /// The messages as a JSON array, the shape `set-history` reads
        #[arg(long)]
        json: bool,
        /// Keep printing new messages, and streamed replies chunk by chunk, until interrupted
        #[arg(long, conflicts_with = "json")]
        follow: bool,
    },
    /// Replace a session's history with a JSON array shaped like `history --json`
    SetHistory {
        /// The session's id
        session: String,
        /// JSON file; `-` or nothing reads standard input
        file: Option<PathBuf>,
        /// Print what changed as JSON
        #[arg(long)]
        json: bool,
    },
    /// List sessions, most recently updated first, a page at a time
    Sessions {
        /// Only sessions of this agent name
        #[arg(long)]
        agent: Option<String>,
        /// Only sessions of this user id
        #[arg(long)]
        user: Option<String>,
        /// Only sessions whose title contains this text (ASCII case-insensitive)
        #[arg(long)]
        title: Option<String>,
        /// Only sessions whose metadata has KEY with VALUE (JSON if it parses, else a
        /// string); repeat for more
        #[arg(long, value_name = "KEY=VALUE")]
        metadata: Vec<String>,
        /// Only sessions created at or after this time (2025-01-31 or RFC 3339)
        #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
        created_since: Option<DateTime<Utc>>,
        /// Only sessions created before this time
        #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
        created_before: Option<DateTime<Utc>>,
        /// Only sessions updated at or after this time
        #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
        updated_since: Option<DateTime<Utc>>,
        /// Only sessions updated before this time
        #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
        updated_before: Option<DateTime<Utc>>,
        /// At most this many (1 or more)
        #[arg(long, default_value_t = 50, value_parser = positive)]
        limit: usize,
        /// Continue after this cursor (printed when a page is cut short)
        #[arg(long, value_name = "CURSOR")]
        after: Option<SessionCursor>,
        /// {"sessions": [...], "next": CURSOR or null, "more": N}
        #[arg(long)]
        json: bool,
    },
    /// Show one session's fields
    Show {
        /// The session's id
        session: String,
        /// Print the session as JSON
        #[arg(long)]
        json: bool,
    },
    /// Set a session's title, agent name, agent id, user id or metadata (an empty value
    /// clears a field)
    Edit {
        /// The session's id
        session: String,
        #[arg(long)]
        /// The title
        title: Option<String>,
        /// The agent's name
        #[arg(long)]
        agent_name: Option<String>,
        /// The agent's id
        #[arg(long)]
        agent_id: Option<String>,
        /// The user's id
        #[arg(long)]
        user: Option<String>,
        /// A JSON object merged into the metadata (a null value removes its key)
        #[arg(long)]
        metadata: Option<String>,
        /// Print the updated session as JSON
        #[arg(long)]
        json: bool,
    },
    /// Empty a session's history (the old one stays readable as a branch; an empty history
    /// is left as it is)
    Clear {
        /// The session's id
        session: String,
        /// Print the session as JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete a session and its history (forks of it keep theirs)
    Delete {
        /// The session's id
        session: String,
        /// Print {"deleted": ID} as JSON
        #[arg(long)]
        json: bool,
    },
    /// Fork a session into a new one that shares its history up to a message
    Fork {
        /// The session's id
        session: String,
        /// Keep messages 0..=INDEX (default: all)
        #[arg(long, value_name = "INDEX")]
        at: Option<u64>,
        /// Title of the new session
        #[arg(long)]
        title: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Create, list, switch, rename, delete, read or compare branches of a session
    #[command(subcommand, after_help = SUPERSEDED_NAMES)]
    Branch(BranchCommand),
    /// Create, list, restore or delete snapshots of a session
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Make messages 0..=INDEX the history (the replaced one stays as a branch; reverting
    /// to the last message changes nothing)
    #[command(after_help = SUPERSEDED_NAMES)]
    Revert {
        /// The session's id
        session: String,
        /// Make messages 0..=INDEX the history
        #[arg(long, value_name = "INDEX")]
        to: u64,
        /// Print the session as JSON
        #[arg(long)]
        json: bool,
    },
    /// Draw a session, its branches and its forks as a tree
    Tree {
        /// The session's id
        session: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
        /// Graphviz instead: `sessiondb tree S --dot | dot -Tsvg > tree.svg`
        #[arg(long, conflicts_with = "json")]
        dot: bool,
    },
    /// Sizes, counts, the largest sessions and what prune would remove
    Stats {
        /// Count superseded history older than this as prunable (e.g. 30d, 12h, 0)
        #[arg(long, default_value = "30d", value_parser = parse_duration)]
        older_than: Duration,
        /// Print the result as JSON
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
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Export sessions (all when none are named) as sessiondb JSON
    Export {
        /// Ids of the sessions to export [default: every session]
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
        /// Where to write the copy
        out: PathBuf,
        /// Replace OUT if it exists
        #[arg(long)]
        force: bool,
        /// Print {"path", "bytes"} as JSON
        #[arg(long)]
        json: bool,
    },
    /// Replace the whole contents of the database with those of a backup, in one
    /// transaction: running processes see the old contents or the restored ones
    Restore {
        /// The backup (a sessiondb database file) to restore from
        from: PathBuf,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Import sessions from sessiondb JSON, a PraisonAI session directory or an OpenAI
    /// Agents SQLiteSession database
    Import {
        /// The source's format [default: detected: a directory is praisonai, an SQLite file
        /// openai-agents, a JSON export sessiondb]
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
        /// The export file, session directory or database to import
        path: PathBuf,
        /// Leave sessions that already exist as they are (reported as skipped)
        #[arg(long)]
        no_overwrite: bool,
        /// Report what would be imported, updated, unchanged or skipped; write nothing
        #[arg(long)]
        dry_run: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over message text: messages holding every word, best first
    Search {
        /// Plain words (punctuation is fine: `what?`, `don't`, `c++`); with --fts, an FTS5
        /// query
        query: String,
        /// Read QUERY as FTS5 syntax: "phrases", prefix*, AND, OR, NOT, NEAR
        #[arg(long)]
        fts: bool,
        /// At most this many hits
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only this session's current history
        #[arg(long)]
        session: Option<String>,
        /// Only sessions of this agent name
        #[arg(long)]
        agent: Option<String>,
        /// Only sessions of this user id
        #[arg(long)]
        user: Option<String>,
        /// Only messages of this role
        #[arg(long)]
        role: Option<String>,
        /// Print the hits as JSON
        #[arg(long)]
        json: bool,
    },
    /// Check the file: SQLite integrity, foreign keys and sessiondb's invariants; exits
    /// non-zero if anything is wrong
    Check {
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Checkpoint the WAL into the file and optionally VACUUM it
    Maintain {
        /// Also rebuild the file without free pages
        #[arg(long)]
        vacuum: bool,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `sessiondb completions bash > ~/.local/share/bash-completion/completions/sessiondb`
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ImportFormat {
    Sessiondb,
    Praisonai,
    OpenaiAgents,
}

/// What `name@N` means, in the help of the commands that show or take such names.
const SUPERSEDED_NAMES: &str = "Branch names: a name with @N (main@7) is a superseded head: the \
history that was current before the change that made version N of the session (clear, revert, \
set-history, pop, compact, snapshot restore, branch delete). It stays readable and can be \
switched back to (`branch switch SESSION main@7`) until `prune` removes it after the \
retention window.";

#[derive(Subcommand)]
enum BranchCommand {
    /// Create a branch from the current history (the head does not move)
    Create {
        /// The session's id
        session: String,
        /// The new branch's name (no '@': it marks superseded heads)
        name: String,
        /// Keep messages 0..=INDEX (default: all)
        #[arg(long, value_name = "INDEX")]
        at: Option<u64>,
        /// Print the branch as JSON
        #[arg(long)]
        json: bool,
    },
    /// List branches; the head is marked with *
    #[command(after_help = SUPERSEDED_NAMES)]
    List {
        /// The session's id
        session: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Make a branch the head (a superseded one too, which brings it back)
    #[command(after_help = SUPERSEDED_NAMES)]
    Switch {
        /// The session's id
        session: String,
        /// The branch to make the head
        name: String,
        /// Print the session as JSON
        #[arg(long)]
        json: bool,
    },
    /// Rename a branch
    Rename {
        /// The session's id
        session: String,
        /// The branch's current name
        name: String,
        /// Its new name (no '@')
        new_name: String,
        /// Print the branch as JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete a branch: it becomes NAME@N, kept as superseded until prune (the head cannot
    /// be deleted: switch to another branch first)
    #[command(after_help = SUPERSEDED_NAMES)]
    Delete {
        /// The session's id
        session: String,
        /// The branch to delete
        name: String,
        /// Print the deleted branch (under its new name) as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a branch's history without switching to it
    #[command(after_help = SUPERSEDED_NAMES)]
    History {
        /// The session's id
        session: String,
        /// The branch to read
        name: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show where two branches diverge: the messages they share, and each one's after that
    #[command(after_help = SUPERSEDED_NAMES)]
    Diff {
        /// The session's id
        session: String,
        /// One branch
        a: String,
        /// The other branch
        b: String,
        /// {"session_id", "common": N, "a": {"branch", "length", "messages"}, "b": {...}}
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Pin the current history; prints the snapshot id
    Create {
        /// The session's id
        session: String,
        /// A label for the snapshot
        #[arg(long)]
        label: Option<String>,
        /// Metadata as a JSON object
        #[arg(long)]
        metadata: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// List a session's snapshots, oldest first
    List {
        /// The session's id
        session: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Make a snapshot's history the current one
    Restore {
        /// The session's id
        session: String,
        /// The snapshot's id (see `snapshot list`)
        id: SnapshotId,
        /// Print the session as JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete a snapshot (the history it pinned stays until nothing else reaches it)
    Delete {
        /// The session's id
        session: String,
        /// The snapshot's id
        id: SnapshotId,
        /// Print {"session_id", "deleted": ID} as JSON
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        // Needs no database: print and stop before anything is opened.
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "sessiondb", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
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
                "no database path: pass --db PATH (or a postgres:// URL) or set SESSIONDB_PATH"
                    .into(),
            )
            .into())
        }
    };
    // Only a command that writes may create the file: a typo in --db must not leave an
    // empty database behind.
    let mut builder = Store::builder(&path)
        .read_only(cli.read_only)
        .create(cli.command.writes())
        .shared(cli.shared);
    if let Some(timeout) = cli.busy_timeout {
        builder = builder.busy_timeout(timeout);
    }
    let store = builder.open()?;
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
            keep_newline,
            json,
        } => {
            let role: Role = role.parse()?;
            let content = match content.as_deref() {
                None | Some("-") => {
                    let text = read_stdin(Some("message text"))?;
                    if keep_newline {
                        text
                    } else {
                        without_final_newline(text)
                    }
                }
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
                    // A PostgreSQL store has no WAL file of its own.
                    if report.wal_truncated || store.is_postgres() {
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
            follow: true,
            ..
        } => follow::follow(out, &store, &session, limit)?,
        Command::History {
            session,
            limit,
            full,
            json,
            follow: false,
        } => {
            let history = if full {
                store.full_history(&session)?
            } else {
                store.chat_history(&session, limit)?
            };
            let trimmed = history.trimmed_tool_results();
            if trimmed > 0 && json {
                // On stderr, so `history --json` stays the array `set-history` reads; a script
                // reads this line as JSON too (docs/design.md says why).
                output::warn(format_args!(
                    "{}\n",
                    serde_json::json!({ "trimmed_tool_results": trimmed })
                ));
            } else if trimmed > 0 {
                output::warn(format_args!(
                    "sessiondb: left out {trimmed} tool result(s) at the start: the call they answer is before the last {} messages\n",
                    limit.unwrap_or(0)
                ));
            }
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
            title,
            metadata,
            created_since,
            created_before,
            updated_since,
            updated_before,
            limit,
            after,
            json,
        } => {
            let mut query = SessionQuery {
                agent_name: agent,
                user_id: user,
                title_contains: title,
                metadata: metadata
                    .iter()
                    .map(|pair| metadata_filter(pair))
                    .collect::<Result<_>>()?,
                created_since,
                created_before,
                updated_since,
                updated_before,
                limit,
                after,
            };
            let page = store.list_sessions(&query)?;
            let more = match &page.next {
                Some(next) => {
                    query.after = Some(next.clone());
                    store.count_sessions(&query)?
                }
                None => 0,
            };
            if json {
                print::json(
                    out,
                    &serde_json::json!({
                        "sessions": page.sessions,
                        "next": page.next.as_ref().map(ToString::to_string),
                        "more": more,
                    }),
                )?;
            } else {
                print::sessions(out, &page.sessions)?;
                if let Some(next) = &page.next {
                    output::warn(format_args!(
                        "{more} more: sessiondb sessions --after '{next}' (with the same filters)\n"
                    ));
                }
            }
        }
        Command::Edit {
            session,
            title,
            agent_name,
            agent_id,
            user,
            metadata,
            json,
        } => {
            // An empty value clears the field.
            let field = |v: Option<String>| v.map(|v| Some(v).filter(|v| !v.is_empty()));
            let update = SessionUpdate {
                title: field(title),
                agent_name: field(agent_name),
                agent_id: field(agent_id),
                user_id: field(user),
                metadata: metadata.as_deref().map(parse_metadata).transpose()?,
            };
            let s = store.update_session(&session, &update)?;
            if json {
                print::json(out, &s)?;
            } else {
                print::session(out, &s)?;
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
        Command::Clear { session, json } => {
            // Only to tell the user whether anything happened: clear itself decides inside
            // its transaction and writes nothing for an empty history.
            let before = store.version(&session)?;
            let s = store.clear(&session)?;
            if json {
                print::json(out, &s)?;
            } else if s.version == before {
                writeln!(out, "{session}: already empty; nothing written")?;
            } else {
                writeln!(
                    out,
                    "{session}: cleared; the previous history is kept as branch {}",
                    superseded_head(&s)
                )?;
            }
        }
        Command::Delete { session, json } => {
            store.delete_session(&session)?;
            if json {
                print::json(out, &serde_json::json!({ "deleted": session }))?;
            } else {
                writeln!(out, "{session}: deleted")?;
            }
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
        Command::Revert { session, to, json } => {
            // As for clear: only to say whether the revert was a no-op.
            let before = store.version(&session)?;
            let s = store.revert_to_message(&session, to)?;
            if json {
                print::json(out, &s)?;
            } else if s.version == before {
                writeln!(
                    out,
                    "{session}: message {to} is already the last; nothing written"
                )?;
            } else {
                writeln!(
                    out,
                    "{session}: reverted to message {to}; {} messages; the previous history is \
                     kept as branch {}",
                    s.message_count,
                    superseded_head(&s)
                )?;
            }
        }
        Command::Tree { session, json, dot } => {
            let tree = store.session_tree(&session)?;
            if json {
                print::json(out, &tree)?;
            } else if dot {
                print::dot(out, &tree)?;
            } else {
                print::tree(out, &tree)?;
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
        Command::Backup {
            out: path,
            force,
            json,
        } => {
            let spinner = progress::spinner("backing up");
            let bytes = store.backup(&path, existing(force))?;
            drop(spinner);
            if json {
                print::json(
                    out,
                    &serde_json::json!({ "path": path.display().to_string(), "bytes": bytes }),
                )?;
            } else {
                writeln!(out, "{}: {bytes} bytes", path.display())?;
            }
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
            let format = match format {
                Some(format) => format,
                None => detect_format(&path)?,
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
                for skip in &report.skipped {
                    output::warn(format_args!("skipped {}: {}\n", skip.source, skip.reason));
                }
            }
            if !report.skipped.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Search {
            query,
            fts,
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
            let query = if fts {
                query
            } else {
                sessiondb::words_query(&query)?
            };
            let hits = store.search(&query, limit, &filter)?;
            if json {
                print::json(out, &hits)?;
            } else {
                print::hits(out, &hits)?;
            }
        }
        Command::Check { json } => {
            let report = store.check()?;
            if json {
                print::json(
                    out,
                    &serde_json::json!({
                        "ok": report.is_ok(),
                        "sessions": report.sessions,
                        "branches": report.branches,
                        "messages": report.messages,
                        "snapshots": report.snapshots,
                        "problems": report.problems,
                    }),
                )?;
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
        Command::Maintain { vacuum, json } => {
            let report = store.maintain(vacuum)?;
            if json {
                print::json(out, &report)?;
                return Ok(ExitCode::SUCCESS);
            }
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
        // Handled in main: it opens no database.
        Command::Completions { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn branch(out: &mut Output, store: &Store, command: BranchCommand) -> Result<(), Failure> {
    match command {
        BranchCommand::Create {
            session,
            name,
            at,
            json,
        } => {
            let b = store.create_branch(&session, &name, at)?;
            if json {
                print::json(out, &b)?;
            } else {
                writeln!(
                    out,
                    "{session}: branch {} created with {} messages",
                    b.name, b.length
                )?;
            }
        }
        BranchCommand::List { session, json } => {
            let branches = store.branches(&session)?;
            if json {
                print::json(out, &branches)?;
            } else {
                print::branches(out, &branches)?;
            }
        }
        BranchCommand::Switch {
            session,
            name,
            json,
        } => {
            let s = store.switch_branch(&session, &name)?;
            if json {
                print::json(out, &s)?;
            } else {
                writeln!(
                    out,
                    "{session}: on branch {name}; {} messages",
                    s.message_count
                )?;
            }
        }
        BranchCommand::Rename {
            session,
            name,
            new_name,
            json,
        } => {
            let b = store.rename_branch(&session, &name, &new_name)?;
            if json {
                print::json(out, &b)?;
            } else {
                writeln!(out, "{session}: branch {name} renamed to {new_name}")?;
            }
        }
        BranchCommand::Delete {
            session,
            name,
            json,
        } => {
            let b = store.delete_branch(&session, &name)?;
            if json {
                print::json(out, &b)?;
            } else {
                writeln!(
                    out,
                    "{session}: branch {name} deleted; readable as {} until prune \
                     (`branch switch {session} {}` brings it back)",
                    b.name, b.name
                )?;
            }
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
        BranchCommand::Diff {
            session,
            a,
            b,
            json,
        } => {
            let diff = store.diff_branches(&session, &a, &b)?;
            if json {
                print::json(out, &diff)?;
            } else {
                print::branch_diff(out, &diff)?;
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
        SnapshotCommand::Restore { session, id, json } => {
            let s = store.restore_snapshot(&session, id)?;
            if json {
                print::json(out, &s)?;
            } else {
                writeln!(
                    out,
                    "{session}: restored snapshot {id}; {} messages",
                    s.message_count
                )?;
            }
        }
        SnapshotCommand::Delete { session, id, json } => {
            store.delete_snapshot(&session, id)?;
            if json {
                print::json(
                    out,
                    &serde_json::json!({ "session_id": session, "deleted": id }),
                )?;
            } else {
                writeln!(out, "{session}: snapshot {id} deleted")?;
            }
        }
    }
    Ok(())
}

/// The name the head that `s`'s last change replaced goes by: `<name>@<version>`.
fn superseded_head(s: &sessiondb::Session) -> String {
    let base = s.head_branch.split('@').next().unwrap_or(&s.head_branch);
    format!("{base}@{}", s.version)
}

fn existing(force: bool) -> ExistingFile {
    if force {
        ExistingFile::Replace
    } else {
        ExistingFile::Refuse
    }
}

/// `30d`, `12h`, `15m`, `45s`, `500ms` or a plain number of seconds.
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        return ms
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("{text:?} is not a duration such as 500ms"));
    }
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
        _ => read_stdin(Some("messages as a JSON array"))?,
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::InvalidInput(format!(
            "expected a JSON array of messages (role, content, …): {e}"
        ))
    })
}

/// Standard input as text. On a terminal, says what it waits for instead of waiting
/// silently.
fn read_stdin(what: Option<&str>) -> Result<String> {
    use std::io::IsTerminal;
    if let (Some(what), true) = (what, std::io::stdin().is_terminal()) {
        output::warn(format_args!(
            "sessiondb: reading the {what} from the terminal; end it with Ctrl-D\n"
        ));
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|source| Error::Io {
            path: PathBuf::from("<stdin>"),
            source,
        })?;
    Ok(text)
}

/// Text read from a pipe or a terminal ends with the newline that ended its last line; that
/// newline is not part of the message.
fn without_final_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// `--metadata KEY=VALUE` of `sessions`: VALUE is JSON when it parses, else a string.
fn metadata_filter(pair: &str) -> Result<(String, serde_json::Value)> {
    let (key, value) = pair
        .split_once('=')
        .ok_or_else(|| Error::InvalidInput(format!("--metadata {pair:?} is not KEY=VALUE")))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| value.into());
    Ok((key.to_string(), value))
}

/// A date (`2025-01-31`, midnight UTC) or an RFC 3339 time.
fn parse_time_arg(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{text:?} is not a date (2025-01-31) or an RFC 3339 time"))
}

fn positive(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// The import format of `path` when `--format` is not given: a directory of PraisonAI
/// session files, an SQLite database (OpenAI Agents), or a JSON sessiondb export.
fn detect_format(path: &std::path::Path) -> Result<ImportFormat> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::metadata(path).map_err(io)?.is_dir() {
        return Ok(ImportFormat::Praisonai);
    }
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]).map_err(io)? {
            0 => break,
            n => read += n,
        }
    }
    if &head[..read] == b"SQLite format 3\0" {
        return Ok(ImportFormat::OpenaiAgents);
    }
    if head[..read].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(ImportFormat::Sessiondb);
    }
    Err(Error::InvalidInput(format!(
        "{}: cannot tell its format (not a directory, an SQLite database or a JSON export); pass --format",
        path.display()
    )))
}
