//! Trust (issue 13): the signed tree head as a C2SP tlog-checkpoint signed note, verified with
//! the pinned key only, from the command line and over HTTP.

mod common;

use common::{TestLedger, enroll, stderr, write_file};

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_names_the_digests_tree_and_verifies_with_the_pinned_key_only() {
    let t = TestLedger::new();
    t.post_ok(&enroll("e1", "M1", "officer", "U001", "2020-01-01", "10000.00"));
    t.post_ok(&enroll("e2", "M2", "officer", "U001", "2020-01-01", "10000.00"));
    let public = t.public_key_file();
    let public = public.to_str().unwrap();
    let origin = "ledger.example.org/junbao";

    let digest = t.json(&["digest"]);
    let out = t.run(&["digest", "--format", "checkpoint", "--origin", origin]);
    assert!(out.status.success(), "{}", stderr(&out));
    let note = String::from_utf8(out.stdout).unwrap();
    // origin, size, base64 root; a blank line; one signature line under the origin's name.
    let lines: Vec<&str> = note.lines().collect();
    let size = digest["tree_size"].to_string();
    assert_eq!(&lines[..2], [origin, size.as_str()], "{note}");
    assert_eq!(lines[3], "");
    assert!(lines[4].starts_with(&format!("— {origin} ")), "{note}");
    let file = write_file(t.dir.path(), "checkpoint", &note);
    let file = file.to_str().unwrap();

    let v = t.json(&["checkpoint", "verify", file, "--key", public, "--origin", origin]);
    assert_eq!(v["verified"], true);
    assert_eq!(v["tree_size"], digest["tree_size"]);
    assert_eq!(v["root"], digest["root"], "the note signs the digest's tree");

    // The verifier key names the same key id the signature line carries (signed-note §Signatures).
    let out = t.run(&["key", "show", "--vkey", "--origin", origin]);
    let vkey = String::from_utf8(out.stdout).unwrap();
    let parts: Vec<&str> = vkey.trim().splitn(3, '+').collect();
    assert_eq!((parts.len(), parts[0]), (3, origin), "{vkey}");
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(lines[4].rsplit(' ').next().unwrap())
        .unwrap();
    assert_eq!(hex::encode(&sig[..4]), parts[1]);

    // Another ledger's key, a changed size, another origin: exit 3.
    let other = TestLedger::new();
    let other_key = other.public_key_file();
    let out = t.run(&["checkpoint", "verify", file, "--key", other_key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let changed =
        write_file(t.dir.path(), "changed", &note.replacen(&format!("\n{size}\n"), "\n1\n", 1));
    let out = t.run(&["checkpoint", "verify", changed.to_str().unwrap(), "--key", public]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = t.run(&["checkpoint", "verify", file, "--key", public, "--origin", "elsewhere.org"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // An origin that could be confused with the ledger's own signed messages is refused.
    let out = t.run(&["digest", "--format", "checkpoint", "--origin", "junbao-digest-v1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Over HTTP, under the server's origin: the same tree, verified the same way.
    let auditor = t.token("audit-1", "auditor", None);
    let s = t.serve(&["--origin", origin]);
    let resp = reqwest::Client::new()
        .get(s.url("/v1/checkpoint"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let served = write_file(t.dir.path(), "served", &resp.text().await.unwrap());
    assert!(s.terminate().success());
    let v = t.json(&["checkpoint", "verify", served.to_str().unwrap(), "--key", public]);
    assert_eq!((v["origin"].as_str(), v["root"].clone()), (Some(origin), digest["root"].clone()));
}
