//! The arguments of `snapshot` and its subcommands.

use clap::Subcommand;
use sessiondb::SnapshotId;

#[derive(Subcommand)]
pub enum SnapshotCommand {
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

impl SnapshotCommand {
    /// Whether the command writes, and so may create the database file.
    pub fn writes(&self) -> bool {
        !matches!(self, SnapshotCommand::List { .. })
    }
}
