//! The state effects of an accepted event, shared by the rules, replay and mirrors.

use super::Batch;
use crate::entry::Posting;
use crate::event::{Basis, Benefit, Event, EventBody};
use crate::fund::{AccountKind, Fund};
use crate::money::Fen;
use crate::standard;
use crate::state::{Line, MemberState, Transfer};
use crate::time::Date;

impl Batch<'_> {
    /// The state effects of an accepted event (also used when replaying stored entries).
    pub(super) fn effects_only(&mut self, event: &Event, value_date: Date, postings: &[Posting]) {
        let seq = self.next_seq;
        let body = event.body.upgraded(value_date);
        match body.as_ref() {
            EventBody::Enroll { member, category, unit, enlisted_on, monthly_pay, sponsor } => {
                self.set_member(
                    member,
                    MemberState::enrolled(
                        *enlisted_on,
                        *category,
                        unit.clone(),
                        *monthly_pay,
                        sponsor.clone(),
                    ),
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
                // Checked at parse, and for an entry another ledger recorded by
                // `apply_recorded`; stored bytes that fail the check (tampered, or sent by a
                // hostile primary to a mirror) change no standard rather than panic.
                if let Some(spec) = standard::spec(name)
                    && let Ok(v) = standard::parse_value(spec, value)
                {
                    let mut s = self.standards().clone();
                    s.record(name, *effective_from, v);
                    self.set_standards(s);
                }
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
                self.set_backpaid(member, after);
            }
            EventBody::BackpayV1 { member, input } => {
                let mut b = self.backpaid(member);
                let months = input.gap_months.min(input.service_months);
                b.pension_months += months;
                b.medical_months += months;
                self.set_backpaid(member, b);
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
