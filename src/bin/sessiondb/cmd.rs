//! What each command does: one file per group of commands, each function taking the store,
//! the command's arguments and the output.

pub mod branch;
pub mod demo;
pub mod lease;
pub mod lifecycle;
pub mod maintain;
pub mod mcp;
pub mod messages;
pub mod search;
pub mod sessions;
pub mod snapshot;
pub mod transfer;
