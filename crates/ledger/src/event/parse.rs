//! Strict parsing of one JSON line into an [`Event`]; every refusal names the field.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::types::{
    Basis, Benefit, Cause, Event, EventBody, EventError, LINE_BYTES_MAX, MEMO_CHARS_MAX, Route,
};
use crate::fund::{Category, Fund, SpousePart};
use crate::ids::{AgencyId, EventId, MemberId, UnitId};
use crate::money::{Fen, parse_percent_ppm};
use crate::time::{Date, Period};

/// One JSON value of a field, kept as text so that the error can say what it was.
#[derive(Debug)]
enum Field<'a> {
    Str(Cow<'a, str>),
    Number(String),
    Bool(bool),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Field<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Field::Str(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Field::Number(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Field::Number(v.to_string()))
            }
            // Not arithmetic: a float arrives only to be named in the refusal.
            fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Self::Value, E> {
                Ok(Field::Other("a number with a fraction"))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Field::Bool(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Field::Other("null"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Field::Other("an array"))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Field::Other("an object"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

macro_rules! raw_event {
    ($($f:ident),*) => {
        /// Every field any event type may carry; which ones a type takes is checked after.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawEvent<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<Field<'a>>,
            $(#[serde(borrow)] $f: Option<Field<'a>>,)*
        }
        const RAW_FIELDS: &[&str] = &["type", $(stringify!($f)),*];

        impl<'a> RawEvent<'a> {
            /// The field called `name`; `type` is read apart, first.
            fn field(&self, name: &str) -> Option<&Field<'a>> {
                match name {
                    $(stringify!($f) => self.$f.as_ref(),)*
                    other => unreachable!("reader asked for undeclared field {other}"),
                }
            }
        }
    };
}

raw_event!(
    id,
    value_date,
    memo,
    member,
    category,
    unit,
    enlisted_on,
    monthly_pay,
    sponsor,
    fund,
    period,
    amount,
    part,
    basis,
    benefit,
    cause,
    grade,
    rate,
    on,
    reason,
    of,
    name,
    value,
    effective_from,
    agency,
    discharged_on,
    service_months,
    gap_months,
    first_insured_on,
    civilian_months,
    retirement_age_reached,
    average_wage,
    pension_unit_rate,
    pension_personal_rate,
    medical_unit_rate,
    medical_personal_rate,
    payer,
    central_share,
    provincial_share,
    municipal_share,
    county_share,
    personal_help_rate,
    year,
    line,
    account,
    date,
    balance,
    reference,
    route,
    from,
    resettlement,
    medical_average_wage,
    medical_gap_months,
    public_key,
    signature
);

/// Reads fields off a raw event, remembering which were used so the rest can be refused.
struct Reader<'r, 'a> {
    raw: &'r RawEvent<'a>,
    used: Vec<&'static str>,
}

impl<'a> Reader<'_, 'a> {
    fn get(&mut self, name: &'static str) -> Option<&Field<'a>> {
        self.used.push(name);
        self.raw.field(name)
    }

    fn opt_str(&mut self, name: &'static str) -> Result<Option<&str>, EventError> {
        match self.get(name) {
            None => Ok(None),
            Some(Field::Str(s)) => Ok(Some(s.as_ref())),
            Some(Field::Number(n)) => {
                Err(EventError::field(name, format!("must be a JSON string, got the number {n}")))
            }
            Some(Field::Bool(_)) => {
                Err(EventError::field(name, "must be a JSON string, got a boolean"))
            }
            Some(Field::Other(what)) => {
                Err(EventError::field(name, format!("must be a JSON string, got {what}")))
            }
        }
    }

    fn flag(&mut self, name: &'static str) -> Result<bool, EventError> {
        match self.get(name) {
            None => Ok(false),
            Some(Field::Bool(b)) => Ok(*b),
            Some(_) => Err(EventError::field(name, "must be true or false")),
        }
    }

    fn count(&mut self, name: &'static str) -> Result<u32, EventError> {
        let text = match self.get(name) {
            Some(Field::Number(n)) => n.clone(),
            Some(Field::Str(s)) => s.to_string(),
            None => return Err(EventError::field(name, "is required")),
            _ => return Err(EventError::field(name, "must be a whole number")),
        };
        text.parse::<u32>()
            .ok()
            .filter(|n| *n <= 1200)
            .ok_or_else(|| EventError::field(name, "must be a whole number of months, 0–1200"))
    }

    fn percent(&mut self, name: &'static str, required: bool) -> Result<i64, EventError> {
        match self.opt_str(name)? {
            None if !required => Ok(0),
            None => Err(EventError::field(name, "is required")),
            Some(t) => parse_percent_ppm(t)
                .map_err(|e| EventError::field(name, format!("a percent like \"8\": {e}"))),
        }
    }

    fn str(&mut self, name: &'static str) -> Result<&str, EventError> {
        self.opt_str(name)?.ok_or_else(|| EventError::field(name, "is required"))
    }

    fn parse<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, EventError> {
        let text = self.str(name)?;
        f(text).map_err(|m| EventError::field(name, m))
    }

    fn parse_opt<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, EventError> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(text) => f(text).map(Some).map_err(|m| EventError::field(name, m)),
        }
    }

    fn money(&mut self, name: &'static str) -> Result<Fen, EventError> {
        match self.get(name) {
            Some(Field::Number(n)) => Err(EventError::field(
                name,
                format!("money must be a JSON string like \"{n}.00\", not a number"),
            )),
            _ => self.parse(name, |t| Fen::parse_positive(t).map_err(|e| e.to_string())),
        }
    }

    fn text(&mut self, name: &'static str) -> Result<String, EventError> {
        let text = self.str(name)?;
        check_text(name, text)?;
        Ok(text.to_string())
    }

    fn grade(&mut self) -> Result<Option<u8>, EventError> {
        let text = match self.get("grade") {
            None => return Ok(None),
            Some(Field::Number(n)) => n.clone(),
            Some(Field::Str(s)) => s.to_string(),
            Some(Field::Other(what)) => {
                return Err(EventError::field("grade", format!("must be 1–10, got {what}")));
            }
            Some(Field::Bool(_)) => {
                return Err(EventError::field("grade", "must be 1–10, got a boolean"));
            }
        };
        match text.parse::<u8>() {
            Ok(g) if (1..=10).contains(&g) => Ok(Some(g)),
            _ => Err(EventError::field("grade", "disability grade must be 1–10 (Art. 8)")),
        }
    }
}

fn check_text(name: &'static str, text: &str) -> Result<(), EventError> {
    if text.chars().count() > MEMO_CHARS_MAX {
        return Err(EventError::field(name, format!("longer than {MEMO_CHARS_MAX} characters")));
    }
    if text.chars().any(char::is_control) {
        return Err(EventError::field(name, "contains control characters"));
    }
    Ok(())
}

fn parse_cause(text: &str) -> Result<Cause, String> {
    Cause::NAMES.iter().find(|(n, _)| *n == text).map(|(_, c)| *c).ok_or_else(|| {
        "expected martyr, war, on_duty, illness, or an Art. 10 cause (crime, intoxication, \
             self_harm, other_exclusion)"
            .to_string()
    })
}

/// Parses one JSON line into an event. The error names the field where one is to blame.
pub fn parse_event_line(line: &str) -> Result<Event, EventError> {
    if line.len() > LINE_BYTES_MAX {
        return Err(EventError::event(format!("line longer than {LINE_BYTES_MAX} bytes")));
    }
    let raw: RawEvent<'_> = serde_json::from_str(line).map_err(|e| {
        let msg = e.to_string();
        // serde names the unknown field; keep its words but drop the column noise.
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        if msg.starts_with("unknown field") {
            EventError::event(msg.replace(&format!(", expected one of {}", fields_list()), ""))
        } else {
            EventError::event(format!("not a JSON object: {msg}"))
        }
    })?;
    parse_raw(&raw)
}

fn fields_list() -> String {
    RAW_FIELDS.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
}

fn parse_raw(raw: &RawEvent<'_>) -> Result<Event, EventError> {
    let kind = match &raw.kind {
        Some(Field::Str(s)) => s.to_string(),
        Some(_) => return Err(EventError::field("type", "must be a JSON string")),
        None => return Err(EventError::field("type", "is required")),
    };
    let mut r = Reader { raw, used: vec!["type"] };
    let id = r.parse("id", EventId::parse)?;
    let value_date = r.parse_opt("value_date", Date::parse)?;
    let memo = match r.opt_str("memo")? {
        Some(m) => {
            check_text("memo", m)?;
            Some(m.to_string())
        }
        None => None,
    };
    let body = parse_body(&kind, &mut r)?;
    // Refuse fields this type does not take: a misplaced field is a mistake, not a no-op.
    for name in RAW_FIELDS {
        if !r.used.contains(name) && r.get(name).is_some() {
            return Err(EventError::field(name, format!("is not a field of a {kind} event")));
        }
    }
    Ok(Event { id, value_date, memo, body })
}

fn spouse_part(r: &mut Reader<'_, '_>, fund: Fund) -> Result<Option<SpousePart>, EventError> {
    let part = r.parse_opt("part", SpousePart::parse)?;
    match (fund, part) {
        (Fund::Spouse, None) => Err(EventError::field(
            "part",
            "is required for the spouse fund: pension or medical (Art. 25)",
        )),
        (Fund::Spouse, some) => Ok(some),
        (_, Some(_)) => Err(EventError::field("part", "is only for the spouse fund")),
        (_, None) => Ok(None),
    }
}

/// Exactly `N` bytes in lowercase hex.
fn hex_bytes<const N: usize>(
    r: &mut Reader<'_, '_>,
    name: &'static str,
) -> Result<[u8; N], EventError> {
    r.parse(name, |t| {
        hex::decode(t)
            .ok()
            .filter(|_| t.bytes().all(|b| !b.is_ascii_uppercase()))
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{N} bytes in lowercase hex"))
    })
}

fn parse_body(kind: &str, r: &mut Reader<'_, '_>) -> Result<EventBody, EventError> {
    let body = match kind {
        "enroll" => EventBody::Enroll {
            member: r.parse("member", MemberId::parse)?,
            category: r.parse("category", Category::parse)?,
            unit: r.parse("unit", UnitId::parse)?,
            enlisted_on: r.parse("enlisted_on", Date::parse)?,
            monthly_pay: r.money("monthly_pay")?,
            sponsor: r.parse_opt("sponsor", MemberId::parse)?,
        },
        "contribution" => {
            let member = r.parse("member", MemberId::parse)?;
            let fund = r.parse("fund", Fund::parse)?;
            EventBody::Contribution {
                member,
                fund,
                period: r.parse("period", Period::parse)?,
                amount: r.money("amount")?,
                unit: r.parse("unit", UnitId::parse)?,
                part: spouse_part(r, fund)?,
            }
        }
        "subsidy" => {
            let member = r.parse("member", MemberId::parse)?;
            let fund = r.parse("fund", Fund::parse)?;
            EventBody::Subsidy {
                member,
                fund,
                period: r.parse("period", Period::parse)?,
                amount: r.money("amount")?,
                basis: r.parse("basis", |t| match t {
                    "match" => Ok(Basis::Match),
                    "standard" => Ok(Basis::Standard),
                    "discharge" => Ok(Basis::Discharge),
                    "provision" => Ok(Basis::Provision),
                    _ => Err("expected match, standard, discharge or provision".to_string()),
                })?,
                part: spouse_part(r, fund)?,
            }
        }
        "appropriation" => EventBody::Appropriation {
            fund: r.parse("fund", Fund::parse)?,
            amount: r.money("amount")?,
        },
        "payout" => EventBody::Payout {
            member: r.parse("member", MemberId::parse)?,
            fund: r.parse("fund", Fund::parse)?,
            benefit: r.parse("benefit", |t| match t {
                "death" => Ok(Benefit::Death),
                "disability" => Ok(Benefit::Disability),
                _ => Err("casualty benefits are death or disability (Art. 7, 8)".to_string()),
            })?,
            amount: r.money("amount")?,
            cause: r.parse("cause", parse_cause)?,
            grade: r.grade()?,
            on: r.parse("on", Date::parse)?,
        },
        "interest" => EventBody::Interest {
            fund: r.parse("fund", Fund::parse)?,
            period: r.parse("period", Period::parse)?,
            rate_ppm: r.parse("rate", |t| {
                parse_percent_ppm(t).map_err(|e| format!("a percent like \"1.5\": {e}"))
            })?,
        },
        "discharge" => EventBody::Discharge {
            member: r.parse("member", MemberId::parse)?,
            on: r.parse("on", Date::parse)?,
            route: r.parse("route", Route::parse)?,
        },
        "unit_change" => EventBody::UnitChange {
            member: r.parse("member", MemberId::parse)?,
            unit: r.parse("unit", UnitId::parse)?,
            on: r.parse("on", Date::parse)?,
        },
        "death" => EventBody::Death {
            member: r.parse("member", MemberId::parse)?,
            on: r.parse("on", Date::parse)?,
            cause: r.parse("cause", parse_cause)?,
        },
        "category_change" => EventBody::CategoryChange {
            member: r.parse("member", MemberId::parse)?,
            category: r.parse("category", Category::parse)?,
            on: r.parse("on", Date::parse)?,
        },
        "suspend" | "resume" => {
            let member = r.parse("member", MemberId::parse)?;
            let fund = r.parse("fund", Fund::parse)?;
            let from = r.parse("from", Period::parse)?;
            let reason = r.text("reason")?;
            if kind == "suspend" {
                EventBody::Suspend { member, fund, from, reason }
            } else {
                EventBody::Resume { member, fund, from, reason }
            }
        }
        "recovery" => EventBody::Recovery {
            member: r.parse("member", MemberId::parse)?,
            fund: r.parse("fund", Fund::parse)?,
            amount: r.money("amount")?,
            of: r.parse("of", EventId::parse)?,
            reason: r.text("reason")?,
        },
        "reversal" => {
            EventBody::Reversal { of: r.parse("of", EventId::parse)?, reason: r.text("reason")? }
        }
        "standard" => {
            let name = r.str("name")?.to_string();
            let spec = crate::standard::spec(&name)
                .ok_or_else(|| EventError::field("name", "not a known standard"))?;
            if let Some(why) = spec.retired {
                return Err(EventError::field("name", format!("{name} is retired: {why}")));
            }
            let value = r.str("value")?.to_string();
            crate::standard::parse_value(spec, &value)
                .map_err(|m| EventError::field("value", m))?;
            EventBody::Standard {
                name,
                value,
                effective_from: r.parse("effective_from", Date::parse)?,
            }
        }
        "backpay" => {
            use crate::backpay::{BackpayInput, UnitPayer};
            let member = r.parse("member", MemberId::parse)?;
            let input = BackpayInput {
                enlisted_on: r.parse("enlisted_on", Date::parse)?,
                discharged_on: r.parse("discharged_on", Date::parse)?,
                service_months: r.count("service_months")?,
                gap_months: r.count("gap_months")?,
                first_insured_on: r.parse_opt("first_insured_on", Date::parse)?,
                civilian_months: r.count("civilian_months")?,
                retirement_age_reached: r.flag("retirement_age_reached")?,
                average_wage: r.money("average_wage")?,
                pension_unit_ppm: r.percent("pension_unit_rate", true)?,
                pension_personal_ppm: r.percent("pension_personal_rate", true)?,
                medical_unit_ppm: r.percent("medical_unit_rate", true)?,
                medical_personal_ppm: r.percent("medical_personal_rate", true)?,
                unit_payer: r.parse("payer", |t| match t {
                    "unit" => Ok(UnitPayer::Unit),
                    "superior" => Ok(UnitPayer::Superior),
                    "fiscal" => Ok(UnitPayer::Fiscal),
                    _ => Err("expected unit, superior or fiscal (Opinion 2(2))".to_string()),
                })?,
                fiscal_shares_ppm: [
                    r.percent("central_share", false)?,
                    r.percent("provincial_share", false)?,
                    r.percent("municipal_share", false)?,
                    r.percent("county_share", false)?,
                ],
                personal_help_ppm: r.percent("personal_help_rate", false)?,
            };
            let scope = crate::backpay::BackpayScope {
                resettlement: r.parse("resettlement", crate::backpay::Resettlement::parse)?,
                category: r.parse("category", Category::parse)?,
                medical_average_wage: r.money("medical_average_wage")?,
                medical_gap_months: r.count("medical_gap_months")?,
            };
            EventBody::Backpay { member, input, scope }
        }
        "pay_change" => EventBody::PayChange {
            member: r.parse("member", MemberId::parse)?,
            monthly_pay: r.money("monthly_pay")?,
            on: r.parse("on", Date::parse)?,
        },
        "key_rotation" => EventBody::KeyRotation {
            public_key: hex_bytes(r, "public_key")?,
            signature: hex_bytes(r, "signature")?,
        },
        "transfer_out" | "transfer_confirmed" => {
            let member = r.parse("member", MemberId::parse)?;
            let fund = r.parse("fund", Fund::parse)?;
            let agency = r.parse("agency", AgencyId::parse)?;
            if kind == "transfer_out" {
                let part = r.parse_opt("part", SpousePart::parse)?;
                if part.is_some() && fund != Fund::Spouse {
                    return Err(EventError::field("part", "only for the spouse fund"));
                }
                EventBody::TransferOut { member, fund, agency, part }
            } else {
                EventBody::TransferConfirmed { member, fund, agency }
            }
        }
        "budget" => EventBody::Budget {
            fund: r.parse("fund", Fund::parse)?,
            year: r.parse("year", crate::admin::parse_year)?,
            line: r.parse("line", crate::admin::BudgetLine::parse)?,
            amount: r.money("amount")?,
        },
        "remittance" => EventBody::Remittance {
            unit: r.parse("unit", UnitId::parse)?,
            fund: r.parse("fund", Fund::parse)?,
            amount: r.money("amount")?,
            period: r.parse("period", Period::parse)?,
            reference: r.text("reference")?,
        },
        "bank_statement" => EventBody::BankStatement {
            fund: r.parse("fund", Fund::parse)?,
            account: r.parse("account", crate::ids::BankAccountId::parse)?,
            date: r.parse("date", Date::parse)?,
            balance: r.parse("balance", |t| Fen::parse_yuan(t).map_err(|e| e.to_string()))?,
            reference: r.text("reference")?,
        },
        "deposit_interest" => EventBody::DepositInterest {
            fund: r.parse("fund", Fund::parse)?,
            amount: r.money("amount")?,
            period: r.parse("period", Period::parse)?,
        },
        "year_close" => {
            return Err(EventError::field(
                "type",
                "a year_close is drawn from the journal and posted by `junbao close`",
            ));
        }

        "transfer_in" => {
            let member = r.parse("member", MemberId::parse)?;
            let fund = r.parse("fund", Fund::parse)?;
            let agency = r.parse("agency", AgencyId::parse)?;
            let part = spouse_part(r, fund)?;
            let amount = match r.opt_str("amount")? {
                Some("0") | Some("0.00") => Fen::ZERO,
                _ => r.money("amount")?,
            };
            EventBody::TransferIn { member, fund, agency, part, amount }
        }
        other => {
            return Err(EventError::field("type", format!("unknown event type {other:?}")));
        }
    };
    Ok(body)
}
