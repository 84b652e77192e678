//! Journals written before issue 11 still decode and replay: the old forms of `discharge`,
//! `payout`, `suspend`, `recovery` and `transfer_out` keep their variant index, and replay
//! gives them the meaning `docs/EVENTS.md` ("Old entries") states. The bytes are built here by
//! hand from `docs/FORMAT.md`, as a third party would.

use junbao_ledger::event::Route;
use junbao_ledger::standard::SEED_STANDARDS;
use junbao_ledger::{Date, Entry, EventBody, LedgerState, parse_event_line};

fn varint(out: &mut Vec<u8>, n: u64) {
    if n < 251 {
        out.push(n as u8);
    } else if n < 1 << 16 {
        out.push(0xFB);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n < 1 << 32 {
        out.push(0xFC);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    } else {
        out.push(0xFD);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

fn signed(out: &mut Vec<u8>, n: i64) {
    varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn string(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The canonical bytes of an old-form `discharge` (variant 6) of `member` on `on`, posting
/// `fen` to the member's pension state account against central income.
fn old_discharge_bytes(seq: u64, member: &str, on: Date, fen: i64) -> Vec<u8> {
    let mut b = vec![1]; // format
    varint(&mut b, seq);
    signed(&mut b, 1_767_225_600_000_000); // recorded_at_us
    signed(&mut b, i64::from(on.0)); // value_date
    string(&mut b, &format!("old-discharge-{member}")); // event id
    b.push(0); // value_date: none
    b.push(0); // memo: none
    varint(&mut b, 6); // EventBody::discharge, the old form
    string(&mut b, member);
    signed(&mut b, i64::from(on.0));
    varint(&mut b, 2); // two postings
    // pension (1), member (0), member id, part none, holding state (1)
    b.extend_from_slice(&[1, 0]);
    string(&mut b, member);
    b.extend_from_slice(&[0, 1]);
    signed(&mut b, fen);
    // pension (1), source (3), central (1)
    b.extend_from_slice(&[1, 3, 1]);
    signed(&mut b, -fen);
    b
}

fn new_entries(lines: &[String], state: &mut LedgerState) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (seq, l) in (0u64..).zip(lines) {
        let head = if seq == 0 { [0; 32] } else { [1; 32] };
        let mut batch = state.begin(seq, head);
        let event = parse_event_line(l).unwrap();
        batch.apply(event, 1_767_225_600_000_000, &junbao_ledger::rules::NoLookup).unwrap();
        let e = batch.entries()[0].clone();
        let prepared = batch.finish();
        prepared.changes.commit();
        entries.push(e);
    }
    entries
}

#[test]
fn an_old_discharge_without_a_route_decodes_and_replays_as_the_employee_route() {
    let mut state = LedgerState::default();
    let mut lines: Vec<String> = SEED_STANDARDS
        .iter()
        .map(|(n, v, f)| {
            format!(
                r#"{{"id":"s-{n}","type":"standard","name":"{n}","value":"{v}","effective_from":"{f}"}}"#
            )
        })
        .collect();
    lines.push(r#"{"id":"e","type":"enroll","member":"O1","category":"officer","unit":"U1","enlisted_on":"2018-03-15","monthly_pay":"9200.00"}"#.into());
    let mut entries = new_entries(&lines, &mut state);
    let on = Date::parse("2025-12-31").unwrap();
    let bytes = old_discharge_bytes(entries.len() as u64 + 1, "O1", on, 17_296_000);
    let old = Entry::from_canonical_bytes(&bytes).expect("old bytes decode");
    assert!(matches!(old.event.body, EventBody::DischargeV1 { .. }));
    assert_eq!(old.canonical_bytes(), bytes, "re-encoding keeps the old bytes");
    entries.push(old);
    let replayed = LedgerState::replay(&entries);
    let m = &replayed.members[&junbao_ledger::ids::MemberId::parse("O1").unwrap()];
    assert_eq!(m.discharged_on, Some(on));
    assert_eq!(m.route, Some(Route::Employee));
    // Posting the old form anew is refused: a discharge names its route.
    let err = parse_event_line(r#"{"id":"x","type":"discharge","member":"O1","on":"2025-12-31"}"#)
        .unwrap_err();
    assert_eq!(err.field, Some("route"));
}
