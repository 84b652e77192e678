//! The law's rules: an event, checked against the state, becomes an entry with postings.
//!
//! A [`Batch`] applies events on top of a [`LedgerState`] without changing it; its result is
//! either refused as a whole or committed as a whole after the storage layer made it durable.
//! Every refusal cites the article it enforces.

use std::collections::{BTreeMap, HashMap};

use crate::entry::{
    CHAIN_GENESIS, ENTRY_FORMAT_VERSION, Entry, Hash32, Posting, SealedEntry, chain_next,
    check_postings, encode,
};
use crate::event::{Basis, Benefit, Cause, Event, EventBody, EventError};
use crate::fund::{Account, AccountKind, Category, Fund, Holding, Source, SpousePart, Use};
use crate::ids::{EventId, MemberId};
use crate::money::{Fen, div_round_half_away};
use crate::standard;
use crate::state::{
    LedgerState, Line, MemberState, PeriodKey, PeriodMoney, StateWrite, Transfer, balance_key,
    interest_key, member_key, period_key, reversed_key, standards_key, year_key,
};
use crate::time::{Date, Period};

mod law;

pub use law::conscript_medical_subsidy;

/// Below this many entries, sealing a batch does not use the thread pool.
pub const PARALLEL_ENTRIES_MIN: usize = 512;

/// Reads earlier entries by event id; the storage layer provides it (reversals need it).
pub trait EntryLookup {
    fn entry_by_event_id(&self, id: &EventId) -> Option<Entry>;
}

/// A lookup that knows no entries (tests, and ledgers without reversals).
#[derive(Debug)]
pub struct NoLookup;

impl EntryLookup for NoLookup {
    fn entry_by_event_id(&self, _id: &EventId) -> Option<Entry> {
        None
    }
}

/// Changes a batch makes, applied to the state by [`LedgerState::commit`] once durable.
#[derive(Clone, Debug, Default)]
pub struct StateChanges {
    members: HashMap<MemberId, MemberState>,
    balance_deltas: HashMap<Account, Fen>,
    standards: Option<crate::standard::Standards>,
    interest: Vec<(Fund, Period)>,
    uninterest: Vec<(Fund, Period)>,
    reversed: Vec<u64>,
    periods: HashMap<PeriodKey, PeriodMoney>,
    admin: Option<crate::admin::AdminState>,
    year_moves: HashMap<(Account, u16), Fen>,
    backpaid: HashMap<MemberId, crate::backpay::Backpaid>,
}

/// A batch under construction. Nothing it does is visible until committed.
#[derive(Debug)]
pub struct Batch<'s> {
    base: &'s LedgerState,
    changes: StateChanges,
    entries: Vec<Entry>,
    by_event: HashMap<EventId, usize>,
    next_seq: u64,
    first_seq: u64,
    head: Hash32,
}

/// Where a batch stood before a group of events, to undo them as a whole
/// ([`Batch::rollback`]). The HTTP service gathers many requests into one batch; a request
/// whose third event is refused must leave no trace of its first two.
#[derive(Debug)]
pub struct Savepoint {
    changes: StateChanges,
    entries_len: usize,
}

/// A batch ready to write: sealed entries, state and balance writes, the new head.
#[derive(Debug)]
pub struct PreparedBatch {
    pub entries: Vec<SealedEntry>,
    pub state_writes: Vec<StateWrite>,
    /// (key, new balance in fen) for every account the batch touched.
    pub balance_writes: Vec<(Vec<u8>, i64)>,
    pub head_seq: u64,
    pub head: Hash32,
    pub changes: StateChanges,
    /// (member, seq) for every entry that names a member or posts to a member's account.
    pub member_index: Vec<(MemberId, u64)>,
}

fn refuse(field: &'static str, message: impl Into<String>) -> EventError {
    EventError::field(field, message)
}

impl LedgerState {
    /// Starts a batch whose first entry will be `head_seq + 1`.
    pub fn begin(&self, head_seq: u64, head: Hash32) -> Batch<'_> {
        if head_seq == 0 {
            assert_eq!(head, CHAIN_GENESIS, "an empty ledger's head is h_0");
        }
        Batch {
            base: self,
            changes: StateChanges::default(),
            entries: Vec::new(),
            by_event: HashMap::new(),
            next_seq: head_seq + 1,
            first_seq: head_seq + 1,
            head,
        }
    }

    /// Applies a durable batch's changes.
    pub fn commit(&mut self, changes: StateChanges) {
        for (id, m) in changes.members {
            self.members.insert(id, m);
        }
        for (account, delta) in changes.balance_deltas {
            let b = self.balances.entry(account).or_default();
            *b = b.checked_add(delta).expect("balances stay within i64 (amounts are bounded)");
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
        for (key, money) in changes.periods {
            if money == PeriodMoney::default() {
                self.periods.remove(&key);
            } else {
                self.periods.insert(key, money);
            }
        }
        self.backpaid.extend(changes.backpaid);
        for (key, delta) in changes.year_moves {
            let b = self.year_moves.entry(key.clone()).or_default();
            *b = b.checked_add(delta).expect("bounded amounts");
            if b.0 == 0 {
                self.year_moves.remove(&key);
            }
        }
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

/// [`LedgerState::replay`] one entry at a time, for a journal too large to hold in memory
/// (`verify` streams it). A reversal undoes its target's effects, so the replayer keeps the
/// entries that later reversals name: every entry, or only those in a set known in advance
/// (a first pass over the journal collects the reversals' targets).
#[derive(Debug)]
pub struct Replayer {
    state: LedgerState,
    kept: HashMap<EventId, Entry>,
    keep_only: Option<std::collections::HashSet<EventId>>,
}

impl Replayer {
    /// Keeps every entry (small journals, tests).
    pub fn keeping_every_entry() -> Replayer {
        Replayer { state: LedgerState::default(), kept: HashMap::new(), keep_only: None }
    }

    /// Keeps only the entries whose event ids are in `targets`: every id a reversal names.
    pub fn keeping(targets: std::collections::HashSet<EventId>) -> Replayer {
        Replayer { state: LedgerState::default(), kept: HashMap::new(), keep_only: Some(targets) }
    }

    /// Applies the next entry, without rule checks.
    pub fn push(&mut self, entry: &Entry) {
        self.push_all(std::slice::from_ref(entry));
    }

    /// Applies the next entries, in order, as one batch over the state (a batch reads its own
    /// changes first, so an entry sees every earlier one): one commit per call, not per entry.
    pub fn push_all(&mut self, entries: &[Entry]) {
        let mut batch = self.state.begin(0, CHAIN_GENESIS);
        for entry in entries {
            if let EventBody::Reversal { of, .. } = &entry.event.body
                && let Some(target) = self.kept.get(of)
            {
                batch.undo_effects(target);
                batch.changes.reversed.push(target.seq);
            }
            batch.replay_entry(entry);
            if self.keep_only.as_ref().is_none_or(|ids| ids.contains(&entry.event.id)) {
                self.kept.insert(entry.event.id.clone(), entry.clone());
            }
        }
        let changes = batch.changes;
        self.state.commit(changes);
    }

    /// The state the entries pushed so far imply.
    pub fn finish(self) -> LedgerState {
        self.state
    }
}

impl<'s> Batch<'s> {
    fn member(&self, id: &MemberId) -> Option<&MemberState> {
        self.changes.members.get(id).or_else(|| self.base.members.get(id))
    }

    fn member_mut(&mut self, id: &MemberId) -> &mut MemberState {
        if !self.changes.members.contains_key(id) {
            let m = self.base.members.get(id).expect("member checked before mutation").clone();
            self.changes.members.insert(id.clone(), m);
        }
        self.changes.members.get_mut(id).expect("inserted above")
    }

    fn period(&self, member: &MemberId, line: Line, period: Period) -> PeriodMoney {
        let key = (member.clone(), line, period);
        self.changes
            .periods
            .get(&key)
            .or_else(|| self.base.periods.get(&key))
            .copied()
            .unwrap_or_default()
    }

    fn update_period(
        &mut self,
        member: &MemberId,
        line: Line,
        period: Period,
        f: impl FnOnce(&mut PeriodMoney),
    ) {
        let mut money = self.period(member, line, period);
        f(&mut money);
        self.changes.periods.insert((member.clone(), line, period), money);
    }

    fn admin(&self) -> &crate::admin::AdminState {
        self.changes.admin.as_ref().unwrap_or(&self.base.admin)
    }

    fn admin_mut(&mut self) -> &mut crate::admin::AdminState {
        self.changes.admin.get_or_insert_with(|| self.base.admin.clone())
    }

    fn backpaid(&self, member: &MemberId) -> crate::backpay::Backpaid {
        self.changes
            .backpaid
            .get(member)
            .or_else(|| self.base.backpaid.get(member))
            .copied()
            .unwrap_or_default()
    }

    fn standards(&self) -> &crate::standard::Standards {
        self.changes.standards.as_ref().unwrap_or(&self.base.standards)
    }

    fn balance(&self, account: &Account) -> Fen {
        let base = self.base.balance(account);
        let delta = self.changes.balance_deltas.get(account).copied().unwrap_or_default();
        base.checked_add(delta).expect("balances stay within i64")
    }

    fn is_reversed(&self, seq: u64) -> bool {
        self.base.reversed.contains(&seq) || self.changes.reversed.contains(&seq)
    }

    fn interest_done(&self, key: &(Fund, Period)) -> bool {
        (self.base.interest_credited.contains(key) && !self.changes.uninterest.contains(key))
            || self.changes.interest.contains(key)
    }

    fn standard(&self, name: &str, date: Date) -> Result<i64, EventError> {
        self.standards()
            .in_force(name, date)
            .ok_or_else(|| EventError::event(format!("no standard {name} is in force on {date}")))
    }

    /// Marks where the batch stands now. Costs a copy of the changes so far.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint { changes: self.changes.clone(), entries_len: self.entries.len() }
    }

    /// Undoes every event applied since `savepoint` was taken.
    pub fn rollback(&mut self, savepoint: Savepoint) {
        assert!(savepoint.entries_len <= self.entries.len(), "a savepoint of this batch");
        for entry in self.entries.drain(savepoint.entries_len..) {
            self.by_event.remove(&entry.event.id);
        }
        self.next_seq = self.first_seq + savepoint.entries_len as u64;
        self.changes = savepoint.changes;
    }

    /// The units whose posters may post about a member: every unit the member served in (a
    /// premium is withheld by the unit of its month, Art. 32 ¶1, so a back-dated one comes from a
    /// former unit), and for a spouse every unit of the serviceman, which withholds the spouse's
    /// premiums (Art. 32 ¶2). Empty for an unknown member.
    pub fn member_posting_units(&self, id: &MemberId) -> Vec<&crate::ids::UnitId> {
        let Some(m) = self.member(id) else { return Vec::new() };
        let sponsor = m.sponsor.as_ref().and_then(|s| self.member(s));
        m.units
            .iter()
            .chain(sponsor.into_iter().flat_map(|s| s.units.iter()))
            .map(|(_, u)| u)
            .collect()
    }

    /// The member an event is about; for a reversal, the member of the entry it reverses.
    /// `None` for fund-level events (appropriation, interest, standard) and unknown targets.
    pub fn member_concerned(&self, event: &Event, lookup: &dyn EntryLookup) -> Option<MemberId> {
        if let EventBody::Reversal { of, .. } = &event.body {
            let target = match self.by_event.get(of) {
                Some(i) => self.entries[*i].event.clone(),
                None => lookup.entry_by_event_id(of)?.event,
            };
            return target.body.member().cloned();
        }
        event.body.member().cloned()
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
    /// On refusal the batch is unchanged.
    pub fn apply(
        &mut self,
        event: Event,
        recorded_at_us: i64,
        lookup: &dyn EntryLookup,
    ) -> Result<u64, EventError> {
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
            return Err(refuse(field, format!("value date {value_date} is in the future")));
        }
        crate::admin::check_sealed(self.admin(), &event.body, value_date)?;
        // Every rule checks before it changes anything, so a refusal leaves the batch as it was.
        let postings = self.rules(&event, value_date, lookup)?;
        self.push(event, value_date, recorded_at_us, postings);
        Ok(self.next_seq - 1)
    }

    fn push(
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
        self.by_event.insert(event.id.clone(), self.entries.len());
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
    fn replay_entry(&mut self, entry: &Entry) {
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
    pub fn apply_recorded(
        &mut self,
        entry: Entry,
        lookup: &dyn EntryLookup,
    ) -> Result<u64, EventError> {
        if entry.seq != self.next_seq {
            return Err(refuse(
                "seq",
                format!("entry {} where entry {} was due", entry.seq, self.next_seq),
            ));
        }
        check_postings(&entry.postings).map_err(|why| refuse("postings", why))?;
        let body = &entry.event.body;
        // As the rules: only these may name a member this ledger has not enrolled.
        if !matches!(
            body,
            EventBody::Enroll { .. } | EventBody::Backpay { .. } | EventBody::BackpayV1 { .. }
        ) && let Some(m) = body.member()
            && self.member(m).is_none()
        {
            return Err(refuse("member", format!("member {m} is not enrolled")));
        }
        if let EventBody::Reversal { of, .. } = body {
            let target = match self.by_event.get(of) {
                Some(i) => self.entries[*i].clone(),
                None => lookup
                    .entry_by_event_id(of)
                    .ok_or_else(|| refuse("of", format!("no entry with event id {of:?}")))?,
            };
            self.undo_effects(&target);
            self.changes.reversed.push(target.seq);
        }
        self.effects_only(&entry.event, entry.value_date, &entry.postings);
        self.add_deltas(&entry.postings, entry.value_date);
        self.by_event.insert(entry.event.id.clone(), self.entries.len());
        self.entries.push(entry);
        self.next_seq += 1;
        Ok(self.next_seq - 1)
    }

    fn add_deltas(&mut self, postings: &[Posting], value_date: Date) {
        let year = value_date.period().year;
        for p in postings {
            let d = self.changes.balance_deltas.entry(p.account.clone()).or_default();
            *d = d.checked_add(p.amount).expect("balance deltas stay within i64");
            if p.account.member_id().is_some() {
                let y = self.changes.year_moves.entry((p.account.clone(), year)).or_default();
                *y = y.checked_add(p.amount).expect("bounded amounts");
            }
        }
    }

    /// The member account's balance at the end of `year` by value date (Art. 31 interest).
    fn balance_at_year_end(&self, account: &Account, year: u16) -> Fen {
        // Years of value dates are 1949-2199 (time.rs), so this is a bounded scan.
        let mut total: i64 = 0;
        for y in 1949..=year {
            let key = (account.clone(), y);
            let base = self.base.year_moves.get(&key).copied().unwrap_or_default().0;
            let change = self.changes.year_moves.get(&key).copied().unwrap_or_default().0;
            total += base + change;
        }
        Fen(total)
    }

    /// Seals the batch: canonical bytes, chain hashes, and the writes that persist the state.
    pub fn finish(self) -> PreparedBatch {
        use rayon::prelude::*;
        let mut head = self.head;
        // Encoding is independent per entry; only the chain is sequential. Small batches (the
        // HTTP service's groups) stay on this thread: waking the pool costs more than it saves.
        let encoded: Vec<Vec<u8>> = if self.entries.len() < PARALLEL_ENTRIES_MIN {
            self.entries.iter().map(Entry::canonical_bytes).collect()
        } else {
            self.entries.par_iter().map(Entry::canonical_bytes).collect()
        };
        let mut sealed = Vec::with_capacity(self.entries.len());
        for (i, (entry, bytes)) in self.entries.iter().zip(encoded).enumerate() {
            assert_eq!(entry.seq, self.first_seq + i as u64, "sequence numbers are dense");
            head = chain_next(&head, &bytes);
            sealed.push(SealedEntry { seq: entry.seq, bytes, chain_hash: head });
        }
        let mut state_writes: Vec<StateWrite> = Vec::new();
        for (id, m) in &self.changes.members {
            state_writes.push((member_key(id), Some(encode(m))));
        }
        if let Some(s) = &self.changes.standards {
            state_writes.push((standards_key(), Some(encode(s))));
        }
        if let Some(a) = &self.changes.admin {
            state_writes.push((crate::admin::state_key(), Some(encode(a))));
        }
        for (f, p) in &self.changes.uninterest {
            state_writes.push((interest_key(*f, *p), None));
        }
        for (f, p) in &self.changes.interest {
            state_writes.push((interest_key(*f, *p), Some(Vec::new())));
        }
        for seq in &self.changes.reversed {
            state_writes.push((reversed_key(*seq), Some(Vec::new())));
        }
        for (key, money) in &self.changes.periods {
            let value = (*money != PeriodMoney::default()).then(|| encode(money));
            state_writes.push((period_key(key), value));
        }
        for (member, months) in &self.changes.backpaid {
            state_writes.push((crate::state::backpaid_key(member), Some(encode(months))));
        }
        for (key, delta) in &self.changes.year_moves {
            let base = self.base.year_moves.get(key).copied().unwrap_or_default();
            let now = base.checked_add(*delta).expect("bounded amounts");
            state_writes.push((year_key(key), (now.0 != 0).then(|| encode(&now))));
        }
        let balance_writes = self
            .changes
            .balance_deltas
            .iter()
            .map(|(account, delta)| {
                let now = self
                    .base
                    .balance(account)
                    .checked_add(*delta)
                    .expect("balances stay within i64");
                (balance_key(account), now.0)
            })
            .collect();
        let mut member_index = Vec::new();
        for entry in &self.entries {
            let mut members: Vec<&MemberId> = entry.event.body.member().into_iter().collect();
            members.extend(entry.postings.iter().filter_map(|p| p.account.member_id()));
            members.sort();
            members.dedup();
            member_index.extend(members.into_iter().map(|m| (m.clone(), entry.seq)));
        }
        PreparedBatch {
            member_index,
            head_seq: self.next_seq - 1,
            head,
            entries: sealed,
            state_writes,
            balance_writes,
            changes: self.changes,
        }
    }

    // -----------------------------------------------------------------------------------------
    // The rules
    // -----------------------------------------------------------------------------------------

    fn rules(
        &mut self,
        event: &Event,
        value_date: Date,
        lookup: &dyn EntryLookup,
    ) -> Result<Vec<Posting>, EventError> {
        let body = &event.body;
        match body {
            // A veteran discharged long ago need not be enrolled in this ledger.
            EventBody::Enroll { .. }
            | EventBody::Standard { .. }
            | EventBody::Backpay { .. }
            | EventBody::BackpayV1 { .. } => {}
            EventBody::KeyRotation { .. } => {}
            EventBody::Reversal { .. } | EventBody::Appropriation { .. } => {}
            EventBody::Interest { .. } => {}
            EventBody::Budget { .. }
            | EventBody::Remittance { .. }
            | EventBody::BankStatement { .. }
            | EventBody::DepositInterest { .. }
            | EventBody::YearClose { .. } => {}
            _ => {
                let member = body.member().expect("member events name a member");
                let m = self
                    .member(member)
                    .ok_or_else(|| refuse("member", format!("member {member} is not enrolled")))?;
                if value_date < m.enlisted_on {
                    return Err(refuse(
                        "value_date",
                        format!("value date {value_date} is before enrolment on {}", m.enlisted_on),
                    ));
                }
            }
        }
        let postings = match body {
            EventBody::Reversal { of, .. } => return self.reversal(of, value_date, lookup),
            EventBody::Contribution { member, fund, period, amount, unit, part } => {
                let mut p =
                    self.contribution(member, *fund, *period, *amount, unit, *part, value_date)?;
                p.extend(crate::admin::withheld_postings(*fund, unit, *period, *amount));
                p
            }
            EventBody::Remittance { unit, fund, amount, period, .. } => {
                let owed = self.balance(&Account::unit_receivable(*fund, unit, *period));
                crate::admin::remittance_postings(owed, *fund, unit, *period, *amount)?
            }
            EventBody::DepositInterest { fund, amount, period } => {
                crate::admin::deposit_interest_postings(self.admin(), *fund, *period, *amount)?
            }
            EventBody::Budget { year, .. } => {
                crate::admin::check_budget(self.admin(), *year)?;
                Vec::new()
            }
            EventBody::BankStatement { balance, .. } => {
                crate::admin::check_bank_balance(*balance)?;
                Vec::new()
            }
            EventBody::YearClose { year, through_seq, .. } => {
                crate::admin::check_close(
                    self.admin(),
                    *year,
                    *through_seq,
                    self.next_seq,
                    value_date,
                )?;
                Vec::new()
            }
            EventBody::Subsidy { member, fund, period, amount, basis, part } => {
                self.subsidy(member, *fund, *period, *amount, *basis, *part)?
            }
            EventBody::Payout { member, fund, benefit, amount, cause, grade, on } => {
                self.payout(member, *fund, *benefit, *amount, *cause, *grade, *on, value_date)?
            }
            EventBody::Interest { fund, period, rate_ppm } => {
                self.interest(*fund, *period, *rate_ppm, value_date)?
            }
            EventBody::Discharge { member, on, route } => self.discharge(member, *on, *route)?,
            EventBody::TransferOut { member, fund, agency, part } => {
                // Art. 16, 23: the relationship is transferred after the discharge; a transfer
                // dated before it would empty the account for months it still held money.
                if let Some(d) = self.member(member).and_then(|m| m.discharged_on)
                    && value_date < d
                {
                    return Err(refuse(
                        "value_date",
                        format!(
                            "Art. 16, 23: the transfer's value date {value_date} is before the discharge on {d}"
                        ),
                    ));
                }
                self.transfer_out(member, *fund, agency, *part)?
            }
            EventBody::TransferConfirmed { member, fund, agency } => {
                self.transfer_confirmed(member, *fund, agency)?
            }
            // Central money into a fund's pool (Art. 31).
            EventBody::Appropriation { fund, amount } => {
                two_legs(Account::pool(*fund), Account::source(*fund, Source::Central), *amount)
            }
            EventBody::Recovery { member, fund, amount, of, .. } => {
                self.recovery(member, *fund, *amount, of)?
            }
            EventBody::TransferIn { member, fund, agency, part, amount } => {
                law::transfer_in(self, member, *fund, agency, *part, *amount)?
            }
            EventBody::RecoveryV1 { .. } => {
                return Err(refuse(
                    "of",
                    "Art. 46, 47: this recovery names no payout, so it cannot be checked against \
                     what was paid (recorded before recoveries named their payout)",
                ));
            }
            EventBody::BackpayV1 { .. } => {
                return Err(refuse(
                    "type",
                    "Opinion 1: this back-payment records no resettlement or category, so its \
                     scope cannot be checked (recorded before the scope was required)",
                ));
            }
            EventBody::DischargeV1 { .. }
            | EventBody::PayoutV1 { .. }
            | EventBody::SuspendV1 { .. }
            | EventBody::ResumeV1 { .. }
            | EventBody::TransferOutV1 { .. } => {
                return Err(refuse(
                    "type",
                    "this form of the event predates issue 11 and is only replayed; post the \
                     current form (docs/EVENTS.md)",
                ));
            }
            _ => {
                self.check_lifecycle(body, value_date)?;
                Vec::new()
            }
        };
        self.check_no_negative_holding(&postings)?;
        self.effects_only(event, value_date, &postings);
        Ok(postings)
    }

    /// No rule may leave a member's holding below zero.
    fn check_no_negative_holding(&self, postings: &[Posting]) -> Result<(), EventError> {
        for p in postings {
            if p.account.member_id().is_none() || p.amount.0 >= 0 {
                continue;
            }
            let after = self.balance(&p.account).0
                + postings
                    .iter()
                    .filter(|q| q.account == p.account)
                    .map(|q| q.amount.0)
                    .sum::<i64>();
            if after < 0 {
                return Err(refuse(
                    "amount",
                    format!(
                        "{} would hold {}; a member's holding is never negative",
                        p.account,
                        Fen(after)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks of the events that move no money (enrolment, lifecycle, standards).
    fn check_lifecycle(&self, body: &EventBody, value_date: Date) -> Result<(), EventError> {
        match body {
            EventBody::Enroll { member, category, sponsor, .. } => {
                if self.member(member).is_some() {
                    return Err(refuse("member", format!("member {member} is already enrolled")));
                }
                match (category, sponsor) {
                    (Category::Spouse, None) => {
                        return Err(refuse(
                            "sponsor",
                            "a spouse is enrolled with the serviceman's member id (Art. 25)",
                        ));
                    }
                    (Category::Spouse, Some(s)) => {
                        let sm = self.member(s).ok_or_else(|| {
                            refuse("sponsor", format!("sponsor {s} is not enrolled"))
                        })?;
                        if !sm.category_now().is_serviceman() {
                            return Err(refuse("sponsor", "the sponsor must be a serviceman"));
                        }
                    }
                    (_, Some(_)) => {
                        return Err(refuse("sponsor", "only a spouse is enrolled with a sponsor"));
                    }
                    (_, None) => {}
                }
            }
            EventBody::Death { member, on, .. } => {
                let m = self.member(member).expect("checked in rules");
                if m.deceased_on.is_some() {
                    return Err(refuse(
                        "member",
                        format!("member {member} is already recorded dead"),
                    ));
                }
                if *on < m.enlisted_on {
                    return Err(refuse("on", "date of death is before enrolment"));
                }
                self.check_no_premium_after(member, on.period(), "death")?;
                if matches!(body, EventBody::Death { cause: Cause::War, .. }) {
                    return Err(refuse(
                        "cause",
                        "Art. 7: a death in war is recorded with cause martyr (war is a cause of \
                         disability, Art. 8)",
                    ));
                }
            }
            EventBody::CategoryChange { member, category, on } => {
                let m = self.member(member).expect("checked in rules");
                if !m.category_now().is_serviceman() || !category.is_serviceman() {
                    return Err(refuse(
                        "category",
                        "category changes are between servicemen's categories",
                    ));
                }
                if *category == m.category_now() {
                    return Err(refuse(
                        "category",
                        format!("member {member} is already {category}"),
                    ));
                }
                let last = m.categories.last().expect("enrolment category").0;
                if *on <= last {
                    return Err(refuse("on", format!("must be after the last change on {last}")));
                }
                if m.discharged_on.is_some_and(|d| *on >= d)
                    || m.deceased_on.is_some_and(|d| *on >= d)
                {
                    return Err(refuse("on", "member is no longer in service on that date"));
                }
            }
            EventBody::PayChange { member, monthly_pay, on } => {
                let m = self.member(member).expect("checked in rules");
                let last = m.pays.last().expect("enrolment pay").0;
                if *on <= last {
                    return Err(refuse(
                        "on",
                        format!("must be after the last pay change on {last}"),
                    ));
                }
                if m.discharged_on.is_some_and(|d| *on >= d)
                    || m.deceased_on.is_some_and(|d| *on >= d)
                {
                    return Err(refuse("on", "member is no longer in service on that date"));
                }
                if m.pay_on(*on) == *monthly_pay {
                    return Err(refuse("monthly_pay", format!("is already {monthly_pay}")));
                }
            }
            EventBody::Backpay { member, input, scope } => {
                let rate = self.standard("backpay_base_rate", value_date)?;
                let minimum = self.standard("civilian_minimum_years", value_date)?;
                crate::backpay::assess_scoped(
                    input,
                    scope,
                    rate,
                    u32::try_from(minimum * 12).unwrap_or(u32::MAX),
                    self.backpaid(member),
                )
                .map_err(|m| EventError::event(format!("Opinion: {m}")))?;
            }
            EventBody::Suspend { member, fund, from, .. }
            | EventBody::Resume { member, fund, from, .. } => {
                let suspend = matches!(body, EventBody::Suspend { .. });
                self.check_suspension(member, *fund, *from, suspend)?;
            }
            EventBody::UnitChange { member, unit, on } => {
                self.check_unit_change(member, unit, *on)?
            }
            EventBody::Standard { name, effective_from, .. } => {
                if let Some(latest) = self.standards().latest_effective(name)
                    && *effective_from <= latest
                {
                    return Err(refuse(
                        "effective_from",
                        format!(
                            "{name} already has a value effective from {latest}; a change takes \
                             effect after it, so history keeps the old value"
                        ),
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn contribution(
        &self,
        member: &MemberId,
        fund: Fund,
        period: Period,
        amount: Fen,
        unit: &crate::ids::UnitId,
        part: Option<SpousePart>,
        value_date: Date,
    ) -> Result<Vec<Posting>, EventError> {
        let m = self.check_open_part(member, fund, part, "fund")?;
        let category = m.category_on(period.first_day().max(m.enlisted_on));
        let (rate_name, line) = match fund {
            Fund::Casualty => {
                return Err(refuse(
                    "fund",
                    "Art. 12: the casualty insurance is borne by the state; individuals pay no premium",
                ));
            }
            Fund::Pension => {
                return Err(refuse(
                    "fund",
                    "Art. 13-14: the pension fund takes no personal premium; the state subsidy is \
                     computed at discharge",
                ));
            }
            Fund::Medical => {
                if category == Category::Spouse {
                    return Err(refuse("fund", "Art. 25: a spouse pays into the spouse fund"));
                }
                if !category.pays_medical_premium() {
                    return Err(refuse(
                        "member",
                        format!(
                            "Art. 20: {member} is a {category} in {period}; conscripts and cadets \
                             pay no medical premium"
                        ),
                    ));
                }
                ("medical_personal_rate", Line::Medical)
            }
            Fund::Spouse => {
                if category != Category::Spouse {
                    return Err(refuse(
                        "fund",
                        "Art. 25: only an unemployed accompanying spouse pays into the spouse fund",
                    ));
                }
                match part {
                    Some(SpousePart::Pension) => {
                        ("spouse_pension_personal_rate", Line::SpousePension)
                    }
                    _ => ("spouse_medical_personal_rate", Line::SpouseMedical),
                }
            }
        };
        self.check_withholding_unit(member, m, period, unit)?;
        if fund == Fund::Spouse {
            self.check_sponsor_in_service(member, m, period)?;
        }
        if period < m.enlisted_on.period() {
            return Err(refuse(
                "period",
                format!("{period} is before enrolment on {}", m.enlisted_on),
            ));
        }
        if let Some(end) = m.discharged_on.or(m.deceased_on)
            && period > end.period()
        {
            return Err(refuse(
                "period",
                format!("{period} is after the member left service on {end}"),
            ));
        }
        if let Some(d) = m.deceased_on
            && value_date > d
            && period > d.period()
        {
            return Err(refuse("value_date", "no premium after death"));
        }
        if self.period(member, line, period).personal.0 != 0 {
            return Err(refuse(
                "period",
                format!("the premium of {member} for {period} is already posted"),
            ));
        }
        let rate = self.standard(rate_name, period.first_day())?;
        let pay = m.pay_on(period.first_day().max(m.enlisted_on));
        let expected = pay.mul_ppm(rate);
        if amount != expected {
            return Err(refuse(
                "amount",
                format!(
                    "Art. 21: the premium for {period} is {expected} ({} % of {}), not {amount}",
                    crate::money::ppm_to_percent_string(rate),
                    pay
                ),
            ));
        }
        Ok(two_legs(
            Account::member(fund, member, part, Holding::Personal),
            Account::source(fund, Source::Personal),
            amount,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn subsidy(
        &self,
        member: &MemberId,
        fund: Fund,
        period: Period,
        amount: Fen,
        basis: Basis,
        part: Option<SpousePart>,
    ) -> Result<Vec<Posting>, EventError> {
        let m = self.check_open_part(member, fund, part, "fund")?;
        if let Some(d) = m.deceased_on
            && period.first_day() > d
        {
            return Err(refuse("period", "no subsidy for a period after death"));
        }
        if fund == Fund::Spouse {
            self.check_sponsor_in_service(member, m, period)?;
        }
        if basis == Basis::Provision {
            return self.provision_subsidy(member, m, fund, amount);
        }
        let expected = match (fund, basis) {
            (Fund::Casualty, _) => {
                return Err(refuse(
                    "fund",
                    "Art. 12: casualty money is not credited to members; post an appropriation",
                ));
            }
            (_, Basis::Discharge) => {
                return Err(refuse(
                    "basis",
                    "Art. 13-14: the discharge subsidy is computed and posted by the discharge event",
                ));
            }
            (Fund::Pension, _) => {
                return Err(refuse(
                    "fund",
                    "Art. 13-14: the pension subsidy is computed at discharge (post a discharge event)",
                ));
            }
            (Fund::Spouse, _) if m.suspended_in(period) => {
                return Err(refuse(
                    "period",
                    format!("Art. 29: the subsidy of {member} is suspended in {period}"),
                ));
            }
            (Fund::Medical, Basis::Standard) => {
                if m.categories.iter().all(|(_, c)| c.pays_medical_premium()) {
                    return Err(refuse(
                        "basis",
                        format!(
                            "Art. 20: {member} never served as a conscript or cadet; the state \
                             matches premiums instead (basis match)"
                        ),
                    ));
                }
                let Some(end) = m.discharged_on else {
                    return Err(refuse(
                        "basis",
                        "Art. 20: the conscript/cadet subsidy is computed on the years of service; \
                         post the discharge first",
                    ));
                };
                if m.medical_standard_paid {
                    return Err(refuse(
                        "basis",
                        format!("the standard subsidy of {member} is already posted"),
                    ));
                }
                law::conscript_subsidy_due(m, self.standards(), end)
                    .map_err(|e| refuse("basis", e))?
            }
            (Fund::Medical | Fund::Spouse, _) => {
                let line = Line::of(fund, part).expect("fund and part were checked at parse");
                let paid = self.period(member, line, period);
                if paid.personal.0 == 0 {
                    return Err(refuse(
                        "period",
                        format!("no premium of {member} for {period} to subsidise (Art. 20, 25)"),
                    ));
                }
                if paid.state.0 != 0 {
                    return Err(refuse(
                        "period",
                        format!("the subsidy of {member} for {period} is already posted"),
                    ));
                }
                match (line, basis) {
                    (Line::SpousePension, Basis::Standard) => {
                        let rate =
                            self.standard("spouse_pension_subsidy_rate", period.first_day())?;
                        m.pay_on(period.first_day().max(m.enlisted_on)).mul_ppm(rate)
                    }
                    (Line::SpousePension, _) => {
                        return Err(refuse(
                            "basis",
                            "Art. 25: the spouse pension subsidy is at a standard",
                        ));
                    }
                    (_, Basis::Match) => {
                        if fund == Fund::Medical
                            && !m
                                .category_on(period.first_day().max(m.enlisted_on))
                                .pays_medical_premium()
                        {
                            return Err(refuse(
                                "basis",
                                "Art. 20: only paying categories are matched",
                            ));
                        }
                        paid.personal
                    }
                    _ => {
                        return Err(refuse(
                            "basis",
                            "Art. 20, 25: a medical premium is matched 1:1 (basis match)",
                        ));
                    }
                }
            }
        };
        if amount != expected {
            return Err(refuse(
                "amount",
                format!(
                    "the subsidy must be {expected}, not {amount} (Art. 20, 25; standards in force)"
                ),
            ));
        }
        Ok(two_legs(
            Account::member(fund, member, part, Holding::State),
            Account::source(fund, Source::Central),
            amount,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn payout(
        &self,
        member: &MemberId,
        fund: Fund,
        benefit: Benefit,
        amount: Fen,
        cause: Cause,
        grade: Option<u8>,
        on: Date,
        value_date: Date,
    ) -> Result<Vec<Posting>, EventError> {
        if fund != Fund::Casualty {
            return Err(refuse(
                "fund",
                "payouts are casualty benefits (Art. 7, 8); other funds pay out by transfer",
            ));
        }
        if cause.is_art10_exclusion() {
            return Err(refuse(
                "cause",
                format!(
                    "Art. 10: no casualty benefit when death or disability is caused by {}",
                    cause.name()
                ),
            ));
        }
        let m = self.member(member).expect("checked in rules");
        if !m.categories[0].1.is_serviceman() {
            return Err(refuse("member", "Art. 7-8: casualty benefits are for servicemen"));
        }
        if on < m.enlisted_on {
            return Err(refuse("on", format!("{on} is before enrolment on {}", m.enlisted_on)));
        }
        if on > value_date {
            return Err(refuse(
                "on",
                format!("{on} is after the payout's value date {value_date}"),
            ));
        }
        if let Some(d) = m.discharged_on
            && on > d
        {
            return Err(refuse(
                "on",
                format!(
                    "Art. 7-8: casualty insurance covers servicemen; {member} was discharged on {d}, \
                     before {on}"
                ),
            ));
        }
        let expected = match benefit {
            Benefit::Death => {
                if grade.is_some() {
                    return Err(refuse("grade", "a death benefit has no disability grade"));
                }
                let name = match cause {
                    Cause::Martyr => "death_benefit_martyr",
                    Cause::OnDuty => "death_benefit_on_duty",
                    Cause::War => {
                        return Err(refuse(
                            "cause",
                            "Art. 7: a death in war is paid with cause martyr",
                        ));
                    }
                    Cause::Illness => {
                        return Err(refuse(
                            "cause",
                            "Art. 7: a death benefit is paid for a death in war or in the line of \
                             duty only; illness counts for disability (Art. 8), not death",
                        ));
                    }
                    _ => {
                        return Err(refuse(
                            "cause",
                            "Art. 7: the nature of death is martyr or on_duty",
                        ));
                    }
                };
                if m.death_benefit_paid {
                    return Err(refuse(
                        "member",
                        format!("the death benefit of {member} is already paid"),
                    ));
                }
                // A death recorded as `war` by a journal written before issue 11 is a death
                // in war: the martyr benefit.
                if let Some(recorded) = m.death_cause
                    && recorded != cause
                    && !(recorded == Cause::War && cause == Cause::Martyr)
                {
                    return Err(refuse(
                        "cause",
                        format!("Art. 7: death of {member} was recorded as {}", recorded.name()),
                    ));
                }
                if let Some(d) = m.deceased_on
                    && d != on
                {
                    return Err(refuse("on", format!("the death of {member} is recorded on {d}")));
                }
                // The standard in force on the date of death (Art. 9), whenever it is paid.
                Fen(self.standard(name, on)?)
            }
            Benefit::Disability => {
                let Some(grade) = grade else {
                    return Err(refuse(
                        "grade",
                        "Art. 8: a disability benefit needs the grade (1–10)",
                    ));
                };
                if !matches!(cause, Cause::War | Cause::OnDuty | Cause::Illness) {
                    return Err(refuse(
                        "cause",
                        "Art. 8: disability is by war, on_duty or illness",
                    ));
                }
                if m.deceased_on.is_some_and(|d| on > d) {
                    return Err(refuse(
                        "on",
                        "no disability benefit for an assessment after death",
                    ));
                }
                let earlier: Vec<_> =
                    m.benefits.iter().filter(|b| b.benefit == Benefit::Disability).collect();
                if let Some(b) = earlier.iter().find(|b| b.on == on) {
                    return Err(refuse(
                        "on",
                        format!(
                            "Art. 8: the disability assessed on {on} was paid by {:?}; one benefit \
                             per assessment",
                            b.event_id.as_str()
                        ),
                    ));
                }
                if let Some(last) = earlier.iter().max_by_key(|b| b.on) {
                    if on < last.on {
                        return Err(refuse(
                            "on",
                            format!("a later assessment ({}) was already paid", last.on),
                        ));
                    }
                    if last.grade.is_none_or(|g| grade >= g) {
                        return Err(refuse(
                            "grade",
                            format!(
                                "Art. 8: a re-assessment pays only for a higher grade than the \
                                 grade {} paid for the assessment on {}",
                                last.grade.unwrap_or_default(),
                                last.on
                            ),
                        ));
                    }
                }
                let multiple = self.standard(&format!("disability_multiple_grade_{grade}"), on)?;
                let full = Fen(div_round_half_away(
                    i128::from(m.pay_on(on).0) * i128::from(multiple),
                    10_000,
                ));
                // A re-assessment to a higher grade pays the difference to what was paid.
                let paid: i64 = earlier.iter().map(|b| b.amount.0).sum();
                Fen(full.0 - paid)
            }
        };
        if expected.0 <= 0 {
            return Err(refuse(
                "grade",
                format!("Art. 8: nothing is due; {member} was already paid at least {}", amount),
            ));
        }
        if amount != expected {
            return Err(refuse(
                "amount",
                format!(
                    "Art. 7-9: the benefit under the standard in force on {on} is {expected}, not {amount}"
                ),
            ));
        }
        let pool = self.balance(&Account::pool(Fund::Casualty));
        if pool < amount {
            return Err(refuse(
                "amount",
                format!(
                    "the casualty pool holds {pool}; post the central appropriation first (Art. 31)"
                ),
            ));
        }
        Ok(two_legs(
            Account::uses(Fund::Casualty, Use::Benefit),
            Account::pool(Fund::Casualty),
            amount,
        ))
    }

    /// Art. 31: interest on each open member account of `fund`, per year, on the balance at
    /// the end of that year by value date, at the fund's standard rate in force then.
    fn interest(
        &self,
        fund: Fund,
        period: Period,
        rate_ppm: i64,
        value_date: Date,
    ) -> Result<Vec<Posting>, EventError> {
        let rate_name = match fund {
            Fund::Medical => "medical_interest_rate",
            Fund::Pension => "pension_interest_rate",
            Fund::Spouse => "spouse_interest_rate",
            Fund::Casualty => {
                return Err(refuse(
                    "fund",
                    "Art. 31: the casualty fund has no member accounts to credit; its deposit \
                     interest is income of the pool",
                ));
            }
        };
        if period.month != 12 {
            return Err(refuse(
                "period",
                format!(
                    "Art. 31: interest is credited per year on the year-end balance; use period \
                     {}-12",
                    period.year
                ),
            ));
        }
        let year_end = period.last_day();
        if value_date != year_end {
            return Err(refuse(
                "value_date",
                format!("interest for {} takes effect at the year end {year_end}", period.year),
            ));
        }
        if self.interest_done(&(fund, period)) {
            return Err(refuse(
                "period",
                format!("interest for {fund} {} is already credited", period.year),
            ));
        }
        let standard_rate = self.standard(rate_name, year_end).map_err(|e| {
            refuse(
                "rate",
                format!("{} (Art. 31: the rate is set by the State; record it)", e.message),
            )
        })?;
        if rate_ppm != standard_rate {
            return Err(refuse(
                "rate",
                format!(
                    "the standard rate in force on {year_end} is {} %",
                    crate::money::ppm_to_percent_string(standard_rate)
                ),
            ));
        }
        // Each member account of the fund that ever moved, from the base and this batch.
        let mut holders: BTreeMap<(MemberId, Option<SpousePart>), i64> = BTreeMap::new();
        let accounts = self
            .base
            .balances
            .keys()
            .chain(self.changes.balance_deltas.keys())
            .filter(|a| a.fund == fund);
        let mut seen = std::collections::HashSet::new();
        for account in accounts {
            let AccountKind::Member { member, part, .. } = &account.kind else { continue };
            if !seen.insert(account.clone()) {
                continue;
            }
            if self.member(member).is_some_and(|m| m.transfer_of(fund, *part).is_some()) {
                continue;
            }
            let held = self.balance_at_year_end(account, period.year);
            *holders.entry((member.clone(), *part)).or_insert(0) += held.0;
        }
        let mut postings = Vec::new();
        let mut total = Fen::ZERO;
        for ((member, part), held) in &holders {
            let credit = Fen(*held).mul_ppm(rate_ppm);
            if credit.0 > 0 {
                postings.push(Posting {
                    account: Account::member(fund, member, *part, Holding::Interest),
                    amount: credit,
                });
                total = total.checked_add(credit).expect("interest total fits i64");
            }
            if postings.len() >= crate::entry::POSTINGS_PER_ENTRY_MAX {
                return Err(refuse("fund", "too many member accounts for one interest entry"));
            }
        }
        if total.0 > 0 {
            postings.push(Posting {
                account: Account::source(fund, Source::Interest),
                amount: Fen(-total.0),
            });
        }
        Ok(postings)
    }

    fn discharge(
        &self,
        member: &MemberId,
        on: Date,
        route: crate::event::Route,
    ) -> Result<Vec<Posting>, EventError> {
        let m = self.member(member).expect("checked in rules");
        if !m.category_now().is_serviceman() {
            return Err(refuse(
                "member",
                "only a serviceman is discharged; a spouse's fund is transferred",
            ));
        }
        if let Some(d) = m.discharged_on {
            return Err(refuse("member", format!("member {member} was discharged on {d}")));
        }
        if m.deceased_on.is_some() {
            return Err(refuse("member", format!("member {member} is recorded dead")));
        }
        if on < m.enlisted_on {
            return Err(refuse("on", "discharge date is before enrolment"));
        }
        self.check_no_premium_after(member, on.period(), "discharge")?;
        let category = m.category_on(on);
        if route == crate::event::Route::SelfEmployed
            && !matches!(category, Category::Officer | Category::CivilianCadre)
        {
            return Err(refuse(
                "route",
                format!(
                    "Art. 18: choosing one's own job is the route of an officer or a civilian \
                     cadre; a {} who finds his own job joins a pension scheme (route employee \
                     or resident, Art. 13)",
                    category.name()
                ),
            ));
        }
        if !m.transfers.is_empty() {
            return Err(refuse("member", "an account of the member is transferred"));
        }
        if route.gets_pension_subsidy() && on < crate::time::law_in_force() {
            return Err(refuse(
                "on",
                format!(
                    "Art. 51: the law took effect on {}; a serviceman discharged before it gets no \
                     Art. 13 subsidy (his service is deemed contribution years, 2019 opinion \
                     §二(一)): record the back-payment with `backpay`",
                    crate::time::law_in_force()
                ),
            ));
        }
        if !route.gets_pension_subsidy() {
            // Art. 18, 19: the State's provisions apply; the ledger records the route and
            // computes nothing (docs/EVENTS.md).
            return Ok(Vec::new());
        }
        let subsidy =
            law::discharge_subsidy(m, self.standards(), on).map_err(|e| refuse("on", e))?;
        if subsidy.0 == 0 {
            // Less than one whole month of service: no month to subsidise.
            return Ok(Vec::new());
        }
        Ok(two_legs(
            Account::member(Fund::Pension, member, None, Holding::State),
            Account::source(Fund::Pension, Source::Central),
            subsidy,
        ))
    }

    fn transfer_out(
        &self,
        member: &MemberId,
        fund: Fund,
        agency: &crate::ids::AgencyId,
        part: Option<SpousePart>,
    ) -> Result<Vec<Posting>, EventError> {
        let m = self.check_open_part(member, fund, part, "fund")?;
        match fund {
            Fund::Casualty => {
                return Err(refuse(
                    "fund",
                    "the casualty fund is not transferred to civilian agencies",
                ));
            }
            Fund::Pension | Fund::Medical => {
                if m.discharged_on.is_none() {
                    return Err(refuse(
                        "member",
                        "Art. 16, 23: the relationship is transferred on discharge; post the discharge first",
                    ));
                }
                if fund == Fund::Pension && m.route == Some(crate::event::Route::Retirement) {
                    return Err(refuse(
                        "fund",
                        "Art. 19: a member resettled by retirement keeps the elderly care the State \
                         Council and the Central Military Commission provide; no pension transfer",
                    ));
                }
            }
            Fund::Spouse => {
                if m.category_now() != Category::Spouse {
                    return Err(refuse("member", "only a spouse has a spouse-fund account"));
                }
            }
        }
        self.check_nothing_due(member, m, fund, part)?;
        let mut postings = Vec::new();
        let mut total = Fen::ZERO;
        let parts: Vec<Option<SpousePart>> = match (fund, part) {
            (Fund::Spouse, Some(p)) => vec![Some(p)],
            (Fund::Spouse, None) => [SpousePart::Pension, SpousePart::Medical]
                .into_iter()
                .filter(|p| m.transfer_of(fund, Some(*p)).is_none())
                .map(Some)
                .collect(),
            _ => vec![None],
        };
        for part in &parts {
            for holding in Holding::ALL {
                let account = Account::member(fund, member, *part, holding);
                let held = self.balance(&account);
                if held.0 != 0 {
                    postings.push(Posting { account, amount: Fen(-held.0) });
                    total = total.checked_add(held).expect("bounded");
                }
            }
        }
        if total.0 <= 0 {
            return Err(refuse(
                "member",
                format!("the {fund} account of {member} holds nothing to transfer"),
            ));
        }
        postings.push(Posting { account: Account::agency_payable(fund, agency), amount: total });
        Ok(postings)
    }

    fn transfer_confirmed(
        &self,
        member: &MemberId,
        fund: Fund,
        agency: &crate::ids::AgencyId,
    ) -> Result<Vec<Posting>, EventError> {
        let m = self.member(member).expect("checked in rules");
        // A spouse's two parts may go to two agencies (Art. 28): the open one to this agency.
        let t = m
            .transfers
            .iter()
            .find(|t| t.fund == fund && &t.agency == agency && !t.confirmed)
            .or_else(|| m.transfer(fund));
        let Some(t) = t else {
            return Err(refuse(
                "fund",
                format!("the {fund} account of {member} was not transferred"),
            ));
        };
        if &t.agency != agency {
            return Err(refuse("agency", format!("the transfer went to agency {}", t.agency)));
        }
        if t.confirmed {
            return Err(refuse("member", "the transfer is already confirmed"));
        }
        Ok(two_legs(
            Account::uses(fund, Use::Transfer),
            Account::agency_payable(fund, agency),
            t.amount,
        ))
    }

    fn reversal(
        &mut self,
        of: &EventId,
        value_date: Date,
        lookup: &dyn EntryLookup,
    ) -> Result<Vec<Posting>, EventError> {
        let target = match self.by_event.get(of) {
            Some(i) => self.entries[*i].clone(),
            None => lookup
                .entry_by_event_id(of)
                .ok_or_else(|| refuse("of", format!("no entry with event id {of:?}")))?,
        };
        // A reversal undoes money from its target's value date on; dated earlier it would leave
        // the member's holdings negative for the days between.
        if value_date < target.value_date {
            return Err(refuse(
                "value_date",
                format!(
                    "the reversal's value date {value_date} is before that of the entry it \
                     reverses ({})",
                    target.value_date
                ),
            ));
        }
        match &target.event.body {
            EventBody::Reversal { .. } => {
                return Err(refuse(
                    "of",
                    "a reversal is not reversed; post the original event again",
                ));
            }
            EventBody::TransferConfirmed { .. } => {
                return Err(refuse("of", "a confirmed transfer cannot be reversed"));
            }
            EventBody::KeyRotation { .. } => {
                return Err(refuse("of", "a key rotation is not reversed; rotate the key again"));
            }
            EventBody::TransferOut { member, fund, .. }
            | EventBody::TransferOutV1 { member, fund, .. } => {
                let m = self.member(member).expect("a transfer names an enrolled member");
                if m.transfers.iter().any(|t| t.fund == *fund && t.seq == target.seq && t.confirmed)
                {
                    return Err(refuse(
                        "of",
                        "the agency confirmed this transfer; it cannot be reversed",
                    ));
                }
            }
            EventBody::Contribution { member, fund, period, part, .. } => {
                let line = Line::of(*fund, *part).expect("contributions are on a premium line");
                let m = self.member(member).expect("a contribution names an enrolled member");
                if self.period(member, line, *period).state.0 != 0 {
                    return Err(refuse(
                        "of",
                        "reverse the subsidy that matches this premium first",
                    ));
                }
                if m.transfer(*fund).is_some() {
                    return Err(refuse(
                        "of",
                        "the account was transferred; reverse the transfer first",
                    ));
                }
            }
            EventBody::Discharge { member, .. } | EventBody::DischargeV1 { member, .. } => {
                let m = self.member(member).expect("a discharge names an enrolled member");
                if let Some(t) = m.transfers.first() {
                    return Err(refuse(
                        "of",
                        format!(
                            "Art. 16, 23: the {} account of {member} was transferred after this \
                             discharge (seq {}); reverse the transfer first",
                            t.fund, t.seq
                        ),
                    ));
                }
            }
            EventBody::Payout { member, .. } | EventBody::PayoutV1 { member, .. } => {
                let m = self.member(member).expect("a payout names an enrolled member");
                if m.benefits.iter().any(|b| &b.event_id == of && b.recovered.0 > 0) {
                    return Err(refuse(
                        "of",
                        "money of this payout was recovered; reverse the recoveries first",
                    ));
                }
            }
            _ => {}
        }
        // Nothing may move in a closed account (Art. 16, 23, 27), a reversal included.
        if !matches!(
            target.event.body,
            EventBody::TransferOut { .. } | EventBody::TransferOutV1 { .. }
        ) {
            for p in &target.postings {
                let AccountKind::Member { member, part, .. } = &p.account.kind else { continue };
                if let Some(t) =
                    self.member(member).and_then(|m| m.transfer_of(p.account.fund, *part))
                {
                    return Err(refuse(
                        "of",
                        format!(
                            "the {} account of {member} was transferred to agency {} (seq {}); \
                             a reversal would change a closed account (Art. 16, 23, 27): reverse \
                             the transfer first",
                            p.account.fund, t.agency, t.seq
                        ),
                    ));
                }
            }
        }
        let history = matches!(
            target.event.body,
            EventBody::UnitChange { .. } | EventBody::Suspend { .. } | EventBody::Resume { .. }
        );
        if history {
            if self.is_reversed(target.seq) {
                return Err(refuse("of", format!("entry {} is already reversed", target.seq)));
            }
            self.check_history_reversal(&target)?;
            self.undo_effects(&target);
            self.changes.reversed.push(target.seq);
            return Ok(Vec::new());
        }
        if target.postings.is_empty() {
            return Err(refuse(
                "of",
                format!(
                    "the {} event {of:?} moved no money; nothing to reverse",
                    target.event.body.type_name()
                ),
            ));
        }
        if self.is_reversed(target.seq) {
            return Err(refuse("of", format!("entry {} is already reversed", target.seq)));
        }
        crate::admin::check_reversal(&target, &|a| self.balance(a))?;
        let postings: Vec<Posting> = target
            .postings
            .iter()
            .map(|p| Posting { account: p.account.clone(), amount: Fen(-p.amount.0) })
            .collect();
        self.check_no_negative_holding(&postings)?;
        self.undo_effects(&target);
        self.changes.reversed.push(target.seq);
        Ok(postings)
    }

    /// Undoes a reversed entry's effects on member state.
    fn undo_effects(&mut self, target: &Entry) {
        let body = target.event.body.upgraded(target.value_date);
        match body.as_ref() {
            EventBody::Contribution { member, fund, period, part, .. } => {
                let line = Line::of(*fund, *part).expect("premium line");
                self.update_period(member, line, *period, |p| *p = PeriodMoney::default());
            }
            EventBody::Subsidy { member, fund, period, basis, part, .. } => {
                if *fund == Fund::Medical && *basis == Basis::Standard {
                    self.member_mut(member).medical_standard_paid = false;
                } else if let Some(line) = Line::of(*fund, *part) {
                    self.update_period(member, line, *period, |p| p.state = Fen::ZERO);
                }
            }
            EventBody::Payout { member, benefit, .. } => {
                let id = target.event.id.clone();
                let m = self.member_mut(member);
                m.benefits.retain(|b| b.event_id != id);
                if *benefit == Benefit::Death {
                    m.death_benefit_paid = false;
                }
            }
            EventBody::Recovery { member, amount, of, .. } => {
                let m = self.member_mut(member);
                if let Some(b) = m.benefits.iter_mut().find(|b| &b.event_id == of) {
                    b.recovered = Fen(b.recovered.0 - amount.0);
                }
            }
            EventBody::Discharge { member, .. } => {
                let m = self.member_mut(member);
                m.discharged_on = None;
                m.route = None;
            }
            EventBody::Interest { fund, period, .. } => {
                self.changes.interest.retain(|k| k != &(*fund, *period));
                self.changes.uninterest.push((*fund, *period));
            }
            EventBody::UnitChange { member, on, .. } => {
                let m = self.member_mut(member);
                if m.units.len() > 1 && m.units.last().is_some_and(|(d, _)| d == on) {
                    m.units.pop();
                    m.unit = m.units.last().expect("the enrolment unit stays").1.clone();
                }
            }
            EventBody::Suspend { member, from, .. } => {
                let m = self.member_mut(member);
                if m.suspensions.last().is_some_and(|s| s.from == *from) {
                    m.suspensions.pop();
                }
            }
            EventBody::Resume { member, from, .. } => {
                let m = self.member_mut(member);
                if let Some(last) = m.suspensions.last_mut()
                    && last.until == Some(*from)
                {
                    last.until = None;
                }
            }
            EventBody::TransferOut { member, fund, .. } => {
                let seq = target.seq;
                self.member_mut(member).transfers.retain(|t| !(t.fund == *fund && t.seq == seq));
            }
            EventBody::DepositInterest { fund, period, .. } => {
                self.admin_mut().deposit_interest.remove(&(*fund, *period));
            }
            _ => {}
        }
    }

    /// The state effects of an accepted event (also used when replaying stored entries).
    fn effects_only(&mut self, event: &Event, value_date: Date, postings: &[Posting]) {
        let seq = self.next_seq;
        let body = event.body.upgraded(value_date);
        match body.as_ref() {
            EventBody::Enroll { member, category, unit, enlisted_on, monthly_pay, sponsor } => {
                self.changes.members.insert(
                    member.clone(),
                    MemberState {
                        categories: vec![(*enlisted_on, *category)],
                        unit: unit.clone(),
                        units: vec![(*enlisted_on, unit.clone())],
                        enlisted_on: *enlisted_on,
                        pays: vec![(*enlisted_on, *monthly_pay)],
                        sponsor: sponsor.clone(),
                        discharged_on: None,
                        route: None,
                        deceased_on: None,
                        death_cause: None,
                        suspensions: Vec::new(),
                        transfers: Vec::new(),
                        medical_standard_paid: false,
                        death_benefit_paid: false,
                        benefits: Vec::new(),
                    },
                );
            }
            EventBody::Contribution { member, fund, period, amount, part, .. } => {
                let line = Line::of(*fund, *part).expect("premium line");
                self.update_period(member, line, *period, |p| p.personal = *amount);
            }
            EventBody::Subsidy { member, fund, period, amount, basis, part } => {
                if *fund == Fund::Medical && *basis == Basis::Standard {
                    self.member_mut(member).medical_standard_paid = true;
                } else if let Some(line) = Line::of(*fund, *part) {
                    self.update_period(member, line, *period, |p| p.state = *amount);
                }
            }
            EventBody::Payout { member, benefit, cause, grade, on, .. } => {
                let amount = postings
                    .iter()
                    .find(|p| matches!(p.account.kind, AccountKind::Use(_)))
                    .map_or(Fen::ZERO, |p| p.amount);
                let m = self.member_mut(member);
                m.benefits.push(crate::state::PaidBenefit {
                    event_id: event.id.clone(),
                    benefit: *benefit,
                    on: *on,
                    grade: *grade,
                    amount,
                    recovered: Fen::ZERO,
                });
                if *benefit == Benefit::Death {
                    m.death_benefit_paid = true;
                    if m.deceased_on.is_none() {
                        m.deceased_on = Some(*on);
                        m.death_cause = Some(*cause);
                    }
                }
            }
            EventBody::Recovery { member, amount, of, .. } => {
                if let Some(b) =
                    self.member_mut(member).benefits.iter_mut().find(|b| &b.event_id == of)
                {
                    b.recovered = b.recovered.checked_add(*amount).expect("bounded");
                }
            }
            EventBody::Discharge { member, on, route } => {
                let m = self.member_mut(member);
                m.discharged_on = Some(*on);
                m.route = Some(*route);
            }
            EventBody::Death { member, on, cause } => {
                let m = self.member_mut(member);
                m.deceased_on = Some(*on);
                m.death_cause = Some(*cause);
            }
            EventBody::CategoryChange { member, category, on } => {
                self.member_mut(member).categories.push((*on, *category));
            }
            EventBody::PayChange { member, monthly_pay, on } => {
                self.member_mut(member).pays.push((*on, *monthly_pay));
            }
            EventBody::UnitChange { member, unit, on } => {
                let m = self.member_mut(member);
                m.units.push((*on, unit.clone()));
                m.unit = unit.clone();
            }
            EventBody::Suspend { member, from, .. } => {
                self.member_mut(member)
                    .suspensions
                    .push(crate::state::Suspension { from: *from, until: None });
            }
            EventBody::Resume { member, from, .. } => {
                let m = self.member_mut(member);
                match m.suspensions.last_mut() {
                    Some(open) if open.until.is_none() => open.until = Some(*from),
                    // Only an old journal resumes without a suspension: nothing to close.
                    _ => {}
                }
            }
            EventBody::Interest { fund, period, .. } => {
                self.changes.interest.push((*fund, *period))
            }
            EventBody::Standard { name, value, effective_from } => {
                let spec = standard::spec(name).expect("checked at parse");
                let v = standard::parse_value(spec, value).expect("checked at parse");
                let mut s = self.standards().clone();
                s.record(name, *effective_from, v);
                self.changes.standards = Some(s);
            }
            EventBody::TransferOut { member, fund, agency, part } => {
                let amount = postings
                    .iter()
                    .find(|p| matches!(p.account.kind, AccountKind::AgencyPayable { .. }))
                    .map_or(Fen::ZERO, |p| p.amount);
                self.member_mut(member).transfers.push(Transfer {
                    fund: *fund,
                    part: *part,
                    agency: agency.clone(),
                    seq,
                    amount,
                    confirmed: false,
                });
            }
            EventBody::TransferConfirmed { member, fund, agency } => {
                let m = self.member_mut(member);
                if let Some(t) = m
                    .transfers
                    .iter_mut()
                    .find(|t| t.fund == *fund && &t.agency == agency && !t.confirmed)
                {
                    t.confirmed = true;
                }
            }
            EventBody::Reversal { .. } => {}
            EventBody::YearClose { year, .. } => self.admin_mut().closed_through = Some(*year),
            EventBody::DepositInterest { fund, period, .. } => {
                self.admin_mut().deposit_interest.insert((*fund, *period));
            }
            EventBody::Budget { .. }
            | EventBody::Remittance { .. }
            | EventBody::BankStatement { .. } => {}
            EventBody::Appropriation { .. } | EventBody::RecoveryV1 { .. } => {}
            EventBody::TransferIn { .. } => {}
            EventBody::Backpay { member, input, scope } => {
                // Rules checked the assessment; replay recomputes the months it counts.
                let already = self.backpaid(member);
                let after = crate::backpay::assess_scoped(input, scope, 600_000, 0, already)
                    .map_or(already, |(_, after)| after);
                self.changes.backpaid.insert(member.clone(), after);
            }
            EventBody::BackpayV1 { member, input } => {
                let mut b = self.backpaid(member);
                let months = input.gap_months.min(input.service_months);
                b.pension_months += months;
                b.medical_months += months;
                self.changes.backpaid.insert(member.clone(), b);
            }
            EventBody::DischargeV1 { .. }
            | EventBody::PayoutV1 { .. }
            | EventBody::SuspendV1 { .. }
            | EventBody::ResumeV1 { .. }
            | EventBody::TransferOutV1 { .. } => unreachable!("upgraded above"),
            EventBody::KeyRotation { .. } => {}
        }
    }
}

pub(crate) fn two_legs(debit: Account, credit: Account, amount: Fen) -> Vec<Posting> {
    vec![Posting { account: debit, amount }, Posting { account: credit, amount: Fen(-amount.0) }]
}
