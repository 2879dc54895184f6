//! `GET/PUT /v1/containers/{id}/archive?path=`: `docker cp`, as a tar
//! stream, on running and stopped containers.
//!
//! Paths are resolved with `openat2(RESOLVE_IN_ROOT)` under the
//! container's root — `/proc/PID/root` while it runs (its volumes and
//! tmpfs included), opened through the init's pidfd once it is checked to
//! be the container's (the recorded pid may have been reused by a host
//! process), else the mounted rootfs, or a bind mount's source for paths
//! under one — so no symlink or `..` leads out. Nothing is copied into a
//! path under a read-only mount (or a `--read-only` root outside any
//! mount): for a stopped container berthd writes to a bind's source
//! itself, where no mount flag would stop it. Extraction goes
//! through `berth_layer::apply`, which walks every entry from the target
//! directory without following symlinks and refuses `..` and absolute
//! names: a hostile tar writes nothing outside. Copying out walks by
//! descriptors (`walk`), so a running container swapping a directory for a
//! symlink mid-copy cannot lead the daemon out either.

mod walk;

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_fsroot::Root;
use berth_policy::CopyDirection;
use bytes::Bytes;
use futures::TryStreamExt;
use rustix::fs::{Mode, OFlags};
use tokio::sync::mpsc;

use super::record::{ContainerRecord, Status, find, load_spec, running_init, status_of};
use crate::control::{ControlError, Shared};

pub use berth_api_types::ArchiveQuery;
use berth_api_types::{ArchiveExtracted, PathStat};

/// Where a container path lives on the host.
struct Located {
    /// The root it resolves under.
    root: Root,
    /// The path under `root`.
    rel: String,
    /// Why nothing may be written there, if so.
    read_only: Option<String>,
}

/// Where `path` lives on the host. Blocking.
fn locate(record: &ContainerRecord, path: &str) -> Result<Located, ControlError> {
    if !path.starts_with('/') {
        return Err(ControlError::bad_request(format!(
            "{path:?} is not absolute: give the path inside the container starting with /"
        )));
    }
    if path.contains('\0') {
        return Err(ControlError::bad_request("the path contains a NUL byte"));
    }
    if let Status::Running { pid } = status_of(&record.dir) {
        let spec = load_spec(record)?;
        let init = running_init(record, pid, &spec)?;
        let root = init
            .root()
            .map_err(|e| ControlError::internal(format!("container {}: {e}", record.name)))?;
        return Ok(Located {
            root: Root::from_fd(root, format!("/proc/{pid}/root")),
            rel: path.to_string(),
            read_only: read_only_reason(&spec, path),
        });
    }
    // A stopped container: its rootfs stays mounted until rm; volumes and
    // bind mounts are found through the runtime spec.
    let spec = oci_spec::runtime::Spec::load(record.dir.join("config.json")).ok();
    let mut best: Option<(PathBuf, String, usize)> = None;
    for m in spec.iter().flat_map(|s| s.mounts().iter().flatten()) {
        let is_bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        let (Some(source), true) = (m.source(), is_bind) else {
            continue;
        };
        let dest = m.destination().to_string_lossy().into_owned();
        let under = Path::new(path)
            .strip_prefix(&dest)
            .ok()
            .map(|r| r.to_string_lossy().into_owned());
        if let Some(rest) = under
            && best.as_ref().is_none_or(|b| dest.len() > b.2)
            && source.is_dir()
        {
            best = Some((source.clone(), format!("/{rest}"), dest.len()));
        }
    }
    let (root, rel) = match best {
        Some((root, rel, _)) => (root, rel),
        None => (record.dir.join("rootfs"), path.to_string()),
    };
    let root = Root::open(&root).map_err(|e| {
        ControlError::internal(format!(
            "opening the file system of container {}: {e}",
            record.name
        ))
    })?;
    Ok(Located {
        root,
        rel,
        read_only: spec.as_ref().and_then(|s| read_only_reason(s, path)),
    })
}

/// Why `path` may not be written, by the spec: the mount it is under is
/// read-only (`-v …:ro`, a read-only `/sys`), or, under no mount, the root
/// file system is (`--read-only`). As Docker, by the path as given.
fn read_only_reason(spec: &oci_spec::runtime::Spec, path: &str) -> Option<String> {
    let path = Path::new(path);
    let under = spec
        .mounts()
        .iter()
        .flatten()
        .filter(|m| path.starts_with(m.destination()))
        .max_by_key(|m| m.destination().as_os_str().len());
    match under {
        Some(m) => m.options().iter().flatten().any(|o| o == "ro").then(|| {
            format!(
                "{} is a read-only mount (mounted volume is marked read-only)",
                m.destination().display()
            )
        }),
        None => spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
            .then(|| "the container's root file system is read-only (--read-only)".to_string()),
    }
}

/// Open `rel` under `root` as if `root` were `/` (O_PATH, final symlink
/// not followed unless `follow_last`).
fn resolve(root: &Root, rel: &str, follow_last: bool) -> Result<OwnedFd, std::io::Error> {
    let mut flags = OFlags::PATH;
    if !follow_last {
        flags |= OFlags::NOFOLLOW;
    }
    root.resolve(&berth_fsroot::relative(rel), flags)
        .map_err(std::io::Error::from)
}

fn not_found(record: &ContainerRecord, path: &str, e: &std::io::Error) -> ControlError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ControlError::not_found(format!(
            "no such file or directory in container {}: {path}",
            record.name
        ))
    } else {
        ControlError::bad_request(format!("{path} in container {}: {e}", record.name))
    }
}

/// The file or directory behind an O_PATH fd, by a path that reaches it.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// What `fd` (an O_PATH descriptor from [`resolve`]) names, as `name` in `b`.
fn append_resolved<W: Write>(
    b: &mut tar::Builder<W>,
    fd: &OwnedFd,
    file_type: rustix::fs::FileType,
    name: &Path,
) -> std::io::Result<()> {
    use rustix::fs::FileType;
    match file_type {
        FileType::Directory => {
            let dir = rustix::fs::openat(
                fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            walk::append_tree(b, dir, name)
        }
        FileType::Symlink => {
            // An O_PATH|O_NOFOLLOW fd of a symlink: readlinkat(fd, "").
            let target = rustix::fs::readlinkat(fd, "", Vec::new())?;
            let target = PathBuf::from(std::ffi::OsString::from_vec(target.into_bytes()));
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, name, target)
        }
        FileType::RegularFile => match berth_fsroot::open_regular(fd.as_fd())? {
            Some((file, st)) => walk::append_file(b, file, &st, name),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the file changed into something that is not a regular file while it was copied",
            )),
        },
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "only files, directories and symlinks can be copied out on their own",
        )),
    }
}

/// A `Write` that hands its bytes to the response body.
struct ChannelWriter(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) async fn get_archive(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
    Query(q): Query<ArchiveQuery>,
) -> Result<Response, ControlError> {
    let record = find(&app, &key)?;
    let (record, resolved) = {
        let path = q.path.clone();
        tokio::task::spawn_blocking(move || {
            let at = locate(&record, &path)?;
            let resolved = resolve(&at.root, &at.rel, false);
            Ok::<_, ControlError>((record, resolved))
        })
        .await
        .map_err(ControlError::internal)??
    };
    let fd = match resolved {
        Ok(fd) => fd,
        Err(e) if q.stat && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(axum::Json(PathStat {
                exists: false,
                dir: false,
            })
            .into_response());
        }
        Err(e) => return Err(not_found(&record, &q.path, &e)),
    };
    let meta = rustix::fs::fstat(&fd).map_err(|e| ControlError::internal(e.to_string()))?;
    let file_type = rustix::fs::FileType::from_raw_mode(meta.st_mode);
    let is_dir = file_type == rustix::fs::FileType::Directory;
    if q.stat {
        return Ok(axum::Json(PathStat {
            exists: true,
            dir: is_dir,
        })
        .into_response());
    }
    super::policy::judge_copy(&app, &record, CopyDirection::OutOfContainer, &q.path).await?;
    let name = Path::new(&q.path)
        .file_name()
        .map_or_else(|| ".".to_string(), |n| n.to_string_lossy().into_owned());
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let err_tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let mut b = tar::Builder::new(std::io::BufWriter::with_capacity(
            256 * 1024,
            ChannelWriter(tx),
        ));
        let result = append_resolved(&mut b, &fd, file_type, Path::new(&name))
            .and_then(|()| b.into_inner())
            .and_then(|mut w| w.flush());
        if let Err(e) = result {
            tracing::warn!(error = %e, "streaming an archive out of a container");
            let _ = err_tx.blocking_send(Err(e));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-tar")
        .body(Body::from_stream(stream))
        .map_err(ControlError::internal)
}

pub(crate) async fn put_archive(
    State(app): Shared,
    UrlPath(key): UrlPath<String>,
    Query(q): Query<ArchiveQuery>,
    body: Body,
) -> Result<impl IntoResponse, ControlError> {
    let record = find(&app, &key)?;
    super::policy::judge_copy(&app, &record, CopyDirection::IntoContainer, &q.path).await?;
    let (record, at) = {
        let path = q.path.clone();
        tokio::task::spawn_blocking(move || {
            let at = locate(&record, &path)?;
            Ok::<_, ControlError>((record, at))
        })
        .await
        .map_err(ControlError::internal)??
    };
    if let Some(reason) = &at.read_only {
        return Err(ControlError::new(
            StatusCode::FORBIDDEN,
            "read_only",
            format!(
                "cannot copy into {} of container {}: {reason}",
                q.path, record.name
            ),
        ));
    }
    let fd = resolve(&at.root, &at.rel, true).map_err(|e| not_found(&record, &q.path, &e))?;
    let meta = rustix::fs::fstat(&fd).map_err(|e| ControlError::internal(e.to_string()))?;
    if rustix::fs::FileType::from_raw_mode(meta.st_mode) != rustix::fs::FileType::Directory {
        return Err(ControlError::bad_request(format!(
            "{} in container {} is not a directory: extract into a directory",
            q.path, record.name
        )));
    }
    let reader =
        tokio_util::io::StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    let reader = tokio_util::io::SyncIoBridge::new(reader);
    // "/." makes the magic link an inner component, followed even by
    // the O_NOFOLLOW walk of the extractor.
    let target = fd_path(&fd).join(".");
    let stats = tokio::task::spawn_blocking(move || {
        let _keep = fd;
        berth_layer::apply(
            &target,
            "application/vnd.oci.image.layer.v1.tar",
            reader,
            None,
            &berth_layer::ApplyOptions {
                whiteouts: berth_layer::WhiteoutMode::Flatten,
                ..berth_layer::ApplyOptions::default()
            },
        )
    })
    .await
    .map_err(ControlError::internal)?
    .map_err(|e| {
        ControlError::bad_request(format!(
            "copying into {} of container {}: {e}",
            q.path, record.name
        ))
    })?;
    Ok(axum::Json(ArchiveExtracted {
        id: record.id,
        entries: stats.entries,
        bytes: stats.file_bytes,
    }))
}
