//! The `junbao` command: the ledger of the servicemen insurance funds.
//!
//! Exit status: 0 success; 2 input rejected (nothing stored); 3 integrity failure; 1 otherwise.

/// `println!` that returns an error instead of panicking when stdout is closed (as with
/// `junbao journal | head`); `main` ends quietly on a broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        std::io::Write::write_fmt(&mut out, format_args!($($arg)*))?;
        std::io::Write::write_all(&mut out, b"\n")?;
    }};
}

/// mimalloc: the server's many small, short-lived allocations across threads (requests, events,
/// answers) cost a fifth of its time in glibc's allocator under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod backup;
mod bench;
mod demo;
mod keys;
mod mirror;
mod serve;

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use junbao_engine::{Ledger, PostError, VerifyError, system_clock};
use junbao_ledger::{Fen, Fund, checkpoint};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    name = "junbao",
    version,
    about = "Ledger of the servicemen insurance funds (军人保险基金)"
)]
struct Cli {
    /// Ledger folder (an embedded RocksDB database) [default: ./junbao-data; for demo,
    /// ./junbao-demo].
    #[arg(long, global = true, env = "JUNBAO_DATA")]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create an empty ledger; its first entries record the seed standards. Also creates the
    /// Ed25519 key that signs digests.
    Init {
        /// Key file to create [default: $JUNBAO_KEY, else DIR.key beside the ledger folder].
        #[arg(long, env = "JUNBAO_KEY")]
        key: Option<PathBuf>,
    },
    /// Append the events of a JSON Lines file (or stdin), all or nothing.
    Post {
        /// File to read; `-` or nothing for standard input.
        file: Option<PathBuf>,
    },
    /// Trial balance per fund, per account.
    Balance {
        #[arg(long)]
        fund: Option<String>,
        #[arg(long)]
        member: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Recompute the whole chain from the stored entries; or, with --export, check an exported
    /// journal offline, without the database.
    Verify {
        /// An exported journal (`export journal --format jsonl`) to verify instead of the database.
        #[arg(long)]
        export: Option<PathBuf>,
        /// A signed digest the export must match (with --export); it must be signed by --key.
        #[arg(long, requires = "key")]
        digest: Option<PathBuf>,
        /// The ledger's public key, pinned (a file with 64 hex digits, as `key show` prints):
        /// required with --export; the only key a digest is checked against [with
        /// --from-digest, default: the public half of the ledger's signing key].
        #[arg(long)]
        key: Option<PathBuf>,
        /// Check only what was appended since this trusted digest (consistency proof plus the
        /// new entries).
        #[arg(long, conflicts_with = "export")]
        from_digest: Option<PathBuf>,
    },
    /// Sign and print a digest of the current head (JSON); the ledger keeps every digest.
    Digest {
        /// Signing key file [default: $JUNBAO_KEY, else DIR.key beside the ledger folder].
        #[arg(long, env = "JUNBAO_KEY")]
        key: Option<PathBuf>,
        /// `json` (the ledger's signed digest, FORMAT.md §6) or `checkpoint` (the same tree as a
        /// C2SP tlog-checkpoint signed note, FORMAT.md §6a, for transparency-log tooling).
        #[arg(long, default_value = "json", value_parser = ["json", "checkpoint"])]
        format: String,
        /// The log's origin in a checkpoint [default: junbao.ledger/ and 16 hex digits of the
        /// SHA-256 of the public key]. Set it once (e.g. to the ledger's URL) and keep it.
        #[arg(long, env = "JUNBAO_ORIGIN")]
        origin: Option<String>,
    },
    /// RFC 6962 proofs (JSON).
    Proof {
        #[command(subcommand)]
        kind: ProofKind,
    },
    /// A member's record (Art. 39): payments, subsidies, benefits, interest, balances.
    Statement {
        #[arg(long)]
        member: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// JSON, with an inclusion proof for every entry.
        #[arg(long)]
        json: bool,
    },
    /// Back-payment for discharged soldiers under the 2019 opinion.
    Backpay {
        #[command(subcommand)]
        action: BackpayAction,
    },
    /// Auditor reports (JSON).
    Report {
        #[command(subcommand)]
        kind: ReportKind,
    },
    /// Seal a year (Art. 34): check the books, post the year's final accounts, sign a digest.
    Close(admin::CloseArgs),
    /// Relationship transfer to a civilian agency (Art. 16, 23, 27, 28).
    Transfer {
        #[command(subcommand)]
        action: TransferAction,
    },
    /// Export the whole journal.
    Export {
        #[command(subcommand)]
        what: ExportWhat,
    },
    /// List entries.
    Journal {
        #[arg(long, default_value_t = 1)]
        from: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Build a demo ledger with realistic data, then show balance, verify and more.
    Demo {
        /// Number of servicemen in the demo.
        #[arg(long, default_value_t = 2_000)]
        members: usize,
    },
    /// Measure durable append throughput on a fresh ledger in a temporary folder.
    Bench(bench::BenchArgs),
    /// The HTTP service (docs/HTTP.md): JSON endpoints, bearer tokens with roles, group commit.
    Serve(serve::ServeArgs),
    /// The ledger's signing key: show its public half (what agencies and auditors pin).
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Tokens for the HTTP service.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// The HTTP service's log of reads of members' records.
    Access {
        #[command(subcommand)]
        action: AccessAction,
    },
    /// C2SP tlog-checkpoint signed notes (`digest --format checkpoint`, `GET /v1/checkpoint`).
    Checkpoint {
        #[command(subcommand)]
        action: CheckpointAction,
    },
    /// Load test of the HTTP service: starts `junbao serve` on a fresh ledger (loopback) and
    /// posts single events from many concurrent connections; prints entries/s and latencies.
    BenchHttp(serve::BenchHttpArgs),
    /// A consistent backup of the ledger, with a manifest (tree size, head, signed digest,
    /// SHA-256 of every file); `backup verify DIR` checks one without restoring it.
    Backup(backup::BackupArgs),
    /// Restore a backup into a new folder: checks it, copies it, verifies the whole chain and
    /// that it ends at the manifest's signed digest.
    Restore(backup::RestoreArgs),
    /// Keep a verified local copy of a remote ledger (and serve its read routes);
    /// `mirror status` says how far behind it is.
    Mirror(mirror::MirrorArgs),
    /// Test support for the crash test: posts numbered batches in a loop and prints
    /// `ack BATCH LAST_SEQ` after each one is durable.
    #[command(hide = true)]
    CrashWriter {
        #[arg(long, default_value_t = 50)]
        batch: usize,
        #[arg(long, default_value_t = 1_000_000)]
        batches: usize,
    },
}

#[derive(Subcommand, Debug)]
enum AccessAction {
    /// Check the chain of the access log: every line's `prev` is the hash of the line before.
    Verify {
        /// The log [default: DIR/access.jsonl].
        #[arg(long)]
        file: Option<PathBuf>,
        /// A signed digest that anchors the log's head (`GET /v1/digest`, `junbao digest`):
        /// the lines it anchors must be in the log unchanged. Needs `--key`.
        #[arg(long, requires = "key")]
        digest: Option<PathBuf>,
        /// The ledger's public key, pinned (64 hex digits or a file holding them): the digest
        /// must be signed by it.
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum CheckpointAction {
    /// Verify a signed checkpoint with the pinned public key (never a key the note names):
    /// prints `{"verified":true,"origin","tree_size","root"}`; exit 3 if it does not verify.
    Verify {
        /// The signed note.
        file: PathBuf,
        /// The ledger's public key, pinned (64 hex digits or a file holding them).
        #[arg(long)]
        key: String,
        /// The origin the checkpoint must name [default: the one it names].
        #[arg(long)]
        origin: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum KeyAction {
    /// Print the ledger's Ed25519 public key as 64 hex digits (and nothing else), so that
    /// `junbao key show > ledger.pub` is the file agencies pin (docs/TRANSFER.md).
    Show {
        /// Signing key file [default: $JUNBAO_KEY, else DIR.key beside the ledger folder].
        #[arg(long, env = "JUNBAO_KEY")]
        key: Option<PathBuf>,
        /// Print the signed-note verifier key instead (`origin+keyid+base64`), as witnesses and
        /// `sumdb/note` tools take it.
        #[arg(long)]
        vkey: bool,
        /// The log's origin for `--vkey` [default: as `digest --format checkpoint`].
        #[arg(long, env = "JUNBAO_ORIGIN")]
        origin: Option<String>,
    },
    /// Replace the signing key: a new key is made, a `key_rotation` entry signed by the old key
    /// records it in the journal, the old key's public half is kept as `KEY.retired-SEQ.pub` (the
    /// seed is destroyed) and the new one
    /// takes its place. Verifiers holding the old public key follow the rotation.
    Rotate {
        /// Signing key file [default: $JUNBAO_KEY, else DIR.key beside the ledger folder].
        #[arg(long, env = "JUNBAO_KEY")]
        key: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum TokenAction {
    /// Create a token; print it once; keep only its SHA-256 in the tokens file.
    Add {
        /// Name of the token, as the logs show it (e.g. `finance-U001`).
        #[arg(long)]
        name: String,
        /// poster, auditor, clerk or admin.
        #[arg(long)]
        role: String,
        /// For a poster: the units it posts for, comma-separated.
        #[arg(long)]
        units: Option<String>,
        /// Tokens file [default: DIR/tokens.json].
        #[arg(long)]
        tokens: Option<PathBuf>,
    },
    /// Remove a token; a running server refuses it after SIGHUP (or a restart).
    Remove {
        #[arg(long)]
        name: String,
        /// Tokens file [default: DIR/tokens.json].
        #[arg(long)]
        tokens: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ProofKind {
    /// That entry SEQ is in the tree of N entries (default: the current size).
    Inclusion {
        #[arg(long)]
        seq: u64,
        #[arg(long)]
        tree_size: Option<u64>,
    },
    /// That the tree of M entries is a prefix of the tree of N entries.
    Consistency {
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
    },
}

#[derive(Subcommand, Debug)]
enum TransferAction {
    /// Close the member's account in the fund and write the transfer package (JSON); with
    /// --members, the accounts of every member listed (all or none) into --out-dir.
    Export {
        #[arg(long, required_unless_present = "members", conflicts_with = "members")]
        member: Option<String>,
        /// A file with one member id per line (bulk export).
        #[arg(long, requires = "out_dir")]
        members: Option<PathBuf>,
        /// Folder for the packages of a bulk export (`MEMBER-FUND.json`).
        #[arg(long)]
        out_dir: Option<PathBuf>,
        #[arg(long)]
        fund: String,
        #[arg(long)]
        agency: String,
        #[arg(long, required_unless_present = "members")]
        out: Option<PathBuf>,
        /// Signing key file [default: $JUNBAO_KEY, else DIR.key beside the ledger folder].
        #[arg(long, env = "JUNBAO_KEY")]
        key: Option<PathBuf>,
    },
    /// Check a transfer package offline, without the database, against the ledger's pinned
    /// public key.
    Verify {
        file: PathBuf,
        /// The ledger's public key, pinned (a file with 64 hex digits, as `key show` prints).
        #[arg(long)]
        key: PathBuf,
        /// A digest the package must be proven against (e.g. one published earlier); it must
        /// be signed by the pinned key.
        #[arg(long)]
        digest: Option<PathBuf>,
    },
    /// Render a package as a printable HTML sheet with bilingual headings (verified first,
    /// against the pinned key).
    Render {
        file: PathBuf,
        /// The ledger's public key, pinned (a file with 64 hex digits).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Record the agency's receipt: settles the payable; the transfer can no longer be reversed.
    Confirm {
        #[arg(long)]
        member: String,
        #[arg(long)]
        fund: String,
        #[arg(long)]
        agency: String,
    },
}

#[derive(Subcommand, Debug)]
enum BackpayAction {
    /// Compute months, base and who pays what, from a `backpay` event (JSON); stores nothing.
    Assess { file: PathBuf },
    /// Assess, then record the `backpay` event in the journal.
    Post { file: PathBuf },
}

#[derive(Subcommand, Debug)]
enum ReportKind {
    /// Trial balances, members' accounts against journal control totals, medical matches,
    /// materialised balances against the journal. Exit 3 when something does not reconcile.
    Reconcile,
    /// Entries today's rules refuse (replaying the journal), and premiums awaiting a match.
    Exceptions,
    #[command(flatten)]
    Admin(admin::AdminReport),
}

#[derive(Subcommand, Debug)]
enum ExportWhat {
    /// Balances per member and fund, for clerks: CSV or JSON, by unit, as at a value date.
    Balances {
        #[arg(long, default_value = "csv")]
        format: String,
        #[arg(long)]
        unit: Option<String>,
        /// Balances as at this value date, recomputed from the journal.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The journal: one JSON object per entry with its canonical bytes (`jsonl`).
    Journal {
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// A failure with the exit status the contract gives it.
#[derive(Debug)]
struct Exit {
    code: u8,
    message: String,
}

fn main() -> ExitCode {
    // Everything this program creates — the ledger folder, RocksDB's WAL and tables, the access
    // log, the tokens file, keys — is for its owner only (0700 folders, 0600 files).
    #[cfg(unix)]
    let _ = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let (code, message) = classify(&err);
            eprintln!("junbao: {message}");
            ExitCode::from(code)
        }
    }
}

/// The reader of our output went away (`| head`): not a failure of the command.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn classify(err: &anyhow::Error) -> (u8, String) {
    if let Some(e) = err.downcast_ref::<Exit>() {
        return (e.code, e.message.clone());
    }
    if let Some(e) = err.downcast_ref::<PostError>() {
        let code = match e {
            PostError::Rejected { .. } | PostError::TooLarge(_) => 2,
            _ => 1,
        };
        return (code, format!("{err:#}"));
    }
    if let Some(e) = err.downcast_ref::<VerifyError>() {
        return (if e.is_integrity() { 3 } else { 1 }, format!("{err:#}"));
    }
    if let Some(e) = err.downcast_ref::<junbao_engine::LedgerOpenError>() {
        return (if e.is_integrity() { 3 } else { 1 }, format!("{err:#}"));
    }
    (1, format!("{err:#}"))
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

fn rejected(message: impl Into<String>) -> anyhow::Error {
    Exit { code: 2, message: message.into() }.into()
}

fn open(data: &Path) -> Result<Ledger> {
    Ledger::open(data, system_clock())
        .with_context(|| format!("opening the ledger at {}", data.display()))
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Demo { members } = cli.command {
        return demo::run(&cli.data.unwrap_or_else(|| PathBuf::from("./junbao-demo")), members);
    }
    let data = cli.data.unwrap_or_else(|| PathBuf::from("./junbao-data"));
    match cli.command {
        Command::Init { key } => {
            if data.join("CURRENT").exists() {
                anyhow::bail!("a ledger already exists at {}", data.display());
            }
            let key = key.unwrap_or_else(|| junbao_engine::default_key_path(&data));
            // The key first: a ledger is never left without its key. A key left by an
            // interrupted init is refused (create_new) rather than reused silently.
            let public = junbao_engine::create_signing_key(&key).with_context(|| {
                format!(
                    "creating the signing key {} (an existing key is never reused: remove a key \
                     left by an interrupted init, or give --key)",
                    key.display()
                )
            })?;
            let ledger = Ledger::init(&data, system_clock())
                .with_context(|| format!("creating a ledger at {}", data.display()))?;
            let head = ledger.head();
            outln!(
                "{}",
                json!({"created": data.display().to_string(), "entries": head.seq, "head": hex::encode(head.hash),
                       "key": key.display().to_string(), "public_key": hex::encode(public.to_bytes())})
            );
            Ok(())
        }
        Command::Digest { key, format, origin } => {
            let ledger = open(&data)?;
            let key = junbao_engine::load_signing_key(
                &key.unwrap_or_else(|| junbao_engine::default_key_path(&data)),
            )?;
            // The access log's head is anchored too, when the server has kept one (§10 of
            // docs/FORMAT.md); a broken log is an integrity failure, not something to sign.
            let log = data.join("access.jsonl");
            let anchor = if log.exists() {
                let r = junbao_server::verify_access_log(&log).map_err(access_exit)?;
                let mut head = [0u8; 32];
                hex::decode_to_slice(&r.last, &mut head).context("the access log's head")?;
                Some(junbao_engine::AccessAnchor { lines: r.records as u64, head })
            } else {
                None
            };
            let digest = ledger.digest_anchoring(&key, anchor)?;
            if format == "checkpoint" {
                let public = key.verifying_key().to_bytes();
                let origin = origin.unwrap_or_else(|| checkpoint::default_origin(&public));
                let note =
                    checkpoint::sign_checkpoint(&key, &origin, digest.tree_size, &digest.root)
                        .map_err(|e| rejected(format!("--origin: {e}")))?;
                std::io::stdout().write_all(note.as_bytes())?;
            } else {
                outln!("{}", digest.to_json());
            }
            Ok(())
        }
        Command::Proof { kind } => {
            let ledger = open(&data)?;
            let proof = match kind {
                ProofKind::Inclusion { seq, tree_size } => ledger.inclusion_proof(seq, tree_size),
                ProofKind::Consistency { from, to } => ledger.consistency_proof(from, to),
            };
            outln!("{}", proof.map_err(audit_exit)?);
            Ok(())
        }
        Command::Export { what: ExportWhat::Balances { format, unit, as_of, out } } => {
            let as_of = as_of
                .map(|t| {
                    junbao_ledger::Date::parse(&t).map_err(|m| rejected(format!("--as-of: {m}")))
                })
                .transpose()?;
            if format != "csv" && format != "json" {
                return Err(rejected(format!("--format {format}: expected csv or json")));
            }
            let ledger = open(&data)?;
            let b = ledger.balances_as_of(as_of, unit.as_deref()).map_err(audit_exit)?;
            let mut sink = sink(&out)?;
            if format == "json" {
                writeln!(sink, "{b}")?;
            } else {
                sink.write_all(junbao_engine::balances_csv(&b).as_bytes())?;
            }
            sink.flush()?;
            Ok(())
        }
        Command::Export { what: ExportWhat::Journal { format, out } } => {
            export_journal(&data, &format, out)
        }
        Command::Statement { member, from, to, json: as_json } => {
            let date = |name: &str, v: Option<String>| {
                v.map(|t| {
                    junbao_ledger::Date::parse(&t).map_err(|m| rejected(format!("--{name}: {m}")))
                })
                .transpose()
            };
            let (from, to) = (date("from", from)?, date("to", to)?);
            let ledger = open(&data)?;
            let s = ledger.statement(&member, from, to, as_json).map_err(audit_exit)?;
            if as_json {
                outln!("{s}");
            } else {
                print_statement(&s)?;
            }
            Ok(())
        }
        Command::Report { kind } => {
            let ledger = open(&data)?;
            match kind {
                ReportKind::Reconcile => {
                    let r = ledger.reconcile().map_err(audit_exit)?;
                    outln!("{r}");
                    if r["ok"] != true {
                        return Err(
                            Exit { code: 3, message: "the books do not reconcile".into() }.into()
                        );
                    }
                }
                ReportKind::Exceptions => outln!("{}", ledger.exceptions().map_err(audit_exit)?),
                ReportKind::Admin(kind) => admin::report(&ledger, kind)?,
            }
            Ok(())
        }
        Command::Transfer { action: TransferAction::Verify { file, key, digest } } => {
            let pinned = read_pinned_key(&key)?;
            let package = read_json(&file)?;
            let trusted = digest
                .map(|d| junbao_engine::SignedDigest::read(&d))
                .transpose()
                .map_err(audit_exit)?;
            let r = junbao_engine::verify_package(&package, &pinned, trusted.as_ref())
                .map_err(audit_exit)?;
            outln!("{}", r.to_json());
            Ok(())
        }
        Command::Transfer {
            action: TransferAction::Export { member, members, out_dir, fund, agency, out, key },
        } => {
            let fund = parse_fund(Some(fund))?.expect("given");
            let ledger = open(&data)?;
            let key = junbao_engine::load_signing_key(
                &key.unwrap_or_else(|| junbao_engine::default_key_path(&data)),
            )?;
            if let (Some(list), Some(dir)) = (members, out_dir) {
                let text = std::fs::read_to_string(&list)
                    .with_context(|| format!("reading {}", list.display()))?;
                let ids: Vec<&str> =
                    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let bar = progress(ids.len() as u64, "packages");
                let packages = ledger
                    .transfer_export_many(&ids, fund, &agency, &key, &|n| {
                        bar.set_position(n as u64)
                    })
                    .map_err(audit_exit)?;
                bar.finish_and_clear();
                for (id, package) in ids.iter().zip(&packages) {
                    let path = dir.join(format!("{id}-{}.json", fund.name()));
                    std::fs::write(&path, serde_json::to_string_pretty(package)?)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                outln!(
                    "{}",
                    json!({"written": packages.len(), "out_dir": dir.display().to_string()})
                );
                return Ok(());
            }
            let member = member.expect("clap requires --member without --members");
            let out = out.expect("clap requires --out without --members");
            let package =
                ledger.transfer_export(&member, fund, &agency, &key).map_err(audit_exit)?;
            std::fs::write(&out, serde_json::to_string_pretty(&package)?)
                .with_context(|| format!("writing {}", out.display()))?;
            outln!(
                "{}",
                json!({"written": out.display().to_string(), "transfer_entry": package["transfer_entry"], "total": package["totals"]["total"]})
            );
            Ok(())
        }
        Command::Transfer { action: TransferAction::Render { file, key, out } } => {
            let pinned = read_pinned_key(&key)?;
            let package = read_json(&file)?;
            let html = junbao_engine::render_package_html(&package, &pinned).map_err(audit_exit)?;
            std::fs::write(&out, html).with_context(|| format!("writing {}", out.display()))?;
            outln!("{}", json!({"written": out.display().to_string()}));
            Ok(())
        }
        Command::Transfer { action: TransferAction::Confirm { member, fund, agency } } => {
            let ledger = open(&data)?;
            let line = junbao_engine::transfer_confirmed_line(&member, &fund, &agency);
            outln!("{}", serde_json::to_string(&ledger.post_lines(&[&line])?)?);
            Ok(())
        }
        Command::Backpay { action } => {
            let (file, store) = match action {
                BackpayAction::Assess { file } => (file, false),
                BackpayAction::Post { file } => (file, true),
            };
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let line = text.trim();
            let ledger = open(&data)?;
            let mut assessment = ledger.backpay_assess(line).map_err(audit_exit)?;
            if store {
                assessment["posted"] = serde_json::to_value(ledger.post_lines(&[line])?)?;
            }
            outln!("{assessment}");
            Ok(())
        }
        Command::Post { file } => post(&data, file),
        Command::Close(args) => admin::close(&data, args),
        Command::Balance { fund, member, json } => balance(&data, fund, member, json),
        Command::Verify { export: Some(file), digest, key, .. } => {
            let key = key.ok_or_else(|| {
                rejected("--export needs --key PUB: the ledger's public key, pinned")
            })?;
            verify_export(&file, &read_pinned_key(&key)?, digest)
        }
        Command::Verify { export: None, digest: Some(_), .. } => {
            Err(rejected("--digest goes with --export; use --from-digest for the database"))
        }
        Command::Verify { export: None, digest: None, from_digest: Some(d), key } => {
            let digest = junbao_engine::SignedDigest::read(&d).map_err(audit_exit)?;
            let ledger = open(&data)?;
            let trusted = match key {
                Some(k) => read_pinned_key(&k)?,
                None => junbao_engine::load_signing_key(&junbao_engine::default_key_path(&data))
                    .context("no --key given and the ledger's signing key does not load")?
                    .verifying_key()
                    .to_bytes(),
            };
            // The key held at the digest's tree size: the rotations recorded before it, followed
            // from the pinned key (docs/FORMAT.md §14).
            let mut trusted = trusted;
            for (seq, bytes) in ledger.key_rotations().map_err(audit_exit)? {
                if seq > digest.tree_size {
                    break;
                }
                let entry = junbao_ledger::Entry::from_canonical_bytes(&bytes)
                    .map_err(|e| audit_exit(junbao_engine::AuditError::Integrity(e.to_string())))?;
                trusted = junbao_ledger::transfer::follow_rotation(&trusted, &entry);
            }
            let r = ledger.verify_since(&digest, &trusted).map_err(audit_exit)?;
            outln!(
                "{}",
                json!({"verified": true, "from_tree_size": r.from_size, "to_tree_size": r.to_size,
                       "root": hex::encode(r.root), "head": hex::encode(r.head)})
            );
            Ok(())
        }
        Command::Verify { export: None, digest: None, from_digest: None, .. } => verify(&data),
        Command::Key { action: KeyAction::Rotate { key } } => {
            key_rotate(&data, &key_path(&data, key))
        }
        Command::Key { action: KeyAction::Show { key, vkey, origin } } => {
            let key = junbao_engine::load_signing_key(&key_path(&data, key))?;
            let public = key.verifying_key().to_bytes();
            if vkey {
                let origin = origin.unwrap_or_else(|| checkpoint::default_origin(&public));
                let v = checkpoint::verifier_key(&origin, &public)
                    .map_err(|e| rejected(format!("--origin: {e}")))?;
                outln!("{v}");
            } else {
                outln!("{}", hex::encode(public));
            }
            Ok(())
        }
        Command::Checkpoint { action: CheckpointAction::Verify { file, key, origin } } => {
            let pinned = keys::pinned_public_key(&key)?;
            let note = std::fs::read(&file)
                .map_err(|e| rejected(format!("reading {}: {e}", file.display())))?;
            let cp = checkpoint::verify_checkpoint(&note, &pinned, origin.as_deref())
                .map_err(|e| Exit { code: 3, message: format!("{}: {e}", file.display()) })?;
            outln!(
                "{}",
                json!({"verified": true, "origin": cp.origin, "tree_size": cp.tree_size,
                       "root": hex::encode(cp.root)})
            );
            Ok(())
        }
        Command::Journal { from, limit, json } => journal(&data, from, limit, json),
        Command::Demo { .. } => unreachable!("handled above"),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::serve(&data, args),
        Command::Token { action: TokenAction::Add { name, role, units, tokens } } => {
            serve::token_add(&data, tokens, &name, &role, units)
        }
        Command::Token { action: TokenAction::Remove { name, tokens } } => {
            let path = tokens.unwrap_or_else(|| junbao_server::default_tokens_path(&data));
            junbao_server::remove_token(&path, &name).map_err(|e| rejected(e.to_string()))?;
            outln!(
                "{}",
                json!({"removed": name, "tokens_file": path.display().to_string(),
                                "note": "a running server refuses it after SIGHUP"})
            );
            Ok(())
        }
        Command::BenchHttp(args) => serve::bench_http(args),
        Command::Access { action: AccessAction::Verify { file, digest, key } } => {
            let file = file.unwrap_or_else(|| data.join("access.jsonl"));
            let anchor = match (digest, key) {
                (Some(d), Some(k)) => {
                    let pinned = keys::pinned_public_key(&k)?;
                    let d = junbao_engine::SignedDigest::read(&d).map_err(audit_exit)?;
                    d.verify_signature(Some(&pinned)).map_err(audit_exit)?;
                    Some(d.access.ok_or_else(|| {
                        rejected("the digest anchors no access log (it was not signed by `serve` or `digest` with a log)")
                    })?)
                }
                _ => None,
            };
            let r = junbao_server::verify_access_log_anchored(&file, anchor.as_ref())
                .map_err(access_exit)?;
            let mut answer = json!({"verified": true, "records": r.records, "last": r.last});
            if let Some(a) = anchor {
                answer["anchored_lines"] = json!(a.lines);
            }
            outln!("{answer}");
            Ok(())
        }
        Command::CrashWriter { batch, batches } => crash_writer(&data, batch, batches),
        Command::Backup(args) => backup::run(&data, args),
        Command::Restore(args) => backup::restore(args),
        Command::Mirror(args) => mirror::run(&data, args),
    }
}

fn read_input(file: Option<PathBuf>) -> Result<String> {
    let mut text = String::new();
    match file {
        None => {
            std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
        }
        Some(p) if p.as_os_str() == "-" => {
            std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
        }
        Some(p) => {
            text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        }
    }
    Ok(text)
}

/// A spinner on stderr when it is a terminal; hidden otherwise.
pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .expect("static template is valid")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn post(data: &Path, file: Option<PathBuf>) -> Result<()> {
    let text = read_input(file)?;
    let ledger = open(data)?;
    let lines: Vec<&str> = text.lines().collect();
    let bar = progress(lines.len() as u64, "posting");
    let summary = ledger.post_lines_with_progress(&lines, &|n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    outln!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

fn parse_fund(fund: Option<String>) -> Result<Option<Fund>> {
    fund.map(|f| Fund::parse(&f).map_err(|m| rejected(format!("--fund: {m}")))).transpose()
}

fn balance(data: &Path, fund: Option<String>, member: Option<String>, as_json: bool) -> Result<()> {
    let fund = parse_fund(fund)?;
    let ledger = open(data)?;
    let sheet = ledger.balances(fund, member.as_deref());
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{}", sheet.to_json())?;
        return Ok(());
    }
    writeln!(out, "trial balance as of entry {}", sheet.as_of_seq)?;
    for f in &sheet.funds {
        writeln!(out, "\n{:<48} {:>20}", format!("fund {}", f.fund), "balance")?;
        for (account, fen) in &f.accounts {
            writeln!(out, "  {account:<46} {:>20}", Fen(*fen).to_string())?;
        }
        writeln!(out, "  {:<46} {:>20}", "total (must be 0.00)", Fen(f.total_fen).to_string())?;
    }
    Ok(())
}

fn verify(data: &Path) -> Result<()> {
    let ledger = open(data)?;
    let total = ledger.head().seq;
    let bar = progress(total, "verifying");
    let report = ledger.verify(&|n| bar.set_position(n))?;
    bar.finish_and_clear();
    outln!(
        "{}",
        json!({"verified": true, "entries": report.entries, "head": report.head, "accounts": report.accounts})
    );
    Ok(())
}

fn journal(data: &Path, from: u64, limit: usize, as_json: bool) -> Result<()> {
    let ledger = open(data)?;
    if as_json {
        outln!("{}", ledger.journal_json(from, limit)?);
        return Ok(());
    }
    let entries = ledger.journal(from, limit.min(junbao_engine::JOURNAL_PAGE_ENTRIES_MAX))?;
    let mut out = std::io::stdout().lock();
    for (stored, entry) in &entries {
        writeln!(
            out,
            "{:>8}  {}  {:<16} {:<24} {}",
            stored.seq,
            entry.value_date,
            entry.event.body.type_name(),
            entry.event.id,
            &hex::encode(stored.chain_hash)[..16]
        )?;
        for p in &entry.postings {
            writeln!(out, "          {:<50} {:>16}", p.account.to_string(), p.amount.to_string())?;
        }
    }
    Ok(())
}

/// Appends batches of `size` appropriations until killed. Batch `k`'s events have ids
/// `crash-k-i`; the first batch number is derived from the head, so a restarted writer goes on.
fn crash_writer(data: &Path, size: usize, batches: usize) -> Result<()> {
    let ledger = open(data)?;
    let seeds = junbao_ledger::standard::SEED_STANDARDS.len() as u64;
    let done = ledger.head().seq.saturating_sub(seeds);
    anyhow::ensure!(
        done % size as u64 == 0,
        "a partial batch is stored: {done} entries after the seeds"
    );
    let mut out = std::io::stdout().lock();
    for k in (done / size as u64) as usize..batches {
        let lines: Vec<String> = (0..size)
            .map(|i| format!(r#"{{"id":"crash-{k}-{i}","type":"appropriation","fund":"medical","amount":"1.00"}}"#))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let s = ledger.post_lines(&refs)?;
        writeln!(out, "ack {k} {}", s.last_seq.unwrap_or(0))?;
        out.flush()?;
    }
    Ok(())
}

/// A broken access log exits 3 (integrity); one that cannot be read, 1.
fn access_exit(e: junbao_server::AccessLogError) -> anyhow::Error {
    match e {
        junbao_server::AccessLogError::Broken { .. } => {
            anyhow::Error::from(Exit { code: 3, message: e.to_string() })
        }
        other => anyhow::Error::from(other),
    }
}

fn audit_exit(e: junbao_engine::AuditError) -> anyhow::Error {
    let code = match e {
        junbao_engine::AuditError::Integrity(_) => 3,
        junbao_engine::AuditError::Input(_) => 2,
        _ => 1,
    };
    Exit { code, message: e.to_string() }.into()
}

/// Most entries read per step when exporting.
const EXPORT_CHUNK_ENTRIES: usize = 10_000;

fn export_journal(data: &Path, format: &str, out: Option<PathBuf>) -> Result<()> {
    let ledger_format = match format {
        "jsonl" => false,
        "ledger" => true,
        other => return Err(rejected(format!("--format {other}: expected jsonl or ledger"))),
    };
    let ledger = open(data)?;
    let mut sink = sink(&out)?;
    let head = ledger.head();
    if ledger_format {
        writeln!(sink, "; junbao journal: {} entries, head {}", head.seq, hex::encode(head.hash))?;
        writeln!(
            sink,
            "; amounts in yuan (CNY), debit positive; accounts as in `junbao balance`\n"
        )?;
    }
    let bar = progress(head.seq, "exporting");
    let mut from = 1;
    loop {
        let entries = ledger.journal(from, EXPORT_CHUNK_ENTRIES)?;
        let Some((last, _)) = entries.last() else { break };
        from = last.seq + 1;
        for (stored, entry) in &entries {
            if ledger_format {
                writeln!(sink, "{}", junbao_engine::ledger_transaction(stored, entry))?;
            } else {
                writeln!(sink, "{}", junbao_engine::export_line(stored, entry))?;
            }
        }
        bar.set_position(from - 1);
    }
    sink.flush()?;
    bar.finish_and_clear();
    Ok(())
}

/// `key rotate`: see `KeyAction::Rotate`. A rotation interrupted after its entry was stored
/// (the new key is in `KEY.new` and the journal already names it) is completed, not repeated.
fn key_rotate(data: &Path, key_path: &Path) -> Result<()> {
    use ed25519_dalek::Signer;
    let ledger = open(data)?;
    let old = junbao_engine::load_signing_key(key_path)?;
    let new_path = PathBuf::from(format!("{}.new", key_path.display()));
    if !new_path.exists() {
        junbao_engine::create_signing_key(&new_path)?;
    }
    let new = junbao_engine::load_signing_key(&new_path)?;
    let new_public = new.verifying_key().to_bytes();
    let rotations = ledger.key_rotations().map_err(audit_exit)?;
    let recorded = rotations.iter().find_map(|(seq, bytes)| {
        let entry = junbao_ledger::Entry::from_canonical_bytes(bytes).ok()?;
        matches!(entry.event.body, junbao_ledger::EventBody::KeyRotation { public_key, .. }
            if public_key == new_public)
        .then_some(*seq)
    });
    let seq = match recorded {
        Some(seq) => seq,
        None => {
            let signature = old.sign(&junbao_ledger::transfer::key_rotation_message(&new_public));
            let line = json!({
                "id": junbao_engine::key_rotation_id(rotations.len() + 1),
                "type": "key_rotation",
                "public_key": hex::encode(new_public),
                "signature": hex::encode(signature.to_bytes()),
            })
            .to_string();
            ledger.post_lines(&[&line])?.last_seq.context("the rotation was not stored")?
        }
    };
    // Only the old key's public half is kept: a retired seed left on disk could still sign
    // digests that agencies pinning the old key would take. The rename below replaces the seed.
    let retired = PathBuf::from(format!("{}.retired-{seq}.pub", key_path.display()));
    std::fs::write(&retired, format!("{}\n", hex::encode(old.verifying_key().to_bytes())))
        .with_context(|| format!("keeping the old public key as {}", retired.display()))?;
    std::fs::rename(&new_path, key_path)
        .with_context(|| format!("installing the new key at {}", key_path.display()))?;
    if let Some(dir) = key_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    outln!(
        "{}",
        json!({"rotated": true, "entry": seq, "key": key_path.display().to_string(),
               "retired_key": retired.display().to_string(),
               "old_public_key": hex::encode(old.verifying_key().to_bytes()),
               "public_key": hex::encode(new_public)})
    );
    Ok(())
}

/// Reads a pinned public key: a file holding 64 hex digits (as `key show` prints them).
fn read_pinned_key(path: &Path) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the pinned key {}", path.display()))?;
    let key: [u8; 32] =
        hex::decode(text.trim()).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| {
            rejected(format!(
                "{}: not a public key (64 hex digits, as `junbao key show` prints)",
                path.display()
            ))
        })?;
    Ok(key)
}

/// The signing key file: the one given (`--key` or `$JUNBAO_KEY`), else the ledger's default.
fn key_path(data: &Path, key: Option<PathBuf>) -> PathBuf {
    key.unwrap_or_else(|| junbao_engine::default_key_path(data))
}

fn verify_export(file: &Path, pinned: &[u8; 32], digest: Option<PathBuf>) -> Result<()> {
    let digest =
        digest.map(|d| junbao_engine::SignedDigest::read(&d)).transpose().map_err(audit_exit)?;
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let report = junbao_engine::verify_export(reader, digest.as_ref().map(|d| (d, pinned)))
        .map_err(audit_exit)?;
    // Without a digest signed by the pinned key nothing ties the export to this ledger: the
    // chain is consistent, but anybody could have written it. It is not called verified.
    let signed = report.digest_tree_size.is_some();
    // Entries past the digest's tree size are chained to the signed ones, but nothing signed
    // covers them: anybody could have appended them. The export is then not verified.
    let unsigned_tail =
        report.digest_tree_size.map_or(0, |size| report.entries.saturating_sub(size));
    let mut answer = json!({"verified": signed && unsigned_tail == 0, "entries": report.entries,
               "head": hex::encode(report.head), "root": hex::encode(report.root),
               "digest_tree_size": report.digest_tree_size});
    if !signed {
        answer["chain_consistent"] = json!(true);
        answer["why_not_verified"] =
            json!("no --digest: nothing signed by the pinned key covers this export");
    }
    if unsigned_tail > 0 {
        let size = report.digest_tree_size.unwrap_or_default();
        answer["chain_consistent"] = json!(true);
        answer["unsigned_entries"] = json!(unsigned_tail);
        answer["why_not_verified"] = json!(format!(
            "entries {} to {} are not covered by the digest (tree size {size}); verify against a digest of size {}",
            size + 1,
            report.entries,
            report.entries
        ));
        outln!("{answer}");
        return Err(Exit {
            code: 3,
            message: format!(
                "the export has {unsigned_tail} entries after the digest's tree size {size}: not signed, not verified"
            ),
        }
        .into());
    }
    outln!("{answer}");
    Ok(())
}

fn print_statement(s: &serde_json::Value) -> Result<()> {
    outln!(
        "statement of member {} as of entry {}",
        s["member"].as_str().unwrap_or(""),
        s["as_of_seq"]
    );
    for e in s["entries"].as_array().into_iter().flatten() {
        for p in e["postings"].as_array().into_iter().flatten() {
            outln!(
                "{:>8}  {}  {:<14} {:<40} {:>14}",
                e["seq"].as_u64().unwrap_or(0),
                e["value_date"].as_str().unwrap_or(""),
                e["type"].as_str().unwrap_or(""),
                p["account"].as_str().unwrap_or(""),
                p["amount"].as_str().unwrap_or("")
            );
        }
        if e["postings"].as_array().is_none_or(|p| p.is_empty()) {
            outln!(
                "{:>8}  {}  {}",
                e["seq"].as_u64().unwrap_or(0),
                e["value_date"].as_str().unwrap_or(""),
                e["type"].as_str().unwrap_or("")
            );
        }
    }
    outln!("\nbalances");
    for f in s["funds"].as_array().into_iter().flatten() {
        for a in f["accounts"].as_array().into_iter().flatten() {
            outln!(
                "  {:<46} {:>14}",
                a["account"].as_str().unwrap_or(""),
                a["balance"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// Reads a JSON document (a package); a file that is not JSON is rejected input.
fn read_json(file: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    // A repeated key would let what a reader sees differ from what is verified.
    junbao_ledger::strict_json::check_unique_keys(&text)
        .map_err(|e| rejected(format!("{}: {e}", file.display())))?;
    serde_json::from_str(&text).map_err(|e| rejected(format!("{}: not JSON: {e}", file.display())))
}

/// Where an export goes: the file given, else standard output.
fn sink(out: &Option<PathBuf>) -> Result<Box<dyn Write>> {
    Ok(match out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}
