//! `lease list`, `lease show` and `lease break`: what an operator needs when a worker that
//! holds a session's lease is stuck or gone.

use sessiondb::Store;

use crate::args::LeaseCommand;
use crate::output::{Failure, Output};
use crate::print;

pub fn run(store: &Store, command: LeaseCommand, out: &mut Output) -> Result<(), Failure> {
    match command {
        LeaseCommand::List { json } => {
            let leases = store.leases()?;
            if json {
                print::json(out, &leases)
            } else {
                print::leases(out, &leases)
            }
        }
        LeaseCommand::Show { session, json } => {
            let holder = store.lease_holder(&session)?;
            if json {
                print::json(out, &holder)
            } else {
                print::lease_holder(out, &session, holder.as_ref())
            }
        }
        LeaseCommand::Break { session, json } => {
            let broken = store.break_lease(&session)?;
            if json {
                print::json(out, &broken)
            } else {
                print::lease_broken(out, &session, broken.as_ref())
            }
        }
    }
}
