//! Egress NAT and forwarding rules for a bridge network, through the
//! `iptables` command (the issue demands netlink only for link setup, and
//! iptables' own rule encoding is not a stable interface to reimplement).
//!
//! Every rule carries a `berth:<bridge>` comment so it is found again for
//! removal, and each is checked (`-C`) before it is added, so calling
//! [`ensure`] any number of times leaves exactly one copy.

use std::process::Command;

use crate::NetworkError;
use crate::records::Network;

/// One rule: its table, chain and match/target arguments.
struct Rule {
    table: &'static str,
    chain: &'static str,
    args: Vec<String>,
}

fn rules(network: &Network) -> Vec<Rule> {
    let comment = ["-m", "comment", "--comment"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([format!("berth:{}", network.bridge_name)]);
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|s| (*s).to_owned())
            .chain(comment.clone())
            .collect()
    };
    let subnet = network.subnet.to_string();
    let bridge = network.bridge_name.as_str();
    vec![
        // Leaving through any interface but our own bridge: rewrite the
        // source so replies find their way back.
        Rule {
            table: "nat",
            chain: "POSTROUTING",
            args: with(&["-s", &subnet, "!", "-o", bridge, "-j", "MASQUERADE"]),
        },
        // Hosts whose FORWARD policy is DROP (Docker sets that) would
        // otherwise drop both egress and container-to-container traffic
        // once br_netfilter is loaded.
        Rule {
            table: "filter",
            chain: "FORWARD",
            args: with(&["-i", bridge, "-j", "ACCEPT"]),
        },
        Rule {
            table: "filter",
            chain: "FORWARD",
            args: with(&["-o", bridge, "-j", "ACCEPT"]),
        },
    ]
}

fn iptables(op: &str, rule: &Rule) -> Result<bool, NetworkError> {
    let mut args: Vec<String> = vec![
        "-w".into(),
        "-t".into(),
        rule.table.into(),
        op.into(),
        rule.chain.into(),
    ];
    if op == "-I" {
        args.push("1".into());
    }
    args.extend(rule.args.iter().cloned());
    let out = Command::new("iptables")
        .args(&args)
        .output()
        .map_err(|source| NetworkError::Io {
            op: "running iptables".into(),
            source,
        })?;
    if out.status.success() {
        return Ok(true);
    }
    // `-C` and `-D` exit 1 when the rule is absent; anything else is a failure.
    if op != "-I" && op != "-A" && out.status.code() == Some(1) {
        return Ok(false);
    }
    Err(NetworkError::Iptables {
        args: args.join(" "),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// Enable forwarding and install the network's rules, once each.
pub(crate) fn ensure(network: &Network) -> Result<(), NetworkError> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(NetworkError::io("enabling net.ipv4.ip_forward"))?;
    for rule in rules(network) {
        if !iptables("-C", &rule)? {
            let op = if rule.table == "filter" { "-I" } else { "-A" };
            iptables(op, &rule)?;
            tracing::debug!(network = %network.name, chain = rule.chain, "added iptables rule");
        }
    }
    Ok(())
}

/// Whether the network's MASQUERADE rule is installed.
pub fn masquerade_installed(network: &Network) -> Result<bool, NetworkError> {
    match rules(network).first() {
        Some(rule) => iptables("-C", rule),
        None => Ok(false),
    }
}

/// Remove every rule tagged for `bridge`, whatever its subnet: for start-up
/// repair, when the network's record is already gone.
pub(crate) fn remove_tagged(bridge: &str) -> Result<(), NetworkError> {
    let tag = format!("berth:{bridge}");
    for table in ["nat", "filter"] {
        let out = Command::new("iptables")
            .args(["-w", "-t", table, "-S"])
            .output()
            .map_err(NetworkError::io("running iptables"))?;
        if !out.status.success() {
            return Err(NetworkError::Iptables {
                args: format!("-w -t {table} -S"),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let words: Vec<&str> = line
                .split_whitespace()
                .map(|w| w.trim_matches('"'))
                .collect();
            if words.first() != Some(&"-A") || !words.contains(&tag.as_str()) {
                continue;
            }
            let status = Command::new("iptables")
                .args(["-w", "-t", table, "-D"])
                .args(words.get(1..).unwrap_or_default())
                .status()
                .map_err(NetworkError::io("running iptables"))?;
            if !status.success() {
                tracing::warn!(table, rule = line, "could not delete stale iptables rule");
            }
        }
    }
    Ok(())
}
