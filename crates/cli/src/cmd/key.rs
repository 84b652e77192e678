//! The signing key: rotate it, show its public half; reading a pinned public key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use junbao_ledger::checkpoint;
use serde_json::json;

use crate::exit::{audit_exit, rejected};
use crate::open;

/// `key rotate`: see `KeyAction::Rotate`. A rotation interrupted after its entry was stored
/// (the new key is in `KEY.new` and the journal already names it) is completed, not repeated.
pub(crate) fn key_rotate(data: &Path, key_path: &Path) -> Result<()> {
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

/// `key show`: the public key, as verifiers pin it; with `--vkey`, the signed-note verifier key.
pub(crate) fn key_show(
    data: &Path,
    key: Option<PathBuf>,
    vkey: bool,
    origin: Option<String>,
) -> Result<()> {
    let key = junbao_engine::load_signing_key(&key_path(data, key))?;
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

/// Reads a pinned public key: a file holding 64 hex digits (as `key show` prints them).
pub(crate) fn read_pinned_key(path: &Path) -> Result<[u8; 32]> {
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
pub(crate) fn key_path(data: &Path, key: Option<PathBuf>) -> PathBuf {
    key.unwrap_or_else(|| junbao_engine::default_key_path(data))
}
