//! Back to JSON: journal listings and exports show the decoded event in its input form.

use std::fmt;

use serde_json::{Map, Value, json};

use super::types::{Basis, Benefit, Event, EventBody};
use crate::money::ppm_to_percent_string;

impl Event {
    /// The event in the same JSON form it is posted in.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id.as_str()));
        m.insert("type".into(), json!(self.body.type_name()));
        if let Some(d) = self.value_date {
            m.insert("value_date".into(), json!(d.to_string()));
        }
        if let Some(memo) = &self.memo {
            m.insert("memo".into(), json!(memo));
        }
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        let s = |x: &dyn fmt::Display| json!(x.to_string());
        match &self.body {
            EventBody::Enroll { member, category, unit, enlisted_on, monthly_pay, sponsor } => {
                put("member", s(member));
                put("category", s(category));
                put("unit", s(unit));
                put("enlisted_on", s(enlisted_on));
                put("monthly_pay", s(monthly_pay));
                if let Some(sp) = sponsor {
                    put("sponsor", s(sp));
                }
            }
            EventBody::Contribution { member, fund, period, amount, unit, part } => {
                put("member", s(member));
                put("fund", s(fund));
                put("period", s(period));
                put("amount", s(amount));
                put("unit", s(unit));
                if let Some(p) = part {
                    put("part", json!(p.name()));
                }
            }
            EventBody::Subsidy { member, fund, period, amount, basis, part } => {
                put("member", s(member));
                put("fund", s(fund));
                put("period", s(period));
                put("amount", s(amount));
                put(
                    "basis",
                    json!(match basis {
                        Basis::Match => "match",
                        Basis::Standard => "standard",
                        Basis::Discharge => "discharge",
                        Basis::Provision => "provision",
                    }),
                );
                if let Some(p) = part {
                    put("part", json!(p.name()));
                }
            }
            EventBody::Appropriation { fund, amount } => {
                put("fund", s(fund));
                put("amount", s(amount));
            }
            EventBody::Payout { member, fund, benefit, amount, cause, grade, .. }
            | EventBody::PayoutV1 { member, fund, benefit, amount, cause, grade } => {
                put("member", s(member));
                put("fund", s(fund));
                put(
                    "benefit",
                    json!(match benefit {
                        Benefit::Death => "death",
                        Benefit::Disability => "disability",
                    }),
                );
                put("amount", s(amount));
                put("cause", json!(cause.name()));
                if let Some(g) = grade {
                    put("grade", json!(g));
                }
                if let EventBody::Payout { on, .. } = &self.body {
                    put("on", s(on));
                }
            }
            EventBody::Interest { fund, period, rate_ppm } => {
                put("fund", s(fund));
                put("period", s(period));
                put("rate", json!(ppm_to_percent_string(*rate_ppm)));
            }
            EventBody::DischargeV1 { member, on } => {
                put("member", s(member));
                put("on", s(on));
            }
            EventBody::Discharge { member, on, route } => {
                put("member", s(member));
                put("on", s(on));
                put("route", json!(route.name()));
            }
            EventBody::UnitChange { member, unit, on } => {
                put("member", s(member));
                put("unit", s(unit));
                put("on", s(on));
            }
            EventBody::Death { member, on, cause } => {
                put("member", s(member));
                put("on", s(on));
                put("cause", json!(cause.name()));
            }
            EventBody::CategoryChange { member, category, on } => {
                put("member", s(member));
                put("category", s(category));
                put("on", s(on));
            }
            EventBody::SuspendV1 { member, fund, reason }
            | EventBody::ResumeV1 { member, fund, reason } => {
                put("member", s(member));
                put("fund", s(fund));
                put("reason", json!(reason));
            }
            EventBody::Suspend { member, fund, from, reason }
            | EventBody::Resume { member, fund, from, reason } => {
                put("member", s(member));
                put("fund", s(fund));
                put("from", s(from));
                put("reason", json!(reason));
            }
            EventBody::RecoveryV1 { member, fund, amount, reason } => {
                put("member", s(member));
                put("fund", s(fund));
                put("amount", s(amount));
                put("reason", json!(reason));
            }
            EventBody::Recovery { member, fund, amount, of, reason } => {
                put("member", s(member));
                put("fund", s(fund));
                put("amount", s(amount));
                put("of", s(of));
                put("reason", json!(reason));
            }
            EventBody::Reversal { of, reason } => {
                put("of", s(of));
                put("reason", json!(reason));
            }
            EventBody::Standard { name, value, effective_from } => {
                put("name", json!(name));
                put("value", json!(value));
                put("effective_from", s(effective_from));
            }
            EventBody::TransferOutV1 { member, fund, agency }
            | EventBody::TransferConfirmed { member, fund, agency } => {
                put("member", s(member));
                put("fund", s(fund));
                put("agency", s(agency));
            }
            EventBody::TransferOut { member, fund, agency, part } => {
                put("member", s(member));
                put("fund", s(fund));
                put("agency", s(agency));
                if let Some(p) = part {
                    put("part", json!(p.name()));
                }
            }
            EventBody::TransferIn { member, fund, agency, part, amount } => {
                put("member", s(member));
                put("fund", s(fund));
                put("agency", s(agency));
                if let Some(p) = part {
                    put("part", json!(p.name()));
                }
                put("amount", s(amount));
            }
            EventBody::PayChange { member, monthly_pay, on } => {
                put("member", s(member));
                put("monthly_pay", s(monthly_pay));
                put("on", s(on));
            }
            EventBody::KeyRotation { public_key, signature } => {
                put("public_key", json!(hex::encode(public_key)));
                put("signature", json!(hex::encode(signature)));
            }
            EventBody::Backpay { member, input, .. } | EventBody::BackpayV1 { member, input } => {
                use crate::backpay::UnitPayer;
                let pct = |ppm: i64| json!(ppm_to_percent_string(ppm));
                put("member", s(member));
                put("enlisted_on", s(&input.enlisted_on));
                put("discharged_on", s(&input.discharged_on));
                put("service_months", json!(input.service_months));
                put("gap_months", json!(input.gap_months));
                if let Some(d) = input.first_insured_on {
                    put("first_insured_on", s(&d));
                }
                put("civilian_months", json!(input.civilian_months));
                put("retirement_age_reached", json!(input.retirement_age_reached));
                put("average_wage", s(&input.average_wage));
                put("pension_unit_rate", pct(input.pension_unit_ppm));
                put("pension_personal_rate", pct(input.pension_personal_ppm));
                put("medical_unit_rate", pct(input.medical_unit_ppm));
                put("medical_personal_rate", pct(input.medical_personal_ppm));
                put(
                    "payer",
                    json!(match input.unit_payer {
                        UnitPayer::Unit => "unit",
                        UnitPayer::Superior => "superior",
                        UnitPayer::Fiscal => "fiscal",
                    }),
                );
                for (k, name) in
                    ["central_share", "provincial_share", "municipal_share", "county_share"]
                        .iter()
                        .enumerate()
                {
                    put(name, pct(input.fiscal_shares_ppm[k]));
                }
                put("personal_help_rate", pct(input.personal_help_ppm));
                if let EventBody::Backpay { scope, .. } = &self.body {
                    put("resettlement", json!(scope.resettlement.name()));
                    put("category", s(&scope.category));
                    put("medical_average_wage", s(&scope.medical_average_wage));
                    put("medical_gap_months", json!(scope.medical_gap_months));
                }
            }
            EventBody::Budget { fund, year, line, amount } => {
                put("fund", s(fund));
                put("year", json!(year.to_string()));
                put("line", json!(line.name()));
                put("amount", s(amount));
            }
            EventBody::Remittance { unit, fund, amount, period, reference } => {
                put("unit", s(unit));
                put("fund", s(fund));
                put("amount", s(amount));
                put("period", s(period));
                put("reference", json!(reference));
            }
            EventBody::BankStatement { fund, account, date, balance, reference } => {
                put("fund", s(fund));
                put("account", s(account));
                put("date", s(date));
                put("balance", s(balance));
                put("reference", json!(reference));
            }
            EventBody::DepositInterest { fund, amount, period } => {
                put("fund", s(fund));
                put("amount", s(amount));
                put("period", s(period));
            }
            EventBody::YearClose { year, through_seq, funds, open_items } => {
                put("year", json!(year.to_string()));
                put("through_seq", json!(through_seq));
                put("funds", crate::admin::final_accounts_json(funds));
                put("open_items", json!(open_items));
            }
        }
        Value::Object(m)
    }
}
