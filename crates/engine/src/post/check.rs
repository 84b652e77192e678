//! Checking the requests of a group against one batch: each request's events in turn (scope,
//! id, replay or conflict, rules), a refused request rolled back to its savepoint; and the
//! answers of the requests checked.

use std::time::{Duration, Instant};

use junbao_ledger::entry::Hash32;
use junbao_ledger::event::EventError;
use junbao_ledger::{ApplyError, Event, EventBody};
use junbao_storage::ReadError;

use super::{LineError, PostError, PostRequest, PostScope, PostSummary, PostTimings, RejectKind};
use crate::StoreLookup;
use crate::derived::{IdRecord, ReadBackError};

pub(super) enum Slot {
    New(usize),
    Replay(u64),
}

/// A request of a group as it is checked: its slots, errors and savepoint.
pub(super) struct Checked {
    pub(super) errors: Vec<LineError>,
    pub(super) total_errors: usize,
    pub(super) slots: Vec<Slot>,
    /// Index of this request's first new entry in the group's batch.
    pub(super) first_new: usize,
    pub(super) new_count: usize,
    /// A stored record that could not be read (the disk) or does not decode (corruption):
    /// the request fails as that read error, not as a refusal.
    pub(super) failed_read: Option<ReadError>,
}

/// What the requests of a group share while they are checked: the batch, the ids in it, the
/// recording time.
pub(super) struct Group<'s, 'l> {
    pub(super) batch: junbao_ledger::rules::Batch<'s>,
    pub(super) lookup: StoreLookup<'l>,
    pub(super) head_seq: u64,
    pub(super) recorded_at: i64,
    /// The id and content fingerprint of each entry in the batch so far, in order (the batch
    /// finds an id's position; a refused request takes its own out again).
    pub(super) new_ids: Vec<(Box<str>, Hash32)>,
    pub(super) apply_time: Duration,
    pub(super) errors_kept_max: usize,
    pub(super) errors_reported_max: usize,
}

/// Why one event of a request is not taken.
enum Refusal {
    Line(LineError),
    /// A stored record that could not be read or does not decode: the request fails as that
    /// read error (I/O or integrity), not as a refusal.
    Read(ReadError),
}

impl Checked {
    fn note(&mut self, e: LineError, kept_max: usize) {
        self.total_errors += 1;
        if self.errors.len() < kept_max {
            self.errors.push(e);
        }
    }
}

impl Group<'_, '_> {
    /// Checks a request's events against the batch, each after the one before; a request with
    /// any refusal is rolled back to where it started and answered with its errors.
    pub(super) fn check_request(
        &mut self,
        request: PostRequest,
        stored: &mut impl Iterator<Item = Option<IdRecord>>,
    ) -> Result<Checked, PostError> {
        self.batch.reserve(request.events.len());
        // A request of one event needs none: a refused event leaves the batch as it was.
        let savepoint = (request.events.len() > 1).then(|| self.batch.savepoint());
        let ids_before = self.new_ids.len();
        let mut c = Checked {
            errors: Vec::new(),
            total_errors: 0,
            slots: Vec::with_capacity(request.events.len()),
            first_new: self.batch.len(),
            new_count: 0,
            failed_read: None,
        };
        for (line, parsed) in request.events {
            let (event, fp) = match parsed {
                Ok(p) => p,
                Err(error) => {
                    c.note(
                        LineError { line, kind: RejectKind::Invalid, error },
                        self.errors_kept_max,
                    );
                    continue;
                }
            };
            let record = stored.next().expect("one record per parsed event");
            match self.check_event(&request.scope, c.first_new, line, event, fp, record) {
                Ok(slot) => {
                    if matches!(slot, Slot::New(_)) {
                        c.new_count += 1;
                    }
                    c.slots.push(slot);
                }
                Err(Refusal::Line(e)) => c.note(e, self.errors_kept_max),
                Err(Refusal::Read(e)) => {
                    c.failed_read = Some(e);
                    c.total_errors += 1;
                }
            }
        }
        if c.total_errors == 0 {
            if let Some(sp) = savepoint {
                self.batch.release(sp);
            }
            return Ok(c);
        }
        if let Some(sp) = savepoint {
            self.batch.rollback(sp);
        }
        assert_eq!(self.batch.len(), c.first_new, "a refused request leaves no entry behind");
        self.new_ids.truncate(ids_before);
        // Parse errors were found before rule errors: report in line order.
        c.errors.sort_by_key(|e| e.line);
        c.errors.truncate(self.errors_reported_max);
        Err(match c.failed_read {
            Some(e) => PostError::Read(e),
            None => PostError::Rejected { errors: c.errors, total: c.total_errors },
        })
    }

    /// One event of a request whose first new entry is `first_new`: its scope, its id (stored
    /// or earlier in the group: a replay or a conflict), then the rules.
    fn check_event(
        &mut self,
        scope: &PostScope,
        first_new: usize,
        line: usize,
        event: Event,
        fp: Hash32,
        record: Option<IdRecord>,
    ) -> Result<Slot, Refusal> {
        let refused = |kind, error| Refusal::Line(LineError { line, kind, error });
        // The scope first: a token learns nothing about ids or content outside its units
        // (a replay or a conflict would tell it that an id exists, and what it holds).
        let id_units =
            check_scope(scope, &self.batch, &event, &self.lookup).map_err(|e| match e {
                ApplyError::Refused(why) => refused(RejectKind::Forbidden, why),
                ApplyError::Lookup(e) => Refusal::Read(crate::read_error(e)),
            })?;
        // A poster's new ids live in its unit's namespace (`UNIT:…`), so no unit can take
        // an id another unit will use. An id stored before this rule stays valid: posting
        // the same content again is a replay. Anything else gets the same answer whether
        // the id is used or not, so the refusal tells nothing about other units' ids.
        if let Some(units) = id_units
            && !id_in_units(event.id.as_str(), &units)
            && record.as_ref().and_then(|r| r.as_ref().ok()).is_none_or(|(_, old_fp)| *old_fp != fp)
        {
            let error = EventError::field("id", id_scope_message(&units));
            return Err(refused(RejectKind::Forbidden, error));
        }
        let conflict = |what: String| refused(RejectKind::Conflict, EventError::field("id", what));
        if let Some(record) = record {
            let (seq, old_fp) = record.map_err(Refusal::Read)?;
            if old_fp == fp {
                return Ok(Slot::Replay(seq));
            }
            return Err(conflict(format!(
                "{:?} was used by entry {seq} with different content",
                event.id.as_str()
            )));
        }
        if let Some(k) = self.batch.position_of(&event.id) {
            let old_fp = self.new_ids[k].1;
            if old_fp == fp {
                return Ok(Slot::Replay(self.head_seq + 1 + k as u64));
            }
            let where_ = if k >= first_new {
                "earlier in this batch"
            } else {
                "in a post just before this one"
            };
            return Err(conflict(format!(
                "{:?} appears {where_} with different content",
                event.id.as_str()
            )));
        }
        let apply_started = Instant::now();
        let id: Box<str> = event.id.as_str().into();
        let applied = self.apply(event)?;
        self.apply_time += apply_started.elapsed();
        let seq = applied.map_err(|e| match e {
            ApplyError::Refused(error) => refused(RejectKind::Invalid, error),
            ApplyError::Lookup(e) => Refusal::Read(crate::read_error(e)),
        })?;
        assert_eq!(
            seq,
            self.head_seq + 1 + self.new_ids.len() as u64,
            "sequence numbers are dense"
        );
        let slot = Slot::New(self.new_ids.len());
        self.new_ids.push((id, fp));
        Ok(slot)
    }
}

impl Group<'_, '_> {
    /// Applies an event to the batch. Where it may read a year out of memory (its member has
    /// some, or it has no member of its own and may read anyone's), it is applied after a
    /// savepoint; if it did read one, it is rolled back, the years it read are read back from
    /// the store and it is applied again: what it decides never rests on a year it could not
    /// see (`LedgerState::take_misses`).
    fn apply(&mut self, event: Event) -> Result<Result<u64, ApplyError>, Refusal> {
        // Every miss is taken after the event that made it, and a rollback (or a batch
        // dropped) drops those left: none is left from before.
        let guarded = self.batch.any_cold_years()
            && event.body.member().is_none_or(|m| self.batch.has_cold_years(m));
        if !guarded {
            let applied = self.batch.apply(event, self.recorded_at, &self.lookup);
            let missed = self.batch.take_misses();
            // Only its own member's book can be read by an event with a member, and that
            // one has no year out of memory.
            assert!(missed.is_empty(), "an unguarded event read a year out of memory");
            return Ok(applied);
        }
        let (lookup, recorded_at) = (&self.lookup, self.recorded_at);
        crate::derived::applied_reading_back(lookup.store, &mut self.batch, |b| {
            b.apply(event.clone(), recorded_at, lookup)
        })
        .map_err(|e| match e {
            ReadBackError::Read(e) => Refusal::Read(e),
            ReadBackError::Missed(member) => Refusal::Read(ReadError::Corrupt(format!(
                "an event read member {member}'s years out of memory, which it has none of"
            ))),
        })
    }
}

/// The answer to a request that was checked, its new entries (if any) ending at `head_hex`.
pub(super) fn summary_of(
    c: &Checked,
    head_seq: u64,
    head_hex: String,
    timings: PostTimings,
) -> PostSummary {
    let seqs: Vec<u64> = c
        .slots
        .iter()
        .map(|s| match s {
            Slot::New(k) => head_seq + 1 + *k as u64,
            Slot::Replay(seq) => *seq,
        })
        .collect();
    let replayed = c.slots.iter().filter(|s| matches!(s, Slot::Replay(_))).count();
    let (first_seq, last_seq) = if c.new_count > 0 {
        let first = head_seq + 1 + c.first_new as u64;
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
}

/// Every request is answered (refused up front or while checked) or checked, in order.
pub(super) fn answer_all(
    answers: Vec<Option<Result<PostSummary, PostError>>>,
    checked: Vec<Option<Checked>>,
    each: &dyn Fn(Checked) -> Result<PostSummary, PostError>,
) -> Vec<Result<PostSummary, PostError>> {
    answers
        .into_iter()
        .zip(checked)
        .map(|(a, c)| match (a, c) {
            (Some(a), _) => a,
            (None, Some(c)) => each(c),
            (None, None) => unreachable!("every request is answered or checked"),
        })
        .collect()
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
) -> Result<Option<Vec<String>>, ApplyError> {
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
        EventBody::Reversal { of, .. } => {
            let in_batch = batch.entries().iter().find(|e| &e.event.id == of);
            match in_batch {
                Some(e) => transfer(&e.event.body),
                None => junbao_ledger::EntryLookup::entry_by_event_id(lookup, of)?
                    .is_some_and(|e| transfer(&e.event.body)),
            }
        }
        _ => false,
    };
    if transfer(&event.body) || reverses_transfer {
        return Err(ApplyError::Refused(EventError::field(
            "type",
            format!(
                "a {} event needs a clerk or admin token (POST /v1/transfers); posters may not",
                event.body.type_name()
            ),
        )));
    }
    // Art. 18: an amount decided under the State's provisions is recorded by an admin, never by
    // a unit's poster (the ledger cannot check it).
    if matches!(
        event.body,
        EventBody::Subsidy { basis: junbao_ledger::event::Basis::Provision, .. }
    ) {
        return Err(ApplyError::Refused(EventError::field(
            "basis",
            "a subsidy with basis provision (Art. 18) needs an admin token; posters may not",
        )));
    }
    if let Some(unit) = event.body.unit()
        && !units.contains(unit.as_str())
    {
        // The unit is the poster's own input: naming it tells nothing new.
        return Err(ApplyError::Refused(EventError::field(
            "unit",
            format!("unit {unit} is not among the units this token posts for"),
        )));
    }
    let named = event.body.unit().map(|u| vec![u.as_str().to_string()]);
    let concerned = batch.member_concerned(event, lookup)?;
    let answer = match concerned {
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
    };
    answer.map_err(ApplyError::Refused)
}
