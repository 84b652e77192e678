//! Which rule an event goes to, the checks every event passes first (enrolment, value date),
//! and the one check every posting passes after (no negative holding).

use super::law;
use super::{ApplyError, Batch, EntryLookup, refuse, two_legs};
use crate::entry::Posting;
use crate::event::{Event, EventBody, EventError};
use crate::fund::{Account, Source};
use crate::keyed::KeyedMap;
use crate::money::Fen;
use crate::time::Date;

impl Batch<'_> {
    pub(super) fn rules(
        &mut self,
        event: &Event,
        value_date: Date,
        lookup: &dyn EntryLookup,
    ) -> Result<Vec<Posting>, ApplyError> {
        let body = &event.body;
        match body {
            // A veteran discharged long ago need not be enrolled in this ledger.
            EventBody::Enroll { .. }
            | EventBody::Standard { .. }
            | EventBody::Backpay { .. }
            | EventBody::BackpayV1 { .. } => {}
            EventBody::KeyRotation { .. } => {}
            EventBody::Reversal { .. } | EventBody::Appropriation { .. } => {}
            EventBody::Interest { .. } => {}
            EventBody::Budget { .. }
            | EventBody::Remittance { .. }
            | EventBody::BankStatement { .. }
            | EventBody::DepositInterest { .. }
            | EventBody::YearClose { .. } => {}
            _ => {
                let member = body.member().expect("member events name a member");
                let m = self
                    .member(member)
                    .ok_or_else(|| refuse("member", format!("member {member} is not enrolled")))?;
                if value_date < m.enlisted_on {
                    return Err(refuse(
                        "value_date",
                        format!("value date {value_date} is before enrolment on {}", m.enlisted_on),
                    )
                    .into());
                }
            }
        }
        let postings = match body {
            EventBody::Reversal { of, .. } => return self.reversal(of, value_date, lookup),
            EventBody::Contribution { member, fund, period, amount, unit, part } => {
                let [personal, source] =
                    self.contribution(member, *fund, *period, *amount, unit, *part, value_date)?;
                let [receivable, unremitted] =
                    crate::admin::withheld_postings(*fund, unit, *period, *amount);
                vec![personal, source, receivable, unremitted]
            }
            EventBody::Remittance { unit, fund, amount, period, .. } => {
                let owed = self.balance(&Account::unit_receivable(*fund, unit, *period));
                crate::admin::remittance_postings(owed, *fund, unit, *period, *amount)?
            }
            EventBody::DepositInterest { fund, amount, period } => {
                crate::admin::deposit_interest_postings(self.admin(), *fund, *period, *amount)?
            }
            EventBody::Budget { year, .. } => {
                crate::admin::check_budget(self.admin(), *year)?;
                Vec::new()
            }
            EventBody::BankStatement { balance, .. } => {
                crate::admin::check_bank_balance(*balance)?;
                Vec::new()
            }
            EventBody::YearClose { year, through_seq, .. } => {
                crate::admin::check_close(
                    self.admin(),
                    *year,
                    *through_seq,
                    self.next_seq,
                    value_date,
                )?;
                Vec::new()
            }
            EventBody::Subsidy { member, fund, period, amount, basis, part } => {
                self.subsidy(member, *fund, *period, *amount, *basis, *part)?
            }
            EventBody::Payout { member, fund, benefit, amount, cause, grade, on } => {
                self.payout(member, *fund, *benefit, *amount, *cause, *grade, *on, value_date)?
            }
            EventBody::Interest { fund, period, rate_ppm } => {
                self.interest(*fund, *period, *rate_ppm, value_date)?
            }
            EventBody::Discharge { member, on, route } => self.discharge(member, *on, *route)?,
            EventBody::TransferOut { member, fund, agency, part } => {
                // Art. 16, 23: the relationship is transferred after the discharge; a transfer
                // dated before it would empty the account for months it still held money.
                if let Some(d) = self.member(member).and_then(|m| m.discharged_on)
                    && value_date < d
                {
                    return Err(refuse(
                        "value_date",
                        format!(
                            "Art. 16, 23: the transfer's value date {value_date} is before the discharge on {d}"
                        ),
                    )
                    .into());
                }
                self.transfer_out(member, *fund, agency, *part)?
            }
            EventBody::TransferConfirmed { member, fund, agency } => {
                self.transfer_confirmed(member, *fund, agency)?
            }
            // Central money into a fund's pool (Art. 31).
            EventBody::Appropriation { fund, amount } => {
                two_legs(Account::pool(*fund), Account::source(*fund, Source::Central), *amount)
            }
            EventBody::Recovery { member, fund, amount, of, .. } => {
                self.recovery(member, *fund, *amount, of)?
            }
            EventBody::TransferIn { member, fund, agency, part, amount } => {
                law::transfer_in(self, member, *fund, agency, *part, *amount)?
            }
            EventBody::RecoveryV1 { .. } => {
                return Err(refuse(
                    "of",
                    "Art. 46, 47: this recovery names no payout, so it cannot be checked against \
                     what was paid (recorded before recoveries named their payout)",
                )
                .into());
            }
            EventBody::BackpayV1 { .. } => {
                return Err(refuse(
                    "type",
                    "Opinion 1: this back-payment records no resettlement or category, so its \
                     scope cannot be checked (recorded before the scope was required)",
                )
                .into());
            }
            EventBody::DischargeV1 { .. }
            | EventBody::PayoutV1 { .. }
            | EventBody::SuspendV1 { .. }
            | EventBody::ResumeV1 { .. }
            | EventBody::TransferOutV1 { .. } => {
                return Err(refuse(
                    "type",
                    "this form of the event predates issue 11 and is only replayed; post the \
                     current form (docs/EVENTS.md)",
                )
                .into());
            }
            _ => {
                self.check_lifecycle(body, value_date)?;
                Vec::new()
            }
        };
        crate::entry::check_entry_size(event, postings.len()).map_err(|m| refuse("type", m))?;
        self.check_balances_fit(&postings, value_date)?;
        self.check_no_negative_holding(&postings)?;
        self.effects_only(event, value_date, &postings);
        Ok(postings)
    }

    /// Every balance the postings move, and every member account's sum of the year, stays
    /// within what an i64 of fen holds: a sum that would pass it is refused, naming the
    /// account, before anything changes (it would otherwise stop the writer).
    pub(super) fn check_balances_fit(
        &self,
        postings: &[Posting],
        value_date: Date,
    ) -> Result<(), EventError> {
        // While the bound on the state's balances, with what the batch and this entry move,
        // fits an i64, no balance or year's sum can pass one (`BalanceBound`).
        if self.bound_covers(super::batch::absolute_sum(postings)) {
            return Ok(());
        }
        let year = value_date.period().year;
        let fits = |x: i128| i64::try_from(x).is_ok();
        // Per account, by first appearance: its base value and this entry's change so far, of
        // its balance and, for a member account, of its sum of the year (each must fit on its
        // own).
        let slots = AccountSlots::of(postings);
        let mut sums: Vec<Sums> = slots.accounts.iter().map(|a| self.sums_of(a, year)).collect();
        for (p, slot) in postings.iter().zip(&slots.slot_of) {
            let account_sums = &mut sums[*slot];
            let member = p.account.member_id().is_some();
            for (i, (base, change)) in account_sums.iter_mut().enumerate() {
                if i == 1 && !member {
                    continue;
                }
                *change += i128::from(p.amount.0);
                if !fits(*change) || !fits(*base + *change) {
                    return Err(refuse(
                        "amount",
                        format!(
                            "the balance of {} would pass the largest amount the ledger holds \
                             ({} fen)",
                            p.account,
                            i64::MAX
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The value of `account`'s balance and, for a member account, of its sum of `year`
    /// (zero for any other account), each with no change yet: the batch's changes are in the
    /// state already.
    fn sums_of(&self, account: &Account, year: u16) -> Sums {
        let balance = (self.base().balance(account).0.into(), 0);
        let year_sum = if account.member_id().is_some() {
            (i128::from(self.base().year_move(account, year).0), 0)
        } else {
            (0, 0)
        };
        [balance, year_sum]
    }

    /// No rule may leave a member's holding below zero.
    pub(super) fn check_no_negative_holding(&self, postings: &[Posting]) -> Result<(), EventError> {
        let takes = |p: &Posting| p.account.member_id().is_some() && p.amount.0 < 0;
        if !postings.iter().any(takes) {
            return Ok(());
        }
        let slots = AccountSlots::of(postings);
        let mut moved = vec![0i64; slots.accounts.len()];
        for (p, slot) in postings.iter().zip(&slots.slot_of) {
            moved[*slot] += p.amount.0;
        }
        for (p, slot) in postings.iter().zip(&slots.slot_of) {
            if !takes(p) {
                continue;
            }
            let after = self.balance(&p.account).0 + moved[*slot];
            if after < 0 {
                return Err(refuse(
                    "amount",
                    format!(
                        "{} would hold {}; a member's holding is never negative",
                        p.account,
                        Fen(after)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Of an account: (base, the batch's change) of its balance, then of its sum of the year.
type Sums = [(i128, i128); 2];

/// The distinct accounts of an entry's postings, in order of first appearance, and the
/// account of each posting by its place among them: by a scan for the few postings of most
/// entries, by a hash map for the thousands of an interest entry.
struct AccountSlots<'p> {
    accounts: Vec<&'p Account>,
    slot_of: Vec<usize>,
}

impl<'p> AccountSlots<'p> {
    /// Up to this many postings, scanning the accounts seen is cheaper than hashing.
    const SCAN_MAX: usize = 16;

    fn of(postings: &'p [Posting]) -> Self {
        let mut accounts: Vec<&Account> = Vec::with_capacity(postings.len());
        let mut slot_of = Vec::with_capacity(postings.len());
        let mut index: Option<KeyedMap<&Account, usize>> =
            (postings.len() > Self::SCAN_MAX).then(KeyedMap::default);
        for p in postings {
            let seen = match &index {
                None => accounts.iter().position(|a| **a == p.account),
                Some(index) => index.get(&p.account).copied(),
            };
            let slot = seen.unwrap_or_else(|| {
                accounts.push(&p.account);
                if let Some(index) = &mut index {
                    index.insert(&p.account, accounts.len() - 1);
                }
                accounts.len() - 1
            });
            slot_of.push(slot);
        }
        AccountSlots { accounts, slot_of }
    }
}
