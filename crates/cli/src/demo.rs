//! `junbao demo`: a ledger with realistic data for a few thousand servicemen and their spouses,
//! posted the way finance departments post (enrolment, monthly batches), then the auditor's and
//! the clerk's views of it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use junbao_engine::{Ledger, system_clock};
use junbao_ledger::Fen;

/// Marks a folder as made by the demo, so a re-run may replace it and nothing else.
const DEMO_MARKER: &str = "JUNBAO_DEMO";

/// A small deterministic generator, so every run builds the same ledger.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

struct Member {
    id: String,
    category: &'static str,
    unit: String,
    enlisted_on: String,
    pay_fen: i64,
    pays_medical: bool,
}

fn money(fen: i64) -> String {
    Fen(fen).to_string()
}

fn post(ledger: &Ledger, what: &str, lines: &[String]) -> Result<()> {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let s = ledger.post_lines(&refs).with_context(|| format!("posting {what}"))?;
    outln!(
        "  {what:<44} {:>6} entries  (seq {}..{})",
        s.accepted,
        s.first_seq.unwrap_or(0),
        s.last_seq.unwrap_or(0)
    );
    Ok(())
}

pub fn run(data: &Path, members: usize) -> Result<()> {
    if data.exists() {
        if data.join(DEMO_MARKER).exists() {
            std::fs::remove_dir_all(data)
                .with_context(|| format!("removing the old demo at {}", data.display()))?;
        } else if std::fs::read_dir(data).map(|mut d| d.next().is_some()).unwrap_or(true) {
            bail!(
                "{} exists and is not a demo ledger; choose another --data folder",
                data.display()
            );
        }
    }
    let ledger = Ledger::init(data, system_clock())?;
    std::fs::write(data.join(DEMO_MARKER), "made by `junbao demo`; safe to delete\n")?;
    // The demo is throw-away: its key stays inside its folder (the legacy place, which
    // `default_key_path` still finds), so that removing the folder removes everything.
    let key_path = data.join("digest.key");
    junbao_engine::create_signing_key(&key_path)?;
    outln!("demo ledger at {}\n", data.display());
    outln!("posting, as the finance departments would:");

    let mut rng = Lcg(20_120_701);
    let mut roster = Vec::with_capacity(members);
    let mut lines = Vec::new();
    for i in 0..members {
        let (category, pay_fen) = match rng.next(100) {
            0..=14 => ("officer", 900_000 + 1_000 * rng.next(600) as i64),
            15..=19 => ("civilian_cadre", 700_000 + 1_000 * rng.next(400) as i64),
            20..=59 => ("sergeant", 550_000 + 1_000 * rng.next(350) as i64),
            60..=94 => ("conscript", 110_000 + 1_000 * rng.next(50) as i64),
            _ => ("cadet", 90_000 + 1_000 * rng.next(30) as i64),
        };
        let year = if category == "conscript" { 2023 + rng.next(2) } else { 2012 + rng.next(12) };
        let m = Member {
            id: format!("M{i:05}"),
            category,
            unit: format!("U{:02}", rng.next(20) + 1),
            enlisted_on: format!("{year}-{:02}-{:02}", rng.next(12) + 1, rng.next(28) + 1),
            pay_fen,
            pays_medical: matches!(category, "officer" | "civilian_cadre" | "sergeant"),
        };
        lines.push(format!(
            r#"{{"id":"enroll-{0}","type":"enroll","member":"{0}","category":"{1}","unit":"{2}","enlisted_on":"{3}","monthly_pay":"{4}"}}"#,
            m.id, m.category, m.unit, m.enlisted_on, money(m.pay_fen)
        ));
        roster.push(m);
    }
    post(&ledger, "enrolment of servicemen", &lines)?;

    // Spouses of some officers and sergeants who followed them and have no job.
    let mut spouses = Vec::new();
    lines.clear();
    for m in roster.iter().filter(|m| m.pays_medical).step_by(12) {
        let id = format!("S{}", &m.id[1..]);
        lines.push(format!(
            r#"{{"id":"enroll-{id}","type":"enroll","member":"{id}","category":"spouse","unit":"{}","enlisted_on":"2024-01-01","monthly_pay":"4000.00","sponsor":"{}"}}"#,
            m.unit, m.id
        ));
        spouses.push((id, m.unit.clone()));
    }
    post(&ledger, "enrolment of accompanying spouses", &lines)?;

    post(
        &ledger,
        "central appropriations (Art. 31)",
        &[
            r#"{"id":"approp-2025-casualty","type":"appropriation","fund":"casualty","amount":"30000000.00","value_date":"2025-01-15"}"#.to_string(),
        ],
    )?;

    for month in 1..=12 {
        let period = format!("2025-{month:02}");
        lines.clear();
        for m in roster.iter().filter(|m| m.pays_medical) {
            let premium = Fen(m.pay_fen).mul_ppm(10_000);
            lines.push(format!(
                r#"{{"id":"med-{0}-{period}","type":"contribution","member":"{0}","fund":"medical","period":"{period}","amount":"{premium}","unit":"{1}","value_date":"{period}-15"}}"#,
                m.id, m.unit
            ));
            lines.push(format!(
                r#"{{"id":"match-{0}-{period}","type":"subsidy","member":"{0}","fund":"medical","period":"{period}","amount":"{premium}","basis":"match","value_date":"{period}-15"}}"#,
                m.id
            ));
        }
        for (s, unit) in &spouses {
            for (part, premium, subsidy, basis) in [
                ("pension", "440.00", "480.00", "standard"),
                ("medical", "40.00", "40.00", "match"),
            ] {
                lines.push(format!(
                    r#"{{"id":"sp-{part}-{s}-{period}","type":"contribution","member":"{s}","fund":"spouse","part":"{part}","period":"{period}","amount":"{premium}","unit":"{unit}","value_date":"{period}-15"}}"#
                ));
                lines.push(format!(
                    r#"{{"id":"sps-{part}-{s}-{period}","type":"subsidy","member":"{s}","fund":"spouse","part":"{part}","period":"{period}","amount":"{subsidy}","basis":"{basis}","value_date":"{period}-15"}}"#
                ));
            }
        }
        post(&ledger, &format!("monthly batch {period}: premiums and matches"), &lines)?;
    }

    post(
        &ledger,
        "medical interest 2025 at the standard rate",
        &[r#"{"id":"interest-medical-2025-12","type":"interest","fund":"medical","period":"2025-12","rate":"1.5"}"#.to_string()],
    )?;

    // A serviceman moves to another unit: his premiums from then on are withheld by it.
    let moving = roster.iter().find(|m| m.pays_medical).context("demo has a paying member")?;
    let new_unit = if moving.unit == "U21" { "U22" } else { "U21" };
    post(
        &ledger,
        "a reassignment (unit_change, Art. 32)",
        &[format!(
            r#"{{"id":"unit-{0}","type":"unit_change","member":"{0}","unit":"{new_unit}","on":"2026-01-01"}}"#,
            moving.id
        )],
    )?;
    // Art. 29: a spouse refused a placement; her subsidy stops from 2026-01, then resumes.
    if let Some((spouse, _)) = spouses.first() {
        post(
            &ledger,
            "a spouse subsidy suspended and resumed (Art. 29)",
            &[
                format!(
                    r#"{{"id":"susp-{spouse}","type":"suspend","member":"{spouse}","fund":"spouse","from":"2026-01","reason":"refused a placement without reason","value_date":"2026-01-10"}}"#
                ),
                format!(
                    r#"{{"id":"resume-{spouse}","type":"resume","member":"{spouse}","fund":"spouse","from":"2026-04","reason":"accepted training","value_date":"2026-04-02"}}"#
                ),
            ],
        )?;
    }

    // Casualty benefits: a disability (grade 6, on duty) and the Art. 10 refusal next to it.
    let injured =
        roster.iter().find(|m| m.category == "sergeant").context("demo has a sergeant")?;
    let benefit = Fen(injured.pay_fen * 30);
    post(
        &ledger,
        "disability benefit, grade 6 (Art. 8)",
        &[format!(
            r#"{{"id":"payout-{0}","type":"payout","member":"{0}","fund":"casualty","benefit":"disability","grade":6,"cause":"on_duty","on":"2025-07-28","amount":"{benefit}","value_date":"2025-08-03"}}"#,
            injured.id
        )],
    )?;
    // Art. 47: part of it was obtained with a forged certificate and is returned, capped at
    // what the payout paid.
    post(
        &ledger,
        "a recovery of that payout (Art. 47)",
        &[format!(
            r#"{{"id":"recovery-{0}","type":"recovery","member":"{0}","fund":"casualty","amount":"1000.00","of":"payout-{0}","reason":"forged certificate, ordered returned","value_date":"2026-02-10"}}"#,
            injured.id
        )],
    )?;
    // Art. 22: medical insurance from before enlistment, brought in from a civilian agency.
    post(
        &ledger,
        "insurance brought in from a civilian agency (Art. 22)",
        &[format!(
            r#"{{"id":"transfer-in-{0}","type":"transfer_in","member":"{0}","fund":"medical","agency":"SI-310101","amount":"2400.00","value_date":"2026-02-01"}}"#,
            moving.id
        )],
    )?;

    // Discharges in mid-2026: pension subsidy computed by the ledger, conscripts' medical
    // subsidy at the standard, then the transfer-out of the medical account.
    lines.clear();
    let leaving: Vec<&Member> = roster.iter().skip(3).step_by(97).take(20).collect();
    for (i, m) in leaving.iter().enumerate() {
        // Most join the employees' pension (Art. 16), some a residents' scheme (Art. 17).
        let route = if i % 5 == 4 { "resident" } else { "employee" };
        lines.push(format!(
            r#"{{"id":"discharge-{0}","type":"discharge","member":"{0}","on":"2026-06-30","route":"{route}"}}"#,
            m.id
        ));
    }
    post(&ledger, "discharges (pension subsidy, Art. 13-14, 17)", &lines)?;
    // An officer resettled by retirement (Art. 19): the route is recorded, no subsidy computed.
    let retiring = roster
        .iter()
        .skip(1)
        .filter(|m| m.category == "officer")
        .find(|m| !leaving.iter().any(|l| l.id == m.id))
        .context("demo has an officer who stays")?;
    post(
        &ledger,
        "a discharge by retirement (Art. 19: no subsidy, no transfer)",
        &[format!(
            r#"{{"id":"discharge-{0}","type":"discharge","member":"{0}","on":"2026-06-30","route":"retirement"}}"#,
            retiring.id
        )],
    )?;
    let state_subsidies: Vec<String> = ledger.with_state(|state, _| {
        leaving
            .iter()
            .filter(|m| !m.pays_medical)
            .filter_map(|m| {
                let id = junbao_ledger::ids::MemberId::parse(&m.id).ok()?;
                let ms = state.members.get(&id)?;
                let amount = junbao_ledger::rules::conscript_medical_subsidy(
                    ms,
                    &state.standards,
                    ms.discharged_on?,
                )
                .ok()?;
                Some(format!(
                    r#"{{"id":"medstd-{0}","type":"subsidy","member":"{0}","fund":"medical","period":"2026-06","amount":"{amount}","basis":"standard"}}"#,
                    m.id
                ))
            })
            .collect()
    });
    post(&ledger, "conscripts' medical subsidy (Art. 20 para. 2)", &state_subsidies)?;
    // The clerk's view: one member's medical package, exported and checked as the agency would.
    let clerk = leaving.first().context("demo has leavers")?;
    let package = ledger.transfer_export(
        &clerk.id,
        junbao_ledger::Fund::Medical,
        "SI-110105",
        &junbao_engine::load_signing_key(&key_path)?,
    )?;
    let package_path = data.join(format!("transfer-{}-medical.json", clerk.id));
    std::fs::write(&package_path, serde_json::to_string_pretty(&package)?)?;
    let pinned = junbao_engine::load_signing_key(&key_path)?.verifying_key().to_bytes();
    let checked = junbao_engine::verify_package(&serde_json::to_value(&package)?, &pinned, None)?;
    outln!(
        "  transfer package of {} (medical, {} entries, total {}) → {}, verified offline",
        checked.member,
        checked.entries,
        checked.total,
        package_path.display()
    );
    lines.clear();
    for m in &leaving {
        for fund in ["pension", "medical"] {
            if fund == "medical" && m.id == clerk.id {
                continue;
            }
            lines.push(format!(
                r#"{{"id":"xfer-{fund}-{0}","type":"transfer_out","member":"{0}","fund":"{fund}","agency":"SI-110105"}}"#,
                m.id
            ));
        }
    }
    post(&ledger, "transfers to the civilian agency (Art. 16, 23)", &lines)?;

    // A mistaken appropriation, corrected by a reversal: nothing is edited or deleted.
    post(
        &ledger,
        "a mistaken appropriation",
        &[r#"{"id":"approp-dup","type":"appropriation","fund":"casualty","amount":"30000000.00","value_date":"2025-01-15"}"#.to_string()],
    )?;
    post(
        &ledger,
        "its reversal",
        &[r#"{"id":"rev-approp-dup","type":"reversal","of":"approp-dup","reason":"entered twice","value_date":"2025-01-16"}"#.to_string()],
    )?;

    outln!("\nwhat the ledger refuses (nothing is stored):");
    let conscript =
        roster.iter().find(|m| m.category == "conscript" && !leaving.iter().any(|l| l.id == m.id));
    let mut refused = vec![format!(
        r#"{{"id":"bad-1","type":"contribution","member":"{}","fund":"casualty","period":"2025-03","amount":"10.00","unit":"{}"}}"#,
        injured.id, injured.unit
    )];
    if let Some(c) = conscript {
        refused.push(format!(
            r#"{{"id":"bad-2","type":"contribution","member":"{}","fund":"medical","period":"2025-03","amount":"12.00","unit":"{}"}}"#,
            c.id, c.unit
        ));
    }
    refused.push(
        r#"{"id":"bad-3","type":"appropriation","fund":"medical","amount":"10.005"}"#.to_string(),
    );
    let refs: Vec<&str> = refused.iter().map(String::as_str).collect();
    match ledger.post_lines(&refs) {
        Ok(_) => bail!("the demo's bad lines were accepted"),
        Err(e) => {
            for line in e.to_string().lines() {
                outln!("  {line}");
            }
        }
    }

    outln!("\nreplaying the appropriation (same id, same content) stores nothing:");
    let again = ledger.post_lines(&[
        r#"{"id":"approp-2025-casualty","type":"appropriation","fund":"casualty","amount":"30000000.00","value_date":"2025-01-15"}"#,
    ])?;
    outln!("  {}", serde_json::to_string(&again)?);

    crate::admin::demo_year_end(&ledger, &key_path, data)?;

    outln!("\ntrial balance per fund (every total must be 0.00):");
    let sheet = ledger.balances(None, None);
    for f in &sheet.funds {
        let mut summary = String::new();
        let mut groups: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        for a in &f.accounts {
            let (account, fen) = (&a.account, a.balance.0);
            let parts: Vec<&str> = account.split(':').collect();
            let group = if parts.get(1) == Some(&"member") {
                format!("{}:member:*:{}", parts[0], parts[3..].join(":"))
            } else if parts.get(1) == Some(&"agency") {
                format!("{}:agency:*:payable", parts[0])
            } else if parts.get(1) == Some(&"unit") {
                format!("{}:unit:*:{}:*", parts[0], parts.get(3).unwrap_or(&""))
            } else {
                account.clone()
            };
            *groups.entry(group).or_default() += fen;
        }
        for (group, fen) in groups {
            let _ = writeln!(summary, "    {group:<44} {:>18}", Fen(fen).to_string());
        }
        outln!("  fund {:<10} total {:>12}\n{summary}", f.fund.name(), f.total.to_string());
    }

    outln!("auditor: verify the chain, the Merkle tree and the balances");
    let report = ledger.verify(&|_| {})?;
    outln!("  verified {} entries, head {}", report.entries, report.head);
    let digest = ledger.digest(&junbao_engine::load_signing_key(&key_path)?)?;
    let digest_path = data.join("digest.json");
    std::fs::write(&digest_path, digest.to_json().to_string())?;
    outln!(
        "  signed digest: tree size {}, root {}… → {}",
        digest.tree_size,
        &hex::encode(digest.root)[..16],
        digest_path.display()
    );
    let payout_id = format!("payout-{}", injured.id);
    let mut payout_seq = None;
    for item in ledger.entries_from(1) {
        let (s, e) = item?;
        if e.event.id.as_str() == payout_id {
            payout_seq = Some(s.seq);
            break;
        }
    }
    let payout_seq = payout_seq.context("the payout entry")?;
    let proof = ledger.inclusion_proof(payout_seq, None)?;
    outln!(
        "  inclusion proof of the disability payout (entry {payout_seq}): {} hashes to the signed root",
        proof.path.len()
    );
    let export_path = data.join("journal-export.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&export_path)?);
    for item in ledger.entries_from(1) {
        let (stored, entry) = item?;
        use std::io::Write as _;
        serde_json::to_writer(&mut out, &junbao_engine::export_line(&stored, &entry))?;
        writeln!(out)?;
    }
    drop(out);
    let offline = junbao_engine::verify_export(
        std::io::BufReader::new(std::fs::File::open(&export_path)?),
        Some((&digest, &pinned)),
    )?;
    outln!(
        "  exported journal re-verified offline against the digest: {} entries → {}\n",
        offline.entries,
        export_path.display()
    );
    outln!("try:  junbao --data {} balance --member {}", data.display(), injured.id);
    outln!(
        "      junbao --data {} journal --from {} --limit 5",
        data.display(),
        report.entries.saturating_sub(4)
    );
    outln!("      junbao --data {} statement --member {}", data.display(), injured.id);
    outln!("      junbao --data {} report reconcile", data.display());
    outln!("      junbao --data {} report final-accounts --year 2025", data.display());
    // What an auditor or agency pins: the ledger's public key, written beside the demo.
    let pub_path = data.join("ledger.pub");
    std::fs::write(&pub_path, format!("{}\n", hex::encode(pinned)))?;
    outln!("      junbao --data {} key show > ledger.pub   # the key they pin", data.display());
    outln!(
        "      junbao verify --export {} --key {} --digest {}",
        export_path.display(),
        pub_path.display(),
        digest_path.display()
    );
    outln!("      junbao transfer verify {} --key {}", package_path.display(), pub_path.display());
    outln!(
        "      junbao --data {} token add --name audit-1 --role auditor   # then: serve",
        data.display()
    );
    outln!("      junbao --data {} serve --addr 127.0.0.1:8080   # docs/HTTP.md", data.display());
    Ok(())
}
