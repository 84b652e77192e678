//! Look-ups by borrowed parts of a compound key, so that asking whether a member's premium of a
//! month is posted does not copy the member id into a new key first.
//!
//! The maps keep owned tuple keys; each tuple also borrows as a trait object that hashes,
//! compares and orders exactly as the tuple does (a tuple hashes its fields in order, with no
//! prefix, and orders them lexicographically), which a borrowed form must do for `get` to find
//! what `insert` stored.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use crate::fund::Account;
use crate::ids::MemberId;
use crate::state::{Line, PeriodKey};
use crate::time::Period;

/// A member's premium line in one month, owned ([`PeriodKey`]) or borrowed.
pub(super) trait PeriodKeyView {
    fn parts(&self) -> (&MemberId, Line, Period);
}

impl PeriodKeyView for PeriodKey {
    fn parts(&self) -> (&MemberId, Line, Period) {
        (&self.0, self.1, self.2)
    }
}

impl PeriodKeyView for (&MemberId, Line, Period) {
    fn parts(&self) -> (&MemberId, Line, Period) {
        *self
    }
}

impl<'a> Borrow<dyn PeriodKeyView + 'a> for PeriodKey {
    fn borrow(&self) -> &(dyn PeriodKeyView + 'a) {
        self
    }
}

impl Hash for dyn PeriodKeyView + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (member, line, period) = self.parts();
        member.hash(state);
        line.hash(state);
        period.hash(state);
    }
}

impl PartialEq for dyn PeriodKeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn PeriodKeyView + '_ {}

impl PartialOrd for dyn PeriodKeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn PeriodKeyView + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// A member account's sum of one calendar year, owned (`(Account, u16)`) or borrowed.
pub(super) trait YearKeyView {
    fn parts(&self) -> (&Account, u16);
}

impl YearKeyView for (Account, u16) {
    fn parts(&self) -> (&Account, u16) {
        (&self.0, self.1)
    }
}

impl YearKeyView for (&Account, u16) {
    fn parts(&self) -> (&Account, u16) {
        *self
    }
}

impl<'a> Borrow<dyn YearKeyView + 'a> for (Account, u16) {
    fn borrow(&self) -> &(dyn YearKeyView + 'a) {
        self
    }
}

impl Hash for dyn YearKeyView + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (account, year) = self.parts();
        account.hash(state);
        year.hash(state);
    }
}

impl PartialEq for dyn YearKeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn YearKeyView + '_ {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::hash::BuildHasher;

    use proptest::prelude::*;

    use super::*;
    use crate::fund::{Fund, Holding};
    use crate::keyed::{KeyedMap, KeyedState};

    fn key((m, l, p): (u16, u8, u16)) -> PeriodKey {
        let member = MemberId::parse(&format!("M{m}")).expect("a valid id");
        let line = [Line::Medical, Line::SpousePension, Line::SpouseMedical][usize::from(l % 3)];
        (member, line, Period { year: 2000 + p / 12, month: (p % 12) as u8 + 1 })
    }

    fn account(m: &MemberId) -> Account {
        Account::member(Fund::Medical, m, None, Holding::Personal)
    }

    proptest! {
        /// The borrowed form hashes, compares and orders as the owned tuple, so both maps find
        /// by it exactly what they hold.
        #[test]
        fn a_borrowed_key_finds_what_the_owned_key_stored(
            held in proptest::collection::vec((0u16..50, 0u8..3, 0u16..40), 0..60),
            asked in proptest::collection::vec((0u16..50, 0u8..3, 0u16..40), 1..20),
        ) {
            let hasher = KeyedState::default();
            let mut hashed: KeyedMap<PeriodKey, usize> = KeyedMap::default();
            let mut ordered: BTreeMap<PeriodKey, usize> = BTreeMap::new();
            let mut years: KeyedMap<(Account, u16), usize> = KeyedMap::default();
            for (i, k) in held.iter().enumerate() {
                let k = key(*k);
                years.insert((account(&k.0), k.2.year), i);
                hashed.insert(k.clone(), i);
                ordered.insert(k, i);
            }
            for k in &asked {
                let owned = key(*k);
                let view = (&owned.0, owned.1, owned.2);
                let borrowed: &dyn PeriodKeyView = &view;
                prop_assert_eq!(hasher.hash_one(&owned), hasher.hash_one(borrowed));
                prop_assert_eq!(hashed.get(borrowed), hashed.get(&owned));
                prop_assert_eq!(ordered.get(borrowed), ordered.get(&owned));
                let a = account(&owned.0);
                let year_view = (&a, owned.2.year);
                let year_borrowed: &dyn YearKeyView = &year_view;
                prop_assert_eq!(hasher.hash_one(&(a.clone(), owned.2.year)), hasher.hash_one(year_borrowed));
                prop_assert_eq!(years.get(year_borrowed), years.get(&(a.clone(), owned.2.year)));
            }
        }
    }
}
