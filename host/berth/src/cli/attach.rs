//! `berth attach`, and the attached half of `run -i`/`-t` and `start -a`:
//! the container's output (multiplexed frames, see `berth_api`'s attach)
//! to our stdout and stderr, our stdin to the container, our terminal's
//! size to its terminal, and its exit code ours.
//!
//! The attach is asked for before the start (berthd answers at once and
//! connects it when the container starts), so no output is missed.

use berth_api_types::ContainerStatus;
use std::io::Write;

use anyhow::Context;
use bytes::{Buf, Bytes, BytesMut};
use clap::Args;
use futures::StreamExt;
use http::Method;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use super::http::Daemon;
use super::terminal::{self, DetachKeys, RawMode};
use berth_runtime::attach::{EXIT, STDERR, STDOUT};

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not send our standard input to the container.
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    pub container: String,
}

/// How an attached session ended.
pub enum Outcome {
    /// The container's run ended with this code.
    Exited(i32),
    /// The detach keys were typed: the container runs on.
    Detached,
    /// The stream ended without an exit code (another client attached,
    /// or berthd went away).
    Lost,
    /// We were told to stop by this signal.
    Signaled(i32),
}

/// An attach berthd has answered.
pub struct Attached {
    output: Incoming,
    detached: oneshot::Receiver<()>,
    tty: bool,
    container: String,
}

/// Ask berthd to attach to `container` (identified as the user gave it),
/// sending our stdin if `stdin`; `tty` turns on the detach keys and resizing.
pub async fn open(
    daemon: &Daemon,
    container: &str,
    stdin: bool,
    tty: bool,
) -> anyhow::Result<Attached> {
    let (detach, detached) = oneshot::channel();
    let body: futures::stream::BoxStream<'static, Result<Frame<Bytes>, std::io::Error>> = if stdin {
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        tokio::spawn(read_stdin(tx, tty.then(DetachKeys::default), detach));
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok(Frame::data(b)), rx))
        })
        .boxed()
    } else {
        // A body that never ends: berthd takes a lost connection as us gone.
        drop(detach);
        futures::stream::pending().boxed()
    };
    let path = format!(
        "/v1/containers/{}/attach?stdin={}",
        super::encode(container),
        u8::from(stdin)
    );
    let (status, output) = daemon
        .request(
            Method::POST,
            &path,
            "application/octet-stream",
            StreamBody::new(body),
        )
        .await?;
    if !status.is_success() {
        super::http::json_of(status, output).await?;
        anyhow::bail!("berthd refused to attach to {container} ({status})");
    }
    Ok(Attached {
        output,
        detached,
        tty,
        container: container.to_string(),
    })
}

/// Our stdin to the body, until EOF (the body ends: the container's stdin
/// closes if it was run with `-i`) or the detach keys.
async fn read_stdin(
    tx: mpsc::Sender<Bytes>,
    mut keys: Option<DetachKeys>,
    detach: oneshot::Sender<()>,
) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let (data, detaching) = match keys.as_mut() {
            Some(k) => k.feed(&buf[..n]),
            None => (buf[..n].to_vec(), false),
        };
        if !data.is_empty() && tx.send(Bytes::from(data)).await.is_err() {
            return;
        }
        if detaching {
            let _ = detach.send(());
            // Never returns, keeping the body open: the session ends us first.
            return std::future::pending::<()>().await;
        }
    }
}

/// Send our terminal's size to the container's.
pub async fn resize(daemon: &Daemon, container: &str) {
    if let Some((rows, cols)) = terminal::size() {
        let path = format!(
            "/v1/containers/{}/resize?h={rows}&w={cols}",
            super::encode(container)
        );
        // Best effort: the container may not be running yet, or any more.
        let _ = daemon.send(Method::POST, &path, None).await;
    }
}

/// Relay until the run ends, the detach keys, or SIGTERM/SIGHUP; with a
/// terminal, SIGWINCH resizes the container's.
pub async fn session(daemon: &Daemon, a: Attached) -> anyhow::Result<Outcome> {
    if a.tty {
        let (daemon, container) = (daemon.clone(), a.container.clone());
        let mut winch = signal(SignalKind::window_change()).context("watching SIGWINCH")?;
        tokio::spawn(async move {
            while winch.recv().await.is_some() {
                resize(&daemon, &container).await;
            }
        });
    }
    let mut term = signal(SignalKind::terminate()).context("watching SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).context("watching SIGHUP")?;
    let detached = async {
        match a.detached.await {
            Ok(()) => Outcome::Detached,
            // Stdin ended (or was never ours): only the output decides.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        r = relay(a.output) => r,
        o = detached => Ok(o),
        _ = term.recv() => Ok(Outcome::Signaled(SignalKind::terminate().as_raw_value())),
        _ = hup.recv() => Ok(Outcome::Signaled(SignalKind::hangup().as_raw_value())),
    }
}

/// Print the frames (of attach and exec); the exit code from the last one.
pub(super) async fn relay(mut body: Incoming) -> anyhow::Result<Outcome> {
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
                    let code = String::from_utf8_lossy(&data)
                        .trim()
                        .parse()
                        .context("berthd sent a damaged exit code")?;
                    return Ok(Outcome::Exited(code));
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
            Some(Err(e)) => return Err(e).context("reading the output from berthd"),
            None => return Ok(Outcome::Lost),
        }
    }
}

/// Leave as the session ended: the terminal restored, the exit code the
/// container's (0 after detaching, 125 when berth lost it).
pub fn finish(raw: RawMode, outcome: anyhow::Result<Outcome>, container: &str) -> ! {
    raw.restore();
    let code = match outcome {
        Ok(Outcome::Exited(code)) => code,
        Ok(Outcome::Detached) => 0,
        Ok(Outcome::Lost) => {
            eprintln!(
                "berth: the attachment to {container} ended before the container did (another client attached, or berthd stopped)"
            );
            125
        }
        Ok(Outcome::Signaled(sig)) => 128 + sig,
        Err(e) => {
            eprintln!("berth: {e:#}");
            125
        }
    };
    std::process::exit(code)
}

/// `berth attach`: to a running container created with `-i` or `-t`.
pub async fn attach(daemon: &Daemon, a: AttachArgs) -> anyhow::Result<()> {
    let path = format!("/v1/containers/{}", super::encode(&a.container));
    let info: berth_api_types::ContainerInspect = daemon.call(Method::GET, &path, None).await?;
    match info.summary.status {
        ContainerStatus::Running { .. } => {}
        ContainerStatus::Restarting { .. } => anyhow::bail!(
            "container {} is waiting to be restarted by its policy: attach once it runs again",
            a.container
        ),
        _ => anyhow::bail!(
            "container {} is not running: `berth start -a -i {}` starts it attached",
            a.container,
            a.container
        ),
    }
    let tty = info.tty;
    let stdin = info.open_stdin && !a.no_stdin;
    let attached = open(daemon, &a.container, stdin, tty).await?;
    let raw = if tty && stdin {
        RawMode::enter()
    } else {
        RawMode::none()
    };
    if tty {
        resize(daemon, &a.container).await;
    }
    let outcome = session(daemon, attached).await;
    finish(raw, outcome, &a.container)
}
