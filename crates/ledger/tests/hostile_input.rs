//! Fuzz-style properties: whatever bytes, lines or JSON come in — a corrupted store, a hostile
//! client, a forged package — the ledger answers with an error, never a panic.

use ed25519_dalek::SigningKey;
use junbao_ledger::entry::Entry;
use junbao_ledger::event::parse_event_line;
use junbao_ledger::transfer::{TRANSFER_SCHEMA, verify_package};
use junbao_ledger::{Date, Fen};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Touches what the commands print of an entry: dates, periods, amounts, accounts.
fn render(entry: &Entry) -> String {
    let mut out = format!("{} {} {}", entry.seq, entry.value_date, entry.value_date.period());
    for p in &entry.postings {
        out.push_str(&format!(" {} {}", p.account, p.amount));
    }
    out.push_str(entry.event.body.type_name());
    out
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e20f64..1e20).prop_map(Value::from),
        "[ -~]{0,40}".prop_map(Value::from),
        "[0-9a-f]{0,130}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("schema".to_string()),
                    Just("entries".to_string()),
                    Just("digest".to_string()),
                    Just("years".to_string()),
                    Just("member".to_string()),
                    Just("bytes".to_string()),
                    Just("proof".to_string()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A package skeleton of the right shape whose parts are replaced by random values.
fn package_like() -> impl Strategy<Value = Value> {
    (json_value(), json_value(), json_value(), any::<u64>(), "[0-9a-f]{0,200}").prop_map(
        |(member, years, digest, seq, bytes)| {
            json!({
                "schema": TRANSFER_SCHEMA, "agency": "SI-1", "fund": "pension",
                "member": member, "service": {"from": "2010-01-01", "to": "2020-01-01",
                "months": 120, "years_counted": "10.00", "counts_toward": "x"},
                "years": years, "pension_rates": null,
                "totals": {"personal": "0.00", "state": "0.00", "interest": "0.00", "total": "0.00"},
                "transfer_entry": seq,
                "entries": [{"seq": seq, "bytes": bytes, "proof": {"leaf_index": seq,
                    "tree_size": seq, "leaf_hash": bytes, "path": [], "root": bytes}}],
                "digest": digest,
                "package_signature": "00",
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_entry_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(entry) = Entry::from_canonical_bytes(&bytes) {
            let _ = render(&entry);
        }
    }

    #[test]
    fn random_lines_never_panic_the_event_parser(line in "[ -~]{0,300}") {
        let _ = parse_event_line(&line);
    }

    #[test]
    fn random_json_objects_never_panic_the_event_parser(v in json_value()) {
        let _ = parse_event_line(&v.to_string());
    }

    #[test]
    fn random_json_is_refused_by_transfer_verify_without_panicking(v in json_value(), p in package_like()) {
        let pinned = SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes();
        prop_assert!(verify_package(&v, &pinned, None).is_err());
        prop_assert!(verify_package(&p, &pinned, None).is_err());
    }
}

#[test]
fn dates_at_the_ends_of_i32_days_render_without_panicking() {
    for days in [i32::MIN, i32::MIN + 1, -1, i32::MAX - 1, i32::MAX] {
        let d = Date(days);
        let _ = d.to_string();
        let _ = d.period();
        let _ = d.period().last_day();
        let _ = Date(0).whole_months_until(d);
        let _ = d.whole_months_until(Date(0));
        assert!(!d.is_in_range() || days == -1);
    }
    let _ = Fen(i64::MIN).to_string();
}

/// An entry as stored bytes would decode to: event `e{seq}`, no postings, recorded at 0.
fn stored_entry(seq: u64, value_date: Date, body: junbao_ledger::event::EventBody) -> Entry {
    use junbao_ledger::entry::ENTRY_FORMAT_VERSION;
    use junbao_ledger::event::Event;
    use junbao_ledger::ids::EventId;
    Entry {
        format: ENTRY_FORMAT_VERSION,
        seq,
        recorded_at_us: 0,
        value_date,
        event: Event {
            id: EventId::parse(&format!("e{seq}")).unwrap(),
            value_date: None,
            memo: None,
            body,
        },
        postings: Vec::new(),
    }
}

#[test]
fn extreme_dates_in_stored_entries_give_errors_not_panics() {
    use junbao_ledger::event::{EventBody, Route};
    use junbao_ledger::ids::{AgencyId, MemberId, UnitId};
    use junbao_ledger::{Category, Fund};
    let member = MemberId::parse("M1").unwrap();
    let entry = |seq: u64, value_date: Date, body: EventBody| Entry {
        recorded_at_us: i64::MAX,
        ..stored_entry(seq, value_date, body)
    };
    // A value date near i32::MAX days is refused by the decoder, with an error.
    let far = entry(
        1,
        Date(i32::MAX - 1),
        EventBody::Discharge { member: member.clone(), on: Date(0), route: Route::Employee },
    );
    assert!(Entry::from_canonical_bytes(&far.canonical_bytes()).is_err());
    // Dates inside an event are not range-checked by the decoder: the package's figures refuse
    // them without panicking, whatever the extremes.
    for (enlisted, on) in [
        (Date(i32::MAX), Date(i32::MIN)),
        (Date(i32::MIN), Date(i32::MAX)),
        (Date(i32::MAX - 1), Date(i32::MAX)),
        (Date(0), Date(i32::MAX)),
    ] {
        let entries = vec![
            entry(
                1,
                Date(0),
                EventBody::Enroll {
                    member: member.clone(),
                    category: Category::Officer,
                    unit: UnitId::parse("U1").unwrap(),
                    enlisted_on: enlisted,
                    monthly_pay: Fen(i64::MAX),
                    sponsor: None,
                },
            ),
            entry(
                2,
                Date(0),
                EventBody::Discharge { member: member.clone(), on, route: Route::Employee },
            ),
            entry(
                3,
                Date(0),
                EventBody::TransferOut {
                    member: member.clone(),
                    fund: Fund::Pension,
                    agency: AgencyId::parse("SI-1").unwrap(),
                    part: None,
                },
            ),
        ];
        let _ = junbao_ledger::transfer::figures(
            &member,
            Fund::Pension,
            &entries,
            Some((i64::MAX, i64::MIN)),
        );
        let _ = render(&entries[1]);
    }
}

/// A mirror adds entries another ledger recorded (`Batch::apply_recorded`) from bytes it was
/// sent, never parsed: a standard with an unknown name or a malformed value is refused with an
/// error, and replaying such stored bytes changes no standard; neither panics.
#[test]
fn a_recorded_standard_with_an_unknown_name_or_bad_value_is_refused_not_a_panic() {
    use junbao_ledger::event::EventBody;
    use junbao_ledger::ids::EventId;
    use junbao_ledger::{EntryLookup, LedgerState, LookupError};
    struct Nothing;
    impl EntryLookup for Nothing {
        fn entry_by_event_id(&self, _: &EventId) -> Result<Option<Entry>, LookupError> {
            Ok(None)
        }
    }
    for (name, value) in [("no_such_standard", "1.00"), ("medical_interest_rate", "not a number")] {
        let body = EventBody::Standard {
            name: name.into(),
            value: value.into(),
            effective_from: Date(20_000),
        };
        let entry = stored_entry(1, Date(20_000), body);
        let mut state = LedgerState::default();
        let mut batch = state.begin(0, [0; 32]);
        let refused = batch.apply_recorded(entry.clone(), &Nothing);
        assert!(refused.is_err(), "{name} = {value}");
        let replayed = LedgerState::replay(std::iter::once(&entry));
        assert_eq!(replayed.standards, LedgerState::default().standards, "{name} = {value}");
    }
}

/// Replaying stored entries (`verify`, the rebuild at open) applies their effects without the
/// rules: an entry that decodes but could not have been recorded (about a member never
/// enrolled, here) is left out and reported, never a panic.
#[test]
fn replaying_an_entry_that_could_not_have_been_recorded_reports_it_instead_of_panicking() {
    use junbao_ledger::event::{EventBody, Route};
    use junbao_ledger::ids::MemberId;
    use junbao_ledger::rules::Replayer;
    let body = EventBody::Discharge {
        member: MemberId::parse("M9").unwrap(),
        on: Date(20_000),
        route: Route::Employee,
    };
    let entry = stored_entry(1, Date(20_000), body);
    let mut replayer = Replayer::keeping_every_entry();
    replayer.push(&entry);
    let (seq, why) = replayer.unreplayable().cloned().expect("reported");
    assert_eq!(seq, 1);
    assert!(why.contains("M9"), "{why}");
    assert!(replayer.finish().members.is_empty());
}

/// The replay skips the per-account overflow check while the absolute amounts of everything it
/// applied stay within an i64 (no balance can pass one then); past that it checks each entry
/// again, so a balance that would pass the largest amount is still found and reported.
#[test]
fn a_replayed_balance_that_would_pass_an_i64_is_reported_after_large_and_small_entries() {
    use junbao_ledger::entry::Posting;
    use junbao_ledger::event::EventBody;
    use junbao_ledger::fund::{AccountKind, Source};
    use junbao_ledger::rules::Replayer;
    use junbao_ledger::{Account, Fund};
    let appropriation = |seq: u64, amount: i64| Entry {
        postings: vec![
            Posting {
                account: Account { fund: Fund::Casualty, kind: AccountKind::Pool },
                amount: Fen(amount),
            },
            Posting {
                account: Account {
                    fund: Fund::Casualty,
                    kind: AccountKind::Source(Source::Central),
                },
                amount: Fen(-amount),
            },
        ],
        ..stored_entry(
            seq,
            Date(20_000),
            EventBody::Appropriation { fund: Fund::Casualty, amount: Fen(amount) },
        )
    };
    let half = i64::MAX / 2;
    // Small entries (checked by the bound), then large ones that pass it (checked one by one):
    // the pool reaches 2 · half + 2 = i64::MAX + 1 at entry 4.
    let entries =
        [appropriation(1, 1), appropriation(2, half), appropriation(3, half), appropriation(4, 1)];
    let mut replayer = Replayer::keeping_every_entry();
    replayer.push_all(&entries);
    let (seq, why) = replayer.unreplayable().expect("entry 4 could not have been recorded");
    assert_eq!(*seq, 4, "{why}");
    assert!(why.contains("largest amount"), "{why}");
    assert_eq!(
        replayer.finish().balance(&Account { fund: Fund::Casualty, kind: AccountKind::Pool }),
        Fen(i64::MAX)
    );
}
