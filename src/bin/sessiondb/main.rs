//! `sessiondb`: inspect and edit a sessiondb file. Thin over the library: parse, call, print.
//! Human-readable output by default, `--json` for scripts, errors on stderr with exit code 1.

mod args;
mod cmd;
mod confirm;
mod follow;
mod input;
mod interrupt;
mod output;
mod parse;
mod print;
mod progress;

use std::process::ExitCode;

use args::{Cli, Command};
use clap::Parser;
use cmd::{
    branch, demo, lease, lifecycle, maintain, mcp, messages, search, sessions, snapshot, transfer,
};
use output::{Failure, Output};
use sessiondb::{Error, Store};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions(args) = cli.command {
        // Needs no database: print and stop before anything is opened.
        // Into a buffer, then out through Output: clap_complete panics when it cannot write
        // (`sessiondb completions bash | head -1`), Output ends quietly with status 141.
        let mut command = <Cli as clap::CommandFactory>::command();
        let mut script = Vec::new();
        clap_complete::generate(args.shell, &mut command, "sessiondb", &mut script);
        let mut out = Output::stdout();
        return match out.write_bytes(&script).and_then(|()| out.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(failure) => failure.exit(),
        };
    }
    if let Command::Mcp(args) = &cli.command {
        // Before standard output is locked: the server writes to it from its own thread.
        return match mcp::run(args, cli.read_only, || Ok(open_saying_why(&cli)?.0)) {
            Ok(code) => code,
            Err(failure) => failure.exit(),
        };
    }
    let mut out = Output::stdout();
    match run(cli, &mut out).and_then(|code| out.flush().map(|()| code)) {
        Ok(code) => code,
        Err(failure) => {
            // What was printed before the failure goes out first; a closed pipe stays quiet.
            let _ = out.flush();
            failure.exit()
        }
    }
}

fn run(cli: Cli, out: &mut Output) -> Result<ExitCode, Failure> {
    let (store, created) = open_saying_why(&cli)?;
    let code = match cli.command {
        // The commands whose exit status says something: a problem found, a source skipped,
        // nothing matched.
        Command::Check(args) => maintain::check(&store, args, out)?,
        Command::Import(args) => transfer::import(&store, args, out)?,
        Command::Search(args) => search::run(&store, args, out)?,
        command => {
            dispatch(&store, command, out)?;
            ExitCode::SUCCESS
        }
    };
    if let Some(path) = created {
        output::warn(format_args!(
            "sessiondb: created a new database at {}\n",
            path.display()
        ));
    }
    Ok(code)
}

/// Runs every command but those [`run`] handles itself.
fn dispatch(store: &Store, command: Command, out: &mut Output) -> Result<(), Failure> {
    match command {
        Command::Demo => demo::run(store, out)?,
        Command::Add(args) => messages::add(store, args, out)?,
        Command::Append(args) => messages::append(store, args, out)?,
        Command::Pop(args) => messages::pop(store, args, out)?,
        Command::Compact(args) => messages::compact(store, args, out)?,
        Command::History(args) => messages::history(store, args, out)?,
        Command::SetHistory(args) => messages::set_history(store, args, out)?,
        Command::Clear(args) => messages::clear(store, args, out)?,
        Command::Revert(args) => messages::revert(store, args, out)?,
        Command::Sessions(args) => sessions::list(store, args, out)?,
        Command::Show(args) => sessions::show(store, args, out)?,
        Command::Edit(args) => sessions::edit(store, args, out)?,
        Command::Delete(args) => sessions::delete(store, args, out)?,
        Command::Fork(args) => sessions::fork(store, args, out)?,
        Command::Tree(args) => sessions::tree(store, args, out)?,
        Command::Branch(command) => branch::run(store, command, out)?,
        Command::Snapshot(command) => snapshot::run(store, command, out)?,
        Command::Lease(command) => lease::run(store, command, out)?,
        Command::Expire(args) => lifecycle::expire(store, args, out)?,
        Command::Purge(args) => lifecycle::purge(store, args, out)?,
        Command::Stats(args) => maintain::stats(store, args, out)?,
        Command::Prune(args) => maintain::prune(store, args, out)?,
        Command::Maintain(args) => maintain::maintain(store, args, out)?,
        Command::Export(args) => transfer::export(store, args, out)?,
        Command::Backup(args) => transfer::backup(store, args, out)?,
        Command::Restore(args) => transfer::restore(store, args, out)?,
        // Handled before: completions open no database, mcp serves until its client leaves;
        // check, import and search set the status.
        Command::Completions(_)
        | Command::Mcp(_)
        | Command::Check(_)
        | Command::Import(_)
        | Command::Search(_) => {}
    }
    Ok(())
}

/// [`open`], saying what to do when there is no database yet.
fn open_saying_why(cli: &Cli) -> Result<(Store, Option<std::path::PathBuf>), Failure> {
    match open(cli) {
        Err(Failure::Store(Error::NotFound {
            kind: "database",
            id,
        })) => Err(nothing_stored_yet(&id)),
        opened => opened,
    }
}

/// Opens the database the options name. Only a command that writes may create the file: a
/// typo in --db must not leave an empty database behind.
/// Also returns the path when this open created the database file, to say so once the
/// command has succeeded.
fn open(cli: &Cli) -> Result<(Store, Option<std::path::PathBuf>), Failure> {
    let default = match cli.command {
        Command::Demo => demo::default_path,
        _ => sessiondb::default_path,
    };
    let path = match cli.db.clone().or_else(default) {
        Some(path) => path,
        None => {
            return Err(Error::InvalidInput(
                "no database path: pass --db PATH (or a postgres:// URL) or set SESSIONDB_PATH"
                    .into(),
            )
            .into())
        }
    };
    let mut builder = Store::builder(&path)
        .read_only(cli.read_only)
        .create(cli.command.writes())
        .shared(cli.shared);
    if let Some(timeout) = cli.busy_timeout {
        builder = builder.busy_timeout(timeout);
    }
    // A URL names a server's database, which the store never creates.
    let is_file = !path.to_str().is_some_and(sessiondb::is_postgres_url);
    let new = is_file && cli.command.writes() && std::fs::symlink_metadata(&path).is_err();
    let store = builder.open()?;
    Ok((store, new.then_some(path)))
}

/// A command that only reads, on a path where no database exists yet (a first run, or a
/// typo in `--db`): it fails, saying where it looked and what creates one.
fn nothing_stored_yet(path: &str) -> Failure {
    let what = if sessiondb::is_postgres_url(path) {
        "the database holds no sessiondb tables"
    } else {
        "there is no database there"
    };
    Failure::Stopped(format!(
        "nothing has been stored at {path} yet: {what} (a command that writes, such as \
         `add`, creates it)"
    ))
}
