//! The transfer clerk's routes: export a package, confirm a settlement, verify a package with the
//! server's own key.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferBody {
    member: String,
    fund: String,
    agency: String,
}

fn transfer_body(body: &Bytes) -> Result<(TransferBody, Fund), ApiError> {
    let t: TransferBody =
        serde_json::from_slice(body).map_err(|e| ApiError::unprocessable(format!("body: {e}")))?;
    let fund = Fund::parse(&t.fund)
        .map_err(|m| ApiError::unprocessable(format!("field \"fund\": {m}")))?;
    Ok((t, fund))
}

pub(super) async fn transfer_export(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<TransferPackage>, ApiError> {
    let who = caller.require(Action::Transfer)?;
    let (t, fund) = transfer_body(&body)?;
    log_read(&state, who, "transfer package", Some(t.member.clone()), Some(t.fund.clone())).await?;
    let s = Arc::clone(&state);
    blocking(&state, move |l| {
        Ok(Json(l.transfer_export(&t.member, fund, &t.agency, s.signing_key()?)?))
    })
    .await
}

pub(super) async fn transfer_confirm(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<PostSummary>, ApiError> {
    caller.require(Action::Transfer)?;
    let (t, _) = transfer_body(&body)?;
    let line = junbao_engine::transfer_confirmed_line(&t.member, &t.fund, &t.agency);
    let events = vec![(1, junbao_engine::parse_fingerprinted(&line))];
    submit(&state, events, PostScope::Any).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyBody {
    package: Value,
    digest: Option<Value>,
}

pub(super) async fn transfer_verify(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Action::VerifyPackage)?;
    // A repeated key would let what a reader sees differ from what is verified.
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::unprocessable("body: not UTF-8".to_string()))?;
    junbao_ledger::strict_json::check_unique_keys(text)
        .map_err(|e| ApiError::unprocessable(format!("body: {e}")))?;
    let v: VerifyBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::unprocessable(format!("body: {e}")))?;
    let trusted = v
        .digest
        .as_ref()
        .map(junbao_engine::SignedDigest::from_json)
        .transpose()
        .map_err(junbao_engine::AuditError::from)?;
    // The server's own key is the pinned key: it vouches only for packages it signed.
    let pinned = state.signing_key()?.verifying_key().to_bytes();
    let verified = tokio::task::spawn_blocking(move || {
        junbao_engine::verify_package(&v.package, &pinned, trusted.as_ref())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(match verified {
        Ok(r) => Json(r).into_response(),
        Err(junbao_engine::AuditError::Integrity(m)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"verified": false, "error": m})))
                .into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    })
}
