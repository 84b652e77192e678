//! Property tests of the RFC 6962 proofs: for random tree sizes up to a few thousand, every
//! proof verifies, and any changed element (a path hash, the leaf, a root, an index, a missing
//! or extra element) makes it fail. (A different tree size with the same root and path can
//! verify when the path's shape is the same: the size and root are bound by the signed digest.)

use junbao_ledger::merkle::{
    MemoryTree, consistency_path, inclusion_path, leaf_hash, root, verify_consistency,
    verify_inclusion,
};
use proptest::prelude::*;

fn tree(n: u64) -> MemoryTree {
    MemoryTree { leaves: (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect() }
}

#[test]
fn every_proof_of_every_small_tree_verifies() {
    let t = tree(40);
    for n in 1..=40u64 {
        let r = root(&t, n).unwrap();
        assert_eq!(r, t.root_fast(n as usize));
        for m in 0..n {
            let p = inclusion_path(&t, m, n).unwrap();
            verify_inclusion(m, n, &t.leaves[m as usize], &p, &r).unwrap();
            let c = consistency_path(&t, m + 1, n).unwrap();
            verify_consistency(m + 1, n, &root(&t, m + 1).unwrap(), &r, &c).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn inclusion_proofs_verify_and_any_change_fails(n in 1u64..4000, m_seed in any::<u64>(), flip in any::<(usize, u8)>()) {
        let t = tree(n);
        let m = m_seed % n;
        let r = t.root_fast(n as usize);
        let path = inclusion_path(&t, m, n).unwrap();
        let leaf = t.leaves[m as usize];
        prop_assert!(verify_inclusion(m, n, &leaf, &path, &r).is_ok());
        if !path.is_empty() {
            let mut bad = path.clone();
            let i = flip.0 % bad.len();
            bad[i][flip.1 as usize % 32] ^= 0x01;
            prop_assert!(verify_inclusion(m, n, &leaf, &bad, &r).is_err());
            let mut short = path.clone();
            short.pop();
            prop_assert!(verify_inclusion(m, n, &leaf, &short, &r).is_err());
        }
        let mut long = path.clone();
        long.push(leaf);
        prop_assert!(verify_inclusion(m, n, &leaf, &long, &r).is_err());
        let mut bad_leaf = leaf;
        bad_leaf[0] ^= 0x80;
        prop_assert!(verify_inclusion(m, n, &bad_leaf, &path, &r).is_err());
        let mut bad_root = r;
        bad_root[31] ^= 0x01;
        prop_assert!(verify_inclusion(m, n, &leaf, &path, &bad_root).is_err());
        if n > 1 {
            prop_assert!(verify_inclusion((m + 1) % n, n, &leaf, &path, &r).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_any_change_fails(n in 2u64..4000, m_seed in any::<u64>(), flip in any::<(usize, u8)>()) {
        let t = tree(n);
        let m = 1 + m_seed % (n - 1);
        let (r1, r2) = (t.root_fast(m as usize), t.root_fast(n as usize));
        let path = consistency_path(&t, m, n).unwrap();
        prop_assert!(verify_consistency(m, n, &r1, &r2, &path).is_ok());
        let mut bad = path.clone();
        let i = flip.0 % bad.len();
        bad[i][flip.1 as usize % 32] ^= 0x01;
        prop_assert!(verify_consistency(m, n, &r1, &r2, &bad).is_err());
        let mut short = path.clone();
        short.pop();
        prop_assert!(verify_consistency(m, n, &r1, &r2, &short).is_err());
        let mut long = path.clone();
        long.push(r1);
        prop_assert!(verify_consistency(m, n, &r1, &r2, &long).is_err());
        let mut b1 = r1;
        b1[0] ^= 1;
        prop_assert!(verify_consistency(m, n, &b1, &r2, &path).is_err());
        let mut b2 = r2;
        b2[0] ^= 1;
        prop_assert!(verify_consistency(m, n, &r1, &b2, &path).is_err());
    }
}
