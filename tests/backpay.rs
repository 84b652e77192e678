//! Back-payment under the 2019 opinion, as a table: `tests/fixtures/backpay.jsonl` holds one
//! case per line — a `backpay` event, the expected figures (hand calculations in `note`), or
//! the refusal. Keys ending in `~` expect a substring; dotted keys reach into objects.

mod common;

use common::*;

fn lookup<'a>(v: &'a serde_json::Value, dotted: &str) -> &'a serde_json::Value {
    dotted.split('.').fold(v, |v, k| &v[k])
}

#[test]
fn backpay_assessments_follow_the_opinion() {
    let l = TestLedger::new();
    let mut failures = Vec::new();
    for line in include_str!("fixtures/backpay.jsonl").lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = case["case"].as_str().unwrap();
        let file = write_file(l.dir.path(), "bp.json", &case["event"].to_string());
        let out = l.run(&["backpay", "assess", file.to_str().unwrap()]);
        for (key, want) in case["expect"].as_object().unwrap() {
            let (key, contains) =
                key.strip_suffix('~').map_or((key.as_str(), false), |k| (k, true));
            if key == "rejected" {
                let err = stderr(&out);
                if out.status.code() != Some(2) || !err.contains(want.as_str().unwrap()) {
                    failures.push(format!(
                        "{name}: expected a refusal with {want}, got {:?}: {err}",
                        out.status.code()
                    ));
                }
                continue;
            }
            if !out.status.success() {
                failures.push(format!("{name}: refused: {}", stderr(&out)));
                break;
            }
            let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let value = lookup(&got, key);
            let ok = if contains {
                value.as_str().is_some_and(|s| s.contains(want.as_str().unwrap()))
            } else {
                value == want
            };
            if !ok {
                failures.push(format!("{name}: {key} is {value}, expected {want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_posted_backpay_is_a_journal_entry_that_moves_no_fund_money() {
    let l = TestLedger::new();
    let line = include_str!("fixtures/backpay.jsonl").lines().next().unwrap();
    let case: serde_json::Value = serde_json::from_str(line).unwrap();
    let file = write_file(l.dir.path(), "bp.json", &case["event"].to_string());
    let out = l.run(&["backpay", "post", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let posted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(posted["posted"]["accepted"], 1);
    let seq = posted["posted"]["last_seq"].as_u64().unwrap().to_string();
    let j = l.json(&["journal", "--json", "--from", &seq, "--limit", "1"]);
    let entry = &j["entries"][0];
    assert_eq!(entry["event"]["type"], "backpay");
    assert_eq!(entry["event"]["gap_months"], 48);
    assert_eq!(entry["postings"].as_array().unwrap().len(), 0);
    l.json(&["verify"]);
}
