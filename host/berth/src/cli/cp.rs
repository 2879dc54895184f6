//! `berth cp`: files between a container and here, as tar streams
//! (`GET/PUT /v1/containers/{id}/archive`), with Docker's naming rules:
//! into an existing directory the source keeps its name, otherwise it is
//! copied as the destination. `-` is a tar on stdin or stdout, as it is.
//!
//! What comes out of a container is the container's to choose, and this
//! command usually runs as root: extracted here, a setuid file would be a
//! setuid-root program and a device node a door to a host disk, for any
//! local user. So setuid and setgid bits are dropped (the sticky bit and
//! the rest of the mode stay), files are owned by whoever runs the copy
//! (Docker's default; Docker's `-a` is not offered), and device nodes,
//! FIFOs and hard links are skipped; the command says which.

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
        let report = unpack(reader, &base, rename.as_deref())?;
        report.tell();
        Ok(())
    })
    .await??;
    Ok(())
}

/// What [`unpack`] did not copy as it was.
#[derive(Debug, Default)]
struct Report {
    /// Entries not extracted, with what they were.
    skipped: Vec<(PathBuf, String)>,
    /// Files and directories extracted without their setuid/setgid bits.
    stripped: Vec<PathBuf>,
}

impl Report {
    /// On stderr, so that stdout stays clean for scripts.
    fn tell(&self) {
        if !self.skipped.is_empty() {
            eprintln!(
                "berth cp: skipped {} entries that are not recreated on the host:",
                self.skipped.len()
            );
            for (path, what) in &self.skipped {
                eprintln!("  {} ({what})", path.display());
            }
        }
        if !self.stripped.is_empty() {
            eprintln!("berth cp: dropped the setuid/setgid bits of:");
            for path in &self.stripped {
                eprintln!("  {}", path.display());
            }
        }
    }
}

/// Why the entry of `header` is not extracted here, if it is not.
fn refused(header: &tar::Header) -> Option<String> {
    use tar::EntryType;
    let device = |what: &str| match (header.device_major(), header.device_minor()) {
        (Ok(Some(major)), Ok(Some(minor))) => format!("{what} {major}:{minor}"),
        _ => what.to_string(),
    };
    match header.entry_type() {
        EntryType::Regular
        | EntryType::Continuous
        | EntryType::GNUSparse
        | EntryType::Directory
        | EntryType::Symlink => None,
        EntryType::Block => Some(device("block device")),
        EntryType::Char => Some(device("character device")),
        EntryType::Fifo => Some("FIFO".into()),
        // berthd never sends one; a link to a host path would be followed.
        EntryType::Link => Some("hard link".into()),
        other => Some(format!("tar entry type {:?}", other.as_byte() as char)),
    }
}

/// Unpack a tar below `base`, never through a symlink and never above it,
/// without setuid/setgid bits, device nodes, FIFOs or hard links.
fn unpack(
    reader: impl std::io::Read,
    base: &Path,
    rename: Option<&std::ffi::OsStr>,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
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
        if let Some(what) = refused(entry.header()) {
            report.skipped.push((rel, what));
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
        entry.set_mask(SETID);
        if entry.header().entry_type() != tar::EntryType::Symlink
            && entry.header().mode().is_ok_and(|m| m & SETID != 0)
        {
            report.stripped.push(rel.clone());
        }
        entry
            .unpack(&target)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(report)
}

/// The setuid and setgid bits.
const SETID: u32 = 0o6000;

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
    let stat: berth_api_types::PathStat = daemon
        .call(
            http::Method::GET,
            &archive_url(container, &path, true),
            None,
        )
        .await?;
    let (exists, is_dir) = (stat.exists, stat.dir);
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

    fn entry(t: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, mode: u32) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(0);
        if kind == tar::EntryType::Block {
            h.set_device_major(7).expect("major");
            h.set_device_minor(0).expect("minor");
        }
        if kind == tar::EntryType::Link {
            h.set_link_name("/etc/passwd").expect("link");
        }
        t.append_data(&mut h, name, std::io::empty())
            .expect("append");
    }

    #[test]
    fn unpacking_drops_setid_bits_and_skips_what_is_not_a_plain_file() {
        use std::os::unix::fs::MetadataExt;
        use tar::EntryType;
        let mut t = tar::Builder::new(Vec::new());
        entry(&mut t, "x", EntryType::Directory, 0o2755);
        entry(&mut t, "x/suid", EntryType::Regular, 0o4755);
        entry(&mut t, "x/sticky", EntryType::Directory, 0o1777);
        entry(&mut t, "x/plain", EntryType::Regular, 0o640);
        entry(&mut t, "x/blk", EntryType::Block, 0o660);
        entry(&mut t, "x/fifo", EntryType::Fifo, 0o644);
        entry(&mut t, "x/passwd", EntryType::Link, 0o644);
        let archive = t.into_inner().expect("tar");
        let dir = tempfile::tempdir().expect("tempdir");
        let report = unpack(&archive[..], dir.path(), Some("y".as_ref())).expect("unpack");
        let mode = |p: &str| {
            std::fs::symlink_metadata(dir.path().join(p))
                .expect(p)
                .mode()
                & 0o7777
        };
        assert_eq!(mode("y"), 0o755);
        assert_eq!(mode("y/suid"), 0o755);
        assert_eq!(mode("y/sticky"), 0o1777);
        assert_eq!(mode("y/plain"), 0o640);
        for gone in ["y/blk", "y/fifo", "y/passwd"] {
            assert!(!dir.path().join(gone).exists(), "{gone}");
        }
        let skipped: Vec<(String, &str)> = report
            .skipped
            .iter()
            .map(|(p, w)| (p.display().to_string(), w.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("y/blk".to_string(), "block device 7:0"),
                ("y/fifo".to_string(), "FIFO"),
                ("y/passwd".to_string(), "hard link"),
            ]
        );
        assert_eq!(
            report.stripped,
            [PathBuf::from("y"), PathBuf::from("y/suid")]
        );
    }

    #[test]
    fn container_paths() {
        assert_eq!(split("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split("./a:b"), None);
        assert_eq!(split("/tmp/x"), None);
        assert_eq!(split("plain"), None);
    }
}
