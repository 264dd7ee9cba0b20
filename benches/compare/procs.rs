//! What `/proc` says about a server: its processes, their CPU time, memory, open devices and
//! listening sockets. Read-only; every reader tolerates a process that vanished meanwhile.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

/// The fields of `/proc/PID/stat` after the command name: state, ppid, pgrp, ...
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The live (not zombie) processes of process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            stat_fields(pid).is_some_and(|f| {
                f.len() > 2 && f[0] != "Z" && f[2].parse::<i32>().ok() == Some(pgid)
            })
        })
        .collect()
}

/// CPU time (user + system) of every thread of `pids`, in nanoseconds: the scheduler's
/// `sum_exec_runtime` from `/proc/PID/task/TID/schedstat`, exact to the nanosecond where
/// `utime`/`stime` count 10 ms ticks. Threads that exited are not counted: callers measure
/// across a window in which the server's threads all live.
pub fn cpu_ns(pids: &[i32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.filter_map(|e| e.ok()) {
            let s = fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            total += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// Resident and proportional set sizes, KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mem {
    pub rss_kib: u64,
    pub pss_kib: u64,
}

/// The sum of `Rss` and `Pss` of `smaps_rollup` over `pids`.
pub fn memory(pids: &[i32]) -> Mem {
    let mut m = Mem::default();
    for pid in pids {
        let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(key), Some(v)) = (words.next(), words.next()) else {
                continue;
            };
            let v: u64 = v.parse().unwrap_or(0);
            match key {
                "Rss:" => m.rss_kib += v,
                "Pss:" => m.pss_kib += v,
                _ => {}
            }
        }
    }
    m
}

/// Whether any of `pids` has `path` open.
pub fn holds(pids: &[i32], path: &Path) -> bool {
    pids.iter().any(|pid| {
        fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.filter_map(|e| e.ok())
                .any(|e| fs::read_link(e.path()).is_ok_and(|l| l == path))
        })
    })
}

/// The ports of `ports` that have a listening socket on 127.0.0.1 or any address.
pub fn listening(ports: &[u16]) -> HashSet<u16> {
    let wanted: HashSet<u16> = ports.iter().copied().collect();
    let mut found = HashSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 || f[3] != "0A" {
                continue;
            }
            let Some((addr, port)) = f[1].rsplit_once(':') else {
                continue;
            };
            let local = addr.chars().all(|c| c == '0')
                || addr == "0100007F"
                || addr == "0000000000000000FFFF00000100007F"
                || addr == "00000000000000000000000001000000";
            if let Ok(p) = u16::from_str_radix(port, 16) {
                if local && wanted.contains(&p) {
                    found.insert(p);
                }
            }
        }
    }
    found
}

/// The PID written in a UUCP lock file, if there is one.
pub fn lock_owner(lock: &Path) -> Option<i32> {
    fs::read_to_string(lock).ok()?.trim().parse().ok()
}
