//! Hash maps keyed by what clients choose (member and event ids, accounts naming them).
//!
//! The standard library's SipHash costs more than the rest of a premium's map look-ups
//! together; foldhash is several times faster on these short keys. Its own process seed mixes
//! only addresses and the time, so the seed here comes from the operating system's random
//! source (as SipHash's did), and every map gets its own per-map seed on top: ids cannot be
//! chosen offline to collide, and iterating one map into another never walks it in its own
//! hash order. foldhash is not a cryptographic hash; an attacker who could measure look-up
//! times closely enough might still learn a seed (see foldhash's notes on HashDoS).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::SharedSeed;
use foldhash::fast::{FoldHasher, SeedableRandomState};

/// A `HashMap` whose keys may come from clients.
pub type KeyedMap<K, V> = HashMap<K, V, KeyedState>;

/// A `HashSet` whose members may come from clients.
pub type KeyedSet<T> = HashSet<T, KeyedState>;

/// The [`BuildHasher`] of [`KeyedMap`]: foldhash with a random process seed and a per-map seed.
#[derive(Clone, Debug)]
pub struct KeyedState(SeedableRandomState);

/// The process-wide seed, from the operating system's random source once.
fn shared_seed() -> &'static SharedSeed {
    static SEED: OnceLock<SharedSeed> = OnceLock::new();
    SEED.get_or_init(|| match getrandom::u64() {
        Ok(seed) => SharedSeed::from_u64(seed),
        // No random source (not seen on the platforms served): foldhash's own process seed.
        Err(_) => SharedSeed::global_random().clone(),
    })
}

/// A seed per map: a per-thread sequence that starts from the process seed's randomness.
fn per_map_seed() -> u64 {
    thread_local! {
        static NEXT: Cell<u64> = Cell::new(getrandom::u64().unwrap_or(0x9e37_79b9_7f4a_7c15));
    }
    NEXT.with(|next| {
        // An odd increment walks every u64 before repeating.
        let seed = next.get().wrapping_add(0xa076_1d64_78bd_642f);
        next.set(seed);
        seed
    })
}

impl Default for KeyedState {
    fn default() -> Self {
        KeyedState(SeedableRandomState::with_seed(per_map_seed(), shared_seed()))
    }
}

impl BuildHasher for KeyedState {
    type Hasher = FoldHasher<'static>;

    #[inline]
    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_hash_alike_keys_differently() {
        let (a, b) = (KeyedState::default(), KeyedState::default());
        let key = "M0000001";
        assert_eq!(a.hash_one(key), a.hash_one(key), "one map hashes a key the same each time");
        assert_ne!(a.hash_one(key), b.hash_one(key), "two maps have their own seeds");
    }
}
