//! Property tests of the domain: any sequence of events keeps every fund balanced.

use junbao_ledger::entry::check_postings;
use junbao_ledger::rules::NoLookup;
use junbao_ledger::standard::SEED_STANDARDS;
use junbao_ledger::{Entry, Fund, LedgerState, parse_event_line};
use proptest::prelude::*;

/// 2026-01-01T00:00:00Z in microseconds: every generated date is before it.
const NOW_US: i64 = 1_767_225_600_000_000;

#[derive(Debug, Clone)]
enum Op {
    Contribution { member: usize, month: u8 },
    Match { member: usize, month: u8 },
    Appropriation { fund: usize, fen: u32 },
    Disability { member: usize, grade: u8 },
    Reversal { target: usize },
    Discharge { member: usize, route: usize },
    Transfer { member: usize },
    Interest { month: u8 },
    Remittance { month: u8, fen: u32 },
    DepositInterest { fund: usize, month: u8, fen: u32 },
    UnitChange { member: usize, month: u8 },
    SpousePremium { month: u8 },
    SpouseSubsidy { month: u8 },
    Suspend { month: u8 },
    Resume { month: u8 },
    Recovery { target: usize, fen: u32 },
    TransferIn { member: usize, fen: u32 },
    SpouseTransfer { part: usize },
}

const ROUTES: [&str; 5] = ["employee", "resident", "civil_service", "self_employed", "retirement"];

const MEMBERS: [(&str, &str, &str); 4] = [
    ("M0", "officer", "9200.00"),
    ("M1", "sergeant", "6100.50"),
    ("M2", "conscript", "1100.00"),
    ("M3", "civilian_cadre", "7333.33"),
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize, 1..=12u8).prop_map(|(member, month)| Op::Contribution { member, month }),
        (0..4usize, 1..=12u8).prop_map(|(member, month)| Op::Match { member, month }),
        (0..4usize, 1..5_000_000u32).prop_map(|(fund, fen)| Op::Appropriation { fund, fen }),
        (0..4usize, 1..=10u8).prop_map(|(member, grade)| Op::Disability { member, grade }),
        (0..64usize).prop_map(|target| Op::Reversal { target }),
        (0..4usize, 0..5usize).prop_map(|(member, route)| Op::Discharge { member, route }),
        (0..4usize).prop_map(|member| Op::Transfer { member }),
        (1..=12u8).prop_map(|month| Op::Interest { month }),
        (1..=12u8, 1..30_000u32).prop_map(|(month, fen)| Op::Remittance { month, fen }),
        (0..4usize, 1..=12u8, 1..100_000u32).prop_map(|(fund, month, fen)| Op::DepositInterest {
            fund,
            month,
            fen
        }),
        (0..4usize, 1..=12u8).prop_map(|(member, month)| Op::UnitChange { member, month }),
        (1..=12u8).prop_map(|month| Op::SpousePremium { month }),
        (1..=12u8).prop_map(|month| Op::SpouseSubsidy { month }),
        (1..=12u8).prop_map(|month| Op::Suspend { month }),
        (1..=12u8).prop_map(|month| Op::Resume { month }),
        (0..64usize, 1..20_000_000u32).prop_map(|(target, fen)| Op::Recovery { target, fen }),
        (0..4usize, 1..500_000u32).prop_map(|(member, fen)| Op::TransferIn { member, fen }),
        (0..3usize).prop_map(|part| Op::SpouseTransfer { part }),
    ]
}

fn line(op: &Op, n: usize, state: &LedgerState) -> String {
    let pay = |m: usize| junbao_ledger::Fen::parse_yuan(MEMBERS[m].2).unwrap();
    let rate = |name: &str| {
        state.standards.in_force(name, junbao_ledger::Date::parse("2025-01-01").unwrap()).unwrap()
    };
    match op {
        Op::Contribution { member, month } => format!(
            r#"{{"id":"op{n}","type":"contribution","member":"{}","fund":"medical","period":"2025-{month:02}","amount":"{}","unit":"U1"}}"#,
            MEMBERS[*member].0,
            pay(*member).mul_ppm(rate("medical_personal_rate"))
        ),
        Op::Match { member, month } => format!(
            r#"{{"id":"op{n}","type":"subsidy","member":"{}","fund":"medical","period":"2025-{month:02}","amount":"{}","basis":"match"}}"#,
            MEMBERS[*member].0,
            pay(*member).mul_ppm(rate("medical_personal_rate"))
        ),
        Op::Appropriation { fund, fen } => format!(
            r#"{{"id":"op{n}","type":"appropriation","fund":"{}","amount":"{}"}}"#,
            Fund::ALL[*fund].name(),
            junbao_ledger::Fen(i64::from(*fen))
        ),
        Op::Disability { member, grade } => {
            let multiple = rate(&format!("disability_multiple_grade_{grade}"));
            let amount = junbao_ledger::money::div_round_half_away(
                i128::from(pay(*member).0) * i128::from(multiple),
                10_000,
            );
            format!(
                r#"{{"id":"op{n}","type":"payout","member":"{}","fund":"casualty","benefit":"disability","grade":{grade},"cause":"on_duty","amount":"{}","on":"2025-05-20","value_date":"2025-06-01"}}"#,
                MEMBERS[*member].0,
                junbao_ledger::Fen(amount)
            )
        }
        Op::Reversal { target } => {
            format!(r#"{{"id":"op{n}","type":"reversal","of":"op{target}","reason":"test"}}"#)
        }
        Op::Discharge { member, route } => format!(
            r#"{{"id":"op{n}","type":"discharge","member":"{}","on":"2025-12-20","route":"{}"}}"#,
            MEMBERS[*member].0, ROUTES[*route]
        ),
        Op::Transfer { member } => format!(
            r#"{{"id":"op{n}","type":"transfer_out","member":"{}","fund":"medical","agency":"A1","value_date":"2025-12-28"}}"#,
            MEMBERS[*member].0
        ),
        // Mostly year ends (Art. 31); any other month is refused.
        Op::Interest { month } => {
            let (year, month) =
                if *month <= 8 { (2024 + i32::from(*month % 2), 12) } else { (2025, *month) };
            format!(
                r#"{{"id":"op{n}","type":"interest","fund":"medical","period":"{year}-{month:02}","rate":"1.5"}}"#
            )
        }
        Op::UnitChange { member, month } => format!(
            r#"{{"id":"op{n}","type":"unit_change","member":"{}","unit":"U{month}","on":"2025-{month:02}-01"}}"#,
            MEMBERS[*member].0
        ),
        Op::Remittance { month, fen } => format!(
            r#"{{"id":"op{n}","type":"remittance","unit":"U1","fund":"medical","amount":"{}","period":"2025-{month:02}","reference":"slip"}}"#,
            junbao_ledger::Fen(i64::from(*fen))
        ),
        Op::DepositInterest { fund, month, fen } => format!(
            r#"{{"id":"op{n}","type":"deposit_interest","fund":"{}","amount":"{}","period":"2025-{month:02}"}}"#,
            Fund::ALL[*fund].name(),
            junbao_ledger::Fen(i64::from(*fen))
        ),
        Op::SpousePremium { month } => format!(
            r#"{{"id":"op{n}","type":"contribution","member":"W0","fund":"spouse","part":"medical","period":"2025-{month:02}","amount":"40.00","unit":"U1","value_date":"2025-{month:02}-15"}}"#
        ),
        Op::SpouseSubsidy { month } => format!(
            r#"{{"id":"op{n}","type":"subsidy","member":"W0","fund":"spouse","part":"medical","period":"2025-{month:02}","amount":"40.00","basis":"match"}}"#
        ),
        Op::Suspend { month } => format!(
            r#"{{"id":"op{n}","type":"suspend","member":"W0","fund":"spouse","from":"2025-{month:02}","reason":"refused placement"}}"#
        ),
        Op::Resume { month } => format!(
            r#"{{"id":"op{n}","type":"resume","member":"W0","fund":"spouse","from":"2025-{month:02}","reason":"accepted training"}}"#
        ),
        Op::Recovery { target, fen } => format!(
            r#"{{"id":"op{n}","type":"recovery","member":"M1","fund":"casualty","amount":"{}","of":"op{target}","reason":"fraud"}}"#,
            junbao_ledger::Fen(i64::from(*fen))
        ),
        Op::TransferIn { member, fen } => format!(
            r#"{{"id":"op{n}","type":"transfer_in","member":"{}","fund":"medical","agency":"SI-1","amount":"{}","value_date":"2025-02-01"}}"#,
            MEMBERS[*member].0,
            junbao_ledger::Fen(i64::from(*fen))
        ),
        Op::SpouseTransfer { part } => {
            let part = ["", r#","part":"pension""#, r#","part":"medical""#][*part];
            format!(
                r#"{{"id":"op{n}","type":"transfer_out","member":"W0","fund":"spouse","agency":"A2"{part}}}"#
            )
        }
    }
}

/// Applies one JSON line as its own durable batch; returns the entry when accepted.
fn apply(
    state: &mut LedgerState,
    head_seq: &mut u64,
    head: &mut [u8; 32],
    text: &str,
    lookup: &dyn junbao_ledger::EntryLookup,
) -> Option<Entry> {
    let event = parse_event_line(text).expect("generated lines parse");
    let mut batch = state.begin(*head_seq, *head);
    batch.apply(event, NOW_US, lookup).ok()?;
    let entry = batch.entries()[0].clone();
    let prepared = batch.finish();
    *head_seq = prepared.head_seq;
    *head = prepared.head;
    prepared.changes.commit();
    Some(entry)
}

struct Entries(Vec<Entry>);

impl junbao_ledger::EntryLookup for Entries {
    fn entry_by_event_id(
        &self,
        id: &junbao_ledger::ids::EventId,
    ) -> Result<Option<Entry>, junbao_ledger::LookupError> {
        Ok(self.0.iter().find(|e| &e.event.id == id).cloned())
    }
}

/// The seed standards and the members enrolled, each as its own durable batch: the state, the
/// head (sequence and hash) and the entries.
fn seeded() -> (LedgerState, u64, [u8; 32], Entries) {
    let mut state = LedgerState::default();
    let (mut seq, mut head) = (0u64, [0u8; 32]);
    let mut entries = Entries(Vec::new());
    for (name, value, from) in SEED_STANDARDS {
        let l = format!(
            r#"{{"id":"std-{name}","type":"standard","name":"{name}","value":"{value}","effective_from":"{from}"}}"#
        );
        entries.0.push(apply(&mut state, &mut seq, &mut head, &l, &NoLookup).unwrap());
    }
    for (i, (m, category, pay)) in MEMBERS.iter().enumerate() {
        let l = format!(
            r#"{{"id":"enroll{i}","type":"enroll","member":"{m}","category":"{category}","unit":"U1","enlisted_on":"2020-03-01","monthly_pay":"{pay}"}}"#
        );
        entries.0.push(apply(&mut state, &mut seq, &mut head, &l, &NoLookup).unwrap());
    }
    let l = r#"{"id":"enroll-w0","type":"enroll","member":"W0","category":"spouse","unit":"U1","enlisted_on":"2020-03-01","monthly_pay":"4000.00","sponsor":"M0"}"#;
    entries.0.push(apply(&mut state, &mut seq, &mut head, l, &NoLookup).unwrap());
    (state, seq, head, entries)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_fund_stays_balanced_after_any_sequence_of_events(ops in prop::collection::vec(op(), 1..64)) {
        let (mut state, mut seq, mut head, mut entries) = seeded();
        for (n, op) in ops.iter().enumerate() {
            let text = line(op, n, &state);
            if let Some(e) = apply(&mut state, &mut seq, &mut head, &text, &entries) {
                entries.0.push(e);
            }
        }
        for e in &entries.0 {
            prop_assert!(check_postings(&e.postings).is_ok(), "entry {} unbalanced", e.seq);
        }
        for (fund, total) in state.trial_balance() {
            prop_assert_eq!(total, 0, "fund {} out of balance", fund);
        }
        // A unit never remits more than it withheld.
        for (account, fen) in state.balances() {
            if matches!(account.kind, junbao_ledger::fund::AccountKind::UnitReceivable { .. }) {
                prop_assert!(fen.0 >= 0, "{} is {}", account, fen);
            }
        }
        // The materialised balances equal a replay of the journal from scratch.
        let replayed = LedgerState::replay(&entries.0);
        let nonzero = |s: &LedgerState| {
            let mut v: Vec<_> = s.balances().filter(|(_, b)| b.0 != 0).map(|(a, b)| (a.to_string(), b.0)).collect();
            v.sort();
            v
        };
        prop_assert_eq!(nonzero(&replayed), nonzero(&state));
        prop_assert_eq!(&replayed.members, &state.members);
        prop_assert_eq!(&replayed.books, &state.books);
        prop_assert_eq!(&replayed.admin, &state.admin);
        prop_assert_eq!(&replayed.interest_credited, &state.interest_credited);
        // No rule leaves a member's holding negative.
        prop_assert!(state.negative_member_accounts().is_empty(), "{:?}", state.negative_member_accounts());
    }
}

/// The members of `seeded`, as lines to post to an engine's ledger.
fn enrolment_lines() -> Vec<String> {
    let mut lines: Vec<String> = MEMBERS
        .iter()
        .enumerate()
        .map(|(i, (m, category, pay))| {
            format!(
                r#"{{"id":"enroll{i}","type":"enroll","member":"{m}","category":"{category}","unit":"U1","enlisted_on":"2020-03-01","monthly_pay":"{pay}"}}"#
            )
        })
        .collect();
    lines.push(r#"{"id":"enroll-w0","type":"enroll","member":"W0","category":"spouse","unit":"U1","enlisted_on":"2020-03-01","monthly_pay":"4000.00","sponsor":"M0"}"#.into());
    lines
}

/// An engine's ledger in `dir`, recording at `NOW_US`, with the members of `seeded` enrolled.
fn engine_ledger(dir: &std::path::Path) -> junbao_engine::Ledger {
    let ledger = junbao_engine::Ledger::init(dir, std::sync::Arc::new(|| NOW_US)).unwrap();
    let lines = enrolment_lines();
    ledger.post_lines(&lines.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    ledger
}

fn request(texts: &[String]) -> junbao_engine::PostRequest {
    junbao_engine::PostRequest {
        events: texts
            .iter()
            .enumerate()
            .map(|(i, t)| (i + 1, junbao_engine::parse_fingerprinted(t)))
            .collect(),
        scope: junbao_engine::PostScope::Any,
    }
}

/// Everything an engine's ledger holds that a post changes: the canonical bytes of every entry,
/// the head, and the state (balances, members, periods, reversal and interest marks, admin).
fn engine_books(ledger: &junbao_engine::Ledger) -> (Vec<Vec<u8>>, String) {
    let bytes = ledger.entries_from(1).map(|r| r.unwrap().0.bytes).collect();
    let state = ledger.with_state(|s, head| format!("{head:?} {}", state_text(s)));
    (bytes, state)
}

/// A state's balances, members, periods, reversal and interest marks and admin, as text.
fn state_text(s: &LedgerState) -> String {
    let mut balances: Vec<_> = s.balances().map(|(a, b)| (a.to_string(), b.0)).collect();
    balances.sort();
    format!(
        "{balances:?} {:?} {:?} {:?} {:?} {:?}",
        s.members.iter().collect::<std::collections::BTreeMap<_, _>>(),
        s.periods(),
        s.reversed.iter().collect::<std::collections::BTreeSet<_>>(),
        s.interest_credited.iter().collect::<std::collections::BTreeSet<_>>(),
        s.admin,
    )
}

proptest! {
    // Each case builds two ledgers on disk.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Group commit, through the engine's own `post_group`: requests posted in groups (a
    /// refused request rolled back to its savepoint) give exactly the answers, journal and state
    /// of posting each request on its own.
    #[test]
    fn a_group_with_rollbacks_equals_its_requests_posted_one_by_one(
        ops in prop::collection::vec(op(), 1..64),
        request_sizes in prop::collection::vec(1..4usize, 64),
        group_sizes in prop::collection::vec(1..6usize, 64),
    ) {
        let (state0, ..) = seeded();
        let texts: Vec<String> = ops.iter().enumerate().map(|(n, op)| line(op, n, &state0)).collect();
        let mut requests: Vec<&[String]> = Vec::new();
        let mut rest = &texts[..];
        for size in request_sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (r, tail) = rest.split_at((*size).min(rest.len()));
            requests.push(r);
            rest = tail;
        }
        let dir = tempfile::tempdir().unwrap();
        // One by one: each request its own post.
        let a = engine_ledger(&dir.path().join("a"));
        let answers_a: Vec<bool> = requests
            .iter()
            .map(|r| a.post_group(vec![request(r)]).pop().unwrap().is_ok())
            .collect();
        // Grouped: several requests per post_group.
        let b = engine_ledger(&dir.path().join("b"));
        let mut answers_b = Vec::new();
        let mut pending = &requests[..];
        for size in group_sizes.iter().cycle() {
            if pending.is_empty() {
                break;
            }
            let (group, tail) = pending.split_at((*size).min(pending.len()));
            pending = tail;
            let answers = b.post_group(group.iter().map(|r| request(r)).collect());
            answers_b.extend(answers.iter().map(Result::is_ok));
        }
        prop_assert_eq!(answers_a, answers_b);
        let (books_a, books_b) = (engine_books(&a), engine_books(&b));
        prop_assert_eq!(books_a.0, books_b.0);
        prop_assert_eq!(books_a.1, books_b.1);
    }
}

/// Applies `texts` to `batch`, each on its own; the sequence number of each, or its refusal.
fn apply_all(
    batch: &mut junbao_ledger::Batch<'_>,
    texts: &[String],
    lookup: &dyn junbao_ledger::EntryLookup,
) -> Vec<Result<u64, String>> {
    texts
        .iter()
        .map(|t| {
            let event = parse_event_line(t).expect("generated lines parse");
            batch.apply(event, NOW_US, lookup).map_err(|e| e.to_string())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Events applied after a savepoint and rolled back leave no trace: the batch goes on (the
    /// same answers, entries and head) and commits exactly the state of a batch that never saw
    /// them. A savepoint taken inside them, released or rolled back first, changes nothing.
    #[test]
    fn a_rolled_back_savepoint_leaves_the_batch_as_it_was(
        before in prop::collection::vec(op(), 0..20),
        undone in prop::collection::vec(op(), 1..20),
        after in prop::collection::vec(op(), 0..20),
        inner in prop::option::of((0..20usize, any::<bool>())),
    ) {
        let (state, seq, head, entries) = seeded();
        // Ids op0.. are before, op20.. undone, op40.. after: reversals and recoveries (op0 to
        // op63) name events of every part, the undone ones included.
        let texts = |ops: &[Op], first: usize| -> Vec<String> {
            ops.iter().enumerate().map(|(i, op)| line(op, first + i, &state)).collect()
        };
        let (before, undone, after) = (texts(&before, 0), texts(&undone, 20), texts(&after, 40));

        let (mut kept_state, mut rolled_state) = (state.clone(), state.clone());
        let mut kept = kept_state.begin(seq, head);
        let answers_before = apply_all(&mut kept, &before, &entries);
        let answers_after = apply_all(&mut kept, &after, &entries);
        let kept = kept.finish();

        let mut rolled = rolled_state.begin(seq, head);
        prop_assert_eq!(apply_all(&mut rolled, &before, &entries), answers_before);
        let savepoint = rolled.savepoint();
        let split = inner.map_or(undone.len(), |(at, _)| at.min(undone.len()));
        apply_all(&mut rolled, &undone[..split], &entries);
        if let Some((_, release)) = inner {
            let sp = rolled.savepoint();
            apply_all(&mut rolled, &undone[split..], &entries);
            if release { rolled.release(sp) } else { rolled.rollback(sp) }
        }
        rolled.rollback(savepoint);
        prop_assert_eq!(apply_all(&mut rolled, &after, &entries), answers_after);
        let rolled = rolled.finish();

        prop_assert_eq!(rolled.head_seq, kept.head_seq);
        prop_assert_eq!(rolled.head, kept.head);
        prop_assert_eq!(&rolled.entries, &kept.entries);
        // Each in a block: what is left of a batch keeps its state borrowed to the block's end.
        {
            let rolled = rolled;
            rolled.changes.commit();
        }
        {
            let kept = kept;
            kept.changes.commit();
        }
        prop_assert_eq!(rolled_state, kept_state);
    }

    /// A batch changes premium months, year's sums and balances in the state itself; dropped
    /// before its changes are committed — a dry run, a failed write, a refusal — it leaves the
    /// state exactly as it was, whether it was sealed first or not, and whatever savepoints
    /// were taken, released or rolled back in it.
    #[test]
    fn a_dropped_batch_leaves_the_state_as_it_was(
        committed in prop::collection::vec(op(), 0..20),
        dropped in prop::collection::vec(op(), 1..30),
        inner in prop::option::of((0..30usize, any::<bool>())),
        sealed in any::<bool>(),
    ) {
        let (mut state, mut seq, mut head, mut entries) = seeded();
        for (n, op) in committed.iter().enumerate() {
            let text = line(op, n, &state);
            if let Some(e) = apply(&mut state, &mut seq, &mut head, &text, &entries) {
                entries.0.push(e);
            }
        }
        let texts: Vec<String> =
            dropped.iter().enumerate().map(|(i, op)| line(op, 20 + i, &state)).collect();
        let before = state.clone();
        let mut batch = state.begin(seq, head);
        let split = inner.map_or(texts.len(), |(at, _)| at.min(texts.len()));
        apply_all(&mut batch, &texts[..split], &entries);
        if let Some((_, release)) = inner {
            let sp = batch.savepoint();
            apply_all(&mut batch, &texts[split..], &entries);
            if release { batch.release(sp) } else { batch.rollback(sp) }
        }
        if sealed {
            drop(batch.finish());
        } else {
            drop(batch);
        }
        prop_assert_eq!(state, before);
    }
}

/// Ops for the years out of memory: premiums most of all (with their match, see the test),
/// and what reads old years: reversals, interest, transfers, discharges.
fn residency_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..4usize, 1..=12u8).prop_map(|(member, month)| Op::Contribution { member, month }),
        2 => (0..4usize, 1..=12u8).prop_map(|(member, month)| Op::Match { member, month }),
        3 => (0..64usize).prop_map(|target| Op::Reversal { target }),
        1 => (1..=12u8).prop_map(|month| Op::Interest { month }),
        1 => (0..4usize, 0..5usize).prop_map(|(member, route)| Op::Discharge { member, route }),
        1 => (0..4usize).prop_map(|member| Op::Transfer { member }),
        1 => (0..4usize, 1..5_000_000u32).prop_map(|(fund, fen)| Op::Appropriation { fund, fen }),
        1 => (0..4usize, 1..=10u8).prop_map(|(member, grade)| Op::Disability { member, grade }),
        1 => (1..=12u8).prop_map(|month| Op::SpousePremium { month }),
        1 => (1..=12u8).prop_map(|month| Op::SpouseSubsidy { month }),
        1 => (0..4usize, 1..500_000u32).prop_map(|(member, fen)| Op::TransferIn { member, fen }),
        1 => (0..4usize, 1..=12u8).prop_map(|(member, month)| Op::UnitChange { member, month }),
    ]
}

/// `line`'s event moved from 2025 to `year` (its dates and periods; the interest of the year
/// ends it names before 2025 stays).
fn line_in(op: &Op, n: usize, state: &LedgerState, year: u16) -> String {
    line(op, n, state).replace("2025-", &format!("{year}-"))
}

/// The state as a replay of the journal alone gives it, in `engine_books`' terms.
fn replayed_books(ledger: &junbao_engine::Ledger) -> String {
    let entries: Vec<Entry> = ledger.entries_from(1).map(|r| r.unwrap().1).collect();
    state_text(&LedgerState::replay(&entries))
}

proptest! {
    // Each case builds two ledgers on disk and reopens one.
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Years out of memory change nothing a post decides: a ledger that keeps one year of each
    /// book in memory, lets go of every stored year at random points, cuts a checkpoint every
    /// few entries and is closed (or left as a crash leaves it) and reopened at others (its
    /// books loaded without their old years, the tail replayed onto them), gives every
    /// request the answer, and
    /// ends with the journal and state (its years read back), of a ledger that keeps every
    /// year; and the state is what a replay of its journal alone gives. The events spread over
    /// five years: premiums and matches of old months, reversals of old entries, interest of
    /// old year ends, transfers reading a whole book.
    #[test]
    fn years_out_of_memory_change_no_answer_and_no_state(
        ops in prop::collection::vec((residency_op(), 2021..=2025u16), 1..80),
        request_sizes in prop::collection::vec(1..4usize, 80),
        evict_after in prop::collection::vec(0..40usize, 0..12),
        reopen_after in prop::collection::vec(0..40usize, 0..3),
    ) {
        let (state0, ..) = seeded();
        // A premium comes with its match in the same request, most of the time (a month
        // awaiting its match keeps its year in memory); requests of one to three ops.
        let texts: Vec<Vec<String>> = ops
            .iter()
            .enumerate()
            .map(|(n, (op, year))| {
                let mut v = vec![line_in(op, n, &state0, *year)];
                if let Op::Contribution { member, month } = op
                    && n % 10 != 0
                {
                    let matched = line_in(&Op::Match { member: *member, month: *month }, n, &state0, *year);
                    v.push(matched.replace(&format!(r#""id":"op{n}""#), &format!(r#""id":"op{n}m""#)));
                }
                v
            })
            .collect();
        let mut requests: Vec<Vec<String>> = Vec::new();
        let mut rest = &texts[..];
        for size in request_sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (r, tail) = rest.split_at((*size).min(rest.len()));
            requests.push(r.concat());
            rest = tail;
        }
        let dir = tempfile::tempdir().unwrap();
        let whole = engine_ledger(&dir.path().join("whole"));
        whole.set_resident_years(None).unwrap();
        let path = dir.path().join("evicting");
        let evicting = |l: &junbao_engine::Ledger| {
            l.set_resident_years(Some(1)).unwrap();
            l.set_checkpoint_interval(3);
        };
        let mut b = engine_ledger(&path);
        evicting(&b);
        for (i, r) in requests.iter().enumerate() {
            let a = whole.post_group(vec![request(r)]).pop().unwrap();
            let got = b.post_group(vec![request(r)]).pop().unwrap();
            prop_assert_eq!(
                a.as_ref().map(|s| s.head.clone()).map_err(|e| e.to_string()),
                got.as_ref().map(|s| s.head.clone()).map_err(|e| e.to_string()),
                "request {}: {:?}", i, r
            );
            if evict_after.contains(&i) {
                b.evict_stored_now().unwrap();
            }
            if reopen_after.contains(&i) {
                // Closed as a crash leaves it every other time: the entries since the last
                // checkpoint replayed onto books loaded without their old years.
                if i % 2 == 0 {
                    b.close_without_checkpoint();
                } else {
                    drop(b);
                }
                b = junbao_engine::Ledger::open(&path, std::sync::Arc::new(|| NOW_US)).unwrap();
                evicting(&b);
            }
        }
        b.set_resident_years(None).unwrap();
        prop_assert_eq!(b.books_with_cold_years(), 0);
        let (books_a, books_b) = (engine_books(&whole), engine_books(&b));
        prop_assert_eq!(books_a.0, books_b.0);
        prop_assert_eq!(&books_a.1, &books_b.1);
        let replayed = replayed_books(&b);
        prop_assert!(books_b.1.ends_with(&replayed), "{} against {}", books_b.1, replayed);
    }
}
