//! `--change` for import: the Dockerfile instructions that only touch the
//! image config (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`,
//! `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`), as `docker import -c` takes them,
//! and `HEALTHCHECK`, which Docker only takes in a Dockerfile.

use crate::ImageError;
use crate::config::{ContainerConfig, Healthcheck};

/// Apply one change such as `CMD ["/bin/sh"]` or `ENV A=1 B=2` to `config`.
pub fn apply_change(config: &mut ContainerConfig, change: &str) -> Result<(), ImageError> {
    let err = |reason: &str| ImageError::Change {
        change: change.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = change.trim();
    let (instr, rest) = trimmed
        .split_once(char::is_whitespace)
        .map_or((trimmed, ""), |(i, r)| (i, r.trim()));
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = Some(command(rest).map_err(|r| err(&r))?),
        "ENTRYPOINT" => config.entrypoint = Some(command(rest).map_err(|r| err(&r))?),
        "ENV" => {
            for (k, v) in pairs(rest, true).map_err(|r| err(&r))? {
                let prefix = format!("{k}=");
                config.env.retain(|e| !e.starts_with(&prefix) && e != &k);
                config.env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            for (k, v) in pairs(rest, false).map_err(|r| err(&r))? {
                config.labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            for port in words(rest).map_err(|r| err(&r))? {
                let port = if port.contains('/') {
                    port
                } else {
                    format!("{port}/tcp")
                };
                config.exposed_ports.insert(port, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let vols = if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|e| err(&e.to_string()))?
            } else {
                words(rest).map_err(|r| err(&r))?
            };
            for v in vols {
                config.volumes.insert(v, serde_json::json!({}));
            }
        }
        "HEALTHCHECK" => config.healthcheck = Some(healthcheck(rest).map_err(|r| err(&r))?),
        "WORKDIR" if !rest.is_empty() => config.working_dir = rest.to_string(),
        "USER" if !rest.is_empty() => config.user = rest.to_string(),
        "STOPSIGNAL" if !rest.is_empty() => config.stop_signal = rest.to_string(),
        "WORKDIR" | "USER" | "STOPSIGNAL" => return Err(err("needs a value")),
        _ => {
            return Err(err(
                "unsupported instruction: use CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, STOPSIGNAL, USER, VOLUME or WORKDIR",
            ));
        }
    }
    Ok(())
}

/// `NONE`, or `[--interval=D] [--timeout=D] [--start-period=D]
/// [--retries=N] CMD command` (exec or shell form), as in a Dockerfile.
fn healthcheck(rest: &str) -> Result<Healthcheck, String> {
    if rest.eq_ignore_ascii_case("NONE") {
        return Ok(Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        });
    }
    let mut hc = Healthcheck::default();
    let mut rest = rest.trim_start();
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, tail) = flag
            .split_once(char::is_whitespace)
            .ok_or("needs CMD after the options")?;
        let (name, value) = word
            .split_once('=')
            .ok_or_else(|| format!("--{word} needs a value (--{word}=...)"))?;
        let nanos = |v: &str| -> Result<Option<i64>, String> {
            let d = crate::duration::parse_duration(v)?;
            Ok(Some(i64::try_from(d.as_nanos()).map_err(|_| "too long")?))
        };
        match name {
            "interval" => hc.interval = nanos(value)?,
            "timeout" => hc.timeout = nanos(value)?,
            "start-period" => hc.start_period = nanos(value)?,
            "start-interval" => hc.start_interval = nanos(value)?,
            "retries" => {
                hc.retries = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--retries={value} is not a number"))?,
                )
            }
            other => return Err(format!("unknown option --{other}")),
        }
        rest = tail.trim_start();
    }
    let cmd = rest
        .strip_prefix("CMD")
        .or_else(|| rest.strip_prefix("cmd"))
        .ok_or("needs CMD and a command, or NONE")?
        .trim();
    hc.test = if cmd.starts_with('[') {
        let args: Vec<String> =
            serde_json::from_str(cmd).map_err(|e| format!("not a JSON array of strings: {e}"))?;
        std::iter::once("CMD".to_string()).chain(args).collect()
    } else if cmd.is_empty() {
        return Err("needs a command after CMD".into());
    } else {
        vec!["CMD-SHELL".into(), cmd.to_string()]
    };
    Ok(hc)
}

/// Exec form (`["a","b"]`) as is; shell form wrapped in `/bin/sh -c`.
fn command(rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[') {
        serde_json::from_str(rest).map_err(|e| format!("not a JSON array of strings: {e}"))
    } else if rest.is_empty() {
        Err("needs a command".to_string())
    } else {
        Ok(vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            rest.to_string(),
        ])
    }
}

/// `k=v k2="v 2"`, or (for ENV, legacy form) `k v with spaces`.
fn pairs(rest: &str, legacy_form: bool) -> Result<Vec<(String, String)>, String> {
    let first = rest.split_whitespace().next().unwrap_or("");
    if legacy_form && !first.contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or("needs KEY=VALUE")?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    for w in words(rest)? {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("{w:?} is not KEY=VALUE"))?;
        if k.is_empty() {
            return Err(format!("{w:?} has an empty key"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    if out.is_empty() {
        return Err("needs KEY=VALUE".to_string());
    }
    Ok(out)
}

/// Whitespace-separated words; double or single quotes group and are removed.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".to_string());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "a test fails loudly on any unexpected error"
    )]
    use super::*;

    #[test]
    fn healthcheck_forms() {
        let mut c = ContainerConfig::default();
        apply_change(
            &mut c,
            "HEALTHCHECK --interval=1s --retries=2 CMD test -e /ok",
        )
        .unwrap();
        let hc = c.healthcheck.clone().unwrap();
        assert_eq!(hc.test, vec!["CMD-SHELL", "test -e /ok"]);
        assert_eq!((hc.interval, hc.retries), (Some(1_000_000_000), Some(2)));
        apply_change(&mut c, r#"HEALTHCHECK CMD ["true"]"#).unwrap();
        assert_eq!(c.healthcheck.clone().unwrap().test, vec!["CMD", "true"]);
        apply_change(&mut c, "HEALTHCHECK NONE").unwrap();
        assert_eq!(c.healthcheck.clone().unwrap().test, vec!["NONE"]);
        for bad in [
            "HEALTHCHECK",
            "HEALTHCHECK --interval=x CMD true",
            "HEALTHCHECK --bogus=1 CMD true",
        ] {
            assert!(apply_change(&mut c, bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn applies_docker_style_changes() {
        let mut c = ContainerConfig::default();
        for ch in [
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /init --flag",
            "ENV PATH=/bin A=\"x y\"",
            "ENV PATH=/usr/bin:/bin",
            "env LEGACY some value",
            "EXPOSE 80 53/udp",
            "LABEL org.a=1 b='two words'",
            "VOLUME /data /cache",
            "WORKDIR /srv",
            "USER 1000:1000",
            "STOPSIGNAL SIGINT",
        ] {
            apply_change(&mut c, ch).unwrap();
        }
        assert_eq!(c.cmd.as_ref().unwrap()[2], "echo hi");
        assert_eq!(
            c.entrypoint.as_ref().unwrap(),
            &["/bin/sh", "-c", "/init --flag"]
        );
        assert_eq!(c.env, ["A=x y", "PATH=/usr/bin:/bin", "LEGACY=some value"]);
        assert!(c.exposed_ports.contains_key("80/tcp") && c.exposed_ports.contains_key("53/udp"));
        assert_eq!(c.labels["b"], "two words");
        assert_eq!(c.volumes.len(), 2);
        assert_eq!(
            (c.working_dir.as_str(), c.user.as_str()),
            ("/srv", "1000:1000")
        );
        assert_eq!(c.stop_signal, "SIGINT");
        for bad in [
            "RUN echo",
            "CMD [\"unterminated\"",
            "ENV",
            "LABEL =x",
            "WORKDIR",
            "ENV A=\"x",
        ] {
            assert!(apply_change(&mut c, bad).is_err(), "{bad}");
        }
    }
}
