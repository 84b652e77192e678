//! Reading the books: the trial balance, the journal, a member's statement, the reports and
//! the exports.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use junbao_ledger::Fund;

use crate::args::ReportKind;
use crate::exit::{Exit, audit_exit, rejected};
use crate::{admin, open, progress};

pub(crate) fn parse_fund(fund: Option<String>) -> Result<Option<Fund>> {
    fund.map(|f| Fund::parse(&f).map_err(|m| rejected(format!("--fund: {m}")))).transpose()
}

pub(crate) fn balance(
    data: &Path,
    fund: Option<String>,
    member: Option<String>,
    as_json: bool,
) -> Result<()> {
    let fund = parse_fund(fund)?;
    let ledger = open(data)?;
    let sheet = ledger.balances(fund, member.as_deref());
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{}", serde_json::to_string(&sheet)?)?;
        return Ok(());
    }
    writeln!(out, "trial balance as of entry {}", sheet.as_of_seq)?;
    for f in &sheet.funds {
        writeln!(out, "\n{:<48} {:>20}", format!("fund {}", f.fund), "balance")?;
        for a in &f.accounts {
            writeln!(out, "  {:<46} {:>20}", a.account, a.balance.to_string())?;
        }
        writeln!(out, "  {:<46} {:>20}", "total (must be 0.00)", f.total.to_string())?;
    }
    Ok(())
}

pub(crate) fn journal(data: &Path, from: u64, limit: usize, as_json: bool) -> Result<()> {
    let ledger = open(data)?;
    if as_json {
        outln!("{}", serde_json::to_string(&ledger.journal_page(from, limit)?)?);
        return Ok(());
    }
    let entries = ledger.journal(from, limit.min(junbao_engine::JOURNAL_PAGE_ENTRIES_MAX))?;
    let mut out = std::io::stdout().lock();
    for (stored, entry) in &entries {
        writeln!(
            out,
            "{:>8}  {}  {:<16} {:<24} {}",
            stored.seq,
            entry.value_date,
            entry.event.body.type_name(),
            entry.event.id,
            &hex::encode(stored.chain_hash)[..16]
        )?;
        for p in &entry.postings {
            writeln!(out, "          {:<50} {:>16}", p.account.to_string(), p.amount.to_string())?;
        }
    }
    Ok(())
}

/// `statement`: a member's entries and balances, from and to the dates given.
pub(crate) fn statement(
    data: &Path,
    member: &str,
    from: Option<String>,
    to: Option<String>,
    as_json: bool,
) -> Result<()> {
    let date = |name: &str, v: Option<String>| {
        v.map(|t| junbao_ledger::Date::parse(&t).map_err(|m| rejected(format!("--{name}: {m}"))))
            .transpose()
    };
    let (from, to) = (date("from", from)?, date("to", to)?);
    let ledger = open(data)?;
    let s = ledger.statement(member, from, to, as_json).map_err(audit_exit)?;
    if as_json {
        outln!("{}", serde_json::to_string(&s)?);
    } else {
        print_statement(&s)?;
    }
    Ok(())
}

/// `report`: the reconciliation, the exceptions, or a fund administration report.
pub(crate) fn report(data: &Path, kind: ReportKind) -> Result<()> {
    let ledger = open(data)?;
    match kind {
        ReportKind::Reconcile => {
            let r = ledger.reconcile().map_err(audit_exit)?;
            outln!("{}", serde_json::to_string(&r)?);
            if !r.ok {
                return Err(Exit { code: 3, message: "the books do not reconcile".into() }.into());
            }
        }
        ReportKind::Exceptions => {
            outln!("{}", serde_json::to_string(&ledger.exceptions().map_err(audit_exit)?)?)
        }
        ReportKind::Admin(kind) => admin::report(&ledger, kind)?,
    }
    Ok(())
}

/// `export balances`: every account's balance as of a date, in CSV or JSON.
pub(crate) fn export_balances(
    data: &Path,
    format: &str,
    unit: Option<String>,
    as_of: Option<String>,
    out: Option<PathBuf>,
) -> Result<()> {
    let as_of = as_of
        .map(|t| junbao_ledger::Date::parse(&t).map_err(|m| rejected(format!("--as-of: {m}"))))
        .transpose()?;
    if format != "csv" && format != "json" {
        return Err(rejected(format!("--format {format}: expected csv or json")));
    }
    let ledger = open(data)?;
    let b = ledger.balances_as_of(as_of, unit.as_deref()).map_err(audit_exit)?;
    let mut sink = sink(&out)?;
    if format == "json" {
        writeln!(sink, "{}", serde_json::to_string(&b)?)?;
    } else {
        sink.write_all(junbao_engine::balances_csv(&b).as_bytes())?;
    }
    sink.flush()?;
    Ok(())
}

/// The export's progress bar moves every this many entries.
const EXPORT_PROGRESS_ENTRIES: u64 = 10_000;

pub(crate) fn export_journal(data: &Path, format: &str, out: Option<PathBuf>) -> Result<()> {
    let ledger_format = match format {
        "jsonl" => false,
        "ledger" => true,
        other => return Err(rejected(format!("--format {other}: expected jsonl or ledger"))),
    };
    // The journal alone: the store, no state loaded (as `verify`, `proof` and `digest`).
    let ledger = crate::cmd::audit::open_for_audit(data)?;
    let mut sink = sink(&out)?;
    let head = ledger.head();
    if ledger_format {
        writeln!(sink, "; junbao journal: {} entries, head {}", head.seq, hex::encode(head.hash))?;
        writeln!(
            sink,
            "; amounts in yuan (CNY), debit positive; accounts as in `junbao balance`\n"
        )?;
    }
    let bar = progress(head.seq, "exporting");
    for item in ledger.entries_from(1) {
        let (stored, entry) = item?;
        if ledger_format {
            writeln!(sink, "{}", junbao_engine::ledger_transaction(&stored, &entry))?;
        } else {
            serde_json::to_writer(&mut sink, &junbao_engine::export_line(&stored, &entry))?;
            writeln!(sink)?;
        }
        if stored.seq % EXPORT_PROGRESS_ENTRIES == 0 {
            bar.set_position(stored.seq);
        }
    }
    sink.flush()?;
    bar.finish_and_clear();
    Ok(())
}

fn print_statement(s: &junbao_ledger::report::Statement) -> Result<()> {
    outln!("statement of member {} as of entry {}", s.member, s.as_of_seq);
    for e in &s.entries {
        for p in &e.postings {
            outln!(
                "{:>8}  {}  {:<14} {:<40} {:>14}",
                e.seq,
                e.value_date,
                e.type_name,
                p.account,
                p.amount.to_string()
            );
        }
        if e.postings.is_empty() {
            outln!("{:>8}  {}  {}", e.seq, e.value_date, e.type_name);
        }
    }
    outln!("\nbalances");
    for f in &s.funds {
        for a in &f.accounts {
            outln!("  {:<46} {:>14}", a.account, a.balance.to_string());
        }
    }
    Ok(())
}

/// Where an export goes: the file given, else standard output.
pub(crate) fn sink(out: &Option<PathBuf>) -> Result<Box<dyn Write>> {
    Ok(match out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}
