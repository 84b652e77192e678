//! junbao-ledger: the domain of the servicemen insurance funds. Pure logic, no I/O.
//!
//! Architecture invariant: this crate never touches a file, a socket or a clock. Time comes in
//! as a parameter; bytes go out to the storage layer through the engine.

pub mod admin;
pub mod backpay;
pub mod checkpoint;
pub mod digest;
pub mod entry;
pub mod event;
pub mod export;
pub mod fund;
pub mod ids;
pub mod keyed;
pub mod lookup;
pub mod merkle;
pub mod money;
pub mod report;
pub mod rules;
pub mod standard;
pub mod state;
pub mod strict_json;
pub mod time;
pub mod transfer;
pub mod wage;

pub use entry::{Entry, Hash32, Posting, SealedEntries};
pub use event::{Event, EventBody, EventError, parse_event_line};
pub use fund::{Account, Category, Fund};
pub use lookup::{ApplyError, EntryLookup, LookupError};
pub use money::Fen;
pub use rules::{Batch, PreparedBatch, StateChanges};
pub use state::LedgerState;
pub use time::{Date, Period};
