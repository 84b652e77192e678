//! Rules that read the member's dated history (issue 11): the unit of a month, the sponsor's
//! service, suspension spans, what is still due before a transfer, recoveries, inbound
//! transfers, and the computations over months of service. Kept apart from the modules of the
//! event families, which call these.

use super::{Batch, refuse, two_legs};
use crate::entry::Posting;
use crate::event::{EventBody, EventError, Route};
use crate::fund::{Account, Category, Fund, Holding, Source, SpousePart};
use crate::ids::{AgencyId, EventId, MemberId, UnitId};
use crate::money::{Fen, div_round_half_away};
use crate::standard::{StandardName, Standards};
use crate::state::{Line, MemberState};
use crate::time::{Date, Period};

impl Batch<'_> {
    /// Rejects postings to an account (or spouse part) closed by a transfer.
    pub(super) fn check_open_part(
        &self,
        member: &MemberId,
        fund: Fund,
        part: Option<SpousePart>,
        field: &'static str,
    ) -> Result<&MemberState, EventError> {
        let m = self.member(member).expect("checked in rules");
        if let Some(t) = m.transfer_of(fund, part) {
            let what = match t.part {
                Some(p) => format!("the {fund} {} part", p.name()),
                None => format!("the {fund} account"),
            };
            return Err(refuse(
                field,
                format!(
                    "{what} of {member} was transferred to agency {} (seq {}); nothing may be \
                     posted to it unless the transfer is reversed (Art. 16, 23, 27, 28)",
                    t.agency, t.seq
                ),
            ));
        }
        Ok(m)
    }

    /// Art. 32: a premium is withheld by the unit of its month; a spouse's by the serviceman's
    /// unit of that month (Art. 32 para. 2).
    pub(super) fn check_withholding_unit(
        &self,
        member: &MemberId,
        m: &MemberState,
        period: Period,
        unit: &UnitId,
    ) -> Result<(), EventError> {
        let month = period.first_day().max(m.enlisted_on);
        let (expected, sponsor) = match (&m.sponsor, m.category_on(month)) {
            (Some(sponsor), Category::Spouse) => {
                let s = self.member(sponsor).ok_or_else(|| {
                    refuse("member", format!("sponsor {sponsor} is not enrolled"))
                })?;
                (s.unit_on(month.max(s.enlisted_on)), Some(sponsor))
            }
            _ => (m.unit_on(month), None),
        };
        if unit != expected {
            let whose = match sponsor {
                Some(sponsor) => format!("the serviceman {sponsor}'s unit"),
                None => "the unit".to_string(),
            };
            return Err(refuse(
                "unit",
                format!(
                    "Art. 32: the premium of {member} for {period} is withheld by {whose} in that \
                     month, {expected}, not {unit}"
                ),
            ));
        }
        Ok(())
    }

    /// Art. 27: the spouse's insurance ends with the serviceman's service.
    pub(super) fn check_sponsor_in_service(
        &self,
        member: &MemberId,
        m: &MemberState,
        period: Period,
    ) -> Result<(), EventError> {
        let Some(sponsor) = &m.sponsor else { return Ok(()) };
        let Some(s) = self.member(sponsor) else { return Ok(()) };
        // Art. 25: the insurance is that of a serviceman's accompanying spouse; nothing is due
        // for a month before the serviceman's service began.
        if period < s.enlisted_on.period() {
            return Err(refuse(
                "period",
                format!(
                    "Art. 25: the serviceman {sponsor} enlisted on {}; nothing is due for {member} \
                     for {period}",
                    s.enlisted_on
                ),
            ));
        }
        if let Some(end) = s.discharged_on.or(s.deceased_on)
            && period > end.period()
        {
            return Err(refuse(
                "period",
                format!(
                    "Art. 27: the serviceman {sponsor} left service on {end}; the insurance of \
                     {member} is transferred, nothing is due for {period}"
                ),
            ));
        }
        Ok(())
    }

    /// Art. 18: a subsidy the State's provisions decide, recorded as an amount (basis
    /// `provision`), never computed by the ledger.
    pub(super) fn provision_subsidy(
        &self,
        member: &MemberId,
        m: &MemberState,
        fund: Fund,
        amount: Fen,
    ) -> Result<Vec<Posting>, EventError> {
        if fund != Fund::Pension {
            return Err(refuse("basis", "Art. 18: basis provision is for the pension fund"));
        }
        if !matches!(m.route, Some(Route::CivilService | Route::SelfEmployed)) {
            return Err(refuse(
                "basis",
                format!(
                    "Art. 18: a subsidy under the State's provisions is for a member discharged \
                     to the civil service or choosing his own job; {member} is {}",
                    m.route.map_or("not discharged", Route::name)
                ),
            ));
        }
        let account = Account::member(Fund::Pension, member, None, Holding::State);
        if self.balance(&account).0 != 0 {
            return Err(refuse(
                "basis",
                format!("the pension subsidy of {member} is already posted"),
            ));
        }
        Ok(two_legs(account, Account::source(Fund::Pension, Source::Central), amount))
    }

    /// Art. 29: a suspension names its first unpaid month, a resumption the first month paid
    /// again; spans do not overlap.
    pub(super) fn check_suspension(
        &self,
        member: &MemberId,
        fund: Fund,
        from: Period,
        suspend: bool,
    ) -> Result<(), EventError> {
        let m = self.member(member).expect("checked in rules");
        if fund != Fund::Spouse || m.category_now() != Category::Spouse {
            return Err(refuse(
                "fund",
                "Art. 29: suspension applies to an unemployed accompanying spouse's subsidy",
            ));
        }
        if from < m.enlisted_on.period() {
            return Err(refuse("from", format!("{from} is before enrolment on {}", m.enlisted_on)));
        }
        if suspend {
            if m.open_suspension().is_some() {
                return Err(refuse(
                    "member",
                    format!("the subsidy of {member} is already suspended"),
                ));
            }
            if let Some(u) = m.suspensions.last().and_then(|s| s.until)
                && from < u
            {
                return Err(refuse(
                    "from",
                    format!("the last suspension of {member} ended in {u}; a new one starts after"),
                ));
            }
            // A subsidy already posted for a month the suspension would cover must be reversed
            // first, or the books would hold money the law suspends.
            for line in [Line::SpousePension, Line::SpouseMedical] {
                if let Some(p) = self.first_subsidised_from(member, line, from) {
                    return Err(refuse(
                        "from",
                        format!(
                            "Art. 29: the subsidy of {member} for {p} is already posted; reverse it \
                             before suspending from {from}"
                        ),
                    ));
                }
            }
        } else {
            let Some(open) = m.open_suspension() else {
                return Err(refuse("member", format!("the subsidy of {member} is not suspended")));
            };
            if from <= open.from {
                return Err(refuse(
                    "from",
                    format!("the suspension began in {}; payment resumes after it", open.from),
                ));
            }
        }
        Ok(())
    }

    /// The months of `member`'s premium `line` that hold money (this batch's in the state),
    /// in order, each once (a member's book keeps them so).
    fn months_of(&self, member: &MemberId, line: Line) -> Vec<Period> {
        self.base().months_of(member, line).collect()
    }

    /// [`Batch::months_of`] from `from` on (no older year is read).
    fn months_from(&self, member: &MemberId, line: Line, from: Period) -> Vec<Period> {
        self.base().months_from(member, line, from).collect()
    }

    /// Art. 20, 25, 32: premiums and their subsidies stop with the service. A discharge or death
    /// dated before a month whose premium or subsidy is already posted would leave money for
    /// months not served: refused, naming the first such month (reverse it first, or date the
    /// event later).
    pub(super) fn check_no_premium_after(
        &self,
        member: &MemberId,
        last_month: Period,
        what: &str,
    ) -> Result<(), EventError> {
        for line in [Line::Medical, Line::SpousePension, Line::SpouseMedical] {
            let later = self.months_from(member, line, last_month).into_iter().find(|p| {
                *p > last_month
                    && self.period(member, line, *p) != crate::state::PeriodMoney::default()
            });
            if let Some(p) = later {
                return Err(refuse(
                    "on",
                    format!(
                        "Art. 20, 25, 32: member {member} has premium money for {p}, after the \
                         month of the {what}; reverse it first, or date the {what} later"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The first month at or after `from` whose subsidy on `line` is posted, if any.
    fn first_subsidised_from(&self, member: &MemberId, line: Line, from: Period) -> Option<Period> {
        self.months_from(member, line, from)
            .into_iter()
            .find(|p| self.period(member, line, *p).state.0 != 0)
    }

    /// Months whose personal premium on `line` awaits its state part.
    fn awaiting_state_part(&self, member: &MemberId, line: Line) -> Vec<Period> {
        self.months_of(member, line)
            .into_iter()
            .filter(|p| {
                let money = self.period(member, line, *p);
                money.personal.0 != 0 && money.state.0 == 0
            })
            .collect()
    }

    /// A unit change, suspension or resumption moved no money but changes what later rules
    /// decide: it is reversed only while it is the member's latest of its kind and nothing
    /// posted since depends on it.
    pub(super) fn check_history_reversal(
        &self,
        target: &crate::entry::Entry,
    ) -> Result<(), EventError> {
        match &target.event.body {
            EventBody::UnitChange { member, on, .. } => {
                let m = self.member_of_target(member)?;
                if m.units.last().is_none_or(|(d, _)| d != on) {
                    return Err(refuse("of", "a later unit change follows; reverse it first"));
                }
                if let Some(p) =
                    self.months_from(member, Line::Medical, on.period()).into_iter().next()
                {
                    return Err(refuse(
                        "of",
                        format!(
                            "Art. 32: the premium of {member} for {p} was withheld by the new \
                             unit; reverse it first"
                        ),
                    ));
                }
            }
            EventBody::Suspend { member, from, .. } => {
                let m = self.member_of_target(member)?;
                if m.suspensions.last().is_none_or(|s| s.from != *from || s.until.is_some()) {
                    return Err(refuse(
                        "of",
                        "Art. 29: only the open, latest suspension is reversed; reverse its \
                         resumption first",
                    ));
                }
            }
            EventBody::Resume { member, from, .. } => {
                let m = self.member_of_target(member)?;
                if m.suspensions.last().is_none_or(|s| s.until != Some(*from)) {
                    return Err(refuse(
                        "of",
                        "Art. 29: a later suspension follows; reverse it first",
                    ));
                }
                for line in [Line::SpousePension, Line::SpouseMedical] {
                    if let Some(p) = self.first_subsidised_from(member, line, *from) {
                        return Err(refuse(
                            "of",
                            format!(
                                "Art. 29: the subsidy of {member} for {p} was paid after the \
                                 resumption; reverse it first"
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn check_unit_change(
        &self,
        member: &MemberId,
        unit: &UnitId,
        on: Date,
    ) -> Result<(), EventError> {
        let m = self.member(member).expect("checked in rules");
        if !m.category_now().is_serviceman() {
            return Err(refuse(
                "member",
                "Art. 32: a spouse's premiums follow the serviceman's unit; change his unit",
            ));
        }
        let last = m.units.last().expect("enrolment unit").0;
        if on <= last {
            return Err(refuse("on", format!("must be after the last unit change on {last}")));
        }
        if m.discharged_on.is_some_and(|d| on > d) || m.deceased_on.is_some_and(|d| on > d) {
            return Err(refuse("on", "member is no longer in service on that date"));
        }
        if m.unit_on(on) == unit {
            return Err(refuse("unit", format!("{member} is already in unit {unit}")));
        }
        Ok(())
    }

    /// Before a transfer nothing may be left due: a premium awaiting its match or standard
    /// subsidy, or a conscript's standard medical subsidy (Art. 20, 25; else the member is
    /// short once the account is closed).
    pub(super) fn check_nothing_due(
        &self,
        member: &MemberId,
        m: &MemberState,
        fund: Fund,
        part: Option<SpousePart>,
    ) -> Result<(), EventError> {
        let lines: &[Line] = match (fund, part) {
            (Fund::Medical, _) => &[Line::Medical],
            (Fund::Spouse, Some(SpousePart::Pension)) => &[Line::SpousePension],
            (Fund::Spouse, Some(SpousePart::Medical)) => &[Line::SpouseMedical],
            (Fund::Spouse, None) => &[Line::SpousePension, Line::SpouseMedical],
            _ => &[],
        };
        let mut waiting: Vec<String> = Vec::new();
        for line in lines {
            for p in self.awaiting_state_part(member, *line) {
                if !(fund == Fund::Spouse && m.suspended_in(p)) {
                    waiting.push(format!("{p} ({})", line_name(*line)));
                }
            }
        }
        if !waiting.is_empty() {
            // Name the first months; an error message stays bounded.
            const LISTED_MAX: usize = 12;
            let more = waiting.len().saturating_sub(LISTED_MAX);
            waiting.truncate(LISTED_MAX);
            let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
            return Err(refuse(
                "member",
                format!(
                    "Art. 20, 25: premiums of {member} await their state part: {}{tail}; post the \
                     subsidy before the transfer",
                    waiting.join(", ")
                ),
            ));
        }
        if fund == Fund::Medical
            && !m.medical_standard_paid
            && let Some(end) = m.discharged_on
            && conscript_medical_subsidy(m, self.standards(), end).is_ok_and(|f| f.0 > 0)
        {
            return Err(refuse(
                "member",
                format!(
                    "Art. 20 para. 2: the standard medical subsidy of {member} for service as a \
                     conscript or cadet is due; post it (basis standard) before the transfer"
                ),
            ));
        }
        Ok(())
    }

    /// Art. 46, 47: money returned of payout `of`, never more than it paid less what was
    /// returned before. Back into the pool it came from.
    pub(super) fn recovery(
        &self,
        member: &MemberId,
        fund: Fund,
        amount: Fen,
        of: &EventId,
    ) -> Result<Vec<Posting>, EventError> {
        let m = self.member(member).expect("checked in rules");
        let Some(paid) = m.benefits.iter().find(|b| &b.event_id == of) else {
            return Err(refuse(
                "of",
                format!(
                    "Art. 46, 47: {of:?} is not an unreversed payout to {member}; a recovery \
                     returns money the ledger paid"
                ),
            ));
        };
        if fund != Fund::Casualty {
            return Err(refuse("fund", "the payout was paid from the casualty fund"));
        }
        let open = Fen(paid.amount.0 - paid.recovered.0);
        if amount > open {
            return Err(refuse(
                "amount",
                format!(
                    "Art. 46, 47: payout {of:?} paid {} and {} is recovered; at most {open} remains",
                    paid.amount, paid.recovered
                ),
            ));
        }
        Ok(two_legs(Account::pool(fund), Account::source(fund, Source::Recovery), amount))
    }
}

fn line_name(line: Line) -> &'static str {
    match line {
        Line::Medical => "medical",
        Line::SpousePension => "spouse pension part",
        Line::SpouseMedical => "spouse medical part",
    }
}

/// Art. 15, 22, 26: insurance brought in from a civilian agency, into the member's
/// `transferred_in` holding, against the fund's `transfer_in` income.
pub(super) fn transfer_in(
    batch: &Batch<'_>,
    member: &MemberId,
    fund: Fund,
    agency: &AgencyId,
    part: Option<SpousePart>,
    amount: Fen,
) -> Result<Vec<Posting>, EventError> {
    let _ = agency;
    let m = batch.check_open_part(member, fund, part, "fund")?;
    match fund {
        Fund::Casualty => {
            return Err(refuse("fund", "the casualty fund takes no transferred insurance"));
        }
        Fund::Pension | Fund::Medical if !m.category_now().is_serviceman() => {
            return Err(refuse("fund", "Art. 26: a spouse's insurance comes into the spouse fund"));
        }
        Fund::Spouse if m.category_now() != Category::Spouse => {
            return Err(refuse(
                "fund",
                "Art. 15, 22: a serviceman's insurance comes into the pension or medical fund",
            ));
        }
        _ => {}
    }
    if m.discharged_on.is_some() {
        return Err(refuse(
            "member",
            "Art. 15, 22: insurance is brought in at enlistment, not after discharge",
        ));
    }
    if amount.0 == 0 {
        // The relationship alone: recorded, nothing to post.
        return Ok(Vec::new());
    }
    Ok(two_legs(
        Account::member(fund, member, part, Holding::TransferredIn),
        Account::source(fund, Source::TransferIn),
        amount,
    ))
}

/// Art. 13-14: the pension subsidy at discharge: for each whole month of service (the
/// discharge day included), the month's pay times the unit and personal rates in force at the
/// month's start (a month before a rate's first value takes that first value). Summed exactly,
/// rounded half away from zero once.
pub(super) fn discharge_subsidy(
    m: &MemberState,
    standards: &Standards,
    on: Date,
) -> Result<Fen, String> {
    let (months, _days) = m.enlisted_on.service_until(on);
    let start = m.enlisted_on.to_naive();
    let mut total: i128 = 0;
    for i in 0..months {
        let month_start = start
            .checked_add_months(chrono::Months::new(
                u32::try_from(i).map_err(|_| "service too long")?,
            ))
            .ok_or("service too long to compute")?;
        let d = Date::from_naive(month_start);
        let mut rate = 0;
        for name in [StandardName::PensionSubsidyUnitRate, StandardName::PensionSubsidyPersonalRate]
        {
            rate += standards.in_force_or_first(name.as_str(), d).ok_or_else(|| {
                format!("Art. 14: no standard {name} is recorded; record it before the discharge")
            })?;
        }
        total += i128::from(m.pay_on(d).0) * i128::from(rate);
    }
    let fen = div_round_half_away(total, 1_000_000);
    Ok(Fen(fen))
}

/// Art. 20 para. 2 with the seed rule: per year of service as a conscript or cadet; a
/// remainder under half a year counts as half a year, half a year or more as a full year.
/// Each year (and the remainder) at the standard in force at its start (the first value before
/// the first recorded one). The discharge day counts as served.
pub fn conscript_medical_subsidy(
    m: &MemberState,
    standards: &Standards,
    last_day: Date,
) -> Result<Fen, String> {
    const NAME: StandardName = StandardName::MedicalConscriptSubsidyPerYear;
    let mut halves_total: i128 = 0;
    for (from, to) in m.spans_in(&[Category::Conscript, Category::Cadet], last_day) {
        let (months, days) = from.service_until(Date(to.0 - 1));
        let full_years = months / 12;
        let rest_months = months % 12;
        let start = from.to_naive();
        let at = |k: i64| -> Result<i64, String> {
            let d = start
                .checked_add_months(chrono::Months::new(
                    u32::try_from(k).map_err(|_| "service too long")?,
                ))
                .ok_or("service too long")?;
            standards
                .in_force_or_first(NAME.as_str(), Date::from_naive(d))
                .ok_or_else(|| format!("Art. 20: no standard {NAME} is recorded"))
        };
        for y in 0..full_years {
            halves_total += 2 * i128::from(at(y * 12)?);
        }
        let remainder_halves = match (rest_months, days) {
            (0, 0) => 0,
            (0..=5, _) => 1,
            _ => 2,
        };
        if remainder_halves > 0 {
            halves_total += remainder_halves * i128::from(at(full_years * 12)?);
        }
    }
    let fen = div_round_half_away(halves_total, 2);
    Ok(Fen(fen))
}

/// The conscript/cadet standard medical subsidy due at discharge on `end`.
pub(super) fn conscript_subsidy_due(
    m: &MemberState,
    standards: &Standards,
    end: Date,
) -> Result<Fen, String> {
    conscript_medical_subsidy(m, standards, end)
}
