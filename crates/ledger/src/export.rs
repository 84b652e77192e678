//! Offline verification of an exported journal (`export journal --format jsonl`, docs/FORMAT.md
//! §7) from its bytes alone, against a signed digest and a pinned key. Pure: no database.

use std::collections::HashMap;
use std::io::BufRead;

use serde_json::Value;

use crate::digest::{CheckError, SignedDigest};
use crate::entry::{CHAIN_GENESIS, Entry, Hash32, chain_next};
use crate::merkle;
use crate::{Fen, Fund};

/// What an offline verification of an exported journal established.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub entries: u64,
    pub head: Hash32,
    pub root: Hash32,
    /// The digest checked against, if one was given: its tree size.
    pub digest_tree_size: Option<u64>,
    pub fund_totals: Vec<(Fund, Fen)>,
}

/// Verifies an exported journal from its bytes alone: every `hash` is the chain over the
/// bytes, sequence numbers are dense from 1, every entry decodes and balances, and — given a
/// signed digest and the pinned key it must be signed by — the signature holds under that key
/// and the digest's tree size, root and head are those of the export's first `tree_size`
/// entries.
pub fn verify_export(
    reader: impl BufRead,
    digest: Option<(&SignedDigest, &[u8; 32])>,
) -> Result<ExportReport, CheckError> {
    let bad = |line: usize, what: String| CheckError::Integrity(format!("line {line}: {what}"));
    // The key rotations in the export are followed from the pinned key; the digest must be
    // signed by the key held at its tree size.
    let mut key = digest.map(|(_, pinned)| *pinned);
    let mut key_at_digest = digest.filter(|(d, _)| d.tree_size == 0).map(|(_, pinned)| *pinned);
    let digest = digest.map(|(d, _)| d);
    let mut previous = CHAIN_GENESIS;
    let mut tree = merkle::RootBuilder::default();
    let mut at_digest: Option<(Hash32, Hash32)> = None;
    let mut totals: HashMap<Fund, i128> = HashMap::new();
    let mut n = 0u64;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| CheckError::Io(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(&line).map_err(|e| bad(i + 1, format!("not JSON: {e}")))?;
        let seq = v["seq"].as_u64().ok_or_else(|| bad(i + 1, "no seq".into()))?;
        if seq != n + 1 {
            return Err(bad(
                i + 1,
                format!(
                    "entry {} expected, found {seq} (entries missing, reordered or repeated)",
                    n + 1
                ),
            ));
        }
        let bytes = hex::decode(v["bytes"].as_str().ok_or_else(|| bad(i + 1, "no bytes".into()))?)
            .map_err(|_| bad(i + 1, "bytes are not hex".into()))?;
        let hash = chain_next(&previous, &bytes);
        if v["hash"].as_str() != Some(hex::encode(hash).as_str()) {
            return Err(bad(
                i + 1,
                format!("entry {seq}: the chain hash does not match the bytes"),
            ));
        }
        let entry = Entry::from_canonical_bytes(&bytes)
            .map_err(|e| bad(i + 1, format!("entry {seq}: {e}")))?;
        if entry.seq != seq {
            return Err(bad(i + 1, format!("entry {seq}: its bytes say seq {}", entry.seq)));
        }
        for p in &entry.postings {
            *totals.entry(p.account.fund).or_default() += i128::from(p.amount.0);
        }
        tree.push(merkle::leaf_hash(&bytes));
        previous = hash;
        n = seq;
        if let Some(k) = key.as_mut() {
            *k = crate::transfer::follow_rotation(k, &entry);
        }
        if digest.is_some_and(|d| d.tree_size == n) {
            at_digest = Some((tree.root(), hash));
            key_at_digest = key;
        }
    }
    if let Some(d) = digest {
        if d.tree_size == 0 {
            at_digest = Some((merkle::empty_root(), CHAIN_GENESIS));
        }
        if let Some(k) = key_at_digest {
            d.verify_signature(Some(&k))?;
        }
        let Some((root, head)) = at_digest else {
            return Err(CheckError::Integrity(format!(
                "the digest covers {} entries but the export has only {n}: the tail was cut",
                d.tree_size
            )));
        };
        if root != d.root {
            return Err(CheckError::Integrity(format!(
                "the Merkle root of the first {} entries differs from the signed digest's",
                d.tree_size
            )));
        }
        if head != d.head {
            return Err(CheckError::Integrity(
                "the chain head differs from the signed digest's".into(),
            ));
        }
    }
    let mut fund_totals: Vec<(Fund, Fen)> = Vec::new();
    for f in Fund::ALL {
        let t = totals.get(&f).copied().unwrap_or(0);
        if t != 0 {
            return Err(CheckError::Integrity(format!(
                "the {f} fund's postings sum to {t} fen, not zero"
            )));
        }
        fund_totals.push((f, Fen(0)));
    }
    Ok(ExportReport {
        entries: n,
        head: previous,
        root: tree.root(),
        digest_tree_size: digest.map(|d| d.tree_size),
        fund_totals,
    })
}
