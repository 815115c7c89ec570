//! One place that decides what an SDK error means for us.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An error returned by any operation of any of the AWS SDK clients we use.
pub type AwsError<E> = SdkError<E, HttpResponse>;

/// What every SDK operation's error type provides: a code, a message, a source chain.
pub trait OperationError: ProvideErrorMetadata + std::error::Error + 'static {}
impl<E: ProvideErrorMetadata + std::error::Error + 'static> OperationError for E {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Throttled,
    Transient,
    NotFound,
    ConditionFailed,
    Permanent,
}

const THROTTLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "TooManyRequestsException",
];

pub fn classify<E: ProvideErrorMetadata>(err: &AwsError<E>) -> Kind {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Kind::Transient
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            let status = service.raw().status().as_u16();
            if THROTTLE_CODES.contains(&code) || status == 429 {
                Kind::Throttled
            } else if code == "ConditionalCheckFailedException" {
                Kind::ConditionFailed
            } else if code == "NoSuchKey" || code == "NotFound" || status == 404 {
                Kind::NotFound
            } else if status >= 500 || code == "InternalServerError" || code == "InternalFailure" {
                Kind::Transient
            } else {
                Kind::Permanent
            }
        }
        _ => Kind::Permanent,
    }
}

/// The error text with its code, for logs (never sent to clients).
pub fn describe<E: OperationError>(err: &AwsError<E>) -> String {
    let code = err.code().unwrap_or("unknown");
    let message = err.message().unwrap_or_default();
    format!(
        "{code}: {message} ({})",
        aws_smithy_types::error::display::DisplayErrorContext(err)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::error::{
        ConditionalCheckFailedException, ProvisionedThroughputExceededException,
    };
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty())
    }

    fn unhandled(code: &str, status: u16) -> SdkError<PutItemError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        SdkError::service_error(PutItemError::generic(meta), response(status))
    }

    #[test]
    fn dynamodb_throttling_is_throttled() {
        let e = ProvisionedThroughputExceededException::builder()
            .message("slow down")
            .meta(
                ErrorMetadata::builder()
                    .code("ProvisionedThroughputExceededException")
                    .build(),
            )
            .build();
        let err = SdkError::service_error(
            PutItemError::ProvisionedThroughputExceededException(e),
            response(400),
        );
        assert_eq!(classify(&err), Kind::Throttled);
        assert_eq!(
            classify(&unhandled("ThrottlingException", 400)),
            Kind::Throttled
        );
        assert_eq!(classify(&unhandled("SlowDown", 503)), Kind::Throttled);
        assert!(describe(&err).contains("ProvisionedThroughputExceededException"));
    }

    #[test]
    fn condition_failures_and_server_errors() {
        let e = ConditionalCheckFailedException::builder()
            .meta(
                ErrorMetadata::builder()
                    .code("ConditionalCheckFailedException")
                    .build(),
            )
            .build();
        let err = SdkError::service_error(
            PutItemError::ConditionalCheckFailedException(e),
            response(400),
        );
        assert_eq!(classify(&err), Kind::ConditionFailed);
        assert_eq!(
            classify(&unhandled("InternalServerError", 500)),
            Kind::Transient
        );
        assert_eq!(classify(&unhandled("NoSuchKey", 404)), Kind::NotFound);
        assert_eq!(
            classify(&unhandled("ValidationException", 400)),
            Kind::Permanent
        );
    }
}
