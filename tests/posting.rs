//! Posting through the real binary: all or nothing, idempotency, exit statuses, outputs.

mod common;

use common::*;

fn month_of_premiums(members: usize) -> String {
    let mut text = String::new();
    for m in 0..members {
        text.push_str(&enroll(
            &format!("e{m}"),
            &format!("M{m:05}"),
            "officer",
            "U1",
            "2020-01-01",
            "9200.00",
        ));
        text.push('\n');
        text.push_str(&contribution(
            &format!("c{m}"),
            &format!("M{m:05}"),
            "2024-03",
            "92.00",
            "U1",
        ));
        text.push('\n');
    }
    text
}

#[test]
fn a_bad_line_in_a_10000_line_file_stores_nothing_and_names_the_line() {
    let l = TestLedger::new();
    let head_before =
        l.json(&["journal", "--json", "--limit", "1000"])["entries"].as_array().unwrap().len();
    let mut lines: Vec<String> = month_of_premiums(5_000).lines().map(String::from).collect();
    assert_eq!(lines.len(), 10_000);
    lines[7_316] = contribution("c3658", "M03658", "2024-03", "92.001", "U1");
    let file = write_file(l.dir.path(), "march.jsonl", &(lines.join("\n") + "\n"));
    let out = l.run(&["post", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("line 7317: field \"amount\": more than two decimals"),
        "{}",
        stderr(&out)
    );
    let after =
        l.json(&["journal", "--json", "--limit", "1000"])["entries"].as_array().unwrap().len();
    assert_eq!(after, head_before, "nothing may be stored from a refused file");
    l.json(&["verify"]);
}

#[test]
fn every_bad_line_is_reported_up_to_the_limit() {
    let l = TestLedger::new();
    let mut lines: Vec<String> = month_of_premiums(100).lines().map(String::from).collect();
    for i in [3usize, 9, 15] {
        lines[i] = contribution(
            &format!("c{}", i / 2),
            &format!("M{:05}", i / 2),
            "2024-03",
            "1,00",
            "U1",
        );
    }
    let out = l.post(&lines.join("\n"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for line in [4, 10, 16] {
        assert!(err.contains(&format!("line {line}: field \"amount\"")), "{err}");
    }
    assert!(err.contains("3 lines refused"), "{err}");
}

#[test]
fn replay_returns_the_original_sequence_numbers_and_stores_nothing() {
    let l = TestLedger::new();
    let text = month_of_premiums(20);
    let first = l.post_ok(&text);
    assert_eq!(first["accepted"], 40);
    let again = l.post_ok(&text);
    assert_eq!(again["accepted"], 0);
    assert_eq!(again["replayed"], 40);
    assert_eq!(again["first_seq"], first["first_seq"]);
    assert_eq!(again["last_seq"], first["last_seq"]);
    assert_eq!(again["head"], first["head"]);
}

/// A large post whose ids are looked up in the stored index in parts, on the thread pool:
/// every stored id is found as the replay of its own line (a part answered for another would
/// be "different content"), the new ones are stored, in the file's order.
#[test]
fn a_large_post_mixing_stored_and_new_ids_replays_each_stored_one_as_itself() {
    let l = TestLedger::new();
    let text = month_of_premiums(5_000);
    // Posted by a process of its own: its close checkpoints, so the ids are in the stored index.
    assert_eq!(l.post_ok(&text)["accepted"], 10_000);
    let mut mixed = String::new();
    for (m, pair) in text.lines().collect::<Vec<_>>().chunks(2).enumerate() {
        for line in pair {
            mixed.push_str(line);
            mixed.push('\n');
        }
        let april = contribution(&format!("d{m}"), &format!("M{m:05}"), "2024-04", "92.00", "U1");
        mixed.push_str(&april);
        mixed.push('\n');
    }
    let file = write_file(l.dir.path(), "april.jsonl", &mixed);
    let out = l.run(&["post", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((s["accepted"].as_u64(), s["replayed"].as_u64()), (Some(5_000), Some(10_000)));
    let last = l.json(&["journal", "--json", "--from", &s["last_seq"].to_string(), "--limit", "1"]);
    assert_eq!(last["entries"][0]["event"]["id"], "d4999");
    l.json(&["verify"]);
}

#[test]
fn conflicting_replay_is_rejected_with_status_2() {
    let l = TestLedger::new();
    l.post_ok(&enroll("e1", "M1", "officer", "U1", "2020-01-01", "9200.00"));
    let out = l.post(&enroll("e1", "M1", "officer", "U1", "2020-01-01", "9300.00"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("field \"id\""), "{}", stderr(&out));
    assert!(stderr(&out).contains("different content"), "{}", stderr(&out));
}

#[test]
fn the_same_id_twice_in_one_batch_is_one_entry() {
    let l = TestLedger::new();
    let e = enroll("e1", "M1", "officer", "U1", "2020-01-01", "9200.00");
    let s = l.post_ok(&format!("{e}\n{e}\n"));
    assert_eq!(s["accepted"], 1);
    assert_eq!(s["replayed"], 1);
}

#[test]
fn balance_json_follows_the_contract() {
    let l = TestLedger::new();
    l.post_ok(&month_of_premiums(1));
    let b = l.json(&["balance", "--json"]);
    assert!(b["as_of_seq"].as_u64().unwrap() > 0);
    let funds: Vec<&str> =
        b["funds"].as_array().unwrap().iter().map(|f| f["fund"].as_str().unwrap()).collect();
    assert_eq!(funds, ["casualty", "pension", "medical", "spouse"]);
    for f in b["funds"].as_array().unwrap() {
        assert_eq!(f["total"], "0.00");
    }
    assert_eq!(account_balance(&b, "medical:member:M00000:personal").as_deref(), Some("92.00"));
    assert_eq!(account_balance(&b, "medical:income:personal").as_deref(), Some("-92.00"));
    let only = l.json(&["balance", "--json", "--fund", "medical", "--member", "M00000"]);
    assert_eq!(only["funds"].as_array().unwrap().len(), 1);
    assert_eq!(only["funds"][0]["accounts"].as_array().unwrap().len(), 1);
}

#[test]
fn init_records_the_seed_standards_as_entries() {
    let l = TestLedger::new();
    let j = l.json(&["journal", "--json"]);
    let entries = j["entries"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["event"]["type"] == "standard"));
    assert!(
        entries
            .iter()
            .any(|e| e["event"]["name"] == "medical_personal_rate" && e["event"]["value"] == "1")
    );
    assert_eq!(entries[0]["seq"], 1);
}

#[test]
fn init_refuses_an_existing_ledger_and_commands_refuse_a_missing_one() {
    let l = TestLedger::new();
    let out = l.run(&["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let missing = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .arg("--data")
        .arg(missing.path().join("nothing"))
        .arg("verify")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("junbao init"), "{}", stderr(&out));
}

#[test]
fn balance_export_by_unit_and_as_of_a_date_adds_up() {
    let l = TestLedger::new();
    let lines = [
        enroll("e1", "M1", "officer", "U1", "2020-01-01", "9200.00"),
        enroll("e2", "M2", "officer", "U2", "2020-01-01", "8000.00"),
        r#"{"id":"c1","type":"contribution","member":"M1","fund":"medical","period":"2024-03","amount":"92.00","unit":"U1","value_date":"2024-03-20"}"#.to_string(),
        r#"{"id":"c2","type":"contribution","member":"M2","fund":"medical","period":"2024-03","amount":"80.00","unit":"U2","value_date":"2024-03-20"}"#.to_string(),
        r#"{"id":"c3","type":"contribution","member":"M1","fund":"medical","period":"2024-04","amount":"92.00","unit":"U1","value_date":"2024-04-20"}"#.to_string(),
    ];
    l.post_ok(&lines.join("\n"));
    let out = l.run(&["export", "balances", "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("fund,member,unit,account,balance\n"), "{csv}");
    assert!(csv.contains("medical,M1,U1,medical:member:M1:personal,184.00\n"), "{csv}");
    for fund in ["casualty", "pension", "medical", "spouse"] {
        assert!(
            csv.contains(&format!("{fund},,,TOTAL,0.00\n")),
            "{fund} does not total zero: {csv}"
        );
    }
    let march = l.json(&["export", "balances", "--format", "json", "--as-of", "2024-03-31"]);
    let medical = &march["funds"][2];
    assert_eq!(medical["total"], "0.00");
    let m1 = medical["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == "medical:member:M1:personal")
        .unwrap();
    assert_eq!(m1["balance"], "92.00");
    let u2 = l.json(&["export", "balances", "--format", "json", "--unit", "U2"]);
    let accounts = u2["funds"][2]["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["member"], "M2");
    assert_eq!(u2["funds"][2]["total"], "80.00");
    assert_eq!(l.run(&["export", "balances", "--as-of", "2024-13-01"]).status.code(), Some(2));
}
