//! Journal entries, their canonical bytes, and the SHA-256 chain. Layout in `docs/FORMAT.md`.

use sha2::{Digest, Sha256};

use crate::event::Event;
use crate::fund::{Account, Fund};
use crate::money::Fen;
use crate::time::Date;

/// Version byte at the start of every entry's canonical bytes.
pub const ENTRY_FORMAT_VERSION: u8 = 1;
/// Most postings one entry may carry (an interest run over a whole fund is the big one).
pub const POSTINGS_PER_ENTRY_MAX: usize = 200_000;
/// Most bytes one posting takes: the fund and kind tags, the longest account (a member's id or
/// a unit's of `NAME_ID_LEN_MAX` bytes, with its part and holding or its period) and the amount
/// as the longest varint (9 bytes). A test encodes the longest of each kind against it.
pub const POSTING_BYTES_MAX: usize = 64;
/// Most bytes an entry's event may take. A posted line is at most `LINE_BYTES_MAX` (16 KiB) of
/// JSON, which encodes to fewer bytes than that; the rules refuse a longer event all the same.
pub const EVENT_BYTES_MAX: usize = 64 * 1024;
/// An entry's other fields: version, sequence, recording time, value date, posting count.
pub const ENTRY_HEADER_BYTES_MAX: usize = 64;
/// Largest canonical entry, in bytes; decoding refuses anything larger. Derived from the
/// limits above, so that every entry the rules let through can be read back.
pub const ENTRY_BYTES_MAX: usize = 16 * 1024 * 1024;
const _: () = assert!(
    ENTRY_HEADER_BYTES_MAX + EVENT_BYTES_MAX + POSTINGS_PER_ENTRY_MAX * POSTING_BYTES_MAX
        <= ENTRY_BYTES_MAX,
    "an entry of the most postings must fit the decoder's limit"
);
// A member's account: fund, kind, id (length varint and bytes), part, holding, amount.
const _: () = assert!(1 + 1 + 1 + crate::ids::NAME_ID_LEN_MAX + 2 + 1 + 9 <= POSTING_BYTES_MAX);

/// A 32-byte SHA-256 value.
pub type Hash32 = [u8; 32];

/// The chain's starting value, `h_0`: 32 zero bytes.
pub const CHAIN_GENESIS: Hash32 = [0; 32];

/// One movement of money: debit-positive amount on one account.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Posting {
    pub account: Account,
    pub amount: Fen,
}

/// One journal entry. Its canonical bytes are hashed into the chain and the Merkle tree.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Entry {
    /// [`ENTRY_FORMAT_VERSION`].
    pub format: u8,
    /// Dense from 1.
    pub seq: u64,
    /// When the ledger recorded the entry: microseconds since 1970-01-01T00:00:00Z.
    pub recorded_at_us: i64,
    /// The date the money takes effect.
    pub value_date: Date,
    /// The event as the client posted it.
    pub event: Event,
    /// Balanced inside one fund.
    pub postings: Vec<Posting>,
}

/// Why bytes are not a valid entry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("entry bytes do not decode: {0}")]
    Malformed(String),
    #[error("entry has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("unknown entry format version {0}")]
    UnknownVersion(u8),
    #[error("entry is unbalanced: {0}")]
    Unbalanced(String),
}

pub(crate) fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
        .with_limit::<ENTRY_BYTES_MAX>()
}

/// Encodes any value with the ledger's fixed bincode configuration (little endian, varint).
pub fn encode<T: bincode::Encode>(value: &T) -> Vec<u8> {
    bincode::encode_to_vec(value, config()).expect("encoding into a Vec cannot fail")
}

/// How many bytes [`encode`] gives for `value`, without allocating them.
pub fn encoded_len<T: bincode::Encode>(value: &T) -> usize {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::encode_into_writer(value, &mut size, config()).expect("measuring cannot fail");
    size.bytes_written
}

/// An entry of this event and this many postings can be written and read back: at most
/// [`POSTINGS_PER_ENTRY_MAX`] postings and an event of at most [`EVENT_BYTES_MAX`] bytes, so
/// its canonical bytes stay within [`ENTRY_BYTES_MAX`] (checked at compile time).
pub fn check_entry_size(event: &Event, postings: usize) -> Result<(), String> {
    if postings > POSTINGS_PER_ENTRY_MAX {
        return Err(format!(
            "the entry would carry {postings} postings, more than the {POSTINGS_PER_ENTRY_MAX} \
             one entry may"
        ));
    }
    let event_bytes = encoded_len(event);
    if event_bytes > EVENT_BYTES_MAX {
        return Err(format!(
            "the event takes {event_bytes} bytes, more than the {EVENT_BYTES_MAX} an entry may"
        ));
    }
    Ok(())
}

/// Decodes a value written by [`encode`], refusing trailing bytes.
pub fn decode<T: bincode::Decode<()>>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, used) = bincode::decode_from_slice(bytes, config())
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

/// The bytes left to decode, for bincode to read from value by value (a caller that puts each
/// element of a list where it goes instead of into a vector first), and to tell what is left.
pub(crate) struct Remaining<'a>(pub(crate) &'a [u8]);

impl bincode::de::read::Reader for Remaining<'_> {
    fn read(&mut self, out: &mut [u8]) -> Result<(), bincode::error::DecodeError> {
        let Some((head, rest)) = self.0.split_at_checked(out.len()) else {
            return Err(bincode::error::DecodeError::UnexpectedEnd {
                additional: out.len() - self.0.len(),
            });
        };
        out.copy_from_slice(head);
        self.0 = rest;
        Ok(())
    }

    fn peek_read(&mut self, n: usize) -> Option<&[u8]> {
        self.0.get(..n)
    }

    fn consume(&mut self, n: usize) {
        self.0 = self.0.get(n..).unwrap_or_default();
    }
}

/// A growing buffer for bincode to write into.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Room first given to an entry's bytes, besides its postings': a premium takes about 100.
const ENTRY_BYTES_FIRST: usize = 128;
/// Room first given to each posting's bytes: a member's account takes about 20.
const POSTING_BYTES_FIRST: usize = 24;

impl Entry {
    /// The canonical bytes ([`encode`]). Deterministic: the same entry always gives the same
    /// bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.bytes_guess());
        self.encode_into(&mut bytes);
        bytes
    }

    /// Room for the canonical bytes, guessed from the postings: one pass of encoding into it
    /// (it grows if the guess is short), where `encode` measures the entry first, a second
    /// pass over it.
    fn bytes_guess(&self) -> usize {
        ENTRY_BYTES_FIRST + POSTING_BYTES_FIRST * self.postings.len()
    }

    /// Appends the canonical bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        bincode::encode_into_writer(self, &mut VecWriter(out), config())
            .expect("encoding into a Vec cannot fail");
    }

    /// Decodes canonical bytes and checks the entry's own invariants (version, balance).
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Entry, DecodeError> {
        let entry: Entry = decode(bytes)?;
        entry.check_decoded()?;
        Ok(entry)
    }

    /// [`Entry::from_canonical_bytes`] into this entry, in the buffers it has (its event id's
    /// text, its postings' vector): the same entry, or the same error, without allocating for
    /// an entry no larger than the one before (a verification decodes millions of entries into
    /// the same few thousand places). After an error the entry holds anything.
    pub fn decode_reusing(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        // A vector grown for an entry of many postings (an interest run over a whole fund) is
        // not kept for the ordinary entries after it: whoever reuses entries by the thousand
        // would otherwise keep the largest each place ever held.
        if self.postings.capacity() > POSTINGS_KEPT_MAX {
            self.postings = Vec::new();
        }
        if self.decode_in_place(bytes).is_err() {
            // The plain decoding words the error (and would take what this one refused).
            *self = Entry::from_canonical_bytes(bytes)?;
            return Ok(());
        }
        self.check_decoded()
    }

    /// The fields as the derived decoding reads them, in order, with the same claims on the
    /// decoder's limit; the event id's text and the postings go where the old ones were.
    fn decode_in_place(&mut self, bytes: &[u8]) -> Result<(), bincode::error::DecodeError> {
        use bincode::Decode;
        use bincode::de::Decoder;
        use bincode::error::DecodeError as Error;
        let mut d = bincode::de::DecoderImpl::new(Remaining(bytes), config(), ());
        let len = |d: &mut bincode::de::DecoderImpl<Remaining<'_>, _, ()>| {
            let n = u64::decode(d)?;
            usize::try_from(n).map_err(|_| Error::OutsideUsizeRange(n))
        };
        self.format = u8::decode(&mut d)?;
        self.seq = u64::decode(&mut d)?;
        self.recorded_at_us = i64::decode(&mut d)?;
        self.value_date = Date::decode(&mut d)?;
        // The event's id: a `String`'s encoding, read into the id's own buffer.
        let n = len(&mut d)?;
        d.claim_container_read::<u8>(n)?;
        let rest = d.reader().0;
        let text =
            rest.get(..n).ok_or_else(|| Error::UnexpectedEnd { additional: n - rest.len() })?;
        let text = std::str::from_utf8(text).map_err(|inner| Error::Utf8 { inner })?;
        self.event.id.set_decoded(text);
        d.reader().0 = &rest[n..];
        self.event.value_date = Option::<Date>::decode(&mut d)?;
        self.event.memo = Option::<String>::decode(&mut d)?;
        self.event.body = crate::event::EventBody::decode(&mut d)?;
        // The postings: a `Vec`'s encoding, into the vector the entry had.
        let n = len(&mut d)?;
        d.claim_container_read::<Posting>(n)?;
        self.postings.clear();
        self.postings.reserve(n);
        for _ in 0..n {
            d.unclaim_bytes_read(std::mem::size_of::<Posting>());
            self.postings.push(Posting::decode(&mut d)?);
        }
        match d.reader().0.len() {
            0 => Ok(()),
            trailing => Err(Error::OtherString(format!("{trailing} trailing bytes"))),
        }
    }

    /// The entry's own invariants, once decoded: its version, its balance, its value date.
    fn check_decoded(&self) -> Result<(), DecodeError> {
        if self.format != ENTRY_FORMAT_VERSION {
            return Err(DecodeError::UnknownVersion(self.format));
        }
        check_postings(&self.postings).map_err(DecodeError::Unbalanced)?;
        if !self.value_date.is_in_range() {
            return Err(DecodeError::Malformed(format!(
                "value date {} days from 1970-01-01 is outside the ledger's years",
                self.value_date.0
            )));
        }
        Ok(())
    }

    /// The one fund an entry moves money in, if it moves any.
    pub fn fund(&self) -> Option<Fund> {
        self.postings.first().map(|p| p.account.fund)
    }
}

/// Postings must all be in one fund, non-zero, and sum to zero.
pub fn check_postings(postings: &[Posting]) -> Result<(), String> {
    if postings.len() > POSTINGS_PER_ENTRY_MAX {
        return Err(format!("more than {POSTINGS_PER_ENTRY_MAX} postings"));
    }
    let Some(first) = postings.first() else {
        return Ok(());
    };
    let mut sum: i128 = 0;
    for p in postings {
        if p.account.fund != first.account.fund {
            return Err(format!(
                "postings in two funds ({} and {}): money never crosses funds (Art. 37)",
                first.account.fund, p.account.fund
            ));
        }
        if p.amount.0 == 0 {
            return Err(format!("zero posting to {}", p.account));
        }
        sum += i128::from(p.amount.0);
    }
    if sum != 0 {
        return Err(format!("postings sum to {sum} fen, not zero"));
    }
    Ok(())
}

/// `h_n = SHA-256(h_(n-1) || bytes_n)`.
pub fn chain_next(previous: &Hash32, bytes: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(bytes);
    h.finalize().into()
}

/// SHA-256 of arbitrary bytes (idempotency fingerprints).
pub fn sha256(bytes: &[u8]) -> Hash32 {
    Sha256::digest(bytes).into()
}

/// The fingerprint of an event's content, compared on replay of the same id: SHA-256 of its
/// [`encode`]d bytes.
pub fn event_fingerprint(event: &Event) -> Hash32 {
    // Most events take well under this; encoded on the stack, in one pass (`encode` measures
    // first, then allocates and writes).
    const ON_STACK_BYTES: usize = 512;
    let mut buffer = [0u8; ON_STACK_BYTES];
    match bincode::encode_into_slice(event, &mut buffer, config()) {
        Ok(len) => sha256(&buffer[..len]),
        // Only `UnexpectedEnd` (the buffer is too small) can happen: encoding an event into
        // memory has no other failure.
        Err(_) => sha256(&encode(event)),
    }
}

/// Entries ready to store, in order from `first_seq`: their canonical bytes, encoded once and
/// one after another into one buffer (not each into a buffer of its own), where each one's
/// bytes end, and their chain hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealedEntries {
    first_seq: u64,
    bytes: Vec<u8>,
    ends: Vec<usize>,
    chain_hashes: Vec<Hash32>,
}

/// Most postings whose room an entry decoded into again keeps ([`Entry::decode_reusing`]).
const POSTINGS_KEPT_MAX: usize = 64;

/// Entries a thread of the pool encodes at a time when a large batch is sealed.
const ENCODE_PART_ENTRIES: usize = 4096;

impl SealedEntries {
    /// Encodes `entries` (dense from `first_seq`) and chains them from `previous`: on the
    /// thread pool in parts when there are `parallel_min` or more, each part into a buffer of
    /// its own that is then appended to the batch's. Returns the last chain hash.
    pub fn seal(
        first_seq: u64,
        entries: &[Entry],
        previous: Hash32,
        parallel_min: usize,
    ) -> (SealedEntries, Hash32) {
        use rayon::prelude::*;
        let mut sealed = SealedEntries { first_seq, ..SealedEntries::default() };
        if entries.len() < parallel_min {
            sealed.bytes.reserve(entries.iter().map(Entry::bytes_guess).sum());
            for e in entries {
                sealed.encode(e);
            }
        } else {
            let parts: Vec<SealedEntries> = entries
                .par_chunks(ENCODE_PART_ENTRIES)
                .map(|part| {
                    let mut s = SealedEntries::default();
                    s.bytes.reserve(part.iter().map(Entry::bytes_guess).sum());
                    part.iter().for_each(|e| s.encode(e));
                    s
                })
                .collect();
            sealed.bytes.reserve(parts.iter().map(|p| p.bytes.len()).sum());
            sealed.ends.reserve(entries.len());
            for part in parts {
                let base = sealed.bytes.len();
                sealed.bytes.extend_from_slice(&part.bytes);
                sealed.ends.extend(part.ends.iter().map(|end| base + end));
            }
        }
        let mut head = previous;
        sealed.chain_hashes.reserve(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            assert_eq!(entry.seq, first_seq + i as u64, "sequence numbers are dense");
            head = chain_next(&head, sealed.bytes_of(i));
            sealed.chain_hashes.push(head);
        }
        (sealed, head)
    }

    fn encode(&mut self, entry: &Entry) {
        entry.encode_into(&mut self.bytes);
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The canonical bytes of the `i`-th entry (from 0).
    pub fn bytes_of(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// The entries' sequence numbers.
    pub fn seqs(&self) -> std::ops::Range<u64> {
        self.first_seq..self.first_seq + self.len() as u64
    }

    pub fn chain_hashes(&self) -> &[Hash32] {
        &self.chain_hashes
    }

    /// The first entry's sequence number, the canonical bytes, where each entry's end, and
    /// the chain hashes.
    pub fn into_parts(self) -> (u64, Vec<u8>, Vec<usize>, Vec<Hash32>) {
        (self.first_seq, self.bytes, self.ends, self.chain_hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event_line;
    use crate::fund::Source;

    fn sample() -> Entry {
        let event = parse_event_line(
            r#"{"id":"a1","type":"appropriation","fund":"casualty","amount":"1000.00"}"#,
        )
        .unwrap();
        Entry {
            format: ENTRY_FORMAT_VERSION,
            seq: 7,
            recorded_at_us: 1_700_000_000_000_000,
            value_date: Date(19_000),
            event,
            postings: vec![
                Posting { account: Account::pool(Fund::Casualty), amount: Fen(100_000) },
                Posting {
                    account: Account::source(Fund::Casualty, Source::Central),
                    amount: Fen(-100_000),
                },
            ],
        }
    }

    /// Entries of several shapes: a memo, a long id, a body with text, many postings.
    fn shapes() -> Vec<Entry> {
        let lines = [
            r#"{"id":"a1","type":"appropriation","fund":"casualty","amount":"1000.00"}"#,
            r#"{"id":"a much longer event id, up to sixty-four characters: 0123456789","type":"appropriation","fund":"medical","amount":"0.01","memo":"a memo"}"#,
            r#"{"id":"r1","type":"reversal","of":"a1","reason":"posted twice"}"#,
            r#"{"id":"c1","type":"contribution","member":"M1","fund":"medical","period":"2024-01","amount":"100.00","unit":"U1"}"#,
        ];
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let mut e = sample();
                e.event = parse_event_line(line).unwrap();
                e.seq = 1 << (i * 9);
                e.postings = (0..(1 + i * 3))
                    .flat_map(|k| {
                        let amount = Fen(k as i64 * 977 + 1);
                        [
                            Posting { account: Account::pool(Fund::Medical), amount },
                            Posting {
                                account: Account::source(Fund::Medical, Source::Central),
                                amount: Fen(-amount.0),
                            },
                        ]
                    })
                    .collect();
                e
            })
            .collect()
    }

    proptest::proptest! {
        /// Decoding into an entry decoded before gives what the plain decoding gives: the same
        /// entry, or the same error, for canonical bytes and for bytes changed, cut or grown.
        #[test]
        fn decoding_in_place_is_the_plain_decoding(
            (before, after) in (0usize..4, 0usize..4),
            change in proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 0..3),
            cut in proptest::option::of(0usize..400),
            grow in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2),
        ) {
            let shapes = shapes();
            let mut bytes = shapes[after].canonical_bytes();
            for (at, b) in change {
                let at = at % bytes.len();
                bytes[at] = b;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.min(bytes.len()));
            }
            bytes.extend_from_slice(&grow);
            let mut reused = shapes[before].clone();
            let plain = Entry::from_canonical_bytes(&bytes);
            let in_place = reused.decode_reusing(&bytes);
            match plain {
                Ok(entry) => {
                    proptest::prop_assert!(in_place.is_ok());
                    proptest::prop_assert_eq!(reused, entry);
                }
                Err(e) => {
                    proptest::prop_assert_eq!(in_place.map_err(|e| e.to_string()), Err(e.to_string()));
                }
            }
        }
    }

    /// Unchanged bytes of every shape decode in place into every other shape, and the buffers
    /// are the ones the entry had when they are large enough.
    #[test]
    fn decoding_in_place_keeps_the_buffers() {
        let shapes = shapes();
        for into in &shapes {
            for from in &shapes {
                let mut reused = into.clone();
                // Room for any shape's postings, no more than a place keeps.
                reused.postings.reserve_exact(POSTINGS_KEPT_MAX - reused.postings.len());
                let (ids, postings) = (reused.event.id.as_str().as_ptr(), reused.postings.as_ptr());
                reused.decode_reusing(&from.canonical_bytes()).unwrap();
                assert_eq!(&reused, from);
                if into.event.id.as_str().len() >= from.event.id.as_str().len() {
                    assert_eq!(reused.event.id.as_str().as_ptr(), ids);
                }
                assert_eq!(reused.postings.as_ptr(), postings);
            }
        }
    }

    /// An entry of many postings decoded into a place does not leave its room there: the
    /// next entry decoded into it gets a vector of its own size.
    #[test]
    fn decoding_in_place_does_not_keep_the_room_of_a_large_entry() {
        let mut large = sample();
        large.postings = (0..POSTINGS_KEPT_MAX as i64 + 1)
            .flat_map(|k| {
                [
                    Posting { account: Account::pool(Fund::Casualty), amount: Fen(k + 1) },
                    Posting {
                        account: Account::source(Fund::Casualty, Source::Central),
                        amount: Fen(-k - 1),
                    },
                ]
            })
            .collect();
        let mut place = sample();
        place.decode_reusing(&large.canonical_bytes()).unwrap();
        assert_eq!(place, large);
        assert!(place.postings.capacity() > POSTINGS_KEPT_MAX);
        place.decode_reusing(&sample().canonical_bytes()).unwrap();
        assert_eq!(place, sample());
        assert!(place.postings.capacity() <= POSTINGS_KEPT_MAX, "{}", place.postings.capacity());
    }

    /// Sealing encodes every entry once into one buffer: on this thread or on the pool in
    /// parts (more than one part here), each entry's bytes are its canonical bytes and the
    /// chain runs over them from the given hash.
    #[test]
    fn sealed_entries_are_each_entrys_canonical_bytes_chained() {
        let entries: Vec<Entry> = (0..ENCODE_PART_ENTRIES as u64 + 37)
            .map(|i| {
                let mut e = sample();
                e.seq = 100 + i;
                e.postings[0].amount = Fen(i as i64 * 1_000_003);
                e.postings[1].amount = Fen(-(i as i64) * 1_000_003);
                e
            })
            .collect();
        let previous = [9u8; 32];
        let (here, head) = SealedEntries::seal(100, &entries, previous, usize::MAX);
        let (pooled, pooled_head) = SealedEntries::seal(100, &entries, previous, 1);
        assert_eq!(here, pooled);
        assert_eq!(head, pooled_head);
        assert_eq!((here.len(), here.seqs()), (entries.len(), 100..100 + entries.len() as u64));
        let mut h = previous;
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(here.bytes_of(i), e.canonical_bytes());
            h = chain_next(&h, &e.canonical_bytes());
            assert_eq!(here.chain_hashes()[i], h);
        }
        assert_eq!(head, h);
        let (first, bytes, ends, hashes) = here.into_parts();
        assert_eq!((first, ends.len(), hashes.len()), (100, entries.len(), entries.len()));
        assert_eq!(ends.last().copied(), Some(bytes.len()));
    }

    /// The longest posting of every account kind: ids of the longest length, amounts of the
    /// longest varint.
    fn longest_postings() -> Vec<Posting> {
        use crate::fund::{AccountKind, Holding, SpousePart};
        use crate::ids::{AgencyId, MemberId, NAME_ID_LEN_MAX, UnitId};
        let name = "x".repeat(NAME_ID_LEN_MAX);
        let kinds = [
            AccountKind::Member {
                member: MemberId::parse(&name).unwrap(),
                part: Some(SpousePart::Medical),
                holding: Holding::TransferredIn,
            },
            AccountKind::Pool,
            AccountKind::AgencyPayable { agency: AgencyId::parse(&name).unwrap() },
            AccountKind::Source(Source::TransferIn),
            AccountKind::Use(crate::fund::Use::Transfer),
            AccountKind::UnitReceivable {
                unit: UnitId::parse(&name).unwrap(),
                period: crate::time::Period { year: u16::MAX, month: u8::MAX },
            },
            AccountKind::Unremitted,
        ];
        kinds
            .into_iter()
            .flat_map(|kind| {
                [i64::MAX, i64::MIN].map(|fen| Posting {
                    account: Account { fund: Fund::Spouse, kind: kind.clone() },
                    amount: Fen(fen),
                })
            })
            .collect()
    }

    #[test]
    fn every_posting_fits_the_posting_bound() {
        for p in longest_postings() {
            let n = encoded_len(&p);
            assert!(n <= POSTING_BYTES_MAX, "{} takes {n} bytes", p.account);
            assert_eq!(n, encode(&p).len());
        }
    }

    /// The limits are derived from each other: an entry of the most postings, each of the
    /// longest kind, with the longest event a line can carry, is written within the decoder's
    /// limit and read back (before, 200,000 postings could pass 8 MiB and never be read).
    #[test]
    fn an_entry_of_the_most_postings_and_the_longest_event_reads_back() {
        let memo = "\u{4e07}".repeat(crate::event::MEMO_CHARS_MAX);
        let line = format!(
            r#"{{"id":"{}","type":"appropriation","fund":"spouse","amount":"1.00","memo":"{memo}"}}"#,
            "i".repeat(crate::ids::EVENT_ID_LEN_MAX)
        );
        let mut e = sample();
        e.event = crate::event::parse_event_line(&line).unwrap();
        let longest = longest_postings()[0].clone();
        let mut minus = longest.clone();
        minus.amount = Fen(-crate::money::AMOUNT_FEN_MAX);
        let mut plus = longest;
        plus.amount = Fen(crate::money::AMOUNT_FEN_MAX);
        e.postings =
            (0..POSTINGS_PER_ENTRY_MAX / 2).flat_map(|_| [plus.clone(), minus.clone()]).collect();
        assert!(check_entry_size(&e.event, e.postings.len()).is_ok());
        let bytes = e.canonical_bytes();
        assert_eq!(bytes, encode(&e), "room guessed far short, the same bytes");
        assert!(bytes.len() <= ENTRY_BYTES_MAX, "{} bytes", bytes.len());
        assert_eq!(Entry::from_canonical_bytes(&bytes).unwrap(), e);
        let refused = check_entry_size(&e.event, POSTINGS_PER_ENTRY_MAX + 1).unwrap_err();
        assert!(refused.contains("200001 postings"), "{refused}");
    }

    #[test]
    fn canonical_bytes_round_trip_and_are_deterministic() {
        let e = sample();
        let bytes = e.canonical_bytes();
        assert_eq!(bytes, e.clone().canonical_bytes());
        assert_eq!(Entry::from_canonical_bytes(&bytes).unwrap(), e);
        assert_eq!(bytes[0], ENTRY_FORMAT_VERSION);
    }

    /// `canonical_bytes` and `event_fingerprint` write in one pass where `encode` measures
    /// first: the bytes, and so the chain and every stored fingerprint, are the same.
    #[test]
    fn canonical_bytes_and_fingerprints_are_those_of_the_plain_encoding() {
        let mut e = sample();
        assert_eq!(e.canonical_bytes(), encode(&e));
        assert_eq!(event_fingerprint(&e.event), sha256(&encode(&e.event)));
        // An event longer than the fingerprint's stack buffer, postings past the first room.
        let memo = "\u{4e07}".repeat(crate::event::MEMO_CHARS_MAX);
        e.event = crate::event::parse_event_line(&format!(
            r#"{{"id":"a2","type":"appropriation","fund":"casualty","amount":"1.00","memo":"{memo}"}}"#
        ))
        .unwrap();
        assert!(encode(&e.event).len() > 512);
        assert_eq!(event_fingerprint(&e.event), sha256(&encode(&e.event)));
        e.postings = longest_postings();
        assert_eq!(e.canonical_bytes(), encode(&e));
    }

    #[test]
    fn unbalanced_or_cross_fund_postings_are_refused() {
        let mut e = sample();
        e.postings[1].amount = Fen(-99_999);
        assert!(check_postings(&e.postings).unwrap_err().contains("sum"));
        let mut e = sample();
        e.postings[1].account.fund = Fund::Medical;
        assert!(check_postings(&e.postings).unwrap_err().contains("Art. 37"));
    }

    #[test]
    fn chain_matches_the_contract_definition() {
        let bytes = sample().canonical_bytes();
        let mut concat = CHAIN_GENESIS.to_vec();
        concat.extend_from_slice(&bytes);
        assert_eq!(chain_next(&CHAIN_GENESIS, &bytes), sha256(&concat));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = sample().canonical_bytes();
        bytes.push(0);
        assert!(matches!(Entry::from_canonical_bytes(&bytes), Err(DecodeError::TrailingBytes(1))));
    }
}

#[cfg(test)]
mod format_doc {
    use super::*;
    use crate::event::parse_event_line;
    use crate::fund::{Holding, Source};
    use crate::ids::MemberId;

    /// Varint as docs/FORMAT.md §1 describes it.
    fn varint(n: u64, out: &mut Vec<u8>) {
        if n < 251 {
            out.push(n as u8);
        } else if n < 1 << 16 {
            out.push(0xFB);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        } else if n < 1 << 32 {
            out.push(0xFC);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        } else {
            out.push(0xFD);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }

    fn zigzag(n: i64, out: &mut Vec<u8>) {
        varint(((n << 1) ^ (n >> 63)) as u64, out);
    }

    fn string(s: &str, out: &mut Vec<u8>) {
        varint(s.len() as u64, out);
        out.extend_from_slice(s.as_bytes());
    }

    #[test]
    fn format_doc_matches_the_encoder() {
        let event = parse_event_line(
            r#"{"id":"c-1","type":"contribution","member":"M0001","fund":"medical","period":"2024-03","amount":"92.00","unit":"U01","memo":"March"}"#,
        )
        .unwrap();
        let member = MemberId::parse("M0001").unwrap();
        let entry = Entry {
            format: ENTRY_FORMAT_VERSION,
            seq: 300,
            recorded_at_us: 1_709_251_200_123_456,
            value_date: Date(19_783),
            event,
            postings: vec![
                Posting {
                    account: Account::member(Fund::Medical, &member, None, Holding::Personal),
                    amount: Fen(9_200),
                },
                Posting {
                    account: Account::source(Fund::Medical, Source::Personal),
                    amount: Fen(-9_200),
                },
            ],
        };
        let mut b = vec![0x01];
        varint(300, &mut b);
        zigzag(1_709_251_200_123_456, &mut b);
        zigzag(19_783, &mut b);
        // Event: id, value_date (none), memo (some), body = contribution (index 1).
        string("c-1", &mut b);
        b.push(0x00);
        b.push(0x01);
        string("March", &mut b);
        varint(1, &mut b);
        string("M0001", &mut b);
        varint(2, &mut b); // fund medical
        varint(2024, &mut b); // period year (u16 varint)
        b.push(3); // period month (u8)
        zigzag(9_200, &mut b);
        string("U01", &mut b);
        b.push(0x00); // part: none
        // Postings.
        varint(2, &mut b);
        varint(2, &mut b); // medical
        varint(0, &mut b); // kind member
        string("M0001", &mut b);
        b.push(0x00); // part none
        varint(0, &mut b); // holding personal
        zigzag(9_200, &mut b);
        varint(2, &mut b); // medical
        varint(3, &mut b); // kind source
        varint(0, &mut b); // source personal
        zigzag(-9_200, &mut b);
        assert_eq!(entry.canonical_bytes(), b);
    }
}
