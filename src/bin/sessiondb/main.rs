//! `sessiondb`: inspect and edit a sessiondb file. Thin over the library: parse, call, print.
//! Human-readable output by default, `--json` for scripts, errors on stderr with exit code 1.

mod print;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sessiondb::{parse_metadata, Error, NewMessage, Result, Role, SessionQuery, Store};

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

    #[command(subcommand)]
    command: Command,
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
        #[arg(long)]
        json: bool,
    },
    /// Print a session's history, oldest first
    History {
        session: String,
        /// Only the latest N messages
        #[arg(long)]
        limit: Option<usize>,
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
    /// Delete a session and its history
    Delete { session: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sessiondb: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let path = match cli.db.or_else(sessiondb::default_path) {
        Some(path) => path,
        None => {
            return Err(Error::InvalidInput(
                "no database path: pass --db PATH or set SESSIONDB_PATH".into(),
            ))
        }
    };
    let store = Store::open(&path)?;
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
            let stored = store.add_message(&session, message)?;
            if json {
                print::json(&stored);
            } else {
                println!("{session}: message {} ({})", stored.index, stored.role());
            }
        }
        Command::History {
            session,
            limit,
            json,
        } => {
            let history = store.chat_history(&session, limit)?;
            if json {
                print::json(&*history);
            } else {
                print::history(&history);
            }
        }
        Command::SetHistory {
            session,
            file,
            json,
        } => {
            let text = match file {
                Some(path) if path.as_os_str() != "-" => {
                    std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })?
                }
                _ => read_stdin()?,
            };
            let messages: Vec<NewMessage> = serde_json::from_str(&text).map_err(|e| {
                Error::InvalidInput(format!(
                    "history must be a JSON array of messages (role, content, …): {e}"
                ))
            })?;
            let change = store.set_chat_history(&session, &messages)?;
            if json {
                print::json(&serde_json::json!({
                    "version": change.version,
                    "kept": change.kept,
                    "written": change.written,
                    "superseded": change.superseded,
                }));
            } else {
                println!(
                    "{session}: {} messages kept, {} written{}",
                    change.kept,
                    change.written,
                    if change.superseded {
                        "; the previous history is kept as a branch"
                    } else {
                        ""
                    }
                );
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
                print::json(&page.sessions);
            } else {
                print::sessions(&page.sessions);
            }
        }
        Command::Show { session, json } => {
            let session = store.session(&session)?;
            if json {
                print::json(&session);
            } else {
                print::session(&session);
            }
        }
        Command::Clear { session } => {
            store.clear(&session)?;
            println!("{session}: cleared");
        }
        Command::Delete { session } => {
            store.delete_session(&session)?;
            println!("{session}: deleted");
        }
    }
    Ok(())
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
