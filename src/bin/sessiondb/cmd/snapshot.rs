//! `snapshot`: create, list, restore or delete a session's snapshots.

use sessiondb::{parse_metadata, Store};

use crate::args::SnapshotCommand;
use crate::output::{Failure, Output};
use crate::print;

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
                let deleted = print::SnapshotDeleted {
                    session_id: &session,
                    deleted: id,
                };
                print::json_sorted(out, &deleted)?;
            } else {
                print::snapshot_deleted(out, &session, id)?;
            }
        }
    }
    Ok(())
}
