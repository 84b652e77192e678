//! A member's whole career in each fund, from enrolment to discharge or transfer, posted through
//! the engine onto RocksDB, with every amount checked against a hand calculation written here.

mod common;

use common::{contribution, enroll};
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
    let sheet = ledger.balances(None, None);
    let fen = sheet
        .funds
        .iter()
        .flat_map(|f| f.accounts.iter())
        .find(|(a, _)| a == account)
        .map_or(0, |(_, b)| *b);
    Fen(fen)
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
        lines.push(contribution(&format!("c{m}"), "O1", &period, "92.00", "U1"));
        lines.push(format!(
            r#"{{"id":"s{m}","type":"subsidy","member":"O1","fund":"medical","period":"{period}","amount":"92.00","basis":"match"}}"#
        ));
    }
    post(&l, &lines);
    assert_eq!(balance(&l, "medical:member:O1:personal"), yuan("1104.00")); // 12 × 92
    assert_eq!(balance(&l, "medical:member:O1:state"), yuan("1104.00"));

    // Hand: 1.5 % of 2,208.00 held = 33.12.
    post(
        &l,
        &[r#"{"id":"i","type":"interest","fund":"medical","period":"2025-12","rate":"1.5"}"#
            .into()],
    );
    assert_eq!(balance(&l, "medical:member:O1:interest"), yuan("33.12"));

    // Hand: 2018-03-15 → 2026-01-31 is 94 whole months; 9,200.00 × 94 = 864,800.00;
    // 12 % = 103,776.00 and 8 % = 69,184.00, together 172,960.00 (Art. 13-14).
    post(&l, &[r#"{"id":"d","type":"discharge","member":"O1","on":"2026-01-31"}"#.into()]);
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
    l.verify(&|_| {}).unwrap();
}

#[test]
fn a_sergeants_casualty_benefit_comes_out_of_the_pool() {
    let (_d, l) = ledger();
    post(&l, &[
        enroll("e", "S1", "sergeant", "U1", "2019-09-01", "6100.50"),
        r#"{"id":"a","type":"appropriation","fund":"casualty","amount":"1000000.00","value_date":"2025-01-02"}"#.into(),
        // Hand: grade 6 multiple 30 × 6,100.50 = 183,015.00 (Art. 8).
        r#"{"id":"p","type":"payout","member":"S1","fund":"casualty","benefit":"disability","grade":6,"cause":"on_duty","amount":"183015.00","value_date":"2025-06-01"}"#.into(),
        r#"{"id":"r","type":"recovery","member":"S1","fund":"casualty","amount":"15.00","reason":"overpayment returned (Art. 47)"}"#.into(),
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
        // Hand: 2024-09-01 → 2026-03-10 is 18 months: 1,100.00 × 18 × 20 % = 3,960.00.
        r#"{"id":"d","type":"discharge","member":"C1","on":"2026-03-10"}"#.into(),
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
    lines.push(r#"{"id":"s","type":"suspend","member":"P1","fund":"spouse","reason":"refused placement without reason","value_date":"2025-07-01"}"#.into());
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
    l.verify(&|_| {}).unwrap();
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
        r#"{"id":"d","type":"discharge","member":"O1","on":"2026-01-31"}"#.into(),
    ]);
    assert_eq!(balance(&l, "medical:member:O1:personal"), yuan("110.00"));
    assert_eq!(balance(&l, "pension:member:O1:state"), yuan("189520.00"));
}
