//! Relationship transfer end to end: enrol, contribute for years, discharge, export the
//! package, verify it in a process without the database, and see tampering named.

mod common;

use common::*;

fn career(l: &TestLedger) {
    let mut lines = vec![enroll("e", "O1", "officer", "U1", "2022-03-15", "9200.00")];
    for year in 2023..=2025 {
        for m in 1..=12 {
            let p = format!("{year}-{m:02}");
            lines.push(format!(
                r#"{{"id":"c{p}","type":"contribution","member":"O1","fund":"medical","period":"{p}","amount":"92.00","unit":"U1","value_date":"{p}-20"}}"#
            ));
            lines.push(format!(
                r#"{{"id":"s{p}","type":"subsidy","member":"O1","fund":"medical","period":"{p}","amount":"92.00","basis":"match","value_date":"{p}-20"}}"#
            ));
        }
    }
    lines.push(
        r#"{"id":"i","type":"interest","fund":"medical","period":"2025-12","rate":"1.5"}"#.into(),
    );
    lines.push(
        r#"{"id":"d","type":"discharge","member":"O1","on":"2026-01-31","route":"employee"}"#
            .into(),
    );
    l.post_ok(&lines.join("\n"));
}

/// `junbao transfer export` of one member's package into `file`; returns the package.
fn export_package(
    l: &TestLedger,
    fund: &str,
    agency: &str,
    file: &std::path::Path,
) -> serde_json::Value {
    let out = l.run(&[
        "transfer",
        "export",
        "--member",
        "O1",
        "--fund",
        fund,
        "--agency",
        agency,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// Runs `junbao transfer verify --key PUB` in a folder with no ledger, pointing --data
/// nowhere; PUB is `l`'s public key, as the agency pinned it.
fn verify_elsewhere(l: &TestLedger, file: &std::path::Path) -> std::process::Output {
    verify_with_key(&l.public_key_file(), file)
}

fn verify_with_key(key: &std::path::Path, file: &std::path::Path) -> std::process::Output {
    let empty = tempfile::tempdir().unwrap();
    std::process::Command::new(bin())
        .args([
            "--data",
            empty.path().join("no-ledger-here").to_str().unwrap(),
            "transfer",
            "verify",
            "--key",
        ])
        .arg(key)
        .arg(file)
        .current_dir(empty.path())
        .output()
        .unwrap()
}

#[test]
fn a_transfer_package_verifies_offline_and_tampering_is_named() {
    let l = TestLedger::new();
    career(&l);
    let out_file = l.dir.path().join("O1-medical.json");
    let package = export_package(&l, "medical", "SI-110105", &out_file);
    // Hand: 36 months × (92.00 + 92.00) = 6,624.00; interest at 1.5 % on all 6,624.00 held
    // at the end of 2025 = 99.36; total 6,723.36.
    assert_eq!(package["totals"]["personal"], "3312.00");
    assert_eq!(package["totals"]["state"], "3312.00");
    assert_eq!(package["totals"]["interest"], "99.36");
    assert_eq!(package["totals"]["total"], "6723.36");
    // 2022 (service from March, no premiums yet) and 2023–2025 with premiums.
    assert_eq!(package["years"].as_array().unwrap().len(), 4);
    assert_eq!(package["service"]["months"], 46);

    let ok = verify_elsewhere(&l, &out_file);
    assert!(ok.status.success(), "{}", stderr(&ok));

    // One amount changed.
    let mut amount = package.clone();
    amount["years"][1]["personal"] = serde_json::json!("1105.00");
    let f = write_file(l.dir.path(), "amount.json", &amount.to_string());
    let out = verify_elsewhere(&l, &f);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("years[1].personal"), "{}", stderr(&out));

    // One entry byte changed.
    let mut byte = package.clone();
    let mut bytes = hex::decode(byte["entries"][4]["bytes"].as_str().unwrap()).unwrap();
    bytes[10] ^= 1;
    byte["entries"][4]["bytes"] = serde_json::json!(hex::encode(bytes));
    let f = write_file(l.dir.path(), "byte.json", &byte.to_string());
    let out = verify_elsewhere(&l, &f);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("entries[4]"), "{}", stderr(&out));

    // An entry dropped from the package no longer adds up.
    let mut dropped = package.clone();
    dropped["entries"].as_array_mut().unwrap().remove(3);
    let f = write_file(l.dir.path(), "dropped.json", &dropped.to_string());
    let out = verify_elsewhere(&l, &f);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn the_transferred_account_is_closed_until_the_transfer_is_reversed_and_confirmation_ends_that() {
    let l = TestLedger::new();
    career(&l);
    let f = l.dir.path().join("p.json");
    let export = |agency: &str| {
        l.run(&[
            "transfer",
            "export",
            "--member",
            "O1",
            "--fund",
            "medical",
            "--agency",
            agency,
            "--out",
            f.to_str().unwrap(),
        ])
    };
    assert!(export("SI-1").status.success());
    let late = contribution("late", "O1", "2026-01", "92.00", "U1");
    let out = l.post(&late);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("transferred"), "{}", stderr(&out));
    // Exporting again re-issues the same transfer; another agency is refused.
    let package: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    assert!(export("SI-1").status.success());
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    assert_eq!(again["transfer_entry"], package["transfer_entry"]);
    assert_eq!(export("SI-2").status.code(), Some(2));
    // Reversed before confirmation: the account reopens.
    let xfer_id = format!("transfer:medical:O1:{}", package["transfer_entry"]);
    l.post_ok(&format!(
        r#"{{"id":"undo","type":"reversal","of":"{xfer_id}","reason":"wrong agency"}}"#
    ));
    l.post_ok(&late);
    // A premium awaiting its match holds the transfer back (Art. 20): match it first.
    assert_eq!(export("SI-2").status.code(), Some(2));
    l.post_ok(
        r#"{"id":"late-match","type":"subsidy","member":"O1","fund":"medical","period":"2026-01","amount":"92.00","basis":"match"}"#,
    );
    // Transferred again, then confirmed: no reversal any more.
    assert!(export("SI-2").status.success());
    let package: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    assert!(verify_elsewhere(&l, &f).status.success(), "{}", stderr(&verify_elsewhere(&l, &f)));
    assert_eq!(package["totals"]["total"], "6907.36"); // one more premium and its match: + 184.00
    let out =
        l.run(&["transfer", "confirm", "--member", "O1", "--fund", "medical", "--agency", "SI-2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let xfer_id = format!("transfer:medical:O1:{}", package["transfer_entry"]);
    let out = l.post(&format!(
        r#"{{"id":"undo2","type":"reversal","of":"{xfer_id}","reason":"too late"}}"#
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("confirmed"), "{}", stderr(&out));
}

#[test]
fn bulk_transfer_is_all_or_nothing_and_writes_a_verifiable_package_per_member() {
    let l = TestLedger::new();
    let mut lines = Vec::new();
    for m in 0..6 {
        lines.push(enroll(
            &format!("e{m}"),
            &format!("M{m}"),
            "sergeant",
            "U1",
            "2021-05-01",
            "6000.00",
        ));
        lines.push(format!(
            r#"{{"id":"c{m}","type":"contribution","member":"M{m}","fund":"medical","period":"2024-03","amount":"60.00","unit":"U1","value_date":"2024-03-20"}}"#
        ));
        lines.push(format!(
            r#"{{"id":"s{m}","type":"subsidy","member":"M{m}","fund":"medical","period":"2024-03","amount":"60.00","basis":"match","value_date":"2024-03-20"}}"#
        ));
        if m != 4 {
            lines.push(format!(
                r#"{{"id":"d{m}","type":"discharge","member":"M{m}","on":"2026-01-31","route":"employee"}}"#
            ));
        }
    }
    l.post_ok(&lines.join("\n"));
    let list = write_file(l.dir.path(), "leaving.txt", "M0\nM1\nM2\nM3\nM4\nM5\n");
    let dir = l.dir.path().join("packages");
    let run = |list: &std::path::Path| {
        l.run(&[
            "transfer",
            "export",
            "--members",
            list.to_str().unwrap(),
            "--fund",
            "medical",
            "--agency",
            "SI-9",
            "--out-dir",
            dir.to_str().unwrap(),
        ])
    };
    // M4 was not discharged: the whole bulk export is refused, naming its line, and nothing
    // is closed.
    let head =
        l.json(&["journal", "--json", "--limit", "10000"])["entries"].as_array().unwrap().len();
    let out = run(&list);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 5:"), "{}", stderr(&out));
    assert_eq!(
        l.json(&["journal", "--json", "--limit", "10000"])["entries"].as_array().unwrap().len(),
        head
    );
    // Without M4 every account closes and every package verifies on its own.
    let list = write_file(l.dir.path(), "leaving.txt", "M0\nM1\nM2\nM3\nM5\n");
    let out = run(&list);
    assert!(out.status.success(), "{}", stderr(&out));
    for m in ["M0", "M1", "M2", "M3", "M5"] {
        let f = dir.join(format!("{m}-medical.json"));
        let out = verify_elsewhere(&l, &f);
        assert!(out.status.success(), "{m}: {}", stderr(&out));
    }
}

#[test]
fn a_package_renders_as_a_bilingual_printable_sheet_with_the_same_figures() {
    let l = TestLedger::new();
    career(&l);
    let f = l.dir.path().join("p.json");
    export_package(&l, "medical", "SI-1", &f);
    let html_path = l.dir.path().join("p.html");
    let key = l.public_key_file();
    let out = l.run(&[
        "transfer",
        "render",
        f.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--out",
        html_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(&html_path).unwrap();
    for text in [
        "军人保险关系转移接续单",
        "Transfer of servicemen insurance relationship",
        "合计 Totals",
        "6723.36",
        "1104.00",
        "退役医疗保险",
    ] {
        assert!(html.contains(text), "missing {text}");
    }
    let mut package: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    package["totals"]["total"] = serde_json::json!("9999.99");
    let bad = write_file(l.dir.path(), "bad.json", &package.to_string());
    let out = l.run(&[
        "transfer",
        "render",
        bad.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--out",
        html_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn a_pension_package_shows_the_unit_and_personal_parts_of_each_years_wage() {
    let l = TestLedger::new();
    career(&l);
    let f = l.dir.path().join("pension.json");
    let package = export_package(&l, "pension", "SI-1", &f);
    // Hand: 46 months × 9,200.00 = 423,200.00; 12 % = 50,784.00 and 8 % = 33,856.00 = 84,640.00.
    assert_eq!(package["totals"]["state"], "84640.00");
    assert_eq!(package["pension_rates"]["unit"], "12");
    let years: Vec<i64> =
        package["years"].as_array().unwrap().iter().map(|y| y["year"].as_i64().unwrap()).collect();
    assert_eq!(years, [2022, 2023, 2024, 2025, 2026]);
    // Hand: months of service start on the 15th; 2022 has ten (March to December): 92,000.00,
    // 12 % = 11,040.00 and 8 % = 7,360.00. The subsidy itself is credited at discharge, 2026.
    let row = |y: i64| {
        package["years"].as_array().unwrap().iter().find(|r| r["year"] == y).unwrap().clone()
    };
    assert_eq!(row(2022)["contribution_wage"], "92000.00");
    assert_eq!(row(2022)["unit_part"], "11040.00");
    assert_eq!(row(2022)["personal_part"], "7360.00");
    assert_eq!(row(2022)["state"], "0.00");
    assert_eq!(row(2026)["contribution_wage"], "0.00");
    assert_eq!(row(2026)["state"], "84640.00");
    assert!(verify_elsewhere(&l, &f).status.success(), "{}", stderr(&verify_elsewhere(&l, &f)));
    let mut bad = package.clone();
    bad["years"][0]["unit_part"] = serde_json::json!("1.00");
    let bad = write_file(l.dir.path(), "bad.json", &bad.to_string());
    let out = verify_elsewhere(&l, &bad);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("years[0].unit_part"), "{}", stderr(&out));
}

/// A pointer into the package (`/service/months`) set to a value.
fn with(package: &serde_json::Value, pointer: &str, value: serde_json::Value) -> serde_json::Value {
    let mut p = package.clone();
    *p.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}")) = value;
    p
}

#[test]
fn a_package_self_signed_by_another_ledger_fails_against_the_pinned_key() {
    let l = TestLedger::new();
    career(&l);
    // An attacker's ledger, initialised elsewhere, with a monthly pay of 920,000.00.
    let forger = TestLedger::new();
    let career_text = |pay: &str| {
        let mut lines = vec![enroll("e", "O1", "officer", "U1", "2022-03-15", pay)];
        lines.push(
            r#"{"id":"d","type":"discharge","member":"O1","on":"2026-01-31","route":"employee"}"#
                .into(),
        );
        lines.join("\n")
    };
    forger.post_ok(&career_text("920000.00"));
    let forged = forger.dir.path().join("forged.json");
    export_package(&forger, "pension", "SI-1", &forged);
    // The forger's package verifies under the forger's own key (it is self-consistent) …
    let out = verify_with_key(&forger.public_key_file(), &forged);
    assert!(out.status.success(), "{}", stderr(&out));
    // … but never under the key the agency pinned: exit 3, naming the key.
    let out = verify_elsewhere(&l, &forged);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("pinned"), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("verified"));
    // Render refuses it too, and without a pinned key neither command runs.
    let html = l.dir.path().join("forged.html");
    let key = l.public_key_file();
    let out = l.run(&[
        "transfer",
        "render",
        forged.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--out",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(!html.exists());
    let out = l.run(&["transfer", "verify", forged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn every_stated_field_changed_in_turn_fails_naming_the_field() {
    use serde_json::json;
    let l = TestLedger::new();
    career(&l);
    let f = l.dir.path().join("pension.json");
    let package = export_package(&l, "pension", "SI-1", &f);
    let mut extra_row = package.clone();
    extra_row["years"].as_array_mut().unwrap().push(json!({"year": 2027,
        "contribution_wage": "0.00", "personal": "0.00", "state": "0.00", "interest": "0.00",
        "unit_part": "0.00", "personal_part": "0.00"}));
    let mut missing_row = package.clone();
    missing_row["years"].as_array_mut().unwrap().remove(0);
    // Rates and every part changed consistently: only the package signature can tell.
    let mut rates = with(&package, "/pension_rates/unit", json!("20"));
    for y in rates["years"].as_array_mut().unwrap() {
        let fen: i64 = y["contribution_wage"].as_str().unwrap().replace('.', "").parse().unwrap();
        let part = fen / 5; // 20 %, exact for these wages
        y["unit_part"] = json!(format!("{}.{:02}", part / 100, part % 100));
    }
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("service.from", with(&package, "/service/from", json!("2012-03-15")), "service.from"),
        ("service.to", with(&package, "/service/to", json!("2036-01-31")), "service.to"),
        ("service.months", with(&package, "/service/months", json!(238)), "service.months"),
        (
            "service.years_counted",
            with(&package, "/service/years_counted", json!("19.83")),
            "service.years_counted",
        ),
        (
            "member.category",
            with(&package, "/member/category", json!("sergeant")),
            "member.category",
        ),
        ("member.unit", with(&package, "/member/unit", json!("U9")), "member.unit"),
        ("member.sponsor", with(&package, "/member/sponsor", json!("O2")), "member.sponsor"),
        (
            "contribution_wage",
            with(&package, "/years/1/contribution_wage", json!("920000.00")),
            "years[1].contribution_wage",
        ),
        ("unit_part", with(&package, "/years/1/unit_part", json!("1.00")), "years[1].unit_part"),
        (
            "personal_part",
            with(&package, "/years/1/personal_part", json!("1.00")),
            "years[1].personal_part",
        ),
        (
            "pension_rates.unit",
            with(&package, "/pension_rates/unit", json!("20")),
            "years[0].unit_part",
        ),
        ("rates and parts together", rates, "package_signature"),
        ("extra year row", extra_row, "years"),
        ("missing year row", missing_row, "years"),
        ("totals.total", with(&package, "/totals/total", json!("672336.00")), "totals.total"),
        (
            "counts_toward",
            with(&package, "/service/counts_toward", json!("x")),
            "service.counts_toward",
        ),
        ("agency", with(&package, "/agency", json!("SI-2")), "entries"),
        ("transfer_entry", with(&package, "/transfer_entry", json!(1)), "transfer_entry"),
    ];
    let key = l.public_key_file();
    for (what, changed, field) in cases {
        let file = write_file(l.dir.path(), "changed.json", &changed.to_string());
        let out = verify_with_key(&key, &file);
        assert_eq!(out.status.code(), Some(3), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains(field), "{what}: expected {field} in {}", stderr(&out));
    }
    // An added field is not part of any package: refused as malformed.
    let added = with(
        &package,
        "/member",
        json!({"id": "O1", "category": "officer",
        "unit": "U1", "sponsor": null, "name": "x"}),
    );
    let file = write_file(l.dir.path(), "added.json", &added.to_string());
    let out = verify_with_key(&key, &file);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("name"), "{}", stderr(&out));
}

#[test]
fn a_confirmation_of_a_long_member_and_agency_id_fits_an_event_id() {
    let l = TestLedger::new();
    let member = "M".repeat(30);
    let agency = "A".repeat(30);
    l.post_ok(
        &[
            enroll("e", &member, "officer", "U1", "2022-03-15", "10000.00"),
            contribution("c", &member, "2024-01", "100.00", "U1"),
        format!(
            r#"{{"id":"s","type":"subsidy","member":"{member}","fund":"medical","period":"2024-01","amount":"100.00","basis":"match"}}"#
        ),
            format!(r#"{{"id":"d","type":"discharge","member":"{member}","on":"2026-01-31","route":"employee"}}"#),
        ]
        .join("\n"),
    );
    let f = l.dir.path().join("long.json");
    let out = l.run(&[
        "transfer",
        "export",
        "--member",
        &member,
        "--fund",
        "medical",
        "--agency",
        &agency,
        "--out",
        f.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let confirm =
        ["transfer", "confirm", "--member", &member, "--fund", "medical", "--agency", &agency];
    let first = l.json(&confirm);
    assert_eq!(first["accepted"], 1, "{first}");
    let again = l.json(&confirm);
    assert_eq!(again["accepted"], 0, "confirming twice is a replay: {again}");
    assert_eq!(again["replayed"], 1, "{again}");
}

/// serde_json keeps the last of two equal keys: a forged `"totals"` written before the real
/// one would verify while a person (or a first-key parser) reads the forged figures. A package
/// that repeats a key, at any depth, is refused, by the command line and by the server.
#[test]
fn a_package_that_repeats_a_key_is_refused_whatever_the_last_value_says() {
    let l = TestLedger::new();
    career(&l);
    let out_file = l.dir.path().join("O1-medical.json");
    export_package(&l, "medical", "SI-110105", &out_file);
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(verify_elsewhere(&l, &out_file).status.success());
    let forged_totals = text.replacen(
        "\"totals\":",
        "\"totals\": {\"interest\":\"44.42\",\"personal\":\"99480.80\",\"state\":\"1480.80\",\"total\":\"101006.02\"},\n  \"totals\":",
        1,
    );
    let forged_months = text.replacen("\"months\":", "\"months\": 238, \"months\":", 1);
    for (name, forged) in [("totals.json", forged_totals), ("months.json", forged_months)] {
        assert_ne!(forged, text, "{name}: the forgery changed the file");
        let f = write_file(l.dir.path(), name, &forged);
        let out = verify_elsewhere(&l, &f);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains("appears twice"), "{name}: {}", stderr(&out));
        assert!(!String::from_utf8_lossy(&out.stdout).contains("\"verified\":true"));
    }
}
