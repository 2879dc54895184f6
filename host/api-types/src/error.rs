//! The body of every 4xx and 5xx answer.

use serde::{Deserialize, Serialize};

/// A stable machine-readable code (`not_found`, `invalid_argument`,
/// `container_running`, `denied`...) and a message for a human.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}
