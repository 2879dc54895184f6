#![allow(clippy::unwrap_used, reason = "test code")]
//! The image-store verbs of the CLI on real pulls: `image inspect`, `image history`, `tag`,
//! `images`, `rmi [-f]`, `image prune`; and `save` / `load` (OCI and docker formats, into a
//! second daemon) and `import`, checked by mounting what they made.

use berth_e2e::images::{self, ImageMount};
use berth_e2e::{Berthd, DockerRegistry, RegistryOpts, fixture, run_ok, skopeo};
use std::process::Command;
use std::time::Duration;

const CONFIG_NO_GRACE: &str =
    "[registry]\nauth = \"none\"\nanonymous_pull = true\ntoken_ttl_secs = 300\ngc_grace_secs = 0\n";

fn inspect(daemon: &Berthd, reference: &str) -> anyhow::Result<serde_json::Value> {
    let out = daemon.berth_ok(&["image", "inspect", reference])?;
    let v: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| anyhow::anyhow!("berth image inspect printed no JSON ({e}):\n{out}"))?;
    Ok(match v {
        serde_json::Value::Array(mut a) if a.len() == 1 => a.remove(0),
        v => v,
    })
}

/// Whether any value anywhere in `v` satisfies `f`.
fn any_value(v: &serde_json::Value, f: &dyn Fn(&serde_json::Value) -> bool) -> bool {
    f(v) || match v {
        serde_json::Value::Array(a) => a.iter().any(|x| any_value(x, f)),
        serde_json::Value::Object(o) => o.values().any(|x| any_value(x, f)),
        _ => false,
    }
}

#[test]
fn inspect_history_tag_rmi_prune() -> anyhow::Result<()> {
    let image = fixture::small()?;
    let reg = DockerRegistry::start(RegistryOpts::default())?;
    let daemon = Berthd::start(CONFIG_NO_GRACE)?;
    let src = format!("{}/e2e/cli:v1", reg.host());
    skopeo::copy(&image.oci_ref(), &format!("docker://{src}"), None, None)?;
    daemon.berth_ok(&["pull", &src])?;

    let v = inspect(&daemon, &src)?;
    for key in ["reference", "manifest", "config", "chain_id", "size"] {
        assert!(v.get(key).is_some(), "inspect has no {key:?}: {v:#}");
    }
    assert_eq!(
        v["manifest"].as_str(),
        Some(image.manifest_digest.as_str()),
        "{v:#}"
    );
    assert!(
        any_value(&v, &|x| x.as_str() == Some(image.blobs[0].as_str())),
        "inspect does not name the config digest {}: {v:#}",
        image.blobs[0]
    );
    assert!(
        v["chain_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("sha256:")),
        "chain_id: {v:#}"
    );
    assert!(v["size"].as_u64().is_some_and(|s| s > 0), "size: {v:#}");
    assert!(
        any_value(&v, &|x| x
            .get("rootfs")
            .and_then(|r| r.get("diff_ids"))
            .is_some()),
        "inspect does not include the parsed image config (rootfs.diff_ids): {v:#}"
    );
    assert!(
        any_value(&v, &|x| x
            .get("Labels")
            .and_then(|l| l.get("org.berth.fixture.variant"))
            == Some(&serde_json::json!("0"))),
        "inspect does not include the image config's Labels: {v:#}"
    );

    let history = daemon.berth_ok(&["image", "history", &src])?;
    for step in [
        "busybox and applets",
        "files and directories",
        "whiteout and more files",
    ] {
        assert!(history.contains(step), "history lacks {step:?}:\n{history}");
    }

    let other = "e2e/other-name:v2";
    daemon.berth_ok(&["tag", &src, other])?;
    let listed = daemon.berth_ok(&["images"])?;
    assert!(
        listed.contains("e2e/cli") && listed.contains("e2e/other-name"),
        "berth images after tag:\n{listed}"
    );
    assert_eq!(
        inspect(&daemon, other)?["manifest"],
        v["manifest"],
        "the tag names another image"
    );
    let snaps = images::snapshot_ids(&daemon.root);
    assert_eq!(snaps.len(), 3, "tagging must not unpack again: {snaps:?}");

    // Removing one name keeps the image (and its snapshots) for the other.
    daemon.berth_ok(&["rmi", other])?;
    std::thread::sleep(Duration::from_millis(2100));
    let prune = daemon.berth_ok(&["image", "prune"])?;
    eprintln!("prune with the image still named: {prune}");
    assert_eq!(
        images::snapshot_ids(&daemon.root),
        snaps,
        "prune removed snapshots in use"
    );
    {
        let m = ImageMount::new(&daemon, &src)?;
        assert!(m.dir.join("srv/data/layer3.txt").is_file());
    }

    // A missing image is an error naming it; rmi -f of the last name, then prune, empties.
    let missing = daemon.berth(&["rmi", "e2e/never-pulled:v1"])?;
    assert!(
        !missing.status.success(),
        "rmi of an unknown image succeeded"
    );
    daemon.berth_ok(&["rmi", "-f", &src])?;
    let listed = daemon.berth_ok(&["images"])?;
    assert!(
        !listed.contains("e2e/cli"),
        "berth images after rmi:\n{listed}"
    );
    std::thread::sleep(Duration::from_millis(2100));
    let prune = daemon.berth_ok(&["image", "prune"])?;
    let counts: serde_json::Value = serde_json::from_str(prune.trim())?;
    assert_eq!(
        counts["snapshots_removed"].as_u64(),
        Some(3),
        "prune: {prune}"
    );
    assert!(images::snapshot_ids(&daemon.root).is_empty());
    assert!(images::dir_names(&images::blobs_dir(&daemon.root)).is_empty());
    Ok(())
}

#[test]
fn save_load_and_import() -> anyhow::Result<()> {
    let image = fixture::small()?;
    let reg = DockerRegistry::start(RegistryOpts::default())?;
    let a = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let b = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let src = format!("{}/e2e/saved:v1", reg.host());
    skopeo::copy(&image.oci_ref(), &format!("docker://{src}"), None, None)?;
    a.berth_ok(&["pull", &src])?;
    let tmp = tempfile::tempdir()?;
    let original = {
        let m = ImageMount::new(&a, &src)?;
        images::scan(&m.dir)?
    };

    for format in ["oci", "docker"] {
        let archive = tmp.path().join(format!("saved-{format}.tar"));
        let archive_s = archive.to_string_lossy().into_owned();
        a.berth_ok(&["save", "-o", &archive_s, "--format", format, &src])?;
        assert!(archive.is_file(), "berth save -o {archive_s} wrote nothing");
        let members = run_ok(Command::new("tar").arg("-tf").arg(&archive))?;
        let expect = if format == "oci" {
            "index.json"
        } else {
            "manifest.json"
        };
        assert!(
            members
                .lines()
                .any(|l| l.trim_start_matches("./") == expect),
            "{format} archive has no {expect}:\n{members}"
        );
        b.berth_ok(&["load", "-i", &archive_s])?;
        let v = inspect(&b, &src)?;
        // The config (the image ID) survives both formats; the OCI one keeps the manifest
        // too (a docker save archive has no manifest of the registry's kind to keep).
        assert!(
            any_value(&v, &|x| x.as_str() == Some(image.blobs[0].as_str())),
            "image loaded from a {format} save has another config: {v:#}"
        );
        if format == "oci" {
            assert_eq!(
                v["manifest"].as_str(),
                Some(image.manifest_digest.as_str()),
                "{v:#}"
            );
        }
        let m = ImageMount::new(&b, &src)?;
        let loaded = images::scan(&m.dir)?;
        let diffs = images::diff_trees(&original, &loaded);
        assert!(
            diffs.is_empty(),
            "image loaded from a {format} save differs from the pulled one:\n{}",
            diffs.join("\n")
        );
        m.unmount()?;
        drop(m);
        b.berth_ok(&["rmi", &src])?;
    }
    // --name for an archive that names nothing: skopeo's oci-archive without a ref name.
    let unnamed = tmp.path().join("unnamed.tar");
    let layout = tmp.path().join("unnamed-layout");
    run_ok(Command::new("cp").arg("-a").arg(&image.dir).arg(&layout))?;
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    index["manifests"][0]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(&unnamed)
            .arg("-C")
            .arg(&layout)
            .arg("."),
    )?;
    b.berth_ok(&[
        "load",
        "-i",
        &unnamed.to_string_lossy(),
        "--name",
        "e2e/named-on-load:v3",
    ])?;
    assert_eq!(
        inspect(&b, "e2e/named-on-load:v3")?["manifest"].as_str(),
        Some(image.manifest_digest.as_str())
    );

    // import: a root file system tarball becomes a one-layer image with the changed config.
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::create_dir_all(rootfs.join("etc"))?;
    std::fs::write(rootfs.join("etc/imported"), b"imported\n")?;
    std::os::unix::fs::symlink("/bin/busybox", rootfs.join("bin/sh"))?;
    let tarball = tmp.path().join("rootfs.tar.gz");
    run_ok(
        Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(&rootfs)
            .arg("."),
    )?;
    b.berth_ok(&[
        "import",
        "--change",
        r#"CMD ["sh"]"#,
        &tarball.to_string_lossy(),
        "e2e/imported:v1",
    ])?;
    let v = inspect(&b, "e2e/imported:v1")?;
    assert!(
        any_value(&v, &|x| x.get("Cmd") == Some(&serde_json::json!(["sh"]))),
        "imported image's config has no Cmd [\"sh\"]: {v:#}"
    );
    let m = ImageMount::new(&b, "e2e/imported:v1")?;
    assert_eq!(std::fs::read(m.dir.join("etc/imported"))?, b"imported\n");
    assert_eq!(
        std::fs::read_link(m.dir.join("bin/sh"))?.to_string_lossy(),
        "/bin/busybox"
    );
    Ok(())
}
