//! Layers and archives that try to make berthd allocate without bound: a tar PAX header or
//! GNU long name of 2 GiB (which the tar reader would read whole into memory), in a layer
//! pulled from the registry, in a layer of a `docker save` archive given to `berth load`,
//! and in the tar headers of such an archive itself; and a layer past the configured
//! `[images] max_layer_bytes`. Each is a few megabytes of multi-member gzip, written
//! streaming so the test holds no more than a megabyte of it.
//!
//! Then archives for `berth load` that stay within that bound entry by entry but make the
//! loader keep what it notes of each entry (its path and link target) without end: entries
//! named by a megabyte each, and links whose names are just under `PATH_MAX`, gigabytes of
//! names in all.
//!
//! Each must fail with an error naming the limit, while berthd's peak RSS (VmHWM) grows by
//! less than 200 MiB; no snapshot and no image record may be left, and the daemon keeps
//! pulling good images. `BERTH_E2E_BOMB_MIB` sets the size of the bombs (default 2048): a
//! smaller one shows the unfixed daemon failing without exhausting a shared machine.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use berth_e2e::images::{self, TarBuilder};
use berth_e2e::{Berthd, skopeo};
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

const MIB: u64 = 1 << 20;
/// How much berthd's peak RSS may grow while refusing one bomb.
const RSS_GROWTH_LIMIT_KIB: u64 = 200 * 1024;

fn bomb_mib() -> u64 {
    std::env::var("BERTH_E2E_BOMB_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048)
}

/// A tar header block of `kind` for `name`, declaring `size` bytes.
fn header(kind: tar::EntryType, name: &str, size: u64) -> anyhow::Result<Vec<u8>> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_path(name)?;
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_cksum();
    Ok(h.as_bytes().to_vec())
}

/// A tar's last entry: a small file, then the two zero blocks that end it.
fn tail() -> anyhow::Result<Vec<u8>> {
    let mut t = header(tar::EntryType::Regular, "after", 2)?;
    t.extend_from_slice(b"ok");
    t.resize(t.len() + 510 + 1024, 0);
    Ok(t)
}

/// A file written as it is hashed.
struct Blob {
    out: BufWriter<File>,
    hash: Sha256,
    size: u64,
}

impl Blob {
    fn create(path: &Path) -> anyhow::Result<Blob> {
        Ok(Blob {
            out: BufWriter::new(File::create(path)?),
            hash: Sha256::new(),
            size: 0,
        })
    }

    fn put(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.out.write_all(bytes)?;
        self.hash.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// The blob's digest and size.
    fn finish(mut self) -> anyhow::Result<(String, u64)> {
        self.out.flush()?;
        Ok((
            format!("sha256:{}", hex::encode(self.hash.finalize())),
            self.size,
        ))
    }
}

/// Writes to `path` a multi-member gzip of: `head`, then `mib` MiB of `fill`, then `tail`
/// (each member compressed once, the MiB member repeated). Returns digest and size.
fn gzip_stream(
    path: &Path,
    head: &[u8],
    fill: u8,
    mib: u64,
    tail: &[u8],
) -> anyhow::Result<(String, u64)> {
    let mut blob = Blob::create(path)?;
    blob.put(&images::gzip(head)?)?;
    let chunk = images::gzip(&vec![fill; MIB as usize])?;
    for _ in 0..mib {
        blob.put(&chunk)?;
    }
    blob.put(&images::gzip(tail)?)?;
    blob.finish()
}

/// A gzip layer at `path` whose first entry is an extension header of `kind` holding
/// `mib` MiB of `a`.
fn header_bomb(path: &Path, kind: tar::EntryType, mib: u64) -> anyhow::Result<(String, u64)> {
    let head = header(kind, "././@LongLink", mib * MIB)?;
    gzip_stream(path, &head, b'a', mib, &tail()?)
}

/// An OCI layout at `dir` whose one layer is the gzip blob at `layer`; the config's diffID
/// is made up (the layer is refused before it could be checked).
fn layout_with(dir: &Path, layer: &Path, digest: &str, size: u64) -> anyhow::Result<String> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs)?;
    std::fs::rename(layer, blobs.join(&digest["sha256:".len()..]))?;
    let put = |bytes: &[u8]| -> anyhow::Result<(String, usize)> {
        let d = berth_e2e::sha256_digest(bytes);
        std::fs::write(blobs.join(&d["sha256:".len()..]), bytes)?;
        Ok((d, bytes.len()))
    };
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [berth_e2e::sha256_digest(b"made up")]},
    });
    let (cfg, cfg_size) = put(&serde_json::to_vec(&config)?)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cfg_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}],
    });
    let (man, man_size) = put(&serde_json::to_vec(&manifest)?)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": man,
            "size": man_size,
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(format!("oci:{}:v1", dir.display()))
}

/// What is watched across one refused operation.
struct Before {
    peak_kib: u64,
    snapshots: BTreeSet<String>,
}

fn before(daemon: &Berthd) -> anyhow::Result<Before> {
    Ok(Before {
        peak_kib: daemon
            .peak_rss_kib()
            .ok_or_else(|| anyhow::anyhow!("berthd's VmHWM is unreadable"))?,
        snapshots: images::snapshot_ids(&daemon.root),
    })
}

/// `out` failed saying each of `expect`, berthd's peak RSS stayed within bounds, nothing
/// named `repo` was recorded, no snapshot was left, and the daemon still pulls and
/// unpacks a good image.
fn assert_refused(
    daemon: &mut Berthd,
    what: &str,
    was: Before,
    out: &Output,
    expect: &[&str],
    repo: &str,
) -> anyhow::Result<()> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{what}: {}\nstderr:\n{stderr}", out.status);
    daemon.check_alive()?;
    let peak = daemon
        .peak_rss_kib()
        .ok_or_else(|| anyhow::anyhow!("berthd's VmHWM is unreadable"))?;
    eprintln!(
        "berthd VmHWM {} -> {peak} KiB (+{} KiB)",
        was.peak_kib,
        peak.saturating_sub(was.peak_kib)
    );
    assert!(
        peak.saturating_sub(was.peak_kib) < RSS_GROWTH_LIMIT_KIB,
        "{what}: berthd's peak RSS grew from {} to {peak} KiB",
        was.peak_kib
    );
    assert!(
        !out.status.success(),
        "{what} succeeded; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for e in expect {
        assert!(
            stderr.contains(e),
            "{what}: the error does not say {e:?}:\n{stderr}"
        );
    }
    assert_eq!(
        images::snapshot_ids(&daemon.root),
        was.snapshots,
        "{what} left snapshots behind"
    );
    let listed = daemon.berth_ok(&["images"])?;
    assert!(
        !listed.contains(repo),
        "{what}: the refused image is listed by berth images:\n{listed}"
    );
    still_pulls(daemon)
}

/// The daemon keeps serving: a good one-layer image pushed to it pulls and unpacks.
fn still_pulls(daemon: &Berthd) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let layer = TarBuilder::new()
        .dir("etc/", 0o755)
        .file("etc/hostname", 0o644, b"berth\n")
        .finish();
    let good = images::write_layout(&tmp.path().join("good"), "v1", &[layer], None)?;
    let reference = format!("{}/e2e/good:v1", daemon.registry());
    skopeo::copy(
        &good.oci_ref(),
        &format!("docker://{reference}"),
        None,
        None,
    )?;
    let before = images::snapshot_ids(&daemon.root).len();
    daemon.berth_ok(&["pull", &reference])?;
    assert!(
        images::snapshot_ids(&daemon.root).len() > before
            || daemon.berth_ok(&["images"])?.contains("e2e/good"),
        "the good image did not unpack"
    );
    Ok(())
}

/// Pushes the gzip layer at `layer` to `daemon` as `e2e/REPO:v1`, pulls it with berth and
/// checks the refusal.
fn pull_refused(
    daemon: &mut Berthd,
    tmp: &Path,
    layer: (PathBuf, String, u64),
    repo: &str,
    expect: &[&str],
) -> anyhow::Result<()> {
    let (path, digest, size) = layer;
    eprintln!("{repo}: a {size}-byte layer {digest}");
    let src = layout_with(&tmp.join("layout"), &path, &digest, size)?;
    let reference = format!("{}/e2e/{repo}:v1", daemon.registry());
    skopeo::copy(&src, &format!("docker://{reference}"), None, None)?;
    let was = before(daemon)?;
    let out = daemon.berth(&["pull", &reference])?;
    assert_refused(
        daemon,
        &format!("berth pull {reference}"),
        was,
        &out,
        expect,
        &format!("e2e/{repo}"),
    )
}

#[test]
fn pull_refuses_a_layer_with_a_huge_pax_header() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("layer.tar.gz");
    let (digest, size) = header_bomb(&path, tar::EntryType::XHeader, bomb_mib())?;
    pull_refused(
        &mut daemon,
        tmp.path(),
        (path, digest, size),
        "pax-bomb",
        &["max_header_bytes", "1048576 bytes", "PAX"],
    )
}

#[test]
fn pull_refuses_a_layer_with_a_huge_gnu_long_name() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("layer.tar.gz");
    let (digest, size) = header_bomb(&path, tar::EntryType::GNULongName, bomb_mib())?;
    pull_refused(
        &mut daemon,
        tmp.path(),
        (path, digest, size),
        "longname-bomb",
        &["max_header_bytes", "GNU long name"],
    )
}

#[test]
fn pull_refuses_a_layer_over_the_configured_byte_cap() -> anyhow::Result<()> {
    let config = format!(
        "{}[images]\nmax_layer_bytes = {}\n",
        Berthd::CONFIG_AUTH_NONE,
        8 * MIB
    );
    let mut daemon = Berthd::start(&config)?;
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("layer.tar.gz");
    // One 64 MiB file of zeros: 300 KB of gzip, eight times the cap once unpacked.
    let head = header(tar::EntryType::Regular, "big", 64 * MIB)?;
    let end = vec![0u8; 1024];
    let (digest, size) = gzip_stream(&path, &head, 0, 64, &end)?;
    pull_refused(
        &mut daemon,
        tmp.path(),
        (path, digest, size),
        "too-big",
        &["max_layer_bytes", "8388608 bytes"],
    )
}

/// Appends a file entry `name` with the contents of `path` (streamed) to `archive`.
fn append_file(archive: &mut tar::Builder<File>, name: &str, path: &Path) -> anyhow::Result<()> {
    let mut f = File::open(path)?;
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(f.metadata()?.len());
    archive.append_data(&mut h, name, &mut f)?;
    Ok(())
}

fn append_bytes(archive: &mut tar::Builder<File>, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(bytes.len() as u64);
    archive.append_data(&mut h, name, bytes)?;
    Ok(())
}

#[test]
fn load_refuses_a_docker_save_whose_layer_has_a_huge_pax_header() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let tmp = tempfile::tempdir()?;
    let layer = tmp.path().join("layer.tar.gz");
    header_bomb(&layer, tar::EntryType::XHeader, bomb_mib())?;
    let archive_path = tmp.path().join("save.tar");
    let mut archive = tar::Builder::new(File::create(&archive_path)?);
    append_file(&mut archive, "bomb/layer.tar", &layer)?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [berth_e2e::sha256_digest(b"made up")]},
    });
    append_bytes(&mut archive, "config.json", &serde_json::to_vec(&config)?)?;
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": ["e2e/load-bomb:v1"],
        "Layers": ["bomb/layer.tar"],
    }]);
    append_bytes(
        &mut archive,
        "manifest.json",
        &serde_json::to_vec(&manifest)?,
    )?;
    archive.into_inner()?.sync_all()?;

    let was = before(&daemon)?;
    let archive_s = archive_path.to_string_lossy().into_owned();
    let out = daemon.berth(&["load", "-i", &archive_s])?;
    assert_refused(
        &mut daemon,
        "berth load of a docker save with a PAX bomb layer",
        was,
        &out,
        &["max_header_bytes", "1048576 bytes"],
        "e2e/load-bomb",
    )
}

#[test]
fn load_refuses_an_archive_with_a_huge_pax_header() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let tmp = tempfile::tempdir()?;
    // The archive's own first entry is the bomb, before its manifest.json.
    let archive = tmp.path().join("save.tar.gz");
    let mib = bomb_mib();
    let head = header(tar::EntryType::XHeader, "././@PaxHeader", mib * MIB)?;
    let mut end = header(tar::EntryType::Regular, "manifest.json", 2)?;
    end.extend_from_slice(b"[]");
    end.resize(end.len() + 510 + 1024, 0);
    gzip_stream(&archive, &head, b'a', mib, &end)?;

    let was = before(&daemon)?;
    let archive_s = archive.to_string_lossy().into_owned();
    let out = daemon.berth(&["load", "-i", &archive_s])?;
    assert_refused(
        &mut daemon,
        "berth load of an archive with a PAX bomb header",
        was,
        &out,
        &["exceed 1048576 bytes", "PAX"],
        "e2e/",
    )
}

/// Writes to `path` a multi-member gzip tar of `count` symlinks whose GNU long name is
/// `NNNNNNNN/` (the entry's number) followed by `name_fill` bytes, and whose target is
/// `target_fill` bytes (in a GNU long link when it does not fit the header), then a small
/// `manifest.json`. What every entry shares is compressed once; only the number differs.
fn many_links(
    path: &Path,
    count: u64,
    name_fill: usize,
    target_fill: usize,
) -> anyhow::Result<(String, u64)> {
    let name_len = 9 + name_fill;
    let mut shared = vec![b'a'; name_fill];
    shared.push(0);
    shared.resize((name_len + 1).next_multiple_of(512) - 9, 0);
    let target = "b".repeat(target_fill);
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_path("link")?;
    if target_fill >= 100 {
        shared.extend(header(
            tar::EntryType::GNULongLink,
            "././@LongLink",
            target_fill as u64 + 1,
        )?);
        shared.extend_from_slice(target.as_bytes());
        shared.push(0);
        // `shared` starts 9 bytes into a block (after the entry's number).
        shared.resize((shared.len() + 9).next_multiple_of(512) - 9, 0);
    } else {
        link.set_link_name(&target)?;
    }
    link.set_mode(0o777);
    link.set_uid(0);
    link.set_gid(0);
    link.set_size(0);
    link.set_mtime(0);
    link.set_cksum();
    shared.extend_from_slice(link.as_bytes());
    let shared = images::gzip(&shared)?;
    let mut blob = Blob::create(path)?;
    for i in 0..count {
        let mut unique = header(
            tar::EntryType::GNULongName,
            "././@LongLink",
            name_len as u64 + 1,
        )?;
        unique.extend_from_slice(format!("{i:08}/").as_bytes());
        // In-process and uncompressed: a gzip process per entry would take minutes.
        let mut member = GzEncoder::new(Vec::new(), flate2::Compression::none());
        member.write_all(&unique)?;
        blob.put(&member.finish()?)?;
        blob.put(&shared)?;
    }
    let mut end = header(tar::EntryType::Regular, "manifest.json", 2)?;
    end.extend_from_slice(b"[]");
    end.resize(end.len() + 510 + 1024, 0);
    blob.put(&images::gzip(&end)?)?;
    blob.finish()
}

/// `berth load -i` of the archive at `path`, refused as [`assert_refused`] checks, with an
/// error shorter than `max_stderr` bytes (no name of the archive repeated whole).
fn load_refused(
    daemon: &mut Berthd,
    path: &Path,
    what: &str,
    expect: &[&str],
    max_stderr: usize,
) -> anyhow::Result<()> {
    let was = before(daemon)?;
    let path_s = path.to_string_lossy().into_owned();
    let out = daemon.berth(&["load", "-i", &path_s])?;
    assert!(
        out.stderr.len() < max_stderr,
        "{what}: the error is {} bytes long",
        out.stderr.len()
    );
    assert_refused(daemon, what, was, &out, expect, "e2e/")
}

#[test]
fn load_refuses_an_archive_of_entries_named_by_a_megabyte() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let tmp = tempfile::tempdir()?;
    let archive = tmp.path().join("names.tar.gz");
    // Each name within the 1 MiB bound on one entry's headers; all of them, as many MiB
    // as the bomb's size.
    let (_, size) = many_links(&archive, bomb_mib(), MIB as usize - 4096, 8)?;
    eprintln!("a {size}-byte archive of {} 1 MiB names", bomb_mib());
    load_refused(
        &mut daemon,
        &archive,
        "berth load of an archive of megabyte names",
        &["PATH_MAX (4096 bytes)", "(1044489 bytes)"],
        16 << 10,
    )
}

#[test]
fn load_refuses_an_archive_whose_names_add_up_to_gigabytes() -> anyhow::Result<()> {
    let mut daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let tmp = tempfile::tempdir()?;
    let archive = tmp.path().join("links.tar.gz");
    // Names and targets of 3999 bytes: within PATH_MAX, 8 KB noted per link.
    let count = bomb_mib() * MIB / 8000;
    let (_, size) = many_links(&archive, count, 3990, 3999)?;
    eprintln!("a {size}-byte archive of {count} links");
    load_refused(
        &mut daemon,
        &archive,
        "berth load of an archive of long-named links",
        &["16777216 bytes", "entry paths and link targets"],
        16 << 10,
    )
}
