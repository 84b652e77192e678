//! Keys given on the command line. A verifier trusts only a key it was given (pinned), never
//! one carried by what it verifies; this is where a pinned public key is read.

use std::path::Path;

use anyhow::Result;

/// A pinned Ed25519 public key: a file holding its 64 hex digits (or the JSON `key show`
/// prints, with a `public_key` field), or the 64 hex digits themselves.
pub fn pinned_public_key(arg: &str) -> Result<[u8; 32]> {
    let path = Path::new(arg);
    let text = if path.is_file() {
        std::fs::read_to_string(path)
            .map_err(|e| crate::rejected(format!("--key {arg}: cannot read it: {e}")))?
    } else {
        arg.to_string()
    };
    let text = text.trim();
    let hex_text = if text.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| crate::rejected(format!("--key {arg}: not JSON: {e}")))?;
        v["public_key"].as_str().map(str::to_string).unwrap_or_default()
    } else {
        text.to_string()
    };
    hex::decode(hex_text.trim()).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| {
        crate::rejected(format!(
            "--key {arg}: not a public key (64 hex digits, or a file holding them)"
        ))
    })
}
