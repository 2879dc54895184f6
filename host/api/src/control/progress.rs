//! Progress of a pull or push as newline-delimited JSON events.

use berth_client::{BlobOutcome, Progress};
use berth_oci::Digest;
use tokio::sync::mpsc::UnboundedSender;

pub use berth_api_types::Event;

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
