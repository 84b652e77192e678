//! The fund administration reports (Chapters 6–7): budget against actual, units'
//! remittances, the bank reconciliation, the statement of a fund, the final accounts of a
//! closed year and the close itself. The figures come from `crate::admin`'s builders.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::admin::{
    AccountsBuilder, BankBuilder, BudgetBuilder, BudgetLine, FundAccounts, RemittanceBuilder,
    age_months,
};
use crate::entry::Entry;
use crate::event::EventBody;
use crate::fund::Fund;
use crate::ids::{BankAccountId, UnitId};
use crate::money::Fen;
use crate::time::{Date, Period};

/// A signed digest as the reports print it: the fields a transfer package carries
/// ([`crate::transfer::PackageDigest`]) and, for a digest that anchors the access log (one the
/// HTTP service signed, `junbao-digest-v2`), the log's head.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DigestDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLogHead>,
    pub head: String,
    pub public_key: String,
    pub recorded_at: String,
    pub root: String,
    pub signature: String,
    pub tree_size: u64,
}

/// The access log's head a digest anchors: the SHA-256 of its last line and its lines.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccessLogHead {
    pub head: String,
    pub lines: u64,
}

/// One fund's accounts over a period: opening, income and expenditure by line (keyed by the
/// line's name), their totals, closing.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FundAccountsDoc {
    pub closing: Fen,
    pub expenditure: BTreeMap<&'static str, Fen>,
    pub expenditure_total: Fen,
    pub fund: Fund,
    pub income: BTreeMap<&'static str, Fen>,
    pub income_total: Fen,
    pub opening: Fen,
}

impl FundAccountsDoc {
    pub fn of(a: &FundAccounts) -> Self {
        let mut income = BTreeMap::new();
        let mut expenditure = BTreeMap::new();
        for (line, fen) in &a.lines {
            let side = if line.is_income() { &mut income } else { &mut expenditure };
            side.insert(line.name(), *fen);
        }
        FundAccountsDoc {
            closing: a.closing,
            expenditure,
            expenditure_total: a.expenditure(),
            fund: a.fund,
            income,
            income_total: a.income(),
            opening: a.opening,
        }
    }

    /// The amount of `line` (zero when the accounts have no such line).
    pub fn line(&self, line: BudgetLine) -> Fen {
        let side = if line.is_income() { &self.income } else { &self.expenditure };
        side.get(line.name()).copied().unwrap_or(Fen::ZERO)
    }
}

/// Budget against actual for one fund and year (Art. 33–34).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct BudgetReport {
    pub as_of_seq: u64,
    pub fund: Fund,
    pub lines: Vec<BudgetReportLine>,
    pub year: u16,
}

/// One line: the latest budget amount, the actual from the journal, actual − budget.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct BudgetReportLine {
    pub actual: Fen,
    pub budget: Option<Fen>,
    /// The entry that set the budget amount.
    pub budget_seq: Option<u64>,
    pub difference: Option<Fen>,
    /// `income` or `expenditure`.
    pub kind: &'static str,
    pub line: &'static str,
    pub revisions: u32,
}

impl BudgetReport {
    /// The budget of `budget` against `accounts` (the same fund's accounts of the year).
    pub fn new(budget: &BudgetBuilder, accounts: &FundAccounts, as_of_seq: u64) -> Self {
        let lines = BudgetLine::ALL
            .into_iter()
            .map(|line| {
                let set = budget.lines.get(&line);
                let actual = accounts.line(line);
                BudgetReportLine {
                    actual,
                    budget: set.map(|(f, _, _)| *f),
                    budget_seq: set.map(|(_, seq, _)| *seq),
                    difference: set.map(|(f, _, _)| Fen(actual.0.saturating_sub(f.0))),
                    kind: if line.is_income() { "income" } else { "expenditure" },
                    line: line.name(),
                    revisions: set.map_or(0, |(_, _, r)| *r),
                }
            })
            .collect();
        BudgetReport { as_of_seq, fund: budget.fund(), lines, year: budget.year() }
    }
}

/// What units withheld, remitted and still owe (Art. 32, 45).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct RemittanceReport {
    pub as_of: Date,
    pub as_of_seq: u64,
    pub periods: Vec<RemittancePeriod>,
    pub unit: Option<UnitId>,
    pub units: Vec<RemittanceUnit>,
}

/// One unit's premiums of one fund and period.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct RemittancePeriod {
    /// Whole months the outstanding amount has been due (`null` when nothing is).
    pub age_months: Option<i64>,
    pub fund: Fund,
    pub outstanding: Fen,
    pub owed: Fen,
    pub period: Period,
    pub remitted: Fen,
    pub unit: UnitId,
}

/// One unit's totals over its funds and periods.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct RemittanceUnit {
    pub outstanding: Fen,
    pub owed: Fen,
    pub remitted: Fen,
    pub unit: UnitId,
}

impl RemittanceReport {
    /// The rows of `r` (built with value dates up to `as_of`), only those of `unit` if given.
    pub fn new(r: &RemittanceBuilder, as_of: Date, as_of_seq: u64, unit: Option<&UnitId>) -> Self {
        let mut periods = Vec::new();
        let mut units: BTreeMap<&UnitId, (i64, i64)> = BTreeMap::new();
        for ((u, fund, period), row) in &r.rows {
            if unit.is_some_and(|x| x != u) {
                continue;
            }
            let outstanding = row.outstanding();
            let t = units.entry(u).or_default();
            t.0 = t.0.saturating_add(row.owed.0);
            t.1 = t.1.saturating_add(row.remitted.0);
            periods.push(RemittancePeriod {
                age_months: (outstanding.0 != 0).then(|| age_months(*period, as_of)),
                fund: *fund,
                outstanding,
                owed: row.owed,
                period: *period,
                remitted: row.remitted,
                unit: u.clone(),
            });
        }
        let units = units
            .into_iter()
            .map(|(u, (owed, remitted))| RemittanceUnit {
                outstanding: Fen(owed.saturating_sub(remitted)),
                owed: Fen(owed),
                remitted: Fen(remitted),
                unit: u.clone(),
            })
            .collect();
        RemittanceReport { as_of, as_of_seq, periods, unit: unit.cloned(), units }
    }
}

/// The fund's money the ledger says is at the bank against the bank's statements (Art. 35).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct BankReport {
    pub as_of: Date,
    pub as_of_seq: u64,
    /// The sum of the last statements (`null` without any statement).
    pub bank: Option<Fen>,
    /// Bank − ledger (`null` without any statement).
    pub difference: Option<Fen>,
    pub fund: Fund,
    pub ledger: Fen,
    pub reconciled: bool,
    pub statements: Vec<BankStatementRow>,
}

/// The last statement of one special account.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct BankStatementRow {
    pub account: BankAccountId,
    pub balance: Fen,
    pub date: Date,
    pub reference: String,
    pub seq: u64,
}

impl BankReport {
    pub fn new(b: &BankBuilder, as_of_seq: u64) -> Self {
        let has_statement = !b.statements.is_empty();
        let difference = Fen(b.bank().0.saturating_sub(b.ledger().0));
        BankReport {
            as_of: b.as_of(),
            as_of_seq,
            bank: has_statement.then(|| b.bank()),
            difference: has_statement.then_some(difference),
            fund: b.fund(),
            ledger: b.ledger(),
            reconciled: has_statement && difference.0 == 0,
            statements: b
                .statements
                .values()
                .map(|s| BankStatementRow {
                    account: s.account.clone(),
                    balance: s.balance,
                    date: s.date,
                    reference: s.reference.clone(),
                    seq: s.seq,
                })
                .collect(),
        }
    }
}

/// Income and expenditure of one fund per line for the value dates `from..=to` (Art. 41).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct StatementOfFund {
    pub as_of_seq: u64,
    pub closing: Fen,
    pub expenditure: BTreeMap<&'static str, Fen>,
    pub expenditure_total: Fen,
    pub from: Date,
    pub fund: Fund,
    pub income: BTreeMap<&'static str, Fen>,
    pub income_total: Fen,
    pub opening: Fen,
    pub to: Date,
}

impl StatementOfFund {
    /// The statement of `fund` from `b` (built for `from..=to`).
    pub fn new(b: AccountsBuilder, fund: Fund, as_of_seq: u64) -> Self {
        let (from, to) = b.range();
        let accounts = b.finish();
        let a = accounts.iter().find(|a| a.fund == fund).map(FundAccountsDoc::of);
        let a = a.unwrap_or_else(|| FundAccountsDoc::of(&FundAccounts::empty(fund)));
        StatementOfFund {
            as_of_seq,
            closing: a.closing,
            expenditure: a.expenditure,
            expenditure_total: a.expenditure_total,
            from,
            fund,
            income: a.income,
            income_total: a.income_total,
            opening: a.opening,
            to,
        }
    }
}

/// The final accounts recorded by the close of a year, and whether the journal still gives
/// the same figures.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FinalAccounts {
    pub as_of_seq: u64,
    pub close_id: String,
    pub close_seq: u64,
    pub differences: Vec<FinalAccountsDifference>,
    /// The first digest signed at or after the close.
    pub digest: Option<DigestDoc>,
    pub funds: Vec<FundAccountsDoc>,
    pub matches_journal: bool,
    pub open_items: Vec<String>,
    /// Each fund's opening is the closing of the year before (`null` when that year was not
    /// closed).
    pub opening_equals_previous_closing: Option<bool>,
    /// RFC 3339, seconds, UTC.
    pub recorded_at: Option<String>,
    pub through_seq: u64,
    pub year: u16,
}

/// A fund whose recorded accounts differ from those the journal gives now.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FinalAccountsDifference {
    pub fund: Fund,
    pub journal: FundAccountsDoc,
    pub recorded: FundAccountsDoc,
}

impl FinalAccounts {
    /// The final accounts of the `year_close` entry `close` (`None` if it is none) against
    /// `now`, the accounts of the year from the journal; `previous`, the accounts the close of
    /// the year before recorded; `digest`, the first digest covering the close.
    pub fn new(
        close: &Entry,
        close_id: String,
        now: &[FundAccounts],
        previous: Option<&[FundAccounts]>,
        as_of_seq: u64,
        digest: Option<DigestDoc>,
    ) -> Option<Self> {
        let EventBody::YearClose { year, through_seq, funds, open_items } = &close.event.body
        else {
            return None;
        };
        let differences: Vec<FinalAccountsDifference> = funds
            .iter()
            .zip(now)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| FinalAccountsDifference {
                fund: a.fund,
                journal: FundAccountsDoc::of(b),
                recorded: FundAccountsDoc::of(a),
            })
            .collect();
        Some(FinalAccounts {
            as_of_seq,
            close_id,
            close_seq: close.seq,
            matches_journal: differences.is_empty(),
            differences,
            digest,
            funds: funds.iter().map(FundAccountsDoc::of).collect(),
            open_items: open_items.clone(),
            opening_equals_previous_closing: previous
                .map(|p| p.iter().zip(funds).all(|(before, this)| before.closing == this.opening)),
            recorded_at: chrono::DateTime::from_timestamp_micros(close.recorded_at_us)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            through_seq: *through_seq,
            year: *year,
        })
    }
}

/// What the close of a year recorded and signed.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct CloseReport {
    pub close_seq: u64,
    pub closed: u16,
    pub digest: DigestDoc,
    pub funds: Vec<FundAccountsDoc>,
    /// How many items were left open (all of them, also those the entry lists as "and N more").
    pub open_items: usize,
    pub through_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::assert_sorted_keys;

    fn digest() -> DigestDoc {
        DigestDoc {
            access_log: Some(AccessLogHead { head: "04".into(), lines: 3 }),
            head: "00".into(),
            public_key: "01".into(),
            recorded_at: "2026-01-01T00:00:00.000000Z".into(),
            root: "02".into(),
            signature: "03".into(),
            tree_size: 4,
        }
    }

    #[test]
    fn the_admin_reports_print_in_sorted_key_order() {
        let year = AccountsBuilder::year(2025);
        let accounts = AccountsBuilder::year(2025).finish();
        let budget = BudgetBuilder::new(Fund::Pension, 2025);
        let b = BudgetReport::new(&budget, &accounts[0], 9);
        assert_sorted_keys(&b);
        assert_eq!(b.lines.len(), BudgetLine::ALL.len());
        let s = StatementOfFund::new(year, Fund::Medical, 9);
        assert_sorted_keys(&s);
        let v = serde_json::to_value(&s).expect("serialises");
        assert_eq!(v["from"], "2025-01-01");
        assert_eq!(v["closing"], "0.00");
        let r = RemittanceReport::new(&RemittanceBuilder::default(), Date(0), 9, None);
        assert_sorted_keys(&r);
        let bank = BankReport::new(&BankBuilder::new(Fund::Casualty, Date(0)), 9);
        assert_sorted_keys(&bank);
        assert_eq!(
            serde_json::to_value(&bank).expect("serialises")["bank"],
            serde_json::Value::Null
        );
        let close = CloseReport {
            close_seq: 1,
            closed: 2025,
            digest: digest(),
            funds: accounts.iter().map(FundAccountsDoc::of).collect(),
            open_items: 0,
            through_seq: 0,
        };
        assert_sorted_keys(&close);
        assert_sorted_keys(&FundAccountsDoc::of(&accounts[0]));
    }

    #[test]
    fn a_digest_reads_and_prints_with_and_without_the_access_log() {
        let anchored = serde_json::json!({
            "tree_size": 4, "root": "02", "head": "00", "recorded_at": "2026-01-01T00:00:00.000000Z",
            "public_key": "01", "signature": "03", "access_log": {"lines": 3, "head": "04"},
        });
        let d: DigestDoc = serde_json::from_value(anchored.clone()).expect("a digest");
        assert_eq!(d, digest());
        assert_sorted_keys(&d);
        assert_eq!(serde_json::to_string(&d).expect("serialises"), anchored.to_string());
        let mut plain = anchored;
        plain.as_object_mut().expect("an object").remove("access_log");
        let d: DigestDoc = serde_json::from_value(plain.clone()).expect("a digest");
        assert_eq!(serde_json::to_string(&d).expect("serialises"), plain.to_string());
    }

    #[test]
    fn final_accounts_print_in_sorted_key_order_and_name_the_differences() {
        let funds = AccountsBuilder::year(2025).finish();
        let mut close = crate::report::journal::tests::an_entry();
        close.event.body = EventBody::YearClose {
            year: 2025,
            through_seq: 8,
            funds: funds.clone(),
            open_items: vec!["x".into()],
        };
        let mut now = funds.clone();
        now[1].closing = Fen(1);
        let r = FinalAccounts::new(
            &close,
            "year_close:2025".into(),
            &now,
            Some(&funds),
            9,
            Some(digest()),
        )
        .expect("a year close");
        assert!(!r.matches_journal);
        assert_eq!(r.opening_equals_previous_closing, Some(true));
        assert_eq!(r.differences.len(), 1);
        assert_sorted_keys(&r);
        assert_eq!(
            serde_json::to_value(&r).expect("serialises")["recorded_at"],
            "2023-11-14T22:13:20Z"
        );
        assert!(
            FinalAccounts::new(
                &crate::report::journal::tests::an_entry(),
                String::new(),
                &now,
                None,
                9,
                None
            )
            .is_none()
        );
    }
}
