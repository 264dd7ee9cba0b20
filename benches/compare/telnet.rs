//! The RFC 2217 table's measurements: 1-byte round trips and bulk each way through a Telnet
//! client, against modemd's raw line (the same loops, with no escaping and no decoding), its
//! `rfc2217=on` line and ser2net's `telnet(rfc2217)` accepter.
//!
//! The client's Telnet is modemd's own pure decoder, `modemd::telnet`. Written for the server
//! side, it still answers a server's `WILL x` / `DO x` as a client must (`DO x` / `WILL x` for
//! BINARY, SGA and COM-PORT-OPTION, refusals for the rest, RFC 1143 so nothing loops); those
//! answers are sent back. It strips the server's negotiation and COM-PORT notifications from
//! the data and reads `IAC IAC` as one 0xFF; `escape` doubles the 0xFF of what the client
//! sends. The bulk data is random, so 0xFF is 1/256 of it; every byte is checked.
//!
//! Every wait is bounded; a failure is returned as text and reported, it does not end the run.

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::thread;
use std::time::{Duration, Instant};

use modemd::telnet::{Command, Decoder, escape};

use crate::device::{self, Device, Flow};
use crate::measure::{self, Bulk, Latency, STEP};
use crate::servers::Server;

/// Data bytes per write of the bulk sender (escaped, up to twice as many go out).
const CHUNK: usize = 16 * 1024;

/// One client session; Telnet if the server speaks it.
struct Client {
    sock: TcpStream,
    decoder: Option<Decoder>,
    replies: Vec<u8>,
    commands: Vec<Command>,
}

impl Client {
    fn connect(server: &Server) -> Result<Client, String> {
        Ok(Client {
            sock: measure::client(server.addrs()[0])?,
            decoder: server.kind.telnet().then(Decoder::new),
            replies: Vec::new(),
            commands: Vec::new(),
        })
    }

    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Decodes what was read into `buf[..n]` in place and returns the data byte count;
    /// negotiation answers go back to the server at once, commands are dropped.
    fn decode(&mut self, buf: &mut [u8], n: usize) -> io::Result<usize> {
        let Some(d) = self.decoder.as_mut() else {
            return Ok(n);
        };
        let data = d.decode(buf, n, &mut self.replies, &mut self.commands);
        self.commands.clear();
        if !self.replies.is_empty() {
            let r = device::write_all_by(self.fd(), &self.replies, Instant::now() + STEP);
            self.replies.clear();
            r?;
        }
        Ok(data)
    }

    /// Reads until at least one data byte arrived (negotiation alone does not count), into
    /// the front of `buf`; the socket may block (with its read timeout) or not.
    fn read_data(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        loop {
            match device::read_fd(self.fd(), buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    let data = self.decode(buf, n)?;
                    if data > 0 {
                        return Ok(data);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"));
                    }
                    device::poll1(
                        self.fd(),
                        libc::POLLIN,
                        left.min(Duration::from_millis(100)),
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// 1-byte round trips (never 0xFF) on one session, `iters` after `warmup` untimed ones (the
/// first of which also sees the server's negotiation through), or fewer if `cap` runs out;
/// every echo is checked.
pub fn latency(
    server: &Server,
    dev: &Device,
    warmup: usize,
    iters: usize,
    cap: Duration,
) -> Result<Latency, String> {
    let mut c = Client::connect(server)?;
    let mut buf = [0u8; 256];
    let mut times = Vec::with_capacity(iters);
    let started = Instant::now();
    for i in 0..warmup + iters {
        if i > warmup && started.elapsed() > cap {
            break;
        }
        let b = (i % 251) as u8;
        let t = Instant::now();
        device::write_all_by(c.fd(), &[b], t + STEP).map_err(|e| format!("write: {e}"))?;
        let n = c
            .read_data(&mut buf, t + STEP)
            .map_err(|e| format!("read after {i} round trips: {e}"))?;
        let dt = t.elapsed();
        if n != 1 || buf[0] != b {
            return Err(format!("echo mismatch after {i} round trips"));
        }
        if i >= warmup {
            times.push(dt.as_secs_f64() * 1e6);
        }
    }
    drop(c);
    measure::release(server, dev)?;
    Ok(Latency::of(times))
}

/// Client→device, then device→client, each `data.len()` bytes (or what moves within `cap`),
/// every byte checked, the server's CPU time read around each run.
pub fn bulk(
    server: &Server,
    dev: &Device,
    data: &[u8],
    cap: Duration,
) -> Result<[Bulk; 2], String> {
    let mut c = Client::connect(server)?;
    c.sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    let master = dev.master();
    // The session is up (device open, negotiation read and answered) once a byte went each way.
    let t = Instant::now() + STEP;
    let mut b = [0u8; 64];
    device::write_all_by(c.fd(), b"!", t).map_err(|e| format!("probe: {e}"))?;
    device::read_exact_by(master, &mut b[..1], t).map_err(|e| format!("probe: {e}"))?;
    device::write_all_by(master, b"?", t).map_err(|e| format!("probe: {e}"))?;
    let n = c.read_data(&mut b, t).map_err(|e| format!("probe: {e}"))?;
    if n != 1 || b[0] != b'?' {
        return Err("probe: mismatch".into());
    }
    let mut out = Vec::new();
    for up in [true, false] {
        let cpu0 = server.cpu_ns();
        let start = Instant::now();
        let deadline = start + cap;
        let hard = deadline + Duration::from_secs(10);
        let flow = Flow::default();
        let (sent, got) = thread::scope(|sc| {
            if up {
                let (fd, telnet, flow) = (c.fd(), c.decoder.is_some(), &flow);
                let s = sc.spawn(move || send(fd, telnet, data, deadline, hard, flow));
                let r = device::recv_stream(master, data, flow, hard);
                (s.join().expect("sender"), r)
            } else {
                let s = sc.spawn(|| device::send_stream(master, data, deadline, &flow));
                let r = recv(&mut c, data, &flow, hard);
                (s.join().expect("sender"), r)
            }
        });
        let cpu = server.cpu_ns() - cpu0;
        sent.map_err(|e| format!("bulk send: {e}"))?;
        let (bytes, last) = got.map_err(|e| format!("bulk: {e}"))?;
        let mib = bytes as f64 / f64::from(1 << 20);
        out.push(Bulk {
            mib_s: mib / (last - start).as_secs_f64(),
            cpu_us_per_mib: cpu as f64 / 1e3 / mib,
            capped: bytes < data.len(),
        });
    }
    drop(c);
    measure::release(server, dev)?;
    Ok([out[0], out[1]])
}

/// The client's sender: `data` in chunks, 0xFF doubled if `telnet`, until all is sent or
/// `deadline` passes (a chunk begun is finished, by `hard`); `flow` counts data bytes.
fn send(
    fd: RawFd,
    telnet: bool,
    data: &[u8],
    deadline: Instant,
    hard: Instant,
    flow: &Flow,
) -> io::Result<()> {
    let mut buf = vec![0u8; 2 * CHUNK];
    let mut sent = 0;
    let result = (|| {
        while sent < data.len() && Instant::now() < deadline {
            let end = (sent + CHUNK).min(data.len());
            let n = end - sent;
            buf[..n].copy_from_slice(&data[sent..end]);
            let wire = if telnet { escape(&mut buf, n) } else { n };
            device::write_all_by(fd, &buf[..wire], hard)?;
            sent = end;
            flow.set_sent(sent);
        }
        Ok(())
    })();
    flow.set_done();
    result
}

/// The client's receiver: what the device's [`device::send_stream`] sends, decoded and
/// checked against `data`, until the sender is done and all it sent arrived (or `hard`).
/// Returns the data byte count and when the last one came.
fn recv(c: &mut Client, data: &[u8], flow: &Flow, hard: Instant) -> io::Result<(usize, Instant)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    let mut last = Instant::now();
    loop {
        if flow.is_done() && got >= flow.sent() {
            return Ok((got, last));
        }
        match device::read_fd(c.fd(), &mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                let n = c.decode(&mut buf, n)?;
                if got + n > data.len() || buf[..n] != data[got..got + n] {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("stream corrupted at byte {got}"),
                    ));
                }
                got += n;
                if n > 0 {
                    last = Instant::now();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let now = Instant::now();
                if now >= hard {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("stream timed out after {got} bytes"),
                    ));
                }
                device::poll1(
                    c.fd(),
                    libc::POLLIN,
                    (hard - now).min(Duration::from_millis(20)),
                );
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
