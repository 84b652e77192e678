//! `junbao serve` on a loopback port: roles, units, limits, the contract's status codes, the
//! access log, the OpenAPI document, graceful shutdown.

mod common;

use common::{TestLedger, TestServer, contribution, enroll};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Tokens {
    poster: String,
    auditor: String,
    clerk: String,
    admin: String,
}

fn setup() -> (TestLedger, Tokens) {
    let t = TestLedger::new();
    let tokens = Tokens {
        poster: t.token("finance-U001", "poster", Some("U001,U003")),
        auditor: t.token("audit-1", "auditor", None),
        clerk: t.token("clerk-1", "clerk", None),
        admin: t.token("admin-1", "admin", None),
    };
    t.post_ok(
        &[
            enroll("e1", "M1", "officer", "U001", "2020-01-01", "10000.00"),
            enroll("e2", "M2", "officer", "U002", "2020-01-01", "10000.00"),
        ]
        .join("\n"),
    );
    (t, tokens)
}

async fn call(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, String) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status();
    (status, resp.text().await.expect("a body"))
}

async fn get(s: &TestServer, path: &str, token: Option<&str>) -> (StatusCode, String) {
    call(reqwest::Method::GET, s.url(path), token, None).await
}

async fn post(s: &TestServer, path: &str, token: Option<&str>, body: &str) -> (StatusCode, String) {
    call(reqwest::Method::POST, s.url(path), token, Some(body.to_string())).await
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

async fn entries(s: &TestServer) -> u64 {
    let (status, body) = get(s, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    json_of(&body)["entries"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_role_is_allowed_its_work_and_refused_the_rest() {
    let (t, k) = setup();
    let s = t.serve(&[]);
    let before = entries(&s).await;
    let premium = contribution("U001:c1", "M1", "2024-01", "100.00", "U001");
    // (method, path, body, tokens allowed) — every other role gets 403.
    let table: Vec<(&str, String, Option<String>, Vec<&str>)> = vec![
        ("GET", "/v1/balance".into(), None, vec!["auditor", "clerk", "admin"]),
        ("GET", "/v1/export/balances?format=json".into(), None, vec!["auditor", "clerk", "admin"]),
        ("GET", "/v1/journal?from=1&limit=5".into(), None, vec!["auditor", "admin"]),
        ("GET", "/v1/reports/reconcile".into(), None, vec!["auditor", "admin"]),
        ("GET", "/v1/reports/exceptions".into(), None, vec!["auditor", "admin"]),
        (
            "GET",
            "/v1/members/M1/statement".into(),
            None,
            vec!["poster", "auditor", "clerk", "admin"],
        ),
        ("GET", "/v1/digest".into(), None, vec!["poster", "auditor", "clerk", "admin"]),
        ("GET", "/v1/checkpoint".into(), None, vec!["poster", "auditor", "clerk", "admin"]),
        (
            "GET",
            "/v1/proofs/inclusion?seq=3".into(),
            None,
            vec!["poster", "auditor", "clerk", "admin"],
        ),
        (
            "GET",
            "/v1/proofs/consistency?from=2&to=5".into(),
            None,
            vec!["poster", "auditor", "clerk", "admin"],
        ),
        ("POST", "/v1/events".into(), Some(premium.clone()), vec!["poster", "admin"]),
    ];
    let roles =
        [("poster", &k.poster), ("auditor", &k.auditor), ("clerk", &k.clerk), ("admin", &k.admin)];
    for (method, path, body, allowed) in &table {
        for (role, token) in roles {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let (status, text) = call(m, s.url(path), Some(token), body.clone()).await;
            if allowed.contains(&role) {
                assert_eq!(status, StatusCode::OK, "{role} {method} {path}: {text}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} {method} {path}: {text}");
            }
        }
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (status, _) = call(m.clone(), s.url(path), None, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "no token: {method} {path}");
        let (status, _) = call(m, s.url(path), Some("jbt_not-a-token"), body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "bad token: {method} {path}");
    }
    // The poster's premium was stored once; the admin's post of it was a replay.
    assert_eq!(entries(&s).await, before + 1);

    // Transfers: clerk and admin only. Match the premium and discharge first (as admin: a
    // premium awaiting its match holds the transfer back), then export as the clerk.
    let (status, _) = post(
        &s,
        "/v1/events",
        Some(&k.admin),
        r#"[{"id":"m1","type":"subsidy","member":"M1","fund":"medical","period":"2024-01","amount":"100.00","basis":"match"},
            {"id":"d1","type":"discharge","member":"M1","on":"2025-06-30","route":"employee"}]"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let transfer = r#"{"member":"M1","fund":"medical","agency":"SI-Beijing"}"#;
    for token in [&k.poster, &k.auditor] {
        assert_eq!(post(&s, "/v1/transfers", Some(token), transfer).await.0, StatusCode::FORBIDDEN);
    }
    let (status, package) = post(&s, "/v1/transfers", Some(&k.clerk), transfer).await;
    assert_eq!(status, StatusCode::OK, "{package}");
    let verify = json!({"package": json_of(&package)}).to_string();
    assert_eq!(
        post(&s, "/v1/transfers/verify", Some(&k.poster), &verify).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, answer) = post(&s, "/v1/transfers/verify", Some(&k.auditor), &verify).await;
    assert_eq!(
        (status, json_of(&answer)["verified"].clone()),
        (StatusCode::OK, json!(true)),
        "{answer}"
    );
    // A tampered package is refused with the field named.
    let mut bad = json_of(&package);
    bad["totals"]["total"] = json!("999999.00");
    let (status, answer) =
        post(&s, "/v1/transfers/verify", Some(&k.clerk), &json!({"package": bad}).to_string())
            .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(json_of(&answer)["verified"], json!(false));
    assert_eq!(
        post(&s, "/v1/transfers/confirm", Some(&k.auditor), transfer).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, confirmed) = post(&s, "/v1/transfers/confirm", Some(&k.clerk), transfer).await;
    assert_eq!(
        (status, json_of(&confirmed)["accepted"].clone()),
        (StatusCode::OK, json!(1)),
        "{confirmed}"
    );

    // Standards: the admin may record one; a poster may not (no unit).
    let standard = r#"{"id":"std-1","type":"standard","name":"medical_interest_rate","value":"1.75","effective_from":"2026-01-01"}"#;
    let (status, body) = post(&s, "/v1/events", Some(&k.poster), standard).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post(&s, "/v1/events", Some(&k.admin), standard).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(get(&s, "/health", None).await.0, StatusCode::OK);
    // The same answer as the command line.
    let (_, balance) = get(&s, "/v1/balance", Some(&k.auditor)).await;
    drop(s);
    assert_eq!(json_of(&balance), t.json(&["balance", "--json"]));
    assert!(t.run(&["verify"]).status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poster_may_not_post_or_read_for_a_unit_outside_its_list() {
    let (t, k) = setup();
    let s = t.serve(&[]);
    let before = entries(&s).await;
    let refused = [
        // Names unit U002.
        contribution("c2", "M2", "2024-01", "100.00", "U002"),
        enroll("e9", "M9", "officer", "U002", "2020-01-01", "10000.00"),
        // Names no unit: M2's unit decides.
        r#"{"id":"x1","type":"discharge","member":"M2","on":"2025-01-31","route":"employee"}"#
            .to_string(),
        // Concerns no unit at all.
        r#"{"id":"a1","type":"appropriation","fund":"medical","amount":"10.00"}"#.to_string(),
        // An array with one event outside the list: all of it refused.
        format!(
            "[{},{}]",
            contribution("c1", "M1", "2024-01", "100.00", "U001"),
            contribution("c2", "M2", "2024-01", "100.00", "U002")
        ),
    ];
    for body in &refused {
        let (status, text) = post(&s, "/v1/events", Some(&k.poster), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {text}");
        assert!(json_of(&text)["errors"][0].as_str().unwrap().contains("line"), "{text}");
    }
    assert_eq!(entries(&s).await, before, "nothing stored");
    let (status, _) = get(&s, "/v1/members/M2/statement", Some(&k.poster)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&s, "/v1/members/M1/statement", Some(&k.poster)).await;
    assert_eq!(status, StatusCode::OK);
    // The scheme is case-insensitive; the token is not.
    let resp = reqwest::Client::new()
        .get(s.url("/v1/members/M1/statement"))
        .header("authorization", format!("bearer {}", k.poster))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _) = get(&s, "/v1/members/M1/statement", Some(&k.poster.to_uppercase())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A unit of its list that has no member yet: enrolment allowed.
    let (status, text) = post(
        &s,
        "/v1/events",
        Some(&k.poster),
        &enroll("U003:e3", "M3", "officer", "U003", "2020-01-01", "10000.00"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    // Its ids live in its units' namespaces (docs/HTTP.md): not in another unit's, nor bare.
    for id in ["U002:c1", "c1"] {
        let body = contribution(id, "M1", "2024-01", "100.00", "U001");
        let (status, text) = post(&s, "/v1/events", Some(&k.poster), &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{id}: {text}");
        assert!(text.contains("U001:…"), "{text}");
    }
    assert_eq!(entries(&s).await, before + 1, "only the enrolment is stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_conflicting_and_oversized_posts_store_nothing() {
    let (t, k) = setup();
    let s = t.serve(&["--body-bytes-max", "4096", "--batch-events-max", "5"]);
    let before = entries(&s).await;
    let admin = Some(k.admin.as_str());
    // 422 with the command line's message.
    let (status, text) =
        post(&s, "/v1/events", admin, &contribution("c1", "M1", "2024-01", "100.001", "U001"))
            .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        json_of(&text)["errors"][0],
        json!("line 1: field \"amount\": more than two decimals")
    );
    // An array is all or nothing: its valid first event is not stored.
    let batch = format!(
        "[{},{}]",
        contribution("c1", "M1", "2024-01", "100.00", "U001"),
        contribution("c1b", "M1", "2024-02", "1.00", "U001")
    );
    let (status, text) = post(&s, "/v1/events", admin, &batch).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(json_of(&text)["errors"][0].as_str().unwrap().starts_with("line 2:"), "{text}");
    assert_eq!(entries(&s).await, before);
    // Not JSON at all.
    assert_eq!(post(&s, "/v1/events", admin, "[{").await.0, StatusCode::UNPROCESSABLE_ENTITY);
    // 409 for an id used with other content.
    let ok = contribution("c1", "M1", "2024-01", "100.00", "U001");
    let (status, first) = post(&s, "/v1/events", admin, &ok).await;
    assert_eq!(status, StatusCode::OK);
    let (status, replay) = post(&s, "/v1/events", admin, &ok).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (json_of(&replay)["accepted"].clone(), json_of(&replay)["first_seq"].clone()),
        (json!(0), json_of(&first)["first_seq"].clone())
    );
    let (status, _) =
        post(&s, "/v1/events", admin, &contribution("c1", "M1", "2024-02", "100.00", "U001")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let stored = entries(&s).await;
    // 413: a body over the limit, and more events than a post may carry.
    let big = format!(
        r#"{{"id":"big","type":"appropriation","fund":"medical","amount":"1.00","memo":"{}"}}"#,
        "x".repeat(5000)
    );
    assert_eq!(post(&s, "/v1/events", admin, &big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    let six: Vec<String> = (0..6)
        .map(|i| {
            format!(r#"{{"id":"ap{i}","type":"appropriation","fund":"medical","amount":"1.00"}}"#)
        })
        .collect();
    let (status, text) = post(&s, "/v1/events", admin, &format!("[{}]", six.join(","))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert_eq!(entries(&s).await, stored);
    // Unknown routes and bad queries.
    assert_eq!(get(&s, "/v1/nothing", admin).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&s, "/v1/proofs/inclusion?seq=x", admin).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(get(&s, "/v1/proofs/inclusion?seq=999999", admin).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&s, "/v1/proofs/inclusion?seq=1&tree_size=999999", admin).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(get(&s, "/v1/members/M77/statement", admin).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&s, "/v1/members/M%20/statement", admin).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_of_members_records_are_logged_without_personal_data() {
    let (t, k) = setup();
    let s = t.serve(&[]);
    post(&s, "/v1/events", Some(&k.admin), &contribution("c1", "M1", "2024-01", "100.00", "U001"))
        .await;
    assert_eq!(get(&s, "/v1/members/M1/statement", Some(&k.auditor)).await.0, StatusCode::OK);
    assert_eq!(get(&s, "/v1/balance?member=M1", Some(&k.clerk)).await.0, StatusCode::OK);
    assert_eq!(get(&s, "/v1/members/M2/statement", Some(&k.poster)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(get(&s, "/v1/digest", Some(&k.auditor)).await.0, StatusCode::OK);
    drop(s);
    let log = std::fs::read_to_string(t.data().join("access.jsonl")).unwrap();
    let lines: Vec<Value> = log.lines().map(json_of).collect();
    assert_eq!(lines.len(), 2, "two reads of members' records, the refused one not served: {log}");
    assert_eq!(
        (lines[0]["token"].clone(), lines[0]["read"].clone(), lines[0]["member"].clone()),
        (json!("audit-1"), json!("statement"), json!("M1"))
    );
    assert_eq!(
        (lines[1]["token"].clone(), lines[1]["member"].clone()),
        (json!("clerk-1"), json!("M1"))
    );
    assert!(!log.contains("100.00") && !log.contains("jbt_"), "no amounts, no tokens: {log}");
    let verified = t.json(&["access", "verify"]);
    assert_eq!(verified["records"], json!(2));
    let tampered = log.replacen("M1", "M2", 1);
    std::fs::write(t.data().join("access.jsonl"), tampered).unwrap();
    let out = t.run(&["access", "verify"]);
    assert_eq!(out.status.code(), Some(3), "an edited access log is found");
    assert!(common::stderr(&out).contains("line 2"), "{}", common::stderr(&out));
    let tokens = std::fs::read_to_string(t.data().join("tokens.json")).unwrap();
    assert!(!tokens.contains(&k.admin[4..]), "tokens are kept hashed");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_answers_what_is_in_flight_and_loses_nothing_answered() {
    sigterm_under_load(&[]).await;
}

/// The same on one thread that runs the sequencer's step itself (`serve --one-thread`): the
/// posts in flight when SIGTERM comes are posted (by that thread during the grace period, or
/// by the shutdown), synced and answered, and none answered is lost.
#[tokio::test(flavor = "multi_thread")]
async fn one_thread_serving_answers_what_is_in_flight_at_sigterm_and_loses_nothing_answered() {
    sigterm_under_load(&["--one-thread"]).await;
}

/// With `--one-thread`, a batch (more than 256 waiting events) is posted on the blocking pool
/// and single events on the serving thread; both are stored and answered, and a refused batch
/// stores nothing.
#[tokio::test(flavor = "multi_thread")]
async fn one_thread_serving_posts_batches_and_single_events() {
    let (t, k) = setup();
    let s = t.serve(&["--one-thread"]);
    let before = entries(&s).await;
    let batch = |refused: bool| {
        let events: Vec<Value> = (0..600)
            .map(|i| {
                let amount = if refused && i == 599 { "99.00" } else { "100.00" };
                let line = contribution(
                    &format!("b{refused}-{i}"),
                    "M1",
                    &format!("{}-{:02}", 2021 + i / 12, i % 12 + 1),
                    amount,
                    "U001",
                );
                serde_json::from_str(&line).unwrap()
            })
            .take(if refused { 600 } else { 36 * 12 })
            .collect();
        Value::Array(events).to_string()
    };
    let (status, body) = post(&s, "/v1/events", Some(&k.admin), &batch(true)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("line 600"), "the wrong amount is named: {body}");
    assert_eq!(entries(&s).await, before, "a refused batch stores nothing");
    let (status, body) = post(&s, "/v1/events", Some(&k.admin), &batch(false)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json_of(&body)["accepted"].as_u64(), Some(36 * 12));
    let single = contribution("s1", "M2", "2024-01", "100.00", "U002");
    let (status, body) = post(&s, "/v1/events", Some(&k.admin), &single).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(entries(&s).await, before + 36 * 12 + 1);
    assert!(s.terminate().success());
    assert!(t.run(&["verify"]).status.success());
}

async fn sigterm_under_load(serve_args: &[&str]) {
    let (t, k) = setup();
    let s = t.serve(serve_args);
    let before = entries(&s).await;
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, u64)>::new()));
    let mut tasks = Vec::new();
    for m in 0..16 {
        let (url, token, answered) = (s.url("/v1/events"), k.admin.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let body = enroll(
                &format!("g{m}"),
                &format!("G{m}"),
                "officer",
                "U001",
                "2014-01-01",
                "10000.00",
            );
            let resp = client.post(&url).bearer_auth(&token).body(body).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            for month in 0..144 {
                let id = format!("g{m}-{month}");
                let period = format!("{}-{:02}", 2014 + month / 12, month % 12 + 1);
                let body = contribution(&id, &format!("G{m}"), &period, "100.00", "U001");
                let Ok(resp) = client.post(&url).bearer_auth(&token).body(body).send().await else {
                    return; // the listener has closed
                };
                // Every request the server took is answered in full: no error status.
                assert_eq!(resp.status(), StatusCode::OK, "{id}");
                let Ok(v) = resp.json::<Value>().await else { return };
                answered.lock().unwrap().push((id, v["first_seq"].as_u64().unwrap()));
            }
        }));
    }
    while answered.lock().unwrap().len() < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = s.terminate();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(status.success(), "SIGTERM ends the server cleanly: {status:?}");
    let answered = answered.lock().unwrap().clone();
    let mut seqs: Vec<u64> = answered.iter().map(|(_, seq)| *seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), answered.len(), "each answered post has its own entry");
    assert!(t.run(&["verify"]).status.success());
    let journal =
        t.json(&["journal", "--json", "--from", &(before + 1).to_string(), "--limit", "10000"]);
    let stored: std::collections::HashMap<String, u64> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event"]["id"].as_str().unwrap().to_string(), e["seq"].as_u64().unwrap()))
        .collect();
    for (id, seq) in &answered {
        assert_eq!(stored.get(id), Some(seq), "answered post {id} is in the journal at {seq}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stalls_mid_body_gets_408_and_nothing_is_stored() {
    use std::io::{Read, Write};
    let (t, k) = setup();
    let s = t.serve(&["--timeout-secs", "1"]);
    let before = entries(&s).await;
    // A plain blocking socket: the server is another process.
    let mut conn = std::net::TcpStream::connect(&s.addr).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let body = contribution("c1", "M1", "2024-01", "100.00", "U001");
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-length: {}\r\n\r\n",
        k.admin,
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&body.as_bytes()[..10]).unwrap();
    let started = std::time::Instant::now();
    let mut answer = vec![0u8; 1024];
    let n = conn.read(&mut answer).expect("answered within the read timeout");
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(entries(&s).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_log_holds_no_token_body_or_amount() {
    let (t, k) = setup();
    let log_path = t.dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // Everything the service logs, down to debug, as JSON lines.
    let s = t.serve_logging(&["--log", "debug", "--log-json"], log);
    let ok = contribution("U001:c1", "M1", "2024-01", "100.00", "U001");
    assert_eq!(post(&s, "/v1/events", Some(&k.poster), &ok).await.0, StatusCode::OK);
    let bad = contribution("U001:c2", "M1", "2024-02", "123.45", "U001");
    assert_eq!(
        post(&s, "/v1/events", Some(&k.poster), &bad).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(post(&s, "/v1/events", Some(&k.auditor), &ok).await.0, StatusCode::FORBIDDEN);
    assert_eq!(post(&s, "/v1/events", Some("jbt_wrong"), &ok).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&s, "/v1/members/M1/statement", Some(&k.auditor)).await.0, StatusCode::OK);
    assert!(s.terminate().success());
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = text.lines().map(json_of).collect();
    assert!(lines.len() >= 5, "the server logged its requests: {text}");
    assert!(text.contains("finance-U001") && text.contains("audit-1"), "token names: {text}");
    for secret in
        [&k.poster[4..], &k.auditor[4..], "jbt_wrong", "100.00", "123.45", "10000.00", "\"period\""]
    {
        assert!(!text.contains(secret), "the log holds {secret:?}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_tokens_so_added_ones_work_and_removed_ones_are_refused() {
    let (t, k) = setup();
    let s = t.serve(&[]);
    let hangup = |s: &TestServer| {
        let pid = s.child.id().to_string();
        assert!(
            std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success()
        );
    };
    let new = t.token("audit-2", "auditor", None);
    assert_eq!(
        get(&s, "/v1/balance", Some(&new)).await.0,
        StatusCode::UNAUTHORIZED,
        "not yet read"
    );
    let removed = t.run(&["token", "remove", "--name", "audit-1"]);
    assert!(removed.status.success(), "{}", common::stderr(&removed));
    hangup(&s);
    let mut status = StatusCode::UNAUTHORIZED;
    for _ in 0..100 {
        status = get(&s, "/v1/balance", Some(&new)).await.0;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::OK, "the added token works after SIGHUP");
    assert_eq!(
        get(&s, "/v1/balance", Some(&k.auditor)).await.0,
        StatusCode::UNAUTHORIZED,
        "removed"
    );
    // A broken tokens file is not taken: the tokens stay as they were.
    std::fs::write(t.data().join("tokens.json"), "{ not json").unwrap();
    hangup(&s);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(get(&s, "/v1/balance", Some(&new)).await.0, StatusCode::OK);
    assert_eq!(get(&s, "/health", None).await.0, StatusCode::OK);
    // Removing a name that is not there is refused.
    assert_eq!(t.run(&["token", "remove", "--name", "nobody"]).status.code(), Some(2));
}

#[test]
fn the_openapi_document_lists_exactly_the_served_routes() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> =
        junbao_server::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    served.sort();
    assert_eq!(documented, served);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_reports_every_refused_line_with_field_and_article_and_stores_nothing() {
    let (t, k) = setup();
    let s = t.serve(&[]);
    let before = entries(&s).await;
    let month = |i: usize| format!("{}-{:02}", 2022 + (i - 1) / 12, (i - 1) % 12 + 1);
    // 25 months at the wrong amount: more refusals than a post lists (20).
    let bad: Vec<String> = (1..=25)
        .map(|i| contribution(&format!("U001:c{i}"), "M1", &month(i), "99.00", "U001"))
        .collect();
    let body = format!("[{}]", bad.join(","));
    let (status, text) = post(&s, "/v1/events?dry_run=true", Some(&k.poster), &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let v = json_of(&text);
    assert_eq!((v["dry_run"].clone(), v["stored"].clone()), (json!(true), json!(0)));
    let refusals = v["refusals"].as_array().unwrap();
    assert_eq!(refusals.len(), 25);
    for (i, r) in refusals.iter().enumerate() {
        assert_eq!(r["line"], i + 1);
        assert_eq!(r["field"], "amount");
        assert_eq!(r["article"], "Art. 21");
        assert_eq!(r["kind"], "invalid");
    }
    assert_eq!(entries(&s).await, before);

    // A clean batch: what the post would store, and still nothing stored.
    let good: Vec<String> = (1..=3)
        .map(|i| contribution(&format!("U001:c{i}"), "M1", &month(i), "100.00", "U001"))
        .collect();
    let body = format!("[{}]", good.join(","));
    let (status, text) = post(&s, "/v1/events?dry_run=true", Some(&k.poster), &body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v = json_of(&text);
    assert_eq!((v["accepted"].clone(), v["stored"].clone()), (json!(3), json!(0)));
    assert_eq!(v["first_seq"], before + 1);
    assert_eq!(entries(&s).await, before);
    // The same batch posted for real takes the sequence numbers the dry run named.
    let (status, text) = post(&s, "/v1/events", Some(&k.poster), &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&text)["first_seq"], before + 1);

    // Outside the poster's units: 403, as the post would be, the line named.
    let other = contribution("x1", "M2", "2024-01", "100.00", "U002");
    let (status, text) = post(&s, "/v1/events?dry_run=true", Some(&k.poster), &other).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json_of(&text)["refusals"][0]["kind"], "forbidden");
    let (status, _) = post(&s, "/v1/events?dry_run=maybe", Some(&k.poster), &other).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
