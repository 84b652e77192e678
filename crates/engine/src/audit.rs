//! The auditor's side: the Merkle tree kept with the journal, proofs, signed digests, and
//! verification of an exported journal without the database.

use std::collections::HashMap;
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use junbao_ledger::entry::{CHAIN_GENESIS, Entry, Hash32, chain_next};
use junbao_ledger::merkle::{self, NodeSource, ProofError};
use junbao_ledger::report::{ConsistencyProof, InclusionProof, JournalEntry};
use junbao_storage::{Head, Store, StoredEntry};
use serde_json::Value;

use crate::verify::{Verifier, VerifyError, VerifyReport};
use crate::{Clock, Ledger, LedgerOpenError};

pub use junbao_ledger::digest::{AccessAnchor, CheckError, SignedDigest};
pub use junbao_ledger::export::{ExportReport, verify_export};
pub use junbao_ledger::merkle::RootBuilder;

/// Tree nodes at this level and above are stored; lower ones are recomputed from the entries
/// (at most 2^4 = 16 leaf hashes), so the tree adds one small write per 16 entries.
pub const TREE_LEVEL_STORED_MIN: u8 = 4;

pub(crate) fn tree_key(level: u8, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(level);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Nodes from the store. An append never asks it for a node that covers entries of the batch
/// being appended: those it computes itself (`merkle::append_with_frontier`).
pub(crate) struct StoreNodes<'a> {
    pub(crate) store: &'a Store,
}

/// A tree of `size` entries exists in `store` (it does not exceed the journal).
fn check_tree_size(store: &Store, size: u64) -> Result<(), AuditError> {
    let head = store.head().seq;
    if size > head {
        return Err(AuditError::Input(format!("tree size {size} exceeds the journal's {head}")));
    }
    Ok(())
}

/// The Merkle root of the first `size` entries of `store`, from its stored tree.
pub(crate) fn stored_root(store: &Store, size: u64) -> Result<Hash32, AuditError> {
    check_tree_size(store, size)?;
    Ok(merkle::root(&StoreNodes { store }, size)?)
}

/// Inclusion proof of entry `seq` of `store` in the tree of `size` entries (the head's if
/// `None`), read through `nodes`.
pub(crate) fn inclusion_proof_in(
    store: &Store,
    nodes: &CachedNodes<'_>,
    seq: u64,
    size: Option<u64>,
) -> Result<InclusionProof, AuditError> {
    let size = size.unwrap_or_else(|| store.head().seq);
    if seq == 0 || seq > size {
        return Err(AuditError::Input(format!("entry {seq} is not in a tree of {size} entries")));
    }
    check_tree_size(store, size)?;
    let root = merkle::root(nodes, size)?;
    let leaf = nodes.node(0, seq - 1)?;
    let path = merkle::inclusion_path(nodes, seq - 1, size)?;
    Ok(InclusionProof::new(seq, size, &leaf, &path, &root))
}

/// Consistency proof of `store` between the trees of `first` and `second` entries.
pub(crate) fn consistency_proof_in(
    store: &Store,
    first: u64,
    second: u64,
) -> Result<ConsistencyProof, AuditError> {
    if first == 0 || first > second {
        return Err(AuditError::Input(format!(
            "sizes must satisfy 1 <= from <= to, got {first} and {second}"
        )));
    }
    let (r1, r2) = (stored_root(store, first)?, stored_root(store, second)?);
    let path = merkle::consistency_path(&StoreNodes { store }, first, second)?;
    Ok(ConsistencyProof { first, first_root: r1, path, second, second_root: r2 })
}

/// Signs a digest of `store`'s head at `now_us` (anchoring the access log's head, if given) and
/// keeps it in the store. The caller keeps the head from moving meanwhile.
fn sign_digest_in(
    store: &Store,
    key: &SigningKey,
    now_us: i64,
    access: Option<AccessAnchor>,
) -> Result<SignedDigest, AuditError> {
    let head = store.head();
    let root = merkle::root(&StoreNodes { store }, head.seq)?;
    let d = SignedDigest::sign(key, head.seq, root, head.hash, now_us, access);
    let append = junbao_storage::Append {
        meta: vec![(digest_meta_key(&d), d.to_json().to_string().into_bytes())],
        head,
        ..Default::default()
    };
    store.append(append)?;
    Ok(d)
}

/// A ledger opened for the auditor's commands that read only its journal and tree: `junbao
/// verify`, `proof`, `digest` and `export journal` ([`Ledger::open_for_audit`]). Its store
/// alone: the state is not loaded nor the entries after the checkpoint replayed, as an open
/// does (verification loads the stored state and replays every entry itself; proofs and
/// digests read the tree, which a post writes with its entries; an export, the journal). At a
/// million members the open took seconds and more than a gigabyte for nothing. A ledger whose
/// state records are in an older format is opened whole, so that the open converts them.
#[non_exhaustive]
pub enum ForAudit {
    Store { store: Box<Store>, clock: Clock },
    Ledger(Box<Ledger>),
}

impl std::fmt::Debug for ForAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForAudit::Store { store, .. } => f.debug_tuple("Store").field(store).finish(),
            ForAudit::Ledger(ledger) => f.debug_tuple("Ledger").field(ledger).finish(),
        }
    }
}

impl Ledger {
    /// Opens the ledger at `path` for the auditor's commands ([`ForAudit`]).
    pub fn open_for_audit(path: &Path, clock: Clock) -> Result<ForAudit, LedgerOpenError> {
        let store = Store::open(path)?;
        if crate::state_format_is_current(&store)? {
            return Ok(ForAudit::Store { store: Box::new(store), clock });
        }
        drop(store);
        Ok(ForAudit::Ledger(Box::new(Ledger::open_for_one_command(path, clock)?)))
    }
}

impl ForAudit {
    /// The last entry.
    pub fn head(&self) -> Head {
        match self {
            ForAudit::Store { store, .. } => store.head(),
            ForAudit::Ledger(ledger) => ledger.head(),
        }
    }

    /// [`Ledger::verify`].
    pub fn verify(&self, progress: &dyn Fn(u64)) -> Result<VerifyReport, VerifyError> {
        match self {
            ForAudit::Store { store, .. } => Verifier::of(store).verify(progress),
            ForAudit::Ledger(ledger) => ledger.verify(progress),
        }
    }

    /// [`Ledger::entries_from`].
    pub fn entries_from(&self, from: u64) -> crate::JournalEntries<'_> {
        match self {
            ForAudit::Store { store, .. } => crate::JournalEntries::of(store, from),
            ForAudit::Ledger(ledger) => ledger.entries_from(from),
        }
    }

    /// [`Ledger::inclusion_proof`].
    pub fn inclusion_proof(
        &self,
        seq: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, AuditError> {
        match self {
            ForAudit::Store { store, .. } => {
                inclusion_proof_in(store, &CachedNodes::new(store), seq, size)
            }
            ForAudit::Ledger(ledger) => ledger.inclusion_proof(seq, size),
        }
    }

    /// [`Ledger::consistency_proof`].
    pub fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, AuditError> {
        match self {
            ForAudit::Store { store, .. } => consistency_proof_in(store, first, second),
            ForAudit::Ledger(ledger) => ledger.consistency_proof(first, second),
        }
    }

    /// [`Ledger::digest_anchoring`] (nothing else writes the store held here).
    pub fn digest_anchoring(
        &self,
        key: &SigningKey,
        access: Option<AccessAnchor>,
    ) -> Result<SignedDigest, AuditError> {
        match self {
            ForAudit::Store { store, clock } => sign_digest_in(store, key, clock(), access),
            ForAudit::Ledger(ledger) => ledger.digest_anchoring(key, access),
        }
    }
}

/// A failed read of the store under a tree node: the read's kind is kept.
fn unreadable(level: u8, index: u64) -> impl FnOnce(junbao_storage::ReadError) -> ProofError {
    move |e| ProofError::Read { level, index, source: crate::lookup_error(e) }
}

impl StoreNodes<'_> {
    fn leaf(&self, index: u64) -> Result<Hash32, ProofError> {
        let missing = |why: String| ProofError::MissingNode { level: 0, index, why };
        let e = self
            .store
            .entry(index + 1)
            .map_err(unreadable(0, index))?
            .ok_or_else(|| missing("no such entry".into()))?;
        Ok(merkle::leaf_hash(&e.bytes))
    }
}

impl NodeSource for StoreNodes<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash32, ProofError> {
        if level >= TREE_LEVEL_STORED_MIN {
            let missing = |why: String| ProofError::MissingNode { level, index, why };
            let v = self
                .store
                .tree_node(&tree_key(level, index))
                .map_err(unreadable(level, index))?
                .ok_or_else(|| missing("not stored".into()))?;
            return v.try_into().map_err(|_| missing("not 32 bytes".into()));
        }
        if level == 0 {
            return self.leaf(index);
        }
        let child = 2 * index;
        Ok(merkle::node_hash(&self.node(level - 1, child)?, &self.node(level - 1, child + 1)?))
    }
}

/// A node source that remembers what it read: the proofs of one package or statement share
/// most of their upper nodes.
pub(crate) struct CachedNodes<'a> {
    inner: StoreNodes<'a>,
    cache: std::cell::RefCell<HashMap<(u8, u64), Hash32>>,
}

impl<'a> CachedNodes<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        CachedNodes { inner: StoreNodes { store }, cache: Default::default() }
    }
}

impl NodeSource for CachedNodes<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash32, ProofError> {
        if let Some(h) = self.cache.borrow().get(&(level, index)) {
            return Ok(*h);
        }
        let h = if level == 0 {
            // Leaves are read a whole aligned block at a time (one range scan): the proofs
            // recompute the levels below TREE_LEVEL_STORED_MIN from exactly these blocks.
            let width = 1u64 << TREE_LEVEL_STORED_MIN;
            let start = index & !(width - 1);
            let missing = |why: String| ProofError::MissingNode { level: 0, index, why };
            let mut cache = self.cache.borrow_mut();
            for stored in self.inner.store.entries(start + 1, width as usize) {
                let stored = stored.map_err(unreadable(0, index))?;
                if stored.seq > start + width {
                    break;
                }
                cache.insert((0, stored.seq - 1), merkle::leaf_hash(&stored.bytes));
            }
            return cache.get(&(0, index)).copied().ok_or_else(|| missing("no such entry".into()));
        } else if level >= TREE_LEVEL_STORED_MIN {
            self.inner.node(level, index)?
        } else {
            // Recompute low levels through this cache, so shared children are read once.
            merkle::node_hash(
                &self.node(level - 1, 2 * index)?,
                &self.node(level - 1, 2 * index + 1)?,
            )
        };
        self.cache.borrow_mut().insert((level, index), h);
        Ok(h)
    }
}

/// A digest, proof or export that does not check out, or a request for one that failed. The
/// kind ([`AuditError::kind`]) says which of input, integrity or I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("integrity failure: {0}")]
    Integrity(String),
    #[error("{0}")]
    Input(String),
    /// A failure of the environment without a more precise source (no randomness, ...).
    #[error("{0}")]
    Io(String),
    /// Reading the store failed: corrupt data (an integrity failure) or the disk, as the
    /// storage layer found.
    #[error("{0}")]
    Read(#[from] junbao_storage::ReadError),
    /// Writing the store failed (the disk; the handle is poisoned).
    #[error("the write failed: {0}")]
    Write(#[from] junbao_storage::WriteError),
    /// A file outside the store (a key, a digest, an export) could not be read or written.
    #[error("{context}: {source}")]
    File {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl AuditError {
    /// Input refused (exit 2, HTTP 422), integrity failure (exit 3, HTTP 500) or I/O (exit 1,
    /// HTTP 503).
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            AuditError::Integrity(_) => crate::ErrorKind::Integrity,
            AuditError::Input(_) => crate::ErrorKind::Input,
            AuditError::Read(e) => crate::ErrorKind::of_read(e),
            AuditError::Io(_) | AuditError::Write(_) | AuditError::File { .. } => {
                crate::ErrorKind::Io
            }
        }
    }
}

impl From<crate::ReadJournalError> for AuditError {
    fn from(e: crate::ReadJournalError) -> AuditError {
        match e {
            crate::ReadJournalError::Read(e) => AuditError::Read(e),
            decode @ crate::ReadJournalError::Decode { .. } => {
                AuditError::Integrity(decode.to_string())
            }
        }
    }
}

impl From<crate::PostError> for AuditError {
    /// A post made on the way: refused is input, a failed read or write keeps its kind.
    fn from(e: crate::PostError) -> AuditError {
        match e {
            crate::PostError::Read(e) => AuditError::Read(e),
            crate::PostError::Write(e) => AuditError::Write(e),
            other => AuditError::Input(other.to_string()),
        }
    }
}

impl From<ProofError> for AuditError {
    /// A proof over the stored tree: a node that could not be read keeps the read's kind;
    /// anything else (a node missing, a root that does not match) is an integrity failure.
    fn from(e: ProofError) -> AuditError {
        match e {
            ProofError::Read { .. } => AuditError::Read(proof_read_error(e)),
            other => AuditError::Integrity(other.to_string()),
        }
    }
}

/// A failed computation over the stored tree, as a read error of the store: the disk's
/// failure stays I/O, anything else is corruption.
pub(crate) fn proof_read_error(e: ProofError) -> junbao_storage::ReadError {
    use junbao_ledger::LookupError;
    match e {
        ProofError::Read { level, index, source: LookupError::Io(m) } => {
            junbao_storage::ReadError::Engine(format!("Merkle tree node ({level}, {index}): {m}"))
        }
        other => junbao_storage::ReadError::Corrupt(format!("Merkle tree: {other}")),
    }
}

/// The metadata key a published digest is kept under: the prefix, then tree size and time,
/// big-endian, so digests sort by size (docs/FORMAT.md).
pub(crate) fn digest_meta_key(d: &SignedDigest) -> Vec<u8> {
    let mut k = META_DIGEST_PREFIX.to_vec();
    k.extend_from_slice(&d.tree_size.to_be_bytes());
    k.extend_from_slice(&d.recorded_at_us.to_be_bytes());
    k
}

/// The engine's audit errors from the offline checks' (same kinds).
impl From<CheckError> for AuditError {
    fn from(e: CheckError) -> AuditError {
        match e {
            CheckError::Integrity(m) => AuditError::Integrity(m),
            CheckError::Input(m) => AuditError::Input(m),
            CheckError::Io(m) => AuditError::Io(m),
            _ => AuditError::Integrity(e.to_string()),
        }
    }
}

/// Creates a new Ed25519 signing key file (hex of the 32-byte seed), readable by the owner only.
pub fn create_signing_key(path: &Path) -> Result<VerifyingKey, AuditError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| AuditError::Io(format!("no randomness for the key: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = |context: String| move |source| AuditError::File { context, source };
    let mut f =
        opts.open(path).map_err(file(format!("creating the key file {}", path.display())))?;
    std::io::Write::write_all(&mut f, format!("{}\n", hex::encode(seed)).as_bytes())
        .map_err(file(format!("writing {}", path.display())))?;
    f.sync_all().map_err(file(format!("syncing {}", path.display())))?;
    Ok(key.verifying_key())
}

pub fn load_signing_key(path: &Path) -> Result<SigningKey, AuditError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuditError::File {
        context: format!("reading the key file {}", path.display()),
        source,
    })?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| AuditError::Input(format!("{} is not a 32-byte hex key", path.display())))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The default signing key file of a ledger folder: `DIR.key` beside the folder (not inside
/// it, so that whoever copies the folder or a backup of it cannot sign a rewritten history);
/// a ledger created before that keeps its `DIR/digest.key`, which is used while it exists.
/// `--key FILE` or `$JUNBAO_KEY` override it.
pub fn default_key_path(data: &Path) -> std::path::PathBuf {
    let legacy = data.join("digest.key");
    if legacy.exists() {
        return legacy;
    }
    let mut name =
        data.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "junbao-data".into());
    name.push(".key");
    data.with_file_name(name)
}

pub(crate) const META_DIGEST_PREFIX: &[u8] = b"digest/";

impl Ledger {
    fn nodes(&self) -> StoreNodes<'_> {
        StoreNodes { store: &self.store }
    }

    /// The Merkle root of the first `size` entries.
    pub fn root(&self, size: u64) -> Result<Hash32, AuditError> {
        stored_root(&self.store, size)
    }

    /// Inclusion proof of entry `seq` in the tree of `size` entries (contract JSON).
    pub fn inclusion_proof(
        &self,
        seq: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, AuditError> {
        self.inclusion_proof_from(&CachedNodes::new(&self.store), seq, size)
    }

    /// [`Ledger::inclusion_proof`] through a node source that many proofs may share.
    pub(crate) fn inclusion_proof_from(
        &self,
        nodes: &CachedNodes<'_>,
        seq: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, AuditError> {
        inclusion_proof_in(&self.store, nodes, seq, size)
    }

    /// Consistency proof between the trees of `first` and `second` entries (contract JSON).
    pub fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, AuditError> {
        consistency_proof_in(&self.store, first, second)
    }

    /// Signs a digest of the current head with `key`, and keeps it in the ledger.
    pub fn digest(&self, key: &SigningKey) -> Result<SignedDigest, AuditError> {
        self.digest_anchoring(key, None)
    }

    /// Signs a digest of the current head that also anchors the access log's head, when one is
    /// given (docs/FORMAT.md §10), and keeps it in the ledger.
    pub fn digest_anchoring(
        &self,
        key: &SigningKey,
        access: Option<AccessAnchor>,
    ) -> Result<SignedDigest, AuditError> {
        // The head is not to move while it is signed and the digest kept.
        let _writer = self.writer();
        sign_digest_in(&self.store, key, self.now_us(), access)
    }

    /// Every digest published so far, oldest first.
    pub fn digests(&self) -> Result<Vec<SignedDigest>, AuditError> {
        let records = self.store.meta_prefix(META_DIGEST_PREFIX)?;
        records
            .iter()
            .map(|(_, v)| {
                let v: Value =
                    serde_json::from_slice(v).map_err(|e| AuditError::Integrity(e.to_string()))?;
                Ok(SignedDigest::from_json(&v)?)
            })
            .collect()
    }
}

/// One line of `export journal --format jsonl`: the entry with its canonical bytes.
pub fn export_line(stored: &StoredEntry, entry: &Entry) -> JournalEntry {
    JournalEntry::of(stored.seq, stored.chain_hash, entry, Some(&stored.bytes))
}

/// What `verify --from-digest` established.
#[derive(Debug, Clone)]
pub struct SinceDigestReport {
    pub from_size: u64,
    pub to_size: u64,
    pub root: Hash32,
    pub head: Hash32,
}

impl Ledger {
    /// Checks the ledger against a trusted earlier digest: its signature, that the stored tree
    /// of its size has its root and chain head, a consistency proof from it to the current
    /// tree, and the chain and bytes of every entry appended since.
    pub fn verify_since(
        &self,
        digest: &SignedDigest,
        trusted_key: &[u8; 32],
    ) -> Result<SinceDigestReport, AuditError> {
        digest.verify_signature(Some(trusted_key))?;
        // The head, read under the writer lock; then no lock: the journal is append-only and a
        // stored tree node is written once its subtree is complete, so everything up to this
        // head stays as it is while posts go on.
        let head = {
            let _writer = self.writer();
            self.store.head()
        };
        let integrity = |m: String| AuditError::Integrity(m);
        if digest.tree_size > head.seq {
            return Err(integrity(format!(
                "the digest covers {} entries but the ledger holds {}: entries were removed",
                digest.tree_size, head.seq
            )));
        }
        let nodes = self.nodes();
        let old_root = merkle::root(&nodes, digest.tree_size)?;
        if old_root != digest.root {
            return Err(integrity(format!(
                "the ledger's first {} entries no longer give the signed root",
                digest.tree_size
            )));
        }
        let old_head = if digest.tree_size == 0 {
            CHAIN_GENESIS
        } else {
            self.store
                .entry(digest.tree_size)?
                .ok_or_else(|| integrity(format!("entry {} is missing", digest.tree_size)))?
                .chain_hash
        };
        if old_head != digest.head {
            return Err(integrity(
                "the chain hash at the digest's size differs from the signed head".into(),
            ));
        }
        let new_root = merkle::root(&nodes, head.seq)?;
        if digest.tree_size > 0 {
            let path = merkle::consistency_path(&nodes, digest.tree_size, head.seq)?;
            merkle::verify_consistency(digest.tree_size, head.seq, &digest.root, &new_root, &path)
                .map_err(|e| integrity(format!("consistency proof: {e}")))?;
        }
        // The entries since the digest: the chain from the signed head, and each entry's bytes.
        let mut previous = digest.head;
        let mut next = digest.tree_size + 1;
        let mut tree = RootBuilder::default();
        while next <= head.seq {
            let want = usize::try_from(head.seq - next + 1).unwrap_or(usize::MAX).min(65_536);
            let chunk: Vec<StoredEntry> =
                self.store.entries(next, want).collect::<Result<_, _>>()?;
            for e in &chunk {
                if e.seq != next {
                    return Err(integrity(format!("entry {next} is missing")));
                }
                if chain_next(&previous, &e.bytes) != e.chain_hash {
                    return Err(integrity(format!(
                        "entry {}: the chain hash does not match its bytes",
                        e.seq
                    )));
                }
                Entry::from_canonical_bytes(&e.bytes)
                    .map_err(|err| integrity(format!("entry {}: {err}", e.seq)))?;
                tree.push(merkle::leaf_hash(&e.bytes));
                previous = e.chain_hash;
                next += 1;
            }
            if chunk.is_empty() {
                break;
            }
        }
        if previous != head.hash || next != head.seq + 1 {
            return Err(integrity("the journal does not end at the recorded head".into()));
        }
        Ok(SinceDigestReport {
            from_size: digest.tree_size,
            to_size: head.seq,
            root: new_root,
            head: head.hash,
        })
    }
}

/// The entry as a plain-text journal transaction that hledger and ledger-cli read: the value
/// date, the sequence number as the code, the event type and id as the description, then one
/// posting per line with the same account names and amounts as `balance`. Entries that move no
/// money are written as comments, so the file still lists every entry.
pub fn ledger_transaction(stored: &StoredEntry, entry: &Entry) -> String {
    let id: String = entry
        .event
        .id
        .as_str()
        .chars()
        .map(|c| if c == ';' || c == '#' { ',' } else { c })
        .collect();
    let header = format!(
        "{} ({}) {} {}",
        entry.value_date,
        stored.seq,
        entry.event.body.type_name(),
        id.trim()
    );
    if entry.postings.is_empty() {
        return format!("; {header}\n");
    }
    let mut t = format!("{header}\n    ; hash:{}\n", hex::encode(stored.chain_hash));
    for p in &entry.postings {
        t.push_str(&format!("    {:<52}  {:>18}\n", p.account.to_string(), p.amount.to_string()));
    }
    t
}
