//! The machine's limit for the benchmarks: the same canonical bytes written with the SHA-256
//! chain and nothing else (no parsing, no rules, no idempotency or member records, no Merkle
//! tree), one synced RocksDB write batch per `batch` entries, into a fresh store. Every
//! benchmark prints its own rate as a ratio to this one, measured in the same run, because
//! this machine's speed varies by 2× between hours.

use std::path::Path;
use std::time::{Duration, Instant};

use junbao_ledger::entry::{Hash32, chain_next};
use junbao_storage::{Append, Entries, Head, OpenError, Store, WriteError};

/// Writing the raw journal failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RawWriteError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Appends `entries` (canonical bytes, in order) to a new store at `dir` in synced batches of
/// `batch`, chaining them from the zero hash. Returns the time the appends took (store creation
/// excluded) and the last head.
pub fn write_raw_journal(
    dir: &Path,
    entries: &[Vec<u8>],
    batch: usize,
) -> Result<(Duration, Head), RawWriteError> {
    let store = Store::create(dir)?;
    let mut head = store.head();
    let started = Instant::now();
    for chunk in entries.chunks(batch.max(1)) {
        let mut stored = Entries::starting_at(head.seq + 1);
        let mut hash: Hash32 = head.hash;
        for bytes in chunk {
            hash = chain_next(&hash, bytes);
            stored.push(bytes, hash);
        }
        let next = Head { seq: head.seq + chunk.len() as u64, hash };
        store.append(Append { entries: stored, head: next, ..Append::default() })?;
        head = next;
    }
    Ok((started.elapsed(), head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_journal_chains_every_entry_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<Vec<u8>> = (0..25u8).map(|i| vec![i; 3 + i as usize]).collect();
        let (_, head) = write_raw_journal(&dir.path().join("raw"), &entries, 10).unwrap();
        assert_eq!(head.seq, 25);
        let mut h = [0u8; 32];
        for e in &entries {
            h = chain_next(&h, e);
        }
        assert_eq!(head.hash, h);
        let store = Store::open(&dir.path().join("raw")).unwrap();
        let back: Vec<Vec<u8>> = store.entries(1, 100).map(|r| r.unwrap().bytes).collect();
        assert_eq!(back, entries);
    }
}
