//! junbao-storage: the ledger's durable store, on RocksDB.
//!
//! Architecture invariant: this is the only crate that names RocksDB. It speaks the ledger's
//! vocabulary (append a batch, read entries by sequence, the head, balances, state) in bytes,
//! and knows nothing of what the bytes mean: encoding is `junbao-ledger`'s.
//!
//! Architecture invariant: an append is one RocksDB write batch. Either every entry, index
//! record, balance, state record and the new head of a batch are on disk, or none is.
//! [`Store::append`] syncs it before returning; [`Store::append_deferred`] leaves the sync to a
//! later [`Store::sync`] (the HTTP service's group commit overlaps one group's sync with the
//! next group's work), and nothing appended is durable, or may be acknowledged, before the
//! durable head ([`Store::durable_head`]) covers it. A crash loses at most a suffix of
//! deferred batches, whole. After a failed write or sync the handle is poisoned and refuses
//! further writes until reopened, so a state the process no longer knows is never extended.

mod backup;
mod blocks;
mod error;
mod migrate;
mod snapshot;
#[cfg(feature = "testing")]
mod testing;

pub use blocks::{BLOCK_ENTRIES, RawEntries, RawEntry};
pub use error::{OpenError, ReadError, WriteError};
pub use migrate::{MigrateError, MigrateReport};
pub use snapshot::StoreSnapshot;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch,
    WriteOptions,
};

/// The journal of format 1: one record per entry. Empty in format 2; read by `migrate` only.
const CF_JOURNAL: &str = "journal";
/// The journal of format 2: one record per aligned block of entries (`blocks.rs`).
const CF_BLOCKS: &str = "blocks";
const CF_IDS: &str = "ids";
const CF_BALANCES: &str = "balances";
const CF_STATE: &str = "state";
const CF_TREE: &str = "tree";
const CF_META: &str = "meta";
const COLUMN_FAMILIES: [&str; 7] =
    [CF_JOURNAL, CF_BLOCKS, CF_IDS, CF_BALANCES, CF_STATE, CF_TREE, CF_META];

/// The record, in the `ids` column family, naming the last entry whose index records an
/// ingestion stored (8 bytes, big-endian). `0xff` starts no event id (UTF-8) and no member
/// index key (`0x00`), so it sorts after every index record.
pub const INDEX_UNTIL_KEY: &[u8] = b"\xffindex-until";

/// The table file an ingestion builds in the store's folder (of the index or the state), moved
/// into the store by it; one left by a crash is removed at open.
pub const INGEST_FILE: &str = "junbao-index-ingest.sst";

/// The value of an [`INDEX_UNTIL_KEY`] record.
pub(crate) fn parse_index_until(v: Option<impl AsRef<[u8]>>) -> Result<u64, ReadError> {
    match v {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes).map_err(|_| {
            ReadError::Corrupt(format!(
                "the index's until record is {} bytes, not 8",
                v.as_ref().len()
            ))
        }),
    }
}

const META_HEAD: &[u8] = b"head";
const META_FORMAT: &[u8] = b"format";
/// Version of the storage layout in `docs/FORMAT.md`: 2 since the journal is kept in blocks.
pub const STORAGE_FORMAT_VERSION: u32 = 2;

/// The most write-ahead log kept before memtables are flushed (`max_total_wal_size`): what
/// an open replays into the memtables, and what the scans of the state then merge with the
/// table files. At a million members, after a crash: 32 MiB left 42 MB of log, replayed in
/// 0.24 - 0.27 s, against 64 MiB's 68 - 74 MB in 0.32 - 0.42 s, and the state loaded 0.1 -
/// 0.3 s sooner from smaller memtables; 16 MiB replayed in 0.09 s but loaded no sooner (more
/// level-0 tables to merge). Posting was measured the same (docs/PERFORMANCE.md).
pub const WAL_REPLAY_BYTES_MAX: u64 = 32 << 20;

/// The most write-ahead log files an open leaves in place. An open keeps the log it replayed
/// (`avoid_flush_during_recovery`) and starts a new one, empty when nothing is written, so a
/// ledger only read, command after command, would gather empty logs; past this many, the open
/// flushes the memtables, and RocksDB deletes every log they covered.
pub const WAL_FILES_KEPT_MAX: usize = 8;

/// Most entries one append may carry.
pub const APPEND_ENTRIES_MAX: usize = 100_000;

/// A stored key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// The chain head: the last sequence number and its chain hash `h_seq` (zeros when empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
}

/// One stored entry: its number, chain hash and canonical bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: u64,
    pub chain_hash: [u8; 32],
    pub bytes: Vec<u8>,
}

/// Entries to append, in sequence order from `first_seq`: their canonical bytes one after
/// another in one buffer (a batch is encoded once, into it, not entry by entry into buffers
/// of their own), where each one's bytes end, and their chain hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    first_seq: u64,
    bytes: Vec<u8>,
    ends: Vec<usize>,
    chain_hashes: Vec<[u8; 32]>,
}

impl Entries {
    /// The entries from `first_seq` whose canonical bytes end at `ends` in `bytes`, with their
    /// chain hashes. Panics unless every entry has its end and hash, the ends ascend, and the
    /// last is the end of `bytes`: the caller's invariants, as the density of an append is.
    pub fn from_parts(
        first_seq: u64,
        bytes: Vec<u8>,
        ends: Vec<usize>,
        chain_hashes: Vec<[u8; 32]>,
    ) -> Entries {
        assert_eq!(ends.len(), chain_hashes.len(), "an end and a chain hash for every entry");
        assert!(ends.is_sorted(), "the entries' ends ascend");
        assert_eq!(ends.last().copied().unwrap_or(0), bytes.len(), "the last entry ends the bytes");
        Entries { first_seq, bytes, ends, chain_hashes }
    }

    /// No entries, the first of them to be `first_seq`.
    pub fn starting_at(first_seq: u64) -> Entries {
        Entries { first_seq, ..Entries::default() }
    }

    /// Adds the next entry.
    pub fn push(&mut self, bytes: &[u8], chain_hash: [u8; 32]) {
        self.bytes.extend_from_slice(bytes);
        self.ends.push(self.bytes.len());
        self.chain_hashes.push(chain_hash);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The entries as (sequence number, chain hash, canonical bytes), in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u64, &[u8; 32], &[u8])> + '_ {
        self.ends.iter().zip(&self.chain_hashes).enumerate().map(|(i, (end, hash))| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            (self.first_seq + i as u64, hash, &self.bytes[start..*end])
        })
    }
}

/// Entries one by one, as reads give them; they must be dense.
impl From<Vec<StoredEntry>> for Entries {
    fn from(entries: Vec<StoredEntry>) -> Entries {
        let first_seq = entries.first().map_or(0, |e| e.seq);
        let mut out = Entries::starting_at(first_seq);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.seq, first_seq + i as u64, "appended entries must be dense");
            out.push(&e.bytes, e.chain_hash);
        }
        out
    }
}

/// Everything one batch writes. Written atomically and synced, or not at all.
#[derive(Debug, Default)]
pub struct Append {
    pub entries: Entries,
    /// Idempotency index: event id → record.
    pub ids: Vec<(Vec<u8>, Vec<u8>)>,
    /// Materialised balances: key → fen.
    pub balances: Vec<(Vec<u8>, i64)>,
    /// Materialised state: key → value, or delete.
    pub state: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Merkle tree nodes: key → hash.
    pub tree: Vec<(Vec<u8>, Vec<u8>)>,
    /// Extra metadata records (published digests, ...).
    pub meta: Vec<(Vec<u8>, Vec<u8>)>,
    pub head: Head,
    /// Deletes every record of the state and balances column families before `state` and
    /// `balances` are written (a state rewritten whole, in one batch).
    pub clear_state: bool,
}

/// The ledger's store. Safe to share between threads; appends are serialised by the caller.
#[derive(Debug)]
pub struct Store {
    db: DB,
    path: PathBuf,
    head: Mutex<Head>,
    /// The bytes of the journal's last block while it holds fewer than [`BLOCK_ENTRIES`]
    /// entries (an append that starts inside it rewrites it whole); locked under `head`.
    tail: Mutex<Vec<u8>>,
    /// The last head known to be on disk (synced).
    durable: Mutex<Head>,
    poisoned: AtomicBool,
    fail_next_write: AtomicBool,
    fail_next_sync: AtomicBool,
    fail_next_read: AtomicBool,
    /// Automatic compactions are off (as [`Store::open`] leaves them) until
    /// [`Store::resume_compactions`].
    compactions_held: AtomicBool,
    /// Held while a table file is built and ingested ([`Store::ingest_index`],
    /// [`Store::ingest_state`]): they share one file name.
    ingesting: Mutex<()>,
}

fn db_options() -> Options {
    // An open replays the write-ahead log into memtables and keeps them there (the log files
    // stay until those memtables flush in the ordinary way), instead of writing them out as
    // level-0 table files before the open returns: every command after a post paid that write
    // and its syncs, and the new level-0 files then started a compaction during the open.
    // The crate has no setter for this option; RocksDB's options string sets it, on a fresh
    // base, so that nothing the wrapper keeps alive for the base (an environment, a cache, a
    // callback) is lost with it: every other option is set on the result.
    let mut o = Options::default()
        .get_options_from_string("avoid_flush_during_recovery=true")
        .expect("a valid RocksDB option string");
    o.create_if_missing(false);
    o.create_missing_column_families(true);
    o.set_max_background_jobs(2);
    o.set_bytes_per_sync(1 << 20);
    // The WAL write and the memtable inserts of consecutive batches overlap.
    o.set_enable_pipelined_write(true);
    // Bounds the write-ahead log a reopening replays: past it, the column families holding the
    // oldest records are flushed to table files (`WAL_REPLAY_BYTES_MAX`). Without it,
    // memtables of 128 MiB in seven column families let the log reach gigabytes, and every
    // open (after a crash or a clean close, which does not flush) replayed all of it
    // (measured: 14 - 17 s of a 1M-member, 10M-entry ledger's open).
    o.set_max_total_wal_size(WAL_REPLAY_BYTES_MAX);
    o
}

fn cf_descriptors() -> Vec<ColumnFamilyDescriptor> {
    cf_descriptors_holding(false)
}

/// The column families, with automatic compactions off if `hold_compactions`
/// ([`Store::resume_compactions`] turns them on).
fn cf_descriptors_holding(hold_compactions: bool) -> Vec<ColumnFamilyDescriptor> {
    COLUMN_FAMILIES
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name, hold_compactions)))
        .collect()
}

/// The options of column family `name` (the ingested index's table files are built with
/// those of [`CF_IDS`]).
fn cf_options(name: &str, hold_compactions: bool) -> Options {
    let mut o = Options::default();
    o.set_disable_auto_compactions(hold_compactions);
    if name == CF_IDS {
        // Nearly every lookup of a new event id misses: bloom filters, on the table files and
        // on the memtable's whole keys, answer those without a search.
        let mut t = BlockBasedOptions::default();
        t.set_bloom_filter(10.0, false);
        o.set_block_based_table_factory(&t);
        o.set_memtable_prefix_bloom_ratio(0.05);
        o.set_memtable_whole_key_filtering(true);
    }
    if name == CF_IDS || name == CF_STATE {
        // Written only by a checkpoint's ingested table files, each a level-0 file of its own
        // (at a million members one every 65,536 entries; 13 level-0 files of `ids` at most
        // in a 10M-entry run). RocksDB slows or stops every write of the store when one column
        // family holds too many level-0 files, and the posts write none of these: they are
        // not held back for the checkpoints' compactions (reads merge a few more files).
        o.set_level_zero_slowdown_writes_trigger(64);
        o.set_level_zero_stop_writes_trigger(128);
    }
    // Larger memtables flush less often; the journal's keys arrive in order.
    o.set_write_buffer_size(128 << 20);
    o.set_max_write_buffer_number(3);
    o
}

fn engine(e: rocksdb::Error) -> String {
    e.into_string()
}

/// RocksDB's own verdict is kept: a checksum mismatch or an undecodable block is corruption of
/// the stored data (an integrity failure), anything else a failure of the disk or environment.
fn read_error(e: rocksdb::Error) -> ReadError {
    match e.kind() {
        rocksdb::ErrorKind::Corruption => ReadError::Corrupt(engine(e)),
        _ => ReadError::Engine(engine(e)),
    }
}

/// At open, the same split: corruption found by RocksDB is [`OpenError::Corrupt`], an I/O or
/// environment failure [`OpenError::Engine`].
fn open_error(path: &Path, e: rocksdb::Error) -> OpenError {
    match e.kind() {
        rocksdb::ErrorKind::Corruption => OpenError::Corrupt(engine(e)),
        _ => OpenError::Engine { path: path.to_path_buf(), reason: engine(e) },
    }
}

#[cfg(feature = "testing")]
fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// How many write-ahead log files (`NNNNNN.log`) the ledger's folder holds; 0 if it cannot be
/// listed (the open has just read it, so that is not expected).
pub fn wal_files(path: &Path) -> usize {
    std::fs::read_dir(path).map_or(0, |dir| {
        dir.filter_map(Result::ok)
            .filter(|f| f.path().extension().is_some_and(|x| x == "log"))
            .count()
    })
}

/// Syncs every write-ahead log file in `path`, and the folder. The logs an open recovers hold
/// what the last process wrote, synced or not (a process killed between a write and its sync
/// leaves the write in the page cache, readable, not on disk); RocksDB syncs only the logs it
/// writes itself from then on. The store counts its head as durable from the open on, and a
/// checkpoint ingested later is on disk at once: without this, a power loss after the restart
/// could take entries a checkpoint names.
fn sync_recovered_logs(path: &Path) -> std::io::Result<()> {
    for f in std::fs::read_dir(path)? {
        let f = f?.path();
        if f.extension().is_some_and(|x| x == "log") {
            std::fs::File::open(&f)?.sync_all()?;
        }
    }
    std::fs::File::open(path)?.sync_all()
}

fn decode_head(v: &[u8]) -> Result<Head, String> {
    if v.len() != 40 {
        return Err(format!("head record is {} bytes, expected 40", v.len()));
    }
    let seq = u64::from_le_bytes(v[..8].try_into().expect("8 bytes"));
    let hash = v[8..].try_into().expect("32 bytes");
    Ok(Head { seq, hash })
}

fn encode_head(h: &Head) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    v.extend_from_slice(&h.seq.to_le_bytes());
    v.extend_from_slice(&h.hash);
    v
}

/// A record of the format-1 journal (`migrate` reads them).
fn decode_entry(key: &[u8], value: &[u8]) -> Result<StoredEntry, ReadError> {
    let seq = u64::from_be_bytes(
        key.try_into()
            .map_err(|_| ReadError::Corrupt(format!("journal key of {} bytes", key.len())))?,
    );
    if value.len() < 32 {
        return Err(ReadError::Corrupt(format!("journal value of entry {seq} is truncated")));
    }
    Ok(StoredEntry {
        seq,
        chain_hash: value[..32].try_into().expect("32 bytes"),
        bytes: value[32..].to_vec(),
    })
}

impl Store {
    /// Creates a new, empty store at `path`. Refuses a path that already holds a ledger.
    pub fn create(path: &Path) -> Result<Store, OpenError> {
        if path.join("CURRENT").exists() {
            return Err(OpenError::AlreadyExists(path.to_path_buf()));
        }
        let mut o = db_options();
        o.create_if_missing(true);
        let db = DB::open_cf_descriptors(&o, path, cf_descriptors())
            .map_err(|e| OpenError::Engine { path: path.to_path_buf(), reason: engine(e) })?;
        let store = Store::from_db(db, path, Head { seq: 0, hash: [0; 32] });
        let mut batch = WriteBatch::default();
        let meta = store.cf(CF_META);
        batch.put_cf(meta, META_FORMAT, STORAGE_FORMAT_VERSION.to_le_bytes());
        batch.put_cf(meta, META_HEAD, encode_head(&Head { seq: 0, hash: [0; 32] }));
        store
            .write(batch)
            .map_err(|e| OpenError::Engine { path: path.to_path_buf(), reason: e.to_string() })?;
        Ok(store)
    }

    /// Opens an existing store and checks that the stored head names the last stored entry.
    ///
    /// Automatic compactions are held until [`Store::resume_compactions`] (or the first
    /// write): those a crash left due (level-0 tables flushed while the ledger was written,
    /// past RocksDB's trigger) would otherwise start at once and take a core from the loading
    /// of the state that follows an open (measured: about a quarter of the samples of a large
    /// ledger's open after a crash), and a read-only command that ends soon after would only
    /// abandon them.
    pub fn open(path: &Path) -> Result<Store, OpenError> {
        if !path.join("CURRENT").exists() {
            return Err(OpenError::Missing(path.to_path_buf()));
        }
        let db = DB::open_cf_descriptors(&db_options(), path, cf_descriptors_holding(true))
            .map_err(|e| open_error(path, e))?;
        // A table file an ingestion left (a crash before RocksDB took it) holds nothing the
        // store needs: the ingestion did not happen.
        match std::fs::remove_file(path.join(INGEST_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(OpenError::Engine {
                    path: path.to_path_buf(),
                    reason: format!("removing {INGEST_FILE}: {e}"),
                });
            }
            _ => {}
        }
        sync_recovered_logs(path).map_err(|e| OpenError::Engine {
            path: path.to_path_buf(),
            reason: format!("syncing the recovered write-ahead log: {e}"),
        })?;
        let meta = db.cf_handle(CF_META).expect("column families are created at open");
        let format = db
            .get_cf(meta, META_FORMAT)
            .map_err(|e| open_error(path, e))?
            .ok_or_else(|| OpenError::Corrupt("no format record".into()))?;
        let format = u32::from_le_bytes(
            format
                .as_slice()
                .try_into()
                .map_err(|_| OpenError::Corrupt("format record is not 4 bytes".into()))?,
        );
        if format == 1 {
            return Err(OpenError::NeedsMigration(path.to_path_buf()));
        }
        if format != STORAGE_FORMAT_VERSION {
            return Err(OpenError::Format { found: format });
        }
        let head = db
            .get_cf(meta, META_HEAD)
            .map_err(|e| open_error(path, e))?
            .ok_or_else(|| OpenError::Corrupt("no head record".into()))
            .and_then(|v| decode_head(&v).map_err(OpenError::Corrupt))?;
        let store = Store::from_db(db, path, head);
        store.compactions_held.store(true, Ordering::SeqCst);
        if wal_files(path) > WAL_FILES_KEPT_MAX {
            store.flush_memtables().map_err(|e| OpenError::Engine {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        let (last, tail) = store.last_block().map_err(|e| match e {
            ReadError::Corrupt(m) => OpenError::Corrupt(m),
            ReadError::Engine(reason) => OpenError::Engine { path: path.to_path_buf(), reason },
        })?;
        *store.tail.lock().expect("fresh lock") = tail;
        match (head.seq, last) {
            (0, None) => {}
            (_, Some(last)) if last.seq == head.seq && last.chain_hash == head.hash => {}
            (_, Some(last)) => {
                return Err(OpenError::Corrupt(format!(
                    "the head names entry {} but the last stored entry is {} (hash {} vs {})",
                    head.seq,
                    last.seq,
                    hex8(&head.hash),
                    hex8(&last.chain_hash)
                )));
            }
            (seq, None) => {
                return Err(OpenError::Corrupt(format!(
                    "the head names entry {seq} but the journal is empty"
                )));
            }
        }
        Ok(store)
    }

    fn from_db(db: DB, path: &Path, head: Head) -> Store {
        Store {
            db,
            path: path.to_path_buf(),
            head: Mutex::new(head),
            tail: Mutex::new(Vec::new()),
            durable: Mutex::new(head),
            poisoned: AtomicBool::new(false),
            fail_next_write: AtomicBool::new(false),
            fail_next_sync: AtomicBool::new(false),
            fail_next_read: AtomicBool::new(false),
            compactions_held: AtomicBool::new(false),
            ingesting: Mutex::new(()),
        }
    }

    /// Turns on the automatic compactions [`Store::open`] held (once; a store created, or
    /// resumed already, is left as it is). Every write does it first, so a store that is
    /// written to compacts as before; a long-running reader calls it once it has opened.
    /// Should RocksDB refuse the option (it does not for this one), the store stays usable
    /// and only its level-0 tables are not merged: the error is returned for the caller to
    /// report or ignore.
    pub fn resume_compactions(&self) -> Result<(), WriteError> {
        if !self.compactions_held.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        for name in COLUMN_FAMILIES {
            if let Err(e) =
                self.db.set_options_cf(self.cf(name), &[("disable_auto_compactions", "false")])
            {
                // Held still: the next write tries again.
                self.compactions_held.store(true, Ordering::SeqCst);
                return Err(WriteError::Engine(engine(e)));
            }
        }
        Ok(())
    }

    /// Whether automatic compactions are held ([`Store::open`]).
    pub fn compactions_held(&self) -> bool {
        self.compactions_held.load(Ordering::SeqCst)
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("column families are created at open")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The head as of the last successful append.
    pub fn head(&self) -> Head {
        *self.head.lock().expect("head lock is never held across a panic")
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    /// The last head known to be on disk: every entry up to it survives a crash.
    pub fn durable_head(&self) -> Head {
        *self.durable.lock().expect("durable lock is never held across a panic")
    }

    fn set_durable(&self, head: Head) {
        let mut d = self.durable.lock().expect("durable lock is never held across a panic");
        if head.seq >= d.seq {
            *d = head;
        }
    }

    /// Makes every append so far durable (syncs the write-ahead log) and returns the head it
    /// covers. A failure poisons the handle: what was appended since the last sync may be lost.
    pub fn sync(&self) -> Result<Head, WriteError> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(WriteError::Poisoned);
        }
        // Every append that produced this head has returned, so the log holds it.
        let head = self.head();
        if self.fail_next_sync.swap(false, Ordering::SeqCst) {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(WriteError::Engine("injected sync failure".into()));
        }
        self.db.flush_wal(true).map_err(|e| {
            self.poisoned.store(true, Ordering::SeqCst);
            WriteError::Engine(engine(e))
        })?;
        self.set_durable(head);
        Ok(head)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), WriteError> {
        self.write_opt(batch, true)
    }

    /// What every write does first: a poisoned handle refuses it; a write failure injected by
    /// a test ([`Store::inject_write_failure`]) fails it, where `injectable`, and poisons the
    /// handle; and a store that is written to compacts (were the option refused, the write
    /// still goes through: only the level-0 tables wait for the next open that resumes them).
    fn begin_write(&self, injectable: bool) -> Result<(), WriteError> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(WriteError::Poisoned);
        }
        if injectable && self.fail_next_write.swap(false, Ordering::SeqCst) {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(WriteError::Engine("injected write failure".into()));
        }
        let _ = self.resume_compactions();
        Ok(())
    }

    fn write_opt(&self, batch: WriteBatch, sync: bool) -> Result<(), WriteError> {
        self.begin_write(true)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(batch, &wo).map_err(|e| {
            self.poisoned.store(true, Ordering::SeqCst);
            WriteError::Engine(engine(e))
        })
    }

    /// Appends a batch: entries (dense, following the head), their index and state records
    /// and the new head, in one synced write.
    pub fn append(&self, append: Append) -> Result<(), WriteError> {
        let head = append.head;
        self.append_opt(append, true)?;
        // A synced write syncs the log up to it, earlier deferred appends included.
        self.set_durable(head);
        Ok(())
    }

    /// [`Store::append`] without the sync: visible to reads at once, durable only after a
    /// later [`Store::sync`] (or synced append). Not to be acknowledged before then.
    pub fn append_deferred(&self, append: Append) -> Result<(), WriteError> {
        self.append_opt(append, false)
    }

    /// Puts an append's index, balance, state and metadata records into `batch`.
    fn put_derived(&self, batch: &mut WriteBatch, append: &Append) {
        let ids = self.cf(CF_IDS);
        for (k, v) in &append.ids {
            batch.put_cf(ids, k, v);
        }
        let balances = self.cf(CF_BALANCES);
        if append.clear_state {
            // A balance's key is an encoded account, whose first byte (the fund) is below 0xff.
            batch.delete_range_cf(balances, [0u8].as_slice(), [0xffu8; 2].as_slice());
        }
        for (k, fen) in &append.balances {
            batch.put_cf(balances, k, fen.to_le_bytes());
        }
        let state = self.cf(CF_STATE);
        if append.clear_state {
            // Every state key starts with a tag byte below 0xff.
            batch.delete_range_cf(state, [0u8].as_slice(), [0xffu8; 2].as_slice());
        }
        for (k, v) in &append.state {
            match v {
                Some(v) => batch.put_cf(state, k, v),
                None => batch.delete_cf(state, k),
            }
        }
        let meta = self.cf(CF_META);
        for (k, v) in &append.meta {
            assert!(k.as_slice() != META_HEAD && k.as_slice() != META_FORMAT, "reserved meta key");
            batch.put_cf(meta, k, v);
        }
    }

    /// Stores index records (the `ids` column family: idempotency and member index records)
    /// of the entries up to `until` by ingesting a table file built aside, not through the
    /// write-ahead log and the memtables: a checkpoint's hundreds of thousands of records then
    /// do not queue the posts' writes behind them (docs/FORMAT.md §4, "the derived records
    /// ingested"). The file also holds the [`INDEX_UNTIL_KEY`] record naming `until`; the
    /// ingestion is atomic and durable when it returns. The entries up to `until` must be
    /// durable first (the caller syncs): the records are on disk at once, whatever the log
    /// holds.
    ///
    /// A key given twice keeps its last value. A failure poisons the handle, as a failed write
    /// does (the caller's records in memory are then the only copy it answers from).
    pub fn ingest_index(
        &self,
        records: Vec<(Vec<u8>, Vec<u8>)>,
        until: u64,
    ) -> Result<(), WriteError> {
        assert!(self.durable_head().seq >= until, "index records of entries not yet durable");
        let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            records.into_iter().map(|(k, v)| (k, Some(v))).collect();
        records.push((INDEX_UNTIL_KEY.to_vec(), Some(until.to_be_bytes().to_vec())));
        // Not failed by an injected write failure: a test fails the state's ingestion after it.
        self.ingest(CF_IDS, records, false)
    }

    /// Stores state records (a put, or a delete where the value is `None`) by ingesting a table
    /// file built aside, as [`Store::ingest_index`] does: atomic and durable when it returns,
    /// and nothing in the posts' write queue. The records must describe the state as of
    /// entries that are durable (the caller syncs first), and hold the record naming them
    /// (the ledger's checkpoint record). Fails as an injected write failure would
    /// ([`Store::inject_write_failure`] in tests), and a failure poisons the handle.
    pub fn ingest_state(
        &self,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        until: u64,
    ) -> Result<(), WriteError> {
        assert!(self.durable_head().seq >= until, "a state as of entries not yet durable");
        self.ingest(CF_STATE, records, true)
    }

    /// Builds a table file of `records` (sorted here; of equal keys the last kept) for the
    /// column family `cf` with its options, and ingests it, moving the file into the store.
    /// Begins as every write does ([`Store::begin_write`]).
    fn ingest(
        &self,
        cf: &str,
        mut records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        injectable: bool,
    ) -> Result<(), WriteError> {
        // One file name: one ingestion at a time.
        let _one = self.ingesting.lock().unwrap_or_else(|p| p.into_inner());
        self.begin_write(injectable)?;
        records.sort_by(|a, b| a.0.cmp(&b.0));
        // The last of equal keys: walk from the end, keep a key the first time it is seen.
        records.reverse();
        records.dedup_by(|later, earlier| later.0 == earlier.0);
        records.reverse();
        let file = self.path.join(INGEST_FILE);
        let poison = |e: String| {
            self.poisoned.store(true, Ordering::SeqCst);
            let _ = std::fs::remove_file(&file);
            WriteError::Engine(e)
        };
        let options = cf_options(cf, false);
        let mut writer = rocksdb::SstFileWriter::create(&options);
        writer.open(&file).map_err(|e| poison(engine(e)))?;
        for (k, v) in &records {
            match v {
                Some(v) => writer.put(k, v),
                None => writer.delete(k),
            }
            .map_err(|e| poison(engine(e)))?;
        }
        writer.finish().map_err(|e| poison(engine(e)))?;
        drop(writer);
        let mut o = rocksdb::IngestExternalFileOptions::default();
        o.set_move_files(true);
        self.db
            .ingest_external_file_cf_opts(self.cf(cf), &o, vec![&file])
            .map_err(|e| poison(engine(e)))
    }

    /// The entry named by the [`INDEX_UNTIL_KEY`] record: every index record of the entries
    /// up to it is stored (0 when no index was ingested).
    pub fn index_until(&self) -> Result<u64, ReadError> {
        parse_index_until(self.db.get_cf(self.cf(CF_IDS), INDEX_UNTIL_KEY).map_err(read_error)?)
    }

    fn append_opt(&self, append: Append, sync: bool) -> Result<(), WriteError> {
        if append.entries.len() > APPEND_ENTRIES_MAX {
            return Err(WriteError::TooLarge(append.entries.len()));
        }
        let mut head = self.head.lock().expect("head lock is never held across a panic");
        // Density and head advance are the caller's invariants; a violation is a bug, and it
        // must stop the program before anything is written.
        let entries = &append.entries;
        if !entries.is_empty() {
            assert_eq!(entries.first_seq, head.seq + 1, "appended entries must be dense");
        }
        assert_eq!(
            append.head.seq,
            head.seq + entries.len() as u64,
            "the head advances by the number of entries"
        );
        if let Some(last) = entries.chain_hashes.last() {
            assert_eq!(append.head.hash, *last, "the head is the last entry's hash");
        }
        let mut tail = self.tail.lock().expect("tail lock is never held across a panic");
        // Room for the whole batch at once (RocksDB's buffer otherwise doubles and copies as it
        // grows): the records, a rewritten tail, and a little per put.
        let bytes = entries.bytes.len() + 36 * entries.len();
        let puts = entries.len() / BLOCK_ENTRIES as usize + append.tree.len() + 2;
        let mut batch = WriteBatch::with_capacity_bytes(tail.len() + bytes + 64 * puts + 256);
        // The journal: one put per block the entries reach; the first rewrites the last block
        // if the head is inside it.
        let blocks = self.cf(CF_BLOCKS);
        let mut block = std::mem::take(&mut *tail);
        let mut records = entries.iter().peekable();
        while let Some((seq, chain_hash, bytes)) = records.next() {
            blocks::push_record(&mut block, chain_hash, bytes);
            let full = seq % BLOCK_ENTRIES == 0;
            if full || records.peek().is_none() {
                batch.put_cf(blocks, blocks::block_key(blocks::block_of(seq)), &block);
                if full {
                    block.clear();
                }
            }
        }
        let tree = self.cf(CF_TREE);
        for (k, v) in &append.tree {
            batch.put_cf(tree, k, v);
        }
        self.put_derived(&mut batch, &append);
        let meta = self.cf(CF_META);
        batch.put_cf(meta, META_HEAD, encode_head(&append.head));
        // A failed write poisons the handle: the tail taken above is not used again, and
        // reopening reads it back from the disk.
        self.write_opt(batch, sync)?;
        *head = append.head;
        *tail = block;
        Ok(())
    }

    /// One entry by sequence number.
    pub fn entry(&self, seq: u64) -> Result<Option<StoredEntry>, ReadError> {
        // A load first: the hot path reads without writing the flag's cache line.
        if self.fail_next_read.load(Ordering::Relaxed)
            && self.fail_next_read.swap(false, Ordering::SeqCst)
        {
            return Err(ReadError::Engine("injected read failure".into()));
        }
        if seq == 0 {
            return Ok(None);
        }
        let block = blocks::block_of(seq);
        let v = self
            .db
            .get_pinned_cf(self.cf(CF_BLOCKS), blocks::block_key(block))
            .map_err(read_error)?;
        let Some(v) = v else { return Ok(None) };
        Ok(blocks::decode_block(block, &v)?.into_iter().find(|e| e.seq == seq))
    }

    /// The last stored entry, and the bytes of its block when the block is not full.
    fn last_block(&self) -> Result<(Option<StoredEntry>, Vec<u8>), ReadError> {
        let mut it = self.db.iterator_cf(self.cf(CF_BLOCKS), IteratorMode::End);
        match it.next() {
            None => Ok((None, Vec::new())),
            Some(Err(e)) => Err(read_error(e)),
            Some(Ok((k, v))) => {
                let block = blocks::parse_block_key(&k)?;
                let mut entries = blocks::decode_block(block, &v)?;
                let tail = if (entries.len() as u64) < BLOCK_ENTRIES { v.to_vec() } else { vec![] };
                Ok((entries.pop(), tail))
            }
        }
    }

    /// Entries with `from <= seq`, in order, at most `limit`.
    pub fn entries(
        &self,
        from: u64,
        limit: usize,
    ) -> impl Iterator<Item = Result<StoredEntry, ReadError>> + '_ {
        let from = from.max(1);
        let key = blocks::block_key(blocks::block_of(from));
        journal_entries(
            self.db.iterator_cf_opt(
                self.cf(CF_BLOCKS),
                scan_options(limit),
                IteratorMode::From(&key, Direction::Forward),
            ),
            from,
            limit,
        )
    }

    /// Looks up many event ids at once in the idempotency index.
    pub fn ids_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, ReadError> {
        let cf = self.cf(CF_IDS);
        self.db
            .batched_multi_get_cf(cf, keys, false)
            .into_iter()
            .map(|r| r.map(|o| o.map(|p| p.to_vec())).map_err(read_error))
            .collect()
    }

    /// Index records (in the `ids` column family) whose key starts with `prefix`, in key order.
    pub fn ids_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, ReadError> {
        self.scan_prefix(CF_IDS, prefix)
    }

    fn scan_prefix(&self, cf: &str, prefix: &[u8]) -> Result<Vec<KeyValue>, ReadError> {
        self.db
            .iterator_cf(self.cf(cf), IteratorMode::From(prefix, Direction::Forward))
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(read_error))
            .take_while(|r| r.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
            .collect()
    }

    fn scan(&self, cf: &str) -> Result<Vec<KeyValue>, ReadError> {
        key_values(self.db.iterator_cf(self.cf(cf), IteratorMode::Start))
    }

    /// Every materialised balance (key, 8-byte little-endian fen).
    pub fn balances(&self) -> Result<Vec<KeyValue>, ReadError> {
        self.scan(CF_BALANCES)
    }

    /// Every materialised state record.
    pub fn state(&self) -> Result<Vec<KeyValue>, ReadError> {
        self.scan(CF_STATE)
    }

    /// Calls `f` with every state record in key order, as the scan yields them (nothing
    /// copied); `f` returns false to stop the scan early.
    pub fn state_for_each(&self, f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<(), ReadError> {
        for_each(self.db.raw_iterator_cf(self.cf(CF_STATE)), f)
    }

    /// [`Store::state_for_each`] over the records whose keys are at or after `from` and
    /// before `to` (unbounded where `None`): a scan split by key range, each part on its own
    /// thread.
    pub fn state_range_for_each(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        f: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), ReadError> {
        let mut o = scan_options(usize::MAX);
        if let Some(to) = to {
            o.set_iterate_upper_bound(to.to_vec());
        }
        let mut records = self.db.raw_iterator_cf_opt(self.cf(CF_STATE), o);
        match from {
            Some(from) => records.seek(from),
            None => records.seek_to_first(),
        }
        for_each_from(records, f)
    }

    /// [`Store::state_for_each`] for the materialised balances (read once from start to end:
    /// no block kept in the cache).
    pub fn balances_for_each(&self, f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<(), ReadError> {
        for_each(self.db.raw_iterator_cf_opt(self.cf(CF_BALANCES), scan_options(usize::MAX)), f)
    }

    /// One Merkle tree node.
    pub fn tree_node(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        self.db.get_cf(self.cf(CF_TREE), key).map_err(read_error)
    }

    /// One `state` record.
    pub fn state_record(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        self.db.get_cf(self.cf(CF_STATE), key).map_err(read_error)
    }

    /// One metadata record.
    pub fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        self.db.get_cf(self.cf(CF_META), key).map_err(read_error)
    }

    /// Metadata records whose key starts with `prefix`, in key order.
    pub fn meta_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, ReadError> {
        self.scan_prefix(CF_META, prefix)
    }

    /// The metadata record with the greatest key that starts with `prefix`, read from the end
    /// (the latest of a series of records keyed by a big-endian number).
    pub fn meta_last(&self, prefix: &[u8]) -> Result<Option<KeyValue>, ReadError> {
        // Every key with the prefix sorts at or before the prefix followed by 0xff bytes, as
        // long as what follows the prefix is shorter than this.
        let mut upper = prefix.to_vec();
        upper.extend_from_slice(&[0xff; 64]);
        let mut it =
            self.db.iterator_cf(self.cf(CF_META), IteratorMode::From(&upper, Direction::Reverse));
        match it.next() {
            None => Ok(None),
            Some(Err(e)) => Err(read_error(e)),
            Some(Ok((k, v))) if k.starts_with(prefix) => Ok(Some((k.to_vec(), v.to_vec()))),
            Some(Ok(_)) => Ok(None),
        }
    }

    /// Bytes the journal and all other column families take on disk (SST files plus memtables).
    pub fn size_on_disk(&self) -> u64 {
        COLUMN_FAMILIES
            .iter()
            .map(|name| {
                let cf = self.cf(name);
                let sst = self
                    .db
                    .property_int_value_cf(cf, "rocksdb.total-sst-files-size")
                    .ok()
                    .flatten()
                    .unwrap_or(0);
                let mem = self
                    .db
                    .property_int_value_cf(cf, "rocksdb.cur-size-all-mem-tables")
                    .ok()
                    .flatten()
                    .unwrap_or(0);
                sst + mem
            })
            .sum()
    }

    /// After the state was rewritten whole (`Append::clear_state`): every column family's
    /// memtable is flushed to table files (a log file is kept while any memtable holds records
    /// from it, so flushing the state alone would keep the rewrite's log, read again at every
    /// open) and the `state` and `balances` column families compacted, so that the next open
    /// neither replays the rewrite from the write-ahead log nor scans past the records it
    /// deleted (nor keeps them on disk). Once, at a conversion: seconds at a million members.
    pub fn settle_rewritten_state(&self) -> Result<(), WriteError> {
        self.flush_memtables()?;
        for name in [CF_STATE, CF_BALANCES] {
            self.db.compact_range_cf(self.cf(name), None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// Flushes memtables and compacts, so that size figures reflect SST files.
    pub fn compact(&self) -> Result<(), ReadError> {
        for name in COLUMN_FAMILIES {
            let cf = self.cf(name);
            self.db.flush_cf(cf).map_err(read_error)?;
            self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }
}

/// The read options of a read of `entries` journal entries (or records): one of more than a
/// few blocks is a scan (a replay, an export, a load, a mirror's round) and reads each block
/// once, so none is kept in RocksDB's block cache, where it would only push out the blocks of
/// point reads (and, at an open, take memory the state needs).
fn scan_options(entries: usize) -> rocksdb::ReadOptions {
    let mut o = rocksdb::ReadOptions::default();
    o.fill_cache(entries <= 4 * BLOCK_ENTRIES as usize);
    o
}

/// A RocksDB key-value iterator's items, as RocksDB hands them out.
type RawItem = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>;

/// Journal entries from an iterator over the journal's blocks (the live store's or a
/// snapshot's), decoded, from `from` on, at most `limit`. After an error it ends.
fn journal_entries<'a>(
    records: impl Iterator<Item = RawItem> + 'a,
    from: u64,
    limit: usize,
) -> impl Iterator<Item = Result<StoredEntry, ReadError>> + 'a {
    let decoded = records.map(|r| {
        let (k, v) = r.map_err(read_error)?;
        blocks::decode_block(blocks::parse_block_key(&k)?, &v)
    });
    let mut failed = false;
    decoded
        .take_while(move |r| {
            let go = !failed;
            failed |= r.is_err();
            go
        })
        .flat_map(|r| match r {
            Ok(entries) => entries.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        })
        .filter(move |r| r.as_ref().map_or(true, |e| e.seq >= from))
        .take(limit)
}

/// Calls `f` with every record of a raw iterator from its first, until `f` returns false.
fn for_each<D: rocksdb::DBAccess>(
    mut records: rocksdb::DBRawIteratorWithThreadMode<'_, D>,
    f: impl FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), ReadError> {
    records.seek_to_first();
    for_each_from(records, f)
}

/// [`for_each`] from where the iterator stands.
fn for_each_from<D: rocksdb::DBAccess>(
    mut records: rocksdb::DBRawIteratorWithThreadMode<'_, D>,
    mut f: impl FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), ReadError> {
    while let (Some(k), Some(v)) = (records.key(), records.value()) {
        if !f(k, v) {
            break;
        }
        records.next();
    }
    records.status().map_err(read_error)
}

/// Every record an iterator yields, copied out.
fn key_values(records: impl Iterator<Item = RawItem>) -> Result<Vec<KeyValue>, ReadError> {
    records.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(read_error)).collect()
}

fn hex8(h: &[u8; 32]) -> String {
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}
