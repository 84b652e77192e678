//! Fund administration (Chapters 6–7 of the law): budgets (Art. 33–34), premiums withheld by
//! units and remitted (Art. 32, 45), the special bank accounts (Art. 35), the fund's own
//! deposit interest (Art. 31), sealed years and their final accounts (Art. 34), and the
//! per-period statements supervision needs (Art. 41).
//!
//! Pure: the rules these events obey and the derivations the reports are made of. The chart
//! of accounts it adds is in `docs/ACCOUNTS.md` ("Units' remittances").

use std::collections::BTreeMap;
use std::fmt;

use crate::entry::{Entry, Posting};
use crate::event::{EventBody, EventError};
use crate::fund::{Account, AccountKind, Fund, Source, Use};
use crate::ids::{BankAccountId, UnitId};
use crate::money::Fen;
use crate::time::{Date, Period};

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

/// The extra postings of a premium withheld by `unit` (Art. 32): the unit owes it to the fund
/// until it remits it. They go into the contribution's own entry, so a premium and the
/// receivable it creates are one entry, balanced in one fund.
pub fn withheld_postings(fund: Fund, unit: &UnitId, period: Period, amount: Fen) -> [Posting; 2] {
    [
        Posting { account: Account::unit_receivable(fund, unit, period), amount },
        Posting { account: Account::unremitted(fund), amount: Fen(-amount.0) },
    ]
}

/// A `remittance`: the unit hands over what it withheld for `period`. `outstanding` is what
/// the unit still owes for that period; more is refused (Art. 32, 45).
pub fn remittance_postings(
    outstanding: Fen,
    fund: Fund,
    unit: &UnitId,
    period: Period,
    amount: Fen,
) -> Result<Vec<Posting>, EventError> {
    if amount > outstanding {
        return Err(EventError::field(
            "amount",
            format!(
                "Art. 32: unit {unit} owes the {fund} fund {outstanding} for {period}; a \
                 remittance of {amount} exceeds it"
            ),
        ));
    }
    Ok(vec![
        Posting { account: Account::unremitted(fund), amount },
        Posting { account: Account::unit_receivable(fund, unit, period), amount: Fen(-amount.0) },
    ])
}

/// A `deposit_interest`: interest the special bank account earned, fund income not credited to
/// any member (Art. 31). Once per fund and period: a correction reverses the first one.
pub fn deposit_interest_postings(
    state: &AdminState,
    fund: Fund,
    period: Period,
    amount: Fen,
) -> Result<Vec<Posting>, EventError> {
    if state.deposit_interest.contains(&(fund, period)) {
        return Err(EventError::field(
            "period",
            format!(
                "Art. 31: the {fund} fund's deposit interest for {period} is already recorded; \
                 reverse it to correct it"
            ),
        ));
    }
    Ok(deposit_interest_postings_unchecked(fund, amount))
}

fn deposit_interest_postings_unchecked(fund: Fund, amount: Fen) -> Vec<Posting> {
    vec![
        Posting { account: Account::pool(fund), amount },
        Posting { account: Account::source(fund, Source::Interest), amount: Fen(-amount.0) },
    ]
}

/// Whether an event moves money (and so may not take effect in a sealed year).
fn moves_money(body: &EventBody) -> bool {
    !matches!(
        body,
        EventBody::Enroll { .. }
            | EventBody::Death { .. }
            | EventBody::CategoryChange { .. }
            | EventBody::PayChange { .. }
            | EventBody::UnitChange { .. }
            | EventBody::Suspend { .. }
            | EventBody::Resume { .. }
            | EventBody::Standard { .. }
            | EventBody::Backpay { .. }
            | EventBody::Budget { .. }
            | EventBody::BankStatement { .. }
    )
}

/// Refuses an event that would move money in a sealed year: the year's final accounts are
/// published; a correction goes into the open year, referencing the closed one (Art. 34).
pub fn check_sealed(
    state: &AdminState,
    body: &EventBody,
    value_date: Date,
) -> Result<(), EventError> {
    let Some(closed) = state.closed_through else { return Ok(()) };
    if !moves_money(body) || value_date.period().year > closed {
        return Ok(());
    }
    let field = if matches!(body, EventBody::YearClose { .. }) { "year" } else { "value_date" };
    Err(EventError::field(
        field,
        format!(
            "Art. 34: value date {value_date} is in {}, which is closed (year_close of {closed}); \
             post the correction in the open year with a value_date after {closed}-12-31 and a \
             memo naming the closed entry",
            value_date.period().year
        ),
    ))
}

/// A budget for a closed year is refused: its final accounts are drawn.
pub fn check_budget(state: &AdminState, year: u16) -> Result<(), EventError> {
    match state.closed_through {
        Some(closed) if year <= closed => Err(EventError::field(
            "year",
            format!("Art. 34: {year} is closed; its final accounts are drawn"),
        )),
        _ => Ok(()),
    }
}

/// A `bank_statement` balance may be zero but not negative (a deposit account).
pub fn check_bank_balance(balance: Fen) -> Result<(), EventError> {
    if balance.0 < 0 {
        return Err(EventError::field("balance", "a deposit account's balance is not negative"));
    }
    Ok(())
}

/// The checks of a `year_close` the rules can make: years close in order, after they end, and
/// on the head the accounts were drawn from (`through_seq` is the last entry they cover, so
/// nothing can slip in between drawing them and sealing the year).
pub fn check_close(
    state: &AdminState,
    year: u16,
    through_seq: u64,
    next_seq: u64,
    value_date: Date,
) -> Result<(), EventError> {
    if let Some(closed) = state.closed_through
        && year <= closed
    {
        return Err(EventError::field("year", format!("{year} is already closed")));
    }
    if value_date.period().year <= year {
        return Err(EventError::field(
            "year",
            format!("{year} has not ended on {value_date}; a year is closed after 31 December"),
        ));
    }
    if through_seq + 1 != next_seq {
        return Err(EventError::field(
            "through_seq",
            format!(
                "the accounts were drawn through entry {through_seq} but the ledger is at entry {}; \
                 draw them again",
                next_seq - 1
            ),
        ));
    }
    Ok(())
}

/// Refuses the reversal of a premium its unit has already remitted (the receivable would go
/// negative): reverse the remittance first, or post the correction as a refund.
pub fn check_reversal(target: &Entry, balance: &dyn Fn(&Account) -> Fen) -> Result<(), EventError> {
    for p in &target.postings {
        if let AccountKind::UnitReceivable { unit, period } = &p.account.kind
            && p.amount.0 > 0
        {
            let owed = balance(&p.account);
            if owed < p.amount {
                return Err(EventError::field(
                    "of",
                    format!(
                        "unit {unit} has already remitted the {} premium for {period} (it owes \
                         {owed} of {}); reverse the remittance first",
                        p.account.fund, p.amount
                    ),
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Derivations: what the reports are made of, recomputed from the journal
// ---------------------------------------------------------------------------------------------

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

/// Final accounts in JSON: per fund, opening, income and expenditure by line, closing.
pub fn final_accounts_json(funds: &[FundAccounts]) -> serde_json::Value {
    use serde_json::{Map, json};
    let list: Vec<_> = funds
        .iter()
        .map(|a| {
            let mut income = Map::new();
            let mut expenditure = Map::new();
            for (line, fen) in &a.lines {
                let side = if line.is_income() { &mut income } else { &mut expenditure };
                side.insert(line.name().to_string(), json!(fen.to_string()));
            }
            json!({
                "fund": a.fund.name(),
                "opening": a.opening.to_string(),
                "income": income,
                "income_total": a.income().to_string(),
                "expenditure": expenditure,
                "expenditure_total": a.expenditure().to_string(),
                "closing": a.closing.to_string(),
            })
        })
        .collect();
    serde_json::Value::Array(list)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{ENTRY_FORMAT_VERSION, check_postings};
    use crate::event::{Event, parse_event_line};
    use crate::fund::Holding;
    use crate::ids::{EventId, MemberId};

    fn entry(seq: u64, date: &str, body: EventBody, postings: Vec<Posting>) -> Entry {
        check_postings(&postings).unwrap();
        Entry {
            format: ENTRY_FORMAT_VERSION,
            seq,
            recorded_at_us: 0,
            value_date: Date::parse(date).unwrap(),
            event: Event {
                id: EventId::parse(&format!("e{seq}")).unwrap(),
                value_date: None,
                memo: None,
                body,
            },
            postings,
        }
    }

    fn period(p: &str) -> Period {
        Period::parse(p).unwrap()
    }

    fn premium(seq: u64, date: &str, p: &str, fen: i64) -> Entry {
        let unit = UnitId::parse("U1").unwrap();
        let member = MemberId::parse("M1").unwrap();
        let mut postings = vec![
            Posting {
                account: Account::member(Fund::Medical, &member, None, Holding::Personal),
                amount: Fen(fen),
            },
            Posting {
                account: Account::source(Fund::Medical, Source::Personal),
                amount: Fen(-fen),
            },
        ];
        postings.extend(withheld_postings(Fund::Medical, &unit, period(p), Fen(fen)));
        let body = EventBody::Contribution {
            member,
            fund: Fund::Medical,
            period: period(p),
            amount: Fen(fen),
            unit,
            part: None,
        };
        entry(seq, date, body, postings)
    }

    fn remit(seq: u64, date: &str, p: &str, fen: i64, outstanding: i64) -> Entry {
        let unit = UnitId::parse("U1").unwrap();
        let postings =
            remittance_postings(Fen(outstanding), Fund::Medical, &unit, period(p), Fen(fen))
                .unwrap();
        let body = EventBody::Remittance {
            unit,
            fund: Fund::Medical,
            amount: Fen(fen),
            period: period(p),
            reference: "bank slip".into(),
        };
        entry(seq, date, body, postings)
    }

    #[test]
    fn a_remittance_over_what_is_owed_is_refused() {
        let unit = UnitId::parse("U1").unwrap();
        let err =
            remittance_postings(Fen(9_200), Fund::Medical, &unit, period("2025-03"), Fen(9_201))
                .unwrap_err();
        assert_eq!(err.field, Some("amount"));
        assert!(err.message.contains("owes the medical fund 92.00 for 2025-03"), "{err}");
        assert!(
            remittance_postings(Fen(9_200), Fund::Medical, &unit, period("2025-03"), Fen(9_200))
                .is_ok()
        );
    }

    #[test]
    fn a_year_of_premiums_with_december_unremitted_is_owed_and_aged() {
        let mut r = RemittanceBuilder {
            as_of: Some(Date::parse("2026-02-15").unwrap()),
            ..Default::default()
        };
        let mut seq = 1;
        for m in 1..=12 {
            let p = format!("2025-{m:02}");
            r.add(&premium(seq, &format!("{p}-20"), &p, 9_200));
            seq += 1;
            if m < 12 {
                r.add(&remit(seq, &format!("{p}-28"), &p, 9_200, 9_200));
                seq += 1;
            }
        }
        let open: Vec<_> = r.rows.iter().filter(|(_, v)| v.outstanding().0 != 0).collect();
        assert_eq!(open.len(), 1);
        let ((unit, fund, p), row) = open[0];
        assert_eq!(
            (unit.as_str(), *fund, p.to_string().as_str()),
            ("U1", Fund::Medical, "2025-12")
        );
        assert_eq!(row.outstanding(), Fen(9_200));
        assert_eq!(age_months(*p, Date::parse("2026-02-15").unwrap()), 2);
        assert_eq!(age_months(period("2025-03"), Date::parse("2025-03-31").unwrap()), 0);
    }

    #[test]
    fn final_accounts_add_up_per_line_and_leave_out_other_years() {
        let mut b = AccountsBuilder::year(2025);
        let approp = |seq, date: &str, fen| {
            let body = EventBody::Appropriation { fund: Fund::Medical, amount: Fen(fen) };
            entry(
                seq,
                date,
                body,
                vec![
                    Posting { account: Account::pool(Fund::Medical), amount: Fen(fen) },
                    Posting {
                        account: Account::source(Fund::Medical, Source::Central),
                        amount: Fen(-fen),
                    },
                ],
            )
        };
        b.add(&approp(1, "2024-06-01", 100_000));
        b.add(&premium(2, "2025-03-20", "2025-03", 9_200));
        b.add(&remit(3, "2025-03-28", "2025-03", 9_200, 9_200));
        b.add(&approp(4, "2025-07-01", 50_000));
        let interest = EventBody::DepositInterest {
            fund: Fund::Medical,
            amount: Fen(321),
            period: period("2025-12"),
        };
        b.add(&entry(
            5,
            "2025-12-31",
            interest,
            deposit_interest_postings_unchecked(Fund::Medical, Fen(321)),
        ));
        b.add(&approp(6, "2026-01-02", 7));
        let medical = b.finish().into_iter().find(|a| a.fund == Fund::Medical).unwrap();
        assert_eq!(medical.opening, Fen(100_000));
        assert_eq!(medical.line(BudgetLine::PersonalPremiums), Fen(9_200));
        assert_eq!(medical.line(BudgetLine::CentralSubsidy), Fen(50_000));
        assert_eq!(medical.line(BudgetLine::Interest), Fen(321));
        assert_eq!(medical.expenditure(), Fen::ZERO);
        assert_eq!(medical.closing, Fen(100_000 + 9_200 + 50_000 + 321));
    }

    #[test]
    fn the_bank_should_hold_the_funds_money_less_what_units_still_owe() {
        let mut b = BankBuilder::new(Fund::Medical, Date::parse("2025-05-31").unwrap());
        b.add(&premium(1, "2025-03-20", "2025-03", 9_200));
        b.add(&premium(2, "2025-04-20", "2025-04", 9_200));
        b.add(&remit(3, "2025-03-28", "2025-03", 9_200, 9_200));
        let statement = EventBody::BankStatement {
            fund: Fund::Medical,
            account: BankAccountId::parse("ICBC-001").unwrap(),
            date: Date::parse("2025-05-31").unwrap(),
            balance: Fen(9_199),
            reference: "May statement".into(),
        };
        b.add(&entry(4, "2025-05-31", statement, Vec::new()));
        assert_eq!(b.ledger(), Fen(9_200));
        assert_eq!(b.bank(), Fen(9_199));
    }

    #[test]
    fn a_closed_year_refuses_money_but_not_enrolment() {
        let state = AdminState { closed_through: Some(2025), ..AdminState::default() };
        let contribution = parse_event_line(
            r#"{"id":"c","type":"contribution","member":"M1","fund":"medical","period":"2025-11","amount":"92.00","unit":"U1"}"#,
        )
        .unwrap();
        let err = check_sealed(&state, &contribution.body, Date::parse("2025-12-01").unwrap())
            .unwrap_err();
        assert!(err.message.contains("2025, which is closed"), "{err}");
        assert!(
            check_sealed(&state, &contribution.body, Date::parse("2026-01-05").unwrap()).is_ok()
        );
        let enroll = parse_event_line(
            r#"{"id":"e","type":"enroll","member":"M1","category":"officer","unit":"U1","enlisted_on":"2020-01-01","monthly_pay":"9200.00"}"#,
        )
        .unwrap();
        assert!(check_sealed(&state, &enroll.body, Date::parse("2020-01-01").unwrap()).is_ok());
    }

    #[test]
    fn a_year_closes_once_after_it_ends_on_the_head_it_was_drawn_from() {
        let open = AdminState::default();
        let jan = Date::parse("2026-01-05").unwrap();
        assert!(check_close(&open, 2025, 41, 42, jan).is_ok());
        assert!(check_close(&open, 2025, 40, 42, jan).unwrap_err().message.contains("draw them"));
        assert!(check_close(&open, 2026, 41, 42, jan).unwrap_err().message.contains("not ended"));
        let closed = AdminState { closed_through: Some(2025), ..AdminState::default() };
        assert!(check_close(&closed, 2025, 41, 42, jan).unwrap_err().message.contains("already"));
    }

    #[test]
    fn budget_events_parse_and_a_line_must_be_known() {
        let ok = parse_event_line(
            r#"{"id":"b","type":"budget","fund":"casualty","year":"2025","line":"benefits","amount":"1000000.00"}"#,
        )
        .unwrap();
        assert!(matches!(
            ok.body,
            EventBody::Budget { year: 2025, line: BudgetLine::Benefits, .. }
        ));
        let bad = parse_event_line(
            r#"{"id":"b","type":"budget","fund":"casualty","year":"2025","line":"parties","amount":"1"}"#,
        )
        .unwrap_err();
        assert_eq!(bad.field, Some("line"));
        let close =
            parse_event_line(r#"{"id":"x","type":"year_close","year":"2025"}"#).unwrap_err();
        assert!(close.message.contains("junbao close"), "{close}");
    }
}

#[cfg(test)]
mod rules {
    //! The administration events through the rules: a batch on a ledger state.
    use crate::entry::CHAIN_GENESIS;
    use crate::event::{Event, EventBody, parse_event_line};
    use crate::rules::NoLookup;
    use crate::state::LedgerState;

    /// 2026-02-01T00:00:00Z.
    const NOW_US: i64 = 1_769_904_000_000_000;

    fn apply(state: &mut LedgerState, seq: &mut u64, event: Event) -> Result<(), String> {
        let mut batch = state.begin(*seq, if *seq == 0 { CHAIN_GENESIS } else { [1; 32] });
        batch.apply(event, NOW_US, &NoLookup).map_err(|e| e.to_string())?;
        let prepared = batch.finish();
        *seq = prepared.head_seq;
        state.commit(prepared.changes);
        Ok(())
    }

    fn line(state: &mut LedgerState, seq: &mut u64, text: &str) -> Result<(), String> {
        apply(state, seq, parse_event_line(text).expect("a valid event line"))
    }

    fn ledger() -> (LedgerState, u64) {
        let (mut state, mut seq) = (LedgerState::default(), 0);
        for text in [
            r#"{"id":"s","type":"standard","name":"medical_personal_rate","value":"1","effective_from":"2012-07-01"}"#,
            r#"{"id":"e","type":"enroll","member":"M1","category":"officer","unit":"U1","enlisted_on":"2020-01-01","monthly_pay":"9200.00"}"#,
            r#"{"id":"c","type":"contribution","member":"M1","fund":"medical","period":"2025-11","amount":"92.00","unit":"U1","value_date":"2025-11-15"}"#,
        ] {
            line(&mut state, &mut seq, text).unwrap();
        }
        (state, seq)
    }

    fn close(year: u16, through_seq: u64) -> Event {
        Event {
            id: crate::ids::EventId::parse(&format!("year_close:{year}")).unwrap(),
            value_date: None,
            memo: None,
            body: EventBody::YearClose {
                year,
                through_seq,
                funds: Vec::new(),
                open_items: Vec::new(),
            },
        }
    }

    #[test]
    fn a_withheld_premium_is_owed_by_its_unit_until_remitted() {
        let (mut state, mut seq) = ledger();
        let receivable = crate::fund::Account::unit_receivable(
            crate::fund::Fund::Medical,
            &crate::ids::UnitId::parse("U1").unwrap(),
            crate::time::Period::parse("2025-11").unwrap(),
        );
        assert_eq!(state.balance(&receivable), crate::money::Fen(9_200));
        let remit = r#"{"id":"r","type":"remittance","unit":"U1","fund":"medical","amount":"92.00","period":"2025-11","reference":"slip","value_date":"2025-12-10"}"#;
        line(&mut state, &mut seq, remit).unwrap();
        assert_eq!(state.balance(&receivable), crate::money::Fen::ZERO);
        assert!(state.trial_balance().values().all(|t| *t == 0));
        let again = remit.replace("\"r\"", "\"r2\"");
        assert!(
            line(&mut state, &mut seq, &again).unwrap_err().contains("owes the medical fund 0.00")
        );
    }

    #[test]
    fn a_close_seals_its_year_for_money_and_only_on_the_head_it_covers() {
        let (mut state, mut seq) = ledger();
        assert!(
            {
                let c = close(2025, seq - 1);
                apply(&mut state, &mut seq, c)
            }
            .unwrap_err()
            .contains("draw them again")
        );
        {
            let c = close(2025, seq);
            apply(&mut state, &mut seq, c)
        }
        .unwrap();
        assert_eq!(state.admin.closed_through, Some(2025));
        let late = r#"{"id":"c2","type":"contribution","member":"M1","fund":"medical","period":"2025-12","amount":"92.00","unit":"U1","value_date":"2025-12-15"}"#;
        assert!(line(&mut state, &mut seq, late).unwrap_err().contains("2025, which is closed"));
        line(&mut state, &mut seq, &late.replace("2025-12-15", "2026-01-15")).unwrap();
        let budget = r#"{"id":"b","type":"budget","fund":"medical","year":"2025","line":"interest","amount":"1.00"}"#;
        assert!(line(&mut state, &mut seq, budget).unwrap_err().contains("closed"));
        assert!(
            {
                let c = close(2025, seq);
                apply(&mut state, &mut seq, c)
            }
            .unwrap_err()
            .contains("already closed")
        );
    }
}
