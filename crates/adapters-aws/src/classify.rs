//! One place that decides what an SDK error means for us.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

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

pub fn classify<E>(err: &aws_smithy_runtime_api::client::result::SdkError<E, HttpResponse>) -> Kind
where
    E: ProvideErrorMetadata,
{
    use aws_smithy_runtime_api::client::result::SdkError;
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
pub fn describe<E>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, HttpResponse>,
) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().unwrap_or("unknown");
    let message = err.message().unwrap_or_default();
    format!(
        "{code}: {message} ({})",
        aws_smithy_types::error::display::DisplayErrorContext(err)
    )
}
