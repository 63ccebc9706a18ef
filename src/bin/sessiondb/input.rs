//! What a command reads besides its arguments: message text and JSON from standard input
//! or a file.

use std::io::Read;
use std::path::PathBuf;

use sessiondb::{Error, NewMessage, Result, Store};

use crate::output;

/// A JSON array of messages from a file, or standard input for `-` or nothing.
pub fn read_messages(store: &Store, file: Option<PathBuf>) -> Result<Vec<NewMessage>> {
    Ok(read_array(store, file)?.1)
}

/// The text of a file the user named, never one of the database's own files (see
/// [`Store::refuse_own_file`]).
pub fn read_text_file(store: &Store, path: PathBuf) -> Result<String> {
    store.refuse_own_file(&path, "read messages from")?;
    std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })
}

/// A whole history for `set-history`: like [`read_messages`], but if the messages carry the
/// `index` that `history --json` prints, they must be numbered 0, 1, 2 … A working view
/// (after a compaction, `history --json` starts with the summary at the index it replaces
/// through) or a `--limit` window is not a whole history: stored back, it would turn the
/// summary into a message and drop what it replaced, so it is refused.
pub fn read_history(store: &Store, file: Option<PathBuf>) -> Result<Vec<NewMessage>> {
    let (values, messages) = read_array(store, file)?;
    for (position, value) in values.iter().enumerate() {
        match value.get("index") {
            Some(index) if index.as_u64() != Some(position as u64) => {
                return Err(Error::InvalidInput(format!(
                    "message {position} of the array has index {index}: this is not a whole \
                     history but part of one (`history --json` of a compacted session shows \
                     the working view, the summary first; `--limit` shows the last messages). \
                     set-history replaces the whole history: export it with `history --full \
                     --json`, or drop the index fields to store exactly this array"
                )))
            }
            _ => {}
        }
    }
    Ok(messages)
}

fn read_array(
    store: &Store,
    file: Option<PathBuf>,
) -> Result<(Vec<serde_json::Value>, Vec<NewMessage>)> {
    let text = match file {
        Some(path) if path.as_os_str() != "-" => read_text_file(store, path)?,
        _ => read_stdin(Some("messages as a JSON array"))?,
    };
    let invalid = |e: serde_json::Error| {
        Error::InvalidInput(format!(
            "expected a JSON array of messages (role, content, …): {e}"
        ))
    };
    let values: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(invalid)?;
    let messages = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v.clone())
                .map_err(|e| Error::InvalidInput(format!("message {i} of the array: {e}")))
        })
        .collect::<Result<_>>()?;
    Ok((values, messages))
}

/// Standard input as text. On a terminal, says what it waits for instead of waiting
/// silently.
pub fn read_stdin(what: Option<&str>) -> Result<String> {
    use std::io::IsTerminal;
    if let (Some(what), true) = (what, std::io::stdin().is_terminal()) {
        output::warn(format_args!(
            "sessiondb: reading the {what} from the terminal; end it with Ctrl-D\n"
        ));
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|source| Error::Io {
            path: PathBuf::from("<stdin>"),
            source,
        })?;
    Ok(text)
}

/// Text read from a pipe or a terminal ends with the newline that ended its last line; that
/// newline is not part of the message.
pub fn without_final_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}
