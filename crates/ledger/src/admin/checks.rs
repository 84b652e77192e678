//! The rules the administration events obey: the postings of a withheld premium, a
//! remittance and the fund's deposit interest, and the checks of sealed years, budgets, bank
//! balances, closes and reversals of remitted premiums.

use super::AdminState;
use crate::entry::{Entry, Posting};
use crate::event::{EventBody, EventError};
use crate::fund::{Account, AccountKind, Fund, Source};
use crate::ids::UnitId;
use crate::money::Fen;
use crate::time::{Date, Period};

/// The extra postings of a premium withheld by `unit` (Art. 32): the unit owes it to the fund
/// until it remits it. They go into the contribution's own entry, so a premium and the
/// receivable it creates are one entry, balanced in one fund.
pub fn withheld_postings(fund: Fund, unit: &UnitId, period: Period, amount: Fen) -> [Posting; 2] {
    [
        Posting { account: Account::unit_receivable(fund, unit, period), amount },
        Posting { account: Account::unremitted(fund), amount: Fen(-amount.0) },
    ]
}

/// A `remittance`: the unit hands over what it withheld for `period`. `outstanding` is what
/// the unit still owes for that period; more is refused (Art. 32, 45).
pub fn remittance_postings(
    outstanding: Fen,
    fund: Fund,
    unit: &UnitId,
    period: Period,
    amount: Fen,
) -> Result<Vec<Posting>, EventError> {
    if amount > outstanding {
        return Err(EventError::field(
            "amount",
            format!(
                "Art. 32: unit {unit} owes the {fund} fund {outstanding} for {period}; a \
                 remittance of {amount} exceeds it"
            ),
        ));
    }
    Ok(vec![
        Posting { account: Account::unremitted(fund), amount },
        Posting { account: Account::unit_receivable(fund, unit, period), amount: Fen(-amount.0) },
    ])
}

/// A `deposit_interest`: interest the special bank account earned, fund income not credited to
/// any member (Art. 31). Once per fund and period: a correction reverses the first one.
pub fn deposit_interest_postings(
    state: &AdminState,
    fund: Fund,
    period: Period,
    amount: Fen,
) -> Result<Vec<Posting>, EventError> {
    if state.deposit_interest.contains(&(fund, period)) {
        return Err(EventError::field(
            "period",
            format!(
                "Art. 31: the {fund} fund's deposit interest for {period} is already recorded; \
                 reverse it to correct it"
            ),
        ));
    }
    Ok(deposit_interest_postings_unchecked(fund, amount))
}

pub(super) fn deposit_interest_postings_unchecked(fund: Fund, amount: Fen) -> Vec<Posting> {
    vec![
        Posting { account: Account::pool(fund), amount },
        Posting { account: Account::source(fund, Source::Interest), amount: Fen(-amount.0) },
    ]
}

/// Whether an event moves money (and so may not take effect in a sealed year).
fn moves_money(body: &EventBody) -> bool {
    !matches!(
        body,
        EventBody::Enroll { .. }
            | EventBody::Death { .. }
            | EventBody::CategoryChange { .. }
            | EventBody::PayChange { .. }
            | EventBody::UnitChange { .. }
            | EventBody::Suspend { .. }
            | EventBody::Resume { .. }
            | EventBody::Standard { .. }
            | EventBody::Backpay { .. }
            | EventBody::Budget { .. }
            | EventBody::BankStatement { .. }
    )
}

/// Refuses an event that would move money in a sealed year: the year's final accounts are
/// published; a correction goes into the open year, referencing the closed one (Art. 34).
pub fn check_sealed(
    state: &AdminState,
    body: &EventBody,
    value_date: Date,
) -> Result<(), EventError> {
    let Some(closed) = state.closed_through else { return Ok(()) };
    if !moves_money(body) || value_date.period().year > closed {
        return Ok(());
    }
    let field = if matches!(body, EventBody::YearClose { .. }) { "year" } else { "value_date" };
    Err(EventError::field(
        field,
        format!(
            "Art. 34: value date {value_date} is in {}, which is closed (year_close of {closed}); \
             post the correction in the open year with a value_date after {closed}-12-31 and a \
             memo naming the closed entry",
            value_date.period().year
        ),
    ))
}

/// A budget for a closed year is refused: its final accounts are drawn.
pub fn check_budget(state: &AdminState, year: u16) -> Result<(), EventError> {
    match state.closed_through {
        Some(closed) if year <= closed => Err(EventError::field(
            "year",
            format!("Art. 34: {year} is closed; its final accounts are drawn"),
        )),
        _ => Ok(()),
    }
}

/// A `bank_statement` balance may be zero but not negative (a deposit account).
pub fn check_bank_balance(balance: Fen) -> Result<(), EventError> {
    if balance.0 < 0 {
        return Err(EventError::field("balance", "a deposit account's balance is not negative"));
    }
    Ok(())
}

/// The checks of a `year_close` the rules can make: years close in order, after they end, and
/// on the head the accounts were drawn from (`through_seq` is the last entry they cover, so
/// nothing can slip in between drawing them and sealing the year).
pub fn check_close(
    state: &AdminState,
    year: u16,
    through_seq: u64,
    next_seq: u64,
    value_date: Date,
) -> Result<(), EventError> {
    if let Some(closed) = state.closed_through
        && year <= closed
    {
        return Err(EventError::field("year", format!("{year} is already closed")));
    }
    if value_date.period().year <= year {
        return Err(EventError::field(
            "year",
            format!("{year} has not ended on {value_date}; a year is closed after 31 December"),
        ));
    }
    if through_seq + 1 != next_seq {
        return Err(EventError::field(
            "through_seq",
            format!(
                "the accounts were drawn through entry {through_seq} but the ledger is at entry {}; \
                 draw them again",
                next_seq - 1
            ),
        ));
    }
    Ok(())
}

/// Refuses the reversal of a premium its unit has already remitted (the receivable would go
/// negative): reverse the remittance first, or post the correction as a refund.
pub fn check_reversal(target: &Entry, balance: &dyn Fn(&Account) -> Fen) -> Result<(), EventError> {
    for p in &target.postings {
        if let AccountKind::UnitReceivable { unit, period } = &p.account.kind
            && p.amount.0 > 0
        {
            let owed = balance(&p.account);
            if owed < p.amount {
                return Err(EventError::field(
                    "of",
                    format!(
                        "unit {unit} has already remitted the {} premium for {period} (it owes \
                         {owed} of {}); reverse the remittance first",
                        p.account.fund, p.amount
                    ),
                ));
            }
        }
    }
    Ok(())
}
