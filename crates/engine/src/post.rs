//! Posting: a batch of events, all or nothing, idempotent by event id.
//!
//! `post_group_with` reads the group's id records, has `check` check each request against one
//! batch, then writes the batch (`write_prepared`) and answers every request.

use std::collections::BTreeSet;

use junbao_ledger::Event;
use junbao_ledger::merkle;

use crate::audit::{StoreNodes, TREE_LEVEL_STORED_MIN, tree_key};
use junbao_ledger::entry::{Hash32, event_fingerprint};
use junbao_ledger::event::{EventError, parse_event_line};
use junbao_storage::{Append, Entries, Head, ReadError, WriteError};
use rayon::prelude::*;
use serde::Serialize;
use std::time::{Duration, Instant};

use crate::{ErrorKind, Ledger, REPORTED_ERRORS_MAX, StoreLookup};

mod check;
mod stream;

use check::{Checked, Group, answer_all, summary_of};

/// Most events one post may carry (one synced write).
pub const BATCH_EVENTS_MAX: usize = junbao_storage::APPEND_ENTRIES_MAX;

/// What a successful post reports (the contract's `post` output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostSummary {
    /// New entries stored.
    pub accepted: usize,
    /// First and last sequence numbers of the new entries; for a batch of replays only, the
    /// original entries' range.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Chain head after the post, hex.
    pub head: String,
    /// Events whose id was already stored with the same content: nothing stored for them.
    pub replayed: usize,
    /// The sequence number of every event, in input order (new or original).
    #[serde(skip)]
    pub seqs: Vec<u64>,
    /// Where the time went, for the benchmark.
    #[serde(skip)]
    pub timings: PostTimings,
}

/// Time spent in each phase of a post.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostTimings {
    /// JSON parsing and field validation.
    pub parse: Duration,
    /// Idempotency look-ups, the rules, canonical bytes and chain hashes.
    pub rules: Duration,
    /// The RocksDB write batch (synced, unless the post was deferred).
    pub write: Duration,
    /// Of `rules`: leaf hashes and Merkle nodes.
    pub tree: Duration,
    /// Of `rules`: the law's checks and postings proper (`Batch::apply`).
    pub apply: Duration,
}

/// Why a line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// The event is malformed or breaks a rule.
    Invalid,
    /// The id was used before with different content.
    Conflict,
    /// The event is outside what the poster may post (HTTP 403).
    Forbidden,
}

/// One refused line: its number (1-based, or the position in an array) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub kind: RejectKind,
    pub error: EventError,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

/// A post that stored nothing.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// Input refused: nothing was stored. Holds the first [`REPORTED_ERRORS_MAX`] errors.
    #[error("{} refused, nothing stored:\n{}", plural(*total, "line"), list(errors))]
    Rejected { errors: Vec<LineError>, total: usize },
    #[error("batch of {0} events exceeds the limit of {BATCH_EVENTS_MAX}; split the file")]
    TooLarge(usize),
    /// A stored record the post needed could not be read: the disk failed
    /// ([`ReadError::Engine`]), or it is not what the ledger wrote ([`ReadError::Corrupt`], an
    /// integrity failure). Nothing stored.
    #[error("the ledger could not read what it stored, nothing stored: {0}")]
    Read(#[from] ReadError),
    #[error("the write failed, nothing stored: {0}")]
    Write(#[from] WriteError),
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn list(errors: &[LineError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

/// A sealed batch's entries as the store appends them: the same buffer, ends and chain hashes,
/// moved, not copied.
pub(crate) fn stored_entries(sealed: junbao_ledger::SealedEntries) -> Entries {
    let (first_seq, bytes, ends, chain_hashes) = sealed.into_parts();
    Entries::from_parts(first_seq, bytes, ends, chain_hashes)
}

impl PostError {
    /// Input refused, integrity failure, or a failure of the disk.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PostError::Rejected { .. } | PostError::TooLarge(_) => ErrorKind::Input,
            PostError::Read(e) => ErrorKind::of_read(e),
            PostError::Write(_) => ErrorKind::Io,
        }
    }

    /// True when some refusal is a matter of permission (HTTP 403).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, PostError::Rejected { errors, .. }
            if errors.iter().any(|e| e.kind == RejectKind::Forbidden))
    }

    /// True when the only refusals are id conflicts (HTTP 409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, PostError::Rejected { errors, .. }
            if !errors.is_empty() && errors.iter().all(|e| e.kind == RejectKind::Conflict))
    }
}

/// An event parsed from its JSON text, with the fingerprint of its content; or why not.
pub type ParsedEvent = Result<(Event, Hash32), EventError>;

/// Whose events a post may carry: a poster is restricted to the units it keeps the books of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostScope {
    /// Any event (the command line, administrators).
    Any,
    /// Only events about members of these units (an enrolment or premium naming one of them, or
    /// any event about a member enrolled in one of them). Fund-level events (appropriation,
    /// interest, standards) are outside every unit.
    Units(std::sync::Arc<BTreeSet<String>>),
}

/// One post: numbered events, all stored or none, within a scope.
#[derive(Debug)]
pub struct PostRequest {
    pub events: Vec<(usize, ParsedEvent)>,
    pub scope: PostScope,
}

/// Parses JSON event texts in parallel: `(position, event)` for each non-blank text, numbered
/// from 1 by position. `progress` hears how many texts are done.
pub fn parse_events(
    texts: &[&str],
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<(usize, ParsedEvent)> {
    // In chunks so that a progress bar moves.
    const CHUNK: usize = 16_384;
    let mut events = Vec::with_capacity(texts.len());
    for (c, chunk) in texts.chunks(CHUNK).enumerate() {
        let parsed: Vec<_> = chunk
            .par_iter()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (c * CHUNK + i + 1, parse_fingerprinted(l)))
            .collect();
        events.extend(parsed);
        progress(c * CHUNK + chunk.len());
    }
    events
}

/// Parses one event's JSON text and fingerprints its content.
pub fn parse_fingerprinted(text: &str) -> ParsedEvent {
    parse_event_line(text).map(|e| {
        let fp = event_fingerprint(&e);
        (e, fp)
    })
}

/// How a group is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Written and synced before the answer.
    Synced,
    /// Written, synced later by the caller (group commit).
    Deferred,
    /// Checked by every rule, never written.
    DryRun,
}

impl Ledger {
    /// Parses and posts JSON lines. Blank lines are skipped but counted for line numbers.
    pub fn post_lines(&self, lines: &[&str]) -> Result<PostSummary, PostError> {
        self.post_lines_with_progress(lines, &|_| {})
    }

    /// [`Ledger::post_lines`], reporting the number of lines parsed as it goes.
    pub fn post_lines_with_progress(
        &self,
        lines: &[&str],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<PostSummary, PostError> {
        if lines.len() > BATCH_EVENTS_MAX {
            return Err(PostError::TooLarge(lines.len()));
        }
        let started = Instant::now();
        let events = parse_events(lines, progress);
        let parse = started.elapsed();
        let mut summary = self.post_one(PostRequest { events, scope: PostScope::Any })?;
        summary.timings.parse = parse;
        Ok(summary)
    }

    /// Posts parsed events (with their line numbers). All are stored, or none.
    pub fn post(
        &self,
        events: Vec<(usize, Result<Event, EventError>)>,
    ) -> Result<PostSummary, PostError> {
        let events = events
            .into_iter()
            .map(|(line, r)| {
                (
                    line,
                    r.map(|e| {
                        let fp = event_fingerprint(&e);
                        (e, fp)
                    }),
                )
            })
            .collect();
        self.post_one(PostRequest { events, scope: PostScope::Any })
    }

    fn post_one(&self, request: PostRequest) -> Result<PostSummary, PostError> {
        self.post_group(vec![request]).pop().expect("one answer per request")
    }

    /// Posts several requests in one synced write (group commit). Each request is all or
    /// nothing on its own: a refused request leaves no trace and does not affect the others.
    /// Requests are applied in order, so a later one sees the entries of the earlier ones (an
    /// id used by an earlier request is a replay or a conflict, as if posted before). Returns
    /// one answer per request, in order; if the write fails, every request that would have
    /// stored something gets the error.
    pub fn post_group(&self, requests: Vec<PostRequest>) -> Vec<Result<PostSummary, PostError>> {
        self.post_group_with(requests, Mode::Synced)
    }

    /// Runs every rule on `request` as if it were posted now, and stores nothing: the answer
    /// is what the post would answer (with `accepted` the entries it would store), except that
    /// a refusal lists every refused line, not only the first [`REPORTED_ERRORS_MAX`]. The
    /// writer lock is held while the rules run, so the ledger does not move under the check;
    /// the batch the rules built is then dropped, unwritten.
    pub fn dry_run(&self, request: PostRequest) -> Result<PostSummary, PostError> {
        self.post_group_with(vec![request], Mode::DryRun).pop().expect("one answer per request")
    }

    /// [`Ledger::post_group`] without syncing the write: the entries are stored and visible,
    /// but durable only after [`Ledger::sync`]. The answers must not reach anyone before then
    /// ([`crate::GroupCommitter`] holds them back).
    pub fn post_group_deferred(
        &self,
        requests: Vec<PostRequest>,
    ) -> Vec<Result<PostSummary, PostError>> {
        self.post_group_with(requests, Mode::Deferred)
    }

    /// Makes everything posted so far durable; returns the durable head.
    pub fn sync(&self) -> Result<Head, WriteError> {
        self.store.sync()
    }

    fn post_group_with(
        &self,
        requests: Vec<PostRequest>,
        mode: Mode,
    ) -> Vec<Result<PostSummary, PostError>> {
        let answers = self.post_group_answers(requests, mode);
        for a in &answers {
            if let Err(e) = a
                && e.kind() == ErrorKind::Integrity
            {
                self.note_integrity_failure(&e.to_string());
            }
        }
        answers
    }

    fn post_group_answers(
        &self,
        requests: Vec<PostRequest>,
        mode: Mode,
    ) -> Vec<Result<PostSummary, PostError>> {
        let synced = mode == Mode::Synced;
        let started = Instant::now();
        let mut answers: Vec<Option<Result<PostSummary, PostError>>> =
            requests.iter().map(|_| None).collect();
        for (i, r) in requests.iter().enumerate() {
            if r.events.len() > BATCH_EVENTS_MAX {
                answers[i] = Some(Err(PostError::TooLarge(r.events.len())));
            }
        }
        // Idempotency records of every id in the group, in one read.
        let keys: Vec<&str> = requests
            .iter()
            .zip(&answers)
            .filter(|(_, a)| a.is_none())
            .flat_map(|(r, _)| r.events.iter())
            .filter_map(|(_, p)| p.as_ref().ok())
            .map(|(e, _)| e.id.as_str())
            .collect();
        // The index is read under the writer lock, so two posts of one id cannot both be new.
        let mut w = self.writer();
        let stored = match self.id_records(&w, &keys) {
            Ok(s) => s,
            Err(e) => return requests.iter().map(|_| Err(PostError::Read(e.clone()))).collect(),
        };
        drop(keys);
        let mut stored = stored.into_iter();
        let head = self.store.head();
        // A dry run reports every refusal (a request holds at most BATCH_EVENTS_MAX lines).
        let dry = mode == Mode::DryRun;
        // The batch changes the writer's state in place; until it is taken in (`absorb`), a
        // drop — a dry run, a failed write, a panic — undoes it.
        let crate::Writer { state, pending, bound, frontier: cached_frontier, .. } = &mut *w;
        let mut group = Group {
            batch: state.begin_bounded(head.seq, head.hash, *bound),
            lookup: StoreLookup { store: &self.store, pending: &*pending },
            head_seq: head.seq,
            recorded_at: self.now_us(),
            new_ids: Vec::new(),
            apply_time: Duration::ZERO,
            errors_kept_max: if dry { BATCH_EVENTS_MAX } else { 4 * REPORTED_ERRORS_MAX },
            errors_reported_max: if dry { BATCH_EVENTS_MAX } else { REPORTED_ERRORS_MAX },
        };
        let mut checked: Vec<Option<Checked>> = Vec::with_capacity(requests.len());
        for (r, request) in requests.into_iter().enumerate() {
            if answers[r].is_some() {
                checked.push(None);
                continue;
            }
            match group.check_request(request, &mut stored) {
                Ok(c) => checked.push(Some(c)),
                Err(refused) => {
                    answers[r] = Some(Err(refused));
                    checked.push(None);
                }
            }
        }
        // Taken apart in a block of its own, so that nothing else of it keeps the writer
        // borrowed.
        let (batch, new_ids, apply_time) = {
            let group = group;
            (group.batch, group.new_ids, group.apply_time)
        };
        let unchanged =
            |c: &Checked, timings| summary_of(c, head.seq, hex::encode(head.hash), timings);
        if mode == Mode::DryRun {
            // Nothing is written: the batch is dropped (its changes undone), and the answer
            // names the sequence numbers the entries would have taken.
            drop(batch);
            drop(w);
            let timings = PostTimings { rules: started.elapsed(), ..PostTimings::default() };
            return answer_all(answers, checked, &|c| Ok(unchanged(&c, timings)));
        }
        let mut prepared = batch.finish();
        let accepted_total = prepared.entries.len();
        if accepted_total == 0 {
            let timings = PostTimings { rules: started.elapsed(), ..PostTimings::default() };
            return answer_all(answers, checked, &|c| Ok(unchanged(&c, timings)));
        }
        // The cached right edge of the tree, if it is this head's (an empty one otherwise:
        // the nodes are then read from the store once).
        let frontier = if cached_frontier.size == head.seq {
            std::mem::take(cached_frontier)
        } else {
            match merkle::Frontier::read(&StoreNodes { store: &self.store }, head.seq) {
                Ok(f) => f,
                Err(e) => {
                    let e = PostError::Read(crate::audit::proof_read_error(e));
                    return answer_all(answers, checked, &|c| {
                        if c.new_count > 0 {
                            Err(e.clone())
                        } else {
                            Ok(unchanged(&c, PostTimings::default()))
                        }
                    });
                }
            }
        };
        let member_index = std::mem::take(&mut prepared.member_index);
        let seqs: Vec<u64> = prepared.entries.seqs().collect();
        // A failed write drops the changes, which undoes them.
        let (mut timings, chain_hashes, changes, next_frontier) =
            match self.write_prepared(prepared, started, synced, &frontier) {
                Ok(written) => written,
                Err(e) => {
                    return answer_all(answers, checked, &|c| {
                        if c.new_count > 0 {
                            Err(e.clone())
                        } else {
                            Ok(unchanged(&c, PostTimings::default()))
                        }
                    });
                }
            };
        *cached_frontier = next_frontier;
        assert_eq!(new_ids.len(), seqs.len(), "one id per new entry");
        let ids = new_ids.into_iter().zip(seqs).map(|((id, fp), seq)| (id, seq, fp));
        *bound = bound.after(&changes);
        changes.commit_marking(&mut pending.dirty);
        self.absorb(&mut w, ids, &member_index);
        timings.apply = apply_time;
        drop(w);
        let group_head = *chain_hashes.last().expect("the group stored entries");
        answer_all(answers, checked, &|c| {
            // The head right after this request's own entries; after the group's for a request
            // of replays only.
            let h = if c.new_count > 0 {
                chain_hashes[c.first_new + c.new_count - 1]
            } else {
                group_head
            };
            Ok(summary_of(&c, head.seq, hex::encode(h), timings))
        })
    }

    /// Builds the tree nodes of a sealed batch and writes them with its entries in one write,
    /// synced unless `synced` is false. Returns the timings, every new entry's chain hash, and
    /// the state changes to commit (the derived records are written at checkpoints); on a
    /// failed write they are dropped, which undoes them.
    fn write_prepared<'s>(
        &self,
        prepared: junbao_ledger::rules::PreparedBatch<'s>,
        started: Instant,
        synced: bool,
        frontier: &merkle::Frontier,
    ) -> Result<
        (PostTimings, Vec<Hash32>, junbao_ledger::rules::BatchChanges<'s>, merkle::Frontier),
        PostError,
    > {
        // The Merkle tree: leaf hashes of the new entries, and the stored nodes they complete.
        let tree_started = Instant::now();
        let sealed = &prepared.entries;
        let leaf = |i: usize| merkle::leaf_hash(sealed.bytes_of(i));
        let leaves: Vec<_> = if sealed.len() < junbao_ledger::rules::PARALLEL_ENTRIES_MIN {
            (0..sealed.len()).map(leaf).collect()
        } else {
            (0..sealed.len()).into_par_iter().map(leaf).collect()
        };
        let (tree, next_frontier) =
            merkle::append_with_frontier(frontier, &leaves, TREE_LEVEL_STORED_MIN);
        let tree = tree
            .into_iter()
            .map(|(level, index, hash)| (tree_key(level, index), hash.to_vec()))
            .collect();
        let tree_time = tree_started.elapsed();
        let new_head = Head { seq: prepared.head_seq, hash: prepared.head };
        let chain_hashes = prepared.entries.chain_hashes().to_vec();
        let append = Append {
            entries: stored_entries(prepared.entries),
            tree,
            head: new_head,
            ..Append::default()
        };
        let rules = started.elapsed();
        if synced {
            self.store.append(append)?;
        } else {
            self.store.append_deferred(append)?;
        }
        let write = started.elapsed() - rules;
        let timings = PostTimings {
            parse: Duration::ZERO,
            rules,
            write,
            tree: tree_time,
            apply: Duration::ZERO,
        };
        Ok((timings, chain_hashes, prepared.changes, next_frontier))
    }
}
