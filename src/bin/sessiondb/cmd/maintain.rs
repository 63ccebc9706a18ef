//! Commands that look after the file: `stats`, `prune`, `check` and `maintain`.

use std::process::ExitCode;

use sessiondb::Store;

use crate::args::{CheckArgs, MaintainArgs, PruneArgs, StatsArgs};
use crate::confirm::confirm;
use crate::output::{Failure, Output};
use crate::parse::duration_text;
use crate::print::count;
use crate::{print, progress};

pub fn stats(store: &Store, args: StatsArgs, out: &mut Output) -> Result<(), Failure> {
    let stats = store.stats(args.older_than)?;
    if args.json {
        print::json(out, &stats)
    } else {
        let on_server = store
            .path()
            .to_str()
            .is_some_and(sessiondb::is_postgres_url);
        print::stats(out, &stats, on_server)
    }
}

/// Asks first (see [`confirm`]), with what a dry run found; nothing found, nothing is asked.
pub fn prune(store: &Store, args: PruneArgs, out: &mut Output) -> Result<(), Failure> {
    let spinner = progress::spinner("pruning");
    let mut report = store.prune(args.older_than, args.dry_run || !args.yes)?;
    drop(spinner);
    let found = report.branches > 0 || report.messages > 0;
    if !args.dry_run && !args.yes && found {
        let question = format!(
            "remove {} of superseded history older than {} ({}, {} bytes)",
            count(report.messages, "message"),
            duration_text(args.older_than),
            count(report.branches, "whole branch"),
            report.bytes
        );
        confirm("prune", &question, false)?;
        let spinner = progress::spinner("pruning");
        report = store.prune(args.older_than, false)?;
        drop(spinner);
    }
    if args.json {
        print::json(out, &report)
    } else {
        print::pruned(out, &report, args.dry_run)
    }
}

/// Fails (exit status 1) when the check found a problem.
pub fn check(store: &Store, args: CheckArgs, out: &mut Output) -> Result<ExitCode, Failure> {
    let report = store.check()?;
    if args.json {
        print::json_sorted(out, &report)?;
    } else {
        print::checked(out, &report)?;
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn maintain(store: &Store, args: MaintainArgs, out: &mut Output) -> Result<(), Failure> {
    let report = store.maintain(args.vacuum)?;
    if args.json {
        print::json(out, &report)
    } else {
        print::maintained(out, &report)
    }
}
