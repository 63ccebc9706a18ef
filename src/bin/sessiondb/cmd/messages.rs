//! Commands that read or change a session's history: `add`, `append`, `pop`, `compact`,
//! `history`, `set-history`, `clear` and `revert`.

use sessiondb::{parse_metadata, Error, NewMessage, Role, Store};

use crate::args::{
    AddArgs, AppendArgs, ClearArgs, CompactArgs, HistoryArgs, PopArgs, RevertArgs, SetHistoryArgs,
};
use crate::follow;
use crate::input::{
    read_history, read_messages, read_stdin, read_text_file, without_final_newline,
};
use crate::output::{Failure, Output};
use crate::print;

pub fn add(store: &Store, args: AddArgs, out: &mut Output) -> Result<(), Failure> {
    let role: Role = args.role.parse()?;
    let content = match args.content.as_deref() {
        None | Some("-") => {
            let text = read_stdin(Some("message text"))?;
            if args.keep_newline {
                text
            } else {
                without_final_newline(text)
            }
        }
        Some(text) => text.to_string(),
    };
    let mut message = NewMessage::new(role, content);
    message.metadata = args.metadata.as_deref().map(parse_metadata).transpose()?;
    message.tool_calls = args
        .tool_calls
        .as_deref()
        .map(NewMessage::parse_tool_calls)
        .transpose()?;
    message.tool_call_id = args.tool_call_id;
    message.model = args.model;
    message.input_tokens = args.input_tokens;
    message.output_tokens = args.output_tokens;
    message.cost = args.cost;
    message.key = args.key;
    // A batch of one: it says whether the key was already stored.
    let added = store.add_messages(&args.session, std::slice::from_ref(&message))?;
    let Some(stored) = added.messages.first() else {
        return Err(Error::Corrupt("an add stored nothing".into()).into());
    };
    if added.already_stored {
        let mut asked = message.clone();
        asked.created_at = None;
        let mut found = stored.body.clone();
        found.created_at = None;
        if asked != found {
            return Err(Error::InvalidInput(format!(
                "key {:?} is already stored in session {:?} as message {} with different \
                 content; nothing was written (use another key, or none)",
                message.key.as_deref().unwrap_or_default(),
                args.session,
                stored.index
            ))
            .into());
        }
    }
    if args.json {
        let shown = print::Added {
            message: stored,
            already_stored: added.already_stored,
        };
        print::json(out, &shown)
    } else {
        print::added(out, &args.session, stored, added.already_stored)
    }
}

pub fn append(store: &Store, args: AppendArgs, out: &mut Output) -> Result<(), Failure> {
    let messages = read_messages(store, args.file)?;
    let added = store.add_messages(&args.session, &messages)?;
    if args.json {
        print::json_sorted(out, &added)
    } else {
        print::appended(out, &args.session, &added)
    }
}

pub fn pop(store: &Store, args: PopArgs, out: &mut Output) -> Result<(), Failure> {
    let popped = store.pop_message(&args.session)?;
    if args.json {
        print::json(out, &popped)
    } else {
        print::popped(out, &args.session, popped.as_ref())
    }
}

pub fn compact(store: &Store, args: CompactArgs, out: &mut Output) -> Result<(), Failure> {
    let text = match (args.summary, args.summary_file) {
        (Some(text), _) => text,
        (None, Some(path)) => read_text_file(store, path)?,
        (None, None) => {
            return Err(Error::InvalidInput("pass --summary or --summary-file".into()).into())
        }
    };
    let compaction = store.compact(
        &args.session,
        NewMessage::new(args.role.parse()?, text),
        args.through,
    )?;
    if args.json {
        print::json(out, &compaction)
    } else {
        print::compacted(out, &args.session, args.through)
    }
}

pub fn history(store: &Store, args: HistoryArgs, out: &mut Output) -> Result<(), Failure> {
    if args.follow {
        return follow::follow(out, store, &args.session, args.limit);
    }
    let history = if args.full {
        store.full_history(&args.session)?
    } else {
        store.chat_history(&args.session, args.limit)?
    };
    let trimmed = history.trimmed_tool_results();
    if trimmed > 0 {
        print::trimmed_tool_results(trimmed, args.limit, args.json);
    }
    if args.json {
        print::json(out, &*history)
    } else {
        print::history(out, &history)
    }
}

pub fn set_history(store: &Store, args: SetHistoryArgs, out: &mut Output) -> Result<(), Failure> {
    let messages = read_history(store, args.file)?;
    let change = store.set_chat_history(&args.session, &messages)?;
    if args.json {
        print::json_sorted(out, &change)
    } else {
        print::history_set(out, &args.session, &change)
    }
}

pub fn clear(store: &Store, args: ClearArgs, out: &mut Output) -> Result<(), Failure> {
    // Only to tell the user whether anything happened: clear itself decides inside its
    // transaction and writes nothing for an empty history.
    let before = store.version(&args.session)?;
    let s = store.clear(&args.session)?;
    if args.json {
        print::json(out, &s)
    } else {
        print::cleared(out, &args.session, &s, s.version != before)
    }
}

pub fn revert(store: &Store, args: RevertArgs, out: &mut Output) -> Result<(), Failure> {
    // As for clear: only to say whether the revert was a no-op.
    let before = store.version(&args.session)?;
    let s = store.revert_to_message(&args.session, args.to)?;
    if args.json {
        print::json(out, &s)
    } else {
        print::reverted(out, &args.session, args.to, &s, s.version != before)
    }
}
