//! `berth exec`: a command in a running container, its output streamed
//! back (Docker's multiplexed frames, see `berth_api`'s exec), its exit
//! code ours.

use std::io::Write;

use anyhow::Context;
use bytes::{Buf, Bytes, BytesMut};
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use super::http::Daemon;
use super::terminal::{self, RawMode};
use berth_api::control::containers::{EXIT, STDERR, STDOUT};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Start the command and return at once.
    #[arg(short, long)]
    pub detach: bool,
    /// Send our standard input to the command.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal (our terminal goes raw meanwhile).
    #[arg(short, long)]
    pub tty: bool,
    /// `KEY=VALUE`, or `KEY` to pass ours; repeatable.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// `user[:group]`, names resolved in the container.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// `KEY` alone takes our value, as `docker exec -e KEY` does.
fn env_of(env: &[String]) -> Vec<String> {
    env.iter()
        .map(|e| match (e.contains('='), std::env::var(e)) {
            (false, Ok(v)) => format!("{e}={v}"),
            _ => e.clone(),
        })
        .collect()
}

pub async fn exec(daemon: &Daemon, a: ExecArgs) -> anyhow::Result<()> {
    let head = serde_json::json!({
        "tty": a.tty,
        "tty_size": if a.tty { terminal::size() } else { None },
        "cmd": a.command,
        "env": env_of(&a.env),
        "user": a.user,
        "workdir": a.workdir,
        "detach": a.detach,
        "stdin": a.interactive && !a.detach,
    });
    let mut line = serde_json::to_vec(&head)?;
    line.push(b'\n');
    let first =
        futures::stream::once(async move { Ok::<Bytes, std::io::Error>(Bytes::from(line)) });
    let body: futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>> =
        if a.interactive && !a.detach {
            let stdin = tokio_util::io::ReaderStream::new(tokio::io::stdin());
            first.chain(stdin).boxed()
        } else {
            first.boxed()
        };
    let path = format!("/v1/containers/{}/exec", super::encode(&a.container));
    let (status, resp) = daemon
        .request(
            http::Method::POST,
            &path,
            "application/x-berth-exec",
            StreamBody::new(body.map_ok(Frame::data)),
        )
        .await?;
    if !status.is_success() {
        let err = super::http::json_of(status, resp).await.err();
        eprintln!(
            "berth: {}",
            err.map(|e| format!("{e:#}"))
                .unwrap_or_else(|| "the daemon refused the exec".into())
        );
        std::process::exit(1);
    }
    if a.detach {
        super::http::json_of(status, resp).await?;
        return Ok(());
    }
    let raw = if a.tty {
        RawMode::enter()
    } else {
        RawMode::none()
    };
    let code = relay(resp).await;
    raw.restore();
    std::process::exit(code?);
}

/// Print the frames; the exit code from the last one.
async fn relay(resp: hyper::body::Incoming) -> anyhow::Result<i32> {
    let mut body = resp;
    let mut buf = BytesMut::new();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    loop {
        while buf.len() >= 8 {
            let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
            if buf.len() < 8 + len {
                break;
            }
            let stream = buf[0];
            buf.advance(8);
            let data = buf.split_to(len);
            match stream {
                STDOUT => {
                    out.write_all(&data)?;
                    out.flush()?;
                }
                STDERR => {
                    err.write_all(&data)?;
                    err.flush()?;
                }
                EXIT => {
                    return String::from_utf8_lossy(&data)
                        .trim()
                        .parse()
                        .context("berthd sent a damaged exit code");
                }
                _ => {}
            }
        }
        match body.frame().await {
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    buf.extend_from_slice(&d);
                }
            }
            Some(Err(e)) => return Err(e).context("reading the command's output from berthd"),
            None => {
                eprintln!("berth: the connection to berthd ended before the command's exit code");
                return Ok(125);
            }
        }
    }
}
