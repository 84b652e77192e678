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
        self.state.commit(prepared.changes);
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
                    .balances
                    .iter()
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
