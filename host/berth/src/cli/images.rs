//! Image store commands: `image inspect|history|mount|unmount|prune`,
//! `save`, `load`, `import`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use http::Method;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;

use berth_api_types::{HistoryEntry, Image, ImagePruneResponse, MountRequest, UnmountRequest};

use super::http::{Daemon, body, decode, json_of};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Show an image's record and configuration as JSON.
    Inspect { reference: String },
    /// Show how an image's layers were made.
    History { reference: String },
    /// Mount an image's root file system read-only at DIR.
    Mount { reference: String, dir: PathBuf },
    /// Unmount what `image mount` mounted at DIR.
    Unmount { dir: PathBuf },
    /// Remove layer snapshots no image needs and collect unreferenced blobs.
    Prune,
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded_lite(pairs);
    if !s.is_empty() {
        s.insert(0, '?');
    }
    s
}

fn form_urlencoded_lite(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", super::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn absolute(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(dir).with_context(|| format!("mount point {} must exist", dir.display()))
}

pub async fn image(daemon: &Daemon, cmd: ImageCommand) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Inspect { reference } => {
            let v = daemon
                .json(
                    Method::GET,
                    &format!("/v1/images/inspect{}", query(&[("reference", &reference)])),
                    None,
                )
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        ImageCommand::History { reference } => {
            let v: Vec<HistoryEntry> = daemon
                .call(
                    Method::GET,
                    &format!("/v1/images/history{}", query(&[("reference", &reference)])),
                    None,
                )
                .await?;
            println!("{:<28} CREATED BY", "CREATED");
            for h in &v {
                println!(
                    "{:<28} {}",
                    h.created.as_deref().unwrap_or("-"),
                    h.created_by.as_deref().unwrap_or("")
                );
            }
        }
        ImageCommand::Mount { reference, dir } => {
            let body = body(&MountRequest {
                reference,
                target: absolute(&dir)?,
            })?;
            daemon.json(Method::POST, "/v1/images/mount", body).await?;
        }
        ImageCommand::Unmount { dir } => {
            let body = body(&UnmountRequest {
                target: absolute(&dir)?,
            })?;
            daemon
                .json(Method::POST, "/v1/images/unmount", body)
                .await?;
        }
        ImageCommand::Prune => {
            let report: ImagePruneResponse =
                daemon.call(Method::POST, "/v1/images/prune", None).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}

/// `berth save`: stream the archive to FILE (via a temp file renamed at the
/// end, so a failed save never leaves a file that looks complete) or stdout.
pub async fn save(
    daemon: &Daemon,
    references: &[String],
    output: Option<PathBuf>,
    format: &str,
) -> anyhow::Result<()> {
    let mut pairs: Vec<(&str, &str)> = references
        .iter()
        .map(|r| ("reference", r.as_str()))
        .collect();
    pairs.push(("format", format));
    let (status, mut body) = daemon
        .send(
            Method::GET,
            &format!("/v1/images/save{}", query(&pairs)),
            None,
        )
        .await?;
    if !status.is_success() {
        json_of(status, body).await?;
        bail!("berthd refused to save ({status})");
    }
    let (mut out, tmp): (Box<dyn tokio::io::AsyncWrite + Unpin>, Option<PathBuf>) = match &output {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let f = tokio::fs::File::create(&tmp)
                .await
                .with_context(|| format!("creating {}", tmp.display()))?;
            (Box::new(f), Some(tmp))
        }
        None => (Box::new(tokio::io::stdout()), None),
    };
    let result: anyhow::Result<()> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.context("the daemon broke off the archive; see its log")?;
            if let Some(data) = frame.data_ref() {
                out.write_all(data).await?;
            }
        }
        out.flush().await?;
        Ok(())
    }
    .await;
    drop(out);
    match (result, tmp, output) {
        (Ok(()), Some(tmp), Some(path)) => {
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        }
        (Ok(()), _, _) => Ok(()),
        (Err(e), Some(tmp), _) => {
            let _ = std::fs::remove_file(tmp);
            Err(e)
        }
        (Err(e), None, _) => Err(e),
    }
}

async fn open_input(
    path: Option<&PathBuf>,
) -> anyhow::Result<Box<dyn tokio::io::AsyncRead + Send + Unpin>> {
    Ok(match path {
        Some(p) if p.as_os_str() != "-" => Box::new(
            tokio::fs::File::open(p)
                .await
                .with_context(|| format!("opening {}", p.display()))?,
        ),
        _ => Box::new(tokio::io::stdin()),
    })
}

/// `load` answers with a list of images, `import` with one.
fn print_loaded(v: serde_json::Value) -> anyhow::Result<()> {
    let list: Vec<Image> = match v {
        serde_json::Value::Array(_) => decode(v, "load")?,
        serde_json::Value::Null => Vec::new(),
        other => vec![decode(other, "import")?],
    };
    for img in list {
        println!("Loaded image: {} ({})", img.reference, img.manifest);
    }
    Ok(())
}

pub async fn load(
    daemon: &Daemon,
    input: Option<PathBuf>,
    name: Option<String>,
) -> anyhow::Result<()> {
    let q = match &name {
        Some(n) => query(&[("name", n)]),
        None => String::new(),
    };
    let (status, body) = daemon
        .send_stream(
            Method::POST,
            &format!("/v1/images/load{q}"),
            open_input(input.as_ref()).await?,
        )
        .await?;
    print_loaded(json_of(status, body).await?)?;
    Ok(())
}

pub async fn import(
    daemon: &Daemon,
    file: PathBuf,
    reference: String,
    changes: &[String],
    message: Option<String>,
) -> anyhow::Result<()> {
    let mut pairs: Vec<(&str, &str)> = vec![("reference", reference.as_str())];
    pairs.extend(changes.iter().map(|c| ("change", c.as_str())));
    if let Some(m) = &message {
        pairs.push(("message", m));
    }
    let (status, body) = daemon
        .send_stream(
            Method::POST,
            &format!("/v1/images/import{}", query(&pairs)),
            open_input(Some(&file)).await?,
        )
        .await?;
    print_loaded(json_of(status, body).await?)?;
    Ok(())
}
