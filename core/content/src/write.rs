//! The one streaming write loop: read, hash, write; shared by whole-blob
//! writes and ingest appends so that both keep memory flat.

use berth_oci::Hasher;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::ContentError;

/// Large enough to keep syscalls cheap, small enough that memory stays flat
/// with many concurrent uploads.
pub(crate) const CHUNK: usize = 256 * 1024;

/// Copy `src` into `dst` while feeding every byte to `hasher`. `written`
/// counts the bytes that reached `dst` and the hasher, so that after an
/// error the two still agree and an ingest can resume from there. Errors
/// reading `src` are [`ContentError::Source`].
pub(crate) async fn hash_copy<R, W>(
    mut src: R,
    dst: &mut W,
    hasher: &mut Hasher,
    written: &mut u64,
    path: &std::path::Path,
) -> Result<(), ContentError>
where
    R: AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = src.read(&mut buf).await.map_err(ContentError::Source)?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])
            .await
            .map_err(ContentError::io("write", path))?;
        hasher.update(&buf[..n]);
        *written += n as u64;
    }
    dst.flush().await.map_err(ContentError::io("flush", path))?;
    Ok(())
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
