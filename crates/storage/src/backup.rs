//! Consistent copies of the store, for backups.

use std::path::Path;

use crate::{COLUMN_FAMILIES, Head, Store, WriteError, engine};

impl Store {
    /// Flushes the memtables to table files while appends go on. Called before
    /// [`Store::checkpoint`], it keeps the log the checkpoint copies short.
    pub fn flush_memtables(&self) -> Result<(), WriteError> {
        let cfs: Vec<_> = COLUMN_FAMILIES.iter().map(|n| self.cf(n)).collect();
        self.db.flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default()).map_err(|e| {
            WriteError::Engine(format!("flushing {}: {}", self.path.display(), engine(e)))
        })
    }

    /// Writes a consistent copy of the whole store into `dir` (which must not exist yet) and
    /// returns the head it holds: every append made before the call, none made after. The copy
    /// is a store in its own right ([`Store::open`] opens it).
    ///
    /// On the store's own file system the copy's table files are hard links to the store's
    /// (they are immutable, so this is safe and takes no time); elsewhere they are copied. A
    /// backup should therefore cut the copy next to the store, then copy the files to where
    /// they are kept.
    ///
    /// The write-ahead log since the last flush is copied (not flushed: a flush per column
    /// family, with its syncs, would hold the appends up) and replayed when the copy is opened.
    ///
    /// Everything appended so far is made durable first: a copy must never hold an entry the
    /// live store could still lose in a crash, or the two would tell different histories.
    /// The caller keeps appends out while this runs (the engine holds its writer lock), so
    /// the head returned is the copy's.
    pub fn checkpoint(&self, dir: &Path) -> Result<Head, WriteError> {
        let head = self.sync()?;
        let checkpoint = rocksdb::checkpoint::Checkpoint::new(&self.db).map_err(|e| {
            WriteError::Engine(format!(
                "preparing a copy of {}: {}",
                self.path.display(),
                engine(e)
            ))
        })?;
        // No flush here (one per column family, each with its syncs, while appends wait): the
        // copy takes the table files as they are plus a copy of the write-ahead log, which
        // holds every append since and is replayed when the copy is opened. The log is short
        // when `flush_memtables` ran just before.
        checkpoint.create_checkpoint_with_log_size(dir, u64::MAX).map_err(|e| {
            WriteError::Engine(format!("copying to {}: {}", dir.display(), engine(e)))
        })?;
        Ok(head)
    }
}
