//! Backups taken while the server is under load, restored into new folders; damaged backups
//! refused, naming the file.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{TestLedger, bin, numbered_officer, numbered_premium, stderr};
use serde_json::{Value, json};

const CLIENTS: usize = 16;
const POSTS_PER_CLIENT: usize = 30;

/// The ledger's public key, as its digest names it (the test runs the ledger, so it may pin
/// what the ledger says).
fn public_key(t: &TestLedger) -> String {
    t.json(&["digest"])["public_key"].as_str().unwrap().to_string()
}

/// Where `init` put the ledger's signing key (the one place to change if `init` moves it).
fn signing_key_file(t: &TestLedger) -> std::path::PathBuf {
    t.key_file()
}

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin()).args(args).output().expect("run junbao")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Event id of every entry of the ledger at `data`, by sequence number.
fn ids_by_seq(data: &Path) -> HashMap<u64, String> {
    let mut ids = HashMap::new();
    let mut from = 1;
    loop {
        let out = run(&[
            "--data",
            path(data),
            "journal",
            "--json",
            "--from",
            &from.to_string(),
            "--limit",
            "10000",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let page: Value = serde_json::from_slice(&out.stdout).unwrap();
        let entries = page["entries"].as_array().unwrap();
        if entries.is_empty() {
            return ids;
        }
        for e in entries {
            ids.insert(e["seq"].as_u64().unwrap(), e["event"]["id"].as_str().unwrap().to_string());
        }
        from = page["next"].as_u64().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_while_sixteen_clients_post_restores_every_acknowledged_entry() {
    let t = TestLedger::new();
    let lines: Vec<String> = (0..CLIENTS).map(numbered_officer).collect();
    t.post_ok(&lines.join("\n"));
    let key = public_key(&t);
    let poster = t.token("finance-U001", "poster", Some("U001"));
    let admin = t.token("admin-1", "admin", None);
    let server = t.serve(&[]);
    let url = server.url("");

    // Acknowledged posts: (event id, seq), and how many were acknowledged when the backup began.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, u64)>::new()));
    let mut clients = Vec::new();
    for m in 0..CLIENTS {
        let (url, poster, acked) = (url.clone(), poster.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for k in 0..POSTS_PER_CLIENT {
                let r = http
                    .post(format!("{url}/v1/events"))
                    .bearer_auth(&poster)
                    .header("content-type", "application/json")
                    .body(numbered_premium(m, k))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "post answered {}", r.status());
                let v: Value = r.json().await.unwrap();
                acked
                    .lock()
                    .unwrap()
                    .push((format!("U001:c-{m}-{k}"), v["last_seq"].as_u64().unwrap()));
            }
        }));
    }
    // Once the load is under way, back up through the server (POST /v1/admin/backup).
    while acked.lock().unwrap().len() < CLIENTS * POSTS_PER_CLIENT / 4 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before: Vec<(String, u64)> = acked.lock().unwrap().clone();
    let backup_dir = t.dir.path().join("backup-1");
    let out = {
        let (b, url, admin) = (backup_dir.clone(), url.clone(), admin.clone());
        tokio::task::spawn_blocking(move || {
            run(&["backup", "--to", path(&b), "--server", &url, "--token", &admin])
        })
        .await
        .unwrap()
    };
    assert!(out.status.success(), "backup: {}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    for c in clients {
        c.await.unwrap();
    }
    assert!(
        acked.lock().unwrap().len() == CLIENTS * POSTS_PER_CLIENT,
        "every post was acknowledged"
    );
    server.terminate();

    let tree_size = summary["tree_size"].as_u64().unwrap();

    let out = run(&["backup", "verify", path(&backup_dir), "--key", &key]);
    assert!(out.status.success(), "backup verify: {}", stderr(&out));

    let restored = t.dir.path().join("restored");
    let out =
        run(&["restore", "--from", path(&backup_dir), "--to", path(&restored), "--key", &key]);
    assert!(out.status.success(), "restore: {}", stderr(&out));
    let out = run(&["--data", path(&restored), "verify"]);
    assert!(out.status.success(), "verify of the restored ledger: {}", stderr(&out));
    let verified: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verified["entries"], json!(tree_size));
    assert_eq!(verified["head"], summary["head"]);

    // Every post acknowledged before the backup began is in the restored ledger, where the
    // server said it was stored.
    let ids = ids_by_seq(&restored);
    assert_eq!(ids.len() as u64, tree_size);
    for (id, seq) in &before {
        assert!(*seq <= tree_size, "{id} was acknowledged before the backup began");
        assert_eq!(ids.get(seq), Some(id), "entry {seq} of the restored ledger");
    }

    // The restored root is the one the manifest's digest signs, by the ledger's own key.
    let digest_key = signing_key_file(&t);
    let out = run(&["--data", path(&restored), "digest", "--key", path(&digest_key)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["tree_size"], json!(tree_size));
    assert_eq!(d["root"], summary["digest"]["root"]);
    assert_eq!(d["head"], summary["digest"]["head"]);
}

#[test]
fn a_damaged_backup_file_is_refused_by_verify_and_restore_naming_the_file() {
    let t = TestLedger::new();
    t.post_ok(&(0..20).map(numbered_officer).collect::<Vec<_>>().join("\n"));
    let key = public_key(&t);
    let backup_dir = t.dir.path().join("backup");
    let b = t.json(&["backup", "--to", path(&backup_dir)]);
    assert!(b["files"].as_u64().unwrap() > 0);
    let out = run(&["backup", "verify", path(&backup_dir), "--key", &key]);
    assert!(out.status.success(), "{}", stderr(&out));

    // One changed byte in the middle of a table file.
    let sst = std::fs::read_dir(backup_dir.join("ledger"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
        .expect("the backup holds table files");
    let mut bytes = std::fs::read(&sst).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&sst, bytes).unwrap();
    let name = sst.file_name().unwrap().to_str().unwrap();

    let out = run(&["backup", "verify", path(&backup_dir), "--key", &key]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains(name), "names the file: {}", stderr(&out));

    let restored = t.dir.path().join("restored");
    let out =
        run(&["restore", "--from", path(&backup_dir), "--to", path(&restored), "--key", &key]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains(name), "names the file: {}", stderr(&out));
    assert!(!restored.join("CURRENT").exists(), "nothing half-restored is left");
}

#[test]
fn restore_refuses_an_existing_ledger_and_a_key_other_than_the_ledgers() {
    let t = TestLedger::new();
    let key = public_key(&t);
    let backup_dir = t.dir.path().join("backup");
    t.json(&["backup", "--to", path(&backup_dir)]);

    let out =
        run(&["restore", "--from", path(&backup_dir), "--to", path(&t.data()), "--key", &key]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("holds a ledger"), "{}", stderr(&out));

    let other = TestLedger::new();
    let other_key = public_key(&other);
    let restored = t.dir.path().join("restored");
    let out = run(&[
        "restore",
        "--from",
        path(&backup_dir),
        "--to",
        path(&restored),
        "--key",
        &other_key,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("manifest.json"), "{}", stderr(&out));
    assert!(!restored.exists());

    // A second backup into the same folder is refused: a backup goes into a new folder.
    let out = t.run(&["backup", "--to", path(&backup_dir)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[tokio::test]
async fn only_an_admin_may_take_a_backup_over_http() {
    let t = TestLedger::new();
    let auditor = t.token("audit-1", "auditor", None);
    let server = t.serve(&[]);
    let to = t.dir.path().join("b");
    let r = reqwest::Client::new()
        .post(server.url("/v1/admin/backup"))
        .bearer_auth(&auditor)
        .body(json!({"to": path(&to)}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(!to.exists());
    server.terminate();
}

#[test]
fn an_incremental_backup_links_unchanged_files_and_stands_alone() {
    let t = TestLedger::new();
    t.post_ok(&(0..20).map(numbered_officer).collect::<Vec<_>>().join("\n"));
    let key = public_key(&t);
    let first = t.dir.path().join("monday");
    let b1 = t.json(&["backup", "--to", path(&first)]);
    assert_eq!(b1["files_linked"], 0);
    t.post_ok(&(0..20).map(|m| numbered_premium(m, 0)).collect::<Vec<_>>().join("\n"));
    let second = t.dir.path().join("tuesday");
    let b2 = t.json(&["backup", "--to", path(&second), "--since", path(&first)]);
    assert!(b2["files_linked"].as_u64().unwrap() > 0, "{b2}");
    assert!(b2["tree_size"].as_u64() > b1["tree_size"].as_u64());

    // Monday's backup removed, Tuesday's is whole and restores.
    std::fs::remove_dir_all(&first).unwrap();
    let out = run(&["backup", "verify", path(&second), "--key", &key]);
    assert!(out.status.success(), "{}", stderr(&out));
    let restored = t.dir.path().join("restored");
    let out = run(&["restore", "--from", path(&second), "--to", path(&restored), "--key", &key]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entries"], b2["tree_size"]);
}

#[test]
fn a_backup_with_a_file_added_or_removed_is_refused_naming_it() {
    let t = TestLedger::new();
    let key = public_key(&t);
    let backup_dir = t.dir.path().join("backup");
    t.json(&["backup", "--to", path(&backup_dir)]);

    std::fs::write(backup_dir.join("ledger/000999.sst"), b"not from this backup").unwrap();
    let out = run(&["backup", "verify", path(&backup_dir), "--key", &key]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("ledger/000999.sst: is not in the manifest"), "{}", stderr(&out));
    std::fs::remove_file(backup_dir.join("ledger/000999.sst")).unwrap();

    let current = backup_dir.join("ledger/CURRENT");
    std::fs::remove_file(&current).unwrap();
    let out = run(&["backup", "verify", path(&backup_dir), "--key", &key]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("ledger/CURRENT: is missing"), "{}", stderr(&out));
}
