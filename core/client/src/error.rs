//! The one error type of the client: what failed, on what, and what to try.

use berth_oci::{Digest, ErrorBody, ErrorCode, ManifestError};

use crate::challenge::ChallengeError;
use crate::credentials::CredentialError;

/// Errors of the blob sources and sinks that callers plug in.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "{operation} on {registry}: could not reach the registry ({source}); check the address, the network, and whether it speaks HTTPS or plain HTTP (mark it insecure if plain)"
    )]
    Http {
        registry: String,
        operation: String,
        #[source]
        source: reqwest::Error,
    },

    #[error(
        "{operation} on {registry}{}: registry answered {status}{}{}",
        repo_suffix(repository),
        code_suffix(code),
        message_suffix(message)
    )]
    Registry {
        registry: String,
        repository: Option<String>,
        operation: String,
        status: u16,
        /// The first distribution error code of the body, when it had one.
        code: Option<ErrorCode>,
        /// Every error the registry listed, as it sent them.
        body: Option<ErrorBody>,
        message: String,
    },

    #[error(
        "{operation} on {registry}{}: not authorized{}; log in with `berth login {registry}` or check that the account may access this repository",
        repo_suffix(repository),
        message_suffix(detail)
    )]
    Unauthorized {
        registry: String,
        repository: Option<String>,
        operation: String,
        detail: String,
    },

    #[error("logging in to {registry} failed: {detail}; check the user name and password")]
    LoginFailed { registry: String, detail: String },

    #[error("token server {realm} for {registry} failed: {detail}")]
    TokenServer {
        registry: String,
        realm: String,
        detail: String,
    },

    #[error("registry {registry} sent an authentication challenge berth cannot use: {source}")]
    Challenge {
        registry: String,
        #[source]
        source: ChallengeError,
    },

    #[error(
        "{what} {digest} from {registry}/{repository} does not match its digest: the registry sent content hashing to {actual}; nothing was kept, retry or report the registry as corrupt"
    )]
    DigestMismatch {
        registry: String,
        repository: String,
        what: &'static str,
        digest: Digest,
        actual: Digest,
    },

    #[error(
        "blob {digest} from {registry}/{repository} is {actual} bytes, expected {expected}; nothing was kept"
    )]
    SizeMismatch {
        registry: String,
        repository: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },

    #[error("{operation} on {registry}: the registry's answer is not usable: {detail}")]
    BadResponse {
        registry: String,
        operation: String,
        detail: String,
    },

    #[error("manifest {reference} from {registry}/{repository}: {source}")]
    Manifest {
        registry: String,
        repository: String,
        reference: String,
        #[source]
        source: ManifestError,
    },

    #[error("{reference} has no manifest for platform {platform}; it offers: {}", available.join(", "))]
    NoMatchingPlatform {
        reference: String,
        platform: String,
        available: Vec<String>,
    },

    #[error("upload of {digest} to {registry}/{repository} could not be completed: {detail}")]
    UploadFailed {
        registry: String,
        repository: String,
        digest: Digest,
        detail: String,
    },

    #[error("registry address {registry:?} is not usable: {detail}")]
    BadRegistry { registry: String, detail: String },

    #[error("reading blob {digest} from the local source failed: {source}")]
    Source {
        digest: Digest,
        #[source]
        source: BoxError,
    },

    #[error("storing blob {digest} locally failed: {source}")]
    Sink {
        digest: Digest,
        #[source]
        source: BoxError,
    },

    #[error("writing blob {digest} failed: {source}")]
    Write {
        digest: Digest,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

impl ClientError {
    /// The distribution error code the registry sent, if any.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Registry { code, .. } => *code,
            ClientError::Unauthorized { .. } => Some(ErrorCode::Unauthorized),
            _ => None,
        }
    }

    /// The HTTP status the registry answered with, if the failure was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Registry { status, .. } => Some(*status),
            ClientError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }
}

fn repo_suffix(repository: &Option<String>) -> String {
    repository
        .as_deref()
        .map(|r| format!(" (repository {r})"))
        .unwrap_or_default()
}

fn code_suffix(code: &Option<ErrorCode>) -> String {
    code.map(|c| format!(" {}", c.as_str())).unwrap_or_default()
}

fn message_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}
