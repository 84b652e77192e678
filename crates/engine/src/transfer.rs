//! Relationship transfer to a civilian agency (Art. 16, 23, 27, 28): the package the agency
//! receives, and its verification without access to the ledger. Schema in docs/TRANSFER.md.

use ed25519_dalek::SigningKey;
use junbao_ledger::Fund;
use junbao_ledger::entry::Entry;
use junbao_ledger::ids::{AgencyId, MemberId};
use junbao_ledger::standard::StandardName;
pub use junbao_ledger::transfer::TRANSFER_SCHEMA;
pub use junbao_ledger::transfer::VerifiedPackage as PackageReport;
use junbao_ledger::transfer::{
    PackageDigest, PackageEntry, PackageError, TransferPackage, check_transferred, figures,
    is_lifecycle, member_postings, rates_json,
};
use serde_json::{Value, json};

use crate::{AuditError, Ledger, SignedDigest};

/// The id of an event the ledger generates: `KIND:PART:PART...` when that fits the 64
/// characters of an event id (so ids generated before stay the same, and a repeated command
/// is a replay), else `KIND~` and the SHA-256 of the parts (NUL-separated) in hex, cut to fit.
pub fn generated_event_id(kind: &str, parts: &[&str]) -> String {
    let plain = std::iter::once(kind).chain(parts.iter().copied()).collect::<Vec<_>>().join(":");
    if plain.len() <= junbao_ledger::ids::EVENT_ID_LEN_MAX {
        return plain;
    }
    let digest = junbao_ledger::entry::sha256(parts.join("\0").as_bytes());
    let mut id = format!("{kind}~{}", hex::encode(digest));
    id.truncate(junbao_ledger::ids::EVENT_ID_LEN_MAX);
    id
}

/// The event id of the `n`-th key rotation (from 1): `key-rotation:N`.
pub fn key_rotation_id(n: usize) -> String {
    format!("key-rotation:{n}")
}

impl Ledger {
    /// The ledger's key rotations, oldest first, as `(seq, canonical bytes)`: the entries of
    /// ids `key-rotation:1`, `key-rotation:2`, ... that are key rotations.
    pub fn key_rotations(&self) -> Result<Vec<(u64, Vec<u8>)>, AuditError> {
        let mut out = Vec::new();
        for n in 1.. {
            let id = key_rotation_id(n);
            let records = self.id_records(&self.writer(), &[id.as_str()])?;
            let Some(record) = records.into_iter().next().flatten() else {
                break;
            };
            let (seq, _) = record?;
            let (stored, entry) = self.stored_entry(seq)?;
            if matches!(entry.event.body, junbao_ledger::EventBody::KeyRotation { .. }) {
                out.push((seq, stored.bytes));
            }
        }
        Ok(out)
    }
}

/// The `transfer_confirmed` event recording an agency's receipt, as a JSON line. Its id is
/// derived from the transfer, so confirming twice is a replay, not a second entry.
pub fn transfer_confirmed_line(member: &str, fund: &str, agency: &str) -> String {
    json!({"id": generated_event_id("confirm", &[fund, member, agency]), "type": "transfer_confirmed",
           "member": member, "fund": fund, "agency": agency})
    .to_string()
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
    ) -> Result<TransferPackage, AuditError> {
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
    ) -> Result<Vec<TransferPackage>, AuditError> {
        let agency_id =
            AgencyId::parse(agency).map_err(|m| AuditError::Input(format!("--agency: {m}")))?;
        check_transferred(fund).map_err(|m| AuditError::Input(m.to_string()))?;
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
                            "id": generated_event_id(
                                "transfer",
                                &[fund.name(), id.as_str(), &base.to_string()]
                            ),
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
                // A failed read or write keeps its kind: the disk is not the clerk's input.
                other => other.into(),
            })?;
            for (k, seq) in posted.seqs.iter().enumerate() {
                seqs[position[k]] = *seq;
            }
        }
        let digest = self.digest(key)?;
        let nodes = crate::audit::CachedNodes::new(&self.store);
        let mut rotations = Vec::new();
        for (seq, bytes) in self.key_rotations()? {
            if seq > digest.tree_size {
                continue;
            }
            let proof = self.inclusion_proof_from(&nodes, seq, Some(digest.tree_size))?;
            rotations.push(PackageEntry { bytes: hex::encode(bytes), proof, seq });
        }
        let mut packages = Vec::with_capacity(ids.len());
        for (i, (id, transfer_seq)) in ids.iter().zip(seqs).enumerate() {
            let mut package = self.package(id, fund, &agency_id, transfer_seq, &digest, &nodes)?;
            package.key_rotations = rotations.clone();
            package.sign(key).map_err(AuditError::Integrity)?;
            packages.push(package);
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
    ) -> Result<TransferPackage, AuditError> {
        let service_end = self
            .with_state(|s, _| s.members.get(id).and_then(|m| m.discharged_on.or(m.deceased_on)));
        if !self.with_state(|s, _| s.members.contains_key(id)) {
            return Err(AuditError::Input(format!("member {id} is not enrolled")));
        }
        let mut seqs = self.member_entry_seqs(id)?;
        seqs.retain(|s| *s <= transfer_seq);
        let mut entries = Vec::new();
        let mut listed = Vec::new();
        for seq in seqs {
            let (stored, entry) = self.stored_entry(seq)?;
            // The money of the member in this fund, and the lifecycle that determines the
            // particulars, service and wages (docs/TRANSFER.md).
            if member_postings(&entry, id, fund).is_empty() && !is_lifecycle(&entry, id) {
                continue;
            }
            let proof = self.inclusion_proof_from(nodes, seq, Some(digest.tree_size))?;
            listed.push(PackageEntry { bytes: hex::encode(&stored.bytes), proof, seq });
            entries.push(entry);
        }
        // Pension: the subsidy's unit and personal parts of each year's contribution wage, at
        // the rates in force on the discharge date (Art. 13-14), for the civilian record.
        let rates = if fund == Fund::Pension {
            let at = service_end
                .unwrap_or_else(|| entries.last().map_or(junbao_ledger::Date(0), |e| e.value_date));
            self.with_state(|s, _| {
                Some((
                    s.standards.in_force(StandardName::PensionSubsidyUnitRate.as_str(), at)?,
                    s.standards.in_force(StandardName::PensionSubsidyPersonalRate.as_str(), at)?,
                ))
            })
        } else {
            None
        };
        let f = figures(id, fund, &entries, rates)
            .map_err(|m| AuditError::Integrity(format!("the package of {id}: {m}")))?;
        Ok(TransferPackage {
            agency: agency_id.as_str().to_string(),
            digest: digest_doc(digest)?,
            entries: listed,
            fund: fund.name().to_string(),
            key_rotations: Vec::new(),
            member: f.member,
            package_signature: None,
            pension_rates: rates_json(rates),
            schema: TRANSFER_SCHEMA.to_string(),
            service: f.service,
            totals: f.totals,
            transfer_entry: transfer_seq,
            years: f.years,
        })
    }
}

/// The signed digest as a package carries it.
fn digest_doc(digest: &SignedDigest) -> Result<PackageDigest, AuditError> {
    serde_json::from_value(digest.to_json())
        .map_err(|e| AuditError::Integrity(format!("digest: {e}")))
}

impl Ledger {}

/// Verifies a transfer package offline against the pinned public key (never the key the
/// package carries) and, if given, a trusted digest (itself checked against the pinned key):
/// see `junbao_ledger::transfer::verify_package` and docs/TRANSFER.md. Names what fails.
pub fn verify_package(
    p: &Value,
    pinned: &[u8; 32],
    trusted: Option<&SignedDigest>,
) -> Result<PackageReport, AuditError> {
    if let Some(t) = trusted {
        t.verify_signature(Some(pinned)).map_err(|e| {
            AuditError::Integrity(format!(
                "the trusted digest is not signed by the pinned key: {e}"
            ))
        })?;
    }
    junbao_ledger::transfer::verify_package(p, pinned, trusted.map(|t| (t.tree_size, t.root)))
        .map_err(|e| match e {
            PackageError::Malformed(_) => AuditError::Input(e.to_string()),
            PackageError::Integrity { field, what } => {
                AuditError::Integrity(format!("{field}: {what}"))
            }
            other => AuditError::Integrity(other.to_string()),
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
pub fn render_package_html(p: &Value, pinned: &[u8; 32]) -> Result<String, AuditError> {
    let report = verify_package(p, pinned, None)?;
    // Verified, so it is a package of the schema's shape.
    let p: TransferPackage = serde_json::from_value(p.clone())
        .map_err(|e| AuditError::Input(format!("not a junbao.transfer/1 package: {e}")))?;
    let s = |v: &dyn std::fmt::Display| esc(&v.to_string());
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\n");
    h.push_str(
        "<title>军人保险关系转移接续单 Transfer of insurance relationship</title>\n<style>\n",
    );
    h.push_str("body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}\n");
    h.push_str("th,td{border:1px solid #888;padding:.25em .5em;text-align:left}td.n{text-align:right;font-family:monospace}\n");
    h.push_str("code{word-break:break-all}@media print{body{margin:0}}\n</style></head><body>\n");
    h.push_str("<h1>军人保险关系转移接续单<br><small>Transfer of servicemen insurance relationship</small></h1>\n");
    h.push_str(&format!("<h2>{}</h2>\n", esc(fund_title(&p.fund))));
    h.push_str("<h3>基本信息 Particulars</h3>\n<table>\n");
    let service = &p.service;
    for (label, value) in [
        ("接收机构 Receiving agency", s(&p.agency)),
        ("人员编号 Member id", s(&p.member.id)),
        ("人员类别 Category", s(&p.member.category)),
        ("所在单位 Unit", s(&p.member.unit)),
        ("服役起止 Service", format!("{} — {}", s(&service.from), s(&service.to))),
        ("服役月数 Months of service", s(&service.months)),
        ("视同缴费年限 Years counted", s(&service.years_counted)),
        ("计入 Counts toward", s(&service.counts_toward)),
        ("转移记账号 Transfer entry", s(&p.transfer_entry)),
    ] {
        h.push_str(&format!("<tr><th>{label}</th><td>{value}</td></tr>\n"));
    }
    h.push_str("</table>\n<h3>分年度明细 Per year (yuan)</h3>\n<table>\n");
    h.push_str("<tr><th>年度 Year</th><th>缴费工资 Contribution wage</th><th>个人缴费 Personal</th><th>国家补助 State</th><th>利息 Interest</th></tr>\n");
    for y in &p.years {
        h.push_str(&format!(
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\n",
            s(&y.year), s(&y.contribution_wage), s(&y.personal), s(&y.state), s(&y.interest)
        ));
    }
    let t = &p.totals;
    h.push_str(&format!(
        "<tr><th>合计 Totals</th><td></td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>\n</table>\n",
        s(&t.personal), s(&t.state), s(&t.interest)
    ));
    h.push_str(&format!(
        "<p><strong>转移金额 Amount transferred: {} 元 yuan</strong></p>\n",
        s(&t.total)
    ));
    h.push_str("<h3>记账依据 Entries behind the amounts</h3>\n<table>\n<tr><th>序号 Seq</th><th>起息日 Value date</th><th>类型 Type</th><th>账户 Account</th><th>金额 Amount</th></tr>\n");
    for e in &p.entries {
        // Verified: every entry's bytes are hex of a decodable entry.
        let Ok(bytes) = hex::decode(&e.bytes) else { continue };
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
    let d = &p.digest;
    h.push_str("</table>\n<h3>校验 Verification</h3>\n<table>\n");
    for (label, value) in [
        ("账本条目数 Tree size", s(&d.tree_size)),
        ("默克尔根 Merkle root", format!("<code>{}</code>", s(&d.root))),
        ("链头 Chain head", format!("<code>{}</code>", s(&d.head))),
        ("签名公钥 Public key", format!("<code>{}</code>", s(&d.public_key))),
        ("签署时间 Signed at", s(&d.recorded_at)),
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
