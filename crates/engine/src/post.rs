//! Posting: a batch of events, all or nothing, idempotent by event id.

use std::collections::{BTreeSet, HashMap};

use junbao_ledger::merkle;
use junbao_ledger::{Event, EventBody};

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

enum Slot {
    New(usize),
    Replay(u64),
}

/// A request of a group as it is checked: its slots, errors and savepoint.
struct Checked {
    errors: Vec<LineError>,
    total_errors: usize,
    slots: Vec<Slot>,
    /// Index of this request's first new entry in the group's batch.
    first_new: usize,
    new_count: usize,
    /// A stored record that does not decode: the request fails as a read error.
    corrupt: Option<junbao_storage::ReadError>,
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
        let synced = mode == Mode::Synced;
        // A dry run reports every refusal (a request holds at most BATCH_EVENTS_MAX lines).
        let errors_kept_max =
            if mode == Mode::DryRun { BATCH_EVENTS_MAX } else { 4 * REPORTED_ERRORS_MAX };
        let errors_reported_max =
            if mode == Mode::DryRun { BATCH_EVENTS_MAX } else { REPORTED_ERRORS_MAX };
        let started = Instant::now();
        let mut answers: Vec<Option<Result<PostSummary, PostError>>> =
            requests.iter().map(|_| None).collect();
        for (i, r) in requests.iter().enumerate() {
            if r.events.len() > BATCH_EVENTS_MAX {
                answers[i] = Some(Err(PostError::TooLarge(r.events.len())));
            }
        }
        // Idempotency records of every id in the group, in one read.
        let keys: Vec<&[u8]> = requests
            .iter()
            .zip(&answers)
            .filter(|(_, a)| a.is_none())
            .flat_map(|(r, _)| r.events.iter())
            .filter_map(|(_, p)| p.as_ref().ok())
            .map(|(e, _)| e.id.as_str().as_bytes())
            .collect();
        // The index is read under the writer lock, so two posts of one id cannot both be new.
        let mut w = self.writer();
        let stored = match self.store.ids_get(&keys) {
            Ok(s) => s,
            Err(e) => return requests.iter().map(|_| Err(PostError::Read(e.clone()))).collect(),
        };
        drop(keys);
        let mut stored = stored.into_iter();
        let head = self.store.head();
        let lookup = StoreLookup(&self.store);
        let recorded_at = self.now_us();
        let mut batch = w.state.begin(head.seq, head.hash);
        // Ids of the entries in the batch so far: id -> (index in the batch, fingerprint). A
        // refused request takes its own out again.
        let mut batch_ids: HashMap<String, (usize, Hash32)> = HashMap::new();
        let mut new_ids: Vec<(Vec<u8>, Hash32)> = Vec::new();
        let mut apply_time = Duration::ZERO;
        let mut checked: Vec<Option<Checked>> = Vec::with_capacity(requests.len());
        for (r, request) in requests.into_iter().enumerate() {
            if answers[r].is_some() {
                checked.push(None);
                continue;
            }
            let savepoint = (request.events.len() > 1).then(|| batch.savepoint());
            let ids_before = new_ids.len();
            let mut c = Checked {
                errors: Vec::new(),
                total_errors: 0,
                slots: Vec::with_capacity(request.events.len()),
                first_new: batch.len(),
                new_count: 0,
                corrupt: None,
            };
            let note = |c: &mut Checked, e: LineError| {
                c.total_errors += 1;
                if c.errors.len() < errors_kept_max {
                    c.errors.push(e);
                }
            };
            for (line, parsed) in request.events {
                let (event, fp) = match parsed {
                    Ok(p) => p,
                    Err(error) => {
                        note(&mut c, LineError { line, kind: RejectKind::Invalid, error });
                        continue;
                    }
                };
                let record = stored.next().expect("one record per parsed event");
                // The scope first: a token learns nothing about ids or content outside its units
                // (a replay or a conflict would tell it that an id exists, and what it holds).
                let id_units = match check_scope(&request.scope, &batch, &event, &lookup) {
                    Ok(units) => units,
                    Err(why) => {
                        note(&mut c, LineError { line, kind: RejectKind::Forbidden, error: why });
                        continue;
                    }
                };
                // A poster's new ids live in its unit's namespace (`UNIT:…`), so no unit can take
                // an id another unit will use. An id stored before this rule stays valid: posting
                // the same content again is a replay. Anything else gets the same answer whether
                // the id is used or not, so the refusal tells nothing about other units' ids.
                if let Some(units) = id_units
                    && !id_in_units(event.id.as_str(), &units)
                    && record
                        .as_deref()
                        .and_then(parse_id_record)
                        .is_none_or(|(_, old_fp)| old_fp != fp)
                {
                    let error = EventError::field("id", id_scope_message(&units));
                    note(&mut c, LineError { line, kind: RejectKind::Forbidden, error });
                    continue;
                }
                let conflict = |what: String| LineError {
                    line,
                    kind: RejectKind::Conflict,
                    error: EventError::field("id", what),
                };
                if let Some(record) = record {
                    let Some((seq, old_fp)) = parse_id_record(&record) else {
                        c.corrupt = Some(junbao_storage::ReadError::Corrupt(format!(
                            "idempotency record of {}",
                            event.id
                        )));
                        c.total_errors += 1;
                        continue;
                    };
                    if old_fp == fp {
                        c.slots.push(Slot::Replay(seq));
                    } else {
                        note(
                            &mut c,
                            conflict(format!(
                                "{:?} was used by entry {seq} with different content",
                                event.id.as_str()
                            )),
                        );
                    }
                    continue;
                }
                if let Some(&(k, old_fp)) = batch_ids.get(event.id.as_str()) {
                    if old_fp == fp {
                        c.slots.push(Slot::Replay(head.seq + 1 + k as u64));
                    } else {
                        let where_ = if k >= c.first_new {
                            "earlier in this batch"
                        } else {
                            "in a post just before this one"
                        };
                        note(
                            &mut c,
                            conflict(format!(
                                "{:?} appears {where_} with different content",
                                event.id.as_str()
                            )),
                        );
                    }
                    continue;
                }
                let apply_started = Instant::now();
                let id = event.id.as_str().to_string();
                let applied = batch.apply(event, recorded_at, &lookup);
                apply_time += apply_started.elapsed();
                match applied {
                    Ok(seq) => {
                        assert_eq!(
                            seq,
                            head.seq + 1 + new_ids.len() as u64,
                            "sequence numbers are dense"
                        );
                        batch_ids.insert(id.clone(), (new_ids.len(), fp));
                        c.slots.push(Slot::New(new_ids.len()));
                        new_ids.push((id.into_bytes(), fp));
                        c.new_count += 1;
                    }
                    Err(error) => {
                        note(&mut c, LineError { line, kind: RejectKind::Invalid, error })
                    }
                }
            }
            if c.total_errors > 0 {
                if let Some(sp) = savepoint {
                    batch.rollback(sp);
                }
                assert_eq!(batch.len(), c.first_new, "a refused request leaves no entry behind");
                for (id, _) in new_ids.drain(ids_before..) {
                    batch_ids.remove(std::str::from_utf8(&id).expect("event ids are ASCII"));
                }
                // Parse errors were found before rule errors: report in line order.
                c.errors.sort_by_key(|e| e.line);
                c.errors.truncate(errors_reported_max);
                answers[r] = Some(Err(match c.corrupt {
                    Some(e) => PostError::Read(e),
                    None => PostError::Rejected { errors: c.errors, total: c.total_errors },
                }));
                checked.push(None);
                continue;
            }
            checked.push(Some(c));
        }
        let summary_of = |c: &Checked, head_hex: String, timings: PostTimings| {
            let seqs: Vec<u64> = c
                .slots
                .iter()
                .map(|s| match s {
                    Slot::New(k) => head.seq + 1 + *k as u64,
                    Slot::Replay(seq) => *seq,
                })
                .collect();
            let replayed = c.slots.iter().filter(|s| matches!(s, Slot::Replay(_))).count();
            let (first_seq, last_seq) = if c.new_count > 0 {
                let first = head.seq + 1 + c.first_new as u64;
                (Some(first), Some(first + c.new_count as u64 - 1))
            } else {
                (seqs.iter().min().copied(), seqs.iter().max().copied())
            };
            PostSummary {
                accepted: c.new_count,
                first_seq,
                last_seq,
                head: head_hex,
                replayed,
                seqs,
                timings,
            }
        };
        // Every request is answered (refused up front or while checked) or checked, in order.
        let answer_all = |each: &dyn Fn(Checked) -> Result<PostSummary, PostError>| {
            answers
                .into_iter()
                .zip(checked)
                .map(|(a, c)| match (a, c) {
                    (Some(a), _) => a,
                    (None, Some(c)) => each(c),
                    (None, None) => unreachable!("every request is answered or checked"),
                })
                .collect()
        };
        if mode == Mode::DryRun {
            // Nothing is written: the batch (an overlay on the state) is dropped, and the
            // answer names the sequence numbers the entries would have taken.
            drop(batch);
            drop(w);
            let timings = PostTimings { rules: started.elapsed(), ..PostTimings::default() };
            return answer_all(&|c| Ok(summary_of(&c, hex::encode(head.hash), timings)));
        }
        let prepared = batch.finish();
        let accepted_total = prepared.entries.len();
        if accepted_total == 0 {
            let timings = PostTimings { rules: started.elapsed(), ..PostTimings::default() };
            return answer_all(&|c| Ok(summary_of(&c, hex::encode(head.hash), timings)));
        }
        // The cached right edge of the tree, if it is this head's (an empty one otherwise:
        // the nodes are then read from the store once).
        let frontier = if w.frontier.size == head.seq {
            std::mem::take(&mut w.frontier)
        } else {
            merkle::Frontier { size: head.seq, nodes: HashMap::new() }
        };
        let written = self.write_prepared(prepared, &new_ids, started, synced, &frontier);
        let (timings, chain_hashes) = match written {
            Ok((mut timings, hashes, changes, next_frontier)) => {
                w.state.commit(changes);
                w.frontier = next_frontier;
                timings.apply = apply_time;
                (timings, hashes)
            }
            Err(e) => {
                return answer_all(&|c| {
                    if c.new_count > 0 {
                        Err(e.clone())
                    } else {
                        Ok(summary_of(&c, hex::encode(head.hash), PostTimings::default()))
                    }
                });
            }
        };
        drop(w);
        let group_head = *chain_hashes.last().expect("the group stored entries");
        answer_all(&|c| {
            // The head right after this request's own entries; after the group's for a request
            // of replays only.
            let h = if c.new_count > 0 {
                chain_hashes[c.first_new + c.new_count - 1]
            } else {
                group_head
            };
            Ok(summary_of(&c, hex::encode(h), timings))
        })
    }

    /// Builds the tree nodes and index records of a sealed batch and writes it all in one
    /// write, synced unless `synced` is false. Returns the timings, every new entry's chain hash, and the state changes
    /// to commit.
    fn write_prepared(
        &self,
        prepared: junbao_ledger::rules::PreparedBatch,
        new_ids: &[(Vec<u8>, Hash32)],
        started: Instant,
        synced: bool,
        frontier: &merkle::Frontier,
    ) -> Result<
        (PostTimings, Vec<Hash32>, junbao_ledger::rules::StateChanges, merkle::Frontier),
        PostError,
    > {
        // The Merkle tree: leaf hashes of the new entries, and the stored nodes they complete.
        let tree_started = Instant::now();
        let leaf = |e: &junbao_ledger::entry::SealedEntry| merkle::leaf_hash(&e.bytes);
        let leaves: Vec<_> = if prepared.entries.len() < junbao_ledger::rules::PARALLEL_ENTRIES_MIN
        {
            prepared.entries.iter().map(leaf).collect()
        } else {
            prepared.entries.par_iter().map(leaf).collect()
        };
        let nodes = StoreNodes { store: &self.store };
        let (tree, next_frontier) =
            merkle::append_with_frontier(&nodes, frontier, &leaves, TREE_LEVEL_STORED_MIN)
                .map_err(|e| junbao_storage::ReadError::Corrupt(format!("Merkle tree: {e}")))?;
        let tree = tree
            .into_iter()
            .map(|(level, index, hash)| (tree_key(level, index), hash.to_vec()))
            .collect();
        let tree_time = tree_started.elapsed();
        assert_eq!(new_ids.len(), prepared.entries.len(), "one id per new entry");
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
        let chain_hashes: Vec<Hash32> = prepared.entries.iter().map(|e| e.chain_hash).collect();
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

/// Whether a poster's event id lies in the namespace of one of `units`: it begins with the
/// unit's id and a colon (unit ids have no colon, so the namespaces do not overlap).
/// The namespaces of the ids the ledger generates are never a poster's, whatever a unit is named.
fn id_in_units(id: &str, units: &[String]) -> bool {
    const GENERATED: [&str; 3] = ["transfer", "confirm", "key-rotation"];
    id.split_once(':').is_some_and(|(prefix, _)| {
        !GENERATED.contains(&prefix) && units.iter().any(|u| u == prefix)
    })
}

fn id_scope_message(units: &[String]) -> String {
    let names: Vec<String> = units.iter().map(|u| format!("\"{u}:…\"")).collect();
    format!(
        "a poster's event ids are scoped by unit: this event's id must begin with {} \
         (docs/HTTP.md, event ids)",
        names.join(" or ")
    )
}

/// Whether `scope` allows `event`; the refusal names the unit (or says the event has none).
/// For a poster, the answer is the units (of the poster's own) in whose id namespace the event
/// may be posted; `None` when the scope is not restricted to units.
fn check_scope(
    scope: &PostScope,
    batch: &junbao_ledger::rules::Batch<'_>,
    event: &Event,
    lookup: &StoreLookup<'_>,
) -> Result<Option<Vec<String>>, EventError> {
    let PostScope::Units(units) = scope else { return Ok(None) };
    // Closing an account and settling it to an agency are the transfer clerks' acts
    // (`POST /v1/transfers`), never a unit's poster's — nor is reversing one.
    let transfer = |body: &EventBody| {
        matches!(
            body,
            EventBody::TransferOut { .. }
                | EventBody::TransferOutV1 { .. }
                | EventBody::TransferConfirmed { .. }
                | EventBody::TransferIn { .. }
        )
    };
    let reverses_transfer = match &event.body {
        EventBody::Reversal { of, .. } => batch
            .entries()
            .iter()
            .find(|e| &e.event.id == of)
            .map(|e| e.event.clone())
            .or_else(|| junbao_ledger::EntryLookup::entry_by_event_id(lookup, of).map(|e| e.event))
            .is_some_and(|e| transfer(&e.body)),
        _ => false,
    };
    if transfer(&event.body) || reverses_transfer {
        return Err(EventError::field(
            "type",
            format!(
                "a {} event needs a clerk or admin token (POST /v1/transfers); posters may not",
                event.body.type_name()
            ),
        ));
    }
    // Art. 18: an amount decided under the State's provisions is recorded by an admin, never by
    // a unit's poster (the ledger cannot check it).
    if matches!(
        event.body,
        EventBody::Subsidy { basis: junbao_ledger::event::Basis::Provision, .. }
    ) {
        return Err(EventError::field(
            "basis",
            "a subsidy with basis provision (Art. 18) needs an admin token; posters may not",
        ));
    }
    if let Some(unit) = event.body.unit()
        && !units.contains(unit.as_str())
    {
        // The unit is the poster's own input: naming it tells nothing new.
        return Err(EventError::field(
            "unit",
            format!("unit {unit} is not among the units this token posts for"),
        ));
    }
    let named = event.body.unit().map(|u| vec![u.as_str().to_string()]);
    match batch.member_concerned(event, lookup) {
        // The member's unit is not named, and a member of another unit and an unknown member
        // get the same answer: a poster must not learn where other units' members serve, nor
        // whether they exist (Art. 43). Only an enrolment concerns a member not yet known.
        Some(member) => {
            let posting_units = batch.member_posting_units(&member);
            if posting_units.iter().any(|u| units.contains(u.as_str()))
                || (posting_units.is_empty() && matches!(event.body, EventBody::Enroll { .. }))
            {
                Ok(Some(named.unwrap_or_else(|| {
                    let mut own: Vec<String> = posting_units
                        .iter()
                        .filter(|u| units.contains(u.as_str()))
                        .map(|u| u.as_str().to_string())
                        .collect();
                    own.sort();
                    own.dedup();
                    own
                })))
            } else {
                Err(EventError::field(
                    "member",
                    format!("member {member} is not a member of the units this token posts for"),
                ))
            }
        }
        None if named.is_some() => Ok(named),
        None => Err(EventError::field(
            "type",
            format!(
                "a {} event concerns no unit; it needs a token that is not restricted to units",
                event.body.type_name()
            ),
        )),
    }
}
