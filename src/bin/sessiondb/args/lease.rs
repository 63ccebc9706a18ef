//! The arguments of `lease` and its subcommands.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum LeaseCommand {
    /// List every stored lease, held or expired, by session
    List {
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show who holds a session's lease and until when
    Show {
        /// The session's id
        session: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a session's lease, held or not: the holder's next write under it fails
    /// (LeaseLost) and anyone may claim the session. For a worker that is stuck
    Break {
        /// The session's id
        session: String,
        /// Print what was removed as JSON (null when there was no lease)
        #[arg(long)]
        json: bool,
    },
}

impl LeaseCommand {
    pub fn writes(&self) -> bool {
        matches!(self, LeaseCommand::Break { .. })
    }
}
