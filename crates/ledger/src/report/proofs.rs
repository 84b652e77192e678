//! Merkle proofs as the contract prints them (docs/FORMAT.md): hashes in hex.

use serde::{Deserialize, Serialize};

use crate::entry::Hash32;

/// An inclusion proof of the entry at `leaf_index` (its sequence number less one) in the tree
/// of `tree_size` entries. Also the form a transfer package carries (docs/TRANSFER.md).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub leaf_hash: String,
    pub leaf_index: u64,
    pub path: Vec<String>,
    pub root: String,
    pub tree_size: u64,
}

impl InclusionProof {
    /// The proof of entry `seq` (from 1) in the tree of `tree_size` entries with `root`.
    pub fn new(seq: u64, tree_size: u64, leaf: &Hash32, path: &[Hash32], root: &Hash32) -> Self {
        InclusionProof {
            leaf_hash: hex::encode(leaf),
            leaf_index: seq.saturating_sub(1),
            path: path.iter().map(hex::encode).collect(),
            root: hex::encode(root),
            tree_size,
        }
    }
}

/// A consistency proof between the trees of `first` and `second` entries.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub first: u64,
    #[serde(serialize_with = "super::hex_bytes")]
    pub first_root: Hash32,
    #[serde(serialize_with = "super::hex_list")]
    pub path: Vec<Hash32>,
    pub second: u64,
    #[serde(serialize_with = "super::hex_bytes")]
    pub second_root: Hash32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::assert_sorted_keys;

    #[test]
    fn proofs_print_hex_in_sorted_key_order() {
        let p = InclusionProof::new(3, 4, &[1; 32], &[[2; 32]], &[3; 32]);
        assert_sorted_keys(&p);
        let v = serde_json::to_value(&p).expect("serialises");
        assert_eq!(v["leaf_index"], 2);
        assert_eq!(v["path"][0], hex::encode([2u8; 32]));
        let c = ConsistencyProof {
            first: 1,
            first_root: [1; 32],
            path: vec![[2; 32]],
            second: 2,
            second_root: [3; 32],
        };
        assert_sorted_keys(&c);
        assert_eq!(
            serde_json::to_value(&c).expect("serialises")["second_root"],
            hex::encode([3u8; 32])
        );
    }
}
