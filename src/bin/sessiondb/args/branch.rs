//! The arguments of `branch` and its subcommands.

use clap::Subcommand;

/// What `name@N` means, in the help of the commands that show or take such names.
pub const SUPERSEDED_NAMES: &str =
    "Branch names: a name with @N (main@7) is a superseded head: the \
history that was current before the change that made version N of the session (clear, revert, \
set-history, pop, compact, snapshot restore, branch delete). It stays readable and can be \
switched back to (`branch switch SESSION main@7`) until `prune` removes it after the \
retention window.";

#[derive(Subcommand)]
pub enum BranchCommand {
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

impl BranchCommand {
    /// Whether the command writes, and so may create the database file.
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            BranchCommand::List { .. } | BranchCommand::History { .. } | BranchCommand::Diff { .. }
        )
    }
}
