//! A member's premium months and the yearly sums of their accounts, kept together and dense:
//! no member id per month or per year, one sorted vector each (docs/FORMAT.md §4, "member-year
//! pages").

use crate::entry::{DecodeError, encode};
use crate::fund::{Account, AccountKind, Fund, Holding, SpousePart};
use crate::ids::MemberId;
use crate::money::Fen;
use crate::time::Period;

use thin_vec::ThinVec;

use super::{Line, PeriodMoney};

/// Which of a member's accounts: fund, spouse part (spouse fund only) and holding.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub struct Slot {
    pub fund: Fund,
    pub part: Option<SpousePart>,
    pub holding: Holding,
}

impl Slot {
    /// The member and slot of a member account; `None` for any other account.
    pub fn of(account: &Account) -> Option<(&MemberId, Slot)> {
        match &account.kind {
            AccountKind::Member { member, part, holding } => {
                Some((member, Slot { fund: account.fund, part: *part, holding: *holding }))
            }
            _ => None,
        }
    }

    /// The account of `member` in this slot.
    pub fn account(self, member: &MemberId) -> Account {
        Account::member(self.fund, member, self.part, self.holding)
    }
}

/// Encoded member-year pages with their years, in year order.
pub type YearPages = Vec<(u16, Vec<u8>)>;

/// The money of one premium line in one month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Month {
    pub period: Period,
    pub line: Line,
    pub money: PeriodMoney,
}

/// The sum of one member account's postings with a value date in `year`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YearSum {
    pub year: u16,
    pub slot: Slot,
    pub sum: Fen,
}

/// One member's premium months and yearly account sums.
///
/// Canonical, so that two books of the same history compare equal whatever order they were
/// built in: `months` strictly ascending by (period, line) and never zero; `years` strictly
/// ascending by (year, slot) and never zero.
///
/// Each list is one word in the book (`ThinVec`: its length lives with its elements), and what
/// it keeps of its years out of memory a third: 24 bytes in a map's slot, where two `Vec`s
/// alone took 48.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberBook {
    months: ThinVec<Month>,
    years: ThinVec<YearSum>,
    /// The years out of memory (in the store only), if any: [`MemberBook::evict_through`].
    cold: Option<Box<Cold>>,
}

/// What a book keeps of the years it let go of (their pages stay in the store, unchanged until
/// they are read back: [`MemberBook::fault_in`]): the last of them, and what the balances and
/// the bound on balances need of their yearly sums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cold {
    /// Every year up to and including this one is out of memory; none after it.
    through: u16,
    /// Each account's sum of the cold years' sums, in slot order (an account whose cold sums
    /// add up to zero keeps its place: it has yearly sums, so it has a balance).
    sums: smallvec::SmallVec<[(Slot, i128); 4]>,
    /// The sum of the magnitudes of the cold years' sums ([`crate::rules::BalanceBound`]).
    magnitude: u128,
    /// The last year of each letting go, in order: the steps of `digest`.
    steps: smallvec::SmallVec<[u16; 2]>,
    /// What the pages let go of must hold when read back: SHA-256 over the digest of the step
    /// before (zeros for the first), then each page of the step's years in year order (the
    /// year, u16 BE; the length, u32 BE; the page as this ledger encodes it, `Page::encode`).
    digest: [u8; 32],
}

/// The digest of one step of letting go ([`Cold::digest`]).
fn step_digest<'p>(
    before: &[u8; 32],
    pages: impl IntoIterator<Item = (u16, &'p [u8])>,
) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(before);
    for (year, bytes) in pages {
        h.update(year.to_be_bytes());
        h.update(u32::try_from(bytes.len()).expect("a page is small").to_be_bytes());
        h.update(bytes);
    }
    h.finalize().into()
}

/// Why pages read back from the store cannot be a book's cold years.
#[derive(Debug, thiserror::Error)]
pub enum FaultInError {
    #[error("the stored page of {year} does not decode: {source}")]
    Page { year: u16, source: DecodeError },
    #[error("a stored page of {0} is not one of the years out of memory")]
    Year(u16),
    #[error(
        "the stored pages of the years through {0} do not hold what the book let go of (a page \
         changed, is missing or was added)"
    )]
    Sums(u16),
}

impl MemberBook {
    pub fn is_empty(&self) -> bool {
        self.months.is_empty() && self.years.is_empty() && self.cold.is_none()
    }

    /// The bytes the book's lists and cold years take on the heap (not the book itself):
    /// what a member's premium history costs in memory.
    pub fn heap_bytes(&self) -> usize {
        // A `ThinVec` allocates a 16-byte header with its elements, none while empty.
        let list = |cap: usize, size: usize| if cap == 0 { 0 } else { 16 + cap * size };
        list(self.months.capacity(), std::mem::size_of::<Month>())
            + list(self.years.capacity(), std::mem::size_of::<YearSum>())
            + self.cold.as_ref().map_or(0, |c| {
                let spilled =
                    |n: usize, cap: usize, size: usize| if cap > n { cap * size } else { 0 };
                std::mem::size_of::<Cold>()
                    + spilled(4, c.sums.capacity(), std::mem::size_of::<(Slot, i128)>())
                    + spilled(2, c.steps.capacity(), 2)
            })
    }

    /// The last year out of memory, if any ([`MemberBook::evict_through`]).
    pub fn cold_through(&self) -> Option<u16> {
        self.cold.as_ref().map(|c| c.through)
    }

    /// Whether `year` is out of memory: what the book holds for it must be read back first.
    pub fn is_cold(&self, year: u16) -> bool {
        self.cold.as_ref().is_some_and(|c| year <= c.through)
    }

    /// Whether the book holds in memory a year before its last `keep` (what letting go of
    /// them would free).
    pub fn holds_years_before_last(&self, keep: u16) -> bool {
        let Some(last) = self.last_year() else { return false };
        u32::from(self.first_year()) + u32::from(keep) <= u32::from(last)
    }

    /// The first year of anything in memory (`u16::MAX` for an empty book).
    fn first_year(&self) -> u16 {
        let first = self.months.first().map_or(u16::MAX, |m| m.period.year);
        first.min(self.years.first().map_or(u16::MAX, |y| y.year))
    }

    /// The book's last year, as the years to keep in memory count back from it: its last
    /// premium month's, or without months its last yearly sum's. A member's premiums come
    /// month after month, so their recent months are what the next ones read (a premium paid
    /// twice, the match it awaits); the yearly sums are by value date, which can be years
    /// after the months they pay for (a back payment), and are kept from that year on.
    pub fn last_year(&self) -> Option<u16> {
        match self.months.last() {
            Some(m) => Some(m.period.year),
            None => self.years.last().map(|y| y.year),
        }
    }

    /// Lets go of every year up to `through` that holds no month awaiting its match (a
    /// medical line whose personal and matching parts differ: reports list those, so they
    /// stay in memory, and so does every year after the first of them): their months and
    /// yearly sums leave memory, the yearly sums' totals per account stay. The caller
    /// guarantees that the store holds those years' pages as they are now, and that nothing
    /// changes them until they are read back ([`MemberBook::fault_in`]). Returns whether
    /// anything left memory.
    pub fn evict_through(&mut self, through: u16) -> bool {
        let Some(through) = self.let_go_through(through) else { return false };
        let months = self.months.partition_point(|m| m.period.year <= through);
        let years = self.years.partition_point(|y| y.year <= through);
        if months == 0 && years == 0 {
            return false;
        }
        let pages = self.pages_through(through);
        let cold = self.cold.get_or_insert_with(|| {
            Box::new(Cold {
                through,
                sums: smallvec::SmallVec::new(),
                magnitude: 0,
                steps: smallvec::SmallVec::new(),
                digest: [0; 32],
            })
        });
        cold.through = cold.through.max(through);
        cold.digest = step_digest(&cold.digest, pages.iter().map(|(y, p)| (*y, p.as_slice())));
        cold.steps.push(through);
        for y in self.years.drain(..years) {
            cold.magnitude += u128::from(y.sum.0.unsigned_abs());
            add_to_slot(&mut cold.sums, y.slot, y.sum);
        }
        cold.sums.sort_unstable_by_key(|(s, _)| *s);
        self.months.drain(..months);
        self.months.shrink_to_fit();
        self.years.shrink_to_fit();
        true
    }

    /// The last year [`MemberBook::evict_through`]`(through)` would let go of (`through`, or
    /// the year before the first month awaiting its match), and the pages it would let go of,
    /// in year order (each year in memory up to it: every stored page of the member after
    /// [`MemberBook::cold_through`] and up to it must be one of these, and no other); `None` when
    /// nothing would leave memory.
    pub fn pages_to_let_go(&self, through: u16) -> Option<(u16, YearPages)> {
        let through = self.let_go_through(through)?;
        let pages = self.pages_through(through);
        (!pages.is_empty()).then_some((through, pages))
    }

    /// `through`, or the year before the first month awaiting its match if that is earlier;
    /// `None` when nothing in memory is that old.
    fn let_go_through(&self, through: u16) -> Option<u16> {
        // Nothing that old in memory (most books, most times): no search for a pinned month.
        if self.first_year() > through {
            return None;
        }
        let pinned = self
            .months
            .iter()
            .find(|m| {
                matches!(m.line, Line::Medical | Line::SpouseMedical)
                    && m.money.personal != m.money.state
            })
            .map(|m| m.period.year);
        Some(match pinned {
            Some(year) if year <= through => year.saturating_sub(1),
            _ => through,
        })
    }

    /// Reads back the years out of memory from their stored `pages` (year, bytes; every page
    /// of this member up to [`MemberBook::cold_through`], in any order). The pages must hold
    /// exactly what the book let go of (its digest, each account's total and the magnitudes
    /// of the yearly sums): anything else is an error and the book is left as it was.
    pub fn fault_in<'p>(
        &mut self,
        pages: impl IntoIterator<Item = (u16, &'p [u8])>,
    ) -> Result<(), FaultInError> {
        let Some(cold) = self.cold.as_deref() else { return Ok(()) };
        let mut back = MemberBook::default();
        for (year, bytes) in pages {
            if year > cold.through {
                return Err(FaultInError::Year(year));
            }
            back.push_page(year, bytes).map_err(|source| FaultInError::Page { year, source })?;
        }
        // The digest was taken over the pages as this ledger encodes them
        // (`evict_through`); the stored bytes are read as the book they make and encoded again,
        // so that an encoding that decodes to the same book (an empty page) reads back the same.
        if !back.sort() || !back.is_canonical() {
            return Err(FaultInError::Sums(cold.through));
        }
        let encoded = back.pages_through(cold.through);
        let (mut digest, mut from) = ([0; 32], 0u16);
        for step in &cold.steps {
            let step_pages = encoded.iter().filter(|(y, _)| *y >= from && *y <= *step);
            digest = step_digest(&digest, step_pages.map(|(y, p)| (*y, p.as_slice())));
            from = step.saturating_add(1);
        }
        if digest != cold.digest {
            return Err(FaultInError::Sums(cold.through));
        }
        let magnitude: u128 = back.years.iter().map(|y| u128::from(y.sum.0.unsigned_abs())).sum();
        let sums = back.totals();
        let wanted = cold.sums.iter().filter(|(_, s)| *s != 0);
        if magnitude != cold.magnitude || !sums.iter().filter(|(_, s)| *s != 0).eq(wanted) {
            return Err(FaultInError::Sums(cold.through));
        }
        back.months.extend(self.months.drain(..));
        back.years.extend(self.years.drain(..));
        self.months = back.months;
        self.years = back.years;
        self.cold = None;
        Ok(())
    }

    /// Months holding money, ascending by (period, line).
    pub fn months(&self) -> &[Month] {
        &self.months
    }

    /// Yearly sums, ascending by (year, slot).
    pub fn years(&self) -> &[YearSum] {
        &self.years
    }

    fn month_index(&self, line: Line, period: Period) -> Result<usize, usize> {
        self.months.binary_search_by(|m| (m.period, m.line).cmp(&(period, line)))
    }

    /// The money of `line` in `period`, if any.
    pub fn month(&self, line: Line, period: Period) -> Option<PeriodMoney> {
        self.month_index(line, period).ok().map(|i| self.months[i].money)
    }

    /// The months of `line` holding money, ascending.
    pub fn months_of(&self, line: Line) -> impl Iterator<Item = Period> + '_ {
        self.months.iter().filter(move |m| m.line == line).map(|m| m.period)
    }

    /// Sets the money of `line` in `period`; zero money removes the month.
    pub fn set_month(&mut self, line: Line, period: Period, money: PeriodMoney) {
        match self.month_index(line, period) {
            Ok(i) if money == PeriodMoney::default() => {
                self.months.remove(i);
            }
            Ok(i) => self.months[i].money = money,
            Err(_) if money == PeriodMoney::default() => {}
            Err(i) => self.months.insert(i, Month { period, line, money }),
        }
    }

    fn year_index(&self, slot: Slot, year: u16) -> Result<usize, usize> {
        self.years.binary_search_by(|y| (y.year, y.slot).cmp(&(year, slot)))
    }

    /// The sum of `slot`'s postings with a value date in `year` (zero if none).
    pub fn year_sum(&self, slot: Slot, year: u16) -> Fen {
        self.year_index(slot, year).map_or(Fen(0), |i| self.years[i].sum)
    }

    /// The sum of `slot`'s postings with a value date in the years `from..=to`; `None` when
    /// that needs years out of memory that are not all counted in their totals (the range
    /// does not start at or before [`crate::time::FIRST_YEAR`], or ends among them).
    pub fn sum_through(&self, slot: Slot, from: u16, to: u16) -> Option<i64> {
        let resident: i64 = self
            .years
            .iter()
            .take_while(|y| y.year <= to)
            .filter(|y| y.slot == slot && y.year >= from)
            .map(|y| y.sum.0)
            .sum();
        match &self.cold {
            None => Some(resident),
            Some(c) if from > c.through => Some(resident),
            Some(c) if from <= crate::time::FIRST_YEAR && to >= c.through => {
                i64::try_from(c.sum(slot) + i128::from(resident)).ok()
            }
            Some(_) => None,
        }
    }

    /// The balance of `slot`'s account: the sum of all its yearly sums (every posting to a
    /// member account adds to the sum of its value date's year, so the two are one figure),
    /// those out of memory by their total.
    pub fn balance(&self, slot: Slot) -> Fen {
        let cold = self.cold.as_ref().map_or(0, |c| c.sum(slot));
        balance_of(
            cold + self
                .years
                .iter()
                .filter(|y| y.slot == slot)
                .map(|y| i128::from(y.sum.0))
                .sum::<i128>(),
        )
    }

    /// The sum of the magnitudes of every yearly sum, those out of memory included: a bound on
    /// each of them and on each account's balance.
    pub fn magnitude(&self) -> u128 {
        self.cold.as_ref().map_or(0, |c| c.magnitude)
            + self.years.iter().map(|y| u128::from(y.sum.0.unsigned_abs())).sum::<u128>()
    }

    /// The balance of each account this book has a yearly sum for, each once, in slot order.
    pub fn balances(&self) -> impl Iterator<Item = (Slot, Fen)> + '_ {
        self.totals().into_iter().map(|(slot, sum)| (slot, balance_of(sum)))
    }

    /// The sum of each account's yearly sums, in slot order.
    fn totals(&self) -> smallvec::SmallVec<[(Slot, i128); 4]> {
        let mut slots: smallvec::SmallVec<[(Slot, i128); 4]> =
            self.cold.as_ref().map(|c| c.sums.clone()).unwrap_or_default();
        for y in &self.years {
            add_to_slot(&mut slots, y.slot, y.sum);
        }
        slots.sort_unstable_by_key(|(s, _)| *s);
        slots
    }

    /// Whether every account's balance (the sum of its yearly sums) is within an i64, as the
    /// rules keep it: a stored book whose sums pass it is not one this ledger wrote.
    pub(super) fn balances_fit(&self) -> bool {
        self.totals().iter().all(|(_, sum)| i64::try_from(*sum).is_ok())
    }

    /// Adds `delta` to `slot`'s sum of `year`; a sum that comes to zero is removed.
    pub fn add_year(&mut self, slot: Slot, year: u16, delta: Fen) {
        match self.year_index(slot, year) {
            Ok(i) => {
                let sum = self.years[i].sum.checked_add(delta).expect("bounded amounts");
                if sum.0 == 0 {
                    self.years.remove(i);
                } else {
                    self.years[i].sum = sum;
                }
            }
            Err(_) if delta.0 == 0 => {}
            Err(i) => self.years.insert(i, YearSum { year, slot, sum: delta }),
        }
    }

    /// The years this book holds anything for (a month of that year, or a sum), ascending,
    /// each once.
    pub fn page_years(&self) -> Vec<u16> {
        let mut years: Vec<u16> = self.months.iter().map(|m| m.period.year).collect();
        years.extend(self.years.iter().map(|y| y.year));
        years.sort_unstable();
        years.dedup();
        years
    }

    /// Each year up to `through` the book holds anything for, with its encoded page, in year
    /// order: what letting go of them leaves in the store, and what reading them back must
    /// give again ([`Cold::digest`]).
    fn pages_through(&self, through: u16) -> YearPages {
        self.page_years()
            .into_iter()
            .take_while(|y| *y <= through)
            .filter_map(|y| Some((y, self.page(y)?)))
            .collect()
    }

    /// The encoded page of `year` (docs/FORMAT.md §4), or `None` if the book holds nothing for
    /// that year.
    pub fn page(&self, year: u16) -> Option<Vec<u8>> {
        self.page_of(year).map(|page| page.encode())
    }

    /// The page of `year`, copied out of the book and not yet encoded ([`Page::encode`]), or
    /// `None` if the book holds nothing for that year.
    pub fn page_of(&self, year: u16) -> Option<Page> {
        let months = self.months.partition_point(|m| m.period.year < year);
        let months: Vec<(u8, Line, PeriodMoney)> = self.months[months..]
            .iter()
            .take_while(|m| m.period.year == year)
            .map(|m| (m.period.month, m.line, m.money))
            .collect();
        let years = self.years.partition_point(|y| y.year < year);
        let sums: Vec<(Slot, Fen)> = self.years[years..]
            .iter()
            .take_while(|y| y.year == year)
            .map(|y| (y.slot, y.sum))
            .collect();
        if months.is_empty() && sums.is_empty() {
            return None;
        }
        Some(Page { months, sums })
    }

    /// Appends the decoded page of `year`. The caller checks the book's order at the end
    /// ([`MemberBook::is_canonical`]), so pages may come in any order.
    ///
    /// The bytes are those of [`Page`] (docs/FORMAT.md §4), read element by element with
    /// bincode's own decoders straight into the book's two vectors, with no vector of the page's
    /// own in between (a million members' pages are most of an open's records): the same
    /// values, and the same failures, as `decode::<Page>` (a property test holds them equal).
    pub(super) fn push_page(&mut self, year: u16, value: &[u8]) -> Result<(), DecodeError> {
        use bincode::de::{Decode, Decoder, DecoderImpl};
        let malformed = |e: bincode::error::DecodeError| DecodeError::Malformed(e.to_string());
        let mut d = DecoderImpl::new(crate::entry::Remaining(value), crate::entry::config(), ());
        // A list's length, then as many elements (bincode's `Vec`); a length the bytes could
        // not fill (each element takes four bytes at least) is refused before any room is
        // made for it.
        let length = |d: &mut DecoderImpl<_, _, ()>| -> Result<usize, DecodeError> {
            let n = u64::decode(d).map_err(malformed)?;
            usize::try_from(n)
                .ok()
                .filter(|n| *n <= value.len() / 4)
                .ok_or_else(|| DecodeError::Malformed(format!("a page list of {n} elements")))
        };
        let months = length(&mut d)?;
        self.months.reserve(months);
        for _ in 0..months {
            let (month, line, money) =
                <(u8, Line, PeriodMoney)>::decode(&mut d).map_err(malformed)?;
            self.months.push(Month { period: Period { year, month }, line, money });
        }
        let sums = length(&mut d)?;
        self.years.reserve(sums);
        for _ in 0..sums {
            let (slot, sum) = <(Slot, Fen)>::decode(&mut d).map_err(malformed)?;
            self.years.push(YearSum { year, slot, sum });
        }
        match d.reader().0.len() {
            0 => Ok(()),
            left => Err(DecodeError::TrailingBytes(left)),
        }
    }

    /// Appends the months and sums of `other` (a later page of the same member).
    pub(super) fn append(&mut self, mut other: MemberBook) {
        self.months.append(&mut other.months);
        self.years.append(&mut other.years);
    }

    /// A month read from a record of the per-month layout (state format 2).
    pub(super) fn push_month(&mut self, line: Line, period: Period, money: PeriodMoney) {
        self.months.push(Month { period, line, money });
    }

    /// A yearly sum read from a record of the per-account layout (state format 2).
    pub(super) fn push_year(&mut self, slot: Slot, year: u16, sum: Fen) {
        self.years.push(YearSum { year, slot, sum });
    }

    /// Whether the book is in its canonical form (strictly ascending, no zero).
    pub(super) fn is_canonical(&self) -> bool {
        self.months.windows(2).all(|w| (w[0].period, w[0].line) < (w[1].period, w[1].line))
            && self.months.iter().all(|m| m.money != PeriodMoney::default())
            && self.years.windows(2).all(|w| (w[0].year, w[0].slot) < (w[1].year, w[1].slot))
            && self.years.iter().all(|y| y.sum.0 != 0)
    }

    /// Whether the book is canonical, once sorted if it was read in another order, with every
    /// account's balance within an i64.
    pub(super) fn make_canonical(&mut self) -> bool {
        (self.is_canonical() || (self.sort() && self.is_canonical())) && self.balances_fit()
    }

    /// Sorts a book read in another order; false if two records name the same month or year
    /// sum.
    pub(super) fn sort(&mut self) -> bool {
        self.months.sort_by_key(|m| (m.period, m.line));
        self.years.sort_by_key(|y| (y.year, y.slot));
        self.months.windows(2).all(|w| (w[0].period, w[0].line) != (w[1].period, w[1].line))
            && self.years.windows(2).all(|w| (w[0].year, w[0].slot) != (w[1].year, w[1].slot))
    }
}

/// Adds `sum` to `slot`'s total in `sums` (a new total at the end if it has none yet).
fn add_to_slot(sums: &mut smallvec::SmallVec<[(Slot, i128); 4]>, slot: Slot, sum: Fen) {
    match sums.iter_mut().find(|(s, _)| *s == slot) {
        Some((_, total)) => *total += i128::from(sum.0),
        None => sums.push((slot, i128::from(sum.0))),
    }
}

impl Cold {
    /// The total of `slot`'s cold yearly sums.
    fn sum(&self, slot: Slot) -> i128 {
        self.sums.iter().find(|(s, _)| *s == slot).map_or(0, |(_, sum)| *sum)
    }
}

/// An account's balance from the sum of its yearly sums: within an i64, as the rules keep it
/// (and an open refuses a stored book whose sums pass it, [`MemberBook::balances_fit`]).
fn balance_of(sum: i128) -> Fen {
    Fen(i64::try_from(sum).expect("balances stay within i64 (checked by the rules)"))
}

/// The stored form of one member-year page: the months of that year (month, line, money) and
/// the yearly sums of that year (slot, sum), each in the book's order.
#[derive(Debug, bincode::Encode, bincode::Decode)]
pub struct Page {
    months: Vec<(u8, Line, PeriodMoney)>,
    sums: Vec<(Slot, Fen)>,
}

impl Page {
    /// The stored bytes of the page.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(year: u16, month: u8) -> Period {
        Period { year, month }
    }

    fn money(n: i64) -> PeriodMoney {
        PeriodMoney { personal: Fen(n), state: Fen(0) }
    }

    #[test]
    fn a_book_stays_canonical_whatever_the_order_of_changes() {
        let slot = Slot { fund: Fund::Medical, part: None, holding: Holding::Personal };
        let mut a = MemberBook::default();
        let mut b = MemberBook::default();
        for (i, (y, m)) in [(2024, 3), (2023, 12), (2024, 1), (2025, 7)].into_iter().enumerate() {
            a.set_month(Line::Medical, p(y, m), money(i as i64 + 1));
            a.add_year(slot, y, Fen(5));
        }
        for (i, (y, m)) in [(2025, 7), (2024, 1), (2023, 12), (2024, 3)].into_iter().enumerate() {
            b.set_month(Line::Medical, p(y, m), money(4 - i as i64));
            b.add_year(slot, y, Fen(5));
        }
        assert_eq!(a, b);
        assert!(a.is_canonical());
        assert_eq!(a.year_sum(slot, 2024), Fen(10));
        assert_eq!(a.sum_through(slot, 1949, 2024), Some(15));
        a.set_month(Line::Medical, p(2024, 1), PeriodMoney::default());
        a.add_year(slot, 2025, Fen(-5));
        assert_eq!(a.month(Line::Medical, p(2024, 1)), None);
        assert_eq!(a.year_sum(slot, 2025), Fen(0));
        assert!(a.is_canonical());
        // Pages round-trip, in any order.
        let mut c = MemberBook::default();
        for year in a.page_years().into_iter().rev() {
            c.push_page(year, &a.page(year).unwrap()).unwrap();
        }
        assert!(c.sort());
        assert_eq!(a, c);
    }

    #[test]
    fn years_let_go_of_read_back_as_they_were_and_only_as_they_were() {
        let personal = Slot { fund: Fund::Medical, part: None, holding: Holding::Personal };
        let state = Slot { fund: Fund::Medical, part: None, holding: Holding::State };
        let mut book = MemberBook::default();
        for year in 2019..=2024u16 {
            for month in [1u8, 6, 12] {
                let both = PeriodMoney { personal: Fen(100), state: Fen(100) };
                book.set_month(Line::Medical, p(year, month), both);
            }
            book.add_year(personal, year, Fen(300));
            book.add_year(state, year, Fen(300 - i64::from(year % 2) * 600));
        }
        let whole = book.clone();
        let stored: Vec<(u16, Vec<u8>)> =
            whole.page_years().into_iter().map(|y| (y, whole.page(y).unwrap())).collect();
        assert!(book.evict_through(2022));
        assert_eq!(book.cold_through(), Some(2022));
        assert!(book.is_cold(2019) && book.is_cold(2022) && !book.is_cold(2023));
        assert_eq!(book.months().first().unwrap().period, p(2023, 1));
        // Balances and the bound count the years out of memory.
        assert_eq!(book.balance(personal), whole.balance(personal));
        assert_eq!(book.balance(state), whole.balance(state));
        assert_eq!(book.balances().collect::<Vec<_>>(), whole.balances().collect::<Vec<_>>());
        assert_eq!(book.magnitude(), whole.magnitude());
        // A year's end balance from the first year on is known; a range inside the cold years
        // is not.
        assert_eq!(book.sum_through(personal, 1949, 2023), whole.sum_through(personal, 1949, 2023));
        assert_eq!(book.sum_through(personal, 1949, 2021), None);
        assert_eq!(book.sum_through(personal, 2020, 2024), None);
        assert_eq!(book.sum_through(personal, 2023, 2024), whole.sum_through(personal, 2023, 2024));
        // Pages that are not what was let go of are refused, and change nothing.
        let before = book.clone();
        let short: Vec<_> = stored.iter().filter(|(y, _)| *y != 2020 && *y <= 2022).collect();
        assert!(matches!(
            book.fault_in(short.iter().map(|(y, v)| (*y, v.as_slice()))),
            Err(FaultInError::Sums(2022))
        ));
        let mut changed = stored.clone();
        changed[1].1 = whole.page(2019).unwrap();
        let changed: Vec<_> = changed.iter().filter(|(y, _)| *y <= 2022).collect();
        assert!(book.fault_in(changed.iter().map(|(y, v)| (*y, v.as_slice()))).is_err());
        assert!(matches!(
            book.fault_in(stored.iter().map(|(y, v)| (*y, v.as_slice()))),
            Err(FaultInError::Year(2023))
        ));
        assert_eq!(book, before);
        // The right pages, in any order, give the book back whole; a stored page holding
        // nothing (not one this ledger writes, but the same book) changes nothing.
        let empty = Page { months: Vec::new(), sums: Vec::new() }.encode();
        let mut right: Vec<(u16, &[u8])> = stored
            .iter()
            .rev()
            .filter(|(y, _)| *y <= 2022)
            .map(|(y, v)| (*y, v.as_slice()))
            .collect();
        right.push((2017, &empty));
        book.fault_in(right).unwrap();
        assert_eq!(book, whole);
    }

    #[test]
    fn a_month_awaiting_its_match_keeps_its_year_and_the_later_ones_in_memory() {
        let mut book = MemberBook::default();
        let both = PeriodMoney { personal: Fen(100), state: Fen(100) };
        for year in 2019..=2024u16 {
            book.set_month(Line::Medical, p(year, 3), both);
        }
        book.set_month(
            Line::Medical,
            p(2021, 7),
            PeriodMoney { personal: Fen(100), state: Fen(0) },
        );
        assert!(book.evict_through(2023));
        assert_eq!(book.cold_through(), Some(2020));
        assert_eq!(book.month(Line::Medical, p(2021, 7)).unwrap().state, Fen(0));
        // Nothing more to let go of while it awaits.
        assert!(!book.evict_through(2023));
    }

    /// What `decode::<Page>` makes of some bytes, as [`MemberBook::push_page`] puts it in a
    /// book (the decoding the page had before it read element by element).
    fn pushed_whole(year: u16, bytes: &[u8]) -> Result<MemberBook, DecodeError> {
        let page: Page = crate::entry::decode(bytes)?;
        let mut book = MemberBook::default();
        book.months.extend(page.months.into_iter().map(|(month, line, money)| Month {
            period: p(year, month),
            line,
            money,
        }));
        book.years.extend(page.sums.into_iter().map(|(slot, sum)| YearSum { year, slot, sum }));
        Ok(book)
    }

    fn kind(e: &DecodeError) -> &'static str {
        match e {
            DecodeError::TrailingBytes(_) => "trailing",
            _ => "malformed",
        }
    }

    proptest::proptest! {
        /// A page read element by element gives the book `decode::<Page>` gives, for pages
        /// as stored and for any bytes: cut short, with bytes after it, changed anywhere.
        #[test]
        fn a_page_read_element_by_element_is_the_page_decoded_whole(
            months in proptest::collection::vec((1u8..=12, 0u8..3, -99i64..99_999, -99i64..99_999), 0..14),
            sums in proptest::collection::vec((0u8..4, proptest::option::of(0u8..2), 0u8..4, proptest::num::i64::ANY), 0..6),
            cut in 0usize..200,
            extra in proptest::collection::vec(proptest::num::u8::ANY, 0..3),
            flip in (0usize..200, proptest::num::u8::ANY),
        ) {
            let line = |n: u8| [Line::Medical, Line::SpousePension, Line::SpouseMedical][usize::from(n)];
            let fund = |n: u8| [Fund::Casualty, Fund::Pension, Fund::Medical, Fund::Spouse][usize::from(n)];
            let part = |n: u8| [SpousePart::Pension, SpousePart::Medical][usize::from(n)];
            let holding = |n: u8| [Holding::Personal, Holding::State, Holding::Interest, Holding::TransferredIn][usize::from(n)];
            let page = Page {
                months: months
                    .iter()
                    .map(|(m, l, a, b)| (*m, line(*l), PeriodMoney { personal: Fen(*a), state: Fen(*b) }))
                    .collect(),
                sums: sums
                    .iter()
                    .map(|(f, pt, h, s)| (Slot { fund: fund(*f), part: pt.map(part), holding: holding(*h) }, Fen(*s)))
                    .collect(),
            };
            let stored = page.encode();
            let mut variants = vec![stored.clone(), stored[..cut.min(stored.len())].to_vec()];
            variants.push([stored.as_slice(), &extra].concat());
            let mut flipped = stored.clone();
            if !flipped.is_empty() {
                let at = flip.0 % flipped.len();
                flipped[at] ^= flip.1;
            }
            variants.push(flipped);
            for bytes in variants {
                let mut streamed = MemberBook::default();
                let got = streamed.push_page(2024, &bytes).map(|()| streamed);
                match (got, pushed_whole(2024, &bytes)) {
                    (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
                    (Err(a), Err(b)) => proptest::prop_assert_eq!(kind(&a), kind(&b), "{} / {}", a, b),
                    (a, b) => proptest::prop_assert!(false, "{:?} against {:?} for {:?}", a, b, bytes),
                }
            }
        }
    }
}
