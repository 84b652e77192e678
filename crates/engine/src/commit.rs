//! Group commit: concurrent posts gathered into one synced write.
//!
//! A synced RocksDB write costs a fraction of a millisecond whatever it carries, so a writer
//! that syncs once per request caps the ledger at a few thousand requests a second. The
//! [`GroupCommitter`] runs one writer thread. Requests queue while it writes; when the write is
//! durable it takes everything queued (up to [`GROUP_EVENTS_MAX`] events) as the next group and
//! posts it with [`Ledger::post_group`]: one batch, one chain extension, one synced write. A
//! request is answered only after the write that carries it is on disk.
//!
//! Architecture invariant: the committer's thread is the only caller of `post_group` in a
//! server, and `post_group` holds the writer lock, so one writer owns the chain head.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::Ledger;
use crate::post::{BATCH_EVENTS_MAX, PostError, PostRequest, PostSummary};

/// Most events one group carries: the storage layer's bound on one write.
pub const GROUP_EVENTS_MAX: usize = BATCH_EVENTS_MAX;

/// Most requests waiting for the writer; past it, [`GroupCommitter::submit`] says busy.
pub const QUEUE_REQUESTS_MAX: usize = 16_384;

/// Where the answer to a request goes (called on the writer thread; must not block).
pub type Reply = Box<dyn FnOnce(Result<PostSummary, PostError>) + Send>;

struct Job {
    request: PostRequest,
    reply: Reply,
}

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    #[error("the writer has {QUEUE_REQUESTS_MAX} requests waiting; retry shortly")]
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
    /// Microseconds the writer spent posting groups (rules, hashing, tree, synced write).
    pub busy_us: AtomicU64,
    /// Of `busy_us`: microseconds in the synced write itself.
    pub write_us: AtomicU64,
}

/// The writer thread and its queue.
pub struct GroupCommitter {
    sender: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<CommitStats>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitter").field("stats", &self.stats).finish()
    }
}

impl GroupCommitter {
    /// Starts the writer thread for `ledger`.
    pub fn start(ledger: Arc<Ledger>) -> GroupCommitter {
        let (sender, receiver) = sync_channel::<Job>(QUEUE_REQUESTS_MAX);
        let stats = Arc::new(CommitStats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("junbao-writer".into())
            .spawn(move || write_loop(&ledger, &receiver, &thread_stats))
            .expect("spawning the writer thread");
        GroupCommitter { sender: Mutex::new(Some(sender)), thread: Mutex::new(Some(thread)), stats }
    }

    /// Queues a request; `reply` is called once its group is durable (or refused).
    pub fn submit(&self, request: PostRequest, reply: Reply) -> Result<(), SubmitError> {
        let guard = self.sender.lock().expect("the sender lock is never held across a panic");
        let Some(sender) = guard.as_ref() else { return Err(SubmitError::Closed) };
        match sender.try_send(Job { request, reply }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(SubmitError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Closed),
        }
    }

    /// True while the writer thread runs.
    pub fn is_running(&self) -> bool {
        self.thread
            .lock()
            .expect("the thread lock is never held across a panic")
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    pub fn stats(&self) -> &CommitStats {
        &self.stats
    }

    /// Stops taking requests, lets the writer post and answer every request already queued,
    /// and waits for it to finish.
    pub fn shutdown(&self) {
        drop(self.sender.lock().expect("the sender lock is never held across a panic").take());
        let thread =
            self.thread.lock().expect("the thread lock is never held across a panic").take();
        if let Some(t) = thread {
            // A panic on the writer thread has already been reported by the panic hook.
            let _ = t.join();
        }
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_loop(ledger: &Ledger, receiver: &Receiver<Job>, stats: &CommitStats) {
    // A job that did not fit in the previous group starts the next one.
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match receiver.recv() {
                Ok(job) => job,
                Err(_) => return, // every sender is gone and the queue is empty
            },
        };
        let mut events = first.request.events.len();
        let mut jobs = vec![first];
        while events < GROUP_EVENTS_MAX {
            match receiver.try_recv() {
                Ok(job) if events + job.request.events.len() > GROUP_EVENTS_MAX => {
                    carried = Some(job);
                    break;
                }
                Ok(job) => {
                    events += job.request.events.len();
                    jobs.push(job);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let (requests, replies): (Vec<_>, Vec<_>) =
            jobs.into_iter().map(|j| (j.request, j.reply)).unzip();
        let started = std::time::Instant::now();
        let answers = ledger.post_group(requests);
        stats.busy_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        if let Some(t) = answers.iter().find_map(|a| a.as_ref().ok()).map(|s| s.timings) {
            stats.write_us.fetch_add(t.write.as_micros() as u64, Ordering::Relaxed);
        }
        let stored: usize =
            answers.iter().filter_map(|a| a.as_ref().ok()).map(|s| s.accepted).sum();
        if stored > 0 {
            stats.groups.fetch_add(1, Ordering::Relaxed);
            stats.entries.fetch_add(stored as u64, Ordering::Relaxed);
        }
        stats.requests.fetch_add(answers.len() as u64, Ordering::Relaxed);
        for (answer, reply) in answers.into_iter().zip(replies) {
            reply(answer);
        }
    }
}
