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

mod book;
mod history;
pub use book::{FaultInError, MemberBook, Month, Page, Slot, YearPages, YearSum};
pub use history::{Dated, Rare};

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
    pub categories: Dated<(Date, Category)>,
    /// The current unit (the last of `units`): what the HTTP service scopes by.
    pub unit: UnitId,
    /// Units with the dates they took effect; the first is the enrolment unit (Art. 32).
    pub units: Dated<(Date, UnitId)>,
    pub enlisted_on: Date,
    /// Monthly pay (for a spouse: the contribution base) with the dates it took effect; the
    /// first is the enrolment pay.
    pub pays: Dated<(Date, Fen)>,
    /// A spouse's serviceman (boxed: the one field of a member's state that only spouses use).
    pub sponsor: Option<Box<MemberId>>,
    pub discharged_on: Option<Date>,
    /// The route taken at discharge (Art. 13-19).
    pub route: Option<Route>,
    pub deceased_on: Option<Date>,
    pub death_cause: Option<Cause>,
    /// Art. 29: suspension spans of the spouse subsidy, in order, not overlapping.
    pub suspensions: Rare<Suspension>,
    pub transfers: Rare<Transfer>,
    /// The conscript/cadet medical standard subsidy (Art. 20 ¶2) was posted.
    pub medical_standard_paid: bool,
    pub death_benefit_paid: bool,
    /// Casualty benefits paid (unreversed).
    pub benefits: Rare<PaidBenefit>,
}

impl MemberState {
    /// A member's state at enrolment: one category, unit and pay from `enlisted_on`, nothing
    /// else yet.
    pub fn enrolled(
        enlisted_on: Date,
        category: Category,
        unit: UnitId,
        monthly_pay: Fen,
        sponsor: Option<MemberId>,
    ) -> MemberState {
        MemberState {
            categories: vec![(enlisted_on, category)].into(),
            unit: unit.clone(),
            units: vec![(enlisted_on, unit)].into(),
            enlisted_on,
            pays: vec![(enlisted_on, monthly_pay)].into(),
            sponsor: sponsor.map(Box::new),
            discharged_on: None,
            route: None,
            deceased_on: None,
            death_cause: None,
            suspensions: Rare::new(),
            transfers: Rare::new(),
            medical_standard_paid: false,
            death_benefit_paid: false,
            benefits: Rare::new(),
        }
    }

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
    /// Boxed: a member's state is large (184 bytes) and the map of a million members has
    /// twice as many slots as members; boxed, the empty slots take 40 bytes, not 216, and
    /// loading the map writes (and the kernel zeroes) a fifth of the memory.
    pub members: KeyedMap<MemberId, Box<MemberState>>,
    /// Debit-positive balance of every account other than a member's that was ever posted to
    /// (the fund's pool, sources, uses, agency payables, unit receivables, unremitted money). A
    /// member account's balance is not kept apart: it is the sum of its yearly sums in the
    /// member's book ([`LedgerState::balance`], [`LedgerState::balances`]), which every posting
    /// to it changes.
    pub fund_balances: KeyedMap<Account, Fen>,
    pub standards: Standards,
    pub interest_credited: BTreeSet<(Fund, Period)>,
    /// Sequence numbers of entries that have been reversed.
    pub reversed: BTreeSet<u64>,
    /// Fund administration: the sealed years (`admin`).
    pub admin: crate::admin::AdminState,
    /// Per member: premiums and their subsidies per line and month, and the sum of each member
    /// account's postings per calendar year of value date (a balance at the end of a year, for
    /// Art. 31 interest, is the sum over years up to it). Kept apart from [`MemberState`] so
    /// that a monthly premium does not touch the member's whole history; dense (no member id
    /// per month), and stored as one record per member and year (docs/FORMAT.md §4). Members
    /// with nothing in their book have no entry.
    pub books: KeyedMap<MemberId, MemberBook>,
    /// Months back-paid per person under the 2019 opinion, all entries together.
    pub backpaid: KeyedMap<MemberId, crate::backpay::Backpaid>,
    /// Members whose book was read or changed in a year out of memory since the last
    /// [`LedgerState::take_misses`] ([`MemberBook::evict_through`]): what was read there is not
    /// the book's, so whatever read it must be undone and done again once the years are read
    /// back ([`LedgerState::fault_in`]).
    misses: Misses,
    /// How many books have years out of memory.
    cold_books: usize,
}

/// The members of [`LedgerState::take_misses`] (written by reads, `&self`, rarely) and of
/// [`LedgerState::take_faulted`].
#[derive(Debug, Default)]
struct Misses {
    missed: std::sync::Mutex<Vec<MemberId>>,
    faulted: std::sync::Mutex<Vec<MemberId>>,
    /// Whether `missed` may hold anything: taking nothing, as after nearly every event, then
    /// takes no lock.
    any: std::sync::atomic::AtomicBool,
}

impl Misses {
    /// Notes `member` (once for a run of notes of one member; [`LedgerState::take_misses`]
    /// gives each once): an event crediting interest to a year out of memory notes every
    /// member it credits.
    fn note(&self, member: &MemberId) {
        let mut v = self.missed.lock().unwrap_or_else(|p| p.into_inner());
        if v.last() != Some(member) {
            v.push(member.clone());
        }
        self.any.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// A copy of a state has missed nothing yet.
impl Clone for Misses {
    fn clone(&self) -> Misses {
        Misses::default()
    }
}

/// Not part of what a state holds.
impl PartialEq for Misses {
    fn eq(&self, _: &Misses) -> bool {
        true
    }
}

impl Eq for Misses {}

/// A member's premium line in one month.
pub type PeriodKey = (MemberId, Line, Period);

/// One key-value write of state, as the storage layer keeps it (see `docs/FORMAT.md`).
pub type StateWrite = (Vec<u8>, Option<Vec<u8>>);

const KEY_MEMBER: u8 = b'm';
const KEY_STANDARDS: u8 = b's';
const KEY_INTEREST: u8 = b'i';
const KEY_REVERSED: u8 = b'r';
/// State format 2 only: one record per member, line and month (read, never written).
const KEY_PERIOD: u8 = b'p';
/// State format 2 only: one record per member account and year (read, never written).
const KEY_YEAR: u8 = b'y';
/// One record per member and year: the member's months and yearly sums of that year.
const KEY_PAGE: u8 = b'q';
const KEY_BACKPAID: u8 = b'b';
const KEY_FENCE: u8 = b'f';
/// State format 5: one record per account of the fund's own (not a member's) with its balance,
/// in the `state` column family (the `balances` one before).
const KEY_FUND_BALANCE: u8 = b'k';

/// State format 5: the record naming the entry the stored state is as of (the checkpoint), and
/// the state's counts, stored with the state records it describes (docs/FORMAT.md §4).
pub const CHECKPOINT_KEY: &[u8] = b"c/";

/// A `state` record that only marks the state format (docs/FORMAT.md §4): a version of
/// junbao from before state format 4 reads an unknown key as corruption and refuses to open
/// the ledger, naming the key — where, reading the pages alone, it would find every member
/// account's balance at zero (it kept them apart) and go on to post on that. So the key says
/// what the refusal means. Written whole with the state ([`LedgerState::all_state_writes`]).
pub const FORMAT_FENCE_KEY: &[u8] =
    b"f/state format 4: member balances derived from the pages, open with a newer junbao";

/// The write of the [`FORMAT_FENCE_KEY`] record (it holds nothing).
pub fn format_fence_write() -> StateWrite {
    (FORMAT_FENCE_KEY.to_vec(), Some(Vec::new()))
}

/// The first key of the member-year pages: the `state` records before it (members, back-paid
/// months, interest marks, format 2's months) and those from it on (pages, reversal marks,
/// standards) can be scanned apart, in parallel.
pub const PAGES_FROM: &[u8] = &[KEY_PAGE, b'/'];

pub fn backpaid_key(member: &MemberId) -> Vec<u8> {
    let mut k = vec![KEY_BACKPAID, b'/'];
    k.extend_from_slice(member.as_str().as_bytes());
    k
}

/// The key of a record of state format 2's per-account yearly sums (tests of the conversion).
pub fn year_key(key: &(Account, u16)) -> Vec<u8> {
    let mut k = vec![KEY_YEAR, b'/'];
    k.extend_from_slice(&encode(key));
    k
}

/// The key of a record of state format 2's per-month premiums (tests of the conversion).
pub fn period_key(key: &PeriodKey) -> Vec<u8> {
    let mut k = vec![KEY_PERIOD, b'/'];
    k.extend_from_slice(&encode(key));
    k
}

/// The key of a member-year page: `q/`, the member id, `0x00`, the year (u16 big endian). A
/// member id never holds `0x00`, so one member's pages are adjacent and in year order.
pub fn page_key(member: &MemberId, year: u16) -> Vec<u8> {
    let id = member.as_str().as_bytes();
    let mut k = Vec::with_capacity(id.len() + 5);
    k.extend_from_slice(&[KEY_PAGE, b'/']);
    k.extend_from_slice(id);
    k.push(0);
    k.extend_from_slice(&year.to_be_bytes());
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
    #[error(
        "the premium months or yearly sums of member {0} are repeated, unordered or zero, or \
         an account's sums pass the largest balance the ledger holds"
    )]
    Book(String),
    /// A member account's balance stored apart: in the current format it is the sum of the
    /// account's yearly sums, and in an earlier one the stored figure must equal that sum.
    #[error(
        "the stored balance of member account {0} is not the sum of its yearly sums (or is \
         stored apart in a ledger whose format derives it)"
    )]
    MemberBalance(String),
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

/// The member id of a key's bytes.
fn member_id(key: &[u8], id: &[u8]) -> Result<MemberId, StateLoadError> {
    std::str::from_utf8(id)
        .ok()
        .and_then(|id| MemberId::parse(id).ok())
        .ok_or_else(|| StateLoadError::UnknownKey(show(key)))
}

/// Whether a `state` key is a member-year page's ([`page_key`]).
pub fn is_page_key(key: &[u8]) -> bool {
    key.first() == Some(&KEY_PAGE)
}

/// The member id's bytes and the year of a member-year page's key (`q/` already seen).
fn page_key_parts(key: &[u8]) -> Result<(&[u8], u16), StateLoadError> {
    rest(key)?
        .split_last_chunk::<3>()
        .filter(|(_, [sep, ..])| *sep == 0)
        .map(|(id, [_, y0, y1])| (id, u16::from_be_bytes([*y0, *y1])))
        .ok_or_else(|| StateLoadError::UnknownKey(show(key)))
}

/// The member and year of a member-year page's key ([`page_key`]); `None` for any other key.
pub fn page_member_year(key: &[u8]) -> Option<(MemberId, u16)> {
    if !is_page_key(key) {
        return None;
    }
    let (id, year) = page_key_parts(key).ok()?;
    Some((member_id(key, id).ok()?, year))
}

/// What a `state` record of key `key` is, in the order a verification names kinds in, with
/// the kind's words and the record's own name (a member, an account, a fund's month, an entry;
/// empty for the one record of its kind), for an error that names a record: `(order, kind,
/// name)`.
pub fn describe_state_key(key: &[u8]) -> (u8, &'static str, String) {
    let member = || rest(key).ok().and_then(|id| member_id(key, id).ok());
    let named = |m: Option<MemberId>| m.map_or_else(|| show(key), |m| m.to_string());
    match key.first().copied() {
        Some(KEY_FUND_BALANCE) => {
            let account = rest(key).ok().and_then(|k| decode::<Account>(k).ok());
            (0, "balances", account.map_or_else(|| show(key), |a| a.to_string()))
        }
        Some(KEY_MEMBER) => (1, "member records", named(member())),
        Some(KEY_PAGE) => (
            2,
            "premium-period records (member-year pages: premium months, yearly sums)",
            page_member_year(key).map_or_else(|| show(key), |(m, y)| format!("{m} ({y})")),
        ),
        Some(KEY_STANDARDS) => (3, "standards", String::new()),
        Some(KEY_INTEREST) => {
            let mark = rest(key).ok().and_then(|k| decode::<(Fund, Period)>(k).ok());
            (4, "interest marks", mark.map_or_else(|| show(key), |(f, p)| format!("{f} {p}")))
        }
        Some(KEY_REVERSED) => {
            let seq = rest(key).ok().and_then(|k| <[u8; 8]>::try_from(k).ok());
            (
                5,
                "reversal marks",
                seq.map_or_else(|| show(key), |s| format!("entry {}", u64::from_be_bytes(s))),
            )
        }
        Some(KEY_BACKPAID) => (6, "back-paid months", named(member())),
        Some(crate::admin::STATE_KEY_BYTE) => {
            (7, "administration record (sealed years, deposit interest)", String::new())
        }
        _ => (8, "records", show(key)),
    }
}

/// A member record.
fn member_record(key: &[u8], value: &[u8]) -> Result<(MemberId, MemberState), StateLoadError> {
    let id = member_id(key, rest(key)?)?;
    let member: MemberState = decode(value).map_err(bad(key))?;
    // What every rule may rely on: a member has an enrolment category and unit.
    if member.categories.is_empty() || member.units.is_empty() {
        return Err(StateLoadError::Member(show(key)));
    }
    Ok((id, member))
}

/// One stored state record or balance, decoded ([`StateRecord::decode`]): what
/// [`StateLoader::insert`] takes. Decoding needs nothing but the record, so it can run on
/// another thread than the inserts.
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum StateRecord {
    /// Boxed as the state holds it (and so that every record, sent in batches from the thread
    /// that decodes to the one that inserts, is not as large as a member).
    Member(MemberId, Box<MemberState>),
    /// A member-year page, as a book of that page alone.
    Page(MemberId, MemberBook),
    Backpaid(MemberId, crate::backpay::Backpaid),
    /// State format 2: one premium month.
    Month(MemberId, Line, Period, PeriodMoney),
    /// State format 2: one member account's sum of one year.
    Year(MemberId, Slot, u16, Fen),
    Balance(Account, Fen),
    Standards(Standards),
    Admin(crate::admin::AdminState),
    Interest((Fund, Period)),
    Reversed(u64),
    /// The record that keeps versions before state format 4 from opening the ledger
    /// ([`FORMAT_FENCE_KEY`]): it holds nothing.
    Fence,
    /// The [`CHECKPOINT_KEY`] record: read apart by the open, nothing of the state.
    Checkpoint,
}

impl StateRecord {
    /// A record of the `state` column family. Records of state format 2 are read when
    /// `format2` is set, and are unknown keys otherwise.
    pub fn decode(key: &[u8], value: &[u8], format2: bool) -> Result<StateRecord, StateLoadError> {
        Ok(match key.first().copied() {
            Some(KEY_MEMBER) => {
                let (id, member) = member_record(key, value)?;
                StateRecord::Member(id, Box::new(member))
            }
            Some(KEY_PAGE) => {
                let (id, year) = page_key_parts(key)?;
                let id = member_id(key, id)?;
                let mut page = MemberBook::default();
                page.push_page(year, value).map_err(bad(key))?;
                StateRecord::Page(id, page)
            }
            Some(KEY_BACKPAID) => {
                let id = member_id(key, rest(key)?)?;
                StateRecord::Backpaid(id, decode(value).map_err(bad(key))?)
            }
            Some(KEY_PERIOD) if format2 => {
                let (member, line, period): PeriodKey = decode(rest(key)?).map_err(bad(key))?;
                StateRecord::Month(member, line, period, decode(value).map_err(bad(key))?)
            }
            Some(KEY_YEAR) if format2 => {
                let (account, year): (Account, u16) = decode(rest(key)?).map_err(bad(key))?;
                let sum: Fen = decode(value).map_err(bad(key))?;
                let (member, slot) =
                    Slot::of(&account).ok_or_else(|| StateLoadError::UnknownKey(show(key)))?;
                StateRecord::Year(member.clone(), slot, year, sum)
            }
            Some(KEY_STANDARDS) => StateRecord::Standards(decode(value).map_err(bad(key))?),
            Some(crate::admin::STATE_KEY_BYTE) => {
                StateRecord::Admin(decode(value).map_err(bad(key))?)
            }
            Some(KEY_INTEREST) => StateRecord::Interest(decode(rest(key)?).map_err(bad(key))?),
            Some(KEY_REVERSED) => {
                let seq: [u8; 8] =
                    rest(key)?.try_into().map_err(|_| StateLoadError::UnknownKey(show(key)))?;
                StateRecord::Reversed(u64::from_be_bytes(seq))
            }
            Some(KEY_FENCE) if key == FORMAT_FENCE_KEY && value.is_empty() => StateRecord::Fence,
            Some(KEY_FUND_BALANCE) => StateRecord::decode_balance(rest(key)?, value)?,
            _ if key == CHECKPOINT_KEY => StateRecord::Checkpoint,
            _ => return Err(StateLoadError::UnknownKey(show(key))),
        })
    }

    /// A record of the `balances` column family, which state format 5 leaves empty (its
    /// balances are `state` records): read only from a ledger of an earlier format (`format2`,
    /// as for [`StateRecord::decode`]).
    pub fn decode_balances_record(
        key: &[u8],
        value: &[u8],
        format2: bool,
    ) -> Result<StateRecord, StateLoadError> {
        if !format2 {
            return Err(StateLoadError::UnknownKey(format!(
                "a record of the balances column family: {}",
                show(key)
            )));
        }
        StateRecord::decode_balance(key, value)
    }

    /// A balance record: the encoded account, the balance (i64 LE).
    pub fn decode_balance(key: &[u8], value: &[u8]) -> Result<StateRecord, StateLoadError> {
        let account: Account = decode(key).map_err(bad(key))?;
        let fen: [u8; 8] =
            value.try_into().map_err(|_| StateLoadError::BalanceValue(account.to_string()))?;
        Ok(StateRecord::Balance(account, Fen(i64::from_le_bytes(fen))))
    }
}

/// Builds the state from its stored records as a scan yields them, one record at a time: no
/// record is kept after it is decoded (docs/FORMAT.md §4).
///
/// Records may come in any order; a store gives them in key order, where one member's pages
/// are adjacent and in year order, so their book is built by appending. Records of the
/// earlier state formats are read when `format2` is set (a ledger not marked with the current
/// format), and refused otherwise: state format 2's (one per premium month, one per member
/// account and year), and the member accounts' balances that formats 2 and 3 stored apart
/// (each must equal the sum of the account's yearly sums, which the current format derives
/// it from).
#[derive(Debug)]
pub struct StateLoader {
    state: LedgerState,
    format2: bool,
    /// Whether a record of state format 2 was read.
    format2_seen: bool,
    /// The books of the pages (and of state format 2's months and sums) given here.
    books: ScannedBooks,
    /// Balances of member accounts, as state formats 2 and 3 stored them: checked against the
    /// books by [`StateLoader::finish_with`], then dropped.
    member_balances: Vec<(Account, Fen)>,
}

impl StateLoader {
    pub fn new(format2: bool) -> StateLoader {
        StateLoader {
            state: LedgerState::default(),
            format2,
            format2_seen: false,
            books: ScannedBooks::default(),
            member_balances: Vec::new(),
        }
    }

    /// Whether a record of state format 2 was read.
    pub fn format2_seen(&self) -> bool {
        self.format2_seen
    }

    /// Makes room for about this many members, books and balances.
    pub fn reserve(&mut self, members: usize, books: usize, balances: usize) {
        self.state.reserve(members, 0, balances);
        self.books.reserve(books);
    }

    /// Members loaded elsewhere (another thread's map): each member has one record, so no
    /// member is in two of them.
    pub fn add_members(&mut self, members: KeyedMap<MemberId, Box<MemberState>>) {
        if self.state.members.len() < members.len() {
            let smaller = std::mem::replace(&mut self.state.members, members);
            self.state.members.extend(smaller);
        } else {
            self.state.members.extend(members);
        }
    }

    /// One record of the `state` column family.
    pub fn record(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateLoadError> {
        self.insert(StateRecord::decode(key, value, self.format2)?);
        Ok(())
    }

    /// One record of the `balances` column family.
    pub fn balance(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateLoadError> {
        self.insert(StateRecord::decode_balance(key, value)?);
        Ok(())
    }

    /// One decoded record.
    pub fn insert(&mut self, record: StateRecord) {
        let s = &mut self.state;
        match record {
            StateRecord::Member(id, member) => {
                s.members.insert(id, member);
            }
            StateRecord::Page(id, page) => self.books.add_page(id, page),
            StateRecord::Backpaid(id, b) => {
                s.backpaid.insert(id, b);
            }
            StateRecord::Month(id, line, period, money) => {
                self.format2_seen = true;
                self.books.book(id).push_month(line, period, money);
            }
            StateRecord::Year(id, slot, year, sum) => {
                self.format2_seen = true;
                self.books.book(id).push_year(slot, year, sum);
            }
            StateRecord::Balance(account, fen) if account.member_id().is_some() => {
                self.member_balances.push((account, fen));
            }
            StateRecord::Balance(account, fen) => {
                s.fund_balances.insert(account, fen);
            }
            StateRecord::Standards(standards) => s.standards = standards,
            StateRecord::Admin(admin) => s.admin = admin,
            StateRecord::Interest(key) => {
                s.interest_credited.insert(key);
            }
            StateRecord::Reversed(seq) => {
                s.reversed.insert(seq);
            }
            StateRecord::Fence | StateRecord::Checkpoint => {}
        }
    }

    /// The state the records make. Every book must be canonical (what the ledger writes): one
    /// read in another order is sorted first, and a repeated, unordered or zero month or sum
    /// is an error.
    pub fn finish(self) -> Result<LedgerState, StateLoadError> {
        self.finish_with(Vec::new())
    }

    /// [`StateLoader::finish`], with the books scanning threads built and checked themselves
    /// (one member's pages all in one scan, as a store's key order gives them; a member with
    /// books in two places gets them together, checked again). Of several wrong books, the
    /// least member id is named, whatever the maps' order.
    pub fn finish_with(
        mut self,
        mut scanned: Vec<ScannedBooks>,
    ) -> Result<LedgerState, StateLoadError> {
        scanned.push(std::mem::take(&mut self.books));
        let mut bad = None;
        let keep = scanned.iter().find_map(|b| b.keep);
        let mut held = Vec::new();
        let mut cold = 0;
        for mut books in scanned {
            books.complete_as(true);
            // What was completed and not yet taken stays with these books.
            for (member, book) in books.take_completed() {
                books.add_completed(member, book);
            }
            bad = bad.min_some(books.bad);
            held.append(&mut books.held);
            cold += books.cold;
            let held = std::mem::take(&mut self.state.books);
            let (mut into, from) = if held.len() >= books.books.len() {
                (held, books.books)
            } else {
                (books.books, held)
            };
            // The books of one member in two scans are their first or last members', kept
            // whole (`held`).
            for (member, book) in from {
                bad = bad.min_some(put_together(&mut into, member, book));
            }
            self.state.books = into;
        }
        if let Some(member) = bad {
            return Err(StateLoadError::Book(member.to_string()));
        }
        self.state.cold_books = cold;
        if let Some(keep) = keep {
            for member in held {
                self.state.evict_keeping(&member, keep, None);
            }
        }
        check_member_balances(&self.state, self.member_balances, self.format2)?;
        Ok(self.state)
    }
}

/// The balances of member accounts an earlier state format stored apart (`stored`, allowed
/// only when `older`): each must be the sum of the account's yearly sums in `state`'s books,
/// which is what the current format keeps (a stored figure that contradicts the books is an
/// integrity failure, never silently dropped; a ledger's `verify` checks the books against
/// the journal). Names the least account that differs.
fn check_member_balances(
    state: &LedgerState,
    stored: Vec<(Account, Fen)>,
    older: bool,
) -> Result<(), StateLoadError> {
    stored
        .into_iter()
        .filter(|(account, fen)| !older || state.balance(account) != *fen)
        .map(|(account, _)| account)
        .min()
        .map_or(Ok(()), |account| Err(StateLoadError::MemberBalance(account.to_string())))
}

/// Puts `member`'s `book` into `books`: with the book already there, if any, checked again.
/// Returns the member if the result is not canonical, or either part had let go of years (a
/// book missing years is never put together with another).
fn put_together(
    books: &mut KeyedMap<MemberId, MemberBook>,
    member: MemberId,
    book: MemberBook,
) -> Option<MemberId> {
    use std::collections::hash_map::Entry as Slot;
    match books.entry(member) {
        Slot::Vacant(slot) => {
            slot.insert(book);
            None
        }
        Slot::Occupied(mut slot) => {
            let other = slot.get_mut();
            let cold_part = other.cold_through().is_some() || book.cold_through().is_some();
            other.append(book);
            (cold_part || !other.make_canonical()).then(|| slot.key().clone())
        }
    }
}

/// The least of two optional member ids, either one if the other is absent.
trait MinSome: Sized {
    fn min_some(self, other: Self) -> Self;
}

impl MinSome for Option<MemberId> {
    fn min_some(self, other: Self) -> Self {
        match (self, other) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Members' books as a scan gives their records (a store's key order gives one member's
/// records together, pages in year order), each checked as soon as the next member's records
/// come: the check then reads the pages still in the cache, on the thread that decoded them,
/// instead of a second pass over a million books ([`StateLoader::finish_with`]). A member whose
/// records come again later (not what a store gives) gets them put together, checked again:
/// here, or where the books are handed on to ([`ScannedBooks::handing_on`]). Handed on, each
/// part is completed on its own, letting go of its old years (`evicting`) before the parts are
/// put together; a part that let go of years makes the whole book refused there, where kept
/// here it would have been put together first.
#[derive(Debug, Default)]
pub struct ScannedBooks {
    books: KeyedMap<MemberId, MemberBook>,
    /// The member whose records come now, with their book so far.
    current: Option<(MemberId, MemberBook)>,
    /// The least member whose book is not canonical, even sorted.
    bad: Option<MemberId>,
    /// The greatest member completed so far: a member after it has no book yet.
    last: Option<MemberId>,
    /// Each member's latest years kept in memory as their book is completed, the older ones
    /// let go of (`None`: all kept): [`ScannedBooks::evicting`].
    keep: Option<u16>,
    /// Books completed so far.
    completed: usize,
    /// Members whose book was kept whole at completion although `keep` is set: the first of
    /// the scan and the last, whose pages another scan may continue
    /// ([`StateLoader::finish_with`] lets go of their years once the books are together).
    held: Vec<MemberId>,
    /// Books that let go of years.
    cold: usize,
    /// Books completed and not kept here but handed on ([`ScannedBooks::handing_on`]), in the
    /// order completed, until taken ([`ScannedBooks::take_completed`]).
    handed: Option<Vec<(MemberId, MemberBook)>>,
}

impl ScannedBooks {
    /// Books that let go of their years before the last `keep` as each is completed (the
    /// stored pages they are read from are those years' pages: [`MemberBook::evict_through`]),
    /// so that an open never holds every member's whole history at once.
    pub fn evicting(keep: u16) -> ScannedBooks {
        ScannedBooks { keep: Some(keep), ..ScannedBooks::default() }
    }

    /// These books hand each book on as it is completed ([`ScannedBooks::take_completed`]),
    /// for another thread to put into a map of its own ([`ScannedBooks::add_completed`]),
    /// instead of putting it into a map here: a thread decoding a million members' pages then
    /// leaves the map's inserts (a cache miss or two each) to a core with less to do.
    pub fn handing_on(mut self) -> ScannedBooks {
        self.handed = Some(Vec::new());
        self
    }

    /// The books completed since the last call (none unless [`ScannedBooks::handing_on`]).
    pub fn take_completed(&mut self) -> Vec<(MemberId, MemberBook)> {
        // The next ones go into room of the same size, not grown again from nothing.
        self.handed
            .as_mut()
            .map(|h| std::mem::replace(h, Vec::with_capacity(h.capacity())))
            .unwrap_or_default()
    }

    /// How many completed books wait to be taken.
    pub fn completed_waiting(&self) -> usize {
        self.handed.as_ref().map_or(0, Vec::len)
    }

    /// A book another [`ScannedBooks`] completed and handed on (checked there): put together
    /// with the member's book here, if any, and checked again ([`ScannedBooks::finish_with`]'s
    /// rule for a member's books from two scans).
    pub fn add_completed(&mut self, member: MemberId, book: MemberBook) {
        let bad = put_together(&mut self.books, member, book);
        self.bad = std::mem::take(&mut self.bad).min_some(bad);
    }

    /// Makes room for about `books` books.
    pub fn reserve(&mut self, books: usize) {
        self.books.reserve(books);
    }

    /// The stored record `key`, `value` if it is a member-year page (false otherwise, for the
    /// caller to decode as any other record): decoded straight into the book of the member
    /// being read, with the same result as [`StateRecord::decode`] then
    /// [`ScannedBooks::add_page`], and no book of the page's own in between.
    pub fn add_page_record(&mut self, key: &[u8], value: &[u8]) -> Result<bool, StateLoadError> {
        if !is_page_key(key) {
            return Ok(false);
        }
        let (id, year) = page_key_parts(key)?;
        // The member's next page (a scan gives them one after the other): no id to parse.
        if !matches!(&self.current, Some((m, _)) if m.as_str().as_bytes() == id) {
            self.book(member_id(key, id)?);
        }
        let book = &mut self.current.as_mut().expect("the member's book, set above").1;
        book.push_page(year, value).map_err(bad(key))?;
        Ok(true)
    }

    /// A member-year page of `member` (decoded as a book of that page alone).
    pub fn add_page(&mut self, member: MemberId, page: MemberBook) {
        let book = self.book(member);
        if book.is_empty() {
            *book = page;
        } else {
            book.append(page);
        }
    }

    /// The book of `member` being read: the current one, or a new one (the current one
    /// completed).
    fn book(&mut self, member: MemberId) -> &mut MemberBook {
        if !matches!(&self.current, Some((m, _)) if *m == member) {
            self.complete();
            self.current = Some((member, MemberBook::default()));
        }
        &mut self.current.as_mut().expect("set above").1
    }

    /// The current book, checked (and kept if it holds anything; its older years let go of
    /// unless it is the first or the `last` of the scan).
    fn complete(&mut self) {
        self.complete_as(false);
    }

    fn complete_as(&mut self, last: bool) {
        let Some((member, mut book)) = self.current.take() else { return };
        if self.last.as_ref().is_some_and(|last| member <= *last) {
            // Not in key order: the member's records read before are put together with these.
            if let Some(mut before) = self.books.remove(&member) {
                if before.cold_through().is_some() {
                    // Not what a store's scan gives (its keys come in order); never put
                    // together with a book missing years.
                    self.bad = std::mem::take(&mut self.bad).min_some(Some(member.clone()));
                }
                before.append(book);
                book = before;
            }
        } else {
            self.last = Some(member.clone());
        }
        if !book.make_canonical() {
            self.bad = std::mem::take(&mut self.bad).min_some(Some(member.clone()));
        }
        if let Some(keep) = self.keep
            && !book.is_empty()
        {
            if self.completed > 0 && !last {
                if let Some(through) = evictable_through(&book, keep, None) {
                    evict_counting(&mut book, through, &mut self.cold);
                }
            } else {
                self.held.push(member.clone());
            }
        }
        self.completed += 1;
        if !book.is_empty() {
            match &mut self.handed {
                Some(handed) => handed.push((member, book)),
                None => {
                    self.books.insert(member, book);
                }
            }
        }
    }
}

impl LedgerState {
    /// Makes room for about this many members, books and balances (a map filled record by
    /// record otherwise rehashes and moves every record at each doubling).
    pub fn reserve(&mut self, members: usize, books: usize, balances: usize) {
        self.members.reserve(members);
        self.books.reserve(books);
        self.fund_balances.reserve(balances);
    }

    /// Loads the stored state from the records of the state column family and the balances,
    /// in any order (the current state format only; see [`StateLoader`]).
    pub fn load(
        state: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        balances: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<LedgerState, StateLoadError> {
        let mut loader = StateLoader::new(false);
        for (k, v) in state {
            loader.record(&k, &v)?;
        }
        for (k, v) in balances {
            loader.balance(&k, &v)?;
        }
        loader.finish()
    }

    /// Reads, and changes nothing, what an entry's effects will read and change first: its
    /// member's state and book and its accounts' balances. Called for a few entries in a row
    /// before they are applied, the cache misses of those reads overlap instead of coming one
    /// after another (a map of a million members is far larger than the caches). The value
    /// only keeps the reads from being left out.
    pub fn warm(&self, entry: &crate::entry::Entry) -> usize {
        let mut touched = 0usize;
        if let Some(m) = entry.event.body.member() {
            touched ^= self.members.get(m).map_or(0, |s| s.categories.len());
            touched ^= self.books.get(m).map_or(0, |b| b.months().len());
        }
        for p in &entry.postings {
            // A member account's balance is in the member's book, read above.
            if p.account.member_id().is_none() {
                touched ^= self.fund_balances.get(&p.account).map_or(0, |f| f.0 as usize);
            }
        }
        touched
    }

    /// The money of `member`'s premium `line` in `period`, if any. A year out of memory reads
    /// as nothing and is noted ([`LedgerState::take_misses`]).
    pub fn period(&self, member: &MemberId, line: Line, period: Period) -> Option<PeriodMoney> {
        let book = self.books.get(member)?;
        if book.is_cold(period.year) {
            self.misses.note(member);
            return None;
        }
        book.month(line, period)
    }

    /// The months of `member`'s premium `line` that hold money, ascending. A book with years
    /// out of memory gives those in memory only, and is noted ([`LedgerState::take_misses`]).
    pub fn months_of(&self, member: &MemberId, line: Line) -> impl Iterator<Item = Period> + '_ {
        let book = self.books.get(member);
        if book.is_some_and(|b| b.cold_through().is_some()) {
            self.misses.note(member);
        }
        book.into_iter().flat_map(move |b| b.months_of(line))
    }

    /// The months of `member`'s premium `line` from `from` on that hold money, ascending:
    /// [`LedgerState::months_of`] for a rule that reads only those, which misses only when
    /// `from` is in a year out of memory.
    pub fn months_from(
        &self,
        member: &MemberId,
        line: Line,
        from: Period,
    ) -> impl Iterator<Item = Period> + '_ {
        let book = self.books.get(member);
        if book.is_some_and(|b| b.is_cold(from.year)) {
            self.misses.note(member);
        }
        book.into_iter().flat_map(move |b| b.months_of(line)).filter(move |p| *p >= from)
    }

    /// The members whose book was read or changed in a year out of memory since the last
    /// call, each once; none are noted after it.
    pub fn take_misses(&self) -> Vec<MemberId> {
        if !self.misses.any.swap(false, std::sync::atomic::Ordering::Acquire) {
            return Vec::new();
        }
        let missed = &self.misses.missed;
        let mut v = std::mem::take(&mut *missed.lock().unwrap_or_else(|p| p.into_inner()));
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether `member`'s book has years out of memory.
    pub fn has_cold_years(&self, member: &MemberId) -> bool {
        self.books.get(member).is_some_and(|b| b.cold_through().is_some())
    }

    /// Whether any book has years out of memory.
    pub fn any_cold_years(&self) -> bool {
        self.cold_books > 0
    }

    /// How many books have years out of memory.
    pub fn cold_books(&self) -> usize {
        self.cold_books
    }

    /// `member`'s last year out of memory, if any: its pages up to it are what
    /// [`LedgerState::fault_in`] needs.
    pub fn cold_through(&self, member: &MemberId) -> Option<u16> {
        self.books.get(member).and_then(MemberBook::cold_through)
    }

    /// Lets go of `member`'s years up to `through` ([`MemberBook::evict_through`]; the
    /// caller guarantees that the store holds their pages as they are now). Returns whether
    /// anything left memory.
    pub fn evict_through(&mut self, member: &MemberId, through: u16) -> bool {
        let Some(book) = self.books.get_mut(member) else { return false };
        evict_counting(book, through, &mut self.cold_books)
    }

    /// Lets go of `member`'s years before the last `keep` years of their book (see
    /// [`LedgerState::evict_through`]), and before `changed` (the earliest year changed since
    /// it was stored, if any: that year and those after it stay).
    pub fn evict_keeping(&mut self, member: &MemberId, keep: u16, changed: Option<u16>) -> bool {
        let Some(book) = self.books.get(member) else { return false };
        match evictable_through(book, keep, changed) {
            Some(through) => self.evict_through(member, through),
            None => false,
        }
    }

    /// Each member whose book has years out of memory, with the last of them
    /// ([`LedgerState::cold_through`]).
    pub fn cold_throughs(&self) -> Vec<(MemberId, u16)> {
        if self.cold_books == 0 {
            return Vec::new();
        }
        let cold = self.books.iter().filter_map(|(m, b)| Some((m.clone(), b.cold_through()?)));
        cold.collect()
    }

    /// The members whose books hold years before their last `keep`
    /// ([`LedgerState::evict_keeping`]), in no particular order.
    pub fn books_holding_years_before_last(&self, keep: u16) -> Vec<MemberId> {
        self.books
            .iter()
            .filter(|(_, book)| book.holds_years_before_last(keep))
            .map(|(member, _)| member.clone())
            .collect()
    }

    /// Of each of `members`' books: the years it would let go of, keeping its last `keep`
    /// ([`LedgerState::evict_keeping`]), with their pages as they are in memory (none for a
    /// book with nothing to let go of). What a reader that keeps no pages of its own (`verify`'s
    /// replay) lets go of only where the stored pages are these.
    pub fn years_to_let_go(&self, members: &[MemberId], keep: u16) -> Vec<YearsToLetGo> {
        use rayon::prelude::*;
        // The pages are encoded on the thread pool.
        members
            .par_iter()
            .filter_map(|member| {
                let book = self.books.get(member)?;
                let through = evictable_through(book, keep, None)?;
                let (through, pages) = book.pages_to_let_go(through)?;
                let from = book.cold_through().map_or(crate::time::FIRST_YEAR, |c| c + 1);
                Some(YearsToLetGo { member: member.clone(), from, through, pages })
            })
            .collect()
    }

    /// Reads `member`'s years out of memory back from their stored pages
    /// ([`MemberBook::fault_in`]); nothing to do for a book with none.
    pub fn fault_in<'p>(
        &mut self,
        member: &MemberId,
        pages: impl IntoIterator<Item = (u16, &'p [u8])>,
    ) -> Result<(), FaultInError> {
        let Some(book) = self.books.get_mut(member) else { return Ok(()) };
        if book.cold_through().is_none() {
            return Ok(());
        }
        book.fault_in(pages)?;
        self.cold_books -= 1;
        self.misses.faulted.lock().unwrap_or_else(|p| p.into_inner()).push(member.clone());
        Ok(())
    }

    /// The members whose years were read back since the last call: their books are whole
    /// again until they are let go of again.
    pub fn take_faulted(&self) -> Vec<MemberId> {
        std::mem::take(&mut *self.misses.faulted.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Lets go of the years before the last `keep` of every member's book, and before the
    /// year `changed` gives for the member ([`LedgerState::evict_keeping`]). Returns how many
    /// books let go of any.
    pub fn evict_all_keeping(
        &mut self,
        keep: u16,
        changed: impl Fn(&MemberId) -> Option<u16>,
    ) -> usize {
        let mut evicted = 0;
        for (member, book) in self.books.iter_mut() {
            // Most books, most times: nothing before the resident years (no look-up of
            // `changed` then).
            if !book.holds_years_before_last(keep) {
                continue;
            }
            let Some(through) = evictable_through(book, keep, changed(member)) else { continue };
            if evict_counting(book, through, &mut self.cold_books) {
                evicted += 1;
            }
        }
        evicted
    }

    /// Every premium month holding money and in memory (all of them in a state whose books
    /// have no year out of memory, and always every month awaiting its match:
    /// [`MemberBook::evict_through`]), ordered by member, line and period.
    pub fn periods(&self) -> Vec<(&MemberId, Line, Period, &PeriodMoney)> {
        let mut members: Vec<(&MemberId, &MemberBook)> = self.books.iter().collect();
        members.sort_unstable_by_key(|(m, _)| *m);
        let mut v = Vec::new();
        for (member, book) in members {
            let start = v.len();
            v.extend(book.months().iter().map(|m| (member, m.line, m.period, &m.money)));
            v[start..].sort_unstable_by_key(|(_, line, period, _)| (*line, *period));
        }
        v
    }

    /// Sets the money of `member`'s premium `line` in `period` (zero removes the month).
    pub fn set_period(
        &mut self,
        member: &MemberId,
        line: Line,
        period: Period,
        money: PeriodMoney,
    ) {
        self.change_book(member, period.year, money == PeriodMoney::default(), |book| {
            book.set_month(line, period, money)
        });
    }

    /// Applies `change` to `member`'s book: a book it empties is removed, and none is made for
    /// a change that `leaves_empty` (members with nothing in their book have no entry).
    fn change_book(
        &mut self,
        member: &MemberId,
        year: u16,
        leaves_empty: bool,
        change: impl FnOnce(&mut MemberBook),
    ) {
        match self.books.get_mut(member) {
            Some(book) => {
                if book.is_cold(year) {
                    // Changed on what is in memory, and undone: whatever changed it read the
                    // year too, and is done again once the year is read back.
                    self.misses.note(member);
                }
                change(book);
                if book.is_empty() {
                    self.books.remove(member);
                }
            }
            None if leaves_empty => {}
            None => {
                let mut book = MemberBook::default();
                change(&mut book);
                self.books.insert(member.clone(), book);
            }
        }
    }

    /// The sum of a member account's postings with a value date in `year` (zero for any other
    /// account).
    /// A year out of memory reads as zero and is noted ([`LedgerState::take_misses`]).
    pub fn year_move(&self, account: &Account, year: u16) -> Fen {
        let Some((m, slot)) = Slot::of(account) else { return Fen(0) };
        let Some(book) = self.books.get(m) else { return Fen(0) };
        if book.is_cold(year) {
            self.misses.note(m);
            return Fen(0);
        }
        book.year_sum(slot, year)
    }

    /// The sum of a member account's postings with a value date in the years `from..=to`.
    /// Years out of memory count by their totals from [`crate::time::FIRST_YEAR`] on; any
    /// other range that needs them reads as zero and is noted ([`LedgerState::take_misses`]).
    pub fn year_moves_through(&self, account: &Account, from: u16, to: u16) -> i64 {
        let Some((m, slot)) = Slot::of(account) else { return 0 };
        let Some(book) = self.books.get(m) else { return 0 };
        book.sum_through(slot, from, to).unwrap_or_else(|| {
            self.misses.note(m);
            0
        })
    }

    /// Adds `delta` to a member account's sum of `year` (nothing for any other account).
    pub fn add_year_move(&mut self, account: &Account, year: u16, delta: Fen) {
        let Some((member, slot)) = Slot::of(account) else { return };
        self.change_book(member, year, delta.0 == 0, |book| book.add_year(slot, year, delta));
    }

    /// The balance of `account` (zero if nothing was posted to it): a member account's is
    /// the sum of its yearly sums in the member's book.
    pub fn balance(&self, account: &Account) -> Fen {
        match Slot::of(account) {
            Some((member, slot)) => self.books.get(member).map_or(Fen(0), |b| b.balance(slot)),
            None => self.fund_balances.get(account).copied().unwrap_or_default(),
        }
    }

    /// Adds `amount` to `account`'s balance as a posting with a value date in `year` does (a
    /// member account's yearly sum of `year`, any other account's balance), unless the
    /// balance or the year's sum would pass an i64: then nothing changes and the answer is
    /// false. For entries no rule checked (a report replaying the journal's own money).
    #[must_use]
    pub fn add_posting(&mut self, account: &Account, year: u16, amount: Fen) -> bool {
        if account.member_id().is_some() {
            let fits = self.balance(account).checked_add(amount).is_some()
                && self.year_move(account, year).checked_add(amount).is_some();
            if fits {
                self.add_year_move(account, year, amount);
            }
            fits
        } else {
            let Some(sum) = self.balance(account).checked_add(amount) else { return false };
            self.fund_balances.insert(account.clone(), sum);
            true
        }
    }

    /// Every account's balance, in no particular order: the fund's own accounts that were
    /// ever posted to, and each member account with a yearly sum.
    pub fn balances(&self) -> impl Iterator<Item = (Account, Fen)> + '_ {
        self.fund_balances.iter().map(|(a, f)| (a.clone(), *f)).chain(self.member_balances())
    }

    /// Each member account with a yearly sum, and its balance, in no particular order.
    pub fn member_balances(&self) -> impl Iterator<Item = (Account, Fen)> + '_ {
        self.books.iter().flat_map(|(member, book)| {
            book.balances().map(move |(slot, fen)| (slot.account(member), fen))
        })
    }

    /// Every state record of this state, as the storage layer keys them: to rewrite the
    /// whole state column (a ledger whose records predate the current encoding).
    ///
    /// Panics on a state with years out of memory: their pages would not be written.
    pub fn all_state_writes(&self) -> Vec<StateWrite> {
        let mut w: Vec<StateWrite> = Vec::new();
        self.for_each_state_record(
            self.members.iter(),
            self.books.iter(),
            &mut |k: &[u8], v: &[u8]| w.push((k.to_vec(), Some(v.to_vec()))),
            true,
            false,
        );
        w
    }

    /// Every state record of this state, as [`LedgerState::all_state_writes`] makes them, each
    /// given to `add` with the accumulator of its part: the members' records and the books'
    /// pages in parts on the thread pool, the other records in one more part. What `verify`
    /// digests to compare a replayed state with the stored records without holding a second
    /// state in memory.
    ///
    /// The pages of years out of memory are not given (they are in the store, as they were
    /// when the book let go of them: [`LedgerState::evict_through`]): the caller accounts for
    /// them.
    pub fn fold_state_records<A: Send>(
        &self,
        init: impl Fn() -> A + Sync,
        add: impl Fn(&mut A, &[u8], &[u8]) + Sync,
    ) -> Vec<A> {
        use rayon::prelude::*;
        const PART: usize = 4096;
        let members: Vec<_> = self.members.iter().collect();
        let books: Vec<_> = self.books.iter().collect();
        let mut parts: Vec<A> = members
            .par_chunks(PART)
            .map(|part| {
                let mut a = init();
                self.for_each_state_record(
                    part.iter().copied(),
                    std::iter::empty(),
                    &mut |k: &[u8], v: &[u8]| add(&mut a, k, v),
                    false,
                    true,
                );
                a
            })
            .chain(books.par_chunks(PART).map(|part| {
                let mut a = init();
                self.for_each_state_record(
                    std::iter::empty(),
                    part.iter().copied(),
                    &mut |k: &[u8], v: &[u8]| add(&mut a, k, v),
                    false,
                    true,
                );
                a
            }))
            .collect();
        let mut rest = init();
        self.for_each_state_record(
            std::iter::empty(),
            std::iter::empty(),
            &mut |k: &[u8], v: &[u8]| add(&mut rest, k, v),
            true,
            true,
        );
        parts.push(rest);
        parts
    }

    /// The records of `members` and of the pages of `books`, and with `others` every other
    /// record of the state (the fence, standards, administration, marks, back-paid months, the
    /// fund's balances), each given to `f`.
    fn for_each_state_record<'a>(
        &self,
        members: impl Iterator<Item = (&'a MemberId, &'a Box<MemberState>)>,
        books: impl Iterator<Item = (&'a MemberId, &'a MemberBook)>,
        f: &mut dyn FnMut(&[u8], &[u8]),
        others: bool,
        resident_only: bool,
    ) {
        assert!(
            resident_only || !self.any_cold_years(),
            "a state with years out of memory is never rewritten whole"
        );
        for (id, m) in members {
            f(&member_key(id), &encode(m));
        }
        for (member, book) in books {
            for year in book.page_years() {
                if let Some(page) = book.page(year) {
                    f(&page_key(member, year), &page);
                }
            }
        }
        if !others {
            return;
        }
        // A write that deletes (`None`) leaves no record.
        let mut write = |(k, v): StateWrite| {
            if let Some(v) = v {
                f(&k, &v);
            }
        };
        write(format_fence_write());
        // No standards record for none recorded (a ledger with no entry checkpointed yet
        // stores none): the state loads the same without it.
        if self.standards != Standards::default() {
            write((standards_key(), Some(encode(&self.standards))));
        }
        if self.admin != crate::admin::AdminState::default() {
            write((crate::admin::state_key(), Some(encode(&self.admin))));
        }
        for (fund, period) in &self.interest_credited {
            write((interest_key(*fund, *period), Some(Vec::new())));
        }
        for seq in &self.reversed {
            write((reversed_key(*seq), Some(Vec::new())));
        }
        for (member, months) in &self.backpaid {
            write((backpaid_key(member), Some(encode(months))));
        }
        for (account, fen) in &self.fund_balances {
            write(fund_balance_write(account, *fen));
        }
    }

    /// Member accounts whose balance is negative (a rule let a holding go below zero).
    pub fn negative_member_accounts(&self) -> Vec<(Account, Fen)> {
        let mut v: Vec<_> = self.member_balances().filter(|(_, f)| f.0 < 0).collect();
        v.sort_by_key(|(a, _)| a.to_string());
        v
    }

    /// Every fund's trial balance: the sum of all its accounts, which must be zero.
    pub fn trial_balance(&self) -> BTreeMap<Fund, i128> {
        let mut totals: BTreeMap<Fund, i128> = Fund::ALL.iter().map(|f| (*f, 0)).collect();
        for (account, fen) in self.balances() {
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
    /// Member-year pages: a premium month of that year or a yearly sum changed.
    pub(crate) pages: KeyedSet<(MemberId, u16)>,
    /// The members of `pages`, each with the earliest year of theirs there.
    page_members: KeyedMap<MemberId, u16>,
    pub(crate) backpaid: KeyedSet<MemberId>,
    /// Balances of the fund's own accounts (a member account's balance is in its pages).
    pub(crate) balances: KeyedSet<Account>,
    pub(crate) interest: KeyedSet<(Fund, Period)>,
    pub(crate) reversed: Vec<u64>,
    pub(crate) standards: bool,
    pub(crate) admin: bool,
}

impl Dirty {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
            && self.pages.is_empty()
            && self.backpaid.is_empty()
            && self.balances.is_empty()
            && self.interest.is_empty()
            && self.reversed.is_empty()
            && !self.standards
            && !self.admin
    }
}

impl Dirty {
    /// Makes room for the pages of about `entries` entries (each changes one or two: that of
    /// its premium's period and that of its value date's year, where its member accounts'
    /// yearly sums are): a replay of a long tail otherwise rehashes the set again and again
    /// as it doubles. The fund's own accounts an entry changes are few, and shared.
    pub fn reserve(&mut self, entries: usize) {
        self.pages.reserve(entries.saturating_mul(2));
        self.page_members.reserve(entries);
    }

    /// The earliest year of `member`'s pages that changed, if any: every year before it is
    /// stored as the last checkpoint left it.
    pub fn first_page_year(&self, member: &MemberId) -> Option<u16> {
        self.page_members.get(member).copied()
    }

    /// Notes a member-year page changed.
    pub(crate) fn note_page(&mut self, member: &MemberId, year: u16) {
        if self.pages.insert((member.clone(), year)) {
            match self.page_members.get_mut(member) {
                Some(first) => *first = (*first).min(year),
                None => {
                    self.page_members.insert(member.clone(), year);
                }
            }
        }
    }

    /// Notes the balance of one of the fund's own accounts changed (a member account's is in
    /// its page).
    pub(crate) fn note_balance(&mut self, account: &Account) {
        debug_assert!(account.member_id().is_none(), "a member account's balance is its book's");
        if !self.balances.contains(account) {
            self.balances.insert(account.clone());
        }
    }
}

impl LedgerState {
    /// The state records and balances of the keys in `dirty`, as they stand now: a put of the
    /// current value, or a delete for a record that no longer exists (a member-year
    /// page emptied, an interest mark undone). Balances are written even at zero.
    pub fn checkpoint_writes(&self, dirty: &Dirty) -> Vec<StateWrite> {
        self.checkpoint_cut(dirty).encode()
    }

    /// The values of the keys in `dirty` as they stand now, copied and not yet encoded: what
    /// [`LedgerState::checkpoint_writes`] gives once [`CheckpointCut::encode`]d. Copying costs
    /// the writer's thread less than encoding, which the checkpoint's thread then does.
    ///
    /// It runs on the writer's thread while posts wait, and is mostly cache misses (each dirty
    /// member's record and book is somewhere else in memory): a large one is copied by the
    /// thread pool, so that the misses of both cores overlap.
    pub fn checkpoint_cut(&self, dirty: &Dirty) -> CheckpointCut {
        self.checkpoint_cut_from(dirty, None, PARALLEL_CUT_MIN)
    }

    /// [`LedgerState::checkpoint_cut`], also naming ([`CheckpointCut::evictable`]) the members
    /// among the dirty pages' whose books hold years before their last `keep` (what
    /// [`LedgerState::evict_keeping`] would let go of once this checkpoint is stored): found
    /// while their books are read for the cut anyway.
    pub fn checkpoint_cut_keeping(&self, dirty: &Dirty, keep: Option<u16>) -> CheckpointCut {
        self.checkpoint_cut_from(dirty, keep, PARALLEL_CUT_MIN)
    }

    /// [`LedgerState::checkpoint_cut_keeping`], by the thread pool from `parallel_min` dirty
    /// members and pages on.
    fn checkpoint_cut_from(
        &self,
        dirty: &Dirty,
        keep: Option<u16>,
        parallel_min: usize,
    ) -> CheckpointCut {
        use rayon::prelude::*;
        let member = |id: &MemberId| (id.clone(), self.members.get(id).cloned());
        let page = |(member, year): &(MemberId, u16)| {
            let book = self.books.get(member);
            // A change to a year out of memory is undone and done again after it is read
            // back (`take_misses`): a dirty page is in memory, or this would write it empty.
            assert!(
                !book.is_some_and(|b| b.is_cold(*year)),
                "a changed page of member {member} is out of memory"
            );
            let evictable =
                keep.is_some_and(|keep| book.is_some_and(|b| b.holds_years_before_last(keep)));
            (member.clone(), *year, book.and_then(|b| b.page_of(*year)), evictable)
        };
        let (members, pages) = if dirty.members.len() + dirty.pages.len() < parallel_min {
            (dirty.members.iter().map(member).collect(), dirty.pages.iter().map(page).collect())
        } else {
            let members: Vec<&MemberId> = dirty.members.iter().collect();
            let pages: Vec<&(MemberId, u16)> = dirty.pages.iter().collect();
            rayon::join(
                || members.par_iter().map(|id| member(id)).collect(),
                || pages.par_iter().map(|p| page(p)).collect(),
            )
        };
        let pages: Vec<(MemberId, u16, Option<Page>, bool)> = pages;
        let mut evictable: Vec<MemberId> =
            pages.iter().filter(|p| p.3).map(|p| p.0.clone()).collect();
        evictable.sort_unstable();
        evictable.dedup();
        let pages = pages.into_iter().map(|(m, y, p, _)| (m, y, p)).collect();
        let balances = dirty.balances.iter().map(|a| (a.clone(), self.balance(a)));
        CheckpointCut {
            evictable,
            members,
            pages,
            balances: balances.collect(),
            rest: self.checkpoint_rest(dirty),
        }
    }

    /// The few records of a checkpoint other than members, pages and balances, encoded.
    fn checkpoint_rest(&self, dirty: &Dirty) -> Vec<StateWrite> {
        let mut w: Vec<StateWrite> = Vec::new();
        // None recorded (all reversed) is no record, as in a state written whole: the state
        // loads the same, and its records are those a replay makes.
        if dirty.standards {
            let any = self.standards != Standards::default();
            w.push((standards_key(), any.then(|| encode(&self.standards))));
        }
        if dirty.admin {
            let any = self.admin != crate::admin::AdminState::default();
            w.push((crate::admin::state_key(), any.then(|| encode(&self.admin))));
        }
        for (f, p) in &dirty.interest {
            let marked = self.interest_credited.contains(&(*f, *p));
            w.push((interest_key(*f, *p), marked.then(Vec::new)));
        }
        for seq in &dirty.reversed {
            w.push((reversed_key(*seq), Some(Vec::new())));
        }
        for member in &dirty.backpaid {
            w.push((backpaid_key(member), self.backpaid.get(member).map(encode)));
        }
        w
    }
}

/// [`MemberBook::evict_through`], adding one to `cold_books` when the book had no year out of
/// memory before (the count [`LedgerState::any_cold_years`] reads).
fn evict_counting(book: &mut MemberBook, through: u16, cold_books: &mut usize) -> bool {
    let was_cold = book.cold_through().is_some();
    let evicted = book.evict_through(through);
    if evicted && !was_cold {
        *cold_books += 1;
    }
    evicted
}

/// The last year `book` may let go of, keeping its last `keep` years and every year from
/// `changed` on; `None` if none.
fn evictable_through(book: &MemberBook, keep: u16, changed: Option<u16>) -> Option<u16> {
    let last = book.last_year()?;
    let first_kept = (last + 1).checked_sub(keep)?;
    let first_kept = changed.map_or(first_kept, |c| c.min(first_kept));
    (first_kept > crate::time::FIRST_YEAR).then(|| first_kept - 1)
}

/// A book's years that could leave memory ([`LedgerState::years_to_let_go`]).
#[derive(Debug)]
pub struct YearsToLetGo {
    pub member: MemberId,
    /// The first year still in memory: the years from it through `through` may be let go of
    /// ([`LedgerState::evict_through`]) up to the first whose stored page is not the one in
    /// `pages` (or is there and not in `pages`, or the other way round).
    pub from: u16,
    pub through: u16,
    /// The pages of the years `from..=through` that hold anything, in year order, as this
    /// ledger encodes them.
    pub pages: YearPages,
}

/// Dirty members and pages from which a checkpoint's cut is copied by the thread pool.
const PARALLEL_CUT_MIN: usize = 4096;

/// The dirty records of a checkpoint as they stood at its cut, copied out of the state
/// ([`LedgerState::checkpoint_cut`]); `None` for a record that no longer exists.
#[derive(Debug)]
pub struct CheckpointCut {
    /// The members whose books hold years before their last few
    /// ([`LedgerState::checkpoint_cut_keeping`]), each once; empty unless asked for.
    pub evictable: Vec<MemberId>,
    members: Vec<(MemberId, Option<Box<MemberState>>)>,
    pages: Vec<(MemberId, u16, Option<Page>)>,
    balances: Vec<(Account, Fen)>,
    /// Standards, administration, interest marks, reversal marks, back-paid months.
    rest: Vec<StateWrite>,
}

impl CheckpointCut {
    /// The state records (a put, or a delete for a record that no longer exists; a fund
    /// account's balance written even at zero), as the store keeps them.
    pub fn encode(self) -> Vec<StateWrite> {
        let CheckpointCut { members, pages, balances, mut rest, .. } = self;
        rest.reserve(members.len() + pages.len());
        for (id, member) in members {
            rest.push((member_key(&id), member.map(|m| encode(&m))));
        }
        for (member, year, page) in pages {
            rest.push((page_key(&member, year), page.map(|p| p.encode())));
        }
        rest.extend(balances.into_iter().map(|(a, fen)| fund_balance_write(&a, fen)));
        rest
    }
}

/// The `state` record of the balance of one of the fund's own accounts (state format 5):
/// [`KEY_FUND_BALANCE`], `/`, the encoded account; the balance, i64 LE.
pub fn fund_balance_write(account: &Account, fen: Fen) -> StateWrite {
    let mut k = vec![KEY_FUND_BALANCE, b'/'];
    k.extend_from_slice(&encode(account));
    (k, Some(fen.0.to_le_bytes().to_vec()))
}

/// Storage key of a balance: the encoded account (sorts by fund, then kind).
pub fn balance_key(account: &Account) -> Vec<u8> {
    encode(account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fund::Holding;

    fn member(id: &str) -> MemberId {
        MemberId::parse(id).unwrap()
    }

    /// A state with books for many members: months over several years and lines, yearly sums.
    fn sample() -> LedgerState {
        let mut s = LedgerState::default();
        for i in 0..300u16 {
            let m = member(&format!("M{}", i % 37 * 11 + i));
            let line =
                [Line::Medical, Line::SpousePension, Line::SpouseMedical][usize::from(i % 3)];
            let period = Period { year: 2020 + i % 7, month: 1 + (i % 12) as u8 };
            let money = PeriodMoney { personal: Fen(i64::from(i) + 1), state: Fen(1) };
            s.set_period(&m, line, period, money);
            let account = Account::member(Fund::Medical, &m, None, Holding::Personal);
            s.add_year_move(&account, 2020 + i % 5, Fen(i64::from(i) + 1));
        }
        s
    }

    fn records(s: &LedgerState) -> Vec<(Vec<u8>, Vec<u8>)> {
        s.all_state_writes().into_iter().map(|(k, v)| (k, v.unwrap())).collect()
    }

    #[test]
    fn load_gives_the_state_back_whatever_the_input_order() {
        let s = sample();
        let mut sorted = records(&s);
        sorted.sort();
        assert_eq!(LedgerState::load(sorted.clone(), Vec::new()).unwrap(), s);
        sorted.reverse();
        assert_eq!(LedgerState::load(sorted, Vec::new()).unwrap(), s);
    }

    /// The books a scanning thread builds (`ScannedBooks`), a page at a time in any order, and
    /// any split of the pages between it and the loader, give the state back; a wrong book is
    /// named, the least of several.
    #[test]
    fn scanned_books_give_the_state_back_whatever_the_order_and_split() {
        let s = sample();
        let mut sorted = records(&s);
        sorted.sort();
        // Books handed on as completed (`handing_on`) to books elsewhere (`add_completed`) and
        // taken every `every` records give the same state: a member read out of order has
        // parts on both sides, put together there.
        for handing in [None, Some(1), Some(3)] {
            // Orders: 0 the store's, 1 reversed, 2 every other record and then the rest (a
            // member's pages apart, put together again: on the receiving side if handed on).
            for (order, split) in [(0, 0), (1, 0), (0, 2), (1, 3), (2, 0), (2, 3)] {
                let mut r = sorted.clone();
                match order {
                    1 => r.reverse(),
                    2 => {
                        let (even, odd): (Vec<_>, Vec<_>) =
                            r.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
                        r = even.into_iter().chain(odd).map(|(_, kv)| kv).collect();
                    }
                    _ => {}
                }
                let mut loader = StateLoader::new(false);
                let mut scanned = ScannedBooks::default();
                if handing.is_some() {
                    scanned = scanned.handing_on();
                }
                let mut received = ScannedBooks::default();
                for (i, (k, v)) in r.iter().enumerate() {
                    match StateRecord::decode(k, v, false).unwrap() {
                        // Every `split`-th page to the loader, the others to the scanning side.
                        StateRecord::Page(id, book) if split == 0 || i % split != 0 => {
                            scanned.add_page(id, book)
                        }
                        record => loader.insert(record),
                    }
                    if handing.is_some_and(|every| i % every == 0) {
                        hand_over(&mut scanned, &mut received);
                    }
                }
                let what = format!("{order} {split} {handing:?}");
                if handing.is_none() {
                    assert!(scanned.take_completed().is_empty(), "{what}");
                    assert!(received.books.is_empty(), "{what}");
                } else {
                    assert_eq!(scanned.books.len(), 0, "{what}: no book kept where read");
                }
                assert_eq!(loader.finish_with(vec![received, scanned]).unwrap(), s, "{what}");
            }
        }
        // Two pages holding a zero month (members M11 and M100): the least is named, whether
        // the wrong books are kept where read or handed on.
        let zero_month: &[u8] = &[1, 1, 0, 0, 0, 0];
        let book = |id: &'static str| {
            let mut book = MemberBook::default();
            if id != "M2" {
                book.push_page(2024, zero_month).unwrap();
            } else {
                book.set_month(
                    Line::Medical,
                    Period { year: 2024, month: 1 },
                    PeriodMoney { personal: Fen(1), state: Fen(0) },
                );
            }
            (id, book)
        };
        for handing in [false, true] {
            let named = wrong_book_named(handing, ["M11", "M100", "M2"].map(book));
            assert_eq!(named, "M100", "handing on: {handing}");
        }
    }

    /// The books `scanned` completed and handed on so far, taken into `received`, as the
    /// opening thread takes them from a scanning one.
    fn hand_over(scanned: &mut ScannedBooks, received: &mut ScannedBooks) {
        for (m, book) in scanned.take_completed() {
            received.add_completed(m, book);
        }
    }

    /// The member a load of these books, each completed and handed on as the next comes if
    /// `handing`, names as the least whose book is wrong (it panics if none is).
    fn wrong_book_named<'a>(
        handing: bool,
        books: impl IntoIterator<Item = (&'a str, MemberBook)>,
    ) -> String {
        let mut scanned = ScannedBooks::default();
        if handing {
            scanned = scanned.handing_on();
        }
        let mut received = ScannedBooks::default();
        for (id, book) in books {
            scanned.add_page(member(id), book);
            hand_over(&mut scanned, &mut received);
        }
        match StateLoader::new(false).finish_with(vec![received, scanned]) {
            Err(StateLoadError::Book(m)) => m,
            other => panic!("handing on: {handing}: {other:?}"),
        }
    }

    /// Books handed on as they are completed, letting go of their old years (`evicting`), give
    /// the state books kept where they are read give, years let go of included: a store's
    /// order, any point of taking them.
    #[test]
    fn handed_on_books_let_go_of_the_same_years() {
        let s = sample();
        let mut sorted = records(&s);
        sorted.sort();
        let load = |handing: Option<usize>| {
            let mut loader = StateLoader::new(false);
            let mut scanned = ScannedBooks::evicting(2);
            if handing.is_some() {
                scanned = scanned.handing_on();
            }
            let mut received = ScannedBooks::default();
            for (i, (k, v)) in sorted.iter().enumerate() {
                if !scanned.add_page_record(k, v).unwrap() {
                    loader.record(k, v).unwrap();
                }
                if handing.is_some_and(|every| i % every == 0) {
                    hand_over(&mut scanned, &mut received);
                }
            }
            loader.finish_with(vec![received, scanned]).unwrap()
        };
        let kept = load(None);
        assert!(kept.cold_books > 0, "the sample's books hold years to let go of");
        for every in [1, 3, 50] {
            assert_eq!(load(Some(every)), kept, "taken every {every} records");
        }
    }

    /// A member's book in two parts that name one month twice is refused, named, whether the
    /// parts are put together where they are read or where they are handed on to.
    #[test]
    fn a_book_wrong_only_once_put_together_is_named() {
        let month = |personal| {
            let mut book = MemberBook::default();
            book.set_month(
                Line::Medical,
                Period { year: 2024, month: 1 },
                PeriodMoney { personal: Fen(personal), state: Fen(0) },
            );
            book
        };
        for handing in [false, true] {
            // M5's two parts, each right on its own, with another member's book between; M7's
            // completes the second part, so that it is put together on the receiving side.
            let books = [("M5", 1), ("M6", 2), ("M5", 3), ("M7", 4)].map(|(id, p)| (id, month(p)));
            assert_eq!(wrong_book_named(handing, books), "M5", "handing on: {handing}");
        }
    }

    #[test]
    fn format2_records_load_only_when_allowed() {
        let s = sample();
        // The same state in state format 2: one record per month, one per account and year.
        let mut old: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (m, line, period, money) in s.periods() {
            old.push((period_key(&(m.clone(), line, period)), encode(money)));
        }
        for (m, book) in &s.books {
            for y in book.years() {
                old.push((year_key(&(y.slot.account(m), y.year)), encode(&y.sum)));
            }
        }
        old.sort();
        let mut loader = StateLoader::new(true);
        for (k, v) in &old {
            loader.record(k, v).unwrap();
        }
        assert!(loader.format2_seen());
        assert_eq!(loader.finish().unwrap(), s);
        assert!(matches!(
            LedgerState::load(old.clone(), Vec::new()),
            Err(StateLoadError::UnknownKey(_))
        ));
        // A month stored twice (a page and a per-month record) is refused.
        let mut both = records(&s);
        both.extend(old);
        let mut loader = StateLoader::new(true);
        for (k, v) in &both {
            loader.record(k, v).unwrap();
        }
        assert!(matches!(loader.finish(), Err(StateLoadError::Book(_))));
    }

    #[test]
    fn load_reports_bad_records() {
        let s = sample();
        let mut r = records(&s);
        r.sort();
        let page = r.iter().position(|(k, _)| k[0] == KEY_PAGE).unwrap();
        let mut bad = r.clone();
        bad[page].1 = vec![0xff];
        assert!(matches!(LedgerState::load(bad, Vec::new()), Err(StateLoadError::Value { .. })));
        let mut short = r.clone();
        short[page].0.truncate(4);
        assert!(matches!(LedgerState::load(short, Vec::new()), Err(StateLoadError::UnknownKey(_))));
        // A page that names a month twice (a page out of order is sorted: the same months).
        let m = member("Z1");
        let months: Vec<(u8, Line, PeriodMoney)> = [3u8, 3]
            .iter()
            .map(|mo| (*mo, Line::Medical, PeriodMoney { personal: Fen(1), state: Fen(0) }))
            .collect();
        let unordered = (page_key(&m, 2024), encode(&(months, Vec::<(Slot, Fen)>::new())));
        assert!(matches!(
            LedgerState::load(vec![unordered], Vec::new()),
            Err(StateLoadError::Book(_))
        ));
        let bad_balance = vec![(
            balance_key(&Account::member(Fund::Medical, &m, None, Holding::Personal)),
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

    #[test]
    fn checkpoint_writes_put_dirty_pages_and_delete_emptied_ones() {
        let mut s = sample();
        let m = member("M0");
        let years: Vec<u16> = s.books[&m].page_years();
        let mut dirty = Dirty::default();
        for y in &years {
            dirty.pages.insert((m.clone(), *y));
        }
        let w = s.checkpoint_writes(&dirty);
        assert!(w.iter().all(|(_, v)| v.is_some()) && w.len() == years.len());
        s.books.remove(&m);
        let w = s.checkpoint_writes(&dirty);
        assert!(w.iter().all(|(_, v)| v.is_none()) && w.len() == years.len());
    }

    /// A cut copied by the thread pool (a large one) holds what one copied on the calling
    /// thread holds: every dirty member and page as it stands, `None` for one that is gone.
    #[test]
    fn a_cut_copied_in_parallel_is_the_cut_copied_in_order() {
        let s = sample();
        let mut dirty = Dirty::default();
        for (m, book) in &s.books {
            dirty.members.insert(m.clone());
            for y in book.page_years() {
                dirty.pages.insert((m.clone(), y));
            }
            dirty.pages.insert((m.clone(), 1999));
        }
        dirty.members.insert(member("GONE"));
        let cut = |parallel_min| {
            let c = s.checkpoint_cut_from(&dirty, Some(1), parallel_min);
            let evictable = c.evictable.clone();
            let mut w = c.encode();
            w.sort();
            (evictable, w)
        };
        let (evictable, serial) = cut(usize::MAX);
        assert_eq!(serial.len(), dirty.members.len() + dirty.pages.len());
        assert!(serial.iter().any(|(_, v)| v.is_none()));
        let many_years: Vec<&MemberId> =
            s.books.iter().filter(|(_, b)| b.holds_years_before_last(1)).map(|(m, _)| m).collect();
        assert_eq!(evictable.len(), many_years.len());
        assert_eq!(cut(0), (evictable, serial));
    }

    /// A member account's balance is the sum of its yearly sums, whatever years they fall in;
    /// a year whose sum comes back to zero is gone from the book, and an account whose sums
    /// cancel over two years is still listed, at zero. The fund's own accounts keep a balance
    /// of their own, and the two together make the trial balance.
    #[test]
    fn a_member_accounts_balance_is_the_sum_of_its_yearly_sums() {
        let mut s = LedgerState::default();
        let m = member("M0");
        let personal = Account::member(Fund::Medical, &m, None, Holding::Personal);
        let interest = Account::member(Fund::Medical, &m, None, Holding::Interest);
        let pool = Account::pool(Fund::Medical);
        assert!(s.add_posting(&personal, 2024, Fen(300)));
        assert!(s.add_posting(&personal, 2025, Fen(-100)));
        assert!(s.add_posting(&interest, 2025, Fen(7)));
        assert!(s.add_posting(&interest, 2025, Fen(-7)));
        assert!(s.add_posting(&pool, 2025, Fen(-200)));
        assert_eq!(s.balance(&personal), Fen(200));
        assert_eq!(s.balance(&interest), Fen(0));
        assert_eq!(s.balance(&pool), Fen(-200));
        assert_eq!(s.year_moves_through(&personal, 1949, 2024), 300);
        assert_eq!(s.books[&m].years().len(), 2, "the interest's year came back to zero");
        let mut all: Vec<(String, i64)> = s.balances().map(|(a, f)| (a.to_string(), f.0)).collect();
        all.sort();
        let mut want = vec![(personal.to_string(), 200), (pool.to_string(), -200)];
        want.sort();
        assert_eq!(all, want);
        assert_eq!(s.trial_balance()[&Fund::Medical], 0);
        assert!(!s.fund_balances.contains_key(&personal), "kept in the book only");
        assert!(s.add_posting(&personal, 2026, Fen(-200)));
        assert_eq!(s.balance(&personal), Fen(0));
        let members: Vec<_> = s.member_balances().collect();
        assert_eq!(members, vec![(personal.clone(), Fen(0))]);
        assert_eq!(s.negative_member_accounts(), Vec::new());
        assert!(s.add_posting(&personal, 2026, Fen(-1)));
        assert_eq!(s.negative_member_accounts(), vec![(personal.clone(), Fen(-1))]);
        // A posting that would pass an i64 changes nothing: the year's sum, the balance (over
        // two years), or one of the fund's own accounts.
        let before = s.clone();
        assert!(!s.add_posting(&personal, 2026, Fen(i64::MIN)));
        assert!(s.add_posting(&personal, 2027, Fen(i64::MAX)));
        assert!(!s.add_posting(&personal, 2028, Fen(2)));
        assert!(!s.add_posting(&pool, 2028, Fen(i64::MIN)));
        assert!(s.add_posting(&personal, 2027, Fen(-i64::MAX)));
        assert_eq!(s, before);
    }

    /// A cut holds the records as they stood when it was taken: encoded later (on the
    /// checkpoint's thread, while posts change the state), it writes those values, in the
    /// stored encoding (built here from the parts, not through the cut's code), not the state's
    /// new ones — a member changed after it, a book removed after it, a balance moved.
    #[test]
    fn a_cut_encodes_the_records_as_they_stood_at_the_cut() {
        let mut s = sample();
        let m = member("M0");
        let on = Date::parse("2020-01-01").unwrap();
        let unit = UnitId::parse("U1").unwrap();
        let state = MemberState::enrolled(on, Category::Officer, unit, Fen(1_000_000), None);
        s.members.insert(m.clone(), Box::new(state.clone()));
        // One of the fund's own accounts (a member account's balance is in its pages).
        let account = Account::pool(Fund::Medical);
        s.fund_balances.insert(account.clone(), Fen(500));
        let years = s.books[&m].page_years();
        let pages: Vec<(u16, Vec<u8>)> = years
            .iter()
            .map(|y| {
                let book = &s.books[&m];
                let months: Vec<(u8, Line, PeriodMoney)> = book
                    .months()
                    .iter()
                    .filter(|x| x.period.year == *y)
                    .map(|x| (x.period.month, x.line, x.money))
                    .collect();
                let sums: Vec<(Slot, Fen)> =
                    book.years().iter().filter(|x| x.year == *y).map(|x| (x.slot, x.sum)).collect();
                (*y, encode(&(months, sums)))
            })
            .collect();
        let mut dirty = Dirty::default();
        dirty.members.insert(m.clone());
        for y in &years {
            dirty.pages.insert((m.clone(), *y));
        }
        dirty.balances.insert(account.clone());
        let cut = s.checkpoint_cut(&dirty);
        // The state moves on: the member discharged, the book gone, the balance moved.
        s.members.get_mut(&m).unwrap().discharged_on = Some(on);
        s.books.remove(&m);
        s.fund_balances.insert(account.clone(), Fen(507));
        let mut writes = cut.encode();
        writes.sort();
        let mut want: Vec<StateWrite> =
            pages.into_iter().map(|(y, page)| (page_key(&m, y), Some(page))).collect();
        want.push((member_key(&m), Some(encode(&state))));
        want.push(fund_balance_write(&account, Fen(500)));
        want.sort();
        assert_eq!(writes, want);
        // Cut now, the same keys write the new values: a delete for each page.
        let after = s.checkpoint_cut(&dirty).encode();
        assert!(after.iter().filter(|(k, _)| k[0] == KEY_PAGE).all(|(_, v)| v.is_none()));
    }
}
