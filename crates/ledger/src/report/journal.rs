//! The journal's JSON form: `journal --json`, the HTTP journal page, the export's lines (what
//! a mirror copies).

use serde::Serialize;
use serde_json::Value;

use crate::entry::{Entry, Hash32};
use crate::fund::Account;
use crate::money::Fen;
use crate::time::Date;

/// A posting as the reports print it: the account's name and the amount.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct PostingLine {
    pub account: String,
    pub amount: Fen,
}

impl PostingLine {
    pub fn of(account: &Account, amount: Fen) -> Self {
        PostingLine { account: account.to_string(), amount }
    }
}

/// An entry in the journal's JSON form: sequence, chain hash, the decoded event and postings,
/// and in an export (or a journal page) its canonical bytes.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct JournalEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
    pub event: Value,
    #[serde(serialize_with = "super::hex_bytes")]
    pub hash: Hash32,
    pub postings: Vec<PostingLine>,
    /// RFC 3339 with microseconds, UTC (`null` for a time outside chrono's range).
    pub recorded_at: Option<String>,
    pub seq: u64,
    pub value_date: Date,
}

impl JournalEntry {
    /// The stored entry `seq` (decoded as `entry`) with its chain hash; with `bytes`, its
    /// canonical bytes in hex.
    pub fn of(seq: u64, chain_hash: Hash32, entry: &Entry, bytes: Option<&[u8]>) -> Self {
        JournalEntry {
            bytes: bytes.map(hex::encode),
            event: entry.event.to_json(),
            hash: chain_hash,
            postings: entry
                .postings
                .iter()
                .map(|p| PostingLine::of(&p.account, p.amount))
                .collect(),
            recorded_at: recorded_at_micros(entry.recorded_at_us),
            seq,
            value_date: entry.value_date,
        }
    }
}

/// A recording time as RFC 3339 with microseconds, UTC.
pub fn recorded_at_micros(us: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// A page of the journal: `{"entries": [...], "next": SEQ}` (`next` is `null` on an empty page).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct JournalPage {
    pub entries: Vec<JournalEntry>,
    pub next: Option<u64>,
}

impl JournalPage {
    pub fn new(entries: Vec<JournalEntry>) -> Self {
        let next = entries.last().map(|e| e.seq + 1);
        JournalPage { entries, next }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::entry::ENTRY_FORMAT_VERSION;
    use crate::event::{Event, EventBody};
    use crate::ids::EventId;
    use crate::report::testing::assert_sorted_keys;

    pub(crate) fn an_entry() -> Entry {
        Entry {
            format: ENTRY_FORMAT_VERSION,
            seq: 9,
            recorded_at_us: 1_700_000_000_000_000,
            value_date: Date(20_000),
            event: Event {
                id: EventId::parse("key-rotation:1").expect("valid id"),
                value_date: None,
                memo: None,
                body: EventBody::KeyRotation { public_key: [1; 32], signature: [2; 64] },
            },
            postings: Vec::new(),
        }
    }

    #[test]
    fn journal_entries_print_in_sorted_key_order_with_bytes_only_when_given() {
        let e = JournalEntry::of(9, [3; 32], &an_entry(), None);
        assert_sorted_keys(&e);
        let v = serde_json::to_value(&e).expect("serialises");
        assert!(v.get("bytes").is_none());
        assert_eq!(v["recorded_at"], "2023-11-14T22:13:20.000000Z");
        assert_eq!(v["value_date"], "2024-10-04");
        let with = JournalEntry::of(9, [3; 32], &an_entry(), Some(&[0xab]));
        assert_sorted_keys(&with);
        assert_eq!(serde_json::to_value(&with).expect("serialises")["bytes"], "ab");
        let page = JournalPage::new(vec![with]);
        assert_eq!(page.next, Some(10));
        assert_sorted_keys(&page);
        assert_sorted_keys(&PostingLine { account: "a".into(), amount: Fen(-5) });
    }
}
