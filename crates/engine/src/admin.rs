//! Fund administration reports and the year close (Chapters 6–7 of the law). The figures are
//! derived by `junbao_ledger::admin` from the journal; this module reads the journal, checks
//! what a close must check against the state, posts the `year_close` entry and signs a digest.

use ed25519_dalek::SigningKey;
use junbao_ledger::admin::{
    AccountsBuilder, BankBuilder, BudgetBuilder, BudgetLine, FundAccounts, RemittanceBuilder,
};
use junbao_ledger::entry::{Entry, event_fingerprint};
use junbao_ledger::event::Event;
use junbao_ledger::report::reconcile::awaiting_match;
use junbao_ledger::report::{
    BankReport, BudgetReport, CloseReport, DigestDoc, FinalAccounts, FundAccountsDoc,
    RemittanceReport, StatementOfFund,
};
use std::collections::HashMap;

use junbao_ledger::fund::{Account, AccountKind};
use junbao_ledger::ids::{EventId, UnitId};
use junbao_ledger::state::Line;
use junbao_ledger::{Date, EventBody, Fen, Fund};

use crate::{AuditError, Ledger, PostError, PostRequest, PostScope};

/// How many times a close draws the accounts again when entries were appended meanwhile.
const CLOSE_ATTEMPTS_MAX: u32 = 3;

/// The id of the entry that closes `year`.
pub fn year_close_id(year: u16) -> String {
    format!("year_close:{year}")
}

impl Ledger {
    /// Calls `f` on every entry up to `through` (the whole journal when `None`), in order.
    fn scan(&self, through: Option<u64>, f: &mut dyn FnMut(&Entry)) -> Result<(), AuditError> {
        for item in self.entries_from(1) {
            let (s, e) = item?;
            if through.is_some_and(|t| s.seq > t) {
                break;
            }
            f(&e);
        }
        Ok(())
    }

    /// Today, by the recording clock (UTC).
    pub fn today(&self) -> Date {
        Date::from_naive(
            chrono::DateTime::from_timestamp_micros(self.now_us())
                .expect("the recording clock is within chrono's range")
                .date_naive(),
        )
    }

    /// Budget against actual for one fund and year (Art. 33–34): per line, the latest budget
    /// amount, the actual income or expenditure from the journal, and actual − budget.
    pub fn budget_report(&self, fund: Fund, year: u16) -> Result<BudgetReport, AuditError> {
        let mut budget = BudgetBuilder::new(fund, year);
        let mut actual = AccountsBuilder::year(year);
        let as_of_seq = self.head().seq;
        self.scan(Some(as_of_seq), &mut |e| {
            budget.add(e);
            actual.add(e);
        })?;
        let accounts = actual
            .finish()
            .into_iter()
            .find(|a| a.fund == fund)
            .unwrap_or_else(|| FundAccounts::empty(fund));
        Ok(BudgetReport::new(&budget, &accounts, as_of_seq))
    }

    /// What units withheld, remitted and still owe, per unit, fund and period, from entries
    /// with value dates up to `as_of` (today when absent); the age of what is outstanding in
    /// months after its period (Art. 32, 45).
    pub fn remittance_report(
        &self,
        unit: Option<&str>,
        as_of: Option<Date>,
    ) -> Result<RemittanceReport, AuditError> {
        let unit = unit
            .map(|u| UnitId::parse(u).map_err(|m| AuditError::Input(format!("--unit: {m}"))))
            .transpose()?;
        let as_of = as_of.unwrap_or_else(|| self.today());
        let mut r = RemittanceBuilder { as_of: Some(as_of), ..Default::default() };
        let as_of_seq = self.head().seq;
        self.scan(Some(as_of_seq), &mut |e| r.add(e))?;
        Ok(RemittanceReport::new(&r, as_of, as_of_seq, unit.as_ref()))
    }

    /// The fund's money the ledger says is at the bank on `as_of` (holdings less what units
    /// still owe), against the last bank statement of each of its special accounts (Art. 35).
    pub fn bank_report(&self, fund: Fund, as_of: Date) -> Result<BankReport, AuditError> {
        let mut b = BankBuilder::new(fund, as_of);
        let as_of_seq = self.head().seq;
        self.scan(Some(as_of_seq), &mut |e| b.add(e))?;
        Ok(BankReport::new(&b, as_of_seq))
    }

    /// Income and expenditure of one fund per line for the value dates `from..=to` (Art. 41),
    /// with its money at the start and at the end.
    pub fn statement_of_fund(
        &self,
        fund: Fund,
        from: Date,
        to: Date,
    ) -> Result<StatementOfFund, AuditError> {
        if to < from {
            return Err(AuditError::Input(format!("--to {to} is before --from {from}")));
        }
        let mut b = AccountsBuilder::new(from, to);
        let as_of_seq = self.head().seq;
        self.scan(Some(as_of_seq), &mut |e| b.add(e))?;
        Ok(StatementOfFund::new(b, fund, as_of_seq))
    }

    /// The final accounts recorded by the close of `year`, and whether the journal still gives
    /// the same figures.
    pub fn final_accounts(&self, year: u16) -> Result<FinalAccounts, AuditError> {
        let mut recorded: Option<Entry> = None;
        let mut previous: Option<Vec<FundAccounts>> = None;
        let mut b = AccountsBuilder::year(year);
        let as_of_seq = self.head().seq;
        self.scan(Some(as_of_seq), &mut |e| {
            b.add(e);
            match &e.event.body {
                EventBody::YearClose { year: y, .. } if *y == year => recorded = Some(e.clone()),
                EventBody::YearClose { year: y, funds, .. } if *y + 1 == year => {
                    previous = Some(funds.clone());
                }
                _ => {}
            }
        })?;
        let Some(close) = recorded else {
            return Err(AuditError::Input(format!(
                "{year} is not closed (`junbao close --year {year}`); `report statement-of-fund` \
                 gives its accounts so far"
            )));
        };
        let digest = self
            .digests()?
            .into_iter()
            .filter(|d| d.tree_size >= close.seq)
            .min_by_key(|d| d.tree_size)
            .map(|d| digest_doc(&d))
            .transpose()?;
        FinalAccounts::new(
            &close,
            year_close_id(year),
            &b.finish(),
            previous.as_deref(),
            as_of_seq,
            digest,
        )
        .ok_or_else(|| AuditError::Integrity(format!("entry {} is not a year close", close.seq)))
    }

    /// What a close of `year` would refuse on (premiums without their match) and what it would
    /// leave open: units' premiums and transfers to agencies that were outstanding at the end
    /// of the year (`year_end`, from the journal) and still are.
    fn close_checks(
        &self,
        year: u16,
        year_end: &HashMap<Account, i64>,
    ) -> Result<(Vec<String>, Vec<String>), AuditError> {
        self.with_state(|state, _| {
            if let Some(closed) = state.admin.closed_through
                && year <= closed
            {
                return Err(AuditError::Input(format!("{year} is already closed")));
            }
            for (fund, total) in state.trial_balance() {
                if total != 0 {
                    return Err(AuditError::Integrity(format!(
                        "the {fund} fund's trial balance is {total} fen, not zero"
                    )));
                }
            }
            let mut unmatched: Vec<String> = awaiting_match(state)
                .into_iter()
                .filter(|a| a.period.year <= year)
                .map(|a| {
                    let fund =
                        if a.line == Line::Medical { "medical" } else { "spouse medical part" };
                    format!(
                        "the {fund} premium of {} for {} ({}) is matched by {} (Art. 20, 25)",
                        a.member, a.period, a.premium, a.matched
                    )
                })
                .collect();
            unmatched.sort();
            let mut open: Vec<String> = state
                .fund_balances
                .iter()
                .filter(|(a, fen)| fen.0 != 0 && year_end.get(*a).is_some_and(|f| *f != 0))
                .filter_map(|(a, fen)| match &a.kind {
                    AccountKind::UnitReceivable { unit, period } => Some(format!(
                        "unit {unit} has not remitted {fen} of the {} premiums for {period} \
                             (Art. 32)",
                        a.fund
                    )),
                    AccountKind::AgencyPayable { agency } => Some(format!(
                        "{fen} of the {} fund transferred to agency {agency} awaits its receipt",
                        a.fund
                    )),
                    _ => None,
                })
                .collect();
            open.sort();
            Ok((unmatched, open))
        })
    }

    /// Seals `year` (Art. 34): checks the books, posts the `year_close` entry with each fund's
    /// final accounts, and signs a digest of the ledger with that entry as its head.
    pub fn close_year(
        &self,
        year: u16,
        accept_open: bool,
        key: &SigningKey,
    ) -> Result<CloseReport, AuditError> {
        let today = self.today();
        if today.period().year <= year {
            return Err(AuditError::Input(format!(
                "{year} has not ended (today is {today}); a year is closed after 31 December"
            )));
        }
        let mut attempt = 0;
        let (seq, through_seq, funds, open_count) = loop {
            attempt += 1;
            let through_seq = self.head().seq;
            let mut b = AccountsBuilder::year(year);
            let year_last = Date::from_ymd(i32::from(year), 12, 31).expect("31 December");
            let mut year_end: HashMap<Account, i64> = HashMap::new();
            let mut banks: Vec<BankBuilder> =
                Fund::ALL.into_iter().map(|f| BankBuilder::new(f, year_last)).collect();
            self.scan(Some(through_seq), &mut |e| {
                b.add(e);
                for bank in &mut banks {
                    bank.add(e);
                }
                if e.value_date <= year_last {
                    for p in &e.postings {
                        if matches!(
                            p.account.kind,
                            AccountKind::UnitReceivable { .. } | AccountKind::AgencyPayable { .. }
                        ) {
                            *year_end.entry(p.account.clone()).or_default() += p.amount.0;
                        }
                    }
                }
            })?;
            let funds = b.finish();
            let (unmatched, mut open) = self.close_checks(year, &year_end)?;
            // A bank difference on the last day of the year, when every special account of the
            // fund has a statement of that day (an older statement is no year-end figure).
            for (fund, bank) in Fund::ALL.into_iter().zip(&banks) {
                let year_end_statements = !bank.statements.is_empty()
                    && bank.statements.values().all(|s| s.date == year_last);
                if year_end_statements && bank.bank() != bank.ledger() {
                    open.push(format!(
                        "the {fund} fund's bank statements of {year_last} say {}, the ledger {} \
                         (Art. 35)",
                        bank.bank(),
                        bank.ledger()
                    ));
                }
            }
            if !unmatched.is_empty() {
                return Err(AuditError::Input(format!(
                    "{year} cannot be closed: {} premium(s) without their match:\n{}",
                    unmatched.len(),
                    unmatched.join("\n")
                )));
            }
            if !open.is_empty() && !accept_open {
                return Err(AuditError::Input(format!(
                    "{year} cannot be closed with {} open item(s) the close would hide (close with \
                     --accept-open to record them in the close):\n{}",
                    open.len(),
                    open.join("\n")
                )));
            }
            let open_count = open.len();
            let mut open_items = open;
            if open_items.len() > junbao_ledger::admin::OPEN_ITEMS_MAX {
                open_items.truncate(junbao_ledger::admin::OPEN_ITEMS_MAX);
                open_items.push(format!(
                    "and {} more",
                    open_count - junbao_ledger::admin::OPEN_ITEMS_MAX
                ));
            }
            let event = Event {
                id: EventId::parse(&year_close_id(year)).expect("a valid event id"),
                value_date: None,
                memo: Some(format!("final accounts of {year}")),
                body: EventBody::YearClose { year, through_seq, funds: funds.clone(), open_items },
            };
            let fp = event_fingerprint(&event);
            let request = PostRequest { events: vec![(1, Ok((event, fp)))], scope: PostScope::Any };
            match self.post_group(vec![request]).pop().expect("one answer per request") {
                Ok(posted) => {
                    let seq = posted.last_seq.expect("the close stored one entry");
                    break (seq, through_seq, funds, open_count);
                }
                // Entries were appended between drawing the accounts and posting them (the HTTP
                // service's writer): draw them again.
                Err(PostError::Rejected { errors, .. })
                    if attempt < CLOSE_ATTEMPTS_MAX
                        && errors.iter().any(|e| e.error.field == Some("through_seq")) => {}
                Err(e @ PostError::Rejected { .. }) => {
                    return Err(AuditError::Input(e.to_string()));
                }
                Err(other) => return Err(other.into()),
            }
        };
        let digest = self.digest(key)?;
        Ok(CloseReport {
            close_seq: seq,
            closed: year,
            digest: digest_doc(&digest)?,
            funds: funds.iter().map(FundAccountsDoc::of).collect(),
            open_items: open_count,
            through_seq,
        })
    }
}

/// A signed digest as the reports print it.
fn digest_doc(digest: &crate::SignedDigest) -> Result<DigestDoc, AuditError> {
    serde_json::from_value(digest.to_json())
        .map_err(|e| AuditError::Integrity(format!("digest: {e}")))
}

/// The CSV form of [`Ledger::statement_of_fund`]: `fund,from,to,section,line,amount`.
pub fn statement_of_fund_csv(s: &StatementOfFund) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let (fund, from, to) = (s.fund.name(), s.from.to_string(), s.to.to_string());
    w.write_record(["fund", "from", "to", "section", "line", "amount"])
        .expect("writing CSV to memory cannot fail");
    let mut row = |section: &str, line: &str, amount: Fen| {
        w.write_record([fund, from.as_str(), to.as_str(), section, line, &amount.to_string()])
            .expect("writing CSV to memory cannot fail");
    };
    row("opening", "", s.opening);
    for (side, lines, total) in [
        ("income", &s.income, s.income_total),
        ("expenditure", &s.expenditure, s.expenditure_total),
    ] {
        for line in BudgetLine::ALL.into_iter().filter(|l| l.is_income() == (side == "income")) {
            row(side, line.name(), lines.get(line.name()).copied().unwrap_or(Fen::ZERO));
        }
        row(side, "total", total);
    }
    row("closing", "", s.closing);
    let bytes = w.into_inner().expect("flushing CSV to memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn fund_title(fund: Fund) -> &'static str {
    match fund {
        Fund::Pension => "退役养老保险基金 Retirement pension insurance fund",
        Fund::Medical => "退役医疗保险基金 Retirement medical insurance fund",
        Fund::Spouse => "随军未就业配偶保险基金 Unemployed accompanying spouse insurance fund",
        Fund::Casualty => "军人伤亡保险基金 Casualty insurance fund",
    }
}

/// The final accounts ([`Ledger::final_accounts`]) as a printable HTML page with bilingual
/// headings, like the transfer sheet.
pub fn render_final_accounts_html(r: &FinalAccounts) -> String {
    let s = |v: &dyn std::fmt::Display| esc(&v.to_string());
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\n");
    h.push_str(&format!(
        "<title>{} 年度军人保险基金决算 Final accounts {}</title>\n<style>\n",
        r.year, r.year
    ));
    h.push_str("body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}\n");
    h.push_str("th,td{border:1px solid #888;padding:.25em .5em;text-align:left}td.n{text-align:right;font-family:monospace}\n");
    h.push_str("code{word-break:break-all}@media print{body{margin:0}}\n</style></head><body>\n");
    h.push_str(&format!(
        "<h1>{} 年度军人保险基金决算<br><small>Final accounts of the servicemen insurance funds, {}</small></h1>\n",
        r.year, r.year
    ));
    h.push_str(&format!(
        "<p>年度结账分录 Year-close entry: <code>{}</code> (seq {}), 截至分录 covering entries 1–{}; {}</p>\n",
        s(&r.close_id),
        r.close_seq,
        r.through_seq,
        if r.matches_journal {
            "与账簿一致 matches the journal"
        } else {
            "<strong>与账簿不一致 DOES NOT match the journal</strong>"
        }
    ));
    for f in &r.funds {
        h.push_str(&format!("<h2>{}</h2>\n<table>\n", esc(fund_title(f.fund))));
        let row = |h: &mut String, zh: &str, en: &str, v: Fen| {
            h.push_str(&format!("<tr><th>{zh} {en}</th><td class=\"n\">{}</td></tr>\n", s(&v)));
        };
        row(&mut h, "年初结余", "Opening balance", f.opening);
        for line in BudgetLine::ALL {
            let en = line.name().replace('_', " ");
            row(&mut h, line.title_zh(), &en, f.line(line));
        }
        row(&mut h, "收入合计", "Total income", f.income_total);
        row(&mut h, "支出合计", "Total expenditure", f.expenditure_total);
        row(&mut h, "年末结余", "Closing balance", f.closing);
        h.push_str("</table>\n");
    }
    if !r.open_items.is_empty() {
        h.push_str("<h2>结账时未结事项 Items open at the close</h2>\n<ul>\n");
        for i in &r.open_items {
            h.push_str(&format!("<li>{}</li>\n", s(i)));
        }
        h.push_str("</ul>\n");
    }
    if let Some(d) = &r.digest {
        h.push_str("<h2>签名摘要 Signed digest</h2>\n<table>\n");
        for (k, v) in [
            ("tree_size", d.tree_size.to_string()),
            ("root", d.root.clone()),
            ("head", d.head.clone()),
            ("recorded_at", d.recorded_at.clone()),
            ("public_key", d.public_key.clone()),
            ("signature", d.signature.clone()),
        ] {
            h.push_str(&format!("<tr><th>{k}</th><td><code>{}</code></td></tr>\n", s(&v)));
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}
