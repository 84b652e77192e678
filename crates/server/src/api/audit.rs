//! The auditor's routes: signed digests and checkpoints, proofs, the reconciliation and the
//! exceptions report.

use super::*;

/// The current tree as a C2SP tlog-checkpoint signed note (text/plain), signed with the ledger's
/// key under its origin (docs/FORMAT.md §6a): the same tree size and root as `GET /v1/digest`.
pub(super) async fn checkpoint(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Action::Digest)?;
    let s = Arc::clone(&state);
    let note = blocking(&state, move |l| {
        let d = current_digest(&s, l)?;
        let key = s.signing_key()?;
        let origin = s.config.origin.clone().unwrap_or_else(|| {
            junbao_ledger::checkpoint::default_origin(&key.verifying_key().to_bytes())
        });
        junbao_ledger::checkpoint::sign_checkpoint(key, &origin, d.tree_size, &d.root)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

/// The digest of the current tree and access log: the last one signed while neither has grown.
pub(super) fn current_digest(s: &AppState, l: &Ledger) -> Result<SignedDigest, ApiError> {
    let mut cached = s.digest.lock().expect("the digest lock is never held across a panic");
    // Each digest anchors the access log's head as well (docs/FORMAT.md §10): a new one is
    // signed when the tree or the log has grown.
    let anchor = s.access.anchor();
    if let Some(d) = cached.as_ref()
        && d.tree_size == l.head().seq
        && d.access == Some(anchor)
    {
        return Ok(d.clone());
    }
    let d = l.digest_anchoring(s.signing_key()?, Some(anchor))?;
    *cached = Some(d.clone());
    Ok(d)
}

pub(super) async fn digest(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::Digest)?;
    let s = Arc::clone(&state);
    if state.replica {
        // The copied ledger's own signed digest, as the mirror last trusted it.
        return blocking(&state, |l| match l.latest_digest()? {
            Some(d) => Ok(Json(d.to_json())),
            None => Err(ApiError::unavailable("the mirror has not copied anything yet")),
        })
        .await;
    }
    blocking(&state, move |l| current_digest(&s, l).map(|d| Json(d.to_json()))).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InclusionQuery {
    seq: u64,
    tree_size: Option<u64>,
}

pub(super) async fn inclusion(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<Json<InclusionProof>, ApiError> {
    caller.require(Action::Proof)?;
    let q = query(q)?;
    blocking(&state, move |l| {
        if q.seq > q.tree_size.unwrap_or(l.head().seq) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no entry {} in that tree", q.seq),
            ));
        }
        Ok(Json(l.inclusion_proof(q.seq, q.tree_size)?))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsistencyQuery {
    from: u64,
    to: u64,
}

pub(super) async fn consistency(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    q: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    caller.require(Action::Proof)?;
    let q = query(q)?;
    blocking(&state, move |l| Ok(Json(l.consistency_proof(q.from, q.to)?))).await
}

pub(super) async fn reconcile(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Reconciliation>, ApiError> {
    let who = caller.require(Action::Reports)?;
    log_read(&state, who, "reconcile report", None, Some("all members".into())).await?;
    blocking(&state, |l| Ok(Json(l.reconcile()?))).await
}

pub(super) async fn exceptions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Exceptions>, ApiError> {
    let who = caller.require(Action::Reports)?;
    log_read(&state, who, "exceptions report", None, Some("all members".into())).await?;
    blocking(&state, |l| Ok(Json(l.exceptions()?))).await
}
