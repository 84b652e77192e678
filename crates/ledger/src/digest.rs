//! Signed digests (docs/FORMAT.md §6): what the ledger signs about its tree and chain, and the
//! checks a verifier runs on one with a pinned key. Pure: no database, so agencies and auditors
//! verify offline with this crate alone.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Value, json};

use crate::entry::Hash32;

/// A digest, export or proof that does not check out, or cannot be read. The engine maps the
/// kinds to its own (`AuditError`): integrity exits 3, input 2, I/O 1.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckError {
    #[error("integrity failure: {0}")]
    Integrity(String),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Io(String),
}

/// A signed statement of the ledger's state: tree size, Merkle root, chain head, time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDigest {
    pub tree_size: u64,
    pub root: Hash32,
    pub head: Hash32,
    pub recorded_at_us: i64,
    /// The access log's head when the digest was signed, if it anchors one (a digest signed by
    /// the server does: docs/FORMAT.md §6 and §10).
    pub access: Option<AccessAnchor>,
    pub public_key: [u8; 32],
    pub signature: [u8; 64],
}

/// The head of the access log a digest anchors: its number of lines and the SHA-256 of its
/// last line (32 zero bytes for an empty log). A log that was rewritten after the digest was
/// published no longer has this hash at this line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessAnchor {
    pub lines: u64,
    pub head: Hash32,
}

impl SignedDigest {
    /// Signs tree size, root, head and time with `key` (docs/FORMAT.md §5).
    pub fn sign(
        key: &SigningKey,
        tree_size: u64,
        root: Hash32,
        head: Hash32,
        recorded_at_us: i64,
        access: Option<AccessAnchor>,
    ) -> SignedDigest {
        let mut d = SignedDigest {
            tree_size,
            root,
            head,
            recorded_at_us,
            access,
            public_key: key.verifying_key().to_bytes(),
            signature: [0; 64],
        };
        d.signature = key.sign(&d.signed_bytes()).to_bytes();
        d
    }

    /// The bytes the signature covers (docs/FORMAT.md §5).
    pub fn signed_bytes(&self) -> Vec<u8> {
        match &self.access {
            None => crate::transfer::digest_signed_bytes(
                self.tree_size,
                &self.root,
                &self.head,
                self.recorded_at_us,
            ),
            Some(a) => crate::transfer::digest_anchored_signed_bytes(
                self.tree_size,
                &self.root,
                &self.head,
                self.recorded_at_us,
                a.lines,
                &a.head,
            ),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "tree_size": self.tree_size,
            "root": hex::encode(self.root),
            "head": hex::encode(self.head),
            "recorded_at": chrono::DateTime::from_timestamp_micros(self.recorded_at_us)
                .expect("digest time is within range")
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "public_key": hex::encode(self.public_key),
            "signature": hex::encode(self.signature),
        });
        if let Some(a) = &self.access {
            v["access_log"] = json!({"lines": a.lines, "head": hex::encode(a.head)});
        }
        v
    }

    pub fn from_json(v: &Value) -> Result<SignedDigest, CheckError> {
        let bad =
            |f: &str| CheckError::Input(format!("digest field \"{f}\" is missing or malformed"));
        let hexn = |f: &str, n: usize| -> Result<Vec<u8>, CheckError> {
            let b = hex::decode(v[f].as_str().ok_or_else(|| bad(f))?).map_err(|_| bad(f))?;
            if b.len() != n {
                return Err(bad(f));
            }
            Ok(b)
        };
        let at = v["recorded_at"].as_str().ok_or_else(|| bad("recorded_at"))?;
        let at = chrono::DateTime::parse_from_rfc3339(at).map_err(|_| bad("recorded_at"))?;
        let access = match v.get("access_log") {
            None => None,
            Some(a) => {
                let head = a["head"]
                    .as_str()
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|h| <[u8; 32]>::try_from(h).ok())
                    .ok_or_else(|| bad("access_log.head"))?;
                let lines = a["lines"].as_u64().ok_or_else(|| bad("access_log.lines"))?;
                Some(AccessAnchor { lines, head })
            }
        };
        Ok(SignedDigest {
            tree_size: v["tree_size"].as_u64().ok_or_else(|| bad("tree_size"))?,
            root: hexn("root", 32)?.try_into().expect("checked length"),
            head: hexn("head", 32)?.try_into().expect("checked length"),
            recorded_at_us: at.timestamp_micros(),
            access,
            public_key: hexn("public_key", 32)?.try_into().expect("checked length"),
            signature: hexn("signature", 64)?.try_into().expect("checked length"),
        })
    }

    /// Checks the signature against a trusted (pinned) key: the digest must name it and be
    /// signed by it. With `None` only that the digest is signed by the key it names, which
    /// proves nothing about who wrote it; callers that vouch for a digest pass a key.
    pub fn verify_signature(&self, trusted: Option<&[u8; 32]>) -> Result<(), CheckError> {
        if let Some(t) = trusted
            && t != &self.public_key
        {
            return Err(CheckError::Integrity("the digest is signed by another key".into()));
        }
        let key = VerifyingKey::from_bytes(&self.public_key).map_err(|_| {
            CheckError::Integrity("the digest's public key is not a valid Ed25519 key".into())
        })?;
        key.verify_strict(&self.signed_bytes(), &Signature::from_bytes(&self.signature))
            .map_err(|_| CheckError::Integrity("the digest's signature does not verify".into()))
    }

    pub fn read(path: &Path) -> Result<SignedDigest, CheckError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CheckError::Io(format!("reading {}: {e}", path.display())))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| CheckError::Input(format!("{}: not JSON: {e}", path.display())))?;
        SignedDigest::from_json(&v)
    }
}
