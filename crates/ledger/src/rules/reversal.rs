//! Reversals: what may be reversed, and undoing a reversed entry's state effects.

use super::{ApplyError, Batch, EntryLookup, refuse};
use crate::entry::{Entry, Posting};
use crate::event::{Basis, Benefit, EventBody, EventError};
use crate::fund::{AccountKind, Fund};
use crate::ids::{EventId, MemberId};
use crate::money::Fen;
use crate::state::{Line, PeriodMoney};
use crate::time::Date;

impl Batch<'_> {
    pub(super) fn reversal(
        &mut self,
        of: &EventId,
        value_date: Date,
        lookup: &dyn EntryLookup,
    ) -> Result<Vec<Posting>, ApplyError> {
        let target = self.earlier_entry(of, lookup)?;
        Ok(self.reverse(of, target, value_date)?)
    }

    /// The member of an entry to be reversed. Only an entry whose member is enrolled was
    /// recorded, but the exceptions report replays the journal through today's rules, where
    /// the enrolment itself may have been refused: then the reversal is refused, never a panic.
    pub(super) fn member_of_target(
        &self,
        member: &MemberId,
    ) -> Result<&crate::state::MemberState, EventError> {
        self.member(member).ok_or_else(|| {
            refuse("of", format!("the entry it reverses names member {member}, not enrolled"))
        })
    }

    fn reverse(
        &mut self,
        of: &EventId,
        target: Entry,
        value_date: Date,
    ) -> Result<Vec<Posting>, EventError> {
        // Undoing the effects of an entry about a member changes the member's record.
        if !matches!(
            target.event.body,
            EventBody::Enroll { .. } | EventBody::Backpay { .. } | EventBody::BackpayV1 { .. }
        ) && let Some(member) = target.event.body.member()
        {
            self.member_of_target(member)?;
        }
        // A reversal undoes money from its target's value date on; dated earlier it would leave
        // the member's holdings negative for the days between.
        if value_date < target.value_date {
            return Err(refuse(
                "value_date",
                format!(
                    "the reversal's value date {value_date} is before that of the entry it \
                     reverses ({})",
                    target.value_date
                ),
            ));
        }
        match &target.event.body {
            EventBody::Reversal { .. } => {
                return Err(refuse(
                    "of",
                    "a reversal is not reversed; post the original event again",
                ));
            }
            EventBody::TransferConfirmed { .. } => {
                return Err(refuse("of", "a confirmed transfer cannot be reversed"));
            }
            EventBody::KeyRotation { .. } => {
                return Err(refuse("of", "a key rotation is not reversed; rotate the key again"));
            }
            EventBody::TransferOut { member, fund, .. }
            | EventBody::TransferOutV1 { member, fund, .. } => {
                let m = self.member_of_target(member)?;
                if m.transfers.iter().any(|t| t.fund == *fund && t.seq == target.seq && t.confirmed)
                {
                    return Err(refuse(
                        "of",
                        "the agency confirmed this transfer; it cannot be reversed",
                    ));
                }
            }
            EventBody::Contribution { member, fund, period, part, .. } => {
                let line = Line::of(*fund, *part)
                    .ok_or_else(|| refuse("of", "the premium it reverses is on no premium line"))?;
                let m = self.member_of_target(member)?;
                if self.period(member, line, *period).state.0 != 0 {
                    return Err(refuse(
                        "of",
                        "reverse the subsidy that matches this premium first",
                    ));
                }
                if m.transfer(*fund).is_some() {
                    return Err(refuse(
                        "of",
                        "the account was transferred; reverse the transfer first",
                    ));
                }
            }
            EventBody::Discharge { member, .. } | EventBody::DischargeV1 { member, .. } => {
                let m = self.member_of_target(member)?;
                if let Some(t) = m.transfers.first() {
                    return Err(refuse(
                        "of",
                        format!(
                            "Art. 16, 23: the {} account of {member} was transferred after this \
                             discharge (seq {}); reverse the transfer first",
                            t.fund, t.seq
                        ),
                    ));
                }
            }
            EventBody::Payout { member, .. } | EventBody::PayoutV1 { member, .. } => {
                let m = self.member_of_target(member)?;
                if m.benefits.iter().any(|b| &b.event_id == of && b.recovered.0 > 0) {
                    return Err(refuse(
                        "of",
                        "money of this payout was recovered; reverse the recoveries first",
                    ));
                }
            }
            _ => {}
        }
        // Nothing may move in a closed account (Art. 16, 23, 27), a reversal included.
        if !matches!(
            target.event.body,
            EventBody::TransferOut { .. } | EventBody::TransferOutV1 { .. }
        ) {
            for p in &target.postings {
                let AccountKind::Member { member, part, .. } = &p.account.kind else { continue };
                if let Some(t) =
                    self.member(member).and_then(|m| m.transfer_of(p.account.fund, *part))
                {
                    return Err(refuse(
                        "of",
                        format!(
                            "the {} account of {member} was transferred to agency {} (seq {}); \
                             a reversal would change a closed account (Art. 16, 23, 27): reverse \
                             the transfer first",
                            p.account.fund, t.agency, t.seq
                        ),
                    ));
                }
            }
        }
        let history = matches!(
            target.event.body,
            EventBody::UnitChange { .. } | EventBody::Suspend { .. } | EventBody::Resume { .. }
        );
        if history {
            if self.is_reversed(target.seq) {
                return Err(refuse("of", format!("entry {} is already reversed", target.seq)));
            }
            self.check_history_reversal(&target)?;
            self.undo_effects(&target);
            self.changes.reversed.push(target.seq);
            return Ok(Vec::new());
        }
        if target.postings.is_empty() {
            return Err(refuse(
                "of",
                format!(
                    "the {} event {of:?} moved no money; nothing to reverse",
                    target.event.body.type_name()
                ),
            ));
        }
        if self.is_reversed(target.seq) {
            return Err(refuse("of", format!("entry {} is already reversed", target.seq)));
        }
        crate::admin::check_reversal(&target, &|a| self.balance(a))?;
        let postings: Vec<Posting> = target
            .postings
            .iter()
            .map(|p| Posting { account: p.account.clone(), amount: Fen(-p.amount.0) })
            .collect();
        self.check_balances_fit(&postings, value_date)?;
        self.check_no_negative_holding(&postings)?;
        self.undo_effects(&target);
        self.changes.reversed.push(target.seq);
        Ok(postings)
    }

    /// Undoes a reversed entry's effects on member state.
    pub(super) fn undo_effects(&mut self, target: &Entry) {
        let body = target.event.body.upgraded(target.value_date);
        match body.as_ref() {
            EventBody::Contribution { member, fund, period, part, .. } => {
                let line = Line::of(*fund, *part).expect("premium line");
                self.update_period(member, line, *period, |p| *p = PeriodMoney::default());
            }
            EventBody::Subsidy { member, fund, period, basis, part, .. } => {
                if *fund == Fund::Medical && *basis == Basis::Standard {
                    self.member_mut(member).medical_standard_paid = false;
                } else if let Some(line) = Line::of(*fund, *part) {
                    self.update_period(member, line, *period, |p| p.state = Fen::ZERO);
                }
            }
            EventBody::Payout { member, benefit, .. } => {
                let id = target.event.id.clone();
                let m = self.member_mut(member);
                m.benefits.retain(|b| b.event_id != id);
                if *benefit == Benefit::Death {
                    m.death_benefit_paid = false;
                }
            }
            EventBody::Recovery { member, amount, of, .. } => {
                let m = self.member_mut(member);
                if let Some(b) = m.benefits.iter_mut().find(|b| &b.event_id == of) {
                    b.recovered = Fen(b.recovered.0 - amount.0);
                }
            }
            EventBody::Discharge { member, .. } => {
                let m = self.member_mut(member);
                m.discharged_on = None;
                m.route = None;
            }
            EventBody::Interest { fund, period, .. } => {
                self.drop_interest((*fund, *period));
            }
            EventBody::UnitChange { member, on, .. } => {
                let m = self.member_mut(member);
                if m.units.len() > 1 && m.units.last().is_some_and(|(d, _)| d == on) {
                    m.units.pop();
                    m.unit = m.units.last().expect("the enrolment unit stays").1.clone();
                }
            }
            EventBody::Suspend { member, from, .. } => {
                let m = self.member_mut(member);
                if m.suspensions.last().is_some_and(|s| s.from == *from) {
                    m.suspensions.pop();
                }
            }
            EventBody::Resume { member, from, .. } => {
                let m = self.member_mut(member);
                if let Some(last) = m.suspensions.last_mut()
                    && last.until == Some(*from)
                {
                    last.until = None;
                }
            }
            EventBody::TransferOut { member, fund, .. } => {
                let seq = target.seq;
                self.member_mut(member).transfers.retain(|t| !(t.fund == *fund && t.seq == seq));
            }
            EventBody::DepositInterest { fund, period, .. } => {
                self.admin_mut().deposit_interest.remove(&(*fund, *period));
            }
            _ => {}
        }
    }
}
