//! Standard output for the commands, and how a command fails.
//!
//! `println!` panics when stdout is a closed pipe (`sessiondb history s | head -1`). Every
//! command writes through [`Output`] instead, whose writes return [`Failure::Output`]; a
//! closed pipe then ends the command quietly with status 141 — what a shell reports for
//! `git` or `sqlite3`, which die of SIGPIPE there — so scripts still see the output was cut.

use std::fmt;
use std::io::{self, BufWriter, StdoutLock, Write};
use std::process::ExitCode;

/// Exit status after the reader of standard output went away (128 + SIGPIPE).
const CLOSED_PIPE: u8 = 141;

/// Why a command did not finish.
pub enum Failure {
    /// The library refused or failed.
    Store(sessiondb::Error),
    /// Writing to standard output failed.
    Output(io::Error),
    /// The command stopped before changing anything: it was not confirmed.
    Stopped(String),
}

impl From<sessiondb::Error> for Failure {
    fn from(e: sessiondb::Error) -> Self {
        Failure::Store(e)
    }
}

impl Failure {
    /// Reports the failure on stderr (never a closed pipe) and picks the exit status.
    pub fn exit(self) -> ExitCode {
        let message = match self {
            Failure::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                return ExitCode::from(CLOSED_PIPE)
            }
            Failure::Output(e) => format!("sessiondb: cannot write the output: {e}"),
            Failure::Store(e @ sessiondb::Error::UnsafePermissions { .. }) => format!(
                "sessiondb: {e}\nsessiondb: fix its owner or mode, or pass --shared if other \
                 users share it on purpose"
            ),
            Failure::Store(e) => format!("sessiondb: {e}"),
            Failure::Stopped(why) => format!("sessiondb: {why}"),
        };
        // Nowhere left to report a failure to write to stderr.
        let _ = writeln!(io::stderr(), "{message}");
        ExitCode::FAILURE
    }
}

/// Buffered, locked standard output whose writes fail with [`Failure`] instead of panicking.
/// `writeln!(out, ...)` works on it.
pub struct Output {
    inner: BufWriter<StdoutLock<'static>>,
}

impl Output {
    pub fn stdout() -> Output {
        Output {
            inner: BufWriter::new(io::stdout().lock()),
        }
    }

    pub fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), Failure> {
        self.inner.write_fmt(args).map_err(Failure::Output)
    }

    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.inner.write_all(bytes).map_err(Failure::Output)
    }

    /// Writes out what is buffered; a command's output is complete only after this.
    pub fn flush(&mut self) -> Result<(), Failure> {
        self.inner.flush().map_err(Failure::Output)
    }
}

/// Writes a warning line to stderr, ignoring a closed stderr.
pub fn warn(args: fmt::Arguments<'_>) {
    let _ = io::stderr().write_fmt(args);
}
