//! Loading the stored state (at open, and `verify`'s stored side) as a scan yields it: one
//! thread scans the state column family and the balances, copying records into chunks of about
//! a megabyte; the calling thread decodes each chunk into the state while the next is read. No
//! record outlives its chunk, and the two cores share the work (docs/FORMAT.md §4).

use junbao_ledger::LedgerState;
use junbao_ledger::state::{StateLoadError, StateLoader};
use junbao_storage::ReadError;

/// Bytes of records per chunk handed from the scanning thread to the decoding one.
const CHUNK_BYTES: usize = 1 << 20;

/// Chunks in flight between the two threads.
const CHUNKS_IN_FLIGHT: usize = 4;

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

/// Records copied out of a scan into one buffer.
#[derive(Default)]
struct Chunk {
    balances: bool,
    bytes: Vec<u8>,
    /// Where each record's key and value end in `bytes`.
    ends: Vec<(usize, usize)>,
}

impl Chunk {
    fn new(balances: bool) -> Chunk {
        Chunk { balances, bytes: Vec::with_capacity(CHUNK_BYTES + 4096), ends: Vec::new() }
    }

    fn push(&mut self, key: &[u8], value: &[u8]) {
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.ends.push((key_end, self.bytes.len()));
    }

    fn records(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut start = 0;
        self.ends.iter().map(move |&(key_end, end)| {
            let record = (&self.bytes[start..key_end], &self.bytes[key_end..end]);
            start = end;
            record
        })
    }
}

/// The scanning side: fills chunks and sends the full ones.
struct Filler {
    chunk: Chunk,
    to: std::sync::mpsc::SyncSender<Chunk>,
}

impl Filler {
    /// Adds a record; false once the decoding side has stopped.
    fn push(&mut self, key: &[u8], value: &[u8]) -> bool {
        self.chunk.push(key, value);
        self.chunk.bytes.len() < CHUNK_BYTES || self.send(self.chunk.balances)
    }

    /// Sends the chunk so far (if any); the next holds records of `balances`.
    fn send(&mut self, balances: bool) -> bool {
        let full = std::mem::replace(&mut self.chunk, Chunk::new(balances));
        full.ends.is_empty() || self.to.send(full).is_ok()
    }
}

/// The state the stored records make, and whether any record was of state format 2 (read only
/// if `format2`): see [`StateLoader`].
pub(crate) fn load_state(
    state: Scan<'_>,
    balances: Scan<'_>,
    format2: bool,
) -> Result<(LedgerState, bool), LoadError> {
    let (to, from) = std::sync::mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|scope| {
        let scanning = std::thread::Builder::new()
            .name("junbao-load".into())
            .spawn_scoped(scope, move || -> Result<(), ReadError> {
                let mut filler = Filler { chunk: Chunk::new(false), to };
                let mut open = true;
                state(&mut |k, v| {
                    open = filler.push(k, v);
                    open
                })?;
                if !open || !filler.send(true) {
                    return Ok(());
                }
                balances(&mut |k, v| filler.push(k, v))?;
                filler.send(true);
                Ok(())
            })
            .expect("spawning the loading thread");
        let mut loader = StateLoader::new(format2);
        let mut failed = None;
        'chunks: for chunk in from.iter() {
            for (k, v) in chunk.records() {
                let done = if chunk.balances { loader.balance(k, v) } else { loader.record(k, v) };
                if let Err(e) = done {
                    failed = Some(e);
                    break 'chunks;
                }
            }
        }
        // The scan stops at its next chunk once no one receives it.
        drop(from);
        let scanned = scanning.join().expect("the scan does not panic");
        if let Some(e) = failed {
            return Err(LoadError::State(e));
        }
        scanned.map_err(LoadError::Read)?;
        let format2_seen = loader.format2_seen();
        Ok((loader.finish().map_err(LoadError::State)?, format2_seen))
    })
}
