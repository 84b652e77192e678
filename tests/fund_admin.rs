//! Fund administration through the real binary (issue 12; the law's Chapters 6–7): budgets,
//! units' remittances, bank reconciliation, fund deposit interest, the sealed year and its final
//! accounts, per-period statements, and their HTTP routes.

mod common;

use common::*;
use serde_json::Value;

/// Officer M1 of unit U1 (pay 9,200.00: premium 92.00) enrolled in 2020.
fn officer() -> String {
    enroll("e1", "M1", "officer", "U1", "2020-01-01", "9200.00")
}

fn premium(month: u32) -> String {
    format!(
        r#"{{"id":"c-{month}","type":"contribution","member":"M1","fund":"medical","period":"2025-{month:02}","amount":"92.00","unit":"U1","value_date":"2025-{month:02}-15"}}"#
    )
}

fn matching(month: u32) -> String {
    format!(
        r#"{{"id":"m-{month}","type":"subsidy","member":"M1","fund":"medical","period":"2025-{month:02}","amount":"92.00","basis":"match","value_date":"2025-{month:02}-15"}}"#
    )
}

/// The remittance of month `month`'s premium, on the 10th of the next month.
fn remittance(month: u32, amount: &str) -> String {
    let (y, m) = if month == 12 { (2026, 1) } else { (2025, month + 1) };
    format!(
        r#"{{"id":"r-{month}","type":"remittance","unit":"U1","fund":"medical","amount":"{amount}","period":"2025-{month:02}","reference":"slip {month}","value_date":"{y}-{m:02}-10"}}"#
    )
}

/// A year of M1's premiums, each matched; remitted for every month in `remitted`.
fn year_of_premiums(remitted: impl Fn(u32) -> bool) -> TestLedger {
    let l = TestLedger::new();
    let mut lines = vec![officer()];
    for month in 1..=12 {
        lines.push(premium(month));
        lines.push(matching(month));
        if remitted(month) {
            lines.push(remittance(month, "92.00"));
        }
    }
    l.post_ok(&lines.join("\n"));
    l
}

fn refused(l: &TestLedger, line: &str) -> String {
    let out = l.post(line);
    assert_eq!(out.status.code(), Some(2), "expected a refusal: {}", stderr(&out));
    stderr(&out)
}

fn row<'a>(report: &'a Value, key: &str, value: &str) -> &'a Value {
    report
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r[key] == value))
        .unwrap_or_else(|| panic!("no row with {key} = {value} in {report}"))
}

#[test]
fn a_year_of_premiums_with_one_month_unremitted_shows_it_with_its_age() {
    let l = year_of_premiums(|m| m != 9);
    let r = l.json(&["report", "remittances", "--unit", "U1", "--as-of", "2026-02-15", "--json"]);
    let periods = r["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 12, "{r}");
    let open: Vec<&Value> = periods.iter().filter(|p| p["outstanding"] != "0.00").collect();
    assert_eq!(open.len(), 1, "only September is owed: {r}");
    assert_eq!(open[0]["period"], "2025-09");
    assert_eq!(open[0]["owed"], "92.00");
    assert_eq!(open[0]["remitted"], "0.00");
    assert_eq!(open[0]["outstanding"], "92.00");
    assert_eq!(open[0]["age_months"], 5, "September to February: {r}");
    let u1 = row(&r["units"], "unit", "U1");
    assert_eq!(
        (&u1["owed"], &u1["remitted"], &u1["outstanding"]),
        (&"1104.00".into(), &"1012.00".into(), &"92.00".into())
    );
    // As at the end of November, December's premium is not yet withheld and October's
    // remittance (10 November) is in.
    let r = l.json(&["report", "remittances", "--as-of", "2025-11-30", "--json"]);
    assert_eq!(r["periods"].as_array().unwrap().len(), 11, "{r}");
    assert_eq!(row(&r["units"], "unit", "U1")["outstanding"], "184.00", "September and November");
}

#[test]
fn an_over_remittance_is_refused_and_stores_nothing() {
    let l = year_of_premiums(|m| m < 12);
    let before =
        l.json(&["journal", "--json", "--limit", "1000"])["entries"].as_array().unwrap().len();
    let err = refused(&l, &remittance(12, "92.01"));
    assert!(
        err.contains("field \"amount\"") && err.contains("owes the medical fund 92.00 for 2025-12"),
        "{err}"
    );
    let err = refused(&l, &remittance(3, "0.01").replace("r-3", "r-3-again"));
    assert!(err.contains("owes the medical fund 0.00 for 2025-03"), "{err}");
    let after =
        l.json(&["journal", "--json", "--limit", "1000"])["entries"].as_array().unwrap().len();
    assert_eq!(before, after);
    // A premium its unit already remitted is not reversed behind the remittance's back.
    l.post_ok(r#"{"id":"rev-m3","type":"reversal","of":"m-3","reason":"wrong"}"#);
    let err = refused(&l, r#"{"id":"rev-c3","type":"reversal","of":"c-3","reason":"wrong"}"#);
    assert!(err.contains("field \"of\"") && err.contains("already remitted"), "{err}");
    // Once the remittance is reversed, the premium may be.
    l.post_ok(r#"{"id":"rev-r3","type":"reversal","of":"r-3","reason":"slip was for April"}"#);
    l.post_ok(r#"{"id":"rev-c3","type":"reversal","of":"c-3","reason":"wrong"}"#);
    let r = l.json(&["report", "remittances", "--json"]);
    let march = row(&r["periods"], "period", "2025-03");
    assert_eq!((&march["owed"], &march["remitted"]), (&"0.00".into(), &"0.00".into()), "{r}");
}

#[test]
fn a_bank_statement_one_fen_short_is_reported() {
    let l = year_of_premiums(|_| true);
    // At the year end the fund holds 24 × 92.00 (premiums and matches); December's premium is
    // still with the unit, so the bank should hold 23 × 92.00.
    let bank = l.json(&["report", "bank", "--fund", "medical", "--as-of", "2025-12-31", "--json"]);
    assert_eq!(bank["ledger"], "2116.00", "{bank}");
    assert_eq!(bank["bank"], Value::Null);
    l.post_ok(r#"{"id":"bs-1","type":"bank_statement","fund":"medical","account":"ICBC-01","date":"2025-12-31","balance":"2115.99","reference":"statement 12/2025"}"#);
    let bank = l.json(&["report", "bank", "--fund", "medical", "--as-of", "2025-12-31", "--json"]);
    assert_eq!(bank["bank"], "2115.99");
    assert_eq!(bank["difference"], "-0.01", "{bank}");
    assert_eq!(bank["reconciled"], false);
    assert_eq!(bank["statements"][0]["reference"], "statement 12/2025");
    // In January the unit remitted December and the bank shows it all.
    l.post_ok(r#"{"id":"bs-2","type":"bank_statement","fund":"medical","account":"ICBC-01","date":"2026-01-31","balance":"2208.00","reference":"statement 01/2026"}"#);
    let bank = l.json(&["report", "bank", "--fund", "medical", "--as-of", "2026-01-31", "--json"]);
    assert_eq!(
        (&bank["ledger"], &bank["difference"], &bank["reconciled"]),
        (&"2208.00".into(), &"0.00".into(), &true.into())
    );
    // The year-end difference is an open item of the close.
    let out = l.run(&["close", "--year", "2025"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bank statements of 2025-12-31 say 2115.99, the ledger 2116.00"), "{err}");
    l.json(&["close", "--year", "2025", "--accept-open"]);
}

#[test]
fn budget_against_actual_matches_hand_figures() {
    let l = year_of_premiums(|_| true);
    let budget = |id: &str, line: &str, amount: &str| {
        format!(
            r#"{{"id":"{id}","type":"budget","fund":"medical","year":"2025","line":"{line}","amount":"{amount}"}}"#
        )
    };
    l.post_ok(
        &[
            budget("b1", "personal_premiums", "1200.00"),
            budget("b2", "central_subsidy", "1000.00"),
            budget("b3", "personal_premiums", "1100.00"),
            r#"{"id":"di-1","type":"deposit_interest","fund":"medical","amount":"3.21","period":"2025-12"}"#.to_string(),
        ]
        .join("\n"),
    );
    let r = l.json(&["report", "budget", "--fund", "medical", "--year", "2025", "--json"]);
    let personal = row(&r["lines"], "line", "personal_premiums");
    // 12 × 92.00 = 1,104.00 against the revised 1,100.00.
    assert_eq!(
        (&personal["budget"], &personal["actual"], &personal["difference"]),
        (&"1100.00".into(), &"1104.00".into(), &"4.00".into())
    );
    assert_eq!(personal["revisions"], 1);
    let central = row(&r["lines"], "line", "central_subsidy");
    assert_eq!(
        (&central["budget"], &central["actual"], &central["difference"]),
        (&"1000.00".into(), &"1104.00".into(), &"104.00".into())
    );
    let interest = row(&r["lines"], "line", "interest");
    assert_eq!((&interest["budget"], &interest["actual"]), (&Value::Null, &"3.21".into()));
    let bal = l.json(&["balance", "--fund", "medical", "--json"]);
    assert_eq!(account_balance(&bal, "medical:pool").as_deref(), Some("3.21"));
    assert_eq!(account_balance(&bal, "medical:income:interest").as_deref(), Some("-3.21"));
}

#[test]
fn closing_a_year_with_an_unmatched_premium_is_refused_naming_it() {
    let l = TestLedger::new();
    let mut lines = vec![officer()];
    for month in 1..=12 {
        lines.push(premium(month));
        if month != 7 {
            lines.push(matching(month));
        }
        lines.push(remittance(month, "92.00"));
    }
    l.post_ok(&lines.join("\n"));
    let out = l.run(&["close", "--year", "2025"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("M1") && err.contains("2025-07") && err.contains("matched by 0.00"),
        "{err}"
    );
    let out = l.run(&["close", "--year", "2025", "--accept-open"]);
    assert_eq!(out.status.code(), Some(2), "--accept-open does not excuse a missing match");
    l.post_ok(&matching(7));
    l.json(&["close", "--year", "2025"]);
}

#[test]
fn closing_a_year_a_unit_still_owes_for_lists_it_and_needs_accept_open() {
    let l = year_of_premiums(|m| m != 5);
    let out = l.run(&["close", "--year", "2025"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unit U1 has not remitted 92.00 of the medical premiums for 2025-05"),
        "{}",
        stderr(&out)
    );
    let closed = l.json(&["close", "--year", "2025", "--accept-open"]);
    assert_eq!(closed["open_items"], 1);
    let fa = l.json(&["report", "final-accounts", "--year", "2025", "--json"]);
    assert!(fa["open_items"][0].as_str().unwrap().contains("2025-05"), "{fa}");
    // The unit may still remit after the close, dated in the open year.
    l.post_ok(&remittance(5, "92.00").replace("2025-06-10", "2026-02-01"));
}

#[test]
fn after_a_close_a_back_dated_premium_is_refused_and_the_correction_goes_into_the_open_year() {
    let l = year_of_premiums(|_| true);
    l.post_ok(&enroll("e2", "M2", "officer", "U1", "2020-01-01", "9200.00"));
    let closed = l.json(&["close", "--year", "2025"]);
    assert_eq!(closed["closed"], 2025);
    assert_eq!(
        closed["digest"]["tree_size"], closed["close_seq"],
        "the digest is signed at the close"
    );
    let late = r#"{"id":"late","type":"contribution","member":"M2","fund":"medical","period":"2025-06","amount":"92.00","unit":"U1","value_date":"2025-06-15"}"#;
    let err = refused(&l, late);
    assert!(err.contains("field \"value_date\"") && err.contains("closed"), "{err}");
    // The correction: the same premium, dated in the open year, naming the closed one.
    l.post_ok(&late.replace(
        r#""value_date":"2025-06-15""#,
        r#""value_date":"2026-01-20","memo":"late premium of 2025-06, after year_close:2025""#,
    ));
    // A second close of the same year is refused; so is an event that closes by hand.
    let out = l.run(&["close", "--year", "2025"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already closed"), "{}", stderr(&out));
    let err = refused(&l, r#"{"id":"yc","type":"year_close","year":"2024"}"#);
    assert!(err.contains("junbao close"), "{err}");
    // Enrolment carries no money and is not sealed.
    l.post_ok(&enroll("e3", "M3", "sergeant", "U1", "2024-03-01", "6000.00"));
    l.json(&["verify"]);
}

#[test]
fn the_final_accounts_recompute_from_the_journal_and_verify_still_passes() {
    let l = year_of_premiums(|_| true);
    l.post_ok(r#"{"id":"a-2024","type":"appropriation","fund":"casualty","amount":"1000.00","value_date":"2024-05-01"}"#);
    l.post_ok(r#"{"id":"a-2025","type":"appropriation","fund":"casualty","amount":"500.00","value_date":"2025-05-01"}"#);
    l.post_ok(r#"{"id":"a-2026","type":"appropriation","fund":"casualty","amount":"7.00","value_date":"2026-01-02"}"#);
    l.json(&["close", "--year", "2025"]);
    let fa = l.json(&["report", "final-accounts", "--year", "2025", "--json"]);
    assert_eq!(fa["matches_journal"], true, "{fa}");
    assert_eq!(fa["opening_equals_previous_closing"], Value::Null, "2024 was not closed");
    let medical = row(&fa["funds"], "fund", "medical");
    assert_eq!(medical["opening"], "0.00");
    assert_eq!(medical["income"]["personal_premiums"], "1104.00");
    assert_eq!(medical["income"]["central_subsidy"], "1104.00");
    assert_eq!(medical["expenditure_total"], "0.00");
    assert_eq!(medical["closing"], "2208.00");
    let casualty = row(&fa["funds"], "fund", "casualty");
    assert_eq!(
        (&casualty["opening"], &casualty["income_total"], &casualty["closing"]),
        (&"1000.00".into(), &"500.00".into(), &"1500.00".into())
    );
    // The same figures as the statement of the year, which any period can have.
    let s = l.json(&[
        "report",
        "statement-of-fund",
        "--fund",
        "medical",
        "--from",
        "2025-01-01",
        "--to",
        "2025-12-31",
    ]);
    assert_eq!(
        (&s["opening"], &s["income"], &s["closing"]),
        (&medical["opening"], &medical["income"], &medical["closing"])
    );
    let q1 = l.run(&[
        "report",
        "statement-of-fund",
        "--fund",
        "medical",
        "--from",
        "2025-01-01",
        "--to",
        "2025-03-31",
        "--format",
        "csv",
    ]);
    let csv = String::from_utf8(q1.stdout).unwrap();
    assert!(csv.starts_with("fund,from,to,section,line,amount\n"), "{csv}");
    assert!(csv.contains("medical,2025-01-01,2025-03-31,income,personal_premiums,276.00"), "{csv}");
    assert!(csv.contains("medical,2025-01-01,2025-03-31,closing,,552.00"), "{csv}");
    let html = l.dir.path().join("fa.html");
    let out = l.run(&[
        "report",
        "final-accounts",
        "--year",
        "2025",
        "--html",
        "--out",
        html.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("决算") && page.contains("Final accounts") && page.contains("1104.00"),
        "{page}"
    );
    assert!(page.contains("matches the journal"));
    let verified = l.json(&["verify"]);
    assert_eq!(verified["verified"], true);
    let reconcile = l.json(&["report", "reconcile"]);
    assert_eq!(reconcile["ok"], true, "{reconcile}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fund_reports_and_the_close_are_served_to_the_roles_they_fit() {
    let l = year_of_premiums(|_| true);
    let admin = l.token("admin-1", "admin", None);
    let auditor = l.token("audit-1", "auditor", None);
    let clerk = l.token("clerk-1", "clerk", None);
    let poster = l.token("finance-U1", "poster", Some("U1"));
    let s = l.serve(&[]);
    let client = reqwest::Client::new();
    let get = |path: &str, token: &str| {
        let req = client.get(s.url(path)).bearer_auth(token);
        async move {
            let r = req.send().await.expect("the server answers");
            (r.status().as_u16(), r.text().await.expect("a body"))
        }
    };
    let reports = [
        ("/v1/reports/budget?fund=medical&year=2025", vec!["auditor", "admin"]),
        ("/v1/reports/remittances?unit=U1&as_of=2026-02-01", vec!["auditor", "clerk", "admin"]),
        ("/v1/reports/bank?fund=medical&as_of=2025-12-31", vec!["auditor", "admin"]),
        (
            "/v1/reports/statement-of-fund?fund=medical&from=2025-01-01&to=2025-03-31&format=csv",
            vec!["auditor", "admin"],
        ),
    ];
    let roles = [("admin", &admin), ("auditor", &auditor), ("clerk", &clerk), ("poster", &poster)];
    for (path, allowed) in &reports {
        for (role, token) in &roles {
            let (status, body) = get(path, token).await;
            let expected = if allowed.contains(role) { 200 } else { 403 };
            assert_eq!(status, expected, "{role} {path}: {body}");
        }
    }
    let (_, csv) = get(reports[3].0, &auditor).await;
    assert!(csv.contains("income,personal_premiums,276.00"), "{csv}");
    let (_, body) = get("/v1/reports/remittances?unit=U1", &clerk).await;
    assert!(body.contains("\"outstanding\":\"0.00\""), "{body}");
    // Only an admin closes a year.
    let close = |token: &str| {
        let req = client.post(s.url("/v1/close")).bearer_auth(token).body(r#"{"year":"2025"}"#);
        async move {
            let r = req.send().await.expect("the server answers");
            (r.status().as_u16(), r.text().await.expect("a body"))
        }
    };
    for token in [&auditor, &clerk, &poster] {
        assert_eq!(close(token).await.0, 403);
    }
    let (status, body) = close(&admin).await;
    assert_eq!(status, 200, "{body}");
    let closed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(closed["closed"], 2025);
    let (status, body) = close(&admin).await;
    assert_eq!(status, 422, "a second close is refused: {body}");
    let (status, page) = get("/v1/reports/final-accounts?year=2025&format=html", &auditor).await;
    assert_eq!(status, 200);
    assert!(page.contains("决算") && page.contains("matches the journal"), "{page}");
    let late = premium(6).replace("c-6", "U1:c-6-late");
    let r = client.post(s.url("/v1/events")).bearer_auth(&poster).body(late).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("closed"), "a premium dated in the closed year is refused: {body}");
}

/// The seal lives in the stored state (`a/`): deleting it to post into a closed year again is
/// found by `verify`, which replays the journal (exit 3).
#[test]
fn a_deleted_seal_is_found_by_verify() {
    let l = year_of_premiums(|_| true);
    l.json(&["close", "--year", "2025"]);
    {
        let ledger = junbao_engine::Ledger::open(&l.data(), junbao_engine::system_clock()).unwrap();
        ledger.store_for_tests().tamper_state(&junbao_ledger::admin::state_key(), None).unwrap();
    }
    let out = l.run(&["verify"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("administration record"), "{}", stderr(&out));
}
