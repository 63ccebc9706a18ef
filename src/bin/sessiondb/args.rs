//! The command line's shape: every command, its arguments and their help text. Parsing
//! only; what a command does lives in `cmd/`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use sessiondb::SessionCursor;

use crate::parse::{parse_duration, parse_time_arg, positive};
pub use branch::BranchCommand;
use branch::SUPERSEDED_NAMES;
pub use lease::LeaseCommand;
pub use snapshot::SnapshotCommand;

mod branch;
mod lease;
mod snapshot;

/// The heading the options every command takes are listed under, once.
const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(
    name = "sessiondb",
    version,
    about = "Inspect and edit a sessiondb file"
)]
pub struct Cli {
    /// Database file, or a postgres:// URL (a build with the `postgres` feature) [default:
    /// $SESSIONDB_PATH, else sessions.db in the user's data directory]
    #[arg(long, global = true, value_name = "PATH|URL", help_heading = GLOBAL)]
    pub db: Option<PathBuf>,

    /// Accept a database that other users own or may write: for a file a group shares on
    /// purpose (see README)
    #[arg(long, global = true, env = "SESSIONDB_SHARED", help_heading = GLOBAL)]
    pub shared: bool,

    /// How long a write waits for another process's write lock before failing as busy
    /// (e.g. 500ms, 30s) [default: 10s]
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        value_parser = parse_duration,
        help_heading = GLOBAL
    )]
    pub busy_timeout: Option<Duration>,

    /// Open the file read-only: any command that writes fails, and nothing is created
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub read_only: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Command {
    /// Whether the command writes, and so may create the database file.
    pub fn writes(&self) -> bool {
        match self {
            Command::History(_)
            | Command::Sessions(_)
            | Command::Show(_)
            | Command::Tree(_)
            | Command::Stats(_)
            | Command::Export(_)
            | Command::Backup(_)
            | Command::Search(_)
            | Command::Check(_)
            | Command::Mcp(_) => false,
            Command::Branch(command) => command.writes(),
            Command::Snapshot(command) => command.writes(),
            Command::Lease(command) => command.writes(),
            Command::Prune(PruneArgs { dry_run, .. })
            | Command::Import(ImportArgs { dry_run, .. })
            | Command::Restore(RestoreArgs { dry_run, .. })
            | Command::Expire(ExpireArgs { dry_run, .. }) => !dry_run,
            _ => true,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Store a simulated agent conversation (tool calls, token usage) in a database of its
    /// own, demo.db beside the default one unless --db names another, and show it
    Demo,
    /// Append a message (creates the session if needed)
    Add(AddArgs),
    /// Append a JSON array of messages (shaped like `history --json`, each may have "key")
    /// in one transaction: all or none
    Append(AppendArgs),
    /// Remove the last message (the old history stays readable as a branch)
    Pop(PopArgs),
    /// Compact: the working history becomes the summary plus the messages after INDEX
    /// (the full history keeps every message)
    Compact(CompactArgs),
    /// Delete sessions idle for longer than a window (forks of them keep their history)
    Expire(ExpireArgs),
    /// Erase sessions for real: every branch, snapshot, partial and index row, and the bytes
    /// in the file and its WAL
    Purge(PurgeArgs),
    /// Print a session's history, oldest first
    History(HistoryArgs),
    /// Replace a session's history with a JSON array shaped like `history --json`
    SetHistory(SetHistoryArgs),
    /// List sessions, most recently updated first, a page at a time
    Sessions(SessionsArgs),
    /// Show one session's fields
    Show(ShowArgs),
    /// Set a session's title, agent name, agent id, user id or metadata (an empty value
    /// clears a field)
    Edit(EditArgs),
    /// Empty a session's history (the old one stays readable as a branch; an empty history
    /// is left as it is)
    Clear(ClearArgs),
    /// Delete a session and its history (forks of it keep theirs)
    Delete(DeleteArgs),
    /// Fork a session into a new one that shares its history up to a message
    Fork(ForkArgs),
    /// Create, list, switch, rename, delete, read or compare branches of a session
    #[command(subcommand, after_help = SUPERSEDED_NAMES)]
    Branch(BranchCommand),
    /// Create, list, restore or delete snapshots of a session
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// List, show or break the leases that give one worker a session at a time
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// Make messages 0..=INDEX the history (the replaced one stays as a branch; reverting
    /// to the last message changes nothing)
    #[command(after_help = SUPERSEDED_NAMES)]
    Revert(RevertArgs),
    /// Draw a session, its branches and its forks as a tree
    Tree(TreeArgs),
    /// Sizes, counts, the largest sessions and what prune would remove
    Stats(StatsArgs),
    /// Remove history that nothing can reach any more
    Prune(PruneArgs),
    /// Export sessions (all when none are named) as sessiondb JSON
    Export(ExportArgs),
    /// Write a consistent copy of the database to OUT while other processes go on writing
    /// (never over the database, its -wal or -shm; an existing file only with --force)
    Backup(BackupArgs),
    /// Replace the whole contents of the database with those of a backup, in one
    /// transaction: running processes see the old contents or the restored ones
    Restore(RestoreArgs),
    /// Import sessions from sessiondb JSON, a PraisonAI session directory or an OpenAI
    /// Agents SQLiteSession database
    Import(ImportArgs),
    /// Full-text search over message text: messages holding every word, best first
    Search(SearchArgs),
    /// Serve the database to AI agents over the Model Context Protocol on standard input and
    /// output: tools to search, list and reread sessions (needs a build with the `mcp`
    /// feature)
    Mcp(McpArgs),
    /// Check the file: SQLite integrity, foreign keys and sessiondb's invariants; exits
    /// non-zero if anything is wrong
    Check(CheckArgs),
    /// Checkpoint the WAL into the file and optionally VACUUM it
    Maintain(MaintainArgs),
    /// Print a shell completion script: `sessiondb completions bash > ~/.local/share/bash-completion/completions/sessiondb`
    Completions(CompletionsArgs),
}

#[derive(Args)]
pub struct AddArgs {
    /// The session's id
    pub session: String,
    /// system, developer, user, assistant or tool (any case)
    pub role: String,
    /// The message text; `-` or nothing reads standard input (one trailing newline
    /// dropped)
    pub content: Option<String>,
    /// Metadata as a JSON object
    #[arg(long)]
    pub metadata: Option<String>,
    /// The tool call this `tool` message answers
    #[arg(long)]
    pub tool_call_id: Option<String>,
    /// Tool calls as a JSON array of {"id", "type", "function": {"name", "arguments"}}
    #[arg(long)]
    pub tool_calls: Option<String>,
    /// The model that wrote the message
    #[arg(long)]
    pub model: Option<String>,
    /// Input (prompt) tokens, added to the session's totals
    #[arg(long)]
    pub input_tokens: Option<u64>,
    /// Output (completion) tokens, added to the session's totals
    #[arg(long)]
    pub output_tokens: Option<u64>,
    /// Cost of the message, added to the session's totals
    #[arg(long)]
    pub cost: Option<f64>,
    /// Idempotency key: adding a message whose key is stored writes nothing
    #[arg(long)]
    pub key: Option<String>,
    /// Keep the trailing newline of text read from standard input
    #[arg(long)]
    pub keep_newline: bool,
    /// Print the stored message as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct AppendArgs {
    /// The session's id
    pub session: String,
    /// JSON file; `-` or nothing reads standard input
    pub file: Option<PathBuf>,
    /// Print what was stored and what was already there as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PopArgs {
    /// The session's id
    pub session: String,
    /// Print the removed message as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CompactArgs {
    /// The session's id
    pub session: String,
    /// The last message the summary replaces
    #[arg(long = "at", alias = "through", value_name = "INDEX")]
    pub through: u64,
    /// The summary's text
    #[arg(
        long,
        conflicts_with = "summary_file",
        required_unless_present = "summary_file"
    )]
    pub summary: Option<String>,
    /// Read the summary's text from this file
    #[arg(long, value_name = "FILE")]
    pub summary_file: Option<PathBuf>,
    /// Role of the summary message
    #[arg(long, default_value = "system")]
    pub role: String,
    /// Print the compaction as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ExpireArgs {
    /// Sessions not written for longer than this, e.g. 90d, 12h (a unit is required)
    #[arg(long = "older-than", alias = "idle", value_name = "DURATION", value_parser = parse_duration)]
    pub idle: Duration,
    /// Report what would be deleted, delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Go ahead without asking (needed when there is no terminal to ask on)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PurgeArgs {
    /// Sessions to erase
    #[arg(required_unless_present = "user")]
    pub sessions: Vec<String>,
    /// Every session of this user
    #[arg(long)]
    pub user: Option<String>,
    /// Erase forks of the purged sessions too (otherwise they keep a copy of what they
    /// inherit)
    #[arg(long)]
    pub with_forks: bool,
    /// Go ahead without asking (needed when there is no terminal to ask on)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct HistoryArgs {
    /// The session's id
    pub session: String,
    /// Only the latest N messages (leading tool results whose call is cut off are left
    /// out, with a note on stderr)
    #[arg(long)]
    pub limit: Option<usize>,
    /// Every message, compacted ones included (no summary)
    #[arg(long, conflicts_with = "limit")]
    pub full: bool,
    /// The messages as a JSON array, the shape `set-history` reads
    #[arg(long)]
    pub json: bool,
    /// Keep printing new messages, and streamed replies chunk by chunk, until interrupted
    #[arg(long, conflicts_with = "json")]
    pub follow: bool,
}

#[derive(Args)]
pub struct SetHistoryArgs {
    /// The session's id
    pub session: String,
    /// JSON file; `-` or nothing reads standard input
    pub file: Option<PathBuf>,
    /// Print what changed as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct SessionsArgs {
    /// Only sessions of this agent name
    #[arg(long)]
    pub agent: Option<String>,
    /// Only sessions of this user id
    #[arg(long)]
    pub user: Option<String>,
    /// Only sessions whose title contains this text (ASCII case-insensitive)
    #[arg(long)]
    pub title: Option<String>,
    /// Only sessions whose metadata has KEY with VALUE (JSON if it parses, else a
    /// string); repeat for more
    #[arg(long, value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// Only sessions created at or after this time (2025-01-31 or RFC 3339)
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    pub created_since: Option<DateTime<Utc>>,
    /// Only sessions created before this time
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    pub created_before: Option<DateTime<Utc>>,
    /// Only sessions updated at or after this time
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    pub updated_since: Option<DateTime<Utc>>,
    /// Only sessions updated before this time
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    pub updated_before: Option<DateTime<Utc>>,
    /// At most this many (1 or more)
    #[arg(long, default_value_t = 50, value_parser = positive)]
    pub limit: usize,
    /// Continue after this cursor (printed when a page is cut short)
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<SessionCursor>,
    /// {"sessions": [...], "next": CURSOR or null, "more": N}
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    /// The session's id
    pub session: String,
    /// Print the session as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct EditArgs {
    /// The session's id
    pub session: String,
    #[arg(long)]
    /// The title
    pub title: Option<String>,
    /// The agent's name
    #[arg(long = "agent", alias = "agent-name", value_name = "NAME")]
    pub agent_name: Option<String>,
    /// The agent's id
    #[arg(long)]
    pub agent_id: Option<String>,
    /// The user's id
    #[arg(long)]
    pub user: Option<String>,
    /// A JSON object merged into the metadata (a null value removes its key)
    #[arg(long)]
    pub metadata: Option<String>,
    /// Print the updated session as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ClearArgs {
    /// The session's id
    pub session: String,
    /// Print the session as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DeleteArgs {
    /// The session's id
    pub session: String,
    /// Print {"deleted": ID} as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ForkArgs {
    /// The session's id
    pub session: String,
    /// Keep messages 0..=INDEX (default: all)
    #[arg(long, value_name = "INDEX")]
    pub at: Option<u64>,
    /// Title of the new session
    #[arg(long)]
    pub title: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct RevertArgs {
    /// The session's id
    pub session: String,
    /// Make messages 0..=INDEX the history
    #[arg(long = "at", alias = "to", value_name = "INDEX")]
    pub to: u64,
    /// Print the session as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct TreeArgs {
    /// The session's id
    pub session: String,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    /// Graphviz instead: `sessiondb tree S --dot | dot -Tsvg > tree.svg`
    #[arg(long, conflicts_with = "json")]
    pub dot: bool,
}

#[derive(Args)]
pub struct StatsArgs {
    /// Count superseded history older than this as prunable (e.g. 30d, 12h, 0)
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    pub older_than: Duration,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Keep superseded history younger than this (e.g. 30d, 12h, 15m, 0)
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    pub older_than: Duration,
    /// Report what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Go ahead without asking (needed when there is no terminal to ask on)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Ids of the sessions to export [default: every session]
    pub sessions: Vec<String>,
    /// Write here instead of standard output (never over the database, its -wal or
    /// -shm; an existing file only with --force)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Every branch and snapshot, not just the current histories
    #[arg(long)]
    pub all_branches: bool,
    /// Replace the --out file if it exists
    #[arg(long, requires = "out")]
    pub force: bool,
}

#[derive(Args)]
pub struct BackupArgs {
    /// Where to write the copy
    pub out: PathBuf,
    /// Replace OUT if it exists
    #[arg(long)]
    pub force: bool,
    /// Print {"path", "bytes"} as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup (a sessiondb database file) to restore from
    pub from: PathBuf,
    /// Say what would be replaced and by what; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Keep no copy of the contents being replaced [default: a backup is written first,
    /// beside the database file (for PostgreSQL: in the current directory)]
    #[arg(long)]
    pub no_backup: bool,
    /// Go ahead without asking (needed when there is no terminal to ask on)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The source's format [default: detected: a directory is praisonai, an SQLite file
    /// openai-agents, a JSON export sessiondb]
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// The export file, session directory or database to import
    pub path: PathBuf,
    /// Leave sessions that already exist as they are (reported as skipped)
    #[arg(long)]
    pub no_overwrite: bool,
    /// Report what would be imported, updated, unchanged or skipped; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct SearchArgs {
    /// Plain words (punctuation is fine: `what?`, `don't`, `c++`); with --fts, an FTS5
    /// query
    pub query: String,
    /// Read QUERY as FTS5 syntax: "phrases", prefix*, AND, OR, NOT, NEAR
    #[arg(long)]
    pub fts: bool,
    /// At most this many hits
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Only this session's current history
    #[arg(long)]
    pub session: Option<String>,
    /// Only sessions of this agent name
    #[arg(long)]
    pub agent: Option<String>,
    /// Only sessions of this user id
    #[arg(long)]
    pub user: Option<String>,
    /// Only messages of this role
    #[arg(long)]
    pub role: Option<String>,
    /// Print the hits as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct McpArgs {
    /// Also offer the tools that write, session_fork and session_snapshot
    #[arg(long)]
    pub allow_writes: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct MaintainArgs {
    /// Also rebuild the file without free pages
    #[arg(long)]
    pub vacuum: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ImportFormat {
    Sessiondb,
    Praisonai,
    OpenaiAgents,
}
