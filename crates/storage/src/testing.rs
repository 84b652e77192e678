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
        self.tamper_block_of(entry.seq, |entries| {
            match entries.iter_mut().find(|e| e.seq == entry.seq) {
                Some(e) => *e = entry.clone(),
                None => {
                    entries.push(entry.clone());
                    entries.sort_by_key(|e| e.seq);
                }
            }
        })
    }

    /// Deletes one stored entry's raw record from its block (the entries after it in the block
    /// move up one place, as a record cut out of the block would).
    pub fn tamper_delete_entry(&self, seq: u64) -> Result<(), ReadError> {
        self.tamper_block_of(seq, |entries| entries.retain(|e| e.seq != seq))
    }

    /// Puts a deleted entry back at its place in its block (the inverse of
    /// [`Store::tamper_delete_entry`]): the entries after it move down one place.
    pub fn tamper_insert_entry(&self, entry: &StoredEntry) -> Result<(), ReadError> {
        let at = ((entry.seq - 1) % BLOCK_ENTRIES) as usize;
        self.tamper_block_of(entry.seq, |entries| {
            entries.insert(at.min(entries.len()), entry.clone())
        })
    }

    /// Rewrites the block holding `seq` with `edit` applied to its entries (the block is
    /// deleted if none remain). The entries' positions, not their `seq` fields, are stored.
    fn tamper_block_of(
        &self,
        seq: u64,
        edit: impl FnOnce(&mut Vec<StoredEntry>),
    ) -> Result<(), ReadError> {
        let cf = self.cf(CF_BLOCKS);
        let block = blocks::block_of(seq);
        let key = blocks::block_key(block);
        let mut entries = match self.db.get_cf(cf, key).map_err(read_error)? {
            Some(v) => blocks::decode_block(block, &v)?,
            None => Vec::new(),
        };
        edit(&mut entries);
        if entries.is_empty() {
            self.db.delete_cf(cf, key).map_err(read_error)
        } else {
            self.db.put_cf(cf, key, blocks::encode_block(&entries)).map_err(read_error)
        }
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

    /// Overwrites (`Some`) or deletes (`None`) one metadata record other than the head and the
    /// storage format.
    pub fn tamper_meta(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), ReadError> {
        assert!(key != META_HEAD && key != META_FORMAT, "reserved meta key");
        match value {
            Some(v) => self.db.put_cf(self.cf(CF_META), key, v),
            None => self.db.delete_cf(self.cf(CF_META), key),
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

impl Store {
    /// Writes a store of storage format 1 (one journal record per entry, as versions before
    /// the journal blocks wrote it) at `path`, with `entries` and extra state records: what
    /// `migrate` converts. Test only.
    pub fn create_format1_for_tests(
        path: &Path,
        entries: &[StoredEntry],
        records: &[(&str, Vec<KeyValue>)],
    ) -> Result<(), OpenError> {
        let mut o = db_options();
        o.create_if_missing(true);
        let db = DB::open_cf_descriptors(&o, path, cf_descriptors())
            .map_err(|e| OpenError::Engine { path: path.to_path_buf(), reason: engine(e) })?;
        let cf = |name: &str| db.cf_handle(name).expect("created at open");
        let mut batch = WriteBatch::default();
        for e in entries {
            let mut v = e.chain_hash.to_vec();
            v.extend_from_slice(&e.bytes);
            batch.put_cf(cf(CF_JOURNAL), seq_key(e.seq), v);
        }
        for (name, kvs) in records {
            for (k, v) in kvs {
                batch.put_cf(cf(name), k, v);
            }
        }
        let head =
            entries.last().map_or(Head::default(), |e| Head { seq: e.seq, hash: e.chain_hash });
        batch.put_cf(cf(CF_META), META_FORMAT, 1u32.to_le_bytes());
        batch.put_cf(cf(CF_META), META_HEAD, encode_head(&head));
        db.write(batch)
            .map_err(|e| OpenError::Engine { path: path.to_path_buf(), reason: engine(e) })
    }

    /// Every record of the column family `cf` (`ids`, `balances`, `state`, `tree`, `meta`):
    /// to copy a store's records in tests.
    pub fn records_for_tests(&self, cf: &str) -> Result<Vec<KeyValue>, ReadError> {
        self.scan(cf)
    }
}
