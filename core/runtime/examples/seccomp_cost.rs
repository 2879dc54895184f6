//! What the default seccomp profile costs: the time to compile it to BPF,
//! and the time one system call takes before and after the filter is
//! loaded (in a forked child, with no_new_privs, so this process stays
//! unfiltered and no root is needed). Each figure is the best of nine
//! rounds: the machine may be shared.
//!
//!   cargo run --release -p berth-runtime --example seccomp_cost [calls]
//!
//! The calls timed fail fast in the kernel (a bad file descriptor), so the
//! filter's share of their cost shows: `read` (syscall 0 on x86_64, first
//! in any table), `getppid` (110) and `epoll_pwait2` (441, near the end).

use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Nanoseconds per call of `nr` with harmless failing arguments.
fn per_call(nr: libc::c_long, calls: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        // SAFETY: every timed call gets fd -1 and null pointers, so the
        // kernel fails it (EBADF/EFAULT) without touching our memory.
        unsafe {
            libc::syscall(nr, -1, 0, 0, 0, 0, 0);
        }
    }
    start.elapsed().as_nanos() as f64 / f64::from(calls)
}

fn time_calls(label: &str, calls: u32) {
    let mut line = format!("{label:<22}");
    for (name, nr) in [
        ("read", libc::SYS_read),
        ("getppid", libc::SYS_getppid),
        ("epoll_pwait2", libc::SYS_epoll_pwait2),
    ] {
        let best = (0..9)
            .map(|_| per_call(nr, calls))
            .fold(f64::INFINITY, f64::min);
        line.push_str(&format!("  {name} {best:>6.1} ns"));
    }
    println!("{line}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let calls: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);

    let caps = berth_runtime::DEFAULT_CAPABILITIES
        .iter()
        .map(|c| berth_runtime::parse_capability(c))
        .collect::<Result<_, _>>()?;
    let profile = berth_runtime::seccomp::default_profile(&caps);
    let mut times = Vec::new();
    let mut programs = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        programs = berth_runtime::seccomp::compile(&profile)?;
        times.push(start.elapsed());
    }
    let instructions: usize = programs.iter().map(Vec::len).sum();
    println!(
        "compile default profile: median {:?} over 200 runs; {} program(s), {instructions} BPF instructions",
        median(times),
        programs.len()
    );

    // SAFETY: the child only makes system calls and prints before _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if pid == 0 {
        time_calls("no filter", calls);
        // SAFETY: a plain prctl.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        for prog in &programs {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr().cast_mut().cast(),
            };
            // SAFETY: `fprog` points at a live program for the call.
            let rc = unsafe {
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &fprog as *const libc::sock_fprog as libc::c_ulong,
                    0,
                    0,
                )
            };
            if rc != 0 {
                eprintln!("loading the filter: {}", std::io::Error::last_os_error());
                // SAFETY: ends the child without running the parent's exit handlers.
                unsafe { libc::_exit(1) };
            }
        }
        time_calls("default profile", calls);
        // SAFETY: as above.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    Ok(())
}
