//! `export journal --format ledger`: a plain-text journal that hledger reads, with the same
//! account names and amounts as `balance`.

mod common;

use std::collections::BTreeMap;

use common::*;

fn ledger_with_activity() -> TestLedger {
    let l = TestLedger::new();
    let mut lines = vec![
        r#"{"id":"a;1","type":"appropriation","fund":"casualty","amount":"500000.00","value_date":"2025-01-02"}"#.to_string(),
        r#"{"id":"sp","type":"enroll","member":"P1","category":"spouse","unit":"U1","enlisted_on":"2023-01-01","monthly_pay":"4000.00","sponsor":"M0"}"#.to_string(),
    ];
    for m in 0..5 {
        lines.insert(
            1,
            enroll(&format!("e{m}"), &format!("M{m}"), "sergeant", "U1", "2021-05-01", "6100.50"),
        );
        lines.push(contribution(&format!("c{m}"), &format!("M{m}"), "2025-02", "61.01", "U1"));
    }
    lines.push(r#"{"id":"p","type":"payout","member":"M1","fund":"casualty","benefit":"disability","grade":6,"cause":"on_duty","on":"2025-06-01","amount":"183015.00","value_date":"2025-06-01"}"#.into());
    lines.push(r#"{"id":"sc","type":"contribution","member":"P1","fund":"spouse","part":"pension","period":"2025-03","amount":"440.00","unit":"U1"}"#.into());
    lines.push(r#"{"id":"r","type":"reversal","of":"c2","reason":"wrong month"}"#.into());
    l.post_ok(&lines.join("\n"));
    l
}

fn our_balances(l: &TestLedger) -> BTreeMap<String, String> {
    let b = l.json(&["balance", "--json"]);
    let mut m = BTreeMap::new();
    for f in b["funds"].as_array().unwrap() {
        for a in f["accounts"].as_array().unwrap() {
            if a["balance"] != "0.00" {
                m.insert(
                    a["account"].as_str().unwrap().to_string(),
                    a["balance"].as_str().unwrap().to_string(),
                );
            }
        }
    }
    m
}

fn export(l: &TestLedger) -> String {
    let out = l.run(&["export", "journal", "--format", "ledger"]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_ledger_export_parsed_back_gives_the_same_balances() {
    let l = ledger_with_activity();
    let text = export(&l);
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("    ") && !l.trim_start().starts_with(';')) {
        let mut parts = line.split_whitespace();
        let (account, amount) = (parts.next().unwrap(), parts.next().unwrap());
        *sums.entry(account.to_string()).or_default() +=
            junbao_ledger::Fen::parse_yuan(amount).unwrap().0;
    }
    let parsed: BTreeMap<String, String> = sums
        .into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| (k, junbao_ledger::Fen(v).to_string()))
        .collect();
    assert_eq!(parsed, our_balances(&l));
    assert!(text.contains("; 2023-01-01 ("), "entries without postings are listed as comments");
}

#[test]
fn hledger_reads_the_export_and_agrees_with_the_trial_balance() {
    let l = ledger_with_activity();
    let file = write_file(l.dir.path(), "junbao.journal", &export(&l));
    let out = std::process::Command::new("hledger")
        .args(["-f", file.to_str().unwrap(), "balance", "--flat", "--no-total", "-O", "csv"])
        .output()
        .expect("hledger is installed by `make setup` (scripts/setup.sh)");
    assert!(out.status.success(), "hledger refused the export: {}", stderr(&out));
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut theirs = BTreeMap::new();
    for row in csv.lines().skip(1) {
        let cells: Vec<String> =
            row.split("\",\"").map(|c| c.trim_matches('"').to_string()).collect();
        let amount =
            junbao_ledger::Fen::parse_yuan(&cells[1]).unwrap_or_else(|e| panic!("{row}: {e}"));
        if amount.0 != 0 {
            theirs.insert(cells[0].clone(), amount.to_string());
        }
    }
    assert_eq!(theirs, our_balances(&l));
}
