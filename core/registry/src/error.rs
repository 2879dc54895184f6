use berth_content::ContentError;
use berth_oci::{ErrorBody, ErrorCode, ErrorInfo};
use berth_state::StateError;

/// A failed registry operation: either a client error with the spec's code,
/// or a fault of the server itself (disk, database).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{code:?}: {message}")]
    Client {
        code: ErrorCode,
        status: u16,
        message: String,
        detail: serde_json::Value,
    },
    #[error("registry storage failed: {0}")]
    Content(ContentError),
    #[error("registry metadata failed: {0}")]
    State(StateError),
}

impl RegistryError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RegistryError::Client {
            code,
            status: code.default_status(),
            message: message.into(),
            detail: serde_json::Value::Null,
        }
    }

    pub fn with_status(self, s: u16) -> Self {
        match self {
            RegistryError::Client {
                code,
                message,
                detail,
                ..
            } => RegistryError::Client {
                code,
                status: s,
                message,
                detail,
            },
            other => other,
        }
    }

    pub fn with_detail(self, d: serde_json::Value) -> Self {
        match self {
            RegistryError::Client {
                code,
                status,
                message,
                ..
            } => RegistryError::Client {
                code,
                status,
                message,
                detail: d,
            },
            other => other,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            RegistryError::Client { status, .. } => *status,
            _ => 500,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            RegistryError::Client { code, .. } => *code,
            _ => ErrorCode::Unknown,
        }
    }

    /// The JSON body the spec prescribes.
    pub fn body(&self) -> ErrorBody {
        match self {
            RegistryError::Client {
                code,
                message,
                detail,
                ..
            } => ErrorBody {
                errors: vec![ErrorInfo {
                    code: *code,
                    message: message.clone(),
                    detail: detail.clone(),
                }],
            },
            other => ErrorBody::single(ErrorCode::Unknown, other.to_string()),
        }
    }
}

impl From<ContentError> for RegistryError {
    fn from(e: ContentError) -> Self {
        match e {
            ContentError::NotFound(d) => {
                RegistryError::new(ErrorCode::BlobUnknown, format!("blob {d} is unknown"))
                    .with_detail(serde_json::json!({ "digest": d.to_string() }))
            }
            ContentError::DigestMismatch { expected, actual } => RegistryError::new(
                ErrorCode::DigestInvalid,
                format!("uploaded content has digest {actual}, not {expected}; nothing was stored"),
            )
            .with_detail(serde_json::json!({ "digest": expected.to_string() })),
            ContentError::SizeMismatch {
                expected, actual, ..
            } => RegistryError::new(
                ErrorCode::SizeInvalid,
                format!("uploaded content is {actual} bytes, not {expected}; nothing was stored"),
            ),
            ContentError::RangeNotSatisfiable {
                start, end, size, ..
            } => RegistryError::new(
                ErrorCode::BlobUploadInvalid,
                format!("range {start}-{end} is outside the blob of {size} bytes"),
            )
            .with_status(416),
            ContentError::Source(err) => RegistryError::new(
                ErrorCode::BlobUploadInvalid,
                format!(
                    "reading the request body failed: {err}; resume the upload from its reported offset"
                ),
            ),
            ContentError::IngestNotFound(id) | ContentError::InvalidIngestId(id) => {
                RegistryError::new(
                    ErrorCode::BlobUploadUnknown,
                    format!("upload {id:?} is unknown"),
                )
            }
            other => RegistryError::Content(other),
        }
    }
}

impl From<StateError> for RegistryError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::BlobDeleting(d) => RegistryError::new(
                ErrorCode::BlobUnknown,
                format!("blob {d} is being garbage collected; upload it again"),
            )
            .with_detail(serde_json::json!({ "digest": d.to_string() })),
            other => RegistryError::State(other),
        }
    }
}

/// Parse a repository name, digest or tag from a request, mapping failures
/// to the spec's codes.
pub(crate) fn check_repo(repo: &str) -> Result<(), RegistryError> {
    berth_oci::validate_repository(repo)
        .map_err(|e| RegistryError::new(ErrorCode::NameInvalid, e.to_string()))
}

pub(crate) fn parse_digest(s: &str) -> Result<berth_oci::Digest, RegistryError> {
    s.parse().map_err(|e: berth_oci::DigestError| {
        RegistryError::new(ErrorCode::DigestInvalid, e.to_string())
    })
}
