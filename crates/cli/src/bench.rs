//! `junbao bench`: durable append throughput of contribution events, end to end
//! (parse, validate against the rules, hash, synced write), on a fresh ledger.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use junbao_engine::{Ledger, system_clock};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Contribution entries to append (after enrolment).
    #[arg(long, default_value_t = 400_000)]
    entries: usize,
    /// Events per post (one synced write each).
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Members enrolled; each pays one premium per month.
    #[arg(long, default_value_t = 8_000)]
    members: usize,
    /// Also discharge this many members and export their medical packages in one bulk export.
    #[arg(long, default_value_t = 0)]
    bulk: usize,
    /// Folder for the ledger; a temporary folder when omitted.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Post the batches one after the other (`post_lines`), not pipelined (`post_stream`).
    #[arg(long)]
    sequential: bool,
    /// After posting, print the figures so far and kill this process with SIGKILL (no
    /// checkpoint at close): with --dir, to time the recovery of the ledger it leaves
    /// (`benches/recovery.sh`).
    #[arg(long, requires = "dir")]
    kill_after_post: bool,
    /// Each member's latest years kept in memory, older ones let go of once stored (0: every
    /// year stays) [default: the ledger's, 2].
    #[arg(long)]
    resident_years: Option<u16>,
    /// Post each premium with its state match right after it (half the entries are
    /// matches): months awaiting a match stay in memory, matched ones may leave it.
    #[arg(long)]
    matched: bool,
    /// Cut a checkpoint every this many entries [default: the ledger's].
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Only the machine's limit: the same premiums' canonical bytes (made by posting them,
    /// untimed) written again with the chain and nothing else, in batches of --batch, into a
    /// fresh store, timed; the figure every other run gives as `raw_entries_per_second`.
    #[arg(long, conflicts_with_all = ["sequential", "kill_after_post", "bulk"])]
    raw: bool,
}

/// The resident set of this process (`VmRSS` of /proc/self/status), in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The JSON line of member `m`'s enrolment (officer, pay 10,000.00 → premium 100.00).
pub fn enroll_line(m: usize) -> String {
    format!(
        r#"{{"id":"enroll-{m}","type":"enroll","member":"M{m:07}","category":"officer","unit":"U{:03}","enlisted_on":"2014-01-01","monthly_pay":"10000.00"}}"#,
        m % 100
    )
}

/// The JSON line of member `m`'s medical premium for month `k` after 2014-01.
pub fn contribution_line(m: usize, k: usize) -> String {
    let year = 2014 + k / 12;
    let month = k % 12 + 1;
    format!(
        r#"{{"id":"c-{m}-{k}","type":"contribution","member":"M{m:07}","fund":"medical","period":"{year:04}-{month:02}","amount":"100.00","unit":"U{:03}"}}"#,
        m % 100
    )
}

/// The state's 1:1 matches of the premiums member `m` paid in a run of `entries` premiums over
/// `members` members (Art. 20): a transfer waits for them.
/// [`contribution_line`] with its id in the unit's namespace (`U007:c-…`), as a unit's poster
/// must post it (docs/HTTP.md, event ids): what `bench-http` posts.
pub fn poster_contribution_line(m: usize, k: usize) -> String {
    contribution_line(m, k).replacen(r#""id":""#, &format!(r#""id":"U{:03}:"#, m % 100), 1)
}

fn match_lines(m: usize, entries: usize, members: usize) -> Vec<String> {
    (m..entries).step_by(members).map(|i| match_line(m, i / members)).collect()
}

/// The state's 1:1 match of member `m`'s premium of month `k` after 2014-01 (Art. 20).
fn match_line(m: usize, k: usize) -> String {
    let (year, month) = (2014 + k / 12, k % 12 + 1);
    format!(
        r#"{{"id":"s-{m}-{k}","type":"subsidy","member":"M{m:07}","fund":"medical","period":"{year:04}-{month:02}","amount":"100.00","basis":"match"}}"#
    )
}

/// The folder for a benchmark's ledger: `dir`, or `ledger` in a temporary folder that lives as
/// long as the returned guard.
pub fn ledger_dir(
    dir: Option<&std::path::Path>,
) -> Result<(Option<tempfile::TempDir>, std::path::PathBuf)> {
    Ok(match dir {
        Some(d) => (None, d.to_path_buf()),
        None => {
            let tmp = tempfile::tempdir().context("creating a temporary folder")?;
            let dir = tmp.path().join("ledger");
            (Some(tmp), dir)
        }
    })
}

/// A new ledger at `dir` with `members` officers enrolled ([`enroll_line`]).
pub fn enrolled_ledger(dir: &std::path::Path, members: usize) -> Result<Ledger> {
    let ledger = Ledger::init(dir, system_clock())?;
    let lines: Vec<String> = (0..members).map(enroll_line).collect();
    post_in_parts(&ledger, &lines)?;
    Ok(ledger)
}

/// Posts `lines` in posts of 10,000 (a benchmark's set-up, untimed); the entries stored.
fn post_in_parts(ledger: &Ledger, lines: &[String]) -> Result<usize> {
    let mut posted = 0;
    for chunk in lines.chunks(10_000) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        posted += ledger.post_lines(&refs)?.accepted;
    }
    Ok(posted)
}

/// The time the raw writer takes for the canonical bytes of the `count` entries from
/// `first_seq` (`junbao_engine::write_raw_journal`: the chain and nothing else), in batches
/// of `batch`, into a fresh store.
fn time_raw(
    ledger: &Ledger,
    first_seq: u64,
    count: usize,
    batch: usize,
) -> Result<std::time::Duration> {
    let raw_bytes: Vec<Vec<u8>> = ledger
        .entries_from(first_seq)
        .take(count)
        .map(|item| item.map(|(stored, _)| stored.bytes))
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(
        raw_bytes.len() == count,
        "the journal ends before entry {}",
        first_seq + count as u64
    );
    let raw_dir = tempfile::tempdir().context("creating a temporary folder")?;
    let (elapsed, _) =
        junbao_engine::write_raw_journal(&raw_dir.path().join("raw"), &raw_bytes, batch)?;
    Ok(elapsed)
}

/// `bench --raw`: the premiums posted untimed ([`post_in_parts`]), then only the raw writer
/// timed over their bytes.
#[allow(clippy::float_arithmetic)]
fn raw_only(ledger: &Ledger, lines: &[String], first_seq: u64, batch: usize) -> Result<()> {
    let posted = post_in_parts(ledger, lines)?;
    let elapsed = time_raw(ledger, first_seq, posted, batch)?;
    outln!(
        "{}",
        serde_json::json!({
            "raw": true,
            "entries": posted,
            "batch": batch,
            "seconds": elapsed.as_secs_f64(),
            "raw_entries_per_second": (posted as f64 / elapsed.as_secs_f64()).round(),
        })
    );
    Ok(())
}

// Floats here are throughput figures for people, never money.
#[allow(clippy::float_arithmetic)]
pub fn run(args: BenchArgs) -> Result<()> {
    let (_tmp, dir) = ledger_dir(args.dir.as_deref())?;
    let months_max = 12 * 12; // 2014-01 .. 2025-12: all in the past
    let per_month = if args.matched { 2 } else { 1 };
    anyhow::ensure!(
        args.entries <= args.members * months_max * per_month,
        "at most {} entries with {} members",
        args.members * months_max * per_month,
        args.members
    );
    let ledger = enrolled_ledger(&dir, args.members)?;
    if let Some(every) = args.checkpoint_every {
        ledger.set_checkpoint_interval(every);
    }
    if let Some(years) = args.resident_years {
        ledger.set_resident_years((years > 0).then_some(years))?;
    }
    let lines: Vec<String> = if args.matched {
        (0..args.entries / 2)
            .flat_map(|i| {
                let (m, k) = (i % args.members, i / args.members);
                [contribution_line(m, k), match_line(m, k)]
            })
            .collect()
    } else {
        (0..args.entries).map(|i| contribution_line(i % args.members, i / args.members)).collect()
    };
    if args.raw {
        return raw_only(&ledger, &lines, ledger.head().seq + 1, args.batch);
    }
    // Sizes with every derived record written (a checkpoint), as a closed ledger has them.
    let size_before = {
        ledger.checkpoint()?;
        ledger.compact()?;
        ledger.size_on_disk()
    };
    let first_seq = ledger.head().seq + 1;
    let batches: Vec<Vec<String>> = lines.chunks(args.batch).map(<[String]>::to_vec).collect();
    let start = Instant::now();
    let mut posted = 0;
    let mut phases = [std::time::Duration::ZERO; 5];
    // Pipelined (`Ledger::post_stream`: parse ahead, rules and write, sync behind), or one
    // `post_lines` after the other with --sequential; every batch is one post either way,
    // acknowledged once durable.
    let answers: Vec<_> = if args.sequential {
        batches
            .iter()
            .map(|b| ledger.post_lines(&b.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect()
    } else {
        ledger.post_stream(batches)
    };
    for s in answers {
        let s = s?;
        posted += s.accepted;
        phases[0] += s.timings.parse;
        phases[1] += s.timings.rules;
        phases[2] += s.timings.write;
        phases[3] += s.timings.tree;
        phases[4] += s.timings.apply;
    }
    let elapsed = start.elapsed();
    if args.kill_after_post {
        let head = ledger.head();
        outln!(
            "{}",
            serde_json::json!({
                "members": args.members,
                "entries": posted,
                "head_seq": head.seq,
                "checkpoint_seq": ledger.checkpoint_seq(),
                "entries_per_second": (posted as f64 / elapsed.as_secs_f64()).round(),
                "resident_bytes": resident_bytes(),
                "books_with_cold_years": ledger.books_with_cold_years(),
                "book_heap_bytes": ledger.book_heap_bytes().0,
            })
        );
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL)
            .context("killing this process")?;
    }
    // The machine's limit in this same run: the premiums' canonical bytes written again with
    // the chain and nothing else, in batches of the same size, into a fresh store.
    let raw_elapsed = time_raw(&ledger, first_seq, posted, args.batch)?;
    let rate = posted as f64 / elapsed.as_secs_f64();
    let raw_rate = posted as f64 / raw_elapsed.as_secs_f64();
    // The checkpoint of the entries posted since the last one (the derived records of up to
    // `CHECKPOINT_ENTRIES` entries written in one batch): timed, it is part of the write path.
    let checkpoint_entries = ledger.head().seq - ledger.checkpoint_seq();
    let checkpoint_start = Instant::now();
    ledger.checkpoint()?;
    let checkpoint_elapsed = checkpoint_start.elapsed();
    ledger.compact()?;
    let size_after = ledger.size_on_disk();
    let sample = ledger.journal(ledger.head().seq, 1)?;
    let canonical = sample.first().map_or(0, |(s, _)| s.bytes.len());
    let verify_start = Instant::now();
    let report = ledger.verify(&|_| {})?;
    let verify_elapsed = verify_start.elapsed();
    // Proofs against the full tree, at random positions.
    let size = ledger.head().seq;
    let proofs = 1_000u64;
    let proof_start = Instant::now();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..proofs {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ledger.inclusion_proof(1 + (x >> 11) % size, None)?;
    }
    let proof_elapsed = proof_start.elapsed();
    // One transfer package: match the first member's premiums and discharge him, then time the
    // export (transfer-out entry, signed digest, the member's entries with their proofs).
    // (Replays of matches already posted, with --matched.)
    let premiums = args.entries / per_month;
    let matches = match_lines(0, premiums, args.members);
    ledger.post_lines(&matches.iter().map(String::as_str).collect::<Vec<_>>())?;
    ledger.post_lines(&[
        r#"{"id":"bench-discharge","type":"discharge","member":"M0000000","on":"2026-01-31","route":"employee"}"#,
    ])?;
    let key_dir = tempfile::tempdir()?;
    let key_path = key_dir.path().join("key");
    junbao_engine::create_signing_key(&key_path)?;
    let key = junbao_engine::load_signing_key(&key_path)?;
    let package_start = Instant::now();
    let package = ledger.transfer_export("M0000000", junbao_ledger::Fund::Medical, "SI-1", &key)?;
    let package_elapsed = package_start.elapsed();
    let mut bulk = serde_json::Value::Null;
    if args.bulk > 0 {
        let ids: Vec<String> =
            (1..=args.bulk.min(args.members - 1)).map(|m| format!("M{m:07}")).collect();
        let mut lines: Vec<String> =
            (1..=ids.len()).flat_map(|m| match_lines(m, premiums, args.members)).collect();
        lines.extend(ids
            .iter()
            .map(|id| format!(r#"{{"id":"bench-discharge-{id}","type":"discharge","member":"{id}","on":"2026-01-31","route":"employee"}}"#)));
        post_in_parts(&ledger, &lines)?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let started = Instant::now();
        let packages = ledger.transfer_export_many(
            &refs,
            junbao_ledger::Fund::Medical,
            "SI-2",
            &key,
            &|_| {},
        )?;
        let elapsed = started.elapsed();
        let bytes: usize = packages
            .iter()
            .map(|p| serde_json::to_string(p).map(|t| t.len()))
            .sum::<Result<usize, _>>()?;
        bulk = serde_json::json!({"packages": packages.len(), "seconds": elapsed.as_secs_f64(), "json_bytes": bytes});
    }
    let result = serde_json::json!({
        "bulk_transfer": bulk,
        "transfer_package_milliseconds": package_elapsed.as_secs_f64() * 1e3,
        "transfer_package_entries": package.entries.len(),
        "tree_size": size,
        "inclusion_proof_microseconds": (proof_elapsed.as_secs_f64() * 1e6 / proofs as f64).round(),
        "entries": posted,
        "batch": args.batch,
        "pipelined": !args.sequential,
        "seconds": elapsed.as_secs_f64(),
        "entries_per_second": rate.round(),
        "raw_entries_per_second": raw_rate.round(),
        "ratio_to_raw": (rate / raw_rate * 100.0).round() / 100.0,
        "seconds_parse": phases[0].as_secs_f64(),
        "seconds_rules_and_hash": phases[1].as_secs_f64(),
        "seconds_synced_write": phases[2].as_secs_f64(),
        "seconds_merkle_tree": phases[3].as_secs_f64(),
        "seconds_law_rules": phases[4].as_secs_f64(),
        "stored_bytes_per_entry": ((size_after.saturating_sub(size_before)) as f64 / posted as f64).round(),
        "canonical_bytes_per_contribution": canonical,
        "verify_entries": report.entries,
        "verify_entries_per_second": (report.entries as f64 / verify_elapsed.as_secs_f64()).round(),
        "resident_bytes": resident_bytes(),
        "books_with_cold_years": ledger.books_with_cold_years(),
        "book_heap_bytes": ledger.book_heap_bytes().0,
        "checkpoint_entries": checkpoint_entries,
        "checkpoint_seconds": checkpoint_elapsed.as_secs_f64(),
        // Posting and the closing checkpoint together: every derived record of the entries
        // posted written, as a ledger that closes after them has it.
        "entries_per_second_with_checkpoint":
            (posted as f64 / (elapsed + checkpoint_elapsed).as_secs_f64()).round(),
    });
    outln!("{result}");
    Ok(())
}
