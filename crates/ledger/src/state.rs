//! What the journal implies now: members' lifecycles, balances, standards. Derived from the
//! entries (and rebuilt from them by `replay`), materialised by the storage layer for speed.

use std::collections::{BTreeMap, BTreeSet};

use crate::entry::{DecodeError, decode, encode};
use crate::event::{Benefit, Cause, Route};
use crate::fund::{Account, Category, Fund, SpousePart};
use crate::ids::{AgencyId, EventId, MemberId, UnitId};
use crate::keyed::{KeyedMap, KeyedSet};
use crate::money::Fen;
use crate::standard::Standards;
use crate::time::{Date, Period};

/// A premium line: where a personal premium and its matching subsidy go.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum Line {
    Medical,
    SpousePension,
    SpouseMedical,
}

impl Line {
    pub fn of(fund: Fund, part: Option<SpousePart>) -> Option<Line> {
        match (fund, part) {
            (Fund::Medical, None) => Some(Line::Medical),
            (Fund::Spouse, Some(SpousePart::Pension)) => Some(Line::SpousePension),
            (Fund::Spouse, Some(SpousePart::Medical)) => Some(Line::SpouseMedical),
            _ => None,
        }
    }
}

/// Money of one premium line in one period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PeriodMoney {
    pub personal: Fen,
    pub state: Fen,
}

/// A member's account in one fund closed by a transfer to a civilian agency.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Transfer {
    pub fund: Fund,
    /// For the spouse fund, the one part moved (Art. 28); `None`: the whole fund.
    pub part: Option<SpousePart>,
    pub agency: AgencyId,
    pub seq: u64,
    pub amount: Fen,
    pub confirmed: bool,
}

/// A casualty benefit paid to a member, kept for the one-per-assessment rule and recoveries.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PaidBenefit {
    pub event_id: EventId,
    pub benefit: Benefit,
    /// The date of death or of the disability assessment.
    pub on: Date,
    pub grade: Option<u8>,
    pub amount: Fen,
    /// Returned so far by recoveries of this payout (Art. 46, 47).
    pub recovered: Fen,
}

/// Art. 29: months the spouse subsidy is suspended, `from` inclusive to `until` exclusive
/// (`None`: still suspended).
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Suspension {
    pub from: Period,
    pub until: Option<Period>,
}

/// Everything the rules need to know about one member: a dated history, so that every rule
/// asks "as of the value date (or period) of this entry", never "now".
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct MemberState {
    /// Categories with the dates they took effect; the first is the enrolment category.
    pub categories: Vec<(Date, Category)>,
    /// The current unit (the last of `units`): what the HTTP service scopes by.
    pub unit: UnitId,
    /// Units with the dates they took effect; the first is the enrolment unit (Art. 32).
    pub units: Vec<(Date, UnitId)>,
    pub enlisted_on: Date,
    /// Monthly pay (for a spouse: the contribution base) with the dates it took effect; the
    /// first is the enrolment pay.
    pub pays: Vec<(Date, Fen)>,
    pub sponsor: Option<MemberId>,
    pub discharged_on: Option<Date>,
    /// The route taken at discharge (Art. 13-19).
    pub route: Option<Route>,
    pub deceased_on: Option<Date>,
    pub death_cause: Option<Cause>,
    /// Art. 29: suspension spans of the spouse subsidy, in order, not overlapping.
    pub suspensions: Vec<Suspension>,
    pub transfers: Vec<Transfer>,
    /// The conscript/cadet medical standard subsidy (Art. 20 ¶2) was posted.
    pub medical_standard_paid: bool,
    pub death_benefit_paid: bool,
    /// Casualty benefits paid (unreversed).
    pub benefits: Vec<PaidBenefit>,
}

impl MemberState {
    pub fn category_on(&self, date: Date) -> Category {
        let i = self.categories.partition_point(|(from, _)| *from <= date);
        // Before enrolment the enrolment category is reported; rules refuse such dates anyway.
        self.categories[i.saturating_sub(1)].1
    }

    /// The monthly pay in force on `date` (the enrolment pay before enrolment).
    pub fn pay_on(&self, date: Date) -> Fen {
        crate::wage::pay_on(&self.pays, date)
    }

    /// The sum of the pay in force at the start of each of `months` whole months of service
    /// counted from enrolment ([`crate::wage::wage_over_months`]).
    pub fn pay_over_months(&self, months: i64) -> Option<Fen> {
        crate::wage::wage_over_months(self.enlisted_on, &self.pays, months).ok()
    }

    /// The unit of the member on `date` (the enrolment unit before enrolment).
    pub fn unit_on(&self, date: Date) -> &UnitId {
        let i = self.units.partition_point(|(from, _)| *from <= date);
        &self.units[i.saturating_sub(1)].1
    }

    /// Whether the spouse subsidy of month `period` is suspended (Art. 29).
    pub fn suspended_in(&self, period: Period) -> bool {
        self.suspensions.iter().any(|s| s.from <= period && s.until.is_none_or(|u| period < u))
    }

    /// The open suspension, if the subsidy is suspended now.
    pub fn open_suspension(&self) -> Option<&Suspension> {
        self.suspensions.last().filter(|s| s.until.is_none())
    }

    pub fn category_now(&self) -> Category {
        self.categories.last().expect("a member has an enrolment category").1
    }

    /// The open (unreversed) transfer of `fund`, if the account is closed.
    pub fn transfer(&self, fund: Fund) -> Option<&Transfer> {
        self.transfers.iter().find(|t| t.fund == fund)
    }

    /// The open transfer that closed `fund` (and, in the spouse fund, `part`), if any.
    pub fn transfer_of(&self, fund: Fund, part: Option<SpousePart>) -> Option<&Transfer> {
        self.transfers
            .iter()
            .find(|t| t.fund == fund && (t.part.is_none() || part.is_none() || t.part == part))
    }

    /// Whether every part of `fund` is closed by transfers.
    pub fn fully_transferred(&self, fund: Fund) -> bool {
        if fund == Fund::Spouse {
            [SpousePart::Pension, SpousePart::Medical].iter().all(|p| {
                self.transfers.iter().any(|t| t.fund == fund && t.part.is_none_or(|q| q == *p))
            })
        } else {
            self.transfer(fund).is_some()
        }
    }

    /// Spans of service spent in `categories` up to the last day of service `last_day`
    /// (inclusive): `(first day, day after the last)`.
    pub fn spans_in(&self, categories: &[Category], last_day: Date) -> Vec<(Date, Date)> {
        let end = last_day.next_day();
        let mut spans = Vec::new();
        for (i, (from, category)) in self.categories.iter().enumerate() {
            let to = self.categories.get(i + 1).map_or(end, |(d, _)| (*d).min(end));
            if categories.contains(category) && *from < to {
                spans.push((*from, to));
            }
        }
        spans
    }
}

/// The ledger's current state: the result of applying every entry in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerState {
    pub members: KeyedMap<MemberId, MemberState>,
    /// Debit-positive balance of every account that was ever posted to.
    pub balances: KeyedMap<Account, Fen>,
    pub standards: Standards,
    pub interest_credited: BTreeSet<(Fund, Period)>,
    /// Sequence numbers of entries that have been reversed.
    pub reversed: BTreeSet<u64>,
    /// Premiums and their subsidies per member, line and month. Kept apart from
    /// [`MemberState`] so that a monthly premium writes one small record, not the member's
    /// whole history.
    /// Fund administration: the sealed years (`admin`).
    pub admin: crate::admin::AdminState,
    /// Ordered, so that one member's months of one line are a range (what awaits a match
    /// before a transfer, what an Art. 29 suspension would cover).
    pub periods: BTreeMap<PeriodKey, PeriodMoney>,
    /// Per member account and calendar year of value date: the sum of its postings. A
    /// balance at the end of a year (Art. 31 interest) is the sum over years up to it.
    pub year_moves: KeyedMap<(Account, u16), Fen>,
    /// Months back-paid per person under the 2019 opinion, all entries together.
    pub backpaid: KeyedMap<MemberId, crate::backpay::Backpaid>,
}

/// A member's premium line in one month.
pub type PeriodKey = (MemberId, Line, Period);

/// One key-value write of state, as the storage layer keeps it (see `docs/FORMAT.md`).
pub type StateWrite = (Vec<u8>, Option<Vec<u8>>);

const KEY_MEMBER: u8 = b'm';
const KEY_STANDARDS: u8 = b's';
const KEY_INTEREST: u8 = b'i';
const KEY_REVERSED: u8 = b'r';
const KEY_PERIOD: u8 = b'p';
const KEY_YEAR: u8 = b'y';
const KEY_BACKPAID: u8 = b'b';

pub fn backpaid_key(member: &MemberId) -> Vec<u8> {
    let mut k = vec![KEY_BACKPAID, b'/'];
    k.extend_from_slice(member.as_str().as_bytes());
    k
}

pub fn year_key(key: &(Account, u16)) -> Vec<u8> {
    let mut k = vec![KEY_YEAR, b'/'];
    k.extend_from_slice(&encode(key));
    k
}

pub fn period_key(key: &PeriodKey) -> Vec<u8> {
    let mut k = vec![KEY_PERIOD, b'/'];
    k.extend_from_slice(&encode(key));
    k
}

pub fn member_key(member: &MemberId) -> Vec<u8> {
    let mut k = vec![KEY_MEMBER, b'/'];
    k.extend_from_slice(member.as_str().as_bytes());
    k
}

pub fn standards_key() -> Vec<u8> {
    vec![KEY_STANDARDS, b'/']
}

pub fn interest_key(fund: Fund, period: Period) -> Vec<u8> {
    let mut k = vec![KEY_INTEREST, b'/'];
    k.extend_from_slice(&encode(&(fund, period)));
    k
}

pub fn reversed_key(seq: u64) -> Vec<u8> {
    let mut k = vec![KEY_REVERSED, b'/'];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Why stored state does not load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateLoadError {
    #[error("state key {key:?}: {source}")]
    Value {
        key: String,
        #[source]
        source: DecodeError,
    },
    #[error("unknown state key {0:?}")]
    UnknownKey(String),
    #[error("balance of {0:?} is not 8 bytes")]
    BalanceValue(String),
    #[error("state key {0:?}: a member record without an enrolment category or unit")]
    Member(String),
}

/// A state key as text, for errors.
fn show(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// The error of a record of key `key` whose key or value does not decode.
fn bad(key: &[u8]) -> impl FnOnce(DecodeError) -> StateLoadError + '_ {
    move |source| StateLoadError::Value { key: show(key), source }
}

/// Every keyed record is a tag, a separator, then its key proper: a shorter key is not one
/// this ledger wrote (an integrity failure, never a slice out of range).
fn rest(key: &[u8]) -> Result<&[u8], StateLoadError> {
    key.get(2..).ok_or_else(|| StateLoadError::UnknownKey(show(key)))
}

/// A member record.
fn member_record(key: &[u8], value: &[u8]) -> Result<(MemberId, MemberState), StateLoadError> {
    let id = MemberId::parse(&String::from_utf8_lossy(rest(key)?))
        .map_err(|_| StateLoadError::UnknownKey(show(key)))?;
    let member: MemberState = decode(value).map_err(bad(key))?;
    // What every rule may rely on: a member has an enrolment category and unit.
    if member.categories.is_empty() || member.units.is_empty() {
        return Err(StateLoadError::Member(show(key)));
    }
    Ok((id, member))
}

/// Decodes the records of `run` with `f`, in parallel, in order, freeing each record's bytes
/// once decoded. The error is that of the first record (in order) that does not decode.
fn decode_run<T: Send>(
    run: &mut [(Vec<u8>, Vec<u8>)],
    f: impl Fn(&[u8], &[u8]) -> Result<T, StateLoadError> + Sync,
) -> Result<Vec<T>, StateLoadError> {
    use rayon::prelude::*;
    let first_error: std::sync::Mutex<Option<(usize, StateLoadError)>> = Default::default();
    let decoded: Vec<Option<T>> = run
        .par_iter_mut()
        .with_min_len(1024)
        .enumerate()
        .map(|(i, (key, value))| {
            let decoded = f(key, value);
            *key = Vec::new();
            *value = Vec::new();
            decoded
                .map_err(|e| {
                    let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                    if first.as_ref().is_none_or(|(j, _)| i < *j) {
                        *first = Some((i, e));
                    }
                })
                .ok()
        })
        .collect();
    if let Some((_, e)) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // In place (`flatten` would copy): an `Option` of these records is the size of the record.
    #[allow(clippy::filter_map_identity)]
    Ok(decoded.into_iter().filter_map(|d| d).collect())
}

impl LedgerState {
    /// Loads the materialised state: key-value pairs of the state column and the balances.
    ///
    /// Millions of records at scale (one per member, per premium month, per account): the
    /// records of one kind are decoded in parallel, each freed once decoded; the premium
    /// months are sorted once and the ordered map built from sorted input; the hash maps are
    /// sized once. The result, and the error (that of the first bad record in input order),
    /// are those of decoding the records one by one in order.
    pub fn load(
        state: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        balances: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<LedgerState, StateLoadError> {
        // A `Vec` (what the store gives) is taken as it is, without a copy.
        let mut state: Vec<(Vec<u8>, Vec<u8>)> = state.into_iter().collect();
        let mut s = LedgerState::default();
        let mut periods: Vec<(PeriodKey, PeriodMoney)> = Vec::new();
        // Runs of records of one kind (in a store's key order, one run per kind).
        let mut start = 0;
        while start < state.len() {
            let tag = state[start].0.first().copied();
            let len = state[start..].iter().position(|(k, _)| k.first().copied() != tag);
            let end = len.map_or(state.len(), |len| start + len);
            let run = &mut state[start..end];
            match tag {
                Some(KEY_MEMBER) => {
                    let members = decode_run(run, member_record)?;
                    s.members.reserve(members.len());
                    s.members.extend(members);
                }
                Some(KEY_PERIOD) => {
                    let mut decoded = decode_run(run, |key, value| {
                        Ok((
                            decode(rest(key)?).map_err(bad(key))?,
                            decode(value).map_err(bad(key))?,
                        ))
                    })?;
                    if periods.is_empty() {
                        periods = decoded;
                    } else {
                        periods.append(&mut decoded);
                    }
                }
                Some(KEY_BACKPAID) => {
                    let backpaid = decode_run(run, |key, value| {
                        let id = MemberId::parse(&String::from_utf8_lossy(rest(key)?))
                            .map_err(|_| StateLoadError::UnknownKey(show(key)))?;
                        Ok((id, decode(value).map_err(bad(key))?))
                    })?;
                    s.backpaid.reserve(backpaid.len());
                    s.backpaid.extend(backpaid);
                }
                Some(KEY_YEAR) => {
                    let years = decode_run(run, |key, value| {
                        Ok((
                            decode(rest(key)?).map_err(bad(key))?,
                            decode(value).map_err(bad(key))?,
                        ))
                    })?;
                    s.year_moves.reserve(years.len());
                    s.year_moves.extend(years);
                }
                _ => {
                    for (key, value) in run.iter() {
                        s.load_small(key, value)?;
                    }
                }
            }
            start = end;
        }
        drop(state);
        // The stored order (bincode of the key) is not the map's: sorted once, stably, so that
        // of two equal keys the later wins, as with inserts in order; then built in bulk.
        {
            use rayon::slice::ParallelSliceMut;
            periods.par_sort_by(|a, b| a.0.cmp(&b.0));
        }
        s.periods = periods.into_iter().collect();
        let mut balances: Vec<(Vec<u8>, Vec<u8>)> = balances.into_iter().collect();
        let balances = decode_run(&mut balances, |key, value| {
            let account: Account = decode(key).map_err(bad(key))?;
            let fen: [u8; 8] =
                value.try_into().map_err(|_| StateLoadError::BalanceValue(account.to_string()))?;
            Ok((account, Fen(i64::from_le_bytes(fen))))
        })?;
        s.balances.reserve(balances.len());
        s.balances.extend(balances);
        Ok(s)
    }

    /// One record of the kinds there are few of: standards, admin, interest, reversals (and
    /// the error of a key of no kind).
    fn load_small(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateLoadError> {
        match key.first() {
            Some(&KEY_STANDARDS) => self.standards = decode(value).map_err(bad(key))?,
            Some(&crate::admin::STATE_KEY_BYTE) => self.admin = decode(value).map_err(bad(key))?,
            Some(&KEY_INTEREST) => {
                self.interest_credited.insert(decode(rest(key)?).map_err(bad(key))?);
            }
            Some(&KEY_REVERSED) => {
                let seq: [u8; 8] =
                    rest(key)?.try_into().map_err(|_| StateLoadError::UnknownKey(show(key)))?;
                self.reversed.insert(u64::from_be_bytes(seq));
            }
            _ => return Err(StateLoadError::UnknownKey(show(key))),
        }
        Ok(())
    }

    pub fn balance(&self, account: &Account) -> Fen {
        self.balances.get(account).copied().unwrap_or_default()
    }

    /// Every state record of this state, as the storage layer keys them: to rewrite the
    /// whole state column (a ledger whose records predate the current encoding).
    pub fn all_state_writes(&self) -> Vec<StateWrite> {
        let mut w: Vec<StateWrite> = Vec::new();
        for (id, m) in &self.members {
            w.push((member_key(id), Some(encode(m))));
        }
        w.push((standards_key(), Some(encode(&self.standards))));
        if self.admin != crate::admin::AdminState::default() {
            w.push((crate::admin::state_key(), Some(encode(&self.admin))));
        }
        for (f, p) in &self.interest_credited {
            w.push((interest_key(*f, *p), Some(Vec::new())));
        }
        for seq in &self.reversed {
            w.push((reversed_key(*seq), Some(Vec::new())));
        }
        for (key, money) in &self.periods {
            w.push((period_key(key), Some(encode(money))));
        }
        for (member, months) in &self.backpaid {
            w.push((backpaid_key(member), Some(encode(months))));
        }
        for (key, fen) in &self.year_moves {
            w.push((year_key(key), Some(encode(fen))));
        }
        w
    }

    /// Member accounts whose balance is negative (a rule let a holding go below zero).
    pub fn negative_member_accounts(&self) -> Vec<(&Account, Fen)> {
        let mut v: Vec<_> = self
            .balances
            .iter()
            .filter(|(a, f)| a.member_id().is_some() && f.0 < 0)
            .map(|(a, f)| (a, *f))
            .collect();
        v.sort_by_key(|(a, _)| a.to_string());
        v
    }

    /// Every fund's trial balance: the sum of all its accounts, which must be zero.
    pub fn trial_balance(&self) -> BTreeMap<Fund, i128> {
        let mut totals: BTreeMap<Fund, i128> = Fund::ALL.iter().map(|f| (*f, 0)).collect();
        for (account, fen) in &self.balances {
            *totals.entry(account.fund).or_default() += i128::from(fen.0);
        }
        totals
    }
}

/// The keys of state records and balances changed since the last checkpoint: what the next
/// checkpoint writes (docs/FORMAT.md §4). Posts change the state in memory only; the store's
/// state records are brought up to date in bulk, every so many entries and at close.
#[derive(Debug, Default)]
pub struct Dirty {
    pub(crate) members: KeyedSet<MemberId>,
    pub(crate) periods: KeyedSet<PeriodKey>,
    pub(crate) years: KeyedSet<(Account, u16)>,
    pub(crate) backpaid: KeyedSet<MemberId>,
    pub(crate) balances: KeyedSet<Account>,
    pub(crate) interest: KeyedSet<(Fund, Period)>,
    pub(crate) reversed: Vec<u64>,
    pub(crate) standards: bool,
    pub(crate) admin: bool,
}

impl Dirty {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
            && self.periods.is_empty()
            && self.years.is_empty()
            && self.backpaid.is_empty()
            && self.balances.is_empty()
            && self.interest.is_empty()
            && self.reversed.is_empty()
            && !self.standards
            && !self.admin
    }
}

impl LedgerState {
    /// [`LedgerState::commit`], noting in `dirty` every key the changes touch.
    pub fn commit_marking(&mut self, changes: crate::rules::StateChanges, dirty: &mut Dirty) {
        changes.mark(dirty);
        self.commit(changes);
    }

    /// The state records and balances of the keys in `dirty`, as they stand now: a put of the
    /// current value, or a delete for a record that no longer exists (an emptied premium
    /// period or year, an interest mark undone). Balances are written even at zero.
    pub fn checkpoint_writes(&self, dirty: &Dirty) -> (Vec<StateWrite>, Vec<(Vec<u8>, i64)>) {
        let mut w: Vec<StateWrite> = Vec::new();
        for id in &dirty.members {
            w.push((member_key(id), self.members.get(id).map(encode)));
        }
        if dirty.standards {
            w.push((standards_key(), Some(encode(&self.standards))));
        }
        if dirty.admin {
            w.push((crate::admin::state_key(), Some(encode(&self.admin))));
        }
        for (f, p) in &dirty.interest {
            let marked = self.interest_credited.contains(&(*f, *p));
            w.push((interest_key(*f, *p), marked.then(Vec::new)));
        }
        for seq in &dirty.reversed {
            w.push((reversed_key(*seq), Some(Vec::new())));
        }
        for key in &dirty.periods {
            w.push((period_key(key), self.periods.get(key).map(encode)));
        }
        for member in &dirty.backpaid {
            w.push((backpaid_key(member), self.backpaid.get(member).map(encode)));
        }
        for key in &dirty.years {
            w.push((year_key(key), self.year_moves.get(key).map(encode)));
        }
        let balances = dirty.balances.iter().map(|a| (balance_key(a), self.balance(a).0)).collect();
        (w, balances)
    }
}

/// Storage key of a balance: the encoded account (sorts by fund, then kind).
pub fn balance_key(account: &Account) -> Vec<u8> {
    encode(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(member: &str, year: u16, month: u8) -> PeriodKey {
        (MemberId::parse(member).unwrap(), Line::Medical, Period { year, month })
    }

    #[test]
    fn load_orders_periods_whatever_the_input_order() {
        // Years over 250 are not in order in their encoding; ids of two lengths neither.
        let keys = [period("M10", 2048, 1), period("M9", 2024, 12), period("M9", 2031, 3)];
        let mut records: Vec<_> = (0..3000)
            .map(|i| {
                let (m, l, p) = keys[i % 3].clone();
                let key = (MemberId::parse(&format!("{}x{i}", m.as_str())).unwrap(), l, p);
                let money = PeriodMoney { personal: Fen(i as i64), state: Fen(1) };
                (period_key(&key), encode(&money))
            })
            .collect();
        records.reverse();
        let s = LedgerState::load(records.clone(), Vec::new()).unwrap();
        let mut expected = BTreeMap::new();
        for (k, v) in &records {
            expected.insert(decode::<PeriodKey>(&k[2..]).unwrap(), decode(v).unwrap());
        }
        assert_eq!(s.periods, expected);
        // Of two records of one key, the later wins, as with inserts in order.
        let key = period_key(&period("M1", 2025, 1));
        let later = PeriodMoney { personal: Fen(2), state: Fen(2) };
        let twice = vec![
            (key.clone(), encode(&PeriodMoney { personal: Fen(1), state: Fen(1) })),
            (key, encode(&later)),
        ];
        let s = LedgerState::load(twice, Vec::new()).unwrap();
        assert_eq!(s.periods.values().collect::<Vec<_>>(), vec![&later]);
    }

    #[test]
    fn load_reports_the_first_bad_record() {
        let mut records: Vec<_> = (0..5000u16)
            .map(|i| {
                (
                    period_key(&period("M1", 2000 + i / 12, 1 + (i % 12) as u8)),
                    encode(&PeriodMoney::default()),
                )
            })
            .collect();
        records[4000].1 = vec![0xff];
        records[1234].1 = vec![0xff];
        for _ in 0..5 {
            let Err(StateLoadError::Value { key, .. }) =
                LedgerState::load(records.clone(), Vec::new())
            else {
                panic!("a bad record loads")
            };
            assert_eq!(key, String::from_utf8_lossy(&records[1234].0));
        }
        let bad_balance = vec![(
            balance_key(&Account::member(
                Fund::Medical,
                &MemberId::parse("M1").unwrap(),
                None,
                crate::fund::Holding::Personal,
            )),
            vec![1],
        )];
        assert!(matches!(
            LedgerState::load(Vec::new(), bad_balance),
            Err(StateLoadError::BalanceValue(_))
        ));
        assert!(matches!(
            LedgerState::load(vec![(vec![b'q', b'/'], Vec::new())], Vec::new()),
            Err(StateLoadError::UnknownKey(_))
        ));
    }
}
