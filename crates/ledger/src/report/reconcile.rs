//! The reconciliation of the books per fund, and the rule of premiums still awaiting their
//! 1:1 match (Art. 20, 25), which the reconciliation, the exceptions report and the year close
//! share.

use std::collections::HashMap;

use serde::Serialize;

use crate::entry::Entry;
use crate::fund::{AccountKind, Fund, Holding};
use crate::ids::MemberId;
use crate::money::Fen;
use crate::state::{LedgerState, Line};
use crate::time::Period;

/// The reconciliation of the books.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub as_of_seq: u64,
    pub funds: Vec<ReconciledFund>,
    /// Why the journal and the materialised state differ, when they do.
    pub journal_error: Option<String>,
    pub journal_matches_materialised: bool,
    pub medical_premiums_awaiting_match: Vec<AwaitingMatch>,
    pub negative_member_holdings: Vec<NegativeHolding>,
    pub ok: bool,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ReconciledFund {
    pub fund: Fund,
    pub holdings: Vec<HoldingControl>,
    pub members_equal_control: bool,
    pub trial_balance: Fen,
    pub trial_balance_ok: bool,
}

/// One holding of one fund: the members' accounts against the journal's control total.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct HoldingControl {
    pub control: Fen,
    pub holding: &'static str,
    pub members: Fen,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct NegativeHolding {
    pub account: String,
    pub balance: Fen,
}

/// A medical premium (the member's, or the spouse's medical part) whose state match is not
/// the premium.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct AwaitingMatch {
    /// `medical`, or `spouse` for the spouse's medical part.
    pub fund: &'static str,
    #[serde(skip)]
    pub line: Line,
    pub matched: Fen,
    pub member: MemberId,
    pub period: Period,
    pub premium: Fen,
}

/// The money the journal moved into and out of members' accounts, per fund and holding: the
/// control totals the materialised balances are compared with.
#[derive(Debug, Default, Clone)]
pub struct ControlTotals(HashMap<(Fund, Holding), i64>);

impl ControlTotals {
    pub fn add(&mut self, entry: &Entry) {
        for p in &entry.postings {
            if let AccountKind::Member { holding, .. } = p.account.kind {
                let t = self.0.entry((p.account.fund, holding)).or_default();
                *t = t.saturating_add(p.amount.0);
            }
        }
    }

    pub fn get(&self, fund: Fund, holding: Holding) -> i64 {
        self.0.get(&(fund, holding)).copied().unwrap_or(0)
    }
}

/// Medical premiums, the members' and the spouses' medical part, without their 1:1 match
/// (Art. 20, 25). A spouse's month under an Art. 29 suspension is not awaiting one. Sorted by
/// fund, then the printed match, member, period and premium.
pub fn awaiting_match(state: &LedgerState) -> Vec<AwaitingMatch> {
    let mut v: Vec<AwaitingMatch> = state
        .periods()
        .into_iter()
        .filter(|(member, line, period, m)| {
            let suspended = *line == Line::SpouseMedical
                && state.members.get(member).is_some_and(|ms| ms.suspended_in(*period));
            matches!(line, Line::Medical | Line::SpouseMedical)
                && m.personal.0 != 0
                && m.state != m.personal
                && !suspended
        })
        .map(|(member, line, period, m)| AwaitingMatch {
            fund: if line == Line::Medical { "medical" } else { "spouse" },
            line,
            matched: m.state,
            member: member.clone(),
            period,
            premium: m.personal,
        })
        .collect();
    // The order of the report's rows since it was first printed: by the text of each row.
    v.sort_by_cached_key(|a| {
        (
            a.fund,
            a.matched.to_string(),
            a.member.clone(),
            a.period.to_string(),
            a.premium.to_string(),
        )
    });
    v
}

/// Reconciles the state against the journal's control totals (`control`, from every entry
/// through `as_of_seq`) and the outcome of the full verification (`verified`): each fund's
/// trial balance is zero, its members' accounts equal the control totals per holding, no
/// member's holding is negative, and the journal replays to the materialised state.
pub fn reconcile(
    state: &LedgerState,
    as_of_seq: u64,
    control: &ControlTotals,
    verified: Result<(), String>,
) -> Reconciliation {
    let trial = state.trial_balance();
    let mut funds = Vec::new();
    for f in Fund::ALL {
        let mut holdings = Vec::new();
        let mut members_ok = true;
        for h in Holding::ALL {
            let members: i64 = state
                .member_balances()
                .filter(|(a, _)| {
                    a.fund == f
                        && matches!(a.kind, AccountKind::Member { holding, .. } if holding == h)
                })
                .map(|(_, b)| b.0)
                .fold(0i64, i64::saturating_add);
            let ctl = control.get(f, h);
            members_ok &= members == ctl;
            holdings.push(HoldingControl {
                control: Fen(ctl),
                holding: h.name(),
                members: Fen(members),
            });
        }
        let t = trial.get(&f).copied().unwrap_or(0);
        funds.push(ReconciledFund {
            fund: f,
            holdings,
            members_equal_control: members_ok,
            trial_balance: Fen(i64::try_from(t).unwrap_or(i64::MAX)),
            trial_balance_ok: t == 0,
        });
    }
    // No member's holding is ever negative: one that is means a rule let it through.
    let negative: Vec<NegativeHolding> = state
        .negative_member_accounts()
        .into_iter()
        .map(|(a, balance)| NegativeHolding { account: a.to_string(), balance })
        .collect();
    let ok = verified.is_ok()
        && trial.values().all(|t| *t == 0)
        && funds.iter().all(|f| f.members_equal_control)
        && negative.is_empty();
    Reconciliation {
        as_of_seq,
        funds,
        journal_error: verified.as_ref().err().cloned(),
        journal_matches_materialised: verified.is_ok(),
        medical_premiums_awaiting_match: awaiting_match(state),
        negative_member_holdings: negative,
        ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::assert_sorted_keys;

    #[test]
    fn an_empty_ledger_reconciles_in_sorted_key_order() {
        let r = reconcile(&LedgerState::default(), 0, &ControlTotals::default(), Ok(()));
        assert!(r.ok);
        assert_sorted_keys(&r);
        let v = serde_json::to_value(&r).expect("serialises");
        assert_eq!(v["funds"][0]["trial_balance"], "0.00");
        assert_eq!(v["funds"][0]["holdings"][0]["holding"], "personal");
        let bad = reconcile(&LedgerState::default(), 0, &ControlTotals::default(), Err("x".into()));
        assert!(!bad.ok);
        assert_eq!(serde_json::to_value(&bad).expect("serialises")["journal_error"], "x");
    }

    #[test]
    fn the_rows_print_in_sorted_key_order() {
        assert_sorted_keys(&AwaitingMatch {
            fund: "spouse",
            line: Line::SpouseMedical,
            matched: Fen(0),
            member: MemberId::parse("M1").expect("valid id"),
            period: Period { year: 2025, month: 3 },
            premium: Fen(100),
        });
        assert_sorted_keys(&NegativeHolding { account: "a".into(), balance: Fen(-1) });
    }
}
