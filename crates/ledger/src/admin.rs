//! Fund administration (Chapters 6–7 of the law): budgets (Art. 33–34), premiums withheld by
//! units and remitted (Art. 32, 45), the special bank accounts (Art. 35), the fund's own
//! deposit interest (Art. 31), sealed years and their final accounts (Art. 34), and the
//! per-period statements supervision needs (Art. 41).
//!
//! Pure: the rules these events obey and the derivations the reports are made of. The chart
//! of accounts it adds is in `docs/ACCOUNTS.md` ("Units' remittances").
//!
//! This file holds the vocabulary (the state the rules keep, budget lines, the accounts it
//! adds); `checks` holds the rules, `reports` the derivations.

use std::fmt;

use crate::entry::Posting;
use crate::fund::{Account, AccountKind, Fund, Source, Use};
use crate::ids::UnitId;
use crate::time::Period;

/// The first byte of the state key of [`AdminState`] (`a/`).
pub const STATE_KEY_BYTE: u8 = b'a';

/// Most open items a `year_close` entry lists (the rest are counted, not named).
pub const OPEN_ITEMS_MAX: usize = 1_000;

/// The storage key of [`AdminState`].
pub fn state_key() -> Vec<u8> {
    vec![STATE_KEY_BYTE, b'/']
}

/// What the rules remember of fund administration.
#[derive(Clone, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct AdminState {
    /// The last sealed year: no event that moves money may take effect in it or before it.
    pub closed_through: Option<u16>,
    /// The fund deposit interest recorded, per fund and period (once each).
    pub deposit_interest: std::collections::BTreeSet<(Fund, Period)>,
}

/// A line of a fund's budget and final accounts: where money came from or went to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub enum BudgetLine {
    /// Personal premiums withheld by units (`F:income:personal`).
    PersonalPremiums,
    /// Central-government money: subsidies and appropriations (`F:income:central`).
    CentralSubsidy,
    /// Interest, credited to members or earned by the fund (`F:income:interest`).
    Interest,
    /// Money recovered after fraud or diversion (`F:income:recovery`).
    Recovery,
    /// Casualty benefits (`F:expense:benefit`).
    Benefits,
    /// Transfers to civilian agencies, once confirmed (`F:expense:transfer`).
    TransfersOut,
}

impl BudgetLine {
    pub const ALL: [BudgetLine; 6] = [
        BudgetLine::PersonalPremiums,
        BudgetLine::CentralSubsidy,
        BudgetLine::Interest,
        BudgetLine::Recovery,
        BudgetLine::Benefits,
        BudgetLine::TransfersOut,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BudgetLine::PersonalPremiums => "personal_premiums",
            BudgetLine::CentralSubsidy => "central_subsidy",
            BudgetLine::Interest => "interest",
            BudgetLine::Recovery => "recovery",
            BudgetLine::Benefits => "benefits",
            BudgetLine::TransfersOut => "transfers_out",
        }
    }

    /// The Chinese heading of the line, for the printable final accounts.
    pub fn title_zh(self) -> &'static str {
        match self {
            BudgetLine::PersonalPremiums => "个人缴费收入",
            BudgetLine::CentralSubsidy => "中央财政补助收入",
            BudgetLine::Interest => "利息收入",
            BudgetLine::Recovery => "追回资金收入",
            BudgetLine::Benefits => "保险金支出",
            BudgetLine::TransfersOut => "转移支出",
        }
    }

    pub fn parse(text: &str) -> Result<BudgetLine, String> {
        BudgetLine::ALL.into_iter().find(|l| l.name() == text).ok_or_else(|| {
            "expected one of personal_premiums, central_subsidy, interest, recovery, benefits, \
             transfers_out"
                .to_string()
        })
    }

    pub fn is_income(self) -> bool {
        !matches!(self, BudgetLine::Benefits | BudgetLine::TransfersOut)
    }

    /// The line an income or expense account belongs to; `None` for holdings.
    pub fn of_account(account: &Account) -> Option<BudgetLine> {
        match account.kind {
            AccountKind::Source(Source::Personal) => Some(BudgetLine::PersonalPremiums),
            AccountKind::Source(Source::Central) => Some(BudgetLine::CentralSubsidy),
            AccountKind::Source(Source::Interest) => Some(BudgetLine::Interest),
            AccountKind::Source(Source::Recovery) => Some(BudgetLine::Recovery),
            // Insurance brought in from a civilian agency (Art. 15, 22, 26) is the person's
            // own earlier contributions.
            AccountKind::Source(Source::TransferIn) => Some(BudgetLine::PersonalPremiums),
            AccountKind::Use(Use::Benefit) => Some(BudgetLine::Benefits),
            AccountKind::Use(Use::Transfer) => Some(BudgetLine::TransfersOut),
            _ => None,
        }
    }

    /// The line's money in a posting, positive for what came in (income) or went out
    /// (expenditure).
    fn amount_of(self, posting: &Posting) -> i128 {
        let fen = i128::from(posting.amount.0);
        if self.is_income() { -fen } else { fen }
    }
}

impl fmt::Display for BudgetLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a calendar year written as a JSON string, `"2025"`.
pub fn parse_year(text: &str) -> Result<u16, String> {
    let ok = text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit());
    let year: u16 =
        text.parse().ok().filter(|_| ok).ok_or_else(|| "expected a year YYYY".to_string())?;
    if !(1949..=2199).contains(&year) {
        return Err("year outside 1949–2199".to_string());
    }
    Ok(year)
}

impl Account {
    /// What unit `unit` withheld for `period` and has not yet remitted to the fund.
    pub fn unit_receivable(fund: Fund, unit: &UnitId, period: Period) -> Self {
        Account { fund, kind: AccountKind::UnitReceivable { unit: unit.clone(), period } }
    }

    /// The counterpart of every unit receivable: the part of the fund's money that is not yet
    /// in its special bank account.
    pub fn unremitted(fund: Fund) -> Self {
        Account { fund, kind: AccountKind::Unremitted }
    }
}

mod checks;
mod reports;
#[cfg(test)]
mod tests;

pub use checks::{
    check_bank_balance, check_budget, check_close, check_reversal, check_sealed,
    deposit_interest_postings, remittance_postings, withheld_postings,
};
pub use reports::{
    AccountsBuilder, BankBuilder, BudgetBuilder, FundAccounts, Remittance, RemittanceBuilder,
    Statement, age_months, final_accounts_json,
};
