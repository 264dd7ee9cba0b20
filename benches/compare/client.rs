//! Client mode's table: a program on the client host reaching a remote modem through a local
//! tty, end to end: LINK → client → TCP → a modemd line → the device PTY, where the bench
//! echoes or streams on the master. The clients: `modemd -l LINK socket://` and
//! `rfc2217://` (which connect when LINK is opened and disconnect at its last close), and
//! `socat PTY,link=LINK,raw,echo=0 TCP:…`, what people use today, connected from its start.
//!
//! The program side opens LINK `O_NOCTTY` (never a controlling tty), makes it raw with
//! `cfmakeraw` before any byte, and opens it once per measurement: opening is what connects
//! modemd's clients, so each measurement but the opens one starts timing after its first
//! echoed byte. CPU and memory are the client process's alone.
//!
//! Every wait is bounded; a failure is returned as text and reported, it does not end the run.

use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{TempDir, wait_until};
use crate::device::{self, Device, Flow};
use crate::measure::{self, Bulk, Latency, STEP};
use crate::procs;
use crate::servers::{self, Kind, Server, Tools};

/// How long a client may take to make LINK (and socat to connect).
const SETTLE: Duration = Duration::from_secs(10);

/// A running client of client mode's table, with LINK in a directory of its own; stopped on
/// drop.
pub struct TtyClient {
    pub kind: Kind,
    child: Child,
    link: PathBuf,
    _dir: TempDir,
}

impl TtyClient {
    /// Starts `kind` for the line `server` exports on `dev`, and waits until LINK is there
    /// (and, for socat, which connects at start, until the line has opened the device).
    pub fn start(
        kind: Kind,
        tools: &Tools,
        server: &Server,
        dev: &Device,
    ) -> Result<TtyClient, String> {
        let dir = TempDir::new("cmp-client");
        let link = dir.join("modem");
        let addr = server.addrs()[0];
        let mut c = match kind {
            Kind::ClientSocket | Kind::ClientRfc2217 => {
                let scheme = if kind == Kind::ClientRfc2217 {
                    "rfc2217"
                } else {
                    "socket"
                };
                let mut c = Command::new(&tools.modemd);
                c.arg("-l")
                    .arg(&link)
                    .arg("-n")
                    .arg(format!("{scheme}://{addr}"));
                c
            }
            Kind::ClientSocat => {
                let mut c = Command::new(tools.socat.as_ref().ok_or("no socat")?);
                c.arg(format!("PTY,link={},raw,echo=0", link.display()))
                    .arg(format!("TCP:{addr}"));
                c
            }
            k => return Err(format!("{} is no client", k.name())),
        };
        let log = File::create(dir.join("log")).map_err(|e| e.to_string())?;
        c.stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0);
        let child = c.spawn().map_err(|e| format!("{}: {e}", kind.name()))?;
        servers::track(child.id() as i32);
        let mut client = TtyClient {
            kind,
            child,
            link,
            _dir: dir,
        };
        let up = wait_until(SETTLE, || {
            let ready = fs::read_link(&client.link).is_ok()
                && (kind != Kind::ClientSocat || procs::holds(&server.pids(), dev.path()));
            ready || matches!(client.child.try_wait(), Ok(Some(_)))
        });
        if up && matches!(client.child.try_wait(), Ok(None)) {
            Ok(client)
        } else {
            let log = fs::read_to_string(client._dir.join("log")).unwrap_or_default();
            Err(format!(
                "{} did not start: {}",
                kind.name(),
                log.lines().rev().take(3).collect::<Vec<_>>().join(" / ")
            ))
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether it connects when LINK is opened and disconnects at its last close (modemd),
    /// rather than staying connected all along (socat).
    fn per_open(&self) -> bool {
        self.kind != Kind::ClientSocat
    }

    /// Scheduler run time of all of its threads, ns.
    pub fn cpu_ns(&self) -> u64 {
        procs::cpu_ns(&[self.pid()])
    }

    /// `VmRSS` and `VmHWM` now, KiB.
    pub fn memory(&self) -> (u64, u64) {
        let text = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Context switches of all of its threads so far: each time one slept and woke.
    pub fn switches(&self) -> u64 {
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return 0;
        };
        tasks
            .filter_map(|t| fs::read_to_string(t.ok()?.path().join("status")).ok())
            .flat_map(|s| {
                s.lines()
                    .filter_map(|l| {
                        let v = l
                            .strip_prefix("voluntary_ctxt_switches:")
                            .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))?;
                        v.trim().parse::<u64>().ok()
                    })
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    /// After a program closed LINK: modemd's clients disconnect and the line lets the
    /// device go, which the next open must find done; socat stays as it is.
    fn settle(&self, server: &Server, dev: &Device) -> Result<(), String> {
        if self.per_open() {
            measure::release(server, dev)
        } else {
            Ok(())
        }
    }
}

impl Drop for TtyClient {
    fn drop(&mut self) {
        let pid = self.pid();
        // SAFETY: kill takes no pointers; the pid is our child's, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        servers::untrack(pid);
    }
}

/// A program's hold on LINK: `O_RDWR | O_NOCTTY`, non-blocking so that every wait has a
/// bound, and raw (`cfmakeraw`) before any byte, as a terminal program sets a modem line.
struct Program(File);

impl Program {
    fn open(link: &Path) -> Result<Program, String> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(link)
            .map_err(|e| format!("open {}: {e}", link.display()))?;
        // SAFETY: termios is plain old data, filled in by tcgetattr before it is used.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and a valid termios for the whole of each call.
        let ok = unsafe {
            libc::tcgetattr(f.as_raw_fd(), &mut t) == 0 && {
                libc::cfmakeraw(&mut t);
                libc::tcsetattr(f.as_raw_fd(), libc::TCSANOW, &t) == 0
            }
        };
        if !ok {
            return Err(format!("raw: {}", std::io::Error::last_os_error()));
        }
        Ok(Program(f))
    }

    fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// One byte out and its echo back, within `STEP`.
    fn round_trip(&self, b: u8) -> Result<(), String> {
        let t = Instant::now() + STEP;
        device::write_all_by(self.fd(), &[b], t).map_err(|e| format!("write: {e}"))?;
        let mut back = [0u8];
        device::read_exact_by(self.fd(), &mut back, t).map_err(|e| format!("read: {e}"))?;
        if back[0] == b {
            Ok(())
        } else {
            Err("echo mismatch".into())
        }
    }
}

/// Opens LINK, and once the first byte came back runs `f` on it; then closes it and waits
/// until the client has let the line go, if it does.
fn with_program<T>(
    c: &TtyClient,
    server: &Server,
    dev: &Device,
    f: impl FnOnce(&Program) -> Result<T, String>,
) -> Result<T, String> {
    c.settle(server, dev)?;
    let p = Program::open(&c.link)?;
    let r = p.round_trip(b'!').and_then(|()| f(&p));
    drop(p);
    c.settle(server, dev)?;
    r
}

/// LINK open → first echoed byte, µs, `n` times: p50, p99 and how many failed. For modemd's
/// clients that is the connect (and for rfc2217 the COM-PORT agreement and settings) and the
/// line opening its device; socat is connected already, so for it just the byte. The device
/// echoes.
pub fn opens(
    c: &TtyClient,
    server: &Server,
    dev: &Device,
    n: usize,
) -> Result<(f64, f64, usize), String> {
    let mut times = Vec::with_capacity(n);
    let mut failed = 0;
    for i in 0..n {
        c.settle(server, dev)?;
        let t = Instant::now();
        match Program::open(&c.link).and_then(|p| p.round_trip((i % 251) as u8)) {
            Ok(()) => times.push(t.elapsed().as_secs_f64() * 1e6),
            Err(_) => failed += 1,
        }
        if failed > n / 10 + 2 {
            return Err(format!("{failed} of {} opens failed", i + 1));
        }
    }
    c.settle(server, dev)?;
    times.sort_by(f64::total_cmp);
    Ok((
        measure::percentile(&times, 0.5),
        measure::percentile(&times, 0.99),
        failed,
    ))
}

/// 1-byte round trips through LINK after `warmup` untimed ones, or fewer if `cap` runs out,
/// every echo checked; with the largest, to show a stall such as a 50 ms poll would make.
pub fn latency(
    c: &TtyClient,
    server: &Server,
    dev: &Device,
    warmup: usize,
    iters: usize,
    cap: Duration,
) -> Result<(Latency, f64), String> {
    with_program(c, server, dev, |p| {
        let mut times = Vec::with_capacity(iters);
        let started = Instant::now();
        for i in 0..warmup + iters {
            if i > warmup && started.elapsed() > cap {
                break;
            }
            let t = Instant::now();
            p.round_trip((i % 251) as u8)
                .map_err(|e| format!("after {i} round trips: {e}"))?;
            if i >= warmup {
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        let max = times.iter().copied().fold(0.0, f64::max);
        Ok((Latency::of(times), max))
    })
}

/// 1-byte round trips through LINK, `n`, each after a quiet gap of 0 to 50 ms, spread evenly
/// over the phases of a 50 ms timer (rfc2217's termios poll): p50 and the largest, µs. A
/// byte that waited for the timer would show here as up to 50 ms.
pub fn after_gaps(
    c: &TtyClient,
    server: &Server,
    dev: &Device,
    n: usize,
) -> Result<(f64, f64), String> {
    with_program(c, server, dev, |p| {
        let mut times = Vec::with_capacity(n);
        for i in 0..n {
            // A stride coprime to 50 000 µs visits the phases in a scattered order.
            thread::sleep(Duration::from_micros((i as u64 * 17_389) % 50_000));
            let t = Instant::now();
            p.round_trip((i % 251) as u8)
                .map_err(|e| format!("after {i} gaps: {e}"))?;
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(f64::total_cmp);
        Ok((measure::percentile(&times, 0.5), times[times.len() - 1]))
    })
}

/// What the client does while a program holds LINK open and nothing passes.
pub struct Idle {
    pub cpu_us_per_s: f64,
    pub wakeups_per_s: f64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Holds LINK open and quiet for `time` after one round trip: the client's CPU and wake-ups
/// over it, and its memory at the end.
pub fn idle(c: &TtyClient, server: &Server, dev: &Device, time: Duration) -> Result<Idle, String> {
    with_program(c, server, dev, |_| {
        // Whatever the round trip woke has gone back to sleep.
        thread::sleep(Duration::from_millis(20));
        let (cpu_us_per_s, wakeups_per_s) = quiet(c, time);
        let (rss_kib, hwm_kib) = c.memory();
        Ok(Idle {
            cpu_us_per_s,
            wakeups_per_s,
            rss_kib,
            hwm_kib,
        })
    })
}

/// The client's CPU, µs per second, and wake-ups per second over `time` from now.
pub fn quiet(c: &TtyClient, time: Duration) -> (f64, f64) {
    let (cpu0, sw0, t0) = (c.cpu_ns(), c.switches(), Instant::now());
    thread::sleep(time);
    let secs = t0.elapsed().as_secs_f64();
    (
        (c.cpu_ns() - cpu0) as f64 / 1e3 / secs,
        (c.switches() - sw0) as f64 / secs,
    )
}

/// Program→device then device→program through LINK, each `data.len()` bytes (or what moves
/// within `cap`), every byte checked, the client's CPU read around each; then its memory
/// (`VmRSS`, `VmHWM`), LINK still open. The device does not echo.
pub fn bulk(
    c: &TtyClient,
    server: &Server,
    dev: &Device,
    data: &[u8],
    cap: Duration,
) -> Result<([Bulk; 2], (u64, u64)), String> {
    let master = dev.master();
    // No echo here: the first byte of `with_program` is answered by hand.
    thread::scope(|sc| {
        let h = sc.spawn(|| {
            let t = Instant::now() + STEP;
            let mut b = [0u8];
            device::read_exact_by(master, &mut b, t)?;
            device::write_all_by(master, &b, t)
        });
        with_program(c, server, dev, |p| {
            h.join()
                .expect("probe thread")
                .map_err(|e| format!("probe: {e}"))?;
            let mut out = Vec::new();
            for up in [true, false] {
                out.push(one_way(c, p.fd(), master, up, data, cap)?);
            }
            Ok(([out[0], out[1]], c.memory()))
        })
    })
}

/// One bulk run, program→device if `up`, else device→program.
fn one_way(
    c: &TtyClient,
    program: RawFd,
    master: RawFd,
    up: bool,
    data: &[u8],
    cap: Duration,
) -> Result<Bulk, String> {
    let (from, to) = if up {
        (program, master)
    } else {
        (master, program)
    };
    let cpu0 = c.cpu_ns();
    let start = Instant::now();
    let deadline = start + cap;
    let hard = deadline + Duration::from_secs(10);
    let flow = Flow::default();
    let (sent, got) = thread::scope(|sc| {
        let s = sc.spawn(|| device::send_stream(from, data, deadline, &flow));
        let r = device::recv_stream(to, data, &flow, hard);
        (s.join().expect("sender"), r)
    });
    let cpu = c.cpu_ns() - cpu0;
    sent.map_err(|e| format!("bulk send: {e}"))?;
    let (bytes, last) = got.map_err(|e| format!("bulk: {e}"))?;
    let mib = bytes as f64 / f64::from(1 << 20);
    Ok(Bulk {
        mib_s: mib / (last - start).as_secs_f64(),
        cpu_us_per_mib: cpu as f64 / 1e3 / mib,
        capped: bytes < data.len(),
    })
}
