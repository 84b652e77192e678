//! The events that move no money (enrolment, death, category, pay, back-payment, suspension,
//! unit, standard) and the discharge with its Art. 13 subsidy.

use super::law;
use super::{Batch, refuse, two_legs};
use crate::entry::Posting;
use crate::event::{Cause, EventBody, EventError};
use crate::fund::{Account, Category, Fund, Holding, Source};
use crate::ids::MemberId;
use crate::time::Date;

impl Batch<'_> {
    /// Checks of the events that move no money (enrolment, lifecycle, standards).
    pub(super) fn check_lifecycle(
        &self,
        body: &EventBody,
        value_date: Date,
    ) -> Result<(), EventError> {
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
                let (rate, minimum_months) =
                    crate::backpay::standards_on(self.standards(), value_date)
                        .map_err(EventError::event)?;
                crate::backpay::assess_scoped(
                    input,
                    scope,
                    rate,
                    minimum_months,
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

    pub(super) fn discharge(
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
}
