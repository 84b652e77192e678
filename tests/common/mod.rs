//! Helpers shared by the integration tests: run the real `junbao` binary on a temporary ledger.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_junbao"))
}

/// A fresh ledger in a temporary folder, created with `junbao init`.
pub struct TestLedger {
    pub dir: tempfile::TempDir,
}

impl TestLedger {
    pub fn new() -> TestLedger {
        let t = TestLedger { dir: tempfile::tempdir().expect("temp dir") };
        let out = t.run(&["init"]);
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        t
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("ledger")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(bin()).arg("--data").arg(self.data()).args(args).output().expect("run junbao")
    }

    /// `junbao post -` with `input` on stdin.
    pub fn post(&self, input: &str) -> Output {
        let mut child = Command::new(bin())
            .arg("--data")
            .arg(self.data())
            .args(["post", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn junbao");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        child.wait_with_output().expect("wait junbao")
    }

    pub fn post_ok(&self, input: &str) -> serde_json::Value {
        let out = self.post(input);
        assert!(out.status.success(), "post failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("post prints JSON")
    }

    /// The ledger's signing key file (`DIR.key` beside the ledger folder, the default).
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("ledger.key")
    }

    /// The ledger's public key as an agency pins it: `junbao key show` written to a file.
    pub fn public_key_file(&self) -> PathBuf {
        let out = self.run(&["key", "show"]);
        assert!(out.status.success(), "key show failed: {}", String::from_utf8_lossy(&out.stderr));
        let path = self.dir.path().join("ledger.pub");
        std::fs::write(&path, &out.stdout).expect("write the public key");
        path
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

/// The balance of one account in `balance --json` output, in yuan text.
pub fn account_balance(balance: &serde_json::Value, account: &str) -> Option<String> {
    balance["funds"].as_array()?.iter().find_map(|f| {
        f["accounts"].as_array()?.iter().find_map(|a| {
            (a["account"] == account).then(|| a["balance"].as_str().unwrap_or("").to_string())
        })
    })
}

pub fn enroll(id: &str, member: &str, category: &str, unit: &str, on: &str, pay: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"enroll","member":"{member}","category":"{category}","unit":"{unit}","enlisted_on":"{on}","monthly_pay":"{pay}"}}"#
    )
}

pub fn contribution(id: &str, member: &str, period: &str, amount: &str, unit: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"contribution","member":"{member}","fund":"medical","period":"{period}","amount":"{amount}","unit":"{unit}"}}"#
    )
}

/// A `junbao serve` child process on a free loopback port; killed when dropped.
pub struct TestServer {
    pub child: std::process::Child,
    pub addr: String,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits: the server finishes what is in flight and exits.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        assert!(ok.success());
        self.child.wait().expect("wait for the server")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestLedger {
    /// `junbao token add`; returns the token.
    pub fn token(&self, name: &str, role: &str, units: Option<&str>) -> String {
        let mut args = vec!["token", "add", "--name", name, "--role", role];
        if let Some(u) = units {
            args.extend(["--units", u]);
        }
        let v = self.json(&args);
        v["token"].as_str().expect("a token").to_string()
    }

    /// Starts `junbao serve --addr 127.0.0.1:0 EXTRA...` and reads the address it prints.
    pub fn serve(&self, extra: &[&str]) -> TestServer {
        self.serve_logging(extra, Stdio::inherit())
    }

    /// [`TestLedger::serve`] with the server's log (stderr) going to `log`.
    pub fn serve_logging(&self, extra: &[&str], log: impl Into<Stdio>) -> TestServer {
        use std::io::BufRead;
        let mut child = Command::new(bin())
            .arg("--data")
            .arg(self.data())
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(if extra.contains(&"--log") { &[][..] } else { &["--log", "warn"][..] })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn junbao serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server's first line");
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("server said {line:?}: {e}"));
        TestServer { child, addr: v["listening"].as_str().expect("listening").to_string() }
    }
}

/// The enrolment of officer number `m` (`M0000`…, unit U001, pay 10,000.00 → premium 100.00),
/// for tests that post many members.
pub fn numbered_officer(m: usize) -> String {
    format!(
        r#"{{"id":"U001:enroll-{m}","type":"enroll","member":"M{m:04}","category":"officer","unit":"U001","enlisted_on":"2014-01-01","monthly_pay":"10000.00"}}"#
    )
}

/// Officer `m`'s medical premium for the `k`-th month after 2014-01.
pub fn numbered_premium(m: usize, k: usize) -> String {
    format!(
        r#"{{"id":"U001:c-{m}-{k}","type":"contribution","member":"M{m:04}","fund":"medical","period":"{:04}-{:02}","amount":"100.00","unit":"U001"}}"#,
        2014 + k / 12,
        k % 12 + 1
    )
}

/// Verifies `ledger` and checks that the stored state was compared by its digest: its records
/// are those the replayed state makes, byte for byte (a stored record in another encoding of
/// the same value would have it loaded whole, which passes but costs time).
///
/// It verifies twice: as `junbao verify` does, and with the replay looking for members' older
/// years to let go of after every few entries (a look is due every million entries or more,
/// which no test ledger reaches), reading them back where an entry needs them. The two must
/// agree, both by the digest.
pub fn verify_by_digest(ledger: &junbao_engine::Ledger) -> junbao_engine::VerifyReport {
    let report = ledger.verify(&|_| {}).unwrap();
    assert!(!report.state_loaded_whole, "the stored state's records are not the replay's");
    let letting_go = ledger.verify_letting_go_every(1, &|_| {}).unwrap();
    assert!(!letting_go.state_loaded_whole, "letting go of years, the digests differ");
    // The accounts are counted as of the checkpoint, which a checkpoint thread may have moved
    // between the two.
    assert_eq!((&letting_go.head, letting_go.entries), (&report.head, report.entries));
    report
}
