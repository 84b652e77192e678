//! Fund administration reports and the year close (Chapters 6–7 of the law). The figures are
//! derived by `junbao_ledger::admin` from the journal; this module reads the journal, checks
//! what a close must check against the state, posts the `year_close` entry and signs a digest.

use ed25519_dalek::SigningKey;
use junbao_ledger::admin::{
    AccountsBuilder, BankBuilder, BudgetBuilder, BudgetLine, FundAccounts, RemittanceBuilder,
    age_months, final_accounts_json,
};
use junbao_ledger::entry::{Entry, event_fingerprint};
use junbao_ledger::event::Event;
use std::collections::HashMap;

use junbao_ledger::fund::{Account, AccountKind};
use junbao_ledger::ids::{EventId, UnitId};
use junbao_ledger::state::Line;
use junbao_ledger::{Date, EventBody, Fen, Fund};
use serde_json::{Value, json};

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
    pub fn budget_report(&self, fund: Fund, year: u16) -> Result<Value, AuditError> {
        let mut budget = BudgetBuilder::new(fund, year);
        let mut actual = AccountsBuilder::year(year);
        let as_of_seq = self.head().seq;
        self.scan(Some(as_of_seq), &mut |e| {
            budget.add(e);
            actual.add(e);
        })?;
        let accounts = actual.finish().into_iter().find(|a| a.fund == fund).expect("every fund");
        let mut lines = Vec::new();
        for line in BudgetLine::ALL {
            let set = budget.lines.get(&line);
            let actual = accounts.line(line);
            lines.push(json!({
                "line": line.name(),
                "kind": if line.is_income() { "income" } else { "expenditure" },
                "budget": set.map(|(f, _, _)| f.to_string()),
                "actual": actual.to_string(),
                "difference": set.map(|(f, _, _)| Fen(actual.0 - f.0).to_string()),
                "budget_seq": set.map(|(_, seq, _)| seq),
                "revisions": set.map_or(0, |(_, _, r)| *r),
            }));
        }
        Ok(json!({
            "fund": fund.name(),
            "year": year,
            "as_of_seq": as_of_seq,
            "lines": lines,
        }))
    }

    /// What units withheld, remitted and still owe, per unit, fund and period, from entries
    /// with value dates up to `as_of` (today when absent); the age of what is outstanding in
    /// months after its period (Art. 32, 45).
    pub fn remittance_report(
        &self,
        unit: Option<&str>,
        as_of: Option<Date>,
    ) -> Result<Value, AuditError> {
        let unit = unit
            .map(|u| UnitId::parse(u).map_err(|m| AuditError::Input(format!("--unit: {m}"))))
            .transpose()?;
        let as_of = as_of.unwrap_or_else(|| self.today());
        let mut r = RemittanceBuilder { as_of: Some(as_of), ..Default::default() };
        let as_of_seq = self.head().seq;
        self.scan(Some(as_of_seq), &mut |e| r.add(e))?;
        let mut rows = Vec::new();
        let mut units: std::collections::BTreeMap<&UnitId, (i64, i64)> = Default::default();
        for ((u, fund, period), row) in &r.rows {
            if unit.as_ref().is_some_and(|x| x != u) {
                continue;
            }
            let outstanding = row.outstanding();
            let t = units.entry(u).or_default();
            t.0 += row.owed.0;
            t.1 += row.remitted.0;
            rows.push(json!({
                "unit": u.as_str(),
                "fund": fund.name(),
                "period": period.to_string(),
                "owed": row.owed.to_string(),
                "remitted": row.remitted.to_string(),
                "outstanding": outstanding.to_string(),
                "age_months": (outstanding.0 != 0).then(|| age_months(*period, as_of)),
            }));
        }
        let totals: Vec<_> = units
            .iter()
            .map(|(u, (owed, remitted))| {
                json!({"unit": u.as_str(), "owed": Fen(*owed).to_string(),
                       "remitted": Fen(*remitted).to_string(),
                       "outstanding": Fen(owed - remitted).to_string()})
            })
            .collect();
        Ok(json!({
            "as_of": as_of.to_string(),
            "as_of_seq": as_of_seq,
            "unit": unit.map(|u| u.as_str().to_string()),
            "units": totals,
            "periods": rows,
        }))
    }

    /// The fund's money the ledger says is at the bank on `as_of` (holdings less what units
    /// still owe), against the last bank statement of each of its special accounts (Art. 35).
    pub fn bank_report(&self, fund: Fund, as_of: Date) -> Result<Value, AuditError> {
        let mut b = BankBuilder::new(fund, as_of);
        let as_of_seq = self.head().seq;
        self.scan(Some(as_of_seq), &mut |e| b.add(e))?;
        let statements: Vec<_> = b
            .statements
            .values()
            .map(|s| {
                json!({"account": s.account.as_str(), "date": s.date.to_string(),
                       "balance": s.balance.to_string(), "reference": s.reference, "seq": s.seq})
            })
            .collect();
        let has_statement = !b.statements.is_empty();
        let difference = Fen(b.bank().0 - b.ledger().0);
        Ok(json!({
            "fund": fund.name(),
            "as_of": as_of.to_string(),
            "as_of_seq": as_of_seq,
            "ledger": b.ledger().to_string(),
            "bank": has_statement.then(|| b.bank().to_string()),
            "difference": has_statement.then(|| difference.to_string()),
            "reconciled": has_statement && difference.0 == 0,
            "statements": statements,
        }))
    }

    /// Income and expenditure of one fund per line for the value dates `from..=to` (Art. 41),
    /// with its money at the start and at the end.
    pub fn statement_of_fund(&self, fund: Fund, from: Date, to: Date) -> Result<Value, AuditError> {
        if to < from {
            return Err(AuditError::Input(format!("--to {to} is before --from {from}")));
        }
        let mut b = AccountsBuilder::new(from, to);
        let as_of_seq = self.head().seq;
        self.scan(Some(as_of_seq), &mut |e| b.add(e))?;
        let accounts: Vec<FundAccounts> =
            b.finish().into_iter().filter(|a| a.fund == fund).collect();
        let mut v = final_accounts_json(&accounts)[0].clone();
        v["from"] = json!(from.to_string());
        v["to"] = json!(to.to_string());
        v["as_of_seq"] = json!(as_of_seq);
        Ok(v)
    }

    /// The final accounts recorded by the close of `year`, and whether the journal still gives
    /// the same figures.
    pub fn final_accounts(&self, year: u16) -> Result<Value, AuditError> {
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
        let EventBody::YearClose { through_seq, funds, open_items, .. } = &close.event.body else {
            unreachable!("matched as a year_close above");
        };
        let (seq, recorded_at_us, through_seq) = (close.seq, close.recorded_at_us, *through_seq);
        let now = b.finish();
        let differences: Vec<_> = funds
            .iter()
            .zip(&now)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| {
                json!({"fund": a.fund.name(), "recorded": final_accounts_json(std::slice::from_ref(a))[0],
                       "journal": final_accounts_json(std::slice::from_ref(b))[0]})
            })
            .collect();
        // Each fund's opening is the closing of the year before, when that year was closed.
        let follows_previous_close = previous
            .map(|p| p.iter().zip(funds).all(|(before, this)| before.closing == this.opening));
        let digest = self
            .digests()?
            .into_iter()
            .filter(|d| d.tree_size >= seq)
            .min_by_key(|d| d.tree_size)
            .map(|d| d.to_json());
        Ok(json!({
            "year": year,
            "close_seq": seq,
            "close_id": year_close_id(year),
            "recorded_at": chrono::DateTime::from_timestamp_micros(recorded_at_us)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            "through_seq": through_seq,
            "as_of_seq": as_of_seq,
            "matches_journal": differences.is_empty(),
            "opening_equals_previous_closing": follows_previous_close,
            "differences": differences,
            "funds": final_accounts_json(funds),
            "open_items": open_items,
            "digest": digest,
        }))
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
            let mut unmatched: Vec<String> = state
                .periods
                .iter()
                .filter(|((_, line, period), m)| {
                    matches!(line, Line::Medical | Line::SpouseMedical)
                        && period.year <= year
                        && m.personal.0 != 0
                        && m.state != m.personal
                })
                .map(|((member, line, period), m)| {
                    let fund =
                        if *line == Line::Medical { "medical" } else { "spouse medical part" };
                    format!(
                        "the {fund} premium of {member} for {period} ({}) is matched by {} \
                         (Art. 20, 25)",
                        m.personal, m.state
                    )
                })
                .collect();
            unmatched.sort();
            let mut open: Vec<String> = state
                .balances
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
    ) -> Result<Value, AuditError> {
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
        Ok(json!({
            "closed": year,
            "close_seq": seq,
            "through_seq": through_seq,
            "open_items": open_count,
            "funds": final_accounts_json(&funds),
            "digest": digest.to_json(),
        }))
    }
}

/// The CSV form of [`Ledger::statement_of_fund`]: `fund,from,to,section,line,amount`.
pub fn statement_of_fund_csv(s: &Value) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let (fund, from, to) = (text(&s["fund"]), text(&s["from"]), text(&s["to"]));
    w.write_record(["fund", "from", "to", "section", "line", "amount"])
        .expect("writing CSV to memory cannot fail");
    let mut row = |section: &str, line: &str, amount: String| {
        w.write_record([fund.as_str(), from.as_str(), to.as_str(), section, line, amount.as_str()])
            .expect("writing CSV to memory cannot fail");
    };
    row("opening", "", text(&s["opening"]));
    for side in ["income", "expenditure"] {
        for line in BudgetLine::ALL.into_iter().filter(|l| l.is_income() == (side == "income")) {
            row(side, line.name(), text(&s[side][line.name()]));
        }
        row(side, "total", text(&s[format!("{side}_total")]));
    }
    row("closing", "", text(&s["closing"]));
    let bytes = w.into_inner().expect("flushing CSV to memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn fund_title(fund: &str) -> &'static str {
    match fund {
        "pension" => "退役养老保险基金 Retirement pension insurance fund",
        "medical" => "退役医疗保险基金 Retirement medical insurance fund",
        "spouse" => "随军未就业配偶保险基金 Unemployed accompanying spouse insurance fund",
        _ => "军人伤亡保险基金 Casualty insurance fund",
    }
}

/// The final accounts ([`Ledger::final_accounts`]) as a printable HTML page with bilingual
/// headings, like the transfer sheet.
pub fn render_final_accounts_html(r: &Value) -> String {
    let s =
        |v: &Value| esc(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()).as_str());
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\n");
    h.push_str(&format!(
        "<title>{} 年度军人保险基金决算 Final accounts {}</title>\n<style>\n",
        s(&r["year"]),
        s(&r["year"])
    ));
    h.push_str("body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}\n");
    h.push_str("th,td{border:1px solid #888;padding:.25em .5em;text-align:left}td.n{text-align:right;font-family:monospace}\n");
    h.push_str("code{word-break:break-all}@media print{body{margin:0}}\n</style></head><body>\n");
    h.push_str(&format!(
        "<h1>{} 年度军人保险基金决算<br><small>Final accounts of the servicemen insurance funds, {}</small></h1>\n",
        s(&r["year"]),
        s(&r["year"])
    ));
    let matches = r["matches_journal"] == true;
    h.push_str(&format!(
        "<p>年度结账分录 Year-close entry: <code>{}</code> (seq {}), 截至分录 covering entries 1–{}; {}</p>\n",
        s(&r["close_id"]),
        s(&r["close_seq"]),
        s(&r["through_seq"]),
        if matches {
            "与账簿一致 matches the journal"
        } else {
            "<strong>与账簿不一致 DOES NOT match the journal</strong>"
        }
    ));
    for f in r["funds"].as_array().into_iter().flatten() {
        h.push_str(&format!(
            "<h2>{}</h2>\n<table>\n",
            esc(fund_title(f["fund"].as_str().unwrap_or("")))
        ));
        let row = |h: &mut String, zh: &str, en: &str, v: &Value| {
            h.push_str(&format!("<tr><th>{zh} {en}</th><td class=\"n\">{}</td></tr>\n", s(v)));
        };
        row(&mut h, "年初结余", "Opening balance", &f["opening"]);
        for line in BudgetLine::ALL {
            let side = if line.is_income() { "income" } else { "expenditure" };
            let en = line.name().replace('_', " ");
            row(&mut h, line.title_zh(), &en, &f[side][line.name()]);
        }
        row(&mut h, "收入合计", "Total income", &f["income_total"]);
        row(&mut h, "支出合计", "Total expenditure", &f["expenditure_total"]);
        row(&mut h, "年末结余", "Closing balance", &f["closing"]);
        h.push_str("</table>\n");
    }
    if let Some(items) = r["open_items"].as_array().filter(|a| !a.is_empty()) {
        h.push_str("<h2>结账时未结事项 Items open at the close</h2>\n<ul>\n");
        for i in items {
            h.push_str(&format!("<li>{}</li>\n", s(i)));
        }
        h.push_str("</ul>\n");
    }
    if let Some(d) = r["digest"].as_object() {
        h.push_str("<h2>签名摘要 Signed digest</h2>\n<table>\n");
        for k in ["tree_size", "root", "head", "recorded_at", "public_key", "signature"] {
            if let Some(v) = d.get(k) {
                h.push_str(&format!("<tr><th>{k}</th><td><code>{}</code></td></tr>\n", s(v)));
            }
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}
