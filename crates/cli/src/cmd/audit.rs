//! Checking the books: verify (the database, an export, or since a digest), digests, proofs,
//! and the access log.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use junbao_ledger::checkpoint;
use serde_json::json;

use crate::args::ProofKind;
use crate::cmd::key::read_pinned_key;
use crate::exit::{Exit, access_exit, audit_exit, rejected};
use crate::{keys, open, progress};

/// `digest`: the signed digest of the ledger's head (anchoring the access log's, if there is
/// one), as JSON or as a signed checkpoint.
pub(crate) fn digest(
    data: &Path,
    key: Option<PathBuf>,
    format: &str,
    origin: Option<String>,
) -> Result<()> {
    let ledger = open_for_audit(data)?;
    let key = junbao_engine::load_signing_key(
        &key.unwrap_or_else(|| junbao_engine::default_key_path(data)),
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
        let note = checkpoint::sign_checkpoint(&key, &origin, digest.tree_size, &digest.root)
            .map_err(|e| rejected(format!("--origin: {e}")))?;
        std::io::stdout().write_all(note.as_bytes())?;
    } else {
        outln!("{}", digest.to_json());
    }
    Ok(())
}

/// `checkpoint verify`: a signed checkpoint against the pinned key (never a key the note names).
pub(crate) fn checkpoint_verify(file: &Path, key: &str, origin: Option<String>) -> Result<()> {
    let pinned = keys::pinned_public_key(key)?;
    let note =
        std::fs::read(file).map_err(|e| rejected(format!("reading {}: {e}", file.display())))?;
    let cp = checkpoint::verify_checkpoint(&note, &pinned, origin.as_deref())
        .map_err(|e| Exit { code: 3, message: format!("{}: {e}", file.display()) })?;
    outln!(
        "{}",
        json!({"verified": true, "origin": cp.origin, "tree_size": cp.tree_size,
               "root": hex::encode(cp.root)})
    );
    Ok(())
}

/// Opens the ledger for `verify`, `proof`, `digest` and `export journal`, which read only its
/// journal and tree: the store alone, no state loaded ([`junbao_engine::ForAudit`]).
pub(crate) fn open_for_audit(data: &Path) -> Result<junbao_engine::ForAudit> {
    junbao_engine::Ledger::open_for_audit(data, junbao_engine::system_clock())
        .with_context(|| format!("opening the ledger at {}", data.display()))
}

/// `proof`: an inclusion or a consistency proof.
pub(crate) fn proof(data: &Path, kind: ProofKind) -> Result<()> {
    let ledger = open_for_audit(data)?;
    let proof = match kind {
        ProofKind::Inclusion { seq, tree_size } => {
            serde_json::to_string(&ledger.inclusion_proof(seq, tree_size).map_err(audit_exit)?)?
        }
        ProofKind::Consistency { from, to } => {
            serde_json::to_string(&ledger.consistency_proof(from, to).map_err(audit_exit)?)?
        }
    };
    outln!("{proof}");
    Ok(())
}

pub(crate) fn verify(data: &Path) -> Result<()> {
    // The store alone: verification loads and replays everything itself.
    let ledger = open_for_audit(data)?;
    let total = ledger.head().seq;
    let bar = progress(total, "verifying");
    // A stored state that differs from the replay is verified again, to name what differs: the
    // count starts over, and the bar says why.
    let last = std::cell::Cell::new(0);
    let report = ledger.verify(&|n| {
        if n < last.replace(n) {
            bar.set_message("verifying again, to name what differs");
        }
        bar.set_position(n);
    })?;
    bar.finish_and_clear();
    outln!(
        "{}",
        json!({"verified": true, "entries": report.entries, "head": report.head, "accounts": report.accounts})
    );
    Ok(())
}

/// `migrate`: a format-1 ledger converted in place, verified before and after.
pub(crate) fn migrate(data: &Path) -> Result<()> {
    let summary =
        junbao_engine::Ledger::migrate(data, junbao_engine::system_clock()).map_err(|e| {
            anyhow::Error::from(crate::exit::Exit {
                code: crate::exit::exit_code(e.kind()),
                message: format!("migrating the ledger at {}: {e}", data.display()),
            })
        })?;
    outln!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// `verify --export FILE`: an exported journal, offline, against the pinned key.
pub(crate) fn verify_export_file(
    file: &Path,
    key: Option<PathBuf>,
    digest: Option<PathBuf>,
) -> Result<()> {
    let key =
        key.ok_or_else(|| rejected("--export needs --key PUB: the ledger's public key, pinned"))?;
    verify_export(file, &read_pinned_key(&key)?, digest)
}

pub(crate) fn verify_export(file: &Path, pinned: &[u8; 32], digest: Option<PathBuf>) -> Result<()> {
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

/// `verify --from-digest FILE`: the entries since a signed digest, and that the ledger still
/// holds what the digest signed.
pub(crate) fn verify_since(data: &Path, digest: &Path, key: Option<PathBuf>) -> Result<()> {
    let digest = junbao_engine::SignedDigest::read(digest).map_err(audit_exit)?;
    let ledger = open(data)?;
    let trusted = match key {
        Some(k) => read_pinned_key(&k)?,
        None => junbao_engine::load_signing_key(&junbao_engine::default_key_path(data))
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

/// `access verify`: the access log's hash chain; with `--digest`, the lines a signed digest
/// anchors are in it unchanged.
pub(crate) fn access_verify(
    data: &Path,
    file: Option<PathBuf>,
    digest: Option<PathBuf>,
    key: Option<String>,
) -> Result<()> {
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
    let r =
        junbao_server::verify_access_log_anchored(&file, anchor.as_ref()).map_err(access_exit)?;
    let mut answer = json!({"verified": true, "records": r.records, "last": r.last});
    if let Some(a) = anchor {
        answer["anchored_lines"] = json!(a.lines);
    }
    outln!("{answer}");
    Ok(())
}
