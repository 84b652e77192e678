//! The law's rules as a table: `tests/fixtures/rules.jsonl` (at the workspace root) holds one
//! case per line — setup events, the event under test, and whether it is accepted or refused
//! (with the article the refusal must cite); optionally `balances`, account name → amount, as
//! they must stand after the event. Adding a case is adding a line. It lives in the ledger
//! crate so that it runs without building the storage layer.

use junbao_ledger::standard::SEED_STANDARDS;
use junbao_ledger::{Entry, EntryLookup, LedgerState, parse_event_line};

/// 2026-11-01T00:00:00Z: the recording time of every case.
const NOW_US: i64 = 1_793_491_200_000_000;

/// Members every case starts with, after the seed standards.
const BASE: &[&str] = &[
    r#"{"id":"b1","type":"enroll","member":"O1","category":"officer","unit":"U1","enlisted_on":"2018-03-15","monthly_pay":"9200.00"}"#,
    r#"{"id":"b2","type":"enroll","member":"S1","category":"sergeant","unit":"U1","enlisted_on":"2019-09-01","monthly_pay":"6100.50"}"#,
    r#"{"id":"b3","type":"enroll","member":"D1","category":"civilian_cadre","unit":"U1","enlisted_on":"2016-07-01","monthly_pay":"7000.00"}"#,
    r#"{"id":"b4","type":"enroll","member":"C1","category":"conscript","unit":"U2","enlisted_on":"2024-09-01","monthly_pay":"1100.00"}"#,
    r#"{"id":"b5","type":"enroll","member":"K1","category":"cadet","unit":"U2","enlisted_on":"2022-09-01","monthly_pay":"900.00"}"#,
    r#"{"id":"b6","type":"enroll","member":"P1","category":"spouse","unit":"U1","enlisted_on":"2023-01-01","monthly_pay":"4000.00","sponsor":"O1"}"#,
    r#"{"id":"approp","type":"appropriation","fund":"casualty","amount":"10000000.00","value_date":"2025-01-02"}"#,
];

struct Entries(Vec<Entry>);

struct Ledger {
    state: LedgerState,
    entries: Entries,
    head: (u64, [u8; 32]),
}

impl EntryLookup for Entries {
    fn entry_by_event_id(
        &self,
        id: &junbao_ledger::ids::EventId,
    ) -> Result<Option<Entry>, junbao_ledger::LookupError> {
        Ok(self.0.iter().find(|e| &e.event.id == id).cloned())
    }
}

impl Ledger {
    fn apply(&mut self, line: &str) -> Result<(), String> {
        let event = parse_event_line(line).map_err(|e| e.to_string())?;
        let mut batch = self.state.begin(self.head.0, self.head.1);
        batch.apply(event, NOW_US, &self.entries).map_err(|e| e.to_string())?;
        let entry = batch.entries()[0].clone();
        let prepared = batch.finish();
        self.head = (prepared.head_seq, prepared.head);
        prepared.changes.commit();
        self.entries.0.push(entry);
        Ok(())
    }
}

#[test]
fn every_rule_accepts_what_the_law_allows_and_refuses_what_it_forbids() {
    let text = include_str!("../../../tests/fixtures/rules.jsonl");
    let mut failures = Vec::new();
    let mut count = 0;
    for (n, line) in text.lines().enumerate() {
        let case: serde_json::Value = serde_json::from_str(line).expect("fixture line is JSON");
        let name = case["case"].as_str().expect("case name");
        count += 1;
        let mut l = Ledger {
            state: LedgerState::default(),
            entries: Entries(Vec::new()),
            head: (0, [0; 32]),
        };
        for (name, value, from) in SEED_STANDARDS {
            l.apply(&format!(
                r#"{{"id":"std-{name}","type":"standard","name":"{name}","value":"{value}","effective_from":"{from}"}}"#
            ))
            .unwrap();
        }
        for b in BASE {
            l.apply(b).unwrap();
        }
        for s in case["setup"].as_array().expect("setup list") {
            if let Err(e) = l.apply(&s.to_string()) {
                failures.push(format!("line {} {name}: setup {s} refused: {e}", n + 1));
            }
        }
        let result = l.apply(&case["event"].to_string());
        let trial = l.state.trial_balance();
        assert!(trial.values().all(|t| *t == 0), "{name}: trial balance {trial:?}");
        if let Some(expected) = case.get("balances").and_then(|b| b.as_object()) {
            for (account, amount) in expected {
                let held = l
                    .state
                    .balances()
                    .find(|(a, _)| a.to_string() == *account)
                    .map_or("0.00".to_string(), |(_, f)| f.to_string());
                if Some(held.as_str()) != amount.as_str() {
                    failures.push(format!(
                        "line {} {name}: {account} holds {held}, expected {amount}",
                        n + 1
                    ));
                }
            }
        }
        match (case["expect"].as_str(), result) {
            (Some("accepted"), Ok(())) => {}
            (Some("rejected"), Err(e)) => {
                let because = case["because"].as_str().expect("a refusal names its reason");
                if !e.contains(because) {
                    failures.push(format!(
                        "line {} {name}: refused, but not citing {because:?}: {e}",
                        n + 1
                    ));
                }
            }
            (Some("accepted"), Err(e)) => {
                failures.push(format!("line {} {name}: refused: {e}", n + 1))
            }
            (_, Ok(())) => {
                failures.push(format!("line {} {name}: accepted, expected a refusal", n + 1))
            }
            (other, _) => {
                failures.push(format!("line {} {name}: bad expectation {other:?}", n + 1))
            }
        }
    }
    assert!(count >= 60, "the table lost cases: {count}");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The exceptions report replays the journal through today's rules from an empty state, where
/// an enrolment may have been refused: a reversal of an entry about a member that state does
/// not know is refused, never a panic of the rules.
#[test]
fn a_reversal_of_an_entry_about_an_unknown_member_is_refused_not_a_panic() {
    let seeded = || {
        let mut l = Ledger {
            state: LedgerState::default(),
            entries: Entries(Vec::new()),
            head: (0, [0; 32]),
        };
        for (name, value, from) in SEED_STANDARDS {
            l.apply(&format!(
                r#"{{"id":"std-{name}","type":"standard","name":"{name}","value":"{value}","effective_from":"{from}"}}"#
            ))
            .unwrap();
        }
        l
    };
    let mut full = seeded();
    for b in BASE {
        full.apply(b).unwrap();
    }
    let targets = [
        r#"{"id":"p-o1","type":"contribution","member":"O1","fund":"medical","period":"2025-03","amount":"92.00","unit":"U1"}"#,
        r#"{"id":"b","type":"payout","member":"S1","fund":"casualty","benefit":"disability","amount":"183015.00","cause":"on_duty","value_date":"2025-06-01","grade":6,"on":"2025-06-01"}"#,
        r#"{"id":"x","type":"discharge","member":"O1","on":"2026-01-31","route":"retirement"}"#,
    ];
    for t in targets {
        full.apply(t).unwrap();
    }
    for id in ["p-o1", "b", "x"] {
        let mut empty = seeded();
        empty.entries = Entries(full.entries.0.clone());
        let reversal = format!(r#"{{"id":"r-{id}","type":"reversal","of":"{id}","reason":"t"}}"#);
        let err = empty.apply(&reversal).expect_err("the member is not enrolled");
        assert!(err.contains("not enrolled"), "{id}: {err}");
    }
}

/// Amounts are bounded (`AMOUNT_FEN_MAX`), sums are not: the appropriation that would take a
/// balance past what an i64 of fen holds is refused, naming the account, and the state stays
/// usable (no panic of the writer, no wrapped balance).
#[test]
fn a_balance_that_would_pass_i64_is_refused_naming_the_account() {
    let mut l =
        Ledger { state: LedgerState::default(), entries: Entries(Vec::new()), head: (0, [0; 32]) };
    let max = junbao_ledger::Fen(junbao_ledger::money::AMOUNT_FEN_MAX).to_string();
    let limit = i64::MAX / junbao_ledger::money::AMOUNT_FEN_MAX + 1;
    let mut refused = None;
    for n in 0..=limit {
        let line = format!(
            r#"{{"id":"a{n}","type":"appropriation","fund":"casualty","amount":"{max}","value_date":"2025-01-02"}}"#
        );
        if let Err(e) = l.apply(&line) {
            refused = Some((n, e));
            break;
        }
    }
    let (n, e) = refused.expect("refused before the balance passes i64");
    assert_eq!(n, limit - 1, "{e}");
    assert!(e.contains("field \"amount\""), "{e}");
    assert!(e.contains("casualty:"), "names the account: {e}");
    // Smaller amounts still go in.
    l.apply(r#"{"id":"small","type":"appropriation","fund":"casualty","amount":"1.00","value_date":"2025-01-02"}"#)
        .unwrap();
}

/// The rules leave out the per-account overflow check while a bound on the state's balances
/// (`BalanceBound`, as the engine's writer keeps it) plus the absolute amounts the batch and
/// the entry move fits an i64; past it they check account by account, so the appropriation
/// that would take a balance past i64 is refused exactly as without the bound.
#[test]
fn a_balance_past_the_bound_is_still_refused_with_the_same_message() {
    use junbao_ledger::rules::BalanceBound;
    let max = junbao_ledger::Fen(junbao_ledger::money::AMOUNT_FEN_MAX).to_string();
    let limit = i64::MAX / junbao_ledger::money::AMOUNT_FEN_MAX + 1;
    let line = |n: i64, amount: &str| {
        format!(
            r#"{{"id":"a{n}","type":"appropriation","fund":"casualty","amount":"{amount}","value_date":"2025-01-02"}}"#
        )
    };
    let lookup = Entries(Vec::new());
    let mut state = LedgerState::default();
    let mut bound = BalanceBound::ZERO;
    let mut head = (0, [0; 32]);
    // A first batch the bound covers, then one in which it stops covering (each appropriation
    // moves twice its amount) and the balance then passes i64.
    let mut refused = None;
    for (from, to) in [(0, limit / 4), (limit / 4, limit + 1)] {
        let mut batch = state.begin_bounded(head.0, head.1, bound);
        for n in from..to {
            let event = parse_event_line(&line(n, &max)).unwrap();
            if let Err(e) = batch.apply(event, NOW_US, &lookup) {
                refused.get_or_insert((n, e.to_string()));
            }
        }
        let prepared = batch.finish();
        head = (prepared.head_seq, prepared.head);
        bound = bound.after(&prepared.changes);
        prepared.changes.commit();
        if from == 0 {
            assert!(bound.fen() <= i64::MAX as u128, "the first batch is covered");
        }
    }
    assert!(bound.fen() > i64::MAX as u128, "the bound was passed");
    let (n, e) = refused.expect("refused before the balance passes i64");
    assert_eq!(n, limit - 1, "{e}");
    assert!(e.contains("field \"amount\""), "{e}");
    assert!(e.contains("would pass the largest amount the ledger holds"), "{e}");
    assert!(e.contains("casualty:"), "names the account: {e}");
    assert_eq!(BalanceBound::of(&state).fen(), (limit as u128 - 1) * max_fen());
    // Smaller amounts still go in; the largest is still refused.
    let mut batch = state.begin_bounded(head.0, head.1, bound);
    batch.apply(parse_event_line(&line(-1, "1.00")).unwrap(), NOW_US, &lookup).unwrap();
    let e = batch.apply(parse_event_line(&line(-2, &max)).unwrap(), NOW_US, &lookup).unwrap_err();
    assert!(e.to_string().contains("would pass the largest amount"), "{e}");
}

fn max_fen() -> u128 {
    junbao_ledger::money::AMOUNT_FEN_MAX as u128
}
