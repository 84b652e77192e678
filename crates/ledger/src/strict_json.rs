//! JSON in which every object names each key at most once. `serde_json` keeps the last of two
//! equal keys, so a transfer package with a forged `"totals"` followed by the real one would
//! verify while a reader (a person, or a parser that keeps the first) sees the forged figures.
//! Packages and digests are checked with [`check_unique_keys`] before they are read.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Walks any JSON value and fails on the first object that repeats a key.
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Unique)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("key {key:?} appears twice in one object")));
            }
            map.next_value_seed(Unique)?;
        }
        Ok(())
    }
}

/// Whether `text` is one JSON value in which no object repeats a key; the error says which key
/// and where.
pub fn check_unique_keys(text: &str) -> Result<(), String> {
    let mut d = serde_json::Deserializer::from_str(text);
    Unique.deserialize(&mut d).map_err(|e| e.to_string())?;
    d.end().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::check_unique_keys;

    #[test]
    fn a_repeated_key_at_any_depth_is_refused_and_distinct_keys_pass() {
        assert!(check_unique_keys(r#"{"a":1,"b":[{"c":"x","d":null}],"e":{"f":true}}"#).is_ok());
        let top = check_unique_keys(r#"{"totals":{"total":"1.00"},"totals":{"total":"2.00"}}"#);
        assert!(top.unwrap_err().contains("\"totals\" appears twice"));
        assert!(check_unique_keys(r#"{"a":[{"m":1,"m":2}]}"#).is_err());
        assert!(check_unique_keys(r#"{"a":{"b":{"c":1,"c":1}}}"#).is_err());
        // Escapes name the same key.
        assert!(check_unique_keys(r#"{"M":1,"\u004d":2}"#).is_err());
        assert!(check_unique_keys("{} trailing").is_err());
    }
}
