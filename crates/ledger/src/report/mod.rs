//! What the ledger answers, as typed documents: the member's statement, the reconciliation,
//! the exceptions, balances, proofs, the journal's JSON form, the back-payment assessment and
//! the fund administration reports. Each is built here by a pure function (or a builder fed
//! entry by entry) from entries, state and tree nodes the engine reads; the command line and
//! the HTTP service only serialise or render them.
//!
//! Every document serialises to the JSON the contract documents. The fields of each struct are
//! declared in the alphabetical order of their keys: the documents were `serde_json::Value`s
//! before (whose objects sort their keys), so the printed JSON keeps its key order whether a
//! document is written directly or through a `Value`. Money prints as decimal text (`Fen`),
//! dates as `YYYY-MM-DD`, hashes as hex.

pub mod admin;
pub mod backpay;
pub mod balances;
pub mod exceptions;
pub mod journal;
pub mod proofs;
pub mod reconcile;
pub mod statement;

pub use admin::{
    AccessLogHead, BankReport, BankStatementRow, BudgetReport, BudgetReportLine, CloseReport,
    DigestDoc, FinalAccounts, FinalAccountsDifference, FundAccountsDoc, RemittancePeriod,
    RemittanceReport, RemittanceUnit, StatementOfFund,
};
pub use backpay::BackpayReport;
pub use balances::{
    AccountBalance, BalanceSheet, BalancesAsOf, BalancesAsOfBuilder, FundBalances,
    UnitAccountBalance, UnitFundBalances,
};
pub use exceptions::{Exception, Exceptions, ExceptionsFinder};
pub use journal::{JournalEntry, JournalPage, PostingLine};
pub use proofs::{ConsistencyProof, InclusionProof};
pub use reconcile::{
    AwaitingMatch, ControlTotals, HoldingControl, NegativeHolding, ReconciledFund, Reconciliation,
};
pub use statement::{Statement, StatementAccount, StatementBuilder, StatementEntry, StatementFund};

/// Serialises a hash (or any bytes) as lowercase hex.
pub(crate) fn hex_bytes<S: serde::Serializer>(
    bytes: impl AsRef<[u8]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// Serialises a list of hashes as lowercase hex strings.
pub(crate) fn hex_list<S: serde::Serializer>(
    list: &[crate::entry::Hash32],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(list.iter().map(hex::encode))
}

#[cfg(test)]
pub(crate) mod testing {
    /// The JSON of `doc` written directly and through a `serde_json::Value` are the same text:
    /// the struct declares its keys in the order a `Value` sorts them.
    pub fn assert_sorted_keys<T: serde::Serialize>(doc: &T) {
        let direct = serde_json::to_string(doc).expect("serialises");
        let through_value = serde_json::to_value(doc).expect("serialises").to_string();
        assert_eq!(direct, through_value, "the fields are not in alphabetical key order");
    }
}
