//! junbao-engine: the ledger as a service to its front ends (the command line, the HTTP server).
//!
//! It owns the single writer: one [`Ledger`] holds the chain head and the state, turns posted
//! events into a batch through `junbao-ledger`'s rules, and hands the sealed batch to
//! `junbao-storage` as one synced write. The state in memory changes only after the write is
//! durable.

mod admin;
mod audit;
mod backup;
mod commit;
mod derived;
mod load;
mod mirror;
mod post;
mod raw;
mod reports;
mod transfer;
mod verify;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use junbao_ledger::LookupError;
use junbao_ledger::entry::{DecodeError, Entry, Hash32};
use junbao_ledger::report::{BalanceSheet, JournalEntry, JournalPage};
use junbao_ledger::rules::BalanceBound;
use junbao_ledger::state::StateLoadError;
use junbao_ledger::{Fund, LedgerState};
use junbao_storage::{OpenError, Store};

pub use admin::{render_final_accounts_html, statement_of_fund_csv, year_close_id};
pub use audit::{
    AccessAnchor, AuditError, ExportReport, ForAudit, RootBuilder, SignedDigest, SinceDigestReport,
    TREE_LEVEL_STORED_MIN, create_signing_key, default_key_path, export_line, ledger_transaction,
    load_signing_key, verify_export,
};
pub use backup::{
    BACKUP_FORMAT, BACKUP_LEDGER_DIR, BACKUP_MANIFEST, BackupError, BackupFile, BackupManifest,
    RestoreReport, backup_summary, check_backup_files, restore_backup,
};
pub use commit::{
    CommitStats, GROUP_EVENTS_MAX, GroupCommitter, QUEUE_EVENTS_MAX, QUEUE_REQUESTS_MAX, Reply,
    Sequencing, SubmitError,
};
pub(crate) use derived::StoreLookup;
pub use derived::{
    CHECKPOINT_ENTRIES, CHECKPOINT_SECONDS, META_CHECKPOINT, META_STATE_COUNTS, MigrateError,
    MigrateSummary,
};
pub use junbao_storage::{Head, ReadError, StoredEntry, WriteError};
pub use mirror::{MIRROR_STEP_ENTRIES_MAX, MirrorError, RemoteEntry};
pub use post::{
    BATCH_EVENTS_MAX, LineError, ParsedEvent, PostError, PostRequest, PostScope, PostSummary,
    PostTimings, RejectKind, parse_events, parse_fingerprinted,
};
pub use raw::{RawWriteError, write_raw_journal};
pub use reports::balances_csv;
pub use transfer::{
    PackageReport, TRANSFER_SCHEMA, generated_event_id, key_rotation_id, render_package_html,
    transfer_confirmed_line, verify_package,
};
pub use verify::{VerifyError, VerifyReport};

/// How many line errors a refused post reports before it stops listing them.
pub const REPORTED_ERRORS_MAX: usize = 20;

/// The recording clock: microseconds since the Unix epoch, UTC.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_micros())
}

/// The three kinds of failure, kept apart from the storage layer up (docs/ARCHITECTURE.md,
/// "Errors and exit statuses"): each has its exit status and HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input was refused, nothing stored (exit 2, HTTP 4xx).
    Input,
    /// What is stored, or what was given to verify, is not what the ledger wrote (exit 3, HTTP
    /// 500).
    Integrity,
    /// The disk or the environment failed (exit 1, HTTP 503).
    Io,
}

impl ErrorKind {
    /// The kind of a failed read of the store.
    pub fn of_read(e: &ReadError) -> ErrorKind {
        if e.is_integrity() { ErrorKind::Integrity } else { ErrorKind::Io }
    }
}

/// A failed read of the store as the rules see it: the kind is kept.
pub(crate) fn lookup_error(e: ReadError) -> LookupError {
    if e.is_integrity() {
        LookupError::Corrupt(e.to_string())
    } else {
        LookupError::Io(e.to_string())
    }
}

/// A failed lookup of the rules as a read error of the store: the kind is kept.
pub(crate) fn read_error(e: LookupError) -> ReadError {
    match e {
        LookupError::Corrupt(m) => ReadError::Corrupt(m),
        other => ReadError::Engine(other.to_string()),
    }
}

/// Opening a ledger failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerOpenError {
    #[error(transparent)]
    Store(#[from] OpenError),
    #[error("reading the stored state failed: {0}")]
    Read(#[from] ReadError),
    #[error("the stored state is corrupted: {0}")]
    State(#[from] StateLoadError),
    #[error("recording the seed standards failed: {0}")]
    Seed(String),
    #[error("entry {seq} does not decode while rebuilding the state: {source}")]
    Journal {
        seq: u64,
        #[source]
        source: DecodeError,
    },
    #[error(
        "the ledger's state format is {0}, newer than this junbao's ({STATE_FORMAT}): open it \
         with the version that wrote it or a later one"
    )]
    NewerStateFormat(u32),
}

impl LedgerOpenError {
    /// The stored data is not what this ledger wrote (exit 3), as opposed to a missing ledger,
    /// a disk or an environment failure (exit 1).
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            LedgerOpenError::Store(OpenError::Corrupt(_))
                | LedgerOpenError::Read(ReadError::Corrupt(_))
                | LedgerOpenError::State(_)
                | LedgerOpenError::Journal { .. }
        )
    }
}

/// Reading the journal failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadJournalError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("entry {seq} does not decode: {source}")]
    Decode {
        seq: u64,
        #[source]
        source: DecodeError,
    },
}

impl ReadJournalError {
    /// A failed read keeps its kind; an entry that does not decode is an integrity failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReadJournalError::Read(e) => ErrorKind::of_read(e),
            ReadJournalError::Decode { .. } => ErrorKind::Integrity,
        }
    }
}

pub(crate) struct Writer {
    pub(crate) state: LedgerState,
    /// The right edge of the Merkle tree after the last post, so that a post (the HTTP
    /// service's small groups above all) appends without reading earlier entries and nodes.
    pub(crate) frontier: junbao_ledger::merkle::Frontier,
    /// The derived records of the entries after the last checkpoint (`derived.rs`).
    pub(crate) pending: derived::Pending,
    /// A bound on the magnitude of every balance and year's sum in `state`, so that the rules
    /// leave out the per-account overflow check while it covers a batch (`BalanceBound`):
    /// taken from the state at open, raised by each batch taken in (`absorb`).
    pub(crate) bound: BalanceBound,
    /// How many of each member's latest years stay in memory (`None`: all of them): older
    /// years are let go of once their pages are stored, and read back when an event needs
    /// them ([`RESIDENT_YEARS`], `Writer::cut`).
    pub(crate) resident_years: Option<u16>,
    /// Members whose pages the checkpoint in flight writes and whose books hold years before
    /// their resident ones, or whose years were read back: ready at the next cut, when that
    /// checkpoint is stored.
    pub(crate) evict_next: Vec<junbao_ledger::ids::MemberId>,
    /// Members whose older years are stored as they are: let go of a few after each batch
    /// (`derived::evict_some`), so that no post waits for a whole checkpoint's worth.
    /// With each, the earliest year of theirs a checkpoint still in flight writes (kept, with
    /// every later year).
    pub(crate) evict_ready: Vec<(junbao_ledger::ids::MemberId, Option<u16>)>,
}

impl Writer {
    /// The writer of `state`, with `pending` the derived records after its checkpoint and
    /// `bound` on its balances; the tree's right edge is read at the first post, and each
    /// member keeps [`RESIDENT_YEARS`] in memory.
    pub(crate) fn new(
        state: LedgerState,
        pending: derived::Pending,
        bound: BalanceBound,
    ) -> Writer {
        Writer {
            state,
            frontier: Default::default(),
            pending,
            bound,
            resident_years: Some(RESIDENT_YEARS),
            evict_next: Vec::new(),
            evict_ready: Vec::new(),
        }
    }

    /// The writer of a new, empty ledger.
    pub(crate) fn empty() -> Writer {
        Writer::new(LedgerState::default(), derived::Pending::default(), BalanceBound::ZERO)
    }
}

/// How many of each member's latest years a ledger keeps in memory unless set
/// ([`Ledger::set_resident_years`]): the current year and the one before, which is what the
/// monthly posts and the year's interest (Art. 31) read. Older years are read back from their
/// stored pages when a back payment, a correction or a transfer needs them.
pub const RESIDENT_YEARS: u16 = 2;

/// An open ledger.
pub struct Ledger {
    store: Arc<Store>,
    writer: Mutex<Writer>,
    clock: Clock,
    /// The first integrity failure a post met (corrupt stored data), for the health check.
    integrity_failure: Mutex<Option<String>>,
    /// Entries after which a post writes a checkpoint ([`CHECKPOINT_ENTRIES`] unless set; a
    /// quarter of it when waiting would not make the checkpoint smaller).
    checkpoint_every: std::sync::atomic::AtomicU64,
    /// Milliseconds the oldest entry after the checkpoint waits before a post cuts the next
    /// one ([`CHECKPOINT_SECONDS`] unless set).
    checkpoint_after_ms: std::sync::atomic::AtomicU64,
    /// Whether closing writes a checkpoint (a crash test turns it off).
    checkpoint_on_close: std::sync::atomic::AtomicBool,
    /// The thread that writes checkpoints cut by posts (`derived.rs`), once started.
    checkpointer: derived::Checkpointer,
    /// Whether closing leaves the state in memory unfreed ([`Ledger::exit_after_close`]).
    exit_after_close: std::sync::atomic::AtomicBool,
    /// The head when the ledger was opened (after the replay of the entries after the
    /// checkpoint; 0 for a new ledger): closing writes a checkpoint only past it.
    opened_head: u64,
    /// How long the open took, by phase.
    open_timings: OpenTimings,
}

/// How long [`Ledger::open`] took, by phase: what a restart after a crash costs before the
/// ledger answers again (logged by `serve`, `benches/recovery.sh`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenTimings {
    /// RocksDB's open, with its replay of the write-ahead log into the memtables.
    pub store: Duration,
    /// Loading the stored state of the checkpoint (and converting an earlier state format, or
    /// rebuilding a state that does not decode from the journal up to the checkpoint).
    pub state: Duration,
    /// Replaying the entries after the checkpoint.
    pub replay: Duration,
    /// The entries replayed.
    pub replayed_entries: u64,
    /// The members in the state once open.
    pub members: usize,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.store.path()).finish()
    }
}

/// The idempotency record of an event id as stored: its entry's sequence number, u64 LE
/// (docs/FORMAT.md §4). The content fingerprint is the entry's own (SHA-256 of its encoded
/// event), recomputed from the entry when an id is posted again.
pub(crate) fn id_record(seq: u64) -> Vec<u8> {
    seq.to_le_bytes().to_vec()
}

/// The idempotency record of an event id written before the journal blocks (storage format 1,
/// kept by `migrate`): the sequence number, then the fingerprint.
pub(crate) fn id_record_v1(seq: u64, fingerprint: &Hash32) -> Vec<u8> {
    let mut v = seq.to_le_bytes().to_vec();
    v.extend_from_slice(fingerprint);
    v
}

/// A stored idempotency record: the sequence number, and the fingerprint when the record
/// carries it (format 1). `None` for anything else.
pub(crate) fn parse_id_record(v: &[u8]) -> Option<(u64, Option<Hash32>)> {
    let seq = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
    match v.len() {
        8 => Some((seq, None)),
        40 => Some((seq, Some(v[8..].try_into().ok()?))),
        _ => None,
    }
}

impl Ledger {
    /// Creates a ledger at `path` and records the seed standards as its first entries,
    /// atomically: it is built in a temporary folder beside `path` (mode
    /// 0700), synced, then renamed to `path`, so a crash leaves either no ledger or a complete
    /// one. `path` may exist as an empty folder.
    pub fn init(path: &Path, clock: Clock) -> Result<Ledger, LedgerOpenError> {
        let fail = |reason: String| {
            LedgerOpenError::Store(OpenError::Engine { path: path.to_path_buf(), reason })
        };
        if path.join("CURRENT").exists() {
            return Err(LedgerOpenError::Store(OpenError::AlreadyExists(path.to_path_buf())));
        }
        if std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()) {
            return Err(fail("the folder exists and is not empty".into()));
        }
        let name = path.file_name().ok_or_else(|| fail("no folder name".into()))?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| fail(e.to_string()))?;
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| fail(e.to_string()))?;
        let tmp = parent.join(format!(".{}.init-{}", name.to_string_lossy(), hex::encode(nonce)));
        let built = Ledger::build(&tmp, clock.clone());
        let result = built.and_then(|ledger| {
            drop(ledger);
            std::fs::rename(&tmp, path)
                .map_err(|e| fail(format!("renaming the new ledger: {e}")))?;
            if let Ok(dir) = std::fs::File::open(&parent) {
                dir.sync_all().map_err(|e| fail(e.to_string()))?;
            }
            Ledger::open(path, clock)
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    /// A ledger over `store` and `writer` with every setting at its default: checkpoints every
    /// [`CHECKPOINT_ENTRIES`] entries or [`CHECKPOINT_SECONDS`], one on close, the state freed
    /// on close. The one place those defaults are spelled (a new ledger, an opened one, a
    /// mirror's).
    pub(crate) fn with_defaults(
        store: Store,
        writer: Writer,
        clock: Clock,
        opened_head: u64,
        open_timings: OpenTimings,
    ) -> Ledger {
        Ledger {
            store: Arc::new(store),
            writer: Mutex::new(writer),
            clock,
            integrity_failure: Mutex::new(None),
            checkpoint_every: CHECKPOINT_ENTRIES.into(),
            checkpoint_after_ms: (CHECKPOINT_SECONDS * 1000).into(),
            checkpoint_on_close: true.into(),
            checkpointer: Default::default(),
            exit_after_close: false.into(),
            opened_head,
            open_timings,
        }
    }

    /// Builds a new ledger in `path` (created, mode 0700), with the seed standards.
    fn build(path: &Path, clock: Clock) -> Result<Ledger, LedgerOpenError> {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(path).map_err(|e| {
            LedgerOpenError::Store(OpenError::Engine {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        })?;
        let store = Store::create(path)?;
        mark_state_format(&store)?;
        let ledger =
            Ledger::with_defaults(store, Writer::empty(), clock, 0, OpenTimings::default());
        let lines: Vec<String> = junbao_ledger::standard::SEED_STANDARDS
            .iter()
            .map(|(name, value, from)| {
                serde_json::json!({
                    "id": format!("init:standard:{name}"),
                    "type": "standard",
                    "name": name,
                    "value": value,
                    "effective_from": from,
                    "memo": "seed standard recorded by init",
                })
                .to_string()
            })
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        ledger.post_lines(&lines).map_err(|e| LedgerOpenError::Seed(e.to_string()))?;
        Ok(ledger)
    }

    /// Opens an existing ledger: checks the head, loads the materialised state. RocksDB's
    /// automatic compactions, held while the state loads, run from the end of the open on.
    pub fn open(path: &Path, clock: Clock) -> Result<Ledger, LedgerOpenError> {
        let ledger = Ledger::open_holding_compactions(path, clock)?;
        // A refused option leaves the level-0 tables unmerged, not the ledger unusable; the
        // first write tries again.
        let _ = ledger.store.resume_compactions();
        Ok(ledger)
    }

    /// Opens a ledger for one command of a process that ends when it is closed: as
    /// [`Ledger::open`], with [`Ledger::exit_after_close`], and RocksDB's automatic compactions
    /// held unless the command writes (a read-only command would only start them to abandon
    /// them at its close, having taken a core from it; the next writer runs them).
    pub fn open_for_one_command(path: &Path, clock: Clock) -> Result<Ledger, LedgerOpenError> {
        let ledger = Ledger::open_holding_compactions(path, clock)?;
        ledger.exit_after_close();
        Ok(ledger)
    }

    /// [`Ledger::open`], leaving the automatic compactions held ([`Store::open`]) until the
    /// first write.
    fn open_holding_compactions(path: &Path, clock: Clock) -> Result<Ledger, LedgerOpenError> {
        let started = Instant::now();
        let store = Store::open(path)?;
        let store_opened = started.elapsed();
        let format = store.meta(META_STATE_FORMAT)?;
        if let Some(newer) = newer_state_format(&format) {
            return Err(LedgerOpenError::NewerStateFormat(newer));
        }
        let current = state_format_is(&format, STATE_FORMAT);
        // The stored records are those of the checkpoint; the entries after it are replayed.
        let (checkpoint, counts) = derived::store_checkpoint(&store, current)?;
        derived::check_checkpoint(checkpoint, store.head().seq)?;
        derived::check_index_until(store.index_until()?, store.head().seq)?;
        let marked = current
            || state_format_is(&format, STATE_FORMAT_DERIVED_BALANCES)
            || state_format_is(&format, STATE_FORMAT_PAGES)
            || state_format_is(&format, STATE_FORMAT_PER_MONTH);
        // The records of the earlier formats (format 2's one per premium month and one per
        // member account and year, formats 2 and 3's member accounts' balances) are read only
        // from a ledger not marked with this format, and rewritten at once.
        // Two scanning threads, split where the member-year pages begin: the members (and
        // the rest before the pages) and then the balances (the fund's own, a few) on one, the
        // pages and the rest after them on the other.
        use junbao_ledger::state::PAGES_FROM;
        use load::Kind;
        let loaded = load::load_state(
            vec![
                vec![
                    (
                        Kind::State,
                        Box::new(|f| store.state_range_for_each(None, Some(PAGES_FROM), f)),
                    ),
                    (Kind::Balances, Box::new(|f| store.balances_for_each(f))),
                ],
                vec![(
                    Kind::State,
                    Box::new(|f| store.state_range_for_each(Some(PAGES_FROM), None, f)),
                )],
            ],
            !current,
            // An earlier format counted the member accounts' balances too, which this one does
            // not keep apart: no map is sized by that count.
            counts.map(|[members, books, balances]| {
                [members, books, if current { balances } else { 0 }]
            }),
            // Old years let go of as they load, unless the state is rewritten whole below.
            current.then_some(RESIDENT_YEARS),
        );
        let state = match loaded {
            Ok(state) => {
                // Written in this format once, in one synced write that keeps the checkpoint:
                // the records were those of the checkpoint and still are.
                if !current {
                    rewrite_state(&store, &state, checkpoint)?;
                } else if checkpoint == 0 && state != LedgerState::default() {
                    // A state with no checkpoint record naming what it is as of: replayed onto
                    // from the first entry, it would count every entry twice.
                    return Err(LedgerOpenError::Read(ReadError::Corrupt(
                        "the stored state has records but no checkpoint record".into(),
                    )));
                } else if store.state_record(junbao_ledger::state::FORMAT_FENCE_KEY)?.is_none() {
                    // Marked with this format by a build before the record existed. Only a
                    // guard against earlier versions: a failed write (a full disk) does not
                    // stop the open, and the next open tries again.
                    if let Err(e) = mark_state_format(&store) {
                        tracing::warn!(error = %e, "the state format's fence record is missing");
                    }
                }
                state
            }
            Err(load::LoadError::Read(e)) => return Err(e.into()),
            // A state record this version does not decode, in a ledger whose records were
            // written before the state format was marked (issue 11 changed the member record):
            // the state is derived from the journal, so it is rebuilt from the journal
            // (docs/FORMAT.md §4). In a ledger marked with a format, a record that does not
            // decode is corrupt: an integrity failure, never silently rewritten.
            Err(load::LoadError::State(e @ StateLoadError::Value { .. })) if marked => {
                return Err(e.into());
            }
            Err(load::LoadError::State(StateLoadError::Value { .. })) => {
                // Rebuilt up to the checkpoint, as the records it replaces were: the index and
                // balance records are those of the checkpoint, and the entries after it are
                // replayed below as after any checkpoint (a checkpoint moved to the head would
                // leave the tail's idempotency records unwritten).
                let state = rebuild_state(&store, checkpoint)?;
                rewrite_state(&store, &state, checkpoint)?;
                state
            }
            Err(load::LoadError::State(e)) => return Err(e.into()),
        };
        let mut writer =
            Writer::new(state, derived::Pending::at(checkpoint), BalanceBound::UNKNOWN);
        let state_loaded = started.elapsed();
        derived::replay_tail(&store, &mut writer)?;
        if current {
            derived::evict_faulted(&mut writer);
        } else {
            // Loaded whole for its conversion, and stored as it is now (but the tail).
            derived::evict_stored(&mut writer);
        }
        let head_after_replay = store.head().seq;
        let open_timings = OpenTimings {
            store: store_opened,
            state: state_loaded - store_opened,
            replay: started.elapsed() - state_loaded,
            replayed_entries: head_after_replay - checkpoint,
            members: writer.state.members.len(),
        };
        // Counts and times only: nothing about any member (Art. 43).
        tracing::info!(
            store_ms = open_timings.store.as_millis() as u64,
            state_ms = open_timings.state.as_millis() as u64,
            replay_ms = open_timings.replay.as_millis() as u64,
            replayed_entries = open_timings.replayed_entries,
            members = open_timings.members,
            head = head_after_replay,
            "opened the ledger"
        );
        Ok(Ledger::with_defaults(store, writer, clock, head_after_replay, open_timings))
    }

    /// How long the open took, by phase (zero for a mirror's new ledger, which is made, not
    /// opened).
    pub fn open_timings(&self) -> OpenTimings {
        self.open_timings
    }

    /// The store, for this crate only: the front ends go through the ledger's own methods.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Closes the ledger as a crash would leave it: without the checkpoint of closing, so
    /// that the next open replays every entry after the last checkpoint. Crash tests only.
    #[cfg(feature = "testing")]
    pub fn close_without_checkpoint(self) {
        self.checkpoint_on_close.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// Says that the process exits once this ledger is closed (a command line's one command):
    /// closing then still writes its checkpoint and closes the store, but leaves the state in
    /// memory (a million members' maps and vectors) to the end of the process instead of
    /// freeing it piece by piece. Not for a process that goes on.
    pub fn exit_after_close(&self) {
        self.exit_after_close.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets how many entries after a checkpoint a post writes the next one (at least 1), or a
    /// quarter of that (if at least 1) when nearly every entry since concerns a member of its
    /// own (`derived::writes_would_not_merge`).
    pub fn set_checkpoint_interval(&self, entries: u64) {
        self.checkpoint_every.store(entries.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets how long the oldest entry after the checkpoint may wait before a post cuts the
    /// next one, however few entries came since ([`CHECKPOINT_SECONDS`] unless set).
    pub fn set_checkpoint_age(&self, age: std::time::Duration) {
        let ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
        self.checkpoint_after_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets how many of each member's latest years stay in memory (at least 1; `None`: all,
    /// reading back every year out of memory now). Older years are let go of at the next
    /// checkpoints, once their pages are stored.
    pub fn set_resident_years(&self, years: Option<u16>) -> Result<(), ReadError> {
        let mut w = self.writer();
        w.resident_years = years.map(|y| y.max(1));
        if years.is_none() {
            derived::fault_in_all(&self.store, &mut w)?;
        }
        Ok(())
    }

    /// Lets go now of every year out of the resident ones whose page is stored as it is
    /// (tests: a ledger with as much out of memory as can be).
    #[cfg(feature = "testing")]
    pub fn evict_stored_now(&self) -> Result<usize, WriteError> {
        let mut w = self.writer();
        self.checkpoint_locked(&mut w)?;
        Ok(derived::evict_stored(&mut w))
    }

    /// The bytes the members' books take on the heap (`MemberBook::heap_bytes`), and how many
    /// books there are.
    pub fn book_heap_bytes(&self) -> (usize, usize) {
        let w = self.writer();
        (w.state.books.values().map(|b| b.heap_bytes()).sum(), w.state.books.len())
    }

    /// How many members' books have years out of memory (counted over every book, and held
    /// against the count the state keeps, which decides whether a post guards its events).
    pub fn books_with_cold_years(&self) -> usize {
        let w = self.writer();
        let counted = w.state.books.values().filter(|b| b.cold_through().is_some()).count();
        assert_eq!(counted, w.state.cold_books(), "the state's count of books with cold years");
        counted
    }

    /// The entry the stored derived records cover (the last checkpoint).
    pub fn checkpoint_seq(&self) -> u64 {
        self.writer().pending.checkpoint
    }

    /// Whether the writer lock is free now, not held by this thread or another (tests: what
    /// runs without holding it).
    #[cfg(feature = "testing")]
    pub fn writer_is_free(&self) -> bool {
        self.writer.try_lock().is_ok()
    }

    /// The store with its test hooks (fault injection, tampering): crash and tamper tests
    /// only.
    #[cfg(feature = "testing")]
    pub fn store_for_tests(&self) -> &Store {
        &self.store
    }

    /// An earlier write or sync failed: the ledger refuses writes until it is reopened.
    pub fn is_poisoned(&self) -> bool {
        self.store.is_poisoned()
    }

    /// The last head known to be on disk: every entry up to it survives a crash.
    pub fn durable_head(&self) -> Head {
        self.store.durable_head()
    }

    /// Bytes the ledger takes on disk (table files and memtables).
    pub fn size_on_disk(&self) -> u64 {
        self.store.size_on_disk()
    }

    /// Flushes memtables and compacts, so that size figures reflect table files (the
    /// benchmark).
    pub fn compact(&self) -> Result<(), ReadError> {
        self.store.compact()
    }

    pub fn head(&self) -> Head {
        self.store.head()
    }

    /// Records an integrity failure met while serving (the first one is kept): the ledger is
    /// degraded until it is verified and reopened.
    pub fn note_integrity_failure(&self, what: &str) {
        let mut f = self.integrity_failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(what.to_string());
        }
    }

    /// The first integrity failure met since the ledger was opened, if any.
    pub fn integrity_failure(&self) -> Option<String> {
        self.integrity_failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().expect("the writer lock is never held across a panic")
    }

    pub(crate) fn now_us(&self) -> i64 {
        (self.clock)()
    }

    /// Runs `f` on the current state and head, holding the writer lock (no post can interleave).
    pub fn with_state<T>(&self, f: impl FnOnce(&LedgerState, Head) -> T) -> T {
        let w = self.writer();
        f(&w.state, self.store.head())
    }

    /// [`Ledger::with_state`] in two steps, with the premium months out of memory of the
    /// members `of` selects: `take` runs on the current state and head under the writer lock
    /// (no post can interleave) and keeps what it needs; then, with the lock released, those
    /// members' years out of memory are read from their stored pages, as of a snapshot taken
    /// under the lock, and checked against what their books let go of (those pages do not
    /// change while the years are out of memory, and a later change is not in the snapshot);
    /// `finish` gets what `take` kept and those months (with [`LedgerState::periods`], every
    /// month of those members). Posts do not wait while a large unit's pages are read.
    pub fn with_state_and_cold_months<U, T>(
        &self,
        of: impl Fn(&LedgerState, &junbao_ledger::ids::MemberId) -> bool,
        take: impl FnOnce(&LedgerState, Head) -> U,
        finish: impl FnOnce(U, Vec<(junbao_ledger::ids::MemberId, junbao_ledger::state::Month)>) -> T,
    ) -> Result<T, ReadError> {
        let (taken, books, snapshot) = {
            let w = self.writer();
            // Copies of the books with years out of memory (their years in memory, and what
            // the others were), to read those years back into.
            let books: Vec<_> = w
                .state
                .books
                .iter()
                .filter_map(|(member, book)| Some((member, book.cold_through()?, book)))
                .filter(|(member, ..)| of(&w.state, member))
                .map(|(member, through, book)| (member.clone(), through, book.clone()))
                .collect();
            (take(&w.state, self.store.head()), books, self.store.snapshot())
        };
        let mut cold = Vec::new();
        for (member, through, mut book) in books {
            let pages = derived::Pages::Snapshot(&snapshot);
            derived::read_back_with(pages, &member, through, |pages| book.fault_in(pages))?;
            let months = book.months().iter().take_while(|m| m.period.year <= through);
            cold.extend(months.map(|m| (member.clone(), *m)));
        }
        Ok(finish(taken, cold))
    }

    /// Decoded entries from `from`, at most `limit`.
    pub fn journal(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(StoredEntry, Entry)>, ReadJournalError> {
        journal_in(&self.store, from, limit)
    }

    /// Every entry from `from` on, decoded, in order: the one way through the journal. It reads
    /// [`JOURNAL_CHUNK_ENTRIES`] at a time (a long scan does not hold a RocksDB iterator), so it
    /// sees entries appended while it runs; stop it with `take_while` on the sequence number
    /// for a fixed end. After an error it ends.
    pub fn entries_from(&self, from: u64) -> JournalEntries<'_> {
        JournalEntries::of(&self.store, from)
    }

    /// Trial balance per fund and the balance of every account, sorted by account name.
    pub fn balances(&self, fund: Option<Fund>, member: Option<&str>) -> BalanceSheet {
        self.with_state(|state, head| BalanceSheet::of(state, head.seq, fund, member))
    }
}

/// Entries [`Ledger::entries_from`] reads at a time.
pub const JOURNAL_CHUNK_ENTRIES: usize = 65_536;

/// Up to `limit` entries of `store` from `from` on, decoded ([`Ledger::journal`]).
pub(crate) fn journal_in(
    store: &Store,
    from: u64,
    limit: usize,
) -> Result<Vec<(StoredEntry, Entry)>, ReadJournalError> {
    store
        .entries(from.max(1), limit)
        .map(|r| {
            let stored = r?;
            let entry = Entry::from_canonical_bytes(&stored.bytes)
                .map_err(|source| ReadJournalError::Decode { seq: stored.seq, source })?;
            Ok((stored, entry))
        })
        .collect()
}

/// The journal from a sequence number on: see [`Ledger::entries_from`].
pub struct JournalEntries<'a> {
    store: &'a Store,
    next: u64,
    chunk: std::vec::IntoIter<(StoredEntry, Entry)>,
    done: bool,
}

impl<'a> JournalEntries<'a> {
    pub(crate) fn of(store: &'a Store, from: u64) -> JournalEntries<'a> {
        JournalEntries { store, next: from.max(1), chunk: Vec::new().into_iter(), done: false }
    }
}

impl std::fmt::Debug for JournalEntries<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalEntries").field("next", &self.next).finish_non_exhaustive()
    }
}

impl Iterator for JournalEntries<'_> {
    type Item = Result<(StoredEntry, Entry), ReadJournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.chunk.next() {
                self.next = item.0.seq + 1;
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            match journal_in(self.store, self.next, JOURNAL_CHUNK_ENTRIES) {
                Ok(chunk) if chunk.is_empty() => self.done = true,
                Ok(chunk) => self.chunk = chunk.into_iter(),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Most entries one journal page returns.
pub const JOURNAL_PAGE_ENTRIES_MAX: usize = 10_000;

impl Ledger {
    /// A page of the journal as `journal --json` prints it: `{"entries": [...], "next": SEQ}`;
    /// every entry carries `bytes`, the hex of its canonical bytes.
    pub fn journal_page(&self, from: u64, limit: usize) -> Result<JournalPage, ReadJournalError> {
        let entries = self.journal(from, limit.min(JOURNAL_PAGE_ENTRIES_MAX))?;
        // With each entry's canonical bytes, as the export has them: what a mirror copies.
        Ok(JournalPage::new(entries.iter().map(|(s, e)| export_line(s, e)).collect()))
    }
}

/// An entry in the journal's JSON form: sequence, chain hash, the decoded event and postings.
pub fn entry_json(stored: &StoredEntry, entry: &Entry) -> JournalEntry {
    JournalEntry::of(stored.seq, stored.chain_hash, entry, None)
}

/// Key of the member index: `0x00`, the member id, `0x00`, the sequence number (u64 BE).
/// Event ids are printable ASCII, so index keys never collide with idempotency records.
pub(crate) fn member_index_key(member: &junbao_ledger::ids::MemberId, seq: u64) -> Vec<u8> {
    let mut k = member_index_prefix(member);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn member_index_prefix(member: &junbao_ledger::ids::MemberId) -> Vec<u8> {
    let mut k = vec![0u8];
    k.extend_from_slice(member.as_str().as_bytes());
    k.push(0);
    k
}

impl Drop for Ledger {
    /// Closing writes a checkpoint, so that the next open replays nothing. It is not needed
    /// for safety (the journal holds every entry): a failure is left to the next open. Not
    /// when nothing was posted since the ledger was opened: the entries after the checkpoint
    /// were then only replayed, and writing their records now costs more than replaying them
    /// again does; the next close after a post writes them.
    fn drop(&mut self) {
        let checkpoint = self.store.head().seq != self.opened_head
            && !self.store.is_poisoned()
            && self.checkpoint_on_close.load(std::sync::atomic::Ordering::Relaxed);
        if checkpoint && let Ok(mut w) = self.writer.lock() {
            let _ = self.checkpoint_locked(&mut w);
        }
        // The checkpoint thread finishes what it was given (a crash test's too: a crash could
        // come after it as well as before) before the store closes.
        self.checkpointer.stop();
        if self.exit_after_close.load(std::sync::atomic::Ordering::Relaxed)
            && let Ok(mut w) = self.writer.lock()
        {
            // Safe: forgetting frees nothing and runs no destructor; the memory goes back
            // with the process, which ends now.
            std::mem::forget(std::mem::take(&mut w.state));
            std::mem::forget(std::mem::take(&mut w.pending));
        }
    }
}

/// The state implied by the journal's entries `1..=until`, replayed entry by entry.
fn rebuild_state(store: &Store, until: u64) -> Result<LedgerState, LedgerOpenError> {
    let mut entries = Vec::new();
    let count = usize::try_from(until).unwrap_or(usize::MAX);
    for stored in store.entries(1, count) {
        let stored = stored?;
        let entry = Entry::from_canonical_bytes(&stored.bytes)
            .map_err(|source| LedgerOpenError::Journal { seq: stored.seq, source })?;
        entries.push(entry);
    }
    Ok(LedgerState::replay(&entries))
}

/// Replaces every state record and balance with those of `state` in this state format (the
/// fund's own balances among the state records, the `balances` column family emptied), in one
/// synced write that appends no entry and keeps the head and the checkpoint (`checkpoint`, as
/// the state's own checkpoint record from then on); then settles the
/// rewrite into table files (`Store::settle_rewritten_state`: measured at a million members,
/// the open after a conversion otherwise took 10 s, replaying the rewrite from the log).
fn rewrite_state(
    store: &Store,
    state: &LedgerState,
    checkpoint: u64,
) -> Result<(), LedgerOpenError> {
    let meta = vec![(META_STATE_FORMAT.to_vec(), STATE_FORMAT.to_be_bytes().to_vec())];
    let mut records = state.all_state_writes();
    records.push(derived::checkpoint_record(checkpoint, &derived::state_counts(state)));
    store
        .append(junbao_storage::Append {
            state: records,
            clear_state: true,
            meta,
            head: store.head(),
            ..Default::default()
        })
        .map_err(|e| LedgerOpenError::Seed(format!("rewriting the state records: {e}")))?;
    // The rewrite is durable already: a failure here only leaves it in the log, replayed at
    // opens until the memtables flush in the ordinary way (and a store that cannot write
    // refuses the next write on its own), so the open goes on.
    if let Err(e) = store.settle_rewritten_state() {
        tracing::warn!(error = %e, "the rewritten state stays in the write-ahead log");
    }
    Ok(())
}

/// The metadata key naming the encoding of the stored state records (docs/FORMAT.md §4).
pub const META_STATE_FORMAT: &[u8] = b"state-format";

/// The encoding of the state records this version writes: 5 since the fund's own balances and
/// the checkpoint record are `state` records, so that a checkpoint's state is one table file
/// ingested whole (4: a member account's balance is the sum of its yearly sums in the
/// member-year pages and is no longer stored apart; 3: the member-year pages; 2: one record
/// per premium month and per member account and year, since issue 11's member record).
pub const STATE_FORMAT: u32 = 5;

/// The state format with the fund's own balances in the `balances` column family and the
/// checkpoint in the metadata, still read (and converted at open).
pub const STATE_FORMAT_DERIVED_BALANCES: u32 = 4;

/// The state format of the member-year pages with the member accounts' balances stored apart,
/// still read (and converted at open).
pub const STATE_FORMAT_PAGES: u32 = 3;

/// The state format before the member-year pages, still read (and converted at open).
pub const STATE_FORMAT_PER_MONTH: u32 = 2;

/// The version a [`META_STATE_FORMAT`] record names, if it is later than [`STATE_FORMAT`]: a
/// ledger a newer junbao wrote, whose records this version would misread.
fn newer_state_format(record: &Option<Vec<u8>>) -> Option<u32> {
    let bytes: [u8; 4] = record.as_deref()?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes)).filter(|v| *v > STATE_FORMAT)
}

/// Whether a [`META_STATE_FORMAT`] record names `version`.
pub(crate) fn state_format_is(record: &Option<Vec<u8>>, version: u32) -> bool {
    record.as_deref() == Some(&version.to_be_bytes()[..])
}

/// Whether the store's state records are marked as in [`STATE_FORMAT`].
pub(crate) fn state_format_is_current(store: &Store) -> Result<bool, ReadError> {
    Ok(state_format_is(&store.meta(META_STATE_FORMAT)?, STATE_FORMAT))
}

/// Records that the state records are in [`STATE_FORMAT`], with the record that keeps earlier
/// versions from opening the ledger (one synced write, no entry).
pub(crate) fn mark_state_format(store: &Store) -> Result<(), LedgerOpenError> {
    store
        .append(junbao_storage::Append {
            state: vec![junbao_ledger::state::format_fence_write()],
            meta: vec![(META_STATE_FORMAT.to_vec(), STATE_FORMAT.to_be_bytes().to_vec())],
            head: store.head(),
            ..Default::default()
        })
        .map_err(|e| LedgerOpenError::Seed(format!("marking the state format: {e}")))
}
