//! `berth cp`: files between a container and here, as tar streams
//! (`GET/PUT /v1/containers/{id}/archive`), with Docker's naming rules:
//! into an existing directory the source keeps its name, otherwise it is
//! copied as the destination. `-` is a tar on stdin or stdout.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::http::{Daemon, json_of};

/// `CONTAINER:PATH` → `Some((container, path))`; a local path (which may
/// hold `:` only after a `/`, as Docker) → `None`.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':')
        .filter(|(c, _)| !c.is_empty() && !c.contains('/'))
}

pub async fn cp(daemon: &Daemon, src: &str, dest: &str) -> anyhow::Result<()> {
    match (split(src), split(dest)) {
        (Some((c, p)), None) => from_container(daemon, c, p, dest).await,
        (None, Some((c, p))) => into_container(daemon, src, c, p).await,
        (Some(_), Some(_)) => {
            bail!("copying between containers is not supported: copy through a local directory")
        }
        (None, None) => bail!("one of SRC and DEST must be CONTAINER:PATH"),
    }
}

fn archive_url(container: &str, path: &str, stat: bool) -> String {
    format!(
        "/v1/containers/{}/archive?path={}&stat={stat}",
        super::encode(container),
        super::encode(path)
    )
}

fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

async fn from_container(
    daemon: &Daemon,
    container: &str,
    path: &str,
    dest: &str,
) -> anyhow::Result<()> {
    let url = archive_url(container, &absolute(path), false);
    let (status, body) = daemon.send(http::Method::GET, &url, None).await?;
    if !status.is_success() {
        json_of(status, body).await?;
        bail!("berthd refused the copy ({status})");
    }
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let dest = dest.to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut reader = reader;
        if dest == "-" {
            std::io::copy(&mut reader, &mut std::io::stdout().lock())?;
            return Ok(());
        }
        let dest = PathBuf::from(&dest);
        // Into an existing directory the entries keep their names; else the
        // top entry is renamed to the destination.
        let (base, rename) = if dest.is_dir() {
            (dest.clone(), None)
        } else {
            let parent = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                bail!("{}: no such directory to copy into", parent.display());
            }
            let name = dest
                .file_name()
                .with_context(|| format!("{} names no file", dest.display()))?;
            (parent.to_path_buf(), Some(name.to_os_string()))
        };
        unpack(reader, &base, rename.as_deref())
    })
    .await??;
    Ok(())
}

/// Unpack a tar below `base`, never through a symlink and never above it.
fn unpack(
    reader: impl std::io::Read,
    base: &Path,
    rename: Option<&std::ffi::OsStr>,
) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let mut rel = PathBuf::new();
        for (i, c) in raw.components().enumerate() {
            match c {
                Component::Normal(n) if i == 0 => rel.push(rename.unwrap_or(n)),
                Component::Normal(n) => rel.push(n),
                Component::CurDir => {}
                _ => bail!("the archive holds an unsafe path {}", raw.display()),
            }
        }
        if rel.as_os_str().is_empty() {
            continue;
        }
        let mut walked = base.to_path_buf();
        if let Some(parent) = rel.parent() {
            for c in parent.components() {
                walked.push(c);
                if std::fs::symlink_metadata(&walked).is_ok_and(|m| m.file_type().is_symlink()) {
                    bail!(
                        "{} is a symlink: not copying {} through it",
                        walked.display(),
                        raw.display()
                    );
                }
            }
        }
        let target = base.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        entry.set_preserve_permissions(true);
        entry
            .unpack(&target)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// A `Write` that feeds the request body.
struct ChannelWriter(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "berthd went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn into_container(
    daemon: &Daemon,
    src: &str,
    container: &str,
    path: &str,
) -> anyhow::Result<()> {
    let path = absolute(path);
    let stat = daemon
        .json(
            http::Method::GET,
            &archive_url(container, &path, true),
            None,
        )
        .await?;
    let (exists, is_dir) = (stat["exists"] == true, stat["dir"] == true);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let target_dir;
    if src == "-" {
        if !is_dir {
            bail!(
                "{path} in {container} is not a directory: a tar from stdin is extracted into a directory"
            );
        }
        target_dir = path.clone();
        tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter(tx.clone());
            if let Err(e) = std::io::copy(&mut std::io::stdin().lock(), &mut w) {
                let _ = tx.blocking_send(Err(e));
            }
        });
    } else {
        let source = PathBuf::from(src);
        let meta = std::fs::symlink_metadata(&source)
            .with_context(|| format!("{src}: no such file or directory"))?;
        let file_name = |p: &Path| -> anyhow::Result<std::ffi::OsString> {
            let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            Ok(canon
                .file_name()
                .with_context(|| format!("{} names no file", p.display()))?
                .to_os_string())
        };
        let (dir, name) = if exists && is_dir {
            (path.clone(), file_name(&source)?)
        } else {
            if exists && meta.is_dir() {
                bail!("cannot copy directory {src} onto file {path} in {container}");
            }
            let p = Path::new(&path);
            let parent = p
                .parent()
                .map_or("/".into(), |p| p.to_string_lossy().into_owned());
            let name = p
                .file_name()
                .with_context(|| format!("{path} names no file"))?
                .to_os_string();
            (parent, name)
        };
        target_dir = dir;
        tokio::task::spawn_blocking(move || {
            let mut b = tar::Builder::new(std::io::BufWriter::with_capacity(
                256 * 1024,
                ChannelWriter(tx.clone()),
            ));
            b.follow_symlinks(false);
            let r = if meta.is_dir() {
                b.append_dir_all(&name, &source)
            } else {
                b.append_path_with_name(&source, &name)
            };
            let r = r.and_then(|()| b.into_inner()).and_then(|mut w| w.flush());
            if let Err(e) = r {
                let _ = tx.blocking_send(Err(e));
            }
        });
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item.map(Frame::data), rx))
    });
    let url = format!(
        "/v1/containers/{}/archive?path={}",
        super::encode(container),
        super::encode(&target_dir)
    );
    let (status, body) = daemon
        .request(
            http::Method::PUT,
            &url,
            "application/x-tar",
            StreamBody::new(stream),
        )
        .await?;
    json_of(status, body).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths() {
        assert_eq!(split("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split("./a:b"), None);
        assert_eq!(split("/tmp/x"), None);
        assert_eq!(split("plain"), None);
    }
}
