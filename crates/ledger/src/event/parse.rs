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

mod flat;
#[cfg(test)]
mod tests;

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

impl Field<'_> {
    fn value(&self) -> Value<'_> {
        match self {
            Field::Str(s) => Value::Str(s),
            Field::Number(n) => Value::Number(n),
            Field::Bool(b) => Value::Bool(*b),
            Field::Other(what) => Value::Other(what),
        }
    }
}

/// A field's JSON value as the rules of each event type read it, borrowed from wherever the
/// line was parsed into ([`RawEvent`] by serde, [`flat::FlatFields`] by the fast path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value<'v> {
    Str(&'v str),
    /// A JSON number, as text.
    Number(&'v str),
    Bool(bool),
    /// Any other JSON value, by what it is (`null`, `an array`...).
    Other(&'static str),
}

/// The fields of one event line, however it was parsed.
trait Fields {
    /// The value of field `f`, if the line has it.
    fn value(&self, f: F) -> Option<Value<'_>>;
    /// One bit ([`F::bit`]) for every field the line has.
    fn present(&self) -> u64;
}

macro_rules! raw_event {
    ($($f:ident),*) => {
        /// Every field any event may carry, by its position in [`RAW_FIELDS`]: `kind` is
        /// `type`. Which fields a type takes is checked after.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum F {
            kind,
            $($f,)*
        }

        const RAW_FIELDS: &[&str] = &["type", $(stringify!($f)),*];

        impl F {
            const ALL: &[F] = &[F::kind, $(F::$f),*];

            /// The field a JSON key names.
            fn of_key(key: &str) -> Option<F> {
                match key {
                    "type" => Some(F::kind),
                    $(stringify!($f) => Some(F::$f),)*
                    _ => None,
                }
            }
        }

        /// Every field any event may carry, as serde reads them (unknown names refused).
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawEvent<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<Field<'a>>,
            $(#[serde(borrow)] $f: Option<Field<'a>>,)*
        }

        impl Fields for RawEvent<'_> {
            fn value(&self, f: F) -> Option<Value<'_>> {
                match f {
                    F::kind => self.kind.as_ref().map(Field::value),
                    $(F::$f => self.$f.as_ref().map(Field::value),)*
                }
            }

            fn present(&self) -> u64 {
                let mut bits = if self.kind.is_some() { F::kind.bit() } else { 0 };
                $(if self.$f.is_some() {
                    bits |= F::$f.bit();
                })*
                bits
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

/// How many fields an event may carry, all told.
const FIELDS: usize = RAW_FIELDS.len();
const _: () = assert!(FIELDS <= 64, "the masks of present and used fields are a u64");
const _: () = assert!(F::ALL.len() == FIELDS);

impl F {
    fn name(self) -> &'static str {
        RAW_FIELDS[self as usize]
    }

    fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

/// Reads fields off an event line, remembering which were used so the rest can be refused.
struct Reader<'r, S> {
    fields: &'r S,
    /// One bit ([`F::bit`]) for every field asked for.
    used: u64,
}

impl<'r, S: Fields> Reader<'r, S> {
    fn get(&mut self, f: F) -> Option<Value<'r>> {
        self.used |= f.bit();
        self.fields.value(f)
    }

    fn opt_str(&mut self, f: F) -> Result<Option<&'r str>, EventError> {
        let name = f.name();
        match self.get(f) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => {
                Err(EventError::field(name, format!("must be a JSON string, got the number {n}")))
            }
            Some(Value::Bool(_)) => {
                Err(EventError::field(name, "must be a JSON string, got a boolean"))
            }
            Some(Value::Other(what)) => {
                Err(EventError::field(name, format!("must be a JSON string, got {what}")))
            }
        }
    }

    fn flag(&mut self, f: F) -> Result<bool, EventError> {
        match self.get(f) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(EventError::field(f.name(), "must be true or false")),
        }
    }

    fn count(&mut self, f: F) -> Result<u32, EventError> {
        let name = f.name();
        let text = match self.get(f) {
            Some(Value::Number(n) | Value::Str(n)) => n,
            None => return Err(EventError::field(name, "is required")),
            _ => return Err(EventError::field(name, "must be a whole number")),
        };
        text.parse::<u32>()
            .ok()
            .filter(|n| *n <= 1200)
            .ok_or_else(|| EventError::field(name, "must be a whole number of months, 0–1200"))
    }

    fn percent(&mut self, f: F, required: bool) -> Result<i64, EventError> {
        let name = f.name();
        match self.opt_str(f)? {
            None if !required => Ok(0),
            None => Err(EventError::field(name, "is required")),
            Some(t) => parse_percent_ppm(t)
                .map_err(|e| EventError::field(name, format!("a percent like \"8\": {e}"))),
        }
    }

    fn str(&mut self, f: F) -> Result<&'r str, EventError> {
        self.opt_str(f)?.ok_or_else(|| EventError::field(f.name(), "is required"))
    }

    fn parse<T>(
        &mut self,
        f: F,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, EventError> {
        let text = self.str(f)?;
        parse(text).map_err(|m| EventError::field(f.name(), m))
    }

    fn parse_opt<T>(
        &mut self,
        f: F,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, EventError> {
        match self.opt_str(f)? {
            None => Ok(None),
            Some(text) => parse(text).map(Some).map_err(|m| EventError::field(f.name(), m)),
        }
    }

    fn money(&mut self, f: F) -> Result<Fen, EventError> {
        match self.get(f) {
            Some(Value::Number(n)) => Err(EventError::field(
                f.name(),
                format!("money must be a JSON string like \"{n}.00\", not a number"),
            )),
            _ => self.parse(f, |t| Fen::parse_positive(t).map_err(|e| e.to_string())),
        }
    }

    fn text(&mut self, f: F) -> Result<String, EventError> {
        let text = self.str(f)?;
        check_text(f.name(), text)?;
        Ok(text.to_string())
    }

    fn grade(&mut self) -> Result<Option<u8>, EventError> {
        let text = match self.get(F::grade) {
            None => return Ok(None),
            Some(Value::Number(n) | Value::Str(n)) => n,
            Some(Value::Other(what)) => {
                return Err(EventError::field("grade", format!("must be 1–10, got {what}")));
            }
            Some(Value::Bool(_)) => {
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
///
/// A line that is one flat object of plain strings (every event `junbao bench` posts, and
/// most events) is read by [`flat::scan`] without serde; any other line, and every malformed
/// one, by serde, whose words the errors keep. Both give the same fields to [`parse_fields`],
/// so an event or refusal does not depend on which read the line.
pub fn parse_event_line(line: &str) -> Result<Event, EventError> {
    if line.len() > LINE_BYTES_MAX {
        return Err(EventError::event(format!("line longer than {LINE_BYTES_MAX} bytes")));
    }
    let mut fields = flat::FlatFields::new();
    match flat::scan(line, &mut fields) {
        Some(()) => parse_fields(&fields),
        None => parse_with_serde(line),
    }
}

/// [`parse_event_line`] past the length check, every line read by serde.
fn parse_with_serde(line: &str) -> Result<Event, EventError> {
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
    parse_fields(&raw)
}

fn fields_list() -> String {
    RAW_FIELDS.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
}

fn parse_fields<S: Fields>(fields: &S) -> Result<Event, EventError> {
    let kind = match fields.value(F::kind) {
        Some(Value::Str(s)) => s,
        Some(_) => return Err(EventError::field("type", "must be a JSON string")),
        None => return Err(EventError::field("type", "is required")),
    };
    let mut r = Reader { fields, used: F::kind.bit() };
    let id = r.parse(F::id, EventId::parse)?;
    let value_date = r.parse_opt(F::value_date, Date::parse)?;
    let memo = match r.opt_str(F::memo)? {
        Some(m) => {
            check_text("memo", m)?;
            Some(m.to_string())
        }
        None => None,
    };
    let body = parse_body(kind, &mut r)?;
    // Refuse fields this type does not take: a misplaced field is a mistake, not a no-op. The
    // first in `RAW_FIELDS` order is named.
    let unused = fields.present() & !r.used;
    if unused != 0 {
        let name = F::ALL[unused.trailing_zeros() as usize].name();
        return Err(EventError::field(name, format!("is not a field of a {kind} event")));
    }
    Ok(Event { id, value_date, memo, body })
}

fn spouse_part<S: Fields>(
    r: &mut Reader<'_, S>,
    fund: Fund,
) -> Result<Option<SpousePart>, EventError> {
    let part = r.parse_opt(F::part, SpousePart::parse)?;
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
fn hex_bytes<const N: usize, S: Fields>(
    r: &mut Reader<'_, S>,
    f: F,
) -> Result<[u8; N], EventError> {
    r.parse(f, |t| {
        hex::decode(t)
            .ok()
            .filter(|_| t.bytes().all(|b| !b.is_ascii_uppercase()))
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{N} bytes in lowercase hex"))
    })
}

fn parse_body<S: Fields>(kind: &str, r: &mut Reader<'_, S>) -> Result<EventBody, EventError> {
    let body = match kind {
        "enroll" => EventBody::Enroll {
            member: r.parse(F::member, MemberId::parse)?,
            category: r.parse(F::category, Category::parse)?,
            unit: r.parse(F::unit, UnitId::parse)?,
            enlisted_on: r.parse(F::enlisted_on, Date::parse)?,
            monthly_pay: r.money(F::monthly_pay)?,
            sponsor: r.parse_opt(F::sponsor, MemberId::parse)?,
        },
        "contribution" => {
            let member = r.parse(F::member, MemberId::parse)?;
            let fund = r.parse(F::fund, Fund::parse)?;
            EventBody::Contribution {
                member,
                fund,
                period: r.parse(F::period, Period::parse)?,
                amount: r.money(F::amount)?,
                unit: r.parse(F::unit, UnitId::parse)?,
                part: spouse_part(r, fund)?,
            }
        }
        "subsidy" => {
            let member = r.parse(F::member, MemberId::parse)?;
            let fund = r.parse(F::fund, Fund::parse)?;
            EventBody::Subsidy {
                member,
                fund,
                period: r.parse(F::period, Period::parse)?,
                amount: r.money(F::amount)?,
                basis: r.parse(F::basis, |t| match t {
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
            fund: r.parse(F::fund, Fund::parse)?,
            amount: r.money(F::amount)?,
        },
        "payout" => EventBody::Payout {
            member: r.parse(F::member, MemberId::parse)?,
            fund: r.parse(F::fund, Fund::parse)?,
            benefit: r.parse(F::benefit, |t| match t {
                "death" => Ok(Benefit::Death),
                "disability" => Ok(Benefit::Disability),
                _ => Err("casualty benefits are death or disability (Art. 7, 8)".to_string()),
            })?,
            amount: r.money(F::amount)?,
            cause: r.parse(F::cause, parse_cause)?,
            grade: r.grade()?,
            on: r.parse(F::on, Date::parse)?,
        },
        "interest" => EventBody::Interest {
            fund: r.parse(F::fund, Fund::parse)?,
            period: r.parse(F::period, Period::parse)?,
            rate_ppm: r.parse(F::rate, |t| {
                parse_percent_ppm(t).map_err(|e| format!("a percent like \"1.5\": {e}"))
            })?,
        },
        "discharge" => EventBody::Discharge {
            member: r.parse(F::member, MemberId::parse)?,
            on: r.parse(F::on, Date::parse)?,
            route: r.parse(F::route, Route::parse)?,
        },
        "unit_change" => EventBody::UnitChange {
            member: r.parse(F::member, MemberId::parse)?,
            unit: r.parse(F::unit, UnitId::parse)?,
            on: r.parse(F::on, Date::parse)?,
        },
        "death" => EventBody::Death {
            member: r.parse(F::member, MemberId::parse)?,
            on: r.parse(F::on, Date::parse)?,
            cause: r.parse(F::cause, parse_cause)?,
        },
        "category_change" => EventBody::CategoryChange {
            member: r.parse(F::member, MemberId::parse)?,
            category: r.parse(F::category, Category::parse)?,
            on: r.parse(F::on, Date::parse)?,
        },
        "suspend" | "resume" => {
            let member = r.parse(F::member, MemberId::parse)?;
            let fund = r.parse(F::fund, Fund::parse)?;
            let from = r.parse(F::from, Period::parse)?;
            let reason = r.text(F::reason)?;
            if kind == "suspend" {
                EventBody::Suspend { member, fund, from, reason }
            } else {
                EventBody::Resume { member, fund, from, reason }
            }
        }
        "recovery" => EventBody::Recovery {
            member: r.parse(F::member, MemberId::parse)?,
            fund: r.parse(F::fund, Fund::parse)?,
            amount: r.money(F::amount)?,
            of: r.parse(F::of, EventId::parse)?,
            reason: r.text(F::reason)?,
        },
        "reversal" => {
            EventBody::Reversal { of: r.parse(F::of, EventId::parse)?, reason: r.text(F::reason)? }
        }
        "standard" => {
            let name = r.str(F::name)?.to_string();
            let spec = crate::standard::spec(&name)
                .ok_or_else(|| EventError::field("name", "not a known standard"))?;
            if let Some(why) = spec.retired {
                return Err(EventError::field("name", format!("{name} is retired: {why}")));
            }
            let value = r.str(F::value)?.to_string();
            crate::standard::parse_value(spec, &value)
                .map_err(|m| EventError::field("value", m))?;
            EventBody::Standard {
                name,
                value,
                effective_from: r.parse(F::effective_from, Date::parse)?,
            }
        }
        "backpay" => {
            use crate::backpay::{BackpayInput, UnitPayer};
            let member = r.parse(F::member, MemberId::parse)?;
            let input = BackpayInput {
                enlisted_on: r.parse(F::enlisted_on, Date::parse)?,
                discharged_on: r.parse(F::discharged_on, Date::parse)?,
                service_months: r.count(F::service_months)?,
                gap_months: r.count(F::gap_months)?,
                first_insured_on: r.parse_opt(F::first_insured_on, Date::parse)?,
                civilian_months: r.count(F::civilian_months)?,
                retirement_age_reached: r.flag(F::retirement_age_reached)?,
                average_wage: r.money(F::average_wage)?,
                pension_unit_ppm: r.percent(F::pension_unit_rate, true)?,
                pension_personal_ppm: r.percent(F::pension_personal_rate, true)?,
                medical_unit_ppm: r.percent(F::medical_unit_rate, true)?,
                medical_personal_ppm: r.percent(F::medical_personal_rate, true)?,
                unit_payer: r.parse(F::payer, |t| match t {
                    "unit" => Ok(UnitPayer::Unit),
                    "superior" => Ok(UnitPayer::Superior),
                    "fiscal" => Ok(UnitPayer::Fiscal),
                    _ => Err("expected unit, superior or fiscal (Opinion 2(2))".to_string()),
                })?,
                fiscal_shares_ppm: [
                    r.percent(F::central_share, false)?,
                    r.percent(F::provincial_share, false)?,
                    r.percent(F::municipal_share, false)?,
                    r.percent(F::county_share, false)?,
                ],
                personal_help_ppm: r.percent(F::personal_help_rate, false)?,
            };
            let scope = crate::backpay::BackpayScope {
                resettlement: r.parse(F::resettlement, crate::backpay::Resettlement::parse)?,
                category: r.parse(F::category, Category::parse)?,
                medical_average_wage: r.money(F::medical_average_wage)?,
                medical_gap_months: r.count(F::medical_gap_months)?,
            };
            EventBody::Backpay { member, input, scope }
        }
        "pay_change" => EventBody::PayChange {
            member: r.parse(F::member, MemberId::parse)?,
            monthly_pay: r.money(F::monthly_pay)?,
            on: r.parse(F::on, Date::parse)?,
        },
        "key_rotation" => EventBody::KeyRotation {
            public_key: hex_bytes(r, F::public_key)?,
            signature: hex_bytes(r, F::signature)?,
        },
        "transfer_out" | "transfer_confirmed" => {
            let member = r.parse(F::member, MemberId::parse)?;
            let fund = r.parse(F::fund, Fund::parse)?;
            let agency = r.parse(F::agency, AgencyId::parse)?;
            if kind == "transfer_out" {
                let part = r.parse_opt(F::part, SpousePart::parse)?;
                if part.is_some() && fund != Fund::Spouse {
                    return Err(EventError::field("part", "only for the spouse fund"));
                }
                EventBody::TransferOut { member, fund, agency, part }
            } else {
                EventBody::TransferConfirmed { member, fund, agency }
            }
        }
        "budget" => EventBody::Budget {
            fund: r.parse(F::fund, Fund::parse)?,
            year: r.parse(F::year, crate::admin::parse_year)?,
            line: r.parse(F::line, crate::admin::BudgetLine::parse)?,
            amount: r.money(F::amount)?,
        },
        "remittance" => EventBody::Remittance {
            unit: r.parse(F::unit, UnitId::parse)?,
            fund: r.parse(F::fund, Fund::parse)?,
            amount: r.money(F::amount)?,
            period: r.parse(F::period, Period::parse)?,
            reference: r.text(F::reference)?,
        },
        "bank_statement" => EventBody::BankStatement {
            fund: r.parse(F::fund, Fund::parse)?,
            account: r.parse(F::account, crate::ids::BankAccountId::parse)?,
            date: r.parse(F::date, Date::parse)?,
            balance: r.parse(F::balance, |t| Fen::parse_yuan(t).map_err(|e| e.to_string()))?,
            reference: r.text(F::reference)?,
        },
        "deposit_interest" => EventBody::DepositInterest {
            fund: r.parse(F::fund, Fund::parse)?,
            amount: r.money(F::amount)?,
            period: r.parse(F::period, Period::parse)?,
        },
        "year_close" => {
            return Err(EventError::field(
                "type",
                "a year_close is drawn from the journal and posted by `junbao close`",
            ));
        }

        "transfer_in" => {
            let member = r.parse(F::member, MemberId::parse)?;
            let fund = r.parse(F::fund, Fund::parse)?;
            let agency = r.parse(F::agency, AgencyId::parse)?;
            let part = spouse_part(r, fund)?;
            let amount = match r.opt_str(F::amount)? {
                Some("0") | Some("0.00") => Fen::ZERO,
                _ => r.money(F::amount)?,
            };
            EventBody::TransferIn { member, fund, agency, part, amount }
        }
        other => {
            return Err(EventError::field("type", format!("unknown event type {other:?}")));
        }
    };
    Ok(body)
}
