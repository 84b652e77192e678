//! The exceptions report: every entry that today's rules would refuse, found by replaying the
//! journal from empty through them, and the premiums still awaiting their match.

use std::collections::HashMap;

use serde::Serialize;

use super::reconcile::{AwaitingMatch, awaiting_match};
use crate::EntryLookup;
use crate::entry::Entry;
use crate::ids::{EventId, MemberId};
use crate::state::LedgerState;

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Exceptions {
    pub as_of_seq: u64,
    pub exceptions: Vec<Exception>,
    pub medical_premiums_awaiting_match: Vec<AwaitingMatch>,
}

/// An entry the rules refuse today, and why.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub exception: String,
    pub id: EventId,
    pub member: Option<MemberId>,
    pub seq: u64,
    #[serde(rename = "type")]
    pub type_name: &'static str,
}

/// Replays entries, fed in sequence order from the first, through today's rules.
#[derive(Debug, Default)]
pub struct ExceptionsFinder {
    state: LedgerState,
    seen: Seen,
    found: Vec<Exception>,
}

#[derive(Debug, Default)]
struct Seen(HashMap<EventId, Entry>);

impl EntryLookup for Seen {
    fn entry_by_event_id(&self, id: &EventId) -> Result<Option<Entry>, crate::LookupError> {
        Ok(self.0.get(id).cloned())
    }
}

impl ExceptionsFinder {
    pub fn add(&mut self, entry: Entry) {
        let mut batch = self.state.begin(entry.seq.saturating_sub(1), [0; 32]);
        // An event recorded before issue 11 is judged in its current form (a discharge without
        // a route as `employee`, see docs/EVENTS.md).
        let mut event = entry.event.clone();
        event.body = event.body.upgraded(entry.value_date).into_owned();
        match batch.apply(event, entry.recorded_at_us, &self.seen) {
            Ok(_) => batch.finish().changes.commit(),
            Err(e) => {
                // Nothing of the refused event is in the state (a rule checks before it
                // changes anything); the batch is let go before the state is changed here.
                drop(batch);
                self.found.push(Exception {
                    exception: e.to_string(),
                    id: entry.event.id.clone(),
                    member: entry.event.body.member().cloned(),
                    seq: entry.seq,
                    type_name: entry.event.body.type_name(),
                });
                // Keep the journal's own money so later entries are judged on what actually
                // happened. (Only the postings: the entry's effects on a member today's rules
                // did not enrol cannot be replayed.)
                // A sum that would pass an i64 (a forged entry) is left as it was.
                let year = entry.value_date.period().year;
                for p in &entry.postings {
                    let _ = self.state.add_posting(&p.account, year, p.amount);
                }
            }
        }
        self.seen.0.insert(entry.event.id.clone(), entry);
    }

    /// The report as of `as_of_seq`, with the premiums awaiting their match in `current` (the
    /// ledger's state, not the replay's).
    pub fn finish(self, as_of_seq: u64, current: &LedgerState) -> Exceptions {
        Exceptions {
            as_of_seq,
            exceptions: self.found,
            medical_premiums_awaiting_match: awaiting_match(current),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::assert_sorted_keys;

    #[test]
    fn exceptions_print_in_sorted_key_order() {
        let mut e = ExceptionsFinder::default().finish(3, &LedgerState::default());
        e.exceptions.push(Exception {
            exception: "Art. 1".into(),
            id: EventId::parse("e1").expect("valid id"),
            member: None,
            seq: 2,
            type_name: "premium",
        });
        assert_sorted_keys(&e);
    }
}
