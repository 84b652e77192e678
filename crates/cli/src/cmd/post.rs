//! Posting: event lines from a file or standard input, a back-payment assessment, and the
//! crash tests' writer.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::args::BackpayAction;
use crate::exit::audit_exit;
use crate::{open, progress};

pub(crate) fn post(data: &Path, file: Option<PathBuf>) -> Result<()> {
    let text = read_input(file)?;
    let ledger = open(data)?;
    let lines: Vec<&str> = text.lines().collect();
    let bar = progress(lines.len() as u64, "posting");
    let summary = ledger.post_lines_with_progress(&lines, &|n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    outln!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

fn read_input(file: Option<PathBuf>) -> Result<String> {
    let mut text = String::new();
    match file {
        None => {
            std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
        }
        Some(p) if p.as_os_str() == "-" => {
            std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
        }
        Some(p) => {
            text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        }
    }
    Ok(text)
}

/// `backpay assess` computes the assessment of one event line; `backpay post` also stores it.
pub(crate) fn backpay(data: &Path, action: BackpayAction) -> Result<()> {
    let (file, store) = match action {
        BackpayAction::Assess { file } => (file, false),
        BackpayAction::Post { file } => (file, true),
    };
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let line = text.trim();
    let ledger = open(data)?;
    let mut assessment = serde_json::to_value(ledger.backpay_assess(line).map_err(audit_exit)?)?;
    if store {
        assessment["posted"] = serde_json::to_value(ledger.post_lines(&[line])?)?;
    }
    outln!("{assessment}");
    Ok(())
}

/// Appends batches of `size` appropriations until killed. Batch `k`'s events have ids
/// `crash-k-i`; the first batch number is derived from the head, so a restarted writer goes on.
pub(crate) fn crash_writer(
    data: &Path,
    size: usize,
    batches: usize,
    checkpoint_every: Option<u64>,
) -> Result<()> {
    let ledger = open(data)?;
    if let Some(n) = checkpoint_every {
        ledger.set_checkpoint_interval(n);
    }
    let seeds = junbao_ledger::standard::SEED_STANDARDS.len() as u64;
    let done = ledger.head().seq.saturating_sub(seeds);
    anyhow::ensure!(
        done % size as u64 == 0,
        "a partial batch is stored: {done} entries after the seeds"
    );
    let mut out = std::io::stdout().lock();
    for k in (done / size as u64) as usize..batches {
        let lines: Vec<String> = (0..size)
            .map(|i| format!(r#"{{"id":"crash-{k}-{i}","type":"appropriation","fund":"medical","amount":"1.00"}}"#))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let s = ledger.post_lines(&refs)?;
        writeln!(out, "ack {k} {}", s.last_seq.unwrap_or(0))?;
        out.flush()?;
    }
    Ok(())
}
