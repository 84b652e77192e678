//! Converting a store of storage format 1 (one journal record per entry) to format 2 (entries
//! in aligned blocks), in place and restartable (docs/FORMAT.md §2, "Migration").

use std::path::Path;

use rocksdb::{DB, IteratorMode, WriteBatch, WriteOptions};

use crate::{
    BLOCK_ENTRIES, CF_BLOCKS, CF_JOURNAL, CF_META, Head, META_FORMAT, META_HEAD, OpenError,
    ReadError, STORAGE_FORMAT_VERSION, StoredEntry, blocks, cf_descriptors, db_options,
    decode_entry, decode_head, engine, open_error, read_error,
};

/// What a migration converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrateReport {
    /// Entries moved into blocks.
    pub entries: u64,
    /// The head, unchanged by the migration.
    pub head: Head,
}

/// Why a migration stopped. Until its last write, which switches the format record, the store
/// stays in format 1 and a migration can be run again from the start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("the ledger is already in storage format {0}: nothing to migrate")]
    NotNeeded(u32),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("writing the blocks failed, the ledger is unchanged (still format 1): {0}")]
    Write(String),
    #[error("entry {seq} does not verify, nothing migrated: {why}")]
    Check { seq: u64, why: String },
}

/// Blocks written per (unsynced) write batch while converting.
const BLOCKS_PER_WRITE: usize = 4096;

impl crate::Store {
    /// Converts the format-1 store at `path` to format 2. Every entry is handed to `check`, in
    /// order, before anything is switched (the engine recomputes the chain there: a journal
    /// that does not verify is not migrated). The blocks are written first, while the format
    /// record still says 1; one last synced write removes the per-entry records and sets the
    /// format to 2. A crash before it leaves a format-1 store (the partly written blocks are
    /// cleared by the next attempt); after it, a format-2 store.
    ///
    /// `covered_keys` are metadata keys under which the last write also records the head's
    /// sequence number (big-endian u64): the engine's marks that the other records (state,
    /// balances, index), written per batch by format 1, cover every entry.
    pub fn migrate_v1(
        path: &Path,
        check: &mut dyn FnMut(&StoredEntry) -> Result<(), String>,
        covered_keys: &[&[u8]],
    ) -> Result<MigrateReport, MigrateError> {
        if !path.join("CURRENT").exists() {
            return Err(OpenError::Missing(path.to_path_buf()).into());
        }
        let db = DB::open_cf_descriptors(&db_options(), path, cf_descriptors())
            .map_err(|e| open_error(path, e))?;
        let cf = |name: &str| db.cf_handle(name).expect("column families are created at open");
        let format = db
            .get_cf(cf(CF_META), META_FORMAT)
            .map_err(read_error)?
            .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| ReadError::Corrupt("no format record of 4 bytes".into()))?;
        if format != 1 {
            return Err(MigrateError::NotNeeded(format));
        }
        let head = db
            .get_cf(cf(CF_META), META_HEAD)
            .map_err(read_error)?
            .ok_or_else(|| ReadError::Corrupt("no head record".into()))
            .and_then(|v| decode_head(&v).map_err(ReadError::Corrupt))?;
        let write = |batch: WriteBatch, sync: bool| {
            let mut wo = WriteOptions::default();
            wo.set_sync(sync);
            db.write_opt(batch, &wo).map_err(|e| MigrateError::Write(engine(e)))
        };
        // Blocks left by an interrupted attempt.
        let mut clear = WriteBatch::default();
        clear.delete_range_cf(cf(CF_BLOCKS), &[][..], &[0xffu8; 9][..]);
        write(clear, false)?;

        let mut batch = WriteBatch::default();
        let mut in_batch = 0usize;
        let mut block = Vec::new();
        let mut expected = 1u64;
        let mut last_hash = [0u8; 32];
        for record in db.iterator_cf(cf(CF_JOURNAL), IteratorMode::Start) {
            let (k, v) = record.map_err(read_error)?;
            let e = decode_entry(&k, &v)?;
            if e.seq != expected {
                return Err(MigrateError::Check {
                    seq: expected,
                    why: format!("missing (the next stored entry is {})", e.seq),
                });
            }
            check(&e).map_err(|why| MigrateError::Check { seq: e.seq, why })?;
            blocks::push_record(&mut block, &e.chain_hash, &e.bytes);
            if e.seq % BLOCK_ENTRIES == 0 || e.seq == head.seq {
                batch.put_cf(cf(CF_BLOCKS), blocks::block_key(blocks::block_of(e.seq)), &block);
                block.clear();
                in_batch += 1;
                if in_batch == BLOCKS_PER_WRITE {
                    write(std::mem::take(&mut batch), false)?;
                    in_batch = 0;
                }
            }
            last_hash = e.chain_hash;
            expected += 1;
        }
        let entries = expected - 1;
        if entries != head.seq || (entries > 0 && last_hash != head.hash) {
            return Err(MigrateError::Check {
                seq: entries,
                why: format!("the head names entry {} but the journal ends here", head.seq),
            });
        }
        batch.delete_range_cf(cf(CF_JOURNAL), &[][..], &[0xffu8; 9][..]);
        batch.put_cf(cf(CF_META), META_FORMAT, STORAGE_FORMAT_VERSION.to_le_bytes());
        for key in covered_keys {
            assert!(*key != META_FORMAT && *key != META_HEAD, "reserved meta key");
            batch.put_cf(cf(CF_META), key, head.seq.to_be_bytes());
        }
        write(batch, true)?;
        Ok(MigrateReport { entries, head })
    }
}
