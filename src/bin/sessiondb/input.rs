//! What a command reads besides its arguments: message text and JSON from standard input
//! or a file.

use std::io::Read;
use std::path::PathBuf;

use sessiondb::{Error, NewMessage, Result};

use crate::output;

/// A JSON array of messages from a file, or standard input for `-` or nothing.
pub fn read_messages(file: Option<PathBuf>) -> Result<Vec<NewMessage>> {
    let text = match file {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read_to_string(&path).map_err(|source| Error::Io { path, source })?
        }
        _ => read_stdin(Some("messages as a JSON array"))?,
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::InvalidInput(format!(
            "expected a JSON array of messages (role, content, …): {e}"
        ))
    })
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
