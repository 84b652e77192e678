//! Mirrors: a local copy of another ledger, built from its entries' canonical bytes and
//! trusted only as far as its signed digests, checked against a pinned key, vouch for it.
//!
//! The mirror never runs the rules on what it copies: an entry's postings and state effects
//! are taken as recorded ([`junbao_ledger::rules::Batch::apply_recorded`]), so a mirror built
//! with newer rules still copies old entries faithfully; it re-encodes each entry and requires
//! the very bytes it was given, recomputes the chain and the Merkle root, and stores nothing
//! unless they end at the signed digest's head and root.

use std::path::Path;

use junbao_ledger::entry::{CHAIN_GENESIS, Entry, Hash32, chain_next, event_fingerprint};
use junbao_ledger::merkle::{self, Frontier};
use junbao_storage::{Append, Head, Store};

// The digests a mirror has trusted are the same records `Ledger::digests` lists.
use crate::audit::{META_DIGEST_PREFIX, StoreNodes, TREE_LEVEL_STORED_MIN, tree_key};
use crate::{Clock, Ledger, LedgerOpenError, SignedDigest, StoreLookup, Writer};

/// Most entries one mirror step stores (one write). A mirror further behind catches up over
/// several signed digests, or starts from a restored backup (docs/OPERATIONS.md).
pub const MIRROR_STEP_ENTRIES_MAX: usize = junbao_storage::APPEND_ENTRIES_MAX;

/// Why a mirror step stored nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// The remote's entries or digests do not check out: stop and keep the evidence.
    #[error("integrity failure: {0}")]
    Integrity(String),
    /// The step is larger than one write may be.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Storage(String),
}

impl MirrorError {
    pub fn is_integrity(&self) -> bool {
        matches!(self, MirrorError::Integrity(_))
    }
}

/// An entry as the remote's journal gives it: number, canonical bytes, and the chain hash it
/// claims (checked, never trusted).
#[derive(Debug, Clone)]
pub struct RemoteEntry {
    pub seq: u64,
    pub bytes: Vec<u8>,
    pub chain_hash: Hash32,
}

impl Ledger {
    /// Creates an empty ledger for a mirror: no seed entries (the copied ledger's own come
    /// first), no signing key.
    pub fn create_mirror(path: &Path, clock: Clock) -> Result<Ledger, LedgerOpenError> {
        std::fs::create_dir_all(path).map_err(|e| {
            LedgerOpenError::Store(junbao_storage::OpenError::Engine {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        })?;
        let store = Store::create(path)?;
        // In the current state format from the start, as `init` makes a ledger (with the
        // record that keeps earlier versions out).
        crate::mark_state_format(&store)?;
        Ok(Ledger::with_defaults(store, Writer::empty(), clock, 0, crate::OpenTimings::default()))
    }

    /// The digest with the largest tree size this ledger keeps (signed here, or, in a mirror,
    /// the last one of the copied ledger it trusted).
    pub fn latest_digest(&self) -> Result<Option<SignedDigest>, crate::AuditError> {
        // Keys are the prefix, the tree size and the time, big endian: the last is the latest.
        let Some((_, v)) = self.store.meta_last(META_DIGEST_PREFIX)? else {
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_slice(&v)
            .map_err(|e| crate::AuditError::Integrity(format!("a stored digest: {e}")))?;
        Ok(Some(SignedDigest::from_json(&v)?))
    }

    /// Stores the entries that take this copy from its head to `digest`'s tree: checks that
    /// `digest` is signed by `trusted_key`, that the entries follow the head densely up to the
    /// digest's size, that each re-encodes to the bytes given, that the chain over them ends
    /// at the digest's head and the Merkle tree at its root; then writes the entries, their
    /// indexes and state, and the digest, in one synced write. Nothing is stored otherwise.
    ///
    /// A mirror far behind copies in steps: entries that end at `k`, short of the digest's
    /// size, are stored if `proof` (an RFC 6962 consistency proof from `k` to the digest's
    /// size) shows that the tree they give is a prefix of the signed tree. The digest itself
    /// is stored with the step that reaches it.
    pub fn append_recorded(
        &self,
        entries: Vec<RemoteEntry>,
        digest: &SignedDigest,
        trusted_key: &[u8; 32],
        proof: Option<&[Hash32]>,
    ) -> Result<Head, MirrorError> {
        let integrity = MirrorError::Integrity;
        digest
            .verify_signature(Some(trusted_key))
            .map_err(|e| integrity(format!("the remote digest: {e}")))?;
        if entries.len() > MIRROR_STEP_ENTRIES_MAX {
            return Err(MirrorError::TooLarge(format!(
                "{} entries in one step; at most {MIRROR_STEP_ENTRIES_MAX}",
                entries.len()
            )));
        }
        let mut w = self.writer();
        let head = self.store.head();
        let end = head.seq + entries.len() as u64;
        if end > digest.tree_size {
            return Err(integrity(format!(
                "{} entries after entry {} go past the digest's tree size {}",
                entries.len(),
                head.seq,
                digest.tree_size
            )));
        }
        let reaches_digest = end == digest.tree_size;
        // The batch changes the state in place; an error below drops it, which undoes it.
        let Writer { state, pending, bound, frontier: cached_frontier, .. } = &mut *w;
        let lookup = StoreLookup { store: &self.store, pending: &*pending };
        let mut batch = state.begin_bounded(
            head.seq,
            if head.seq == 0 { CHAIN_GENESIS } else { head.hash },
            *bound,
        );
        let mut previous = head.hash;
        for (i, e) in entries.iter().enumerate() {
            let seq = head.seq + 1 + i as u64;
            if e.seq != seq {
                return Err(integrity(format!("entry {seq} expected, the remote sent {}", e.seq)));
            }
            let hash = chain_next(&previous, &e.bytes);
            if hash != e.chain_hash {
                return Err(integrity(format!(
                    "entry {seq}: the chain hash the remote sent does not match the bytes"
                )));
            }
            previous = hash;
            let entry = Entry::from_canonical_bytes(&e.bytes)
                .map_err(|err| integrity(format!("entry {seq} does not decode: {err}")))?;
            // Its members' years out of memory read back if it reads them (`apply_recorded`).
            use crate::derived::RecordedError;
            crate::derived::apply_recorded(&self.store, &mut batch, entry, &lookup).map_err(
                |err| match err {
                    // This copy's disk failed reading the entry a reversal names.
                    RecordedError::Apply(junbao_ledger::ApplyError::Lookup(
                        junbao_ledger::LookupError::Io(m),
                    )) => MirrorError::Storage(format!("entry {seq}: {m}")),
                    RecordedError::Apply(other) => integrity(format!("entry {seq}: {other}")),
                    // This copy's own page is not what left memory: stop, as for the remote's.
                    RecordedError::Read(junbao_storage::ReadError::Corrupt(m)) => {
                        integrity(format!("entry {seq}: this copy's stored state: {m}"))
                    }
                    // This copy's disk failed.
                    RecordedError::Read(e) => MirrorError::Storage(format!("entry {seq}: {e}")),
                    RecordedError::Missed(member) => integrity(format!(
                        "entry {seq} read member {member}'s years out of memory, which it has \
                         none of"
                    )),
                },
            )?;
        }
        let ids: Vec<(Box<str>, u64, Hash32)> = batch
            .entries()
            .iter()
            .map(|e| (e.event.id.as_str().into(), e.seq, event_fingerprint(&e.event)))
            .collect();
        let prepared = batch.finish();
        for (i, given) in entries.iter().enumerate() {
            if prepared.entries.bytes_of(i) != given.bytes {
                return Err(integrity(format!(
                    "entry {}: its bytes are not the canonical encoding of what they say",
                    given.seq
                )));
            }
        }
        if reaches_digest && (prepared.head != digest.head || previous != digest.head) {
            return Err(integrity(format!(
                "the chain over entries 1..{} does not end at the signed head",
                digest.tree_size
            )));
        }
        // The tree: this copy's right edge, extended by the new leaves.
        let frontier = if cached_frontier.size == head.seq {
            std::mem::take(cached_frontier)
        } else {
            Frontier::read(&StoreNodes { store: &self.store }, head.seq)
                .map_err(|e| MirrorError::Storage(format!("this copy's Merkle tree: {e}")))?
        };
        let leaves: Vec<Hash32> = entries.iter().map(|e| merkle::leaf_hash(&e.bytes)).collect();
        let (tree, next_frontier) =
            merkle::append_with_frontier(&frontier, &leaves, TREE_LEVEL_STORED_MIN);
        let root = next_frontier.root();
        if reaches_digest {
            if root != digest.root {
                return Err(integrity(format!(
                    "the Merkle root of entries 1..{} differs from the signed root",
                    digest.tree_size
                )));
            }
        } else {
            let proof = proof.ok_or_else(|| {
                integrity(format!(
                    "entries up to {end} fall short of the digest's tree size {} and come \
                     without a consistency proof",
                    digest.tree_size
                ))
            })?;
            merkle::verify_consistency(end, digest.tree_size, &root, &digest.root, proof).map_err(
                |e| {
                    integrity(format!(
                        "the tree of entries 1..{end} is not a prefix of the signed tree of {} \
                         entries: {e}",
                        digest.tree_size
                    ))
                },
            )?;
        }
        // Taken apart in a block of its own, so that nothing else of it keeps the writer
        // borrowed.
        let (sealed, new_hash, changes, member_index) = {
            let p = prepared;
            (p.entries, p.head, p.changes, p.member_index)
        };
        let new_head = Head { seq: end, hash: new_hash };
        let append = Append {
            entries: crate::post::stored_entries(sealed),
            tree: tree.into_iter().map(|(l, i, h)| (tree_key(l, i), h.to_vec())).collect(),
            meta: if reaches_digest {
                vec![(
                    crate::audit::digest_meta_key(digest),
                    digest.to_json().to_string().into_bytes(),
                )]
            } else {
                Vec::new()
            },
            head: new_head,
            ..Append::default()
        };
        self.store.append(append).map_err(|e| MirrorError::Storage(e.to_string()))?;
        *cached_frontier = next_frontier;
        *bound = bound.after(&changes);
        changes.commit_marking(&mut pending.dirty);
        self.absorb(&mut w, ids, &member_index);
        Ok(new_head)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::system_clock;

    fn ledger_with(dir: &Path, appropriations: usize, tag: &str) -> Ledger {
        let l = Ledger::init(dir, system_clock()).unwrap();
        let lines: Vec<String> = (0..appropriations)
            .map(|i| {
                format!(
                    r#"{{"id":"{tag}-{i}","type":"appropriation","fund":"medical","amount":"1.00"}}"#
                )
            })
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        l.post_lines(&refs).unwrap();
        l
    }

    fn remote(l: &Ledger, from: u64, to: u64) -> Vec<RemoteEntry> {
        l.store
            .entries(from, (to + 1 - from) as usize)
            .map(|e| {
                let e = e.unwrap();
                RemoteEntry { seq: e.seq, bytes: e.bytes, chain_hash: e.chain_hash }
            })
            .collect()
    }

    fn proof(l: &Ledger, from: u64, to: u64) -> Vec<Hash32> {
        merkle::consistency_path(&StoreNodes { store: &l.store }, from, to).unwrap()
    }

    #[test]
    fn a_mirror_copies_in_steps_each_proven_a_prefix_of_the_signed_tree() {
        let (a, m) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let key = SigningKey::from_bytes(&[7; 32]);
        let pinned = key.verifying_key().to_bytes();
        let source = ledger_with(a.path(), 40, "a");
        let d = source.digest(&key).unwrap();
        let mirror = Ledger::create_mirror(&m.path().join("copy"), system_clock()).unwrap();
        // Made in the current state format, with the record that keeps earlier versions out.
        assert!(crate::state_format_is_current(&mirror.store).unwrap());
        let fence = junbao_ledger::state::FORMAT_FENCE_KEY;
        assert!(mirror.store.state_record(fence).unwrap().is_some());

        let h = mirror
            .append_recorded(
                remote(&source, 1, 20),
                &d,
                &pinned,
                Some(&proof(&source, 20, d.tree_size)),
            )
            .unwrap();
        assert_eq!(h.seq, 20);
        assert!(mirror.latest_digest().unwrap().is_none(), "the digest comes with the last step");
        let h =
            mirror.append_recorded(remote(&source, 21, d.tree_size), &d, &pinned, None).unwrap();
        assert_eq!(h, source.head());
        assert_eq!(mirror.latest_digest().unwrap(), Some(d));
        let (ours, theirs) = (mirror.verify(&|_| {}).unwrap(), source.verify(&|_| {}).unwrap());
        assert_eq!(
            (ours.entries, ours.head, ours.accounts),
            (theirs.entries, theirs.head, theirs.accounts)
        );
    }

    #[test]
    fn a_step_from_another_history_or_with_changed_bytes_stores_nothing() {
        let (a, b, m) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let key = SigningKey::from_bytes(&[7; 32]);
        let pinned = key.verifying_key().to_bytes();
        let source = ledger_with(a.path(), 40, "a");
        let other = ledger_with(b.path(), 40, "b");
        let d = source.digest(&key).unwrap();
        let mirror = Ledger::create_mirror(&m.path().join("copy"), system_clock()).unwrap();

        // Another ledger's first entries, with the real ledger's proof: not a prefix.
        let err = mirror
            .append_recorded(
                remote(&other, 1, 20),
                &d,
                &pinned,
                Some(&proof(&source, 20, d.tree_size)),
            )
            .unwrap_err();
        assert!(err.is_integrity() && err.to_string().contains("not a prefix"), "{err}");

        // One changed byte, with the chain hash recomputed to match: the root gives it away.
        let mut entries = remote(&source, 1, d.tree_size);
        let last = entries.len() - 1;
        let i = entries[last].bytes.len() - 1;
        entries[last].bytes[i] ^= 1;
        entries[last].chain_hash = chain_next(&entries[last - 1].chain_hash, &entries[last].bytes);
        let err = mirror.append_recorded(entries, &d, &pinned, None).unwrap_err();
        assert!(err.is_integrity(), "{err}");

        // A digest signed by a key other than the pinned one.
        let err = mirror
            .append_recorded(remote(&source, 1, d.tree_size), &d, &[9; 32], None)
            .unwrap_err();
        assert!(err.is_integrity(), "{err}");
        assert_eq!(mirror.head().seq, 0, "nothing was stored");
    }
}
