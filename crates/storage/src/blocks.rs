//! The journal's layout on disk: entries in aligned blocks of [`BLOCK_ENTRIES`], one RocksDB
//! record per block (docs/FORMAT.md §2).
//!
//! Block `b` (key: `b` as a big-endian u64 in the `blocks` column family) holds entries
//! `16·b + 1 ..= 16·b + 16`, in order, each as
//! `len: u32 LE ‖ chain hash (32 bytes) ‖ canonical bytes (len bytes)`. Only the last block
//! may hold fewer than 16; an append that starts inside it rewrites it whole. The sequence
//! number of an entry is its position; the canonical bytes carry it too, and `verify` checks
//! that the two agree.

use crate::{ReadError, StoredEntry};

/// Entries per journal block: the width of the Merkle subtrees whose nodes are not stored
/// (`TREE_LEVEL_STORED_MIN` = 4 in the engine), so one block read serves one proof's leaves.
pub const BLOCK_ENTRIES: u64 = 16;

/// Bytes of one record's header: the length and the chain hash.
const RECORD_HEADER: usize = 4 + 32;

/// The block that holds entry `seq` (from 1).
pub(crate) fn block_of(seq: u64) -> u64 {
    (seq - 1) / BLOCK_ENTRIES
}

pub(crate) fn block_key(block: u64) -> [u8; 8] {
    block.to_be_bytes()
}

/// Appends one entry's record to a block's bytes.
pub(crate) fn push_record(block: &mut Vec<u8>, chain_hash: &[u8; 32], bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("an entry is far smaller than 4 GiB");
    block.extend_from_slice(&len.to_le_bytes());
    block.extend_from_slice(chain_hash);
    block.extend_from_slice(bytes);
}

/// The block number of a stored key; anything but 8 bytes is not a key this layer wrote.
pub(crate) fn parse_block_key(key: &[u8]) -> Result<u64, ReadError> {
    let k: [u8; 8] = key
        .try_into()
        .map_err(|_| ReadError::Corrupt(format!("journal block key of {} bytes", key.len())))?;
    Ok(u64::from_be_bytes(k))
}

/// The records of block `block`, each with its sequence number; every byte must belong to a
/// whole record, and a block holds 1 to 16 of them.
pub(crate) fn decode_block(block: u64, value: &[u8]) -> Result<Vec<StoredEntry>, ReadError> {
    let mut out = Vec::with_capacity(BLOCK_ENTRIES as usize);
    split_block(block, value, |seq, at, len| {
        let chain_hash: [u8; 32] = value[at + 4..at + RECORD_HEADER].try_into().expect("32 bytes");
        let bytes = value[at + RECORD_HEADER..at + RECORD_HEADER + len].to_vec();
        out.push(StoredEntry { seq, chain_hash, bytes });
    })?;
    Ok(out)
}

/// Checks that every byte of block `block` belongs to one of 1 to 16 whole records, calling
/// `record(seq, offset of its header, length of its canonical bytes)` for each, in order (and
/// for the records before a failure).
fn split_block(
    block: u64,
    value: &[u8],
    mut record: impl FnMut(u64, usize, usize),
) -> Result<(), ReadError> {
    let first = block
        .checked_mul(BLOCK_ENTRIES)
        .and_then(|s| s.checked_add(1))
        .ok_or_else(|| ReadError::Corrupt(format!("journal block number {block} is too large")))?;
    let mut at = 0;
    let mut count = 0u64;
    while at < value.len() {
        let seq = first + count;
        if count == BLOCK_ENTRIES {
            return Err(ReadError::Corrupt(format!(
                "journal block {block} holds more than {BLOCK_ENTRIES} entries"
            )));
        }
        let rest = &value[at..];
        if rest.len() < RECORD_HEADER {
            return Err(ReadError::Corrupt(format!("journal record of entry {seq} is truncated")));
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let end =
            RECORD_HEADER.checked_add(len).filter(|end| *end <= rest.len()).ok_or_else(|| {
                ReadError::Corrupt(format!("journal record of entry {seq} is truncated"))
            })?;
        record(seq, at, len);
        at += end;
        count += 1;
    }
    if count == 0 {
        return Err(ReadError::Corrupt(format!("journal block {block} is empty")));
    }
    Ok(())
}

/// Consecutive journal records read raw into one buffer, which is reused from one read to the
/// next: no allocation per entry (`StoreSnapshot::read_entries`).
#[derive(Debug, Default)]
pub struct RawEntries {
    bytes: Vec<u8>,
    /// Per record: its sequence number, where its header starts in `bytes`, the length of its
    /// canonical bytes.
    records: Vec<(u64, usize, usize)>,
}

/// One journal record, borrowed from [`RawEntries`].
#[derive(Debug, Clone, Copy)]
pub struct RawEntry<'a> {
    pub seq: u64,
    pub chain_hash: &'a [u8; 32],
    pub bytes: &'a [u8],
}

impl RawEntries {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The `i`-th record read.
    pub fn get(&self, i: usize) -> RawEntry<'_> {
        let (seq, at, len) = self.records[i];
        RawEntry {
            seq,
            chain_hash: self.bytes[at + 4..at + RECORD_HEADER].try_into().expect("32 bytes"),
            bytes: &self.bytes[at + RECORD_HEADER..at + RECORD_HEADER + len],
        }
    }

    /// The records read, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RawEntry<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }

    /// Appends the records of block `block` (its stored value) with `from <= seq`, while fewer
    /// than `limit` are held; the whole block is checked as [`decode_block`] does.
    pub(crate) fn push_block(
        &mut self,
        block: u64,
        value: &[u8],
        from: u64,
        limit: usize,
    ) -> Result<(), ReadError> {
        let base = self.bytes.len();
        let records = &mut self.records;
        split_block(block, value, |seq, at, len| {
            if seq >= from && records.len() < limit {
                records.push((seq, base + at, len));
            }
        })?;
        self.bytes.extend_from_slice(value);
        Ok(())
    }
}

/// Encodes whole records into a block's bytes.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn encode_block(entries: &[StoredEntry]) -> Vec<u8> {
    let mut v = Vec::with_capacity(entries.iter().map(|e| RECORD_HEADER + e.bytes.len()).sum());
    for e in entries {
        push_record(&mut v, &e.chain_hash, &e.bytes);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, len: usize) -> StoredEntry {
        StoredEntry { seq, chain_hash: [seq as u8; 32], bytes: vec![seq as u8; len] }
    }

    #[test]
    fn a_block_decodes_to_the_entries_it_was_encoded_from() {
        let entries: Vec<_> = (17..=32).map(|s| entry(s, s as usize)).collect();
        assert_eq!(decode_block(1, &encode_block(&entries)).unwrap(), entries);
        let partial: Vec<_> = (1..=3).map(|s| entry(s, 0)).collect();
        assert_eq!(decode_block(0, &encode_block(&partial)).unwrap(), partial);
    }

    #[test]
    fn raw_records_are_the_decoded_entries() {
        let first: Vec<_> = (1..=16).map(|s| entry(s, s as usize)).collect();
        let second: Vec<_> = (17..=20).map(|s| entry(s, 3)).collect();
        let mut raw = RawEntries::default();
        raw.push_block(0, &encode_block(&first), 5, 14).unwrap();
        raw.push_block(1, &encode_block(&second), 5, 14).unwrap();
        let got: Vec<_> = raw
            .iter()
            .map(|r| StoredEntry { seq: r.seq, chain_hash: *r.chain_hash, bytes: r.bytes.to_vec() })
            .collect();
        assert_eq!(got, [&first[4..], &second[..2]].concat());
        for cut in [1, 4, 35, 36] {
            let mut raw = RawEntries::default();
            let bytes = encode_block(&second);
            assert!(raw.push_block(1, &bytes[..cut], 1, 16).unwrap_err().is_integrity());
        }
    }

    #[test]
    fn a_truncated_overlong_or_empty_block_is_corruption() {
        let entries: Vec<_> = (1..=2).map(|s| entry(s, 10)).collect();
        let bytes = encode_block(&entries);
        for cut in [1, 4, 35, 36, bytes.len() - 1] {
            assert!(decode_block(0, &bytes[..cut]).unwrap_err().is_integrity(), "cut at {cut}");
        }
        assert!(decode_block(0, &[]).unwrap_err().is_integrity());
        let seventeen: Vec<_> = (1..=17).map(|s| entry(s, 1)).collect();
        assert!(decode_block(0, &encode_block(&seventeen)).unwrap_err().is_integrity());
        assert!(decode_block(u64::MAX, &bytes).unwrap_err().is_integrity());
    }
}
