//! `/etc/hosts` and `/etc/resolv.conf` for containers.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;

use crate::NetworkError;
use crate::records::{Endpoint, ExtraHost};

const BASE_HOSTS: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
ff00::0\tip6-mcastprefix\n\
ff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n";

/// The hosts file of a container whose endpoints are `own`, which can see
/// `peers` by name (the other endpoints of its user-defined networks).
pub fn render_hosts(own: &[Endpoint], peers: &[Endpoint]) -> String {
    let mut out = String::from(BASE_HOSTS);
    let hostname = own.iter().find_map(|e| e.hostname.as_deref());
    if let (Some(first), Some(name)) = (own.first(), hostname) {
        let _ = writeln!(out, "{}\t{name}", first.ip);
    }
    let mut seen_extra = Vec::new();
    for extra in own.iter().flat_map(|e| &e.extra_hosts) {
        if !seen_extra.contains(&extra) {
            let _ = writeln!(out, "{}\t{}", extra.ip, extra.name);
            seen_extra.push(extra);
        }
    }
    for peer in peers {
        let mut names: Vec<&str> = peer.aliases.iter().map(String::as_str).collect();
        if let Some(h) = peer.hostname.as_deref()
            && !names.contains(&h)
        {
            names.push(h);
        }
        if !names.is_empty() {
            let _ = writeln!(out, "{}\t{}", peer.ip, names.join(" "));
        }
    }
    out
}

/// The container's resolv.conf, with Docker's rules: `--dns` servers
/// replace the host's; otherwise the host's file without loopback name
/// servers (they would point at the container itself), falling back to
/// public resolvers when none remain. Search and options lines are kept.
pub fn resolv_conf(dns: &[IpAddr], host_resolv: &str) -> String {
    let mut out = String::new();
    let mut servers = 0usize;
    for line in host_resolv.lines() {
        let trimmed = line.trim();
        let mut words = trimmed.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let usable = words
                    .next()
                    .and_then(|a| a.parse::<IpAddr>().ok())
                    .is_some_and(|a| !a.is_loopback());
                if dns.is_empty() && usable {
                    out.push_str(trimmed);
                    out.push('\n');
                    servers += 1;
                }
            }
            Some("search" | "domain" | "options") => {
                out.push_str(trimmed);
                out.push('\n');
            }
            _ => {}
        }
    }
    for server in dns {
        let _ = writeln!(out, "nameserver {server}");
        servers += 1;
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// Parse `--add-host` values.
pub fn parse_extra_hosts(values: &[String]) -> Result<Vec<ExtraHost>, NetworkError> {
    values.iter().map(|v| v.parse()).collect()
}

/// Replace the contents of `path`. The file is rewritten in place, not
/// renamed over: the daemon bind-mounts it into the container, and a rename
/// would leave the container looking at the old inode. No fsync: a hosts
/// file is derived from the records and written again at every attach, and
/// a crash that could lose the page cache (the machine's) also ends the
/// containers that read it; the fsync cost ~0.6 ms per file on this disk.
pub fn write_in_place(path: &Path, contents: &str) -> Result<(), NetworkError> {
    let op = || format!("writing {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| NetworkError::Io {
            op: op(),
            source: e,
        })?;
    // The container's users read it; berthd's umask (0077) would not let
    // them if it created the file.
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .and_then(|()| file.write_all(contents.as_bytes()))
        .map_err(|e| NetworkError::Io {
            op: op(),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: &str, ip: [u8; 4], alias: &str) -> Endpoint {
        Endpoint {
            container_id: id.into(),
            network: "app".into(),
            ip: ip.into(),
            prefix: 24,
            gateway: [10, 213, 0, 1].into(),
            mac: String::new(),
            veth_host: String::new(),
            aliases: vec![alias.into()],
            hostname: Some(format!("{alias}-host")),
            extra_hosts: Vec::new(),
            hosts_path: None,
        }
    }

    #[test]
    fn hosts_name_self_extras_and_peers() {
        let mut me = ep("a", [10, 213, 0, 2], "web");
        me.extra_hosts = vec![ExtraHost {
            name: "db.example".into(),
            ip: IpAddr::from([192, 0, 2, 7]),
        }];
        let peer = ep("b", [10, 213, 0, 3], "api");
        let hosts = render_hosts(&[me], &[peer]);
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(hosts.contains("10.213.0.2\tweb-host\n"), "{hosts}");
        assert!(hosts.contains("192.0.2.7\tdb.example\n"), "{hosts}");
        assert!(hosts.contains("10.213.0.3\tapi api-host\n"), "{hosts}");
    }

    #[test]
    fn resolv_drops_loopback_and_honours_dns() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\n";
        assert_eq!(
            resolv_conf(&[], host),
            "nameserver 10.0.0.2\nsearch example.org\n"
        );
        let dns = ["1.1.1.1".parse().unwrap_or(IpAddr::from([1, 1, 1, 1]))];
        assert_eq!(
            resolv_conf(&dns, host),
            "search example.org\nnameserver 1.1.1.1\n"
        );
        assert_eq!(
            resolv_conf(&[], "nameserver 127.0.0.1\n"),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }
}
