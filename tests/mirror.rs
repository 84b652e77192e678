//! `junbao mirror` against `junbao serve` on loopback: following a server under load, catching
//! a rewritten history, resuming after a kill, answering read routes as a replica.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestLedger, TestServer, bin, numbered_officer, numbered_premium, stderr};
use serde_json::Value;

/// Upper bound on waiting for a mirror to catch up; the test fails past it.
const CATCH_UP_MAX: Duration = Duration::from_secs(120);

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Where `init` put the ledger's signing key (the one place to change if `init` moves it).
fn signing_key_file(t: &TestLedger) -> PathBuf {
    t.key_file()
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().expect("run junbao")
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Source {
    t: TestLedger,
    key: String,
    poster: String,
    auditor: String,
}

fn source() -> Source {
    let t = TestLedger::new();
    t.post_ok(&(0..8).map(numbered_officer).collect::<Vec<_>>().join("\n"));
    let key = t.json(&["digest"])["public_key"].as_str().unwrap().to_string();
    let poster = t.token("finance-U001", "poster", Some("U001"));
    let auditor = t.token("mirror", "auditor", None);
    Source { t, key, poster, auditor }
}

fn mirror_once(data: &Path, s: &TestServer, token: &str, key: &str) -> std::process::Output {
    run(&[
        "--data",
        path(data),
        "mirror",
        "--from",
        &s.url(""),
        "--token",
        token,
        "--key",
        key,
        "--once",
    ])
}

/// `junbao mirror` following `s` every second, optionally serving reads; killed when dropped.
struct Mirror(Child, Option<String>);

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mirror_follow(data: &Path, s: &TestServer, token: &str, key: &str, serve: bool) -> Mirror {
    use std::io::BufRead;
    let mut c = Command::new(bin());
    c.args(["--data", path(data), "mirror", "--from", &s.url(""), "--token", token, "--key", key])
        .args(["--interval", "1"]);
    if serve {
        c.args(["--serve", "127.0.0.1:0"]);
    }
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut addr = None;
    if serve {
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        addr = Some(v["listening"].as_str().unwrap().to_string());
    }
    Mirror(child, addr)
}

fn status(data: &Path) -> Value {
    json_of(&run(&["--data", path(data), "mirror", "status"]))
}

/// Waits (bounded) until the mirror's status says it holds `entries`.
fn wait_for(data: &Path, entries: u64) {
    let started = Instant::now();
    loop {
        if data.join("mirror.json").exists() && status(data)["mirrored_entries"] == entries {
            return;
        }
        assert!(started.elapsed() < CATCH_UP_MAX, "the mirror did not reach {entries} entries");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn post_load(url: String, poster: String, clients: usize, posts: usize, k0: usize) {
    let mut tasks = Vec::new();
    for m in 0..clients {
        let (url, poster) = (url.clone(), poster.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for k in k0..k0 + posts {
                let r = http
                    .post(format!("{url}/v1/events"))
                    .bearer_auth(&poster)
                    .body(numbered_premium(m, k))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "post answered {}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn get(url: &str, token: &str) -> (reqwest::StatusCode, String) {
    let r = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

fn mirror_dir(s: &Source, name: &str) -> PathBuf {
    s.t.dir.path().join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mirror_follows_a_server_under_load_and_ends_identical() {
    let s = source();
    let server = s.t.serve(&[]);
    let m = mirror_dir(&s, "mirror");
    std::fs::create_dir_all(&m).unwrap();
    // The replica's own reader token, in the mirror's folder.
    let reader = json_of(&run(&[
        "--data",
        path(&m),
        "token",
        "add",
        "--name",
        "reader",
        "--role",
        "auditor",
    ]))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mirror = mirror_follow(&m, &server, &s.auditor, &s.key, true);
    post_load(server.url(""), s.poster.clone(), 8, 25, 0).await;
    let (_, health) = get(&server.url("/health"), &s.auditor).await;
    let entries = serde_json::from_str::<Value>(&health).unwrap()["entries"].as_u64().unwrap();
    let (m2, e2) = (m.clone(), entries);
    tokio::task::spawn_blocking(move || wait_for(&m2, e2)).await.unwrap();

    // The replica answers the read routes as the server does, and refuses writes.
    let replica = format!("http://{}", mirror.1.clone().unwrap());
    for route in ["/v1/balance", "/v1/journal?from=1&limit=500", "/v1/members/M0003/statement"] {
        let (a, from_server) = get(&server.url(route), &s.auditor).await;
        let (b, from_replica) = get(&format!("{replica}{route}"), &reader).await;
        assert!(a.is_success() && b.is_success(), "{route}: {a} {b}");
        assert_eq!(
            serde_json::from_str::<Value>(&from_server).unwrap(),
            serde_json::from_str::<Value>(&from_replica).unwrap(),
            "{route}"
        );
    }
    let (_, d) = get(&format!("{replica}/v1/digest"), &reader).await;
    assert_eq!(serde_json::from_str::<Value>(&d).unwrap()["tree_size"], entries);
    let r = reqwest::Client::new()
        .post(format!("{replica}/v1/events"))
        .bearer_auth(&reader)
        .body(numbered_premium(0, 100))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);
    drop(mirror);
    server.terminate();

    let ours = json_of(&run(&["--data", path(&m), "verify"]));
    let theirs = s.t.json(&["verify"]);
    assert_eq!(ours["entries"], theirs["entries"]);
    assert_eq!(ours["head"], theirs["head"]);
    assert_eq!(
        json_of(&run(&["--data", path(&m), "balance", "--json"])),
        s.t.json(&["balance", "--json"])
    );
    let st = status(&m);
    assert_eq!(st["behind_entries"], 0);
    assert!(st["remote_unreachable"].is_string(), "the server is stopped: {st}");
}

#[test]
fn a_rewritten_history_under_the_same_key_is_detected_and_both_digests_kept() {
    let s = source();
    let server = s.t.serve(&[]);
    let m = mirror_dir(&s, "mirror");
    let out = mirror_once(&m, &server, &s.auditor, &s.key);
    let held = json_of(&out)["mirrored_entries"].as_u64().unwrap();
    server.terminate();

    // Another ledger signed with the same key: a different past, and more entries.
    let forged = TestLedger::new();
    forged.post_ok(&(0..12).map(numbered_officer).collect::<Vec<_>>().join("\n"));
    let auditor = forged.token("mirror", "auditor", None);
    let key_file = signing_key_file(&s.t);
    let fake = forged.serve(&["--key", path(&key_file)]);
    let out = mirror_once(&m, &fake, &auditor, &s.key);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("rewritten or forked"), "{}", stderr(&out));
    fake.terminate();

    let evidence: Vec<PathBuf> =
        std::fs::read_dir(m.join("evidence")).unwrap().map(|e| e.unwrap().path()).collect();
    let read = |suffix: &str| -> Value {
        let p = evidence.iter().find(|p| path(p).ends_with(suffix)).expect(suffix);
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (kept_held, kept_presented) = (read("-held-digest.json"), read("-presented-digest.json"));
    assert_eq!(kept_held["tree_size"], held);
    assert_eq!(kept_presented["public_key"], s.key.as_str());
    assert_eq!(kept_held["public_key"], s.key.as_str());
    assert!(kept_presented["tree_size"].as_u64().unwrap() > held);
    assert_ne!(kept_held["root"], kept_presented["root"]);
    assert!(stderr(&out).contains(path(&m.join("evidence"))), "names the files");

    // The copy is untouched and still verifies.
    let v = json_of(&run(&["--data", path(&m), "verify"]));
    assert_eq!(v["entries"], held);
    assert!(status(&m)["state"].as_str().unwrap().starts_with("stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mirror_resumes_after_being_killed() {
    let s = source();
    let server = s.t.serve(&[]);
    let m = mirror_dir(&s, "mirror");
    let mirror = mirror_follow(&m, &server, &s.auditor, &s.key, false);
    post_load(server.url(""), s.poster.clone(), 4, 20, 0).await;
    let m2 = m.clone();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        while !(m2.join("mirror.json").exists()
            && status(&m2)["mirrored_entries"].as_u64() > Some(0))
        {
            assert!(started.elapsed() < CATCH_UP_MAX, "the mirror copied nothing");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    drop(mirror); // SIGKILL, wherever it was
    post_load(server.url(""), s.poster.clone(), 4, 20, 20).await;
    let m3 = m.clone();
    let st = tokio::task::spawn_blocking(move || status(&m3)).await.unwrap();
    assert!(st["behind_entries_now"].as_u64().unwrap() >= 80, "the posts since the kill: {st}");
    let out = mirror_once(&m, &server, &s.auditor, &s.key);
    let resumed = json_of(&out);
    server.terminate();
    let theirs = s.t.json(&["verify"]);
    assert_eq!(resumed["mirrored_entries"], theirs["entries"]);
    let ours = json_of(&run(&["--data", path(&m), "verify"]));
    assert_eq!(ours["head"], theirs["head"]);

    // Promoted (docs/SCALE.md), the copy is a whole ledger: it knows every id it copied, so a
    // department re-posting what the lost node had stored changes nothing.
    let promoted = TestLedger { dir: tempfile::tempdir().unwrap() };
    std::fs::rename(&m, promoted.data()).unwrap();
    let replay = promoted.post_ok(&numbered_premium(3, 5));
    assert_eq!((replay["accepted"].as_u64(), replay["replayed"].as_u64()), (Some(0), Some(1)));
    let new = promoted.post_ok(&numbered_premium(3, 40));
    assert_eq!(new["accepted"], 1);
    assert!(promoted.run(&["verify"]).status.success());
}

#[test]
fn a_ledger_restored_from_an_older_backup_is_caught_by_its_mirror() {
    let s = source();
    let backup = s.t.dir.path().join("backup");
    s.t.json(&["backup", "--to", path(&backup)]);
    s.t.post_ok(&(8..12).map(numbered_officer).collect::<Vec<_>>().join("\n"));
    let server = s.t.serve(&[]);
    let m = mirror_dir(&s, "mirror");
    let held = json_of(&mirror_once(&m, &server, &s.auditor, &s.key))["mirrored_entries"].clone();
    server.terminate();

    // The operator restores last night's backup and serves it with the same key and tokens.
    let restored = TestLedger { dir: tempfile::tempdir().unwrap() };
    let out =
        run(&["restore", "--from", path(&backup), "--to", path(&restored.data()), "--key", &s.key]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::copy(s.t.data().join("tokens.json"), restored.data().join("tokens.json")).unwrap();
    let key_file = signing_key_file(&s.t);
    let older = restored.serve(&["--key", path(&key_file)]);
    let out = mirror_once(&m, &older, &s.auditor, &s.key);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("gone from it"), "{}", stderr(&out));
    older.terminate();
    assert_eq!(json_of(&run(&["--data", path(&m), "verify"]))["entries"], held);
}

#[test]
fn a_mirror_of_the_demo_ledger_gives_the_same_balances_reports_and_state() {
    // The demo records every kind of entry: transfers, reversals, fund administration, a
    // year close. The mirror copies them as recorded, without running the rules.
    let t = TestLedger { dir: tempfile::tempdir().unwrap() };
    let out = t.run(&["demo", "--members", "60"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = t.json(&["digest"])["public_key"].as_str().unwrap().to_string();
    let auditor = t.token("mirror", "auditor", None);
    let server = t.serve(&[]);
    let m = t.dir.path().join("mirror");
    json_of(&mirror_once(&m, &server, &auditor, &key));
    server.terminate();
    // `verify` also compares every stored state record with a replay of the journal.
    let ours = json_of(&run(&["--data", path(&m), "verify"]));
    assert_eq!(ours, t.json(&["verify"]));
    for args in [&["balance", "--json"][..], &["report", "reconcile"], &["report", "exceptions"]] {
        let mut mirrored = vec!["--data", path(&m)];
        mirrored.extend_from_slice(args);
        assert_eq!(json_of(&run(&mirrored)), t.json(args), "{args:?}");
    }
}
