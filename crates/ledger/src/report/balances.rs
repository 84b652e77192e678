//! Balances: the trial balance and every account now (`balance`), and every account as at a
//! value date, optionally for the members of one unit (`export balances`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::entry::Entry;
use crate::fund::{Account, Fund};
use crate::ids::MemberId;
use crate::money::Fen;
use crate::state::LedgerState;
use crate::time::Date;

/// The trial balance per fund and the balance of every account, as of a sequence number (the
/// contract's `balance --json` document).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct BalanceSheet {
    pub as_of_seq: u64,
    pub funds: Vec<FundBalances>,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FundBalances {
    /// The accounts shown, sorted by name.
    pub accounts: Vec<AccountBalance>,
    pub fund: Fund,
    /// The fund's trial balance (all its accounts, shown or not): zero in a sound ledger.
    pub total: Fen,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct AccountBalance {
    pub account: String,
    pub balance: Fen,
}

impl BalanceSheet {
    /// The balances of `state` as of `as_of_seq`, for one fund or all, and for one member's
    /// accounts or all: every account of the fund's own that was posted to, and every member
    /// account that holds money (one whose postings came back to zero is left out: its
    /// balance is the sum of its yearly sums, and a member account is not kept apart).
    pub fn of(
        state: &LedgerState,
        as_of_seq: u64,
        fund: Option<Fund>,
        member: Option<&str>,
    ) -> BalanceSheet {
        let mut funds = Vec::new();
        for f in Fund::ALL {
            if fund.is_some_and(|x| x != f) {
                continue;
            }
            let mut accounts: Vec<AccountBalance> = state
                .balances()
                .filter(|(a, b)| a.fund == f && (a.member_id().is_none() || b.0 != 0))
                .filter(|(a, _)| {
                    member.is_none_or(|m| a.member_id().is_some_and(|id| id.as_str() == m))
                })
                .map(|(a, b)| AccountBalance { account: a.to_string(), balance: b })
                .collect();
            accounts.sort_by(|a, b| (&a.account, a.balance).cmp(&(&b.account, b.balance)));
            let total: i64 = state
                .balances()
                .filter(|(a, _)| a.fund == f)
                .map(|(_, b)| b.0)
                .fold(0, i64::saturating_add);
            funds.push(FundBalances { accounts, fund: f, total: Fen(total) });
        }
        BalanceSheet { as_of_seq, funds }
    }

    /// The balance of `account` (by name), zero when it has none.
    pub fn balance(&self, account: &str) -> Fen {
        self.funds
            .iter()
            .flat_map(|f| &f.accounts)
            .find(|a| a.account == account)
            .map_or(Fen::ZERO, |a| a.balance)
    }
}

/// Every account's balance as at a value date (or now), with its member and the member's
/// unit; optionally only the members of one unit.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct BalancesAsOf {
    pub as_of: Option<Date>,
    pub as_of_seq: u64,
    pub funds: Vec<UnitFundBalances>,
    pub unit: Option<String>,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct UnitFundBalances {
    /// The accounts with a balance, sorted by name.
    pub accounts: Vec<UnitAccountBalance>,
    pub fund: Fund,
    /// The sum of the accounts listed (without a unit filter: the fund's trial balance, zero).
    pub total: Fen,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct UnitAccountBalance {
    pub account: String,
    pub balance: Fen,
    pub member: Option<MemberId>,
    pub unit: Option<String>,
}

/// Sums postings into [`BalancesAsOf`]: from entries up to a value date (`add`), or from the
/// materialised balances (`current`).
#[derive(Debug, Default)]
pub struct BalancesAsOfBuilder {
    as_of: Option<Date>,
    sums: BTreeMap<String, (Fund, Option<MemberId>, i64)>,
}

impl BalancesAsOfBuilder {
    /// Balances as at the value date `as_of`: entries with a later value date are left out.
    pub fn as_of(as_of: Date) -> Self {
        BalancesAsOfBuilder { as_of: Some(as_of), sums: BTreeMap::new() }
    }

    /// The balances now, as materialised in `state`.
    pub fn current(state: &LedgerState) -> Self {
        let mut b = BalancesAsOfBuilder::default();
        for (account, fen) in state.balances() {
            b.sums.insert(account.to_string(), (account.fund, account.member_id().cloned(), fen.0));
        }
        b
    }

    pub fn add(&mut self, entry: &Entry) {
        if self.as_of.is_some_and(|d| entry.value_date > d) {
            return;
        }
        for p in &entry.postings {
            self.post(&p.account, p.amount);
        }
    }

    fn post(&mut self, account: &Account, amount: Fen) {
        let s = self.sums.entry(account.to_string()).or_insert((
            account.fund,
            account.member_id().cloned(),
            0,
        ));
        s.2 = s.2.saturating_add(amount.0);
    }

    /// The document as of `as_of_seq`, members' units from `state`, only the members of `unit`
    /// if given. Accounts with a zero balance are left out.
    pub fn finish(self, as_of_seq: u64, state: &LedgerState, unit: Option<&str>) -> BalancesAsOf {
        let mut funds = Vec::new();
        for f in Fund::ALL {
            let mut total = 0i64;
            let mut accounts = Vec::new();
            for (account, (fund, member, fen)) in &self.sums {
                if *fund != f || *fen == 0 {
                    continue;
                }
                let member_unit = member
                    .as_ref()
                    .and_then(|m| state.members.get(m))
                    .map(|m| m.unit.as_str().to_string());
                if let Some(u) = unit
                    && member_unit.as_deref() != Some(u)
                {
                    continue;
                }
                total = total.saturating_add(*fen);
                accounts.push(UnitAccountBalance {
                    account: account.clone(),
                    balance: Fen(*fen),
                    member: member.clone(),
                    unit: member_unit,
                });
            }
            funds.push(UnitFundBalances { accounts, fund: f, total: Fen(total) });
        }
        BalancesAsOf { as_of: self.as_of, as_of_seq, funds, unit: unit.map(str::to_string) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::assert_sorted_keys;

    #[test]
    fn balances_print_in_sorted_key_order() {
        let state = LedgerState::default();
        let sheet = BalanceSheet::of(&state, 4, None, None);
        assert_sorted_keys(&sheet);
        assert_eq!(serde_json::to_value(&sheet).expect("serialises")["funds"][0]["total"], "0.00");
        let b = BalancesAsOfBuilder::as_of(Date(0)).finish(4, &state, Some("U1"));
        assert_sorted_keys(&b);
        let v = serde_json::to_value(&b).expect("serialises");
        assert_eq!(v["as_of"], "1970-01-01");
        assert_eq!(v["unit"], "U1");
    }

    /// The balance sheet lists every account of the fund's own that was posted to, at zero
    /// too, and the member accounts that hold money: one whose postings came back to zero
    /// (within a year or over two) is not listed, and reads as zero by name.
    #[test]
    fn the_sheet_lists_member_accounts_that_hold_money() {
        use crate::fund::{Account, Fund, Holding, Source};
        let mut state = LedgerState::default();
        let m = MemberId::parse("M1").expect("valid id");
        let held = Account::member(Fund::Medical, &m, None, Holding::Personal);
        let emptied = Account::member(Fund::Medical, &m, None, Holding::State);
        let pool = Account::pool(Fund::Medical);
        let income = Account::source(Fund::Medical, Source::Interest);
        for (account, year, fen) in [
            (&held, 2024, 100),
            (&emptied, 2024, 50),
            (&emptied, 2025, -50),
            (&pool, 2024, -100),
            (&income, 2025, 5),
            (&income, 2025, -5),
        ] {
            assert!(state.add_posting(account, year, Fen(fen)));
        }
        let sheet = BalanceSheet::of(&state, 6, Some(Fund::Medical), None);
        let listed: Vec<(&str, i64)> =
            sheet.funds[0].accounts.iter().map(|a| (a.account.as_str(), a.balance.0)).collect();
        let want = [
            ("medical:income:interest", 0),
            ("medical:member:M1:personal", 100),
            ("medical:pool", -100),
        ];
        assert_eq!(listed, want);
        assert_eq!(sheet.funds[0].total, Fen(0));
        assert_eq!(sheet.balance(&emptied.to_string()), Fen(0));
    }

    #[test]
    fn the_rows_print_in_sorted_key_order() {
        assert_sorted_keys(&AccountBalance { account: "a".into(), balance: Fen(1) });
        assert_sorted_keys(&UnitAccountBalance {
            account: "a".into(),
            balance: Fen(1),
            member: Some(MemberId::parse("M1").expect("valid id")),
            unit: Some("U1".into()),
        });
    }
}
