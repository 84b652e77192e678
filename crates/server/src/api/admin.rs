//! Fund administration routes (docs/HTTP.md): the fund reports and the year close.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use junbao_ledger::report::{BankReport, BudgetReport, CloseReport, RemittanceReport};
use serde::Deserialize;

use super::{Caller, blocking, parse_date, parse_fund, query};
use crate::AppState;
use crate::auth::{Action, Role};
use crate::error::ApiError;

fn required<T>(name: &str, v: Option<T>) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::bad_request(format!("{name}: is required")))
}

fn year(y: &str) -> Result<u16, ApiError> {
    junbao_ledger::admin::parse_year(y).map_err(|m| ApiError::bad_request(format!("year: {m}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BudgetQuery {
    fund: String,
    year: String,
}

pub(super) async fn budget(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<BudgetQuery>, QueryRejection>,
) -> Result<Json<BudgetReport>, ApiError> {
    caller.require(Action::Reports)?;
    let q = query(q)?;
    let fund = required("fund", parse_fund(Some(q.fund.as_str()))?)?;
    let year = year(&q.year)?;
    blocking(&state, move |l| Ok(Json(l.budget_report(fund, year)?))).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RemittanceQuery {
    unit: Option<String>,
    as_of: Option<String>,
}

/// Units' totals only, no member: clerks see it as they see balances.
pub(super) async fn remittances(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<RemittanceQuery>, QueryRejection>,
) -> Result<Json<RemittanceReport>, ApiError> {
    caller.require(Action::Balances)?;
    let q = query(q)?;
    let as_of = parse_date("as_of", q.as_of.as_deref())?;
    blocking(&state, move |l| Ok(Json(l.remittance_report(q.unit.as_deref(), as_of)?))).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BankQuery {
    fund: String,
    as_of: String,
}

pub(super) async fn bank(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<BankQuery>, QueryRejection>,
) -> Result<Json<BankReport>, ApiError> {
    caller.require(Action::Reports)?;
    let q = query(q)?;
    let fund = required("fund", parse_fund(Some(q.fund.as_str()))?)?;
    let as_of = required("as_of", parse_date("as_of", Some(q.as_of.as_str()))?)?;
    blocking(&state, move |l| Ok(Json(l.bank_report(fund, as_of)?))).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FinalAccountsQuery {
    year: String,
    format: Option<String>,
}

pub(super) async fn final_accounts(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<FinalAccountsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Action::Reports)?;
    let q = query(q)?;
    let year = year(&q.year)?;
    let html = match q.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!("format: {other:?}: expected json or html")));
        }
    };
    let r = blocking(&state, move |l| Ok(l.final_accounts(year)?)).await?;
    if html {
        let body = junbao_engine::render_final_accounts_html(&r);
        return Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response());
    }
    Ok(Json(r).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatementOfFundQuery {
    fund: String,
    from: String,
    to: String,
    format: Option<String>,
}

pub(super) async fn statement_of_fund(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<StatementOfFundQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Action::Reports)?;
    let q = query(q)?;
    let fund = required("fund", parse_fund(Some(q.fund.as_str()))?)?;
    let from = required("from", parse_date("from", Some(q.from.as_str()))?)?;
    let to = required("to", parse_date("to", Some(q.to.as_str()))?)?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!("format: {other:?}: expected json or csv")));
        }
    };
    let s = blocking(&state, move |l| Ok(l.statement_of_fund(fund, from, to)?)).await?;
    if csv {
        let body = junbao_engine::statement_of_fund_csv(&s);
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response());
    }
    Ok(Json(s).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    year: String,
    #[serde(default)]
    accept_open: bool,
}

/// `POST /v1/close`: administrators only (it seals a year for everyone).
pub(super) async fn close(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<CloseReport>, ApiError> {
    let who = caller.require(Action::Post)?;
    if who.role != Role::Admin {
        tracing::info!(token = %who.name, role = who.role.name(), "refused: close is for admin");
        return Err(ApiError::forbidden(format!(
            "the {} role may not close a year; it takes an admin token",
            who.role.name()
        )));
    }
    let c: CloseBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::unprocessable(format!("body: {e}")))?;
    let year = junbao_ledger::admin::parse_year(&c.year)
        .map_err(|m| ApiError::unprocessable(format!("field \"year\": {m}")))?;
    let s = Arc::clone(&state);
    let r =
        blocking(&state, move |l| Ok(l.close_year(year, c.accept_open, s.signing_key()?)?)).await?;
    tracing::info!(token = %who.name, year, "year closed");
    Ok(Json(r))
}
