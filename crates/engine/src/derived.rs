//! What the journal implies, kept in memory and stored at checkpoints (docs/FORMAT.md §4).
//!
//! The journal is the record; everything else is derived from it: the idempotency index, the
//! member index, the state records and the balances. A post writes its entries (and the Merkle
//! nodes they complete) and nothing else; the derived records it implies are kept in memory
//! ([`Pending`]) and written in bulk by a checkpoint, every [`CHECKPOINT_ENTRIES`] entries (a
//! quarter of that when waiting would not make it smaller, [`writes_would_not_merge`]), at the
//! first post once the oldest entry not in the store's derived records has waited
//! [`CHECKPOINT_SECONDS`], and when the ledger closes, with the state's checkpoint record
//! naming the last entry they cover (two table files ingested into the store,
//! [`write_checkpoint`]). At open,
//! the stored records are loaded and the entries after the checkpoint are replayed from the
//! journal, so a crash between checkpoints loses nothing: the journal has every entry.

use junbao_ledger::keyed::KeyedMap as HashMap;
use std::sync::{Arc, Condvar, Mutex};

use junbao_ledger::entry::{Entry, Hash32, event_fingerprint};
use junbao_ledger::event::EventBody;
use junbao_ledger::ids::MemberId;
use junbao_ledger::rules::entry_members;
use junbao_ledger::state::{CheckpointCut, Dirty};
use junbao_ledger::{EntryLookup, LookupError};
use junbao_storage::{Head, ReadError, Store, WriteError};

use crate::{Ledger, LedgerOpenError, Writer, id_record, lookup_error, parse_id_record};

/// The metadata key of the checkpoint in state formats 4 and before: the last entry (u64
/// big-endian) whose derived records the store holds. Since state format 5 the checkpoint is
/// the state's own record ([`stored_checkpoint`]); this one is read only before a ledger's
/// conversion (and written by `migrate`).
pub const META_CHECKPOINT: &[u8] = b"checkpoint";

/// The metadata key naming the last entry of a ledger migrated from storage format 1 (u64
/// big-endian): up to it, an idempotency record may carry the content fingerprint.
pub const META_FORMAT1_UNTIL: &[u8] = b"format1-until";

/// The metadata key of the sizes of the state as of the checkpoint: members, member books and
/// balances, three u64 big-endian. A hint, so that an open sizes its maps once.
pub const META_STATE_COUNTS: &[u8] = b"state-counts";

/// The stored checkpoint (the last entry the stored state is as of) and the state's counts
/// as of it: the `state` column family's own [`CHECKPOINT_KEY`] record (entry u64 BE, then the
/// counts). Without it, in this state format (`current`), none yet (a new ledger before its
/// first checkpoint: the stored state must then be empty, which the open checks); in a ledger
/// of an earlier format, converted at its open, the [`META_CHECKPOINT`] and
/// [`META_STATE_COUNTS`] metadata records.
///
/// [`CHECKPOINT_KEY`]: junbao_ledger::state::CHECKPOINT_KEY
pub(crate) fn stored_checkpoint(
    current: bool,
    state_record: impl FnOnce() -> Result<Option<Vec<u8>>, ReadError>,
    meta_checkpoint: impl FnOnce() -> Result<Option<Vec<u8>>, ReadError>,
    meta_counts: impl FnOnce() -> Result<Option<Vec<u8>>, ReadError>,
) -> Result<(u64, Option<[usize; 3]>), ReadError> {
    let Some(v) = state_record()? else {
        if current {
            return Ok((0, None));
        }
        let seq = parse_checkpoint(meta_checkpoint()?)?;
        return Ok((seq, parse_state_counts(meta_counts()?, seq)));
    };
    let seq: [u8; 8] =
        v.get(..8).and_then(|b| b.try_into().ok()).filter(|_| v.len() == 32).ok_or_else(|| {
            ReadError::Corrupt(format!(
                "the state's checkpoint record is {} bytes, not 32",
                v.len()
            ))
        })?;
    let seq = u64::from_be_bytes(seq);
    Ok((seq, parse_state_counts(Some(v[8..].to_vec()), seq)))
}

/// The [`stored_checkpoint`] of a store.
pub(crate) fn store_checkpoint(
    store: &Store,
    current: bool,
) -> Result<(u64, Option<[usize; 3]>), ReadError> {
    stored_checkpoint(
        current,
        || store.state_record(junbao_ledger::state::CHECKPOINT_KEY),
        || store.meta(META_CHECKPOINT),
        || store.meta(META_STATE_COUNTS),
    )
}

/// The state's checkpoint record: the state is as of entry `seq`, with `counts`
/// ([`state_counts`]).
pub(crate) fn checkpoint_record(seq: u64, counts: &[u8]) -> junbao_ledger::state::StateWrite {
    let mut v = seq.to_be_bytes().to_vec();
    v.extend_from_slice(counts);
    (junbao_ledger::state::CHECKPOINT_KEY.to_vec(), Some(v))
}

/// The [`META_STATE_COUNTS`] record of `state`.
pub(crate) fn state_counts(state: &junbao_ledger::LedgerState) -> Vec<u8> {
    [state.members.len(), state.books.len(), state.fund_balances.len()]
        .iter()
        .flat_map(|n| (*n as u64).to_be_bytes())
        .collect()
}

/// The most room a stored count (or the head) reserves in a map at once: past it, the map
/// grows as it is filled. A stored number sizes memory only up to this, whatever it says.
pub(crate) const RESERVE_MAX: usize = 1 << 23;

/// The sizes a [`META_STATE_COUNTS`] record names (none if absent or not 24 bytes), each at
/// most `checkpoint` and [`RESERVE_MAX`].
pub(crate) fn parse_state_counts(v: Option<Vec<u8>>, checkpoint: u64) -> Option<[usize; 3]> {
    let v = v?;
    // A stored hint, not trusted: a tampered record must not ask for more room than the
    // entries up to the checkpoint could fill (one member, book or new account per entry at
    // most, as far as the sizing goes: a map still grows past it if need be), nor more than
    // a ceiling (the checkpoint record is stored too).
    let most = usize::try_from(checkpoint).unwrap_or(usize::MAX).min(RESERVE_MAX);
    let n = |i: usize| -> Option<usize> {
        let n = u64::from_be_bytes(v.get(i * 8..i * 8 + 8)?.try_into().ok()?);
        Some(usize::try_from(n).unwrap_or(usize::MAX).min(most))
    };
    (v.len() == 24).then_some([n(0)?, n(1)?, n(2)?])
}

/// Entries between two checkpoints: the most a reopening replays. A quarter of it when waiting
/// would not make the checkpoint smaller ([`writes_would_not_merge`]).
pub const CHECKPOINT_ENTRIES: u64 = 1 << 18;

/// Seconds the oldest entry after the checkpoint may wait before a post cuts the next one,
/// however few entries came since: a ledger posted to slowly (a few entries a minute over the
/// HTTP service) keeps its stored derived records, and the tail a reopening replays, within
/// minutes of its head, as a busy one does within [`CHECKPOINT_ENTRIES`]. A ledger nobody
/// posts to has nothing more to store; closing writes the rest.
pub const CHECKPOINT_SECONDS: u64 = 300;

/// Whether the `since` entries after the checkpoint concern nearly as many members (at least
/// seven in eight): then nearly every one of them adds its own member's records to the next
/// checkpoint, which waiting longer would not merge (a member's record is written once a
/// checkpoint, however many of its entries came since), so a checkpoint may be cut early and
/// the replay after a crash stays short. When entries come back to the same members (a few
/// thousand members paying month after month), waiting writes each record once for many
/// entries, and the checkpoint is cut at the full interval.
fn writes_would_not_merge(pending: &Pending, since: u64) -> bool {
    pending.members.len() as u64 * 8 >= since * 7
}

/// Entries read, decoded and handed on at a time when a ledger opens (and replayed as one
/// batch).
const REPLAY_PART_ENTRIES: usize = 16_384;

/// Parts of the tail read ahead of the replay.
const REPLAY_PARTS_IN_FLIGHT: usize = 2;

/// Entries of the tail whose reads of the state are made in a row before they are applied
/// ([`junbao_ledger::LedgerState::warm`]): enough for many cache misses to overlap, few enough
/// that what they bring in stays in cache until applied.
const WARM_BLOCK_ENTRIES: usize = 128;

/// Derived records of the entries after the checkpoint, not yet in the store.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// The last checkpoint cut: the derived records of entries `1..=checkpoint` are in the
    /// store, or in `in_flight` on their way there.
    pub(crate) checkpoint: u64,
    /// Event id → (sequence number, content fingerprint).
    ids: HashMap<Box<str>, (u64, Hash32)>,
    /// Member → sequence numbers of the entries that concern them, ascending.
    members: HashMap<MemberId, Vec<u64>>,
    /// State records and balances changed since the checkpoint.
    pub(crate) dirty: Dirty,
    /// The index records of the checkpoint the checkpoint thread is writing (entries before
    /// `checkpoint`), still answered from memory until that write is done.
    in_flight: Option<Arc<Frozen>>,
    /// When the first entry after the checkpoint was taken in ([`CHECKPOINT_SECONDS`]).
    waiting_since: Option<std::time::Instant>,
}

/// The index records of a cut checkpoint, handed to the checkpoint thread.
#[derive(Debug)]
struct Frozen {
    /// The checkpoint's last entry.
    seq: u64,
    ids: HashMap<Box<str>, (u64, Hash32)>,
    members: HashMap<MemberId, Vec<u64>>,
    /// The [`META_STATE_COUNTS`] record as of the checkpoint.
    counts: Vec<u8>,
}

/// The thread that writes the checkpoints posts cut, so that a post does not wait for the
/// thousands of index and state records a checkpoint writes. One at a time, in order.
#[derive(Debug, Default)]
pub(crate) struct Checkpointer {
    thread: Mutex<Option<(std::sync::mpsc::Sender<Job>, std::thread::JoinHandle<()>)>>,
    /// The last checkpoint written (or failed: the store is then poisoned), and its signal.
    done: Arc<(Mutex<u64>, Condvar)>,
}

/// A checkpoint for the thread: its index records, and the state records and balances as
/// they stood at the cut, copied (the thread encodes them).
struct Job {
    frozen: Arc<Frozen>,
    cut: CheckpointCut,
}

impl Checkpointer {
    fn send(&self, store: &Arc<Store>, job: Job) {
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        let (sender, _) = thread.get_or_insert_with(|| {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            let (store, done) = (Arc::clone(store), Arc::clone(&self.done));
            let handle = std::thread::Builder::new()
                .name("junbao-checkpoint".into())
                .spawn(move || {
                    for job in rx {
                        let seq = job.frozen.seq;
                        // A failure poisons the store; the records stay answered from memory.
                        let _ = write_checkpoint(&store, &job.frozen, job.cut.encode());
                        let (lock, signal) = &*done;
                        *lock.lock().unwrap_or_else(|p| p.into_inner()) = seq;
                        signal.notify_all();
                    }
                })
                .expect("spawning the checkpoint thread");
            (tx, handle)
        });
        if sender.send(job).is_err() {
            unreachable!("the checkpoint thread lives as long as its sender");
        }
    }

    /// Whether the checkpoint of entry `seq` has been written.
    fn is_done(&self, seq: u64) -> bool {
        *self.done.0.lock().unwrap_or_else(|p| p.into_inner()) >= seq
    }

    /// Waits until the checkpoint of entry `seq` has been written (or the store poisoned).
    fn wait(&self, store: &Store, seq: u64) {
        let (lock, signal) = &*self.done;
        let mut done = lock.lock().unwrap_or_else(|p| p.into_inner());
        while *done < seq && !store.is_poisoned() {
            done = signal
                .wait_timeout(done, std::time::Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Lets the thread write what it was given, and ends it.
    pub(crate) fn stop(&self) {
        let taken = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((sender, handle)) = taken {
            drop(sender);
            let _ = handle.join();
        }
    }
}

/// Writes a checkpoint: once the entries up to its last entry `S` are durable (synced here if
/// they are not yet), its index records ingested as a table file of their own
/// ([`Store::ingest_index`]), then its state records, with the state's checkpoint record naming
/// `S`, as another ([`Store::ingest_state`]). Neither goes through RocksDB's write-ahead log
/// and memtables, where the hundreds of thousands of records of a checkpoint held the posts'
/// writes back for tens to hundreds of milliseconds: posts wait only while RocksDB records each
/// ingestion (a MANIFEST record, written and synced). A crash between the two leaves the
/// index ahead of the state, which the [`junbao_storage::INDEX_UNTIL_KEY`] record names
/// (docs/FORMAT.md §4); each ingestion is atomic.
fn write_checkpoint(
    store: &Store,
    frozen: &Frozen,
    mut state: Vec<junbao_ledger::state::StateWrite>,
) -> Result<(), WriteError> {
    if store.durable_head().seq < frozen.seq {
        store.sync()?;
    }
    let mut ids: Vec<(Vec<u8>, Vec<u8>)> =
        frozen.ids.iter().map(|(id, (seq, _))| (id.as_bytes().to_vec(), id_record(*seq))).collect();
    for (m, seqs) in &frozen.members {
        ids.extend(seqs.iter().map(|seq| (crate::member_index_key(m, *seq), Vec::new())));
    }
    if !ids.is_empty() {
        // Sorted on the thread pool (the keys are distinct: an event id never starts with the
        // member index's zero byte): the store's own sort then finds them in order, which a
        // checkpoint of a 100,000-line post spent 40 ms on alone.
        use rayon::slice::ParallelSliceMut;
        ids.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
        store.ingest_index(ids, frozen.seq)?;
    }
    state.push(checkpoint_record(frozen.seq, &frozen.counts));
    store.ingest_state(state, frozen.seq)
}

impl Pending {
    /// Nothing pending after the checkpoint of entry `checkpoint`.
    pub(crate) fn at(checkpoint: u64) -> Pending {
        Pending { checkpoint, ..Pending::default() }
    }

    /// Notes a new entry's idempotency record and member index records.
    pub(crate) fn note(&mut self, id: impl Into<Box<str>>, seq: u64, fingerprint: Hash32) {
        self.ids.insert(id.into(), (seq, fingerprint));
    }

    pub(crate) fn note_member(&mut self, member: &MemberId, seq: u64) {
        note_member_in(&mut self.members, member, seq);
    }

    /// The idempotency record of `id` if its entry is not in the store's index yet.
    pub(crate) fn id(&self, id: &str) -> Option<(u64, Hash32)> {
        self.ids.get(id).or_else(|| self.in_flight.as_ref()?.ids.get(id)).copied()
    }

    /// The member's entries not in the store's index yet, ascending.
    fn member_seqs(&self, member: &MemberId) -> impl Iterator<Item = u64> + '_ {
        let earlier = self.in_flight.as_ref().and_then(|f| f.members.get(member));
        earlier.into_iter().chain(self.members.get(member)).flatten().copied()
    }
}

/// Reads `member`'s years out of memory back into `batch`'s state from their stored pages
/// (every page of theirs up to their last cold year; the store holds those as they were let
/// go of, `Writer::cut`). A page that does not decode or does not hold what the book let go
/// of is corruption.
pub(crate) fn fault_in(
    store: &Store,
    batch: &mut junbao_ledger::rules::Batch<'_>,
    member: &MemberId,
) -> Result<(), ReadError> {
    let Some(through) = batch.cold_through(member) else { return Ok(()) };
    read_back_with(Pages::Store(store), member, through, |pages| batch.fault_in(member, pages))
}

/// Where members' pages are read back from: the store as it is, or a snapshot of it.
#[derive(Clone, Copy)]
pub(crate) enum Pages<'a> {
    Store(&'a Store),
    Snapshot(&'a junbao_storage::StoreSnapshot<'a>),
}

/// Reads `member`'s stored pages up to `through` ([`cold_pages`]) back with `read` (into a
/// batch's state, the writer's, or a copy of the book): pages it refuses are corruption.
pub(crate) fn read_back_with(
    source: Pages<'_>,
    member: &MemberId,
    through: u16,
    read: impl FnOnce(
        &mut dyn Iterator<Item = (u16, &[u8])>,
    ) -> Result<(), junbao_ledger::state::FaultInError>,
) -> Result<(), ReadError> {
    let pages = cold_pages(source, member, through)?;
    read(&mut pages.iter().map(|(y, v)| (*y, v.as_slice())))
        .map_err(|e| ReadError::Corrupt(format!("member {member}'s book: {e}")))
}

/// Why [`applied_reading_back`] did not end with the event or entry applied.
pub(crate) enum ReadBackError {
    /// A member's years could not be read back.
    Read(ReadError),
    /// It read years out of memory of a member whose book has none (never, unless a read of
    /// the state notes a miss it should not).
    Missed(MemberId),
}

/// Applies `apply` (an event or a recorded entry) to `batch` after a savepoint; if it read a
/// year out of memory, rolls it back, reads the years of the members it read back from their
/// pages and applies it again, until it reads none: what it decides never rests on a year it
/// could not see (`LedgerState::take_misses`). Each round reads back at least one book, so the
/// rounds end.
pub(crate) fn applied_reading_back<'s, T>(
    store: &Store,
    batch: &mut junbao_ledger::rules::Batch<'s>,
    mut apply: impl FnMut(&mut junbao_ledger::rules::Batch<'s>) -> T,
) -> Result<T, ReadBackError> {
    loop {
        let savepoint = batch.savepoint();
        let applied = apply(batch);
        let missed = batch.take_misses();
        if missed.is_empty() {
            batch.release(savepoint);
            return Ok(applied);
        }
        batch.rollback(savepoint);
        if let Some(member) = missed.iter().find(|m| !batch.has_cold_years(m)) {
            return Err(ReadBackError::Missed(member.clone()));
        }
        for member in &missed {
            fault_in(store, batch, member).map_err(ReadBackError::Read)?;
        }
    }
}

/// Lets go of the older years of every member whose pages are stored as they are (all but
/// the years changed since the checkpoint), keeping the writer's resident years
/// ([`crate::RESIDENT_YEARS`]). Only when no checkpoint is in flight (after a synchronous
/// one, or at the open of a state loaded whole for its conversion). Returns how many books let
/// go of any.
pub(crate) fn evict_stored(w: &mut Writer) -> usize {
    let Some(keep) = w.resident_years else { return 0 };
    assert!(w.pending.in_flight.is_none(), "no checkpoint in flight");
    let Writer { state, pending, .. } = w;
    state.evict_all_keeping(keep, |m| pending.dirty.first_page_year(m))
}

/// At the open, once the tail is replayed: the members whose years the tail read back let go
/// of them again, all but the years the tail changed (those go at the cut after the next).
/// The other books let go of theirs as they were loaded.
pub(crate) fn evict_faulted(w: &mut Writer) {
    let faulted = w.state.take_faulted();
    let Some(keep) = w.resident_years else { return };
    assert!(w.pending.in_flight.is_none(), "no checkpoint in flight");
    for member in faulted {
        let changed = w.pending.dirty.first_page_year(&member);
        w.state.evict_keeping(&member, keep, changed);
    }
}

/// Lets go of the older years of up to `n` of the members ready for it (`Writer::evict_ready`)
/// that did not change since: a batch's worth at a time, so that the cost of letting go of a
/// checkpoint's worth of books is spread over the posts after it.
pub(crate) fn evict_some(w: &mut Writer, n: usize) {
    let Some(keep) = w.resident_years else { return };
    let from = w.evict_ready.len().saturating_sub(n);
    let Writer { state, pending, evict_ready, .. } = w;
    for (member, in_flight) in evict_ready.drain(from..) {
        // Neither a year changed since nor one the checkpoint in flight writes.
        let changed = pending.dirty.first_page_year(&member);
        let changed = match (changed, in_flight) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        state.evict_keeping(&member, keep, changed);
    }
}

/// Reads back every year out of memory ([`Ledger::set_resident_years`] to all).
pub(crate) fn fault_in_all(store: &Store, w: &mut Writer) -> Result<(), ReadError> {
    for (member, through) in w.state.cold_throughs() {
        read_back_with(Pages::Store(store), &member, through, |pages| {
            w.state.fault_in(&member, pages)
        })?;
    }
    w.state.take_faulted();
    w.evict_next.clear();
    w.evict_ready.clear();
    Ok(())
}

/// `member`'s stored pages of the years up to `through`, with their years, in year order.
pub(crate) fn cold_pages(
    source: Pages<'_>,
    member: &MemberId,
    through: u16,
) -> Result<Vec<(u16, Vec<u8>)>, ReadError> {
    let from = junbao_ledger::state::page_key(member, junbao_ledger::time::FIRST_YEAR);
    let to = junbao_ledger::state::page_key(member, through + 1);
    let mut pages = Vec::new();
    let page = |k: &[u8], v: &[u8]| {
        pages.push(year_page(k, v));
        true
    };
    match source {
        Pages::Store(store) => store.state_range_for_each(Some(&from), Some(&to), page),
        Pages::Snapshot(snapshot) => snapshot.state_range_for_each(&from, &to, page),
    }?;
    Ok(pages)
}

/// A stored page record (of a key in a range of one member's pages) as its year and bytes.
pub(crate) fn year_page(key: &[u8], value: &[u8]) -> (u16, Vec<u8>) {
    let year = key.last_chunk::<2>().map_or(0, |y| u16::from_be_bytes(*y));
    (year, value.to_vec())
}

/// Event ids looked up in one read of the stored index ([`Ledger::id_records`]).
const ID_READ_PART: usize = 4096;

/// Notes entry `seq` in `member`'s index records of `members`.
fn note_member_in(members: &mut HashMap<MemberId, Vec<u64>>, member: &MemberId, seq: u64) {
    match members.get_mut(member) {
        Some(seqs) => seqs.push(seq),
        None => {
            members.insert(member.clone(), vec![seq]);
        }
    }
}

impl Writer {
    /// Cuts a checkpoint at entry `seq`: the state records and balances of the dirty keys
    /// copied as they stand now (encoded by whoever writes them), and the index records taken
    /// out of memory as they are; nothing is pending after it.
    ///
    /// First, when the checkpoints before it are `stored` (none failed), the members the last
    /// cut named (books holding years before their resident ones) or whose years were read
    /// back become ready to let go of them (`Writer::evict_ready`, a batch's worth after each
    /// post): their pages in the store are as they are in memory, except the years changed
    /// since, which this cut writes and which stay (with every later year) until the next.
    fn cut(&mut self, seq: u64, stored: bool) -> Job {
        let candidates = std::mem::take(&mut self.evict_next);
        if self.resident_years.is_some() && stored {
            // The years each changed since go into this cut, still in flight once it is cut:
            // those years and the later ones stay (they come back through its `evictable`);
            // the earlier ones are stored as they are.
            // (The years in flight noted with those ready before are stored now.)
            let dirty = &self.pending.dirty;
            let limit = |m: MemberId| {
                let first = dirty.first_page_year(&m);
                (m, first)
            };
            let ready = std::mem::take(&mut self.evict_ready);
            self.evict_ready = ready.into_iter().map(|(m, _)| limit(m)).collect();
            self.evict_ready.extend(candidates.into_iter().map(limit));
        } else {
            self.evict_ready.clear();
        }
        let mut cut = self.state.checkpoint_cut_keeping(&self.pending.dirty, self.resident_years);
        let taken = std::mem::replace(&mut self.pending, Pending::at(seq));
        let faulted = self.state.take_faulted();
        if self.resident_years.is_some() {
            self.evict_next.append(&mut cut.evictable);
            self.evict_next.extend(faulted);
        }
        let counts = state_counts(&self.state);
        let frozen = Arc::new(Frozen { seq, ids: taken.ids, members: taken.members, counts });
        Job { frozen, cut }
    }
}

/// The pending records again after a failed synchronous checkpoint (the store is poisoned;
/// they are kept so that lookups stay right until the ledger is reopened).
fn taken_back(frozen: Arc<Frozen>) -> Pending {
    Pending { checkpoint: frozen.seq, in_flight: Some(frozen), ..Pending::default() }
}

/// The stored checkpoint's entry number (0: none yet), from its metadata record.
pub(crate) fn parse_checkpoint(v: Option<Vec<u8>>) -> Result<u64, ReadError> {
    match v {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(v.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| ReadError::Corrupt("the checkpoint record is not 8 bytes".into())),
    }
}

/// Finds earlier entries for reversals: those after the checkpoint in memory, the others
/// through the stored idempotency index.
pub(crate) struct StoreLookup<'a> {
    pub(crate) store: &'a Store,
    pub(crate) pending: &'a Pending,
}

impl EntryLookup for StoreLookup<'_> {
    /// Not found only if the event id has no idempotency record; a record that does not
    /// decode, an indexed entry that is missing or does not decode is corruption, and a failed
    /// read of the disk is I/O: never "not found".
    fn entry_by_event_id(
        &self,
        id: &junbao_ledger::ids::EventId,
    ) -> Result<Option<Entry>, LookupError> {
        let seq = match self.pending.id(id.as_str()) {
            Some((seq, _)) => seq,
            None => {
                let key = id.as_str().as_bytes();
                let record =
                    self.store.ids_get(&[key]).map_err(lookup_error)?.into_iter().next().flatten();
                let Some(record) = record else { return Ok(None) };
                parse_id_record(&record)
                    .map(|(seq, _)| seq)
                    .ok_or_else(|| id_record_corrupt(id.as_str(), "does not decode".into()))
                    .map_err(lookup_error)?
            }
        };
        indexed_entry(self.store, id.as_str(), seq).map(Some).map_err(lookup_error)
    }
}

/// A part of the tail, read and decoded: its entries, and the sequence number of each entry
/// of the tail that a reversal among them names (by event id).
struct TailPart {
    entries: Vec<Entry>,
    targets: HashMap<Box<str>, u64>,
}

/// Finds the earlier entries of a part of the tail for reversals: those of the tail through
/// the part's targets (the reader noted them), the others as [`StoreLookup`] finds them.
struct TailLookup<'a> {
    targets: &'a HashMap<Box<str>, u64>,
    earlier: StoreLookup<'a>,
}

impl EntryLookup for TailLookup<'_> {
    fn entry_by_event_id(
        &self,
        id: &junbao_ledger::ids::EventId,
    ) -> Result<Option<Entry>, LookupError> {
        match self.targets.get(id.as_str()) {
            Some(seq) => {
                indexed_entry(self.earlier.store, id.as_str(), *seq).map(Some).map_err(lookup_error)
            }
            None => self.earlier.entry_by_event_id(id),
        }
    }
}

/// A corrupt idempotency record of the event id `id`.
fn id_record_corrupt(id: &str, what: String) -> ReadError {
    ReadError::Corrupt(format!("the idempotency record of {id:?} {what}"))
}

/// The entry at `seq`, which the index names for the event id `id`: read, decoded, and
/// checked to carry that id (a record naming a missing entry, one that does not decode or one
/// of another event is corruption).
fn indexed_entry(store: &Store, id: &str, seq: u64) -> Result<Entry, ReadError> {
    let stored = store
        .entry(seq)?
        .ok_or_else(|| id_record_corrupt(id, format!("names entry {seq}, not stored")))?;
    let entry = Entry::from_canonical_bytes(&stored.bytes).map_err(|e| {
        id_record_corrupt(id, format!("names entry {seq}, which does not decode: {e}"))
    })?;
    if entry.event.id.as_str() != id {
        return Err(id_record_corrupt(id, format!("names entry {seq}, of another event")));
    }
    Ok(entry)
}

/// An event id's entry: its sequence number and content fingerprint; or why it could not be
/// read (a record or entry that does not decode is corruption, a failed read I/O).
pub(crate) type IdRecord = Result<(u64, Hash32), ReadError>;

impl Ledger {
    /// The entries of the event ids `ids`, if posted: from memory for entries after the
    /// checkpoint, and from the store (one read for all) for the others, whose fingerprint is
    /// recomputed from the entry itself. The outer error is a failed read of the index.
    pub(crate) fn id_records(
        &self,
        w: &Writer,
        ids: &[&str],
    ) -> Result<Vec<Option<IdRecord>>, ReadError> {
        let mut out: Vec<Option<IdRecord>> = Vec::with_capacity(ids.len());
        let mut misses: Vec<&[u8]> = Vec::new();
        for id in ids {
            let found = w.pending.id(id);
            if found.is_none() {
                misses.push(id.as_bytes());
            }
            out.push(found.map(Ok));
        }
        if misses.is_empty() {
            return Ok(out);
        }
        // In parts: one read of a whole 100,000-line post would allocate RocksDB's look-up
        // state for every key at once. A large post's parts are read on the thread pool.
        use rayon::prelude::*;
        let parts: Vec<Vec<Option<Vec<u8>>>> = if misses.len() > ID_READ_PART {
            misses.par_chunks(ID_READ_PART).map(|part| self.store.ids_get(part)).collect()
        } else {
            vec![self.store.ids_get(&misses)]
        }
        .into_iter()
        .collect::<Result<_, _>>()?;
        let mut stored = parts.into_iter().flatten();
        for (slot, id) in out.iter_mut().zip(ids) {
            if slot.is_none() {
                let record = stored.next().expect("one answer per key");
                *slot = record.map(|v| self.resolve_id_record(id, &v));
            }
        }
        Ok(out)
    }

    /// A stored idempotency record, with the fingerprint of its entry.
    fn resolve_id_record(&self, id: &str, v: &[u8]) -> IdRecord {
        let (seq, fp) =
            parse_id_record(v).ok_or_else(|| id_record_corrupt(id, "does not decode".into()))?;
        if let Some(fp) = fp {
            return Ok((seq, fp));
        }
        let entry = indexed_entry(&self.store, id, seq)?;
        Ok((seq, event_fingerprint(&entry.event)))
    }

    /// Takes in what a durable batch implies, once its state changes are committed
    /// (`BatchChanges::commit_marking`, with the writer's bound raised): its entries'
    /// idempotency records and member index records. Writes a checkpoint when one is due.
    pub(crate) fn absorb(
        &self,
        w: &mut Writer,
        ids: impl IntoIterator<Item = (Box<str>, u64, Hash32)>,
        member_index: &[(MemberId, u64)],
    ) {
        let Writer { pending, .. } = w;
        for (id, seq, fp) in ids {
            pending.note(id, seq, fp);
        }
        for (m, seq) in member_index {
            pending.note_member(m, *seq);
        }
        evict_some(w, 2 * member_index.len() + 64);
        let every = self.checkpoint_every.load(std::sync::atomic::Ordering::Relaxed);
        let since = self.store.head().seq - w.pending.checkpoint;
        if since == 0 {
            return;
        }
        let waited = w.pending.waiting_since.get_or_insert_with(std::time::Instant::now).elapsed();
        let age = std::time::Duration::from_millis(
            self.checkpoint_after_ms.load(std::sync::atomic::Ordering::Relaxed),
        );
        // Early only where a quarter of the interval is an interval (not for the tiny ones
        // tests set).
        let early = every / 4;
        if since >= every
            || (early > 0 && since >= early && writes_would_not_merge(&w.pending, since))
            || waited >= age
        {
            self.cut_checkpoint(w);
        }
    }

    /// Cuts a checkpoint at the head and hands it to the checkpoint thread: the state records
    /// are copied now (the state moves on) and encoded by that thread, the index records travel
    /// as they are. Not while the previous one is still being written (the next post tries
    /// again).
    fn cut_checkpoint(&self, w: &mut Writer) {
        if let Some(f) = &w.pending.in_flight {
            if !self.checkpointer.is_done(f.seq) {
                return;
            }
            w.pending.in_flight = None;
        }
        let job = w.cut(self.store.head().seq, !self.store.is_poisoned());
        w.pending.in_flight = Some(Arc::clone(&job.frozen));
        self.checkpointer.send(&self.store, job);
    }

    /// Writes the derived records of every entry so far (a checkpoint), so that reopening
    /// replays nothing. Returns the head it covers.
    pub fn checkpoint(&self) -> Result<Head, WriteError> {
        let mut w = self.writer();
        self.checkpoint_locked(&mut w)?;
        Ok(self.store.head())
    }

    /// Writes a checkpoint at the head on this thread, after the one in flight (if any).
    pub(crate) fn checkpoint_locked(&self, w: &mut Writer) -> Result<(), WriteError> {
        if let Some(f) = w.pending.in_flight.take() {
            self.checkpointer.wait(&self.store, f.seq);
        }
        if self.store.is_poisoned() {
            return Err(WriteError::Poisoned);
        }
        let head = self.store.head();
        if w.pending.checkpoint == head.seq {
            return Ok(());
        }
        let Job { frozen, cut } = w.cut(head.seq, true);
        if let Err(e) = write_checkpoint(&self.store, &frozen, cut.encode()) {
            w.pending = taken_back(frozen);
            return Err(e);
        }
        Ok(())
    }

    /// The sequence numbers of a member's entries, in order: the stored member index up to
    /// the checkpoint, then those in memory. A record whose key is not the prefix and 8 bytes
    /// is not one this ledger wrote: an integrity failure, never a slice out of range.
    pub(crate) fn member_entry_seqs(
        &self,
        member: &MemberId,
    ) -> Result<Vec<u64>, crate::AuditError> {
        let w = self.writer();
        let prefix = crate::member_index_prefix(member);
        let mut seqs = self
            .store
            .ids_prefix(&prefix)?
            .iter()
            .map(|(k, _)| {
                k.get(prefix.len()..)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| {
                        crate::AuditError::Integrity(format!(
                            "a member index record of {member} has a key of {} bytes",
                            k.len()
                        ))
                    })
            })
            .collect::<Result<Vec<u64>, _>>()?;
        // Those in memory come after the stored ones; an in-flight checkpoint's may have been
        // stored meanwhile, read twice.
        let last = seqs.last().copied().unwrap_or(0);
        seqs.extend(w.pending.member_seqs(member).filter(|s| *s > last));
        Ok(seqs)
    }
}

/// A checkpoint past the head (an edited record) is corruption: the open finds it before
/// anything is loaded or sized from the stored records.
pub(crate) fn check_checkpoint(checkpoint: u64, head: u64) -> Result<(), LedgerOpenError> {
    if checkpoint > head {
        return Err(LedgerOpenError::Read(ReadError::Corrupt(format!(
            "the checkpoint names entry {checkpoint} but the journal ends at entry {head}"
        ))));
    }
    Ok(())
}

/// Index records stored for entries past the head (an edited until record) would answer an
/// event never recorded as posted already: corruption, found before anything is read.
pub(crate) fn check_index_until(until: u64, head: u64) -> Result<(), LedgerOpenError> {
    if until > head {
        return Err(LedgerOpenError::Read(ReadError::Corrupt(format!(
            "the index's until record names entry {until} but the journal ends at entry {head}"
        ))));
    }
    Ok(())
}

/// Replays the entries after the checkpoint into `w` (state, idempotency and member index in
/// memory), as they were when posted: what reopening a ledger does. A reading thread reads the
/// journal's blocks, decodes the entries and notes their idempotency records (with their
/// content fingerprints) and member index records, a part at a time, while this one applies the
/// part before; it also notes, for each part, where the reversals among it find their targets
/// in the tail. While the replay runs, `w.pending.ids` and `w.pending.members` are the reading
/// thread's (empty here): nothing on this side may look an id up in them.
pub(crate) fn replay_tail(store: &Store, w: &mut Writer) -> Result<(), LedgerOpenError> {
    // The bound on the checkpoint's balances and year's sums, raised by each part replayed
    // as the write path raises it by each batch: while it covers an entry (nearly always),
    // the per-account range check is proved to pass, and it is the writer's bound after.
    w.bound = junbao_ledger::rules::BalanceBound::of(&w.state);
    let head = store.head();
    check_checkpoint(w.pending.checkpoint, head.seq)?;
    if w.pending.checkpoint == head.seq {
        return Ok(());
    }
    let first = w.pending.checkpoint + 1;
    // Sized once for the tail (at most a checkpoint's interval, unless checkpoints were off).
    let tail = usize::try_from(head.seq - w.pending.checkpoint).unwrap_or(usize::MAX);
    let sized = tail.min(2 * CHECKPOINT_ENTRIES as usize);
    w.pending.ids.reserve(sized);
    w.pending.members.reserve(sized);
    w.pending.dirty.reserve(sized);
    type Part = Result<TailPart, LedgerOpenError>;
    let (to, from) = std::sync::mpsc::sync_channel::<Part>(REPLAY_PARTS_IN_FLIGHT);
    // The idempotency records and the member index of the tail need nothing of the state: the
    // reading thread notes them as it decodes, off the path of the thread that applies the
    // entries. A reversal whose target is in the tail finds it through the part's targets,
    // which the reader notes from its own records (the store's index has no tail entry).
    let mut members = std::mem::take(&mut w.pending.members);
    let mut ids = std::mem::take(&mut w.pending.ids);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut next = first;
            'read: while next <= head.seq {
                let mut part = TailPart {
                    entries: Vec::with_capacity(REPLAY_PART_ENTRIES),
                    targets: HashMap::default(),
                };
                let mut failed = None;
                for stored in store.entries(next, REPLAY_PART_ENTRIES) {
                    let decoded = stored.map_err(LedgerOpenError::from).and_then(|s| {
                        Entry::from_canonical_bytes(&s.bytes)
                            .map_err(|source| LedgerOpenError::Journal { seq: s.seq, source })
                    });
                    match decoded {
                        Ok(entry) => {
                            if let EventBody::Reversal { of, .. } = &entry.event.body
                                && let Some((seq, _)) = ids.get(of.as_str())
                            {
                                part.targets.insert(of.as_str().into(), *seq);
                            }
                            let fingerprint = event_fingerprint(&entry.event);
                            ids.insert(entry.event.id.as_str().into(), (entry.seq, fingerprint));
                            for m in entry_members(&entry) {
                                note_member_in(&mut members, m, entry.seq);
                            }
                            part.entries.push(entry);
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                // The entries read before a failure are applied first; the failure is always
                // handed on, even as the first thing read.
                if let Some(last) = part.entries.last() {
                    next = last.seq + 1;
                    if to.send(Ok(part)).is_err() {
                        break 'read;
                    }
                } else if failed.is_none() {
                    break;
                }
                if let Some(e) = failed {
                    let _ = to.send(Err(e));
                    break;
                }
            }
            (members, ids)
        });
        let mut next = first;
        for part in from {
            let TailPart { entries, targets } = part?;
            let Writer { state, pending, bound, .. } = &mut *w;
            // The chain is not extended here (the entries are sealed already): only the first
            // sequence number matters to the batch.
            let mut batch =
                state.begin_bounded(next - 1, junbao_ledger::entry::CHAIN_GENESIS, *bound);
            batch.reserve(entries.len());
            let lookup = TailLookup { targets: &targets, earlier: StoreLookup { store, pending } };
            // A block at a time: its reads of the state first, one after the other (their cache
            // misses overlap), then its entries applied, each finding what it reads in cache.
            let mut entries = entries.into_iter();
            let mut block = Vec::with_capacity(WARM_BLOCK_ENTRIES);
            loop {
                block.extend(entries.by_ref().take(WARM_BLOCK_ENTRIES));
                if block.is_empty() {
                    break;
                }
                let warmed = block.iter().fold(0, |t, entry| t ^ batch.warm(entry));
                std::hint::black_box(warmed);
                for entry in block.drain(..) {
                    let seq = entry.seq;
                    replay_entry(store, &mut batch, entry, &lookup)?;
                    next = seq + 1;
                }
            }
            let (changes, _) = batch.into_changes();
            *bound = bound.after(&changes);
            changes.commit_marking(&mut pending.dirty);
        }
        (w.pending.members, w.pending.ids) =
            reader.join().expect("the journal's reader does not panic");
        // The head names its entry (checked when the store opened), so a journal read that
        // ends before it lost entries on the way.
        if next <= head.seq {
            return Err(LedgerOpenError::Read(ReadError::Corrupt(format!(
                "the journal ends at entry {} before the head, entry {}",
                next - 1,
                head.seq
            ))));
        }
        Ok(())
    })
}

/// Why a recorded entry could not be applied ([`apply_recorded`]).
pub(crate) enum RecordedError {
    /// The rules' answer (a reversal's target not found or not readable, a wrong sequence).
    Apply(junbao_ledger::ApplyError),
    /// A member's years could not be read back.
    Read(ReadError),
    /// The entry read a member's years out of memory that it has no posting or event of.
    Missed(MemberId),
}

/// Applies one recorded entry (the tail's replay, a mirror's copy) to `batch`. An entry one of
/// whose members has years out of memory (a recorded entry reads and changes only its members'
/// books) is applied reading them back if it needs them (a back payment, a reversal of an old
/// entry: [`applied_reading_back`], as a post is); the others, most of them, need no
/// savepoint.
pub(crate) fn apply_recorded(
    store: &Store,
    batch: &mut junbao_ledger::rules::Batch<'_>,
    entry: Entry,
    lookup: &dyn junbao_ledger::EntryLookup,
) -> Result<(), RecordedError> {
    let missed_one = |missed: Vec<MemberId>| match missed.into_iter().next() {
        None => Ok(()),
        Some(member) => Err(RecordedError::Missed(member)),
    };
    let guarded =
        batch.any_cold_years() && entry_members(&entry).iter().any(|m| batch.has_cold_years(m));
    if !guarded {
        batch.apply_recorded(entry, lookup).map_err(RecordedError::Apply)?;
        return missed_one(batch.take_misses());
    }
    let applied = applied_reading_back(store, batch, |b| b.apply_recorded(entry.clone(), lookup))
        .map_err(|e| match e {
        ReadBackError::Read(e) => RecordedError::Read(e),
        ReadBackError::Missed(member) => RecordedError::Missed(member),
    })?;
    applied.map(|_| ()).map_err(RecordedError::Apply)
}

/// [`apply_recorded`] for the tail's replay at the open.
fn replay_entry(
    store: &Store,
    batch: &mut junbao_ledger::rules::Batch<'_>,
    entry: Entry,
    lookup: &dyn junbao_ledger::EntryLookup,
) -> Result<(), LedgerOpenError> {
    let seq = entry.seq;
    apply_recorded(store, batch, entry, lookup).map_err(|e| match e {
        RecordedError::Apply(e) => LedgerOpenError::Read(ReadError::Corrupt(format!(
            "entry {seq} cannot be replayed onto the checkpoint: {e}"
        ))),
        RecordedError::Read(e) => LedgerOpenError::Read(e),
        RecordedError::Missed(member) => LedgerOpenError::Read(ReadError::Corrupt(format!(
            "entry {seq} read member {member}'s years out of memory, which it has none of"
        ))),
    })
}

/// What `junbao migrate` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrateSummary {
    /// Entries whose chain was recomputed and that were moved into blocks.
    pub entries: u64,
    /// The head, hex: the same before and after.
    pub head: String,
    /// The full `verify` of the converted ledger.
    pub verified: crate::VerifyReport,
}

/// Why a migration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] junbao_storage::MigrateError),
    #[error("the converted ledger does not open: {0}")]
    Open(#[from] LedgerOpenError),
    #[error("the converted ledger does not verify: {0}")]
    Verify(#[from] crate::VerifyError),
}

impl MigrateError {
    /// A journal that does not verify (before or after) is an integrity failure; a ledger
    /// already converted, a missing ledger, input; the disk, I/O.
    pub fn kind(&self) -> crate::ErrorKind {
        use junbao_storage::MigrateError as S;
        match self {
            MigrateError::Store(S::Check { .. }) => crate::ErrorKind::Integrity,
            MigrateError::Store(S::Read(e)) => crate::ErrorKind::of_read(e),
            MigrateError::Store(S::NotNeeded(_)) => crate::ErrorKind::Input,
            MigrateError::Store(S::Open(junbao_storage::OpenError::Corrupt(_))) => {
                crate::ErrorKind::Integrity
            }
            MigrateError::Store(S::Open(junbao_storage::OpenError::Missing(_))) => {
                crate::ErrorKind::Input
            }
            MigrateError::Store(_) => crate::ErrorKind::Io,
            MigrateError::Open(e) if e.is_integrity() => crate::ErrorKind::Integrity,
            MigrateError::Open(_) => crate::ErrorKind::Io,
            MigrateError::Verify(e) if e.is_integrity() => crate::ErrorKind::Integrity,
            MigrateError::Verify(_) => crate::ErrorKind::Io,
        }
    }
}

impl Ledger {
    /// Converts a ledger of storage format 1 (one journal record per entry) to format 2
    /// (blocks), in place: verified before (every entry decodes, carries its sequence number,
    /// and the chain recomputes to the stored head) and after (a full [`Ledger::verify`]).
    /// Its state records, written per batch by format 1, cover every entry: they become the
    /// checkpoint. Nothing is switched unless the journal verifies (docs/FORMAT.md §2).
    pub fn migrate(
        path: &std::path::Path,
        clock: crate::Clock,
    ) -> Result<MigrateSummary, MigrateError> {
        let mut previous = junbao_ledger::entry::CHAIN_GENESIS;
        let report = junbao_storage::Store::migrate_v1(
            path,
            &mut |e| {
                if junbao_ledger::entry::chain_next(&previous, &e.bytes) != e.chain_hash {
                    return Err("the chain hash does not match its bytes".into());
                }
                let entry = Entry::from_canonical_bytes(&e.bytes).map_err(|err| err.to_string())?;
                if entry.seq != e.seq {
                    return Err(format!("its bytes say entry {}", entry.seq));
                }
                previous = e.chain_hash;
                Ok(())
            },
            &[META_CHECKPOINT, META_FORMAT1_UNTIL],
        )?;
        let ledger = Ledger::open(path, clock)?;
        let verified = ledger.verify(&|_| {})?;
        Ok(MigrateSummary {
            entries: report.entries,
            head: hex::encode(report.head.hash),
            verified,
        })
    }
}
