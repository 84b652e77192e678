//! The canonical package bytes, the package signature and the signed bytes of a digest.

use super::{
    CANONICAL_INTEGER_MAX, DIGEST_ANCHORED_SIGNING_CONTEXT, DIGEST_SIGNING_CONTEXT,
    PACKAGE_SIGNING_CONTEXT,
};
use crate::entry::Hash32;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::Value;

/// Writes `v` in canonical form (docs/TRANSFER.md, "Canonical package bytes").
pub fn write_canonical(v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => match n.as_i64() {
            Some(i) if i.unsigned_abs() <= CANONICAL_INTEGER_MAX => {
                out.extend_from_slice(i.to_string().as_bytes());
            }
            _ => return Err(format!("number {n} is not an integer below 2^53")),
        },
        Value::String(s) => write_canonical_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical_string(k, out);
                out.push(b':');
                write_canonical(&map[k], out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_canonical_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// The message the package signature covers: the context, then the canonical bytes of the
/// package without its `package_signature` member.
pub fn package_signed_message(package: &Value) -> Result<Vec<u8>, String> {
    let Value::Object(map) = package else { return Err("not a JSON object".into()) };
    let mut unsigned = map.clone();
    unsigned.remove("package_signature");
    let mut out = PACKAGE_SIGNING_CONTEXT.to_vec();
    write_canonical(&Value::Object(unsigned), &mut out)?;
    Ok(out)
}

impl super::TransferPackage {
    /// Signs the package: sets `package_signature` over the canonical bytes of the rest.
    pub fn sign(&mut self, key: &SigningKey) -> Result<(), String> {
        self.package_signature = None;
        let value = serde_json::to_value(&*self).map_err(|e| e.to_string())?;
        let message = package_signed_message(&value)?;
        self.package_signature = Some(hex::encode(key.sign(&message).to_bytes()));
        Ok(())
    }
}

/// Signs a package in place: sets `package_signature`.
pub fn sign_package(package: &mut Value, key: &SigningKey) -> Result<(), String> {
    let message = package_signed_message(package)?;
    let signature = key.sign(&message);
    package["package_signature"] = Value::String(hex::encode(signature.to_bytes()));
    Ok(())
}

/// The 96 bytes a digest's signature covers (docs/FORMAT.md §6).
pub fn digest_signed_bytes(tree_size: u64, root: &Hash32, head: &Hash32, at_us: i64) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 + 8 + 32 + 32 + 8);
    b.extend_from_slice(DIGEST_SIGNING_CONTEXT);
    b.extend_from_slice(&tree_size.to_be_bytes());
    b.extend_from_slice(root);
    b.extend_from_slice(head);
    b.extend_from_slice(&at_us.to_be_bytes());
    b
}

/// The 136 bytes the signature of a digest anchoring the access log covers (docs/FORMAT.md §6):
/// those of [`digest_signed_bytes`] under the `junbao-digest-v2` context, then the number of
/// lines of the access log (u64 BE) and the SHA-256 of its last line.
pub fn digest_anchored_signed_bytes(
    tree_size: u64,
    root: &Hash32,
    head: &Hash32,
    at_us: i64,
    access_lines: u64,
    access_head: &Hash32,
) -> Vec<u8> {
    let mut b = digest_signed_bytes(tree_size, root, head, at_us);
    b[..16].copy_from_slice(DIGEST_ANCHORED_SIGNING_CONTEXT);
    b.extend_from_slice(&access_lines.to_be_bytes());
    b.extend_from_slice(access_head);
    b
}
