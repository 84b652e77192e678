//! Unit tests of the administration rules and derivations; `rules` drives them through a batch.

use super::checks::deposit_interest_postings_unchecked;
use super::*;
use crate::entry::{ENTRY_FORMAT_VERSION, Entry, Posting, check_postings};
use crate::event::{Event, EventBody, parse_event_line};
use crate::fund::{Account, Fund, Holding, Source};
use crate::ids::{BankAccountId, EventId, MemberId, UnitId};
use crate::money::Fen;
use crate::time::{Date, Period};

fn entry(seq: u64, date: &str, body: EventBody, postings: Vec<Posting>) -> Entry {
    check_postings(&postings).unwrap();
    Entry {
        format: ENTRY_FORMAT_VERSION,
        seq,
        recorded_at_us: 0,
        value_date: Date::parse(date).unwrap(),
        event: Event {
            id: EventId::parse(&format!("e{seq}")).unwrap(),
            value_date: None,
            memo: None,
            body,
        },
        postings,
    }
}

fn period(p: &str) -> Period {
    Period::parse(p).unwrap()
}

fn premium(seq: u64, date: &str, p: &str, fen: i64) -> Entry {
    let unit = UnitId::parse("U1").unwrap();
    let member = MemberId::parse("M1").unwrap();
    let mut postings = vec![
        Posting {
            account: Account::member(Fund::Medical, &member, None, Holding::Personal),
            amount: Fen(fen),
        },
        Posting { account: Account::source(Fund::Medical, Source::Personal), amount: Fen(-fen) },
    ];
    postings.extend(withheld_postings(Fund::Medical, &unit, period(p), Fen(fen)));
    let body = EventBody::Contribution {
        member,
        fund: Fund::Medical,
        period: period(p),
        amount: Fen(fen),
        unit,
        part: None,
    };
    entry(seq, date, body, postings)
}

fn remit(seq: u64, date: &str, p: &str, fen: i64, outstanding: i64) -> Entry {
    let unit = UnitId::parse("U1").unwrap();
    let postings =
        remittance_postings(Fen(outstanding), Fund::Medical, &unit, period(p), Fen(fen)).unwrap();
    let body = EventBody::Remittance {
        unit,
        fund: Fund::Medical,
        amount: Fen(fen),
        period: period(p),
        reference: "bank slip".into(),
    };
    entry(seq, date, body, postings)
}

#[test]
fn a_remittance_over_what_is_owed_is_refused() {
    let unit = UnitId::parse("U1").unwrap();
    let err = remittance_postings(Fen(9_200), Fund::Medical, &unit, period("2025-03"), Fen(9_201))
        .unwrap_err();
    assert_eq!(err.field, Some("amount"));
    assert!(err.message.contains("owes the medical fund 92.00 for 2025-03"), "{err}");
    assert!(
        remittance_postings(Fen(9_200), Fund::Medical, &unit, period("2025-03"), Fen(9_200))
            .is_ok()
    );
}

#[test]
fn a_year_of_premiums_with_december_unremitted_is_owed_and_aged() {
    let mut r =
        RemittanceBuilder { as_of: Some(Date::parse("2026-02-15").unwrap()), ..Default::default() };
    let mut seq = 1;
    for m in 1..=12 {
        let p = format!("2025-{m:02}");
        r.add(&premium(seq, &format!("{p}-20"), &p, 9_200));
        seq += 1;
        if m < 12 {
            r.add(&remit(seq, &format!("{p}-28"), &p, 9_200, 9_200));
            seq += 1;
        }
    }
    let open: Vec<_> = r.rows.iter().filter(|(_, v)| v.outstanding().0 != 0).collect();
    assert_eq!(open.len(), 1);
    let ((unit, fund, p), row) = open[0];
    assert_eq!((unit.as_str(), *fund, p.to_string().as_str()), ("U1", Fund::Medical, "2025-12"));
    assert_eq!(row.outstanding(), Fen(9_200));
    assert_eq!(age_months(*p, Date::parse("2026-02-15").unwrap()), 2);
    assert_eq!(age_months(period("2025-03"), Date::parse("2025-03-31").unwrap()), 0);
}

#[test]
fn final_accounts_add_up_per_line_and_leave_out_other_years() {
    let mut b = AccountsBuilder::year(2025);
    let approp = |seq, date: &str, fen| {
        let body = EventBody::Appropriation { fund: Fund::Medical, amount: Fen(fen) };
        entry(
            seq,
            date,
            body,
            vec![
                Posting { account: Account::pool(Fund::Medical), amount: Fen(fen) },
                Posting {
                    account: Account::source(Fund::Medical, Source::Central),
                    amount: Fen(-fen),
                },
            ],
        )
    };
    b.add(&approp(1, "2024-06-01", 100_000));
    b.add(&premium(2, "2025-03-20", "2025-03", 9_200));
    b.add(&remit(3, "2025-03-28", "2025-03", 9_200, 9_200));
    b.add(&approp(4, "2025-07-01", 50_000));
    let interest = EventBody::DepositInterest {
        fund: Fund::Medical,
        amount: Fen(321),
        period: period("2025-12"),
    };
    b.add(&entry(
        5,
        "2025-12-31",
        interest,
        deposit_interest_postings_unchecked(Fund::Medical, Fen(321)),
    ));
    b.add(&approp(6, "2026-01-02", 7));
    let medical = b.finish().into_iter().find(|a| a.fund == Fund::Medical).unwrap();
    assert_eq!(medical.opening, Fen(100_000));
    assert_eq!(medical.line(BudgetLine::PersonalPremiums), Fen(9_200));
    assert_eq!(medical.line(BudgetLine::CentralSubsidy), Fen(50_000));
    assert_eq!(medical.line(BudgetLine::Interest), Fen(321));
    assert_eq!(medical.expenditure(), Fen::ZERO);
    assert_eq!(medical.closing, Fen(100_000 + 9_200 + 50_000 + 321));
}

#[test]
fn the_bank_should_hold_the_funds_money_less_what_units_still_owe() {
    let mut b = BankBuilder::new(Fund::Medical, Date::parse("2025-05-31").unwrap());
    b.add(&premium(1, "2025-03-20", "2025-03", 9_200));
    b.add(&premium(2, "2025-04-20", "2025-04", 9_200));
    b.add(&remit(3, "2025-03-28", "2025-03", 9_200, 9_200));
    let statement = EventBody::BankStatement {
        fund: Fund::Medical,
        account: BankAccountId::parse("ICBC-001").unwrap(),
        date: Date::parse("2025-05-31").unwrap(),
        balance: Fen(9_199),
        reference: "May statement".into(),
    };
    b.add(&entry(4, "2025-05-31", statement, Vec::new()));
    assert_eq!(b.ledger(), Fen(9_200));
    assert_eq!(b.bank(), Fen(9_199));
}

#[test]
fn a_closed_year_refuses_money_but_not_enrolment() {
    let state = AdminState { closed_through: Some(2025), ..AdminState::default() };
    let contribution = parse_event_line(
        r#"{"id":"c","type":"contribution","member":"M1","fund":"medical","period":"2025-11","amount":"92.00","unit":"U1"}"#,
    )
    .unwrap();
    let err =
        check_sealed(&state, &contribution.body, Date::parse("2025-12-01").unwrap()).unwrap_err();
    assert!(err.message.contains("2025, which is closed"), "{err}");
    assert!(check_sealed(&state, &contribution.body, Date::parse("2026-01-05").unwrap()).is_ok());
    let enroll = parse_event_line(
        r#"{"id":"e","type":"enroll","member":"M1","category":"officer","unit":"U1","enlisted_on":"2020-01-01","monthly_pay":"9200.00"}"#,
    )
    .unwrap();
    assert!(check_sealed(&state, &enroll.body, Date::parse("2020-01-01").unwrap()).is_ok());
}

#[test]
fn a_year_closes_once_after_it_ends_on_the_head_it_was_drawn_from() {
    let open = AdminState::default();
    let jan = Date::parse("2026-01-05").unwrap();
    assert!(check_close(&open, 2025, 41, 42, jan).is_ok());
    assert!(check_close(&open, 2025, 40, 42, jan).unwrap_err().message.contains("draw them"));
    assert!(check_close(&open, 2026, 41, 42, jan).unwrap_err().message.contains("not ended"));
    let closed = AdminState { closed_through: Some(2025), ..AdminState::default() };
    assert!(check_close(&closed, 2025, 41, 42, jan).unwrap_err().message.contains("already"));
}

#[test]
fn budget_events_parse_and_a_line_must_be_known() {
    let ok = parse_event_line(
        r#"{"id":"b","type":"budget","fund":"casualty","year":"2025","line":"benefits","amount":"1000000.00"}"#,
    )
    .unwrap();
    assert!(matches!(ok.body, EventBody::Budget { year: 2025, line: BudgetLine::Benefits, .. }));
    let bad = parse_event_line(
        r#"{"id":"b","type":"budget","fund":"casualty","year":"2025","line":"parties","amount":"1"}"#,
    )
    .unwrap_err();
    assert_eq!(bad.field, Some("line"));
    let close = parse_event_line(r#"{"id":"x","type":"year_close","year":"2025"}"#).unwrap_err();
    assert!(close.message.contains("junbao close"), "{close}");
}

mod rules {
    //! The administration events through the rules: a batch on a ledger state.
    use crate::entry::CHAIN_GENESIS;
    use crate::event::{Event, EventBody, parse_event_line};
    use crate::rules::NoLookup;
    use crate::state::LedgerState;

    /// 2026-02-01T00:00:00Z.
    const NOW_US: i64 = 1_769_904_000_000_000;

    fn apply(state: &mut LedgerState, seq: &mut u64, event: Event) -> Result<(), String> {
        let mut batch = state.begin(*seq, if *seq == 0 { CHAIN_GENESIS } else { [1; 32] });
        batch.apply(event, NOW_US, &NoLookup).map_err(|e| e.to_string())?;
        let prepared = batch.finish();
        *seq = prepared.head_seq;
        prepared.changes.commit();
        Ok(())
    }

    fn line(state: &mut LedgerState, seq: &mut u64, text: &str) -> Result<(), String> {
        apply(state, seq, parse_event_line(text).expect("a valid event line"))
    }

    fn ledger() -> (LedgerState, u64) {
        let (mut state, mut seq) = (LedgerState::default(), 0);
        for text in [
            r#"{"id":"s","type":"standard","name":"medical_personal_rate","value":"1","effective_from":"2012-07-01"}"#,
            r#"{"id":"e","type":"enroll","member":"M1","category":"officer","unit":"U1","enlisted_on":"2020-01-01","monthly_pay":"9200.00"}"#,
            r#"{"id":"c","type":"contribution","member":"M1","fund":"medical","period":"2025-11","amount":"92.00","unit":"U1","value_date":"2025-11-15"}"#,
        ] {
            line(&mut state, &mut seq, text).unwrap();
        }
        (state, seq)
    }

    fn close(year: u16, through_seq: u64) -> Event {
        Event {
            id: crate::ids::EventId::parse(&format!("year_close:{year}")).unwrap(),
            value_date: None,
            memo: None,
            body: EventBody::YearClose {
                year,
                through_seq,
                funds: Vec::new(),
                open_items: Vec::new(),
            },
        }
    }

    #[test]
    fn a_withheld_premium_is_owed_by_its_unit_until_remitted() {
        let (mut state, mut seq) = ledger();
        let receivable = crate::fund::Account::unit_receivable(
            crate::fund::Fund::Medical,
            &crate::ids::UnitId::parse("U1").unwrap(),
            crate::time::Period::parse("2025-11").unwrap(),
        );
        assert_eq!(state.balance(&receivable), crate::money::Fen(9_200));
        let remit = r#"{"id":"r","type":"remittance","unit":"U1","fund":"medical","amount":"92.00","period":"2025-11","reference":"slip","value_date":"2025-12-10"}"#;
        line(&mut state, &mut seq, remit).unwrap();
        assert_eq!(state.balance(&receivable), crate::money::Fen::ZERO);
        assert!(state.trial_balance().values().all(|t| *t == 0));
        let again = remit.replace("\"r\"", "\"r2\"");
        assert!(
            line(&mut state, &mut seq, &again).unwrap_err().contains("owes the medical fund 0.00")
        );
    }

    #[test]
    fn a_close_seals_its_year_for_money_and_only_on_the_head_it_covers() {
        let (mut state, mut seq) = ledger();
        assert!(
            {
                let c = close(2025, seq - 1);
                apply(&mut state, &mut seq, c)
            }
            .unwrap_err()
            .contains("draw them again")
        );
        {
            let c = close(2025, seq);
            apply(&mut state, &mut seq, c)
        }
        .unwrap();
        assert_eq!(state.admin.closed_through, Some(2025));
        let late = r#"{"id":"c2","type":"contribution","member":"M1","fund":"medical","period":"2025-12","amount":"92.00","unit":"U1","value_date":"2025-12-15"}"#;
        assert!(line(&mut state, &mut seq, late).unwrap_err().contains("2025, which is closed"));
        line(&mut state, &mut seq, &late.replace("2025-12-15", "2026-01-15")).unwrap();
        let budget = r#"{"id":"b","type":"budget","fund":"medical","year":"2025","line":"interest","amount":"1.00"}"#;
        assert!(line(&mut state, &mut seq, budget).unwrap_err().contains("closed"));
        assert!(
            {
                let c = close(2025, seq);
                apply(&mut state, &mut seq, c)
            }
            .unwrap_err()
            .contains("already closed")
        );
    }
}
