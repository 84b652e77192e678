//! A member's whole career in each fund, from enrolment to discharge or transfer, posted through
//! the engine onto RocksDB, with every amount checked against a hand calculation written here.

mod common;

use common::{contribution, enroll, verify_by_digest};
use junbao_engine::{Ledger, system_clock};
use junbao_ledger::Fen;

fn ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::init(&dir.path().join("l"), system_clock()).unwrap();
    (dir, ledger)
}

fn post(ledger: &Ledger, lines: &[String]) {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    if let Err(e) = ledger.post_lines(&refs) {
        panic!("{e}");
    }
}

fn balance(ledger: &Ledger, account: &str) -> Fen {
    ledger.balances(None, None).balance(account)
}

fn yuan(text: &str) -> Fen {
    Fen::parse_yuan(text).unwrap()
}

#[test]
fn an_officers_medical_and_pension_career_from_enrolment_to_transfer() {
    let (_d, l) = ledger();
    let mut lines = vec![enroll("e", "O1", "officer", "U1", "2018-03-15", "9200.00")];
    for m in 1..=12 {
        let period = format!("2025-{m:02}");
        // Hand: 1 % of 9,200.00 = 92.00 a month, matched 1:1 (Art. 20).
        lines.push(format!(
            r#"{{"id":"c{m}","type":"contribution","member":"O1","fund":"medical","period":"{period}","amount":"92.00","unit":"U1","value_date":"{period}-15"}}"#
        ));
        lines.push(format!(
            r#"{{"id":"s{m}","type":"subsidy","member":"O1","fund":"medical","period":"{period}","amount":"92.00","basis":"match","value_date":"{period}-15"}}"#
        ));
    }
    post(&l, &lines);
    assert_eq!(balance(&l, "medical:member:O1:personal"), yuan("1104.00")); // 12 × 92
    assert_eq!(balance(&l, "medical:member:O1:state"), yuan("1104.00"));

    // Hand: 1.5 % of 2,208.00 held at the end of 2025 = 33.12 (Art. 31, per year).
    post(
        &l,
        &[r#"{"id":"i","type":"interest","fund":"medical","period":"2025-12","rate":"1.5"}"#
            .into()],
    );
    assert_eq!(balance(&l, "medical:member:O1:interest"), yuan("33.12"));

    // Hand: 2018-03-15 → 2026-01-31 (the discharge day served) is 94 whole months; 9,200.00 × 94 = 864,800.00;
    // 12 % = 103,776.00 and 8 % = 69,184.00, together 172,960.00 (Art. 13-14).
    post(
        &l,
        &[r#"{"id":"d","type":"discharge","member":"O1","on":"2026-01-31","route":"employee"}"#
            .into()],
    );
    assert_eq!(balance(&l, "pension:member:O1:state"), yuan("172960.00"));
    assert_eq!(balance(&l, "pension:income:central"), yuan("-172960.00"));

    // Transfers close both accounts; the payable holds 1,104 + 1,104 + 33.12 = 2,241.12.
    post(
        &l,
        &[
            r#"{"id":"t1","type":"transfer_out","member":"O1","fund":"medical","agency":"SI-1"}"#
                .into(),
            r#"{"id":"t2","type":"transfer_out","member":"O1","fund":"pension","agency":"SI-1"}"#
                .into(),
        ],
    );
    assert_eq!(balance(&l, "medical:agency:SI-1:payable"), yuan("2241.12"));
    assert_eq!(balance(&l, "medical:member:O1:personal"), Fen::ZERO);
    assert_eq!(balance(&l, "pension:agency:SI-1:payable"), yuan("172960.00"));
    post(&l, &[r#"{"id":"tc","type":"transfer_confirmed","member":"O1","fund":"medical","agency":"SI-1"}"#.into()]);
    assert_eq!(balance(&l, "medical:expense:transfer"), yuan("2241.12"));
    assert_eq!(balance(&l, "medical:agency:SI-1:payable"), Fen::ZERO);
    verify_by_digest(&l);
}

#[test]
fn a_sergeants_casualty_benefit_comes_out_of_the_pool() {
    let (_d, l) = ledger();
    post(&l, &[
        enroll("e", "S1", "sergeant", "U1", "2019-09-01", "6100.50"),
        r#"{"id":"a","type":"appropriation","fund":"casualty","amount":"1000000.00","value_date":"2025-01-02"}"#.into(),
        // Hand: grade 6 multiple 30 × 6,100.50 = 183,015.00 (Art. 8).
        r#"{"id":"p","type":"payout","member":"S1","fund":"casualty","benefit":"disability","grade":6,"cause":"on_duty","amount":"183015.00","on":"2025-05-20","value_date":"2025-06-01"}"#.into(),
        r#"{"id":"r","type":"recovery","member":"S1","fund":"casualty","amount":"15.00","of":"p","reason":"overpayment returned (Art. 47)"}"#.into(),
    ]);
    assert_eq!(balance(&l, "casualty:pool"), yuan("817000.00")); // 1,000,000 − 183,015 + 15
    assert_eq!(balance(&l, "casualty:expense:benefit"), yuan("183015.00"));
    assert_eq!(balance(&l, "casualty:income:recovery"), yuan("-15.00"));
}

#[test]
fn a_conscripts_service_earns_the_standard_medical_subsidy_and_the_pension_subsidy() {
    let (_d, l) = ledger();
    post(&l, &[
        enroll("e", "C1", "conscript", "U2", "2024-09-01", "1100.00"),
        // Hand: 2024-09-01 → 2026-03-10 is 18 months and 10 days: 1,100.00 × 18 × 20 % =
        // 3,960.00 (whole months only, Art. 13-14).
        r#"{"id":"d","type":"discharge","member":"C1","on":"2026-03-10","route":"employee"}"#.into(),
        // Hand: one year plus six months, which counts as a year: 2 × 420.00 = 840.00.
        r#"{"id":"m","type":"subsidy","member":"C1","fund":"medical","period":"2026-03","amount":"840.00","basis":"standard"}"#.into(),
    ]);
    assert_eq!(balance(&l, "pension:member:C1:state"), yuan("3960.00"));
    assert_eq!(balance(&l, "medical:member:C1:state"), yuan("840.00"));
    assert_eq!(balance(&l, "medical:member:C1:personal"), Fen::ZERO);
}

#[test]
fn a_spouses_premiums_subsidies_suspension_and_transfer() {
    let (_d, l) = ledger();
    let mut lines = vec![
        enroll("e1", "O1", "officer", "U1", "2018-03-15", "9200.00"),
        r#"{"id":"e2","type":"enroll","member":"P1","category":"spouse","unit":"U1","enlisted_on":"2023-01-01","monthly_pay":"4000.00","sponsor":"O1"}"#.to_string(),
    ];
    for m in 1..=6 {
        let p = format!("2025-{m:02}");
        // Hand: base 4,000.00: pension 11 % = 440.00 with 12 % = 480.00 from the state;
        // medical 1 % = 40.00 matched 1:1 (Art. 25).
        lines.push(format!(r#"{{"id":"pp{m}","type":"contribution","member":"P1","fund":"spouse","part":"pension","period":"{p}","amount":"440.00","unit":"U1"}}"#));
        lines.push(format!(r#"{{"id":"ps{m}","type":"subsidy","member":"P1","fund":"spouse","part":"pension","period":"{p}","amount":"480.00","basis":"standard"}}"#));
        lines.push(format!(r#"{{"id":"mp{m}","type":"contribution","member":"P1","fund":"spouse","part":"medical","period":"{p}","amount":"40.00","unit":"U1"}}"#));
        lines.push(format!(r#"{{"id":"ms{m}","type":"subsidy","member":"P1","fund":"spouse","part":"medical","period":"{p}","amount":"40.00","basis":"match"}}"#));
    }
    lines.push(r#"{"id":"s","type":"suspend","member":"P1","fund":"spouse","from":"2025-07","reason":"refused placement without reason","value_date":"2025-07-01"}"#.into());
    lines.push(r#"{"id":"pp7","type":"contribution","member":"P1","fund":"spouse","part":"pension","period":"2025-07","amount":"440.00","unit":"U1"}"#.into());
    post(&l, &lines);
    let refused = l.post_lines(&[
        r#"{"id":"ps7","type":"subsidy","member":"P1","fund":"spouse","part":"pension","period":"2025-07","amount":"480.00","basis":"standard"}"#,
    ]);
    assert!(refused.unwrap_err().to_string().contains("Art. 29"));
    assert_eq!(balance(&l, "spouse:member:P1:pension:personal"), yuan("3080.00")); // 7 × 440
    assert_eq!(balance(&l, "spouse:member:P1:pension:state"), yuan("2880.00")); // 6 × 480
    assert_eq!(balance(&l, "spouse:member:P1:medical:personal"), yuan("240.00"));
    assert_eq!(balance(&l, "spouse:member:P1:medical:state"), yuan("240.00"));
    // Art. 27: the spouse finds work; everything held moves to the agency: 6,440.00.
    post(
        &l,
        &[r#"{"id":"t","type":"transfer_out","member":"P1","fund":"spouse","agency":"SI-2"}"#
            .into()],
    );
    assert_eq!(balance(&l, "spouse:agency:SI-2:payable"), yuan("6440.00"));
    verify_by_digest(&l);
}

#[test]
fn a_standard_changed_mid_year_applies_from_its_date_and_earlier_entries_keep_the_old_value() {
    let (_d, l) = ledger();
    post(&l, &[
        enroll("e", "O1", "officer", "U1", "2018-03-15", "9200.00"),
        contribution("c6", "O1", "2025-06", "92.00", "U1"),
        r#"{"id":"st","type":"standard","name":"medical_personal_rate","value":"2","effective_from":"2025-07-01"}"#.into(),
        // Hand: 2 % of 9,200.00 = 184.00 from July.
        contribution("c7", "O1", "2025-07", "184.00", "U1"),
        // Back-paying May after the change still uses the 1 % in force in May.
        contribution("c5", "O1", "2025-05", "92.00", "U1"),
    ]);
    assert_eq!(balance(&l, "medical:member:O1:personal"), yuan("368.00"));
    let wrong = l.post_lines(&[&contribution("c4", "O1", "2025-04", "184.00", "U1")]);
    assert!(wrong.unwrap_err().to_string().contains("is 92.00"));
    // The June entry, recorded before the change, is unchanged in the journal.
    let journal = l.journal(1, 100).unwrap();
    let june = journal.iter().find(|(_, e)| e.event.id.as_str() == "c6").unwrap();
    assert_eq!(june.1.postings[0].amount, yuan("92.00"));
}

#[test]
fn a_promotion_raises_the_premium_and_the_discharge_subsidy_counts_each_months_pay() {
    let (_d, l) = ledger();
    post(&l, &[
        enroll("e", "O1", "officer", "U1", "2018-03-15", "9200.00"),
        r#"{"id":"pc","type":"pay_change","member":"O1","monthly_pay":"11000.00","on":"2022-03-15"}"#.into(),
        // Hand: 1 % of the new pay, 110.00.
        contribution("c", "O1", "2025-03", "110.00", "U1"),
        // Hand: 48 months at 9,200.00 (2018-03-15 .. 2022-03-15) + 46 months at 11,000.00
        // (.. 2026-01-31) = 441,600.00 + 506,000.00 = 947,600.00; 12 % = 113,712.00 and
        // 8 % = 75,808.00, together 189,520.00.
        r#"{"id":"d","type":"discharge","member":"O1","on":"2026-01-31","route":"employee"}"#.into(),
    ]);
    assert_eq!(balance(&l, "medical:member:O1:personal"), yuan("110.00"));
    assert_eq!(balance(&l, "pension:member:O1:state"), yuan("189520.00"));
}

/// Posts `lines` and returns the refusal's message (the test fails if they are accepted).
fn refused(ledger: &Ledger, lines: &[&str]) -> String {
    match ledger.post_lines(lines) {
        Ok(_) => panic!("accepted: {lines:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn each_discharge_route_gets_what_its_article_gives() {
    let (_d, l) = ledger();
    let mut lines = Vec::new();
    for (m, category) in [
        ("E1", "sergeant"),
        ("R1", "sergeant"),
        ("G1", "officer"),
        ("F1", "officer"),
        ("T1", "officer"),
    ] {
        lines.push(enroll(&format!("e{m}"), m, category, "U1", "2020-01-01", "5000.00"));
    }
    // Hand: 2020-01-01 → 2024-12-31 is 60 months; 5,000.00 × 60 × 20 % = 60,000.00.
    for (m, route) in [
        ("E1", "employee"),
        ("R1", "resident"),
        ("G1", "civil_service"),
        ("F1", "self_employed"),
        ("T1", "retirement"),
    ] {
        lines.push(format!(
            r#"{{"id":"d{m}","type":"discharge","member":"{m}","on":"2024-12-31","route":"{route}"}}"#
        ));
    }
    post(&l, &lines);
    // Art. 13: the employees' and the residents' schemes get the subsidy.
    assert_eq!(balance(&l, "pension:member:E1:state"), yuan("60000.00"));
    assert_eq!(balance(&l, "pension:member:R1:state"), yuan("60000.00"));
    // Art. 18, 19: the State's provisions apply; the ledger computes nothing.
    for m in ["G1", "F1", "T1"] {
        assert_eq!(balance(&l, &format!("pension:member:{m}:state")), Fen::ZERO, "{m}");
    }
    // Art. 18: the amount the State's provisions decide is recorded as such.
    post(&l, &[r#"{"id":"pv","type":"subsidy","member":"F1","fund":"pension","period":"2024-12","amount":"45000.00","basis":"provision"}"#.into()]);
    assert_eq!(balance(&l, "pension:member:F1:state"), yuan("45000.00"));
    let why = refused(
        &l,
        &[
            r#"{"id":"pv2","type":"subsidy","member":"T1","fund":"pension","period":"2024-12","amount":"45000.00","basis":"provision"}"#,
        ],
    );
    assert!(why.contains("Art. 18"), "{why}");
    // Art. 19: retirement has no pension transfer; Art. 16 and 17 routes do.
    let why = refused(
        &l,
        &[r#"{"id":"tT","type":"transfer_out","member":"T1","fund":"pension","agency":"SI-1"}"#],
    );
    assert!(why.contains("Art. 19"), "{why}");
    post(
        &l,
        &[
            r#"{"id":"tE","type":"transfer_out","member":"E1","fund":"pension","agency":"SI-1"}"#
                .into(),
            r#"{"id":"tR","type":"transfer_out","member":"R1","fund":"pension","agency":"SI-2"}"#
                .into(),
        ],
    );
    assert_eq!(balance(&l, "pension:agency:SI-1:payable"), yuan("60000.00"));
    // A discharge followed by a transfer is not reversed (Art. 16).
    let why = refused(&l, &[r#"{"id":"rv","type":"reversal","of":"dE1","reason":"typo"}"#]);
    assert!(why.contains("reverse the transfer first"), "{why}");
    verify_by_digest(&l);
}

#[test]
fn a_reassigned_servicemans_premiums_follow_his_unit_and_his_spouses_follow_him() {
    let (_d, l) = ledger();
    post(&l, &[
        enroll("e1", "O1", "officer", "U1", "2018-03-15", "9200.00"),
        r#"{"id":"e2","type":"enroll","member":"P1","category":"spouse","unit":"U1","enlisted_on":"2023-01-01","monthly_pay":"4000.00","sponsor":"O1"}"#.into(),
        contribution("c4", "O1", "2025-04", "92.00", "U1"),
        r#"{"id":"uc","type":"unit_change","member":"O1","unit":"U7","on":"2025-05-01"}"#.into(),
        contribution("c5", "O1", "2025-05", "92.00", "U7"),
        // Posted late, the April premium is still the old unit's (Art. 32).
        contribution("c3", "O1", "2025-03", "92.00", "U1"),
        // Art. 32 para. 2: the spouse's premium is withheld by the serviceman's unit.
        r#"{"id":"sp","type":"contribution","member":"P1","fund":"spouse","part":"medical","period":"2025-06","amount":"40.00","unit":"U7"}"#.into(),
    ]);
    let why = refused(&l, &[&contribution("c6", "O1", "2025-06", "92.00", "U1")]);
    assert!(why.contains("Art. 32") && why.contains("U7"), "{why}");
    let why = refused(
        &l,
        &[
            r#"{"id":"sp2","type":"contribution","member":"P1","fund":"spouse","part":"medical","period":"2025-07","amount":"40.00","unit":"U1"}"#,
        ],
    );
    assert!(why.contains("Art. 32"), "{why}");
    assert_eq!(balance(&l, "medical:member:O1:personal"), yuan("276.00"));
}

#[test]
fn a_suspension_posted_late_judges_each_subsidy_by_its_month() {
    let (_d, l) = ledger();
    let mut lines = vec![
        enroll("e1", "O1", "officer", "U1", "2018-03-15", "9200.00"),
        r#"{"id":"e2","type":"enroll","member":"P1","category":"spouse","unit":"U1","enlisted_on":"2023-01-01","monthly_pay":"4000.00","sponsor":"O1"}"#.to_string(),
    ];
    for m in 1..=8 {
        lines.push(format!(r#"{{"id":"mp{m}","type":"contribution","member":"P1","fund":"spouse","part":"medical","period":"2025-{m:02}","amount":"40.00","unit":"U1"}}"#));
    }
    // The suspension (from May) and the resumption (from July) are recorded before the
    // subsidies of January to August are posted.
    lines.push(r#"{"id":"s","type":"suspend","member":"P1","fund":"spouse","from":"2025-05","reason":"refused placement"}"#.into());
    lines.push(r#"{"id":"r","type":"resume","member":"P1","fund":"spouse","from":"2025-07","reason":"accepted training"}"#.into());
    post(&l, &lines);
    for m in 1..=8 {
        let line = format!(
            r#"{{"id":"ms{m}","type":"subsidy","member":"P1","fund":"spouse","part":"medical","period":"2025-{m:02}","amount":"40.00","basis":"match"}}"#
        );
        let result = l.post_lines(&[&line]);
        if m == 5 || m == 6 {
            assert!(result.unwrap_err().to_string().contains("Art. 29"), "month {m}");
        } else {
            result.unwrap();
        }
    }
    assert_eq!(balance(&l, "spouse:member:P1:medical:state"), yuan("240.00")); // 6 × 40
    // The suspended months' premiums await no match: the account can be transferred.
    post(
        &l,
        &[r#"{"id":"t","type":"transfer_out","member":"P1","fund":"spouse","agency":"SI-3"}"#
            .into()],
    );
    assert_eq!(balance(&l, "spouse:agency:SI-3:payable"), yuan("560.00")); // 8 × 40 + 6 × 40
}

#[test]
fn a_spouses_insurance_ends_with_her_servicemans_service() {
    let (_d, l) = ledger();
    post(&l, &[
        enroll("e1", "O1", "officer", "U1", "2018-03-15", "9200.00"),
        r#"{"id":"e2","type":"enroll","member":"P1","category":"spouse","unit":"U1","enlisted_on":"2023-01-01","monthly_pay":"4000.00","sponsor":"O1"}"#.into(),
        r#"{"id":"pp","type":"contribution","member":"P1","fund":"spouse","part":"pension","period":"2026-01","amount":"440.00","unit":"U1"}"#.into(),
        r#"{"id":"ps","type":"subsidy","member":"P1","fund":"spouse","part":"pension","period":"2026-01","amount":"480.00","basis":"standard"}"#.into(),
        r#"{"id":"d","type":"discharge","member":"O1","on":"2026-01-31","route":"employee"}"#.into(),
    ]);
    // Art. 27: nothing is due for a month after the serviceman left.
    let why = refused(
        &l,
        &[
            r#"{"id":"pp2","type":"contribution","member":"P1","fund":"spouse","part":"pension","period":"2026-02","amount":"440.00","unit":"U1"}"#,
        ],
    );
    assert!(why.contains("Art. 27"), "{why}");
    // The relationship and its funds are transferred: 440 + 480.
    post(
        &l,
        &[r#"{"id":"t","type":"transfer_out","member":"P1","fund":"spouse","agency":"SI-4"}"#
            .into()],
    );
    assert_eq!(balance(&l, "spouse:agency:SI-4:payable"), yuan("920.00"));
}

#[test]
fn a_conscripts_full_two_year_term_counts_24_months_and_two_years() {
    let (_d, l) = ledger();
    post(
        &l,
        &[
            enroll("e", "C1", "conscript", "U2", "2023-09-01", "1100.00"),
            // Hand: 2023-09-01 → 2025-08-31, the last day served, is 24 months:
            // 1,100.00 × 24 × 20 % = 5,280.00 (Art. 13-14).
            r#"{"id":"d","type":"discharge","member":"C1","on":"2025-08-31","route":"employee"}"#
                .into(),
        ],
    );
    assert_eq!(balance(&l, "pension:member:C1:state"), yuan("5280.00"));
    // The medical account cannot go before its standard subsidy is posted (Art. 20 para. 2).
    let why = refused(
        &l,
        &[r#"{"id":"t","type":"transfer_out","member":"C1","fund":"medical","agency":"SI-1"}"#],
    );
    assert!(why.contains("Art. 20 para. 2"), "{why}");
    // Hand: two full years: 2 × 420.00 = 840.00.
    post(&l, &[
        r#"{"id":"m","type":"subsidy","member":"C1","fund":"medical","period":"2025-08","amount":"840.00","basis":"standard"}"#.into(),
        r#"{"id":"t","type":"transfer_out","member":"C1","fund":"medical","agency":"SI-1"}"#.into(),
        r#"{"id":"tp","type":"transfer_out","member":"C1","fund":"pension","agency":"SI-1"}"#.into(),
    ]);
    assert_eq!(balance(&l, "medical:agency:SI-1:payable"), yuan("840.00"));
    assert_eq!(balance(&l, "pension:agency:SI-1:payable"), yuan("5280.00"));
    verify_by_digest(&l);
}
