//! The law's rules: an event, checked against the state, becomes an entry with postings.
//!
//! A [`Batch`] applies events on top of a [`LedgerState`] without changing it; its result is
//! either refused as a whole or committed as a whole after the storage layer made it durable.
//! Every refusal cites the article it enforces.
//!
//! This file holds the types; the code is in one module per concern: `batch` (beginning,
//! applying, rolling back, sealing, committing, replaying), `dispatch` (which rule an event
//! goes to), one module per family of events (`premium`, `casualty`, `interest`, `lifecycle`,
//! `transfer`, `reversal`), `effects` (what an accepted event changes in the state) and `law`
//! (the rules that read the member's dated history).

use std::collections::HashMap;

use crate::entry::{Entry, Hash32, Posting, SealedEntry};
use crate::event::EventError;
use crate::fund::{Account, Fund};
use crate::ids::{EventId, MemberId};
use crate::money::Fen;
use crate::state::{LedgerState, MemberState, PeriodKey, PeriodMoney};
use crate::time::Period;

mod batch;
mod casualty;
mod dispatch;
mod effects;
mod interest;
mod law;
mod lifecycle;
mod premium;
mod reversal;
mod transfer;

pub use batch::{Replayer, entry_members};
pub use law::conscript_medical_subsidy;

/// Below this many entries, sealing a batch does not use the thread pool.
pub const PARALLEL_ENTRIES_MIN: usize = 512;

pub use crate::lookup::{ApplyError, EntryLookup, LookupError, NoLookup};

/// Changes a batch makes, applied to the state by [`LedgerState::commit`] once durable.
#[derive(Clone, Debug, Default)]
pub struct StateChanges {
    members: HashMap<MemberId, MemberState>,
    balance_deltas: HashMap<Account, Fen>,
    standards: Option<crate::standard::Standards>,
    interest: Vec<(Fund, Period)>,
    uninterest: Vec<(Fund, Period)>,
    reversed: Vec<u64>,
    periods: HashMap<PeriodKey, PeriodMoney>,
    admin: Option<crate::admin::AdminState>,
    year_moves: HashMap<(Account, u16), Fen>,
    backpaid: HashMap<MemberId, crate::backpay::Backpaid>,
}

/// A batch under construction. Nothing it does is visible until committed.
#[derive(Debug)]
pub struct Batch<'s> {
    base: &'s LedgerState,
    changes: StateChanges,
    entries: Vec<Entry>,
    by_event: HashMap<EventId, usize>,
    next_seq: u64,
    first_seq: u64,
    head: Hash32,
}

/// Where a batch stood before a group of events, to undo them as a whole
/// ([`Batch::rollback`]). The HTTP service gathers many requests into one batch; a request
/// whose third event is refused must leave no trace of its first two.
#[derive(Debug)]
pub struct Savepoint {
    changes: StateChanges,
    entries_len: usize,
}

/// A batch ready to write: sealed entries, the new head, and the changes to the state (the
/// state records themselves are written at checkpoints, from the state in memory).
#[derive(Debug)]
pub struct PreparedBatch {
    pub entries: Vec<SealedEntry>,
    pub head_seq: u64,
    pub head: Hash32,
    pub changes: StateChanges,
    /// (member, seq) for every entry that names a member or posts to a member's account.
    pub member_index: Vec<(MemberId, u64)>,
}

fn refuse(field: &'static str, message: impl Into<String>) -> EventError {
    EventError::field(field, message)
}

pub(crate) fn two_legs(debit: Account, credit: Account, amount: Fen) -> Vec<Posting> {
    vec![Posting { account: debit, amount }, Posting { account: credit, amount: Fen(-amount.0) }]
}
