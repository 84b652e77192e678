//! Transfers to civilian agencies and their confirmation (Art. 16, 23, 27, 28).

use super::{Batch, refuse, two_legs};
use crate::entry::Posting;
use crate::event::EventError;
use crate::fund::{Account, Category, Fund, Holding, SpousePart, Use};
use crate::ids::MemberId;
use crate::money::Fen;

impl Batch<'_> {
    pub(super) fn transfer_out(
        &self,
        member: &MemberId,
        fund: Fund,
        agency: &crate::ids::AgencyId,
        part: Option<SpousePart>,
    ) -> Result<Vec<Posting>, EventError> {
        let m = self.check_open_part(member, fund, part, "fund")?;
        match fund {
            Fund::Casualty => {
                crate::transfer::check_transferred(fund).map_err(|m| refuse("fund", m))?;
            }
            Fund::Pension | Fund::Medical => {
                if m.discharged_on.is_none() {
                    return Err(refuse(
                        "member",
                        "Art. 16, 23: the relationship is transferred on discharge; post the discharge first",
                    ));
                }
                if fund == Fund::Pension && m.route == Some(crate::event::Route::Retirement) {
                    return Err(refuse(
                        "fund",
                        "Art. 19: a member resettled by retirement keeps the elderly care the State \
                         Council and the Central Military Commission provide; no pension transfer",
                    ));
                }
            }
            Fund::Spouse => {
                if m.category_now() != Category::Spouse {
                    return Err(refuse("member", "only a spouse has a spouse-fund account"));
                }
            }
        }
        self.check_nothing_due(member, m, fund, part)?;
        let mut postings = Vec::new();
        let mut total = Fen::ZERO;
        let parts: Vec<Option<SpousePart>> = match (fund, part) {
            (Fund::Spouse, Some(p)) => vec![Some(p)],
            (Fund::Spouse, None) => [SpousePart::Pension, SpousePart::Medical]
                .into_iter()
                .filter(|p| m.transfer_of(fund, Some(*p)).is_none())
                .map(Some)
                .collect(),
            _ => vec![None],
        };
        for part in &parts {
            for holding in Holding::ALL {
                let account = Account::member(fund, member, *part, holding);
                let held = self.balance(&account);
                if held.0 != 0 {
                    postings.push(Posting { account, amount: Fen(-held.0) });
                    total = total.checked_add(held).expect("bounded");
                }
            }
        }
        if total.0 <= 0 {
            return Err(refuse(
                "member",
                format!("the {fund} account of {member} holds nothing to transfer"),
            ));
        }
        postings.push(Posting { account: Account::agency_payable(fund, agency), amount: total });
        Ok(postings)
    }

    pub(super) fn transfer_confirmed(
        &self,
        member: &MemberId,
        fund: Fund,
        agency: &crate::ids::AgencyId,
    ) -> Result<Vec<Posting>, EventError> {
        let m = self.member(member).expect("checked in rules");
        // A spouse's two parts may go to two agencies (Art. 28): the open one to this agency.
        let t = m
            .transfers
            .iter()
            .find(|t| t.fund == fund && &t.agency == agency && !t.confirmed)
            .or_else(|| m.transfer(fund));
        let Some(t) = t else {
            return Err(refuse(
                "fund",
                format!("the {fund} account of {member} was not transferred"),
            ));
        };
        if &t.agency != agency {
            return Err(refuse("agency", format!("the transfer went to agency {}", t.agency)));
        }
        if t.confirmed {
            return Err(refuse("member", "the transfer is already confirmed"));
        }
        Ok(two_legs(
            Account::uses(fund, Use::Transfer),
            Account::agency_payable(fund, agency),
            t.amount,
        ))
    }
}
