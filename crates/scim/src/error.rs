//! SCIM errors (RFC 7644 §3.12): one `ErrorKind` per answer a client can act on, each
//! with its HTTP status and `scimType`, so that no call site spells either.

use serde_json::{Value, json};

use crate::filter::FilterError;
use crate::patch::PatchError;
use crate::projection::ProjectionError;
use crate::service::{MAX_KEY_VALUE_BYTES, MAX_RESOURCE_BYTES};
use crate::store::StoreError;

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// What went wrong, as RFC 7644 §3.12 (and RFC 9865 for cursors) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400 `invalidFilter`: the filter does not parse or cannot apply.
    InvalidFilter,
    /// 400 `tooMany`: the query would cost more than the server allows.
    TooMany,
    /// 409 `uniqueness`: a unique attribute's value is taken.
    Uniqueness,
    /// 400 `mutability`: a change to an attribute that cannot change.
    Mutability,
    /// 400 `invalidSyntax`: the request is not the structure SCIM defines.
    InvalidSyntax,
    /// 400 `invalidPath`: a path that names nothing this server knows.
    InvalidPath,
    /// 400 `noTarget`: a PATCH path whose filter selects nothing.
    NoTarget,
    /// 400 `invalidValue`: a value missing, of the wrong type, or out of range.
    InvalidValue,
    /// 400 `invalidVers`: a SCIM version this server does not speak.
    InvalidVers,
    /// 400 `invalidCursor` (RFC 9865).
    InvalidCursor,
    /// 400 `expiredCursor` (RFC 9865).
    ExpiredCursor,
    /// 409 `invalidValue`: a Bulk `bulkId` that names no created resource, or a cycle.
    UnresolvedBulkId,
    /// 401: no or an unknown bearer token.
    Unauthorized,
    /// 403: the token may not do this.
    Forbidden,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 412: `If-Match` names another version.
    PreconditionFailed,
    /// 413: the body or the resource is over a size limit.
    PayloadTooLarge,
    /// 429: the tenant's rate, or the store's; with `Retry-After`.
    TooManyRequests,
    /// 500.
    Internal,
    /// 501.
    NotImplemented,
    /// 503: the store is unavailable; retry.
    Unavailable,
    /// Another status the HTTP layer chose (axum's own refusals, passed on as SCIM JSON).
    Http(u16),
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        use ErrorKind::*;
        match self {
            InvalidFilter | TooMany | Mutability | InvalidSyntax | InvalidPath | NoTarget
            | InvalidValue | InvalidVers | InvalidCursor | ExpiredCursor => 400,
            Unauthorized => 401,
            Forbidden => 403,
            NotFound => 404,
            MethodNotAllowed => 405,
            Uniqueness | UnresolvedBulkId => 409,
            PreconditionFailed => 412,
            PayloadTooLarge => 413,
            TooManyRequests => 429,
            Internal => 500,
            NotImplemented => 501,
            Unavailable => 503,
            Http(status) => status,
        }
    }

    pub fn scim_type(self) -> Option<&'static str> {
        use ErrorKind::*;
        Some(match self {
            InvalidFilter => "invalidFilter",
            TooMany => "tooMany",
            Uniqueness => "uniqueness",
            Mutability => "mutability",
            InvalidSyntax => "invalidSyntax",
            InvalidPath => "invalidPath",
            NoTarget => "noTarget",
            InvalidValue | UnresolvedBulkId => "invalidValue",
            InvalidVers => "invalidVers",
            InvalidCursor => "invalidCursor",
            ExpiredCursor => "expiredCursor",
            Http(400) => "invalidSyntax",
            _ => return None,
        })
    }
}

/// An error as SCIM clients expect it (RFC 7644 §3.12).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {scim_type:?}: {detail}")]
pub struct ScimError {
    pub kind: ErrorKind,
    /// `kind`'s status and `scimType`, kept for callers that read them.
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
    /// Seconds, for 429 and 503 answers (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ScimError {
    pub fn of(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            status: kind.status(),
            scim_type: kind.scim_type(),
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::of(ErrorKind::NotFound, format!("{what} not found"))
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({"schemas": [ERROR_SCHEMA], "status": self.status.to_string(), "detail": self.detail});
        if let Some(t) = self.scim_type {
            v["scimType"] = json!(t);
        }
        v
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ScimError::not_found("resource"),
            StoreError::Uniqueness { attr, value } => ScimError::of(
                ErrorKind::Uniqueness,
                format!("{attr} {value:?} is already taken"),
            ),
            StoreError::VersionMismatch { .. } => ScimError::of(
                ErrorKind::PreconditionFailed,
                "resource was modified; re-read it and retry",
            ),
            StoreError::Throttled(detail) => {
                tracing::warn!(detail, "store throttled");
                ScimError::of(ErrorKind::TooManyRequests, "too many requests; retry later")
            }
            StoreError::Unavailable(detail) => {
                // internal detail goes to the log, not to the client
                tracing::error!(detail, "store unavailable");
                ScimError::of(ErrorKind::Unavailable, "service temporarily unavailable")
            }
            // the request's fault, never retried: an IdP retrying a 503 would loop
            StoreError::TooLarge(detail) => {
                tracing::warn!(detail, "resource too large for the store");
                ScimError::of(
                    ErrorKind::PayloadTooLarge,
                    format!("the resource is over the {MAX_RESOURCE_BYTES}-byte limit"),
                )
            }
            StoreError::Invalid(detail) => {
                tracing::warn!(detail, "value refused by the store");
                ScimError::of(
                    ErrorKind::InvalidValue,
                    format!(
                        "a value is over the {MAX_KEY_VALUE_BYTES}-byte limit of ids and unique names"
                    ),
                )
            }
        }
    }
}

impl From<crate::schema::Nonconforming> for ScimError {
    fn from(e: crate::schema::Nonconforming) -> Self {
        ScimError::of(ErrorKind::InvalidValue, e.to_string())
    }
}

impl From<PatchError> for ScimError {
    fn from(e: PatchError) -> Self {
        ScimError::of(e.kind(), e.to_string())
    }
}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        ScimError::of(ErrorKind::InvalidFilter, e.to_string())
    }
}

impl From<ProjectionError> for ScimError {
    fn from(e: ProjectionError) -> Self {
        ScimError::of(ErrorKind::InvalidSyntax, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scim_type_is_only_on_the_statuses_rfc_7644_gives_one() {
        for kind in [
            ErrorKind::Uniqueness,
            ErrorKind::InvalidValue,
            ErrorKind::NotFound,
        ] {
            let e = ScimError::of(kind, "x");
            assert_eq!((e.status, e.scim_type), (kind.status(), kind.scim_type()));
            let doc = e.to_json();
            assert_eq!(doc["status"], kind.status().to_string(), "a string");
            assert_eq!(
                doc.get("scimType").and_then(Value::as_str),
                kind.scim_type()
            );
        }
        assert_eq!(ErrorKind::Uniqueness.status(), 409);
        assert_eq!(ErrorKind::NotFound.scim_type(), None);
        assert_eq!(ErrorKind::Http(400).scim_type(), Some("invalidSyntax"));
        assert_eq!(ErrorKind::Http(415).scim_type(), None);
    }
}
