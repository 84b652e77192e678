//! The reports an audit starts with: a member's statement (Art. 39), the reconciliation of
//! the books, and the exceptions the law's rules find in the journal.

use std::collections::{BTreeMap, HashMap};

use junbao_ledger::entry::Entry;
use junbao_ledger::fund::{AccountKind, Holding};
use junbao_ledger::ids::{EventId, MemberId};
use junbao_ledger::standard::StandardName;
use junbao_ledger::state::Line;
use junbao_ledger::{Date, EntryLookup, Fen, Fund, LedgerState};
use serde_json::{Value, json};

use crate::{AuditError, Ledger};

impl Ledger {
    /// The member's record (Art. 39): every entry about them with a value date in the range,
    /// the postings to their accounts, and balances per fund as at the end of the range. With
    /// `proofs`, each entry carries an inclusion proof in the current tree.
    pub fn statement(
        &self,
        member: &str,
        from: Option<Date>,
        to: Option<Date>,
        proofs: bool,
    ) -> Result<Value, AuditError> {
        let id =
            MemberId::parse(member).map_err(|m| AuditError::Input(format!("--member: {m}")))?;
        let known = self.with_state(|s, _| s.members.contains_key(&id));
        if !known {
            return Err(AuditError::Input(format!("member {id} is not enrolled")));
        }
        let seqs = self.member_entry_seqs(&id)?;
        let size = self.head().seq;
        let mut balances: BTreeMap<String, (Fund, i64)> = BTreeMap::new();
        let mut rows = Vec::new();
        let nodes = crate::audit::CachedNodes::new(&self.store);
        for seq in seqs {
            let stored = self
                .store
                .entry(seq)?
                .ok_or_else(|| AuditError::Integrity(format!("indexed entry {seq} is missing")))?;
            let entry = Entry::from_canonical_bytes(&stored.bytes)
                .map_err(|e| AuditError::Integrity(format!("entry {seq}: {e}")))?;
            if to.is_some_and(|t| entry.value_date > t) {
                continue;
            }
            let mine: Vec<_> =
                entry.postings.iter().filter(|p| p.account.member_id() == Some(&id)).collect();
            for p in &mine {
                let b = balances.entry(p.account.to_string()).or_insert((p.account.fund, 0));
                b.1 += p.amount.0;
            }
            if from.is_some_and(|f| entry.value_date < f) {
                continue;
            }
            let mut row = json!({
                "seq": seq,
                "value_date": entry.value_date.to_string(),
                "type": entry.event.body.type_name(),
                "event": entry.event.to_json(),
                "postings": mine.iter().map(|p| json!({"account": p.account.to_string(), "amount": p.amount.to_string()})).collect::<Vec<_>>(),
            });
            if proofs {
                row["proof"] = self.inclusion_proof_from(&nodes, seq, Some(size))?;
                // The canonical bytes, so that a reader checks the proof from the entry itself
                // (its leaf hash) and the row against the entry (the web console does both).
                row["bytes"] = json!(hex::encode(&stored.bytes));
            }
            rows.push(row);
        }
        let mut funds: BTreeMap<Fund, Vec<Value>> = BTreeMap::new();
        for (account, (fund, fen)) in &balances {
            funds
                .entry(*fund)
                .or_default()
                .push(json!({"account": account, "balance": Fen(*fen).to_string()}));
        }
        Ok(json!({
            "member": id.as_str(),
            "from": from.map(|d| d.to_string()),
            "to": to.map(|d| d.to_string()),
            "as_of_seq": size,
            "root": hex::encode(self.root(size)?),
            "funds": funds.into_iter().map(|(f, a)| json!({"fund": f.name(), "accounts": a})).collect::<Vec<_>>(),
            "entries": rows,
        }))
    }

    /// Reconciliation per fund: the trial balance is zero, members' accounts equal the money
    /// their entries moved into and out of them (control totals from the journal), medical
    /// matches equal premiums for the paying categories, and the balances recomputed from the
    /// journal equal the materialised ones.
    pub fn reconcile(&self) -> Result<Value, AuditError> {
        let verified = self.verify(&|_| {});
        let mut control: HashMap<(Fund, Holding), i64> = HashMap::new();
        for item in self.entries_from(1) {
            let (_, e) = item?;
            for p in &e.postings {
                if let AccountKind::Member { holding, .. } = p.account.kind {
                    *control.entry((p.account.fund, holding)).or_default() += p.amount.0;
                }
            }
        }
        let report = self.with_state(|state, head| {
            let trial = state.trial_balance();
            let mut funds = Vec::new();
            for f in Fund::ALL {
                let mut holdings = Vec::new();
                let mut members_ok = true;
                for h in Holding::ALL {
                    let members: i64 = state
                        .balances
                        .iter()
                        .filter(|(a, _)| a.fund == f && matches!(a.kind, AccountKind::Member { holding, .. } if holding == h))
                        .map(|(_, b)| b.0)
                        .sum();
                    let ctl = control.get(&(f, h)).copied().unwrap_or(0);
                    members_ok &= members == ctl;
                    holdings.push(json!({"holding": h.name(), "members": Fen(members).to_string(), "control": Fen(ctl).to_string()}));
                }
                funds.push(json!({
                    "fund": f.name(),
                    "trial_balance": Fen(i64::try_from(trial[&f]).unwrap_or(i64::MAX)).to_string(),
                    "trial_balance_ok": trial[&f] == 0,
                    "members_equal_control": members_ok,
                    "holdings": holdings,
                }));
            }
            let unmatched = unmatched_premiums(state);
            // No member's holding is ever negative: one that is means a rule let it through.
            let negative: Vec<Value> = state
                .negative_member_accounts()
                .into_iter()
                .map(|(a, f)| json!({"account": a.to_string(), "balance": f.to_string()}))
                .collect();
            let ok = verified.is_ok()
                && trial.values().all(|t| *t == 0)
                && funds.iter().all(|f| f["members_equal_control"] == true)
                && negative.is_empty();
            json!({
                "as_of_seq": head.seq,
                "ok": ok,
                "journal_matches_materialised": verified.as_ref().map(|_| true).unwrap_or(false),
                "journal_error": verified.as_ref().err().map(|e| e.to_string()),
                "funds": funds,
                "medical_premiums_awaiting_match": unmatched,
                "negative_member_holdings": negative,
            })
        });
        Ok(report)
    }

    /// Every entry that today's rules would refuse, found by replaying the journal from empty
    /// through them, plus premiums of paying members still without their 1:1 match.
    pub fn exceptions(&self) -> Result<Value, AuditError> {
        struct Seen(HashMap<EventId, Entry>);
        impl EntryLookup for Seen {
            fn entry_by_event_id(
                &self,
                id: &EventId,
            ) -> Result<Option<Entry>, junbao_ledger::LookupError> {
                Ok(self.0.get(id).cloned())
            }
        }
        let mut state = LedgerState::default();
        let mut seen = Seen(HashMap::new());
        let mut found = Vec::new();
        for item in self.entries_from(1) {
            let (_, entry) = item?;
            let mut batch = state.begin(entry.seq.saturating_sub(1), [0; 32]);
            // An event recorded before issue 11 is judged in its current form (a discharge
            // without a route as `employee`, see docs/EVENTS.md).
            let mut event = entry.event.clone();
            event.body = event.body.upgraded(entry.value_date).into_owned();
            match batch.apply(event, entry.recorded_at_us, &seen) {
                Ok(_) => {
                    let prepared = batch.finish();
                    state.commit(prepared.changes);
                }
                Err(e) => {
                    found.push(json!({
                        "seq": entry.seq,
                        "id": entry.event.id.as_str(),
                        "type": entry.event.body.type_name(),
                        "member": entry.event.body.member().map(|m| m.as_str().to_string()),
                        "exception": e.to_string(),
                    }));
                    // Keep the journal's own money so later entries are judged on what
                    // actually happened. (Only the postings: the entry's effects on a
                    // member today's rules did not enrol cannot be replayed.)
                    for p in &entry.postings {
                        let b = state.balances.entry(p.account.clone()).or_default();
                        *b = b.checked_add(p.amount).unwrap_or(*b);
                    }
                }
            }
            seen.0.insert(entry.event.id.clone(), entry);
        }
        let unmatched = self.with_state(|s, _| unmatched_premiums(s));
        Ok(
            json!({"as_of_seq": self.head().seq, "exceptions": found, "medical_premiums_awaiting_match": unmatched}),
        )
    }
}

/// Medical premiums, the members' and the spouses' medical part, without their 1:1 match (a
/// spouse's month under an Art. 29 suspension is not awaiting one).
fn unmatched_premiums(state: &LedgerState) -> Vec<Value> {
    let mut v: Vec<_> = state
        .periods
        .iter()
        .filter(|((member, line, period), m)| {
            let suspended = *line == Line::SpouseMedical
                && state.members.get(member).is_some_and(|ms| ms.suspended_in(*period));
            matches!(line, Line::Medical | Line::SpouseMedical)
                && m.personal.0 != 0
                && m.state != m.personal
                && !suspended
        })
        .map(|((member, line, period), m)| {
            let fund = if *line == Line::Medical { "medical" } else { "spouse" };
            json!({"member": member.as_str(), "fund": fund, "period": period.to_string(), "premium": m.personal.to_string(), "matched": m.state.to_string()})
        })
        .collect();
    v.sort_by_key(|a| a.to_string());
    v
}

impl Ledger {
    /// Balances of every account, optionally as at a value date (recomputed from the journal:
    /// entries with a later value date are left out) and for the members of one unit. Without
    /// a unit filter each fund's accounts sum to its trial balance, zero.
    pub fn balances_as_of(
        &self,
        as_of: Option<Date>,
        unit: Option<&str>,
    ) -> Result<Value, AuditError> {
        let mut sums: BTreeMap<String, (Fund, Option<String>, i64)> = BTreeMap::new();
        let head_seq;
        match as_of {
            None => {
                let sheet = self.balances(None, None);
                head_seq = sheet.as_of_seq;
                self.with_state(|s, _| {
                    for (account, fen) in &s.balances {
                        let member = account.member_id().map(|m| m.as_str().to_string());
                        sums.insert(account.to_string(), (account.fund, member, fen.0));
                    }
                });
            }
            Some(date) => {
                head_seq = self.head().seq;
                for item in self.entries_from(1) {
                    let (_, e) = item?;
                    if e.value_date > date {
                        continue;
                    }
                    for p in &e.postings {
                        let member = p.account.member_id().map(|m| m.as_str().to_string());
                        sums.entry(p.account.to_string())
                            .or_insert((p.account.fund, member, 0))
                            .2 += p.amount.0;
                    }
                }
            }
        }
        let units: HashMap<String, String> = self.with_state(|s, _| {
            s.members
                .iter()
                .map(|(id, m)| (id.as_str().to_string(), m.unit.as_str().to_string()))
                .collect()
        });
        let mut funds = Vec::new();
        for f in Fund::ALL {
            let mut total = 0i64;
            let mut accounts = Vec::new();
            for (account, (fund, member, fen)) in &sums {
                if *fund != f || *fen == 0 {
                    continue;
                }
                let member_unit = member.as_ref().and_then(|m| units.get(m)).cloned();
                if let Some(u) = unit
                    && member_unit.as_deref() != Some(u)
                {
                    continue;
                }
                total += fen;
                accounts.push(json!({"account": account, "member": member, "unit": member_unit, "balance": Fen(*fen).to_string()}));
            }
            funds.push(
                json!({"fund": f.name(), "total": Fen(total).to_string(), "accounts": accounts}),
            );
        }
        Ok(json!({
            "as_of": as_of.map(|d| d.to_string()),
            "as_of_seq": head_seq,
            "unit": unit,
            "funds": funds,
        }))
    }
}

/// The CSV form of [`Ledger::balances_as_of`]: `fund,member,unit,account,balance`, a TOTAL
/// row after each fund.
pub fn balances_csv(balances: &Value) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut row = |r: [&str; 5]| w.write_record(r).expect("writing CSV to memory cannot fail");
    row(["fund", "member", "unit", "account", "balance"]);
    for f in balances["funds"].as_array().into_iter().flatten() {
        let fund = f["fund"].as_str().unwrap_or("");
        for a in f["accounts"].as_array().into_iter().flatten() {
            row([
                fund,
                a["member"].as_str().unwrap_or(""),
                a["unit"].as_str().unwrap_or(""),
                a["account"].as_str().unwrap_or(""),
                a["balance"].as_str().unwrap_or(""),
            ]);
        }
        row([fund, "", "", "TOTAL", f["total"].as_str().unwrap_or("")]);
    }
    let bytes = w.into_inner().expect("flushing CSV to memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

impl Ledger {
    /// Assesses a back-payment (a `backpay` event's JSON) with the standards in force on its
    /// value date (today when absent), without storing anything.
    pub fn backpay_assess(&self, line: &str) -> Result<Value, AuditError> {
        let event =
            junbao_ledger::parse_event_line(line).map_err(|e| AuditError::Input(e.to_string()))?;
        let junbao_ledger::EventBody::Backpay { member, input, scope } = &event.body else {
            return Err(AuditError::Input("field \"type\": must be backpay".into()));
        };
        let date = event.value_date.unwrap_or_else(|| {
            junbao_ledger::Date::from_naive(
                chrono::DateTime::from_timestamp_micros(self.now_us())
                    .expect("clock in range")
                    .date_naive(),
            )
        });
        let (rate, minimum, already) = self.with_state(|s, _| {
            (
                s.standards.in_force(StandardName::BackpayBaseRate.as_str(), date),
                s.standards.in_force(StandardName::CivilianMinimumYears.as_str(), date),
                s.backpaid.get(member).copied().unwrap_or_default(),
            )
        });
        let (Some(rate), Some(minimum)) = (rate, minimum) else {
            return Err(AuditError::Input(format!(
                "no back-payment standards are in force on {date}"
            )));
        };
        let (a, _) = junbao_ledger::backpay::assess_scoped(
            input,
            scope,
            rate,
            u32::try_from(minimum * 12).unwrap_or(u32::MAX),
            already,
        )
        .map_err(|m| AuditError::Input(format!("Opinion: {m}")))?;
        let payer = match a.unit_payer {
            junbao_ledger::backpay::UnitPayer::Unit => "unit",
            junbao_ledger::backpay::UnitPayer::Superior => "superior",
            junbao_ledger::backpay::UnitPayer::Fiscal => "fiscal",
        };
        Ok(json!({
            "member": member.as_str(),
            "assessed_on": date.to_string(),
            "first_insured_on": a.first_insured_on.to_string(),
            "service_months": a.service_counted_months,
            "service_treatment": a.service_treatment,
            "backpay_months": a.backpay_months,
            "months_to_minimum": a.months_to_minimum,
            "minimum_rule": a.minimum_rule,
            "base": a.base.to_string(),
            "pension": {"unit": a.pension_unit.to_string(), "personal": a.pension_personal.to_string()},
            "medical": {"unit": a.medical_unit.to_string(), "personal": a.medical_personal.to_string(), "months": a.medical_backpay_months, "base": a.medical_base.to_string()},
            "already_backpaid_months": {"pension": already.pension_months, "medical": already.medical_months},
            "unit_part_paid_by": payer,
            "fiscal_split": {
                "central": a.fiscal_split[0].to_string(),
                "provincial": a.fiscal_split[1].to_string(),
                "municipal": a.fiscal_split[2].to_string(),
                "county": a.fiscal_split[3].to_string(),
            },
            "personal_part": {
                "by_person": a.personal_by_person.to_string(),
                "by_local_government": a.personal_by_government.to_string(),
            },
        }))
    }
}
