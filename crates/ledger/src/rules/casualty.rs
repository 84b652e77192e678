//! Casualty benefits: death and disability payouts (Art. 7-10).

use super::{Batch, refuse, two_legs};
use crate::entry::Posting;
use crate::event::{Benefit, Cause, EventError};
use crate::fund::{Account, Fund, Use};
use crate::ids::MemberId;
use crate::money::{Fen, div_round_half_away};
use crate::standard::StandardName;
use crate::time::Date;

impl Batch<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn payout(
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
                    Cause::Martyr => StandardName::DeathBenefitMartyr,
                    Cause::OnDuty => StandardName::DeathBenefitOnDuty,
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
                // Parsing admits grades 1-10 only; another grade has no standard.
                let name = StandardName::disability_multiple(grade).ok_or_else(|| {
                    EventError::event(format!(
                        "no standard disability_multiple_grade_{grade} is in force on {on}"
                    ))
                })?;
                let multiple = self.standard(name, on)?;
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
}
