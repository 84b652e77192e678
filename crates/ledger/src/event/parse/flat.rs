//! The fast path of the event parser: a line that is one flat JSON object whose every value is
//! a plain string — no escapes, no numbers, booleans, nulls, arrays or nested objects, no
//! unknown or repeated key — read without serde and without allocating.
//!
//! Anything else is declined (`None`) and read by serde, so that a malformed line is refused
//! in serde's words. On a line it accepts, [`scan`] gives exactly the fields serde would
//! (`RawEvent`, each value `Field::Str`); the tests check the two against each other.

use super::{F, FIELDS, Fields, Value};

/// Most fields the fast path holds; a line with more is left to serde. Every event fits: the
/// longest, a `backpay` with `value_date` and `memo`, has 27.
const VALUES_MAX: usize = 32;

/// The fields of a flat line: each value a slice of the line.
#[derive(Debug)]
pub(super) struct FlatFields<'a> {
    /// One bit ([`F::bit`]) per field present.
    present: u64,
    /// For each field, by position, its index in `values` (when its bit is set).
    slot: [u8; FIELDS],
    values: [&'a str; VALUES_MAX],
    len: usize,
}

impl<'a> FlatFields<'a> {
    pub(super) fn new() -> Self {
        FlatFields { present: 0, slot: [0; FIELDS], values: [""; VALUES_MAX], len: 0 }
    }

    /// Records `value` for `f`; `None` (decline) for a repeated field or one too many.
    fn insert(&mut self, f: F, value: &'a str) -> Option<()> {
        if self.present & f.bit() != 0 || self.len == VALUES_MAX {
            return None;
        }
        self.present |= f.bit();
        self.slot[f as usize] = self.len as u8;
        self.values[self.len] = value;
        self.len += 1;
        Some(())
    }
}

impl Fields for FlatFields<'_> {
    fn value(&self, f: F) -> Option<Value<'_>> {
        if self.present & f.bit() == 0 {
            return None;
        }
        Some(Value::Str(self.values[usize::from(self.slot[f as usize])]))
    }

    fn present(&self) -> u64 {
        self.present
    }
}

/// Reads the fields of `line` into `fields` (new) if it is a flat object of plain strings with
/// known, distinct keys; `None` for any other line, valid or not (serde reads it). Filled in
/// place: the fields are a few hundred bytes, not worth a move per line.
pub(super) fn scan<'a>(line: &'a str, fields: &mut FlatFields<'a>) -> Option<()> {
    let bytes = line.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_whitespace(bytes, at + 1);
    if bytes.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            let (key, next) = plain_string(line, at)?;
            at = skip_whitespace(bytes, next);
            if bytes.get(at) != Some(&b':') {
                return None;
            }
            at = skip_whitespace(bytes, at + 1);
            let (value, next) = plain_string(line, at)?;
            fields.insert(F::of_key(key)?, value)?;
            at = skip_whitespace(bytes, next);
            match bytes.get(at) {
                Some(b',') => at = skip_whitespace(bytes, at + 1),
                Some(b'}') => {
                    at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    // serde_json allows whitespace after the value and nothing else.
    (skip_whitespace(bytes, at) == bytes.len()).then_some(())
}

/// JSON's whitespace (RFC 8259: space, tab, line feed, carriage return) from `at` on.
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

/// The string that starts with the quote at `at`, and where it ends; `None` unless it is
/// there and plain: no escape (serde would unescape it) and no control character (serde
/// refuses it).
fn plain_string(line: &str, at: usize) -> Option<(&str, usize)> {
    let bytes = line.as_bytes();
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let len = bytes.get(start..)?.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    let end = start + len;
    if bytes.get(end) != Some(&b'"') {
        return None;
    }
    // Both ends are ASCII quotes, so the slice falls on character boundaries.
    Some((line.get(start..end)?, end + 1))
}
