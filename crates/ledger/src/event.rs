//! Events: what clients post. Parsed strictly from one JSON object per line into typed values;
//! every refusal names the field and says why.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::{Map, Value, json};

use crate::fund::{Category, Fund, SpousePart};
use crate::ids::{AgencyId, EventId, MemberId, UnitId};
use crate::money::{Fen, parse_percent_ppm, ppm_to_percent_string};
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
    const NAMES: [(&'static str, Cause); 8] = [
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
        let body = match self.clone() {
            EventBody::DischargeV1 { member, on } => {
                EventBody::Discharge { member, on, route: Route::Employee }
            }
            EventBody::PayoutV1 { member, fund, benefit, amount, cause, grade } => {
                EventBody::Payout { member, fund, benefit, amount, cause, grade, on: value_date }
            }
            EventBody::SuspendV1 { member, fund, reason } => {
                EventBody::Suspend { member, fund, from: value_date.period(), reason }
            }
            EventBody::ResumeV1 { member, fund, reason } => {
                EventBody::Resume { member, fund, from: value_date.period(), reason }
            }
            EventBody::TransferOutV1 { member, fund, agency } => {
                EventBody::TransferOut { member, fund, agency, part: None }
            }
            _ => return Cow::Borrowed(self),
        };
        Cow::Owned(body)
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// One JSON value of a field, kept as text so that the error can say what it was.
#[derive(Debug)]
enum Field<'a> {
    Str(Cow<'a, str>),
    Number(String),
    Bool(bool),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Field<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Field::Number(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Field::Number(v.to_string()))
            }
            // Not arithmetic: a float arrives only to be named in the refusal.
            fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Self::Value, E> {
                Ok(Field::Other("a number with a fraction"))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Field::Bool(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Field::Other("null"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Field::Other("an array"))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Field::Other("an object"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

macro_rules! raw_event {
    ($($f:ident),*) => {
        /// Every field any event type may carry; which ones a type takes is checked after.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawEvent<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<Field<'a>>,
            $(#[serde(borrow)] $f: Option<Field<'a>>,)*
        }
        const RAW_FIELDS: &[&str] = &["type", $(stringify!($f)),*];
    };
}

raw_event!(
    id,
    value_date,
    memo,
    member,
    category,
    unit,
    enlisted_on,
    monthly_pay,
    sponsor,
    fund,
    period,
    amount,
    part,
    basis,
    benefit,
    cause,
    grade,
    rate,
    on,
    reason,
    of,
    name,
    value,
    effective_from,
    agency,
    discharged_on,
    service_months,
    gap_months,
    first_insured_on,
    civilian_months,
    retirement_age_reached,
    average_wage,
    pension_unit_rate,
    pension_personal_rate,
    medical_unit_rate,
    medical_personal_rate,
    payer,
    central_share,
    provincial_share,
    municipal_share,
    county_share,
    personal_help_rate,
    year,
    line,
    account,
    date,
    balance,
    reference,
    route,
    from,
    resettlement,
    medical_average_wage,
    medical_gap_months,
    public_key,
    signature
);

/// Reads fields off a raw event, remembering which were used so the rest can be refused.
struct Reader<'r, 'a> {
    raw: &'r RawEvent<'a>,
    used: Vec<&'static str>,
}

impl<'a> Reader<'_, 'a> {
    fn get(&mut self, name: &'static str) -> Option<&Field<'a>> {
        self.used.push(name);
        let raw = self.raw;
        match name {
            "id" => raw.id.as_ref(),
            "value_date" => raw.value_date.as_ref(),
            "memo" => raw.memo.as_ref(),
            "member" => raw.member.as_ref(),
            "category" => raw.category.as_ref(),
            "unit" => raw.unit.as_ref(),
            "enlisted_on" => raw.enlisted_on.as_ref(),
            "monthly_pay" => raw.monthly_pay.as_ref(),
            "sponsor" => raw.sponsor.as_ref(),
            "fund" => raw.fund.as_ref(),
            "period" => raw.period.as_ref(),
            "amount" => raw.amount.as_ref(),
            "part" => raw.part.as_ref(),
            "basis" => raw.basis.as_ref(),
            "benefit" => raw.benefit.as_ref(),
            "cause" => raw.cause.as_ref(),
            "grade" => raw.grade.as_ref(),
            "rate" => raw.rate.as_ref(),
            "on" => raw.on.as_ref(),
            "reason" => raw.reason.as_ref(),
            "of" => raw.of.as_ref(),
            "name" => raw.name.as_ref(),
            "value" => raw.value.as_ref(),
            "effective_from" => raw.effective_from.as_ref(),
            "agency" => raw.agency.as_ref(),
            "discharged_on" => raw.discharged_on.as_ref(),
            "service_months" => raw.service_months.as_ref(),
            "gap_months" => raw.gap_months.as_ref(),
            "first_insured_on" => raw.first_insured_on.as_ref(),
            "civilian_months" => raw.civilian_months.as_ref(),
            "retirement_age_reached" => raw.retirement_age_reached.as_ref(),
            "average_wage" => raw.average_wage.as_ref(),
            "pension_unit_rate" => raw.pension_unit_rate.as_ref(),
            "pension_personal_rate" => raw.pension_personal_rate.as_ref(),
            "medical_unit_rate" => raw.medical_unit_rate.as_ref(),
            "medical_personal_rate" => raw.medical_personal_rate.as_ref(),
            "payer" => raw.payer.as_ref(),
            "central_share" => raw.central_share.as_ref(),
            "provincial_share" => raw.provincial_share.as_ref(),
            "municipal_share" => raw.municipal_share.as_ref(),
            "county_share" => raw.county_share.as_ref(),
            "personal_help_rate" => raw.personal_help_rate.as_ref(),
            "year" => raw.year.as_ref(),
            "line" => raw.line.as_ref(),
            "account" => raw.account.as_ref(),
            "date" => raw.date.as_ref(),
            "balance" => raw.balance.as_ref(),
            "reference" => raw.reference.as_ref(),
            "route" => raw.route.as_ref(),
            "from" => raw.from.as_ref(),
            "resettlement" => raw.resettlement.as_ref(),
            "medical_average_wage" => raw.medical_average_wage.as_ref(),
            "medical_gap_months" => raw.medical_gap_months.as_ref(),
            "public_key" => raw.public_key.as_ref(),
            "signature" => raw.signature.as_ref(),
            other => unreachable!("reader asked for undeclared field {other}"),
        }
    }

    fn opt_str(&mut self, name: &'static str) -> Result<Option<&str>, EventError> {
        match self.get(name) {
            None => Ok(None),
            Some(Field::Str(s)) => Ok(Some(s.as_ref())),
            Some(Field::Number(n)) => {
                Err(EventError::field(name, format!("must be a JSON string, got the number {n}")))
            }
            Some(Field::Bool(_)) => {
                Err(EventError::field(name, "must be a JSON string, got a boolean"))
            }
            Some(Field::Other(what)) => {
                Err(EventError::field(name, format!("must be a JSON string, got {what}")))
            }
        }
    }

    fn flag(&mut self, name: &'static str) -> Result<bool, EventError> {
        match self.get(name) {
            None => Ok(false),
            Some(Field::Bool(b)) => Ok(*b),
            Some(_) => Err(EventError::field(name, "must be true or false")),
        }
    }

    fn count(&mut self, name: &'static str) -> Result<u32, EventError> {
        let text = match self.get(name) {
            Some(Field::Number(n)) => n.clone(),
            Some(Field::Str(s)) => s.to_string(),
            None => return Err(EventError::field(name, "is required")),
            _ => return Err(EventError::field(name, "must be a whole number")),
        };
        text.parse::<u32>()
            .ok()
            .filter(|n| *n <= 1200)
            .ok_or_else(|| EventError::field(name, "must be a whole number of months, 0–1200"))
    }

    fn percent(&mut self, name: &'static str, required: bool) -> Result<i64, EventError> {
        match self.opt_str(name)? {
            None if !required => Ok(0),
            None => Err(EventError::field(name, "is required")),
            Some(t) => parse_percent_ppm(t)
                .map_err(|e| EventError::field(name, format!("a percent like \"8\": {e}"))),
        }
    }

    fn str(&mut self, name: &'static str) -> Result<&str, EventError> {
        self.opt_str(name)?.ok_or_else(|| EventError::field(name, "is required"))
    }

    fn parse<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, EventError> {
        let text = self.str(name)?;
        f(text).map_err(|m| EventError::field(name, m))
    }

    fn parse_opt<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, EventError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(text) => f(text).map(Some).map_err(|m| EventError::field(name, m)),
        }
    }

    fn money(&mut self, name: &'static str) -> Result<Fen, EventError> {
        match self.get(name) {
            Some(Field::Number(n)) => Err(EventError::field(
                name,
                format!("money must be a JSON string like \"{n}.00\", not a number"),
            )),
            _ => self.parse(name, |t| Fen::parse_positive(t).map_err(|e| e.to_string())),
        }
    }

    fn text(&mut self, name: &'static str) -> Result<String, EventError> {
        let text = self.str(name)?;
        check_text(name, text)?;
        Ok(text.to_string())
    }

    fn grade(&mut self) -> Result<Option<u8>, EventError> {
        let text = match self.get("grade") {
            None => return Ok(None),
            Some(Field::Number(n)) => n.clone(),
            Some(Field::Str(s)) => s.to_string(),
            Some(Field::Other(what)) => {
                return Err(EventError::field("grade", format!("must be 1–10, got {what}")));
            }
            Some(Field::Bool(_)) => {
                return Err(EventError::field("grade", "must be 1–10, got a boolean"));
            }
        };
        match text.parse::<u8>() {
            Ok(g) if (1..=10).contains(&g) => Ok(Some(g)),
            _ => Err(EventError::field("grade", "disability grade must be 1–10 (Art. 8)")),
        }
    }
}

fn check_text(name: &'static str, text: &str) -> Result<(), EventError> {
    if text.chars().count() > MEMO_CHARS_MAX {
        return Err(EventError::field(name, format!("longer than {MEMO_CHARS_MAX} characters")));
    }
    if text.chars().any(char::is_control) {
        return Err(EventError::field(name, "contains control characters"));
    }
    Ok(())
}

fn parse_cause(text: &str) -> Result<Cause, String> {
    Cause::NAMES.iter().find(|(n, _)| *n == text).map(|(_, c)| *c).ok_or_else(|| {
        "expected martyr, war, on_duty, illness, or an Art. 10 cause (crime, intoxication, \
             self_harm, other_exclusion)"
            .to_string()
    })
}

/// Parses one JSON line into an event. The error names the field where one is to blame.
pub fn parse_event_line(line: &str) -> Result<Event, EventError> {
    if line.len() > LINE_BYTES_MAX {
        return Err(EventError::event(format!("line longer than {LINE_BYTES_MAX} bytes")));
    }
    let raw: RawEvent<'_> = serde_json::from_str(line).map_err(|e| {
        let msg = e.to_string();
        // serde names the unknown field; keep its words but drop the column noise.
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        if msg.starts_with("unknown field") {
            EventError::event(msg.replace(&format!(", expected one of {}", fields_list()), ""))
        } else {
            EventError::event(format!("not a JSON object: {msg}"))
        }
    })?;
    parse_raw(&raw)
}

fn fields_list() -> String {
    RAW_FIELDS.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
}

fn parse_raw(raw: &RawEvent<'_>) -> Result<Event, EventError> {
    let kind = match &raw.kind {
        Some(Field::Str(s)) => s.to_string(),
        Some(_) => return Err(EventError::field("type", "must be a JSON string")),
        None => return Err(EventError::field("type", "is required")),
    };
    let mut r = Reader { raw, used: vec!["type"] };
    let id = r.parse("id", EventId::parse)?;
    let value_date = r.parse_opt("value_date", Date::parse)?;
    let memo = match r.opt_str("memo")? {
        Some(m) => {
            check_text("memo", m)?;
            Some(m.to_string())
        }
        None => None,
    };
    let body = parse_body(&kind, &mut r)?;
    // Refuse fields this type does not take: a misplaced field is a mistake, not a no-op.
    for name in RAW_FIELDS {
        if !r.used.contains(name) && r.get(name).is_some() {
            return Err(EventError::field(name, format!("is not a field of a {kind} event")));
        }
    }
    Ok(Event { id, value_date, memo, body })
}

fn spouse_part(r: &mut Reader<'_, '_>, fund: Fund) -> Result<Option<SpousePart>, EventError> {
    let part = r.parse_opt("part", SpousePart::parse)?;
    match (fund, part) {
        (Fund::Spouse, None) => Err(EventError::field(
            "part",
            "is required for the spouse fund: pension or medical (Art. 25)",
        )),
        (Fund::Spouse, some) => Ok(some),
        (_, Some(_)) => Err(EventError::field("part", "is only for the spouse fund")),
        (_, None) => Ok(None),
    }
}

/// Exactly `N` bytes in lowercase hex.
fn hex_bytes<const N: usize>(
    r: &mut Reader<'_, '_>,
    name: &'static str,
) -> Result<[u8; N], EventError> {
    r.parse(name, |t| {
        hex::decode(t)
            .ok()
            .filter(|_| t.bytes().all(|b| !b.is_ascii_uppercase()))
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{N} bytes in lowercase hex"))
    })
}

fn parse_body(kind: &str, r: &mut Reader<'_, '_>) -> Result<EventBody, EventError> {
    let body = match kind {
        "enroll" => EventBody::Enroll {
            member: r.parse("member", MemberId::parse)?,
            category: r.parse("category", Category::parse)?,
            unit: r.parse("unit", UnitId::parse)?,
            enlisted_on: r.parse("enlisted_on", Date::parse)?,
            monthly_pay: r.money("monthly_pay")?,
            sponsor: r.parse_opt("sponsor", MemberId::parse)?,
        },
        "contribution" => {
            let member = r.parse("member", MemberId::parse)?;
            let fund = r.parse("fund", Fund::parse)?;
            EventBody::Contribution {
                member,
                fund,
                period: r.parse("period", Period::parse)?,
                amount: r.money("amount")?,
                unit: r.parse("unit", UnitId::parse)?,
                part: spouse_part(r, fund)?,
            }
        }
        "subsidy" => {
            let member = r.parse("member", MemberId::parse)?;
            let fund = r.parse("fund", Fund::parse)?;
            EventBody::Subsidy {
                member,
                fund,
                period: r.parse("period", Period::parse)?,
                amount: r.money("amount")?,
                basis: r.parse("basis", |t| match t {
                    "match" => Ok(Basis::Match),
                    "standard" => Ok(Basis::Standard),
                    "discharge" => Ok(Basis::Discharge),
                    "provision" => Ok(Basis::Provision),
                    _ => Err("expected match, standard, discharge or provision".to_string()),
                })?,
                part: spouse_part(r, fund)?,
            }
        }
        "appropriation" => EventBody::Appropriation {
            fund: r.parse("fund", Fund::parse)?,
            amount: r.money("amount")?,
        },
        "payout" => EventBody::Payout {
            member: r.parse("member", MemberId::parse)?,
            fund: r.parse("fund", Fund::parse)?,
            benefit: r.parse("benefit", |t| match t {
                "death" => Ok(Benefit::Death),
                "disability" => Ok(Benefit::Disability),
                _ => Err("casualty benefits are death or disability (Art. 7, 8)".to_string()),
            })?,
            amount: r.money("amount")?,
            cause: r.parse("cause", parse_cause)?,
            grade: r.grade()?,
            on: r.parse("on", Date::parse)?,
        },
        "interest" => EventBody::Interest {
            fund: r.parse("fund", Fund::parse)?,
            period: r.parse("period", Period::parse)?,
            rate_ppm: r.parse("rate", |t| {
                parse_percent_ppm(t).map_err(|e| format!("a percent like \"1.5\": {e}"))
            })?,
        },
        "discharge" => EventBody::Discharge {
            member: r.parse("member", MemberId::parse)?,
            on: r.parse("on", Date::parse)?,
            route: r.parse("route", Route::parse)?,
        },
        "unit_change" => EventBody::UnitChange {
            member: r.parse("member", MemberId::parse)?,
            unit: r.parse("unit", UnitId::parse)?,
            on: r.parse("on", Date::parse)?,
        },
        "death" => EventBody::Death {
            member: r.parse("member", MemberId::parse)?,
            on: r.parse("on", Date::parse)?,
            cause: r.parse("cause", parse_cause)?,
        },
        "category_change" => EventBody::CategoryChange {
            member: r.parse("member", MemberId::parse)?,
            category: r.parse("category", Category::parse)?,
            on: r.parse("on", Date::parse)?,
        },
        "suspend" | "resume" => {
            let member = r.parse("member", MemberId::parse)?;
            let fund = r.parse("fund", Fund::parse)?;
            let from = r.parse("from", Period::parse)?;
            let reason = r.text("reason")?;
            if kind == "suspend" {
                EventBody::Suspend { member, fund, from, reason }
            } else {
                EventBody::Resume { member, fund, from, reason }
            }
        }
        "recovery" => EventBody::Recovery {
            member: r.parse("member", MemberId::parse)?,
            fund: r.parse("fund", Fund::parse)?,
            amount: r.money("amount")?,
            of: r.parse("of", EventId::parse)?,
            reason: r.text("reason")?,
        },
        "reversal" => {
            EventBody::Reversal { of: r.parse("of", EventId::parse)?, reason: r.text("reason")? }
        }
        "standard" => {
            let name = r.str("name")?.to_string();
            let spec = crate::standard::spec(&name)
                .ok_or_else(|| EventError::field("name", "not a known standard"))?;
            if let Some(why) = spec.retired {
                return Err(EventError::field("name", format!("{name} is retired: {why}")));
            }
            let value = r.str("value")?.to_string();
            crate::standard::parse_value(spec, &value)
                .map_err(|m| EventError::field("value", m))?;
            EventBody::Standard {
                name,
                value,
                effective_from: r.parse("effective_from", Date::parse)?,
            }
        }
        "backpay" => {
            use crate::backpay::{BackpayInput, UnitPayer};
            let member = r.parse("member", MemberId::parse)?;
            let input = BackpayInput {
                enlisted_on: r.parse("enlisted_on", Date::parse)?,
                discharged_on: r.parse("discharged_on", Date::parse)?,
                service_months: r.count("service_months")?,
                gap_months: r.count("gap_months")?,
                first_insured_on: r.parse_opt("first_insured_on", Date::parse)?,
                civilian_months: r.count("civilian_months")?,
                retirement_age_reached: r.flag("retirement_age_reached")?,
                average_wage: r.money("average_wage")?,
                pension_unit_ppm: r.percent("pension_unit_rate", true)?,
                pension_personal_ppm: r.percent("pension_personal_rate", true)?,
                medical_unit_ppm: r.percent("medical_unit_rate", true)?,
                medical_personal_ppm: r.percent("medical_personal_rate", true)?,
                unit_payer: r.parse("payer", |t| match t {
                    "unit" => Ok(UnitPayer::Unit),
                    "superior" => Ok(UnitPayer::Superior),
                    "fiscal" => Ok(UnitPayer::Fiscal),
                    _ => Err("expected unit, superior or fiscal (Opinion 2(2))".to_string()),
                })?,
                fiscal_shares_ppm: [
                    r.percent("central_share", false)?,
                    r.percent("provincial_share", false)?,
                    r.percent("municipal_share", false)?,
                    r.percent("county_share", false)?,
                ],
                personal_help_ppm: r.percent("personal_help_rate", false)?,
            };
            let scope = crate::backpay::BackpayScope {
                resettlement: r.parse("resettlement", crate::backpay::Resettlement::parse)?,
                category: r.parse("category", Category::parse)?,
                medical_average_wage: r.money("medical_average_wage")?,
                medical_gap_months: r.count("medical_gap_months")?,
            };
            EventBody::Backpay { member, input, scope }
        }
        "pay_change" => EventBody::PayChange {
            member: r.parse("member", MemberId::parse)?,
            monthly_pay: r.money("monthly_pay")?,
            on: r.parse("on", Date::parse)?,
        },
        "key_rotation" => EventBody::KeyRotation {
            public_key: hex_bytes(r, "public_key")?,
            signature: hex_bytes(r, "signature")?,
        },
        "transfer_out" | "transfer_confirmed" => {
            let member = r.parse("member", MemberId::parse)?;
            let fund = r.parse("fund", Fund::parse)?;
            let agency = r.parse("agency", AgencyId::parse)?;
            if kind == "transfer_out" {
                let part = r.parse_opt("part", SpousePart::parse)?;
                if part.is_some() && fund != Fund::Spouse {
                    return Err(EventError::field("part", "only for the spouse fund"));
                }
                EventBody::TransferOut { member, fund, agency, part }
            } else {
                EventBody::TransferConfirmed { member, fund, agency }
            }
        }
        "budget" => EventBody::Budget {
            fund: r.parse("fund", Fund::parse)?,
            year: r.parse("year", crate::admin::parse_year)?,
            line: r.parse("line", crate::admin::BudgetLine::parse)?,
            amount: r.money("amount")?,
        },
        "remittance" => EventBody::Remittance {
            unit: r.parse("unit", UnitId::parse)?,
            fund: r.parse("fund", Fund::parse)?,
            amount: r.money("amount")?,
            period: r.parse("period", Period::parse)?,
            reference: r.text("reference")?,
        },
        "bank_statement" => EventBody::BankStatement {
            fund: r.parse("fund", Fund::parse)?,
            account: r.parse("account", crate::ids::BankAccountId::parse)?,
            date: r.parse("date", Date::parse)?,
            balance: r.parse("balance", |t| Fen::parse_yuan(t).map_err(|e| e.to_string()))?,
            reference: r.text("reference")?,
        },
        "deposit_interest" => EventBody::DepositInterest {
            fund: r.parse("fund", Fund::parse)?,
            amount: r.money("amount")?,
            period: r.parse("period", Period::parse)?,
        },
        "year_close" => {
            return Err(EventError::field(
                "type",
                "a year_close is drawn from the journal and posted by `junbao close`",
            ));
        }

        "transfer_in" => {
            let member = r.parse("member", MemberId::parse)?;
            let fund = r.parse("fund", Fund::parse)?;
            let agency = r.parse("agency", AgencyId::parse)?;
            let part = spouse_part(r, fund)?;
            let amount = match r.opt_str("amount")? {
                Some("0") | Some("0.00") => Fen::ZERO,
                _ => r.money("amount")?,
            };
            EventBody::TransferIn { member, fund, agency, part, amount }
        }
        other => {
            return Err(EventError::field("type", format!("unknown event type {other:?}")));
        }
    };
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// Back to JSON (journal listings and exports show the decoded event in its input form)
// ---------------------------------------------------------------------------------------------

impl Event {
    /// The event in the same JSON form it is posted in.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id.as_str()));
        m.insert("type".into(), json!(self.body.type_name()));
        if let Some(d) = self.value_date {
            m.insert("value_date".into(), json!(d.to_string()));
        }
        if let Some(memo) = &self.memo {
            m.insert("memo".into(), json!(memo));
        }
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        let s = |x: &dyn fmt::Display| json!(x.to_string());
        match &self.body {
            EventBody::Enroll { member, category, unit, enlisted_on, monthly_pay, sponsor } => {
                put("member", s(member));
                put("category", s(category));
                put("unit", s(unit));
                put("enlisted_on", s(enlisted_on));
                put("monthly_pay", s(monthly_pay));
                if let Some(sp) = sponsor {
                    put("sponsor", s(sp));
                }
            }
            EventBody::Contribution { member, fund, period, amount, unit, part } => {
                put("member", s(member));
                put("fund", s(fund));
                put("period", s(period));
                put("amount", s(amount));
                put("unit", s(unit));
                if let Some(p) = part {
                    put("part", json!(p.name()));
                }
            }
            EventBody::Subsidy { member, fund, period, amount, basis, part } => {
                put("member", s(member));
                put("fund", s(fund));
                put("period", s(period));
                put("amount", s(amount));
                put(
                    "basis",
                    json!(match basis {
                        Basis::Match => "match",
                        Basis::Standard => "standard",
                        Basis::Discharge => "discharge",
                        Basis::Provision => "provision",
                    }),
                );
                if let Some(p) = part {
                    put("part", json!(p.name()));
                }
            }
            EventBody::Appropriation { fund, amount } => {
                put("fund", s(fund));
                put("amount", s(amount));
            }
            EventBody::Payout { member, fund, benefit, amount, cause, grade, .. }
            | EventBody::PayoutV1 { member, fund, benefit, amount, cause, grade } => {
                put("member", s(member));
                put("fund", s(fund));
                put(
                    "benefit",
                    json!(match benefit {
                        Benefit::Death => "death",
                        Benefit::Disability => "disability",
                    }),
                );
                put("amount", s(amount));
                put("cause", json!(cause.name()));
                if let Some(g) = grade {
                    put("grade", json!(g));
                }
                if let EventBody::Payout { on, .. } = &self.body {
                    put("on", s(on));
                }
            }
            EventBody::Interest { fund, period, rate_ppm } => {
                put("fund", s(fund));
                put("period", s(period));
                put("rate", json!(ppm_to_percent_string(*rate_ppm)));
            }
            EventBody::DischargeV1 { member, on } => {
                put("member", s(member));
                put("on", s(on));
            }
            EventBody::Discharge { member, on, route } => {
                put("member", s(member));
                put("on", s(on));
                put("route", json!(route.name()));
            }
            EventBody::UnitChange { member, unit, on } => {
                put("member", s(member));
                put("unit", s(unit));
                put("on", s(on));
            }
            EventBody::Death { member, on, cause } => {
                put("member", s(member));
                put("on", s(on));
                put("cause", json!(cause.name()));
            }
            EventBody::CategoryChange { member, category, on } => {
                put("member", s(member));
                put("category", s(category));
                put("on", s(on));
            }
            EventBody::SuspendV1 { member, fund, reason }
            | EventBody::ResumeV1 { member, fund, reason } => {
                put("member", s(member));
                put("fund", s(fund));
                put("reason", json!(reason));
            }
            EventBody::Suspend { member, fund, from, reason }
            | EventBody::Resume { member, fund, from, reason } => {
                put("member", s(member));
                put("fund", s(fund));
                put("from", s(from));
                put("reason", json!(reason));
            }
            EventBody::RecoveryV1 { member, fund, amount, reason } => {
                put("member", s(member));
                put("fund", s(fund));
                put("amount", s(amount));
                put("reason", json!(reason));
            }
            EventBody::Recovery { member, fund, amount, of, reason } => {
                put("member", s(member));
                put("fund", s(fund));
                put("amount", s(amount));
                put("of", s(of));
                put("reason", json!(reason));
            }
            EventBody::Reversal { of, reason } => {
                put("of", s(of));
                put("reason", json!(reason));
            }
            EventBody::Standard { name, value, effective_from } => {
                put("name", json!(name));
                put("value", json!(value));
                put("effective_from", s(effective_from));
            }
            EventBody::TransferOutV1 { member, fund, agency }
            | EventBody::TransferConfirmed { member, fund, agency } => {
                put("member", s(member));
                put("fund", s(fund));
                put("agency", s(agency));
            }
            EventBody::TransferOut { member, fund, agency, part } => {
                put("member", s(member));
                put("fund", s(fund));
                put("agency", s(agency));
                if let Some(p) = part {
                    put("part", json!(p.name()));
                }
            }
            EventBody::TransferIn { member, fund, agency, part, amount } => {
                put("member", s(member));
                put("fund", s(fund));
                put("agency", s(agency));
                if let Some(p) = part {
                    put("part", json!(p.name()));
                }
                put("amount", s(amount));
            }
            EventBody::PayChange { member, monthly_pay, on } => {
                put("member", s(member));
                put("monthly_pay", s(monthly_pay));
                put("on", s(on));
            }
            EventBody::KeyRotation { public_key, signature } => {
                put("public_key", json!(hex::encode(public_key)));
                put("signature", json!(hex::encode(signature)));
            }
            EventBody::Backpay { member, input, .. } | EventBody::BackpayV1 { member, input } => {
                use crate::backpay::UnitPayer;
                let pct = |ppm: i64| json!(ppm_to_percent_string(ppm));
                put("member", s(member));
                put("enlisted_on", s(&input.enlisted_on));
                put("discharged_on", s(&input.discharged_on));
                put("service_months", json!(input.service_months));
                put("gap_months", json!(input.gap_months));
                if let Some(d) = input.first_insured_on {
                    put("first_insured_on", s(&d));
                }
                put("civilian_months", json!(input.civilian_months));
                put("retirement_age_reached", json!(input.retirement_age_reached));
                put("average_wage", s(&input.average_wage));
                put("pension_unit_rate", pct(input.pension_unit_ppm));
                put("pension_personal_rate", pct(input.pension_personal_ppm));
                put("medical_unit_rate", pct(input.medical_unit_ppm));
                put("medical_personal_rate", pct(input.medical_personal_ppm));
                put(
                    "payer",
                    json!(match input.unit_payer {
                        UnitPayer::Unit => "unit",
                        UnitPayer::Superior => "superior",
                        UnitPayer::Fiscal => "fiscal",
                    }),
                );
                for (k, name) in
                    ["central_share", "provincial_share", "municipal_share", "county_share"]
                        .iter()
                        .enumerate()
                {
                    put(name, pct(input.fiscal_shares_ppm[k]));
                }
                put("personal_help_rate", pct(input.personal_help_ppm));
                if let EventBody::Backpay { scope, .. } = &self.body {
                    put("resettlement", json!(scope.resettlement.name()));
                    put("category", s(&scope.category));
                    put("medical_average_wage", s(&scope.medical_average_wage));
                    put("medical_gap_months", json!(scope.medical_gap_months));
                }
            }
            EventBody::Budget { fund, year, line, amount } => {
                put("fund", s(fund));
                put("year", json!(year.to_string()));
                put("line", json!(line.name()));
                put("amount", s(amount));
            }
            EventBody::Remittance { unit, fund, amount, period, reference } => {
                put("unit", s(unit));
                put("fund", s(fund));
                put("amount", s(amount));
                put("period", s(period));
                put("reference", json!(reference));
            }
            EventBody::BankStatement { fund, account, date, balance, reference } => {
                put("fund", s(fund));
                put("account", s(account));
                put("date", s(date));
                put("balance", s(balance));
                put("reference", json!(reference));
            }
            EventBody::DepositInterest { fund, amount, period } => {
                put("fund", s(fund));
                put("amount", s(amount));
                put("period", s(period));
            }
            EventBody::YearClose { year, through_seq, funds, open_items } => {
                put("year", json!(year.to_string()));
                put("through_seq", json!(through_seq));
                put("funds", crate::admin::final_accounts_json(funds));
                put("open_items", json!(open_items));
            }
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> String {
        parse_event_line(line).unwrap_err().to_string()
    }

    #[test]
    fn a_contribution_parses_and_prints_back_the_same() {
        let line = r#"{"id":"c1","type":"contribution","member":"M0001","fund":"medical","period":"2024-03","amount":"92.00","unit":"U01"}"#;
        let event = parse_event_line(line).unwrap();
        let back = serde_json::to_string(&event.to_json()).unwrap();
        assert_eq!(parse_event_line(&back).unwrap(), event);
    }

    #[test]
    fn refusals_name_the_field() {
        let base = r#""id":"c1","type":"contribution","member":"M1","fund":"medical","period":"2024-03","unit":"U1""#;
        assert_eq!(
            err(&format!(r#"{{{base},"amount":"1.234"}}"#)),
            "field \"amount\": more than two decimals"
        );
        assert!(err(&format!(r#"{{{base},"amount":92.5}}"#)).starts_with("field \"amount\""));
        assert!(err(&format!(r#"{{{base},"amount":92}}"#)).contains("JSON string"));
        assert_eq!(err(&format!("{{{base}}}")), "field \"amount\": is required");
        assert!(err(&format!(r#"{{{base},"amount":"1","ammount":"1"}}"#)).contains("ammount"));
        assert!(err(&format!(r#"{{{base},"amount":"1","grade":3}}"#)).contains("\"grade\""));
        assert!(err(r#"{"id":"x","type":"bogus"}"#).contains("unknown event type"));
        assert!(err("not json").starts_with("not a JSON object"));
    }

    #[test]
    fn spouse_fund_needs_a_part_and_others_refuse_one() {
        let l = r#"{"id":"s","type":"contribution","member":"S1","fund":"spouse","period":"2024-03","amount":"1","unit":"U"}"#;
        assert!(err(l).contains("\"part\""));
        let l = r#"{"id":"s","type":"contribution","member":"S1","fund":"medical","period":"2024-03","amount":"1","unit":"U","part":"medical"}"#;
        assert!(err(l).contains("only for the spouse fund"));
    }
}
