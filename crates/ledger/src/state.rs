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

impl LedgerState {
    /// Loads the materialised state: key-value pairs of the state column and the balances.
    pub fn load(
        state: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        balances: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<LedgerState, StateLoadError> {
        let mut s = LedgerState::default();
        for (key, value) in state {
            let show = || String::from_utf8_lossy(&key).into_owned();
            let bad = |source| StateLoadError::Value { key: show(), source };
            // Every keyed record is a tag, a separator, then its key proper: a shorter key is
            // not one this ledger wrote (an integrity failure, never a slice out of range).
            let rest = || key.get(2..).ok_or_else(|| StateLoadError::UnknownKey(show()));
            match key.first() {
                Some(&KEY_MEMBER) => {
                    let id = MemberId::parse(&String::from_utf8_lossy(rest()?))
                        .map_err(|_| StateLoadError::UnknownKey(show()))?;
                    let member: MemberState = decode(&value).map_err(bad)?;
                    // What every rule may rely on: a member has an enrolment category and unit.
                    if member.categories.is_empty() || member.units.is_empty() {
                        return Err(StateLoadError::Member(show()));
                    }
                    s.members.insert(id, member);
                }
                Some(&KEY_PERIOD) => {
                    s.periods.insert(decode(rest()?).map_err(bad)?, decode(&value).map_err(bad)?);
                }
                Some(&KEY_BACKPAID) => {
                    let id = MemberId::parse(&String::from_utf8_lossy(rest()?))
                        .map_err(|_| StateLoadError::UnknownKey(show()))?;
                    s.backpaid.insert(id, decode(&value).map_err(bad)?);
                }
                Some(&KEY_YEAR) => {
                    s.year_moves
                        .insert(decode(rest()?).map_err(bad)?, decode(&value).map_err(bad)?);
                }
                Some(&KEY_STANDARDS) => s.standards = decode(&value).map_err(bad)?,
                Some(&crate::admin::STATE_KEY_BYTE) => s.admin = decode(&value).map_err(bad)?,
                Some(&KEY_INTEREST) => {
                    s.interest_credited.insert(decode(rest()?).map_err(bad)?);
                }
                Some(&KEY_REVERSED) => {
                    let seq: [u8; 8] =
                        rest()?.try_into().map_err(|_| StateLoadError::UnknownKey(show()))?;
                    s.reversed.insert(u64::from_be_bytes(seq));
                }
                _ => return Err(StateLoadError::UnknownKey(show())),
            }
        }
        for (key, value) in balances {
            let account: Account = decode(&key).map_err(|source| StateLoadError::Value {
                key: String::from_utf8_lossy(&key).into_owned(),
                source,
            })?;
            let fen: [u8; 8] = value
                .as_slice()
                .try_into()
                .map_err(|_| StateLoadError::BalanceValue(account.to_string()))?;
            s.balances.insert(account, Fen(i64::from_le_bytes(fen)));
        }
        Ok(s)
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
