//! `history --follow`: the history, then every change another process makes, like `tail -f`.
//! A streamed reply is printed chunk by chunk on its own line, which its final message then
//! completes. Ends when interrupted, or quietly (status 141) when the reader of stdout left.

use std::io;
use std::time::Duration;

use sessiondb::{HistoryUpdate, Role, Store, WatchCursor};

use crate::output::{Failure, Output};
use crate::print;

/// How often an idle follow checks that someone still reads its output.
const READER_CHECK: Duration = Duration::from_millis(500);

pub fn follow(
    out: &mut Output,
    store: &Store,
    session: &str,
    limit: Option<usize>,
) -> Result<(), Failure> {
    let (history, partial) = store.chat_history_with_partial(session, limit)?;
    print::history(out, &history)?;
    let mut watcher = store.watcher(session, WatchCursor::after(&history, partial.as_ref()))?;
    // The streamed text printed on the current, unfinished line.
    let mut shown: Option<String> = None;
    let mut length = history.total_len();
    let mut partial = partial;
    loop {
        if let Some(p) = &partial {
            match &shown {
                Some(text) if p.content.starts_with(text.as_str()) => {
                    print::streamed_more(out, &p.content[text.len()..])?
                }
                _ => {
                    if shown.is_some() {
                        print::line_end(out)?;
                    }
                    print::streamed(out, length, &p.content)?
                }
            }
            shown = Some(p.content.clone());
        } else if shown.take().is_some() {
            print::stream_discarded(out)?;
        }
        out.flush()?;
        let change = loop {
            match watcher.wait(READER_CHECK)? {
                Some(change) => break change,
                None if reader_gone() => {
                    return Err(Failure::Output(io::ErrorKind::BrokenPipe.into()))
                }
                None => {}
            }
        };
        match &change.history {
            HistoryUpdate::Unchanged => {}
            HistoryUpdate::Appended(messages) => {
                let mut messages = &messages[..];
                if let (Some(text), Some(first)) = (shown.take(), messages.first()) {
                    // The streamed reply finished: complete its line instead of repeating it.
                    if first.role() == Role::Assistant && first.content().starts_with(&text) {
                        print::streamed_more(out, &first.content()[text.len()..])?;
                        messages = &messages[1..];
                    }
                    print::line_end(out)?;
                }
                print::history(out, messages)?;
            }
            HistoryUpdate::Replaced(history) => {
                if shown.take().is_some() {
                    print::line_end(out)?;
                }
                print::history_replaced(out, change.version)?;
                print::history(out, history)?;
            }
        }
        length = change.length;
        partial = change.partial;
    }
}

/// Whether standard output is a pipe or socket whose reader went away: a follow that prints
/// nothing for hours would otherwise never learn it.
#[cfg(unix)]
fn reader_gone() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout; poll only reads and writes that struct.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

#[cfg(not(unix))]
fn reader_gone() -> bool {
    false
}
