//! One error type for the registry endpoint, rendered as the spec's JSON.

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_auth::Denial;
use berth_oci::{ErrorBody, ErrorCode};
use berth_registry::RegistryError;

#[derive(Debug)]
pub enum ApiError {
    Registry(RegistryError),
    Denied(Denial),
}

impl ApiError {
    pub(crate) fn client(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::Registry(RegistryError::new(code, message))
    }

    pub(crate) fn unsupported(m: &Method) -> ApiError {
        ApiError::client(
            ErrorCode::Unsupported,
            format!("method {m} is not supported here"),
        )
    }

    pub(crate) fn not_found(path: &str) -> ApiError {
        ApiError::Registry(
            RegistryError::new(
                ErrorCode::NameUnknown,
                format!("{path} is not a registry API path"),
            )
            .with_status(404),
        )
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError::Registry(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Registry(e) => {
                let status =
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                if status.is_server_error() {
                    tracing::error!(error = %e, "registry request failed");
                }
                (status, axum::Json(e.body())).into_response()
            }
            ApiError::Denied(d) => {
                let (code, challenge) = match &d {
                    Denial::Unauthorized { challenge, .. } => {
                        (ErrorCode::Unauthorized, Some(challenge.clone()))
                    }
                    Denial::Denied { .. } => (ErrorCode::Denied, None),
                    Denial::BadRequest { .. } => (ErrorCode::Unsupported, None),
                    Denial::TooManyRequests { .. } => (ErrorCode::TooManyRequests, None),
                    Denial::Internal { .. } => (ErrorCode::Unknown, None),
                };
                let status = StatusCode::from_u16(d.status()).unwrap_or(StatusCode::UNAUTHORIZED);
                let mut resp =
                    (status, axum::Json(ErrorBody::single(code, d.message()))).into_response();
                if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, c);
                }
                if let Denial::TooManyRequests {
                    retry_after_secs, ..
                } = &d
                {
                    resp.headers_mut().insert(
                        http::header::RETRY_AFTER,
                        HeaderValue::from(*retry_after_secs),
                    );
                }
                resp
            }
        }
    }
}
