//! Fund administration on the command line: `junbao close` and the fund reports
//! (`report budget|remittances|bank|final-accounts|statement-of-fund`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use junbao_engine::Ledger;
use junbao_ledger::{Date, Fund};

use crate::{audit_exit, open, rejected, sink};

/// `junbao close`: seal a year with its final accounts (Art. 34).
#[derive(Args, Debug)]
pub struct CloseArgs {
    /// The year to close (it must have ended).
    #[arg(long)]
    year: String,
    /// Close even though units still owe premiums of the year or transfers await their
    /// agency; they are listed in the close.
    #[arg(long)]
    accept_open: bool,
    /// Signing key file [default: $JUNBAO_KEY, else DIR.key beside the ledger folder].
    #[arg(long, env = "JUNBAO_KEY")]
    key: Option<PathBuf>,
}

/// The fund administration reports (Chapters 6–7).
#[derive(Subcommand, Debug)]
pub enum AdminReport {
    /// Budget against actual per line for one fund and year (Art. 33–34).
    Budget {
        #[arg(long)]
        fund: String,
        #[arg(long)]
        year: String,
        #[arg(long)]
        json: bool,
    },
    /// What units withheld, remitted and still owe, per unit, fund and period, with the age of
    /// what is outstanding (Art. 32, 45).
    Remittances {
        #[arg(long)]
        unit: Option<String>,
        /// As at this value date [default: today].
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The fund's money at the bank by the ledger against the bank's statements (Art. 35).
    Bank {
        #[arg(long)]
        fund: String,
        #[arg(long)]
        as_of: String,
        #[arg(long)]
        json: bool,
    },
    /// The final accounts of a closed year, and whether they still match the journal.
    FinalAccounts {
        #[arg(long)]
        year: String,
        #[arg(long, conflicts_with = "html")]
        json: bool,
        /// A printable HTML page with bilingual headings.
        #[arg(long)]
        html: bool,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Income and expenditure per line of one fund for any period (Art. 41): JSON or CSV.
    StatementOfFund {
        #[arg(long)]
        fund: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "json")]
        format: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn fund(text: &str) -> Result<Fund> {
    Fund::parse(text).map_err(|m| rejected(format!("--fund: {m}")))
}

fn year(text: &str) -> Result<u16> {
    junbao_ledger::admin::parse_year(text).map_err(|m| rejected(format!("--year: {m}")))
}

fn date(name: &str, text: &str) -> Result<Date> {
    Date::parse(text).map_err(|m| rejected(format!("--{name}: {m}")))
}

pub fn close(data: &Path, args: CloseArgs) -> Result<()> {
    let year = year(&args.year)?;
    let ledger = open(data)?;
    let key = junbao_engine::load_signing_key(
        &args.key.unwrap_or_else(|| junbao_engine::default_key_path(data)),
    )?;
    let r = ledger.close_year(year, args.accept_open, &key).map_err(audit_exit)?;
    outln!("{}", serde_json::to_string(&r)?);
    Ok(())
}

pub fn report(ledger: &Ledger, kind: AdminReport) -> Result<()> {
    match kind {
        AdminReport::Budget { fund: f, year: y, json } => {
            let r = ledger.budget_report(fund(&f)?, year(&y)?).map_err(audit_exit)?;
            if json {
                outln!("{}", serde_json::to_string(&r)?);
                return Ok(());
            }
            outln!("budget of the {} fund, {} (as of entry {})", r.fund, r.year, r.as_of_seq);
            outln!(
                "  {:<20} {:<12} {:>18} {:>18} {:>18}",
                "line",
                "kind",
                "budget",
                "actual",
                "difference"
            );
            for l in &r.lines {
                outln!(
                    "  {:<20} {:<12} {:>18} {:>18} {:>18}",
                    l.line,
                    l.kind,
                    or_dash(&l.budget),
                    l.actual.to_string(),
                    or_dash(&l.difference)
                );
            }
        }
        AdminReport::Remittances { unit, as_of, json } => {
            let as_of = as_of.map(|d| date("as-of", &d)).transpose()?;
            let r = ledger.remittance_report(unit.as_deref(), as_of).map_err(audit_exit)?;
            if json {
                outln!("{}", serde_json::to_string(&r)?);
                return Ok(());
            }
            outln!("units' remittances as of {} (entry {})", r.as_of, r.as_of_seq);
            outln!(
                "  {:<14} {:<9} {:<8} {:>14} {:>14} {:>14} {:>5}",
                "unit",
                "fund",
                "period",
                "owed",
                "remitted",
                "outstanding",
                "age"
            );
            for p in &r.periods {
                outln!(
                    "  {:<14} {:<9} {:<8} {:>14} {:>14} {:>14} {:>5}",
                    p.unit.as_str(),
                    p.fund.name(),
                    p.period.to_string(),
                    p.owed.to_string(),
                    p.remitted.to_string(),
                    p.outstanding.to_string(),
                    or_dash(&p.age_months)
                );
            }
        }
        AdminReport::Bank { fund: f, as_of, json } => {
            let r = ledger.bank_report(fund(&f)?, date("as-of", &as_of)?).map_err(audit_exit)?;
            if json {
                outln!("{}", serde_json::to_string(&r)?);
                return Ok(());
            }
            outln!("bank reconciliation of the {} fund as of {}", r.fund, r.as_of);
            outln!("  {:<30} {:>18}", "ledger (money at the bank)", r.ledger.to_string());
            for s in &r.statements {
                outln!(
                    "  {:<30} {:>18}  {} {}",
                    format!("bank {}", s.account),
                    s.balance.to_string(),
                    s.date,
                    s.reference
                );
            }
            outln!("  {:<30} {:>18}", "difference (bank - ledger)", or_dash(&r.difference));
        }
        AdminReport::FinalAccounts { year: y, json, html, out } => {
            let r = ledger.final_accounts(year(&y)?).map_err(audit_exit)?;
            let mut sink = sink(&out)?;
            if html {
                sink.write_all(junbao_engine::render_final_accounts_html(&r).as_bytes())?;
            } else if json {
                writeln!(sink, "{}", serde_json::to_string(&r)?)?;
            } else {
                writeln!(
                    sink,
                    "final accounts of {} (entry {}, covering 1-{}): {}",
                    r.year,
                    r.close_seq,
                    r.through_seq,
                    if r.matches_journal {
                        "match the journal"
                    } else {
                        "DO NOT match the journal"
                    }
                )?;
                for f in &r.funds {
                    writeln!(sink, "\nfund {}", f.fund)?;
                    writeln!(sink, "  {:<28} {:>18}", "opening", f.opening.to_string())?;
                    for line in junbao_ledger::admin::BudgetLine::ALL {
                        let side = if line.is_income() { "income" } else { "expenditure" };
                        let v = f.line(line).to_string();
                        writeln!(sink, "  {:<28} {:>18}", format!("{side} {line}"), v)?;
                    }
                    writeln!(sink, "  {:<28} {:>18}", "closing", f.closing.to_string())?;
                }
            }
            sink.flush()?;
            drop(sink);
            if !r.matches_journal {
                return Err(crate::Exit {
                    code: 3,
                    message: "the final accounts no longer match the journal".into(),
                }
                .into());
            }
        }
        AdminReport::StatementOfFund { fund: f, from, to, format, out } => {
            if format != "json" && format != "csv" {
                return Err(rejected(format!("--format {format}: expected json or csv")));
            }
            let s = ledger
                .statement_of_fund(fund(&f)?, date("from", &from)?, date("to", &to)?)
                .map_err(audit_exit)?;
            let mut sink = sink(&out)?;
            if format == "csv" {
                sink.write_all(junbao_engine::statement_of_fund_csv(&s).as_bytes())?;
            } else {
                writeln!(sink, "{}", serde_json::to_string(&s)?)?;
            }
            sink.flush()?;
        }
    }
    Ok(())
}

/// An optional figure as the text reports print it: `-` when there is none.
fn or_dash<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

/// The files the demo's final accounts were written to.
pub struct WrittenAccounts {
    pub json: String,
    pub html: String,
    pub matches_journal: bool,
}

/// Where the demo's final accounts go: `DIR/final-accounts-YEAR.{json,html}`.
pub fn write_final_accounts(ledger: &Ledger, dir: &Path, year: u16) -> Result<WrittenAccounts> {
    let r = ledger.final_accounts(year).map_err(audit_exit)?;
    let json_path = dir.join(format!("final-accounts-{year}.json"));
    let html_path = dir.join(format!("final-accounts-{year}.html"));
    std::fs::write(&json_path, serde_json::to_string_pretty(&r)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    std::fs::write(&html_path, junbao_engine::render_final_accounts_html(&r))
        .with_context(|| format!("writing {}", html_path.display()))?;
    Ok(WrittenAccounts {
        json: json_path.display().to_string(),
        html: html_path.display().to_string(),
        matches_journal: r.matches_journal,
    })
}

/// The demo's year end: budgets, units' remittances, the fund's deposit interest, a bank
/// statement, then the close of 2025 and its final accounts written next to the ledger.
pub fn demo_year_end(ledger: &Ledger, key: &Path, dir: &Path) -> Result<()> {
    let post = |what: &str, lines: &[String]| -> Result<()> {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let s = ledger.post_lines(&refs).with_context(|| format!("posting {what}"))?;
        outln!("  {what:<44} {:>6} entries", s.accepted);
        Ok(())
    };
    outln!("\nthe finance department's year end (Chapter 6 of the law):");
    let budget = |id: &str, fund: &str, line: &str, amount: &str| {
        format!(
            r#"{{"id":"{id}","type":"budget","fund":"{fund}","year":"2025","line":"{line}","amount":"{amount}"}}"#
        )
    };
    post(
        "budgets for 2025 (Art. 33-34)",
        &[
            budget("budget-2025-casualty-central", "casualty", "central_subsidy", "30000000.00"),
            budget("budget-2025-casualty-benefits", "casualty", "benefits", "400000.00"),
            budget("budget-2025-casualty-interest", "casualty", "interest", "10000.00"),
        ],
    )?;
    // Every unit remits each month's premiums by the 10th of the next month; December's arrive
    // in January 2026, so they are outstanding at the year end but settled at the close.
    let owed: Vec<(String, String, String, String)> = ledger.with_state(|state, _| {
        let mut v: Vec<_> = state
            .fund_balances
            .iter()
            .filter_map(|(a, fen)| match &a.kind {
                junbao_ledger::fund::AccountKind::UnitReceivable { unit, period }
                    if fen.0 > 0 && period.year == 2025 =>
                {
                    Some((
                        a.fund.name().to_string(),
                        unit.to_string(),
                        period.to_string(),
                        fen.to_string(),
                    ))
                }
                _ => None,
            })
            .collect();
        v.sort();
        v
    });
    let remittances: Vec<String> = owed
        .iter()
        .map(|(fund, unit, period, amount)| {
            let p = junbao_ledger::Period::parse(period).expect("a stored period");
            let next = p.last_day().to_naive() + chrono::Duration::days(10);
            format!(
                r#"{{"id":"remit-{fund}-{unit}-{period}","type":"remittance","unit":"{unit}","fund":"{fund}","amount":"{amount}","period":"{period}","reference":"bank slip {unit}/{period}","value_date":"{next}"}}"#
            )
        })
        .collect();
    post("units' remittances of 2025 (Art. 32)", &remittances)?;
    post(
        "fund deposit interest, casualty (Art. 31)",
        &[r#"{"id":"depint-casualty-2025","type":"deposit_interest","fund":"casualty","amount":"12345.67","period":"2025-12"}"#.to_string()],
    )?;
    let year_end = Date::parse("2025-12-31").expect("a date");
    let at_bank = ledger.bank_report(Fund::Casualty, year_end).map_err(audit_exit)?;
    post(
        "bank statement, casualty (Art. 35)",
        &[format!(
            r#"{{"id":"bank-casualty-2025-12","type":"bank_statement","fund":"casualty","account":"ICBC-JB-0001","date":"2025-12-31","balance":"{}","reference":"statement 2025/12"}}"#,
            at_bank.ledger
        )],
    )?;
    let bank = ledger.bank_report(Fund::Casualty, year_end).map_err(audit_exit)?;
    outln!(
        "  casualty fund at the bank on 2025-12-31: ledger {}, bank {}, difference {}",
        bank.ledger,
        or_dash(&bank.bank),
        or_dash(&bank.difference)
    );
    let key = junbao_engine::load_signing_key(key)?;
    let closed = ledger.close_year(2025, false, &key).map_err(audit_exit)?;
    outln!(
        "  closed 2025 (Art. 34): year_close entry {}, digest signed at tree size {}",
        closed.close_seq,
        closed.digest.tree_size
    );
    let written = write_final_accounts(ledger, dir, 2025)?;
    outln!(
        "  final accounts of 2025 → {} and {} (match the journal: {})",
        written.json,
        written.html,
        written.matches_journal
    );
    Ok(())
}
