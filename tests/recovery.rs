//! The journal is the record, everything else is derived (docs/FORMAT.md §4): any sequence of
//! posts, checkpoints, closes and crashes (the in-memory state dropped at a random point,
//! without the checkpoint of closing) leaves the same journal and the same state as a replay
//! of the journal alone, with idempotency exact across restarts and the member index whole.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::verify_by_digest;
use junbao_engine::Ledger;
use junbao_ledger::LedgerState;
use junbao_ledger::entry::Entry;
use proptest::prelude::*;

const NOW_US: i64 = 1_767_225_600_000_000;
const MEMBERS: u8 = 4;

fn open(path: &Path) -> Ledger {
    Ledger::open(path, Arc::new(|| NOW_US)).unwrap()
}

/// A new ledger at `path` with every member enrolled.
fn enrolled(path: &Path) -> Ledger {
    let ledger = Ledger::init(path, Arc::new(|| NOW_US)).unwrap();
    let enrolments = enrolment_lines();
    ledger.post_lines(&enrolments.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    ledger
}

/// The enrolment of every member, as post lines.
fn enrolment_lines() -> Vec<String> {
    (0..MEMBERS)
        .map(|m| {
            format!(
                r#"{{"id":"e{m}","type":"enroll","member":"M{m}","category":"officer","unit":"U1","enlisted_on":"2020-01-01","monthly_pay":"10000.00"}}"#
            )
        })
        .collect()
}

/// One event of a post: a premium (member, month), the reversal of a premium, a fund-level
/// appropriation. Ids are derived from the content, so posting the same event again is a
/// replay, and a premium reversed twice or a reversal of a premium never posted is refused.
#[derive(Debug, Clone)]
enum Ev {
    Premium { member: u8, month: u8 },
    Reverse { member: u8, month: u8 },
    Appropriation { n: u8 },
}

impl Ev {
    fn line(&self) -> String {
        match self {
            Ev::Premium { member, month } => format!(
                r#"{{"id":"p-{member}-{month}","type":"contribution","member":"M{member}","fund":"medical","period":"2024-{:02}","amount":"100.00","unit":"U1"}}"#,
                month + 1
            ),
            Ev::Reverse { member, month } => format!(
                r#"{{"id":"r-{member}-{month}","type":"reversal","of":"p-{member}-{month}","reason":"posted in error"}}"#
            ),
            Ev::Appropriation { n } => format!(
                r#"{{"id":"a-{n}","type":"appropriation","fund":"casualty","amount":"{n}.00"}}"#
            ),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Post(Vec<Ev>),
    Checkpoint,
    /// Closed normally: a checkpoint is written.
    Reopen,
    /// Dropped without the checkpoint of closing: the next open replays the tail.
    Crash,
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        4 => (0..MEMBERS, 0..6u8).prop_map(|(member, month)| Ev::Premium { member, month }),
        1 => (0..MEMBERS, 0..6u8).prop_map(|(member, month)| Ev::Reverse { member, month }),
        1 => (1..4u8).prop_map(|n| Ev::Appropriation { n }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(ev(), 1..6).prop_map(Op::Post),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
        2 => Just(Op::Crash),
    ]
}

/// Every stored entry, decoded, in order.
fn journal(ledger: &Ledger) -> Vec<Entry> {
    ledger.entries_from(1).map(|r| r.unwrap().1).collect()
}

/// What the ledger holds must be what its journal alone implies.
fn check(ledger: &Ledger, accepted: &BTreeMap<String, u64>) {
    let entries = journal(ledger);
    assert_eq!(entries.len() as u64, ledger.head().seq);
    let replayed = LedgerState::replay(&entries);
    ledger.with_state(|state, _| assert_eq!(state, &replayed, "the state differs from a replay"));
    // Idempotency is exact, before and after the checkpoint: every accepted id answers its
    // own entry, and posting it again stores nothing.
    for (id, seq) in accepted {
        let entry = &entries[(*seq - 1) as usize];
        assert_eq!(entry.event.id.as_str(), id);
        let line = entry.event.to_json().to_string();
        let again = ledger.post_lines(&[&line]).unwrap();
        assert_eq!(
            (again.accepted, again.replayed, again.seqs.clone()),
            (0, 1, vec![*seq]),
            "{id}"
        );
    }
    // The member index (stored up to the checkpoint, in memory after it) lists every entry
    // that concerns the member, once, in order.
    for m in 0..MEMBERS {
        let member = format!("M{m}");
        let want: Vec<u64> = entries
            .iter()
            .filter(|e| junbao_ledger::rules::entry_members(e).iter().any(|x| x.as_str() == member))
            .map(|e| e.seq)
            .collect();
        let got: Vec<u64> = ledger
            .statement(&member, None, None, false)
            .unwrap()
            .entries
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(got, want, "the member index of {member}");
    }
}

fn run(ops: Vec<Op>, interval: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut ledger = Ledger::init(&path, Arc::new(|| NOW_US)).unwrap();
    let enrolments = enrolment_lines();
    ledger.post_lines(&enrolments.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    ledger.set_checkpoint_interval(interval);
    // The head when the ledger was last opened (0: new): a close checkpoints only past it.
    let mut opened = 0;
    let mut accepted: BTreeMap<String, u64> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Post(events) => {
                let lines: Vec<String> = events.iter().map(Ev::line).collect();
                let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                // A refused post (a reversal of nothing, or of a reversed premium) stores
                // nothing; an accepted one stores each new id once.
                if let Ok(s) = ledger.post_lines(&refs) {
                    for (e, seq) in events.iter().zip(&s.seqs) {
                        let line = e.line();
                        let id = line.split('"').nth(3).unwrap().to_string();
                        assert_eq!(*accepted.entry(id).or_insert(*seq), *seq);
                    }
                }
            }
            Op::Checkpoint => {
                let head = ledger.checkpoint().unwrap();
                assert_eq!(ledger.checkpoint_seq(), head.seq);
            }
            Op::Reopen => {
                let (head, checkpoint) = (ledger.head().seq, ledger.checkpoint_seq());
                drop(ledger);
                ledger = open(&path);
                // A close after a post checkpoints; one with nothing posted since the open
                // (the tail only replayed) leaves the stored checkpoint as it was.
                let want = if head != opened { head } else { checkpoint };
                assert_eq!(ledger.checkpoint_seq(), want, "closing checkpoints after a post");
                ledger.set_checkpoint_interval(interval);
                opened = ledger.head().seq;
                check(&ledger, &accepted);
            }
            Op::Crash => {
                let head = ledger.head();
                // The stored checkpoint: closing without one waits for the checkpoint thread.
                let stored = ledger
                    .store_for_tests()
                    .state_record(junbao_ledger::state::CHECKPOINT_KEY)
                    .unwrap();
                ledger.close_without_checkpoint();
                ledger = open(&path);
                opened = ledger.head().seq;
                assert_eq!(ledger.head(), head, "a crash loses no acknowledged entry");
                // The open says what it replayed: the entries after the checkpoint stored
                // before the crash (read back at the open).
                let timings = ledger.open_timings();
                let checkpoint = ledger.checkpoint_seq();
                assert_eq!(timings.replayed_entries, head.seq - checkpoint);
                let stored = stored.map_or(0, |b| u64::from_be_bytes(b[..8].try_into().unwrap()));
                assert!(checkpoint >= stored && checkpoint <= head.seq, "{checkpoint} {stored}");
                assert_eq!(timings.members, ledger.with_state(|s, _| s.members.len()));
                ledger.set_checkpoint_interval(interval);
                check(&ledger, &accepted);
            }
        }
    }
    check(&ledger, &accepted);
    verify_by_digest(&ledger);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn posts_checkpoints_and_crashes_give_the_journals_state(
        ops in prop::collection::vec(op(), 1..14),
        interval in prop_oneof![Just(1u64), Just(3), Just(7), Just(1 << 40)],
    ) {
        run(ops, interval);
    }
}

/// A crash right after a checkpoint, and one with nothing checkpointed since the ledger was
/// created: both replay to the same state.
#[test]
fn a_crash_before_any_checkpoint_replays_the_whole_journal() {
    run(
        vec![
            Op::Post(vec![
                Ev::Premium { member: 0, month: 0 },
                Ev::Premium { member: 1, month: 0 },
            ]),
            Op::Crash,
            Op::Post(vec![Ev::Reverse { member: 0, month: 0 }]),
            Op::Checkpoint,
            Op::Crash,
            Op::Post(vec![Ev::Premium { member: 0, month: 0 }, Ev::Appropriation { n: 2 }]),
            Op::Crash,
        ],
        1 << 40,
    );
}

/// A checkpoint is cut after a quarter of the interval when nearly every entry since the last
/// one concerns a member of its own (waiting would not merge their records), and only at the
/// full interval while entries come back to the same members.
#[test]
fn checkpoints_come_early_only_when_waiting_would_not_merge_records() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = enrolled(&dir.path().join("l"));
    ledger.checkpoint().unwrap();
    ledger.set_checkpoint_interval(8);
    let post = |ev: Ev| ledger.post_lines(&[&ev.line()]).unwrap().seqs[0];
    // One member, month after month: no checkpoint before eight entries.
    let start = ledger.checkpoint_seq();
    for month in 0..7 {
        post(Ev::Premium { member: 0, month });
    }
    assert_eq!(ledger.checkpoint_seq(), start, "entries of one member wait for the interval");
    let eighth = post(Ev::Premium { member: 0, month: 7 });
    assert_eq!(ledger.checkpoint_seq(), eighth, "the full interval");
    // Waits for the checkpoint thread's write (a cut is not made while one is in flight).
    assert_eq!(ledger.checkpoint().unwrap().seq, eighth);
    // A member of its own for each entry: cut after two (a quarter of eight).
    post(Ev::Premium { member: 1, month: 0 });
    assert_eq!(ledger.checkpoint_seq(), eighth);
    let second = post(Ev::Premium { member: 2, month: 0 });
    assert_eq!(ledger.checkpoint_seq(), second, "early, as nothing would merge");
}

/// A ledger posted to slowly still checkpoints: at the first post after the oldest entry since
/// the last checkpoint has waited the checkpoint age, however few entries came; not before.
/// Reopening after a crash then replays only what came after it.
#[test]
fn a_slow_trickle_of_posts_is_checkpointed_once_its_oldest_entry_has_waited() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = enrolled(&path);
    ledger.checkpoint().unwrap();
    let start = ledger.checkpoint_seq();
    let post = |ev: Ev| ledger.post_lines(&[&ev.line()]).unwrap().seqs[0];
    // The first entry after the checkpoint starts the wait (an hour: the two stay pending
    // however slow the machine).
    ledger.set_checkpoint_age(std::time::Duration::from_secs(3600));
    let first = post(Ev::Premium { member: 0, month: 0 });
    post(Ev::Premium { member: 0, month: 1 });
    assert_eq!(ledger.checkpoint_seq(), start, "two entries that have not waited stay pending");
    let age = std::time::Duration::from_millis(200);
    ledger.set_checkpoint_age(age);
    std::thread::sleep(age + std::time::Duration::from_millis(50));
    let third = post(Ev::Premium { member: 0, month: 2 });
    assert!(third > first);
    assert_eq!(ledger.checkpoint_seq(), third, "the post after the wait cuts a checkpoint");
    // The wait starts again with the next entry, not at the cut: an entry that has waited
    // for nothing yet.
    std::thread::sleep(age + std::time::Duration::from_millis(50));
    let fourth = post(Ev::Premium { member: 0, month: 3 });
    assert_eq!(ledger.checkpoint_seq(), third, "the next entry has only started to wait");
    assert_eq!(ledger.checkpoint().unwrap().seq, fourth);
    let fifth = post(Ev::Premium { member: 0, month: 4 });
    let head = ledger.head();
    assert_eq!(head.seq, fifth);
    ledger.close_without_checkpoint();
    let ledger = open(&path);
    assert_eq!((ledger.head(), ledger.checkpoint_seq()), (head, fourth));
    let mut accepted = BTreeMap::new();
    for (month, seq) in [(0, first), (2, third), (4, fifth)] {
        accepted.insert(format!("p-0-{month}"), seq);
    }
    check(&ledger, &accepted);
}

/// A reversal in the tail whose target is more than a replay part (16,384 entries) before it:
/// reopening after a crash finds the target among the tail's own entries (the store's index
/// has no record of them), and the state, idempotency and member index are the journal's.
#[test]
fn a_reversal_far_into_the_tail_finds_its_target_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = Ledger::init(&path, Arc::new(|| NOW_US)).unwrap();
    // No checkpoint after the open's, by count or by age, however slow the machine.
    ledger.set_checkpoint_interval(1 << 40);
    ledger.set_checkpoint_age(std::time::Duration::from_secs(1 << 30));
    let enrolments = enrolment_lines();
    ledger.post_lines(&enrolments.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    let mut accepted = BTreeMap::new();
    let premium = Ev::Premium { member: 0, month: 0 }.line();
    accepted.insert("p-0-0".to_string(), ledger.post_lines(&[&premium]).unwrap().seqs[0]);
    for block in 0..17u32 {
        let lines: Vec<String> = (0..1000)
            .map(|i| {
                format!(
                    r#"{{"id":"f-{block}-{i}","type":"appropriation","fund":"casualty","amount":"1.00"}}"#
                )
            })
            .collect();
        ledger.post_lines(&lines.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    }
    let reversal = Ev::Reverse { member: 0, month: 0 }.line();
    accepted.insert("r-0-0".to_string(), ledger.post_lines(&[&reversal]).unwrap().seqs[0]);
    assert!(accepted["r-0-0"] - accepted["p-0-0"] > 16_384);
    let head = ledger.head();
    ledger.close_without_checkpoint();
    let ledger = open(&path);
    assert_eq!(ledger.head(), head);
    assert!(ledger.checkpoint_seq() < accepted["p-0-0"], "the premium is in the tail");
    check(&ledger, &accepted);
    ledger.with_state(|state, _| {
        let member = junbao_ledger::ids::MemberId::parse("M0").unwrap();
        assert!(!state.books.contains_key(&member), "the reversed premium is undone");
    });
}

/// A ledger written by the previous version (storage format 1: one journal record per entry,
/// derived records written with every batch) is refused with a message that names `migrate`;
/// `junbao migrate` converts it in place, verified before and after, and it then posts and
/// verifies as any other; a format-1 journal whose chain is broken is not converted.
#[test]
fn a_format1_ledger_is_refused_then_migrated_by_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let (current, old, broken) =
        (dir.path().join("now"), dir.path().join("old"), dir.path().join("broken"));
    let ledger = Ledger::init(&current, Arc::new(|| NOW_US)).unwrap();
    let lines: Vec<String> = (0..3u8)
        .map(|m| {
            format!(
                r#"{{"id":"e{m}","type":"enroll","member":"M{m}","category":"officer","unit":"U1","enlisted_on":"2020-01-01","monthly_pay":"10000.00"}}"#
            )
        })
        .chain((0..3u8).map(|m| Ev::Premium { member: m, month: 1 }.line()))
        .collect();
    ledger.post_lines(&lines.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    // Format 1 kept every derived record current with each batch: a checkpoint at the head.
    ledger.checkpoint().unwrap();
    let store = ledger.store_for_tests();
    let entries: Vec<_> = store.entries(1, usize::MAX).map(Result::unwrap).collect();
    let mut records = Vec::new();
    for cf in ["ids", "balances", "state", "tree"] {
        records.push((cf, store.records_for_tests(cf).unwrap()));
    }
    let meta: Vec<_> = store
        .records_for_tests("meta")
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.as_slice() == junbao_engine::META_STATE_FORMAT)
        .collect();
    records.push(("meta", meta));
    let state = ledger.with_state(|s, _| s.clone());
    let head = ledger.head();
    drop(ledger);
    junbao_storage::Store::create_format1_for_tests(&old, &entries, &records).unwrap();
    let mut tampered = entries.clone();
    tampered[5].bytes[3] ^= 1;
    junbao_storage::Store::create_format1_for_tests(&broken, &tampered, &records).unwrap();

    let junbao = |path: &Path, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_junbao"))
            .arg("--data")
            .arg(path)
            .args(args)
            .output()
            .unwrap()
    };
    let out = junbao(&old, &["verify"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("storage format 1") && err.contains("migrate"), "{err}");

    let out = junbao(&broken, &["migrate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("entry 6"), "{err}");
    assert!(junbao(&broken, &["verify"]).status.code() == Some(1), "still format 1");

    let out = junbao(&old, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["entries"], head.seq);
    assert_eq!(summary["head"], hex::encode(head.hash));
    assert_eq!(summary["verified"]["entries"], head.seq);
    let out = junbao(&old, &["migrate"]);
    assert_eq!(out.status.code(), Some(2), "a second migrate has nothing to do");

    let ledger = open(&old);
    assert_eq!((ledger.head(), ledger.checkpoint_seq()), (head, head.seq));
    ledger.with_state(|s, _| assert_eq!(s, &state));
    let again = ledger.post_lines(&[&lines[4]]).unwrap();
    assert_eq!(again.replayed, 1, "the migrated index answers old ids");
    ledger.post_lines(&[&Ev::Premium { member: 0, month: 2 }.line()]).unwrap();
    verify_by_digest(&ledger);
}

/// A new ledger at `path` with every member enrolled and their premiums of the first `months`
/// months, then `reversal` and an appropriation of `appropriation` yuan (the stored state of a
/// conversion test, once checkpointed).
fn ledger_of_premiums(path: &Path, months: u8, reversal: Ev, appropriation: u8) -> Ledger {
    let ledger = Ledger::init(path, Arc::new(|| NOW_US)).unwrap();
    let mut lines = enrolment_lines();
    for m in 0..MEMBERS {
        lines.extend((0..months).map(|month| Ev::Premium { member: m, month }.line()));
    }
    lines.push(reversal.line());
    lines.push(Ev::Appropriation { n: appropriation }.line());
    ledger.post_lines(&lines.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    ledger
}

/// The balance records state formats 2 and 3 kept for `state`'s member accounts (each the sum
/// of the account's yearly sums).
fn store_member_balances(state: &LedgerState) -> Vec<(Vec<u8>, i64)> {
    let mut v: Vec<_> = state
        .member_balances()
        .map(|(a, fen)| (junbao_ledger::state::balance_key(&a), fen.0))
        .collect();
    v.sort();
    v
}

/// Rewrites a store's state layout as state format 4 and earlier kept it: the fund's own
/// balances in the `balances` column family, the checkpoint and the state's counts in metadata
/// records (not in the state's `c/` record). Returns the fund balances' records moved.
fn to_format4_layout(store: &junbao_storage::Store) -> Vec<(Vec<u8>, Vec<u8>)> {
    let key = junbao_ledger::state::CHECKPOINT_KEY;
    let record = store.state_record(key).unwrap().unwrap();
    store.tamper_state(key, None).unwrap();
    store.tamper_meta(junbao_engine::META_CHECKPOINT, Some(&record[..8])).unwrap();
    store.tamper_meta(junbao_engine::META_STATE_COUNTS, Some(&record[8..])).unwrap();
    let fund_balances: Vec<(Vec<u8>, Vec<u8>)> = store
        .records_for_tests("state")
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.starts_with(b"k/"))
        .collect();
    for (k, v) in &fund_balances {
        store.tamper_state(k, None).unwrap();
        store.tamper_balance(&k[2..], i64::from_le_bytes(v[..].try_into().unwrap())).unwrap();
    }
    fund_balances
}

/// The member accounts with a record of their own in the store's balances.
fn stored_member_accounts(store: &junbao_storage::Store) -> Vec<String> {
    store
        .records_for_tests("balances")
        .unwrap()
        .iter()
        .map(|(k, _)| junbao_ledger::entry::decode::<junbao_ledger::fund::Account>(k).unwrap())
        .filter(|a| a.member_id().is_some())
        .map(|a| a.to_string())
        .collect()
}

/// A ledger in state format 3 (member-year pages, and each member account's balance stored
/// apart as well) opens with the same state and is converted to format 4 in one write that
/// keeps the checkpoint: the member accounts' balance records are gone (each was the sum of
/// the account's yearly sums, which the ledger now derives it from), and it verifies, posts and
/// reopens. A stored balance that contradicts the books is an integrity failure naming the
/// account, never silently dropped; and in format 4 a member account's balance record is one
/// this ledger never writes.
#[test]
fn a_state_format3_ledger_drops_the_member_balances_it_stored_apart() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let path = dir.path().join(name);
        let ledger = ledger_of_premiums(&path, 4, Ev::Reverse { member: 2, month: 1 }, 5);
        ledger.checkpoint().unwrap();
        let at_checkpoint = ledger.with_state(|s, _| s.clone());
        // An entry after the checkpoint, replayed at the next open.
        ledger.post_lines(&[&Ev::Premium { member: 0, month: 9 }.line()]).unwrap();
        let state = ledger.with_state(|s, _| s.clone());
        let balances = store_member_balances(&at_checkpoint);
        assert!(balances.len() >= MEMBERS as usize);
        (path, ledger, state, balances)
    };
    let store_all = |ledger: &Ledger, balances: &[(Vec<u8>, i64)]| {
        for (k, fen) in balances {
            ledger.store_for_tests().tamper_balance(k, *fen).unwrap();
        }
    };

    // Format 3, the balances right: converted.
    let (path, ledger, state, balances) = make("right");
    store_all(&ledger, &balances);
    let store = ledger.store_for_tests();
    to_format4_layout(store);
    store.tamper_meta(junbao_engine::META_STATE_FORMAT, Some(&3u32.to_be_bytes())).unwrap();
    ledger.close_without_checkpoint();
    let logs = || -> Vec<(std::path::PathBuf, u64)> {
        let files = std::fs::read_dir(&path).unwrap().filter_map(Result::ok).map(|f| f.path());
        files
            .filter(|f| f.extension().is_some_and(|x| x == "log"))
            .filter_map(|f| Some((f.clone(), std::fs::metadata(&f).ok()?.len())))
            .collect()
    };
    let before = logs();
    assert!(!before.is_empty());
    let ledger = open(&path);
    // The rewrite is settled into table files: none of the write-ahead log the open replayed
    // or wrote is left for the next open to replay (at a million members that replay took
    // 10 s), only an empty log at most.
    let after = logs();
    assert!(after.iter().all(|(f, _)| !before.iter().any(|(b, _)| b == f)), "{after:?}");
    assert!(after.iter().map(|(_, n)| n).sum::<u64>() < 1024, "{after:?}");
    ledger.with_state(|s, _| assert_eq!(s, &state));
    let store = ledger.store_for_tests();
    assert_eq!(stored_member_accounts(store), Vec::<String>::new());
    let fence = junbao_ledger::state::FORMAT_FENCE_KEY;
    assert!(store.records_for_tests("state").unwrap().iter().any(|(k, _)| k == fence));
    let format = store.meta(junbao_engine::META_STATE_FORMAT).unwrap();
    assert_eq!(format, Some(junbao_engine::STATE_FORMAT.to_be_bytes().to_vec()));
    verify_by_digest(&ledger);
    ledger.post_lines(&[&Ev::Premium { member: 1, month: 9 }.line()]).unwrap();
    let state = ledger.with_state(|s, _| s.clone());
    drop(ledger);
    let ledger = open(&path);
    ledger.with_state(|s, _| assert_eq!(s, &state));
    verify_by_digest(&ledger);
    drop(ledger);

    // Format 3, one balance contradicting the books: refused, naming the account.
    let (path, ledger, _, balances) = make("wrong");
    store_all(&ledger, &balances);
    let store = ledger.store_for_tests();
    let (key, fen) = &balances[1];
    store.tamper_balance(key, fen + 1).unwrap();
    to_format4_layout(store);
    store.tamper_meta(junbao_engine::META_STATE_FORMAT, Some(&3u32.to_be_bytes())).unwrap();
    ledger.close_without_checkpoint();
    let account = junbao_ledger::entry::decode::<junbao_ledger::fund::Account>(key).unwrap();
    let e = Ledger::open(&path, Arc::new(|| NOW_US)).unwrap_err().to_string();
    assert!(e.contains(&account.to_string()) && e.contains("yearly sums"), "{e}");

    // This format (as written) with a member account's balance record: refused as well, among
    // the state records (where the fund's own balances are) and in the balances column family
    // (which this format leaves empty).
    let (path, ledger, _, balances) = make("current");
    let (key, fen) = &balances[0];
    let account = junbao_ledger::entry::decode::<junbao_ledger::fund::Account>(key).unwrap();
    let (k, v) = junbao_ledger::state::fund_balance_write(&account, junbao_ledger::Fen(*fen));
    ledger.store_for_tests().tamper_state(&k, v.as_deref()).unwrap();
    ledger.close_without_checkpoint();
    let e = Ledger::open(&path, Arc::new(|| NOW_US)).unwrap_err();
    assert!(e.is_integrity() && e.to_string().contains(&account.to_string()), "{e}");
    let ledger = open_unchecked(&path, |store| store.tamper_state(&k, None).unwrap());
    ledger.store_for_tests().tamper_balance(key, *fen).unwrap();
    ledger.close_without_checkpoint();
    let e = Ledger::open(&path, Arc::new(|| NOW_US)).unwrap_err();
    assert!(e.is_integrity() && e.to_string().contains("balances column family"), "{e}");
}

/// Opens the store at `path` alone, lets `edit` change it, and opens the ledger.
fn open_unchecked(path: &Path, edit: impl FnOnce(&junbao_storage::Store)) -> Ledger {
    let store = junbao_storage::Store::open(path).unwrap();
    edit(&store);
    drop(store);
    open(path)
}

/// A version of junbao from before state format 4 would read a ledger of this format's pages
/// without the member accounts' balances it kept apart — every one at zero — so every ledger
/// carries a `state` record such a version refuses as an unknown key (its tag byte is none of
/// those it reads), whose key says why; it is written at `init` and kept by every rewrite of
/// the state. And a ledger marked with a later state format than this version's is refused
/// (not corruption: exit 1), by the open and by the auditor's open alike, not misread.
#[test]
fn earlier_versions_are_fenced_off_and_later_state_formats_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = Ledger::init(&path, Arc::new(|| NOW_US)).unwrap();
    let fence = junbao_ledger::state::FORMAT_FENCE_KEY;
    let tags_read_before_format4 = b"mpqbsairy";
    assert!(!tags_read_before_format4.contains(&fence[0]));
    assert!(String::from_utf8_lossy(fence).contains("newer junbao"));
    let has_fence = |l: &Ledger| {
        l.store_for_tests().records_for_tests("state").unwrap().iter().any(|(k, _)| k == fence)
    };
    assert!(has_fence(&ledger), "written at init");
    let lines = enrolment_lines();
    ledger.post_lines(&lines.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    ledger.checkpoint().unwrap();
    assert!(has_fence(&ledger), "kept by checkpoints");
    // A ledger of this format without it (marked by a build before the record existed) gets
    // it at its next open.
    ledger.store_for_tests().tamper_state(fence, None).unwrap();
    assert!(!has_fence(&ledger));
    drop(ledger);
    let ledger = open(&path);
    assert!(has_fence(&ledger), "written at the open");
    ledger
        .store_for_tests()
        .tamper_meta(junbao_engine::META_STATE_FORMAT, Some(&6u32.to_be_bytes()))
        .unwrap();
    ledger.close_without_checkpoint();
    let e = Ledger::open(&path, Arc::new(|| NOW_US)).unwrap_err();
    assert!(!e.is_integrity(), "{e}");
    assert!(e.to_string().contains("state format is 6, newer than this junbao's (5)"), "{e}");
    let e = Ledger::open_for_audit(&path, Arc::new(|| NOW_US)).unwrap_err();
    assert!(e.to_string().contains("state format is 6"), "{e}");
}

/// A ledger whose state records are in state format 2 (the layout before the member-year
/// pages: one record per premium month, one per member account and year) opens with the same
/// state: its records are read, the entries after its checkpoint replayed, and the state is
/// written in this format in one write that keeps the checkpoint. It then verifies, posts and
/// reopens as any other.
#[test]
fn a_state_format2_ledger_opens_and_is_converted_to_member_year_pages() {
    use junbao_ledger::entry::encode;
    use junbao_ledger::state::{period_key, year_key};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = ledger_of_premiums(&path, 5, Ev::Reverse { member: 1, month: 2 }, 3);
    let checkpoint = ledger.checkpoint().unwrap().seq;
    let at_checkpoint = ledger.with_state(|s, _| s.clone());
    // Entries after the checkpoint: replayed at the next open.
    let tail: Vec<String> =
        (0..MEMBERS).map(|m| Ev::Premium { member: m, month: 7 }.line()).collect();
    ledger.post_lines(&tail.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();

    // The checkpoint's state records rewritten as state format 2 wrote them.
    let store = ledger.store_for_tests();
    let state_records = |store: &junbao_storage::Store| store.records_for_tests("state").unwrap();
    for (k, _) in state_records(store).iter().filter(|(k, _)| k.starts_with(b"q/")) {
        store.tamper_state(k, None).unwrap();
    }
    let mut old = 0;
    for (m, line, period, money) in at_checkpoint.periods() {
        store.tamper_state(&period_key(&(m.clone(), line, period)), Some(&encode(money))).unwrap();
        old += 1;
    }
    for (m, book) in &at_checkpoint.books {
        for y in book.years() {
            store
                .tamper_state(&year_key(&(y.slot.account(m), y.year)), Some(&encode(&y.sum)))
                .unwrap();
            old += 1;
        }
    }
    assert!(old > 20, "{old} records");
    // Formats 2 and 3 stored each member account's balance apart.
    let member_balances = store_member_balances(&at_checkpoint);
    for (k, fen) in &member_balances {
        store.tamper_balance(k, *fen).unwrap();
    }
    assert!(member_balances.len() >= MEMBERS as usize);
    to_format4_layout(store);
    store.tamper_meta(junbao_engine::META_STATE_FORMAT, Some(&2u32.to_be_bytes())).unwrap();
    ledger.close_without_checkpoint();

    // `junbao verify` opens the store alone, but a ledger in an older state format as any
    // other (the open converts it): its stored state would not load otherwise.
    let to_verify = Ledger::open_for_audit(&path, Arc::new(|| NOW_US)).unwrap();
    assert!(matches!(to_verify, junbao_engine::ForAudit::Ledger(_)), "{to_verify:?}");
    to_verify.verify(&|_| {}).unwrap();
    drop(to_verify);

    let ledger = open(&path);
    assert_eq!(ledger.checkpoint_seq(), checkpoint, "the conversion keeps the checkpoint");
    let mut accepted = BTreeMap::new();
    for (seq, entry) in journal(&ledger).iter().enumerate() {
        let id = entry.event.id.as_str();
        if !id.starts_with("init:") {
            accepted.insert(id.to_string(), seq as u64 + 1);
        }
    }
    check(&ledger, &accepted);
    let store = ledger.store_for_tests();
    let records = state_records(store);
    assert!(records.iter().any(|(k, _)| k.starts_with(b"q/")));
    assert!(!records.iter().any(|(k, _)| k.starts_with(b"p/") || k.starts_with(b"y/")));
    assert_eq!(stored_member_accounts(store), Vec::<String>::new());
    let format = store.meta(junbao_engine::META_STATE_FORMAT).unwrap();
    assert_eq!(format, Some(junbao_engine::STATE_FORMAT.to_be_bytes().to_vec()));
    verify_by_digest(&ledger);
    drop(ledger);
    let ledger = open(&path);
    check(&ledger, &accepted);
    verify_by_digest(&ledger);
    drop(ledger);
    // Converted: now the store alone is opened to be verified.
    let to_verify = Ledger::open_for_audit(&path, Arc::new(|| NOW_US)).unwrap();
    assert!(matches!(to_verify, junbao_engine::ForAudit::Store { .. }), "{to_verify:?}");
    let report = to_verify.verify(&|_| {}).unwrap();
    assert_eq!(report.entries, to_verify.head().seq);
}

/// `verify`, `proof`, `digest` and `export journal` open the store alone
/// (`Ledger::open_for_audit`): with entries after the checkpoint that no open has replayed,
/// they answer as the whole ledger does.
#[test]
fn the_store_alone_answers_proofs_digests_and_verify_as_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = enrolled(&path);
    let checkpoint = ledger.checkpoint().unwrap().seq;
    let tail: Vec<String> =
        (0..MEMBERS).map(|m| Ev::Premium { member: m, month: 3 }.line()).collect();
    ledger.post_lines(&tail.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    let head = ledger.head();
    assert!(head.seq > checkpoint);
    ledger.close_without_checkpoint();

    let key_path = dir.path().join("k");
    junbao_engine::create_signing_key(&key_path).unwrap();
    let key = junbao_engine::load_signing_key(&key_path).unwrap();
    let audit = Ledger::open_for_audit(&path, Arc::new(|| NOW_US)).unwrap();
    assert!(matches!(audit, junbao_engine::ForAudit::Store { .. }), "{audit:?}");
    assert_eq!(audit.head(), head);
    let inclusion = audit.inclusion_proof(head.seq, None).unwrap();
    let consistency = audit.consistency_proof(checkpoint, head.seq).unwrap();
    let digest = audit.digest_anchoring(&key, None).unwrap();
    assert_eq!(audit.verify(&|_| {}).unwrap().entries, head.seq);
    let exported: Vec<u64> = audit.entries_from(1).map(|e| e.unwrap().0.seq).collect();
    assert_eq!(exported, (1..=head.seq).collect::<Vec<_>>());
    drop(audit);

    let ledger = open(&path);
    assert_eq!(ledger.checkpoint_seq(), checkpoint, "the store-only open replayed nothing");
    assert_eq!(
        serde_json::to_value(ledger.inclusion_proof(head.seq, None).unwrap()).unwrap(),
        serde_json::to_value(inclusion).unwrap()
    );
    assert_eq!(
        serde_json::to_value(ledger.consistency_proof(checkpoint, head.seq).unwrap()).unwrap(),
        serde_json::to_value(consistency).unwrap()
    );
    // The digest was kept in the ledger, over the same head and root.
    let kept = ledger.digests().unwrap();
    assert_eq!(kept.last().unwrap().to_json(), digest.to_json());
    assert_eq!(digest.tree_size, head.seq);
    assert_eq!(digest.root, ledger.root(head.seq).unwrap());
    verify_by_digest(&ledger);
}

/// A ledger in state format 4 (the fund's own balances in the `balances` column family, the
/// checkpoint and the state's counts in metadata records) opens with the same state and is
/// converted to this format in one write that keeps the checkpoint: the balances become
/// `state` records, the `balances` column family is emptied, and the state carries its
/// checkpoint record. It then verifies, posts, checkpoints (every later checkpoint is ingested
/// whole) and reopens as any other.
#[test]
fn a_state_format4_ledger_is_converted_to_fund_balances_among_the_state_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = ledger_of_premiums(&path, 3, Ev::Reverse { member: 1, month: 1 }, 4);
    let checkpoint = ledger.checkpoint().unwrap().seq;
    ledger.post_lines(&[&Ev::Premium { member: 0, month: 8 }.line()]).unwrap();
    let state = ledger.with_state(|s, _| s.clone());
    // Written back as format 4 had it.
    let store = ledger.store_for_tests();
    let key = junbao_ledger::state::CHECKPOINT_KEY;
    let record = store.state_record(key).unwrap().unwrap();
    assert_eq!(record[..8], checkpoint.to_be_bytes());
    let fund_balances = to_format4_layout(store);
    assert!(!fund_balances.is_empty());
    store.tamper_meta(junbao_engine::META_STATE_FORMAT, Some(&4u32.to_be_bytes())).unwrap();
    ledger.close_without_checkpoint();

    let ledger = open(&path);
    ledger.with_state(|s, _| assert_eq!(s, &state));
    let store = ledger.store_for_tests();
    assert_eq!(store.records_for_tests("balances").unwrap(), vec![]);
    let converted = store.records_for_tests("state").unwrap();
    for (k, v) in &fund_balances {
        assert!(converted.iter().any(|(ck, cv)| ck == k && cv == v), "{k:?}");
    }
    assert_eq!(store.state_record(key).unwrap(), Some(record));
    let format = store.meta(junbao_engine::META_STATE_FORMAT).unwrap();
    assert_eq!(format, Some(junbao_engine::STATE_FORMAT.to_be_bytes().to_vec()));
    verify_by_digest(&ledger);
    ledger.post_lines(&[&Ev::Premium { member: 1, month: 8 }.line()]).unwrap();
    let head = ledger.checkpoint().unwrap().seq;
    let record = ledger.store_for_tests().state_record(key).unwrap().unwrap();
    assert_eq!(record[..8], head.to_be_bytes());
    let state = ledger.with_state(|s, _| s.clone());
    drop(ledger);
    let ledger = open(&path);
    ledger.with_state(|s, _| assert_eq!(s, &state));
    verify_by_digest(&ledger);
}
