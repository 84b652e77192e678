//! Years out of memory: a ledger keeps each member's latest years in memory and lets go of
//! older ones once their pages are stored, reading them back when an event needs them
//! (docs/ARCHITECTURE.md, "Years out of memory"). Nothing a post decides, and nothing a report
//! shows, may change with it; a stored page that is not what was let go of is corruption.

use std::sync::Arc;

use junbao_engine::{Ledger, PostRequest, PostScope};

/// 2026-01-01T00:00:00Z in microseconds.
const NOW_US: i64 = 1_767_225_600_000_000;

fn clock() -> junbao_engine::Clock {
    Arc::new(|| NOW_US)
}

fn post(ledger: &Ledger, lines: &[String]) -> Result<junbao_engine::PostSummary, String> {
    let request = PostRequest {
        events: lines
            .iter()
            .enumerate()
            .map(|(i, t)| (i + 1, junbao_engine::parse_fingerprinted(t)))
            .collect(),
        scope: PostScope::Any,
    };
    ledger.post_group(vec![request]).pop().unwrap().map_err(|e| e.to_string())
}

/// The member's medical premium (and its match, unless `matched` is false) of `period`.
fn premium(ledger: &Ledger, id: &str, member: &str, period: &str, matched: bool) -> Vec<String> {
    let amount = ledger.with_state(|s, _| {
        let on = junbao_ledger::Date::parse("2021-01-01").unwrap();
        let rate = s.standards.in_force("medical_personal_rate", on).unwrap();
        junbao_ledger::Fen(920_000).mul_ppm(rate)
    });
    let mut v = vec![format!(
        r#"{{"id":"{id}","type":"contribution","member":"{member}","fund":"medical","period":"{period}","amount":"{amount}","unit":"U1"}}"#
    )];
    if matched {
        v.push(format!(
            r#"{{"id":"{id}-m","type":"subsidy","member":"{member}","fund":"medical","period":"{period}","amount":"{amount}","basis":"match"}}"#
        ));
    }
    v
}

/// A ledger with two officers paying (and matched) every month of 2021 – 2025.
fn five_years(path: &std::path::Path) -> Ledger {
    let ledger = Ledger::init(path, clock()).unwrap();
    let mut lines = Vec::new();
    for m in ["M0", "M1"] {
        lines.push(format!(
            r#"{{"id":"enroll-{m}","type":"enroll","member":"{m}","category":"officer","unit":"U1","enlisted_on":"2020-03-01","monthly_pay":"9200.00"}}"#
        ));
    }
    post(&ledger, &lines).unwrap();
    for year in 2021..=2025 {
        for month in 1..=12 {
            for m in ["M0", "M1"] {
                let period = format!("{year}-{month:02}");
                post(&ledger, &premium(&ledger, &format!("c-{m}-{period}"), m, &period, true))
                    .unwrap();
            }
        }
    }
    ledger
}

/// Balances, members and months of the state, as text.
fn books(ledger: &Ledger) -> String {
    ledger.with_state(|s, head| {
        let mut balances: Vec<_> = s.balances().map(|(a, b)| (a.to_string(), b.0)).collect();
        balances.sort();
        format!("{head:?} {balances:?} {:?}", s.periods())
    })
}

#[test]
fn old_years_leave_memory_and_come_back_for_the_events_that_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let whole = five_years(&dir.path().join("whole"));
    whole.set_resident_years(None).unwrap();
    let ledger = five_years(&dir.path().join("evicting"));
    // Each book's last premium month is of 2025: its months of 2025 stay in memory, and its
    // yearly sums of 2026 (the premiums' value date, when they were recorded).
    ledger.set_resident_years(Some(1)).unwrap();
    let before = books(&ledger);
    let balances_before = ledger.with_state(|s, _| s.balances().count());
    assert_eq!(ledger.evict_stored_now().unwrap(), 2);
    assert_eq!(ledger.books_with_cold_years(), 2);
    // Only the months of 2025 are in memory; every balance is as it was.
    let months_in_memory = ledger.with_state(|s, _| s.periods().len());
    assert_eq!(months_in_memory, 2 * 12);
    assert_eq!(ledger.with_state(|s, _| s.balances().count()), balances_before);
    assert_eq!(
        ledger.with_state(|s, _| s.balances().collect::<std::collections::BTreeMap<_, _>>()),
        whole.with_state(|s, _| s.balances().collect::<std::collections::BTreeMap<_, _>>())
    );
    // A month of 2025 reads nothing out of memory.
    let late = premium(&ledger, "late", "M0", "2025-12", false);
    assert_eq!(post(&ledger, &late).map(|_| ()), post(&whole, &late).map(|_| ()));
    assert_eq!(ledger.books_with_cold_years(), 2);
    // A second premium of a month of 2021 (out of memory): refused as on the whole ledger,
    // because the month is read back, not read as empty.
    let again = premium(&ledger, "again", "M1", "2021-03", false);
    let refused = post(&whole, &again).unwrap_err();
    assert_eq!(post(&ledger, &again).unwrap_err(), refused);
    assert!(refused.contains("2021-03"), "{refused}");
    // Reading it back took M1's whole book back into memory, and nothing else.
    assert_eq!(ledger.books_with_cold_years(), 1);
    // A reversal of an old premium, and an interest credit of an old year's end: the same
    // entries as on the whole ledger.
    let events = [
        r#"{"id":"rev","type":"reversal","of":"c-M0-2022-05","reason":"posted twice"}"#.to_string(),
        r#"{"id":"int","type":"interest","fund":"medical","period":"2022-12","rate":"1.5"}"#
            .to_string(),
    ];
    for e in &events {
        let a = post(&whole, std::slice::from_ref(e)).map(|s| s.head);
        assert_eq!(post(&ledger, std::slice::from_ref(e)).map(|s| s.head), a, "{e}");
    }
    assert_eq!(ledger.books_with_cold_years(), 0);
    ledger.set_resident_years(None).unwrap();
    assert_eq!(books(&ledger), books(&whole));
    assert_ne!(books(&ledger), before);
}

#[test]
fn a_reopened_ledger_lets_go_of_stored_years_and_reports_every_month() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = five_years(&path);
    let all_months = ledger.with_state(|s, _| s.periods().len());
    assert_eq!(all_months, 2 * 60);
    drop(ledger);
    // The open keeps the default two years of each book: the months of 2024 and 2025.
    let ledger = Ledger::open(&path, clock()).unwrap();
    assert_eq!(ledger.books_with_cold_years(), 2);
    assert_eq!(ledger.with_state(|s, _| s.periods().len()), 2 * 24);
    // A report of every month of the unit's members reads the rest from the pages.
    let (in_memory, cold) = ledger
        .with_state_and_cold_months(
            |_, _| true,
            |s, _| s.periods().len(),
            |n, cold| (n, cold.len()),
        )
        .unwrap();
    assert_eq!(in_memory + cold, all_months);
    let only_m0 = ledger
        .with_state_and_cold_months(|_, m| m.as_str() == "M0", |_, _| (), |(), cold| cold.len())
        .unwrap();
    assert_eq!(only_m0, 36);
    // A discharge checks the months after its own (Art. 20, 25, 32): none of the old years is
    // read back for it.
    let discharge =
        r#"{"id":"d0","type":"discharge","member":"M0","on":"2025-12-20","route":"employee"}"#;
    post(&ledger, &[discharge.to_string()]).unwrap();
    assert_eq!(ledger.books_with_cold_years(), 2);
    // The pages are read once the writer lock is released: posts go on meanwhile, and what is
    // read is as of the lock (a snapshot taken under it).
    let enrol = r#"{"id":"e8","type":"enroll","member":"M8","category":"officer","unit":"U1","enlisted_on":"2020-03-01","monthly_pay":"9200.00"}"#;
    let (as_of, cold, posted) = ledger
        .with_state_and_cold_months(
            |_, m| m.as_str() == "M1",
            |_, head| head.seq,
            |as_of, cold| {
                assert!(ledger.writer_is_free(), "the pages are read without the writer lock");
                (as_of, cold.len(), post(&ledger, &[enrol.to_string()]).unwrap().last_seq)
            },
        )
        .unwrap();
    assert_eq!((cold, posted), (36, Some(as_of + 1)));
}

#[test]
fn a_month_awaiting_its_match_keeps_its_year_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    // A premium of 2022 whose match has not come: M0's years from 2022 on stay in memory.
    let path = dir.path().join("m");
    let l2 = Ledger::init(&path, clock()).unwrap();
    post(&l2, &[r#"{"id":"e","type":"enroll","member":"M0","category":"officer","unit":"U1","enlisted_on":"2020-03-01","monthly_pay":"9200.00"}"#.to_string()]).unwrap();
    for year in 2021..=2025 {
        let matched = year != 2022;
        post(&l2, &premium(&l2, &format!("c{year}"), "M0", &format!("{year}-06"), matched))
            .unwrap();
    }
    l2.set_resident_years(Some(1)).unwrap();
    l2.evict_stored_now().unwrap();
    let years: Vec<u16> = l2.with_state(|s, _| s.periods().iter().map(|p| p.2.year).collect());
    assert_eq!(years, [2022, 2023, 2024, 2025]);
    assert_eq!(l2.books_with_cold_years(), 1);
}

#[test]
fn a_stored_page_that_is_not_what_left_memory_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = five_years(&dir.path().join("l"));
    ledger.set_resident_years(Some(1)).unwrap();
    ledger.evict_stored_now().unwrap();
    let m1 = junbao_ledger::ids::MemberId::parse("M1").unwrap();
    // M1's page of 2021 deleted from the store while it is out of memory.
    let store = ledger.store_for_tests();
    store.tamper_state(&junbao_ledger::state::page_key(&m1, 2021), None).unwrap();
    let head = ledger.with_state(|_, head| head);
    let err = post(&ledger, &premium(&ledger, "x", "M1", "2021-04", false)).unwrap_err();
    assert!(err.contains("M1") && err.contains("through 2024"), "{err}");
    // Nothing was posted, and the member's years stay out of memory.
    assert_eq!(ledger.with_state(|_, head| head), head);
    assert_eq!(ledger.books_with_cold_years(), 2);
    // The console's view of the unit's months refuses the page too.
    let report = ledger.with_state_and_cold_months(|_, _| true, |_, _| (), |(), cold| cold.len());
    assert!(report.unwrap_err().to_string().contains("M1"));
    // The ledger goes on: a request whose second event needs M1's years fails whole, and
    // events that do not need them are taken (a new member, M0's own old month).
    let enrol = r#"{"id":"e9","type":"enroll","member":"M9","category":"officer","unit":"U1","enlisted_on":"2020-03-01","monthly_pay":"9200.00"}"#;
    let mut both = vec![enrol.to_string()];
    both.extend(premium(&ledger, "y", "M1", "2021-05", false));
    assert!(post(&ledger, &both).is_err());
    assert_eq!(ledger.with_state(|_, head| head), head);
    post(&ledger, &[enrol.to_string()]).unwrap();
    let m0 = premium(&ledger, "z", "M0", "2021-04", false);
    assert!(post(&ledger, &m0).unwrap_err().contains("2021-04"));
    assert_eq!(ledger.books_with_cold_years(), 1);
}

#[test]
fn a_tail_that_reaches_old_years_replays_onto_books_loaded_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let whole = five_years(&dir.path().join("whole"));
    whole.set_resident_years(None).unwrap();
    let path = dir.path().join("l");
    let ledger = five_years(&path);
    ledger.checkpoint().unwrap();
    // After the checkpoint: reversals of a match and a premium of 2021 and a back premium of
    // 2020 (M0's and M1's oldest years), then a crash (no checkpoint at close).
    let mut tail = vec![
        r#"{"id":"rev-m","type":"reversal","of":"c-M0-2021-05-m","reason":"twice"}"#.to_string(),
        r#"{"id":"rev","type":"reversal","of":"c-M0-2021-05","reason":"twice"}"#.to_string(),
    ];
    tail.extend(premium(&ledger, "back", "M1", "2020-12", true));
    for e in &tail {
        let a = post(&whole, std::slice::from_ref(e)).map(|s| s.head).unwrap();
        assert_eq!(post(&ledger, std::slice::from_ref(e)).map(|s| s.head), Ok(a), "{e}");
    }
    ledger.close_without_checkpoint();
    // The open loads each book with its last two years of months (2024, 2025) and reads back
    // those the tail reaches; the tail changed their first years (M0's 2021, M1's 2020), so
    // nothing is let go of again until those changes are stored.
    let ledger = Ledger::open(&path, clock()).unwrap();
    assert_eq!(ledger.books_with_cold_years(), 0);
    let months = ledger.with_state(|s, _| s.periods().len());
    assert_eq!(months, whole.with_state(|s, _| s.periods().len()));
    assert_eq!(books(&ledger), books(&whole));
    // Once a checkpoint stores those changes, the next one lets go of the old years again.
    ledger.evict_stored_now().unwrap();
    assert_eq!(ledger.books_with_cold_years(), 2);
    ledger.set_resident_years(None).unwrap();
    assert_eq!(books(&ledger), books(&whole));
}

/// The reversals of a premium's match (`{of}-m`, by `{id}-m`) and of the premium (`of`, by
/// `id`), in that order: together they leave nothing in the month.
fn premium_reversals(id: &str, of: &str) -> [String; 2] {
    [(format!("{id}-m"), format!("{of}-m")), (id.to_string(), of.to_string())].map(|(id, of)| {
        format!(r#"{{"id":"{id}","type":"reversal","of":"{of}","reason":"twice"}}"#)
    })
}

/// Reverses a premium and its match ([`premium_reversals`]), each in a post of its own.
fn reverse_premium(ledger: &Ledger, id: &str, of: &str) {
    for e in premium_reversals(id, of) {
        post(ledger, &[e]).unwrap();
    }
}

/// [`five_years`] with M0's premium of March 2021 reversed, checkpointed; with M0's stored page
/// of 2021. Every other year of the two officers holds the same twelve months: this page is
/// one of the right form that no other year holds.
fn five_years_m0_without_march_2021(dir: &std::path::Path) -> (Ledger, Vec<u8>) {
    let ledger = five_years(&dir.join("l"));
    reverse_premium(&ledger, "rev0", "c-M0-2021-03");
    ledger.checkpoint().unwrap();
    let page = stored_page(&ledger, "M0", 2021).unwrap();
    (ledger, page)
}

/// The stored page of `member`'s `year`, as the store holds it now.
fn stored_page(ledger: &Ledger, member: &str, year: u16) -> Option<Vec<u8>> {
    let m = junbao_ledger::ids::MemberId::parse(member).unwrap();
    ledger.store_for_tests().state_record(&junbao_ledger::state::page_key(&m, year)).unwrap()
}

#[test]
fn verify_lets_go_of_years_stored_as_replayed_and_reads_them_back_for_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = five_years(&dir.path().join("l"));
    // Before the checkpoint, events that change M0's 2021 and add its 2020 after every premium:
    // the replay's pages of those years differ from the stored ones until it reaches them, so it
    // keeps them in memory until then.
    reverse_premium(&ledger, "rev0", "c-M0-2021-03");
    post(&ledger, &premium(&ledger, "back0", "M0", "2020-11", true)).unwrap();
    ledger.checkpoint().unwrap();
    // After it (the tail), once the replay let go of the old years (their stored pages, as of
    // the checkpoint, were the replay's): a reversal of M1's premium of 2021, which reads its
    // years back; an interest credit of the end of 2022, which needs only the old years'
    // totals; a back premium of M1's 2020.
    reverse_premium(&ledger, "rev1", "c-M1-2021-05");
    let mut tail = vec![
        r#"{"id":"int","type":"interest","fund":"medical","period":"2022-12","rate":"1.5"}"#
            .to_string(),
    ];
    tail.extend(premium(&ledger, "back1", "M1", "2020-12", true));
    for e in &tail {
        post(&ledger, std::slice::from_ref(e)).unwrap();
    }
    let whole = ledger.verify(&|_| {}).unwrap();
    let letting_go = ledger.verify_letting_go_every(1, &|_| {}).unwrap();
    assert_eq!(whole.years_let_go, 0, "no look is due in a ledger this small");
    // Each member's years before 2024 (the last two of a book are kept) left memory, and the
    // tail's reversal read M1's back (the interest credit reads the old years' totals only).
    assert!(letting_go.years_let_go >= 2, "{}", letting_go.years_let_go);
    assert!(letting_go.years_read_back >= 1, "{}", letting_go.years_read_back);
    assert!(!letting_go.state_loaded_whole);
    assert_eq!(
        (letting_go.entries, letting_go.accounts, &letting_go.head),
        (whole.entries, whole.accounts, &whole.head)
    );
    // Reopened (the tail replayed onto the checkpoint) and checkpointed again: the same.
    drop(ledger);
    let ledger = Ledger::open(&dir.path().join("l"), clock()).unwrap();
    ledger.checkpoint().unwrap();
    let again = ledger.verify_letting_go_every(1, &|_| {}).unwrap();
    assert!(again.years_let_go >= 2 && !again.state_loaded_whole);
    assert_eq!(again.head, whole.head);
}

#[test]
fn verify_reads_back_before_the_checkpoint_and_finds_a_page_put_back_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = five_years(&dir.path().join("l"));
    ledger.checkpoint().unwrap();
    let m1_2021_before = stored_page(&ledger, "M1", 2021).unwrap();
    // Before the next checkpoint: M1's premium of May 2021 reversed and paid again (new ids, the
    // same money), so that 2021 ends as it began. The replay lets go of M1's 2021 (its stored
    // page is the replay's) and reads it back for the reversal, before the checkpoint.
    reverse_premium(&ledger, "rev", "c-M1-2021-05");
    post(&ledger, &premium(&ledger, "again", "M1", "2021-05", true)).unwrap();
    ledger.checkpoint().unwrap();
    assert_eq!(stored_page(&ledger, "M1", 2021).unwrap(), m1_2021_before);
    let whole = ledger.verify(&|_| {}).unwrap();
    let letting_go = ledger.verify_letting_go_every(1, &|_| {}).unwrap();
    assert!(letting_go.years_read_back >= 1, "{}", letting_go.years_read_back);
    assert!(!letting_go.state_loaded_whole, "the pages read back were taken out of the digest");
    assert_eq!((letting_go.accounts, &letting_go.head), (whole.accounts, &whole.head));
    // Now M1's May 2021 reversed for good and checkpointed; then the stored page of 2021 put
    // back as it was before. The replay lets go of 2021 while its page is that old one, reads
    // it back for the reversal, and ends with its own 2021, which the store does not hold.
    reverse_premium(&ledger, "rev2", "again");
    ledger.checkpoint().unwrap();
    let m1 = junbao_ledger::ids::MemberId::parse("M1").unwrap();
    let key = junbao_ledger::state::page_key(&m1, 2021);
    ledger.store_for_tests().tamper_state(&key, Some(&m1_2021_before)).unwrap();
    for err in [
        ledger.verify(&|_| {}).unwrap_err(),
        ledger.verify_letting_go_every(1, &|_| {}).unwrap_err(),
    ] {
        assert!(err.is_integrity() && err.to_string().contains("M1"), "{err}");
    }
}

#[test]
fn verify_that_let_go_of_years_names_what_differs_record_by_record() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, m0_2021) = five_years_m0_without_march_2021(dir.path());
    let store = ledger.store_for_tests();
    let m0 = junbao_ledger::ids::MemberId::parse("M0").unwrap();
    let m1 = junbao_ledger::ids::MemberId::parse("M1").unwrap();
    let page = junbao_ledger::state::page_key;
    let m1_2025 = stored_page(&ledger, "M1", 2025).unwrap();
    // Each tampering alone, then put back: the first pass lets go of M0's and M1's years
    // through 2023 where their pages are the replay's, the digests differ, and the second pass
    // (letting go of years too, listing what it holds in memory) names the record by its year.
    let cases = [
        // A page the replay holds in memory (2025), deleted.
        (
            page(&m1, 2025),
            None,
            "premium-period records (member-year pages: premium months, yearly sums) differ from a replay of the journal: M1 (2025)",
        ),
        // A page of a year with nothing in it (2019), added.
        (
            page(&m0, 2019),
            Some(m1_2025.clone()),
            "premium-period records (member-year pages: premium months, yearly sums) differ from a replay of the journal: M0 (2019)",
        ),
        // A page of an old year (2022) with other months: not let go of.
        (page(&m1, 2022), Some(m0_2021.clone()), "differ from a replay of the journal: M1 (2022)"),
    ];
    for (key, tampered, named) in cases {
        let before = store.state_record(&key).unwrap();
        store.tamper_state(&key, tampered.as_deref()).unwrap();
        let err = ledger.verify_letting_go_every(1, &|_| {}).unwrap_err();
        assert!(err.is_integrity() && err.to_string().contains(named), "{err}");
        // Verified as `junbao verify` does (nothing let go of in a ledger this small), the
        // whole state loaded names the member.
        let err = ledger.verify(&|_| {}).unwrap_err();
        assert!(err.is_integrity() && err.to_string().contains("M"), "{err}");
        store.tamper_state(&key, before.as_deref()).unwrap();
    }
    // Keys that parse as pages of years the replay let go of, but that it never compared: a
    // page of 1948 (before the first year) and one with another separator. Named, not passed.
    let mut early = page(&m1, 2021);
    let n = early.len();
    early[n - 2..].copy_from_slice(&1948u16.to_be_bytes());
    let mut odd = page(&m1, 2021);
    odd[1] = b'#';
    for key in [early, odd] {
        store.tamper_state(&key, Some(&m1_2025)).unwrap();
        let err = ledger.verify_letting_go_every(1, &|_| {}).unwrap_err();
        assert!(err.is_integrity() && err.to_string().contains("premium-period records"), "{err}");
        store.tamper_state(&key, None).unwrap();
    }
    // A default administration record stored (what reversing the only deposit interest
    // leaves): the same state as none, so it passes, as a whole comparison lets it.
    let admin = junbao_ledger::admin::state_key();
    let default = junbao_ledger::entry::encode(&junbao_ledger::admin::AdminState::default());
    store.tamper_state(&admin, Some(&default)).unwrap();
    let report = ledger.verify_letting_go_every(1, &|_| {}).unwrap();
    assert!(report.state_loaded_whole, "compared record by record, not by the digest");
    store.tamper_state(&admin, None).unwrap();
    // The mark of a reversed entry (M0's match of March 2021) deleted: named by its entry.
    let seq = ledger.with_state(|s, _| *s.reversed.first().unwrap());
    let mark = &junbao_ledger::state::reversed_key(seq);
    store.tamper_state(mark, None).unwrap();
    let err = ledger.verify_letting_go_every(1, &|_| {}).unwrap_err();
    let named = format!("reversal marks differ from a replay of the journal: entry {seq}");
    assert!(err.is_integrity() && err.to_string().contains(&named), "{err}");
    store.tamper_state(mark, Some(&[])).unwrap();
    // A fund's own balance changed: named with both figures, as a whole comparison names it.
    let (account, fen) = ledger.with_state(|s, _| {
        let (a, f) = s.fund_balances.iter().find(|(_, f)| f.0 != 0).unwrap();
        (a.clone(), *f)
    });
    let (key, value) = junbao_ledger::state::fund_balance_write(&account, fen);
    let changed = junbao_ledger::state::fund_balance_write(&account, junbao_ledger::Fen(fen.0 + 1));
    store.tamper_state(&key, changed.1.as_deref()).unwrap();
    let err = ledger.verify_letting_go_every(1, &|_| {}).unwrap_err();
    let named = format!(
        "the stored balances differ from a replay of the journal: {account}: journal {fen}, stored {}",
        junbao_ledger::Fen(fen.0 + 1)
    );
    assert!(err.is_integrity() && err.to_string().contains(&named), "{err}");
    store.tamper_state(&key, value.as_deref()).unwrap();
    // A member record changed: named as a member record.
    let key = junbao_ledger::state::member_key(&m0);
    let m0_record = store.state_record(&key).unwrap().unwrap();
    let mut changed = m0_record.clone();
    *changed.last_mut().unwrap() ^= 1;
    store.tamper_state(&key, Some(&changed)).unwrap();
    let err = ledger.verify_letting_go_every(1, &|_| {}).unwrap_err();
    assert!(err.is_integrity(), "{err}");
    assert!(
        err.to_string().contains("member records differ from a replay of the journal: M0"),
        "{err}"
    );
    store.tamper_state(&key, Some(&m0_record)).unwrap();
    let report = ledger.verify_letting_go_every(1, &|_| {}).unwrap();
    assert!(report.years_let_go >= 2 && !report.state_loaded_whole);
}

#[test]
fn verify_keeps_a_year_whose_stored_page_is_not_the_replays_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, m0_2021) = five_years_m0_without_march_2021(dir.path());
    // M1's page of 2021 replaced by M0's, which lacks March (a page of the right form, of
    // another member's year).
    let m1_2021 = stored_page(&ledger, "M1", 2021).unwrap();
    assert_ne!(m0_2021, m1_2021);
    let m1 = junbao_ledger::ids::MemberId::parse("M1").unwrap();
    let store = ledger.store_for_tests();
    store.tamper_state(&junbao_ledger::state::page_key(&m1, 2021), Some(&m0_2021)).unwrap();
    // The replay does not let go of M1's years through 2023 (the stored 2021 is not its
    // 2021): the digests differ, and the verification done again keeping every year names
    // M1's book.
    let err = ledger.verify_letting_go_every(1, &|_| {}).unwrap_err();
    assert!(err.is_integrity(), "{err}");
    assert!(err.to_string().contains("M1"), "{err}");
    // A page deleted: the same.
    store.tamper_state(&junbao_ledger::state::page_key(&m1, 2021), None).unwrap();
    let err = ledger.verify_letting_go_every(1, &|_| {}).unwrap_err();
    assert!(err.is_integrity() && err.to_string().contains("M1"), "{err}");
    // Put back as it was: it verifies, letting go of both members' old years.
    store.tamper_state(&junbao_ledger::state::page_key(&m1, 2021), Some(&m1_2021)).unwrap();
    let report = ledger.verify_letting_go_every(1, &|_| {}).unwrap();
    assert!(report.years_let_go >= 2 && !report.state_loaded_whole);
}

/// One step of a random history for `verify`'s letting go of years: a matched premium of a
/// member's month, the reversal of one (both parts), a checkpoint.
#[derive(Debug, Clone)]
enum Step {
    Premium { member: u8, year: u16, month: u8 },
    Reverse { member: u8, year: u16, month: u8 },
    Checkpoint,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        8 => (0..3u8, 2020..=2025u16, 1..=12u8)
            .prop_map(|(member, year, month)| Step::Premium { member, year, month }),
        2 => (0..3u8, 2020..=2025u16, 1..=12u8)
            .prop_map(|(member, year, month)| Step::Reverse { member, year, month }),
        1 => Just(Step::Checkpoint),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Any history of premiums, late premiums of old months and reversals of them, with
    /// checkpoints anywhere (and so a tail after the last): `verify` letting go of years after
    /// every few entries agrees with `verify` keeping them, both by the digest; and a stored
    /// page deleted is found either way.
    #[test]
    fn verify_letting_go_of_years_agrees_with_verify_keeping_them(
        steps in proptest::collection::vec(step(), 1..120),
        every in proptest::prelude::prop_oneof![
            proptest::prelude::Just(1u64),
            proptest::prelude::Just(5),
            proptest::prelude::Just(40),
        ],
        tampered in (0..3u8, 2020..=2025u16),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::init(&dir.path().join("l"), clock()).unwrap();
        let enrol: Vec<String> = (0..3)
            .map(|m| format!(r#"{{"id":"e{m}","type":"enroll","member":"M{m}","category":"officer","unit":"U1","enlisted_on":"2019-01-01","monthly_pay":"9200.00"}}"#))
            .collect();
        post(&ledger, &enrol).unwrap();
        for s in &steps {
            // Refusals (a month paid twice, a reversal of what is not there) store nothing.
            match s {
                Step::Premium { member, year, month } => {
                    let id = format!("c-{member}-{year}-{month}");
                    let period = format!("{year}-{month:02}");
                    let _ = post(&ledger, &premium(&ledger, &id, &format!("M{member}"), &period, true));
                }
                Step::Reverse { member, year, month } => {
                    let of = format!("c-{member}-{year}-{month}");
                    for e in premium_reversals(&format!("r-{of}"), &of) {
                        let _ = post(&ledger, &[e]);
                    }
                }
                Step::Checkpoint => {
                    ledger.checkpoint().unwrap();
                }
            }
        }
        let keeping = ledger.verify(&|_| {}).unwrap();
        let letting_go = ledger.verify_letting_go_every(every, &|_| {}).unwrap();
        proptest::prop_assert!(!keeping.state_loaded_whole && !letting_go.state_loaded_whole);
        proptest::prop_assert_eq!(
            (letting_go.entries, letting_go.accounts, &letting_go.head),
            (keeping.entries, keeping.accounts, &keeping.head)
        );
        // A stored page of the state as of the checkpoint, deleted.
        let (member, year) = tampered;
        let m = junbao_ledger::ids::MemberId::parse(&format!("M{member}")).unwrap();
        let key = junbao_ledger::state::page_key(&m, year);
        let store = ledger.store_for_tests();
        if store.state_record(&key).unwrap().is_some() {
            store.tamper_state(&key, None).unwrap();
            let kept = ledger.verify(&|_| {}).unwrap_err();
            let let_go = ledger.verify_letting_go_every(every, &|_| {}).unwrap_err();
            proptest::prop_assert!(kept.is_integrity() && let_go.is_integrity());
            // Both name the member's pages (one that let go of years names the year too: it
            // compares record by record, not book by book).
            let named = format!(
                "the stored premium-period records (member-year pages: premium months, yearly \
                 sums) differ from a replay of the journal: M{member}"
            );
            proptest::prop_assert!(kept.to_string().contains(&named), "{}", kept);
            proptest::prop_assert!(let_go.to_string().contains(&named), "{}", let_go);
        }
    }
}
