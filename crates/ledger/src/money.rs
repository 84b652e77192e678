//! Money as integer fen (1/100 yuan). Decimal text is parsed and printed only at the edges.
//!
//! Architecture invariant: no floating point anywhere on a money path. Parsing goes through
//! `rust_decimal` and rejects more than two decimals instead of rounding; ledger-computed
//! amounts (a rate times a wage) round half away from zero to the fen, see [`Fen::mul_ppm`].

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Largest absolute amount the ledger accepts in one field: 10^15 fen (10 trillion yuan).
/// Far above any real figure, far below `i64::MAX`, so sums of many amounts cannot overflow.
pub const AMOUNT_FEN_MAX: i64 = 1_000_000_000_000_000;

/// An amount of money in fen. Signed: postings use debit-positive amounts.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    bincode::Encode,
    bincode::Decode,
)]
pub struct Fen(pub i64);

/// In JSON an amount is its decimal text (`"123.45"`), as everywhere the ledger prints money.
impl serde::Serialize for Fen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a money string was refused. Messages are written for the person who typed the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    #[error("not a decimal amount (expected yuan with at most two decimals, like \"92.00\")")]
    NotDecimal,
    #[error("more than two decimals")]
    TooManyDecimals,
    #[error("amount exceeds the limit of 10 trillion yuan")]
    TooLarge,
    #[error("must be greater than zero")]
    NotPositive,
}

impl Fen {
    pub const ZERO: Fen = Fen(0);

    /// Parses yuan text such as `"92.00"`, `"5"`, `"0.5"`. Refuses exponents, signs other than
    /// a leading minus, spaces, and anything with more than two decimals.
    pub fn parse_yuan(text: &str) -> Result<Fen, MoneyError> {
        // "1.230" has scale 3 even though it is a whole number of fen: the contract says
        // "at most two decimals", so the written precision is what counts.
        let value = parse_plain_decimal(text, true, 2)?;
        // Scale ≤ 2, so the product is a whole number of fen and `to_i64` loses nothing.
        let fen = value
            .checked_mul(Decimal::ONE_HUNDRED)
            .and_then(|d| d.to_i64())
            .ok_or(MoneyError::TooLarge)?;
        if fen.abs() > AMOUNT_FEN_MAX {
            return Err(MoneyError::TooLarge);
        }
        Ok(Fen(fen))
    }

    /// Like [`Fen::parse_yuan`] but the amount must be strictly positive.
    pub fn parse_positive(text: &str) -> Result<Fen, MoneyError> {
        let fen = Fen::parse_yuan(text)?;
        if fen.0 <= 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(fen)
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    /// `self × ppm / 1,000,000`, rounded half away from zero to the fen.
    ///
    /// Rates are held in parts per million (20 % = 200,000 ppm), so a rate with up to four
    /// decimals of a percent is exact. The product is formed in `i128` and cannot overflow for
    /// amounts within [`AMOUNT_FEN_MAX`] and rates within 10^9 ppm.
    pub fn mul_ppm(self, ppm: i64) -> Fen {
        Fen(div_round_half_away(i128::from(self.0) * i128::from(ppm), 1_000_000))
    }

    /// [`Fen::mul_ppm`], `None` when the product does not fit (amounts or rates beyond the
    /// bounds that function assumes).
    pub fn checked_mul_ppm(self, ppm: i64) -> Option<Fen> {
        let product = i128::from(self.0).checked_mul(i128::from(ppm))?;
        let quotient = product / 1_000_000;
        let remainder = product % 1_000_000;
        let rounded =
            if remainder.abs() * 2 >= 1_000_000 { quotient + product.signum() } else { quotient };
        i64::try_from(rounded).ok().map(Fen)
    }

    /// `self × n` for counts (months, years), checked.
    pub fn checked_mul_count(self, n: i64) -> Option<Fen> {
        self.0.checked_mul(n).map(Fen)
    }

    /// Yuan with exactly two decimals, as every output shows money.
    pub fn to_yuan_string(self) -> String {
        self.to_string()
    }
}

/// `numerator / denominator` rounded half away from zero. `denominator` must be positive.
pub fn div_round_half_away(numerator: i128, denominator: i128) -> i64 {
    assert!(denominator > 0, "rounding divisor must be positive");
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    let rounded =
        if remainder.abs() * 2 >= denominator { quotient + numerator.signum() } else { quotient };
    i64::try_from(rounded).expect("rounded amount fits i64: inputs are bounded by AMOUNT_FEN_MAX")
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl FromStr for Fen {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fen::parse_yuan(s)
    }
}

/// Parses plain decimal text: digits with at most one inner `.`, and a leading `-` where
/// allowed. No exponent, `+`, spaces or separators; more than `decimals_max` decimals is an
/// error, never rounded.
fn parse_plain_decimal(
    text: &str,
    allow_minus: bool,
    decimals_max: u32,
) -> Result<Decimal, MoneyError> {
    let digits = if allow_minus { text.strip_prefix('-').unwrap_or(text) } else { text };
    let shape_ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && !digits.starts_with('.')
        && !digits.ends_with('.')
        && digits.matches('.').count() <= 1;
    if !shape_ok {
        return Err(MoneyError::NotDecimal);
    }
    let value = Decimal::from_str_exact(text).map_err(|_| MoneyError::NotDecimal)?;
    if value.scale() > decimals_max {
        return Err(MoneyError::TooManyDecimals);
    }
    Ok(value)
}

/// A rate in parts per million, parsed from a percent with at most four decimals
/// (`"20"` → 200,000 ppm, `"1.5"` → 15,000 ppm).
pub fn parse_percent_ppm(text: &str) -> Result<i64, MoneyError> {
    let value = parse_plain_decimal(text, false, 4)?;
    // Scale ≤ 4, so the product is whole.
    let ppm = value
        .checked_mul(Decimal::from(10_000))
        .and_then(|d| d.to_i64())
        .ok_or(MoneyError::TooLarge)?;
    if ppm > 1_000_000_000 {
        return Err(MoneyError::TooLarge);
    }
    Ok(ppm)
}

/// Prints ppm as a percent without trailing zeros (`200000` → `"20"`, `15000` → `"1.5"`).
pub fn ppm_to_percent_string(ppm: i64) -> String {
    let value = Decimal::new(ppm, 4).normalize();
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_examples() {
        let table = [
            ("92.00", Ok(Fen(9200))),
            ("5", Ok(Fen(500))),
            ("0.5", Ok(Fen(50))),
            ("0.05", Ok(Fen(5))),
            ("-3.10", Ok(Fen(-310))),
            ("1.234", Err(MoneyError::TooManyDecimals)),
            ("1.230", Err(MoneyError::TooManyDecimals)),
            ("1e3", Err(MoneyError::NotDecimal)),
            (" 5", Err(MoneyError::NotDecimal)),
            ("+5", Err(MoneyError::NotDecimal)),
            ("", Err(MoneyError::NotDecimal)),
            (".5", Err(MoneyError::NotDecimal)),
            ("5.", Err(MoneyError::NotDecimal)),
            ("1.2.3", Err(MoneyError::NotDecimal)),
            ("-.5", Err(MoneyError::NotDecimal)),
            ("--5", Err(MoneyError::NotDecimal)),
            ("10000000000000.00", Ok(Fen(AMOUNT_FEN_MAX))),
            ("10000000000000.01", Err(MoneyError::TooLarge)),
            ("99999999999999999999999999", Err(MoneyError::TooLarge)),
        ];
        for (text, expected) in table {
            assert_eq!(Fen::parse_yuan(text), expected, "input {text:?}");
        }
    }

    #[test]
    fn prints_exactly_two_decimals() {
        assert_eq!(Fen(9200).to_string(), "92.00");
        assert_eq!(Fen(5).to_string(), "0.05");
        assert_eq!(Fen(-310).to_string(), "-3.10");
        assert_eq!(Fen(0).to_string(), "0.00");
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        // 1 % of 123.50 = 1.235 → 1.24
        assert_eq!(Fen(12350).mul_ppm(10_000), Fen(124));
        // 1 % of 123.49 = 1.2349 → 1.23
        assert_eq!(Fen(12349).mul_ppm(10_000), Fen(123));
        assert_eq!(Fen(-12350).mul_ppm(10_000), Fen(-124));
    }

    #[test]
    fn percent_parses_to_ppm() {
        assert_eq!(parse_percent_ppm("20"), Ok(200_000));
        assert_eq!(parse_percent_ppm("1.5"), Ok(15_000));
        assert_eq!(parse_percent_ppm("0.0001"), Ok(1));
        assert_eq!(parse_percent_ppm("0.00001"), Err(MoneyError::TooManyDecimals));
        assert_eq!(ppm_to_percent_string(200_000), "20");
        assert_eq!(ppm_to_percent_string(15_000), "1.5");
    }
}
