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

use crate::entry::{Entry, Hash32, Posting, SealedEntries};
use crate::event::EventError;
use crate::fund::{Account, Fund};
use crate::ids::{EventId, MemberId};
use crate::keyed::KeyedMap;
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

pub use batch::{ReadBack, Replayer, entry_members};
pub use law::conscript_medical_subsidy;

/// Below this many entries, sealing a batch does not use the thread pool.
pub const PARALLEL_ENTRIES_MIN: usize = 512;

pub use crate::lookup::{ApplyError, EntryLookup, LookupError, NoLookup};

/// The changes a batch keeps apart from the state until they are committed
/// ([`BatchChanges::commit`]): the rare kinds (members, standards, administration, interest
/// marks, reversals, back-payments). Premium months, year's sums and balances are changed in
/// the state itself, with an undo log ([`InPlace`]).
#[derive(Clone, Debug, Default)]
pub struct StateChanges {
    members: KeyedMap<MemberId, MemberState>,
    standards: Option<crate::standard::Standards>,
    interest: Vec<(Fund, Period)>,
    uninterest: Vec<(Fund, Period)>,
    reversed: Vec<u64>,
    admin: Option<crate::admin::AdminState>,
    backpaid: KeyedMap<MemberId, crate::backpay::Backpaid>,
    /// The sum of the absolute amounts of every posting of the batch: how far any balance or
    /// year's sum can have moved ([`BalanceBound::after`]).
    moved: u128,
}

/// The state a batch changes in place — premium months, year's sums of member accounts and
/// balances — and what each change replaced, oldest first. Dropped without being committed
/// ([`BatchChanges::commit`]), it undoes every change it logged, so the state is exactly as before the
/// batch: a dry run, a failed write, a refusal or a panic in between cannot leave half a batch
/// in the state.
#[derive(Debug)]
pub struct InPlace<'s> {
    state: &'s mut LedgerState,
    log: Vec<Replaced>,
}

/// What one change made in place replaced.
#[derive(Debug)]
enum Replaced {
    /// A premium line's money before.
    Period(PeriodKey, PeriodMoney),
    /// A balance before (`None`: the account had none).
    Balance(Account, Option<Fen>),
    /// A member account's sum of a year, moved by this much.
    YearMove(Account, u16, Fen),
}

/// What a finished batch changed: in the state itself (undone if this is dropped) and apart
/// from it. [`BatchChanges::commit`] keeps both once the batch is durable.
#[derive(Debug)]
#[must_use = "dropped, the batch's changes are undone"]
pub struct BatchChanges<'s> {
    in_place: InPlace<'s>,
    changes: StateChanges,
}

/// An upper bound on the magnitude of every balance and of every member account's sum of a
/// year in a state. While the bound, plus the absolute amounts a batch has posted, plus those
/// of the entry being checked, fits an i64, no balance or year's sum can leave the range, and
/// the per-account check of the rules is left out (most entries); past that every entry is
/// checked account by account, as before.
///
/// Kept beside the state, not in it (so that two states of one history still compare equal):
/// the engine's writer holds it — [`BalanceBound::of`] the state at open, [`BalanceBound::ZERO`]
/// for a new ledger, [`BalanceBound::after`] each durable batch — and hands it to
/// [`LedgerState::begin_bounded`]. [`LedgerState::begin`] knows no bound and checks every
/// entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceBound(u128);

impl BalanceBound {
    /// The bound of an empty state.
    pub const ZERO: BalanceBound = BalanceBound(0);
    /// No bound known: every entry is checked account by account.
    pub const UNKNOWN: BalanceBound = BalanceBound(u128::MAX);

    /// A bound on the magnitude of every balance and member account's year's sum in `state`,
    /// in one pass over its balances and books: the largest of the fund's own balances, and
    /// for each member the sum of the magnitudes of all their yearly sums (which bounds each
    /// of those sums and each of their accounts' balances, the sums of their years').
    pub fn of(state: &LedgerState) -> BalanceBound {
        let balances = state.fund_balances.values().map(|b| u128::from(b.0.unsigned_abs())).max();
        let books = state.books.values().map(|book| book.magnitude()).max();
        BalanceBound(balances.unwrap_or(0).max(books.unwrap_or(0)))
    }

    /// The bound once `changes` are committed: no balance or year's sum moved by more than
    /// the absolute amounts the changes posted.
    pub fn after(self, changes: &BatchChanges<'_>) -> BalanceBound {
        BalanceBound(self.0.saturating_add(changes.changes.moved))
    }

    /// The bound, in fen.
    pub fn fen(self) -> u128 {
        self.0
    }

    /// Whether no balance or year's sum can leave an i64 after `more` fen of absolute amounts.
    fn covers(self, more: u128) -> bool {
        self.0.saturating_add(more) <= i64::MAX as u128
    }
}

/// A batch under construction. It changes premium months, year's sums and balances in the
/// state it was begun on, logging what each change replaced ([`InPlace`]); its other changes
/// are kept apart ([`StateChanges`]). Dropped before its changes are committed, it leaves the
/// state as it was.
#[derive(Debug)]
pub struct Batch<'s> {
    in_place: InPlace<'s>,
    /// A bound on the base state's balances and year's sums ([`BalanceBound`]).
    bound: BalanceBound,
    changes: StateChanges,
    entries: Vec<Entry>,
    by_event: KeyedMap<EventId, usize>,
    /// While a savepoint is open: what each change kept apart replaced, oldest first (the
    /// changes in place are always logged, in `in_place`).
    undo: Vec<Undo>,
    /// Savepoints open that log changes (those of a batch already changed).
    savepoints_open: usize,
    next_seq: u64,
    first_seq: u64,
    head: Hash32,
}

/// Where a batch stood before a group of events, to undo them as a whole
/// ([`Batch::rollback`]) or keep them ([`Batch::release`]). The HTTP service gathers many
/// requests into one batch; a request whose third event is refused must leave no trace of its
/// first two.
#[derive(Debug)]
#[must_use = "a savepoint is rolled back or released; dropped, the batch logs changes until a \
              savepoint taken earlier is closed"]
pub struct Savepoint {
    entries_len: usize,
    next_seq: u64,
    undo_len: usize,
    /// The length of the in-place log.
    in_place_len: usize,
    /// The lists of changes only grow after the savepoint, except where the log says.
    interest_len: usize,
    uninterest_len: usize,
    reversed_len: usize,
    moved: u128,
    /// Taken before the batch changed anything: a rollback empties it, nothing is logged.
    untouched: bool,
    /// Logging savepoints open when this one was taken.
    savepoints_open: usize,
}

/// What one change of a batch replaced: the value it had in [`StateChanges`] (`None`: none,
/// the base state's showed through), so that a rollback puts it back.
#[derive(Debug)]
enum Undo {
    /// Boxed: the log's other records are small, and most changes are premium months.
    Member(MemberId, Option<Box<MemberState>>),
    Backpaid(MemberId, Option<crate::backpay::Backpaid>),
    Standards(Option<crate::standard::Standards>),
    Admin(Option<crate::admin::AdminState>),
    /// The interest credits before one was taken out (a reversal of its entry).
    Interest(Vec<(Fund, Period)>),
    /// An event id applied twice in the batch: the position it had.
    EventIndex(EventId, usize),
}

/// A batch ready to write: sealed entries, the new head, and the changes to the state (the
/// state records themselves are written at checkpoints, from the state in memory), to be
/// committed once the batch is durable and undone otherwise.
#[derive(Debug)]
pub struct PreparedBatch<'s> {
    pub entries: SealedEntries,
    pub head_seq: u64,
    pub head: Hash32,
    pub changes: BatchChanges<'s>,
    /// (member, seq) for every entry that names a member or posts to a member's account.
    pub member_index: Vec<(MemberId, u64)>,
}

fn refuse(field: &'static str, message: impl Into<String>) -> EventError {
    EventError::field(field, message)
}

pub(crate) fn two_legs(debit: Account, credit: Account, amount: Fen) -> Vec<Posting> {
    Vec::from(leg_pair(debit, credit, amount))
}

/// [`two_legs`] before it is put in a list (with others, in one allocation).
fn leg_pair(debit: Account, credit: Account, amount: Fen) -> [Posting; 2] {
    [Posting { account: debit, amount }, Posting { account: credit, amount: Fen(-amount.0) }]
}
