//! The contract every [`BlobBackend`] must keep, as a test suite: the native
//! test backends and the storage plugins (through the host's adapter) run
//! the same checks. Each check panics with what broke.

use berth_oci::Digest;

use crate::{BackendError, BlobBackend};

/// Runs every check against an empty `backend`.
pub fn run(backend: &dyn BlobBackend) {
    write_then_read(backend);
    abort_leaves_nothing(backend);
    overwrite_keeps_content(backend);
    listing_is_ordered_and_paged(backend);
    delete_removes(backend);
}

fn put(backend: &dyn BlobBackend, data: &[u8]) -> Digest {
    let digest = Digest::sha256_of(data);
    let mut w = backend
        .begin_write(&digest, data.len() as u64)
        .unwrap_or_else(|e| panic!("begin_write {digest}: {e}"));
    for chunk in data.chunks(7) {
        w.write(chunk)
            .unwrap_or_else(|e| panic!("write {digest}: {e}"));
    }
    w.commit(data.len() as u64)
        .unwrap_or_else(|e| panic!("commit {digest}: {e}"));
    digest
}

fn read_all(backend: &dyn BlobBackend, digest: &Digest) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let chunk = backend
            .read(digest, out.len() as u64, 5)
            .unwrap_or_else(|e| panic!("read {digest}: {e}"));
        if chunk.is_empty() {
            return out;
        }
        out.extend_from_slice(&chunk);
    }
}

fn write_then_read(backend: &dyn BlobBackend) {
    let data = b"conformance: write then read back in small ranges";
    let digest = put(backend, data);
    assert_eq!(
        backend.stat(&digest),
        Ok(Some(data.len() as u64)),
        "stat after commit"
    );
    assert_eq!(read_all(backend, &digest), data, "content read back");
    let tail = backend.read(&digest, 13, 4).unwrap_or_default();
    assert_eq!(tail, &data[13..17], "range read at an offset");
    let past = backend.read(&digest, data.len() as u64 + 10, 4);
    assert_eq!(past, Ok(Vec::new()), "read past the end is empty");
    let missing = Digest::sha256_of(b"never written");
    assert_eq!(backend.stat(&missing), Ok(None), "stat of a missing blob");
    assert!(
        matches!(backend.read(&missing, 0, 4), Err(BackendError::NotFound(_))),
        "read of a missing blob is NotFound"
    );
}

fn abort_leaves_nothing(backend: &dyn BlobBackend) {
    let data = b"conformance: aborted";
    let digest = Digest::sha256_of(data);
    let mut w = backend
        .begin_write(&digest, data.len() as u64)
        .unwrap_or_else(|e| panic!("begin_write: {e}"));
    w.write(&data[..5]).unwrap_or_else(|e| panic!("write: {e}"));
    w.abort();
    assert_eq!(
        backend.stat(&digest),
        Ok(None),
        "an aborted write is invisible"
    );
    let mut w = backend
        .begin_write(&digest, data.len() as u64)
        .unwrap_or_else(|e| panic!("begin_write: {e}"));
    w.write(&data[..5]).unwrap_or_else(|e| panic!("write: {e}"));
    drop(w);
    assert_eq!(
        backend.stat(&digest),
        Ok(None),
        "a dropped write is invisible"
    );
}

fn overwrite_keeps_content(backend: &dyn BlobBackend) {
    let data = b"conformance: written twice";
    let digest = put(backend, data);
    let mut w = backend
        .begin_write(&digest, data.len() as u64)
        .unwrap_or_else(|e| panic!("second begin_write: {e}"));
    w.write(&data[..3]).unwrap_or_else(|e| panic!("write: {e}"));
    assert_eq!(
        read_all(backend, &digest),
        data,
        "existing blob intact during rewrite"
    );
    w.abort();
    assert_eq!(
        read_all(backend, &digest),
        data,
        "existing blob intact after abort"
    );
}

fn listing_is_ordered_and_paged(backend: &dyn BlobBackend) {
    let mut all = Vec::new();
    let mut after: Option<Digest> = None;
    loop {
        let page = backend
            .list(after.as_ref(), 2)
            .unwrap_or_else(|e| panic!("list: {e}"));
        assert!(page.len() <= 2, "list honours its limit");
        let Some(last) = page.last() else { break };
        after = Some(last.digest.clone());
        all.extend(page);
    }
    let digests: Vec<String> = all.iter().map(|b| b.digest.to_string()).collect();
    let mut sorted = digests.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        digests, sorted,
        "listing is in digest order without repeats"
    );
    assert_eq!(
        all.len(),
        2,
        "the two committed blobs are listed: {digests:?}"
    );
    for b in &all {
        assert_eq!(backend.stat(&b.digest), Ok(Some(b.size)), "listed size");
    }
}

fn delete_removes(backend: &dyn BlobBackend) {
    let digest = put(backend, b"conformance: deleted");
    assert_eq!(backend.delete(&digest), Ok(true), "delete of a stored blob");
    assert_eq!(backend.stat(&digest), Ok(None), "gone after delete");
    assert_eq!(backend.delete(&digest), Ok(false), "second delete");
}
