//! The engine's posting contract without the command line: idempotency by event id (a replay
//! stores nothing and answers the original entry, other content under a used id is a conflict)
//! and a poster's scope (its units, its id namespace, no transfer events).

use std::collections::BTreeSet;
use std::sync::Arc;

use junbao_engine::{Ledger, PostRequest, PostScope, RejectKind, parse_fingerprinted};

const NOW_US: i64 = 1_767_225_600_000_000;

fn ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::init(&dir.path().join("l"), Arc::new(|| NOW_US)).unwrap();
    ledger
        .post_lines(&[
            r#"{"id":"e1","type":"enroll","member":"M1","category":"officer","unit":"U1","enlisted_on":"2020-01-01","monthly_pay":"10000.00"}"#,
            r#"{"id":"e2","type":"enroll","member":"M2","category":"officer","unit":"U2","enlisted_on":"2020-01-01","monthly_pay":"10000.00"}"#,
        ])
        .unwrap();
    (dir, ledger)
}

fn premium(id: &str, member: &str, period: &str, unit: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"contribution","member":"{member}","fund":"medical","period":"{period}","amount":"100.00","unit":"{unit}"}}"#
    )
}

fn request(lines: &[String], scope: PostScope) -> PostRequest {
    PostRequest {
        events: lines.iter().enumerate().map(|(i, l)| (i + 1, parse_fingerprinted(l))).collect(),
        scope,
    }
}

fn units(list: &[&str]) -> PostScope {
    PostScope::Units(Arc::new(list.iter().map(|u| u.to_string()).collect::<BTreeSet<_>>()))
}

#[test]
fn a_replay_stores_nothing_and_answers_the_original_entry() {
    let (_dir, ledger) = ledger();
    let line = premium("p1", "M1", "2024-01", "U1");
    let first = ledger.post_lines(&[&line]).unwrap();
    let head = ledger.head();
    let again = ledger.post_lines(&[&line]).unwrap();
    assert_eq!((again.accepted, again.replayed), (0, 1));
    assert_eq!(again.seqs, first.seqs);
    assert_eq!(ledger.head(), head, "nothing stored");
    // Twice in one post: the second is a replay of the first, one entry stored.
    let twice = premium("p2", "M1", "2024-02", "U1");
    let s = ledger.post_lines(&[&twice, &twice]).unwrap();
    assert_eq!((s.accepted, s.replayed), (1, 1));
    assert_eq!(s.seqs[0], s.seqs[1]);
}

#[test]
fn a_used_id_with_other_content_is_a_conflict_and_stores_nothing() {
    let (_dir, ledger) = ledger();
    ledger.post_lines(&[&premium("p1", "M1", "2024-01", "U1")]).unwrap();
    let head = ledger.head();
    let err = ledger.post_lines(&[&premium("p1", "M1", "2024-02", "U1")]).unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.kind(), junbao_engine::ErrorKind::Input);
    // In one post, with an event that would be stored: all or nothing.
    let err = ledger
        .post_lines(&[&premium("p3", "M1", "2024-03", "U1"), &premium("p1", "M1", "2024-04", "U1")])
        .unwrap_err();
    match err {
        junbao_engine::PostError::Rejected { errors, .. } => {
            assert_eq!(errors.len(), 1);
            assert_eq!((errors[0].line, errors[0].kind), (2, RejectKind::Conflict));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ledger.head(), head);
}

#[test]
fn a_poster_posts_only_for_its_units_in_its_id_namespace_and_never_a_transfer() {
    let (_dir, ledger) = ledger();
    let head = ledger.head();
    let forbidden = |lines: &[String]| {
        let answer = ledger.post_group(vec![request(lines, units(&["U1"]))]).pop().unwrap();
        let err = answer.unwrap_err();
        assert!(err.is_forbidden(), "{err}");
    };
    // A member of another unit, in the poster's own namespace.
    forbidden(&[premium("U1:p", "M2", "2024-01", "U2")]);
    // Its own member, outside its namespace.
    forbidden(&[premium("p", "M1", "2024-01", "U1")]);
    // A transfer event, even for its own member.
    forbidden(&[
        r#"{"id":"U1:t","type":"transfer_confirmed","member":"M1","fund":"medical","agency":"A1"}"#
            .to_string(),
    ]);
    assert_eq!(ledger.head(), head, "nothing stored");
    // Its own member in its namespace: stored.
    let ok = ledger
        .post_group(vec![request(&[premium("U1:p", "M1", "2024-01", "U1")], units(&["U1"]))])
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(ok.accepted, 1);
}
