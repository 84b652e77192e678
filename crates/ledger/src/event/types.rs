//! The event types: what each event says, its refusal type, and the names of its enumerations.

use std::borrow::Cow;
use std::fmt;

use crate::fund::{Category, Fund, SpousePart};
use crate::ids::{AgencyId, EventId, MemberId, UnitId};
use crate::money::Fen;
use crate::time::{Date, Period};

/// Longest memo or reason, in characters (contract: memo ≤ 256 chars).
pub const MEMO_CHARS_MAX: usize = 256;
/// Longest event line, in bytes. Past this a line is refused before it is parsed.
pub const LINE_BYTES_MAX: usize = 16 * 1024;

/// A refusal of one event: which field (if one is to blame) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventError {
    pub field: Option<&'static str>,
    pub message: String,
}

impl EventError {
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        EventError { field: Some(field), message: message.into() }
    }
    pub fn event(message: impl Into<String>) -> Self {
        EventError { field: None, message: message.into() }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "field \"{field}\": {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for EventError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub enum Basis {
    /// 1:1 match of a personal premium (Art. 20 ¶1, Art. 25).
    Match,
    /// A subsidy at a standard (conscripts and cadets, Art. 20 ¶2; spouse pension part).
    Standard,
    /// The pension subsidy computed at discharge (Art. 13-14). Posted by `discharge`.
    Discharge,
    /// A pension subsidy decided under the State's provisions (Art. 18): the ledger records
    /// the amount, it does not compute it.
    Provision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub enum Benefit {
    Death,
    Disability,
}

/// The way a discharged serviceman is resettled, which decides his pension (Art. 13-19).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub enum Route {
    /// Joins the employees' basic pension insurance: Art. 13 subsidy, Art. 16 transfer.
    Employee,
    /// Joins the rural or urban residents' pension insurance: subsidy, Art. 17 transfer.
    Resident,
    /// A civil-service post (Art. 18): the State's provisions apply; no subsidy is computed.
    CivilService,
    /// An officer or civilian cadre choosing his own job (Art. 18): as `CivilService`.
    SelfEmployed,
    /// Resettled by retirement (Art. 19): no subsidy, no transfer.
    Retirement,
}

impl Route {
    pub const NAMES: [(&'static str, Route); 5] = [
        ("employee", Route::Employee),
        ("resident", Route::Resident),
        ("civil_service", Route::CivilService),
        ("self_employed", Route::SelfEmployed),
        ("retirement", Route::Retirement),
    ];

    pub fn name(self) -> &'static str {
        Route::NAMES
            .iter()
            .find(|(_, r)| *r == self)
            .map(|(n, _)| *n)
            .expect("every route has a name")
    }

    pub fn parse(text: &str) -> Result<Route, String> {
        Route::NAMES.iter().find(|(n, _)| *n == text).map(|(_, r)| *r).ok_or_else(|| {
            "expected employee, resident, civil_service, self_employed or retirement \
             (Art. 13, 17, 18, 19)"
                .to_string()
        })
    }

    /// Whether the Art. 13 pension subsidy is computed at discharge on this route.
    pub fn gets_pension_subsidy(self) -> bool {
        matches!(self, Route::Employee | Route::Resident)
    }

    /// The article that governs the route.
    pub fn article(self) -> &'static str {
        match self {
            Route::Employee => "Art. 13, 16",
            Route::Resident => "Art. 13, 17",
            Route::CivilService | Route::SelfEmployed => "Art. 18",
            Route::Retirement => "Art. 19",
        }
    }
}

/// The determined nature of a death or disability (Art. 7-10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub enum Cause {
    /// Died as a martyr / in war.
    Martyr,
    /// Disabled in war (因战).
    War,
    /// In the line of duty (因公).
    OnDuty,
    /// Of illness (因病).
    Illness,
    /// Art. 10 (1): intentionally committing a crime.
    Crime,
    /// Art. 10 (2): drunkenness or drugs.
    Intoxication,
    /// Art. 10 (3): self-harm or suicide.
    SelfHarm,
    /// Art. 10 (4): other circumstances excluded by law or regulation.
    OtherExclusion,
}

impl Cause {
    pub(super) const NAMES: [(&'static str, Cause); 8] = [
        ("martyr", Cause::Martyr),
        ("war", Cause::War),
        ("on_duty", Cause::OnDuty),
        ("illness", Cause::Illness),
        ("crime", Cause::Crime),
        ("intoxication", Cause::Intoxication),
        ("self_harm", Cause::SelfHarm),
        ("other_exclusion", Cause::OtherExclusion),
    ];

    pub fn name(self) -> &'static str {
        Cause::NAMES
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(n, _)| *n)
            .expect("every cause has a name")
    }

    pub fn is_art10_exclusion(self) -> bool {
        matches!(self, Cause::Crime | Cause::Intoxication | Cause::SelfHarm | Cause::OtherExclusion)
    }
}

/// What an event says, by type. Field meanings are in `docs/EVENTS.md`.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum EventBody {
    Enroll {
        member: MemberId,
        category: Category,
        unit: UnitId,
        enlisted_on: Date,
        monthly_pay: Fen,
        sponsor: Option<MemberId>,
    },
    Contribution {
        member: MemberId,
        fund: Fund,
        period: Period,
        amount: Fen,
        unit: UnitId,
        part: Option<SpousePart>,
    },
    Subsidy {
        member: MemberId,
        fund: Fund,
        period: Period,
        amount: Fen,
        basis: Basis,
        part: Option<SpousePart>,
    },
    Appropriation {
        fund: Fund,
        amount: Fen,
    },
    /// Before routes and dates of event (journals written before issue 11): replayed with
    /// `on` = the entry's value date.
    PayoutV1 {
        member: MemberId,
        fund: Fund,
        benefit: Benefit,
        amount: Fen,
        cause: Cause,
        grade: Option<u8>,
    },
    Interest {
        fund: Fund,
        period: Period,
        rate_ppm: i64,
    },
    /// A discharge recorded before routes existed: replayed as route `employee` (it posted the
    /// Art. 13 subsidy, which is what the `employee` route does).
    DischargeV1 {
        member: MemberId,
        on: Date,
    },
    Death {
        member: MemberId,
        on: Date,
        cause: Cause,
    },
    CategoryChange {
        member: MemberId,
        category: Category,
        on: Date,
    },
    /// Suspension recorded before `from` existed: replayed from the month of its value date.
    SuspendV1 {
        member: MemberId,
        fund: Fund,
        reason: String,
    },
    /// Resumption recorded before `from` existed: replayed from the month of its value date.
    ResumeV1 {
        member: MemberId,
        fund: Fund,
        reason: String,
    },
    /// A recovery recorded before `of` existed: free-standing income to the pool.
    RecoveryV1 {
        member: MemberId,
        fund: Fund,
        amount: Fen,
        reason: String,
    },
    Reversal {
        of: EventId,
        reason: String,
    },
    Standard {
        name: String,
        value: String,
        effective_from: Date,
    },
    /// A transfer recorded before `part` existed: for the spouse fund, both parts.
    TransferOutV1 {
        member: MemberId,
        fund: Fund,
        agency: AgencyId,
    },
    TransferConfirmed {
        member: MemberId,
        fund: Fund,
        agency: AgencyId,
    },
    /// A new monthly pay (for a spouse: contribution base) from a date, e.g. on promotion.
    PayChange {
        member: MemberId,
        monthly_pay: Fen,
        on: Date,
    },
    /// A back-payment assessment recorded before its scope existed (issue 11): replayed, its
    /// months count toward the person's cap; today's rules refuse it (scope unknown).
    BackpayV1 {
        member: MemberId,
        input: crate::backpay::BackpayInput,
    },
    /// A line of a fund's annual budget (Art. 33-34); a later one for the same line supersedes.
    Budget {
        fund: Fund,
        year: u16,
        line: crate::admin::BudgetLine,
        amount: Fen,
    },
    /// A unit hands over premiums it withheld (Art. 32); settles its receivable.
    Remittance {
        unit: UnitId,
        fund: Fund,
        amount: Fen,
        period: Period,
        reference: String,
    },
    /// What the bank says a fund's special account held on a date (Art. 35).
    BankStatement {
        fund: Fund,
        account: crate::ids::BankAccountId,
        date: Date,
        balance: Fen,
        reference: String,
    },
    /// Interest the fund's deposits earned, fund income not credited to members (Art. 31).
    DepositInterest {
        fund: Fund,
        amount: Fen,
        period: Period,
    },
    /// Seals a year with its final accounts (Art. 34). Made by `junbao close`, never posted.
    YearClose {
        year: u16,
        /// The last entry the accounts cover: the close is the entry right after it.
        through_seq: u64,
        funds: Vec<crate::admin::FundAccounts>,
        /// Items left open with `--accept-open` (unremitted premiums, unconfirmed transfers).
        open_items: Vec<String>,
    },
    // --- Issue 11 (the law, exactly). New variants are appended: an entry's bytes name its
    // variant by index, so the variants above keep their index and old journals decode.
    /// Discharge with the route the member takes (Art. 13, 17, 18, 19).
    Discharge {
        member: MemberId,
        on: Date,
        route: Route,
    },
    /// A casualty benefit, `on` the date of death or of the disability assessment.
    Payout {
        member: MemberId,
        fund: Fund,
        benefit: Benefit,
        amount: Fen,
        cause: Cause,
        grade: Option<u8>,
        on: Date,
    },
    /// Art. 29: the spouse subsidy is suspended from month `from` (the first month unpaid).
    Suspend {
        member: MemberId,
        fund: Fund,
        from: Period,
        reason: String,
    },
    /// Art. 29: the spouse subsidy is paid again from month `from`.
    Resume {
        member: MemberId,
        fund: Fund,
        from: Period,
        reason: String,
    },
    /// The member's unit from `on` (Art. 32: premiums are withheld by the unit of their month).
    UnitChange {
        member: MemberId,
        unit: UnitId,
        on: Date,
    },
    /// Money returned (Art. 46, 47) of payout `of`, capped at what it paid less what was
    /// recovered before.
    Recovery {
        member: MemberId,
        fund: Fund,
        amount: Fen,
        of: EventId,
        reason: String,
    },
    /// Transfer to a civilian agency; for the spouse fund `part` moves one part alone (Art. 28).
    TransferOut {
        member: MemberId,
        fund: Fund,
        agency: AgencyId,
        part: Option<SpousePart>,
    },
    /// Insurance brought in from a civilian agency (Art. 15, 22, 26).
    TransferIn {
        member: MemberId,
        fund: Fund,
        agency: AgencyId,
        part: Option<SpousePart>,
        amount: Fen,
    },
    /// A back-payment assessment under the 2019 opinion (no fund postings; see `backpay`).
    Backpay {
        member: MemberId,
        input: crate::backpay::BackpayInput,
        scope: crate::backpay::BackpayScope,
    },
    /// The ledger's signing key is replaced (`junbao key rotate`): the new Ed25519 public key
    /// and the old key's signature over `junbao-key-rotation-v1` || new key (docs/FORMAT.md
    /// §14). Verifiers follow a rotation only if the signature holds under the key they hold.
    KeyRotation {
        public_key: [u8; 32],
        signature: [u8; 64],
    },
}

/// One event as the client sent it, typed. Its canonical bytes are what idempotency compares.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Event {
    pub id: EventId,
    pub value_date: Option<Date>,
    pub memo: Option<String>,
    pub body: EventBody,
}

impl EventBody {
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::Enroll { .. } => "enroll",
            EventBody::Contribution { .. } => "contribution",
            EventBody::Subsidy { .. } => "subsidy",
            EventBody::Appropriation { .. } => "appropriation",
            EventBody::Payout { .. } | EventBody::PayoutV1 { .. } => "payout",
            EventBody::Interest { .. } => "interest",
            EventBody::Discharge { .. } | EventBody::DischargeV1 { .. } => "discharge",
            EventBody::Death { .. } => "death",
            EventBody::CategoryChange { .. } => "category_change",
            EventBody::Suspend { .. } | EventBody::SuspendV1 { .. } => "suspend",
            EventBody::Resume { .. } | EventBody::ResumeV1 { .. } => "resume",
            EventBody::Recovery { .. } | EventBody::RecoveryV1 { .. } => "recovery",
            EventBody::Reversal { .. } => "reversal",
            EventBody::Standard { .. } => "standard",
            EventBody::TransferOut { .. } | EventBody::TransferOutV1 { .. } => "transfer_out",
            EventBody::KeyRotation { .. } => "key_rotation",
            EventBody::TransferConfirmed { .. } => "transfer_confirmed",
            EventBody::PayChange { .. } => "pay_change",
            EventBody::Budget { .. } => "budget",
            EventBody::Remittance { .. } => "remittance",
            EventBody::BankStatement { .. } => "bank_statement",
            EventBody::DepositInterest { .. } => "deposit_interest",
            EventBody::YearClose { .. } => "year_close",
            EventBody::Backpay { .. } | EventBody::BackpayV1 { .. } => "backpay",
            EventBody::UnitChange { .. } => "unit_change",
            EventBody::TransferIn { .. } => "transfer_in",
        }
    }

    /// The member the event is about, if any.
    pub fn member(&self) -> Option<&MemberId> {
        match self {
            EventBody::Enroll { member, .. }
            | EventBody::Contribution { member, .. }
            | EventBody::Subsidy { member, .. }
            | EventBody::Payout { member, .. }
            | EventBody::Discharge { member, .. }
            | EventBody::Death { member, .. }
            | EventBody::CategoryChange { member, .. }
            | EventBody::Suspend { member, .. }
            | EventBody::Resume { member, .. }
            | EventBody::Recovery { member, .. }
            | EventBody::TransferOut { member, .. }
            | EventBody::TransferConfirmed { member, .. }
            | EventBody::PayChange { member, .. }
            | EventBody::Backpay { member, .. }
            | EventBody::BackpayV1 { member, .. }
            | EventBody::PayoutV1 { member, .. }
            | EventBody::DischargeV1 { member, .. }
            | EventBody::SuspendV1 { member, .. }
            | EventBody::ResumeV1 { member, .. }
            | EventBody::RecoveryV1 { member, .. }
            | EventBody::TransferOutV1 { member, .. }
            | EventBody::UnitChange { member, .. }
            | EventBody::TransferIn { member, .. } => Some(member),
            EventBody::Appropriation { .. }
            | EventBody::Interest { .. }
            | EventBody::Reversal { .. }
            | EventBody::Standard { .. }
            | EventBody::Budget { .. }
            | EventBody::Remittance { .. }
            | EventBody::BankStatement { .. }
            | EventBody::DepositInterest { .. }
            | EventBody::YearClose { .. }
            | EventBody::KeyRotation { .. } => None,
        }
    }

    /// The unit named by the event, for the HTTP service's per-unit permissions.
    pub fn unit(&self) -> Option<&UnitId> {
        match self {
            EventBody::Enroll { unit, .. }
            | EventBody::Contribution { unit, .. }
            | EventBody::Remittance { unit, .. } => Some(unit),
            EventBody::UnitChange { unit, .. } => Some(unit),
            _ => None,
        }
    }

    /// The date the event itself names as its effective date, used when `value_date` is absent.
    pub fn natural_date(&self) -> Option<Date> {
        match self {
            EventBody::Enroll { enlisted_on, .. } => Some(*enlisted_on),
            EventBody::Discharge { on, .. }
            | EventBody::DischargeV1 { on, .. }
            | EventBody::UnitChange { on, .. }
            | EventBody::Death { on, .. }
            | EventBody::CategoryChange { on, .. }
            | EventBody::PayChange { on, .. } => Some(*on),
            EventBody::Standard { effective_from, .. } => Some(*effective_from),
            EventBody::BankStatement { date, .. } => Some(*date),
            EventBody::DepositInterest { period, .. } => Some(period.last_day()),
            _ => None,
        }
    }

    /// The event in today's form: a variant recorded before issue 11 (`…V1`) becomes the
    /// current one with the meaning documented in `docs/EVENTS.md` ("Old entries"), so that
    /// replay and reversal handle one form. `value_date` is the entry's value date.
    pub fn upgraded(&self, value_date: Date) -> Cow<'_, EventBody> {
        // Only the old forms are copied: every other body is returned as it is.
        let body = match self {
            EventBody::DischargeV1 { member, on } => {
                EventBody::Discharge { member: member.clone(), on: *on, route: Route::Employee }
            }
            EventBody::PayoutV1 { member, fund, benefit, amount, cause, grade } => {
                EventBody::Payout {
                    member: member.clone(),
                    fund: *fund,
                    benefit: *benefit,
                    amount: *amount,
                    cause: *cause,
                    grade: *grade,
                    on: value_date,
                }
            }
            EventBody::SuspendV1 { member, fund, reason } => EventBody::Suspend {
                member: member.clone(),
                fund: *fund,
                from: value_date.period(),
                reason: reason.clone(),
            },
            EventBody::ResumeV1 { member, fund, reason } => EventBody::Resume {
                member: member.clone(),
                fund: *fund,
                from: value_date.period(),
                reason: reason.clone(),
            },
            EventBody::TransferOutV1 { member, fund, agency } => EventBody::TransferOut {
                member: member.clone(),
                fund: *fund,
                agency: agency.clone(),
                part: None,
            },
            _ => return Cow::Borrowed(self),
        };
        Cow::Owned(body)
    }
}
