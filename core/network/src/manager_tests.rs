//! The decisions of [`Networks`] against a recording fake kernel: what is
//! created, rolled back and deleted, in which order. No root needed.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::*;
use crate::kernel::Kernel;

#[derive(Clone, Default)]
struct Fake {
    calls: Arc<Mutex<Vec<String>>>,
    links: Arc<Mutex<Vec<String>>>,
    fail_endpoint: bool,
}

impl Fake {
    fn log(&self, call: String) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }

    fn take(&self) -> Vec<String> {
        self.calls
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

impl Kernel for Fake {
    async fn ensure_bridge(&self, net: &Network) -> Result<u32, NetworkError> {
        self.log(format!("bridge {}", net.bridge_name));
        Ok(7)
    }

    async fn add_endpoint(
        &self,
        _: &Path,
        _: &Network,
        bridge: u32,
        ep: &Endpoint,
    ) -> Result<(), NetworkError> {
        assert_eq!(bridge, 7, "the index ensure_bridge returned");
        self.log(format!("endpoint {} {}", ep.veth_host, ep.ip));
        if self.fail_endpoint {
            return Err(NetworkError::LinkNotFound("injected".into()));
        }
        Ok(())
    }

    async fn delete_link(&self, name: &str) -> Result<bool, NetworkError> {
        self.log(format!("delete {name}"));
        Ok(true)
    }

    async fn host_links(&self) -> Result<Vec<String>, NetworkError> {
        Ok(self.links.lock().map(|l| l.clone()).unwrap_or_default())
    }

    async fn ensure_nat(&self, net: &Network) -> Result<(), NetworkError> {
        self.log(format!("nat {}", net.bridge_name));
        Ok(())
    }

    async fn remove_nat(&self, bridge: &str) -> Result<(), NetworkError> {
        self.log(format!("unnat {bridge}"));
        Ok(())
    }
}

fn setup(fake: Fake) -> Result<(tempfile::TempDir, Networks<Fake>), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let state = State::open(dir.path())?;
    Ok((
        dir,
        Networks::with_kernel(&state, NetworkConfig::default(), fake)?,
    ))
}

/// Any existing file stands in for a namespace: the fake never enters it.
const NETNS: &str = "/proc/self/ns/net";

#[tokio::test]
async fn attach_plumbs_bridge_rules_then_endpoint() -> Result<(), Box<dyn std::error::Error>> {
    let fake = Fake::default();
    let (_dir, nets) = setup(fake.clone())?;
    let ep = nets
        .attach(
            Path::new(NETNS),
            "0123456789abcdef",
            "bridge",
            EndpointSpec::default(),
        )
        .await?;
    assert_eq!(ep.ip.to_string(), "10.213.0.2");
    assert!(ep.veth_host.starts_with("vb-01234567") && ep.veth_host.len() == 15);
    assert_eq!(
        fake.take(),
        [
            "bridge berth0",
            "nat berth0",
            &format!("endpoint {} 10.213.0.2", ep.veth_host)
        ]
    );
    nets.detach("0123456789abcdef", "bridge").await?;
    assert_eq!(fake.take(), [format!("delete {}", ep.veth_host)]);
    assert!(nets.inspect("bridge")?.endpoints.is_empty());
    Ok(())
}

#[tokio::test]
async fn failed_attach_deletes_the_veth_and_frees_the_address()
-> Result<(), Box<dyn std::error::Error>> {
    let fake = Fake {
        fail_endpoint: true,
        ..Fake::default()
    };
    let (_dir, nets) = setup(fake.clone())?;
    let err = nets
        .attach(Path::new(NETNS), "c1", "bridge", EndpointSpec::default())
        .await;
    assert!(matches!(err, Err(NetworkError::LinkNotFound(_))));
    let calls = fake.take();
    assert!(
        calls.last().is_some_and(|c| c.starts_with("delete vb-c1")),
        "{calls:?}"
    );
    assert!(nets.inspect("bridge")?.endpoints.is_empty());
    // A missing namespace fails before the host is touched.
    let err = nets
        .attach(
            Path::new("/nonexistent/ns"),
            "c2",
            "bridge",
            EndpointSpec::default(),
        )
        .await;
    assert!(matches!(err, Err(NetworkError::Netns { .. })));
    assert!(fake.take().iter().all(|c| c.starts_with("delete")));
    Ok(())
}

#[tokio::test]
async fn remove_deletes_bridge_and_rules_only_when_empty() -> Result<(), Box<dyn std::error::Error>>
{
    let fake = Fake::default();
    let (_dir, nets) = setup(fake.clone())?;
    let net = nets.create("web", None)?;
    assert_eq!(net.subnet.to_string(), "10.213.1.0/24");
    assert!(net.bridge_name.starts_with("berth-") && net.bridge_name.len() == 15);
    nets.attach(Path::new(NETNS), "c1", "web", EndpointSpec::default())
        .await?;
    assert!(matches!(
        nets.remove("web").await,
        Err(NetworkError::InUse { count: 1, .. })
    ));
    nets.detach_all("c1").await?;
    fake.take();
    nets.remove("web").await?;
    assert_eq!(
        fake.take(),
        [
            format!("delete {}", net.bridge_name),
            format!("unnat {}", net.bridge_name)
        ]
    );
    assert!(matches!(
        nets.inspect("web"),
        Err(NetworkError::NotFound(_))
    ));
    Ok(())
}

#[tokio::test]
async fn reconcile_spares_what_records_own_and_foreign_links()
-> Result<(), Box<dyn std::error::Error>> {
    let fake = Fake::default();
    let (_dir, nets) = setup(fake.clone())?;
    let web = nets.create("web", None)?;
    let ep = nets
        .attach(Path::new(NETNS), "c1", "web", EndpointSpec::default())
        .await?;
    if let Ok(mut links) = fake.links.lock() {
        *links = vec![
            "lo".into(),
            "eth0".into(),
            "docker0".into(),
            "br-0123456789ab".into(),
            "berth0".into(),
            web.bridge_name.clone(),
            ep.veth_host.clone(),
            "vb-deadbeef0001".into(),
            "berth-stale0001".into(),
        ];
    }
    fake.take();
    let removed = nets.reconcile().await?;
    assert_eq!(removed, ["vb-deadbeef0001", "berth-stale0001"]);
    assert_eq!(
        fake.take(),
        [
            "delete vb-deadbeef0001",
            "delete berth-stale0001",
            "unnat berth-stale0001"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn modes_none_and_host_touch_no_bridge() -> Result<(), Box<dyn std::error::Error>> {
    let fake = Fake::default();
    let (_dir, nets) = setup(fake.clone())?;
    let ep = nets
        .connect(
            &NetworkMode::Host,
            Path::new(NETNS),
            "c1",
            EndpointSpec::default(),
        )
        .await?;
    assert!(ep.is_none());
    assert!(fake.take().is_empty());
    let ep = nets
        .connect(
            &"bridge".parse()?,
            Path::new(NETNS),
            "c1",
            EndpointSpec::default(),
        )
        .await?;
    assert!(ep.is_some());
    Ok(())
}

#[tokio::test]
async fn aliases_cannot_inject_hosts_entries() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, nets) = setup(Fake::default())?;
    for bad in ["web\n10.0.0.1 bank.example", "two words", ""] {
        let spec = EndpointSpec {
            aliases: vec![bad.into()],
            ..EndpointSpec::default()
        };
        let err = nets.attach(Path::new(NETNS), "c1", "bridge", spec).await;
        assert!(
            matches!(err, Err(NetworkError::InvalidHostname(_))),
            "{bad:?}: {err:?}"
        );
    }
    let spec = EndpointSpec {
        hostname: Some("evil\nhost".into()),
        ..EndpointSpec::default()
    };
    assert!(
        nets.attach(Path::new(NETNS), "c1", "bridge", spec)
            .await
            .is_err()
    );
    assert!(nets.inspect("bridge")?.endpoints.is_empty());
    Ok(())
}

#[tokio::test]
async fn hosts_files_are_rewritten_only_where_names_are_shared()
-> Result<(), Box<dyn std::error::Error>> {
    let (dir, nets) = setup(Fake::default())?;
    nets.create("app", None)?;
    let spec = |name: &str| EndpointSpec {
        aliases: vec![name.into()],
        hosts_path: Some(dir.path().join(format!("{name}.hosts"))),
        ..EndpointSpec::default()
    };
    let hosts = |name: &str| std::fs::read_to_string(dir.path().join(format!("{name}.hosts")));
    for network in ["bridge", "app"] {
        let (a, b) = (format!("{network}-a"), format!("{network}-b"));
        nets.attach(Path::new(NETNS), &a, network, spec(&a)).await?;
        // A marker that only a rewrite of a's file would remove.
        std::fs::write(dir.path().join(format!("{a}.hosts")), "untouched")?;
        nets.attach(Path::new(NETNS), &b, network, spec(&b)).await?;
        assert!(hosts(&b)?.contains("127.0.0.1\tlocalhost"));
        if network == "bridge" {
            // No name discovery on the default network: b's start leaves
            // a's file alone, and so does b's leaving.
            assert_eq!(hosts(&a)?, "untouched");
            nets.detach(&b, network).await?;
            assert_eq!(hosts(&a)?, "untouched");
        } else {
            assert!(hosts(&a)?.contains(&format!("\t{b}")), "{}", hosts(&a)?);
            nets.detach(&b, network).await?;
            assert!(!hosts(&a)?.contains(&b), "{}", hosts(&a)?);
        }
    }
    Ok(())
}
