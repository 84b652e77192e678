//! Integrity through the storage API: tampering is found by verify, failed writes poison.

mod common;

use common::*;
use junbao_engine::{Ledger, PostError, VerifyError, system_clock};
use junbao_storage::StoredEntry;

fn small_ledger(dir: &std::path::Path) -> Ledger {
    let ledger = Ledger::init(dir, system_clock()).unwrap();
    let mut lines = vec![];
    for m in 0..5 {
        lines.push(enroll(
            &format!("e{m}"),
            &format!("M{m}"),
            "sergeant",
            "U1",
            "2021-05-01",
            "6000.00",
        ));
        lines.push(contribution(&format!("c{m}"), &format!("M{m}"), "2024-01", "60.00", "U1"));
    }
    lines.push(r#"{"id":"a1","type":"appropriation","fund":"casualty","amount":"1000.00"}"#.into());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    ledger.post_lines(&refs).unwrap();
    // The derived records (index, state, balances) on disk, as a checkpoint writes them, so
    // that the tests below can tamper with them.
    ledger.checkpoint().unwrap();
    ledger
}

/// `junbao --data DIR verify`, run as a separate process.
fn cli_verify(data: &std::path::Path) -> std::process::Output {
    std::process::Command::new(bin())
        .args(["--data", data.to_str().unwrap(), "verify"])
        .output()
        .unwrap()
}

#[test]
fn verify_finds_a_changed_byte_in_any_stored_entry() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    verify_by_digest(&ledger);
    let head = ledger.head().seq;
    for seq in 1..=head {
        let original = ledger.store_for_tests().entry(seq).unwrap().unwrap();
        // Change a byte at a different position in each entry: first, middle and last bytes.
        let positions = [0, original.bytes.len() / 2, original.bytes.len() - 1];
        let pos = positions[(seq % 3) as usize];
        let mut bytes = original.bytes.clone();
        bytes[pos] ^= 0x01;
        ledger.store_for_tests().tamper_entry(&StoredEntry { bytes, ..original.clone() }).unwrap();
        match ledger.verify(&|_| {}) {
            Err(VerifyError::Entry { seq: found, .. }) => assert_eq!(found, seq),
            other => panic!("tampered entry {seq} byte {pos} not found: {other:?}"),
        }
        ledger.store_for_tests().tamper_entry(&original).unwrap();
    }
    verify_by_digest(&ledger);
}

#[test]
fn verify_finds_a_deleted_entry_and_a_changed_balance() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    let e = ledger.store_for_tests().entry(30).unwrap().unwrap();
    ledger.store_for_tests().tamper_delete_entry(30).unwrap();
    let found = ledger.verify(&|_| {});
    assert!(matches!(found, Err(VerifyError::Entry { seq: 30, .. })), "{found:?}");
    ledger.store_for_tests().tamper_insert_entry(&e).unwrap();
    verify_by_digest(&ledger);
    drop(ledger);

    // A materialised balance edited behind the ledger's back is found on the next verify.
    let ledger = Ledger::open(dir.path(), system_clock()).unwrap();
    let account = junbao_ledger::Account::pool(junbao_ledger::Fund::Casualty);
    let (key, value) = junbao_ledger::state::fund_balance_write(&account, junbao_ledger::Fen(999));
    ledger.store_for_tests().tamper_state(&key, value.as_deref()).unwrap();
    drop(ledger);
    let ledger = Ledger::open(dir.path(), system_clock()).unwrap();
    let err = ledger.verify(&|_| {}).unwrap_err();
    assert!(err.to_string().contains("casualty:pool"), "{err}");
}

#[test]
fn opening_refuses_a_head_that_does_not_name_the_last_entry() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    let mut head = ledger.head();
    head.seq -= 1;
    ledger.store_for_tests().tamper_head(head).unwrap();
    drop(ledger);
    let err = Ledger::open(dir.path(), system_clock()).unwrap_err();
    assert!(err.to_string().contains("the head names entry"), "{err}");
}

#[test]
fn the_handle_refuses_writes_after_an_injected_write_failure() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    let head = ledger.head();
    ledger.store_for_tests().inject_write_failure();
    let line = r#"{"id":"a2","type":"appropriation","fund":"casualty","amount":"5.00"}"#;
    assert!(matches!(ledger.post_lines(&[line]), Err(PostError::Write(_))));
    let line3 = r#"{"id":"a3","type":"appropriation","fund":"casualty","amount":"5.00"}"#;
    match ledger.post_lines(&[line3]) {
        Err(PostError::Write(e)) => assert!(e.to_string().contains("reopen"), "{e}"),
        other => panic!("a poisoned handle accepted a write: {other:?}"),
    }
    assert_eq!(ledger.head(), head);
    drop(ledger);
    // Reopened, the ledger is as it was before the failure and takes writes again.
    let ledger = Ledger::open(dir.path(), system_clock()).unwrap();
    assert_eq!(ledger.head(), head);
    verify_by_digest(&ledger);
    let s = ledger.post_lines(&[line]).unwrap();
    assert_eq!(s.first_seq, Some(head.seq + 1));
}

/// The state column family is checked too, not only the balances: an edited member record or a
/// deleted premium-period record is found by `verify` (exit 3 from the command line).
#[test]
fn verify_finds_an_edited_member_record_and_a_deleted_period_record() {
    use junbao_ledger::ids::MemberId;
    use junbao_ledger::state::member_key;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let ledger = small_ledger(&data);
    // A member whose record differs from the others' (another category, pay and date).
    ledger.post_lines(&[&enroll("e9", "M9", "officer", "U1", "2020-03-01", "9100.00")]).unwrap();
    ledger.checkpoint().unwrap();
    verify_by_digest(&ledger);
    let state = ledger.store_for_tests().state().unwrap();
    let record = |key: &[u8]| state.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap();
    let m0 = member_key(&MemberId::parse("M0").unwrap());
    let m1 = member_key(&MemberId::parse("M1").unwrap());
    let (m0_record, m1_record) = (record(&m0), record(&m1));
    // M9's record under M1's key: well-formed bytes, wrong content (M1 is not who M9 is).
    let m9_record = record(&member_key(&MemberId::parse("M9").unwrap()));
    assert_eq!(m0_record, m1_record, "M0 and M1 were enrolled alike");
    assert_ne!(m9_record, m1_record);
    let edited_is_named = |ledger: &Ledger| match ledger.verify(&|_| {}) {
        Err(e @ VerifyError::Ledger(_)) => {
            assert!(e.is_integrity());
            let msg = e.to_string();
            assert!(msg.contains("member records") && msg.contains("M1"), "{msg}");
        }
        other => panic!("an edited member record was not found: {other:?}"),
    };
    ledger.store_for_tests().tamper_state(&m1, Some(&m9_record)).unwrap();
    edited_is_named(&ledger);
    // With entries after the checkpoint, the replayed state as of the checkpoint is kept as a
    // digest only: the record is still named (the snapshot verified again, keeping the state).
    ledger.post_lines(&[&contribution("c9", "M9", "2024-01", "91.00", "U1")]).unwrap();
    edited_is_named(&ledger);
    ledger.store_for_tests().tamper_state(&m1, Some(&m1_record)).unwrap();
    verify_by_digest(&ledger);

    // A member-year page (a member's premium months and yearly sums of one year).
    let period = state.iter().find(|(k, _)| k.starts_with(b"q/")).map(|(k, _)| k.clone()).unwrap();
    ledger.store_for_tests().tamper_state(&period, None).unwrap();
    match ledger.verify(&|_| {}) {
        Err(VerifyError::Ledger(msg)) => assert!(msg.contains("premium-period records"), "{msg}"),
        other => panic!("a deleted period record was not found: {other:?}"),
    }
    drop(ledger);
    let out = cli_verify(&data);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

/// `verify` reads a snapshot instead of holding the writer: posts go on while it runs, and
/// every verify sees a consistent point in time (a batch wholly or not at all).
#[test]
fn verify_runs_while_posting_goes_on_and_always_sees_a_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = std::sync::Arc::new(small_ledger(dir.path()));
    let writer = {
        let ledger = ledger.clone();
        std::thread::spawn(move || {
            for b in 0..40 {
                // Every fifth batch is a month of premiums of five members, the others one
                // appropriation each.
                let lines: Vec<String> = if b % 5 == 0 {
                    let period = format!("2024-{:02}", 2 + b / 5);
                    (0..5)
                        .map(|m| {
                            contribution(
                                &format!("w{b}-{m}"),
                                &format!("M{m}"),
                                &period,
                                "60.00",
                                "U1",
                            )
                        })
                        .collect()
                } else {
                    vec![format!(
                        r#"{{"id":"a-{b}","type":"appropriation","fund":"casualty","amount":"1.00"}}"#
                    )]
                };
                let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                ledger.post_lines(&refs).unwrap();
            }
        })
    };
    let mut verified = vec![];
    while !writer.is_finished() {
        verified.push(ledger.verify(&|_| {}).unwrap().entries);
    }
    writer.join().unwrap();
    let last = verify_by_digest(&ledger);
    assert_eq!(last.entries, ledger.head().seq);
    assert!(verified.windows(2).all(|w| w[0] <= w[1]), "{verified:?}");
}

/// A ledger written before issue 11 holds member records in the old, shorter encoding: opening
/// it rebuilds the state from the journal and rewrites the records, and the ledger verifies.
#[test]
fn a_state_record_in_an_older_encoding_is_rebuilt_from_the_journal_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = small_ledger(&path);
    let before = ledger.with_state(|s, _| s.members.clone());
    let id = junbao_ledger::ids::MemberId::parse("M0").unwrap();
    // A record that does not decode as today's member record (as an old one does not), in a
    // ledger marked with the state format before this one (as a ledger of that time is).
    ledger
        .store_for_tests()
        .append(junbao_storage::Append {
            entries: Default::default(),
            ids: Vec::new(),
            balances: Vec::new(),
            state: vec![(junbao_ledger::state::member_key(&id), Some(vec![0xFF; 3]))],
            tree: Vec::new(),
            meta: vec![(junbao_engine::META_STATE_FORMAT.to_vec(), 1u32.to_be_bytes().to_vec())],
            head: ledger.store_for_tests().head(),
            clear_state: false,
        })
        .unwrap();
    drop(ledger);
    let reopened = Ledger::open(&path, system_clock()).unwrap();
    assert_eq!(reopened.with_state(|s, _| s.members.clone()), before);
    verify_by_digest(&reopened);
    // Rewritten: the stored records load as they are now.
    let store = reopened.store_for_tests();
    let stored =
        junbao_ledger::LedgerState::load(store.state().unwrap(), store.balances().unwrap());
    assert_eq!(stored.unwrap().members, before);
}

/// The same, in a ledger that crashed after entries it had not checkpointed: the state is
/// rebuilt up to the checkpoint and the entries after it are replayed, so that their ids are
/// still known (a post of one again is a replay, not a second entry) and the ledger verifies.
#[test]
fn a_state_in_an_older_encoding_after_a_crash_keeps_the_tail_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = small_ledger(&path);
    let tail = contribution("c-tail", "M1", "2024-02", "60.00", "U1");
    let posted = ledger.post_lines(&[tail.as_str()]).unwrap();
    let head = ledger.head();
    assert!(ledger.checkpoint_seq() < head.seq, "the tail is not checkpointed");
    let id = junbao_ledger::ids::MemberId::parse("M0").unwrap();
    let store = ledger.store_for_tests();
    store.tamper_state(&junbao_ledger::state::member_key(&id), Some(&[0xFF; 3])).unwrap();
    store.tamper_meta(junbao_engine::META_STATE_FORMAT, Some(&1u32.to_be_bytes())).unwrap();
    ledger.close_without_checkpoint();
    let reopened = Ledger::open(&path, system_clock()).unwrap();
    assert_eq!(reopened.head(), head);
    let again = reopened.post_lines(&[tail.as_str()]).unwrap();
    assert_eq!((again.accepted, again.replayed), (0, 1), "{again:?}");
    assert_eq!(again.seqs, posted.seqs);
    verify_by_digest(&reopened);
    drop(reopened);
    let third = Ledger::open(&path, system_clock()).unwrap();
    assert_eq!(third.post_lines(&[tail.as_str()]).unwrap().replayed, 1);
    verify_by_digest(&third);
}

/// An entry after the checkpoint whose stored bytes do not decode stops the open with an
/// integrity error naming it, whether it is the first of the tail or a later one: it is never
/// left out of the replay (the state would then lack it and every entry after it).
#[test]
fn a_tail_entry_that_does_not_decode_stops_the_open() {
    for first_of_tail in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let ledger = small_ledger(&path);
        let checkpoint = ledger.checkpoint_seq();
        let tail = [
            contribution("c-t1", "M1", "2024-02", "60.00", "U1"),
            contribution("c-t2", "M2", "2024-02", "60.00", "U1"),
        ];
        ledger.post_lines(&[tail[0].as_str(), tail[1].as_str()]).unwrap();
        let seq = if first_of_tail { checkpoint + 1 } else { checkpoint + 2 };
        let original = ledger.store_for_tests().entry(seq).unwrap().unwrap();
        let mut bytes = original.bytes.clone();
        bytes.truncate(bytes.len() / 2);
        ledger.store_for_tests().tamper_entry(&StoredEntry { bytes, ..original }).unwrap();
        ledger.close_without_checkpoint();
        match Ledger::open(&path, system_clock()) {
            Err(e @ junbao_engine::LedgerOpenError::Journal { .. }) => {
                assert!(e.to_string().contains(&format!("entry {seq}")), "{e}");
            }
            Err(e) => panic!("entry {seq}: another error: {e}"),
            Ok(_) => panic!("entry {seq} does not decode, and the ledger opened"),
        }
    }
}

/// The checkpoint's count of members, books and balances only sizes the maps an open and a
/// verify fill: an absurd stored count (an edited record) is not an allocation of that size
/// (a crash before any check); the open and the verify go on as with the true counts.
#[test]
fn an_absurd_stored_state_count_is_capped_not_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    let head = ledger.head();
    // The state's checkpoint record: the entry (8 bytes), then the counts.
    let key = junbao_ledger::state::CHECKPOINT_KEY;
    let record = ledger.store_for_tests().state_record(key).unwrap().unwrap();
    let mut absurd = record[..8].to_vec();
    absurd.extend([u64::MAX / 3; 3].iter().flat_map(|n| n.to_be_bytes()));
    ledger.store_for_tests().tamper_state(key, Some(&absurd)).unwrap();
    drop(ledger);
    let ledger = Ledger::open(dir.path(), system_clock()).unwrap();
    assert_eq!(ledger.head(), head);
    verify_by_digest(&ledger);
    ledger.post_lines(&[REVERSE_C0]).unwrap();
    // With the checkpoint record edited past the head as well, the open refuses the ledger as
    // corrupt before it sizes anything from either record.
    // (Reopened first: the close after that post writes its own checkpoint record; a close
    // that posted nothing writes none.)
    drop(ledger);
    let ledger = Ledger::open(dir.path(), system_clock()).unwrap();
    let mut past = ledger.store_for_tests().state_record(key).unwrap().unwrap();
    past[..8].copy_from_slice(&u64::MAX.to_be_bytes());
    ledger.store_for_tests().tamper_state(key, Some(&past)).unwrap();
    drop(ledger);
    match Ledger::open(dir.path(), system_clock()) {
        Err(e) => assert!(e.to_string().contains("the checkpoint names entry"), "{e}"),
        Ok(_) => panic!("a checkpoint past the head must be refused"),
    }
    // Without its checkpoint record, the stored state would be replayed onto from the first
    // entry (every entry counted twice): the open refuses it as corrupt.
    let store = junbao_storage::Store::open(dir.path()).unwrap();
    store.tamper_state(key, None).unwrap();
    drop(store);
    match Ledger::open(dir.path(), system_clock()) {
        Err(e) => {
            assert!(e.is_integrity() && e.to_string().contains("no checkpoint record"), "{e}")
        }
        Ok(_) => panic!("a state without its checkpoint record must be refused"),
    }
}

/// The sequence number of the entry recorded for event `id`.
fn seq_of(ledger: &Ledger, id: &str) -> u64 {
    let entries = ledger.journal(1, 1_000).unwrap();
    entries.iter().find(|(_, e)| e.event.id.as_str() == id).map(|(s, _)| s.seq).unwrap()
}

const REVERSE_C0: &str = r#"{"id":"r-c0","type":"reversal","of":"c0","reason":"wrong month"}"#;

/// A reversal reads the entry it reverses. If that entry's stored bytes do not decode, the
/// reversal is not "no such entry" (a refusal, exit 2): it is an integrity failure, exit 3,
/// nothing stored; in process the post fails as a corrupt read and the ledger notes it.
#[test]
fn a_reversal_of_an_entry_whose_stored_bytes_are_corrupt_is_an_integrity_failure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let ledger = small_ledger(&data);
    let seq = seq_of(&ledger, "c0");
    let original = ledger.store_for_tests().entry(seq).unwrap().unwrap();
    let mut bytes = original.bytes.clone();
    bytes.truncate(bytes.len() / 2);
    ledger.store_for_tests().tamper_entry(&StoredEntry { bytes, ..original.clone() }).unwrap();
    let head = ledger.head();
    match ledger.post_lines(&[REVERSE_C0]) {
        Err(e @ PostError::Read(junbao_storage::ReadError::Corrupt(_))) => {
            assert_eq!(e.kind(), junbao_engine::ErrorKind::Integrity);
            assert!(e.to_string().contains(&format!("entry {seq}")), "{e}");
        }
        other => panic!("a corrupt target must fail as integrity: {other:?}"),
    }
    assert_eq!(ledger.head(), head, "nothing stored");
    assert!(ledger.integrity_failure().is_some(), "the ledger notes it for /health");
    drop(ledger);

    let out = std::process::Command::new(bin())
        .args(["--data", data.to_str().unwrap(), "post"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(REVERSE_C0.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // Restored, the same reversal is accepted.
    let ledger = Ledger::open(&data, system_clock()).unwrap();
    ledger.store_for_tests().tamper_entry(&original).unwrap();
    ledger.post_lines(&[REVERSE_C0]).unwrap();
}

/// The index record of an event id that names another event's entry (an edited record) is an
/// integrity failure when a reversal looks the id up: the reversal never takes the other entry
/// for its target.
#[test]
fn a_reversal_through_an_index_record_naming_another_event_is_an_integrity_failure() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    let store = ledger.store_for_tests();
    let c0 = store.ids_get(&[b"c0"]).unwrap()[0].clone().unwrap();
    let c1 = store.ids_get(&[b"c1"]).unwrap()[0].clone().unwrap();
    store.tamper_ids(b"c0", Some(&c1)).unwrap();
    let head = ledger.head();
    match ledger.post_lines(&[REVERSE_C0]) {
        Err(e @ PostError::Read(junbao_storage::ReadError::Corrupt(_))) => {
            assert_eq!(e.kind(), junbao_engine::ErrorKind::Integrity);
            let seq = seq_of(&ledger, "c1");
            assert!(e.to_string().contains(&format!("names entry {seq}, of another event")), "{e}");
        }
        other => panic!("a record naming another event must fail as integrity: {other:?}"),
    }
    assert_eq!(ledger.head(), head, "nothing stored");
    // Restored, the same reversal is accepted, and reverses c0.
    ledger.store_for_tests().tamper_ids(b"c0", Some(&c0)).unwrap();
    ledger.post_lines(&[REVERSE_C0]).unwrap();
}

/// A disk read that fails while a reversal reads its target is I/O (exit 1, HTTP 503): not a
/// refusal, not an integrity failure; nothing is poisoned and the retry succeeds.
#[test]
fn a_failed_read_of_a_reversal_target_is_io_and_the_retry_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    let head = ledger.head();
    ledger.store_for_tests().inject_read_failure();
    match ledger.post_lines(&[REVERSE_C0]) {
        Err(e @ PostError::Read(junbao_storage::ReadError::Engine(_))) => {
            assert_eq!(e.kind(), junbao_engine::ErrorKind::Io);
        }
        other => panic!("a failed read must fail as I/O: {other:?}"),
    }
    assert_eq!(ledger.head(), head);
    assert!(ledger.integrity_failure().is_none());
    assert!(!ledger.is_poisoned());
    let s = ledger.post_lines(&[REVERSE_C0]).unwrap();
    assert_eq!(s.accepted, 1);
}

/// A transfer export whose write fails is I/O (exit 1, HTTP 503), not the clerk's input.
#[test]
fn a_failed_write_in_a_transfer_export_is_io() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    let discharge =
        r#"{"id":"d0","type":"discharge","member":"M0","on":"2024-02-01","route":"employee"}"#;
    ledger.post_lines(&[discharge]).unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    ledger.store_for_tests().inject_write_failure();
    let err = ledger
        .transfer_export("M0", junbao_ledger::Fund::Pension, "A1", &key)
        .expect_err("the write failed");
    assert_eq!(err.kind(), junbao_engine::ErrorKind::Io, "{err}");
    assert!(matches!(err, junbao_engine::AuditError::Write(_)), "{err:?}");
}

/// A stored key shorter than any this ledger writes is an integrity failure, never a slice out
/// of range: a state record of only its tag byte (at open), a member index record of only its
/// prefix (in a statement).
#[test]
fn short_stored_keys_are_integrity_failures_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    let member = junbao_ledger::ids::MemberId::parse("M1").unwrap();
    // The member index: 0x00, the id, 0x00, then 8 bytes of sequence number.
    let mut short = vec![0u8];
    short.extend_from_slice(b"M1");
    short.extend_from_slice(&[0, 1, 2]);
    ledger.store_for_tests().tamper_ids(&short, Some(b"")).unwrap();
    let err = ledger.statement(member.as_str(), None, None, false).unwrap_err();
    assert_eq!(err.kind(), junbao_engine::ErrorKind::Integrity, "{err}");
    ledger.store_for_tests().tamper_ids(&short, None).unwrap();
    ledger.statement(member.as_str(), None, None, false).unwrap();

    let tag = junbao_ledger::state::member_key(&member)[0];
    ledger.store_for_tests().tamper_state(&[tag], Some(b"x")).unwrap();
    drop(ledger);
    let err = Ledger::open(dir.path(), system_clock()).unwrap_err();
    assert!(err.is_integrity(), "{err}");
}

/// `verify` recomputes the idempotency records (event id → sequence and fingerprint) and the
/// member index from the journal: a deleted or altered record of either, or one the journal
/// does not imply, is found (exit 3 from the command line).
#[test]
fn verify_finds_a_changed_idempotency_or_member_index_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let ledger = small_ledger(&data);
    verify_by_digest(&ledger);
    let seq = seq_of(&ledger, "c1");
    let id_key = b"c1".as_slice();
    let id_value = ledger.store_for_tests().ids_get(&[id_key]).unwrap()[0].clone().unwrap();
    let mut index_key = vec![0u8];
    index_key.extend_from_slice(b"M1\0");
    index_key.extend_from_slice(&seq.to_be_bytes());
    let store = ledger.store_for_tests();
    let mut altered = id_value.clone();
    altered[0] ^= 1; // another sequence number
    // (key, what to write there (None: delete), what verify says)
    type Case<'a> = (&'a [u8], Option<&'a [u8]>, &'a str);
    let cases: [Case<'_>; 5] = [
        (id_key, None, "idempotency record of \"c1\" is missing"),
        (id_key, Some(&altered), "idempotency record of \"c1\" does not match"),
        (&index_key, None, "member index record of M1 is missing"),
        (&index_key, Some(b"x"), "member index record of M1 does not match"),
        (b"never-posted", Some(&id_value), "the journal implies"),
    ];
    for (key, value, expected) in cases {
        let original = store.ids_get(&[key]).unwrap()[0].clone();
        store.tamper_ids(key, value).unwrap();
        let err = ledger.verify(&|_| {}).expect_err(expected);
        assert!(err.is_integrity() && err.to_string().contains(expected), "{expected}: {err}");
        store.tamper_ids(key, original.as_deref()).unwrap();
        verify_by_digest(&ledger);
    }
    store.tamper_ids(&index_key, None).unwrap();
    drop(ledger);
    let out = cli_verify(&data);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

/// `verify` finds the entry a reversal names through the stored idempotency index up to the
/// checkpoint and through the tail's own ids after it: reversals of entries on either side
/// replay, whether the reversal itself is before or after the checkpoint. An index record of a
/// reversed id that is missing or names another entry is reported as the index failure it is,
/// not as a reversal that could not have been recorded.
#[test]
fn verify_finds_reversal_targets_through_the_index_and_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    // Before the checkpoint: c0 reversed, its target found through the stored index.
    ledger.post_lines(&[REVERSE_C0]).unwrap();
    ledger.checkpoint().unwrap();
    // After it: a reversal of an entry before the checkpoint (c1), an entry of the tail and its
    // reversal (c5), with nothing stored of them but the entries.
    let tail = [
        r#"{"id":"r-c1","type":"reversal","of":"c1","reason":"wrong month"}"#.to_string(),
        contribution("c5", "M2", "2024-02", "60.00", "U1"),
        r#"{"id":"r-c5","type":"reversal","of":"c5","reason":"wrong month"}"#.to_string(),
    ];
    for line in &tail {
        ledger.post_lines(&[line.as_str()]).unwrap();
    }
    let head = ledger.head().seq;
    assert!(stored_checkpoint(&ledger) < seq_of(&ledger, "r-c1"), "the tail is not stored");
    verify_by_digest(&ledger);
    // Every reversal took its target's effects off: M0's, M1's and M2's second month are gone.
    let balance = |m: &str| {
        ledger.with_state(|s, _| {
            s.balances()
                .filter(|(a, _)| a.member_id().is_some_and(|id| id.as_str() == m))
                .map(|(_, f)| f.0)
                .sum::<i64>()
        })
    };
    assert_eq!((balance("M0"), balance("M1")), (0, 0));
    assert_eq!(balance("M2"), balance("M3"));

    let store = ledger.store_for_tests();
    for id in [b"c0".as_slice(), b"c1"] {
        let original = store.ids_get(&[id]).unwrap()[0].clone();
        let other = store.ids_get(&[b"c3"]).unwrap()[0].clone();
        let name = String::from_utf8_lossy(id).into_owned();
        for (value, expected) in [(None, "is missing"), (other.as_deref(), "does not match")] {
            store.tamper_ids(id, value).unwrap();
            let err = ledger.verify(&|_| {}).expect_err(expected);
            let said = err.to_string();
            assert!(err.is_integrity(), "{said}");
            assert!(
                said.contains(&format!("idempotency record of \"{name}\" {expected}")),
                "{said}"
            );
            assert!(!said.contains("could not have been recorded"), "{said}");
        }
        store.tamper_ids(id, original.as_deref()).unwrap();
    }
    verify_by_digest(&ledger);
    assert_eq!(ledger.head().seq, head);
}

/// A new mirror has copied nothing: its state was never checkpointed and holds only the
/// format's record, and the empty replayed state as of checkpoint 0 makes the same records, so
/// `verify` compares them by digest (no standards record for no standard).
#[test]
fn verify_compares_an_empty_mirrors_state_by_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = Ledger::create_mirror(&dir.path().join("m"), system_clock()).unwrap();
    assert_eq!((mirror.checkpoint_seq(), mirror.head().seq), (0, 0));
    assert_eq!(verify_by_digest(&mirror).entries, 0);
}

/// A deposit interest credited and then reversed leaves fund administration as if none had
/// been recorded: the checkpoint stores no administration record then (the state loads the
/// same), as a state written whole has none, so `verify` still compares the stored state by its
/// digest.
#[test]
fn a_reversed_deposit_interest_leaves_no_administration_record() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    let key = junbao_ledger::admin::state_key();
    let store = ledger.store_for_tests();
    ledger
        .post_lines(&[
            r#"{"id":"di-1","type":"deposit_interest","fund":"medical","amount":"3.21","period":"2024-12"}"#,
        ])
        .unwrap();
    ledger.checkpoint().unwrap();
    assert!(store.state_record(&key).unwrap().is_some());
    ledger
        .post_lines(&[r#"{"id":"rev-di-1","type":"reversal","of":"di-1","reason":"bank error"}"#])
        .unwrap();
    ledger.checkpoint().unwrap();
    assert_eq!(store.state_record(&key).unwrap(), None);
    verify_by_digest(&ledger);
    drop(ledger);
    let ledger = Ledger::open(dir.path(), system_clock()).unwrap();
    ledger.with_state(|s, _| assert_eq!(s.admin, junbao_ledger::admin::AdminState::default()));
}

/// The demo ledger records every kind of entry, so its stored state holds every kind of record
/// (members through their careers, member-year pages, back-paid months, interest and reversal
/// marks, standards, the administration record, the fund's balances): `verify` finds them
/// byte for byte those the replay of its journal makes, and compares them by their digest
/// without loading the stored state.
#[test]
fn verify_compares_the_demo_ledgers_stored_state_by_its_digest() {
    let t = TestLedger { dir: tempfile::tempdir().unwrap() };
    let out = t.run(&["demo", "--members", "40"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The demo posts no back payment: one, for its back-paid months.
    let line = include_str!("fixtures/backpay.jsonl").lines().next().unwrap();
    let case: serde_json::Value = serde_json::from_str(line).unwrap();
    let file = write_file(t.dir.path(), "bp.json", &case["event"].to_string());
    let out = t.run(&["backpay", "post", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ledger = Ledger::open(&t.data(), system_clock()).unwrap();
    let kinds = ledger.with_state(|s, _| {
        [
            s.members.len(),
            s.books.len(),
            s.backpaid.len(),
            s.interest_credited.len(),
            s.reversed.len(),
            usize::from(s.admin != Default::default()),
        ]
    });
    assert!(kinds.iter().all(|n| *n > 0), "every kind of record: {kinds:?}");
    let report = verify_by_digest(&ledger);
    assert_eq!(report.entries, ledger.head().seq);
}

/// A disk read that fails under the Merkle tree while `verify` recomputes the stored root is
/// I/O (exit 1), not an integrity failure; the next verify passes.
#[test]
fn a_failed_read_of_the_stored_tree_in_verify_is_io() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    assert_ne!(ledger.head().seq % 16, 0, "the root reads leaves of an incomplete subtree");
    ledger.store_for_tests().inject_read_failure();
    let err = ledger.verify(&|_| {}).unwrap_err();
    assert!(!err.is_integrity(), "{err}");
    verify_by_digest(&ledger);
}

/// A served ledger whose entry `c0` (M0's 2024-01 premium) is cut in half on disk: it no longer
/// decodes.
fn ledger_with_c0_cut_in_half() -> TestLedger {
    let l = TestLedger::new();
    l.post_ok(&format!(
        "{}\n{}",
        enroll("e0", "M0", "sergeant", "U1", "2021-05-01", "6000.00"),
        contribution("c0", "M0", "2024-01", "60.00", "U1")
    ));
    let ledger = Ledger::open(&l.data(), system_clock()).unwrap();
    let original = ledger.store_for_tests().entry(seq_of(&ledger, "c0")).unwrap().unwrap();
    let bytes = original.bytes[..original.bytes.len() / 2].to_vec();
    ledger.store_for_tests().tamper_entry(&StoredEntry { bytes, ..original }).unwrap();
    l
}

/// `/health` answers 503 `"status":"degraded"`; its body.
async fn degraded_health(client: &reqwest::Client, s: &common::TestServer) -> serde_json::Value {
    let health = client.get(s.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let h: serde_json::Value = health.json().await.unwrap();
    assert_eq!(h["status"], "degraded", "{h}");
    h
}

/// Over HTTP: a reversal whose target is corrupt on disk answers 500 with an integrity failure
/// (not 422), nothing is stored, and `/health` says the ledger is degraded (503).
#[tokio::test(flavor = "multi_thread")]
async fn over_http_a_corrupt_reversal_target_answers_500_and_health_is_degraded() {
    let l = ledger_with_c0_cut_in_half();
    let admin = l.token("boss", "admin", None);
    let s = l.serve(&[]);
    let client = reqwest::Client::new();
    let health = client.get(s.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let r = client
        .post(s.url("/v1/events"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(REVERSE_C0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(body.contains("integrity failure") && body.contains("corrupt"), "{body}");
    let h = degraded_health(&client, &s).await;
    assert!(h["integrity_failure"].as_str().unwrap().contains("corrupt"), "{h}");
}

/// A read that meets corrupt data (a statement whose entry no longer decodes) answers 500 with
/// an integrity failure and turns `/health` degraded too, as a post does.
#[tokio::test(flavor = "multi_thread")]
async fn over_http_a_read_of_a_corrupt_entry_answers_500_and_health_is_degraded() {
    let l = ledger_with_c0_cut_in_half();
    let auditor = l.token("audit-1", "auditor", None);
    let s = l.serve(&[]);
    let client = reqwest::Client::new();
    assert_eq!(client.get(s.url("/health")).send().await.unwrap().status(), 200);
    let r =
        client.get(s.url("/v1/members/M0/statement")).bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(body.contains("integrity failure"), "{body}");
    degraded_health(&client, &s).await;
}

/// The reconciliation compares the journal's control totals with the materialised balances: it
/// must compare them at one head, whatever is posted while it scans. Run again and again while
/// a writer posts premiums, it is sound every time and covers more entries each time.
#[test]
fn reconcile_while_posting_goes_on_is_sound_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = std::sync::Arc::new(small_ledger(dir.path()));
    let writer = {
        let ledger = ledger.clone();
        std::thread::spawn(move || {
            for b in 0..30 {
                let period = format!("{}-{:02}", 2021 + (b + 5) / 12, (b + 5) % 12 + 1);
                let lines: Vec<String> = (0..5)
                    .map(|m| {
                        contribution(&format!("r{b}-{m}"), &format!("M{m}"), &period, "60.00", "U1")
                    })
                    .collect();
                let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                ledger.post_lines(&refs).unwrap();
            }
        })
    };
    let mut seen = vec![];
    while !writer.is_finished() {
        let r = ledger.reconcile().unwrap();
        assert!(r.ok, "reconciled at entry {}: {r:?}", r.as_of_seq);
        seen.push(r.as_of_seq);
    }
    writer.join().unwrap();
    let last = ledger.reconcile().unwrap();
    assert!(last.ok && last.as_of_seq == ledger.head().seq, "{last:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
}

/// In a ledger whose state records are marked as written in this version's format, a record
/// that does not decode is corrupt: opening it is an integrity failure, and nothing is rewritten.
#[test]
fn a_state_record_that_does_not_decode_in_todays_format_is_an_integrity_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = small_ledger(&path);
    let id = junbao_ledger::ids::MemberId::parse("M0").unwrap();
    let key = junbao_ledger::state::member_key(&id);
    ledger
        .store_for_tests()
        .append(junbao_storage::Append {
            state: vec![(key.clone(), Some(vec![0xFF; 3]))],
            head: ledger.store_for_tests().head(),
            ..Default::default()
        })
        .unwrap();
    drop(ledger);
    let err = Ledger::open(&path, system_clock()).unwrap_err();
    assert!(err.is_integrity(), "{err}");
    let out = cli_verify(&path);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A member-year page that is not what the ledger writes (a month holding no money) stops
/// the open as an integrity failure (the book is checked by the thread that scans the pages);
/// of several, the least member id is named.
#[test]
fn a_page_holding_a_zero_month_is_an_integrity_failure_naming_the_least_member() {
    use junbao_ledger::ids::MemberId;
    use junbao_ledger::state::page_key;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = small_ledger(&path);
    // One month (January), medical, no money: the page's bincode (docs/FORMAT.md §4).
    let zero_month: &[u8] = &[1, 1, 0, 0, 0, 0];
    for member in ["M3", "M1"] {
        let key = page_key(&MemberId::parse(member).unwrap(), 2024);
        ledger.store_for_tests().tamper_state(&key, Some(zero_month)).unwrap();
    }
    drop(ledger);
    let err = Ledger::open(&path, system_clock()).unwrap_err();
    assert!(err.is_integrity(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("member M1 ") && !msg.contains("M3"), "{msg}");
    let out = cli_verify(&path);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A member account's balance is the sum of its yearly sums: stored sums whose total passes
/// what an i64 holds (two years of the largest sum each) are not what the ledger wrote. The
/// open and `verify` report the member as corruption (exit 3); neither stops on the sum.
#[test]
fn yearly_sums_past_the_largest_balance_are_an_integrity_failure() {
    use junbao_ledger::entry::encode;
    use junbao_ledger::fund::{Fund, Holding};
    use junbao_ledger::ids::MemberId;
    use junbao_ledger::money::Fen;
    use junbao_ledger::state::{Line, PeriodMoney, Slot, page_key};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let ledger = small_ledger(&path);
    let slot = Slot { fund: Fund::Medical, part: None, holding: Holding::Personal };
    let months: Vec<(u8, Line, PeriodMoney)> = Vec::new();
    let page = encode(&(months, vec![(slot, Fen(i64::MAX))]));
    for year in [2030, 2031] {
        let key = page_key(&MemberId::parse("M2").unwrap(), year);
        ledger.store_for_tests().tamper_state(&key, Some(&page)).unwrap();
    }
    drop(ledger);
    let err = Ledger::open(&path, system_clock()).unwrap_err();
    assert!(err.is_integrity(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("member M2 ") && msg.contains("largest balance"), "{msg}");
    let out = cli_verify(&path);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The checkpoint the stored state names (0 when none): the entry its checkpoint record
/// starts with.
fn stored_checkpoint(ledger: &Ledger) -> u64 {
    let key = junbao_ledger::state::CHECKPOINT_KEY;
    let v = ledger.store_for_tests().state_record(key).unwrap();
    v.map_or(0, |v| u64::from_be_bytes(v[..8].try_into().unwrap()))
}

/// A checkpoint stores its index records first, ingested as a table file of their own, then
/// its state and the checkpoint record. A crash between the two leaves the index ahead of the
/// checkpoint record (named by the index's until record): the ledger reopens, verifies, answers
/// an event posted again with its entry, lists a member's entries once each, and the next
/// checkpoint catches up.
#[test]
fn index_records_stored_ahead_of_a_lost_checkpoint_record_are_sound() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let ledger = small_ledger(&data);
    let checkpoint = stored_checkpoint(&ledger);
    assert_eq!(ledger.store_for_tests().index_until().unwrap(), checkpoint);
    let again = contribution("ahead-1", "M1", "2024-02", "60.00", "U1");
    let lines = [again.clone(), contribution("ahead-2", "M1", "2024-03", "60.00", "U1")];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let posted = ledger.post_lines(&refs).unwrap();
    let head = ledger.head().seq;
    assert_eq!(posted.last_seq, Some(head));
    // The state's write fails after the index was ingested: the store is poisoned, as a crash
    // there would leave it.
    ledger.store_for_tests().inject_write_failure();
    ledger.checkpoint().expect_err("the state's write fails");
    assert_eq!(ledger.store_for_tests().index_until().unwrap(), head);
    assert_eq!(stored_checkpoint(&ledger), checkpoint, "the checkpoint record was not written");
    drop(ledger);

    let ledger = Ledger::open(&data, system_clock()).unwrap();
    assert_eq!(stored_checkpoint(&ledger), checkpoint);
    assert_eq!(ledger.store_for_tests().index_until().unwrap(), head);
    verify_by_digest(&ledger);
    let replay = ledger.post_lines(&[again.as_str()]).unwrap();
    assert_eq!((replay.accepted, replay.replayed, replay.last_seq), (0, 1, Some(head - 1)));
    let seqs: Vec<u64> =
        ledger.statement("M1", None, None, false).unwrap().entries.iter().map(|e| e.seq).collect();
    let mut once = seqs.clone();
    once.dedup();
    assert_eq!(seqs, once, "each entry once");
    assert_eq!(&seqs[seqs.len() - 2..], &[head - 1, head]);
    let more = contribution("ahead-3", "M1", "2024-04", "60.00", "U1");
    ledger.post_lines(&[more.as_str()]).unwrap();
    ledger.checkpoint().unwrap();
    assert_eq!(stored_checkpoint(&ledger), head + 1);
    assert_eq!(ledger.store_for_tests().index_until().unwrap(), head + 1);
    verify_by_digest(&ledger);
    drop(ledger);
    let out = cli_verify(&data);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The index's until record is checked like any record: past the head, or naming entries
/// whose index records are not stored, or of the wrong size, it is an integrity failure.
#[test]
fn verify_finds_a_forged_index_until_record() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = small_ledger(dir.path());
    // Entries after the checkpoint: their index records are in memory only.
    let line = contribution("after", "M2", "2024-02", "60.00", "U1");
    ledger.post_lines(&[line.as_str()]).unwrap();
    let head = ledger.head().seq;
    let store = ledger.store_for_tests();
    let key = junbao_storage::INDEX_UNTIL_KEY;
    let original = store.ids_get(&[key]).unwrap()[0].clone();
    let past = (head + 1).to_be_bytes();
    let unstored = head.to_be_bytes();
    type Case<'a> = (&'a [u8], &'a str);
    let cases: [Case<'_>; 3] = [
        (&past, "until record names entry"),
        (&unstored, "idempotency record of \"after\" is missing"),
        (b"short", "not 8"),
    ];
    for (value, expected) in cases {
        store.tamper_ids(key, Some(value)).unwrap();
        let err = ledger.verify(&|_| {}).expect_err(expected);
        assert!(err.is_integrity() && err.to_string().contains(expected), "{expected}: {err}");
    }
    store.tamper_ids(key, original.as_deref()).unwrap();
    verify_by_digest(&ledger);
    // The open refuses an until record past the head before anything is read.
    ledger.store_for_tests().tamper_ids(key, Some(&past)).unwrap();
    ledger.close_without_checkpoint();
    let e = Ledger::open(dir.path(), system_clock()).unwrap_err();
    assert!(e.is_integrity() && e.to_string().contains("until record names entry"), "{e}");
}
