//! The batch machinery: beginning, applying, rolling back, sealing and committing a batch,
//! and replaying stored entries into state.

use crate::keyed::KeyedMap;

use super::{
    ApplyError, BalanceBound, Batch, BatchChanges, EntryLookup, InPlace, LookupError,
    PARALLEL_ENTRIES_MIN, PreparedBatch, Replaced, Savepoint, StateChanges, Undo, refuse,
};
use crate::entry::{
    CHAIN_GENESIS, ENTRY_FORMAT_VERSION, Entry, Hash32, Posting, SealedEntries, check_postings,
};
use crate::event::{Event, EventBody, EventError};
use crate::fund::{Account, Fund};
use crate::ids::{EventId, MemberId};
use crate::money::Fen;
use crate::standard::StandardName;
use crate::state::{LedgerState, Line, MemberState, PeriodMoney};
use crate::time::{Date, Period};

impl LedgerState {
    /// Starts a batch whose first entry will be `head_seq + 1`. Every entry's balances are
    /// checked account by account ([`LedgerState::begin_bounded`] leaves that out while a
    /// bound says it passes).
    pub fn begin(&mut self, head_seq: u64, head: Hash32) -> Batch<'_> {
        self.begin_bounded(head_seq, head, BalanceBound::UNKNOWN)
    }

    /// [`LedgerState::begin`], with `bound` a bound on this state's balances and year's sums
    /// ([`BalanceBound`]): the per-account overflow check is left out while it covers them.
    pub fn begin_bounded(&mut self, head_seq: u64, head: Hash32, bound: BalanceBound) -> Batch<'_> {
        if head_seq == 0 {
            assert_eq!(head, CHAIN_GENESIS, "an empty ledger's head is h_0");
        }
        Batch {
            in_place: InPlace { state: self, log: Vec::new() },
            bound,
            changes: StateChanges::default(),
            entries: Vec::new(),
            by_event: KeyedMap::default(),
            undo: Vec::new(),
            savepoints_open: 0,
            next_seq: head_seq + 1,
            first_seq: head_seq + 1,
            head,
        }
    }

    /// Applies the changes a batch kept apart from the state ([`BatchChanges::commit`]).
    pub(crate) fn commit(&mut self, changes: StateChanges) {
        for (id, m) in changes.members {
            match self.members.get_mut(&id) {
                Some(held) => **held = m,
                None => {
                    self.members.insert(id, Box::new(m));
                }
            }
        }
        if let Some(s) = changes.standards {
            self.standards = s;
        }
        for k in changes.uninterest {
            self.interest_credited.remove(&k);
        }
        self.interest_credited.extend(changes.interest);
        self.reversed.extend(changes.reversed);
        if let Some(a) = changes.admin {
            self.admin = a;
        }
        self.backpaid.extend(changes.backpaid);
    }

    /// Rebuilds balances and member state from stored entries, in order, without rule checks.
    /// Reversals undo their target's effects; targets are found among the replayed entries.
    pub fn replay<'e>(entries: impl IntoIterator<Item = &'e Entry>) -> LedgerState {
        let mut replayer = Replayer::keeping_every_entry();
        for entry in entries {
            replayer.push(entry);
        }
        replayer.finish()
    }
}

impl StateChanges {
    /// Whether nothing was changed.
    fn is_untouched(&self) -> bool {
        let StateChanges {
            members,
            standards,
            interest,
            uninterest,
            reversed,
            admin,
            backpaid,
            moved: _,
        } = self;
        members.is_empty()
            && standards.is_none()
            && interest.is_empty()
            && uninterest.is_empty()
            && reversed.is_empty()
            && admin.is_none()
            && backpaid.is_empty()
    }

    /// Forgets every change, keeping the maps' room.
    fn clear(&mut self) {
        let StateChanges {
            members,
            standards,
            interest,
            uninterest,
            reversed,
            admin,
            backpaid,
            moved,
        } = self;
        members.clear();
        *standards = None;
        interest.clear();
        uninterest.clear();
        reversed.clear();
        *admin = None;
        backpaid.clear();
        *moved = 0;
    }

    /// Puts back what one change replaced. An event index is put back only if it points
    /// before `entries_len`, the entries the rollback keeps.
    fn undo(&mut self, undo: Undo, by_event: &mut KeyedMap<EventId, usize>, entries_len: usize) {
        fn put_back<K: std::hash::Hash + Eq, V>(
            map: &mut KeyedMap<K, V>,
            key: K,
            before: Option<V>,
        ) {
            match before {
                Some(v) => map.insert(key, v),
                None => map.remove(&key),
            };
        }
        match undo {
            Undo::Member(id, before) => put_back(&mut self.members, id, before.map(|m| *m)),
            Undo::Backpaid(id, before) => put_back(&mut self.backpaid, id, before),
            Undo::Standards(before) => self.standards = before,
            Undo::Admin(before) => self.admin = before,
            Undo::Interest(before) => self.interest = before,
            Undo::EventIndex(id, position) => {
                if position < entries_len {
                    by_event.insert(id, position);
                }
            }
        }
    }
}

/// How [`Replayer::push_all_given_reading_back`] reads a member's years out of memory back
/// into a batch ([`Batch::fault_in`]).
pub type ReadBack<'f, E> = dyn FnMut(&mut Batch<'_>, &MemberId) -> Result<(), E> + 'f;

/// [`LedgerState::replay`] one entry at a time, for a journal too large to hold in memory
/// (`verify` streams it). A reversal undoes its target's effects, so the replayer keeps the
/// entries that later reversals name: every entry, or only those in a set known in advance
/// (a first pass over the journal collects the reversals' targets).
#[derive(Debug)]
pub struct Replayer {
    state: LedgerState,
    kept: KeyedMap<EventId, Entry>,
    keep_only: Option<std::collections::HashSet<EventId>>,
    /// The first entry whose effects could not be applied, and why.
    unreplayable: Option<(u64, String)>,
    /// A bound on every balance and year's sum of a member account: the sum of the absolute
    /// amounts of every posting applied so far (the replay starts from an empty state). While
    /// it stays within an i64 the per-account check of `check_balances_fit` is left out.
    bound: BalanceBound,
}

impl Replayer {
    /// Keeps every entry (small journals, tests).
    pub fn keeping_every_entry() -> Replayer {
        Replayer {
            state: LedgerState::default(),
            kept: KeyedMap::default(),
            keep_only: None,
            unreplayable: None,
            bound: BalanceBound::ZERO,
        }
    }

    /// Keeps only the entries whose event ids are in `targets`: every id a reversal names.
    pub fn keeping(targets: std::collections::HashSet<EventId>) -> Replayer {
        Replayer {
            state: LedgerState::default(),
            kept: KeyedMap::default(),
            keep_only: Some(targets),
            unreplayable: None,
            bound: BalanceBound::ZERO,
        }
    }

    /// Keeps no entry: the caller gives, with each call of [`Replayer::push_all_given`], the
    /// entry that every reversal among the entries names.
    pub fn keeping_none() -> Replayer {
        Replayer::keeping(std::collections::HashSet::new())
    }

    /// Makes room in the replayed state for about this many members, books and balances
    /// ([`LedgerState::reserve`]).
    pub fn reserve(&mut self, members: usize, books: usize, balances: usize) {
        self.state.reserve(members, books, balances);
    }

    /// Applies the next entry, without rule checks.
    pub fn push(&mut self, entry: &Entry) {
        self.push_all(std::slice::from_ref(entry));
    }

    /// Applies the next entries, in order, as one batch over the state (a batch reads its own
    /// changes first, so an entry sees every earlier one): one commit per call, not per entry.
    pub fn push_all(&mut self, entries: &[Entry]) {
        let _ = self.push_all_inner::<std::convert::Infallible>(entries, None, None);
    }

    /// As [`Replayer::push_all`], but the entry a reversal names is `targets[the reversal's
    /// seq]`, as the caller read it: the last entry before the reversal that carries the event
    /// id it names (none: no entry does). Once an entry could not be replayed, no reversal is
    /// applied any more (the target may be that entry; the first such entry is reported).
    pub fn push_all_given<'e>(
        &mut self,
        entries: impl IntoIterator<Item = &'e Entry>,
        targets: &std::collections::HashMap<u64, Entry>,
    ) {
        let _ = self.push_all_inner::<std::convert::Infallible>(entries, Some(targets), None);
    }

    /// As [`Replayer::push_all_given`] over a state whose books may have let go of years
    /// ([`Replayer::evict_through`]): an entry one of whose members has years out of memory is
    /// applied after a savepoint and, if it read any of them, rolled back, the years of the
    /// members it read read back by `read_back` ([`Batch::fault_in`]), and applied again; so
    /// nothing it does rests on a year it could not see. `Ok(false)` (the state is then not the
    /// entries' any more) if an entry read years out of memory of a member it names nowhere:
    /// there is nothing to roll back to.
    pub fn push_all_given_reading_back<'e, E>(
        &mut self,
        entries: impl IntoIterator<Item = &'e Entry>,
        targets: &std::collections::HashMap<u64, Entry>,
        read_back: &mut ReadBack<'_, E>,
    ) -> Result<bool, E> {
        self.push_all_inner(entries, Some(targets), Some(read_back))
    }

    fn push_all_inner<'e, E>(
        &mut self,
        entries: impl IntoIterator<Item = &'e Entry>,
        given: Option<&std::collections::HashMap<u64, Entry>>,
        mut read_back: Option<&mut ReadBack<'_, E>>,
    ) -> Result<bool, E> {
        let mut batch = self.state.begin_bounded(0, CHAIN_GENESIS, self.bound);
        let mut result = Ok(true);
        'entries: for entry in entries {
            let cold = read_back.is_some() && batch.any_cold_years();
            let stopped = self.unreplayable.is_some();
            let apply = |batch: &mut Batch<'_>| {
                apply_recorded_effects(batch, entry, given, &self.kept, stopped)
            };
            let applied = if cold && names_member_with_cold_years(&batch, entry) {
                loop {
                    let savepoint = batch.savepoint();
                    let applied = apply(&mut batch);
                    let missed = batch.take_misses();
                    if missed.is_empty() {
                        batch.release(savepoint);
                        break applied;
                    }
                    batch.rollback(savepoint);
                    if missed.iter().any(|m| !batch.has_cold_years(m)) {
                        result = Ok(false);
                        break 'entries;
                    }
                    let read_back = read_back.as_mut().expect("only when reading back");
                    for member in &missed {
                        if let Err(e) = read_back(&mut batch, member) {
                            result = Err(e);
                            break 'entries;
                        }
                        // Each round reads back at least one book, or stops: the rounds end.
                        if batch.has_cold_years(member) {
                            result = Ok(false);
                            break 'entries;
                        }
                    }
                }
            } else {
                let applied = apply(&mut batch);
                if cold && !batch.take_misses().is_empty() {
                    result = Ok(false);
                    break;
                }
                applied
            };
            // Stored bytes that decode but could not have been recorded (tampered): their
            // effects are not applied, and the first is kept for the caller to report.
            if let Err(why) = applied {
                self.unreplayable.get_or_insert((entry.seq, why));
                continue;
            }
            // `keeping_none` keeps nothing: no id is hashed to find that out.
            if self
                .keep_only
                .as_ref()
                .is_none_or(|ids| !ids.is_empty() && ids.contains(&entry.event.id))
            {
                self.kept.insert(entry.event.id.clone(), entry.clone());
            }
        }
        let (changes, _) = batch.into_changes();
        self.bound = self.bound.after(&changes);
        changes.commit();
        result
    }

    /// Lets go of `member`'s years up to `through` ([`LedgerState::evict_through`]: the caller
    /// guarantees that the pages [`LedgerState::years_to_let_go`] gave for them are stored, and
    /// reads them back with [`Replayer::push_all_given_reading_back`]).
    pub fn evict_through(&mut self, member: &MemberId, through: u16) -> bool {
        self.state.evict_through(member, through)
    }

    /// The first entry pushed that could not have been recorded (its effects were left out),
    /// and why: in a stored journal, tampered bytes that still decode.
    pub fn unreplayable(&self) -> Option<&(u64, String)> {
        self.unreplayable.as_ref()
    }

    /// The state the entries pushed so far imply, while pushing goes on.
    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    /// The state the entries pushed so far imply.
    pub fn finish(self) -> LedgerState {
        self.state
    }
}

/// Whether a member [`entry_members`] gives for `entry` has years out of memory in `batch`'s
/// state (without collecting them: a premium names its member three times over).
fn names_member_with_cold_years(batch: &Batch<'_>, entry: &Entry) -> bool {
    let mut last: Option<&MemberId> = None;
    let members = entry.event.body.member().into_iter();
    members.chain(entry.postings.iter().filter_map(|p| p.account.member_id())).any(|m| {
        if last == Some(m) {
            return false;
        }
        last = Some(m);
        batch.has_cold_years(m)
    })
}

/// What [`Replayer`] does with one recorded entry: checks that it could have been recorded
/// (else why not, and nothing is applied), undoes the effects of the entry a reversal names
/// (`given` by the caller, or among `kept`; none once an entry could not be replayed,
/// `stopped`), and applies the entry's own.
fn apply_recorded_effects(
    batch: &mut Batch<'_>,
    entry: &Entry,
    given: Option<&std::collections::HashMap<u64, Entry>>,
    kept: &KeyedMap<EventId, Entry>,
    stopped: bool,
) -> Result<(), String> {
    batch.check_recorded_entry(entry).map_err(|why| why.to_string())?;
    let target = match (&entry.event.body, given) {
        (EventBody::Reversal { .. }, Some(_)) if stopped => None,
        (EventBody::Reversal { .. }, Some(given)) => given.get(&entry.seq),
        (EventBody::Reversal { of, .. }, None) => kept.get(of),
        _ => None,
    };
    if let Some(target) = target {
        batch.undo_effects(target);
        batch.changes.reversed.push(target.seq);
    }
    batch.replay_entry(entry);
    Ok(())
}

impl StateChanges {
    /// Notes in `dirty` every state record and balance these changes touch.
    pub(crate) fn mark(&self, dirty: &mut crate::state::Dirty) {
        dirty.members.extend(self.members.keys().cloned());
        dirty.backpaid.extend(self.backpaid.keys().cloned());
        dirty.interest.extend(self.interest.iter().chain(&self.uninterest).copied());
        dirty.reversed.extend(&self.reversed);
        dirty.standards |= self.standards.is_some();
        dirty.admin |= self.admin.is_some();
    }
}

/// The sum of the absolute amounts of `postings`.
pub(super) fn absolute_sum(postings: &[Posting]) -> u128 {
    postings.iter().map(|p| u128::from(p.amount.0.unsigned_abs())).sum()
}

/// The members an entry concerns: the one its event names and every one whose account it
/// posts to, sorted, each once (the member index, docs/FORMAT.md §3).
pub fn entry_members(entry: &Entry) -> Vec<&MemberId> {
    let mut members: Vec<&MemberId> = entry.event.body.member().into_iter().collect();
    members.extend(entry.postings.iter().filter_map(|p| p.account.member_id()));
    members.sort();
    members.dedup();
    members
}

impl<'s> Batch<'s> {
    /// The changes of a batch of recorded entries (replayed, not sealed: their bytes are
    /// stored already), with the entries.
    pub fn into_changes(self) -> (BatchChanges<'s>, Vec<Entry>) {
        (BatchChanges { in_place: self.in_place, changes: self.changes }, self.entries)
    }

    /// The state the batch was begun on, with the batch's premium months, year's sums and
    /// balances in it (its other changes are in `changes`).
    pub(super) fn base(&self) -> &LedgerState {
        self.in_place.state
    }

    /// The state's members whose book was read or changed in a year out of memory since the
    /// last call ([`LedgerState::take_misses`]): what read it must be rolled back, the years
    /// read back ([`Batch::fault_in`]) and done again.
    pub fn take_misses(&self) -> Vec<MemberId> {
        self.base().take_misses()
    }

    /// Whether the state has any book with years out of memory.
    pub fn any_cold_years(&self) -> bool {
        self.base().any_cold_years()
    }

    /// Whether `member`'s book has years out of memory.
    pub fn has_cold_years(&self, member: &MemberId) -> bool {
        self.base().has_cold_years(member)
    }

    /// `member`'s last year out of memory, if any.
    pub fn cold_through(&self, member: &MemberId) -> Option<u16> {
        self.base().cold_through(member)
    }

    /// Reads `member`'s years out of memory back from their stored pages
    /// ([`LedgerState::fault_in`]): the state holds the same, so nothing is logged for a
    /// rollback. Never in a year the batch changed: those are in memory.
    pub fn fault_in<'p>(
        &mut self,
        member: &MemberId,
        pages: impl IntoIterator<Item = (u16, &'p [u8])>,
    ) -> Result<(), crate::state::FaultInError> {
        self.in_place.state.fault_in(member, pages)
    }

    pub(super) fn member(&self, id: &MemberId) -> Option<&MemberState> {
        self.changes.members.get(id).or_else(|| self.in_place.state.members.get(id).map(|m| &**m))
    }

    pub(super) fn member_mut(&mut self, id: &MemberId) -> &mut MemberState {
        if self.logging() {
            let before = self.changes.members.get(id).cloned();
            self.undo.push(Undo::Member(id.clone(), before.map(Box::new)));
        }
        if !self.changes.members.contains_key(id) {
            let m = MemberState::clone(
                self.in_place.state.members.get(id).expect("member checked before mutation"),
            );
            self.changes.members.insert(id.clone(), m);
        }
        self.changes.members.get_mut(id).expect("inserted above")
    }

    /// Records a member's whole state (an enrolment).
    pub(super) fn set_member(&mut self, id: &MemberId, member: MemberState) {
        let before = self.changes.members.insert(id.clone(), member);
        if self.logging() {
            self.undo.push(Undo::Member(id.clone(), before.map(Box::new)));
        }
    }

    pub(super) fn period(&self, member: &MemberId, line: Line, period: Period) -> PeriodMoney {
        self.base().period(member, line, period).unwrap_or_default()
    }

    pub(super) fn update_period(
        &mut self,
        member: &MemberId,
        line: Line,
        period: Period,
        f: impl FnOnce(&mut PeriodMoney),
    ) {
        let before = self.period(member, line, period);
        let mut money = before;
        f(&mut money);
        self.in_place.set_period(member, line, period, before, money);
    }

    pub(super) fn admin(&self) -> &crate::admin::AdminState {
        self.changes.admin.as_ref().unwrap_or(&self.in_place.state.admin)
    }

    pub(super) fn admin_mut(&mut self) -> &mut crate::admin::AdminState {
        if self.logging() {
            self.undo.push(Undo::Admin(self.changes.admin.clone()));
        }
        self.changes.admin.get_or_insert_with(|| self.in_place.state.admin.clone())
    }

    pub(super) fn backpaid(&self, member: &MemberId) -> crate::backpay::Backpaid {
        self.changes
            .backpaid
            .get(member)
            .or_else(|| self.in_place.state.backpaid.get(member))
            .copied()
            .unwrap_or_default()
    }

    pub(super) fn set_backpaid(&mut self, member: &MemberId, months: crate::backpay::Backpaid) {
        let before = self.changes.backpaid.insert(member.clone(), months);
        if self.logging() {
            self.undo.push(Undo::Backpaid(member.clone(), before));
        }
    }

    pub(super) fn set_standards(&mut self, standards: crate::standard::Standards) {
        let before = self.changes.standards.replace(standards);
        if self.logging() {
            self.undo.push(Undo::Standards(before));
        }
    }

    /// Takes the interest credit of `key` out of this batch (its entry is reversed).
    pub(super) fn drop_interest(&mut self, key: (Fund, Period)) {
        if self.logging() {
            self.undo.push(Undo::Interest(self.changes.interest.clone()));
        }
        self.changes.interest.retain(|k| k != &key);
        self.changes.uninterest.push(key);
    }

    pub(super) fn standards(&self) -> &crate::standard::Standards {
        self.changes.standards.as_ref().unwrap_or(&self.in_place.state.standards)
    }

    pub(super) fn balance(&self, account: &Account) -> Fen {
        self.base().balance(account)
    }

    pub(super) fn is_reversed(&self, seq: u64) -> bool {
        self.base().reversed.contains(&seq) || self.changes.reversed.contains(&seq)
    }

    pub(super) fn interest_done(&self, key: &(Fund, Period)) -> bool {
        (self.base().interest_credited.contains(key) && !self.changes.uninterest.contains(key))
            || self.changes.interest.contains(key)
    }

    pub(super) fn standard(&self, name: StandardName, date: Date) -> Result<i64, EventError> {
        self.standards()
            .in_force(name.as_str(), date)
            .ok_or_else(|| EventError::event(format!("no standard {name} is in force on {date}")))
    }

    /// Whether changes are logged for a rollback: a savepoint of a batch already changed is
    /// open.
    fn logging(&self) -> bool {
        self.savepoints_open > 0
    }

    /// Makes room for `events` more entries and the state they change (a request's events).
    pub fn reserve(&mut self, events: usize) {
        self.entries.reserve(events);
        self.by_event.reserve(events);
        // A premium: its month, two or three of the fund's own balances and a year's sum.
        self.in_place.log.reserve(6 * events);
    }

    /// Marks where the batch stands now, to undo what follows ([`Batch::rollback`]) or keep it
    /// ([`Batch::release`]). From here on each change logs what it replaces, so a rollback
    /// costs what the events since did, never a copy of the batch; a savepoint of a batch
    /// nothing changed yet logs nothing (a rollback empties the batch).
    pub fn savepoint(&mut self) -> Savepoint {
        let untouched =
            self.entries.is_empty() && self.changes.is_untouched() && self.in_place.log.is_empty();
        let sp = Savepoint {
            entries_len: self.entries.len(),
            next_seq: self.next_seq,
            undo_len: self.undo.len(),
            in_place_len: self.in_place.log.len(),
            interest_len: self.changes.interest.len(),
            uninterest_len: self.changes.uninterest.len(),
            reversed_len: self.changes.reversed.len(),
            moved: self.changes.moved,
            untouched,
            savepoints_open: self.savepoints_open,
        };
        if !untouched {
            self.savepoints_open += 1;
        }
        sp
    }

    /// Keeps every event applied since `savepoint` was taken (and closes savepoints taken
    /// after it).
    pub fn release(&mut self, savepoint: Savepoint) {
        self.close_to(&savepoint);
    }

    /// Undoes every event applied since `savepoint` was taken: the changes, entries, event
    /// index and next sequence number are exactly as they were then (savepoints taken after it
    /// are closed).
    pub fn rollback(&mut self, savepoint: Savepoint) {
        assert!(
            savepoint.entries_len <= self.entries.len()
                && savepoint.undo_len <= self.undo.len()
                && savepoint.in_place_len <= self.in_place.log.len(),
            "a savepoint of this batch, still open"
        );
        for entry in self.entries.drain(savepoint.entries_len..) {
            self.by_event.remove(&entry.event.id);
        }
        self.next_seq = savepoint.next_seq;
        if savepoint.untouched {
            self.changes.clear();
            self.by_event.clear();
            self.undo.clear();
        }
        while self.undo.len() > savepoint.undo_len {
            let undo = self.undo.pop().expect("longer than the savepoint's log");
            self.changes.undo(undo, &mut self.by_event, savepoint.entries_len);
        }
        self.changes.interest.truncate(savepoint.interest_len);
        self.changes.uninterest.truncate(savepoint.uninterest_len);
        self.changes.reversed.truncate(savepoint.reversed_len);
        self.changes.moved = savepoint.moved;
        self.in_place.undo_to(savepoint.in_place_len);
        self.close_to(&savepoint);
    }

    fn close_to(&mut self, savepoint: &Savepoint) {
        self.savepoints_open = savepoint.savepoints_open;
        if self.savepoints_open == 0 {
            self.undo.clear();
        }
    }

    /// The position in this batch of the entry with event id `id`, if it is in the batch.
    pub fn position_of(&self, id: &EventId) -> Option<usize> {
        self.by_event.get(id).copied()
    }

    /// The units whose posters may post about a member: every unit the member served in (a
    /// premium is withheld by the unit of its month, Art. 32 ¶1, so a back-dated one comes from a
    /// former unit), and for a spouse every unit of the serviceman, which withholds the spouse's
    /// premiums (Art. 32 ¶2). Empty for an unknown member.
    pub fn member_posting_units(&self, id: &MemberId) -> Vec<&crate::ids::UnitId> {
        let Some(m) = self.member(id) else { return Vec::new() };
        let sponsor = m.sponsor.as_deref().and_then(|s| self.member(s));
        m.units
            .iter()
            .chain(sponsor.into_iter().flat_map(|s| s.units.iter()))
            .map(|(_, u)| u)
            .collect()
    }

    /// The member an event is about; for a reversal, the member of the entry it reverses.
    /// `None` for fund-level events (appropriation, interest, standard) and unknown targets;
    /// an error if the target could not be read.
    pub fn member_concerned(
        &self,
        event: &Event,
        lookup: &dyn EntryLookup,
    ) -> Result<Option<MemberId>, LookupError> {
        if let EventBody::Reversal { of, .. } = &event.body {
            let target = match self.by_event.get(of) {
                Some(i) => self.entries[*i].event.clone(),
                None => match lookup.entry_by_event_id(of)? {
                    Some(e) => e.event,
                    None => return Ok(None),
                },
            };
            return Ok(target.body.member().cloned());
        }
        Ok(event.body.member().cloned())
    }

    /// The entry with event id `of`: in this batch, or earlier through `lookup`. Refused if
    /// there is none; a failed read is the lookup's error, not a refusal.
    pub(super) fn earlier_entry(
        &self,
        of: &EventId,
        lookup: &dyn EntryLookup,
    ) -> Result<Entry, ApplyError> {
        match self.by_event.get(of) {
            Some(i) => Ok(self.entries[*i].clone()),
            None => lookup
                .entry_by_event_id(of)?
                .ok_or_else(|| refuse("of", format!("no entry with event id {of:?}")).into()),
        }
    }

    /// The entries applied so far, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks `event` against the law and the state so far, and adds its entry to the batch.
    /// On refusal (or a failed read of an entry it needs) the batch is unchanged.
    pub fn apply(
        &mut self,
        event: Event,
        recorded_at_us: i64,
        lookup: &dyn EntryLookup,
    ) -> Result<u64, ApplyError> {
        let recorded_date = Date::from_naive(
            chrono::DateTime::from_timestamp_micros(recorded_at_us)
                .expect("recording clock is within chrono's range")
                .date_naive(),
        );
        let value_date = event
            .value_date
            .or_else(|| event.body.natural_date())
            .or_else(|| match &event.body {
                EventBody::Interest { period, .. } => Some(period.last_day()),
                _ => None,
            })
            .unwrap_or(recorded_date);
        if value_date > recorded_date {
            let field = if event.value_date.is_some() { "value_date" } else { "type" };
            return Err(refuse(field, format!("value date {value_date} is in the future")).into());
        }
        crate::admin::check_sealed(self.admin(), &event.body, value_date)?;
        // Every rule checks before it changes anything, so a refusal leaves the batch as it was.
        let postings = self.rules(&event, value_date, lookup)?;
        self.push(event, value_date, recorded_at_us, postings);
        Ok(self.next_seq - 1)
    }

    pub(super) fn push(
        &mut self,
        event: Event,
        value_date: Date,
        recorded_at_us: i64,
        postings: Vec<Posting>,
    ) {
        if let Err(why) = check_postings(&postings) {
            panic!("rules produced invalid postings for {}: {why}", event.id);
        }
        self.add_deltas(&postings, value_date);
        self.index_event(&event.id);
        self.entries.push(Entry {
            format: ENTRY_FORMAT_VERSION,
            seq: self.next_seq,
            recorded_at_us,
            value_date,
            event,
            postings,
        });
        self.next_seq += 1;
    }

    /// Re-applies a stored entry's state effects (postings as recorded, no rule checks).
    pub(super) fn replay_entry(&mut self, entry: &Entry) {
        self.next_seq = entry.seq;
        self.effects_only(&entry.event, entry.value_date, &entry.postings);
        self.add_deltas(&entry.postings, entry.value_date);
    }

    /// Adds an entry another ledger has already recorded (a mirror following it): its own
    /// postings and state effects, without the rules, as [`LedgerState::replay`] does, so
    /// that the materialised state is the recording ledger's. Refuses an entry out of
    /// sequence, with unbalanced postings, about a member the state does not know, or
    /// reversing an entry that does not exist. The caller compares the sealed bytes with the
    /// ones it was given.
    /// What an entry decoded from stored or sent bytes (never parsed, never checked by the
    /// rules here) must satisfy before its effects are applied, so that applying them cannot
    /// panic: balanced postings, balances that stay within range, a member the state knows
    /// (except for the events that may name a new one), a known standard with a valid value.
    pub(super) fn check_recorded_entry(&self, entry: &Entry) -> Result<(), ApplyError> {
        check_postings(&entry.postings).map_err(|why| refuse("postings", why))?;
        self.check_balances_fit(&entry.postings, entry.value_date)?;
        let body = &entry.event.body;
        // As the rules: only these may name a member this ledger has not enrolled.
        if !matches!(
            body,
            EventBody::Enroll { .. } | EventBody::Backpay { .. } | EventBody::BackpayV1 { .. }
        ) && let Some(m) = body.member()
            && self.member(m).is_none()
        {
            return Err(refuse("member", format!("member {m} is not enrolled")).into());
        }
        // A standard's name and value are checked when an event is parsed; an entry decoded
        // from bytes was never parsed, so they are checked here.
        if let EventBody::Standard { name, value, .. } = body {
            let spec = crate::standard::spec(name)
                .ok_or_else(|| refuse("name", format!("{name} is not a known standard")))?;
            crate::standard::parse_value(spec, value).map_err(|why| refuse("value", why))?;
        }
        Ok(())
    }

    /// [`LedgerState::warm`] on the state the batch was begun on.
    pub fn warm(&self, entry: &Entry) -> usize {
        self.base().warm(entry)
    }

    pub fn apply_recorded(
        &mut self,
        entry: Entry,
        lookup: &dyn EntryLookup,
    ) -> Result<u64, ApplyError> {
        if entry.seq != self.next_seq {
            return Err(refuse(
                "seq",
                format!("entry {} where entry {} was due", entry.seq, self.next_seq),
            )
            .into());
        }
        self.check_recorded_entry(&entry)?;
        let body = &entry.event.body;
        if let EventBody::Reversal { of, .. } = body {
            let target = self.earlier_entry(of, lookup)?;
            self.undo_effects(&target);
            self.changes.reversed.push(target.seq);
        }
        self.effects_only(&entry.event, entry.value_date, &entry.postings);
        self.add_deltas(&entry.postings, entry.value_date);
        self.index_event(&entry.event.id);
        self.entries.push(entry);
        self.next_seq += 1;
        Ok(self.next_seq - 1)
    }

    /// Whether no balance or year's sum can leave an i64 when an entry whose postings'
    /// absolute amounts sum to `entry` is added: the batch's bound covers it.
    pub(super) fn bound_covers(&self, entry: u128) -> bool {
        self.bound.covers(self.changes.moved.saturating_add(entry))
    }

    /// Indexes the entry about to be pushed by its event id.
    fn index_event(&mut self, id: &EventId) {
        let position = self.entries.len();
        // An id twice in one batch (the rules do not refuse it; the engine answers a replay or a
        // conflict first) points to its last entry; a rollback restores the earlier one.
        if let Some(earlier) = self.by_event.insert(id.clone(), position)
            && self.logging()
        {
            self.undo.push(Undo::EventIndex(id.clone(), earlier));
        }
    }

    pub(super) fn add_deltas(&mut self, postings: &[Posting], value_date: Date) {
        let year = value_date.period().year;
        self.changes.moved = self.changes.moved.saturating_add(absolute_sum(postings));
        for p in postings {
            // A member account's balance is the sum of its yearly sums.
            if p.account.member_id().is_some() {
                self.in_place.add_year_move(&p.account, year, p.amount);
            } else {
                self.in_place.add_balance(&p.account, p.amount);
            }
        }
    }

    /// The member account's balance at the end of `year` by value date (Art. 31 interest).
    pub(super) fn balance_at_year_end(&self, account: &Account, year: u16) -> Fen {
        // Years of value dates are 1949-2199 (time.rs), so this is a bounded scan.
        Fen(self.base().year_moves_through(account, 1949, year))
    }

    /// Seals the batch: canonical bytes and chain hashes, the member index of its entries, and
    /// its changes to the state.
    pub fn finish(self) -> PreparedBatch<'s> {
        // Encoding is independent per entry; only the chain is sequential. Small batches (the
        // HTTP service's groups) stay on this thread: waking the pool costs more than it saves.
        let (sealed, head) =
            SealedEntries::seal(self.first_seq, &self.entries, self.head, PARALLEL_ENTRIES_MIN);
        let mut member_index = Vec::new();
        for entry in &self.entries {
            member_index.extend(entry_members(entry).into_iter().map(|m| (m.clone(), entry.seq)));
        }
        PreparedBatch {
            member_index,
            head_seq: self.next_seq - 1,
            head,
            entries: sealed,
            changes: BatchChanges { in_place: self.in_place, changes: self.changes },
        }
    }
}

impl InPlace<'_> {
    /// Sets a premium line's money, logging what it held (`before`).
    fn set_period(
        &mut self,
        member: &MemberId,
        line: Line,
        period: Period,
        before: PeriodMoney,
        money: PeriodMoney,
    ) {
        self.log.push(Replaced::Period((member.clone(), line, period), before));
        self.state.set_period(member, line, period, money);
    }

    /// Adds `amount` to the balance of one of the fund's own accounts, logging what it held.
    fn add_balance(&mut self, account: &Account, amount: Fen) {
        match self.state.fund_balances.get_mut(account) {
            Some(b) => {
                self.log.push(Replaced::Balance(account.clone(), Some(*b)));
                *b =
                    b.checked_add(amount).expect("balances stay within i64 (checked by the rules)");
            }
            None => {
                self.log.push(Replaced::Balance(account.clone(), None));
                self.state.fund_balances.insert(account.clone(), amount);
            }
        }
    }

    /// Adds `delta` to a member account's sum of `year`, logging it.
    fn add_year_move(&mut self, account: &Account, year: u16, delta: Fen) {
        self.log.push(Replaced::YearMove(account.clone(), year, delta));
        self.state.add_year_move(account, year, delta);
    }

    /// Undoes the changes logged after the first `len`, newest first. Undoing a change to a
    /// year out of memory notes a miss as the change did; every miss noted so far is dropped:
    /// what made them is undone (a rollback, or a batch dropped on an error), and a miss left
    /// behind would be taken for the next event's.
    fn undo_to(&mut self, len: usize) {
        self.undo_changes_to(len);
        let _ = self.state.take_misses();
    }

    fn undo_changes_to(&mut self, len: usize) {
        while self.log.len() > len {
            match self.log.pop().expect("longer than len") {
                Replaced::Period((member, line, period), before) => {
                    self.state.set_period(&member, line, period, before)
                }
                Replaced::Balance(account, Some(before)) => {
                    self.state.fund_balances.insert(account, before);
                }
                Replaced::Balance(account, None) => {
                    self.state.fund_balances.remove(&account);
                }
                Replaced::YearMove(account, year, delta) => {
                    self.state.add_year_move(&account, year, Fen(-delta.0))
                }
            }
        }
    }

    /// Notes in `dirty` the member-year page or balance of every change logged.
    fn mark(&self, dirty: &mut crate::state::Dirty) {
        for r in &self.log {
            match r {
                Replaced::Period((member, _, period), _) => dirty.note_page(member, period.year),
                Replaced::Balance(account, _) => dirty.note_balance(account),
                Replaced::YearMove(account, year, _) => {
                    if let Some(member) = account.member_id() {
                        dirty.note_page(member, *year);
                    }
                }
            }
        }
    }
}

impl Drop for InPlace<'_> {
    /// Not kept: every change is undone, newest first, and the state is as before the batch.
    fn drop(&mut self) {
        self.undo_to(0);
    }
}

impl BatchChanges<'_> {
    /// Keeps the batch's changes (once it is durable): those made in place stay, the others
    /// are applied to the state.
    pub fn commit(self) {
        let BatchChanges { mut in_place, changes } = self;
        in_place.log.clear();
        in_place.state.commit(changes);
    }

    /// [`BatchChanges::commit`], noting in `dirty` every state record and balance changed.
    pub fn commit_marking(self, dirty: &mut crate::state::Dirty) {
        self.in_place.mark(dirty);
        self.changes.mark(dirty);
        self.commit();
    }
}
