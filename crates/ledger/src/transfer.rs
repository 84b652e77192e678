//! The transfer package (docs/TRANSFER.md): its typed form, the figures rebuilt from its
//! entries, its canonical bytes and signature, and its verification against a pinned key.
//!
//! Pure: the engine gathers the entries and proofs, this module computes everything the package
//! states from them, so that the exporter and the verifier run the same code.

use std::collections::{BTreeMap, HashSet};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::entry::{Entry, Hash32};
use crate::event::EventBody;
use crate::fund::{AccountKind, Category, Fund, Holding};
use crate::ids::{AgencyId, EventId, MemberId, UnitId};
use crate::merkle::{leaf_hash, verify_inclusion};
use crate::money::{Fen, parse_percent_ppm, ppm_to_percent_string};
use crate::time::Date;

pub const TRANSFER_SCHEMA: &str = "junbao.transfer/1";

/// Domain separation of the package signature (docs/FORMAT.md §13): the schema and a newline.
pub const PACKAGE_SIGNING_CONTEXT: &[u8] = b"junbao.transfer/1\n";

/// Domain separation of the digest signature (docs/FORMAT.md §6).
pub const DIGEST_SIGNING_CONTEXT: &[u8; 16] = b"junbao-digest-v1";

/// Domain separation of a digest that also anchors the access log's head (docs/FORMAT.md §6).
pub const DIGEST_ANCHORED_SIGNING_CONTEXT: &[u8; 16] = b"junbao-digest-v2";

/// Domain separation of a key rotation's signature (docs/FORMAT.md §14).
pub const KEY_ROTATION_CONTEXT: &[u8] = b"junbao-key-rotation-v1";

/// What the old key signs to hand over to `new_key`.
pub fn key_rotation_message(new_key: &[u8; 32]) -> Vec<u8> {
    let mut m = KEY_ROTATION_CONTEXT.to_vec();
    m.extend_from_slice(new_key);
    m
}

/// The key a verifier holding `current` holds after `entry`: the rotation's new key if `entry`
/// is a key rotation signed by `current`, else `current` (a rotation signed by any other key is
/// no rotation at all).
pub fn follow_rotation(current: &[u8; 32], entry: &Entry) -> [u8; 32] {
    let EventBody::KeyRotation { public_key, signature } = &entry.event.body else {
        return *current;
    };
    let signed = VerifyingKey::from_bytes(current).is_ok_and(|k| {
        k.verify_strict(&key_rotation_message(public_key), &Signature::from_bytes(signature))
            .is_ok()
    });
    if signed { *public_key } else { *current }
}

/// Largest integer a canonical package may hold: JavaScript's safe integers (2^53 - 1).
pub const CANONICAL_INTEGER_MAX: u64 = (1 << 53) - 1;

/// Most entries a package may list: bounds the work of a verifier facing a hostile file.
pub const PACKAGE_ENTRIES_MAX: usize = 100_000;

/// A transfer package as written to the file (docs/TRANSFER.md). Amounts stay the strings the
/// file holds; they are parsed where they are compared.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TransferPackage {
    pub schema: String,
    pub agency: String,
    pub fund: String,
    pub member: PackageMember,
    pub service: Service,
    pub years: Vec<YearRow>,
    pub pension_rates: Option<Rates>,
    pub totals: Totals,
    pub transfer_entry: u64,
    pub entries: Vec<PackageEntry>,
    pub digest: PackageDigest,
    /// The ledger's key rotations up to the digest, oldest first (absent when there are none):
    /// a verifier follows them from the key it pinned (docs/TRANSFER.md, "Key rotation").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_rotations: Vec<PackageEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_signature: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackageMember {
    pub id: String,
    pub category: String,
    pub unit: String,
    pub sponsor: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub from: String,
    pub to: String,
    pub months: i64,
    pub years_counted: String,
    pub counts_toward: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct YearRow {
    pub year: i32,
    pub contribution_wage: String,
    pub personal: String,
    pub state: String,
    pub interest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_part: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_part: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    pub unit: String,
    pub personal: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    pub personal: String,
    pub state: String,
    pub interest: String,
    pub total: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackageEntry {
    pub seq: u64,
    pub bytes: String,
    pub proof: InclusionProof,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub path: Vec<String>,
    pub root: String,
}

/// The signed digest as the package carries it (docs/FORMAT.md §6).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackageDigest {
    pub tree_size: u64,
    pub root: String,
    pub head: String,
    pub recorded_at: String,
    pub public_key: String,
    pub signature: String,
}

/// What the verification of a package found wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PackageError {
    /// Not a package at all (not JSON of the schema's shape): the input is wrong.
    #[error("not a junbao.transfer/1 package: {0}")]
    Malformed(String),
    /// A package whose named field does not check out.
    #[error("integrity failure: {field}: {what}")]
    Integrity { field: String, what: String },
}

fn bad(field: impl Into<String>, what: impl Into<String>) -> PackageError {
    PackageError::Integrity { field: field.into(), what: what.into() }
}

/// What a verified package says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPackage {
    pub member: String,
    pub fund: String,
    pub total: String,
    pub entries: usize,
}

/// What the package states that is computed from its entries (and, for the pension fund, the
/// rates it states).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub member: PackageMember,
    pub service: Service,
    pub years: Vec<YearRow>,
    pub totals: Totals,
    pub transfer_entry: u64,
}

/// Per calendar year of value date: money of each holding, in fen.
#[derive(Default, Clone, Copy)]
struct Row {
    personal: i64,
    state: i64,
    interest: i64,
}

/// The member's postings in `fund`, by holding.
pub fn member_postings(entry: &Entry, member: &MemberId, fund: Fund) -> Vec<(Holding, i64)> {
    entry
        .postings
        .iter()
        .filter(|p| p.account.fund == fund)
        .filter_map(|p| match &p.account.kind {
            AccountKind::Member { member: m, holding, .. } if m == member => {
                Some((*holding, p.amount.0))
            }
            _ => None,
        })
        .collect()
}

/// True for the entries that move money between the member and an agency: transfer-outs and
/// their reversals. They are not part of what is transferred.
fn is_transfer(e: &Entry) -> bool {
    e.postings.iter().any(|p| matches!(p.account.kind, AccountKind::AgencyPayable { .. }))
}

/// True for an entry of the member's lifecycle the package carries so that its particulars can
/// be recomputed: enrolment, category and pay changes, discharge, death, and reversals that
/// move no money (a reversal of one of those).
pub fn is_lifecycle(entry: &Entry, member: &MemberId) -> bool {
    match entry.event.body.upgraded(entry.value_date).as_ref() {
        EventBody::Enroll { member: m, .. }
        | EventBody::CategoryChange { member: m, .. }
        | EventBody::UnitChange { member: m, .. }
        | EventBody::PayChange { member: m, .. }
        | EventBody::Discharge { member: m, .. }
        | EventBody::Death { member: m, .. } => m == member,
        EventBody::Reversal { .. } => entry.postings.is_empty(),
        _ => false,
    }
}

/// The member as its lifecycle entries describe it.
struct Lifecycle {
    categories: Vec<(Date, Category)>,
    unit: UnitId,
    enlisted_on: Date,
    pays: Vec<(Date, Fen)>,
    sponsor: Option<MemberId>,
    discharged_on: Option<Date>,
    deceased_on: Option<Date>,
}

impl Lifecycle {
    fn from_entries(entries: &[Entry], member: &MemberId) -> Result<Lifecycle, String> {
        // A reversal undoes its target when the target is among the entries.
        let listed: HashSet<&EventId> = entries.iter().map(|e| &e.event.id).collect();
        let reversed: HashSet<&EventId> = entries
            .iter()
            .filter_map(|e| match &e.event.body {
                EventBody::Reversal { of, .. } if listed.contains(of) => Some(of),
                _ => None,
            })
            .collect();
        let mut life: Option<Lifecycle> = None;
        for e in entries.iter().filter(|e| !reversed.contains(&e.event.id)) {
            // Variants recorded before issue 11 are read in today's form.
            match e.event.body.upgraded(e.value_date).as_ref() {
                EventBody::Enroll {
                    member: m,
                    category,
                    unit,
                    enlisted_on,
                    monthly_pay,
                    sponsor,
                } if m == member => {
                    life = Some(Lifecycle {
                        categories: vec![(*enlisted_on, *category)],
                        unit: unit.clone(),
                        enlisted_on: *enlisted_on,
                        pays: vec![(*enlisted_on, *monthly_pay)],
                        sponsor: sponsor.clone(),
                        discharged_on: None,
                        deceased_on: None,
                    });
                }
                body => {
                    let Some(l) = life.as_mut() else { continue };
                    match body {
                        EventBody::CategoryChange { member: m, category, on } if m == member => {
                            l.categories.push((*on, *category));
                        }
                        EventBody::PayChange { member: m, monthly_pay, on } if m == member => {
                            l.pays.push((*on, *monthly_pay));
                        }
                        EventBody::UnitChange { member: m, unit, .. } if m == member => {
                            l.unit = unit.clone();
                        }
                        EventBody::Discharge { member: m, on, .. } if m == member => {
                            l.discharged_on = Some(*on);
                        }
                        EventBody::Death { member: m, on, .. } if m == member => {
                            l.deceased_on = Some(*on);
                        }
                        _ => {}
                    }
                }
            }
        }
        let mut l = life.ok_or_else(|| "no enrolment entry of the member".to_string())?;
        l.pays.sort_by_key(|(d, _)| *d);
        l.categories.sort_by_key(|(d, _)| *d);
        Ok(l)
    }

    fn pay_on(&self, date: Date) -> Fen {
        let i = self.pays.partition_point(|(from, _)| *from <= date);
        self.pays[i.saturating_sub(1)].1
    }
}

/// Months of service (years.hundredths), as the package states them.
pub fn years_counted(months: i64) -> String {
    format!("{}.{:02}", months / 12, (months % 12) * 100 / 12)
}

fn counts_toward(fund: Fund) -> &'static str {
    match fund {
        Fund::Pension => {
            "basic pension contribution years, combined with years before and after service (Art. 16 para. 2)"
        }
        Fund::Medical => "deemed basic medical contribution years (Art. 23 para. 2)",
        _ => "contribution years of the spouse's pension and medical insurance (Art. 27, 28)",
    }
}

/// Months of service longer than this are refused (a century): bounds the wage loop.
const SERVICE_MONTHS_MAX: i64 = 1_200;

/// Computes what a package states from the member's entries up to and including the
/// transfer-out (lifecycle entries and entries moving money in the member's accounts of
/// `fund`, in sequence order) and, for the pension fund, the subsidy's unit and personal rates
/// in parts per million. The last entry must be the transfer-out.
pub fn figures(
    member: &MemberId,
    fund: Fund,
    entries: &[Entry],
    rates_ppm: Option<(i64, i64)>,
) -> Result<Figures, String> {
    let life = Lifecycle::from_entries(entries, member)?;
    let last = entries.last().ok_or("no entries")?;
    let service_end =
        life.discharged_on.or(life.deceased_on).unwrap_or(last.value_date).max(life.enlisted_on);
    // Service from the enrolment day to the last day, both inclusive (issue 11).
    let months = life.enlisted_on.service_until(service_end).0;
    if months > SERVICE_MONTHS_MAX {
        return Err(format!("{months} months of service exceed {SERVICE_MONTHS_MAX}"));
    }
    let mut wages: BTreeMap<i32, i64> = BTreeMap::new();
    let start = life.enlisted_on.to_naive();
    for i in 0..months {
        let offset = u32::try_from(i).map_err(|_| "months out of range")?;
        let Some(d) = start.checked_add_months(chrono::Months::new(offset)) else {
            return Err("service dates out of range".into());
        };
        let w = wages.entry(chrono::Datelike::year(&d)).or_default();
        *w = w
            .checked_add(life.pay_on(Date::from_naive(d)).0)
            .ok_or("contribution wage overflows")?;
    }
    let mut rows: BTreeMap<i32, Row> = BTreeMap::new();
    for e in entries.iter().filter(|e| !is_transfer(e)) {
        let year = chrono::Datelike::year(&e.value_date.to_naive());
        for (h, fen) in member_postings(e, member, fund) {
            let r = rows.entry(year).or_default();
            let slot = match h {
                // Insurance brought in (Art. 15, 22, 26) was the person's own contributions.
                Holding::Personal | Holding::TransferredIn => &mut r.personal,
                Holding::State => &mut r.state,
                Holding::Interest => &mut r.interest,
            };
            *slot = slot.checked_add(fen).ok_or("amounts overflow")?;
        }
    }
    let mut t = Row::default();
    let mut years: Vec<i32> = rows.keys().chain(wages.keys()).copied().collect();
    years.sort_unstable();
    years.dedup();
    let mut list = Vec::with_capacity(years.len());
    for y in years {
        let r = rows.get(&y).copied().unwrap_or_default();
        let add = |a: i64, b: i64| a.checked_add(b).ok_or("totals overflow");
        t.personal = add(t.personal, r.personal)?;
        t.state = add(t.state, r.state)?;
        t.interest = add(t.interest, r.interest)?;
        let wage = Fen(wages.get(&y).copied().unwrap_or(0));
        list.push(YearRow {
            year: y,
            contribution_wage: wage.to_string(),
            personal: Fen(r.personal).to_string(),
            state: Fen(r.state).to_string(),
            interest: Fen(r.interest).to_string(),
            unit_part: rates_ppm.map(|(u, _)| wage.mul_ppm(u).to_string()),
            personal_part: rates_ppm.map(|(_, p)| wage.mul_ppm(p).to_string()),
        });
    }
    let total = t
        .personal
        .checked_add(t.state)
        .and_then(|x| x.checked_add(t.interest))
        .ok_or("totals overflow")?;
    let category = life.categories.last().map(|(_, c)| *c).ok_or("no category")?;
    Ok(Figures {
        member: PackageMember {
            id: member.as_str().to_string(),
            category: category.name().to_string(),
            unit: life.unit.as_str().to_string(),
            sponsor: life.sponsor.as_ref().map(|s| s.as_str().to_string()),
        },
        service: Service {
            from: life.enlisted_on.to_string(),
            to: service_end.to_string(),
            months,
            years_counted: years_counted(months),
            counts_toward: counts_toward(fund).to_string(),
        },
        years: list,
        totals: Totals {
            personal: Fen(t.personal).to_string(),
            state: Fen(t.state).to_string(),
            interest: Fen(t.interest).to_string(),
            total: Fen(total).to_string(),
        },
        transfer_entry: last.seq,
    })
}

/// Rates as the package states them.
pub fn rates_json(rates_ppm: Option<(i64, i64)>) -> Option<Rates> {
    rates_ppm
        .map(|(u, p)| Rates { unit: ppm_to_percent_string(u), personal: ppm_to_percent_string(p) })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_sort_keys_escape_like_javascript_and_refuse_fractions() {
        let v: Value = serde_json::from_str(
            r#"{"b":[1,-2,"x\u0001\n\"/é"],"a":null,"c":{"z":true,"y":false}}"#,
        )
        .expect("valid JSON");
        let mut out = Vec::new();
        write_canonical(&v, &mut out).expect("canonical");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            r#"{"a":null,"b":[1,-2,"x\u0001\n\"/é"],"c":{"y":false,"z":true}}"#
        );
        for text in ["1.5", "1e3", "9007199254740992"] {
            let v: Value = serde_json::from_str(text).expect("valid JSON");
            assert!(write_canonical(&v, &mut Vec::new()).is_err(), "{text} accepted");
        }
    }

    #[test]
    fn signature_covers_every_field_but_itself() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut v: Value =
            serde_json::from_str(r#"{"schema":"junbao.transfer/1","n":1}"#).expect("valid JSON");
        sign_package(&mut v, &key).expect("signed");
        let sig = |v: &Value| {
            let bytes: [u8; 64] = hex::decode(v["package_signature"].as_str().expect("signed"))
                .expect("hex")
                .try_into()
                .expect("64 bytes");
            Signature::from_bytes(&bytes)
        };
        let message = package_signed_message(&v).expect("message");
        assert!(key.verifying_key().verify_strict(&message, &sig(&v)).is_ok());
        let mut changed = v.clone();
        changed["n"] = Value::from(2);
        let message = package_signed_message(&changed).expect("message");
        assert!(key.verifying_key().verify_strict(&message, &sig(&changed)).is_err());
    }

    #[test]
    fn a_rotation_is_followed_only_when_the_current_key_signed_it() {
        use crate::entry::ENTRY_FORMAT_VERSION;
        use crate::event::Event;
        let old = SigningKey::from_bytes(&[1; 32]);
        let new = SigningKey::from_bytes(&[2; 32]).verifying_key().to_bytes();
        let other = SigningKey::from_bytes(&[3; 32]);
        let rotation = |signer: &SigningKey| Entry {
            format: ENTRY_FORMAT_VERSION,
            seq: 9,
            recorded_at_us: 0,
            value_date: Date(0),
            event: Event {
                id: EventId::parse("key-rotation:1").expect("valid id"),
                value_date: None,
                memo: None,
                body: EventBody::KeyRotation {
                    public_key: new,
                    signature: signer.sign(&key_rotation_message(&new)).to_bytes(),
                },
            },
            postings: Vec::new(),
        };
        let pinned = old.verifying_key().to_bytes();
        assert_eq!(follow_rotation(&pinned, &rotation(&old)), new);
        assert_eq!(follow_rotation(&pinned, &rotation(&other)), pinned, "a forged rotation");
        assert_eq!(follow_rotation(&new, &rotation(&old)), new, "already at the new key");
    }

    #[test]
    fn random_json_is_refused_cleanly() {
        let pinned = SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes();
        for text in [
            "null",
            "[]",
            r#"{"schema":"junbao.transfer/1"}"#,
            r#"{"schema":"junbao.transfer/1","entries":[{"bytes":"zz"}]}"#,
        ] {
            let v: Value = serde_json::from_str(text).expect("valid JSON");
            assert!(verify_package(&v, &pinned, None).is_err(), "{text} accepted");
        }
    }
}
