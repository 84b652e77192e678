//! Group commit: concurrent posts gathered into one write, and writes gathered into one sync.
//!
//! A synced RocksDB write costs a fraction of a millisecond or more whatever it carries, so a
//! writer that syncs once per request caps the ledger at a few thousand requests a second. The
//! [`GroupCommitter`] runs two threads (or one: see below):
//!
//! - the *sequencer* takes everything queued (up to [`GROUP_EVENTS_MAX`] events) as a group and
//!   posts it with [`Ledger::post_group_deferred`]: the law's rules, one chain extension, one
//!   RocksDB write batch, not synced; then it goes on with the next group at once;
//! - the *syncer* takes the groups written meanwhile, syncs the write-ahead log once for all of
//!   them ([`Ledger::sync`]), and only then answers their requests.
//!
//! So one group's sync overlaps the next group's work, and a request is answered only once the
//! write that carries it is on disk. If a sync fails, the store is poisoned and every request
//! not yet answered gets the error: nothing unsynced is ever acknowledged. Reads that must not
//! show what could still be lost wait for [`GroupCommitter::wait_durable`].
//!
//! The sequencer's step can instead run on the caller's thread ([`Sequencing::Caller`]): a
//! server on one thread (a `current_thread` runtime) takes each group itself
//! ([`GroupCommitter::sequence_queued`]), so a request reaches the rules without a hop to
//! another thread, and only the syncer has a thread of its own.
//!
//! Architecture invariant: the sequencer is the only caller of `post_group_deferred` in a
//! server, and posting holds the writer lock, so one writer owns the chain head.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{
    Receiver, Sender, SyncSender, TryRecvError, TrySendError, channel, sync_channel,
};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Ledger;
use crate::post::{BATCH_EVENTS_MAX, PostError, PostRequest, PostSummary};

/// Most events one group carries: the storage layer's bound on one write.
pub const GROUP_EVENTS_MAX: usize = BATCH_EVENTS_MAX;

/// Most requests waiting for the writer; past it, [`GroupCommitter::submit`] says busy.
pub const QUEUE_REQUESTS_MAX: usize = 16_384;

/// Most events waiting for the writer, over all queued requests: two full groups. Each event is
/// parsed from at most `LINE_BYTES_MAX` (16 KiB) of JSON, so this bounds the queue's memory
/// where the count of requests alone (each up to `BATCH_EVENTS_MAX` events) would not. Past
/// it, [`GroupCommitter::submit`] says busy. A single request never exceeds it on its own.
pub const QUEUE_EVENTS_MAX: usize = 2 * GROUP_EVENTS_MAX;
const _: () = assert!(BATCH_EVENTS_MAX <= QUEUE_EVENTS_MAX, "one request fits an empty queue");

/// Where the answer to a request goes (called on the syncer's thread; must not block).
pub type Reply = Box<dyn FnOnce(Result<PostSummary, PostError>) + Send>;

struct Job {
    request: PostRequest,
    reply: Reply,
}

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    #[error(
        "the writer's queue is full ({QUEUE_REQUESTS_MAX} requests or {QUEUE_EVENTS_MAX} events \
         waiting); retry shortly"
    )]
    Busy,
    #[error("the ledger is shutting down")]
    Closed,
}

/// Counters of the writer, for the health endpoint and the load test.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Synced writes made (groups that stored something).
    pub groups: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Entries stored.
    pub entries: AtomicU64,
    /// Microseconds the sequencer spent posting groups (rules, hashing, tree, write).
    pub busy_us: AtomicU64,
    /// Of `busy_us`: microseconds in the (unsynced) RocksDB writes.
    pub write_us: AtomicU64,
    /// Syncs of the write-ahead log made by the syncer, and the microseconds they took.
    pub syncs: AtomicU64,
    pub sync_us: AtomicU64,
}

/// Wakes readers waiting for the durable head to advance.
#[derive(Debug, Default)]
struct DurableSignal {
    lock: Mutex<()>,
    advanced: Condvar,
}

/// Who runs the sequencer's step: posting each group (rules, sealing, the unsynced write) and
/// handing it to the syncer.
pub enum Sequencing {
    /// A thread of its own, `junbao-sequencer` (the default).
    Thread,
    /// The caller: `wake` is called on the submitting thread each time a request is queued, and
    /// the caller then calls [`GroupCommitter::sequence_queued`] until it says the queue is
    /// empty. One call posts one group, so a caller serving other work between the calls (an
    /// async runtime on one thread) keeps serving while posts come in.
    Caller(Box<dyn Fn() + Send + Sync>),
}

impl std::fmt::Debug for Sequencing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sequencing::Thread => "Thread",
            Sequencing::Caller(_) => "Caller",
        })
    }
}

/// The sequencer's step when the caller runs it ([`Sequencing::Caller`]).
struct CallerSequencer {
    /// What the step works with, one caller at a time; `None` once the shutdown has posted what
    /// was queued, the syncer is gone, or posting panicked: then the queue's end is dropped (a
    /// submit says closed) and so is the syncer's (it syncs, answers what it has and ends).
    step: Mutex<Option<Step>>,
    wake: Box<dyn Fn() + Send + Sync>,
}

/// What one call of the caller's step did.
enum StepOutcome {
    Posted,
    /// Nothing queued, or nothing more taken (shut down, the syncer gone).
    Idle,
    Panicked(Box<dyn std::any::Any + Send>),
}

struct Step {
    queue: Queue,
    /// A job that did not fit in the previous group starts the next one.
    carried: Option<Job>,
    written: Sender<Written>,
}

/// A group the sequencer wrote, waiting for the sync.
struct Written {
    answers: Vec<Result<PostSummary, PostError>>,
    replies: Vec<Reply>,
}

/// The writer's threads and their queue.
pub struct GroupCommitter {
    ledger: Arc<Ledger>,
    sender: Mutex<Option<SyncSender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stats: Arc<CommitStats>,
    durable: Arc<DurableSignal>,
    /// Events in the queue, not yet taken by the sequencer.
    queued_events: Arc<AtomicUsize>,
    /// Set once the queue's end is dropped (the sequencer stopped): a submit then says closed,
    /// whatever the count of events the dropped requests left behind.
    stopped: Arc<AtomicBool>,
    /// Set when the caller runs the sequencer's step ([`Sequencing::Caller`]).
    caller: Option<CallerSequencer>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitter").field("stats", &self.stats).finish()
    }
}

impl GroupCommitter {
    /// Starts the sequencer and syncer threads for `ledger`.
    pub fn start(ledger: Arc<Ledger>) -> GroupCommitter {
        GroupCommitter::start_with(ledger, Sequencing::Thread)
    }

    /// Starts the syncer thread for `ledger`, and the sequencer's thread unless the caller runs
    /// its step (`sequencing`).
    pub fn start_with(ledger: Arc<Ledger>, sequencing: Sequencing) -> GroupCommitter {
        let (sender, receiver) = sync_channel::<Job>(QUEUE_REQUESTS_MAX);
        let (written_tx, written_rx) = channel::<Written>();
        let stats = Arc::new(CommitStats::default());
        let durable = Arc::new(DurableSignal::default());
        let queued_events = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let queue =
            Queue { receiver, events: Arc::clone(&queued_events), stopped: Arc::clone(&stopped) };
        let mut threads = Vec::new();
        let caller = match sequencing {
            Sequencing::Thread => {
                let (ledger, stats) = (Arc::clone(&ledger), Arc::clone(&stats));
                threads.push(
                    std::thread::Builder::new()
                        .name("junbao-sequencer".into())
                        .spawn(move || sequence_loop(&ledger, &queue, &written_tx, &stats))
                        .expect("spawning the sequencer thread"),
                );
                None
            }
            Sequencing::Caller(wake) => Some(CallerSequencer {
                step: Mutex::new(Some(Step { queue, carried: None, written: written_tx })),
                wake,
            }),
        };
        let syncer = {
            let (ledger, stats, durable) =
                (Arc::clone(&ledger), Arc::clone(&stats), Arc::clone(&durable));
            std::thread::Builder::new()
                .name("junbao-syncer".into())
                .spawn(move || sync_loop(&ledger, &written_rx, &stats, &durable))
                .expect("spawning the syncer thread")
        };
        threads.push(syncer);
        GroupCommitter {
            ledger,
            sender: Mutex::new(Some(sender)),
            threads: Mutex::new(threads),
            stats,
            durable,
            queued_events,
            stopped,
            caller,
        }
    }

    /// Posts one group of the queued requests and hands it to the syncer, on the caller's
    /// thread ([`Sequencing::Caller`]); `false` when nothing was queued, after the shutdown,
    /// once the syncer is gone, and always for a committer with its own sequencer thread. Call
    /// it after each wake until it says `false`: a request queued while it ran has woken the
    /// caller again.
    pub fn sequence_queued(&self) -> bool {
        match self.sequence_step() {
            StepOutcome::Posted => true,
            StepOutcome::Idle => false,
            StepOutcome::Panicked(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// [`GroupCommitter::sequence_queued`], with a panic while posting returned, not raised.
    fn sequence_step(&self) -> StepOutcome {
        let Some(caller) = &self.caller else { return StepOutcome::Idle };
        let mut step = caller.step.lock().unwrap_or_else(|p| p.into_inner());
        let Some(Step { queue, carried, written }) = step.as_mut() else {
            return StepOutcome::Idle;
        };
        let Some(jobs) = take_group(queue, carried, false) else { return StepOutcome::Idle };
        let posted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            post_and_hand_on(&self.ledger, jobs, written, &self.stats)
        }));
        // The syncer gone (it panicked) or posting panicked here: nothing more is taken, as
        // when the sequencer's own thread ends; the syncer, given nothing more, ends too, so
        // the committer is no longer running (`/health` says so). The group's requests are
        // not answered: their waiters see the writer stopped.
        match posted {
            Ok(true) => StepOutcome::Posted,
            Ok(false) => {
                *step = None;
                StepOutcome::Idle
            }
            Err(panic) => {
                *step = None;
                StepOutcome::Panicked(panic)
            }
        }
    }

    /// Waits until every entry up to `seq` is durable. Fails if the ledger can no longer be
    /// written (a failed write or sync) or the committer has stopped short of `seq`.
    pub fn wait_durable(&self, seq: u64) -> Result<(), junbao_storage::WriteError> {
        let store = self.ledger.store();
        let mut guard = self.durable.lock.lock().expect("never held across a panic");
        loop {
            if store.durable_head().seq >= seq {
                return Ok(());
            }
            if store.is_poisoned() {
                return Err(junbao_storage::WriteError::Poisoned);
            }
            if !self.is_running() {
                // Nothing will sync it; do it here.
                drop(guard);
                return store.sync().map(|_| ());
            }
            // A timeout as well as the signal: a sync may land between the check and the wait.
            guard = self
                .durable
                .advanced
                .wait_timeout(guard, Duration::from_millis(50))
                .expect("never held across a panic")
                .0;
        }
    }

    /// Queues a request; `reply` is called once its group is durable (or refused).
    pub fn submit(&self, request: PostRequest, reply: Reply) -> Result<(), SubmitError> {
        let guard = self.sender.lock().expect("the sender lock is never held across a panic");
        let Some(sender) = guard.as_ref() else { return Err(SubmitError::Closed) };
        if self.stopped.load(Ordering::SeqCst) {
            return Err(SubmitError::Closed);
        }
        // Counted before it is sent, so the sequencer never takes more than was counted; taken
        // back if it does not go in.
        let n = request.events.len();
        let before = self.queued_events.fetch_add(n, Ordering::SeqCst);
        if before > 0 && before + n > QUEUE_EVENTS_MAX {
            self.queued_events.fetch_sub(n, Ordering::SeqCst);
            return Err(SubmitError::Busy);
        }
        let sent = sender.try_send(Job { request, reply });
        if sent.is_err() {
            self.queued_events.fetch_sub(n, Ordering::SeqCst);
        }
        drop(guard);
        match sent {
            Ok(()) => {
                if let Some(caller) = &self.caller {
                    (caller.wake)();
                }
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(SubmitError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Closed),
        }
    }

    /// Events waiting for the writer: queued, or carried over to the next group.
    pub fn queued_events(&self) -> usize {
        self.queued_events.load(Ordering::SeqCst)
    }

    /// True while the committer's threads run (the sequencer's, unless the caller runs its
    /// step, and the syncer's).
    pub fn is_running(&self) -> bool {
        let threads = self.threads.lock().expect("the thread lock is never held across a panic");
        !threads.is_empty() && threads.iter().all(|t| !t.is_finished())
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    /// Stops taking requests, lets the threads post, sync and answer every request already
    /// queued, and waits for them to finish.
    pub fn shutdown(&self) {
        drop(self.sender.lock().expect("the sender lock is never held across a panic").take());
        if let Some(caller) = &self.caller {
            // The caller may not call again: what is queued is posted here, then the syncer,
            // given nothing more, syncs, answers and ends. A panic while posting (reported by
            // the panic hook) ends the posting, not the shutdown: the threads are still joined.
            while matches!(self.sequence_step(), StepOutcome::Posted) {}
            drop(caller.step.lock().unwrap_or_else(|p| p.into_inner()).take());
        }
        let threads: Vec<_> = self
            .threads
            .lock()
            .expect("the thread lock is never held across a panic")
            .drain(..)
            .collect();
        for t in threads {
            // A panic on a writer thread has already been reported by the panic hook.
            let _ = t.join();
        }
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The sequencer's end of the queue: taking a job takes its events off the count.
struct Queue {
    receiver: Receiver<Job>,
    events: Arc<AtomicUsize>,
    /// [`GroupCommitter::stopped`], set when this end is dropped.
    stopped: Arc<AtomicBool>,
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

impl Queue {
    /// `job`, put in a group: its events leave the count of events waiting.
    fn taken(&self, job: Job) -> Job {
        self.events.fetch_sub(job.request.events.len(), Ordering::SeqCst);
        job
    }

    /// The job `carried` over from the last group, else the next queued one (waiting for one
    /// if `wait`).
    fn first(&self, carried: &mut Option<Job>, wait: bool) -> Option<Job> {
        let job = match carried.take() {
            Some(job) => job,
            None if wait => self.receiver.recv().ok()?,
            None => self.receiver.try_recv().ok()?,
        };
        Some(self.taken(job))
    }
}

fn sequence_loop(ledger: &Ledger, queue: &Queue, written: &Sender<Written>, stats: &CommitStats) {
    // A job that did not fit in the previous group starts the next one.
    let mut carried: Option<Job> = None;
    while let Some(jobs) = take_group(queue, &mut carried, true) {
        if !post_and_hand_on(ledger, jobs, written, stats) {
            return; // the syncer is gone (it panicked); nothing more can be acknowledged
        }
    }
    // every sender is gone and the queue is empty
}

/// The next group: the job `carried` over or the first queued (waiting for one if `wait`),
/// then whatever else is queued, up to [`GROUP_EVENTS_MAX`] events; a job that does not fit is
/// carried to the next group, its events still counted as waiting
/// ([`GroupCommitter::queued_events`], which a caller reads to choose where to run the next
/// step). `None` when there is nothing (and, waiting, nothing will come).
fn take_group(queue: &Queue, carried: &mut Option<Job>, wait: bool) -> Option<Vec<Job>> {
    let first = queue.first(carried, wait)?;
    let mut events = first.request.events.len();
    let mut jobs = vec![first];
    while events < GROUP_EVENTS_MAX {
        match queue.receiver.try_recv() {
            // Carried with its events still counted as waiting: they are.
            Ok(job) if events + job.request.events.len() > GROUP_EVENTS_MAX => {
                *carried = Some(job);
                break;
            }
            Ok(job) => {
                let job = queue.taken(job);
                events += job.request.events.len();
                jobs.push(job);
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
    Some(jobs)
}

/// Posts `jobs` as one group, unsynced, and hands the answers to the syncer; `false` if the
/// syncer is gone.
fn post_and_hand_on(
    ledger: &Ledger,
    jobs: Vec<Job>,
    written: &Sender<Written>,
    stats: &CommitStats,
) -> bool {
    let (requests, replies): (Vec<_>, Vec<_>) =
        jobs.into_iter().map(|j| (j.request, j.reply)).unzip();
    let started = Instant::now();
    let answers = ledger.post_group_deferred(requests);
    stats.busy_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    let stored: usize = answers.iter().filter_map(|a| a.as_ref().ok()).map(|s| s.accepted).sum();
    if stored > 0 {
        stats.groups.fetch_add(1, Ordering::Relaxed);
        stats.entries.fetch_add(stored as u64, Ordering::Relaxed);
        if let Some(t) = answers.iter().find_map(|a| a.as_ref().ok()).map(|s| s.timings) {
            stats.write_us.fetch_add(t.write.as_micros() as u64, Ordering::Relaxed);
        }
    }
    written.send(Written { answers, replies }).is_ok()
}

impl Ledger {
    /// Syncs the write-ahead log if something was written since the last sync: one sync for
    /// every post written before the call (each was appended before it was handed over, so the
    /// head covers it). `None` when a sync since (a synced append's) already made them durable.
    pub(crate) fn sync_if_behind(&self) -> Option<Result<(), junbao_storage::WriteError>> {
        (self.durable_head().seq < self.head().seq).then(|| self.sync().map(|_| ()))
    }
}

/// The answer to a post written unsynced, once its sync is known: a stored or replayed post
/// whose sync failed is not on disk, and is not acknowledged.
pub(crate) fn acknowledged(
    synced: &Result<(), junbao_storage::WriteError>,
    answer: Result<PostSummary, PostError>,
) -> Result<PostSummary, PostError> {
    match (synced, answer) {
        (Err(e), Ok(_)) => Err(PostError::Write(e.clone())),
        (_, answer) => answer,
    }
}

fn sync_loop(
    ledger: &Ledger,
    written: &Receiver<Written>,
    stats: &CommitStats,
    durable: &DurableSignal,
) {
    loop {
        let Ok(first) = written.recv() else { return };
        let mut groups = vec![first];
        while let Ok(more) = written.try_recv() {
            groups.push(more);
        }
        let started = Instant::now();
        let synced = match ledger.sync_if_behind() {
            Some(r) => {
                stats.syncs.fetch_add(1, Ordering::Relaxed);
                stats.sync_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                r
            }
            None => Ok(()),
        };
        {
            let _guard = durable.lock.lock().expect("never held across a panic");
            durable.advanced.notify_all();
        }
        for group in groups {
            stats.requests.fetch_add(group.answers.len() as u64, Ordering::Relaxed);
            for (answer, reply) in group.answers.into_iter().zip(group.replies) {
                reply(acknowledged(&synced, answer));
            }
        }
    }
}
