//! Commands that delete sessions: `expire` (idle ones) and `purge` (erased for real).

use sessiondb::{PurgeRequest, Store};

use crate::args::{ExpireArgs, PurgeArgs};
use crate::output::{Failure, Output};
use crate::print;

pub fn expire(store: &Store, args: ExpireArgs, out: &mut Output) -> Result<(), Failure> {
    let report = store.expire_sessions(args.idle, args.dry_run)?;
    if args.json {
        print::json(out, &report)
    } else {
        print::expired(out, &report, args.dry_run)
    }
}

pub fn purge(store: &Store, args: PurgeArgs, out: &mut Output) -> Result<(), Failure> {
    let report = store.purge(&PurgeRequest {
        sessions: args.sessions,
        user_id: args.user,
        with_forks: args.with_forks,
    })?;
    if args.json {
        print::json(out, &report)
    } else {
        // A PostgreSQL store has no WAL file of its own.
        let wal_kept = !(report.wal_truncated || store.is_postgres());
        print::purged(out, &report, wal_kept)
    }
}
