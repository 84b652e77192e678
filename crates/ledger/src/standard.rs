//! Standards: the rates and amounts the law leaves to the authorities (Art. 9, 14, 21, 25).
//!
//! Architecture invariant: no rate or amount of the law is a constant in code. The code knows
//! only the *names* of standards and how their values are written; every value is a `standard`
//! entry in the journal with the date it takes effect, and a rule reads the value in force on
//! the value date of the entry it checks.

use std::collections::BTreeMap;
use std::fmt;

use crate::money::{Fen, parse_percent_ppm, ppm_to_percent_string};
use crate::time::Date;

/// How a standard's value is written and held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StandardKind {
    /// A percent with up to four decimals (`"20"`, `"1.5"`), held in parts per million.
    Percent,
    /// Yuan with up to two decimals, held in fen.
    Money,
    /// A whole number (months, years).
    Count,
    /// A multiple of monthly pay with up to four decimals, held ×10,000.
    Multiple,
}

/// A standard the ledger knows by name.
#[derive(Debug)]
pub struct StandardSpec {
    pub name: &'static str,
    pub kind: StandardKind,
    pub meaning: &'static str,
    /// No rule reads it and a new value is refused; old entries that recorded it stay
    /// readable and replay as before.
    pub retired: Option<&'static str>,
}

macro_rules! specs {
    ($($variant:ident = $name:literal, $kind:ident, $meaning:literal;)*) => {
        /// A standard the rules read. The journal stores and prints its name
        /// ([`StandardName::as_str`]); the rules name it by this enum, never by a string.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum StandardName {
            $($variant,)*
        }

        impl StandardName {
            /// Every standard the rules read, in the order of [`STANDARD_SPECS`].
            pub const ALL: &[StandardName] = &[$(StandardName::$variant,)*];

            /// The name the journal stores and prints.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(StandardName::$variant => $name,)*
                }
            }
        }

        /// Every standard name the rules read.
        pub const STANDARD_SPECS: &[StandardSpec] = &[
            $(StandardSpec { name: $name, kind: StandardKind::$kind, meaning: $meaning, retired: None },)*
        ];
    };
}

specs! {
    PensionSubsidyUnitRate = "pension_subsidy_unit_rate", Percent, "pension subsidy, unit part, of the monthly contribution wage (Art. 13-14)";
    PensionSubsidyPersonalRate = "pension_subsidy_personal_rate", Percent, "pension subsidy, personal part, of the monthly contribution wage (Art. 13-14)";
    ConscriptServiceMonths = "conscript_service_months", Count, "months of a full conscript term";
    MedicalPersonalRate = "medical_personal_rate", Percent, "medical premium of officers, civilian cadres and sergeants, of monthly pay (Art. 20-21)";
    MedicalConscriptSubsidyPerYear = "medical_conscript_subsidy_per_year", Money, "medical subsidy per year of service for conscripts and cadets (Art. 20 para. 2)";
    MedicalInterestRate = "medical_interest_rate", Percent, "interest credited to members' medical accounts, per year on the year-end balance (Art. 31)";
    PensionInterestRate = "pension_interest_rate", Percent, "interest credited to members' pension accounts, per year on the year-end balance (Art. 31); not seeded";
    SpouseInterestRate = "spouse_interest_rate", Percent, "interest credited to spouses' accounts, per year on the year-end balance (Art. 31); not seeded";
    SpousePensionPersonalRate = "spouse_pension_personal_rate", Percent, "spouse pension premium, of the contribution base (Art. 25)";
    SpousePensionSubsidyRate = "spouse_pension_subsidy_rate", Percent, "state subsidy to the spouse pension part, of the contribution base (Art. 25)";
    SpouseMedicalPersonalRate = "spouse_medical_personal_rate", Percent, "spouse medical premium, of the contribution base, matched 1:1 (Art. 25)";
    DeathBenefitMartyr = "death_benefit_martyr", Money, "death benefit, death as a martyr (Art. 7)";
    DeathBenefitOnDuty = "death_benefit_on_duty", Money, "death benefit, died in the line of duty (Art. 7)";
    DisabilityMultipleGrade1 = "disability_multiple_grade_1", Multiple, "disability benefit, grade 1, multiple of monthly pay (Art. 8)";
    DisabilityMultipleGrade2 = "disability_multiple_grade_2", Multiple, "disability benefit, grade 2 (Art. 8)";
    DisabilityMultipleGrade3 = "disability_multiple_grade_3", Multiple, "disability benefit, grade 3 (Art. 8)";
    DisabilityMultipleGrade4 = "disability_multiple_grade_4", Multiple, "disability benefit, grade 4 (Art. 8)";
    DisabilityMultipleGrade5 = "disability_multiple_grade_5", Multiple, "disability benefit, grade 5 (Art. 8)";
    DisabilityMultipleGrade6 = "disability_multiple_grade_6", Multiple, "disability benefit, grade 6 (Art. 8)";
    DisabilityMultipleGrade7 = "disability_multiple_grade_7", Multiple, "disability benefit, grade 7 (Art. 8)";
    DisabilityMultipleGrade8 = "disability_multiple_grade_8", Multiple, "disability benefit, grade 8 (Art. 8)";
    DisabilityMultipleGrade9 = "disability_multiple_grade_9", Multiple, "disability benefit, grade 9 (Art. 8)";
    DisabilityMultipleGrade10 = "disability_multiple_grade_10", Multiple, "disability benefit, grade 10 (Art. 8)";
    CivilianPooledShareRate = "civilian_pooled_share_rate", Percent, "pooled share owed to the civilian side on transfer, of the contribution wage";
    CivilianMinimumYears = "civilian_minimum_years", Count, "minimum civilian contribution years (Opinion 2(1))";
    BackpayBaseRate = "backpay_base_rate", Percent, "back-payment base, of the previous year's average wage (Opinion 2(3))";
}

impl StandardName {
    /// The multiple of monthly pay for a disability of `grade` (Art. 8); `None` outside 1-10.
    pub fn disability_multiple(grade: u8) -> Option<StandardName> {
        use StandardName::*;
        let names = [
            DisabilityMultipleGrade1,
            DisabilityMultipleGrade2,
            DisabilityMultipleGrade3,
            DisabilityMultipleGrade4,
            DisabilityMultipleGrade5,
            DisabilityMultipleGrade6,
            DisabilityMultipleGrade7,
            DisabilityMultipleGrade8,
            DisabilityMultipleGrade9,
            DisabilityMultipleGrade10,
        ];
        names.get(usize::from(grade).checked_sub(1)?).copied()
    }

    /// The standard's spec.
    pub fn spec(self) -> &'static StandardSpec {
        &STANDARD_SPECS[self as usize]
    }
}

impl fmt::Display for StandardName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seed standards a new ledger records at `init`: (name, value, effective from).
///
/// From public secondary sources (see `../shared/brief/domain.md`); the death benefits and
/// disability multiples are illustrative placeholders until the authorities' figures are
/// entered as new `standard` events. They are data, recorded as journal entries, not rules.
pub const SEED_STANDARDS: &[(&str, &str, &str)] = &[
    ("pension_subsidy_unit_rate", "12", "2012-07-01"),
    ("pension_subsidy_personal_rate", "8", "2012-07-01"),
    ("conscript_service_months", "24", "2012-07-01"),
    ("medical_personal_rate", "1", "2012-07-01"),
    ("medical_conscript_subsidy_per_year", "420.00", "2012-07-01"),
    ("medical_interest_rate", "1.5", "2012-07-01"),
    ("spouse_pension_personal_rate", "11", "2012-07-01"),
    ("spouse_pension_subsidy_rate", "12", "2012-07-01"),
    ("spouse_medical_personal_rate", "1", "2012-07-01"),
    ("death_benefit_martyr", "1000000.00", "2012-07-01"),
    ("death_benefit_on_duty", "800000.00", "2012-07-01"),
    ("disability_multiple_grade_1", "100", "2012-07-01"),
    ("disability_multiple_grade_2", "80", "2012-07-01"),
    ("disability_multiple_grade_3", "65", "2012-07-01"),
    ("disability_multiple_grade_4", "50", "2012-07-01"),
    ("disability_multiple_grade_5", "40", "2012-07-01"),
    ("disability_multiple_grade_6", "30", "2012-07-01"),
    ("disability_multiple_grade_7", "20", "2012-07-01"),
    ("disability_multiple_grade_8", "15", "2012-07-01"),
    ("disability_multiple_grade_9", "10", "2012-07-01"),
    ("disability_multiple_grade_10", "5", "2012-07-01"),
    ("civilian_pooled_share_rate", "12", "2012-07-01"),
    ("civilian_minimum_years", "15", "2012-07-01"),
    ("backpay_base_rate", "60", "2019-01-01"),
];

/// Standards no rule reads any more. A ledger that recorded one keeps the entry.
pub const RETIRED_SPECS: &[StandardSpec] = &[StandardSpec {
    name: "death_benefit_illness",
    kind: StandardKind::Money,
    meaning: "death benefit, died of illness",
    retired: Some(
        "Art. 7 pays a death benefit for a death in war or in the line of duty only; illness \
         counts for disability (Art. 8), not death",
    ),
}];

/// Standards the law leaves to the authorities and the seed sources do not give: a ledger
/// records them before the rule that reads them can be used.
pub const UNSEEDED: &[StandardName] =
    &[StandardName::PensionInterestRate, StandardName::SpouseInterestRate];

/// The spec of a standard, retired ones included (replay of old entries needs them).
pub fn spec(name: &str) -> Option<&'static StandardSpec> {
    STANDARD_SPECS.iter().chain(RETIRED_SPECS).find(|s| s.name == name)
}

/// Parses a standard's value text by its kind into the integer the rules use.
pub fn parse_value(spec: &StandardSpec, text: &str) -> Result<i64, String> {
    match spec.kind {
        StandardKind::Percent | StandardKind::Multiple => {
            parse_percent_ppm(text).map_err(|e| e.to_string())
        }
        StandardKind::Money => Fen::parse_yuan(text)
            .map_err(|e| e.to_string())
            .and_then(|f| if f.0 < 0 { Err("must not be negative".to_string()) } else { Ok(f.0) }),
        StandardKind::Count => {
            text.parse::<u32>().map(i64::from).map_err(|_| "expected a whole number".to_string())
        }
    }
}

/// Prints a held value back in its written form.
pub fn format_value(spec: &StandardSpec, value: i64) -> String {
    match spec.kind {
        StandardKind::Percent | StandardKind::Multiple => ppm_to_percent_string(value),
        StandardKind::Money => Fen(value).to_string(),
        StandardKind::Count => value.to_string(),
    }
}

/// The history of every standard: for each name, values ordered by effective date.
#[derive(Clone, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Standards {
    pub history: BTreeMap<String, Vec<(Date, i64)>>,
}

impl Standards {
    /// The value of `name` in force on `date`, if any.
    pub fn in_force(&self, name: &str, date: Date) -> Option<i64> {
        let values = self.history.get(name)?;
        let after = values.partition_point(|(from, _)| *from <= date);
        after.checked_sub(1).map(|i| values[i].1)
    }

    /// The value of `name` for a month of service starting on `date`: the value in force, or,
    /// for a month before the standard's first value (service before the law took effect on
    /// 2012-07-01, or before the first recorded value), that first value. Documented in
    /// `docs/EVENTS.md`, so that no computation over service months posts nothing in silence.
    pub fn in_force_or_first(&self, name: &str, date: Date) -> Option<i64> {
        self.in_force(name, date).or_else(|| self.history.get(name)?.first().map(|(_, v)| *v))
    }

    /// The latest effective date recorded for `name`.
    pub fn latest_effective(&self, name: &str) -> Option<Date> {
        self.history.get(name).and_then(|v| v.last()).map(|(d, _)| *d)
    }

    pub fn record(&mut self, name: &str, from: Date, value: i64) {
        let values = self.history.entry(name.to_string()).or_default();
        assert!(
            values.last().is_none_or(|(d, _)| *d < from),
            "standards are recorded in increasing effective order (checked by the rule)"
        );
        values.push((from, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_names_a_known_standard_with_a_valid_value() {
        for (name, value, from) in SEED_STANDARDS {
            let spec = spec(name).unwrap_or_else(|| panic!("unknown seed {name}"));
            parse_value(spec, value).unwrap_or_else(|e| panic!("{name}: {e}"));
            Date::parse(from).unwrap();
        }
        for spec in STANDARD_SPECS.iter().filter(|s| !UNSEEDED.iter().any(|u| u.as_str() == s.name))
        {
            assert!(
                SEED_STANDARDS.iter().any(|(n, _, _)| *n == spec.name),
                "{} has no seed",
                spec.name
            );
        }
    }

    #[test]
    fn every_standard_name_is_its_spec_and_prints_as_stored() {
        assert_eq!(StandardName::ALL.len(), STANDARD_SPECS.len());
        for (name, spec) in StandardName::ALL.iter().zip(STANDARD_SPECS) {
            assert_eq!(name.as_str(), spec.name);
            assert_eq!(name.to_string(), spec.name);
            assert_eq!(name.spec().name, spec.name);
        }
        for grade in 1..=10u8 {
            let name = StandardName::disability_multiple(grade).unwrap();
            assert_eq!(name.as_str(), format!("disability_multiple_grade_{grade}"));
        }
        assert_eq!(StandardName::disability_multiple(0), None);
        assert_eq!(StandardName::disability_multiple(11), None);
    }

    #[test]
    fn the_value_in_force_is_the_latest_not_after_the_date() {
        let mut s = Standards::default();
        let d = |t| Date::parse(t).unwrap();
        s.record("r", d("2020-01-01"), 1);
        s.record("r", d("2021-07-01"), 2);
        assert_eq!(s.in_force("r", d("2019-12-31")), None);
        assert_eq!(s.in_force("r", d("2020-01-01")), Some(1));
        assert_eq!(s.in_force("r", d("2021-06-30")), Some(1));
        assert_eq!(s.in_force("r", d("2021-07-01")), Some(2));
    }
}
