//! Loading the stored state (at open, and `verify`'s stored side) as a scan yields it: two
//! threads scan the state column family and the balances, split by key range, and decode each
//! record as it comes ([`StateRecord::decode`]; a member-year page straight into its member's
//! book, [`ScannedBooks::add_page_record`]). The members go into a map of the scanning
//! thread's own; each book (a member's pages, adjacent in a scan) is checked as it is
//! completed, while its pages are still in the cache, and handed on. The books and the other
//! records are handed on in batches, and the calling thread puts them into the state
//! ([`ScannedBooks::add_completed`], [`StateLoader::insert`]) while the next batches are read
//! and decoded. No record's bytes outlive the scan's step, and the two cores share the work
//! (docs/FORMAT.md §4): the thread of the pages, the longest, is left the decoding alone.

use junbao_ledger::LedgerState;
use junbao_ledger::ids::MemberId;
use junbao_ledger::keyed::KeyedMap;
use junbao_ledger::state::{
    MemberBook, MemberState, ScannedBooks, StateLoadError, StateLoader, StateRecord,
};
use junbao_storage::ReadError;

/// Records (or books) per batch handed from the scanning thread to the inserting one.
const BATCH_RECORDS: usize = 4096;

/// A batch handed from a scanning thread to the inserting one.
enum Handed {
    Records(Vec<StateRecord>),
    /// Books completed and checked by the scanning thread, for the inserting one to put into
    /// the map of books: a map of a million books is filled a cache miss or two at a time, on
    /// the core the thread decoding the pages (the open's longest) does not need.
    Books(Vec<(MemberId, MemberBook)>),
}

/// Batches in flight between the two threads.
const BATCHES_IN_FLIGHT: usize = 8;

/// A scan of one column family: calls its argument with every record, in key order, until it
/// returns false.
pub(crate) type Scan<'a> =
    Box<dyn FnOnce(&mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<(), ReadError> + Send + 'a>;

/// Why the stored state did not load.
#[derive(Debug)]
pub(crate) enum LoadError {
    Read(ReadError),
    State(StateLoadError),
}

/// The members a scanning thread put into a map of its own.
type Members = KeyedMap<MemberId, Box<MemberState>>;

/// What a scanning thread built itself: members, and its books' last (completed by
/// [`StateLoader::finish_with`]) with what it noted of the others (the least wrong one, those
/// kept whole, how many let go of years); the others were handed on.
struct Built {
    members: Members,
    books: ScannedBooks,
}

/// The scanning side: decodes records and completed books into batches and sends the full
/// ones; members go into its own map instead.
struct Decoder {
    batch: Vec<StateRecord>,
    to: std::sync::mpsc::SyncSender<Handed>,
    /// The members scanned, and how many the map is sized for at its first.
    members: Members,
    members_expected: usize,
    /// The books being read, each handed on once completed ([`ScannedBooks::handing_on`]).
    books: ScannedBooks,
    /// The first record that did not decode.
    failed: Option<StateLoadError>,
}

impl Decoder {
    /// Adds a decoded record; false once a record did not decode or the inserting side has
    /// stopped.
    fn push(&mut self, record: Result<StateRecord, StateLoadError>) -> bool {
        match record {
            // Inserted here, not by the inserting thread: a million members' map is the
            // largest of the state (and most of the memory the kernel zeroes as it is first
            // written), and filling it on the scanning thread shares that work between the
            // two cores instead of leaving it all on the inserting side.
            Ok(StateRecord::Member(id, member)) => {
                if self.members.capacity() == 0 {
                    self.members.reserve(self.members_expected);
                }
                self.members.insert(id, member);
                return true;
            }
            // Pages never come here: the scan gives them to `push_page`.
            Ok(r) => self.batch.push(r),
            Err(e) => {
                self.failed = Some(e);
                return false;
            }
        }
        self.batch.len() < BATCH_RECORDS || self.send()
    }

    /// A member-year page, decoded straight into the book being built
    /// ([`ScannedBooks::add_page_record`]); false once it did not decode. A member's pages
    /// are adjacent in a scan (in key order, in year order): the book is built here and
    /// checked as soon as the next member's page comes.
    fn push_page(&mut self, key: &[u8], value: &[u8]) -> bool {
        match self.books.add_page_record(key, value) {
            Ok(_) => self.books.completed_waiting() < BATCH_RECORDS || self.send_books(),
            Err(e) => {
                self.failed = Some(e);
                false
            }
        }
    }

    /// Sends the batch of records so far (if any).
    fn send(&mut self) -> bool {
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_RECORDS));
        full.is_empty() || self.to.send(Handed::Records(full)).is_ok()
    }

    /// Sends the books completed so far (if any).
    fn send_books(&mut self) -> bool {
        let books = self.books.take_completed();
        books.is_empty() || self.to.send(Handed::Books(books)).is_ok()
    }
}

/// Which decoder a scan's records go through.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// The `state` column family.
    State,
    /// The `balances` column family.
    Balances,
}

/// The state the stored records make (records of state format 2 read only if `format2`): see
/// [`StateLoader`]. `threads` are the scans, in key order: each inner list
/// is scanned and decoded on a thread of its own, in its order, while the calling thread puts
/// the records into the state. `counts` are the sizes the checkpoint noted (members, books,
/// balances), if any. The error is that of the first record, in the order of the scans as
/// listed, that does not decode, as if they were decoded one by one.
///
/// The inserting side takes the records in any order of the threads' batches: the kinds of
/// record a state holds do not depend on each other, and one member's pages must come from
/// one scan (a [`StateLoader`] sorts a book read out of order, at a cost).
/// With `keep`, each member's book lets go of its years before the last `keep` as it is
/// loaded (`ScannedBooks::evicting`): the open of a ledger in the current format, whose pages
/// are those years' as stored. `verify` and a conversion load every year.
pub(crate) fn load_state(
    threads: Vec<Vec<(Kind, Scan<'_>)>>,
    format2: bool,
    counts: Option<[usize; 3]>,
    keep: Option<u16>,
) -> Result<LedgerState, LoadError> {
    let (to, from) = std::sync::mpsc::sync_channel::<Handed>(BATCHES_IN_FLIGHT);
    std::thread::scope(|scope| {
        let mut scanning = Vec::new();
        let mut first = 0;
        for scans in threads {
            let to = to.clone();
            let place = first;
            first += scans.len();
            let members_expected =
                counts.map_or(0, |[members, ..]| members.saturating_add(members / 16));
            let scan = move || -> Result<Built, (usize, LoadError)> {
                let mut decoder = Decoder {
                    batch: Vec::with_capacity(BATCH_RECORDS),
                    to,
                    members: Members::default(),
                    members_expected,
                    books: keep
                        .map_or_else(ScannedBooks::default, ScannedBooks::evicting)
                        .handing_on(),
                    failed: None,
                };
                for (i, (kind, scan)) in scans.into_iter().enumerate() {
                    let mut go = true;
                    let scanned = match kind {
                        Kind::State => scan(&mut |k, v| {
                            go = if junbao_ledger::state::is_page_key(k) {
                                decoder.push_page(k, v)
                            } else {
                                decoder.push(StateRecord::decode(k, v, format2))
                            };
                            go
                        }),
                        Kind::Balances => scan(&mut |k, v| {
                            go = decoder.push(StateRecord::decode_balances_record(k, v, format2));
                            go
                        }),
                    };
                    scanned.map_err(|e| (place + i, LoadError::Read(e)))?;
                    if let Some(e) = decoder.failed.take() {
                        return Err((place + i, LoadError::State(e)));
                    }
                    if !go {
                        // The inserting side has stopped.
                        break;
                    }
                }
                decoder.send();
                decoder.send_books();
                Ok(Built { members: decoder.members, books: decoder.books })
            };
            scanning.push(
                std::thread::Builder::new()
                    .name("junbao-load".into())
                    .spawn_scoped(scope, scan)
                    .expect("spawning a loading thread"),
            );
        }
        drop(to);
        let mut loader = StateLoader::new(format2);
        // The books the scanning threads completed and handed on.
        let mut received = ScannedBooks::default();
        // Sized once from the checkpoint's counts (growing maps of a million members rehash
        // and move every record at each doubling), a little over for the tail's new members.
        // The members' map is the scanning threads' (above).
        if let Some([_, books, balances]) = counts {
            loader.reserve(0, 0, balances.saturating_add(balances / 16));
            received.reserve(books.saturating_add(books / 16));
        }
        for handed in from.iter() {
            match handed {
                Handed::Records(batch) => {
                    for record in batch {
                        loader.insert(record);
                    }
                }
                Handed::Books(batch) => {
                    for (member, book) in batch {
                        received.add_completed(member, book);
                    }
                }
            }
        }
        let mut failed: Option<(usize, LoadError)> = None;
        let mut books = vec![received];
        for thread in scanning {
            match thread.join().expect("the scan does not panic") {
                Ok(built) => {
                    loader.add_members(built.members);
                    books.push(built.books);
                }
                Err((at, e)) => {
                    if failed.as_ref().is_none_or(|(first, _)| at < *first) {
                        failed = Some((at, e));
                    }
                }
            }
        }
        if let Some((_, e)) = failed {
            return Err(e);
        }
        loader.finish_with(books).map_err(LoadError::State)
    })
}
