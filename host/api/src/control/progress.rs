//! Progress of a pull or push as newline-delimited JSON events.

use berth_client::{BlobOutcome, Progress};
use berth_oci::Digest;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

/// One line of a pull or push stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start { digest: String, size: u64 },
    Advance { digest: String, bytes: u64 },
    Finish { digest: String, outcome: String },
    Done { result: serde_json::Value },
    Error { code: String, message: String },
}

pub(crate) struct ChannelProgress(pub UnboundedSender<Event>);

impl Progress for ChannelProgress {
    fn start(&self, digest: &Digest, size: u64) {
        let _ = self.0.send(Event::Start {
            digest: digest.to_string(),
            size,
        });
    }

    fn advance(&self, digest: &Digest, bytes: u64) {
        let _ = self.0.send(Event::Advance {
            digest: digest.to_string(),
            bytes,
        });
    }

    fn finish(&self, digest: &Digest, outcome: BlobOutcome) {
        let _ = self.0.send(Event::Finish {
            digest: digest.to_string(),
            outcome: format!("{outcome:?}").to_lowercase(),
        });
    }
}
