//! Premiums (Art. 20-21, 25, 32) and the state's subsidies that match them.

use super::law;
use super::{Batch, leg_pair, refuse, two_legs};
use crate::entry::Posting;
use crate::event::{Basis, EventError};
use crate::fund::{Account, Category, Fund, Holding, Source, SpousePart};
use crate::ids::MemberId;
use crate::money::Fen;
use crate::standard::StandardName;
use crate::state::Line;
use crate::time::{Date, Period};

impl Batch<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn contribution(
        &self,
        member: &MemberId,
        fund: Fund,
        period: Period,
        amount: Fen,
        unit: &crate::ids::UnitId,
        part: Option<SpousePart>,
        value_date: Date,
    ) -> Result<[Posting; 2], EventError> {
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
                (StandardName::MedicalPersonalRate, Line::Medical)
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
                        (StandardName::SpousePensionPersonalRate, Line::SpousePension)
                    }
                    _ => (StandardName::SpouseMedicalPersonalRate, Line::SpouseMedical),
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
        Ok(leg_pair(
            Account::member(fund, member, part, Holding::Personal),
            Account::source(fund, Source::Personal),
            amount,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn subsidy(
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
                        let rate = self
                            .standard(StandardName::SpousePensionSubsidyRate, period.first_day())?;
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
}
