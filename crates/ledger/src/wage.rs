//! The contribution wage: the pay in force month by month over the service (Art. 13-14 for the
//! pension subsidy, the transfer package's yearly wages, the Art. 29 computations over months
//! of service). One function for the pay of a month and one for the months of a service, so
//! that the rules and the package count the same months.

use std::collections::BTreeMap;

use crate::money::Fen;
use crate::time::Date;

/// The monthly pay in force on `date` in `pays` (dated, in date order, the first the enrolment
/// pay); before the first date, the first pay; zero for no pays at all.
pub fn pay_on(pays: &[(Date, Fen)], date: Date) -> Fen {
    let i = pays.partition_point(|(from, _)| *from <= date);
    pays.get(i.saturating_sub(1)).map_or(Fen::ZERO, |(_, pay)| *pay)
}

/// The contribution wage per calendar year: for each of `months` whole months of service from
/// `enlisted_on` (month `i` starts `i` calendar months after the enrolment date), the pay in
/// force at the start of the month, summed by the year the month starts in.
pub fn wages_by_year(
    enlisted_on: Date,
    pays: &[(Date, Fen)],
    months: i64,
) -> Result<BTreeMap<i32, Fen>, String> {
    let start = enlisted_on.to_naive();
    let mut wages: BTreeMap<i32, Fen> = BTreeMap::new();
    for i in 0..months {
        let offset = u32::try_from(i).map_err(|_| "months out of range")?;
        let Some(d) = start.checked_add_months(chrono::Months::new(offset)) else {
            return Err("service dates out of range".into());
        };
        let w = wages.entry(chrono::Datelike::year(&d)).or_default();
        *w = w
            .checked_add(pay_on(pays, Date::from_naive(d)))
            .ok_or("contribution wage overflows")?;
    }
    Ok(wages)
}

/// The sum of [`wages_by_year`]: the pay over `months` months of service.
pub fn wage_over_months(
    enlisted_on: Date,
    pays: &[(Date, Fen)],
    months: i64,
) -> Result<Fen, String> {
    wages_by_year(enlisted_on, pays, months)?
        .values()
        .try_fold(Fen::ZERO, |total, w| total.checked_add(*w))
        .ok_or_else(|| "contribution wage overflows".to_string())
}

/// Art. 13-14: the pension subsidy's unit and personal parts of a year's contribution wage, at
/// the rates (parts per million) in force on the discharge date.
pub fn pension_parts(wage: Fen, rates_ppm: (i64, i64)) -> Result<(Fen, Fen), String> {
    let part = |rate: i64| {
        wage.checked_mul_ppm(rate)
            .ok_or_else(|| format!("the pension subsidy part of {wage} at {rate} ppm overflows"))
    };
    Ok((part(rates_ppm.0)?, part(rates_ppm.1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        Date::parse(text).expect("a date")
    }

    #[test]
    fn wages_follow_the_pay_in_force_at_the_start_of_each_month() {
        let pays = [(d("2024-11-15"), Fen(100)), (d("2025-01-15"), Fen(200))];
        let w = wages_by_year(d("2024-11-15"), &pays, 4).expect("in range");
        // 2024-11-15, 2024-12-15 at 1.00; 2025-01-15, 2025-02-15 at 2.00.
        assert_eq!(w.get(&2024), Some(&Fen(200)));
        assert_eq!(w.get(&2025), Some(&Fen(400)));
        assert_eq!(wage_over_months(d("2024-11-15"), &pays, 4), Ok(Fen(600)));
        assert_eq!(pay_on(&pays, d("2000-01-01")), Fen(100));
        assert_eq!(pay_on(&[], d("2000-01-01")), Fen::ZERO);
    }

    #[test]
    fn pension_parts_round_and_refuse_overflow() {
        // 16 % and 8 % of 1,000.05.
        assert_eq!(pension_parts(Fen(100_005), (160_000, 80_000)), Ok((Fen(16_001), Fen(8_000))));
        assert!(pension_parts(Fen(i64::MAX), (1_000_000_000, 0)).is_err());
    }
}
