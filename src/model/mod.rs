//! Public types: sessions, messages, roles, usage, and the limits on what callers may store.
//!
//! - `content.rs`: [`Role`] and [`Content`], what a message is made of;
//! - `message.rs`: [`NewMessage`], [`Message`] and [`Usage`];
//! - `session.rs`: [`Session`], [`NewSession`], branches, snapshots and reports;
//! - `stream.rs`: [`PartialMessage`] and [`StreamEnd`], a reply being streamed;
//! - `validate.rs`: the checks of ids, names, fields and JSON against the limits below;
//! - `time.rs`: the one text form of a time, written and read.

use serde_json::{Map, Value};

mod content;
mod message;
mod session;
mod stream;
mod time;
mod validate;

pub use content::{Content, Role};
pub(crate) use message::check_unique_keys;
pub use message::{Message, NewMessage, Usage};
pub use session::{
    Branch, BranchDiff, BranchSide, ForkPoint, NewSession, PruneReport, Session, SessionTree,
    Snapshot, SnapshotId,
};
pub use stream::{PartialMessage, StreamEnd};
pub(crate) use time::{now_text, parse_time, time_text, timestamp};
pub(crate) use validate::{check_field, check_json, invalid_at, validate_branch_name};
pub use validate::{parse_metadata, validate_session_id};

/// Longest session id, in bytes of UTF-8.
pub const MAX_SESSION_ID_BYTES: usize = 256;
/// Largest message content, in bytes of UTF-8.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024 * 1024;
/// Largest metadata object or tool-call array, serialized, in bytes.
pub const MAX_JSON_BYTES: usize = 1024 * 1024;
/// Deepest nesting of arrays and objects in metadata and tool calls.
pub const MAX_JSON_DEPTH: usize = 32;
/// Largest cost of one message: far above any real bill, far below where sums lose meaning.
pub const MAX_COST: f64 = 1e12;
/// Longest short text field (title, agent and user ids, model, tool call id, label), in bytes.
pub const MAX_FIELD_BYTES: usize = 4096;
/// Longest branch name, in bytes of UTF-8.
pub const MAX_BRANCH_NAME_BYTES: usize = 128;

/// A JSON object, as stored in `metadata` columns.
pub type Metadata = Map<String, Value>;
