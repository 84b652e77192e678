//! Posting: a batch of events, all or nothing, idempotent by event id.

use std::collections::HashMap;

use junbao_ledger::Event;
use junbao_ledger::merkle;

use crate::audit::{StoreNodes, TREE_LEVEL_STORED_MIN, tree_key};
use junbao_ledger::entry::{Hash32, event_fingerprint};
use junbao_ledger::event::{EventError, parse_event_line};
use junbao_storage::{Append, Head, StoredEntry, WriteError};
use rayon::prelude::*;
use serde::Serialize;
use std::time::{Duration, Instant};

use crate::{Ledger, REPORTED_ERRORS_MAX, StoreLookup, id_record, parse_id_record};

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
    /// The synced RocksDB write batch.
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
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// Input refused: nothing was stored. Holds the first [`REPORTED_ERRORS_MAX`] errors.
    #[error("{} refused, nothing stored:\n{}", plural(*total, "line"), list(errors))]
    Rejected { errors: Vec<LineError>, total: usize },
    #[error("batch of {0} events exceeds the limit of {BATCH_EVENTS_MAX}; split the file")]
    TooLarge(usize),
    #[error("the ledger could not read its index: {0}")]
    Read(#[from] junbao_storage::ReadError),
    #[error("the write failed, nothing stored: {0}")]
    Write(#[from] WriteError),
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn list(errors: &[LineError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

impl PostError {
    /// True when the only refusals are id conflicts (HTTP 409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, PostError::Rejected { errors, .. }
            if !errors.is_empty() && errors.iter().all(|e| e.kind == RejectKind::Conflict))
    }
}

type ParsedLine = Result<(Event, Hash32), EventError>;

enum Slot {
    New(usize),
    Replay(u64),
    InBatch(usize),
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
        // Parsing is independent per line: spread it over the cores, in chunks so that the
        // progress bar moves.
        let started = Instant::now();
        let mut events = Vec::with_capacity(lines.len());
        for (c, chunk) in lines.chunks(16_384).enumerate() {
            let parsed: Vec<_> = chunk
                .par_iter()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    let parsed = parse_event_line(l).map(|e| {
                        let fp = event_fingerprint(&e);
                        (e, fp)
                    });
                    (c * 16_384 + i + 1, parsed)
                })
                .collect();
            events.extend(parsed);
            progress(c * 16_384 + chunk.len());
        }
        let parse = started.elapsed();
        let mut summary = self.post_fingerprinted(events)?;
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
        self.post_fingerprinted(events)
    }

    fn post_fingerprinted(
        &self,
        events: Vec<(usize, ParsedLine)>,
    ) -> Result<PostSummary, PostError> {
        if events.len() > BATCH_EVENTS_MAX {
            return Err(PostError::TooLarge(events.len()));
        }
        let started = Instant::now();
        let mut errors: Vec<LineError> = Vec::new();
        let mut total_errors = 0;
        let mut note = |errors: &mut Vec<LineError>, e: LineError| {
            total_errors += 1;
            errors.push(e);
        };
        let mut parsed: Vec<(usize, Event, Hash32)> = Vec::with_capacity(events.len());
        for (line, r) in events {
            match r {
                Ok((event, fp)) => parsed.push((line, event, fp)),
                Err(error) => {
                    note(&mut errors, LineError { line, kind: RejectKind::Invalid, error })
                }
            }
        }
        let keys: Vec<&[u8]> = parsed.iter().map(|(_, e, _)| e.id.as_str().as_bytes()).collect();
        // The index is read under the writer lock, so two posts of one id cannot both be new.
        let mut w = self.writer();
        let stored = self.store.ids_get(&keys)?;
        let head = self.store.head();
        let lookup = StoreLookup(&self.store);
        let recorded_at = self.now_us();
        let mut batch = w.state.begin(head.seq, head.hash);
        let mut first_in_batch: HashMap<String, (usize, Hash32)> = HashMap::new();
        let mut slots: Vec<Slot> = Vec::with_capacity(parsed.len());
        let mut apply_time = Duration::ZERO;
        let mut new_ids: Vec<(Vec<u8>, Hash32)> = Vec::new();
        for (i, (line, event, fp)) in parsed.into_iter().enumerate() {
            let (line, fp) = (&line, &fp);
            let conflict = |what: String| LineError {
                line: *line,
                kind: RejectKind::Conflict,
                error: EventError::field("id", what),
            };
            if let Some(record) = &stored[i] {
                let (seq, old_fp) = parse_id_record(record).ok_or_else(|| {
                    junbao_storage::ReadError::Corrupt(format!(
                        "idempotency record of {}",
                        event.id
                    ))
                })?;
                if old_fp == *fp {
                    slots.push(Slot::Replay(seq));
                } else {
                    note(
                        &mut errors,
                        conflict(format!(
                            "{:?} was used by entry {seq} with different content",
                            event.id.as_str()
                        )),
                    );
                }
                continue;
            }
            if let Some((j, old_fp)) = first_in_batch.get(event.id.as_str()) {
                if old_fp == fp {
                    slots.push(Slot::InBatch(*j));
                } else {
                    note(
                        &mut errors,
                        conflict(format!(
                            "{:?} appears earlier in this batch with different content",
                            event.id.as_str()
                        )),
                    );
                }
                continue;
            }
            first_in_batch.insert(event.id.as_str().to_string(), (slots.len(), *fp));
            let id = event.id.as_str().as_bytes().to_vec();
            let apply_started = Instant::now();
            let applied = batch.apply(event, recorded_at, &lookup);
            apply_time += apply_started.elapsed();
            match applied {
                Ok(seq) => {
                    new_ids.push((id, *fp));
                    assert_eq!(seq, head.seq + new_ids.len() as u64, "sequence numbers are dense");
                    slots.push(Slot::New(new_ids.len() - 1));
                }
                Err(error) => {
                    note(&mut errors, LineError { line: *line, kind: RejectKind::Invalid, error })
                }
            }
        }
        if total_errors > 0 {
            // Parse errors were found before rule errors: report in line order.
            errors.sort_by_key(|e| e.line);
            errors.truncate(REPORTED_ERRORS_MAX);
            return Err(PostError::Rejected { errors, total: total_errors });
        }
        let prepared = batch.finish();
        let accepted = prepared.entries.len();
        let mut seqs: Vec<u64> = Vec::with_capacity(slots.len());
        for slot in &slots {
            let seq = match slot {
                Slot::New(k) => head.seq + 1 + *k as u64,
                Slot::Replay(seq) => *seq,
                Slot::InBatch(j) => seqs[*j],
            };
            seqs.push(seq);
        }
        let replayed = slots.iter().filter(|s| !matches!(s, Slot::New(_))).count();
        if accepted == 0 {
            return Ok(PostSummary {
                accepted: 0,
                first_seq: seqs.iter().min().copied(),
                last_seq: seqs.iter().max().copied(),
                head: hex::encode(head.hash),
                replayed,
                seqs,
                timings: PostTimings { rules: started.elapsed(), ..PostTimings::default() },
            });
        }
        // The Merkle tree: leaf hashes of the new entries, and the stored nodes they complete.
        let tree_started = Instant::now();
        let leaves: Vec<_> =
            prepared.entries.par_iter().map(|e| merkle::leaf_hash(&e.bytes)).collect();
        let nodes = StoreNodes {
            store: &self.store,
            pending: leaves.iter().enumerate().map(|(i, h)| (head.seq + i as u64, *h)).collect(),
        };
        let tree = merkle::append_nodes(&nodes, head.seq, &leaves, TREE_LEVEL_STORED_MIN)
            .map_err(|e| junbao_storage::ReadError::Corrupt(format!("Merkle tree: {e}")))?
            .into_iter()
            .map(|(level, index, hash)| (tree_key(level, index), hash.to_vec()))
            .collect();
        let tree_time = tree_started.elapsed();
        let mut ids: Vec<(Vec<u8>, Vec<u8>)> = new_ids
            .iter()
            .zip(&prepared.entries)
            .map(|((id, fp), e)| (id.clone(), id_record(e.seq, fp)))
            .collect();
        ids.extend(
            prepared
                .member_index
                .iter()
                .map(|(m, seq)| (crate::member_index_key(m, *seq), Vec::new())),
        );
        let new_head = Head { seq: prepared.head_seq, hash: prepared.head };
        let append = Append {
            entries: prepared
                .entries
                .into_iter()
                .map(|e| StoredEntry { seq: e.seq, chain_hash: e.chain_hash, bytes: e.bytes })
                .collect(),
            ids,
            balances: prepared.balance_writes,
            state: prepared.state_writes,
            tree,
            meta: Vec::new(),
            head: new_head,
        };
        let rules = started.elapsed();
        self.store.append(append)?;
        let write = started.elapsed() - rules;
        w.state.commit(prepared.changes);
        Ok(PostSummary {
            accepted,
            first_seq: Some(head.seq + 1),
            last_seq: Some(new_head.seq),
            head: hex::encode(new_head.hash),
            replayed,
            seqs,
            timings: PostTimings {
                parse: Duration::ZERO,
                rules,
                write,
                tree: tree_time,
                apply: apply_time,
            },
        })
    }
}
