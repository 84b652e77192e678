//! The reports an audit starts with: a member's statement (Art. 39), the reconciliation of
//! the books, and the exceptions the law's rules find in the journal. The engine reads the
//! entries and tree nodes; `junbao_ledger::report` builds the documents.

use junbao_ledger::Date;
use junbao_ledger::entry::Entry;
use junbao_ledger::ids::MemberId;
use junbao_ledger::report::{
    BackpayReport, BalancesAsOf, BalancesAsOfBuilder, ControlTotals, Exceptions, ExceptionsFinder,
    Reconciliation, Statement, StatementBuilder,
};

use crate::{AuditError, Ledger, StoredEntry};

impl Ledger {
    /// Folds every entry of the journal, in order, into `acc` with `add`, then calls `finish`
    /// with `acc` and the state as of exactly the last entry added: entries posted while the
    /// scan ran are added too, so that a report comparing the journal with the state never
    /// compares two different heads.
    pub(crate) fn scan_then_state<A, T>(
        &self,
        acc: A,
        add: impl Fn(&mut A, Entry),
        finish: impl FnOnce(A, &junbao_ledger::LedgerState, u64) -> T,
    ) -> Result<T, AuditError> {
        let mut scanned = 0u64;
        let (mut acc, mut finish) = (Some(acc), Some(finish));
        loop {
            for item in self.entries_from(scanned + 1) {
                let (stored, e) = item?;
                scanned = stored.seq;
                add(acc.as_mut().expect("taken only on return"), e);
            }
            // Compared and used under one read of the state, so the head cannot move between.
            let out = self.with_state(|state, head| {
                (head.seq == scanned).then(|| {
                    let f = finish.take().expect("taken only on return");
                    f(acc.take().expect("taken only on return"), state, head.seq)
                })
            });
            if let Some(t) = out {
                return Ok(t);
            }
            // The state is behind the scan (a group written, its state not yet committed) or
            // ahead of it (posted since): look again. A poisoned store's last group will never
            // be committed: give up rather than wait for it.
            if self.is_poisoned() {
                return Err(AuditError::Io(
                    "the ledger cannot be written (a write or sync failed); reopen it".into(),
                ));
            }
            std::thread::yield_now();
        }
    }

    /// The stored entry `seq` and its decoding, for a sequence number an index named: one that
    /// is not stored or does not decode is an integrity failure.
    pub(crate) fn stored_entry(&self, seq: u64) -> Result<(StoredEntry, Entry), AuditError> {
        let stored = self
            .store
            .entry(seq)?
            .ok_or_else(|| AuditError::Integrity(format!("indexed entry {seq} is missing")))?;
        let entry = Entry::from_canonical_bytes(&stored.bytes)
            .map_err(|e| AuditError::Integrity(format!("entry {seq}: {e}")))?;
        Ok((stored, entry))
    }

    /// The member's record (Art. 39): every entry about them with a value date in the range,
    /// the postings to their accounts, and balances per fund as at the end of the range. With
    /// `proofs`, each entry carries an inclusion proof in the current tree and its bytes.
    pub fn statement(
        &self,
        member: &str,
        from: Option<Date>,
        to: Option<Date>,
        proofs: bool,
    ) -> Result<Statement, AuditError> {
        let id =
            MemberId::parse(member).map_err(|m| AuditError::Input(format!("--member: {m}")))?;
        let known = self.with_state(|s, _| s.members.contains_key(&id));
        if !known {
            return Err(AuditError::Input(format!("member {id} is not enrolled")));
        }
        let seqs = self.member_entry_seqs(&id)?;
        let size = self.head().seq;
        let mut statement = StatementBuilder::new(id, from, to);
        let nodes = crate::audit::CachedNodes::new(&self.store);
        for seq in seqs {
            let (stored, entry) = self.stored_entry(seq)?;
            if let Some(row) = statement.add(&entry)
                && proofs
            {
                row.proof = Some(self.inclusion_proof_from(&nodes, seq, Some(size))?);
                row.bytes = Some(hex::encode(&stored.bytes));
            }
        }
        Ok(statement.finish(size, self.root(size)?))
    }

    /// Reconciliation per fund: the trial balance is zero, members' accounts equal the money
    /// their entries moved into and out of them (control totals from the journal), medical
    /// matches equal premiums for the paying categories, and the balances recomputed from the
    /// journal equal the materialised ones.
    pub fn reconcile(&self) -> Result<Reconciliation, AuditError> {
        let verified = self.verify(&|_| {}).map(|_| ()).map_err(|e| e.to_string());
        self.scan_then_state(
            ControlTotals::default(),
            |control, e| control.add(&e),
            |control, state, seq| {
                junbao_ledger::report::reconcile::reconcile(state, seq, &control, verified)
            },
        )
    }

    /// Every entry that today's rules would refuse, found by replaying the journal from empty
    /// through them, plus premiums of paying members still without their 1:1 match.
    pub fn exceptions(&self) -> Result<Exceptions, AuditError> {
        self.scan_then_state(
            ExceptionsFinder::default(),
            |finder, e| finder.add(e),
            |finder, state, seq| finder.finish(seq, state),
        )
    }

    /// Balances of every account, optionally as at a value date (recomputed from the journal:
    /// entries with a later value date are left out) and for the members of one unit. Without
    /// a unit filter each fund's accounts sum to its trial balance, zero.
    pub fn balances_as_of(
        &self,
        as_of: Option<Date>,
        unit: Option<&str>,
    ) -> Result<BalancesAsOf, AuditError> {
        match as_of {
            None => Ok(self
                .with_state(|s, head| BalancesAsOfBuilder::current(s).finish(head.seq, s, unit))),
            Some(date) => self.scan_then_state(
                BalancesAsOfBuilder::as_of(date),
                |b, e| b.add(&e),
                |b, s, seq| b.finish(seq, s, unit),
            ),
        }
    }
}

/// The CSV form of [`Ledger::balances_as_of`]: `fund,member,unit,account,balance`, a TOTAL
/// row after each fund.
pub fn balances_csv(balances: &BalancesAsOf) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut row = |r: [&str; 5]| w.write_record(r).expect("writing CSV to memory cannot fail");
    row(["fund", "member", "unit", "account", "balance"]);
    for f in &balances.funds {
        let fund = f.fund.name();
        for a in &f.accounts {
            row([
                fund,
                a.member.as_ref().map_or("", |m| m.as_str()),
                a.unit.as_deref().unwrap_or_default(),
                &a.account,
                &a.balance.to_string(),
            ]);
        }
        row([fund, "", "", "TOTAL", &f.total.to_string()]);
    }
    let bytes = w.into_inner().expect("flushing CSV to memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

impl Ledger {
    /// Assesses a back-payment (a `backpay` event's JSON) with the standards in force on its
    /// value date (today when absent), without storing anything.
    pub fn backpay_assess(&self, line: &str) -> Result<BackpayReport, AuditError> {
        let event =
            junbao_ledger::parse_event_line(line).map_err(|e| AuditError::Input(e.to_string()))?;
        let junbao_ledger::EventBody::Backpay { member, input, scope } = &event.body else {
            return Err(AuditError::Input("field \"type\": must be backpay".into()));
        };
        let date = event.value_date.unwrap_or_else(|| self.today());
        let (standards, already) = self.with_state(|s, _| {
            (
                junbao_ledger::backpay::standards_on(&s.standards, date),
                s.backpaid.get(member).copied().unwrap_or_default(),
            )
        });
        let (rate, minimum_months) = standards.map_err(AuditError::Input)?;
        let (a, _) =
            junbao_ledger::backpay::assess_scoped(input, scope, rate, minimum_months, already)
                .map_err(|m| AuditError::Input(format!("Opinion: {m}")))?;
        Ok(BackpayReport::new(member.clone(), date, &a, already))
    }
}
