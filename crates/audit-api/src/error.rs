//! Every error leaves as `{"error": {"status", "code", "message"}}` with its status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use history::HistoryError;
use tenants::DirectoryError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"error": {"status": self.status.as_u16(), "code": self.code, "message": self.message}})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"audit\""),
            );
        }
        if matches!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        ) {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        r
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::Query(q) => Self::bad_request("invalid_parameter", q.to_string()),
            HistoryError::Cursor(why) => {
                Self::bad_request("invalid_cursor", format!("cursor: {why}"))
            }
            HistoryError::Checkpoint(why) => {
                Self::bad_request("invalid_checkpoint", format!("checkpoint: {why}"))
            }
            HistoryError::Log(why) => {
                tracing::error!(error = %why, "reading the tenant log failed");
                Self::unavailable(format!("the tenant log could not be read: {why}"))
            }
            HistoryError::Storage(s) => {
                tracing::error!(error = %s, "reading the audit history failed");
                Self::unavailable(format!(
                    "the audit history could not be read just now ({s}); retry"
                ))
            }
        }
    }
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Throttled(m) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "throttled", m)
            }
            DirectoryError::Unavailable(m) => Self::unavailable(m),
        }
    }
}
