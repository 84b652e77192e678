//! The lists a member's state holds, sized for a million members in memory.
//!
//! A member's state is read and written as a whole (one record per member, docs/FORMAT.md §4)
//! and a ledger keeps every member's in memory, so its size is the ledger's. Its dated
//! histories (categories, units, pays) nearly always hold the one element of the enrolment, and
//! its other lists (suspensions, transfers, benefits) are nearly always empty. [`Dated`] keeps
//! one element inline (no allocation of its own); [`Rare`] takes one word and allocates nothing
//! while empty. Both are encoded exactly as a `Vec` is (a length, then the elements), so stored
//! records are unchanged.

use std::fmt;

use bincode::de::Decoder;
use bincode::error::DecodeError;
use smallvec::SmallVec;
use thin_vec::ThinVec;

/// A dated history that nearly always holds one element: that one is held inline, more go to
/// the heap.
#[derive(Clone, PartialEq, Eq)]
pub struct Dated<T>(SmallVec<[T; 1]>);

/// A list that is nearly always empty: one word, nothing allocated while empty.
#[derive(Clone, PartialEq, Eq)]
pub struct Rare<T>(ThinVec<T>);

impl<T> Default for Dated<T> {
    fn default() -> Self {
        Dated(SmallVec::new())
    }
}

impl<T> Default for Rare<T> {
    fn default() -> Self {
        Rare(ThinVec::new())
    }
}

macro_rules! list {
    ($name:ident, $with_capacity:expr) => {
        impl<T> $name<T> {
            pub fn new() -> Self {
                Self::default()
            }

            pub fn push(&mut self, value: T) {
                self.0.push(value)
            }

            pub fn pop(&mut self) -> Option<T> {
                self.0.pop()
            }

            pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
                self.0.retain(|x| keep(x))
            }
        }

        impl<T> std::ops::Deref for $name<T> {
            type Target = [T];
            fn deref(&self) -> &[T] {
                &self.0
            }
        }

        impl<T> std::ops::DerefMut for $name<T> {
            fn deref_mut(&mut self) -> &mut [T] {
                &mut self.0
            }
        }

        impl<T> From<Vec<T>> for $name<T> {
            fn from(v: Vec<T>) -> Self {
                v.into_iter().collect()
            }
        }

        impl<T> FromIterator<T> for $name<T> {
            fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
                Self(items.into_iter().collect())
            }
        }

        impl<'a, T> IntoIterator for &'a $name<T> {
            type Item = &'a T;
            type IntoIter = std::slice::Iter<'a, T>;
            fn into_iter(self) -> Self::IntoIter {
                self.iter()
            }
        }

        /// As the list of its elements.
        impl<T: fmt::Debug> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.iter()).finish()
            }
        }

        /// A `Vec`'s encoding: the length, then the elements.
        impl<T: bincode::Encode> bincode::Encode for $name<T> {
            fn encode<E: bincode::enc::Encoder>(
                &self,
                encoder: &mut E,
            ) -> Result<(), bincode::error::EncodeError> {
                bincode::Encode::encode(&**self, encoder)
            }
        }

        /// Read as a `Vec` is (the decoder's limit claimed the same way), into the list itself.
        impl<Context, T: bincode::Decode<Context>> bincode::Decode<Context> for $name<T> {
            fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
                let len = <u64 as bincode::Decode<Context>>::decode(decoder)?;
                let len = usize::try_from(len).map_err(|_| DecodeError::OutsideUsizeRange(len))?;
                decoder.claim_container_read::<T>(len)?;
                let mut list = Self($with_capacity(len));
                for _ in 0..len {
                    decoder.unclaim_bytes_read(std::mem::size_of::<T>());
                    list.push(T::decode(decoder)?);
                }
                Ok(list)
            }
        }

        impl<'de, Context, T: bincode::Decode<Context>> bincode::BorrowDecode<'de, Context>
            for $name<T>
        {
            fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = Context>>(
                decoder: &mut D,
            ) -> Result<Self, DecodeError> {
                <Self as bincode::Decode<Context>>::decode(decoder)
            }
        }
    };
}

list!(Dated, SmallVec::with_capacity);
list!(Rare, ThinVec::with_capacity);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{decode, encode};

    proptest::proptest! {
        /// The stored bytes are a `Vec`'s, both ways, for any length.
        #[test]
        fn encoded_as_a_vec(items in proptest::collection::vec(proptest::prelude::any::<(u32, i64)>(), 0..5)) {
            let dated: Dated<(u32, i64)> = items.clone().into();
            let rare: Rare<(u32, i64)> = items.clone().into();
            let bytes = encode(&items);
            proptest::prop_assert_eq!(&encode(&dated), &bytes);
            proptest::prop_assert_eq!(&encode(&rare), &bytes);
            proptest::prop_assert_eq!(&*decode::<Dated<(u32, i64)>>(&bytes).unwrap(), &items[..]);
            proptest::prop_assert_eq!(&*decode::<Rare<(u32, i64)>>(&bytes).unwrap(), &items[..]);
            proptest::prop_assert_eq!(format!("{dated:?}"), format!("{items:?}"));
        }
    }

    #[test]
    fn a_length_past_the_input_is_refused_before_anything_is_reserved() {
        // A length of 2^40 elements and nothing after it.
        let bytes = encode(&(1u64 << 40));
        assert!(decode::<Dated<(u32, i64)>>(&bytes).is_err());
        assert!(decode::<Rare<(u32, i64)>>(&bytes).is_err());
    }

    /// What the lists are for: a member's state in 192 bytes (it was 240, with three
    /// allocations of its own besides), a book in 24 (it was 48; two lists and what it keeps
    /// of the years out of memory, a word); and a member id in 32 (a map slot of the id and a
    /// word is 40 bytes).
    #[test]
    fn a_members_state_and_book_stay_small() {
        assert!(std::mem::size_of::<crate::state::MemberState>() <= 192);
        assert!(std::mem::size_of::<crate::state::MemberBook>() <= 24);
        assert_eq!(std::mem::size_of::<crate::ids::MemberId>(), 32);
    }

    #[test]
    fn one_element_is_inline_and_an_empty_list_is_one_word() {
        assert_eq!(std::mem::size_of::<Rare<u64>>(), std::mem::size_of::<usize>());
        let one: Dated<(u32, i64)> = vec![(1, 2)].into();
        assert!(!one.0.spilled());
    }
}
