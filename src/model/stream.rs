//! A reply being streamed: what a reader sees of it, and how a writer finishes it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Metadata;

/// An assistant reply still being streamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialMessage {
    pub session_id: String,
    /// Everything flushed so far.
    pub content: String,
    pub model: Option<String>,
    pub metadata: Option<Metadata>,
    /// How many chunks were flushed.
    pub chunks: u64,
    #[serde(serialize_with = "super::timestamp::serialize")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "super::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// How to finish a streamed reply. Unset fields keep what the stream has: the content
/// flushed so far, the model and metadata given at the start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamEnd {
    pub content: Option<String>,
    pub model: Option<String>,
    pub metadata: Option<Metadata>,
    pub tool_calls: Option<Vec<Value>>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cost: Option<f64>,
}
