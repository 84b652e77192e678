//! Hooks for crash and tamper tests (feature `testing`). They bypass every check of the ledger:
//! never for production.

use super::*;

/// Hooks for crash and tamper tests. They bypass every check of the ledger: never for production.
impl Store {
    /// The next sync fails as a disk failure would, and poisons the handle.
    pub fn inject_sync_failure(&self) {
        self.fail_next_sync.store(true, Ordering::SeqCst);
    }

    /// The next write fails as a disk failure would, and poisons the handle.
    pub fn inject_write_failure(&self) {
        self.fail_next_write.store(true, Ordering::SeqCst);
    }

    /// The next read of one entry by number ([`Store::entry`]) fails as a disk failure would
    /// (`ReadError::Engine`); reads poison nothing.
    pub fn inject_read_failure(&self) {
        self.fail_next_read.store(true, Ordering::SeqCst);
    }

    /// Overwrites one stored entry's raw record (chain hash and bytes), as an attacker with
    /// write access to the database could.
    pub fn tamper_entry(&self, entry: &StoredEntry) -> Result<(), ReadError> {
        let mut v = entry.chain_hash.to_vec();
        v.extend_from_slice(&entry.bytes);
        self.db.put_cf(self.cf(CF_JOURNAL), seq_key(entry.seq), v).map_err(read_error)
    }

    /// Deletes one stored entry's raw record.
    pub fn tamper_delete_entry(&self, seq: u64) -> Result<(), ReadError> {
        self.db.delete_cf(self.cf(CF_JOURNAL), seq_key(seq)).map_err(read_error)
    }

    /// Overwrites one materialised balance.
    pub fn tamper_balance(&self, key: &[u8], fen: i64) -> Result<(), ReadError> {
        self.db.put_cf(self.cf(CF_BALANCES), key, fen.to_le_bytes()).map_err(read_error)
    }

    /// Overwrites (`Some`) or deletes (`None`) one materialised state record.
    pub fn tamper_state(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), ReadError> {
        match value {
            Some(v) => self.db.put_cf(self.cf(CF_STATE), key, v),
            None => self.db.delete_cf(self.cf(CF_STATE), key),
        }
        .map_err(read_error)
    }

    /// Overwrites (`Some`) or deletes (`None`) one record of the idempotency and member index
    /// (the `ids` column family).
    pub fn tamper_ids(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), ReadError> {
        match value {
            Some(v) => self.db.put_cf(self.cf(CF_IDS), key, v),
            None => self.db.delete_cf(self.cf(CF_IDS), key),
        }
        .map_err(read_error)
    }

    /// Rewrites the head record.
    pub fn tamper_head(&self, head: Head) -> Result<(), ReadError> {
        self.db.put_cf(self.cf(CF_META), META_HEAD, encode_head(&head)).map_err(read_error)?;
        *self.head.lock().expect("head lock") = head;
        Ok(())
    }
}
