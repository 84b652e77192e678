//! The web console in a real browser: headless Chromium driven over WebDriver (chromedriver on
//! a loopback port), against a `junbao` server on another loopback port. Each desk is used as
//! its clerk would, and a screenshot of it is saved: into the test's scratch folder
//! (`CARGO_TARGET_TMPDIR/console`), or, with `JUNBAO_CONSOLE_SHOTS=docs/console` (`make
//! screenshots`), over the copies committed in docs/console/ that docs/CONSOLE.md shows. A plain
//! `make test` leaves the clone unchanged.
//!
//! Needs Debian's `chromium`, `chromium-driver` and `poppler-utils` (scripts/setup.sh).
//!
//! Why one file of about 630 lines: the four desks' scenarios share one fixture ledger, one
//! chromedriver per test and the browser helpers below (sign in, pin a key, wait for a node);
//! split into files, each would need its own copy of those or a second `common` module.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestLedger, contribution, enroll};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a page may take to show what a test waits for (a bound on waiting, not a timing
/// assertion: a correct page shows it in well under a second).
const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is installed (scripts/setup.sh)");
    // Killed and waited for on every path (Drop), the panic below included.
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    // Bounded: 200 attempts of 50 ms.
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return driver;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("chromedriver did not listen on {port}");
}

/// A browser session: headless Chromium with a fresh profile and nothing that calls out.
struct Browser {
    client: Client,
    _profile: tempfile::TempDir,
    _driver: Driver,
}

async fn browser() -> Browser {
    // The free port chromedriver is given may be taken by another test's listener between the
    // check and chromedriver's bind (the probe then reaches that one): a session that cannot
    // connect is tried again with a new driver on a new port, three times at most.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match browser_session().await {
            Ok(browser) => return browser,
            Err(e) if attempt < 3 => eprintln!("no Chromium session ({e}); again"),
            Err(e) => panic!("a Chromium session: {e}"),
        }
    }
}

async fn browser_session() -> Result<Browser, fantoccini::error::NewSessionError> {
    let driver = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
    });
    let caps = caps.as_object().unwrap().clone().into_iter().collect();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await?;
    Ok(Browser { client, _profile: profile, _driver: driver })
}

/// A server on a loopback port, in this process (so a test may set its test hooks).
struct Served {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Served {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

async fn serve(l: &TestLedger, tamper_proofs_of: Option<&str>) -> Served {
    serve_with(l, |config| config.test_tamper_proofs_of = tamper_proofs_of.map(str::to_string))
        .await
}

/// [`serve`] with the server's configuration changed by `set`.
async fn serve_with(l: &TestLedger, set: impl FnOnce(&mut junbao_server::ServerConfig)) -> Served {
    let mut config = junbao_server::ServerConfig::for_ledger(l.data());
    set(&mut config);
    let server = junbao_server::Server::open(config).expect("the server opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .run(listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("the server runs");
    });
    Served { url, stop: Some(tx), task: Some(task) }
}

struct Tokens {
    poster: String,
    auditor: String,
    clerk: String,
    admin: String,
}

fn subsidy(id: &str, member: &str, period: &str, amount: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"subsidy","member":"{member}","fund":"medical","period":"{period}","amount":"{amount}","basis":"match"}}"#
    )
}

/// A premium or match taking effect on the 20th of its month, as a unit's payroll would.
fn dated(event: String, period: &str) -> String {
    let body = event.strip_suffix('}').expect("an event object");
    format!(r#"{body},"value_date":"{period}-20"}}"#)
}

/// Three officers in U001 (M1, M3, M4) and one in U002 (M2), half a year of medical premiums,
/// some matched, and M4 discharged.
fn ledger() -> (TestLedger, Tokens) {
    let l = TestLedger::new();
    let tokens = Tokens {
        poster: l.token("finance-U001", "poster", Some("U001")),
        auditor: l.token("audit-1", "auditor", None),
        clerk: l.token("clerk-1", "clerk", None),
        admin: l.token("admin-1", "admin", None),
    };
    let mut lines = vec![
        enroll("e1", "M1", "officer", "U001", "2020-01-01", "10000.00"),
        enroll("e2", "M2", "officer", "U002", "2020-01-01", "12000.00"),
        enroll("e3", "M3", "officer", "U001", "2020-01-01", "10000.00"),
        enroll("e4", "M4", "officer", "U001", "2020-01-01", "10000.00"),
    ];
    for m in 1..=6 {
        let p = format!("2024-{m:02}");
        for (member, unit, amount) in
            [("M1", "U001", "100.00"), ("M2", "U002", "120.00"), ("M4", "U001", "100.00")]
        {
            lines.push(dated(
                contribution(&format!("c-{member}-{p}"), member, &p, amount, unit),
                &p,
            ));
            // M1's last two months await their match.
            if !(member == "M1" && m > 4) {
                lines.push(dated(subsidy(&format!("s-{member}-{p}"), member, &p, amount), &p));
            }
        }
    }
    lines.push(
        r#"{"id":"d4","type":"discharge","member":"M4","on":"2024-07-31","route":"employee"}"#
            .into(),
    );
    l.post_ok(&lines.join("\n"));
    (l, tokens)
}

/// The ledger's public key, derived from its signing key file: what an auditor pins.
fn public_key(l: &TestLedger) -> String {
    let seed = std::fs::read_to_string(junbao_engine::default_key_path(&l.data())).unwrap();
    let seed: [u8; 32] = hex::decode(seed.trim()).unwrap().try_into().unwrap();
    hex::encode(ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes())
}

async fn http(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn entries(s: &Served) -> u64 {
    let (_, health) = http(reqwest::Method::GET, format!("{}/health", s.url), None, None).await;
    health["entries"].as_u64().unwrap()
}

async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait().at_most(WAIT).for_element(Locator::Css(css)).await.unwrap_or_else(|e| {
        panic!("{css} did not appear: {e}");
    })
}

/// Waits until the element with `id` holds `needle` (a page replaces what it shows).
async fn wait_for_text(c: &Client, id: &str, needle: &str) -> fantoccini::elements::Element {
    let xpath = format!("//*[@id='{id}'][contains(., '{needle}')]");
    c.wait().at_most(WAIT).for_element(Locator::XPath(&xpath)).await.unwrap_or_else(|e| {
        panic!("#{id} never said {needle:?}: {e}");
    })
}

async fn text(c: &Client, css: &str) -> String {
    wait_for(c, css).await.text().await.unwrap()
}

async fn sign_in(c: &Client, s: &Served, token: &str) {
    c.goto(&format!("{}/", s.url)).await.unwrap();
    wait_for(c, "#token").await.send_keys(token).await.unwrap();
    c.find(Locator::Css("#signin-go")).await.unwrap().click().await.unwrap();
    wait_for(c, "#who-name").await;
}

async fn sign_out(c: &Client) {
    c.find(Locator::Css("#signout")).await.unwrap().click().await.unwrap();
    wait_for(c, "#token").await;
}

async fn exists(c: &Client, css: &str) -> bool {
    !c.find_all(Locator::Css(css)).await.unwrap().is_empty()
}

fn shots() -> PathBuf {
    let dir = match std::env::var_os("JUNBAO_CONSOLE_SHOTS") {
        Some(d) => Path::new(env!("CARGO_MANIFEST_DIR")).join(d),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("console"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A screenshot of the whole page (the window is made as tall as the page first).
async fn screenshot(c: &Client, name: &str) {
    let height = c
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(1000)
        .clamp(600, 4000);
    c.set_window_size(1280, height as u32 + 120).await.unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(name), png).unwrap();
    c.set_window_size(1280, 1000).await.unwrap();
}

/// Pins the ledger's key on the page (typed in, as an auditor or clerk would).
async fn pin(c: &Client, key: &str) {
    let input = wait_for(c, "form.pinned input[name=pinned_key]").await;
    input.clear().await.unwrap();
    input.send_keys(key).await.unwrap();
    c.find(Locator::Css("form.pinned button")).await.unwrap().click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_only_its_desk_and_the_api_refuses_what_the_role_may_not_do() {
    let (l, t) = ledger();
    let s = serve(&l, None).await;
    let b = browser().await;
    let c = &b.client;

    sign_in(c, &s, &t.poster).await;
    wait_for(c, "#finance-desk").await;
    assert!(!exists(c, "#audit-desk").await && !exists(c, "#transfer-desk").await);
    assert!(!exists(c, "nav.tabs").await, "one desk, no tabs");
    assert!(text(c, "#who-name").await.contains("poster"));
    sign_out(c).await;

    // By keyboard: the token, then Enter submits the form.
    c.goto(&format!("{}/", s.url)).await.unwrap();
    wait_for(c, "#token").await.send_keys(&format!("{}\u{e007}", t.auditor)).await.unwrap();
    wait_for(c, "#audit-desk").await;
    assert!(!exists(c, "#finance-desk").await && !exists(c, "#transfer-desk").await);
    sign_out(c).await;

    sign_in(c, &s, &t.clerk).await;
    wait_for(c, "#transfer-desk").await;
    assert!(!exists(c, "#finance-desk").await && !exists(c, "#audit-desk").await);
    sign_out(c).await;

    sign_in(c, &s, &t.admin).await;
    for desk in ["finance", "audit", "transfer"] {
        wait_for(c, &format!("#tab-{desk}")).await.click().await.unwrap();
        wait_for(c, &format!("#{desk}-desk")).await;
    }
    sign_out(c).await;

    // A token that is not valid is refused at the door, and not kept.
    c.goto(&format!("{}/", s.url)).await.unwrap();
    wait_for(c, "#token").await.send_keys("jbt_not-a-token").await.unwrap();
    c.find(Locator::Css("#signin-go")).await.unwrap().click().await.unwrap();
    assert!(text(c, "#signin .status.bad").await.contains("not valid"));
    let kept = c.execute("return sessionStorage.getItem('junbao.token')", vec![]).await.unwrap();
    assert_eq!(kept, Value::Null);

    // The API refuses what the page does not show, whoever asks.
    use reqwest::Method;
    let refusals = [
        (Method::GET, "/v1/reports/monthly", &t.poster, None, 403),
        (Method::GET, "/v1/access-log", &t.poster, None, 403),
        (Method::GET, "/v1/units/U002/members", &t.poster, None, 403),
        (Method::GET, "/v1/transfers/pending", &t.poster, None, 403),
        (Method::GET, "/v1/transfers/pending", &t.auditor, None, 403),
        (Method::GET, "/v1/access-log", &t.clerk, None, 403),
        (Method::GET, "/v1/reports/awaiting-match", &t.clerk, None, 403),
        (
            Method::POST,
            "/v1/events?dry_run=true",
            &t.clerk,
            Some(json!({"id":"x","type":"appropriation","fund":"medical","amount":"1.00"})),
            403,
        ),
        (
            Method::POST,
            "/v1/transfers",
            &t.auditor,
            Some(json!({"member":"M4","fund":"medical","agency":"SI-1"})),
            403,
        ),
    ];
    for (method, path, token, body, status) in refusals {
        let (got, _) =
            http(method.clone(), format!("{}{path}", s.url), Some(token.as_str()), body).await;
        assert_eq!(got, status, "{method} {path}");
    }
    let (got, _) = http(Method::GET, format!("{}/v1/session", s.url), None, None).await;
    assert_eq!(got, 401);
    let (got, unit) = http(
        Method::GET,
        format!("{}/v1/units/U001/members", s.url),
        Some(t.poster.as_str()),
        None,
    )
    .await;
    assert_eq!(got, 200);
    assert!(
        unit["members"].as_array().unwrap().iter().all(|m| m["member"] != "M2"),
        "a unit's answer names no member of another unit (Art. 43)"
    );
    b.client.close().await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posters_dry_run_shows_the_bad_line_and_stores_nothing_then_the_corrected_file_posts() {
    let (l, t) = ledger();
    let s = serve(&l, None).await;
    let b = browser().await;
    let c = &b.client;
    let dir = tempfile::tempdir().unwrap();
    let month = |m3_amount: &str| {
        [
            contribution("U001:c-M1-2024-07", "M1", "2024-07", "100.00", "U001"),
            subsidy("U001:s-M1-2024-07", "M1", "2024-07", "100.00"),
            // Line 3: M3's premium is 1% of 10,000.00 (Art. 21); 99.00 is refused.
            contribution("U001:c-M3-2024-07", "M3", "2024-07", m3_amount, "U001"),
            String::new(),
            subsidy("U001:s-M3-2024-07", "M3", "2024-07", "100.00"),
        ]
        .join("\n")
    };
    let bad = dir.path().join("2024-07.jsonl");
    std::fs::write(&bad, month("99.00")).unwrap();
    let before = entries(&s).await;

    sign_in(c, &s, &t.poster).await;
    wait_for(c, "#unit-members").await;
    wait_for(c, "#month-file").await.send_keys(bad.to_str().unwrap()).await.unwrap();
    c.find(Locator::Css("#check-file")).await.unwrap().click().await.unwrap();
    let refused = wait_for(c, "#refusals tbody tr").await;
    assert_eq!(refused.attr("data-line").await.unwrap().as_deref(), Some("3"));
    let row = refused.text().await.unwrap();
    assert!(row.contains("amount") && row.contains("Art. 21"), "{row}");
    // Line 5 depends on line 3 (no premium to match) and is refused too; lines 1-2 pass.
    let lines: Vec<String> = {
        let mut v = Vec::new();
        for r in c.find_all(Locator::Css("#refusals tbody tr")).await.unwrap() {
            v.push(r.attr("data-line").await.unwrap().unwrap());
        }
        v
    };
    assert_eq!(lines, ["3", "5"]);
    assert!(!c.find(Locator::Css("#post-file")).await.unwrap().is_enabled().await.unwrap());
    assert_eq!(entries(&s).await, before, "the dry run stored nothing");
    screenshot(c, "finance-dry-run.png").await;

    // The corrected file (a CSV this time, the other accepted form) checks clean and posts.
    let good = dir.path().join("2024-07.csv");
    std::fs::write(
        &good,
        "id,type,member,fund,period,amount,unit,basis\n\
         U001:c-M1-2024-07,contribution,M1,medical,2024-07,100.00,U001,\n\
         U001:s-M1-2024-07,subsidy,M1,medical,2024-07,100.00,,match\n\
         U001:c-M3-2024-07,contribution,M3,medical,2024-07,100.00,U001,\n\
         U001:s-M3-2024-07,subsidy,M3,medical,2024-07,100.00,,match\n",
    )
    .unwrap();
    let input = c.find(Locator::Css("#month-file")).await.unwrap();
    input.send_keys(good.to_str().unwrap()).await.unwrap();
    c.find(Locator::Css("#check-file")).await.unwrap().click().await.unwrap();
    let ok = text(c, "#dry-run .status.ok").await;
    assert!(ok.contains("4 new entries would be stored"), "{ok}");
    assert_eq!(entries(&s).await, before);
    c.find(Locator::Css("#post-file")).await.unwrap().click().await.unwrap();
    let posted = text(c, "#post-result .status.ok").await;
    assert!(posted.contains("4 entries stored"), "{posted}");
    assert_eq!(entries(&s).await, before + 4);
    // The unit view shows the new month, and M1's two unmatched months still await a match.
    wait_for_text(c, "unit-months", "2024-07").await;
    assert_eq!(text(c, "#awaiting-total").await, "200.00");
    screenshot(c, "finance.png").await;
    b.client.close().await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditors_statement_is_proven_in_the_browser_and_a_tampered_proof_fails() {
    let (l, t) = ledger();
    // The test hook: statements of M2 are served with one proof altered.
    let s = serve(&l, Some("M2")).await;
    let b = browser().await;
    let c = &b.client;
    sign_in(c, &s, &t.auditor).await;
    pin(c, &public_key(&l)).await;
    wait_for_text(c, "digest-verdict", "signature valid with the pinned key").await;
    // The digest anchors the access log (FORMAT.md §6, v2 layout), and the browser checked that.
    assert!(text(c, "#digest-access").await.contains("lines, head"));

    let member = wait_for(c, "#statement-member").await;
    member.send_keys("M1").await.unwrap();
    c.find(Locator::Css("#statement-go")).await.unwrap().click().await.unwrap();
    let summary = wait_for(c, "#statement-summary").await;
    let passed = summary.attr("data-passed").await.unwrap().unwrap();
    let total = summary.attr("data-total").await.unwrap().unwrap();
    // M1: enrolment, six premiums, four matches.
    assert_eq!((passed.as_str(), total.as_str()), ("11", "11"));
    assert_eq!(c.find_all(Locator::Css("#statement tr.proof-ok")).await.unwrap().len(), 11);
    assert!(!exists(c, "#statement tr.proof-bad").await);
    // The reports and the access log are on the desk too; the statement read is logged.
    wait_for(c, "#trial-balance").await;
    wait_for(c, "#charts-view figure").await;
    c.find(Locator::Css("#access-log-view")).await.unwrap();
    screenshot(c, "audit.png").await;

    let member = c.find(Locator::Css("#statement-member")).await.unwrap();
    member.clear().await.unwrap();
    member.send_keys("M2").await.unwrap();
    c.find(Locator::Css("#statement-go")).await.unwrap().click().await.unwrap();
    let bad = wait_for(c, "#statement tr.proof-bad").await;
    assert!(bad.text().await.unwrap().contains("failed"));
    let summary = wait_for(c, "#statement-summary").await;
    let passed = summary.attr("data-passed").await.unwrap().unwrap();
    let total = summary.attr("data-total").await.unwrap().unwrap();
    assert_eq!(passed.parse::<u32>().unwrap() + 1, total.parse::<u32>().unwrap());
    screenshot(c, "audit-tampered.png").await;

    let (_, log) = http(
        reqwest::Method::GET,
        format!("{}/v1/access-log", s.url),
        Some(t.auditor.as_str()),
        None,
    )
    .await;
    assert!(
        log["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["member"] == "M1" && r["read"] == "statement" && r["token"] == "audit-1")
    );
    b.client.close().await.unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_exports_and_prints_a_package_and_a_package_with_a_changed_amount_is_not_verified()
{
    let (l, t) = ledger();
    let s = serve(&l, None).await;
    let b = browser().await;
    let c = &b.client;
    sign_in(c, &s, &t.clerk).await;
    let pending = text(c, "#pending").await;
    assert!(pending.contains("M4") && pending.contains("awaiting export"), "{pending}");
    pin(c, &public_key(&l)).await;

    wait_for(c, "#export-member").await.send_keys("M4").await.unwrap();
    c.find(Locator::Css("#export-fund option[value=medical]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#export-agency")).await.unwrap().send_keys("SI-110105").await.unwrap();
    c.find(Locator::Css("#export-go")).await.unwrap().click().await.unwrap();
    let exported = text(c, "#export-result .status.ok").await;
    assert!(exported.contains("verified with the pinned key"), "{exported}");
    assert_eq!(text(c, "#sheet-total").await, "¥ 1,200.00");
    screenshot(c, "transfer.png").await;

    // The browser's print: a PDF of the sheet alone, with the member and the total.
    let pdf = c.print(fantoccini::wd::PrintConfiguration::default()).await.unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let dir = tempfile::tempdir().unwrap();
    let pdf_path = shots().join("transfer-sheet.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let out = Command::new("pdftotext").arg(&pdf_path).arg("-").output().expect("pdftotext");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("M4") && printed.contains("1,200.00"), "{printed}");
    assert!(printed.contains("SI-110105") && printed.contains("Total transferred"), "{printed}");
    assert!(!printed.contains("Drop a package file"), "only the sheet prints");

    // The same package (re-issued for the open transfer) checked offline: as exported it
    // verifies; with one amount changed it does not. Neither check calls the server.
    let (status, package) = http(
        reqwest::Method::POST,
        format!("{}/v1/transfers", s.url),
        Some(t.clerk.as_str()),
        Some(json!({"member":"M4","fund":"medical","agency":"SI-110105"})),
    )
    .await;
    assert_eq!(status, 200);
    let file = dir.path().join("package.json");
    std::fs::write(&file, package.to_string()).unwrap();
    let requests = "return performance.getEntriesByType('resource').length";
    let before = c.execute(requests, vec![]).await.unwrap();
    c.find(Locator::Css("#package-file"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    let verdict = wait_for(c, "#package-verdict").await;
    assert_eq!(verdict.attr("data-verified").await.unwrap().as_deref(), Some("true"));

    let mut changed = package.clone();
    changed["totals"]["total"] = json!("1300.00");
    changed["years"][0]["personal"] = json!("700.00");
    changed["totals"]["personal"] = json!("700.00");
    // Dropped on the page, as a file from the desktop.
    c.execute(
        "const dt = new DataTransfer();
         dt.items.add(new File([arguments[0]], 'changed.json', {type: 'application/json'}));
         document.getElementById('dropzone').dispatchEvent(
             new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
        vec![json!(changed.to_string())],
    )
    .await
    .unwrap();
    let verdict = wait_for_text(c, "package-verdict", "changed.json").await;
    assert_eq!(verdict.attr("data-verified").await.unwrap().as_deref(), Some("false"));
    let checks = text(c, "#package-checks").await;
    assert!(checks.contains("totals") && checks.contains("1200.00"), "{checks}");
    let after = c.execute(requests, vec![]).await.unwrap();
    assert_eq!(before, after, "the offline check sent no request");
    screenshot(c, "transfer-check.png").await;
    // A field the browser does not recompute (the months of service) is still covered by the
    // signature over the whole package; an unsigned package is not taken either.
    let mut longer = package.clone();
    longer["service"]["months"] = json!(238);
    let mut unsigned = package.clone();
    unsigned.as_object_mut().unwrap().remove("package_signature");
    for (name, forged) in [("longer.json", longer), ("unsigned.json", unsigned)] {
        c.execute(
            "const dt = new DataTransfer();
             dt.items.add(new File([arguments[0]], arguments[1], {type: 'application/json'}));
             document.getElementById('dropzone').dispatchEvent(
                 new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
            vec![json!(forged.to_string()), json!(name)],
        )
        .await
        .unwrap();
        let verdict = wait_for_text(c, "package-verdict", name).await;
        assert_eq!(
            verdict.attr("data-verified").await.unwrap().as_deref(),
            Some("false"),
            "{name}"
        );
        let checks = text(c, "#package-checks").await;
        assert!(checks.contains("package signature"), "{name}: {checks}");
    }
    let after = c.execute(requests, vec![]).await.unwrap();
    assert_eq!(before, after, "the offline checks sent no request");

    // Confirming the receipt moves the member to `confirmed`.
    let (status, _) = http(
        reqwest::Method::POST,
        format!("{}/v1/transfers/confirm", s.url),
        Some(t.clerk.as_str()),
        Some(json!({"member":"M4","fund":"medical","agency":"SI-110105"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, pending) = http(
        reqwest::Method::GET,
        format!("{}/v1/transfers/pending", s.url),
        Some(t.clerk.as_str()),
        None,
    )
    .await;
    let m4 = pending["members"].as_array().unwrap().iter().find(|m| m["member"] == "M4").unwrap();
    assert!(m4["funds"].as_array().unwrap().iter().any(|f| f["stage"] == "confirmed"));
    b.client.close().await.unwrap();
    s.stop().await;
}

/// Years out of memory (docs/ARCHITECTURE.md): a unit's view counts every month of its members,
/// also those of years the server's ledger let go of when it opened (five years of premiums and
/// matches; the open keeps each member's last two), read back from their pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unit_view_counts_every_month_of_years_out_of_memory() {
    let l = TestLedger::new();
    let poster = l.token("finance-U001", "poster", Some("U001"));
    let mut lines = vec![
        enroll("e1", "M1", "officer", "U001", "2020-01-01", "10000.00"),
        enroll("e2", "M2", "officer", "U002", "2020-01-01", "12000.00"),
    ];
    for year in 2021..=2025 {
        for m in 1..=12 {
            let p = format!("{year}-{m:02}");
            for (member, unit, amount) in [("M1", "U001", "100.00"), ("M2", "U002", "120.00")] {
                lines.push(dated(
                    contribution(&format!("c-{member}-{p}"), member, &p, amount, unit),
                    &p,
                ));
                lines.push(dated(subsidy(&format!("s-{member}-{p}"), member, &p, amount), &p));
            }
        }
    }
    l.post_ok(&lines.join("\n"));
    // The default (two years in memory), then every year kept (`serve --resident-years 0`:
    // the years the open let go of read back at the start).
    for resident in [None, Some(0)] {
        let s = serve_with(&l, |config| config.resident_years = resident).await;
        let (got, unit) = http(
            reqwest::Method::GET,
            format!("{}/v1/units/U001/members", s.url),
            Some(poster.as_str()),
            None,
        )
        .await;
        assert_eq!(got, 200);
        let months = unit["months"].as_array().unwrap();
        assert_eq!(months.len(), 60, "every month of 2021 – 2025 ({resident:?})");
        assert_eq!(months[0]["period"], "2021-01");
        assert!(months.iter().all(|m| m["premiums"] == "100.00" && m["matches"] == "100.00"));
        let m1 = &unit["members"].as_array().unwrap()[0];
        assert_eq!((m1["member"].as_str(), m1["premiums"].as_str()), (Some("M1"), Some("6000.00")));
        s.stop().await;
    }
}
