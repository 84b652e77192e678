//! Group commit through the engine: several posts in one synced write, each all or nothing.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{contribution, enroll, verify_by_digest};
use junbao_engine::{GroupCommitter, Ledger, PostRequest, PostScope, parse_fingerprinted};

fn request(lines: &[String], scope: PostScope) -> PostRequest {
    PostRequest {
        events: lines.iter().enumerate().map(|(i, l)| (i + 1, parse_fingerprinted(l))).collect(),
        scope,
    }
}

fn any(lines: &[String]) -> PostRequest {
    request(lines, PostScope::Any)
}

fn units(list: &[&str]) -> PostScope {
    PostScope::Units(Arc::new(list.iter().map(|u| u.to_string()).collect::<BTreeSet<_>>()))
}

fn new_ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::init(&dir.path().join("l"), junbao_engine::system_clock()).unwrap();
    (dir, ledger)
}

#[test]
fn a_refused_request_in_a_group_leaves_no_trace_and_the_others_are_stored_in_one_write() {
    let (_dir, ledger) = new_ledger();
    let head = ledger.head().seq;
    let answers = ledger.post_group(vec![
        any(&[enroll("e1", "M1", "officer", "U1", "2020-01-01", "10000.00")]),
        // Its second event breaks a rule (a premium of the wrong amount): the enrolment before
        // it must be undone with it.
        any(&[
            enroll("e2", "M2", "officer", "U1", "2020-01-01", "10000.00"),
            contribution("c2", "M2", "2024-01", "99.00", "U1"),
        ]),
        // Sees the enrolment of the first request of the group.
        any(&[contribution("c1", "M1", "2024-01", "100.00", "U1")]),
        // The same id as the first request, same content: a replay of its entry.
        any(&[enroll("e1", "M1", "officer", "U1", "2020-01-01", "10000.00")]),
        // The same id with other content: a conflict.
        any(&[enroll("e1", "M1", "officer", "U2", "2020-01-01", "10000.00")]),
    ]);
    assert_eq!(answers.len(), 5);
    let first = answers[0].as_ref().unwrap();
    assert_eq!((first.accepted, first.first_seq), (1, Some(head + 1)));
    let refused = answers[1].as_ref().unwrap_err();
    assert!(refused.to_string().contains("line 2"), "{refused}");
    let third = answers[2].as_ref().unwrap();
    assert_eq!((third.accepted, third.first_seq), (1, Some(head + 2)), "dense after the refusal");
    let replay = answers[3].as_ref().unwrap();
    assert_eq!((replay.accepted, replay.replayed, replay.first_seq), (0, 1, Some(head + 1)));
    assert!(answers[4].as_ref().unwrap_err().is_conflict());
    assert_eq!(ledger.head().seq, head + 2, "two entries stored");
    // Each answer's head is the chain hash of its own last entry.
    let stored = ledger.journal(head + 1, 2).unwrap();
    assert_eq!(first.head, hex::encode(stored[0].0.chain_hash));
    assert_eq!(third.head, hex::encode(stored[1].0.chain_hash));
    // Nothing of M2 exists: a later post may enrol it.
    let again =
        ledger.post_lines(&[&enroll("e2", "M2", "officer", "U1", "2020-01-01", "10000.00")]);
    assert_eq!(again.unwrap().accepted, 1);
    verify_by_digest(&ledger);
}

#[test]
fn a_poster_is_held_to_its_units_even_for_members_enrolled_in_the_same_group() {
    let (_dir, ledger) = new_ledger();
    ledger.post_lines(&[&enroll("e0", "M0", "officer", "U2", "2020-01-01", "10000.00")]).unwrap();
    let head = ledger.head().seq;
    let subsidy = |id: &str, m: &str| {
        format!(
            r#"{{"id":"{id}","type":"subsidy","member":"{m}","fund":"medical","period":"2024-01","amount":"100.00","basis":"match"}}"#
        )
    };
    let answers = ledger.post_group(vec![
        any(&[enroll("e9", "M9", "officer", "U2", "2020-01-01", "10000.00")]),
        // A subsidy names no unit: its member's unit decides, even one enrolled just before.
        request(&[subsidy("s9", "M9")], units(&["U1"])),
        request(&[contribution("c0", "M0", "2024-01", "100.00", "U2")], units(&["U1"])),
        request(&[subsidy("s0", "M0")], units(&["U1"])),
        request(
            &[r#"{"id":"a1","type":"appropriation","fund":"medical","amount":"5.00"}"#.to_string()],
            units(&["U1", "U2"]),
        ),
        request(&[contribution("U2:c9", "M9", "2024-01", "100.00", "U2")], units(&["U2"])),
    ]);
    assert!(answers[0].is_ok());
    // A unit the poster named is named back; a member's unit never is (Art. 43).
    for (i, what) in [(1, "member M9"), (2, "unit U2"), (3, "member M0"), (4, "appropriation")] {
        let e = answers[i].as_ref().unwrap_err();
        assert!(e.is_forbidden() && e.to_string().contains(what), "request {i}: {e}");
    }
    assert_eq!(answers[5].as_ref().unwrap().accepted, 1, "a poster of U2 may");
    assert_eq!(ledger.head().seq, head + 2);
}

/// Member `M{m}`'s medical premium of month `k + 1` of 2024.
fn premium(m: usize, k: usize) -> String {
    contribution(
        &format!("c{m}-{k}"),
        &format!("M{m}"),
        &format!("2024-{:02}", k + 1),
        "100.00",
        "U1",
    )
}

/// A new ledger with officers `M0`..`M{members-1}` enrolled (in unit U1), shared.
fn enrolled_ledger(members: usize) -> (tempfile::TempDir, Arc<Ledger>) {
    let (dir, ledger) = new_ledger();
    let lines: Vec<String> = (0..members)
        .map(|m| {
            enroll(&format!("e{m}"), &format!("M{m}"), "officer", "U1", "2020-01-01", "10000.00")
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    ledger.post_lines(&refs).unwrap();
    (dir, Arc::new(ledger))
}

#[test]
fn the_committer_answers_every_request_and_stores_each_exactly_once() {
    let members = 50;
    let (_dir, ledger) = enrolled_ledger(members);
    let head = ledger.head().seq;
    let committer = GroupCommitter::start(Arc::clone(&ledger));
    let (tx, rx) = std::sync::mpsc::channel();
    let months = 12;
    for m in 0..members {
        for k in 0..months {
            let line = premium(m, k);
            let tx = tx.clone();
            committer.submit(any(&[line]), Box::new(move |a| tx.send(a).unwrap())).unwrap();
        }
    }
    drop(tx);
    committer.shutdown();
    let answers: Vec<_> = rx.iter().collect();
    assert_eq!(answers.len(), members * months);
    let mut seqs: Vec<u64> = answers.into_iter().map(|a| a.unwrap().first_seq.unwrap()).collect();
    seqs.sort_unstable();
    let expected: Vec<u64> = (head + 1..=head + (members * months) as u64).collect();
    assert_eq!(seqs, expected, "dense, one entry per request");
    let stats = committer.stats();
    assert_eq!(stats.entries.load(std::sync::atomic::Ordering::Relaxed), (members * months) as u64);
    let line = enroll("e0", "M0", "officer", "U1", "2020-01-01", "10000.00");
    let after = committer.submit(any(&[line]), Box::new(|_| {}));
    assert_eq!(after.unwrap_err(), junbao_engine::SubmitError::Closed);
    verify_by_digest(&ledger);
}

#[test]
fn a_failed_sync_acknowledges_nothing_and_stops_the_writer() {
    failed_sync_acknowledges_nothing(false);
}

/// The same when the caller runs the sequencer's step (`serve --one-thread`).
#[test]
fn a_failed_sync_acknowledges_nothing_when_the_caller_runs_the_step() {
    failed_sync_acknowledges_nothing(true);
}

fn failed_sync_acknowledges_nothing(caller_runs_the_step: bool) {
    let (_dir, ledger) = new_ledger();
    let ledger = Arc::new(ledger);
    ledger.post_lines(&[&enroll("e1", "M1", "officer", "U1", "2020-01-01", "10000.00")]).unwrap();
    let (committer, _wakes) = if caller_runs_the_step {
        let (c, wakes) = caller_committer(&ledger);
        (c, Some(wakes))
    } else {
        (GroupCommitter::start(Arc::clone(&ledger)), None)
    };
    // What a caller does once woken; nothing when the committer has its own thread.
    let step = || while committer.sequence_queued() {};
    let (tx, rx) = std::sync::mpsc::channel();
    let durable_before = ledger.store_for_tests().durable_head().seq;
    ledger.store_for_tests().inject_sync_failure();
    let line = contribution("c1", "M1", "2024-01", "100.00", "U1");
    let t = tx.clone();
    committer.submit(any(&[line]), Box::new(move |a| t.send(a).unwrap())).unwrap();
    step();
    let answer = rx.recv().unwrap();
    assert!(matches!(answer, Err(junbao_engine::PostError::Write(_))), "{answer:?}");
    // The entry was written but never made durable: nothing may show it as settled.
    assert_eq!(ledger.store_for_tests().durable_head().seq, durable_before);
    assert!(ledger.store_for_tests().is_poisoned());
    assert!(committer.wait_durable(ledger.head().seq).is_err());
    let line = contribution("c2", "M1", "2024-02", "100.00", "U1");
    committer.submit(any(&[line]), Box::new(move |a| tx.send(a).unwrap())).unwrap();
    step();
    assert!(rx.recv().unwrap().is_err(), "a poisoned ledger takes no more posts");
    committer.shutdown();
}

/// Art. 32: a premium is withheld by the unit of its month, and a spouse's by the serviceman's
/// unit. So the poster of the serviceman's unit posts the spouse's premiums (the spouse enrolled
/// elsewhere), and the poster of a member's former unit posts a premium of a month served there;
/// a poster of an unrelated unit is still refused, without learning the member's unit.
#[test]
fn a_spouses_premium_is_posted_by_the_servicemans_unit_and_a_back_dated_one_by_the_former_unit() {
    let (_dir, ledger) = new_ledger();
    ledger
        .post_lines(&[
            &enroll("e1", "O1", "officer", "U1", "2020-01-01", "10000.00"),
            r#"{"id":"e2","type":"enroll","member":"P1","category":"spouse","unit":"U9","enlisted_on":"2023-01-01","monthly_pay":"4000.00","sponsor":"O1"}"#,
            r#"{"id":"uc","type":"unit_change","member":"O1","unit":"U2","on":"2024-03-01"}"#,
        ])
        .unwrap();
    let spouse_premium = |id: &str, period: &str, unit: &str| {
        format!(
            r#"{{"id":"{id}","type":"contribution","member":"P1","fund":"spouse","part":"medical","period":"{period}","amount":"40.00","unit":"{unit}"}}"#
        )
    };
    let answers = ledger.post_group(vec![
        // The serviceman's unit in 2024-01 was U1: its poster withholds the spouse's premium.
        request(&[spouse_premium("U1:p1", "2024-01", "U1")], units(&["U1"])),
        // A month served in U1, posted after the move by U1's poster.
        request(&[contribution("U1:c1", "O1", "2024-02", "100.00", "U1")], units(&["U1"])),
        // The new unit posts the months after the move.
        request(&[contribution("U2:c2", "O1", "2024-03", "100.00", "U2")], units(&["U2"])),
        // An unrelated unit is refused, and told nothing of where the member serves.
        request(&[contribution("c3", "O1", "2024-04", "100.00", "U7")], units(&["U7"])),
    ]);
    for (i, answer) in answers.iter().enumerate().take(3) {
        assert_eq!(answer.as_ref().map(|s| s.accepted).ok(), Some(1), "request {i}: {answer:?}");
    }
    let refused = answers[3].as_ref().unwrap_err();
    assert!(refused.is_forbidden() && refused.to_string().contains("member O1"), "{refused}");
    assert!(
        !refused.to_string().contains("U1") && !refused.to_string().contains("U2"),
        "{refused}"
    );
}

/// Art. 18: the amount the State's provisions decide is recorded by an admin (unrestricted
/// token), never by a unit's poster, even for its own member.
#[test]
fn a_provision_subsidy_is_an_admins_act_not_a_posters() {
    let (_dir, ledger) = new_ledger();
    ledger
        .post_lines(&[
            &enroll("e1", "O1", "officer", "U1", "2020-01-01", "10000.00"),
            r#"{"id":"d1","type":"discharge","member":"O1","on":"2024-12-31","route":"civil_service"}"#,
        ])
        .unwrap();
    let provision = r#"{"id":"p1","type":"subsidy","member":"O1","fund":"pension","period":"2024-12","amount":"5000.00","basis":"provision"}"#.to_string();
    let answers = ledger.post_group(vec![
        request(std::slice::from_ref(&provision), units(&["U1"])),
        any(std::slice::from_ref(&provision)),
    ]);
    let refused = answers[0].as_ref().unwrap_err();
    assert!(refused.is_forbidden() && refused.to_string().contains("admin"), "{refused}");
    assert_eq!(answers[1].as_ref().unwrap().accepted, 1, "{:?}", answers[1]);
}

/// A poster's new event ids live in its unit's namespace (`UNIT:…`): a unit cannot take an id
/// another unit will use, nor learn whether one is used. Ids stored before the rule stay valid
/// (the same content again is a replay); an unrestricted token may use any id.
#[test]
fn a_posters_event_ids_are_scoped_by_its_unit() {
    let (_dir, ledger) = new_ledger();
    ledger
        .post_lines(&[
            &enroll("e1", "M1", "officer", "U1", "2020-01-01", "10000.00"),
            &enroll("e2", "M2", "officer", "U2", "2020-01-01", "10000.00"),
            // Stored by an unrestricted token, with ids outside any unit's namespace.
            &contribution("old-1", "M2", "2024-01", "100.00", "U2"),
            &contribution("U1:c-1", "M1", "2024-01", "100.00", "U1"),
        ])
        .unwrap();
    let head = ledger.head().seq;
    let answers = ledger.post_group(vec![
        // U2 tries U1's namespace: a used id and an unused one get the same answer.
        request(&[contribution("U1:c-1", "M2", "2024-02", "100.00", "U2")], units(&["U2"])),
        request(&[contribution("U1:c-9", "M2", "2024-02", "100.00", "U2")], units(&["U2"])),
        // An id in no unit's namespace, used or not, with other content.
        request(&[contribution("old-1", "M2", "2024-02", "100.00", "U2")], units(&["U2"])),
        request(&[contribution("new-1", "M2", "2024-02", "100.00", "U2")], units(&["U2"])),
        // A poster of both units still posts a member's event in that member's unit's namespace.
        request(&[contribution("U1:c-2", "M2", "2024-02", "100.00", "U2")], units(&["U1", "U2"])),
        // The old id with its own content again: a replay.
        request(&[contribution("old-1", "M2", "2024-01", "100.00", "U2")], units(&["U2"])),
        // In its own namespace: stored.
        request(&[contribution("U2:c-2", "M2", "2024-02", "100.00", "U2")], units(&["U2"])),
        // An unrestricted token may use any id.
        any(&[contribution("free-form", "M1", "2024-02", "100.00", "U1")]),
    ]);
    let refusals: Vec<String> = answers[..5]
        .iter()
        .map(|a| {
            let e = a.as_ref().unwrap_err();
            assert!(e.is_forbidden(), "{e}");
            e.to_string()
        })
        .collect();
    for r in &refusals {
        assert!(r.contains("\"U2:…\"") && !r.contains("different content"), "{r}");
    }
    assert_eq!(refusals[0], refusals[1], "a used and an unused id of U1 answer alike");
    assert_eq!(refusals[2], refusals[3], "a used and an unused bare id answer alike");
    let replay = answers[5].as_ref().unwrap();
    assert_eq!((replay.accepted, replay.replayed), (0, 1), "{replay:?}");
    assert_eq!(answers[6].as_ref().unwrap().accepted, 1);
    assert_eq!(answers[7].as_ref().unwrap().accepted, 1);
    assert_eq!(ledger.head().seq, head + 2, "only the two allowed posts are stored");
}

/// The writer's queue is bounded in events as well as requests: while the writer is held,
/// requests of 100,000 events each are queued until 200,000 wait, then refused as busy (503
/// with Retry-After in the server); every queued one is still answered.
#[test]
fn the_queue_is_bounded_in_events_and_every_queued_request_is_answered() {
    let (_dir, ledger) = new_ledger();
    let ledger = Arc::new(ledger);
    let committer = GroupCommitter::start(Arc::clone(&ledger));
    let big = || PostRequest {
        events: (1..=junbao_engine::BATCH_EVENTS_MAX)
            .map(|i| (i, Err(junbao_ledger::EventError::event("x"))))
            .collect(),
        scope: PostScope::Any,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let mut busy = 0;
    let mut queued = 0;
    // The writer lock held: the sequencer takes at most one group and waits.
    ledger.with_state(|_, _| {
        for _ in 0..4 {
            let tx = tx.clone();
            match committer.submit(big(), Box::new(move |a| tx.send(a.is_err()).unwrap())) {
                Ok(()) => queued += 1,
                Err(e) => {
                    assert_eq!(e, junbao_engine::SubmitError::Busy);
                    assert!(e.to_string().contains("200000 events"), "{e}");
                    busy += 1;
                }
            }
            assert!(committer.queued_events() <= junbao_engine::QUEUE_EVENTS_MAX);
        }
    });
    assert!(busy >= 1, "a fourth request of 100,000 events must not be queued");
    for _ in 0..queued {
        assert!(rx.recv().unwrap(), "each (refused) request is answered");
    }
    assert_eq!(committer.queued_events(), 0);
}

/// Nothing unsynced is acknowledged, with many requests arriving at once (several groups
/// written while one sync runs): when a reply is called, the log is synced past its entry; and
/// every request is answered exactly once.
#[test]
fn every_reply_comes_after_the_sync_that_covers_its_entry() {
    let members = 20;
    let (_dir, ledger) = enrolled_ledger(members);
    let head = ledger.head().seq;
    let committer = GroupCommitter::start(Arc::clone(&ledger));
    let (tx, rx) = std::sync::mpsc::channel::<(u64, u64)>();
    let months = 12;
    std::thread::scope(|s| {
        submit_from_threads(s, &committer, &ledger, &tx, members, months);
    });
    drop(tx);
    committer.shutdown();
    assert_synced_and_dense(&rx, head, members * months);
}

/// Members `M0`..`M{members-1}` each submit their premiums of `months` months, one request
/// each, from a thread of their own in `scope`, each with a [`durable_reply`].
fn submit_from_threads<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    committer: &'scope GroupCommitter,
    ledger: &'scope Arc<Ledger>,
    tx: &std::sync::mpsc::Sender<(u64, u64)>,
    members: usize,
    months: usize,
) {
    for m in 0..members {
        let tx = tx.clone();
        scope.spawn(move || {
            for k in 0..months {
                committer.submit(any(&[premium(m, k)]), durable_reply(ledger, &tx)).unwrap();
            }
        });
    }
}

/// A reply that sends its entry's sequence number and the durable head when it is called.
fn durable_reply(
    ledger: &Arc<Ledger>,
    tx: &std::sync::mpsc::Sender<(u64, u64)>,
) -> junbao_engine::Reply {
    let (ledger, tx) = (Arc::clone(ledger), tx.clone());
    Box::new(move |a: Result<junbao_engine::PostSummary, _>| {
        let durable = ledger.durable_head().seq;
        tx.send((a.unwrap().last_seq.unwrap(), durable)).unwrap();
    })
}

/// Every reply [`durable_reply`] sent came after the sync that covers its entry, and the
/// `requests` single-entry requests got the entries after `head`, one each.
fn assert_synced_and_dense(rx: &std::sync::mpsc::Receiver<(u64, u64)>, head: u64, requests: usize) {
    let mut seqs = Vec::new();
    for (seq, durable) in rx.iter() {
        assert!(seq <= durable, "entry {seq} acknowledged with the log synced to {durable}");
        seqs.push(seq);
    }
    seqs.sort_unstable();
    let expected: Vec<u64> = (head + 1..=head + requests as u64).collect();
    assert_eq!(seqs, expected, "each request answered once, one entry each");
}

/// A committer whose step the caller runs, with each wake sent on the returned channel.
fn caller_committer(ledger: &Arc<Ledger>) -> (GroupCommitter, std::sync::mpsc::Receiver<()>) {
    let (wake_tx, wake_rx) = std::sync::mpsc::channel();
    let sequencing = junbao_engine::Sequencing::Caller(Box::new(move || {
        let _ = wake_tx.send(());
    }));
    (GroupCommitter::start_with(Arc::clone(ledger), sequencing), wake_rx)
}

/// The sequencer's step on the caller's thread (`serve --one-thread`): each queued request
/// wakes the caller, whose calls of `sequence_queued` after the wake find it queued and post
/// it; every reply still comes after the sync that covers its entry, and each request is
/// answered once. What is queued when the committer shuts down, a request carried over to the
/// next group included, is posted and answered by the shutdown.
#[test]
fn a_caller_run_sequencer_answers_after_the_sync_and_shutdown_posts_what_is_queued() {
    let members = 20;
    let (_dir, ledger) = enrolled_ledger(members);
    let head = ledger.head().seq;
    let (committer, wakes) = caller_committer(&ledger);
    let (tx, rx) = std::sync::mpsc::channel::<(u64, u64)>();
    let months = 6;
    let mut groups = 0;
    std::thread::scope(|s| {
        submit_from_threads(s, &committer, &ledger, &tx, members, months);
        // The caller: runs the step only when woken, as the server's task does. A request
        // whose wake came before it was queued would be left in the queue.
        for _ in 0..members * months {
            let woken = wakes.recv_timeout(std::time::Duration::from_secs(60));
            assert!(woken.is_ok(), "a wake for every queued request");
            while committer.sequence_queued() {
                groups += 1;
            }
        }
    });
    assert_eq!(committer.queued_events(), 0, "every request found after its wake");
    assert!((1..=members * months).contains(&groups), "{groups} groups");
    // Queued, never taken by the caller: the shutdown posts them.
    for m in 0..members {
        committer.submit(any(&[premium(m, months)]), durable_reply(&ledger, &tx)).unwrap();
    }
    assert_eq!(committer.queued_events(), members);
    drop(tx);
    committer.shutdown();
    assert_synced_and_dense(&rx, head, members * (months + 1));
    assert!(!committer.sequence_queued(), "nothing taken after the shutdown");
    let after = committer.submit(any(&[premium(0, months + 1)]), Box::new(|_| {}));
    assert_eq!(after.unwrap_err(), junbao_engine::SubmitError::Closed);
    // A committer with its own sequencer thread leaves nothing for a caller to run.
    let threaded = GroupCommitter::start(Arc::clone(&ledger));
    assert!(!threaded.sequence_queued());
    threaded.shutdown();
    verify_by_digest(&ledger);

    // Two requests of just over half a group's events each make two groups:
    // the caller posts the first, the second is taken with it but carried over to the next
    // group, and the shutdown posts it.
    let (committer, _wakes) = caller_committer(&ledger);
    let big = || PostRequest {
        events: (1..=junbao_engine::GROUP_EVENTS_MAX / 2 + 1)
            .map(|i| (i, Err(junbao_ledger::EventError::event("x"))))
            .collect(),
        scope: PostScope::Any,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..2 {
        let tx = tx.clone();
        committer.submit(big(), Box::new(move |a| tx.send(a.is_err()).unwrap())).unwrap();
    }
    drop(tx); // an unanswered request fails the receive below instead of hanging it
    assert!(committer.sequence_queued());
    assert!(rx.recv().unwrap(), "the first group's request is refused (its lines are bad)");
    let carried = junbao_engine::GROUP_EVENTS_MAX / 2 + 1;
    assert_eq!(committer.queued_events(), carried, "the second, carried over, still waits");
    committer.shutdown();
    assert!(rx.recv().unwrap(), "the carried request is answered by the shutdown");
}

/// When the syncer is gone (here: a reply panicked on its thread), a caller-run step takes
/// nothing more: the request it had is not acknowledged, later submits say closed (not busy),
/// and the committer no longer runs, which `/health` reports.
#[test]
fn a_caller_run_step_stops_taking_once_the_syncer_is_gone() {
    let (_dir, ledger) = enrolled_ledger(1);
    let (committer, _wakes) = caller_committer(&ledger);
    let reply_panics = Box::new(|_| panic!("a reply that panics on the syncer's thread"));
    committer.submit(any(&[premium(0, 0)]), reply_panics).unwrap();
    assert!(committer.sequence_queued());
    while committer.is_running() {
        std::thread::yield_now(); // the syncer ends with the panic
    }
    let (tx, rx) = std::sync::mpsc::channel();
    committer.submit(any(&[premium(0, 1)]), Box::new(move |a| tx.send(a).unwrap())).unwrap();
    assert!(!committer.sequence_queued(), "its group cannot be handed to a syncer");
    assert!(rx.recv().is_err(), "never acknowledged: the reply is dropped unanswered");
    let after = committer.submit(any(&[premium(0, 2)]), Box::new(|_| {}));
    assert_eq!(after.unwrap_err(), junbao_engine::SubmitError::Closed);
    committer.shutdown();
}
