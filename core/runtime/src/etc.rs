//! The per-container `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`,
//! written into a directory of the caller's and bind-mounted into the
//! container, so the image's files are never changed. The directory is
//! private like the rest of the container's; the files are 0644 whatever
//! the umask, as the container's users read them through their bind mounts.

use std::path::{Path, PathBuf};

use crate::error::{RuntimeError, io_err};

/// Docker's fallback when the host has only local name servers.
const FALLBACK_DNS: &[&str] = &["8.8.8.8", "8.8.4.4"];

/// Write the three files into `dir`; returns (file, destination) pairs.
pub(crate) fn write_etc_files(
    dir: &Path,
    hostname: &str,
    extra_hosts: &[(String, String)],
) -> Result<Vec<(PathBuf, String)>, RuntimeError> {
    crate::shim_files::create_private_dir(dir).map_err(io_err("creating", dir))?;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra_hosts {
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let files = [
        ("hostname", format!("{hostname}\n"), "/etc/hostname"),
        ("hosts", hosts, "/etc/hosts"),
        ("resolv.conf", resolv_conf(&host_resolv), "/etc/resolv.conf"),
    ];
    let mut out = Vec::new();
    for (name, body, dest) in files {
        let path = dir.join(name);
        crate::shim_files::write_shared(&path, body.as_bytes())
            .map_err(io_err("writing", &path))?;
        out.push((path, dest.to_string()));
    }
    Ok(out)
}

/// The host's resolv.conf without loopback name servers, which would point
/// into the container's own network namespace.
pub(crate) fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let addr = words.next().unwrap_or("");
            if addr.starts_with("127.") || addr == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        for s in FALLBACK_DNS {
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_are_replaced() {
        let r = resolv_conf("search lan\nnameserver 127.0.0.53\n");
        assert_eq!(r, "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let r = resolv_conf("nameserver 10.0.0.2\noptions edns0\n");
        assert_eq!(r, "nameserver 10.0.0.2\noptions edns0\n");
    }
}
