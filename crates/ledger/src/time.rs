//! Dates and periods as they are stored and hashed: plain integers, no time zone.

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// A calendar date, stored as days since 1970-01-01 (may be negative).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub struct Date(pub i32);

/// A month of premiums, `YYYY-MM`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub struct Period {
    pub year: u16,
    pub month: u8,
}

/// Earliest and latest dates the ledger accepts: the law's era, with room on both sides.
const YEAR_MIN: i32 = 1949;

/// The first year of a date the ledger accepts.
pub const FIRST_YEAR: u16 = 1949;
const YEAR_MAX: i32 = 2199;

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a valid date")
}

impl Date {
    /// Parses `YYYY-MM-DD` strictly (zero-padded, a real calendar day, years 1949–2199).
    pub fn parse(text: &str) -> Result<Date, String> {
        let bytes = text.as_bytes();
        let shape_ok = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes.iter().enumerate().all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shape_ok {
            return Err("expected a date YYYY-MM-DD".to_string());
        }
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| "not a calendar date".to_string())?;
        if !(YEAR_MIN..=YEAR_MAX).contains(&date.year()) {
            return Err(format!("year outside {YEAR_MIN}–{YEAR_MAX}"));
        }
        Ok(Date::from_naive(date))
    }

    pub fn from_naive(date: NaiveDate) -> Date {
        let days = date.signed_duration_since(epoch()).num_days();
        Date(i32::try_from(days).expect("dates within chrono's range fit i32 days"))
    }

    /// The calendar date. Stored bytes may hold any `i32` (a corrupted or hostile entry):
    /// days beyond chrono's range saturate to its first or last date instead of panicking;
    /// `Entry::from_canonical_bytes` refuses such value dates (`is_in_range`).
    pub fn to_naive(self) -> NaiveDate {
        epoch()
            .checked_add_signed(chrono::Duration::days(i64::from(self.0)))
            .unwrap_or(if self.0 < 0 { NaiveDate::MIN } else { NaiveDate::MAX })
    }

    /// True for dates of the years the ledger accepts (1949–2199).
    pub fn is_in_range(self) -> bool {
        (YEAR_MIN..=YEAR_MAX).contains(&self.to_naive().year())
    }

    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        NaiveDate::from_ymd_opt(year, month, day).map(Date::from_naive)
    }

    pub fn period(self) -> Period {
        let d = self.to_naive();
        Period {
            // Out-of-range dates (refused on input and on decode) give year 0, not a panic.
            year: u16::try_from(d.year()).unwrap_or(0),
            month: u8::try_from(d.month()).expect("months are 1..=12"),
        }
    }

    /// Whole months from `self` to `end` (a month counts once its day-of-month is reached).
    /// Zero when `end` is not after `self`.
    pub fn whole_months_until(self, end: Date) -> i64 {
        if end <= self {
            return 0;
        }
        let (a, b) = (self.to_naive(), end.to_naive());
        let mut months =
            i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month());
        if b.day() < a.day() {
            months -= 1;
        }
        months.max(0)
    }
}

impl Date {
    pub fn next_day(self) -> Date {
        // Saturating: a stored (corrupted) date of i32::MAX days must not panic.
        Date(self.0.saturating_add(1))
    }

    /// Whole months and remaining days of service from `self` to `last_day`, both inclusive:
    /// service from 2023-09-01 to 2025-08-31 is 24 months and 0 days.
    pub fn service_until(self, last_day: Date) -> (i64, i64) {
        let end = last_day.next_day();
        let months = self.whole_months_until(end);
        if end <= self {
            return (0, 0);
        }
        let after = self
            .to_naive()
            .checked_add_months(chrono::Months::new(u32::try_from(months).unwrap_or(0)))
            .map_or(end, Date::from_naive);
        (months, i64::from((end.0 - after.0).max(0)))
    }
}

/// In JSON a date is `YYYY-MM-DD`.
impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// In JSON a period is `YYYY-MM`.
impl serde::Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_naive().format("%Y-%m-%d"))
    }
}

impl Period {
    /// Parses `YYYY-MM` strictly.
    pub fn parse(text: &str) -> Result<Period, String> {
        let bytes = text.as_bytes();
        let shape_ok = bytes.len() == 7
            && bytes[4] == b'-'
            && bytes.iter().enumerate().all(|(i, b)| i == 4 || b.is_ascii_digit());
        if !shape_ok {
            return Err("expected a period YYYY-MM".to_string());
        }
        let year: u16 = text[..4].parse().map_err(|_| "bad year".to_string())?;
        let month: u8 = text[5..].parse().map_err(|_| "bad month".to_string())?;
        if !(1..=12).contains(&month) {
            return Err("month must be 01–12".to_string());
        }
        if !(YEAR_MIN..=YEAR_MAX).contains(&i32::from(year)) {
            return Err(format!("year outside {YEAR_MIN}–{YEAR_MAX}"));
        }
        Ok(Period { year, month })
    }

    /// The first day of the period.
    pub fn first_day(self) -> Date {
        // A parsed period is a valid month; a decoded one (stored bytes) may not be: its month
        // is clamped into 1..=12 rather than panicking.
        Date::from_ymd(i32::from(self.year), u32::from(self.month.clamp(1, 12)), 1)
            .unwrap_or(Date(0))
    }

    /// The last day of the period.
    pub fn last_day(self) -> Date {
        let next = if self.month >= 12 {
            Period { year: self.year.saturating_add(1), month: 1 }
        } else {
            Period { year: self.year, month: self.month + 1 }
        };
        Date(next.first_day().0.saturating_sub(1))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Art. 51: the Servicemen Insurance Law took effect on 1 July 2012 — a fact of the law, not a
/// standard (rates and amounts are standards, recorded in the journal).
pub fn law_in_force() -> Date {
    Date::from_ymd(2012, 7, 1).expect("1 July 2012 is a date")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_reject_sloppy_text() {
        let d = Date::parse("2019-02-28").unwrap();
        assert_eq!(d.to_string(), "2019-02-28");
        for bad in ["2019-2-28", "2019-02-29", "20190228", "2019-02-28T00", "1900-01-01"] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Date::parse("1970-01-01").unwrap(), Date(0));
    }

    #[test]
    fn whole_months_count_reached_days_only() {
        let a = Date::parse("2018-09-10").unwrap();
        assert_eq!(a.whole_months_until(Date::parse("2020-09-10").unwrap()), 24);
        assert_eq!(a.whole_months_until(Date::parse("2020-09-09").unwrap()), 23);
        assert_eq!(a.whole_months_until(Date::parse("2018-09-01").unwrap()), 0);
    }

    #[test]
    fn service_counts_the_last_day_so_a_full_term_is_24_months() {
        let d = |t| Date::parse(t).unwrap();
        assert_eq!(d("2023-09-01").service_until(d("2025-08-31")), (24, 0));
        assert_eq!(d("2023-09-01").service_until(d("2023-09-10")), (0, 10));
        assert_eq!(d("2024-09-01").service_until(d("2025-11-10")), (14, 10));
        assert_eq!(d("2024-01-31").service_until(d("2024-02-28")), (0, 29));
    }

    #[test]
    fn periods_parse_strictly() {
        assert_eq!(Period::parse("2024-03").unwrap().to_string(), "2024-03");
        assert!(Period::parse("2024-13").is_err());
        assert!(Period::parse("2024-3").is_err());
        assert_eq!(Period::parse("2024-02").unwrap().last_day().to_string(), "2024-02-29");
    }
}
