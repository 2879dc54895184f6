//! `berth exec`: a command in a running container, its output streamed
//! back (Docker's multiplexed frames, see `berth_api`'s exec), its exit
//! code ours.

use bytes::Bytes;
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use http_body_util::StreamBody;
use hyper::body::Frame;

use super::http::Daemon;
use super::terminal::{self, RawMode};

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
    let head = berth_api_types::ExecRequest {
        tty: a.tty,
        tty_size: if a.tty { terminal::size() } else { None },
        cmd: a.command.clone(),
        env: env_of(&a.env),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        detach: a.detach,
        stdin: a.interactive && !a.detach,
    };
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
    let code = match super::attach::relay(resp).await {
        Ok(super::attach::Outcome::Exited(code)) => Ok(code),
        Ok(_) => {
            eprintln!("berth: the connection to berthd ended before the command's exit code");
            Ok(125)
        }
        Err(e) => Err(e),
    };
    raw.restore();
    std::process::exit(code?);
}
