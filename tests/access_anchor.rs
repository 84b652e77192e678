//! Trust (issue 13): the access log's head is anchored in the ledger's signed digests, so a log
//! rewritten after a digest was published — even with its whole chain recomputed — is caught.

mod common;

use common::{TestLedger, TestServer, enroll, stderr, write_file};
use serde_json::Value;
use sha2::{Digest, Sha256};

async fn get(s: &TestServer, path: &str, token: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.expect("JSON")
}

fn lines(t: &TestLedger) -> Vec<String> {
    let text = std::fs::read_to_string(t.data().join("access.jsonl")).unwrap();
    text.lines().map(str::to_string).collect()
}

/// Rewrites the log with `edit` applied to each record, recomputing every `prev`: the chain
/// holds on its own, as a careful forger would leave it.
fn rewrite_chain(t: &TestLedger, keep: usize, edit: impl Fn(usize, &mut Value)) {
    let mut prev = [0u8; 32];
    let mut out = String::new();
    for (i, line) in lines(t).iter().take(keep).enumerate() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        edit(i, &mut v);
        v["prev"] = Value::String(hex::encode(prev));
        let line = v.to_string();
        prev = Sha256::digest(line.as_bytes()).into();
        out.push_str(&line);
        out.push('\n');
    }
    std::fs::write(t.data().join("access.jsonl"), out).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_anchors_the_access_log_and_a_rewritten_or_cut_log_fails_against_it() {
    let t = TestLedger::new();
    t.post_ok(&enroll("e1", "M1", "officer", "U001", "2020-01-01", "10000.00"));
    let auditor = t.token("audit-1", "auditor", None);
    let public = t.public_key_file();
    let public = public.to_str().unwrap();
    let s = t.serve(&[]);
    for _ in 0..3 {
        get(&s, "/v1/members/M1/statement", &auditor).await;
    }
    let d1 = get(&s, "/v1/digest", &auditor).await;
    assert_eq!(d1["access_log"]["lines"], 3, "{d1}");
    // A read after the digest: the next digest anchors the grown log (same tree size).
    get(&s, "/v1/members/M1/statement", &auditor).await;
    let d2 = get(&s, "/v1/digest", &auditor).await;
    assert_eq!(
        (d2["tree_size"].clone(), d2["access_log"]["lines"].clone()),
        (d1["tree_size"].clone(), 4.into())
    );
    assert!(s.terminate().success());

    let d1_file = write_file(t.dir.path(), "d1.json", &d1.to_string());
    let d2_file = write_file(t.dir.path(), "d2.json", &d2.to_string());
    let check = |d: &std::path::Path| {
        t.run(&["access", "verify", "--digest", d.to_str().unwrap(), "--key", public])
    };
    // The log as it is: both digests' lines are in it, unchanged.
    for d in [&d1_file, &d2_file] {
        let out = check(d);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let v: Value = serde_json::from_slice(&check(&d1_file).stdout).unwrap();
    assert_eq!((v["verified"].clone(), v["anchored_lines"].clone()), (true.into(), 3.into()));

    // The anchored digest is a digest like any other: the export verifier takes it.
    let out = t.run(&["export", "journal", "--format", "jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let export = write_file(t.dir.path(), "journal.jsonl", &String::from_utf8(out.stdout).unwrap());
    let out = t.run(&[
        "verify",
        "--export",
        export.to_str().unwrap(),
        "--digest",
        d2_file.to_str().unwrap(),
        "--key",
        public,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A digest whose anchor was changed no longer verifies with the pinned key.
    let mut forged = d2.clone();
    forged["access_log"]["lines"] = 2.into();
    let forged = write_file(t.dir.path(), "forged.json", &forged.to_string());
    assert_eq!(check(&forged).status.code(), Some(3));

    let original = std::fs::read_to_string(t.data().join("access.jsonl")).unwrap();
    // The first read's member rewritten, the chain recomputed: the chain alone still holds...
    rewrite_chain(&t, usize::MAX, |i, v| {
        if i == 0 {
            v["member"] = "M9".into();
        }
    });
    assert!(t.run(&["access", "verify"]).status.success());
    // ...but not against either digest.
    for d in [&d1_file, &d2_file] {
        let out = check(d);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(stderr(&out).contains("rewritten"), "{}", stderr(&out));
    }

    // The last line cut off (a read hidden): the chain holds, the later digest does not.
    std::fs::write(t.data().join("access.jsonl"), &original).unwrap();
    rewrite_chain(&t, 3, |_, _| {});
    assert!(t.run(&["access", "verify"]).status.success());
    assert!(check(&d1_file).status.success(), "the first three lines are as anchored");
    let out = check(&d2_file);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("removed"), "{}", stderr(&out));

    // With the log restored, the command line's digest anchors it too.
    std::fs::write(t.data().join("access.jsonl"), &original).unwrap();
    let d3 = t.json(&["digest"]);
    assert_eq!(d3["access_log"]["lines"], 4, "{d3}");
    assert_eq!(d3["access_log"]["head"], d2["access_log"]["head"]);
}
