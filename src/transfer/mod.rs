//! Export to and import from sessiondb's JSON format, and the writer every importer uses.
//!
//! The format (`"format": "sessiondb-export", "version": 1`) is documented in README.md. An
//! export imported into an empty file and exported again is identical except for
//! `exported_at` and the snapshot ids, which are the new file's.
//!
//! - `image.rs`: the format's types, and an import's options and report;
//! - `export.rs`: sessions into the format;
//! - `importer.rs`: each session's import in its own transaction, and the report;
//! - `read.rs`: an export file read and imported one session at a time, within a byte budget;
//! - `plan.rs`: what writing a new session's image does, decided before writing (pure);
//! - `write.rs`: carrying that plan out through the steps of `heads`;
//! - `beside.rs`: what a history holds beside its messages (usage records, LangGraph
//!   checkpoints and their writes), read for an export and checked and written for an import.

mod beside;
mod export;
mod image;
mod importer;
mod plan;
mod read;
mod write;

pub use image::{
    BranchExport, ChannelValueExport, CheckpointExport, CheckpointWriteExport, CompactionExport,
    ExportFile, ImportOptions, ImportReport, SessionExport, SkippedSource, SnapshotExport,
    EXPORT_FORMAT, EXPORT_VERSION, MAX_IMPORT_SESSION_BYTES,
};
