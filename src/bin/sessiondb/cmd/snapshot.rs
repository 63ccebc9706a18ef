//! `snapshot`: create, list, restore or delete a session's snapshots.

use clap::Subcommand;
use sessiondb::{parse_metadata, SnapshotId, Store};

use crate::output::{Failure, Output};
use crate::print;

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

pub fn run(store: &Store, command: SnapshotCommand, out: &mut Output) -> Result<(), Failure> {
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
                print::id(out, snap.id)?;
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
                print::snapshot_restored(out, &session, id, &s)?;
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
                print::snapshot_deleted(out, &session, id)?;
            }
        }
    }
    Ok(())
}
