//! The one streaming write loop: read, hash, write; shared by whole-blob
//! writes and ingest appends so that both keep memory flat.

use std::io::Write as _;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;

use berth_oci::Hasher;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::ContentError;

/// Large enough to keep syscalls cheap, small enough that memory stays flat
/// with many concurrent uploads.
pub(crate) const CHUNK: usize = 256 * 1024;

/// Copy `src` into `dst` at its current offset while feeding every byte to
/// `hasher`. `written` counts the bytes that reached `dst` and the hasher,
/// so that after an error the two still agree and an ingest can resume from
/// there. Errors reading `src` are [`ContentError::Source`].
///
/// Each chunk is written from its own buffer on the blocking pool: one
/// buffer per copy, where `tokio::fs::File` kept a second copy of every
/// write in a buffer of its own. While a chunk is written the body is not
/// read; the kernel's receive buffer covers that, and a writer thread fed
/// through a queue measured no faster through skopeo.
pub(crate) async fn hash_copy<R: AsyncRead + Unpin>(
    mut src: R,
    dst: &tokio::fs::File,
    hasher: &mut Hasher,
    written: &mut u64,
    path: &Path,
) -> Result<(), ContentError> {
    let file: Arc<std::fs::File> = Arc::new(
        dst.as_fd()
            .try_clone_to_owned()
            .map_err(ContentError::io("duplicate the descriptor of", path))?
            .into(),
    );
    let mut buf = vec![0u8; CHUNK];
    loop {
        // Fill the buffer before writing: network bodies arrive in frames of
        // a few KiB, and every file write costs a trip to the blocking pool.
        let mut n = 0;
        let mut end = None;
        while n < buf.len() {
            match src.read(&mut buf[n..]).await {
                Ok(0) => {
                    end = Some(None);
                    break;
                }
                Ok(k) => n += k,
                Err(e) => {
                    // Keep what arrived before the failure, so a resumable
                    // ingest can continue from exactly there.
                    end = Some(Some(e));
                    break;
                }
            }
        }
        if n > 0 {
            buf = write_part(&file, buf, n, path).await?;
            hasher.update(&buf[..n]);
            *written += n as u64;
        }
        match end {
            None => {}
            Some(None) => return Ok(()),
            Some(Some(e)) => return Err(ContentError::Source(e)),
        }
    }
}

/// Write `buf[..n]` to `file` on the blocking pool and hand the buffer back.
async fn write_part(
    file: &Arc<std::fs::File>,
    buf: Vec<u8>,
    n: usize,
    path: &Path,
) -> Result<Vec<u8>, ContentError> {
    let f = Arc::clone(file);
    let (buf, res) = tokio::task::spawn_blocking(move || {
        let res = (&*f).write_all(&buf[..n]);
        (buf, res)
    })
    .await
    .map_err(|join| ContentError::Io {
        op: "write",
        path: path.to_path_buf(),
        source: std::io::Error::other(join.to_string()),
    })?;
    res.map_err(ContentError::io("write", path))?;
    Ok(buf)
}

/// fsync a directory so that a rename or unlink inside it is durable.
pub(crate) async fn sync_dir(dir: &std::path::Path) -> Result<(), ContentError> {
    let d = dir.to_path_buf();
    let res =
        tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
            .await;
    match res {
        Ok(r) => r.map_err(ContentError::io("fsync directory", dir)),
        Err(join) => Err(ContentError::Io {
            op: "fsync directory",
            path: dir.to_path_buf(),
            source: std::io::Error::other(join.to_string()),
        }),
    }
}
