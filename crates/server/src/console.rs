//! The web console (docs/CONSOLE.md): its pages, embedded in the binary, and the read routes
//! its desks need.
//!
//! The console is plain HTML, CSS and JavaScript modules under `crates/server/console/`,
//! compiled into the binary with `include_str!`: nothing is built or downloaded, at build time
//! or at run time. The pages hold no authority of their own: they call the `/v1/` routes with
//! the bearer token the user signed in with, and every rule (role, units, Art. 43 access log)
//! is the API's.
//!
//! Architecture invariant: the console's routes only read. Every figure they answer with is
//! computed from the ledger's state or journal on the request, in integer fen.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use junbao_ledger::fund::AccountKind;
use junbao_ledger::ids::MemberId;
use junbao_ledger::state::Line;
use junbao_ledger::{Fen, Fund};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::{Caller, blocking, log_read, query};
use crate::auth::{Action, Role};
use crate::error::ApiError;

/// The console's files: name, content type, text.
const ASSETS: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../console/index.html")),
    ("style.css", "text/css; charset=utf-8", include_str!("../console/style.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../console/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("../console/api.js")),
    ("money.js", "text/javascript; charset=utf-8", include_str!("../console/money.js")),
    ("verify.js", "text/javascript; charset=utf-8", include_str!("../console/verify.js")),
    ("chart.js", "text/javascript; charset=utf-8", include_str!("../console/chart.js")),
    ("finance.js", "text/javascript; charset=utf-8", include_str!("../console/finance.js")),
    ("audit.js", "text/javascript; charset=utf-8", include_str!("../console/audit.js")),
    ("transfer.js", "text/javascript; charset=utf-8", include_str!("../console/transfer.js")),
    ("ui.js", "text/javascript; charset=utf-8", include_str!("../console/ui.js")),
];

/// Same-origin only: no inline script, no other host, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// Most access-log records one request answers with.
pub const ACCESS_LOG_RECORDS_MAX: usize = 1_000;
/// Most awaiting-match rows one unit's answer lists (the sums cover them all).
pub const AWAITING_ROWS_MAX: usize = 2_000;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { asset_response("index.html") }))
        .route(
            "/console/{file}",
            get(|Path(file): Path<String>| async move { asset_response(&file) }),
        )
        .route("/v1/session", get(session))
        .route("/v1/units/{unit}/members", get(unit_members))
        .route("/v1/transfers/pending", get(pending_transfers))
        .route("/v1/reports/monthly", get(monthly))
        .route("/v1/reports/awaiting-match", get(awaiting_match))
        .route("/v1/access-log", get(access_log))
}

fn asset_response(name: &str) -> Response {
    let Some((_, content_type, text)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::new(StatusCode::NOT_FOUND, "no such console file").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *text,
    )
        .into_response()
}

/// Who the token is: its name, role and units (the console picks the desk with it).
async fn session(caller: Caller) -> Json<Value> {
    let p = &caller.0;
    Json(
        json!({"name": p.name, "role": p.role.name(), "units": p.units.iter().collect::<Vec<_>>()}),
    )
}

fn line_name(line: Line) -> &'static str {
    match line {
        Line::Medical => "medical",
        Line::SpousePension => "spouse_pension",
        Line::SpouseMedical => "spouse_medical",
    }
}

/// Lines whose personal premium the state matches 1:1 (Art. 20 ¶1, Art. 25).
fn is_matched(line: Line) -> bool {
    matches!(line, Line::Medical | Line::SpouseMedical)
}

fn status_of(m: &junbao_ledger::state::MemberState) -> &'static str {
    if m.deceased_on.is_some() {
        "deceased"
    } else if m.discharged_on.is_some() {
        "discharged"
    } else {
        "serving"
    }
}

#[derive(Default, Clone, Copy)]
struct MonthMoney {
    premiums: i64,
    matches: i64,
    awaiting: i64,
}

/// A unit's members, their premiums and matches by month, and what awaits a match.
async fn unit_members(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(unit): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = caller.require(Action::Statement)?;
    let unit_id = junbao_ledger::ids::UnitId::parse(&unit)
        .map_err(|m| ApiError::bad_request(format!("unit: {m}")))?;
    if who.role == Role::Poster && !who.units.contains(unit_id.as_str()) {
        tracing::info!(token = %who.name, "refused: unit outside the poster's units");
        return Err(ApiError::forbidden(format!("unit {unit} is not a unit this token posts for")));
    }
    log_read(&state, who, "unit members", None, Some(format!("unit {unit}"))).await?;
    blocking(&state, move |l| {
        // Every month of the unit's members: those in memory, and those of years out of memory
        // read from their pages.
        let in_unit = |s: &junbao_ledger::LedgerState, m: &junbao_ledger::ids::MemberId| {
            s.members.get(m).is_some_and(|ms| ms.unit == unit_id)
        };
        // Under the writer lock, only what the answer needs of the state is copied (the unit's
        // members, their months in memory, its receivables); the years out of memory are read
        // after it (`Ledger::with_state_and_cold_months`), while posts go on.
        let take = |s: &junbao_ledger::LedgerState, head: junbao_engine::Head| {
            let mut members: Vec<(MemberId, junbao_ledger::state::MemberState)> = s
                .members
                .iter()
                .filter(|(_, m)| m.unit == unit_id)
                .map(|(id, m)| (id.clone(), junbao_ledger::state::MemberState::clone(m)))
                .collect();
            members.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            let resident: Vec<(MemberId, junbao_ledger::state::Month)> = s
                .periods()
                .into_iter()
                .filter(|(member, ..)| in_unit(s, member))
                .map(|(member, line, period, money)| {
                    (member.clone(), junbao_ledger::state::Month { period, line, money: *money })
                })
                .collect();
            // What the unit withheld and has not remitted yet (Art. 32): its receivables.
            let mut unremitted: Vec<(String, Fund, i64)> = s
                .fund_balances
                .iter()
                .filter_map(|(account, fen)| match &account.kind {
                    AccountKind::UnitReceivable { unit, period } if *unit == unit_id && fen.0 != 0 => {
                        Some((period.to_string(), account.fund, fen.0))
                    }
                    _ => None,
                })
                .collect();
            unremitted.sort();
            (members, resident, unremitted, head.seq)
        };
        let answer = l.with_state_and_cold_months(in_unit, take, |taken, cold| {
            let (members, resident, unremitted, as_of_seq) = taken;
            let mut months: BTreeMap<String, MonthMoney> = BTreeMap::new();
            let mut per_member: HashMap<&str, MonthMoney> = HashMap::new();
            let mut awaiting = Vec::new();
            for (member, month) in resident.iter().chain(&cold) {
                let (line, period, money) = (month.line, month.period, &month.money);
                let wait = if is_matched(line) && money.personal.0 > money.state.0 {
                    money.personal.0 - money.state.0
                } else {
                    0
                };
                for into in [
                    months.entry(period.to_string()).or_default(),
                    per_member.entry(member.as_str()).or_default(),
                ] {
                    into.premiums += money.personal.0;
                    into.matches += money.state.0;
                    into.awaiting += wait;
                }
                if wait > 0 {
                    awaiting.push((member.as_str(), period.to_string(), line, *money, wait));
                }
            }
            awaiting.sort_by(|a, b| (a.1.as_str(), a.0).cmp(&(b.1.as_str(), b.0)));
            let unremitted_total: i64 = unremitted.iter().map(|u| u.2).sum();
            let awaiting_total: i64 = awaiting.iter().map(|a| a.4).sum();
            let awaiting_count = awaiting.len();
            json!({
                "unit": unit_id.as_str(),
                "as_of_seq": as_of_seq,
                "members": members.iter().map(|(id, m)| {
                    let money = per_member.get(id.as_str()).copied().unwrap_or_default();
                    json!({
                        "member": id.as_str(),
                        "category": m.category_now().name(),
                        "status": status_of(m),
                        "enlisted_on": m.enlisted_on.to_string(),
                        "discharged_on": m.discharged_on.map(|d| d.to_string()),
                        "premiums": Fen(money.premiums).to_string(),
                        "matches": Fen(money.matches).to_string(),
                        "awaiting": Fen(money.awaiting).to_string(),
                        "transfers": m.transfers.iter().map(|t| json!({
                            "fund": t.fund.name(), "agency": t.agency.as_str(), "seq": t.seq,
                            "amount": t.amount.to_string(), "confirmed": t.confirmed,
                        })).collect::<Vec<_>>(),
                    })
                }).collect::<Vec<_>>(),
                "months": months.iter().map(|(p, m)| json!({
                    "period": p,
                    "premiums": Fen(m.premiums).to_string(),
                    "matches": Fen(m.matches).to_string(),
                    "awaiting": Fen(m.awaiting).to_string(),
                })).collect::<Vec<_>>(),
                "unremitted": {
                    "total": Fen(unremitted_total).to_string(),
                    "rows": unremitted.iter().map(|(p, f, fen)| json!({
                        "period": p, "fund": f.name(), "amount": Fen(*fen).to_string(),
                    })).collect::<Vec<_>>(),
                },
                "awaiting": {
                    "count": awaiting_count,
                    "total": Fen(awaiting_total).to_string(),
                    "rows": awaiting.iter().take(AWAITING_ROWS_MAX).map(|(m, p, line, money, wait)| json!({
                        "member": m, "period": p, "line": line_name(*line),
                        "personal": money.personal.to_string(), "state": money.state.to_string(),
                        "awaiting": Fen(*wait).to_string(),
                    })).collect::<Vec<_>>(),
                },
            })
        });
        Ok(Json(answer.map_err(|e| ApiError::from(junbao_engine::PostError::Read(e)))?))
    })
    .await
}

/// Discharged members with money in a fund that transfers (pension, medical, spouse), and the
/// state of each fund's transfer.
async fn pending_transfers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let who = caller.require(Action::Transfer)?;
    log_read(&state, who, "pending transfers", None, Some("all members".into())).await?;
    blocking(&state, |l| {
        Ok(Json(l.with_state(|s, head| {
            // Money in each discharged member's accounts, per fund.
            let mut held: BTreeMap<(MemberId, Fund), i64> = BTreeMap::new();
            for (account, fen) in s.member_balances() {
                if let AccountKind::Member { member, .. } = account.kind
                    && s.members.get(&member).is_some_and(|m| m.discharged_on.is_some())
                {
                    *held.entry((member, account.fund)).or_default() += fen.0;
                }
            }
            let mut rows = Vec::new();
            let mut ids: Vec<_> =
                s.members.iter().filter(|(_, m)| m.discharged_on.is_some()).collect();
            ids.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            for (id, m) in ids {
                let mut funds = Vec::new();
                for fund in [Fund::Pension, Fund::Medical, Fund::Spouse] {
                    let balance = held.get(&(id.clone(), fund)).copied().unwrap_or(0);
                    let transfer = m.transfer(fund);
                    let stage = match transfer {
                        Some(t) if t.confirmed => "confirmed",
                        Some(_) => "exported",
                        None if balance != 0 => "awaiting export",
                        None => continue,
                    };
                    funds.push(json!({
                        "fund": fund.name(),
                        "balance": Fen(balance).to_string(),
                        "stage": stage,
                        "transfer": transfer.map(|t| json!({
                            "agency": t.agency.as_str(), "seq": t.seq,
                            "amount": t.amount.to_string(), "confirmed": t.confirmed,
                        })),
                    }));
                }
                if funds.is_empty() {
                    continue;
                }
                rows.push(json!({
                    "member": id.as_str(),
                    "unit": m.unit.as_str(),
                    "category": m.category_now().name(),
                    "discharged_on": m.discharged_on.map(|d| d.to_string()),
                    "funds": funds,
                }));
            }
            json!({"as_of_seq": head.seq, "members": rows})
        })))
    })
    .await
}

/// Each fund's income and expenditure by month of value date, from the journal.
async fn monthly(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let who = caller.require(Action::Reports)?;
    log_read(&state, who, "monthly report", None, Some("all funds".into())).await?;
    blocking(&state, |l| {
        let size = l.head().seq;
        // (fund, "YYYY-MM") -> (income, expenditure), fen
        let mut months: BTreeMap<(Fund, String), (i64, i64)> = BTreeMap::new();
        for item in l.entries_from(1) {
            let (stored, entry) = item.map_err(ApiError::from)?;
            if stored.seq > size {
                break;
            }
            let month = entry.value_date.to_string()[..7].to_string();
            for p in &entry.postings {
                let cell = match &p.account.kind {
                    AccountKind::Source(_) => (-p.amount.0, 0),
                    AccountKind::Use(_) => (0, p.amount.0),
                    _ => continue,
                };
                let m = months.entry((p.account.fund, month.clone())).or_default();
                m.0 += cell.0;
                m.1 += cell.1;
            }
        }
        let funds: Vec<Value> = [Fund::Casualty, Fund::Pension, Fund::Medical, Fund::Spouse]
            .iter()
            .map(|f| {
                json!({
                    "fund": f.name(),
                    "months": months.iter().filter(|((g, _), _)| g == f).map(|((_, m), (i, e))| json!({
                        "month": m, "income": Fen(*i).to_string(), "expenditure": Fen(*e).to_string(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        Ok(Json(json!({"as_of_seq": size, "funds": funds})))
    })
    .await
}

/// Premiums awaiting their state match, summed by unit.
async fn awaiting_match(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let who = caller.require(Action::Reports)?;
    log_read(&state, who, "awaiting-match report", None, Some("all members".into())).await?;
    blocking(&state, |l| {
        Ok(Json(l.with_state(|s, head| {
            let mut units: BTreeMap<&str, (i64, usize)> = BTreeMap::new();
            for (member, line, _, money) in s.periods() {
                if !is_matched(line) || money.personal.0 <= money.state.0 {
                    continue;
                }
                let Some(m) = s.members.get(member) else { continue };
                let u = units.entry(m.unit.as_str()).or_default();
                u.0 += money.personal.0 - money.state.0;
                u.1 += 1;
            }
            json!({
                "as_of_seq": head.seq,
                "units": units.iter().map(|(u, (fen, n))| json!({
                    "unit": u, "awaiting": Fen(*fen).to_string(), "months": n,
                })).collect::<Vec<_>>(),
            })
        })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessLogQuery {
    limit: Option<usize>,
    member: Option<String>,
}

/// The newest records of the access log (who read which member's record, when), newest first.
async fn access_log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<AccessLogQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = caller.require(Action::Reports)?;
    let q = query(q)?;
    let limit = q.limit.unwrap_or(200).clamp(1, ACCESS_LOG_RECORDS_MAX);
    if let Some(m) = &q.member {
        junbao_ledger::ids::MemberId::parse(m)
            .map_err(|why| ApiError::bad_request(format!("member: {why}")))?;
    }
    let scope = q.member.is_none().then(|| "all members".to_string());
    log_read(&state, who, "access log", q.member.clone(), scope).await?;
    let path = state.access.path().to_path_buf();
    let records = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, ApiError> {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ApiError::unavailable(format!("the access log cannot be read: {e}")))?;
        Ok(text
            .lines()
            .rev()
            // A line being appended right now may be incomplete: it is not JSON yet.
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|r| q.member.as_ref().is_none_or(|m| r["member"] == m.as_str()))
            .take(limit)
            .collect())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(json!({"records": records})))
}

/// The article a refusal cites ("Art. 21", "Art. 13-14", "Art. 20 ¶1"), if its message names one.
fn article_of(message: &str) -> Option<String> {
    let start = message.find("Art. ")?;
    let rest = &message[start + 5..];
    let end = rest
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '-' | '¶' | ' ' | ',')))
        .map_or(rest.len(), |(i, _)| i);
    let cited = rest[..end].trim_end_matches([' ', ',']);
    (!cited.is_empty()).then(|| format!("Art. {cited}"))
}

/// `POST /v1/events?dry_run=true`: the post's answer (status and summary, or every refusal by
/// line, field and article), with nothing stored.
pub(crate) async fn dry_run(
    state: &Arc<AppState>,
    events: Vec<(usize, junbao_engine::ParsedEvent)>,
    scope: junbao_engine::PostScope,
) -> Response {
    let s = Arc::clone(state);
    let answer = tokio::task::spawn_blocking(move || {
        s.ledger.dry_run(junbao_engine::PostRequest { events, scope })
    })
    .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return ApiError::internal(e.to_string()).into_response(),
    };
    match answer {
        Ok(summary) => Json(json!({
            "dry_run": true,
            "stored": 0,
            "accepted": summary.accepted,
            "replayed": summary.replayed,
            "first_seq": summary.first_seq,
            "last_seq": summary.last_seq,
            "refusals": [],
        }))
        .into_response(),
        Err(e) => {
            let refusals: Vec<Value> = match &e {
                junbao_engine::PostError::Rejected { errors, .. } => errors
                    .iter()
                    .map(|l| {
                        json!({
                            "line": l.line,
                            "field": l.error.field,
                            "article": article_of(&l.error.message),
                            "kind": match l.kind {
                                junbao_engine::RejectKind::Invalid => "invalid",
                                junbao_engine::RejectKind::Conflict => "conflict",
                                junbao_engine::RejectKind::Forbidden => "forbidden",
                            },
                            "message": l.to_string(),
                        })
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let mut err = ApiError::from(e);
            err.body["dry_run"] = json!(true);
            err.body["stored"] = json!(0);
            err.body["refusals"] = json!(refusals);
            err.into_response()
        }
    }
}

/// The test hook of [`crate::ServerConfig::test_tamper_proofs_of`]: flips one bit of the first
/// proof of a statement (its first path hash, or its leaf hash for a one-entry tree).
pub(crate) fn tamper_first_proof(statement: &mut junbao_ledger::report::Statement) {
    let Some(proof) = statement.entries.first_mut().and_then(|e| e.proof.as_mut()) else {
        return;
    };
    let target = match proof.path.first_mut() {
        Some(first) => first,
        None => &mut proof.leaf_hash,
    };
    let mut bytes = hex::decode(&*target).unwrap_or_default();
    if let Some(b) = bytes.first_mut() {
        *b ^= 1;
    }
    *target = hex::encode(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_article_its_message_cites() {
        let cases = [
            ("Art. 21: the premium for 2024-03 is 100.00", Some("Art. 21")),
            ("Art. 13-14: the pension fund takes no personal premium", Some("Art. 13-14")),
            ("no premium of M1 for 2024-03 to subsidise (Art. 20, 25)", Some("Art. 20, 25")),
            ("more than two decimals", None),
        ];
        for (message, article) in cases {
            assert_eq!(article_of(message).as_deref(), article, "{message}");
        }
    }

    #[test]
    fn every_console_file_is_served_with_its_type() {
        for (name, content_type, _) in ASSETS {
            let r = asset_response(name);
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()[header::CONTENT_TYPE], *content_type);
        }
        assert_eq!(asset_response("../lib.rs").status(), StatusCode::NOT_FOUND);
    }
}
