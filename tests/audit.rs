//! The auditor's checks through the real binary: signed digests, RFC 6962 proofs, and the
//! tamper matrix on an exported journal verified offline.

mod common;

use common::*;
use junbao_ledger::merkle::{verify_consistency, verify_inclusion};
use sha2::{Digest, Sha256};

fn h32(v: &serde_json::Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn ledger_with_digests() -> (TestLedger, std::path::PathBuf, std::path::PathBuf, Vec<String>) {
    let l = TestLedger::new();
    let mut lines = vec![];
    for m in 0..30 {
        lines.push(enroll(
            &format!("e{m}"),
            &format!("M{m}"),
            "officer",
            "U1",
            "2020-01-01",
            "9200.00",
        ));
        lines.push(contribution(&format!("c{m}"), &format!("M{m}"), "2024-03", "92.00", "U1"));
    }
    l.post_ok(&lines[..40].join("\n"));
    let d1 = l.run(&["digest"]);
    assert!(d1.status.success(), "{}", stderr(&d1));
    let d1 = write_file(l.dir.path(), "d1.json", &String::from_utf8(d1.stdout).unwrap());
    l.post_ok(&lines[40..].join("\n"));
    let d2 = l.run(&["digest"]);
    let d2 = write_file(l.dir.path(), "d2.json", &String::from_utf8(d2.stdout).unwrap());
    let export = l.run(&["export", "journal", "--format", "jsonl"]);
    assert!(export.status.success(), "{}", stderr(&export));
    let export: Vec<String> =
        String::from_utf8(export.stdout).unwrap().lines().map(String::from).collect();
    (l, d1, d2, export)
}

fn verify_offline(
    l: &TestLedger,
    lines: &[String],
    digest: Option<&std::path::Path>,
) -> std::process::Output {
    let file = write_file(l.dir.path(), "export.jsonl", &(lines.join("\n") + "\n"));
    let key = l.public_key_file();
    let mut args =
        vec!["verify", "--export", file.to_str().unwrap(), "--key", key.to_str().unwrap()];
    if let Some(d) = digest {
        args.extend(["--digest", d.to_str().unwrap()]);
    }
    // No --data: offline verification must not need the database.
    std::process::Command::new(bin()).args(&args).current_dir(l.dir.path()).output().unwrap()
}

#[test]
fn an_untouched_export_verifies_offline_against_both_digests() {
    let (l, d1, d2, export) = ledger_with_digests();
    let size = |d: &std::path::Path| -> usize {
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d).unwrap()).unwrap();
        d["tree_size"].as_u64().unwrap() as usize
    };
    assert_eq!(size(&d2), export.len());
    // Each digest verifies the export up to its own tree size.
    for d in [&d1, &d2] {
        let out = verify_offline(&l, &export[..size(d)], Some(d));
        assert!(out.status.success(), "{}", stderr(&out));
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["verified"], true);
    }
}

/// Entries after the digest's tree size chain onto the signed ones, but nothing signed covers
/// them: a copy of a payout appended with a correct chain hash must not be called verified.
#[test]
fn entries_after_the_digests_tree_size_are_not_verified() {
    let (l, d1, _d2, export) = ledger_with_digests();
    let out = verify_offline(&l, &export, Some(&d1));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["verified"], false);
    let signed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&d1).unwrap()).unwrap();
    let tail = export.len() as u64 - signed["tree_size"].as_u64().unwrap();
    assert!(tail > 0);
    assert_eq!(answer["unsigned_entries"], tail);
    assert!(stderr(&out).contains("not signed, not verified"), "{}", stderr(&out));
}

#[test]
fn tamper_matrix_every_change_to_the_export_is_found() {
    let (l, _d1, d2, export) = ledger_with_digests();
    let n = export.len();
    let entry = |i: usize| -> serde_json::Value { serde_json::from_str(&export[i]).unwrap() };

    // One changed byte of an entry.
    let mut changed = export.clone();
    let mut e = entry(n / 2);
    let mut bytes = hex::decode(e["bytes"].as_str().unwrap()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    e["bytes"] = serde_json::json!(hex::encode(&bytes));
    changed[n / 2] = e.to_string();
    // A deleted entry; two swapped; the tail cut.
    let mut deleted = export.clone();
    deleted.remove(n / 3);
    let mut swapped = export.clone();
    swapped.swap(10, 11);
    let cut = export[..n - 5].to_vec();
    for (what, lines) in
        [("changed byte", &changed), ("deleted entry", &deleted), ("swapped entries", &swapped)]
    {
        let out = verify_offline(&l, lines, None);
        assert_eq!(out.status.code(), Some(3), "{what} not found: {}", stderr(&out));
    }
    let out = verify_offline(&l, &cut, Some(&d2));
    assert_eq!(out.status.code(), Some(3), "cut tail not found");
    assert!(stderr(&out).contains("tail was cut"), "{}", stderr(&out));
}

#[test]
fn a_tail_replaced_with_a_recomputed_chain_is_found_against_the_earlier_digest() {
    let (l, d1, _d2, export) = ledger_with_digests();
    // Rewrite entry 30's event id by one letter, then recompute every later chain hash, as
    // someone who controls the database could.
    let mut forged = export.clone();
    let mut previous = [0u8; 32];
    for (i, line) in forged.iter_mut().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut bytes = hex::decode(v["bytes"].as_str().unwrap()).unwrap();
        if i == 29 {
            let pos = bytes.iter().position(|b| *b == b'e' || *b == b'c').expect("an id letter");
            bytes[pos] = b'x';
            v["bytes"] = serde_json::json!(hex::encode(&bytes));
        }
        let mut h = Sha256::new();
        h.update(previous);
        h.update(&bytes);
        previous = h.finalize().into();
        v["hash"] = serde_json::json!(hex::encode(previous));
        *line = v.to_string();
    }
    // The chain alone is consistent again, which is why, without a digest, it is not called
    // verified …
    let out = verify_offline(&l, &forged, None);
    assert!(out.status.success(), "the forged chain should be self-consistent: {}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["verified"], false);
    assert_eq!(answer["chain_consistent"], true);
    // … but not with the digest signed before the forgery.
    let out = verify_offline(&l, &forged, Some(&d1));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn a_digest_with_a_changed_signature_or_root_is_refused() {
    let (l, d1, _d2, export) = ledger_with_digests();
    let mut d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&d1).unwrap()).unwrap();
    let mut sig = hex::decode(d["signature"].as_str().unwrap()).unwrap();
    sig[0] ^= 1;
    d["signature"] = serde_json::json!(hex::encode(sig));
    let bad = write_file(l.dir.path(), "bad.json", &d.to_string());
    let out = verify_offline(&l, &export, Some(&bad));
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("signature"), "{}", stderr(&out));
}

#[test]
fn inclusion_and_consistency_proofs_verify_against_the_signed_roots() {
    let (l, d1, d2, export) = ledger_with_digests();
    let d1: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&d1).unwrap()).unwrap();
    let d2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&d2).unwrap()).unwrap();
    let (n1, n2) = (d1["tree_size"].as_u64().unwrap(), d2["tree_size"].as_u64().unwrap());
    for seq in [1, 7, n1, n1 + 1, n2] {
        let p = l.json(&["proof", "inclusion", "--seq", &seq.to_string()]);
        assert_eq!(p["root"], d2["root"]);
        let line: serde_json::Value = serde_json::from_str(&export[seq as usize - 1]).unwrap();
        let leaf = junbao_ledger::merkle::leaf_hash(
            &hex::decode(line["bytes"].as_str().unwrap()).unwrap(),
        );
        assert_eq!(hex::encode(leaf), p["leaf_hash"]);
        let path: Vec<[u8; 32]> = p["path"].as_array().unwrap().iter().map(h32).collect();
        verify_inclusion(seq - 1, n2, &leaf, &path, &h32(&d2["root"])).unwrap();
    }
    let p = l.json(&["proof", "inclusion", "--seq", "3", "--tree-size", &n1.to_string()]);
    assert_eq!(p["root"], d1["root"]);
    let c = l.json(&["proof", "consistency", "--from", &n1.to_string(), "--to", &n2.to_string()]);
    let path: Vec<[u8; 32]> = c["path"].as_array().unwrap().iter().map(h32).collect();
    verify_consistency(n1, n2, &h32(&d1["root"]), &h32(&d2["root"]), &path).unwrap();
    let out = l.run(&["proof", "inclusion", "--seq", "99999"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Rewrites entry `seq` in the database and recomputes its stored chain hash, as someone with
/// write access to the database could.
fn rewrite_entry(l: &TestLedger, seq: u64) {
    let ledger = junbao_engine::Ledger::open(&l.data(), junbao_engine::system_clock()).unwrap();
    let mut e = ledger.store_for_tests().entry(seq).unwrap().unwrap();
    let prev = ledger.store_for_tests().entry(seq - 1).unwrap().unwrap().chain_hash;
    let pos = e.bytes.iter().position(|b| *b == b'e' || *b == b'c').unwrap();
    e.bytes[pos] = b'x';
    e.chain_hash = junbao_ledger::entry::chain_next(&prev, &e.bytes);
    ledger.store_for_tests().tamper_entry(&e).unwrap();
}

#[test]
fn verify_from_a_digest_checks_what_was_appended_since() {
    let (l, d1, _d2, _export) = ledger_with_digests();
    let out = l.run(&["verify", "--from-digest", d1.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (from, to) = (v["from_tree_size"].as_u64().unwrap(), v["to_tree_size"].as_u64().unwrap());
    assert!(to > from);
    rewrite_entry(&l, from + 5);
    let out = l.run(&["verify", "--from-digest", d1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn a_rewritten_past_is_found_by_full_verify_and_by_its_inclusion_proof() {
    // --from-digest trusts what the digest covers; the full verify and any inclusion proof of
    // the rewritten entry do not.
    let (l, _d1, d2, _export) = ledger_with_digests();
    rewrite_entry(&l, 30);
    let out = l.run(&["verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("entry 31"), "{}", stderr(&out));
    let d2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&d2).unwrap()).unwrap();
    let p = l.json(&["proof", "inclusion", "--seq", "30"]);
    let path: Vec<[u8; 32]> = p["path"].as_array().unwrap().iter().map(h32).collect();
    let n = d2["tree_size"].as_u64().unwrap();
    assert!(verify_inclusion(29, n, &h32(&p["leaf_hash"]), &path, &h32(&d2["root"])).is_err());
}

#[test]
fn a_statement_lists_the_members_entries_with_proofs_and_balances() {
    let (l, _d1, _d2, _export) = ledger_with_digests();
    l.post_ok(&format!(
        "{}\n{}",
        r#"{"id":"m3","type":"subsidy","member":"M3","fund":"medical","period":"2024-03","amount":"92.00","basis":"match"}"#,
        contribution("c3b", "M3", "2024-04", "92.00", "U1")
    ));
    let s = l.json(&["statement", "--member", "M3", "--json"]);
    let entries = s["entries"].as_array().unwrap();
    let types: Vec<&str> = entries.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["enroll", "contribution", "subsidy", "contribution"]);
    let root = h32(&s["root"]);
    for e in entries {
        let p = &e["proof"];
        let path: Vec<[u8; 32]> = p["path"].as_array().unwrap().iter().map(h32).collect();
        verify_inclusion(
            p["leaf_index"].as_u64().unwrap(),
            p["tree_size"].as_u64().unwrap(),
            &h32(&p["leaf_hash"]),
            &path,
            &root,
        )
        .unwrap();
    }
    let medical = &s["funds"][0];
    assert_eq!(medical["fund"], "medical");
    let b = l.json(&["balance", "--json", "--member", "M3"]);
    assert_eq!(account_balance(&b, "medical:member:M3:personal").as_deref(), Some("184.00"));
    assert!(
        medical["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["account"] == "medical:member:M3:personal" && a["balance"] == "184.00")
    );
    // A range keeps the entries of the range; balances are as at its end.
    let march = l.json(&["statement", "--member", "M3", "--json", "--to", "2024-03-31"]);
    assert!(march["entries"].as_array().unwrap().len() <= 3);
    let out = l.run(&["statement", "--member", "NOBODY"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn reconcile_passes_on_sound_books_and_fails_on_a_changed_balance() {
    let (l, _d1, _d2, _export) = ledger_with_digests();
    let r = l.json(&["report", "reconcile"]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["medical_premiums_awaiting_match"].as_array().unwrap().len(), 30);
    let ledger = junbao_engine::Ledger::open(&l.data(), junbao_engine::system_clock()).unwrap();
    let account = junbao_ledger::Account::pool(junbao_ledger::Fund::Medical);
    let (key, value) = junbao_ledger::state::fund_balance_write(&account, junbao_ledger::Fen(100));
    ledger.store_for_tests().tamper_state(&key, value.as_deref()).unwrap();
    drop(ledger);
    let out = l.run(&["report", "reconcile"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("do not reconcile"), "{}", stderr(&out));
}

#[test]
fn exceptions_lists_an_entry_that_the_rules_refuse() {
    let (l, _d1, _d2, _export) = ledger_with_digests();
    assert_eq!(l.json(&["report", "exceptions"])["exceptions"].as_array().unwrap().len(), 0);
    // Forge a premium of the wrong amount straight into the database (balanced, re-encoded).
    let ledger = junbao_engine::Ledger::open(&l.data(), junbao_engine::system_clock()).unwrap();
    let seq = ledger.head().seq;
    let mut stored = ledger.store_for_tests().entry(seq).unwrap().unwrap();
    let mut entry = junbao_ledger::Entry::from_canonical_bytes(&stored.bytes).unwrap();
    if let junbao_ledger::EventBody::Contribution { amount, .. } = &mut entry.event.body {
        *amount = junbao_ledger::Fen(1);
    }
    entry.postings[0].amount = junbao_ledger::Fen(1);
    entry.postings[1].amount = junbao_ledger::Fen(-1);
    stored.bytes = entry.canonical_bytes();
    ledger.store_for_tests().tamper_entry(&stored).unwrap();
    drop(ledger);
    let e = l.json(&["report", "exceptions"]);
    let found = e["exceptions"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{e}");
    assert_eq!(found[0]["seq"], seq);
    assert!(found[0]["exception"].as_str().unwrap().contains("Art. 21"), "{e}");
}

#[test]
fn reconcile_lists_spouse_medical_parts_awaiting_their_match_unless_suspended() {
    let l = TestLedger::new();
    l.post_ok(
        &[
            enroll("e1", "O1", "officer", "U1", "2018-03-15", "9200.00"),
            r#"{"id":"e2","type":"enroll","member":"P1","category":"spouse","unit":"U1","enlisted_on":"2023-01-01","monthly_pay":"4000.00","sponsor":"O1"}"#.to_string(),
            r#"{"id":"sm3","type":"contribution","member":"P1","fund":"spouse","part":"medical","period":"2025-03","amount":"40.00","unit":"U1"}"#.to_string(),
            r#"{"id":"sm4","type":"contribution","member":"P1","fund":"spouse","part":"medical","period":"2025-04","amount":"40.00","unit":"U1"}"#.to_string(),
        ]
        .join("\n"),
    );
    let r = l.json(&["report", "reconcile"]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["negative_member_holdings"], serde_json::json!([]), "{r}");
    let waiting = r["medical_premiums_awaiting_match"].as_array().unwrap();
    assert_eq!(waiting.len(), 2, "{r}");
    assert_eq!(waiting[0]["fund"], "spouse", "{r}");
    // Art. 29: from April the subsidy is suspended; April's part awaits nothing.
    l.post_ok(r#"{"id":"s","type":"suspend","member":"P1","fund":"spouse","from":"2025-04","reason":"refused placement"}"#);
    let r = l.json(&["report", "reconcile"]);
    let waiting = r["medical_premiums_awaiting_match"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{r}");
    assert_eq!(waiting[0]["period"], "2025-03", "{r}");
}

#[test]
fn an_export_and_digest_of_another_ledger_fail_against_the_pinned_key() {
    let (l, _d1, d2, export) = ledger_with_digests();
    // Another ledger, same history: its own key signs a digest of the same tree.
    let other = TestLedger::new();
    let d_other = other.run(&["digest"]);
    assert!(d_other.status.success(), "{}", stderr(&d_other));
    let d_other =
        write_file(other.dir.path(), "d.json", &String::from_utf8(d_other.stdout).unwrap());
    // Pinned to `l`: the other ledger's digest is refused, exit 3.
    let out = verify_offline(&l, &export, Some(&d_other));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("another key"), "{}", stderr(&out));
    // Pinned to the other ledger: l's genuine digest is refused too.
    let out = verify_offline(&other, &export, Some(&d2));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // And without --key the command refuses to run.
    let file = write_file(l.dir.path(), "e.jsonl", &(export.join("\n") + "\n"));
    let out = std::process::Command::new(bin())
        .args(["verify", "--export", file.to_str().unwrap(), "--digest", d2.to_str().unwrap()])
        .current_dir(l.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
