//! `top`: what `ps -ef` shows of a set of processes (a container's cgroup
//! members), read from `/proc/PID/{stat,status,cmdline}` — Docker's
//! columns `UID PID PPID C STIME TTY TIME CMD`.

use std::path::Path;

use crate::error::{RuntimeError, io_err};

/// `docker top`'s column titles.
pub const TOP_TITLES: [&str; 8] = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"];

/// One row, each column as `ps -ef` prints it.
pub type TopRow = [String; 8];

/// The rows for `pids` (host pids) that share the PID namespace of
/// `init`, sorted by pid; processes that ended meanwhile are left out.
/// (A process put into the cgroup from outside the PID namespace, by hand
/// or by another tool, is not the container's.)
pub fn top(pids: &[i32], init: i32) -> Result<Vec<TopRow>, RuntimeError> {
    let pid_ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let init_ns = pid_ns(init);
    let proc_stat =
        std::fs::read_to_string("/proc/stat").map_err(io_err("reading", "/proc/stat"))?;
    let boot: u64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a constant.
    let ticks = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        t if t > 0 => t as u64,
        _ => 100,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let users = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let mut sorted = pids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut rows = Vec::new();
    for pid in sorted {
        if init_ns.is_some() && pid_ns(pid) != init_ns {
            continue;
        }
        if let Some(row) = row(pid, boot, ticks, now, &users) {
            rows.push(row);
        }
    }
    Ok(rows)
}

fn row(pid: i32, boot: u64, ticks: u64, now: u64, users: &str) -> Option<TopRow> {
    let dir = Path::new("/proc").join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
    // The command name may hold spaces and parentheses: the fields start
    // after the last ')'.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(').map_or("", |(_, c)| c);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ppid = field(4);
    let tty = field(7);
    let cpu_ticks = field(14) + field(15);
    let start = boot + field(22) / ticks;
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let elapsed = now.saturating_sub(start).max(1);
    let c = (cpu_ticks / ticks) * 100 / elapsed;
    let cmd = if cmdline.is_empty() {
        format!("[{comm}]")
    } else {
        String::from_utf8_lossy(cmdline.strip_suffix(&[0]).unwrap_or(&cmdline)).replace('\0', " ")
    };
    Some([
        user_name(users, uid),
        pid.to_string(),
        ppid.to_string(),
        c.to_string(),
        stime(start, now),
        tty_name(tty),
        cpu_time(cpu_ticks / ticks),
        cmd,
    ])
}

/// The host's name for `uid`, as `ps` on the host prints it.
fn user_name(passwd: &str, uid: u32) -> String {
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// `ps`'s STIME: `HH:MM` today, `MonDD` before.
fn stime(start: u64, now: u64) -> String {
    if now / 86_400 == start / 86_400 {
        let s = start % 86_400;
        return format!("{:02}:{:02}", s / 3600, s % 3600 / 60);
    }
    // Days since the epoch to a month and day (Howard Hinnant's civil_from_days).
    let z = (start / 86_400) as i64 + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let name = MONTHS.get((month - 1) as usize).copied().unwrap_or("?");
    format!("{name}{day:02}")
}

/// `pts/N` for a pseudo-terminal, `ttyN` for a console, `?` for none.
fn tty_name(tty_nr: u64) -> String {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        0 => "?".into(),
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        _ => "?".into(),
    }
}

/// `ps`'s TIME: `[DD-]HH:MM:SS`.
fn cpu_time(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn our_own_process() {
        let me = std::process::id() as i32;
        let rows = top(&[me], me).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], std::process::id().to_string());
        assert!(!rows[0][7].is_empty());
        assert!(top(&[i32::MAX], me).unwrap().is_empty());
    }

    #[test]
    fn formats() {
        assert_eq!(cpu_time(3661), "01:01:01");
        assert_eq!(cpu_time(90_061), "1-01:01:01");
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name(136 << 8 | 3), "pts/3");
        assert_eq!(stime(86_400 + 3600 * 5 + 60 * 7, 86_400 + 80_000), "05:07");
        assert_eq!(stime(0, 86_400 * 3), "Jan01");
        assert_eq!(user_name("root:x:0:0::/:/bin/sh\n", 0), "root");
        assert_eq!(user_name("", 42), "42");
    }
}
