//! Trust (issue 13): roles and unit scope that hold on `POST /v1/events`, connections that
//! cannot hold the server, files only their owner reads, tokens that survive concurrent adds,
//! an access log that survives a torn line.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{TestLedger, TestServer, contribution, enroll, stderr};
use reqwest::StatusCode;
use serde_json::Value;

/// The state's match of a 2024-01 medical premium (Art. 20, 25).
fn subsidy(id: &str, member: &str, amount: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"subsidy","member":"{member}","fund":"medical","period":"2024-01","amount":"{amount}","basis":"match"}}"#
    )
}

async fn post(s: &TestServer, token: &str, body: &str) -> (StatusCode, String) {
    let resp = reqwest::Client::new()
        .post(s.url("/v1/events"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the server answers");
    let status = resp.status();
    (status, resp.text().await.expect("a body"))
}

async fn entries(s: &TestServer) -> u64 {
    let body = reqwest::get(s.url("/health")).await.unwrap().text().await.unwrap();
    serde_json::from_str::<Value>(&body).unwrap()["entries"].as_u64().unwrap()
}

/// M1 in U001 (the poster's unit), M2 in U002; both discharged, so their accounts can move.
fn ledger() -> (TestLedger, String, String) {
    let t = TestLedger::new();
    let poster = t.token("finance-U001", "poster", Some("U001"));
    let admin = t.token("admin-1", "admin", None);
    t.post_ok(
        &[
            enroll("e1", "M1", "officer", "U001", "2020-01-01", "10000.00"),
            enroll("e2", "M2", "officer", "U002", "2020-01-01", "10000.00"),
            contribution("c1", "M1", "2024-01", "100.00", "U001"),
            contribution("c2", "M2", "2024-01", "100.00", "U002"),
            subsidy("s1", "M1", "100.00"),
            subsidy("s2", "M2", "100.00"),
            r#"{"id":"d1","type":"discharge","member":"M1","on":"2025-01-31","route":"employee"}"#
                .to_string(),
        ]
        .join("\n"),
    );
    (t, poster, admin)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_posters_transfer_out_and_confirmation_get_403_even_for_its_own_unit() {
    let (t, poster, admin) = ledger();
    let s = t.serve(&[]);
    let before = entries(&s).await;
    let transfer_out =
        r#"{"id":"t1","type":"transfer_out","member":"M1","fund":"medical","agency":"SI-1"}"#;
    let (status, text) = post(&s, &poster, transfer_out).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("clerk or admin"), "{text}");
    let confirmed =
        r#"{"id":"t2","type":"transfer_confirmed","member":"M1","fund":"medical","agency":"SI-1"}"#;
    let (status, text) = post(&s, &poster, confirmed).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert_eq!(entries(&s).await, before, "nothing stored");
    // The admin may; then the poster may not reverse it either.
    let (status, text) = post(&s, &admin, transfer_out).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, text) =
        post(&s, &poster, r#"{"id":"r1","type":"reversal","of":"t1","reason":"x"}"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_replay_oracle_answers_403_for_a_foreign_unit_whatever_the_content() {
    let (t, poster, admin) = ledger();
    let s = t.serve(&[]);
    // U002's event, stored by the admin.
    let theirs =
        r#"{"id":"x2","type":"discharge","member":"M2","on":"2025-01-31","route":"employee"}"#;
    let (status, text) = post(&s, &admin, theirs).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let before = entries(&s).await;
    // The same id and content (a replay), the same id with other content (a conflict), and
    // an unused id: the poster of U001 gets the same 403 for each, naming no unit of M2's.
    let probes = [
        theirs.to_string(),
        r#"{"id":"x2","type":"discharge","member":"M2","on":"2025-02-28","route":"employee"}"#
            .to_string(),
        r#"{"id":"x3","type":"discharge","member":"M2","on":"2025-01-31","route":"employee"}"#
            .to_string(),
        r#"{"id":"c2","type":"discharge","member":"M2","on":"2025-01-31","route":"employee"}"#
            .to_string(),
    ];
    let mut answers = Vec::new();
    for body in &probes {
        let (status, text) = post(&s, &poster, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {text}");
        assert!(!text.contains("U002"), "the member's unit leaks: {text}");
        answers.push(text);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "answers differ: {answers:?}");
    // A member that does not exist gets the same answer as one of another unit.
    let (status, unknown) = post(
        &s,
        &poster,
        r#"{"id":"x2","type":"discharge","member":"M9","on":"2025-01-31","route":"employee"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{unknown}");
    assert_eq!(unknown.replace("M9", "M2"), answers[0]);
    assert_eq!(entries(&s).await, before, "nothing stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_sent_request_line_is_closed_after_the_header_timeout() {
    let (t, _, _) = ledger();
    let s = t.serve(&["--header-timeout-secs", "1"]);
    let mut conn = std::net::TcpStream::connect(&s.addr).unwrap();
    // Far longer than the timeout: a server that waits for ever fails this read.
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    conn.write_all(b"GET /hea").unwrap();
    let mut answer = Vec::new();
    match conn.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    // The server goes on serving others.
    assert!(entries(&s).await > 0);
}

#[test]
fn sigterm_ends_the_server_within_seconds_despite_stalled_and_idle_connections() {
    let (t, _, _) = ledger();
    // A header timeout of ten minutes: only the shutdown itself can close the stalled client.
    let s = t.serve(&["--header-timeout-secs", "600"]);
    let mut stalled = std::net::TcpStream::connect(&s.addr).unwrap();
    stalled.write_all(b"GET /health HT").unwrap();
    let mut idle = std::net::TcpStream::connect(&s.addr).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let mut s = s;
    let pid = s.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server still runs a minute after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn twenty_concurrent_token_adds_keep_twenty_tokens() {
    let t = TestLedger::new();
    let children: Vec<_> = (0..20)
        .map(|i| {
            std::process::Command::new(common::bin())
                .arg("--data")
                .arg(t.data())
                .args(["token", "add", "--name", &format!("t{i}"), "--role", "auditor"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut printed = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        printed.push(v["token"].as_str().unwrap().to_string());
    }
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(t.data().join("tokens.json")).unwrap())
            .unwrap();
    let stored: Vec<String> = file["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored.len(), 20, "{file}");
    for token in printed {
        use sha2::Digest;
        let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        assert!(stored.contains(&hash), "a printed token was not stored");
    }
}

#[cfg(unix)]
#[test]
fn the_ledger_folder_is_the_owners_alone_and_the_key_lives_outside_it() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestLedger::new();
    t.token("audit-1", "auditor", None);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&t.data()), 0o700);
    for f in std::fs::read_dir(t.data()).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() {
            assert_eq!(mode(&f.path()), 0o600, "{}", f.path().display());
        }
    }
    assert!(!t.data().join("digest.key").exists(), "the key is not in the ledger folder");
    assert_eq!(mode(&t.key_file()), 0o600);
    // init does not overwrite: a second init is refused and the key stays the same.
    let key = std::fs::read(t.key_file()).unwrap();
    let out = t.run(&["init"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read(t.key_file()).unwrap(), key);
    // No temporary folder is left beside the ledger.
    let names: Vec<String> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("init"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_torn_access_log_line_is_cut_when_the_server_opens_it_and_the_log_verifies() {
    let (t, _, _) = ledger();
    let auditor = t.token("audit-1", "auditor", None);
    let s = t.serve(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for m in ["M1", "M2"] {
            let resp = reqwest::Client::new()
                .get(s.url(&format!("/v1/members/{m}/statement")))
                .header("authorization", format!("Bearer {auditor}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
    });
    drop(s);
    let log = t.data().join("access.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    // A crash in the middle of the second line's append.
    std::fs::write(&log, &text[..text.len() - 25]).unwrap();
    let out = t.run(&["access", "verify"]);
    assert_eq!(out.status.code(), Some(3), "a torn line does not verify: {}", stderr(&out));
    let s = t.serve(&[]);
    drop(s);
    let report = t.json(&["access", "verify"]);
    assert_eq!(report["records"], 2, "the first read and the recovery note: {report}");
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(last["recovered"].as_str().unwrap().contains("incomplete last line"), "{last}");
}

/// A small tmpfs mounted for one test; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with a message saying why the test is skipped) unless running as root.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let uid = std::process::Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            println!("skipped: the disk-full test mounts a tmpfs and needs root");
            return None;
        }
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            println!("skipped: mounting a tmpfs failed (no CAP_SYS_ADMIN?)");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_leaves_the_access_log_and_the_ledger_verifiable_and_loses_nothing_acknowledged() {
    let Some(disk) = SmallDisk::mount("48m") else { return };
    let outside = tempfile::tempdir().unwrap();
    let data = disk.path().join("ledger");
    let key = outside.path().join("ledger.key");
    let run = |args: &[&str]| {
        std::process::Command::new(common::bin())
            .arg("--data")
            .arg(&data)
            .args(args)
            .env("JUNBAO_KEY", &key)
            .output()
            .unwrap()
    };
    let out = run(&["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = |name: &str, role: &str| {
        let out = run(&["token", "add", "--name", name, "--role", role]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["token"].as_str().unwrap().to_string()
    };
    let admin = token("admin-1", "admin");
    let auditor = token("audit-1", "auditor");
    let serve = || {
        use std::io::BufRead;
        let mut child = std::process::Command::new(common::bin())
            .arg("--data")
            .arg(&data)
            .args(["serve", "--addr", "127.0.0.1:0", "--log", "error"])
            .env("JUNBAO_KEY", &key)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        TestServer { child, addr: v["listening"].as_str().unwrap().to_string() }
    };
    let s = serve();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut acknowledged = Vec::new();
    rt.block_on(async {
        let (status, text) =
            post(&s, &admin, &enroll("e1", "M1", "officer", "U1", "2020-01-01", "10000.00")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        acknowledged.push(enroll("e1", "M1", "officer", "U1", "2020-01-01", "10000.00"));
        // Fill the disk.
        let mut filler = std::fs::File::create(disk.path().join("filler")).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while filler.write_all(&chunk).is_ok() {}
        let _ = filler.sync_all();
        let mut refused = 0;
        for i in 0..40 {
            let event = format!(
                r#"{{"id":"a{i}","type":"appropriation","fund":"medical","amount":"1.00"}}"#
            );
            let (status, _) = post(&s, &admin, &event).await;
            if status == StatusCode::OK {
                acknowledged.push(event);
            } else {
                refused += 1;
            }
            let resp = reqwest::Client::new()
                .get(s.url("/v1/members/M1/statement"))
                .header("authorization", format!("Bearer {auditor}"))
                .send()
                .await
                .unwrap();
            if !resp.status().is_success() {
                refused += 1;
            }
        }
        assert!(refused > 0, "the disk never filled");
    });
    drop(s);
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    // Restarted with room again: both logs verify and every acknowledged event is there.
    let s = serve();
    drop(s);
    let out = run(&["access", "verify"]);
    assert!(out.status.success(), "access log: {}", stderr(&out));
    let out = run(&["verify"]);
    assert!(out.status.success(), "ledger: {}", stderr(&out));
    let mut replay = std::process::Command::new(common::bin())
        .arg("--data")
        .arg(&data)
        .args(["post", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    replay.stdin.take().unwrap().write_all(acknowledged.join("\n").as_bytes()).unwrap();
    let out = replay.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["accepted"], 0, "an acknowledged event was lost: {summary}");
    assert_eq!(summary["replayed"].as_u64().unwrap() as usize, acknowledged.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_verifies_packages_with_its_own_key_and_refuses_another_ledgers() {
    let (t, _, _) = ledger();
    let clerk = t.token("clerk-1", "clerk", None);
    let forger = TestLedger::new();
    forger.post_ok(
        &[
            enroll("e1", "M1", "officer", "U001", "2020-01-01", "920000.00"),
            contribution("c1", "M1", "2024-01", "9200.00", "U001"),
            subsidy("s1", "M1", "9200.00"),
            r#"{"id":"d1","type":"discharge","member":"M1","on":"2025-01-31","route":"employee"}"#
                .to_string(),
        ]
        .join("\n"),
    );
    let export = |l: &TestLedger, name: &str| {
        let file = l.dir.path().join(name);
        let out = l.run(&[
            "transfer",
            "export",
            "--member",
            "M1",
            "--fund",
            "medical",
            "--agency",
            "SI-1",
            "--out",
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<Value>(&std::fs::read_to_string(file).unwrap()).unwrap()
    };
    let genuine = export(&t, "genuine.json");
    let forged = export(&forger, "forged.json");
    let s = t.serve(&[]);
    let verify = |package: Value| {
        let s = &s;
        let clerk = clerk.clone();
        async move {
            let resp = reqwest::Client::new()
                .post(s.url("/v1/transfers/verify"))
                .header("authorization", format!("Bearer {clerk}"))
                .json(&serde_json::json!({ "package": package }))
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, answer) = verify(genuine).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["verified"], true);
    let (status, answer) = verify(forged).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["verified"], false);
    assert!(answer["error"].as_str().unwrap().contains("pinned"), "{answer}");
}

#[test]
fn a_rotated_key_is_followed_from_the_pinned_old_key_and_a_forged_rotation_is_not() {
    use ed25519_dalek::Signer;
    let (t, _, _) = ledger();
    let old_pub = std::fs::read(t.public_key_file()).unwrap();
    let old_pub_file = t.dir.path().join("old.pub");
    std::fs::write(&old_pub_file, &old_pub).unwrap();
    let before = t.run(&["digest"]);
    assert!(before.status.success(), "{}", stderr(&before));
    let before =
        common::write_file(t.dir.path(), "before.json", &String::from_utf8(before.stdout).unwrap());
    let rotated = t.json(&["key", "rotate"]);
    assert_eq!(rotated["rotated"], true, "{rotated}");
    assert_eq!(rotated["old_public_key"], String::from_utf8(old_pub.clone()).unwrap().trim());
    // Only the old public key is kept; the old seed is gone, so it can sign nothing more.
    let retired = std::fs::read_to_string(rotated["retired_key"].as_str().unwrap()).unwrap();
    assert_eq!(retired.trim(), String::from_utf8(old_pub.clone()).unwrap().trim());
    let key_dir = t.key_file().parent().unwrap().to_path_buf();
    for entry in std::fs::read_dir(&key_dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            !name.contains("retired") || name.ends_with(".pub"),
            "a retired seed was kept: {name}"
        );
    }
    let new_pub = std::fs::read_to_string(t.public_key_file()).unwrap();
    assert_eq!(rotated["public_key"], new_pub.trim());
    let entry = rotated["entry"].as_u64().unwrap();
    let journal = t.json(&["journal", "--json", "--from", &entry.to_string(), "--limit", "1"]);
    assert_eq!(journal["entries"][0]["event"]["type"], "key_rotation", "{journal}");
    // Someone without the old key records a "rotation" to a key of their own.
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let attacker_pub = attacker.verifying_key().to_bytes();
    let forged = attacker.sign(&junbao_ledger::transfer::key_rotation_message(&attacker_pub));
    t.post_ok(&format!(
        r#"{{"id":"key-rotation:2","type":"key_rotation","public_key":"{}","signature":"{}"}}"#,
        hex::encode(attacker_pub),
        hex::encode(forged.to_bytes())
    ));
    // A package signed after the rotation verifies from the old pinned key and from the new.
    let file = t.dir.path().join("p.json");
    let out = t.run(&[
        "transfer",
        "export",
        "--member",
        "M1",
        "--fund",
        "medical",
        "--agency",
        "SI-1",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let package: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(package["key_rotations"].as_array().unwrap().len(), 2);
    let verify = |key: &std::path::Path, file: &std::path::Path| {
        std::process::Command::new(common::bin())
            .args(["transfer", "verify", "--key"])
            .arg(key)
            .arg(file)
            .output()
            .unwrap()
    };
    let out = verify(&old_pub_file, &file);
    assert!(out.status.success(), "from the old key: {}", stderr(&out));
    let out = verify(&t.public_key_file(), &file);
    assert!(out.status.success(), "from the new key: {}", stderr(&out));
    // Without the rotation the old key reaches nothing: the digest is another key's.
    let mut cut = package.clone();
    cut.as_object_mut().unwrap().remove("key_rotations");
    let cut = common::write_file(t.dir.path(), "cut.json", &cut.to_string());
    let out = verify(&old_pub_file, &cut);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // An exported journal with a digest signed after the rotation verifies from the old key.
    let digest = t.run(&["digest"]);
    assert!(digest.status.success(), "{}", stderr(&digest));
    let digest =
        common::write_file(t.dir.path(), "d.json", &String::from_utf8(digest.stdout).unwrap());
    let export = t.run(&["export", "journal", "--format", "jsonl"]);
    let export =
        common::write_file(t.dir.path(), "j.jsonl", &String::from_utf8(export.stdout).unwrap());
    let out = std::process::Command::new(common::bin())
        .args(["verify", "--export"])
        .arg(&export)
        .arg("--key")
        .arg(&old_pub_file)
        .arg("--digest")
        .arg(&digest)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["verified"], true);
    // The database checked since a digest signed before the rotation, from the old key, and
    // since one signed after it, the rotation followed.
    for d in [&before, &digest] {
        let out = t.run(&[
            "verify",
            "--from-digest",
            d.to_str().unwrap(),
            "--key",
            old_pub_file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}: {}", d.display(), stderr(&out));
    }
}
