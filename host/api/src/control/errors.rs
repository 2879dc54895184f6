//! The control plane's one error type: a stable code and a human message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ControlError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ControlError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ControlError::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ControlError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        ControlError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            message.to_string(),
        )
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(berth_api_types::ErrorBody {
                code: self.code.to_string(),
                message: self.message,
            }),
        )
            .into_response()
    }
}

impl From<berth_state::StateError> for ControlError {
    fn from(e: berth_state::StateError) -> Self {
        ControlError::internal(e)
    }
}

/// The one place engine errors become statuses. Codes pass through
/// unchanged: they are part of the wire format.
impl From<berth_engine::EngineError> for ControlError {
    fn from(e: berth_engine::EngineError) -> Self {
        use berth_engine::EngineError as E;
        let status = match &e {
            E::NotFound { .. } => StatusCode::NOT_FOUND,
            E::Conflict { .. } => StatusCode::CONFLICT,
            E::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
            E::BadContent { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            E::Denied { .. } => StatusCode::FORBIDDEN,
            E::Upstream { .. } => StatusCode::BAD_GATEWAY,
            E::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ControlError::new(status, e.code(), e.to_string())
    }
}
