//! Errors as HTTP answers: a status and a JSON body `{"error": "...", "errors": [...]}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use junbao_engine::{AuditError, ErrorKind, PostError, ReadJournalError, SubmitError};
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

    /// The integrity failure this answer reports (corrupt stored data), if it is one.
    pub fn integrity_failure(&self) -> Option<&str> {
        let text = self.body["error"].as_str()?;
        (self.status == StatusCode::INTERNAL_SERVER_ERROR && text.starts_with("integrity failure"))
            .then_some(text)
    }
}

impl From<PostError> for ApiError {
    fn from(e: PostError) -> ApiError {
        let status = match &e {
            PostError::Rejected { .. } if e.is_forbidden() => StatusCode::FORBIDDEN,
            PostError::Rejected { .. } if e.is_conflict() => StatusCode::CONFLICT,
            PostError::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            PostError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => status_of(e.kind()),
        };
        let body = match &e {
            PostError::Rejected { errors, total } => json!({
                "error": format!("{} refused, nothing stored", if *total == 1 { "1 event".to_string() } else { format!("{total} events") }),
                "errors": errors.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
                "total": total,
            }),
            other => json!({"error": message(other.kind(), other.to_string())}),
        };
        ApiError { status, body }
    }
}

/// The status of a failure that is not a refusal of the request: corrupt stored data is the
/// server's integrity failure (500), a failing disk is temporary (503, retry).
fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Input => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Integrity => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Io => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// An integrity failure's message says so, once, and what to do.
fn message(kind: ErrorKind, text: String) -> String {
    match kind {
        ErrorKind::Integrity if text.starts_with("integrity failure") => {
            format!("{text}; run `junbao verify`")
        }
        ErrorKind::Integrity => format!("integrity failure: {text}; run `junbao verify`"),
        _ => text,
    }
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> ApiError {
        let kind = e.kind();
        match e {
            AuditError::Input(m) => ApiError::unprocessable(m),
            other => ApiError::new(status_of(kind), message(kind, other.to_string())),
        }
    }
}

impl From<ReadJournalError> for ApiError {
    fn from(e: ReadJournalError) -> ApiError {
        let kind = e.kind();
        ApiError::new(status_of(kind), message(kind, e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use junbao_engine::ReadError;

    #[test]
    fn a_failure_of_the_store_keeps_its_kind_as_a_status() {
        let corrupt = ApiError::from(PostError::Read(ReadError::Corrupt("entry 7".into())));
        assert_eq!(corrupt.status, StatusCode::INTERNAL_SERVER_ERROR);
        let body = corrupt.body["error"].as_str().unwrap();
        assert!(body.starts_with("integrity failure: "), "{body}");
        assert!(body.contains("junbao verify"), "{body}");
        let disk = ApiError::from(PostError::Read(ReadError::Engine("EIO".into())));
        assert_eq!(disk.status, StatusCode::SERVICE_UNAVAILABLE);
        let write = ApiError::from(AuditError::Write(junbao_engine::WriteError::Poisoned));
        assert_eq!(write.status, StatusCode::SERVICE_UNAVAILABLE);
        let read = ApiError::from(AuditError::Read(ReadError::Corrupt("node".into())));
        assert_eq!(read.status, StatusCode::INTERNAL_SERVER_ERROR);
        let input = ApiError::from(AuditError::Input("tree size".into()));
        assert_eq!(input.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
