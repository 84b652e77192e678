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
id_type!(MemberId, "member id", check_name_id);
id_type!(UnitId, "unit id", check_name_id);
id_type!(AgencyId, "civilian agency id", check_name_id);
id_type!(BankAccountId, "special bank account id (Art. 35)", check_name_id);

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
}
