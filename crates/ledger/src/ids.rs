//! Identifiers that come from outside: event ids, members, units, agencies.

use std::fmt;

/// Longest event id (the client's idempotency key), per the contract.
pub const EVENT_ID_LEN_MAX: usize = 64;
/// Longest member, unit or agency id. Short because they appear in account names.
pub const NAME_ID_LEN_MAX: usize = 32;

macro_rules! id_type {
    ($name:ident, $what:literal, $check:path) => {
        #[doc = concat!("A validated ", $what, ".")]
        #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
        pub struct $name(String);

        /// By hand for `clone_from`, which reuses the text's buffer (a key rewritten in place).
        impl Clone for $name {
            fn clone(&self) -> Self {
                Self(self.0.clone())
            }
            fn clone_from(&mut self, source: &Self) {
                self.0.clone_from(&source.0)
            }
        }

        impl $name {
            pub fn parse(text: &str) -> Result<Self, String> {
                $check(text)?;
                Ok(Self(text.to_string()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Makes `text` the id, in the buffer the id had: decoding into an entry decoded
            /// before (`Entry::decode_reusing`), which checks no more than the plain decoding.
            pub(crate) fn set_decoded(&mut self, text: &str) {
                self.0.clear();
                self.0.push_str(text);
            }
        }

        /// In JSON an id is its text.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A name id held inline: at most [`NAME_ID_LEN_MAX`] ASCII bytes, zero-padded. Copying one
/// copies 32 bytes and allocates nothing: ids are copied into every account, premium-month key
/// and index record the rules touch. An id never holds a zero byte, so its length is where the
/// padding starts (32 bytes, a slot of two words in a map, without a length byte that would
/// take a third), and ordering the padded bytes orders as the text does.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct NameBytes([u8; NAME_ID_LEN_MAX]);

impl NameBytes {
    /// The bytes of `text`, which [`check_name_id`] accepted.
    fn of(text: &str) -> NameBytes {
        let mut bytes = [0; NAME_ID_LEN_MAX];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        NameBytes(bytes)
    }

    fn as_str(&self) -> &str {
        let len = self.0.iter().position(|b| *b == 0).unwrap_or(NAME_ID_LEN_MAX);
        std::str::from_utf8(&self.0[..len]).expect("a checked id is ASCII")
    }
}

/// A name id's text as read by a decoder: the encoding of a `String` (a length, then the
/// bytes), read into the inline form without an allocation, and checked as `parse` checks it
/// (a stored record holds only ids that were parsed; anything else is not one this ledger
/// wrote).
fn decode_name<D: bincode::de::Decoder>(
    decoder: &mut D,
    what: &str,
) -> Result<NameBytes, bincode::error::DecodeError> {
    use bincode::de::read::Reader;
    use bincode::error::DecodeError;
    let len = <u64 as bincode::Decode<D::Context>>::decode(decoder)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= NAME_ID_LEN_MAX)
        .ok_or_else(|| DecodeError::OtherString(format!("a {what} of {len} bytes")))?;
    decoder.claim_bytes_read(len)?;
    let mut bytes = [0; NAME_ID_LEN_MAX];
    decoder.reader().read(&mut bytes[..len])?;
    let text = std::str::from_utf8(&bytes[..len])
        .map_err(|_| DecodeError::OtherString(format!("a {what} that is not text")))?;
    check_name_id(text).map_err(|e| DecodeError::OtherString(format!("a {what} that {e}")))?;
    Ok(NameBytes(bytes))
}

macro_rules! name_id_type {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A validated ", $what, ", held inline (no allocation; see `NameBytes`).")]
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(NameBytes);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, String> {
                check_name_id(text)?;
                Ok(Self(NameBytes::of(text)))
            }
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        /// As the text would be: `Name("text")`.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.as_str()).finish()
            }
        }

        /// Encoded as its text (a `String`'s encoding: the canonical bytes are unchanged).
        impl bincode::Encode for $name {
            fn encode<E: bincode::enc::Encoder>(
                &self,
                encoder: &mut E,
            ) -> Result<(), bincode::error::EncodeError> {
                bincode::Encode::encode(self.as_str(), encoder)
            }
        }

        impl<Context> bincode::Decode<Context> for $name {
            fn decode<D: bincode::de::Decoder<Context = Context>>(
                decoder: &mut D,
            ) -> Result<Self, bincode::error::DecodeError> {
                decode_name(decoder, $what).map(Self)
            }
        }
        bincode::impl_borrow_decode!($name);

        /// In JSON an id is its text.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

fn check_event_id(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > EVENT_ID_LEN_MAX {
        return Err(format!("must be 1–{EVENT_ID_LEN_MAX} characters"));
    }
    if !text.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("must be printable ASCII".to_string());
    }
    Ok(())
}

/// Member, unit and agency ids appear inside colon-separated account names, so they are
/// restricted to letters, digits, `_`, `-` and `.`.
fn check_name_id(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > NAME_ID_LEN_MAX {
        return Err(format!("must be 1–{NAME_ID_LEN_MAX} characters"));
    }
    if !text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
        return Err("may contain only letters, digits, '_', '-' and '.'".to_string());
    }
    Ok(())
}

id_type!(EventId, "client event id (idempotency key)", check_event_id);
name_id_type!(MemberId, "member id");
name_id_type!(UnitId, "unit id");
name_id_type!(AgencyId, "civilian agency id");
name_id_type!(BankAccountId, "special bank account id (Art. 35)");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded_and_safe_in_account_names() {
        assert!(MemberId::parse("M0001").is_ok());
        assert!(MemberId::parse("M:1").is_err());
        assert!(MemberId::parse("").is_err());
        assert!(MemberId::parse(&"x".repeat(33)).is_err());
        assert!(EventId::parse("batch 7 / line 3").is_ok());
        assert!(EventId::parse(&"x".repeat(65)).is_err());
        assert!(EventId::parse("é").is_err());
    }

    /// Text of a valid name id: 1–32 characters of the allowed set.
    fn name_text() -> impl proptest::strategy::Strategy<Value = String> {
        "[A-Za-z0-9_.-]{1,32}"
    }

    proptest::proptest! {
        /// An inline id encodes as its text did when it was a `String` (canonical bytes are
        /// unchanged), decodes back, orders as its text and shows as it did.
        #[test]
        fn an_inline_id_is_its_text(a in name_text(), b in name_text()) {
            let (ma, mb) = (MemberId::parse(&a).unwrap(), MemberId::parse(&b).unwrap());
            let bytes = crate::entry::encode(&ma);
            proptest::prop_assert_eq!(&bytes, &crate::entry::encode(&a));
            proptest::prop_assert_eq!(crate::entry::decode::<MemberId>(&bytes).unwrap(), ma.clone());
            proptest::prop_assert_eq!(ma.cmp(&mb), a.cmp(&b));
            proptest::prop_assert_eq!(ma == mb, a == b);
            proptest::prop_assert_eq!(format!("{ma:?}"), format!("MemberId({a:?})"));
            proptest::prop_assert_eq!(ma.to_string(), a);
        }
    }

    #[test]
    fn a_stored_id_that_parse_would_refuse_does_not_decode() {
        for text in ["x".repeat(33), String::new(), "M:1".to_string(), "M\0".to_string()] {
            let bytes = crate::entry::encode(&text);
            assert!(crate::entry::decode::<MemberId>(&bytes).is_err(), "{text:?} decoded");
            assert!(crate::entry::decode::<UnitId>(&bytes).is_err(), "{text:?} decoded");
        }
        // A length past the end of the input.
        assert!(crate::entry::decode::<AgencyId>(&[20, b'A']).is_err());
    }
}
