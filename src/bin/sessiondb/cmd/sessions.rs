//! Commands about sessions as a whole: `sessions`, `show`, `edit`, `delete`, `fork` and
//! `tree`.

use sessiondb::{parse_metadata, Error, Result, SessionQuery, SessionUpdate, Store};

use crate::args::{DeleteArgs, EditArgs, ForkArgs, SessionsArgs, ShowArgs, TreeArgs};
use crate::output::{Failure, Output};
use crate::print;

pub fn list(store: &Store, args: SessionsArgs, out: &mut Output) -> Result<(), Failure> {
    let mut query = SessionQuery {
        agent_name: args.agent,
        user_id: args.user,
        title_contains: args.title,
        metadata: args
            .metadata
            .iter()
            .map(|pair| metadata_filter(pair))
            .collect::<Result<_>>()?,
        created_since: args.created_since,
        created_before: args.created_before,
        updated_since: args.updated_since,
        updated_before: args.updated_before,
        limit: args.limit,
        after: args.after,
    };
    let page = store.list_sessions(&query)?;
    let more = match &page.next {
        Some(next) => {
            query.after = Some(next.clone());
            store.count_sessions(&query)?
        }
        None => 0,
    };
    if args.json {
        print::json_sorted(out, &print::Listing { page: &page, more })
    } else {
        print::sessions(out, &page.sessions)?;
        if let Some(next) = &page.next {
            print::more_sessions(more, next);
        }
        Ok(())
    }
}

pub fn show(store: &Store, args: ShowArgs, out: &mut Output) -> Result<(), Failure> {
    let session = store.session(&args.session)?;
    if args.json {
        print::json(out, &session)
    } else {
        print::session(out, &session)
    }
}

pub fn edit(store: &Store, args: EditArgs, out: &mut Output) -> Result<(), Failure> {
    // An empty value clears the field.
    let field = |v: Option<String>| v.map(|v| Some(v).filter(|v| !v.is_empty()));
    let update = SessionUpdate {
        title: field(args.title),
        agent_name: field(args.agent_name),
        agent_id: field(args.agent_id),
        user_id: field(args.user),
        metadata: args.metadata.as_deref().map(parse_metadata).transpose()?,
    };
    let s = store.update_session(&args.session, &update)?;
    if args.json {
        print::json(out, &s)
    } else {
        print::session(out, &s)
    }
}

pub fn delete(store: &Store, args: DeleteArgs, out: &mut Output) -> Result<(), Failure> {
    store.delete_session(&args.session)?;
    if args.json {
        print::json_sorted(
            out,
            &print::Deleted {
                deleted: &args.session,
            },
        )
    } else {
        print::deleted(out, &args.session)
    }
}

pub fn fork(store: &Store, args: ForkArgs, out: &mut Output) -> Result<(), Failure> {
    let fork = store.fork_session(&args.session, args.at, args.title.as_deref())?;
    if args.json {
        print::json(out, &fork)
    } else {
        print::id(out, &fork.id)
    }
}

pub fn tree(store: &Store, args: TreeArgs, out: &mut Output) -> Result<(), Failure> {
    let tree = store.session_tree(&args.session)?;
    if args.json {
        print::json(out, &tree)
    } else if args.dot {
        print::dot(out, &tree)
    } else {
        print::tree(out, &tree)
    }
}

/// `--metadata KEY=VALUE` of `sessions`: VALUE is JSON when it parses, else a string.
fn metadata_filter(pair: &str) -> Result<(String, serde_json::Value)> {
    let (key, value) = pair
        .split_once('=')
        .ok_or_else(|| Error::InvalidInput(format!("--metadata {pair:?} is not KEY=VALUE")))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| value.into());
    Ok((key.to_string(), value))
}
