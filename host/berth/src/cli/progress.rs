//! Render a pull or push event stream: progress bars on a terminal, one
//! line per blob otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;

use anyhow::bail;
use berth_api::control::Event;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Read NDJSON events until the result; return it.
pub async fn follow(mut body: Incoming) -> anyhow::Result<serde_json::Value> {
    let tty = std::io::stderr().is_terminal();
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template(
        "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        buf.extend_from_slice(data);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let event: Event = serde_json::from_slice(&line)?;
            match event {
                Event::Start { digest, size } if tty => {
                    let bar = multi.add(ProgressBar::new(size));
                    bar.set_style(style.clone());
                    bar.set_prefix(short(&digest));
                    bars.insert(digest, bar);
                }
                Event::Advance { digest, bytes } => {
                    if let Some(b) = bars.get(&digest) {
                        b.inc(bytes);
                    }
                }
                Event::Finish { digest, outcome } => match bars.remove(&digest) {
                    Some(b) => b.finish_with_message(outcome),
                    None => eprintln!("{}: {outcome}", short(&digest)),
                },
                Event::Done { result } => return Ok(result),
                Event::Error { message, .. } => bail!("{message}"),
                Event::Start { .. } => {}
            }
        }
    }
    bail!("berthd closed the stream before the operation finished; see its log")
}

fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}
