//! What opening, writing and reading the store can fail with; RocksDB's own corruption verdict
//! is kept apart from failures of the disk.

use std::path::PathBuf;

use crate::{APPEND_ENTRIES_MAX, STORAGE_FORMAT_VERSION};

/// Opening or creating a store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("no ledger at {0} (run `junbao init` first)")]
    Missing(PathBuf),
    #[error("a ledger already exists at {0}")]
    AlreadyExists(PathBuf),
    #[error("the database at {path} cannot be opened: {reason}")]
    Engine { path: PathBuf, reason: String },
    #[error("storage format {found} is not supported (this build reads {STORAGE_FORMAT_VERSION})")]
    Format { found: u32 },
    #[error("the stored data is corrupted: {0}")]
    Corrupt(String),
    /// A ledger written by an earlier version (storage format 1, one record per entry).
    #[error(
        "the ledger at {0} is in storage format 1 (one record per entry); this build reads \
         format {STORAGE_FORMAT_VERSION} (entries in blocks): back it up, then run \
         `junbao --data {0} migrate`, which converts it and verifies it before and after"
    )]
    NeedsMigration(PathBuf),
}

/// A write failed. The handle is poisoned afterwards.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    #[error("an earlier write failed; reopen the ledger before writing again")]
    Poisoned,
    #[error("the disk write failed: {0}")]
    Engine(String),
    #[error("batch of {0} entries exceeds the limit of {APPEND_ENTRIES_MAX}")]
    TooLarge(usize),
}

/// A read failed: the disk, or data that is not what this layer wrote.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("the disk read failed: {0}")]
    Engine(String),
    #[error("the stored data is corrupted: {0}")]
    Corrupt(String),
}

impl ReadError {
    /// What is stored is not what this layer wrote (an integrity failure), as opposed to a
    /// failure of the disk or the environment.
    pub fn is_integrity(&self) -> bool {
        matches!(self, ReadError::Corrupt(_))
    }
}
