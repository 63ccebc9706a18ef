//! Commands that delete sessions: `expire` (idle ones) and `purge` (erased for real).

use sessiondb::{PurgeRequest, SessionQuery, Store};

use crate::args::{ExpireArgs, PurgeArgs};
use crate::confirm::confirm;
use crate::output::{Failure, Output};
use crate::parse::duration_text;
use crate::print;
use crate::print::count;

/// Asks first (see [`confirm`]), with what a dry run found; nothing found, nothing is asked.
pub fn expire(store: &Store, args: ExpireArgs, out: &mut Output) -> Result<(), Failure> {
    let report = if args.dry_run || args.yes {
        store.expire_sessions(args.idle, args.dry_run)?
    } else {
        let plan = store.expire_sessions(args.idle, true)?;
        if plan.sessions.is_empty() {
            sessiondb::ExpireReport {
                dry_run: false,
                ..plan
            }
        } else {
            let question = format!(
                "delete {} idle for longer than {} ({})",
                count(plan.sessions.len(), "session"),
                duration_text(args.idle),
                count(plan.messages, "message")
            );
            confirm("expire", &question, false)?;
            store.expire_sessions(args.idle, false)?
        }
    };
    if args.json {
        print::json(out, &report)
    } else {
        print::expired(out, &report, args.dry_run)
    }
}

pub fn purge(store: &Store, args: PurgeArgs, out: &mut Output) -> Result<(), Failure> {
    if !args.yes {
        let mut what = Vec::new();
        if !args.sessions.is_empty() {
            what.push(format!(
                "{} ({})",
                count(args.sessions.len(), "session"),
                args.sessions.join(", ")
            ));
        }
        if let Some(user) = &args.user {
            let query = SessionQuery {
                user_id: Some(user.clone()),
                ..SessionQuery::default()
            };
            let n = store.count_sessions(&query)?;
            what.push(format!("the {} of user {user:?}", count(n, "session")));
        }
        let forks = if args.with_forks {
            " and every fork of them"
        } else {
            ""
        };
        let question = format!("erase {}{forks} for good", what.join(" and "));
        confirm("purge", &question, false)?;
    }
    let report = store.purge(&PurgeRequest {
        sessions: args.sessions,
        user_id: args.user,
        with_forks: args.with_forks,
    })?;
    if args.json {
        print::json(out, &report)
    } else {
        print::purged(out, &report)
    }
}
