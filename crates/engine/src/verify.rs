//! Verification of the stored journal: the chain, every entry's own invariants, the Merkle
//! tree, the idempotency and member index, and every materialised record (balances, members,
//! premium periods, standards, interest and reversal marks) against a replay of the entries
//! from scratch.

use std::collections::HashMap;
use std::hash::BuildHasher;

use junbao_ledger::entry::{CHAIN_GENESIS, Entry, Hash32, chain_next, event_fingerprint};
use junbao_ledger::ids::EventId;
use junbao_ledger::merkle;
use junbao_ledger::rules::Replayer;
use junbao_ledger::{Account, EventBody, Fen, LedgerState};
use rayon::prelude::*;
use serde::Serialize;

use crate::Ledger;
use junbao_ledger::keyed::KeyedMap;
use junbao_storage::{RawEntry, Store, StoreSnapshot};

/// Entries read and checked per parallel chunk: a power of two (a whole chunk is a perfect
/// subtree of the Merkle tree).
const VERIFY_CHUNK_ENTRIES: usize = 16_384;
const _: () = assert!(VERIFY_CHUNK_ENTRIES.is_power_of_two());

/// Entries the replay applies per commit of its state.
const REPLAY_PART_ENTRIES: usize = 8;

/// What a successful verification covered.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub head: String,
    pub accounts: usize,
    /// The stored state's records' digest differed from the replayed state's (a record in
    /// another encoding of the same value, which only costs time), and it was compared record
    /// by record: loaded whole, or listed ([`Pass`]). Not reported (an internal path, for
    /// tests).
    #[serde(skip)]
    pub state_loaded_whole: bool,
    /// How many times the replay let go of a member's older years (their stored pages were
    /// exactly the replay's): what bounds its memory per member. Not reported (for tests).
    #[serde(skip)]
    pub years_let_go: u64,
    /// How many times an entry needed years the replay had let go of, read back from the
    /// stored pages. Not reported (for tests).
    #[serde(skip)]
    pub years_read_back: u64,
}

/// The ledger does not verify: an integrity failure (exit status 3), or a read failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("integrity failure at entry {seq}: {what}")]
    Entry { seq: u64, what: String },
    #[error("integrity failure: {0}")]
    Ledger(String),
    #[error("reading the journal failed: {0}")]
    Read(#[from] junbao_storage::ReadError),
}

impl VerifyError {
    /// The chain, a record or the stored bytes themselves are wrong (exit 3), as opposed to a
    /// disk or environment failure (exit 1). RocksDB's own corruption verdict counts as
    /// integrity.
    pub fn is_integrity(&self) -> bool {
        !matches!(self, VerifyError::Read(junbao_storage::ReadError::Engine(_)))
    }
}

impl Ledger {
    /// Recomputes the whole chain from the stored entries and checks everything derived from
    /// it. `progress` is called with the number of entries checked so far.
    pub fn verify(&self, progress: &dyn Fn(u64)) -> Result<VerifyReport, VerifyError> {
        Verifier::of(&self.store).verify(progress)
    }

    /// [`Ledger::verify`] with the replay looking for older years to let go of every
    /// `entries` entries (at least once per commit of its state), not every
    /// [`LET_GO_EVERY_MIN`] or more: tests, on ledgers far smaller than the ones it is for.
    #[cfg(feature = "testing")]
    pub fn verify_letting_go_every(
        &self,
        entries: u64,
        progress: &dyn Fn(u64),
    ) -> Result<VerifyReport, VerifyError> {
        Verifier { store: &self.store, let_go_every: Some(entries) }.verify(progress)
    }
}

/// The fewest entries the replay of `verify` applies between two looks for members' older
/// years to let go of; and at least eight for each member's book (a look reads every book).
pub const LET_GO_EVERY_MIN: u64 = 1 << 20;

/// Members whose stored pages one read of [`LetGo::look`] compares, on the thread pool.
const LET_GO_READ_PART: usize = 1024;

/// Members whose books [`LetGo::look`] takes at once.
const LET_GO_SLICE: usize = 65_536;

/// A verification of a store (it reads nothing but the store).
pub(crate) struct Verifier<'a> {
    pub(crate) store: &'a Store,
    /// Entries between two looks for years to let go of; `None`: [`LET_GO_EVERY_MIN`], or
    /// eight entries a book if more.
    let_go_every: Option<u64>,
}

impl<'a> Verifier<'a> {
    pub(crate) fn of(store: &'a Store) -> Verifier<'a> {
        Verifier { store, let_go_every: None }
    }

    pub(crate) fn verify(&self, progress: &dyn Fn(u64)) -> Result<VerifyReport, VerifyError> {
        // A snapshot, not the writer lock: the journal and every record are read at one point
        // in time while posting goes on.
        let snapshot = self.store.snapshot();
        // The replayed state as of the checkpoint, where entries follow it, is kept only as
        // its digest (a copy of a million members' state is a gigabyte); if the stored state's
        // digest differs, the same snapshot is verified again keeping what naming the record
        // that differs needs ([`Pass`]).
        let mut pass = Pass::Digest;
        loop {
            match self.verify_snapshot(&snapshot, progress, pass)? {
                Ok(report) => return Ok(report),
                Err(again) => {
                    // Each pass asks for a later one: the passes end.
                    assert!(again > pass, "a verification is not done again the same way");
                    pass = again;
                }
            }
        }
    }

    /// [`Verifier::verify`] of `snapshot` in one `pass`; `Err(the next pass)` when the stored
    /// state's digest differs from that of the replayed state as of the checkpoint, which this
    /// pass did not keep, or when a pass letting go of years could not follow them.
    fn verify_snapshot(
        &self,
        snapshot: &StoreSnapshot<'_>,
        progress: &dyn Fn(u64),
        pass: Pass,
    ) -> Result<Result<VerifyReport, Pass>, VerifyError> {
        let head = snapshot.head();
        // The derived records (index, balances, state) are stored as of the checkpoint
        // (docs/FORMAT.md §4): they are checked against the entries up to it; the chain, the
        // tree and the entries' own invariants over the whole journal.
        let current =
            crate::state_format_is(&snapshot.meta(crate::META_STATE_FORMAT)?, crate::STATE_FORMAT);
        let (checkpoint, counts) = crate::derived::stored_checkpoint(
            current,
            || snapshot.state_record(junbao_ledger::state::CHECKPOINT_KEY),
            || snapshot.meta(crate::META_CHECKPOINT),
            || snapshot.meta(crate::derived::META_STATE_COUNTS),
        )?;
        if checkpoint > head.seq {
            return Err(VerifyError::Ledger(format!(
                "the checkpoint names entry {checkpoint} but the head is entry {}",
                head.seq
            )));
        }
        // The index records are stored up to the checkpoint, or further where an ingestion
        // stored them ahead of a checkpoint record that a crash then lost (FORMAT.md §4).
        let index_until = snapshot.index_until()?;
        if index_until > head.seq {
            return Err(VerifyError::Ledger(format!(
                "the index's until record names entry {index_until} but the head is entry {}",
                head.seq
            )));
        }
        let index_until = index_until.max(checkpoint);
        // Idempotency records of a ledger migrated from storage format 1 may carry the content
        // fingerprint (FORMAT.md §4): up to this entry, that form is also accepted.
        let format1_until =
            crate::derived::parse_checkpoint(snapshot.meta(crate::derived::META_FORMAT1_UNTIL)?)?;
        // The journal is read and decoded once: the entries up to the checkpoint go, chunk by
        // chunk, to a thread that replays them from scratch while the next chunks are checked
        // (`replay_from_scratch`); what it finds is reported where a replay after every other
        // check would report it.
        //
        // The index records the entries imply are summed into a keyed digest, compared with the
        // same digest over one scan of the stored index; only when the two differ are the
        // records looked up one by one, to name the first that fails. A ledger migrated from
        // format 1 (two accepted forms of a record) is looked up one by one.
        let digest_key = if format1_until > 0 { None } else { Some(DigestKey::new()?) };
        let (sender, chunks) = std::sync::mpsc::sync_channel::<ReplayChunk>(1);
        // The replayed chunks' buffers come back to be filled again: a chunk's decoded entries
        // take megabytes, which a fresh allocation per chunk has the kernel zero page by page.
        let (recycle, recycled) = std::sync::mpsc::channel::<Vec<CheckedEntry>>();
        // The stored state is not loaded (a second state as large as the replay's): its
        // records are summed into a keyed digest while the journal is checked, and compared
        // with the same digest of the records the replayed state makes
        // (`compare_stored_state`).
        let state_key = DigestKey::new()?;
        std::thread::scope(|scope| {
            // Members' older years leave the replay's memory where their stored pages are
            // exactly the replay's (`LetGo`); kept whole, the state holds every year.
            let let_go = (pass != Pass::Whole).then(|| LetGo {
                snapshot,
                every: self.let_go_every,
                key: state_key.clone(),
                digest: IndexDigest::default(),
                since: 0,
                counts: LetGoCounts::default(),
                faulted: false,
            });
            let replaying = scope.spawn(move || {
                replay_from_scratch(chunks, recycle, checkpoint, counts, pass, let_go)
            });
            // The stored index and state are read while the journal is checked; what they hold
            // is compared, and a failure to read them reported, where it was before.
            let scanning = digest_key.clone().map(|key| {
                scope.spawn(move || {
                    let mut stored = IndexDigest::default();
                    snapshot.ids_for_each(|k, v| stored.add(&key, k, v)).map(|()| stored)
                })
            });
            // Verified again keeping the state, the digests are known to differ: the stored
            // state is loaded whole straight away.
            let digesting = (pass == Pass::Digest).then(|| {
                let key = state_key.clone();
                scope.spawn(move || stored_state_digest(snapshot, &key))
            });
            let stored = Stored { digest_key, scanning };
            let replay = Replay { chunks: sender, recycled };
            let checked = self.check_journal(
                snapshot,
                [checkpoint, index_until],
                format1_until,
                stored,
                replay,
                progress,
            );
            let replayed = replaying.join().expect("the replay does not panic");
            let count = checked?;
            let Replayed { unreplayable: failed, at_checkpoint, let_go, stopped } = replayed;
            match stopped {
                None => {}
                // An entry that could not have been recorded, met before the read failed, is
                // the integrity failure to report.
                Some(ReplayStop::Read(e)) => {
                    unreplayable(&failed)?;
                    return Err(e);
                }
                // Verified again, keeping every year.
                Some(ReplayStop::LetGoAbandoned(why)) => {
                    tracing::warn!("verify's replay kept every year after all: {why}");
                    return Ok(Err(Pass::Whole));
                }
            }
            let mut stored = StoredState { snapshot, counts, digesting };
            let (accounts, state_loaded_whole) = match at_checkpoint {
                // The balances as of the checkpoint are the replay's: every posting of every
                // entry up to it, summed (no entry up to it was left out, or there would be no
                // state as of the checkpoint).
                Some(AtCheckpoint::State(replayed)) => {
                    compare_stored_state(&replayed, stored, &state_key)?
                }
                Some(AtCheckpoint::Digested(replayed)) => match stored.matching(&replayed)? {
                    Match::Same(accounts) => (accounts, false),
                    // Named by a pass that lets go of years too where this one did (a state
                    // whole could not be held), and by one keeping every year otherwise, or for
                    // a stored state of an older format (its records are not this version's).
                    Match::Differs { balances } => {
                        let listed = current && !balances && let_go.years_let_go > 0;
                        return Ok(Err(if listed { Pass::Listed } else { Pass::Whole }));
                    }
                },
                Some(AtCheckpoint::Listed(replayed)) => {
                    (compare_listed(&replayed, snapshot)?, true)
                }
                // The replay stopped before the checkpoint, at an entry that could not have
                // been recorded. A stored state that does not load is reported first, as it
                // is when the replay reaches the checkpoint.
                None => {
                    stored.load()?;
                    unreplayable(&failed)?;
                    return Err(VerifyError::Ledger(format!(
                        "the replay of the journal did not reach the checkpoint (entry \
                         {checkpoint})"
                    )));
                }
            };
            // The entries after the checkpoint must replay too (none could not have been
            // recorded).
            unreplayable(&failed)?;
            Ok(Ok(VerifyReport {
                entries: count,
                head: hex::encode(head.hash),
                accounts,
                state_loaded_whole,
                years_let_go: let_go.years_let_go,
                years_read_back: let_go.years_read_back,
            }))
        })
    }

    /// Everything but the replay up to the checkpoint, which `replay` is sent, and the stored
    /// state: the chain, the entries, the index, the tree. The number of entries checked.
    fn check_journal(
        &self,
        snapshot: &StoreSnapshot<'_>,
        [checkpoint, index_until]: [u64; 2],
        format1_until: u64,
        stored: Stored<'_>,
        replay: Replay,
        progress: &dyn Fn(u64),
    ) -> Result<u64, VerifyError> {
        let head = snapshot.head();
        let mut previous = CHAIN_GENESIS;
        let mut next_seq = 1u64;
        let mut tree = crate::audit::RootBuilder::default();
        let mut index_records = 0u64;
        let digest_key = stored.digest_key.as_ref();
        let mut implied = IndexDigest::default();
        // The entry a reversal names (the replay keeps no entry) is found through the stored
        // idempotency index up to where it reaches (`index_until`), and after it through where
        // each event id of the tail was last recorded (by a keyed hash of the id). A map of
        // every entry's id would take tens of bytes an entry, hundreds of megabytes at ten
        // million entries; the index is checked whole anyway (below).
        let ids = junbao_ledger::keyed::KeyedState::default();
        // Sized once: it ends with about one id per entry of the tail.
        let mut last_of_id: KeyedMap<u64, u64> = KeyedMap::default();
        last_of_id.reserve(
            usize::try_from(head.seq.saturating_sub(index_until))
                .unwrap_or(0)
                .min(crate::derived::RESERVE_MAX),
        );
        // One buffer of raw records, and one of a chunk's leaves, reused chunk after chunk.
        let mut raw = junbao_storage::RawEntries::default();
        let mut leaves = Vec::with_capacity(VERIFY_CHUNK_ENTRIES);
        loop {
            snapshot.read_entries(next_seq, VERIFY_CHUNK_ENTRIES, &mut raw)?;
            if raw.is_empty() {
                break;
            }
            let chunk: Vec<RawEntry<'_>> = raw.iter().collect();
            // Where the stored entries stop being dense: the entries before it are checked
            // first, so that the first failure in sequence order is the one reported.
            let gap = chunk.iter().enumerate().find(|(i, e)| e.seq != next_seq + *i as u64);
            let gap = gap.map(|(i, e)| {
                let expected = next_seq + i as u64;
                let missing = VerifyError::Entry {
                    seq: expected,
                    what: format!("missing (the next stored entry is {})", e.seq),
                };
                (i, missing)
            });
            let (chunk, gap) = match gap {
                Some((i, missing)) => (&chunk[..i], Some(missing)),
                None => (&chunk[..], None),
            };
            // Each link h_n = SHA-256(h_(n-1) || bytes_n) depends only on stored values, so the
            // links are checked in parallel; together they prove the whole chain. The same pass
            // decodes each entry once and hashes its Merkle leaf. The entries stay where this
            // pass puts them: an entry takes hundreds of bytes, and moving each one again cost
            // as much as reading it. Those places are a buffer of a chunk the replay is done
            // with, decoded into again (`Entry::decode_reusing`), so that an entry costs no
            // allocation once the places hold buffers as large as the entries they take.
            let mut checked = replay.recycled.try_recv().unwrap_or_default();
            checked.truncate(chunk.len());
            checked.resize_with(chunk.len(), CheckedEntry::default);
            let check = |i: usize, c: &mut CheckedEntry, e: &RawEntry<'_>| {
                let prev = if i == 0 { &previous } else { chunk[i - 1].chain_hash };
                if chain_next(prev, e.bytes) != *e.chain_hash {
                    return Err((e.seq, "chain hash does not match its bytes".to_string()));
                }
                let decoded = if let Some(entry) = &mut c.entry {
                    entry.decode_reusing(e.bytes)
                } else {
                    Entry::from_canonical_bytes(e.bytes).map(|entry| c.entry = Some(entry))
                };
                decoded.map_err(|err| (e.seq, err.to_string()))?;
                let entry = c.entry.as_ref().expect("decoded above");
                if entry.seq != e.seq {
                    return Err((e.seq, format!("bytes say seq {}", entry.seq)));
                }
                // Past the checkpoint (or the index's until record, if further), the index
                // records are not stored yet.
                c.digest = IndexDigest::default();
                c.index.clear();
                if e.seq <= index_until {
                    match digest_key {
                        None => c.index = index_records_of(entry, e.seq <= format1_until),
                        Some(key) => c.digest.add_entry(key, entry),
                    }
                }
                c.id = ids.hash_one(entry.event.id.as_str());
                c.leaf = merkle::leaf_hash(e.bytes);
                Ok(())
            };
            checked.par_iter_mut().zip(chunk.par_iter()).enumerate().for_each(|(i, (c, e))| {
                c.failure = check(i, c, e).err();
            });
            if let Some(missing) = gap {
                // The first failure, in order: a bad entry before the gap, or the gap itself.
                return Err(checked
                    .iter_mut()
                    .find_map(|c| c.failure.take())
                    .map_or(missing, |(seq, what)| VerifyError::Entry { seq, what }));
            }
            let mut index = Vec::new();
            let mut targets = HashMap::new();
            let first_seq = next_seq;
            // A whole chunk that starts where the tree's size is a multiple of it is a perfect
            // subtree: its root is hashed in parallel, not leaf after leaf on this thread.
            let whole = chunk.len() == VERIFY_CHUNK_ENTRIES
                && tree.len() % VERIFY_CHUNK_ENTRIES as u64 == 0;
            leaves.clear();
            for i in 0..checked.len() {
                let (before, rest) = checked.split_at_mut(i);
                let c = &mut rest[0];
                if let Some((seq, what)) = c.failure.take() {
                    return Err(VerifyError::Entry { seq, what });
                }
                let (leaf, id, records, digest) = (c.leaf, c.id, &mut c.index, &mut c.digest);
                let entry = c.entry.as_ref().expect("checked");
                index.append(records);
                implied.merge(digest);
                if whole {
                    leaves.push(leaf);
                } else {
                    tree.push(leaf);
                }
                if let EventBody::Reversal { of, .. } = &entry.event.body
                    && let Some(target) = reversal_target(
                        snapshot,
                        Tail { ids: &ids, last_of_id: &last_of_id, after: index_until },
                        (first_seq, before),
                        of,
                    )?
                {
                    targets.insert(entry.seq, target);
                }
                if entry.seq > index_until {
                    last_of_id.insert(id, entry.seq);
                }
            }
            if whole {
                let level = VERIFY_CHUNK_ENTRIES.trailing_zeros() as u8;
                tree.push_subtree(level, merkle::perfect_root(&leaves));
            }
            let mut entries = checked;
            // The chunk's index records (a ledger migrated from format 1) looked up in parallel
            // reads.
            index.par_chunks(4096).try_for_each(|part| check_index(snapshot, part))?;
            index_records += index.len() as u64;
            let last = chunk.last().expect("chunk is not empty");
            previous = *last.chain_hash;
            next_seq = last.seq + 1;
            // To the replaying thread, in two parts where the checkpoint falls inside (it keeps
            // the state as of the checkpoint). A closed receiver has stopped at a failure,
            // reported after the checks.
            let after =
                entries.partition_point(|c| checked_entry(c).is_some_and(|e| e.seq <= checkpoint));
            if after > 0 && after < entries.len() {
                let later = entries.split_off(after);
                let (now, rest): (HashMap<u64, Entry>, HashMap<u64, Entry>) =
                    targets.into_iter().partition(|(seq, _)| *seq <= checkpoint);
                let _ = replay.chunks.send((entries, now));
                let _ = replay.chunks.send((later, rest));
            } else {
                let _ = replay.chunks.send((entries, targets));
            }
            progress(next_seq - 1);
        }
        drop(replay);
        let count = next_seq - 1;
        if count != head.seq || previous != head.hash {
            return Err(VerifyError::Ledger(format!(
                "the recorded head is entry {} but the journal ends at entry {count} with another hash",
                head.seq
            )));
        }
        // Every index record the entries imply is stored as they imply it (checked per chunk,
        // or here by the digest); no other record is stored.
        let stored_records = match stored.scanning {
            None => snapshot.ids_count()?,
            Some(scanning) => {
                let stored = scanning.join().expect("the scan does not panic")?;
                if stored != implied {
                    // Something differs: the records looked up one by one name the first failure.
                    locate_index_failure(snapshot, index_until, format1_until)?;
                    if stored.count == implied.count {
                        return Err(VerifyError::Ledger(
                            "the idempotency and member index holds a record the journal does not \
                         imply"
                                .into(),
                        ));
                    }
                }
                index_records = implied.count;
                stored.count
            }
        };
        if stored_records != index_records {
            return Err(VerifyError::Ledger(format!(
                "the idempotency and member index holds {stored_records} records, the journal \
                 implies {index_records}"
            )));
        }
        // The stored tree must give the root recomputed from the entries.
        let stored_root = crate::audit::stored_root(self.store, count).map_err(|e| match e {
            // A node that could not be read keeps the read's kind: the disk is not integrity.
            crate::AuditError::Read(e) => VerifyError::Read(e),
            other => VerifyError::Ledger(format!("the stored Merkle tree: {other}")),
        })?;
        if stored_root != tree.root() {
            return Err(VerifyError::Ledger(
                "the stored Merkle tree's root differs from the entries'".into(),
            ));
        }
        Ok(count)
    }
}

/// The stored index (its digest, with the key), being read.
struct Stored<'scope> {
    digest_key: Option<DigestKey>,
    scanning: Option<
        std::thread::ScopedJoinHandle<'scope, Result<IndexDigest, junbao_storage::ReadError>>,
    >,
}

/// Decoded entries in order (all checked: none is a failure), with the entry each reversal
/// among them names (by its seq).
type ReplayChunk = (Vec<CheckedEntry>, HashMap<u64, Entry>);

/// An entry checked in parallel: its Merkle leaf, the entry, the keyed hash of its event id,
/// its index records (looked up one by one) or their digest; or why it fails, and its seq.
/// A chunk's places are used again for a later chunk's entries.
#[derive(Default)]
struct CheckedEntry {
    leaf: Hash32,
    /// None until an entry is first decoded into this place; anything after a failure.
    entry: Option<Entry>,
    id: u64,
    index: Vec<IndexRecord>,
    digest: IndexDigest,
    failure: Option<(u64, String)>,
}

/// The entry of a [`CheckedEntry`] that did not fail.
fn checked_entry(checked: &CheckedEntry) -> Option<&Entry> {
    checked.failure.is_none().then_some(checked.entry.as_ref()).flatten()
}

/// The way to the replaying thread: chunks to replay, and the buffers of chunks it replayed.
struct Replay {
    chunks: std::sync::mpsc::SyncSender<ReplayChunk>,
    recycled: std::sync::mpsc::Receiver<Vec<CheckedEntry>>,
}

/// The replayed state as of the checkpoint: whole, or, where entries after it are replayed on
/// or years were let go of, what comparing it with the stored state needs ([`Digested`],
/// [`Listed`]).
enum AtCheckpoint {
    State(Box<LedgerState>),
    Digested(Digested),
    Listed(Listed),
}

/// How a pass of a verification keeps the replayed state as of the checkpoint, in the order
/// the passes come: the first that tells the stored state right or names what differs ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pass {
    /// Its digest only, letting go of members' older years ([`LetGo`]): every verification's
    /// first pass, enough when the stored state is right.
    Digest,
    /// Letting go of older years, the records it holds in memory listed, compared record by
    /// record with one scan of the stored state ([`compare_listed`]): the second pass where the
    /// first let go of years, whose whole state would not fit.
    Listed,
    /// Every year, the state whole, compared with the stored state loaded whole: the second pass
    /// of a smaller ledger (it names differences by account and kind), or of a stored state of
    /// an older format.
    Whole,
}

/// Of a replayed state: the digest of its records ([`LedgerState::fold_state_records`]), its
/// funds' trial balances, and the number of accounts whose balance is not zero.
struct Digested {
    digest: IndexDigest,
    totals: Totals,
}

/// Of a replayed state: its funds' trial balances, and the number of accounts whose balance is
/// not zero.
struct Totals {
    trial: std::collections::BTreeMap<junbao_ledger::Fund, i128>,
    accounts: usize,
}

impl Totals {
    fn of(state: &LedgerState) -> Totals {
        Totals {
            trial: state.trial_balance(),
            accounts: state.balances().filter(|(_, b)| b.0 != 0).count(),
        }
    }

    /// The checks left once the stored records are the replay's: every fund's trial balance
    /// is zero. The number of accounts whose balance is not zero.
    fn checked(&self) -> Result<usize, VerifyError> {
        zero_trial_balances(&self.trial)?;
        Ok(self.accounts)
    }
}

/// Of a replayed state that let go of years: the records it holds in memory, in key order, and
/// each member's last year out of memory (their stored pages were the replay's when let go of,
/// and are unchanged since: [`LetGo`]).
struct Listed {
    records: Vec<(Vec<u8>, Vec<u8>)>,
    cold: HashMap<junbao_ledger::ids::MemberId, u16>,
    totals: Totals,
}

impl Listed {
    fn of(state: &LedgerState) -> Listed {
        let parts =
            state.fold_state_records(Vec::new, |v: &mut Vec<(Vec<u8>, Vec<u8>)>, k, val| {
                v.push((k.to_vec(), val.to_vec()));
            });
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = parts.into_iter().flatten().collect();
        records.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Listed {
            records,
            cold: state.cold_throughs().into_iter().collect(),
            totals: Totals::of(state),
        }
    }
}

impl Digested {
    fn of(state: &LedgerState, key: &DigestKey) -> Digested {
        let digest = state.fold_state_records(IndexDigest::default, |d, k, v| d.add(key, k, v));
        Digested {
            digest: digest.iter().fold(IndexDigest::default(), |mut all, d| {
                all.merge(d);
                all
            }),
            totals: Totals::of(state),
        }
    }
}

/// What the replay of a verification ends with: the first entry that could not have been
/// recorded, the state as of the checkpoint (none if the replay stopped before it), how many
/// times it let go of a member's older years and read them back, and why it stopped early, if
/// it did.
struct Replayed {
    unreplayable: Option<(u64, String)>,
    at_checkpoint: Option<AtCheckpoint>,
    let_go: LetGoCounts,
    stopped: Option<ReplayStop>,
}

impl Replayed {
    /// What `replayer` found and `let_go` counted, with the state as of the checkpoint and why
    /// the replay stopped early, if it did.
    fn of(
        replayer: &Replayer,
        let_go: &Option<LetGo<'_>>,
        at_checkpoint: Option<AtCheckpoint>,
        stopped: Option<ReplayStop>,
    ) -> Replayed {
        Replayed {
            unreplayable: replayer.unreplayable().cloned(),
            at_checkpoint,
            let_go: let_go.as_ref().map_or_else(LetGoCounts::default, |l| l.counts),
            stopped,
        }
    }
}

/// How many times the replay let go of a member's older years, and read them back.
#[derive(Debug, Default, Clone, Copy)]
struct LetGoCounts {
    years_let_go: u64,
    years_read_back: u64,
}

/// Why the replay stopped before the last chunk.
enum ReplayStop {
    /// A stored page could not be read.
    Read(VerifyError),
    /// What it let go of cannot be followed (an entry read a year out of memory of a member it
    /// names nowhere, or the pages read back are not those let go of: neither happens unless
    /// this code is wrong): the verification is done again keeping every year.
    LetGoAbandoned(String),
}

/// Members' older years leaving the replay's memory (a member's book grows by every month they
/// serve; kept whole, fifteen years of two million members would take some 16 GB). Every so
/// many entries, each book holding years before its last [`crate::RESIDENT_YEARS`] lets go of
/// them, up to the first year whose stored page is not byte for byte the replay's page now (a
/// year an entry still to come changes: a late premium, a reversal, a late interest credit; or
/// a tampered page) ([`LedgerState::years_to_let_go`], [`same_through`]); an entry that needs
/// them later reads them back from the store ([`Replayer::push_all_given_reading_back`]),
/// checked against what was let go of. So the stored pages stand for the replay's as long as
/// they are out of memory, and the digest of the replayed state at the checkpoint is that of
/// the records in memory plus `digest`, the stored pages out of memory. A stored page that
/// differs from the replay's stays in memory, and the digests then differ as they would have.
struct LetGo<'a> {
    snapshot: &'a StoreSnapshot<'a>,
    every: Option<u64>,
    key: DigestKey,
    /// The pages out of memory, summed as the stored records are.
    digest: IndexDigest,
    /// Entries replayed since the last look.
    since: u64,
    counts: LetGoCounts,
    /// Whether years were read back since the state's note of members read back was last
    /// emptied.
    faulted: bool,
}

impl LetGo<'_> {
    /// Whether a look for years to let go of is due.
    fn due(&self, state: &LedgerState) -> bool {
        let every =
            self.every.unwrap_or_else(|| LET_GO_EVERY_MIN.max(8 * state.books.len() as u64));
        self.since >= every
    }

    /// Lets go of every book's older years, up to the first whose stored page is not the
    /// replay's ([`same_through`]).
    fn look(&mut self, replayer: &mut Replayer) -> Result<(), ReplayStop> {
        self.since = 0;
        let keep = crate::RESIDENT_YEARS;
        let mut members = replayer.state().books_holding_years_before_last(keep);
        // In key order, so that each part's reads move forward through the stored pages; a
        // slice at a time, so that the pages compared (the replay's and the stored copies)
        // never take more than a slice's worth of memory (at a year's turn every book has a year
        // to let go of).
        members.par_sort_unstable();
        for slice in members.chunks(LET_GO_SLICE) {
            self.let_go_of(replayer, slice)?;
        }
        Ok(())
    }

    /// [`LetGo::look`] for the books of `members`.
    fn let_go_of(
        &mut self,
        replayer: &mut Replayer,
        members: &[junbao_ledger::ids::MemberId],
    ) -> Result<(), ReplayStop> {
        let candidates = replayer.state().years_to_let_go(members, crate::RESIDENT_YEARS);
        let snapshot = self.snapshot;
        let same: Vec<Option<u16>> = candidates
            .par_chunks(LET_GO_READ_PART)
            .map(|part| {
                let ranges: Vec<_> = part
                    .iter()
                    .map(|c| {
                        let page = junbao_ledger::state::page_key;
                        (page(&c.member, c.from), page(&c.member, c.through + 1))
                    })
                    .collect();
                let mut stored: Vec<Vec<(u16, Vec<u8>)>> = vec![Vec::new(); part.len()];
                snapshot.state_ranges_for_each(&ranges, |i, k, v| {
                    stored[i].push(crate::derived::year_page(k, v));
                })?;
                Ok(part.iter().zip(stored).map(|(c, s)| same_through(c, &s)).collect::<Vec<_>>())
            })
            .collect::<Result<Vec<_>, junbao_storage::ReadError>>()
            .map_err(|e| ReplayStop::Read(e.into()))?
            .into_iter()
            .flatten()
            .collect();
        for (c, through) in candidates.iter().zip(same) {
            let Some(through) = through else { continue };
            if replayer.evict_through(&c.member, through) {
                for (year, page) in c.pages.iter().take_while(|(y, _)| *y <= through) {
                    self.digest.add(
                        &self.key,
                        &junbao_ledger::state::page_key(&c.member, *year),
                        page,
                    );
                }
                self.counts.years_let_go += 1;
            }
        }
        Ok(())
    }

    /// Reads `member`'s years out of memory back into `batch`, from the stored pages.
    fn read_back(
        &mut self,
        batch: &mut junbao_ledger::rules::Batch<'_>,
        member: &junbao_ledger::ids::MemberId,
    ) -> Result<(), ReplayStop> {
        let Some(through) = batch.cold_through(member) else { return Ok(()) };
        let pages = crate::derived::cold_pages(
            crate::derived::Pages::Snapshot(self.snapshot),
            member,
            through,
        )
        .map_err(|e| ReplayStop::Read(e.into()))?;
        batch.fault_in(member, pages.iter().map(|(y, v)| (*y, v.as_slice()))).map_err(|e| {
            ReplayStop::LetGoAbandoned(format!("member {member}'s years read back: {e}"))
        })?;
        for (year, page) in &pages {
            self.digest.remove(&self.key, &junbao_ledger::state::page_key(member, *year), page);
        }
        self.counts.years_read_back += 1;
        self.faulted = true;
        Ok(())
    }
}

/// The last year of `c` whose stored pages (`stored`, in year order), and those of every year
/// from `c.from` to it, are byte for byte the replay's (`c.pages`): the years a book may let go
/// of; `None` if the first differs.
fn same_through(c: &junbao_ledger::state::YearsToLetGo, stored: &[(u16, Vec<u8>)]) -> Option<u16> {
    let (mut replayed, mut stored) = (c.pages.iter(), stored.iter());
    let mut through = c.through;
    loop {
        match (replayed.next(), stored.next()) {
            (None, None) => break,
            (Some(r), Some(s)) if r == s => continue,
            (r, s) => {
                // The first year that differs (held by one side only, or in other bytes).
                let year = r.map_or(u16::MAX, |r| r.0).min(s.map_or(u16::MAX, |s| s.0));
                through = through.min(year.checked_sub(1)?);
                break;
            }
        }
    }
    (through >= c.from).then_some(through)
}

/// Replays the chunks received, from scratch, without rule checks (their chain and decoding
/// are verified by the sender), up to the first entry that could not have been recorded; with
/// the state as of the `checkpoint` (none if the replay stopped before it), as the `pass` keeps
/// it: the final state if nothing follows the checkpoint and every year is in memory, else a
/// copy of it, or only its digest, or the records it holds in memory. A chunk ends at the
/// checkpoint or starts after it. The buffer of each chunk replayed goes back by `recycle`,
/// its entries in it (decoded into again by the sender, off this thread). `counts`: the sizes
/// of the state as of the checkpoint that the checkpoint noted, to size the maps once. With `let_go`, members' older years leave memory ([`LetGo`]).
fn replay_from_scratch(
    chunks: std::sync::mpsc::Receiver<ReplayChunk>,
    recycle: std::sync::mpsc::Sender<Vec<CheckedEntry>>,
    checkpoint: u64,
    counts: Option<[usize; 3]>,
    pass: Pass,
    mut let_go: Option<LetGo<'_>>,
) -> Replayed {
    let mut replayer = Replayer::keeping_none();
    if let Some([members, books, balances]) = counts {
        // Capped at the entries up to the checkpoint (`parse_state_counts`).
        replayer.reserve(members, books, balances);
    }
    let mut at_checkpoint = (checkpoint == 0).then(|| AtCheckpoint::State(Box::default()));
    let mut chunks = chunks.into_iter().peekable();
    while let Some((entries, targets)) = chunks.next() {
        // In parts, each one commit: the replay's pending changes stay small (in cache); a
        // batch reads its own changes first, so the state is that of one commit per entry.
        for part in entries.chunks(REPLAY_PART_ENTRIES) {
            let applied = match &mut let_go {
                None => {
                    replayer.push_all_given(part.iter().filter_map(checked_entry), &targets);
                    Ok(())
                }
                Some(l) => replayer
                    .push_all_given_reading_back(
                        part.iter().filter_map(checked_entry),
                        &targets,
                        &mut |batch, member| l.read_back(batch, member),
                    )
                    .and_then(|followed| {
                        if !followed {
                            return Err(ReplayStop::LetGoAbandoned(
                                "an entry read years out of memory of a member it does not name"
                                    .into(),
                            ));
                        }
                        l.since += part.len() as u64;
                        // The writer's note of members read back (for letting go of them
                        // again) is not used here: it is emptied, not left to grow.
                        if std::mem::take(&mut l.faulted) {
                            drop(replayer.state().take_faulted());
                        }
                        if l.due(replayer.state()) { l.look(&mut replayer) } else { Ok(()) }
                    }),
            };
            if let Err(why) = applied {
                return Replayed::of(&replayer, &let_go, at_checkpoint, Some(why));
            }
            if replayer.unreplayable().is_some() {
                break;
            }
        }
        if replayer.unreplayable().is_some() {
            break;
        }
        let at = entries.last().and_then(checked_entry).is_some_and(|e| e.seq == checkpoint);
        // A sender gone has stopped at a failure: the buffer is dropped here.
        let _ = recycle.send(entries);
        if at_checkpoint.is_none() && at {
            drop(targets);
            if pass != Pass::Listed && chunks.peek().is_none() && !replayer.state().any_cold_years()
            {
                // Nothing after the checkpoint (the usual case after a close): the state as of
                // the checkpoint is the replay's final state, taken without a copy.
                let mut replayed = Replayed::of(&replayer, &let_go, None, None);
                replayed.at_checkpoint = Some(AtCheckpoint::State(Box::new(replayer.finish())));
                return replayed;
            }
            at_checkpoint = Some(match (pass, &let_go) {
                (Pass::Listed, _) => AtCheckpoint::Listed(Listed::of(replayer.state())),
                // The records in memory, and the stored pages of the years out of memory.
                (Pass::Digest, Some(l)) => {
                    let mut digested = Digested::of(replayer.state(), &l.key);
                    digested.digest.merge(&l.digest);
                    AtCheckpoint::Digested(digested)
                }
                // Every year kept: a copy.
                _ => AtCheckpoint::State(Box::new(replayer.state().clone())),
            });
        }
    }
    Replayed::of(&replayer, &let_go, at_checkpoint, None)
}

/// The first entry pushed that could not have been recorded, as a failure.
fn unreplayable(unreplayable: &Option<(u64, String)>) -> Result<(), VerifyError> {
    match unreplayable {
        Some((seq, why)) => Err(VerifyError::Entry {
            seq: *seq,
            what: format!("it could not have been recorded: {why}"),
        }),
        None => Ok(()),
    }
}

/// Where the event ids of the entries after the stored index (`after`: the entry it reaches)
/// were last recorded: a keyed hash of each id → the last seq that carries it.
struct Tail<'a> {
    ids: &'a junbao_ledger::keyed::KeyedState,
    last_of_id: &'a KeyedMap<u64, u64>,
    after: u64,
}

/// The entry a reversal names: the last one before it that carries the event id `of`, read
/// back (`chunk`: the first seq of this chunk and its entries before the reversal, in order,
/// all checked, else from the store). Among the entries after the stored index, found through
/// `tail` (or by a search of them when two ids share a hash); up to it, the entry the id's
/// idempotency record names, if it carries that id and comes before the reversal. An index
/// that names another entry or none is a failure the check of the whole index reports (it is
/// reported before anything the replay finds), so no target is given then.
fn reversal_target(
    snapshot: &StoreSnapshot<'_>,
    tail: Tail<'_>,
    (first, chunk): (u64, &[CheckedEntry]),
    of: &EventId,
) -> Result<Option<Entry>, VerifyError> {
    let read = |at: u64| -> Result<Entry, VerifyError> {
        if let Some(entry) =
            at.checked_sub(first).and_then(|i| chunk.get(i as usize)).and_then(checked_entry)
        {
            return Ok(entry.clone());
        }
        let stored = snapshot.entries(at, 1).next().transpose()?;
        let stored = stored
            .filter(|e| e.seq == at)
            .ok_or_else(|| VerifyError::Entry { seq: at, what: "missing".into() })?;
        Entry::from_canonical_bytes(&stored.bytes)
            .map_err(|err| VerifyError::Entry { seq: at, what: err.to_string() })
    };
    if let Some(&found) = tail.last_of_id.get(&tail.ids.hash_one(of.as_str())) {
        let entry = read(found)?;
        if entry.event.id == *of {
            return Ok(Some(entry));
        }
        // Another id with the same hash was recorded since: search the tail backwards.
        let mut at = found;
        while at > tail.after + 1 {
            at -= 1;
            let entry = read(at)?;
            if entry.event.id == *of {
                return Ok(Some(entry));
            }
        }
    }
    // Before the reversal: in this chunk or an earlier one.
    let before = first + chunk.len() as u64;
    let stored = snapshot.ids_get(&[of.as_str().as_bytes()])?.pop().flatten();
    let Some((seq, _)) = stored.as_deref().and_then(crate::parse_id_record) else {
        return Ok(None);
    };
    if seq == 0 || seq > tail.after || seq >= before {
        return Ok(None);
    }
    let entry = read(seq)?;
    Ok((entry.event.id == *of).then_some(entry))
}

/// A record of the `ids` column family an entry implies: its key, its value, and what it is
/// for the message.
struct IndexRecord {
    seq: u64,
    key: Vec<u8>,
    value: Vec<u8>,
    /// Another value the record may hold: an idempotency record of storage format 1 carries
    /// the fingerprint after the sequence number (kept by `migrate`).
    alt: Option<Vec<u8>>,
    /// A member index record (else an idempotency record): named from the key on failure.
    member: bool,
}

impl IndexRecord {
    /// What the record is, for a message: made only when a record fails.
    fn what(&self) -> String {
        if self.member {
            let member = self.key.get(1..self.key.len().saturating_sub(9)).unwrap_or_default();
            format!("the member index record of {}", String::from_utf8_lossy(member))
        } else {
            format!("the idempotency record of {:?}", String::from_utf8_lossy(&self.key))
        }
    }
}

/// The records an entry adds to the `ids` column family, as a post (or a mirror) writes them:
/// its event id's idempotency record (sequence number and content fingerprint), and a member
/// index record for every member it names or posts to.
fn index_records_of(entry: &Entry, format1: bool) -> Vec<IndexRecord> {
    let id = entry.event.id.as_str();
    let mut records = vec![IndexRecord {
        seq: entry.seq,
        key: id.as_bytes().to_vec(),
        value: crate::id_record(entry.seq),
        alt: format1.then(|| crate::id_record_v1(entry.seq, &event_fingerprint(&entry.event))),
        member: false,
    }];
    records.extend(junbao_ledger::rules::entry_members(entry).into_iter().map(|m| IndexRecord {
        seq: entry.seq,
        key: crate::member_index_key(m, entry.seq),
        value: Vec::new(),
        alt: None,
        member: true,
    }));
    records
}

/// A keyed digest of a set of records (key and value each): their count and the sum, wrapping,
/// of SipHash-2-4 with a 128-bit output (a pseudo-random function) keyed with a random key drawn
/// for this verification. Two sets with the same count and digest are the same set but with a
/// probability of about 2^-128 that nobody can raise, as nobody knows the key before it is
/// drawn, and it is never shown. (It was a keyed SHA-256: four times the time, for a bound
/// nobody needs.)
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct IndexDigest {
    sum: u128,
    count: u64,
}

/// The key of an [`IndexDigest`]: SipHash-2-4 keyed with 16 random bytes.
#[derive(Clone)]
struct DigestKey(siphasher::sip128::SipHasher24);

impl DigestKey {
    fn new() -> Result<DigestKey, VerifyError> {
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).map_err(|e| {
            VerifyError::Read(junbao_storage::ReadError::Engine(format!(
                "no random key for verify's digests: {e}"
            )))
        })?;
        Ok(DigestKey(siphasher::sip128::SipHasher24::new_with_key(&key)))
    }
}

impl IndexDigest {
    fn add(&mut self, key: &DigestKey, k: &[u8], v: &[u8]) {
        use siphasher::sip128::Hasher128;
        use std::hash::Hasher;
        let mut h = key.0;
        h.write(&(k.len() as u64).to_le_bytes());
        h.write(k);
        h.write(v);
        self.sum = self.sum.wrapping_add(u128::from(h.finish128()));
        self.count += 1;
    }

    /// The records an entry implies, as `index_records_of` makes them (storage format 2).
    fn add_entry(&mut self, key: &DigestKey, entry: &Entry) {
        self.add(key, entry.event.id.as_str().as_bytes(), &crate::id_record(entry.seq));
        for m in junbao_ledger::rules::entry_members(entry) {
            self.add(key, &crate::member_index_key(m, entry.seq), &[]);
        }
    }

    fn merge(&mut self, other: &IndexDigest) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.count += other.count;
    }

    /// Takes out a record [`IndexDigest::add`] added.
    fn remove(&mut self, key: &DigestKey, k: &[u8], v: &[u8]) {
        let mut one = IndexDigest::default();
        one.add(key, k, v);
        // Wrapping, as the sum: a record taken out that was never added (which this code does
        // not do) gives a digest that matches nothing, not a panic.
        self.sum = self.sum.wrapping_sub(one.sum);
        self.count = self.count.wrapping_sub(one.count);
    }
}

/// Looks up, one by one, every index record the entries `1..=until` imply (`until`: the
/// checkpoint, or the index's until record if further; their chain and decoding are checked
/// already), and names the first that is missing or holds something else.
fn locate_index_failure(
    snapshot: &StoreSnapshot<'_>,
    until: u64,
    format1_until: u64,
) -> Result<(), VerifyError> {
    let mut from = 1;
    while from <= until {
        let chunk: Vec<_> =
            snapshot.entries(from, VERIFY_CHUNK_ENTRIES).collect::<Result<_, _>>()?;
        let Some(last) = chunk.last() else { break };
        from = last.seq + 1;
        let records: Vec<IndexRecord> = chunk
            .par_iter()
            .filter(|e| e.seq <= until)
            .map(|e| {
                Entry::from_canonical_bytes(&e.bytes)
                    .map(|entry| index_records_of(&entry, e.seq <= format1_until))
                    .map_err(|err| VerifyError::Entry { seq: e.seq, what: err.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        records.par_chunks(4096).try_for_each(|part| check_index(snapshot, part))?;
    }
    Ok(())
}

/// Looks up the index records a chunk of entries implies, in one read, and names the first
/// that is missing or holds something else.
fn check_index(snapshot: &StoreSnapshot<'_>, records: &[IndexRecord]) -> Result<(), VerifyError> {
    let keys: Vec<&[u8]> = records.iter().map(|r| r.key.as_slice()).collect();
    let stored = snapshot.ids_get(&keys)?;
    for (r, stored) in records.iter().zip(stored) {
        let what = match stored {
            None => "is missing",
            Some(v) if v != r.value && r.alt.as_ref() != Some(&v) => "does not match the entry",
            Some(_) => continue,
        };
        return Err(VerifyError::Entry { seq: r.seq, what: format!("{} {what}", r.what()) });
    }
    Ok(())
}

/// The digest of the stored state's records (the `state` column family, the checkpoint's own
/// record apart), and whether the `balances` column family holds any record (a state of an
/// older format, which only a whole load compares).
type StateDigest = (IndexDigest, bool);

fn stored_state_digest(
    snapshot: &StoreSnapshot<'_>,
    key: &DigestKey,
) -> Result<StateDigest, VerifyError> {
    let mut digest = IndexDigest::default();
    snapshot.state_for_each(|k, v| {
        if k != junbao_ledger::state::CHECKPOINT_KEY {
            digest.add(key, k, v);
        }
        true
    })?;
    let mut balances = false;
    snapshot.balances_for_each(|_, _| {
        balances = true;
        false
    })?;
    Ok((digest, balances))
}

/// The stored state of a verification: its digest being computed (none when a verification
/// again already found it differs), and how to load it whole.
struct StoredState<'a, 'scope> {
    snapshot: &'a StoreSnapshot<'a>,
    counts: Option<[usize; 3]>,
    digesting: Option<std::thread::ScopedJoinHandle<'scope, Result<StateDigest, VerifyError>>>,
}

impl StoredState<'_, '_> {
    /// The stored state's digest (or the error reading it).
    fn digest(&mut self) -> Result<StateDigest, VerifyError> {
        let digesting = self.digesting.take().expect("the digest is taken once");
        digesting.join().expect("the digest does not panic")
    }

    /// The checks left when the stored records are exactly those `replayed` makes (the same
    /// digest, and no record in the `balances` family): the number of accounts whose balance
    /// is not zero; or that they are not.
    fn matching(&mut self, replayed: &Digested) -> Result<Match, VerifyError> {
        let (digest, balances) = self.digest()?;
        if (digest, balances) != (replayed.digest, false) {
            return Ok(Match::Differs { balances });
        }
        replayed.totals.checked().map(Match::Same)
    }

    /// The stored state, loaded whole: what is on disk, not what the writer holds in memory
    /// (an edited record must be found). A failure to read the digest comes first.
    fn load(mut self) -> Result<LedgerState, VerifyError> {
        if self.digesting.is_some() {
            self.digest()?;
        }
        let snapshot = self.snapshot;
        use crate::load::Kind;
        let loaded = crate::load::load_state(
            vec![vec![
                (Kind::State, Box::new(|f| snapshot.state_for_each(f))),
                (Kind::Balances, Box::new(|f| snapshot.balances_for_each(f))),
            ]],
            false,
            self.counts,
            // Every year: the stored books are compared whole with the replay.
            None,
        );
        match loaded {
            Ok(state) => Ok(state),
            Err(crate::load::LoadError::Read(e)) => Err(e.into()),
            Err(crate::load::LoadError::State(e)) => {
                Err(VerifyError::Ledger(format!("the stored state does not load: {e}")))
            }
        }
    }
}

/// Whether the stored state's records are those of a replayed state ([`StoredState::matching`]).
enum Match {
    /// They are, and the replay's trial balances are zero: the number of accounts whose balance
    /// is not zero.
    Same(usize),
    /// They are not; `balances`: the `balances` family holds records (an older format).
    Differs { balances: bool },
}

/// Compares the stored state with the records `listed` (of a replay that let go of years) in
/// one scan of the stored state in key order, merged with the listed records: a record in both
/// must hold the same bytes, or decode to the same value (an older encoding, which passes with
/// a warning); a record the replay lists must be stored, and a stored record it does not list
/// must be a page of a year it let go of (compared when let go of, unchanged since: its key
/// exactly the one this ledger writes, its year from [`junbao_ledger::time::FIRST_YEAR`] on), or
/// either must be one whose absence means the same (a default administration record or
/// standards, a zero balance: passes with the warning, as a whole comparison lets it pass).
/// The first kind of record that differs, in the order a whole comparison names them, is named
/// with up to five of its records. With the number of accounts whose balance is not zero.
fn compare_listed(listed: &Listed, snapshot: &StoreSnapshot<'_>) -> Result<usize, VerifyError> {
    use junbao_ledger::state::{StateRecord, describe_state_key, page_key, page_member_year};
    // A record whose absence means the same value.
    let means_nothing = |k: &[u8], v: &[u8]| match StateRecord::decode(k, v, false) {
        Ok(StateRecord::Admin(a)) => a == junbao_ledger::admin::AdminState::default(),
        Ok(StateRecord::Standards(s)) => s == junbao_ledger::standard::Standards::default(),
        Ok(StateRecord::Balance(_, fen)) => fen.0 == 0,
        _ => false,
    };
    let mut differing: std::collections::BTreeMap<u8, (&'static str, Vec<String>)> =
        std::collections::BTreeMap::new();
    // A fund's balance is named with both figures, as a whole comparison names it.
    let balance = |k: &[u8], v: Option<&[u8]>| match v.map(|v| StateRecord::decode(k, v, false)) {
        None => Some(Fen(0)),
        Some(Ok(StateRecord::Balance(_, fen))) => Some(fen),
        Some(_) => None,
    };
    let mut note = |key: &[u8], replayed: Option<&[u8]>, stored: Option<&[u8]>| {
        let (order, kind, mut name) = describe_state_key(key);
        if order == 0
            && let (Some(journal), Some(stored)) = (balance(key, replayed), balance(key, stored))
        {
            name = format!("{name}: journal {journal}, stored {stored}");
        }
        let names = &mut differing.entry(order).or_insert((kind, Vec::new())).1;
        if names.len() < 5 && !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    };
    // Only the keys compared when their years were let go of (`LetGo::let_go_of`).
    let let_go = |k: &[u8]| {
        page_member_year(k).is_some_and(|(m, year)| {
            year >= junbao_ledger::time::FIRST_YEAR
                && k == page_key(&m, year).as_slice()
                && listed.cold.get(&m).is_some_and(|c| year <= *c)
        })
    };
    let mut other_encoding = false;
    // A record the replay lists, or the store holds, or both: the same, the same value in
    // other bytes (or a record whose absence means the same), or a difference.
    let mut found = |k: &[u8], replayed: Option<&[u8]>, stored: Option<&[u8]>| {
        let same = match (replayed, stored) {
            (Some(r), Some(s)) if r == s => true,
            (Some(r), Some(s)) => {
                let by_value = matches!(
                    (StateRecord::decode(k, r, false), StateRecord::decode(k, s, false)),
                    (Ok(a), Ok(b)) if a == b
                );
                other_encoding |= by_value;
                by_value
            }
            // A page let go of, nearly every record the replay does not list: not decoded.
            (None, Some(_)) if let_go(k) => true,
            (Some(v), None) | (None, Some(v)) => {
                let nothing = means_nothing(k, v);
                other_encoding |= nothing;
                nothing
            }
            (None, None) => true,
        };
        if !same {
            note(k, replayed, stored);
        }
    };
    let mut replayed = listed.records.iter().peekable();
    snapshot.state_for_each(|k, v| {
        if k == junbao_ledger::state::CHECKPOINT_KEY {
            return true;
        }
        // Listed records before this key are not stored.
        while let Some((missing, value)) = replayed.next_if(|(rk, _)| rk.as_slice() < k) {
            found(missing, Some(value), None);
        }
        let listed = replayed.next_if(|(rk, _)| rk.as_slice() == k).map(|(_, rv)| rv.as_slice());
        found(k, listed, Some(v));
        true
    })?;
    for (missing, value) in replayed {
        found(missing, Some(value), None);
    }
    if let Some((_, (kind, names))) = differing.into_iter().next() {
        let separator = if kind == "balances" { "; " } else { ", " };
        let named =
            if names.is_empty() { String::new() } else { format!(": {}", names.join(separator)) };
        return Err(VerifyError::Ledger(format!(
            "the stored {kind} differ from a replay of the journal{named}"
        )));
    }
    if other_encoding {
        tracing::warn!(
            "the stored state's records are not byte for byte those this version writes for the \
             same state (an older encoding of the same values): they were compared by value"
        );
    }
    listed.totals.checked()
}

/// Compares the stored state with the replay's as of the checkpoint; with the number of
/// accounts whose balance is not zero, and whether the stored state was loaded whole. The
/// records the replayed state makes ([`LedgerState::fold_state_records`], the encoding a
/// checkpoint writes) are summed into the keyed digest the stored records were: the same count
/// and digest is the same set of records (but with a probability of about 2^-128), so the same
/// state, and only the replay's trial balance is left to check. Otherwise (or straight away
/// when `stored` has no digest: the second verification of a snapshot) the stored state is
/// loaded whole and compared record kind by record kind, which names what differs (as every
/// verification did before): so a record stored in another encoding of the same value is no
/// failure, only slower.
fn compare_stored_state(
    replayed: &LedgerState,
    stored: StoredState<'_, '_>,
    key: &DigestKey,
) -> Result<(usize, bool), VerifyError> {
    let mut stored = stored;
    if stored.digesting.is_some()
        && let Match::Same(accounts) = stored.matching(&Digested::of(replayed, key))?
    {
        return Ok((accounts, false));
    }
    let state = stored.load()?;
    let accounts = compare_balances(replayed, &state)?;
    compare_state(replayed, &state)?;
    tracing::warn!(
        "the stored state's records are not byte for byte those this version writes for the \
         same state (an older encoding of the same values): it was loaded and compared whole"
    );
    Ok((accounts, true))
}

/// Compares the stored balances with the replay's (every posting up to the checkpoint, summed),
/// naming up to five differing accounts, and checks that every fund's stored balances sum to
/// zero; with the number of accounts whose balance is not zero. A member account's balance,
/// stored and replayed, is the sum of its yearly sums in the member's book.
fn compare_balances(replayed: &LedgerState, stored: &LedgerState) -> Result<usize, VerifyError> {
    let materialised: HashMap<Account, Fen> = stored.balances().filter(|(_, b)| b.0 != 0).collect();
    let recomputed: HashMap<Account, Fen> = replayed.balances().filter(|(_, b)| b.0 != 0).collect();
    if materialised != recomputed {
        let mut diff: Vec<String> = recomputed
            .iter()
            .filter(|(a, b)| materialised.get(*a) != Some(b))
            .map(|(a, b)| {
                format!(
                    "{a}: journal {b}, stored {}",
                    materialised.get(a).copied().unwrap_or_default()
                )
            })
            .chain(
                materialised
                    .iter()
                    .filter(|(a, _)| !recomputed.contains_key(*a))
                    .map(|(a, b)| format!("{a}: journal 0.00, stored {b}")),
            )
            .collect();
        diff.sort();
        diff.truncate(5);
        return Err(VerifyError::Ledger(format!(
            "materialised balances differ from the journal: {}",
            diff.join("; ")
        )));
    }
    zero_trial_balances(&stored.trial_balance())?;
    Ok(recomputed.len())
}

/// Every fund's trial balance is zero, or the first that is not is named.
fn zero_trial_balances(
    trial: &std::collections::BTreeMap<junbao_ledger::Fund, i128>,
) -> Result<(), VerifyError> {
    match trial.iter().find(|(_, total)| **total != 0) {
        Some((fund, total)) => Err(VerifyError::Ledger(format!(
            "the {fund} fund's trial balance is {total} fen, not zero"
        ))),
        None => Ok(()),
    }
}

/// Compares a replayed state with the stored one, record kind by record kind, naming up to five
/// differing keys of the first kind that differs.
fn compare_state(replayed: &LedgerState, stored: &LedgerState) -> Result<(), VerifyError> {
    fn differing<
        K: std::fmt::Display + Eq + std::hash::Hash + Ord,
        V: PartialEq,
        S: std::hash::BuildHasher,
    >(
        replayed: &HashMap<K, V, S>,
        stored: &HashMap<K, V, S>,
    ) -> Vec<String> {
        let mut keys: Vec<&K> = replayed
            .iter()
            .filter(|(k, v)| stored.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .chain(stored.keys().filter(|k| !replayed.contains_key(*k)))
            .collect();
        keys.sort();
        keys.dedup();
        keys.into_iter().take(5).map(ToString::to_string).collect()
    }
    let mismatch = |what: &str, keys: Vec<String>| {
        VerifyError::Ledger(format!(
            "the stored {what} differ from a replay of the journal{}",
            if keys.is_empty() { String::new() } else { format!(": {}", keys.join(", ")) }
        ))
    };
    if replayed.members != stored.members {
        return Err(mismatch("member records", differing(&replayed.members, &stored.members)));
    }
    if replayed.books != stored.books {
        // Named by member: one page holds a member's premium months and yearly sums of a year.
        return Err(mismatch(
            "premium-period records (member-year pages: premium months, yearly sums)",
            differing(&replayed.books, &stored.books),
        ));
    }
    if replayed.standards != stored.standards {
        return Err(mismatch("standards", vec![]));
    }
    if replayed.interest_credited != stored.interest_credited {
        return Err(mismatch("interest marks", vec![]));
    }
    if replayed.reversed != stored.reversed {
        return Err(mismatch("reversal marks", vec![]));
    }
    if replayed.backpaid != stored.backpaid {
        return Err(mismatch("back-paid months", vec![]));
    }
    if replayed.admin != stored.admin {
        return Err(mismatch("administration record (sealed years, deposit interest)", vec![]));
    }
    Ok(())
}
