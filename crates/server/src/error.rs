//! Errors as HTTP answers: a status and a JSON body `{"error": "...", "errors": [...]}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use junbao_engine::{AuditError, PostError, SubmitError};
use serde_json::{Value, json};

/// A refused or failed request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, body: json!({"error": message.into()}) }
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl From<PostError> for ApiError {
    fn from(e: PostError) -> ApiError {
        let status = match &e {
            PostError::Rejected { .. } if e.is_forbidden() => StatusCode::FORBIDDEN,
            PostError::Rejected { .. } if e.is_conflict() => StatusCode::CONFLICT,
            PostError::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            PostError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PostError::Write(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = match &e {
            PostError::Rejected { errors, total } => json!({
                "error": format!("{} refused, nothing stored", if *total == 1 { "1 event".to_string() } else { format!("{total} events") }),
                "errors": errors.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
                "total": total,
            }),
            other => json!({"error": other.to_string()}),
        };
        ApiError { status, body }
    }
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> ApiError {
        match e {
            AuditError::Input(m) => ApiError::unprocessable(m),
            AuditError::Integrity(m) => ApiError::internal(format!("integrity failure: {m}")),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> ApiError {
        ApiError::unavailable(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
