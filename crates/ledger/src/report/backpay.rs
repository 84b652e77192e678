//! A back-payment assessment under the 2019 opinion, as `backpay assess` prints it.

use serde::Serialize;

use crate::backpay::{Assessment, Backpaid, UnitPayer};
use crate::ids::MemberId;
use crate::money::Fen;
use crate::time::Date;

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct BackpayReport {
    pub already_backpaid_months: AlreadyBackpaid,
    pub assessed_on: Date,
    pub backpay_months: u32,
    pub base: Fen,
    pub first_insured_on: Date,
    pub fiscal_split: FiscalSplit,
    pub medical: MedicalParts,
    pub member: MemberId,
    pub minimum_rule: &'static str,
    pub months_to_minimum: u32,
    pub pension: Parts,
    pub personal_part: PersonalPart,
    pub service_months: u32,
    pub service_treatment: &'static str,
    /// `unit`, `superior` or `fiscal`.
    pub unit_part_paid_by: &'static str,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct AlreadyBackpaid {
    pub medical: u32,
    pub pension: u32,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct FiscalSplit {
    pub central: Fen,
    pub county: Fen,
    pub municipal: Fen,
    pub provincial: Fen,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct MedicalParts {
    pub base: Fen,
    pub months: u32,
    pub personal: Fen,
    pub unit: Fen,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub personal: Fen,
    pub unit: Fen,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct PersonalPart {
    pub by_local_government: Fen,
    pub by_person: Fen,
}

impl BackpayReport {
    /// The assessment `a` of `member` on `assessed_on`, who had `already` back-paid.
    pub fn new(member: MemberId, assessed_on: Date, a: &Assessment, already: Backpaid) -> Self {
        BackpayReport {
            already_backpaid_months: AlreadyBackpaid {
                medical: already.medical_months,
                pension: already.pension_months,
            },
            assessed_on,
            backpay_months: a.backpay_months,
            base: a.base,
            fiscal_split: FiscalSplit {
                central: a.fiscal_split[0],
                county: a.fiscal_split[3],
                municipal: a.fiscal_split[2],
                provincial: a.fiscal_split[1],
            },
            first_insured_on: a.first_insured_on,
            medical: MedicalParts {
                base: a.medical_base,
                months: a.medical_backpay_months,
                personal: a.medical_personal,
                unit: a.medical_unit,
            },
            member,
            minimum_rule: a.minimum_rule,
            months_to_minimum: a.months_to_minimum,
            pension: Parts { personal: a.pension_personal, unit: a.pension_unit },
            personal_part: PersonalPart {
                by_local_government: a.personal_by_government,
                by_person: a.personal_by_person,
            },
            service_months: a.service_counted_months,
            service_treatment: a.service_treatment,
            unit_part_paid_by: match a.unit_payer {
                UnitPayer::Unit => "unit",
                UnitPayer::Superior => "superior",
                UnitPayer::Fiscal => "fiscal",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::assert_sorted_keys;

    #[test]
    fn an_assessment_prints_in_sorted_key_order() {
        let a = Assessment {
            service_counted_months: 1,
            service_treatment: "deemed",
            first_insured_on: Date(0),
            backpay_months: 2,
            months_to_minimum: 3,
            minimum_rule: "none",
            base: Fen(100),
            pension_unit: Fen(1),
            pension_personal: Fen(2),
            medical_unit: Fen(3),
            medical_personal: Fen(4),
            medical_backpay_months: 5,
            medical_base: Fen(6),
            unit_payer: UnitPayer::Fiscal,
            fiscal_split: [Fen(7), Fen(8), Fen(9), Fen(10)],
            personal_by_person: Fen(11),
            personal_by_government: Fen(12),
        };
        let r = BackpayReport::new(
            MemberId::parse("M1").expect("valid id"),
            Date(1),
            &a,
            Backpaid::default(),
        );
        assert_sorted_keys(&r);
        let v = serde_json::to_value(&r).expect("serialises");
        assert_eq!(v["fiscal_split"]["provincial"], "0.08");
        assert_eq!(v["fiscal_split"]["county"], "0.10");
        assert_eq!(v["unit_part_paid_by"], "fiscal");
        assert_eq!(v["medical"]["months"], 5);
    }
}
