//! The routes (docs/HTTP.md; docs/openapi.json describes each).

mod admin;
mod audit;
mod transfer;

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use junbao_engine::{Ledger, ParsedEvent, PostRequest, PostScope, PostSummary, SignedDigest};
use junbao_ledger::report::{
    BalanceSheet, ConsistencyProof, Exceptions, InclusionProof, JournalPage, Reconciliation,
    Statement,
};
use junbao_ledger::transfer::TransferPackage;
use junbao_ledger::{Date, Fund};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::auth::{Action, Principal, Role};
use crate::error::ApiError;

use audit::{checkpoint, consistency, digest, exceptions, inclusion, reconcile};
use transfer::{transfer_confirm, transfer_export, transfer_verify};

/// Every route: method and path, as docs/openapi.json lists them (a test compares the two).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("post", "/v1/events"),
    ("get", "/v1/balance"),
    ("get", "/v1/export/balances"),
    ("get", "/v1/members/{id}/statement"),
    ("get", "/v1/journal"),
    ("get", "/v1/digest"),
    ("get", "/v1/checkpoint"),
    ("get", "/v1/proofs/inclusion"),
    ("get", "/v1/proofs/consistency"),
    ("get", "/v1/reports/reconcile"),
    ("get", "/v1/reports/exceptions"),
    ("post", "/v1/transfers"),
    ("post", "/v1/transfers/confirm"),
    ("post", "/v1/transfers/verify"),
    ("get", "/v1/reports/budget"),
    ("get", "/v1/reports/remittances"),
    ("get", "/v1/reports/bank"),
    ("get", "/v1/reports/final-accounts"),
    ("get", "/v1/reports/statement-of-fund"),
    ("post", "/v1/close"),
    ("post", "/v1/admin/backup"),
    // The web console (crate::console) and the reads its desks need.
    ("get", "/"),
    ("get", "/console/{file}"),
    ("get", "/v1/session"),
    ("get", "/v1/units/{unit}/members"),
    ("get", "/v1/transfers/pending"),
    ("get", "/v1/reports/monthly"),
    ("get", "/v1/reports/awaiting-match"),
    ("get", "/v1/access-log"),
];

/// The routes a read replica (`junbao mirror --serve`) answers: a subset of [`ROUTES`].
pub const REPLICA_ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/v1/balance"),
    ("get", "/v1/members/{id}/statement"),
    ("get", "/v1/journal"),
    ("get", "/v1/digest"),
    ("get", "/v1/proofs/inclusion"),
    ("get", "/v1/proofs/consistency"),
];

/// Event arrays at least this long are parsed on the blocking pool, over all cores.
const PARSE_INLINE_EVENTS_MAX: usize = 64;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    if state.replica {
        return replica_router(state);
    }
    let body_bytes_max = state.config.body_bytes_max;
    let timeout = state.config.request_timeout;
    Router::new()
        .route("/health", get(health))
        .route("/v1/events", post(post_events))
        .route("/v1/balance", get(balance))
        .route("/v1/export/balances", get(export_balances))
        .route("/v1/members/{id}/statement", get(statement))
        .route("/v1/journal", get(journal))
        .route("/v1/digest", get(digest))
        .route("/v1/checkpoint", get(checkpoint))
        .route("/v1/proofs/inclusion", get(inclusion))
        .route("/v1/proofs/consistency", get(consistency))
        .route("/v1/reports/reconcile", get(reconcile))
        .route("/v1/reports/exceptions", get(exceptions))
        .route("/v1/transfers", post(transfer_export))
        .route("/v1/transfers/confirm", post(transfer_confirm))
        .route("/v1/transfers/verify", post(transfer_verify))
        .route("/v1/reports/budget", get(admin::budget))
        .route("/v1/reports/remittances", get(admin::remittances))
        .route("/v1/reports/bank", get(admin::bank))
        .route("/v1/reports/final-accounts", get(admin::final_accounts))
        .route("/v1/reports/statement-of-fund", get(admin::statement_of_fund))
        .route("/v1/close", post(admin::close))
        .merge(crate::console::router())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route; see docs/HTTP.md") })
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        // After the timeout layer, so outside it: copying a large ledger takes longer than a
        // request may, and the backup would go on after a 408 that said it failed.
        .route("/v1/admin/backup", post(admin_backup))
        // Method and path only (a path may name a member id); never headers or bodies.
        .layer(TraceLayer::new_for_http().make_span_with(|r: &axum::http::Request<_>| {
            tracing::debug_span!("request", method = %r.method(), path = %r.uri().path())
        }))
        .with_state(state)
}

/// The read routes of a replica ([`REPLICA_ROUTES`]), with the same layers.
fn replica_router(state: Arc<AppState>) -> Router {
    let timeout = state.config.request_timeout;
    Router::new()
        .route("/health", get(health))
        .route("/v1/balance", get(balance))
        .route("/v1/members/{id}/statement", get(statement))
        .route("/v1/journal", get(journal))
        .route("/v1/digest", get(digest))
        .route("/v1/proofs/inclusion", get(inclusion))
        .route("/v1/proofs/consistency", get(consistency))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "a read replica answers read routes only")
        })
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(TraceLayer::new_for_http().make_span_with(|r: &axum::http::Request<_>| {
            tracing::debug_span!("request", method = %r.method(), path = %r.uri().path())
        }))
        .with_state(state)
}

/// The caller, from the bearer token: 401 without a valid one.
pub(crate) struct Caller(pub(crate) Arc<Principal>);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is required"))?;
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header is not Bearer TOKEN")
            })?;
        match state.tokens().find(token.trim()) {
            Some(p) => Ok(Caller(Arc::clone(p))),
            None => {
                tracing::info!(path = %parts.uri.path(), "refused: unknown token");
                Err(ApiError::unauthorized("the token is not valid"))
            }
        }
    }
}

impl Caller {
    /// 403 unless the role may do `action`.
    pub(crate) fn require(&self, action: Action) -> Result<&Principal, ApiError> {
        if self.0.role.allows(action) {
            return Ok(&self.0);
        }
        tracing::info!(token = %self.0.name, role = self.0.role.name(), ?action, "refused: role");
        Err(ApiError::forbidden(format!("the {} role may not do this", self.0.role.name())))
    }
}

/// Runs a ledger call on the blocking pool (RocksDB reads and fsyncs block), and answers only
/// once everything it could have seen is durable: the group committer writes a group before
/// it syncs it, and no one may read what a crash could still take back.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&Ledger) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        // Corrupt data met by a read degrades `/health` as one met by a post does.
        let answer = f(&state.ledger).inspect_err(|e| {
            if let Some(what) = e.integrity_failure() {
                state.ledger.note_integrity_failure(what);
            }
        })?;
        // The head now is at least what `f` saw.
        state
            .committer
            .wait_durable(state.ledger.head().seq)
            .map_err(|e| ApiError::unavailable(format!("the ledger cannot be written: {e}")))?;
        Ok(answer)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the request's task failed: {e}")))?
}

/// Logs a read of members' records before it is answered; a read that cannot be logged is not
/// served.
pub(crate) async fn log_read(
    state: &Arc<AppState>,
    who: &Principal,
    read: &'static str,
    member: Option<String>,
    scope: Option<String>,
) -> Result<(), ApiError> {
    let state = Arc::clone(state);
    let who = who.clone();
    tokio::task::spawn_blocking(move || {
        state.access.record(&who, read, member.as_deref(), scope.as_deref())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| {
        tracing::error!(error = %e, "the access log cannot be written; reads are refused");
        ApiError::unavailable(
            "the access log cannot be written; reads of members' records are refused",
        )
    })
}

pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t).map_err(|e| ApiError::bad_request(e.body_text()))
}

fn parse_fund(f: Option<&str>) -> Result<Option<Fund>, ApiError> {
    f.map(|f| Fund::parse(f).map_err(|m| ApiError::bad_request(format!("fund: {m}")))).transpose()
}

fn parse_date(name: &str, d: Option<&str>) -> Result<Option<Date>, ApiError> {
    d.map(|d| Date::parse(d).map_err(|m| ApiError::bad_request(format!("{name}: {m}")))).transpose()
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let writable = !state.ledger.is_poisoned() && state.committer.is_running();
    // Corrupt stored data met by a post: the service answers, but is not sound.
    let integrity = state.ledger.integrity_failure();
    let stats = state.committer.stats();
    let mut body = json!({
        "status": match (&integrity, writable) {
            (Some(_), _) => "degraded",
            (None, true) => "ok",
            (None, false) => "unavailable",
        },
        "entries": state.ledger.head().seq,
        "groups_written": stats.groups.load(std::sync::atomic::Ordering::Relaxed),
        "requests_answered": stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        "writer_busy_us": stats.busy_us.load(std::sync::atomic::Ordering::Relaxed),
        "writer_write_us": stats.write_us.load(std::sync::atomic::Ordering::Relaxed),
        "syncs": stats.syncs.load(std::sync::atomic::Ordering::Relaxed),
        "sync_us": stats.sync_us.load(std::sync::atomic::Ordering::Relaxed),
        "durable_entries": state.ledger.durable_head().seq,
    });
    if let Some(what) = &integrity {
        body["integrity_failure"] = json!(what);
    }
    let status = if writable && integrity.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Splits a body into event texts: one JSON object, or an array of them.
fn parse_body(body: &[u8], events_max: usize) -> Result<Vec<(usize, ParsedEvent)>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::unprocessable(format!("body: not UTF-8 ({e})")))?;
    let trimmed = text.trim_start();
    if !trimmed.starts_with('[') {
        return Ok(vec![(1, junbao_engine::parse_fingerprinted(text))]);
    }
    let items: Vec<&serde_json::value::RawValue> = serde_json::from_str(text)
        .map_err(|e| ApiError::unprocessable(format!("body: not a JSON array of events: {e}")))?;
    if items.is_empty() {
        return Err(ApiError::unprocessable("body: the array holds no event"));
    }
    if items.len() > events_max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} events in one post; at most {events_max}: split the batch", items.len()),
        ));
    }
    let texts: Vec<&str> = items.iter().map(|r| r.get()).collect();
    if texts.len() < PARSE_INLINE_EVENTS_MAX {
        return Ok(texts
            .iter()
            .enumerate()
            .map(|(i, t)| (i + 1, junbao_engine::parse_fingerprinted(t)))
            .collect());
    }
    Ok(junbao_engine::parse_events(&texts, &|_| {}))
}

/// Posts events through the group committer and waits until they are durable.
async fn submit(
    state: &Arc<AppState>,
    events: Vec<(usize, ParsedEvent)>,
    scope: PostScope,
) -> Result<PostSummary, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    state.committer.submit(
        PostRequest { events, scope },
        Box::new(move |answer| {
            // The client may have gone (timeout, closed connection); the post stands anyway.
            let _ = tx.send(answer);
        }),
    )?;
    let answer = rx.await.map_err(|_| ApiError::unavailable("the writer stopped"))?;
    Ok(answer?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostQuery {
    /// Run every rule and store nothing (crate::console's finance desk checks a file first).
    dry_run: Option<bool>,
}

async fn post_events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<PostQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = caller.require(Action::Post)?;
    let dry_run = query(q)?.dry_run.unwrap_or(false);
    let scope = match who.role {
        Role::Poster => PostScope::Units(Arc::clone(&who.units)),
        _ => PostScope::Any,
    };
    let events_max = state.config.batch_events_max;
    let events = if body.len() < 64 * 1024 {
        parse_body(&body, events_max)?
    } else {
        tokio::task::spawn_blocking(move || parse_body(&body, events_max))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??
    };
    let count = events.len();
    if dry_run {
        return Ok(crate::console::dry_run(&state, events, scope).await);
    }
    let result = submit(&state, events, scope).await;
    match &result {
        Ok(s) => {
            tracing::debug!(token = %who.name, events = count, accepted = s.accepted, last_seq = s.last_seq.unwrap_or(0), "posted")
        }
        Err(e) => {
            tracing::info!(token = %who.name, events = count, status = %e.status, "post refused")
        }
    }
    result.map(|s| Json(s).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceQuery {
    fund: Option<String>,
    member: Option<String>,
}

async fn balance(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<BalanceQuery>, QueryRejection>,
) -> Result<Json<BalanceSheet>, ApiError> {
    let who = caller.require(Action::Balances)?;
    let q = query(q)?;
    let fund = parse_fund(q.fund.as_deref())?;
    if let Some(m) = &q.member {
        junbao_ledger::ids::MemberId::parse(m)
            .map_err(|why| ApiError::bad_request(format!("member: {why}")))?;
    }
    let scope = q.member.is_none().then(|| "all members".to_string());
    log_read(&state, who, "balance", q.member.clone(), scope).await?;
    blocking(&state, move |l| Ok(Json(l.balances(fund, q.member.as_deref())))).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    format: Option<String>,
    unit: Option<String>,
    as_of: Option<String>,
}

async fn export_balances(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let who = caller.require(Action::Balances)?;
    let q = query(q)?;
    let csv = match q.format.as_deref() {
        None | Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!("format: {other:?}: expected csv or json")));
        }
    };
    let as_of = parse_date("as_of", q.as_of.as_deref())?;
    let scope = Some(q.unit.as_ref().map_or("all members".to_string(), |u| format!("unit {u}")));
    log_read(&state, who, "balance export", None, scope).await?;
    let b = blocking(&state, move |l| Ok(l.balances_as_of(as_of, q.unit.as_deref())?)).await?;
    if csv {
        let body = junbao_engine::balances_csv(&b);
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response());
    }
    Ok(Json(b).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementQuery {
    from: Option<String>,
    to: Option<String>,
    /// An inclusion proof with every entry.
    proofs: Option<bool>,
}

async fn statement(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(member): Path<String>,
    q: Result<Query<StatementQuery>, QueryRejection>,
) -> Result<Json<Statement>, ApiError> {
    let who = caller.require(Action::Statement)?;
    let q = query(q)?;
    let (from, to) = (parse_date("from", q.from.as_deref())?, parse_date("to", q.to.as_deref())?);
    let id = junbao_ledger::ids::MemberId::parse(&member);
    // The member's unit, if the id is well formed and enrolled: one look at the state.
    let unit = id.as_ref().ok().and_then(|id| {
        state.ledger.with_state(|s, _| s.members.get(id).map(|m| m.unit.as_str().to_string()))
    });
    if who.role == Role::Poster && !unit.as_ref().is_some_and(|u| who.units.contains(u)) {
        tracing::info!(token = %who.name, member = %member, "refused: member outside the poster's units");
        return Err(ApiError::forbidden(format!(
            "member {member} is not enrolled in a unit this token posts for"
        )));
    }
    let id = id.map_err(|m| ApiError::bad_request(format!("member id: {m}")))?;
    if unit.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("member {id} is not enrolled")));
    }
    log_read(&state, who, "statement", Some(member.clone()), None).await?;
    let proofs = q.proofs.unwrap_or(false);
    let tamper = state.config.test_tamper_proofs_of.as_deref() == Some(member.as_str());
    let mut answer = blocking(&state, move |l| Ok(l.statement(&member, from, to, proofs)?)).await?;
    if tamper {
        crate::console::tamper_first_proof(&mut answer);
    }
    Ok(Json(answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

async fn journal(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<JournalQuery>, QueryRejection>,
) -> Result<Json<JournalPage>, ApiError> {
    let who = caller.require(Action::Journal)?;
    let q = query(q)?;
    let from = q.from.unwrap_or(1).max(1);
    let limit = q.limit.unwrap_or(100).min(junbao_engine::JOURNAL_PAGE_ENTRIES_MAX);
    log_read(&state, who, "journal", None, Some(format!("entries from {from}, at most {limit}")))
        .await?;
    blocking(&state, move |l| l.journal_page(from, limit).map(Json).map_err(ApiError::from)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupBody {
    /// A folder on the server's machine, missing or empty.
    to: String,
    /// An earlier backup to link unchanged table files from (incremental).
    since: Option<String>,
}

/// `POST /v1/admin/backup`: a consistent backup of the ledger while it serves (admin only).
async fn admin_backup(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let who = caller.require(Action::Backup)?;
    let b: BackupBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::unprocessable(format!("body: {e}")))?;
    let to = std::path::PathBuf::from(&b.to);
    if !to.is_absolute() {
        return Err(ApiError::unprocessable(
            "field \"to\": an absolute path on the server's machine",
        ));
    }
    tracing::info!(token = %who.name, "backup requested");
    let s = Arc::clone(&state);
    blocking(&state, move |l| {
        let since = b.since.as_deref().map(std::path::Path::new);
        let m = l.backup(s.signing_key()?, &to, since).map_err(|e| match e {
            junbao_engine::BackupError::Target(m) => ApiError::new(StatusCode::CONFLICT, m),
            junbao_engine::BackupError::Io(m) => ApiError::unavailable(m),
            other => ApiError::internal(other.to_string()),
        })?;
        Ok(Json(junbao_engine::backup_summary(&m, &to)))
    })
    .await
}
