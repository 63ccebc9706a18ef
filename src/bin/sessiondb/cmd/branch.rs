//! `branch`: create, list, switch, rename, delete, read or compare a session's branches.

use sessiondb::Store;

use crate::args::BranchCommand;
use crate::output::{Failure, Output};
use crate::print;

/// One arm per subcommand, each a call and its printing (about 90 lines): splitting it would
/// only spread one dispatch over several functions.
pub fn run(store: &Store, command: BranchCommand, out: &mut Output) -> Result<(), Failure> {
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
                print::branch_created(out, &session, &b)?;
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
                print::switched(out, &session, &name, &s)?;
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
                print::branch_renamed(out, &session, &name, &new_name)?;
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
                print::branch_deleted(out, &session, &name, &b)?;
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
