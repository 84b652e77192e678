//! The command line as clap parses it: the commands, their arguments and their help.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{admin, backup, bench, mirror, serve};

#[derive(Parser, Debug)]
#[command(
    name = "junbao",
    version,
    about = "Ledger of the servicemen insurance funds (军人保险基金)"
)]
pub(crate) struct Cli {
    /// Ledger folder (an embedded RocksDB database) [default: ./junbao-data; for demo,
    /// ./junbao-demo].
    #[arg(long, global = true, env = "JUNBAO_DATA")]
    pub(crate) data: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
    /// Convert a ledger written by an earlier version (storage format 1, one record per
    /// entry) to the current format (entries in blocks), in place: its chain is recomputed
    /// before anything changes, and the converted ledger is verified in full. Back it up first.
    Migrate,
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
        /// Cut a checkpoint every this many entries (so that kills land in them too).
        #[arg(long)]
        checkpoint_every: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum AccessAction {
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
pub(crate) enum CheckpointAction {
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
pub(crate) enum KeyAction {
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
pub(crate) enum TokenAction {
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
pub(crate) enum ProofKind {
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
pub(crate) enum TransferAction {
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
pub(crate) enum BackpayAction {
    /// Compute months, base and who pays what, from a `backpay` event (JSON); stores nothing.
    Assess { file: PathBuf },
    /// Assess, then record the `backpay` event in the journal.
    Post { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ReportKind {
    /// Trial balances, members' accounts against journal control totals, medical matches,
    /// materialised balances against the journal. Exit 3 when something does not reconcile.
    Reconcile,
    /// Entries today's rules refuse (replaying the journal), and premiums awaiting a match.
    Exceptions,
    #[command(flatten)]
    Admin(admin::AdminReport),
}

#[derive(Subcommand, Debug)]
pub(crate) enum ExportWhat {
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
