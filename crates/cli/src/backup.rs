//! `junbao backup`, `junbao backup verify`, `junbao restore`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use junbao_engine::{BackupError, Ledger, system_clock};
use serde_json::json;

/// How long `backup --server` waits for the server's answer.
const BACKUP_ANSWER_WAIT_SECS: u64 = 6 * 3600;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    action: Option<BackupAction>,
    /// Folder for the backup (missing or empty); with --server, a folder on the server's
    /// machine.
    #[arg(long)]
    to: Option<PathBuf>,
    /// Signing key for the manifest's digest [default: $JUNBAO_KEY, else DIR.key beside the
    /// ledger folder].
    #[arg(long, env = "JUNBAO_KEY")]
    key: Option<PathBuf>,
    /// An earlier backup: table files it holds unchanged are hard-linked from it, not copied
    /// (incremental on disk; each backup still stands alone).
    #[arg(long)]
    since: Option<PathBuf>,
    /// A running `junbao serve` to take the backup (`POST /v1/admin/backup`), e.g.
    /// http://127.0.0.1:8080. Without it the ledger is opened here, which a running server
    /// prevents.
    #[arg(long, requires = "token")]
    server: Option<String>,
    /// An admin token of that server.
    #[arg(long, env = "JUNBAO_TOKEN")]
    token: Option<String>,
}

#[derive(Subcommand, Debug)]
enum BackupAction {
    /// Check a backup without restoring it: manifest, signed digest, every file's SHA-256,
    /// then a full verify of a scratch copy.
    Verify {
        dir: PathBuf,
        /// The ledger's public key (pinned): 64 hex digits or a file holding them.
        #[arg(long)]
        key: String,
    },
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup folder.
    #[arg(long)]
    from: PathBuf,
    /// The new ledger folder (must not hold a ledger).
    #[arg(long)]
    to: PathBuf,
    /// The ledger's public key (pinned): 64 hex digits or a file holding them.
    #[arg(long)]
    key: String,
}

fn backup_exit(e: BackupError) -> anyhow::Error {
    let code = match &e {
        e if e.is_integrity() => 3,
        BackupError::Target(_) => 2,
        _ => 1,
    };
    crate::Exit { code, message: e.to_string() }.into()
}

pub fn run(data: &Path, args: BackupArgs) -> Result<()> {
    if let Some(BackupAction::Verify { dir, key }) = args.action {
        return verify(&dir, &key);
    }
    let to = args.to.ok_or_else(|| crate::rejected("backup: --to DIR is required"))?;
    if let Some(server) = args.server {
        let token = args.token.expect("clap requires --token with --server");
        return via_server(&server, &token, &to, args.since.as_deref());
    }
    let ledger = Ledger::open(data, system_clock()).map_err(|e| {
        let text = e.to_string();
        if text.contains("lock") {
            crate::Exit {
                code: 1,
                message: format!(
                    "the ledger at {} is open by another process (a running `junbao serve`?): \
                     take the backup through it with --server URL --token ADMIN_TOKEN \
                     ({text})",
                    data.display()
                ),
            }
            .into()
        } else {
            anyhow::Error::from(e).context(format!("opening the ledger at {}", data.display()))
        }
    })?;
    let key = junbao_engine::load_signing_key(
        &args.key.unwrap_or_else(|| junbao_engine::default_key_path(data)),
    )?;
    let manifest = ledger.backup(&key, &to, args.since.as_deref()).map_err(backup_exit)?;
    outln!("{}", junbao_engine::backup_summary(&manifest, &to));
    Ok(())
}

fn via_server(server: &str, token: &str, to: &Path, since: Option<&Path>) -> Result<()> {
    let absolute =
        |p: &Path| std::path::absolute(p).with_context(|| format!("the path {}", p.display()));
    let mut body = json!({"to": absolute(to)?.display().to_string()});
    if let Some(since) = since {
        body["since"] = json!(absolute(since)?.display().to_string());
    }
    let body = body.to_string();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // The server answers once the files are copied and hashed: minutes for a large ledger.
    let (status, answer) = runtime.block_on(crate::mirror::http(
        std::time::Duration::from_secs(BACKUP_ANSWER_WAIT_SECS),
        server,
        "POST",
        "/v1/admin/backup",
        Some(token),
        Some(body),
    ))?;
    if !status.is_success() {
        let message = format!("the server refused the backup ({status}): {}", answer["error"]);
        let code = if status.is_client_error() { 2 } else { 1 };
        return Err(crate::Exit { code, message }.into());
    }
    outln!("{answer}");
    Ok(())
}

fn verify(dir: &Path, key: &str) -> Result<()> {
    let key = crate::keys::pinned_public_key(key)?;
    // The store is opened (and so written to) only in a scratch copy: the backup stays as it
    // was made.
    let scratch = tempfile::Builder::new()
        .prefix(".junbao-backup-verify-")
        .tempdir_in(dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
        .or_else(|_| tempfile::tempdir())
        .context("creating a scratch folder")?;
    let report =
        junbao_engine::restore_backup(dir, &scratch.path().join("ledger"), &key, system_clock())
            .map_err(backup_exit)?;
    outln!(
        "{}",
        json!({"verified": true, "backup": dir.display().to_string(),
               "tree_size": report.manifest.tree_size, "head": hex::encode(report.manifest.head),
               "root": hex::encode(report.manifest.root), "files": report.manifest.files.len(),
               "entries": report.verify.entries})
    );
    Ok(())
}

pub fn restore(args: RestoreArgs) -> Result<()> {
    let key = crate::keys::pinned_public_key(&args.key)?;
    let report = junbao_engine::restore_backup(&args.from, &args.to, &key, system_clock())
        .map_err(backup_exit)?;
    outln!(
        "{}",
        json!({"restored": report.restored_to.display().to_string(), "verified": true,
               "entries": report.verify.entries, "head": report.verify.head,
               "root": hex::encode(report.manifest.root),
               "note": "the signing key is not in a backup: give `serve` and `digest` the ledger's key with --key"})
    );
    Ok(())
}
