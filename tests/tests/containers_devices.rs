//! The device cgroup on real containers: Docker's default lets a container
//! make any device node (CAP_MKNOD is in its set) but open only the
//! standard ones, so a node made for a host device — /dev/kvm, a host
//! console — cannot be opened. `--privileged` opens them all and finds
//! the host's nodes in its /dev, and `exec` is held to the same rules.

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox};

/// Make nodes for the host's kvm and tty1 and try to open each; prints
/// `opened NAME` or the shell's error for each.
const PROBE: &str = "mknod /dev/probe-kvm c 10 232 && mknod /dev/probe-tty1 c 4 1 && \
    for d in kvm tty1; do (exec 3</dev/probe-$d) 2>&1 && echo opened $d; done; \
    echo x > /dev/null && echo null-ok";

fn run(daemon: &Berthd, opts: &[&str]) -> anyhow::Result<String> {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&[BUSYBOX, "sh", "-c", PROBE]);
    let out = daemon.berth(&args)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?}: {text}");
    Ok(text)
}

#[test]
fn host_devices_cannot_be_opened_unless_privileged() -> anyhow::Result<()> {
    for dev in ["/dev/kvm", "/dev/tty1"] {
        assert!(
            std::path::Path::new(dev).exists(),
            "this test needs the host's {dev} (present on the machines berth's CI runs on)"
        );
    }
    let daemon = Berthd::start(Berthd::CONFIG_AUTH_NONE)?;
    import_busybox(&daemon)?;

    let out = run(&daemon, &[])?;
    assert!(
        !out.contains("opened"),
        "a default container opened a host device: {out}"
    );
    assert_eq!(out.matches("Operation not permitted").count(), 2, "{out}");
    assert!(out.contains("null-ok"), "{out}");

    let out = run(&daemon, &["--privileged"])?;
    assert!(
        out.contains("opened kvm") && out.contains("opened tty1"),
        "{out}"
    );
    // --privileged also brings the host's nodes in, as Docker does.
    let out = daemon.berth_ok(&[
        "run",
        "--rm",
        "--privileged",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "exec 3</dev/kvm && echo kvm-here; test -c /dev/tty1 && echo tty1-here",
    ])?;
    assert!(
        out.contains("kvm-here") && out.contains("tty1-here"),
        "{out}"
    );
    let out = daemon.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        BUSYBOX,
        "ls",
        "/dev/kvm",
    ])?;
    assert!(
        !out.status.success(),
        "a default container has the host's /dev/kvm"
    );

    // exec joins the container's device cgroup too.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "dev",
        "--network",
        "none",
        BUSYBOX,
        "sleep",
        "300",
    ])?;
    let out = daemon.berth(&["exec", "dev", "sh", "-c", PROBE])?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains("opened"),
        "exec opened a host device: {text}"
    );
    assert!(text.contains("null-ok"), "{text}");
    daemon.berth_ok(&["rm", "-f", "dev"])?;
    Ok(())
}
