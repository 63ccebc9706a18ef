//! The question a command that deletes or replaces many sessions asks before it does.
//!
//! On a terminal it asks on stderr and reads the answer from stdin; anything but `y` or
//! `yes` stops it with nothing changed. Without a terminal (a script, a pipe, cron) nobody can
//! answer, so it stops unless `--yes` was given, and says how to go on.

use std::io::{BufRead, IsTerminal, Write};

use crate::output::Failure;

/// Goes on when `yes`, or when the person at the terminal answers yes to `question`
/// (what is about to happen, e.g. "delete 5 sessions (20012 messages)"); otherwise a
/// [`Failure::Stopped`] that names `command` and what to pass.
pub fn confirm(command: &str, question: &str, yes: bool) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    let (stdin, mut stderr) = (std::io::stdin(), std::io::stderr());
    if !(stdin.is_terminal() && stderr.is_terminal()) {
        return Err(Failure::Stopped(format!(
            "{command} would {question}: pass --yes to go ahead (no terminal to ask on), or \
             --dry-run to see what it would do; nothing was changed"
        )));
    }
    let _ = write!(stderr, "sessiondb: {question}? [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    // A closed stdin reads as no answer: stop.
    let _ = stdin.lock().read_line(&mut answer);
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Failure::Stopped(format!(
            "{command} stopped: nothing was changed"
        ))),
    }
}
