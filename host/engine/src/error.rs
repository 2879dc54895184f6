//! The engine's one error type: what kind of failure it is (which a front
//! end maps to its own status: HTTP, gRPC, exit code), a stable machine
//! `code`, and a message that says what failed, on what, and what to do.

/// A failure of an engine operation.
///
/// `code` strings are part of the control API's wire format (`pull_failed`,
/// `no_matching_platform`, …): keep them stable.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// What the caller named does not exist (an image, a mount).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The operation clashes with the current state (something in use).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The request itself is wrong: a bad reference, option or archive.
    #[error("{message}")]
    InvalidArgument { code: &'static str, message: String },
    /// The request was well formed but the image's content cannot be used
    /// (a layer that does not apply). Kept apart from `InvalidArgument`
    /// because front ends answer it differently (HTTP 422, not 400).
    #[error("{message}")]
    BadContent { code: &'static str, message: String },
    /// A lifecycle hook (a named plugin) said no.
    #[error("{event} denied by plugin {plugin}: {reason}")]
    Denied {
        event: String,
        plugin: String,
        reason: String,
    },
    /// A remote registry failed or answered something unusable.
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    /// berth itself failed (storage, a task that died).
    #[error("{message}")]
    Internal { message: String },
}

impl EngineError {
    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::NotFound { code, .. }
            | EngineError::Conflict { code, .. }
            | EngineError::InvalidArgument { code, .. }
            | EngineError::BadContent { code, .. }
            | EngineError::Upstream { code, .. } => code,
            EngineError::Denied { .. } => "denied_by_policy",
            EngineError::Internal { .. } => "internal",
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        EngineError::NotFound {
            code: "not_found",
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        EngineError::InvalidArgument {
            code: "invalid_argument",
            message: message.into(),
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        EngineError::Internal {
            message: message.to_string(),
        }
    }
}

impl From<berth_state::StateError> for EngineError {
    fn from(e: berth_state::StateError) -> Self {
        EngineError::internal(format!("the image and container database: {e}"))
    }
}
