//! The ledger's signed tree head as a C2SP transparency-log checkpoint
//! (<https://c2sp.org/tlog-checkpoint>) in a C2SP signed note (<https://c2sp.org/signed-note>),
//! so that transparency-log tooling — witnesses, monitors, Go's `sumdb/note` — can read, verify
//! and cosign it (docs/FORMAT.md §6a). The note is signed with the ledger's digest key, an Ed25519
//! signature (type 0x01) over the note text; the key name is the log's origin.
//!
//! The note carries the tree size and the RFC 6962 root of the same tree the JSON digest signs; the
//! JSON digest (with the chain head, time and access-log anchor) stays the ledger's own format.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey};
use signed_note::{Note, StandardVerifier, VerifierList};

use crate::entry::Hash32;

/// The signature type of an Ed25519 key in a signed note's key id (signed-note §Signatures).
const ALG_ED25519: u8 = 0x01;

/// A checkpoint that cannot be made or does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error(
        "origin {0:?} is not a valid key name (non-empty, no spaces or '+', not starting with \"junbao-\")"
    )]
    Origin(String),
    #[error("not a signed note: {0}")]
    Note(String),
    #[error("the checkpoint is not signed by the pinned key for origin {0:?}")]
    Unverified(String),
    #[error("the checkpoint's origin is {found:?}, not {expected:?}")]
    OtherOrigin { expected: String, found: String },
    #[error("checkpoint line {line}: {reason}")]
    Body { line: usize, reason: String },
}

/// A verified checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub tree_size: u64,
    pub root: Hash32,
}

/// The origin a ledger uses when none is configured: `junbao.ledger/` and 16 hex digits of the
/// SHA-256 of its public key. Operators should set their own (for example the ledger's URL) and
/// never change it: witnesses know a log by its origin.
pub fn default_origin(public_key: &[u8; 32]) -> String {
    format!("junbao.ledger/{}", &hex::encode(crate::entry::sha256(public_key))[..16])
}

/// Whether `origin` may name the log: a signed-note key name (non-empty, no Unicode space, no
/// '+'), printable, and not starting with `junbao-`, so that no note text can ever begin like the
/// domain-separation prefix of the ledger's own signed messages (`junbao-digest-v1` …).
pub fn origin_is_valid(origin: &str) -> bool {
    signed_note::is_key_name_valid(origin)
        && !origin.starts_with("junbao-")
        && origin.chars().all(|c| !c.is_control())
}

/// The verifier key of the log, as signed-note tools take it: `origin+keyid+base64(0x01‖key)`.
pub fn verifier_key(origin: &str, public_key: &[u8; 32]) -> Result<String, CheckpointError> {
    if !origin_is_valid(origin) {
        return Err(CheckpointError::Origin(origin.to_string()));
    }
    let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
        .map_err(|_| CheckpointError::Note("the public key is not an Ed25519 key".into()))?;
    Ok(signed_note::new_ed25519_verifier_key(origin, &key))
}

/// The checkpoint body: origin, tree size in decimal, base64 of the root, each ending in a newline.
pub fn checkpoint_text(origin: &str, tree_size: u64, root: &Hash32) -> String {
    format!("{origin}\n{tree_size}\n{}\n", BASE64.encode(root))
}

struct NoteSigner<'a> {
    name: &'a str,
    id: u32,
    key: &'a SigningKey,
}

impl signed_note::Signer for NoteSigner<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

/// Signs `text` as a signed note with `key` under the key name `name`.
pub fn sign_note(key: &SigningKey, name: &str, text: &str) -> Result<String, CheckpointError> {
    if !origin_is_valid(name) {
        return Err(CheckpointError::Origin(name.to_string()));
    }
    let mut encoded = vec![ALG_ED25519];
    encoded.extend_from_slice(key.verifying_key().as_bytes());
    let signer = NoteSigner { name, id: signed_note::key_id(name, &encoded), key };
    let mut note =
        Note::new(text.as_bytes(), &[]).map_err(|e| CheckpointError::Note(e.to_string()))?;
    note.add_sigs(&[&signer]).map_err(|e| CheckpointError::Note(e.to_string()))?;
    String::from_utf8(note.to_bytes()).map_err(|e| CheckpointError::Note(e.to_string()))
}

/// The signed checkpoint of the tree of `tree_size` entries with root `root`.
pub fn sign_checkpoint(
    key: &SigningKey,
    origin: &str,
    tree_size: u64,
    root: &Hash32,
) -> Result<String, CheckpointError> {
    sign_note(key, origin, &checkpoint_text(origin, tree_size, root))
}

/// Verifies a signed checkpoint with the pinned public key, trusting nothing the note carries: the
/// origin is `expected_origin` when given (else the note's first line, which only names which key
/// to check: the key is the pinned one), the signature must be the pinned key's under that
/// name, and the body must be exactly origin, decimal size, base64 of 32 bytes.
pub fn verify_checkpoint(
    note: &[u8],
    pinned: &[u8; 32],
    expected_origin: Option<&str>,
) -> Result<Checkpoint, CheckpointError> {
    let parsed = Note::from_bytes(note).map_err(|e| CheckpointError::Note(e.to_string()))?;
    let text = std::str::from_utf8(parsed.text())
        .map_err(|_| CheckpointError::Note("the text is not UTF-8".into()))?;
    let lines: Vec<&str> = text.strip_suffix('\n').unwrap_or(text).split('\n').collect();
    let found = lines.first().copied().unwrap_or_default();
    let origin = expected_origin.unwrap_or(found);
    if found != origin {
        return Err(CheckpointError::OtherOrigin {
            expected: origin.to_string(),
            found: found.to_string(),
        });
    }
    let vkey = verifier_key(origin, pinned)?;
    let verifier =
        StandardVerifier::new(&vkey).map_err(|e| CheckpointError::Note(e.to_string()))?;
    parsed
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|_| CheckpointError::Unverified(origin.to_string()))?;
    let body = |line: usize, reason: &str| CheckpointError::Body { line, reason: reason.into() };
    if lines.len() != 3 {
        return Err(body(lines.len().min(4), "a checkpoint has exactly three lines"));
    }
    let tree_size = lines[1]
        .parse::<u64>()
        .ok()
        .filter(|n| lines[1] == n.to_string())
        .ok_or_else(|| body(2, "the tree size is not a decimal number"))?;
    let root: Hash32 = BASE64
        .decode(lines[2])
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| body(3, "the root hash is not base64 of 32 bytes"))?;
    Ok(Checkpoint { origin: origin.to_string(), tree_size, root })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of Go's `golang.org/x/mod/sumdb/note` (and of the signed_note crate): the
    /// key `PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz` signs this
    /// text to exactly this note. Our signer must produce it byte for byte.
    #[test]
    fn our_signer_reproduces_the_go_sumdb_note_vector() {
        let skey = BASE64.decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").unwrap();
        assert_eq!(skey[0], ALG_ED25519);
        let key = SigningKey::from_bytes(&skey[1..].try_into().unwrap());
        let text = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
        let want = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n\
                    \n\
                    — PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        assert_eq!(sign_note(&key, "PeterNeumann", text).unwrap(), want);
        assert_eq!(
            verifier_key("PeterNeumann", key.verifying_key().as_bytes()).unwrap(),
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        );
    }

    #[test]
    fn a_checkpoint_verifies_with_the_pinned_key_only_and_every_change_fails() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let pinned = key.verifying_key().to_bytes();
        let root = crate::entry::sha256(b"root");
        let note = sign_checkpoint(&key, "example.org/ledger", 42, &root).unwrap();
        assert!(note.starts_with("example.org/ledger\n42\n"));
        let cp = verify_checkpoint(note.as_bytes(), &pinned, None).unwrap();
        assert_eq!((cp.tree_size, cp.root, cp.origin.as_str()), (42, root, "example.org/ledger"));
        // Another key's note, even under the same origin, is not verified.
        let forged = sign_checkpoint(&other, "example.org/ledger", 42, &root).unwrap();
        assert!(matches!(
            verify_checkpoint(forged.as_bytes(), &pinned, None),
            Err(CheckpointError::Unverified(_))
        ));
        // A changed size, or an origin other than the expected one, fails.
        let changed = note.replacen("\n42\n", "\n43\n", 1);
        assert!(verify_checkpoint(changed.as_bytes(), &pinned, None).is_err());
        assert!(matches!(
            verify_checkpoint(note.as_bytes(), &pinned, Some("example.org/other")),
            Err(CheckpointError::OtherOrigin { .. })
        ));
        // A signed body that is not a checkpoint is refused after the signature holds.
        let odd = sign_note(&key, "example.org/ledger", "example.org/ledger\n042\nAAAA\n").unwrap();
        assert!(matches!(
            verify_checkpoint(odd.as_bytes(), &pinned, None),
            Err(CheckpointError::Body { line: 2, .. })
        ));
        // Origins that could collide with the ledger's own signed prefixes are refused.
        assert!(sign_checkpoint(&key, "junbao-digest-v1", 1, &root).is_err());
        assert!(sign_checkpoint(&key, "has space", 1, &root).is_err());
    }
}
