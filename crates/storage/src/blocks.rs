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
    let mut rest = value;
    let first = block
        .checked_mul(BLOCK_ENTRIES)
        .and_then(|s| s.checked_add(1))
        .ok_or_else(|| ReadError::Corrupt(format!("journal block number {block} is too large")))?;
    while !rest.is_empty() {
        let seq = first + out.len() as u64;
        if out.len() as u64 == BLOCK_ENTRIES {
            return Err(ReadError::Corrupt(format!(
                "journal block {block} holds more than {BLOCK_ENTRIES} entries"
            )));
        }
        if rest.len() < RECORD_HEADER {
            return Err(ReadError::Corrupt(format!("journal record of entry {seq} is truncated")));
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let chain_hash: [u8; 32] = rest[4..RECORD_HEADER].try_into().expect("32 bytes");
        let end =
            RECORD_HEADER.checked_add(len).filter(|end| *end <= rest.len()).ok_or_else(|| {
                ReadError::Corrupt(format!("journal record of entry {seq} is truncated"))
            })?;
        out.push(StoredEntry { seq, chain_hash, bytes: rest[RECORD_HEADER..end].to_vec() });
        rest = &rest[end..];
    }
    if out.is_empty() {
        return Err(ReadError::Corrupt(format!("journal block {block} is empty")));
    }
    Ok(out)
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
