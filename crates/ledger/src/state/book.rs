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
/// Each list is one word in the book (`ThinVec`: its length lives with its elements): a map of a
/// million books then takes 56 bytes a slot instead of 88.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberBook {
    months: ThinVec<Month>,
    years: ThinVec<YearSum>,
}

impl MemberBook {
    pub fn is_empty(&self) -> bool {
        self.months.is_empty() && self.years.is_empty()
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

    /// The sum of `slot`'s postings with a value date in the years `from..=to`.
    pub fn sum_through(&self, slot: Slot, from: u16, to: u16) -> i64 {
        self.years
            .iter()
            .take_while(|y| y.year <= to)
            .filter(|y| y.slot == slot && y.year >= from)
            .map(|y| y.sum.0)
            .sum()
    }

    /// The balance of `slot`'s account: the sum of all its yearly sums (every posting to a
    /// member account adds to the sum of its value date's year, so the two are one figure).
    pub fn balance(&self, slot: Slot) -> Fen {
        balance_of(self.years.iter().filter(|y| y.slot == slot).map(|y| i128::from(y.sum.0)).sum())
    }

    /// The balance of each account this book has a yearly sum for, each once, in slot order.
    pub fn balances(&self) -> impl Iterator<Item = (Slot, Fen)> + '_ {
        self.totals().into_iter().map(|(slot, sum)| (slot, balance_of(sum)))
    }

    /// The sum of each account's yearly sums, in slot order.
    fn totals(&self) -> smallvec::SmallVec<[(Slot, i128); 4]> {
        let mut slots: smallvec::SmallVec<[(Slot, i128); 4]> = smallvec::SmallVec::new();
        for y in &self.years {
            match slots.iter_mut().find(|(s, _)| *s == y.slot) {
                Some((_, sum)) => *sum += i128::from(y.sum.0),
                None => slots.push((y.slot, i128::from(y.sum.0))),
            }
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
        assert_eq!(a.sum_through(slot, 1949, 2024), 15);
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
