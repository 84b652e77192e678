//! Verification of a package (and of the digest it carries) against a pinned public key.

use super::{
    Figures, PACKAGE_ENTRIES_MAX, PackageDigest, PackageEntry, PackageError, TRANSFER_SCHEMA,
    TransferPackage, VerifiedPackage, bad, digest_signed_bytes, figures, follow_rotation,
    package_signed_message,
};
use crate::entry::{Entry, Hash32};
use crate::event::EventBody;
use crate::fund::{AccountKind, Fund};
use crate::ids::{AgencyId, MemberId};
use crate::merkle::{leaf_hash, verify_inclusion};
use crate::money::{Fen, parse_percent_ppm};
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;

fn hex32(field: &str, text: &str) -> Result<[u8; 32], PackageError> {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(field, "not 32 bytes of hex"))
}

fn pinned_key(pinned: &[u8; 32]) -> Result<VerifyingKey, PackageError> {
    VerifyingKey::from_bytes(pinned)
        .map_err(|_| bad("pinned key", "not a valid Ed25519 public key"))
}

impl PackageDigest {
    /// Checks the digest was signed by the pinned key, whatever key it names.
    pub fn verify(&self, pinned: &[u8; 32]) -> Result<(u64, Hash32), PackageError> {
        let root = hex32("digest.root", &self.root)?;
        let head = hex32("digest.head", &self.head)?;
        let named = hex32("digest.public_key", &self.public_key)?;
        if &named != pinned {
            return Err(bad(
                "digest.public_key",
                "is not the pinned key: the package was signed by another ledger's key",
            ));
        }
        let at = chrono::DateTime::parse_from_rfc3339(&self.recorded_at)
            .map_err(|_| bad("digest.recorded_at", "not an RFC 3339 time"))?
            .timestamp_micros();
        let signature: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("digest.signature", "not 64 bytes of hex"))?;
        pinned_key(pinned)?
            .verify_strict(
                &digest_signed_bytes(self.tree_size, &root, &head, at),
                &Signature::from_bytes(&signature),
            )
            .map_err(|_| bad("digest.signature", "does not verify under the pinned key"))?;
        Ok((self.tree_size, root))
    }
}

/// Verifies a package against a pinned public key (docs/TRANSFER.md, "Verification"): the
/// digest is signed by the pinned key (and is the trusted one, given its tree size and root),
/// every entry is proven in the digest's tree, everything the entries determine is rebuilt
/// from them and compared field by field, and the package signature covers the whole file.
/// Never panics on any input.
pub fn verify_package(
    value: &Value,
    pinned: &[u8; 32],
    trusted: Option<(u64, Hash32)>,
) -> Result<VerifiedPackage, PackageError> {
    if value.get("schema").and_then(Value::as_str) != Some(TRANSFER_SCHEMA) {
        return Err(PackageError::Malformed("\"schema\" is not \"junbao.transfer/1\"".into()));
    }
    let p: TransferPackage = serde_json::from_value(value.clone())
        .map_err(|e| PackageError::Malformed(e.to_string()))?;
    // The key rotations, proven in the digest's tree, are followed from the pinned key; the
    // digest and the package must then be signed by the key reached.
    let claimed_root = hex32("digest.root", &p.digest.root)?;
    let mut key = *pinned;
    let mut last_rotation = 0;
    for (i, e) in p.key_rotations.iter().enumerate() {
        let field = format!("key_rotations[{i}]");
        let entry = proven_entry(e, &field, p.digest.tree_size, &claimed_root)?;
        if entry.seq <= last_rotation {
            return Err(bad(format!("{field}.seq"), "rotations are not in sequence order"));
        }
        last_rotation = entry.seq;
        if !matches!(entry.event.body, EventBody::KeyRotation { .. }) {
            return Err(bad(field, "is not a key rotation"));
        }
        key = follow_rotation(&key, &entry);
    }
    let pinned = &key;
    let (tree_size, root) = p.digest.verify(pinned)?;
    if let Some((size, trusted_root)) = trusted
        && (size != tree_size || trusted_root != root)
    {
        return Err(bad("digest", "differs from the trusted digest"));
    }
    let member = MemberId::parse(&p.member.id).map_err(|m| bad("member.id", m))?;
    let fund = Fund::parse(&p.fund).map_err(|m| bad("fund", m))?;
    let agency = AgencyId::parse(&p.agency).map_err(|m| bad("agency", m))?;
    if p.entries.len() > PACKAGE_ENTRIES_MAX {
        return Err(bad("entries", format!("more than {PACKAGE_ENTRIES_MAX}")));
    }
    let mut entries = Vec::with_capacity(p.entries.len());
    for (i, e) in p.entries.iter().enumerate() {
        let field = format!("entries[{i}]");
        let entry = proven_entry(e, &field, tree_size, &root)?;
        if entries.last().is_some_and(|prev: &Entry| prev.seq >= entry.seq) {
            return Err(bad(format!("{field}.seq"), "entries are not in sequence order"));
        }
        entries.push(entry);
    }
    let last = entries.last().ok_or_else(|| bad("entries", "empty"))?;
    match last.event.body.upgraded(last.value_date).as_ref() {
        EventBody::TransferOut { member: m, fund: f, agency: a, .. }
            if m == &member && *f == fund && a == &agency => {}
        _ => return Err(bad("entries", "the last entry is not this transfer-out")),
    }
    let rates = match &p.pension_rates {
        Some(r) => Some((
            parse_percent_ppm(&r.unit).map_err(|e| bad("pension_rates.unit", e.to_string()))?,
            parse_percent_ppm(&r.personal)
                .map_err(|e| bad("pension_rates.personal", e.to_string()))?,
        )),
        None => None,
    };
    if (fund == Fund::Pension) != rates.is_some() {
        return Err(bad("pension_rates", "stated for the pension fund only, and always for it"));
    }
    let expected = figures(&member, fund, &entries, rates).map_err(|m| bad("entries", m))?;
    compare(&p, &expected)?;
    let payable: i64 = last
        .postings
        .iter()
        .filter(
            |x| matches!(&x.account.kind, AccountKind::AgencyPayable { agency: a } if a == &agency),
        )
        .map(|x| x.amount.0)
        .sum();
    if Fen(payable).to_string() != expected.totals.total {
        return Err(bad("totals.total", format!("the transfer-out moved {}", Fen(payable))));
    }
    let signature: [u8; 64] = p
        .package_signature
        .as_deref()
        .and_then(|s| hex::decode(s).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("package_signature", "missing or not 64 bytes of hex"))?;
    let message = package_signed_message(value).map_err(|m| bad("package", m))?;
    pinned_key(pinned)?.verify_strict(&message, &Signature::from_bytes(&signature)).map_err(
        |_| {
            bad(
                "package_signature",
                "does not verify under the pinned key over the package's canonical bytes \
                 (a field was changed, added or removed)",
            )
        },
    )?;
    Ok(VerifiedPackage {
        member: member.as_str().to_string(),
        fund: fund.name().to_string(),
        total: expected.totals.total,
        entries: entries.len(),
    })
}

/// Checks one listed entry: its bytes hash to the proof's leaf, the proof holds in the tree of
/// `tree_size` with `root`, and the bytes decode to entry `seq`.
fn proven_entry(
    e: &PackageEntry,
    field: &str,
    tree_size: u64,
    root: &Hash32,
) -> Result<Entry, PackageError> {
    let bytes = hex::decode(&e.bytes).map_err(|_| bad(format!("{field}.bytes"), "not hex"))?;
    let leaf = leaf_hash(&bytes);
    if e.proof.leaf_hash != hex::encode(leaf) {
        return Err(bad(format!("{field}.bytes"), "do not hash to the proof's leaf"));
    }
    let path: Vec<Hash32> = e
        .proof
        .path
        .iter()
        .map(|h| hex32(&format!("{field}.proof.path"), h))
        .collect::<Result<_, _>>()?;
    if e.proof.tree_size != tree_size {
        return Err(bad(format!("{field}.proof.tree_size"), "is not the digest's"));
    }
    verify_inclusion(e.proof.leaf_index, tree_size, &leaf, &path, root).map_err(|err| {
        bad(
            format!("{field}.proof"),
            format!("does not prove the entry is in the signed tree: {err}"),
        )
    })?;
    let entry = Entry::from_canonical_bytes(&bytes)
        .map_err(|err| bad(format!("{field}.bytes"), err.to_string()))?;
    if Some(entry.seq) != e.proof.leaf_index.checked_add(1) || e.seq != entry.seq {
        return Err(bad(format!("{field}.seq"), "does not match the entry and its proof"));
    }
    Ok(entry)
}

/// Compares the package's stated figures with those rebuilt from its entries, naming the first
/// field that differs.
fn compare(p: &TransferPackage, e: &Figures) -> Result<(), PackageError> {
    fn same<T: PartialEq + std::fmt::Debug>(
        field: &str,
        given: &T,
        rebuilt: &T,
    ) -> Result<(), PackageError> {
        if given == rebuilt {
            return Ok(());
        }
        Err(bad(field, format!("{given:?} in the package, {rebuilt:?} from its entries")))
    }
    same("member.category", &p.member.category, &e.member.category)?;
    same("member.unit", &p.member.unit, &e.member.unit)?;
    same("member.sponsor", &p.member.sponsor, &e.member.sponsor)?;
    same("service.from", &p.service.from, &e.service.from)?;
    same("service.to", &p.service.to, &e.service.to)?;
    same("service.months", &p.service.months, &e.service.months)?;
    same("service.years_counted", &p.service.years_counted, &e.service.years_counted)?;
    same("service.counts_toward", &p.service.counts_toward, &e.service.counts_toward)?;
    if p.years.len() != e.years.len() {
        return Err(bad(
            "years",
            format!("{} rows in the package, {} from its entries", p.years.len(), e.years.len()),
        ));
    }
    for (i, (g, r)) in p.years.iter().zip(&e.years).enumerate() {
        let f = |name: &str| format!("years[{i}].{name}");
        same(&f("year"), &g.year, &r.year)?;
        same(&f("contribution_wage"), &g.contribution_wage, &r.contribution_wage)?;
        same(&f("personal"), &g.personal, &r.personal)?;
        same(&f("state"), &g.state, &r.state)?;
        same(&f("interest"), &g.interest, &r.interest)?;
        same(&f("unit_part"), &g.unit_part, &r.unit_part)?;
        same(&f("personal_part"), &g.personal_part, &r.personal_part)?;
    }
    same("totals.personal", &p.totals.personal, &e.totals.personal)?;
    same("totals.state", &p.totals.state, &e.totals.state)?;
    same("totals.interest", &p.totals.interest, &e.totals.interest)?;
    same("totals.total", &p.totals.total, &e.totals.total)?;
    same("transfer_entry", &p.transfer_entry, &e.transfer_entry)?;
    Ok(())
}
