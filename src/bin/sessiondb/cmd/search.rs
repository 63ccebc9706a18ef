//! `search`: full-text search over message text.

use std::process::ExitCode;

use sessiondb::{SearchFilter, Store};

use crate::args::SearchArgs;
use crate::output::{Failure, Output};
use crate::print;

/// Exit status 1 when nothing matched, as `grep` does, so a script can tell.
pub fn run(store: &Store, args: SearchArgs, out: &mut Output) -> Result<ExitCode, Failure> {
    let filter = SearchFilter {
        session: args.session,
        agent_name: args.agent,
        user_id: args.user,
        role: args.role.as_deref().map(str::parse).transpose()?,
    };
    let hits = if args.fts {
        store.search(&args.query, args.limit, &filter)?
    } else {
        store.search_words(&args.query, args.limit, &filter)?
    };
    if args.json {
        print::json(out, &hits)?;
    } else {
        print::hits(out, &hits)?;
    }
    Ok(if hits.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
