//! The transfer package (docs/TRANSFER.md): its typed form, the figures rebuilt from its
//! entries, its canonical bytes and signature, and its verification against a pinned key.
//!
//! Pure: the engine gathers the entries and proofs, this module computes everything the package
//! states from them, so that the exporter and the verifier run the same code.
//!
//! This file holds the package's types and the key rotation; `figures` computes what a package
//! states, `canonical` its bytes and signature, `verify` checks one against a pinned key.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::event::EventBody;
use crate::fund::Fund;
pub use crate::report::proofs::InclusionProof;

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

/// Art. 16, 23, 27, 28: the pension, medical and spouse funds follow the member to a civilian
/// agency; the casualty fund (Art. 7-12) keeps no member money to transfer.
pub fn check_transferred(fund: Fund) -> Result<(), &'static str> {
    match fund {
        Fund::Casualty => Err("the casualty fund is not transferred to civilian agencies"),
        Fund::Pension | Fund::Medical | Fund::Spouse => Ok(()),
    }
}

/// Largest integer a canonical package may hold: JavaScript's safe integers (2^53 - 1).
pub const CANONICAL_INTEGER_MAX: u64 = (1 << 53) - 1;

/// Most entries a package may list: bounds the work of a verifier facing a hostile file.
pub const PACKAGE_ENTRIES_MAX: usize = 100_000;

/// A transfer package as written to the file (docs/TRANSFER.md). Amounts stay the strings the
/// file holds; they are parsed where they are compared. The fields of the package's structs
/// are in the alphabetical order of their keys, the order of the file (`crate::report`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TransferPackage {
    pub agency: String,
    pub digest: PackageDigest,
    pub entries: Vec<PackageEntry>,
    pub fund: String,
    /// The ledger's key rotations up to the digest, oldest first (absent when there are none):
    /// a verifier follows them from the key it pinned (docs/TRANSFER.md, "Key rotation").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_rotations: Vec<PackageEntry>,
    pub member: PackageMember,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_signature: Option<String>,
    pub pension_rates: Option<Rates>,
    pub schema: String,
    pub service: Service,
    pub totals: Totals,
    pub transfer_entry: u64,
    pub years: Vec<YearRow>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackageMember {
    pub category: String,
    pub id: String,
    pub sponsor: Option<String>,
    pub unit: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub counts_toward: String,
    pub from: String,
    pub months: i64,
    pub to: String,
    pub years_counted: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct YearRow {
    pub contribution_wage: String,
    pub interest: String,
    pub personal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_part: Option<String>,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_part: Option<String>,
    pub year: i32,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    pub personal: String,
    pub unit: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    pub interest: String,
    pub personal: String,
    pub state: String,
    pub total: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackageEntry {
    pub bytes: String,
    pub proof: InclusionProof,
    pub seq: u64,
}

/// The signed digest as the package carries it (docs/FORMAT.md §6). Fields in the alphabetical
/// order of their keys (`crate::report`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackageDigest {
    pub head: String,
    pub public_key: String,
    pub recorded_at: String,
    pub root: String,
    pub signature: String,
    pub tree_size: u64,
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

/// What a verified package says. In JSON (what `transfer verify` prints):
/// `{"entries","fund","member","total","verified":true}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPackage {
    pub member: String,
    pub fund: String,
    pub total: String,
    pub entries: usize,
}

impl Serialize for VerifiedPackage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("VerifiedPackage", 5)?;
        st.serialize_field("entries", &self.entries)?;
        st.serialize_field("fund", &self.fund)?;
        st.serialize_field("member", &self.member)?;
        st.serialize_field("total", &self.total)?;
        st.serialize_field("verified", &true)?;
        st.end()
    }
}

mod canonical;
mod figures;
mod verify;

pub use canonical::{
    digest_anchored_signed_bytes, digest_signed_bytes, package_signed_message, sign_package,
    write_canonical,
};
pub use figures::{Figures, figures, is_lifecycle, member_postings, rates_json, years_counted};
pub use verify::verify_package;

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Signer, SigningKey};
    use serde_json::Value;

    use crate::entry::Entry;
    use crate::event::EventBody;
    use crate::ids::EventId;
    use crate::time::Date;

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
    fn a_package_and_its_verification_print_in_sorted_key_order() {
        let entry = || PackageEntry {
            bytes: "00".into(),
            proof: InclusionProof::new(1, 1, &[0; 32], &[], &[0; 32]),
            seq: 1,
        };
        let mut p = TransferPackage {
            agency: "SI-1".into(),
            digest: PackageDigest {
                head: "00".into(),
                public_key: "01".into(),
                recorded_at: "2026-01-01T00:00:00.000000Z".into(),
                root: "02".into(),
                signature: "03".into(),
                tree_size: 1,
            },
            entries: vec![entry()],
            fund: "pension".into(),
            key_rotations: vec![entry()],
            member: PackageMember {
                category: "officer".into(),
                id: "M1".into(),
                sponsor: None,
                unit: "U1".into(),
            },
            package_signature: None,
            pension_rates: Some(Rates { personal: "8".into(), unit: "16".into() }),
            schema: TRANSFER_SCHEMA.into(),
            service: Service {
                counts_toward: "x".into(),
                from: "2020-01-01".into(),
                months: 12,
                to: "2020-12-31".into(),
                years_counted: "1.00".into(),
            },
            totals: Totals {
                interest: "0.00".into(),
                personal: "0.00".into(),
                state: "0.00".into(),
                total: "0.00".into(),
            },
            transfer_entry: 1,
            years: vec![YearRow {
                contribution_wage: "0.00".into(),
                interest: "0.00".into(),
                personal: "0.00".into(),
                personal_part: Some("0.00".into()),
                state: "0.00".into(),
                unit_part: Some("0.00".into()),
                year: 2020,
            }],
        };
        let key = SigningKey::from_bytes(&[7; 32]);
        p.sign(&key).expect("signed");
        crate::report::testing::assert_sorted_keys(&p);
        let mut v = serde_json::to_value(&p).expect("serialises");
        let signed = v["package_signature"].clone();
        sign_package(&mut v, &key).expect("signed");
        assert_eq!(v["package_signature"], signed, "the typed and the JSON signatures agree");
        let verified = VerifiedPackage {
            member: "M1".into(),
            fund: "medical".into(),
            total: "1.00".into(),
            entries: 2,
        };
        crate::report::testing::assert_sorted_keys(&verified);
        assert_eq!(
            serde_json::to_string(&verified).expect("serialises"),
            r#"{"entries":2,"fund":"medical","member":"M1","total":"1.00","verified":true}"#
        );
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
