//! The measurements, each against one running server: round trips, bulk transfer with CPU
//! cost, connect latency, memory with sessions open, many ports at once, and quick
//! reconnects to a lagging device.
//!
//! Every wait is bounded; a failure is returned as text and reported, it does not end the run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::lagging::Lagging;
use crate::common::wait_until;
use crate::device::{self, Device, Echo, Flow};
use crate::procs::Mem;
use crate::servers::Server;

/// Bound on any single network wait.
pub const STEP: Duration = Duration::from_secs(3);

pub fn client(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, STEP).map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(STEP)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(STEP)).map_err(|e| e.to_string())?;
    Ok(s)
}

pub fn release(server: &Server, dev: &Device) -> Result<(), String> {
    if server.wait_released(dev, STEP) {
        Ok(())
    } else {
        Err(format!(
            "{} still holds {}",
            server.kind.name(),
            dev.path().display()
        ))
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Round-trip latency percentiles, µs.
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub samples: usize,
}

impl Latency {
    /// The percentiles of round trips `times` (µs, in any order).
    pub fn of(mut times: Vec<f64>) -> Latency {
        times.sort_by(f64::total_cmp);
        Latency {
            p50: percentile(&times, 0.5),
            p99: percentile(&times, 0.99),
            p999: percentile(&times, 0.999),
            samples: times.len(),
        }
    }
}

/// `iters` round trips of `size` bytes after `warmup` untimed ones, or fewer if `cap` runs
/// out (slow servers); every echo is checked.
pub fn round_trips(
    s: &mut TcpStream,
    size: usize,
    warmup: usize,
    iters: usize,
    cap: Duration,
) -> Result<Latency, String> {
    let mut msg = vec![0u8; size];
    let mut back = vec![0u8; size];
    let mut times = Vec::with_capacity(iters);
    let started = Instant::now();
    for i in 0..warmup + iters {
        if i > warmup && started.elapsed() > cap {
            break;
        }
        for (k, b) in msg.iter_mut().enumerate() {
            *b = ((i + k) % 251) as u8;
        }
        let t = Instant::now();
        s.write_all(&msg).map_err(|e| format!("write: {e}"))?;
        s.read_exact(&mut back)
            .map_err(|e| format!("read after {i} round trips: {e}"))?;
        let dt = t.elapsed();
        if back != msg {
            return Err("echo mismatch".into());
        }
        if i >= warmup {
            times.push(dt.as_secs_f64() * 1e6);
        }
    }
    Ok(Latency::of(times))
}

/// 1-byte and 64-byte round trips on one session of the server's first port.
pub fn latency(
    server: &Server,
    dev: &Device,
    warmup: usize,
    iters: usize,
    cap: Duration,
) -> Result<[Latency; 2], String> {
    let mut s = client(server.addrs()[0])?;
    let one = round_trips(&mut s, 1, warmup, iters, cap)?;
    let big = round_trips(&mut s, 64, warmup / 4, iters, cap)?;
    drop(s);
    release(server, dev)?;
    Ok([one, big])
}

/// One bulk run: MiB/s, server CPU µs per MiB moved, whether the time cap cut it short.
#[derive(Clone, Copy)]
pub struct Bulk {
    pub mib_s: f64,
    pub cpu_us_per_mib: f64,
    pub capped: bool,
}

/// Client→device, device→client, then both at once, each `data.len()` bytes (or what moves
/// within `cap`), every byte checked; the server's CPU time is read around each run.
pub fn bulk(
    server: &Server,
    dev: &Device,
    data: &[u8],
    cap: Duration,
) -> Result<[Bulk; 3], String> {
    let s = client(server.addrs()[0])?;
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    let (sock, master) = (s.as_raw_fd(), dev.master());
    // The session is up (device open) once a byte went each way.
    let t = Instant::now() + STEP;
    let mut b = [0u8; 1];
    device::write_all_by(sock, b"!", t).map_err(|e| format!("probe: {e}"))?;
    device::read_exact_by(master, &mut b, t).map_err(|e| format!("probe: {e}"))?;
    device::write_all_by(master, b"?", t).map_err(|e| format!("probe: {e}"))?;
    device::read_exact_by(sock, &mut b, t).map_err(|e| format!("probe: {e}"))?;
    let mut out = Vec::new();
    for (up, down) in [(true, false), (false, true), (true, true)] {
        let cpu0 = server.cpu_ns();
        let start = Instant::now();
        let deadline = start + cap;
        let hard = deadline + Duration::from_secs(10);
        let (f_up, f_down) = (Flow::default(), Flow::default());
        let (r_up, r_down) = thread::scope(|sc| {
            let ru = up.then(|| {
                sc.spawn(|| device::send_stream(sock, data, deadline, &f_up));
                sc.spawn(|| device::recv_stream(master, data, &f_up, hard))
            });
            let rd = down.then(|| {
                sc.spawn(|| device::send_stream(master, data, deadline, &f_down));
                sc.spawn(|| device::recv_stream(sock, data, &f_down, hard))
            });
            let join = |h: Option<thread::ScopedJoinHandle<'_, _>>| {
                h.map(|h| h.join().expect("stream thread"))
            };
            (join(ru), join(rd))
        });
        let cpu = server.cpu_ns() - cpu0;
        let mut bytes = 0;
        let mut end = start;
        for r in [r_up, r_down].into_iter().flatten() {
            let (n, last) = r.map_err(|e| format!("bulk: {e}"))?;
            bytes += n;
            end = end.max(last);
        }
        let mib = bytes as f64 / f64::from(1 << 20);
        out.push(Bulk {
            mib_s: mib / (end - start).as_secs_f64(),
            cpu_us_per_mib: cpu as f64 / 1e3 / mib,
            capped: bytes < data.len() * (usize::from(up) + usize::from(down)),
        });
    }
    drop(s);
    release(server, dev)?;
    Ok([out[0], out[1], out[2]])
}

/// Connect → first echoed byte, µs: p50, p99, and how many attempts failed (busy, timeout).
/// After each client the server must have closed the device before the next connects.
pub fn connects(server: &Server, dev: &Device, n: usize) -> Result<(f64, f64, usize), String> {
    let addr = server.addrs()[0];
    let mut times = Vec::with_capacity(n);
    let mut failed = 0;
    release(server, dev)?;
    for i in 0..n {
        let b = [(i % 251) as u8];
        let t = Instant::now();
        let ok = (|| {
            let mut s = TcpStream::connect_timeout(&addr, STEP).ok()?;
            s.set_nodelay(true).ok()?;
            s.set_read_timeout(Some(STEP)).ok()?;
            s.write_all(&b).ok()?;
            let mut back = [0u8; 1];
            s.read_exact(&mut back).ok()?;
            (back == b).then(|| t.elapsed())
        })();
        match ok {
            Some(dt) => times.push(dt.as_secs_f64() * 1e6),
            None => failed += 1,
        }
        release(server, dev)?;
        if failed > n / 10 + 2 {
            return Err(format!("{failed} of {} connects failed", i + 1));
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((percentile(&times, 0.5), percentile(&times, 0.99), failed))
}

/// Memory of the server with one session per address: once every session echoed
/// `sizes[0]` bytes, then after each further size (16 KiB fills the 16 KiB buffers); then
/// closes them all.
pub fn sessions_memory(
    server: &Server,
    devices: &[&Device],
    addrs: &[SocketAddr],
    sizes: &[usize],
) -> Result<Vec<Mem>, String> {
    let mut open = Vec::new();
    for &a in addrs {
        open.push(client(a)?);
    }
    let mut out = Vec::new();
    for &size in sizes {
        let chunk: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let mut back = vec![0u8; size];
        for s in &mut open {
            s.write_all(&chunk).map_err(|e| format!("write: {e}"))?;
            s.read_exact(&mut back).map_err(|e| format!("echo: {e}"))?;
            if back != chunk {
                return Err("echo mismatch".into());
            }
        }
        thread::sleep(Duration::from_millis(20));
        out.push(server.memory());
    }
    drop(open);
    for d in devices {
        release(server, d)?;
    }
    Ok(out)
}

/// Many ports, one client each keeping one byte in flight: aggregate round trips per second
/// over `time` (after `warmup`), the server's memory with all sessions open, and how many
/// clients could not get a session.
pub fn many(
    server: &Server,
    warmup: Duration,
    time: Duration,
) -> Result<(f64, Mem, usize), String> {
    let mut socks = Vec::new();
    let mut failed = 0;
    for a in server.addrs() {
        let ok = (|| {
            let mut s = client(a).ok()?;
            s.write_all(&[0]).ok()?;
            let mut b = [9u8];
            s.read_exact(&mut b).ok()?;
            (b[0] == 0).then_some(s)
        })();
        match ok {
            Some(s) => socks.push(s),
            None => failed += 1,
        }
    }
    if socks.is_empty() {
        return Err("no session".into());
    }
    let mut fds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut next = vec![1u8; socks.len()];
    for s in &socks {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        device::write_fd(s.as_raw_fd(), &[1]).map_err(|e| e.to_string())?;
    }
    let from = Instant::now() + warmup;
    let until = from + time;
    let mut count = 0u64;
    let mut buf = [0u8; 64];
    while Instant::now() < until {
        if !device::poll_all(&mut fds, Duration::from_millis(100)) {
            continue;
        }
        let counting = Instant::now() >= from;
        for (i, p) in fds.iter().enumerate() {
            if p.revents == 0 {
                continue;
            }
            let n = device::read_fd(p.fd, &mut buf).map_err(|e| format!("port {i}: {e}"))?;
            if n == 0 {
                return Err(format!("port {i}: closed"));
            }
            for &b in &buf[..n] {
                if b != next[i] {
                    return Err(format!("port {i}: echo mismatch"));
                }
                next[i] = ((u32::from(next[i]) + 1) % 251) as u8;
                if counting {
                    count += 1;
                }
            }
            device::write_fd(p.fd, &[next[i]]).map_err(|e| format!("port {i}: {e}"))?;
        }
    }
    let m = server.memory();
    Ok((count as f64 / time.as_secs_f64(), m, failed))
}

/// What the clients of [`reconnects`] saw, summed over the cycles (and over rounds, by
/// [`Reconnects::add`]).
#[derive(Clone, Default)]
pub struct Reconnects {
    pub cycles: usize,
    /// Bytes of an earlier client's pattern that reached a later client, and in how many
    /// cycles any did.
    pub stale_bytes: usize,
    pub stale_cycles: usize,
    /// Second clients that read a line containing `busy`.
    pub busy: usize,
    /// Second clients closed, refused or left waiting without their bytes echoed.
    pub unserved: usize,
    /// Connect → all of the second client's bytes at the device, ms, for the served ones.
    pub times_ms: Vec<f64>,
    /// The first text an unserved client read (a refusal line), if any did.
    pub refusal: Option<String>,
}

impl Reconnects {
    pub fn add(&mut self, other: Reconnects) {
        self.cycles += other.cycles;
        self.stale_bytes += other.stale_bytes;
        self.stale_cycles += other.stale_cycles;
        self.busy += other.busy;
        self.unserved += other.unserved;
        self.times_ms.extend(other.times_ms);
        self.refusal = self.refusal.take().or(other.refusal);
    }
}

/// Bytes each client sends: a modem command's worth.
const PATTERN: usize = 64;

/// How long the second client of a cycle reads at most: a 500 ms hold, the device's lag and
/// plenty to spare.
const RECONNECT_READ: Duration = Duration::from_secs(2);

/// The byte every client of a run sends, 64 times: unique per client for up to 64 cycles,
/// and at or above 0x80, so that no refusal text is ever taken for a client's data.
fn pattern_byte(cycle: usize, second: bool) -> u8 {
    0x80 | ((2 * cycle + usize::from(second)) % 128) as u8
}

/// Quick reconnects on a device that echoes `lag` late: per cycle, one client connects,
/// sends its 64 bytes and, once they reached the device, closes at once without reading; the
/// next connects at once, sends its own 64 bytes and reads until their echo is back (or it is
/// closed, or 2 s pass). Before the next cycle the server must have let the device go and the
/// device said all it had.
pub fn reconnects(
    server: &Server,
    dev: &Device,
    cycles: usize,
    lag: Duration,
) -> Result<Reconnects, String> {
    let device = Lagging::start(dev.master_fd(), lag);
    let addr = server.addrs()[0];
    let mut r = Reconnects::default();
    release(server, dev)?;
    for cycle in 0..cycles.min(64) {
        let mut first = client(addr)?;
        let mine = pattern_byte(cycle, false);
        first
            .write_all(&[mine; PATTERN])
            .map_err(|e| format!("first client: {e}"))?;
        // Its session must have begun: a client that leaves before the server even opened
        // the device leaves nothing behind, and the race of two clients to the device within
        // microseconds is not what this measures.
        if !wait_until(STEP, || device.heard(mine).count >= PATTERN) {
            return Err(format!(
                "cycle {cycle}: the first client's bytes never reached the device"
            ));
        }
        drop(first);
        let own = pattern_byte(cycle, true);
        let start = Instant::now();
        let got = reconnect(addr, own, start + RECONNECT_READ);
        r.cycles += 1;
        let stale = got.iter().filter(|&&b| b >= 0x80 && b != own).count();
        r.stale_bytes += stale;
        r.stale_cycles += usize::from(stale > 0);
        let text: Vec<u8> = got.iter().copied().filter(|&b| b < 0x80).collect();
        let text = String::from_utf8_lossy(&text).trim().to_owned();
        if got.iter().filter(|&&b| b == own).count() >= PATTERN {
            let heard = device.heard(own);
            if let Some(last) = heard.last.filter(|_| heard.count >= PATTERN) {
                r.times_ms.push((last - start).as_secs_f64() * 1e3);
            }
        } else {
            r.unserved += 1;
            if r.refusal.is_none() && !text.is_empty() {
                r.refusal = Some(text.clone());
            }
        }
        r.busy += usize::from(text.to_ascii_lowercase().contains("busy"));
        release(server, dev)?;
        // Whatever the device still had to say is said before the next cycle starts.
        thread::sleep(lag + Duration::from_millis(10));
    }
    Ok(r)
}

/// The second client of a cycle: connects, sends 64 `own` bytes, and returns everything it
/// read until their echo was back, the server closed, or `deadline`.
fn reconnect(addr: SocketAddr, own: u8, deadline: Instant) -> Vec<u8> {
    let mut got = Vec::new();
    let Ok(mut s) = client(addr) else {
        return got;
    };
    if s.write_all(&[own; PATTERN]).is_err() {
        return got;
    }
    let mut buf = [0u8; 1024];
    while got.iter().filter(|&&b| b == own).count() < PATTERN {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// Keeps an echo running on `devices` while `f` runs.
pub fn with_echo<T>(devices: &[&Device], f: impl FnOnce() -> T) -> T {
    let _echo = Echo::start(devices);
    f()
}
