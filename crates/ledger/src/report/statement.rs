//! A member's statement (Art. 39): every entry about them with a value date in the range, the
//! postings to their accounts, and the balance of each of their accounts at the end of the
//! range, per fund.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::journal::PostingLine;
use super::proofs::InclusionProof;
use crate::entry::{Entry, Hash32};
use crate::fund::Fund;
use crate::ids::MemberId;
use crate::money::Fen;
use crate::time::Date;

/// The statement of one member, as of a tree size.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Statement {
    pub as_of_seq: u64,
    pub entries: Vec<StatementEntry>,
    pub from: Option<Date>,
    pub funds: Vec<StatementFund>,
    pub member: MemberId,
    #[serde(serialize_with = "super::hex_bytes")]
    pub root: Hash32,
    pub to: Option<Date>,
}

/// One entry about the member, with only the postings to the member's accounts.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct StatementEntry {
    /// The entry's canonical bytes in hex, with `proof`: a reader checks the proof from the
    /// entry itself (its leaf hash) and the row against the entry (the web console does both).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
    /// The event as posted (`Event::to_json`).
    pub event: Value,
    pub postings: Vec<PostingLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<InclusionProof>,
    pub seq: u64,
    #[serde(rename = "type")]
    pub type_name: &'static str,
    pub value_date: Date,
}

/// The member's accounts in one fund.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct StatementFund {
    pub accounts: Vec<StatementAccount>,
    pub fund: Fund,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct StatementAccount {
    pub account: String,
    pub balance: Fen,
}

/// Builds a [`Statement`] from the member's entries, fed in sequence order.
#[derive(Debug)]
pub struct StatementBuilder {
    member: MemberId,
    from: Option<Date>,
    to: Option<Date>,
    balances: BTreeMap<String, (Fund, i64)>,
    entries: Vec<StatementEntry>,
}

impl StatementBuilder {
    pub fn new(member: MemberId, from: Option<Date>, to: Option<Date>) -> Self {
        StatementBuilder { member, from, to, balances: BTreeMap::new(), entries: Vec::new() }
    }

    /// Takes the member's entry `entry`: its postings to the member's accounts count toward
    /// the balances when its value date is not after `to`, and it is listed when its value
    /// date is also not before `from`. Returns the row when listed, for the caller to attach
    /// the entry's proof and bytes.
    pub fn add(&mut self, entry: &Entry) -> Option<&mut StatementEntry> {
        if self.to.is_some_and(|t| entry.value_date > t) {
            return None;
        }
        let mine: Vec<&crate::entry::Posting> =
            entry.postings.iter().filter(|p| p.account.member_id() == Some(&self.member)).collect();
        for p in &mine {
            let b = self.balances.entry(p.account.to_string()).or_insert((p.account.fund, 0));
            b.1 = b.1.saturating_add(p.amount.0);
        }
        if self.from.is_some_and(|f| entry.value_date < f) {
            return None;
        }
        self.entries.push(StatementEntry {
            bytes: None,
            event: entry.event.to_json(),
            postings: mine.iter().map(|p| PostingLine::of(&p.account, p.amount)).collect(),
            proof: None,
            seq: entry.seq,
            type_name: entry.event.body.type_name(),
            value_date: entry.value_date,
        });
        self.entries.last_mut()
    }

    /// The statement as of the tree of `as_of_seq` entries with `root`.
    pub fn finish(self, as_of_seq: u64, root: Hash32) -> Statement {
        let mut funds: BTreeMap<Fund, Vec<StatementAccount>> = BTreeMap::new();
        for (account, (fund, fen)) in self.balances {
            funds.entry(fund).or_default().push(StatementAccount { account, balance: Fen(fen) });
        }
        Statement {
            as_of_seq,
            entries: self.entries,
            from: self.from,
            funds: funds
                .into_iter()
                .map(|(fund, accounts)| StatementFund { accounts, fund })
                .collect(),
            member: self.member,
            root,
            to: self.to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::assert_sorted_keys;

    #[test]
    fn an_empty_statement_prints_in_sorted_key_order() {
        let member = MemberId::parse("M1").expect("valid id");
        let s = StatementBuilder::new(member, None, Some(Date(10))).finish(7, [0; 32]);
        assert_sorted_keys(&s);
        let v = serde_json::to_value(&s).expect("serialises");
        assert_eq!(v["to"], "1970-01-11");
        assert_eq!(v["from"], Value::Null);
        assert_eq!(v["as_of_seq"], 7);
        let mut b = StatementBuilder::new(MemberId::parse("M1").expect("valid id"), None, None);
        let entry = crate::report::journal::tests::an_entry();
        let row = b.add(&entry).expect("listed");
        row.proof = Some(InclusionProof::new(9, 9, &[0; 32], &[], &[0; 32]));
        row.bytes = Some("00".into());
        let s = b.finish(9, [0; 32]);
        assert_sorted_keys(&s);
        assert_eq!(
            serde_json::to_value(&s).expect("serialises")["entries"][0]["type"],
            "key_rotation"
        );
    }
}
