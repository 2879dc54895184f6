//! `berth logs` on real containers: `--tail`, `-t` timestamps, `--since`,
//! stdout and stderr kept apart, `-f` streaming lines as they come and
//! ending when the container is over (across a restart), and rotation by
//! `--log-opt` and the daemon's `[containers]` defaults.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_e2e::Berthd;
use berth_e2e::containers::{BUSYBOX, import_busybox, inspect, logs};

fn config() -> String {
    format!(
        "{}[containers]\nlog_max_size = \"4k\"\nlog_max_file = 2\n",
        Berthd::CONFIG_AUTH_NONE
    )
}

fn log_files(daemon: &Berthd, name: &str) -> Vec<(String, u64)> {
    let dir = PathBuf::from(inspect(daemon, name).unwrap()["dir"].as_str().unwrap());
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("container.log"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    files.sort();
    files
}

/// `2026-11-30T01:35:21.123456789Z` and within [from, to].
fn check_timestamp(ts: &str, from: SystemTime, to: SystemTime) {
    let b = ts.as_bytes();
    assert_eq!(b.len(), 30, "{ts:?}");
    for (i, c) in b.iter().enumerate() {
        let expect = match i {
            4 | 7 => Some(b'-'),
            10 => Some(b'T'),
            13 | 16 => Some(b':'),
            19 => Some(b'.'),
            29 => Some(b'Z'),
            _ => None,
        };
        match expect {
            Some(e) => assert_eq!(*c, e, "{ts:?}"),
            None => assert!(c.is_ascii_digit(), "{ts:?}"),
        }
    }
    let t = berth_runtime_time(ts);
    assert!(t >= from && t <= to, "{ts} outside the run");
}

/// Parse the fixed format back (days from civil, Howard Hinnant).
fn berth_runtime_time(ts: &str) -> SystemTime {
    let n = |a: usize, b: usize| ts[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19);
    UNIX_EPOCH + Duration::new(secs as u64, n(20, 29) as u32)
}

#[test]
fn tail_timestamps_since_and_streams_apart() -> anyhow::Result<()> {
    let daemon = Berthd::start(&config())?;
    import_busybox(&daemon)?;
    let from = SystemTime::now();
    daemon.berth_ok(&[
        "run",
        "--name",
        "talk",
        "--network",
        "none",
        BUSYBOX,
        "sh",
        "-c",
        "seq 1 10; echo oops >&2; echo again >&2; printf tail-no-newline",
    ])?;
    let to = SystemTime::now();
    let (out, err) = logs(&daemon, &["talk"])?;
    assert_eq!(out, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\ntail-no-newline");
    assert_eq!(err, "oops\nagain\n");

    let (all_out, _) = logs(&daemon, &["--tail", "all", "talk"])?;
    assert!(all_out.starts_with("1\n"));
    // The last entries of the log, whichever streams they are on.
    for n in [2, 3] {
        let (out, err) = logs(&daemon, &["--tail", &n.to_string(), "talk"])?;
        assert_eq!(
            out.lines().count() + err.lines().count(),
            n,
            "{out:?} {err:?}"
        );
    }

    let (out, err) = logs(&daemon, &["-t", "talk"])?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 11, "{out}");
    for (i, l) in lines.iter().enumerate() {
        let (ts, text) = l.split_once(' ').unwrap();
        check_timestamp(ts, from, to);
        if i < 10 {
            assert_eq!(text, (i + 1).to_string());
        }
    }
    let (ts, text) = err.lines().next().unwrap().split_once(' ').unwrap();
    check_timestamp(ts, from, to);
    assert_eq!(text, "oops");

    // --since: an hour ago is everything, a time after the run nothing.
    let (out, _) = logs(&daemon, &["--since", "1h", "talk"])?;
    assert!(out.starts_with("1\n2\n"), "{out}");
    let later = to.duration_since(UNIX_EPOCH)?.as_secs() + 3600;
    let (out, err) = logs(&daemon, &["--since", &later.to_string(), "talk"])?;
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    let (out, _) = logs(&daemon, &["--until", "2000-01-01T00:00:00Z", "talk"])?;
    assert_eq!(out, "");

    for (args, expect) in [
        (
            vec!["--tail", "x"],
            "--tail \"x\": use a number of lines or \"all\"",
        ),
        (
            vec!["--since", "yesterday"],
            "--since \"yesterday\": use an RFC 3339 time",
        ),
        (vec!["--since=-5"], "--since -5: use a time after 1970"),
    ] {
        let mut all = vec!["logs"];
        all.extend(args);
        all.push("talk");
        let out = daemon.berth(&all)?;
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{err}");
    }
    daemon.berth_ok(&["rm", "talk"])?;
    Ok(())
}

#[test]
fn follow_streams_as_lines_come_and_ends_with_the_container() -> anyhow::Result<()> {
    let daemon = Berthd::start(&config())?;
    import_busybox(&daemon)?;
    // Two runs (one restart): follow goes on across the restart.
    daemon.berth_ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--network",
        "none",
        "--restart",
        "on-failure:1",
        BUSYBOX,
        "sh",
        "-c",
        "echo first; sleep 1; echo second >&2; sleep 1; exit 1",
    ])?;
    let mut follow = daemon
        .berth_command(&["logs", "-f", "slow"])?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut out = BufReader::new(follow.stdout.take().unwrap());
    let err = follow.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for l in BufReader::new(err).lines() {
            lines.push(l.unwrap());
        }
        lines
    });
    let mut line = String::new();
    out.read_line(&mut line)?;
    assert_eq!(line, "first\n");
    // It came while the container was still on its way to "second".
    let (_, err_so_far) = logs(&daemon, &["slow"])?;
    assert_eq!(err_so_far, "", "follow only gave its first line late");
    line.clear();
    out.read_line(&mut line)?;
    assert_eq!(line, "first\n", "the restarted run's first line");
    line.clear();
    // End of stream: the container is over after its one restart.
    assert_eq!(out.read_line(&mut line)?, 0, "{line:?}");
    let status = follow.wait()?;
    assert!(status.success());
    assert_eq!(err_reader.join().unwrap(), ["second", "second"]);
    let v = inspect(&daemon, "slow")?;
    assert_eq!(v["status"]["state"], "exited", "{v}");
    daemon.berth_ok(&["rm", "slow"])?;
    Ok(())
}

#[test]
fn rotation_keeps_max_file_files_and_reads_in_order() -> anyhow::Result<()> {
    let daemon = Berthd::start(&config())?;
    import_busybox(&daemon)?;
    daemon.berth_ok(&[
        "run",
        "--name",
        "chatty",
        "--network",
        "none",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        BUSYBOX,
        "seq",
        "1",
        "3000",
    ])?;
    let files = log_files(&daemon, "chatty");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["container.log", "container.log.1", "container.log.2"]
    );
    for (n, size) in &files {
        assert!(*size <= 2048, "{n} is {size} bytes");
    }
    let (out, _) = logs(&daemon, &["chatty"])?;
    let numbers: Vec<u32> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(numbers.last(), Some(&3000));
    assert!(
        numbers.len() > 50 && numbers.len() < 3000,
        "{}",
        numbers.len()
    );
    for w in numbers.windows(2) {
        assert_eq!(w[1], w[0] + 1, "out of order or a gap");
    }
    // --tail across files.
    let (out, _) = logs(&daemon, &["--tail", "3", "chatty"])?;
    assert_eq!(out, "2998\n2999\n3000\n");

    // The daemon's default from [containers]: 4k, 2 files.
    daemon.berth_ok(&[
        "run",
        "--name",
        "defaults",
        "--network",
        "none",
        BUSYBOX,
        "seq",
        "1",
        "3000",
    ])?;
    let files = log_files(&daemon, "defaults");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|(_, s)| *s <= 4096), "{files:?}");

    for (opt, expect) in [
        ("max-size=lots", "max-size is a size"),
        ("max-file=0", "max-file is a count of at least 1"),
        ("colour=blue", "berth knows max-size and max-file"),
    ] {
        let out = daemon.berth(&[
            "run",
            "--network",
            "none",
            "--log-opt",
            opt,
            BUSYBOX,
            "true",
        ])?;
        assert_eq!(out.status.code(), Some(125));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{err}");
    }
    daemon.berth_ok(&["rm", "chatty", "defaults"])?;
    Ok(())
}
