//! `berth pull` and `berth push` through berthd against docker-registry on loopback (plain
//! HTTP, as any loopback registry), with and without credentials.

use berth_e2e::{Berthd, DockerRegistry, RegistryOpts, fixture, suites};

#[test]
fn pull_tag_push_against_docker_registry() -> anyhow::Result<()> {
    let reg = DockerRegistry::start(RegistryOpts::default())?;
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let image = fixture::small()?;
    berth_e2e::skopeo::copy(
        &image.oci_ref(),
        &format!("docker://{}/e2e/source:v1", reg.host()),
        None,
        None,
    )?;

    let src = format!("{}/e2e/source:v1", reg.host());
    let dst = format!("{}/e2e/pushed-by-berth:v2", reg.host());
    daemon.berth_ok(&["pull", &src])?;
    let images = daemon.berth_ok(&["images"])?;
    assert!(
        images.contains("e2e/source"),
        "berth images after pull:\n{images}"
    );
    daemon.berth_ok(&["tag", &src, &dst])?;
    let push = daemon.berth(&["push", &dst])?;
    let progress = String::from_utf8_lossy(&push.stderr);
    anyhow::ensure!(push.status.success(), "berth push failed: {progress}");
    // Same registry, other repository: the config and the three layers are
    // mounted from where they were pulled, not sent again.
    assert_eq!(
        progress.matches(": mounted").count(),
        4,
        "berth push progress:\n{progress}"
    );

    // docker-registry now holds the same manifest and blobs under the new name.
    suites::pull_and_compare(&image, &reg.host(), "e2e/pushed-by-berth", "v2", None)?;

    daemon.berth_ok(&["rmi", &dst])?;
    let images = daemon.berth_ok(&["images"])?;
    assert!(
        !images.contains("pushed-by-berth"),
        "berth images after rmi:\n{images}"
    );
    Ok(())
}

#[test]
fn login_pull_push_logout_against_docker_registry_with_htpasswd() -> anyhow::Result<()> {
    let reg = DockerRegistry::start(RegistryOpts {
        htpasswd: Some(("bob".into(), "builder".into())),
        ..RegistryOpts::default()
    })?;
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    let image = fixture::small()?;
    berth_e2e::skopeo::copy(
        &image.oci_ref(),
        &format!("docker://{}/e2e/private:v1", reg.host()),
        None,
        Some("bob:builder"),
    )?;
    let src = format!("{}/e2e/private:v1", reg.host());

    let anonymous = daemon.berth(&["pull", &src])?;
    assert!(!anonymous.status.success(), "pull without login succeeded");

    daemon.berth_stdin_ok(
        &["login", "-u", "bob", "--password-stdin", &reg.host()],
        "builder\n",
    )?;
    daemon.berth_ok(&["pull", &src])?;
    let dst = format!("{}/e2e/private-copy:v1", reg.host());
    daemon.berth_ok(&["tag", &src, &dst])?;
    daemon.berth_ok(&["push", &dst])?;
    suites::pull_and_compare(
        &image,
        &reg.host(),
        "e2e/private-copy",
        "v1",
        Some("bob:builder"),
    )?;

    daemon.berth_ok(&["logout", &reg.host()])?;
    let after = daemon.berth(&["push", &dst])?;
    assert!(!after.status.success(), "push after logout succeeded");
    Ok(())
}
