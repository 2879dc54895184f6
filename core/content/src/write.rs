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
        // Fill the buffer before writing: network bodies arrive in frames of
        // a few KiB, and every file write costs a trip to the blocking pool.
        let mut n = 0;
        let mut eof = false;
        while n < buf.len() {
            match src.read(&mut buf[n..]).await {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(k) => n += k,
                Err(e) => {
                    // Keep what arrived before the failure, so a resumable
                    // ingest can continue from exactly there.
                    flush_part(dst, hasher, written, &buf[..n], path).await?;
                    return Err(ContentError::Source(e));
                }
            }
        }
        flush_part(dst, hasher, written, &buf[..n], path).await?;
        if eof {
            break;
        }
    }
    dst.flush().await.map_err(ContentError::io("flush", path))?;
    Ok(())
}

async fn flush_part<W: tokio::io::AsyncWrite + Unpin>(
    dst: &mut W,
    hasher: &mut Hasher,
    written: &mut u64,
    part: &[u8],
    path: &std::path::Path,
) -> Result<(), ContentError> {
    if part.is_empty() {
        return Ok(());
    }
    dst.write_all(part)
        .await
        .map_err(ContentError::io("write", path))?;
    hasher.update(part);
    *written += part.len() as u64;
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
