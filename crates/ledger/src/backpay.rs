//! Back-payment of social insurance for discharged soldiers resettled by government job
//! placement (the 2019 opinion, "Opinion §" below): how many months may be back-paid, on what
//! base, and who pays what. Pure computation; `junbao backpay post` records the inputs as a
//! journal entry so that anyone can recompute the result.
//!
//! The money is paid to the civilian pension and medical insurance of the resettlement place,
//! not into the four servicemen funds, so the entry carries no fund postings.

use crate::money::{Fen, div_round_half_away};
use crate::time::Date;

/// Who bears the unit part (Opinion §二(二)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub enum UnitPayer {
    /// The original unit.
    Unit,
    /// The unit no longer exists or cannot pay: its superior department.
    Superior,
    /// Neither can: fiscal money applied for by the veterans-affairs department, shared by
    /// central, provincial, municipal and county government.
    Fiscal,
}

/// What the assessment needs, from the service record and the resettlement place.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct BackpayInput {
    pub enlisted_on: Date,
    pub discharged_on: Date,
    /// Months of service (军龄) per the service record.
    pub service_months: u32,
    /// Months of gaps (欠缴、断缴) the veteran asks to back-pay.
    pub gap_months: u32,
    /// First insured date; absent when not insured at enlistment (then enlistment counts).
    pub first_insured_on: Option<Date>,
    /// Civilian contribution months so far, service excluded.
    pub civilian_months: u32,
    pub retirement_age_reached: bool,
    /// Previous year's average monthly employee wage of the resettlement place.
    pub average_wage: Fen,
    /// Local rates, ppm: pension unit and personal, medical unit and personal.
    pub pension_unit_ppm: i64,
    pub pension_personal_ppm: i64,
    pub medical_unit_ppm: i64,
    pub medical_personal_ppm: i64,
    pub unit_payer: UnitPayer,
    /// Shares of fiscal money, ppm of the unit part: central, provincial, municipal, county.
    /// Used when `unit_payer` is `Fiscal`; must sum to 1,000,000.
    pub fiscal_shares_ppm: [i64; 4],
    /// Share of the personal part the local government pays for a low-income or
    /// extreme-poverty person, ppm (the opinion says "appropriate"; the locality sets it).
    pub personal_help_ppm: i64,
}

/// The assessment (all money in fen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    /// Service deemed contribution years without payment (discharged before 2012-07-01), or
    /// combined with the contribution years (after, with the pension subsidy): months.
    pub service_counted_months: u32,
    pub service_treatment: &'static str,
    pub first_insured_on: Date,
    /// Months that may be back-paid: the gaps, never more than the months of service.
    pub backpay_months: u32,
    /// Months to pay on to the civilian minimum, where the minimum rule applies.
    pub months_to_minimum: u32,
    pub minimum_rule: &'static str,
    /// 60 % (the standard in force) of the previous year's average wage.
    pub base: Fen,
    pub pension_unit: Fen,
    pub pension_personal: Fen,
    pub medical_unit: Fen,
    pub medical_personal: Fen,
    /// Medical months back-paid (equal to `backpay_months` for an assessment without scope).
    pub medical_backpay_months: u32,
    /// The medical base (equal to `base` for an assessment without scope).
    pub medical_base: Fen,
    pub unit_payer: UnitPayer,
    /// Of the unit parts, when paid by fiscal money: central, provincial, municipal, county.
    pub fiscal_split: [Fen; 4],
    /// Of the personal parts: paid by the person, and by the local government's help.
    pub personal_by_person: Fen,
    pub personal_by_government: Fen,
}

/// Why an assessment cannot be made.
pub type BackpayError = String;

/// The standards an assessment with value date `date` uses: the `backpay_base_rate` (parts per
/// million) and the `civilian_minimum_years` in months.
pub fn standards_on(
    standards: &crate::standard::Standards,
    date: Date,
) -> Result<(i64, u32), BackpayError> {
    use crate::standard::StandardName;
    let standard = |name: StandardName| {
        standards
            .in_force(name.as_str(), date)
            .ok_or_else(|| format!("no standard {name} is in force on {date}"))
    };
    let rate = standard(StandardName::BackpayBaseRate)?;
    let minimum_years = standard(StandardName::CivilianMinimumYears)?;
    Ok((rate, u32::try_from(minimum_years.saturating_mul(12)).unwrap_or(u32::MAX)))
}

/// Assesses a back-payment under the opinion, with `base_rate_ppm` (the `backpay_base_rate`
/// standard in force) and `minimum_months` (the `civilian_minimum_years` standard × 12).
pub fn assess(
    i: &BackpayInput,
    base_rate_ppm: i64,
    minimum_months: u32,
) -> Result<Assessment, BackpayError> {
    let law_in_force = crate::time::law_in_force();
    let social_insurance_law = Date::from_ymd(2011, 7, 1).expect("valid date");
    if i.discharged_on < i.enlisted_on {
        return Err("discharged_on is before enlisted_on".into());
    }
    if i.fiscal_shares_ppm.iter().any(|s| *s < 0)
        || (i.unit_payer == UnitPayer::Fiscal
            && i.fiscal_shares_ppm.iter().sum::<i64>() != 1_000_000)
    {
        return Err("fiscal shares must be non-negative and sum to 100 % (Opinion 2(2))".into());
    }
    if !(0..=1_000_000).contains(&i.personal_help_ppm) {
        return Err("personal help must be 0–100 %".into());
    }
    // Opinion 2(1): not insured at enlistment → enlistment is the first insured date.
    let first_insured_on = i.first_insured_on.map_or(i.enlisted_on, |d| d.min(i.enlisted_on));
    let service_treatment = if i.discharged_on < law_in_force {
        "discharged before 2012-07-01: service deemed pension and medical contribution years"
    } else {
        "discharged after 2012-07-01 with the pension subsidy: service combined with contribution years"
    };
    // Back-paid months never exceed the months of service (Opinion 2(1); government-paid
    // months likewise, 2(2)).
    let backpay_months = i.gap_months.min(i.service_months);
    let counted = i.civilian_months + i.service_months + backpay_months;
    let (months_to_minimum, minimum_rule) = if !i.retirement_age_reached
        || counted >= minimum_months
    {
        (0, "not applicable")
    } else if first_insured_on < social_insurance_law {
        // Short after five more years of paying: a one-time payment up to the minimum.
        let short = minimum_months - counted;
        if short > 60 {
            (
                short,
                "first insured before 2011-07-01: pay on for 5 years, then a one-time payment up to the minimum",
            )
        } else {
            (short, "pay on to the minimum")
        }
    } else {
        (minimum_months - counted, "pay on to the minimum")
    };
    let base = Fen(div_round_half_away(
        i128::from(i.average_wage.0) * i128::from(base_rate_ppm),
        1_000_000,
    ));
    let months = i64::from(backpay_months);
    let per = |ppm: i64| {
        base.mul_ppm(ppm).checked_mul_count(months).ok_or("amount too large".to_string())
    };
    let (pension_unit, pension_personal) = (per(i.pension_unit_ppm)?, per(i.pension_personal_ppm)?);
    let (medical_unit, medical_personal) = (per(i.medical_unit_ppm)?, per(i.medical_personal_ppm)?);
    let unit_total = pension_unit.0 + medical_unit.0;
    let mut fiscal_split = [Fen::ZERO; 4];
    if i.unit_payer == UnitPayer::Fiscal {
        let mut given = 0;
        for (k, share) in i.fiscal_shares_ppm.iter().enumerate() {
            fiscal_split[k] = Fen(unit_total).mul_ppm(*share);
            given += fiscal_split[k].0;
        }
        // The province bears the main responsibility (Opinion 2(2)): it takes the rounding.
        fiscal_split[1] = Fen(fiscal_split[1].0 + unit_total - given);
    }
    let personal_total = Fen(pension_personal.0 + medical_personal.0);
    let personal_by_government = personal_total.mul_ppm(i.personal_help_ppm);
    Ok(Assessment {
        service_counted_months: i.service_months,
        service_treatment,
        first_insured_on,
        backpay_months,
        months_to_minimum,
        minimum_rule,
        base,
        pension_unit,
        pension_personal,
        medical_unit,
        medical_personal,
        medical_backpay_months: backpay_months,
        medical_base: base,
        unit_payer: i.unit_payer,
        fiscal_split,
        personal_by_person: Fen(personal_total.0 - personal_by_government.0),
        personal_by_government,
    })
}

/// How the veteran was resettled; the opinion covers government job placement only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub enum Resettlement {
    /// 政府安排工作: placed in a job by the government.
    GovernmentJob,
    /// Any other way (own job, retirement, support, …): outside the opinion.
    Other,
}

impl Resettlement {
    pub fn name(self) -> &'static str {
        match self {
            Resettlement::GovernmentJob => "government_job",
            Resettlement::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Result<Resettlement, String> {
        match text {
            "government_job" => Ok(Resettlement::GovernmentJob),
            "other" => Ok(Resettlement::Other),
            _ => Err("expected government_job or other (Opinion 1)".to_string()),
        }
    }
}

/// What the opinion's scope and its medical part need beyond [`BackpayInput`] (issue 11).
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct BackpayScope {
    pub resettlement: Resettlement,
    /// The category the soldier served in: conscript or sergeant (士兵).
    pub category: crate::fund::Category,
    /// Previous year's average monthly employee wage of the place where insured (参保地),
    /// the medical base (Opinion 2(3)); the pension base is `average_wage` of the
    /// resettlement place.
    pub medical_average_wage: Fen,
    /// Months of medical gaps asked for; like pension gaps, never more than service.
    pub medical_gap_months: u32,
}

/// Months already back-paid for one person, pension and medical (all entries together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Backpaid {
    pub pension_months: u32,
    pub medical_months: u32,
}

/// Assesses a back-payment with its scope: refuses a person outside the opinion, checks the
/// service months against the dates, caps the months of every back-payment of the person
/// together at the months of service, and prices medical on its own months and base.
pub fn assess_scoped(
    i: &BackpayInput,
    scope: &BackpayScope,
    base_rate_ppm: i64,
    minimum_months: u32,
    already: Backpaid,
) -> Result<(Assessment, Backpaid), BackpayError> {
    use crate::fund::Category;
    if scope.resettlement != Resettlement::GovernmentJob {
        return Err("Opinion 1: the back-payment is for soldiers resettled by government job \
                    placement (resettlement government_job)"
            .into());
    }
    if !matches!(scope.category, Category::Conscript | Category::Sergeant) {
        return Err(format!(
            "Opinion 1: the back-payment is for soldiers (conscript or sergeant), not a {}",
            scope.category
        ));
    }
    if i.discharged_on < i.enlisted_on {
        return Err("discharged_on is before enlisted_on".into());
    }
    let (months, days) = i.enlisted_on.service_until(i.discharged_on);
    let served = months + i64::from(days > 0);
    if i64::from(i.service_months) > served {
        return Err(format!(
            "service_months {} is more than the {served} months from {} to {}",
            i.service_months, i.enlisted_on, i.discharged_on
        ));
    }
    let pension_left = i.service_months.saturating_sub(already.pension_months);
    let medical_left = i.service_months.saturating_sub(already.medical_months);
    if pension_left == 0 && medical_left == 0 {
        return Err(format!(
            "Opinion 2(1): {} months are already back-paid for this person, as many as the \
             months of service",
            already.pension_months.max(already.medical_months)
        ));
    }
    // Pension: the existing computation, on the gaps left under the cap.
    let pension_input = BackpayInput { gap_months: i.gap_months.min(pension_left), ..i.clone() };
    let mut a = assess(&pension_input, base_rate_ppm, minimum_months)?;
    // Medical: its own months, on the place-where-insured wage.
    let medical_months = scope.medical_gap_months.min(medical_left);
    let medical_base = Fen(div_round_half_away(
        i128::from(scope.medical_average_wage.0) * i128::from(base_rate_ppm),
        1_000_000,
    ));
    let per = |ppm: i64| {
        medical_base
            .mul_ppm(ppm)
            .checked_mul_count(i64::from(medical_months))
            .ok_or("amount too large".to_string())
    };
    a.medical_unit = per(i.medical_unit_ppm)?;
    a.medical_personal = per(i.medical_personal_ppm)?;
    a.medical_backpay_months = medical_months;
    a.medical_base = medical_base;
    // Redo the payers' split on the new totals.
    let unit_total = a.pension_unit.0 + a.medical_unit.0;
    a.fiscal_split = [Fen::ZERO; 4];
    if i.unit_payer == UnitPayer::Fiscal {
        let mut given = 0;
        for (k, share) in i.fiscal_shares_ppm.iter().enumerate() {
            a.fiscal_split[k] = Fen(unit_total).mul_ppm(*share);
            given += a.fiscal_split[k].0;
        }
        a.fiscal_split[1] = Fen(a.fiscal_split[1].0 + unit_total - given);
    }
    let personal_total = Fen(a.pension_personal.0 + a.medical_personal.0);
    a.personal_by_government = personal_total.mul_ppm(i.personal_help_ppm);
    a.personal_by_person = Fen(personal_total.0 - a.personal_by_government.0);
    let after = Backpaid {
        pension_months: already.pension_months + a.backpay_months,
        medical_months: already.medical_months + medical_months,
    };
    Ok((a, after))
}
