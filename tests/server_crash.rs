//! SIGKILL the server in the middle of a load of 64 concurrent clients, restart it: every post
//! that got a success answer is in the journal, no post is there in part, and verify passes.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestLedger, contribution, enroll};

const CLIENTS: usize = 64;
const MEMBERS: usize = 640;

/// Request `i`: a premium of one member for one month; every 8th request is an array of two
/// (two members' premiums), which must be stored both or neither.
fn request(i: usize) -> (String, Vec<String>) {
    let one = |i: usize| {
        let (m, k) = (i % MEMBERS, i / MEMBERS);
        let period = format!("{}-{:02}", 2015 + k / 12, k % 12 + 1);
        let id = format!("k{i}");
        (contribution(&id, &format!("M{m}"), &period, "100.00", &format!("U{}", m % 4)), id)
    };
    if i % 8 == 7 {
        let (a, ida) = one(i);
        let (b, idb) = one(i + 1_000_000);
        (format!("[{a},{b}]"), vec![ida, idb])
    } else {
        let (a, id) = one(i);
        (a, vec![id])
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_post_survives_a_sigkill_under_load() {
    let t = TestLedger::new();
    let token = t.token("load", "admin", None);
    let enrolments: Vec<String> = (0..MEMBERS)
        .map(|m| {
            enroll(
                &format!("e{m}"),
                &format!("M{m}"),
                "officer",
                &format!("U{}", m % 4),
                "2014-01-01",
                "10000.00",
            )
        })
        .collect();
    t.post_ok(&enrolments.join("\n"));
    let server = t.serve(&[]);
    let url = server.url("/v1/events");
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(std::sync::Mutex::new(Vec::<Vec<String>>::new()));
    let sent = Arc::new(std::sync::Mutex::new(Vec::<Vec<String>>::new()));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (url, token, next, stop) = (url.clone(), token.clone(), next.clone(), stop.clone());
        let (acked, sent) = (acked.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                // Bounded: at most 100 months of premiums per member.
                if i >= MEMBERS * 100 {
                    break;
                }
                let (body, ids) = request(i);
                sent.lock().unwrap().push(ids.clone());
                match client.post(&url).bearer_auth(&token).body(body).send().await {
                    Ok(resp) if resp.status().is_success() => {
                        // A success status alone is not the answer: the body must have arrived.
                        if let Ok(v) = resp.json::<serde_json::Value>().await {
                            assert_eq!(v["accepted"].as_u64(), Some(ids.len() as u64), "{v}");
                            acked.lock().unwrap().push(ids);
                        }
                    }
                    Ok(resp) => panic!("unexpected answer {} before the kill", resp.status()),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    // Let the load run, then kill the server without warning.
    let mut server = server;
    let killed_at = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = acked.lock().unwrap().len();
        if n >= 3_000 {
            break n;
        }
        assert!(next.load(Ordering::Relaxed) < MEMBERS * 100, "the load ended before the kill");
    };
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    assert!(acked.len() >= killed_at && sent.len() > acked.len(), "killed under load");

    // Restart: the ledger opens, the chain verifies, and the server is healthy again.
    let verify = t.run(&["verify"]);
    assert!(verify.status.success(), "{}", common::stderr(&verify));
    let restarted = t.serve(&[]);
    let health: serde_json::Value =
        reqwest::get(restarted.url("/health")).await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    drop(restarted);

    let export = t.run(&["export", "journal", "--format", "jsonl"]);
    assert!(export.status.success());
    let stored: HashSet<String> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| v["event"]["id"].as_str().map(str::to_string))
        .collect();
    for ids in &acked {
        for id in ids {
            assert!(stored.contains(id), "acknowledged event {id} is missing after the kill");
        }
    }
    for ids in &sent {
        let present = ids.iter().filter(|id| stored.contains(*id)).count();
        assert!(present == 0 || present == ids.len(), "post {ids:?} stored in part");
    }
}
