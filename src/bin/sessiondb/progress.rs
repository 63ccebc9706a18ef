//! A progress bar on stderr for long imports, exports and prunes — only when stderr is a
//! terminal, so scripts and logs stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};

/// A `(done, total)` callback that draws a bar, or does nothing when stderr is not a terminal.
pub fn bar(what: &'static str) -> impl FnMut(usize, usize) {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} sessions") {
            bar.set_style(style);
        }
        bar.set_message(what);
        bar
    });
    move |done, total| {
        if let Some(bar) = &bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            if done == total {
                bar.finish_and_clear();
            }
        }
    }
}

/// A `(messages done, messages total)` callback for imports; the total may be 0 (unknown,
/// while an export is streamed), which shows a count without a bar.
pub fn messages(what: &'static str) -> impl FnMut(usize, usize) {
    let bar = std::io::stderr().is_terminal().then(|| {
        // Cleared when the import ends, whether or not the total was known.
        let bar = ProgressBar::new(0).with_finish(ProgressFinish::AndClear);
        bar.set_message(what);
        bar
    });
    let mut styled = None;
    move |done, total| {
        if let Some(bar) = &bar {
            let known = total > 0;
            if styled != Some(known) {
                let template = if known {
                    "{msg} {bar:40} {pos}/{len} messages"
                } else {
                    "{msg} {pos} messages"
                };
                if let Ok(style) = ProgressStyle::with_template(template) {
                    bar.set_style(style);
                }
                styled = Some(known);
            }
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            if known && done >= total {
                bar.finish_and_clear();
            }
        }
    }
}

/// A spinner for one long call, cleared when dropped; nothing when stderr is not a terminal.
pub fn spinner(what: &'static str) -> Option<Spinner> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_message(what);
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Spinner(bar)
    })
}

pub struct Spinner(ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
