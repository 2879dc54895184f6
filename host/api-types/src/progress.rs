//! One line of the newline-delimited JSON stream of a pull or push.

use serde::{Deserialize, Serialize};

/// One line of a pull or push stream (`application/x-ndjson`). The last
/// line is `done` (with the operation's result) or `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A blob transfer began.
    Start { digest: String, size: u64 },
    /// Bytes of a blob moved.
    Advance { digest: String, bytes: u64 },
    /// A blob is done: `fetched`, `present`, `pushed`, `mounted`...
    Finish { digest: String, outcome: String },
    /// The operation's result: an [`Image`](crate::Image) for a pull, a
    /// [`PushResponse`](crate::PushResponse) for a push.
    Done {
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        result: serde_json::Value,
    },
    /// The operation failed; the stream ends.
    Error { code: String, message: String },
}
