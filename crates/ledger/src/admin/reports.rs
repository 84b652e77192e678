//! The derivations the reports are made of, recomputed from the journal entry by entry:
//! final accounts and statements of a fund, budgets, units' remittances, bank statements.

use super::BudgetLine;
use crate::entry::Entry;
use crate::event::EventBody;
use crate::fund::{AccountKind, Fund};
use crate::ids::{BankAccountId, UnitId};
use crate::money::Fen;
use crate::time::{Date, Period};
use std::collections::BTreeMap;

/// Whether an account holds the fund's money (as opposed to saying where it came from or went).
fn is_holding(kind: &AccountKind) -> bool {
    !matches!(kind, AccountKind::Source(_) | AccountKind::Use(_))
}

/// One fund's accounts over a period: its money at the start, what came in and went out per
/// line, its money at the end. `closing = opening + income − expenditure`.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct FundAccounts {
    pub fund: Fund,
    pub opening: Fen,
    /// Every line, in [`BudgetLine::ALL`] order, with the money in (income) or out
    /// (expenditure), positive in the usual direction.
    pub lines: Vec<(BudgetLine, Fen)>,
    pub closing: Fen,
}

impl FundAccounts {
    /// A fund that nothing came into or went out of.
    pub fn empty(fund: Fund) -> Self {
        FundAccounts {
            fund,
            opening: Fen::ZERO,
            lines: BudgetLine::ALL.into_iter().map(|l| (l, Fen::ZERO)).collect(),
            closing: Fen::ZERO,
        }
    }

    pub fn line(&self, line: BudgetLine) -> Fen {
        self.lines.iter().find(|(l, _)| *l == line).map_or(Fen::ZERO, |(_, f)| *f)
    }

    pub fn income(&self) -> Fen {
        Fen(self.lines.iter().filter(|(l, _)| l.is_income()).map(|(_, f)| f.0).sum())
    }

    pub fn expenditure(&self) -> Fen {
        Fen(self.lines.iter().filter(|(l, _)| !l.is_income()).map(|(_, f)| f.0).sum())
    }
}

/// Builds every fund's [`FundAccounts`] for the value dates `from..=to`, one entry at a time.
#[derive(Debug)]
pub struct AccountsBuilder {
    from: Date,
    to: Date,
    opening: BTreeMap<Fund, i128>,
    closing: BTreeMap<Fund, i128>,
    lines: BTreeMap<(Fund, BudgetLine), i128>,
}

impl AccountsBuilder {
    pub fn new(from: Date, to: Date) -> Self {
        AccountsBuilder {
            from,
            to,
            opening: BTreeMap::new(),
            closing: BTreeMap::new(),
            lines: BTreeMap::new(),
        }
    }

    /// For a calendar year.
    pub fn year(year: u16) -> Self {
        let y = i32::from(year);
        AccountsBuilder::new(
            Date::from_ymd(y, 1, 1).expect("a parsed year has a 1 January"),
            Date::from_ymd(y, 12, 31).expect("a parsed year has a 31 December"),
        )
    }

    pub fn add(&mut self, entry: &Entry) {
        if entry.value_date > self.to {
            return;
        }
        let before = entry.value_date < self.from;
        for p in &entry.postings {
            let fund = p.account.fund;
            if is_holding(&p.account.kind) {
                *self.closing.entry(fund).or_default() += i128::from(p.amount.0);
                if before {
                    *self.opening.entry(fund).or_default() += i128::from(p.amount.0);
                }
            } else if !before && let Some(line) = BudgetLine::of_account(&p.account) {
                *self.lines.entry((fund, line)).or_default() += line.amount_of(p);
            }
        }
    }

    /// The value dates the accounts cover, both inclusive.
    pub fn range(&self) -> (Date, Date) {
        (self.from, self.to)
    }

    pub fn finish(self) -> Vec<FundAccounts> {
        let fen = |v: i128| Fen(i64::try_from(v).expect("a fund's money fits i64 fen"));
        Fund::ALL
            .into_iter()
            .map(|fund| {
                let accounts = FundAccounts {
                    fund,
                    opening: fen(self.opening.get(&fund).copied().unwrap_or(0)),
                    lines: BudgetLine::ALL
                        .into_iter()
                        .map(|l| (l, fen(self.lines.get(&(fund, l)).copied().unwrap_or(0))))
                        .collect(),
                    closing: fen(self.closing.get(&fund).copied().unwrap_or(0)),
                };
                // Every entry balances inside its fund, so the holdings move by exactly the
                // income less the expenditure.
                assert_eq!(
                    i128::from(accounts.closing.0),
                    i128::from(accounts.opening.0) + i128::from(accounts.income().0)
                        - i128::from(accounts.expenditure().0),
                    "final accounts of {fund} balance"
                );
                accounts
            })
            .collect()
    }
}

/// Final accounts in JSON: per fund, opening, income and expenditure by line, closing
/// ([`crate::report::FundAccountsDoc`]).
pub fn final_accounts_json(funds: &[FundAccounts]) -> serde_json::Value {
    let docs: Vec<_> = funds.iter().map(crate::report::FundAccountsDoc::of).collect();
    serde_json::to_value(docs).expect("amounts, names and maps with string keys serialise")
}

/// The budget of one fund and year: the latest amount of each line (a revision supersedes).
#[derive(Debug)]
pub struct BudgetBuilder {
    fund: Fund,
    year: u16,
    /// Line → (amount, seq of the event that set it, revisions so far).
    pub lines: BTreeMap<BudgetLine, (Fen, u64, u32)>,
}

impl BudgetBuilder {
    pub fn new(fund: Fund, year: u16) -> Self {
        BudgetBuilder { fund, year, lines: BTreeMap::new() }
    }

    pub fn fund(&self) -> Fund {
        self.fund
    }

    pub fn year(&self) -> u16 {
        self.year
    }

    pub fn add(&mut self, entry: &Entry) {
        if let EventBody::Budget { fund, year, line, amount } = &entry.event.body
            && *fund == self.fund
            && *year == self.year
        {
            let revisions = self.lines.get(line).map_or(0, |(_, _, r)| r + 1);
            self.lines.insert(*line, (*amount, entry.seq, revisions));
        }
    }
}

/// One unit's premiums of one fund and period: withheld, remitted, still owed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Remittance {
    pub owed: Fen,
    pub remitted: Fen,
}

impl Remittance {
    pub fn outstanding(&self) -> Fen {
        Fen(self.owed.0 - self.remitted.0)
    }
}

/// Whole months a period's premiums have been due on `as_of`: 0 in the period's own month.
pub fn age_months(period: Period, as_of: Date) -> i64 {
    let p = as_of.period();
    (i64::from(p.year) * 12 + i64::from(p.month))
        - (i64::from(period.year) * 12 + i64::from(period.month))
}

/// Units' receivables per (unit, fund, period), from entries with value dates up to `as_of`.
#[derive(Debug, Default)]
pub struct RemittanceBuilder {
    pub as_of: Option<Date>,
    pub rows: BTreeMap<(UnitId, Fund, Period), Remittance>,
}

impl RemittanceBuilder {
    pub fn add(&mut self, entry: &Entry) {
        if self.as_of.is_some_and(|d| entry.value_date > d) {
            return;
        }
        for p in &entry.postings {
            if let AccountKind::UnitReceivable { unit, period } = &p.account.kind {
                let row = self.rows.entry((unit.clone(), p.account.fund, *period)).or_default();
                // A remittance credits the receivable; reversing one debits it again. A premium
                // debits it; reversing one credits it.
                let settles = match &entry.event.body {
                    EventBody::Remittance { .. } => true,
                    EventBody::Reversal { .. } => p.amount.0 > 0,
                    _ => false,
                };
                if settles {
                    row.remitted = Fen(row.remitted.0 - p.amount.0);
                } else {
                    row.owed = Fen(row.owed.0 + p.amount.0);
                }
            }
        }
    }
}

/// A bank statement as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub account: BankAccountId,
    pub date: Date,
    pub balance: Fen,
    pub reference: String,
    pub seq: u64,
}

/// The fund's money the bank should hold on `as_of`, and the last statement of each of its
/// bank accounts up to that date.
#[derive(Debug)]
pub struct BankBuilder {
    fund: Fund,
    as_of: Date,
    /// Holdings attributed to members, the pool and agencies, less what units still owe.
    at_bank: i128,
    pub statements: BTreeMap<BankAccountId, Statement>,
}

impl BankBuilder {
    pub fn new(fund: Fund, as_of: Date) -> Self {
        BankBuilder { fund, as_of, at_bank: 0, statements: BTreeMap::new() }
    }

    pub fn fund(&self) -> Fund {
        self.fund
    }

    pub fn as_of(&self) -> Date {
        self.as_of
    }

    pub fn add(&mut self, entry: &Entry) {
        if entry.value_date > self.as_of {
            return;
        }
        for p in entry.postings.iter().filter(|p| p.account.fund == self.fund) {
            // The receivables are not at the bank; their counterpart `unremitted` carries them
            // with the opposite sign, so adding it takes them out.
            if !matches!(
                p.account.kind,
                AccountKind::Source(_) | AccountKind::Use(_) | AccountKind::UnitReceivable { .. }
            ) {
                self.at_bank += i128::from(p.amount.0);
            }
        }
        if let EventBody::BankStatement { fund, account, date, balance, reference } =
            &entry.event.body
            && *fund == self.fund
            && *date <= self.as_of
        {
            let later = self.statements.get(account).is_none_or(|s| s.date <= *date);
            if later {
                self.statements.insert(
                    account.clone(),
                    Statement {
                        account: account.clone(),
                        date: *date,
                        balance: *balance,
                        reference: reference.clone(),
                        seq: entry.seq,
                    },
                );
            }
        }
    }

    /// The ledger's figure: what the fund's special accounts should hold.
    pub fn ledger(&self) -> Fen {
        Fen(i64::try_from(self.at_bank).expect("a fund's money fits i64 fen"))
    }

    /// What the bank says: the sum of each account's last statement.
    pub fn bank(&self) -> Fen {
        Fen(self.statements.values().map(|s| s.balance.0).sum())
    }
}
