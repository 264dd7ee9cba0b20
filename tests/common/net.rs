//! The network side of a test: free loopback ports and clients with timeouts that write,
//! read until a pattern, read until the server closes, or check what the device received.
//! Only loopback addresses.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use modemd::sys::{self, Interest};
use socket2::{Domain, SockRef, Socket, Type};

use super::{Pty, PtyExt, WAIT};

/// A loopback port nobody listens on right now, below the kernel's ephemeral range
/// (32768 and up), so that no outgoing connection of a test running in parallel can take it
/// between now and the daemon's bind; each test process walks its own stretch of ports.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = (std::process::id() % 400) * 30;
    for _ in 0..12_000 {
        let port = 20_000 + ((start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000) as u16;
        if port_bindable(port) {
            return port;
        }
    }
    panic!("no free port in 20000-31999");
}

/// Whether 127.0.0.1:`port` can be bound, tried with a socket that is bound but never
/// listens. Not `TcpListener::bind`: a child that another test forks at that moment holds a
/// copy of the probe until its exec, and a listening copy would complete a client's connect
/// and then reset it, or keep the daemon from binding. A copy that only is bound refuses
/// connects, and with `SO_REUSEADDR` (std sets it on listeners too) does not stop the
/// daemon's bind and listen.
pub fn port_bindable(port: u16) -> bool {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    sock.set_reuse_address(true).expect("SO_REUSEADDR");
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .is_ok()
}

/// A client connection with read/write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.set_write_timeout(Some(WAIT)).expect("timeout");
    s
}

/// Connects from a chosen local address (e.g. 127.0.0.2), to test the ACL by source.
pub fn connect_from(local: &str, addr: SocketAddr) -> TcpStream {
    let local = SocketAddr::new(local.parse::<IpAddr>().expect("local addr"), 0);
    let sock = Socket::new(Domain::for_address(local), Type::STREAM, None).expect("socket");
    sock.bind(&local.into()).expect("bind source");
    sock.connect_timeout(&addr.into(), WAIT).expect("connect");
    let stream = TcpStream::from(sock);
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    stream
}

/// Starts a session: connects and waits until a first byte reaches the device, so the
/// device is open and bytes flow.
pub fn session(pty: &Pty, addr: SocketAddr) -> TcpStream {
    let mut c = connect(addr);
    assert_reaches(&mut c, pty, b"!", "first byte did not reach the device");
    c
}

/// Writes `data` on `c` and asserts that exactly that reaches the device within [`WAIT`];
/// `what` says what it means if not.
pub fn assert_reaches(c: &mut TcpStream, pty: &Pty, data: &[u8], what: &str) {
    c.write_all(data).expect("write");
    assert_eq!(pty.read_for(data.len(), WAIT), data, "{what}");
}

/// Connects to `addr` while its devices are all in use: the client must be told it is busy
/// and closed. `who` names the client in a failure; returns what it was told.
pub fn assert_busy(addr: SocketAddr, who: &str) -> Vec<u8> {
    let mut c = connect(addr);
    let got = read_to_close(&mut c, WAIT).unwrap_or_else(|| panic!("{who} not closed"));
    assert!(
        String::from_utf8_lossy(&got).contains("busy"),
        "{who} got {got:?}"
    );
    got
}

/// Sends an AT command as telnet would and returns what came back up to the final `OK`.
pub fn at(c: &mut TcpStream, cmd: &str) -> String {
    c.write_all(format!("{cmd}\r").as_bytes()).expect("write");
    String::from_utf8_lossy(&read_until(c, b"OK\r\n", WAIT)).into_owned()
}

/// Makes closing `s` send a reset instead of a FIN (`SO_LINGER` on, zero timeout).
pub fn reset_on_close(s: &TcpStream) {
    SockRef::from(s)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
}

/// Reads from `s` until `needle` appears in what was read or `timeout` passes.
pub fn read_until(s: &mut TcpStream, needle: &[u8], timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.windows(needle.len()).any(|w| w == needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// Whether the server has answered `s` in any way: sent data, closed it or reset it. Does not
/// wait and consumes nothing.
pub fn answered(s: &TcpStream) -> bool {
    sys::poll(&[(s.as_raw_fd(), Interest::Read)], Some(Duration::ZERO))
        .is_ok_and(|r| r[0].read || r[0].hangup)
}

/// Whether the server closed `s` (EOF or reset) within `timeout`, returning what it sent.
pub fn read_to_close(s: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return Some(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(_) => return Some(out),
        }
    }
}

/// Sends `data` on a clone of `s` from a thread (so a test can read at the same time).
pub fn send_in_background(s: &TcpStream, data: Vec<u8>) -> thread::JoinHandle<io::Result<()>> {
    let mut w = s.try_clone().expect("clone");
    thread::spawn(move || w.write_all(&data))
}

/// The states of the TCP sockets (IPv4 and IPv6) with `port` at either end, from
/// /proc/net/tcp{,6}: `0A` listening, `01` established, and so on.
pub fn tcp_states(port: u16) -> Vec<String> {
    let hex = format!(":{port:04X}");
    let mut states = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 3 && (f[1].ends_with(&hex) || f[2].ends_with(&hex)) {
                states.push(f[3].to_owned());
            }
        }
    }
    states
}

/// Whether something listens on `port` (any address), without connecting to it.
pub fn listening(port: u16) -> bool {
    tcp_states(port).iter().any(|s| s == "0A")
}

/// How many established connections have `port` at one end (both ends of a loopback
/// connection count).
pub fn established(port: u16) -> usize {
    tcp_states(port).iter().filter(|s| *s == "01").count()
}
