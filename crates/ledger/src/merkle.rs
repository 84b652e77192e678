//! The Merkle tree of RFC 6962 / RFC 9162 over the journal, in entry order.
//!
//! Leaf `n-1` is `SHA-256(0x00 || bytes_n)`, an inner node `SHA-256(0x01 || left || right)`, and
//! a tree of `n` leaves splits at the largest power of two below `n`. Every left part of that
//! recursion is a *perfect aligned* subtree (`2^level` leaves starting at a multiple of
//! `2^level`), addressed `(level, index)`; a [`NodeSource`] supplies those, so roots and proofs
//! for any tree size cost O(log n) node reads, and appends add O(1) nodes amortised.
//!
//! About 600 lines, a quarter of them the unit tests (RFC vectors against private helpers).

use sha2::{Digest, Sha256};

use crate::entry::Hash32;

/// Why a proof was refused, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree sizes {first} and {second} are not in order")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("the proof has {0} elements, more than the tree has levels for")]
    TooLong(usize),
    #[error("the proof has too few elements")]
    TooShort,
    #[error("the recomputed root does not match")]
    RootMismatch,
    #[error("the proof for equal trees must be empty and their roots equal")]
    EqualSizes,
    #[error("a consistency proof starts from a non-empty tree")]
    EmptyFirstTree,
    #[error("tree node ({level}, {index}) is missing: {why}")]
    MissingNode { level: u8, index: u64, why: String },
    /// The node, or an entry under it, could not be read: the disk, or corrupt data, as the
    /// reader says (a failed read is not a missing node).
    #[error("tree node ({level}, {index}) could not be read: {source}")]
    Read {
        level: u8,
        index: u64,
        #[source]
        source: crate::lookup::LookupError,
    },
}

pub fn leaf_hash(bytes: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(bytes);
    h.finalize().into()
}

pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash32 {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Supplies perfect aligned subtree hashes: `(level, index)` covers leaves
/// `index·2^level .. (index+1)·2^level`.
pub trait NodeSource {
    fn node(&self, level: u8, index: u64) -> Result<Hash32, ProofError>;
}

/// `MTH(D[a:b])` from perfect aligned subtrees.
pub fn subtree_root(src: &dyn NodeSource, a: u64, b: u64) -> Result<Hash32, ProofError> {
    let n = b - a;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && a.is_multiple_of(n) {
        return src.node(n.trailing_zeros() as u8, a / n);
    }
    let k = split(n);
    Ok(node_hash(&subtree_root(src, a, a + k)?, &subtree_root(src, a + k, b)?))
}

/// The root of the first `size` leaves.
pub fn root(src: &dyn NodeSource, size: u64) -> Result<Hash32, ProofError> {
    subtree_root(src, 0, size)
}

/// RFC 6962 §2.1.1 `PATH(m, D[0:n])`.
pub fn inclusion_path(
    src: &dyn NodeSource,
    index: u64,
    size: u64,
) -> Result<Vec<Hash32>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut path = Vec::new();
    let (mut a, mut b) = (0u64, size);
    // Walk down, collecting siblings; the RFC lists them bottom-up, so reverse at the end.
    while b - a > 1 {
        let k = split(b - a);
        if index < a + k {
            path.push(subtree_root(src, a + k, b)?);
            b = a + k;
        } else {
            path.push(subtree_root(src, a, a + k)?);
            a += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// RFC 6962 §2.1.2 `PROOF(m, D[0:n])`.
pub fn consistency_path(
    src: &dyn NodeSource,
    first: u64,
    second: u64,
) -> Result<Vec<Hash32>, ProofError> {
    if first == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    let mut path = Vec::new();
    let (mut m, mut a, mut b, mut complete) = (first, 0u64, second, true);
    loop {
        let n = b - a;
        if m == n {
            if !complete {
                path.push(subtree_root(src, a, b)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            path.push(subtree_root(src, a + k, b)?);
            b = a + k;
        } else {
            path.push(subtree_root(src, a, a + k)?);
            m -= k;
            a += k;
            complete = false;
        }
    }
    path.reverse();
    Ok(path)
}

/// RFC 9162 §2.1.3.2: checks an inclusion proof, element by element.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash32,
    path: &[Hash32],
    root: &Hash32,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return Err(ProofError::TooLong(path.len()));
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::TooShort);
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: checks a consistency proof, element by element.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash32,
    second_root: &Hash32,
    path: &[Hash32],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == second {
        return if path.is_empty() && first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::EqualSizes)
        };
    }
    if first == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    if path.is_empty() {
        return Err(ProofError::TooShort);
    }
    let mut full: Vec<Hash32> = Vec::with_capacity(path.len() + 1);
    if first.is_power_of_two() {
        full.push(*first_root);
    }
    full.extend_from_slice(path);
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (full[0], full[0]);
    for c in &full[1..] {
        if s == 0 {
            return Err(ProofError::TooLong(path.len()));
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::TooShort);
    }
    if &fr != first_root || &sr != second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The perfect aligned nodes that appending `leaves` after `size` leaves completes, in the
/// order they complete, at levels `>= level_min` (lower levels are recomputed from entries).
/// `src` supplies existing nodes at the levels being combined.
pub fn append_nodes(
    src: &dyn NodeSource,
    size: u64,
    leaves: &[Hash32],
    level_min: u8,
) -> Result<Vec<(u8, u64, Hash32)>, ProofError> {
    append_nodes_fresh(src, size, leaves, level_min).map(|(out, _)| out)
}

/// The right edge of a tree: the root of each perfect subtree it splits into, one per set bit
/// of its size, as a stack (the highest level, leftmost subtree, first). Appending only ever
/// needs these as left siblings, so a writer that keeps them appends without reading the tree,
/// and a leaf is appended by pushing it and merging equal levels off the top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    pub size: u64,
    /// (level, hash) of each subtree on the edge, levels strictly decreasing.
    pub edge: Vec<(u8, Hash32)>,
}

impl Frontier {
    /// The keys (level, index) of the edge of a tree of `size` leaves, lowest level first.
    pub fn keys(size: u64) -> impl Iterator<Item = (u8, u64)> {
        (0u8..64).filter(move |l| size >> l & 1 == 1).map(move |l| (l, (size >> l) - 1))
    }

    /// The edge of the tree of `size` leaves, its nodes read from `src`.
    pub fn read(src: &dyn NodeSource, size: u64) -> Result<Frontier, ProofError> {
        let mut edge = Frontier::keys(size)
            .map(|(level, index)| Ok((level, src.node(level, index)?)))
            .collect::<Result<Vec<_>, ProofError>>()?;
        edge.reverse();
        Ok(Frontier { size, edge })
    }

    /// The tree's root (RFC 6962): the edge folded from the right; the empty tree's root.
    pub fn root(&self) -> Hash32 {
        let mut nodes = self.edge.iter().rev();
        let Some((_, last)) = nodes.next() else { return empty_root() };
        nodes.fold(*last, |right, (_, left)| node_hash(left, &right))
    }

    /// Appends `leaves`: returns the perfect aligned nodes they complete, in the order they
    /// complete, at levels `>= level_min` (each leaf after the nodes it completes when
    /// `level_min` is 0).
    pub fn append(&mut self, leaves: &[Hash32], level_min: u8) -> Vec<TreeNode> {
        let mut out = Vec::with_capacity(leaves.len() / (1 << level_min.min(8)) + 64);
        for leaf in leaves {
            let leaf_index = self.size;
            self.push_with(*leaf, |level, index, hash| {
                if level >= level_min {
                    out.push((level, index, hash));
                }
            });
            if level_min == 0 {
                out.push((0, leaf_index, *leaf));
            }
        }
        out
    }

    /// Appends one leaf: pushes it and merges equal levels off the top, telling `completed`
    /// each node that merging completes (level, index, hash).
    fn push_with(&mut self, leaf: Hash32, completed: impl FnMut(u8, u64, Hash32)) {
        self.push_node_with(0, leaf, completed);
    }

    /// Appends the `2^level` leaves under the node `hash` of that level (the tree's size a
    /// multiple of `2^level`): pushes the node and merges equal levels off the top, telling
    /// `completed` each node that merging completes.
    fn push_node_with(
        &mut self,
        level: u8,
        hash: Hash32,
        mut completed: impl FnMut(u8, u64, Hash32),
    ) {
        self.size += 1u64 << level;
        let (mut level, mut hash) = (level, hash);
        while let Some(&(top, left)) = self.edge.last() {
            if top != level {
                break;
            }
            self.edge.pop();
            hash = node_hash(&left, &hash);
            level += 1;
            completed(level, (self.size >> level) - 1, hash);
        }
        self.edge.push((level, hash));
    }
}

/// [`append_nodes`] from the edge `frontier` (which must be of the tree being extended), and
/// the edge after the append.
pub fn append_with_frontier(
    frontier: &Frontier,
    leaves: &[Hash32],
    level_min: u8,
) -> (Vec<TreeNode>, Frontier) {
    let mut next = frontier.clone();
    let out = next.append(leaves, level_min);
    (out, next)
}

type Fresh = std::collections::HashMap<(u8, u64), Hash32>;

/// A node of the tree: level, index at that level, hash.
pub type TreeNode = (u8, u64, Hash32);

fn append_nodes_fresh(
    src: &dyn NodeSource,
    size: u64,
    leaves: &[Hash32],
    level_min: u8,
) -> Result<(Vec<TreeNode>, Fresh), ProofError> {
    // Nodes completed inside this append, so later leaves find their left siblings.
    let mut fresh: Fresh = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (j, leaf) in leaves.iter().enumerate() {
        let (mut level, mut index, mut hash) = (0u8, size + j as u64, *leaf);
        fresh.insert((0, index), hash);
        while index & 1 == 1 {
            let left = match fresh.get(&(level, index - 1)) {
                Some(h) => *h,
                None => src.node(level, index - 1)?,
            };
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            fresh.insert((level, index), hash);
            if level >= level_min {
                out.push((level, index, hash));
            }
        }
        if level_min == 0 {
            out.push((0, size + j as u64, *leaf));
        }
    }
    Ok((out, fresh))
}

/// A tree held in memory: every leaf hash (offline verification, tests).
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    pub leaves: Vec<Hash32>,
}

impl NodeSource for MemoryTree {
    fn node(&self, level: u8, index: u64) -> Result<Hash32, ProofError> {
        let width = 1u64 << level;
        let a = index * width;
        let b = a + width;
        if b > self.leaves.len() as u64 {
            return Err(ProofError::MissingNode {
                level,
                index,
                why: "beyond the last leaf".into(),
            });
        }
        if level == 0 {
            return Ok(self.leaves[a as usize]);
        }
        let half = 1u64 << (level - 1);
        Ok(node_hash(&self.node(level - 1, a / half)?, &self.node(level - 1, a / half + 1)?))
    }
}

impl MemoryTree {
    /// The root of the first `size` leaves, computed bottom-up in O(size).
    pub fn root_fast(&self, size: usize) -> Hash32 {
        fn mth(leaves: &[Hash32]) -> Hash32 {
            match leaves.len() {
                0 => empty_root(),
                1 => leaves[0],
                n => {
                    let k = split(n as u64) as usize;
                    node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
                }
            }
        }
        mth(&self.leaves[..size])
    }
}

/// Merkle root of a stream of leaves in O(log n) memory: the right edge of the tree, pushed
/// leaf by leaf, folded from the right at the end (RFC 6962's shape).
pub type RootBuilder = Frontier;

impl Frontier {
    /// Appends one leaf, recording no node.
    pub fn push(&mut self, leaf: Hash32) {
        self.push_with(leaf, |_, _, _| {});
    }

    /// Appends the `2^level` leaves whose perfect subtree has the root `root` (see
    /// [`perfect_root`]), as pushing them one by one would: the tree's size must be a multiple
    /// of `2^level`, so that they form one aligned subtree.
    pub fn push_subtree(&mut self, level: u8, root: Hash32) {
        assert_eq!(self.size % (1u64 << level), 0, "an aligned subtree");
        self.push_node_with(level, root, |_, _, _| {});
    }

    /// Leaves in the tree.
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

/// The root of the perfect tree of `leaves`, a power of two of them: its halves are hashed in
/// parallel (a tree of many leaves costs one node hash per leaf, which one thread would do alone).
pub fn perfect_root(leaves: &[Hash32]) -> Hash32 {
    assert!(leaves.len().is_power_of_two(), "a perfect tree");
    // Below this, waking another thread costs more than the hashing it would take on.
    const SERIAL_LEAVES: usize = 512;
    if leaves.len() == 1 {
        return leaves[0];
    }
    let (left, right) = leaves.split_at(leaves.len() / 2);
    let (left, right) = if leaves.len() <= SERIAL_LEAVES {
        (perfect_root(left), perfect_root(right))
    } else {
        rayon::join(|| perfect_root(left), || perfect_root(right))
    };
    node_hash(&left, &right)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subtree_pushed_whole_is_its_leaves_pushed_one_by_one() {
        let leaves: Vec<Hash32> = (0..6000u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for level in [0u8, 1, 4, 10] {
            let n = 1usize << level;
            let (mut whole, mut single) = (Frontier::default(), Frontier::default());
            // Five aligned subtrees (the edge merges some), then a few leaves.
            let mut at = 0;
            for _ in 0..5 {
                whole.push_subtree(level, perfect_root(&leaves[at..at + n]));
                at += n;
            }
            for leaf in &leaves[at..at + 3] {
                whole.push(*leaf);
            }
            for leaf in &leaves[..at + 3] {
                single.push(*leaf);
            }
            assert_eq!(whole, single, "level {level}");
            let tree = MemoryTree { leaves: leaves[..at + 3].to_vec() };
            assert_eq!(whole.root(), tree.root_fast(at + 3), "level {level}");
        }
    }

    #[test]
    fn appending_to_a_frontier_matches_appending_from_the_tree() {
        let mut tree = MemoryTree::default();
        let mut frontier = Frontier::default();
        let mut n = 0u32;
        // Chunks of 1, 2, 3 ... leaves, up to 1,000 in all.
        for chunk in 1..45u32 {
            let leaves: Vec<Hash32> = (n..n + chunk).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let expected = append_nodes(&tree, tree.leaves.len() as u64, &leaves, 0).unwrap();
            let (nodes, next) = append_with_frontier(&frontier, &leaves, 0);
            assert_eq!(nodes, expected, "chunk {chunk}");
            tree.leaves.extend(leaves);
            n += chunk;
            let mut edge: Vec<(u8, Hash32)> = Frontier::keys(n as u64)
                .map(|(level, index)| (level, tree.node(level, index).unwrap()))
                .collect();
            edge.reverse();
            assert_eq!(next.edge, edge);
            assert_eq!(next.root(), root(&tree, n as u64).unwrap());
            assert_eq!(Frontier::read(&tree, n as u64).unwrap(), next);
            frontier = next;
        }
    }

    fn h(s: &str) -> Hash32 {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// RFC 6962 test vectors as published by transparency-dev/merkle (testonly/constants.go)
    /// and the Certificate Transparency reference implementation.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn vector_tree() -> MemoryTree {
        MemoryTree { leaves: LEAVES.iter().map(|l| leaf_hash(&hex::decode(l).unwrap())).collect() }
    }

    #[test]
    fn roots_match_the_rfc6962_vectors() {
        let t = vector_tree();
        for (size, expected) in ROOTS.iter().enumerate() {
            assert_eq!(root(&t, size as u64).unwrap(), h(expected), "size {size}");
            assert_eq!(t.root_fast(size), h(expected));
        }
    }

    #[test]
    fn inclusion_proofs_match_the_rfc6962_vectors() {
        let t = vector_tree();
        let cases: [(u64, u64, &[&str]); 3] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (0, 1, &[]),
        ];
        for (index, size, expected) in cases {
            let path = inclusion_path(&t, index, size).unwrap();
            let expected: Vec<Hash32> = expected.iter().map(|s| h(s)).collect();
            assert_eq!(path, expected, "index {index} size {size}");
            verify_inclusion(
                index,
                size,
                &t.leaves[index as usize],
                &path,
                &h(ROOTS[size as usize]),
            )
            .unwrap();
        }
    }

    #[test]
    fn consistency_proofs_match_the_rfc6962_vectors() {
        let t = vector_tree();
        let cases: [(u64, u64, &[&str]); 3] = [
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                2,
                8,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (1, 1, &[]),
        ];
        for (first, second, expected) in cases {
            let path = consistency_path(&t, first, second).unwrap();
            let expected: Vec<Hash32> = expected.iter().map(|s| h(s)).collect();
            assert_eq!(path, expected, "{first} → {second}");
            verify_consistency(
                first,
                second,
                &h(ROOTS[first as usize]),
                &h(ROOTS[second as usize]),
                &path,
            )
            .unwrap();
        }
    }

    #[test]
    fn appended_nodes_are_the_perfect_subtrees() {
        let t = vector_tree();
        let mut stored = MemoryTree::default();
        let mut nodes = std::collections::HashMap::new();
        for (i, leaf) in t.leaves.iter().enumerate() {
            for (level, index, hash) in append_nodes(&stored, i as u64, &[*leaf], 0).unwrap() {
                nodes.insert((level, index), hash);
            }
            stored.leaves.push(*leaf);
        }
        for ((level, index), hash) in nodes {
            assert_eq!(t.node(level, index).unwrap(), hash);
        }
    }
}
