//! `init`: a new ledger with its seed standards, and the key that signs its digests.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use junbao_engine::{Ledger, system_clock};
use serde_json::json;

pub(crate) fn init(data: &Path, key: Option<PathBuf>) -> Result<()> {
    if data.join("CURRENT").exists() {
        anyhow::bail!("a ledger already exists at {}", data.display());
    }
    let key = key.unwrap_or_else(|| junbao_engine::default_key_path(data));
    // The key first: a ledger is never left without its key. A key left by an
    // interrupted init is refused (create_new) rather than reused silently.
    let public = junbao_engine::create_signing_key(&key).with_context(|| {
        format!(
            "creating the signing key {} (an existing key is never reused: remove a key \
             left by an interrupted init, or give --key)",
            key.display()
        )
    })?;
    let ledger = Ledger::init(data, system_clock())
        .with_context(|| format!("creating a ledger at {}", data.display()))?;
    let head = ledger.head();
    outln!(
        "{}",
        json!({"created": data.display().to_string(), "entries": head.seq, "head": hex::encode(head.hash),
               "key": key.display().to_string(), "public_key": hex::encode(public.to_bytes())})
    );
    Ok(())
}
