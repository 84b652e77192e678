//! Relationship transfer to a civilian agency (Art. 16, 23, 27, 28): the package the agency
//! receives, and its verification without access to the ledger. Schema in docs/TRANSFER.md.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use junbao_ledger::entry::Entry;
use junbao_ledger::fund::{AccountKind, Holding};
use junbao_ledger::ids::{AgencyId, MemberId};
use junbao_ledger::merkle::{leaf_hash, verify_inclusion};
use junbao_ledger::{EventBody, Fen, Fund};
use serde_json::{Value, json};

use crate::{AuditError, Ledger, SignedDigest, member_index_prefix};

pub const TRANSFER_SCHEMA: &str = "junbao.transfer/1";

fn io(e: impl std::fmt::Display) -> AuditError {
    AuditError::Io(e.to_string())
}

/// Per calendar year of value date: money of each holding.
#[derive(Default, Clone, Copy)]
struct Row {
    personal: i64,
    state: i64,
    interest: i64,
}

fn holding_of(entry: &Entry, member: &MemberId, fund: Fund) -> Vec<(Holding, i64)> {
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

/// Sums the member's money in the fund per year, from the entries other than transfers.
fn rows(entries: &[Entry], member: &MemberId, fund: Fund) -> BTreeMap<i32, Row> {
    let mut rows: BTreeMap<i32, Row> = BTreeMap::new();
    for e in entries {
        if is_transfer(e) {
            continue;
        }
        let year = chrono::Datelike::year(&e.value_date.to_naive());
        for (h, fen) in holding_of(e, member, fund) {
            let r = rows.entry(year).or_default();
            match h {
                // Insurance brought in (Art. 15, 22, 26) was the person's own contributions.
                Holding::Personal | Holding::TransferredIn => r.personal += fen,
                Holding::State => r.state += fen,
                Holding::Interest => r.interest += fen,
            }
        }
    }
    rows
}

fn rows_json(rows: &BTreeMap<i32, Row>, wages: &BTreeMap<i32, i64>) -> (Vec<Value>, Value) {
    let mut t = Row::default();
    // Every year with service (a contribution wage) or with money.
    let mut years: Vec<i32> = rows.keys().chain(wages.keys()).copied().collect();
    years.sort_unstable();
    years.dedup();
    let list = years
        .iter()
        .map(|y| {
            let r = rows.get(y).copied().unwrap_or_default();
            t.personal += r.personal;
            t.state += r.state;
            t.interest += r.interest;
            json!({
                "year": y,
                "contribution_wage": Fen(wages.get(y).copied().unwrap_or(0)).to_string(),
                "personal": Fen(r.personal).to_string(),
                "state": Fen(r.state).to_string(),
                "interest": Fen(r.interest).to_string(),
            })
        })
        .collect();
    let totals = json!({
        "personal": Fen(t.personal).to_string(),
        "state": Fen(t.state).to_string(),
        "interest": Fen(t.interest).to_string(),
        "total": Fen(t.personal + t.state + t.interest).to_string(),
    });
    (list, totals)
}

/// The `transfer_confirmed` event recording an agency's receipt, as a JSON line. Its id is
/// derived from the transfer, so confirming twice is a replay, not a second entry.
pub fn transfer_confirmed_line(member: &str, fund: &str, agency: &str) -> String {
    json!({"id": format!("confirm:{fund}:{member}:{agency}"), "type": "transfer_confirmed",
           "member": member, "fund": fund, "agency": agency})
    .to_string()
}

/// Adds `unit_part` and `personal_part` (contribution wage × rate, rounded half away from zero)
/// to every row.
fn add_parts(years: &mut [Value], unit_ppm: i64, personal_ppm: i64) {
    for y in years {
        let wage =
            Fen::parse_yuan(y["contribution_wage"].as_str().unwrap_or("0")).unwrap_or(Fen::ZERO);
        y["unit_part"] = json!(wage.mul_ppm(unit_ppm).to_string());
        y["personal_part"] = json!(wage.mul_ppm(personal_ppm).to_string());
    }
}

impl Ledger {
    /// Closes the member's account in `fund` with a transfer-out entry to `agency`, signs a
    /// digest that covers it, and returns the package (docs/TRANSFER.md).
    pub fn transfer_export(
        &self,
        member: &str,
        fund: Fund,
        agency: &str,
        key: &SigningKey,
    ) -> Result<Value, AuditError> {
        let mut packages = self.transfer_export_many(&[member], fund, agency, key, &|_| {})?;
        Ok(packages.pop().expect("one member, one package"))
    }

    /// Closes the accounts of many members in one post — all or none, the refusals naming
    /// their line (1-based position in `members`) — signs one digest, and returns a package per
    /// member. Open transfers to the same agency are re-issued.
    pub fn transfer_export_many(
        &self,
        members: &[&str],
        fund: Fund,
        agency: &str,
        key: &SigningKey,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Value>, AuditError> {
        let agency_id =
            AgencyId::parse(agency).map_err(|m| AuditError::Input(format!("--agency: {m}")))?;
        if fund == Fund::Casualty {
            return Err(AuditError::Input("the casualty fund is not transferred".into()));
        }
        let mut ids = Vec::with_capacity(members.len());
        for (i, member) in members.iter().enumerate() {
            let id = MemberId::parse(member)
                .map_err(|m| AuditError::Input(format!("line {}: member {m}", i + 1)))?;
            ids.push(id);
        }
        // Open transfers to this agency are re-issued; the other accounts are closed now.
        let open: Vec<Option<junbao_ledger::state::Transfer>> = self.with_state(|s, _| {
            ids.iter().map(|id| s.members.get(id).and_then(|m| m.transfer(fund).cloned())).collect()
        });
        let base = self.head().seq + 1;
        let mut lines = Vec::new();
        let mut position = Vec::new();
        for (i, (id, t)) in ids.iter().zip(&open).enumerate() {
            match t {
                Some(t) if t.agency == agency_id => {}
                Some(t) => {
                    return Err(AuditError::Input(format!(
                        "line {}: the {fund} account of {id} was transferred to agency {} (entry {})",
                        i + 1,
                        t.agency,
                        t.seq
                    )));
                }
                None => {
                    lines.push(
                        json!({
                            "id": format!("transfer:{fund}:{id}:{base}"),
                            "type": "transfer_out",
                            "member": id.as_str(),
                            "fund": fund.name(),
                            "agency": agency,
                        })
                        .to_string(),
                    );
                    position.push(i);
                }
            }
        }
        let mut seqs: Vec<u64> = open.iter().map(|t| t.as_ref().map_or(0, |t| t.seq)).collect();
        if !lines.is_empty() {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let posted = self.post_lines(&refs).map_err(|e| match e {
                // A post's line numbers count the new transfers only: name the member's line.
                crate::PostError::Rejected { errors, total } => AuditError::Input(format!(
                    "{total} of the transfers refused, nothing stored:\n{}",
                    errors
                        .iter()
                        .map(|l| format!("line {}: {}", position[l.line - 1] + 1, l.error))
                        .collect::<Vec<_>>()
                        .join("\n")
                )),
                other => AuditError::Input(other.to_string()),
            })?;
            for (k, seq) in posted.seqs.iter().enumerate() {
                seqs[position[k]] = *seq;
            }
        }
        let digest = self.digest(key)?;
        let nodes = crate::audit::CachedNodes::new(&self.store);
        let mut packages = Vec::with_capacity(ids.len());
        for (i, (id, transfer_seq)) in ids.iter().zip(seqs).enumerate() {
            packages.push(self.package(id, fund, &agency_id, transfer_seq, &digest, &nodes)?);
            progress(i + 1);
        }
        Ok(packages)
    }

    fn package(
        &self,
        id: &MemberId,
        fund: Fund,
        agency_id: &AgencyId,
        transfer_seq: u64,
        digest: &SignedDigest,
        nodes: &crate::audit::CachedNodes<'_>,
    ) -> Result<Value, AuditError> {
        let (m, service_end) = self.with_state(|s, _| {
            let m = s.members.get(id).cloned();
            let end = m.as_ref().and_then(|m| m.discharged_on.or(m.deceased_on));
            (m, end)
        });
        let m = m.ok_or_else(|| AuditError::Input(format!("member {id} is not enrolled")))?;
        let seqs: Vec<u64> = self
            .store
            .ids_prefix(&member_index_prefix(id))
            .map_err(io)?
            .iter()
            .filter_map(|(k, _)| {
                k.get(k.len() - 8..).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
            })
            .filter(|s| *s <= transfer_seq)
            .collect();
        let mut entries = Vec::new();
        let mut listed = Vec::new();
        for seq in seqs {
            let stored = self
                .store
                .entry(seq)
                .map_err(io)?
                .ok_or_else(|| AuditError::Integrity(format!("entry {seq} missing")))?;
            let entry = Entry::from_canonical_bytes(&stored.bytes)
                .map_err(|e| AuditError::Integrity(e.to_string()))?;
            if holding_of(&entry, id, fund).is_empty() {
                continue;
            }
            listed.push(json!({
                "seq": seq,
                "bytes": hex::encode(&stored.bytes),
                "proof": self.inclusion_proof_from(nodes, seq, Some(digest.tree_size))?,
            }));
            entries.push(entry);
        }
        let service_end =
            service_end.unwrap_or_else(|| entries.last().map_or(m.enlisted_on, |e| e.value_date));
        let months = m.enlisted_on.service_until(service_end).0;
        let mut wages: BTreeMap<i32, i64> = BTreeMap::new();
        let start = m.enlisted_on.to_naive();
        for i in 0..months {
            if let Some(d) =
                start.checked_add_months(chrono::Months::new(u32::try_from(i).unwrap_or(u32::MAX)))
            {
                *wages.entry(chrono::Datelike::year(&d)).or_default() +=
                    m.pay_on(junbao_ledger::Date::from_naive(d)).0;
            }
        }
        let (mut years, totals) = rows_json(&rows(&entries, id, fund), &wages);
        // Pension: the subsidy's unit and personal parts of each year's contribution wage, at
        // the rates in force on the discharge date (Art. 13-14), for the civilian record.
        let rates = if fund == Fund::Pension {
            self.with_state(|s, _| {
                let at = service_end;
                Some((
                    s.standards.in_force("pension_subsidy_unit_rate", at)?,
                    s.standards.in_force("pension_subsidy_personal_rate", at)?,
                ))
            })
        } else {
            None
        };
        if let Some((unit, personal)) = rates {
            add_parts(&mut years, unit, personal);
        }
        Ok(json!({
            "pension_rates": rates.map(|(u, p)| json!({
                "unit": junbao_ledger::money::ppm_to_percent_string(u),
                "personal": junbao_ledger::money::ppm_to_percent_string(p),
            })),
            "schema": TRANSFER_SCHEMA,
            "agency": agency_id.as_str(),
            "fund": fund.name(),
            "member": {
                "id": id.as_str(),
                "category": m.category_now().name(),
                "unit": m.unit.as_str(),
                "sponsor": m.sponsor.as_ref().map(|s| s.as_str()),
            },
            "service": {
                "from": m.enlisted_on.to_string(),
                "to": service_end.to_string(),
                "months": months,
                "years_counted": format!("{}.{:02}", months / 12, (months % 12) * 100 / 12),
                "counts_toward": match fund {
                    Fund::Pension => "basic pension contribution years, combined with years before and after service (Art. 16 para. 2)",
                    Fund::Medical => "deemed basic medical contribution years (Art. 23 para. 2)",
                    _ => "contribution years of the spouse's pension and medical insurance (Art. 27, 28)",
                },
            },
            "years": years,
            "totals": totals,
            "transfer_entry": transfer_seq,
            "entries": listed,
            "digest": digest.to_json(),
        }))
    }
}

/// What a verified package says.
#[derive(Debug, Clone)]
pub struct PackageReport {
    pub member: String,
    pub fund: String,
    pub total: String,
    pub entries: usize,
}

impl PackageReport {
    /// What `transfer verify` prints: `{"verified":true,"member","fund","total","entries"}`.
    pub fn to_json(&self) -> Value {
        json!({"verified": true, "member": self.member, "fund": self.fund, "total": self.total,
               "entries": self.entries})
    }
}

/// Verifies a transfer package offline: the digest's signature (and, if given, that it is the
/// trusted digest), every entry's leaf hash and inclusion proof against the digest's root,
/// every yearly amount and total as the sum of its entries, and that the last entry is the
/// transfer-out of that member and fund to that agency for the total. Names what fails.
pub fn verify_package(
    p: &Value,
    trusted: Option<&SignedDigest>,
) -> Result<PackageReport, AuditError> {
    let bad = |field: String, what: String| AuditError::Integrity(format!("{field}: {what}"));
    if p["schema"] != TRANSFER_SCHEMA {
        return Err(AuditError::Input(format!("not a {TRANSFER_SCHEMA} package")));
    }
    let digest = SignedDigest::from_json(&p["digest"])?;
    digest.verify_signature(trusted.map(|t| &t.public_key))?;
    if let Some(t) = trusted
        && (t.tree_size != digest.tree_size || t.root != digest.root)
    {
        return Err(bad("digest".into(), "differs from the trusted digest".into()));
    }
    let member = MemberId::parse(p["member"]["id"].as_str().unwrap_or(""))
        .map_err(|m| bad("member.id".into(), m))?;
    let fund = Fund::parse(p["fund"].as_str().unwrap_or("")).map_err(|m| bad("fund".into(), m))?;
    let mut entries = Vec::new();
    for (i, e) in p["entries"]
        .as_array()
        .ok_or_else(|| bad("entries".into(), "missing".into()))?
        .iter()
        .enumerate()
    {
        let field = format!("entries[{i}]");
        let bytes = hex::decode(e["bytes"].as_str().unwrap_or(""))
            .map_err(|_| bad(format!("{field}.bytes"), "not hex".into()))?;
        let proof = &e["proof"];
        let leaf = leaf_hash(&bytes);
        if proof["leaf_hash"].as_str() != Some(hex::encode(leaf).as_str()) {
            return Err(bad(format!("{field}.bytes"), "do not hash to the proof's leaf".into()));
        }
        let path: Vec<[u8; 32]> = proof["path"]
            .as_array()
            .ok_or_else(|| bad(format!("{field}.proof.path"), "missing".into()))?
            .iter()
            .map(|h| hex::decode(h.as_str().unwrap_or("")).ok().and_then(|b| b.try_into().ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad(format!("{field}.proof.path"), "not 32-byte hex hashes".into()))?;
        let index = proof["leaf_index"]
            .as_u64()
            .ok_or_else(|| bad(format!("{field}.proof.leaf_index"), "missing".into()))?;
        if proof["tree_size"].as_u64() != Some(digest.tree_size) {
            return Err(bad(format!("{field}.proof.tree_size"), "is not the digest's".into()));
        }
        verify_inclusion(index, digest.tree_size, &leaf, &path, &digest.root).map_err(|err| {
            bad(
                format!("{field}.proof"),
                format!("does not prove the entry is in the signed tree: {err}"),
            )
        })?;
        let entry = Entry::from_canonical_bytes(&bytes)
            .map_err(|err| bad(format!("{field}.bytes"), err.to_string()))?;
        if entry.seq != index + 1 || e["seq"].as_u64() != Some(entry.seq) {
            return Err(bad(
                format!("{field}.seq"),
                "does not match the entry and its proof".into(),
            ));
        }
        entries.push(entry);
    }
    let last = entries.last().ok_or_else(|| bad("entries".into(), "empty".into()))?;
    let agency = p["agency"].as_str().unwrap_or("");
    match last.event.body.upgraded(last.value_date).as_ref() {
        EventBody::TransferOut { member: m, fund: f, agency: a, .. }
            if m == &member && *f == fund && a.as_str() == agency => {}
        _ => return Err(bad("entries".into(), "the last entry is not this transfer-out".into())),
    }
    if p["transfer_entry"].as_u64() != Some(last.seq) {
        return Err(bad("transfer_entry".into(), "is not the transfer-out entry".into()));
    }
    let rows = rows(&entries, &member, fund);
    let wages: BTreeMap<i32, i64> = p["years"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|y| {
            Some((
                y["year"].as_i64()? as i32,
                Fen::parse_yuan(y["contribution_wage"].as_str()?).ok()?.0,
            ))
        })
        .collect();
    let (mut years, totals) = rows_json(&rows, &wages);
    let rate = |k: &str| {
        p["pension_rates"][k]
            .as_str()
            .map(|t| {
                junbao_ledger::money::parse_percent_ppm(t)
                    .map_err(|e| bad(format!("pension_rates.{k}"), e.to_string()))
            })
            .transpose()
    };
    let parts = match (rate("unit")?, rate("personal")?) {
        (Some(u), Some(p)) => Some((u, p)),
        (None, None) => None,
        _ => return Err(bad("pension_rates".into(), "needs both unit and personal".into())),
    };
    if let Some((u, pr)) = parts {
        add_parts(&mut years, u, pr);
    }
    let given = p["years"].as_array().cloned().unwrap_or_default();
    if given.len() != years.len() {
        return Err(bad(
            "years".into(),
            format!("{} rows, the entries give {}", given.len(), years.len()),
        ));
    }
    for (i, (g, e)) in given.iter().zip(&years).enumerate() {
        for f in ["year", "personal", "state", "interest", "unit_part", "personal_part"] {
            if g[f] != e[f] {
                return Err(bad(
                    format!("years[{i}].{f}"),
                    format!("{} in the package, {} from its entries", g[f], e[f]),
                ));
            }
        }
    }
    for f in ["personal", "state", "interest", "total"] {
        if p["totals"][f] != totals[f] {
            return Err(bad(
                format!("totals.{f}"),
                format!("{} in the package, {} from its entries", p["totals"][f], totals[f]),
            ));
        }
    }
    let payable: i64 = last
        .postings
        .iter()
        .filter(|x| matches!(&x.account.kind, AccountKind::AgencyPayable { agency: a } if a.as_str() == agency))
        .map(|x| x.amount.0)
        .sum();
    if Fen(payable).to_string() != totals["total"].as_str().unwrap_or("") {
        return Err(bad("totals.total".into(), format!("the transfer-out moved {}", Fen(payable))));
    }
    Ok(PackageReport {
        member: member.as_str().to_string(),
        fund: fund.name().to_string(),
        total: totals["total"].as_str().unwrap_or("").to_string(),
        entries: entries.len(),
    })
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn fund_title(fund: &str) -> &'static str {
    match fund {
        "pension" => "退役养老保险 Retirement pension insurance",
        "medical" => "退役医疗保险 Retirement medical insurance",
        "spouse" => "随军未就业配偶保险 Unemployed accompanying spouse insurance",
        _ => "军人伤亡保险 Casualty insurance",
    }
}

/// A printable HTML rendering of a package, with bilingual headings, showing the same figures.
/// The package is verified first; one that does not verify is not rendered.
pub fn render_package_html(p: &Value) -> Result<String, AuditError> {
    let report = verify_package(p, None)?;
    let s =
        |v: &Value| esc(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()).as_str());
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\n");
    h.push_str(
        "<title>军人保险关系转移接续单 Transfer of insurance relationship</title>\n<style>\n",
    );
    h.push_str("body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}\n");
    h.push_str("th,td{border:1px solid #888;padding:.25em .5em;text-align:left}td.n{text-align:right;font-family:monospace}\n");
    h.push_str("code{word-break:break-all}@media print{body{margin:0}}\n</style></head><body>\n");
    h.push_str("<h1>军人保险关系转移接续单<br><small>Transfer of servicemen insurance relationship</small></h1>\n");
    h.push_str(&format!("<h2>{}</h2>\n", esc(fund_title(p["fund"].as_str().unwrap_or("")))));
    h.push_str("<h3>基本信息 Particulars</h3>\n<table>\n");
    let service = &p["service"];
    for (label, value) in [
        ("接收机构 Receiving agency", s(&p["agency"])),
        ("人员编号 Member id", s(&p["member"]["id"])),
        ("人员类别 Category", s(&p["member"]["category"])),
        ("所在单位 Unit", s(&p["member"]["unit"])),
        ("服役起止 Service", format!("{} — {}", s(&service["from"]), s(&service["to"]))),
        ("服役月数 Months of service", s(&service["months"])),
        ("视同缴费年限 Years counted", s(&service["years_counted"])),
        ("计入 Counts toward", s(&service["counts_toward"])),
        ("转移记账号 Transfer entry", s(&p["transfer_entry"])),
    ] {
        h.push_str(&format!("<tr><th>{label}</th><td>{value}</td></tr>\n"));
    }
    h.push_str("</table>\n<h3>分年度明细 Per year (yuan)</h3>\n<table>\n");
    h.push_str("<tr><th>年度 Year</th><th>缴费工资 Contribution wage</th><th>个人缴费 Personal</th><th>国家补助 State</th><th>利息 Interest</th></tr>\n");
    for y in p["years"].as_array().into_iter().flatten() {
        h.push_str(&format!(
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\n",
            s(&y["year"]), s(&y["contribution_wage"]), s(&y["personal"]), s(&y["state"]), s(&y["interest"])
        ));
    }
    let t = &p["totals"];
    h.push_str(&format!(
        "<tr><th>合计 Totals</th><td></td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\n</table>\n",
        s(&t["personal"]), s(&t["state"]), s(&t["interest"])
    ));
    h.push_str(&format!(
        "<p><strong>转移金额 Amount transferred: {} 元 yuan</strong></p>\n",
        s(&t["total"])
    ));
    h.push_str("<h3>记账依据 Entries behind the amounts</h3>\n<table>\n<tr><th>序号 Seq</th><th>起息日 Value date</th><th>类型 Type</th><th>账户 Account</th><th>金额 Amount</th></tr>\n");
    for e in p["entries"].as_array().into_iter().flatten() {
        let bytes = hex::decode(e["bytes"].as_str().unwrap_or("")).unwrap_or_default();
        let Ok(entry) = Entry::from_canonical_bytes(&bytes) else { continue };
        for posting in entry.postings.iter().filter(|x| x.account.member_id().is_some()) {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td></tr>\n",
                entry.seq,
                entry.value_date,
                esc(entry.event.body.type_name()),
                esc(&posting.account.to_string()),
                posting.amount
            ));
        }
    }
    let d = &p["digest"];
    h.push_str("</table>\n<h3>校验 Verification</h3>\n<table>\n");
    for (label, value) in [
        ("账本条目数 Tree size", s(&d["tree_size"])),
        ("默克尔根 Merkle root", format!("<code>{}</code>", s(&d["root"]))),
        ("链头 Chain head", format!("<code>{}</code>", s(&d["head"]))),
        ("签名公钥 Public key", format!("<code>{}</code>", s(&d["public_key"]))),
        ("签署时间 Signed at", s(&d["recorded_at"])),
    ] {
        h.push_str(&format!("<tr><th>{label}</th><td>{value}</td></tr>\n"));
    }
    h.push_str(&format!(
        "</table>\n<p>本单随附同名 JSON 文件；以 <code>junbao transfer verify</code> 校验：{} 条记账均在已签名账本中，金额与记账一致。<br>\
         This sheet accompanies the JSON package; <code>junbao transfer verify</code> checked that all {} entries are in the signed ledger and that every amount is the sum of its entries.</p>\n",
        report.entries, report.entries
    ));
    h.push_str("</body></html>\n");
    Ok(h)
}
