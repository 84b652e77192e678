//! Interest credited to members' accounts, per year on the year-end balance (Art. 31).

use std::collections::BTreeMap;

use super::{Batch, refuse};
use crate::entry::Posting;
use crate::event::EventError;
use crate::fund::{Account, AccountKind, Fund, Holding, Source, SpousePart};
use crate::ids::MemberId;
use crate::money::Fen;
use crate::standard::StandardName;
use crate::time::{Date, Period};

impl Batch<'_> {
    /// Art. 31: interest on each open member account of `fund`, per year, on the balance at
    /// the end of that year by value date, at the fund's standard rate in force then.
    pub(super) fn interest(
        &self,
        fund: Fund,
        period: Period,
        rate_ppm: i64,
        value_date: Date,
    ) -> Result<Vec<Posting>, EventError> {
        let rate_name = match fund {
            Fund::Medical => StandardName::MedicalInterestRate,
            Fund::Pension => StandardName::PensionInterestRate,
            Fund::Spouse => StandardName::SpouseInterestRate,
            Fund::Casualty => {
                return Err(refuse(
                    "fund",
                    "Art. 31: the casualty fund has no member accounts to credit; its deposit \
                     interest is income of the pool",
                ));
            }
        };
        if period.month != 12 {
            return Err(refuse(
                "period",
                format!(
                    "Art. 31: interest is credited per year on the year-end balance; use period \
                     {}-12",
                    period.year
                ),
            ));
        }
        let year_end = period.last_day();
        if value_date != year_end {
            return Err(refuse(
                "value_date",
                format!("interest for {} takes effect at the year end {year_end}", period.year),
            ));
        }
        if self.interest_done(&(fund, period)) {
            return Err(refuse(
                "period",
                format!("interest for {fund} {} is already credited", period.year),
            ));
        }
        let standard_rate = self.standard(rate_name, year_end).map_err(|e| {
            refuse(
                "rate",
                format!("{} (Art. 31: the rate is set by the State; record it)", e.message),
            )
        })?;
        if rate_ppm != standard_rate {
            return Err(refuse(
                "rate",
                format!(
                    "the standard rate in force on {year_end} is {} %",
                    crate::money::ppm_to_percent_string(standard_rate)
                ),
            ));
        }
        // Each member account of the fund that ever moved (this batch's in the state).
        let mut holders: BTreeMap<(MemberId, Option<SpousePart>), i64> = BTreeMap::new();
        // Each member account comes once (a member's book, one total per account).
        let accounts = self.base().member_balances().filter(|(a, _)| a.fund == fund);
        for (account, _) in accounts {
            let AccountKind::Member { member, part, .. } = &account.kind else { continue };
            if self.member(member).is_some_and(|m| m.transfer_of(fund, *part).is_some()) {
                continue;
            }
            let held = self.balance_at_year_end(&account, period.year);
            *holders.entry((member.clone(), *part)).or_insert(0) += held.0;
        }
        let mut postings = Vec::new();
        let mut total = Fen::ZERO;
        for ((member, part), held) in &holders {
            let credit = Fen(*held).mul_ppm(rate_ppm);
            if credit.0 > 0 {
                postings.push(Posting {
                    account: Account::member(fund, member, *part, Holding::Interest),
                    amount: credit,
                });
                total = total.checked_add(credit).expect("interest total fits i64");
            }
            if postings.len() >= crate::entry::POSTINGS_PER_ENTRY_MAX {
                return Err(refuse("fund", "too many member accounts for one interest entry"));
            }
        }
        if total.0 > 0 {
            postings.push(Posting {
                account: Account::source(fund, Source::Interest),
                amount: Fen(-total.0),
            });
        }
        Ok(postings)
    }
}
