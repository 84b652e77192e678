//! The figures a package states (particulars, service, yearly wages and money, totals),
//! computed from the member's entries for the exporter and the verifier alike.

use super::{PackageMember, Rates, Service, Totals, YearRow};
use crate::entry::Entry;
use crate::event::EventBody;
use crate::fund::{AccountKind, Category, Fund, Holding};
use crate::ids::{EventId, MemberId, UnitId};
use crate::money::{Fen, ppm_to_percent_string};
use crate::time::Date;
use std::collections::{BTreeMap, HashSet};

/// What the package states that is computed from its entries (and, for the pension fund, the
/// rates it states).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub member: PackageMember,
    pub service: Service,
    pub years: Vec<YearRow>,
    pub totals: Totals,
    pub transfer_entry: u64,
}

/// Per calendar year of value date: money of each holding, in fen.
#[derive(Default, Clone, Copy)]
struct Row {
    personal: i64,
    state: i64,
    interest: i64,
}

/// The member's postings in `fund`, by holding.
pub fn member_postings(entry: &Entry, member: &MemberId, fund: Fund) -> Vec<(Holding, i64)> {
    entry
        .postings
        .iter()
        .filter(|p| p.account.fund == fund)
        .filter_map(|p| match &p.account.kind {
            AccountKind::Member { member: m, holding, .. } if m == member => {
                Some((*holding, p.amount.0))
            }
            _ => None,
        })
        .collect()
}

/// True for the entries that move money between the member and an agency: transfer-outs and
/// their reversals. They are not part of what is transferred.
fn is_transfer(e: &Entry) -> bool {
    e.postings.iter().any(|p| matches!(p.account.kind, AccountKind::AgencyPayable { .. }))
}

/// True for an entry of the member's lifecycle the package carries so that its particulars can
/// be recomputed: enrolment, category and pay changes, discharge, death, and reversals that
/// move no money (a reversal of one of those).
pub fn is_lifecycle(entry: &Entry, member: &MemberId) -> bool {
    match entry.event.body.upgraded(entry.value_date).as_ref() {
        EventBody::Enroll { member: m, .. }
        | EventBody::CategoryChange { member: m, .. }
        | EventBody::UnitChange { member: m, .. }
        | EventBody::PayChange { member: m, .. }
        | EventBody::Discharge { member: m, .. }
        | EventBody::Death { member: m, .. } => m == member,
        EventBody::Reversal { .. } => entry.postings.is_empty(),
        _ => false,
    }
}

/// The member as its lifecycle entries describe it.
struct Lifecycle {
    categories: Vec<(Date, Category)>,
    unit: UnitId,
    enlisted_on: Date,
    pays: Vec<(Date, Fen)>,
    sponsor: Option<MemberId>,
    discharged_on: Option<Date>,
    deceased_on: Option<Date>,
}

impl Lifecycle {
    fn from_entries(entries: &[Entry], member: &MemberId) -> Result<Lifecycle, String> {
        // A reversal undoes its target when the target is among the entries.
        let listed: HashSet<&EventId> = entries.iter().map(|e| &e.event.id).collect();
        let reversed: HashSet<&EventId> = entries
            .iter()
            .filter_map(|e| match &e.event.body {
                EventBody::Reversal { of, .. } if listed.contains(of) => Some(of),
                _ => None,
            })
            .collect();
        let mut life: Option<Lifecycle> = None;
        for e in entries.iter().filter(|e| !reversed.contains(&e.event.id)) {
            // Variants recorded before issue 11 are read in today's form.
            match e.event.body.upgraded(e.value_date).as_ref() {
                EventBody::Enroll {
                    member: m,
                    category,
                    unit,
                    enlisted_on,
                    monthly_pay,
                    sponsor,
                } if m == member => {
                    life = Some(Lifecycle {
                        categories: vec![(*enlisted_on, *category)],
                        unit: unit.clone(),
                        enlisted_on: *enlisted_on,
                        pays: vec![(*enlisted_on, *monthly_pay)],
                        sponsor: sponsor.clone(),
                        discharged_on: None,
                        deceased_on: None,
                    });
                }
                body => {
                    let Some(l) = life.as_mut() else { continue };
                    match body {
                        EventBody::CategoryChange { member: m, category, on } if m == member => {
                            l.categories.push((*on, *category));
                        }
                        EventBody::PayChange { member: m, monthly_pay, on } if m == member => {
                            l.pays.push((*on, *monthly_pay));
                        }
                        EventBody::UnitChange { member: m, unit, .. } if m == member => {
                            l.unit = unit.clone();
                        }
                        EventBody::Discharge { member: m, on, .. } if m == member => {
                            l.discharged_on = Some(*on);
                        }
                        EventBody::Death { member: m, on, .. } if m == member => {
                            l.deceased_on = Some(*on);
                        }
                        _ => {}
                    }
                }
            }
        }
        let mut l = life.ok_or_else(|| "no enrolment entry of the member".to_string())?;
        l.pays.sort_by_key(|(d, _)| *d);
        l.categories.sort_by_key(|(d, _)| *d);
        Ok(l)
    }
}

/// Months of service (years.hundredths), as the package states them.
pub fn years_counted(months: i64) -> String {
    format!("{}.{:02}", months / 12, (months % 12) * 100 / 12)
}

fn counts_toward(fund: Fund) -> &'static str {
    match fund {
        Fund::Pension => {
            "basic pension contribution years, combined with years before and after service (Art. 16 para. 2)"
        }
        Fund::Medical => "deemed basic medical contribution years (Art. 23 para. 2)",
        _ => "contribution years of the spouse's pension and medical insurance (Art. 27, 28)",
    }
}

/// Months of service longer than this are refused (a century): bounds the wage loop.
const SERVICE_MONTHS_MAX: i64 = 1_200;

/// Computes what a package states from the member's entries up to and including the
/// transfer-out (lifecycle entries and entries moving money in the member's accounts of
/// `fund`, in sequence order) and, for the pension fund, the subsidy's unit and personal rates
/// in parts per million. The last entry must be the transfer-out.
pub fn figures(
    member: &MemberId,
    fund: Fund,
    entries: &[Entry],
    rates_ppm: Option<(i64, i64)>,
) -> Result<Figures, String> {
    let life = Lifecycle::from_entries(entries, member)?;
    let last = entries.last().ok_or("no entries")?;
    let service_end =
        life.discharged_on.or(life.deceased_on).unwrap_or(last.value_date).max(life.enlisted_on);
    // Service from the enrolment day to the last day, both inclusive (issue 11).
    let months = life.enlisted_on.service_until(service_end).0;
    if months > SERVICE_MONTHS_MAX {
        return Err(format!("{months} months of service exceed {SERVICE_MONTHS_MAX}"));
    }
    let wages = crate::wage::wages_by_year(life.enlisted_on, &life.pays, months)?;
    let mut rows: BTreeMap<i32, Row> = BTreeMap::new();
    for e in entries.iter().filter(|e| !is_transfer(e)) {
        let year = chrono::Datelike::year(&e.value_date.to_naive());
        for (h, fen) in member_postings(e, member, fund) {
            let r = rows.entry(year).or_default();
            let slot = match h {
                // Insurance brought in (Art. 15, 22, 26) was the person's own contributions.
                Holding::Personal | Holding::TransferredIn => &mut r.personal,
                Holding::State => &mut r.state,
                Holding::Interest => &mut r.interest,
            };
            *slot = slot.checked_add(fen).ok_or("amounts overflow")?;
        }
    }
    let mut t = Row::default();
    let mut years: Vec<i32> = rows.keys().chain(wages.keys()).copied().collect();
    years.sort_unstable();
    years.dedup();
    let mut list = Vec::with_capacity(years.len());
    for y in years {
        let r = rows.get(&y).copied().unwrap_or_default();
        let add = |a: i64, b: i64| a.checked_add(b).ok_or("totals overflow");
        t.personal = add(t.personal, r.personal)?;
        t.state = add(t.state, r.state)?;
        t.interest = add(t.interest, r.interest)?;
        let wage = wages.get(&y).copied().unwrap_or(Fen::ZERO);
        let parts = rates_ppm.map(|r| crate::wage::pension_parts(wage, r)).transpose()?;
        list.push(YearRow {
            year: y,
            contribution_wage: wage.to_string(),
            personal: Fen(r.personal).to_string(),
            state: Fen(r.state).to_string(),
            interest: Fen(r.interest).to_string(),
            unit_part: parts.map(|(unit, _)| unit.to_string()),
            personal_part: parts.map(|(_, personal)| personal.to_string()),
        });
    }
    let total = t
        .personal
        .checked_add(t.state)
        .and_then(|x| x.checked_add(t.interest))
        .ok_or("totals overflow")?;
    let category = life.categories.last().map(|(_, c)| *c).ok_or("no category")?;
    Ok(Figures {
        member: PackageMember {
            id: member.as_str().to_string(),
            category: category.name().to_string(),
            unit: life.unit.as_str().to_string(),
            sponsor: life.sponsor.as_ref().map(|s| s.as_str().to_string()),
        },
        service: Service {
            from: life.enlisted_on.to_string(),
            to: service_end.to_string(),
            months,
            years_counted: years_counted(months),
            counts_toward: counts_toward(fund).to_string(),
        },
        years: list,
        totals: Totals {
            personal: Fen(t.personal).to_string(),
            state: Fen(t.state).to_string(),
            interest: Fen(t.interest).to_string(),
            total: Fen(total).to_string(),
        },
        transfer_entry: last.seq,
    })
}

/// Rates as the package states them.
pub fn rates_json(rates_ppm: Option<(i64, i64)>) -> Option<Rates> {
    rates_ppm
        .map(|(u, p)| Rates { unit: ppm_to_percent_string(u), personal: ppm_to_percent_string(p) })
}
