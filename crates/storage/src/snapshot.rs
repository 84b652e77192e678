//! Point-in-time views of the store for long reads (`verify`) that must not stop the writer.

use rocksdb::{DB, Direction, IteratorMode};

use crate::{
    CF_BALANCES, CF_BLOCKS, CF_IDS, CF_META, CF_STATE, Head, KeyValue, RawEntries, ReadError,
    Store, StoredEntry, blocks, journal_entries, key_values, read_error,
};

/// A consistent point-in-time view of the store, for long reads (`verify`) that must not stop
/// the writer: entries, state and balances as they were when it was taken, with the head that
/// covers them.
pub struct StoreSnapshot<'a> {
    store: &'a Store,
    snapshot: rocksdb::SnapshotWithThreadMode<'a, DB>,
    head: Head,
}

impl std::fmt::Debug for StoreSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSnapshot").field("head", &self.head).finish_non_exhaustive()
    }
}

impl Store {
    /// Takes a snapshot. An append holds the head lock for its whole write, so a snapshot taken
    /// under it holds either all of a batch or none of it, and its head is the last batch's.
    pub fn snapshot(&self) -> StoreSnapshot<'_> {
        let head = self.head.lock().expect("head lock is never held across a panic");
        let snapshot = self.db.snapshot();
        StoreSnapshot { store: self, snapshot, head: *head }
    }
}

impl StoreSnapshot<'_> {
    /// The head the snapshot covers.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Entries with `from <= seq`, in order, at most `limit`, as of the snapshot.
    pub fn entries(
        &self,
        from: u64,
        limit: usize,
    ) -> impl Iterator<Item = Result<StoredEntry, ReadError>> + '_ {
        let from = from.max(1);
        let key = blocks::block_key(blocks::block_of(from));
        journal_entries(
            self.snapshot.iterator_cf(
                self.store.cf(CF_BLOCKS),
                IteratorMode::From(&key, Direction::Forward),
            ),
            from,
            limit,
        )
    }

    /// Reads the entries with `from <= seq`, in order, at most `limit`, as of the snapshot, raw
    /// into `out` (emptied first, its buffers reused): one sequential scan of the blocks, one
    /// copy per block, nothing allocated per entry. Every block read is checked whole.
    pub fn read_entries(
        &self,
        from: u64,
        limit: usize,
        out: &mut RawEntries,
    ) -> Result<(), ReadError> {
        out.clear();
        let from = from.max(1);
        let mut blocks = self.snapshot.raw_iterator_cf(self.store.cf(CF_BLOCKS));
        blocks.seek(blocks::block_key(blocks::block_of(from)));
        while out.len() < limit
            && let (Some(key), Some(value)) = (blocks.key(), blocks.value())
        {
            out.push_block(blocks::parse_block_key(key)?, value, from, limit)?;
            blocks.next();
        }
        blocks.status().map_err(read_error)
    }

    /// One `state` record, as of the snapshot.
    pub fn state_record(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        self.snapshot.get_cf(self.store.cf(CF_STATE), key).map_err(read_error)
    }

    /// One metadata record, as of the snapshot.
    pub fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        self.snapshot.get_cf(self.store.cf(CF_META), key).map_err(read_error)
    }

    fn scan(&self, cf: &str) -> Result<Vec<KeyValue>, ReadError> {
        key_values(self.snapshot.iterator_cf(self.store.cf(cf), IteratorMode::Start))
    }

    /// Every materialised balance, as of the snapshot.
    pub fn balances(&self) -> Result<Vec<KeyValue>, ReadError> {
        self.scan(CF_BALANCES)
    }

    /// Every materialised state record, as of the snapshot.
    pub fn state(&self) -> Result<Vec<KeyValue>, ReadError> {
        self.scan(CF_STATE)
    }

    /// Calls `f` with every state record in key order, as of the snapshot (nothing copied);
    /// `f` returns false to stop the scan early.
    pub fn state_for_each(&self, f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<(), ReadError> {
        crate::for_each(self.snapshot.raw_iterator_cf(self.store.cf(CF_STATE)), f)
    }

    /// [`StoreSnapshot::state_for_each`] over the records whose keys are at or after `from` and
    /// before `to`, as of the snapshot ([`Store::state_range_for_each`]).
    pub fn state_range_for_each(
        &self,
        from: &[u8],
        to: &[u8],
        f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), ReadError> {
        let mut o = crate::scan_options(usize::MAX);
        o.set_iterate_upper_bound(to.to_vec());
        let mut records = self.snapshot.raw_iterator_cf_opt(self.store.cf(CF_STATE), o);
        records.seek(from);
        crate::for_each_from(records, f)
    }

    /// [`StoreSnapshot::state_range_for_each`] over each of `ranges` (`from`, `to`: at or after
    /// the one, before the other), in ascending order and not overlapping, with one iterator:
    /// `f` is given the range's index with each record. Many small ranges close together (a
    /// member's pages, member after member) cost a seek each, not an iterator each.
    pub fn state_ranges_for_each(
        &self,
        ranges: &[(Vec<u8>, Vec<u8>)],
        mut f: impl FnMut(usize, &[u8], &[u8]),
    ) -> Result<(), ReadError> {
        let mut records = self.snapshot.raw_iterator_cf(self.store.cf(CF_STATE));
        for (i, (from, to)) in ranges.iter().enumerate() {
            records.seek(from);
            while let (Some(k), Some(v)) = (records.key(), records.value()) {
                if k >= to.as_slice() {
                    break;
                }
                f(i, k, v);
                records.next();
            }
            records.status().map_err(crate::read_error)?;
        }
        Ok(())
    }

    /// [`StoreSnapshot::state_for_each`] for the materialised balances.
    pub fn balances_for_each(&self, f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<(), ReadError> {
        crate::for_each(self.snapshot.raw_iterator_cf(self.store.cf(CF_BALANCES)), f)
    }

    /// Looks up many keys of the idempotency and member index at once, as of the snapshot.
    pub fn ids_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, ReadError> {
        let cf = self.store.cf(CF_IDS);
        self.snapshot
            .multi_get_cf(keys.iter().map(|k| (cf, *k)))
            .into_iter()
            .map(|r| r.map_err(read_error))
            .collect()
    }

    /// Calls `f` with every record of the idempotency and member index, in key order, as of the
    /// snapshot (one sequential scan, nothing copied).
    pub fn ids_for_each(&self, mut f: impl FnMut(&[u8], &[u8])) -> Result<(), ReadError> {
        crate::for_each(self.snapshot.raw_iterator_cf(self.store.cf(CF_IDS)), |k, v| {
            if k != crate::INDEX_UNTIL_KEY {
                f(k, v);
            }
            true
        })
    }

    /// How many records the idempotency and member index holds, as of the snapshot (the
    /// [`crate::INDEX_UNTIL_KEY`] record is not one).
    pub fn ids_count(&self) -> Result<u64, ReadError> {
        let mut n = 0u64;
        for r in self.snapshot.iterator_cf(self.store.cf(CF_IDS), IteratorMode::Start) {
            let (k, _) = r.map_err(read_error)?;
            n += u64::from(&*k != crate::INDEX_UNTIL_KEY);
        }
        Ok(n)
    }

    /// [`crate::Store::index_until`] as of the snapshot.
    pub fn index_until(&self) -> Result<u64, ReadError> {
        let cf = self.store.cf(CF_IDS);
        crate::parse_index_until(
            self.snapshot.get_cf(cf, crate::INDEX_UNTIL_KEY).map_err(read_error)?,
        )
    }
}
