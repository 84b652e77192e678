//! Earlier entries for the rules (a reversal reads the entry it reverses), and how reading one
//! can fail: a failed read is not "there is no such entry", and not a refusal of the event.

use crate::entry::Entry;
use crate::event::EventError;
use crate::ids::EventId;

/// An earlier entry could not be read. Not found is `Ok(None)`, never this.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The disk or the environment failed: the read may succeed later.
    #[error("the disk read failed: {0}")]
    Io(String),
    /// What is stored is not what the ledger wrote (an index record or an entry does not
    /// decode, an indexed entry is missing): an integrity failure.
    #[error("the stored data is corrupted: {0}")]
    Corrupt(String),
}

impl LookupError {
    /// An integrity failure, as opposed to a failure of the disk or environment.
    pub fn is_integrity(&self) -> bool {
        matches!(self, LookupError::Corrupt(_))
    }
}

/// Reads earlier entries by event id; the storage layer provides it (reversals need it).
pub trait EntryLookup {
    /// The entry recorded for `id`, `Ok(None)` if there is none.
    fn entry_by_event_id(&self, id: &EventId) -> Result<Option<Entry>, LookupError>;
}

/// A lookup that knows no entries (tests, and ledgers without reversals).
#[derive(Debug)]
pub struct NoLookup;

impl EntryLookup for NoLookup {
    fn entry_by_event_id(&self, _id: &EventId) -> Result<Option<Entry>, LookupError> {
        Ok(None)
    }
}

/// Why an event was not applied: the rules refused it (input), or an earlier entry it needs
/// could not be read (the disk, or integrity).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Refused(#[from] EventError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

impl ApplyError {
    /// The refusal, if the rules refused the event.
    pub fn refusal(&self) -> Option<&EventError> {
        match self {
            ApplyError::Refused(e) => Some(e),
            ApplyError::Lookup(_) => None,
        }
    }
}
