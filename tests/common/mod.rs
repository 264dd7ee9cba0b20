//! Shared helpers for the integration tests and the benchmark: real PTYs, the real binaries as
//! child processes, loopback clients, all with bounded waits.
//!
//! The binaries under test come from Cargo (`CARGO_BIN_EXE_*`) unless `MODEMD_BIN` /
//! `MODEM_SIM_BIN` name others; `MODEMD_LAUNCHER` (e.g. `qemu-mipsel-static -cpu 24Kc`) is put
//! in front of the daemon, so the same tests serve native and cross-built binaries.
#![allow(dead_code)]

use std::ffi::CStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The default bound on every wait.
pub const WAIT: Duration = Duration::from_secs(5);

/// The bound on a run of the binary from exec to work done (listening, or `-t` checked): under
/// an emulator on a loaded machine the start alone can take seconds.
pub const START: Duration = Duration::from_secs(20);

fn check(ret: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if ret == -1 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(ret)
    }
}

/// A pseudo-terminal: the test holds the master (the "modem" side), the daemon opens the slave.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: PathBuf,
}

impl Pty {
    /// A new PTY whose slave is raw (no echo, no line editing) and not open by anyone.
    pub fn new() -> Pty {
        // SAFETY: plain libc calls on a descriptor we own; ptsname_r writes into `buf` only.
        unsafe {
            let fd = check(
                libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC),
                "posix_openpt",
            )
            .expect("posix_openpt");
            let master = OwnedFd::from_raw_fd(fd);
            check(libc::grantpt(fd), "grantpt").expect("grantpt");
            check(libc::unlockpt(fd), "unlockpt").expect("unlockpt");
            let mut buf = [0 as libc::c_char; 128];
            assert_eq!(
                libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()),
                0,
                "ptsname_r"
            );
            let slave = PathBuf::from(CStr::from_ptr(buf.as_ptr()).to_str().expect("utf-8"));
            let pty = Pty { master, slave };
            pty.set_slave_raw();
            pty
        }
    }

    fn set_slave_raw(&self) {
        let s = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.slave)
            .expect("open pty slave");
        // SAFETY: termios is plain data; the calls only touch `t` and the open descriptor.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            check(libc::tcgetattr(s.as_raw_fd(), &mut t), "tcgetattr").expect("tcgetattr");
            libc::cfmakeraw(&mut t);
            check(
                libc::tcsetattr(s.as_raw_fd(), libc::TCSANOW, &t),
                "tcsetattr",
            )
            .expect("raw");
        }
    }

    fn poll(&self, events: libc::c_short, timeout: Duration) -> libc::c_short {
        let mut p = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `p` is one valid pollfd for the whole call.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r <= 0 { 0 } else { p.revents }
    }

    /// Whether the slave side is closed (nobody has the device open) within `timeout`.
    pub fn wait_hangup(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = self.poll(libc::POLLIN, left.min(Duration::from_millis(50)));
            if ev & libc::POLLHUP != 0 {
                return true;
            }
            if ev & libc::POLLIN != 0 {
                // Drain what the daemon wrote last so that only HUP remains.
                let mut buf = [0u8; 4096];
                let _ = self.read_some(&mut buf);
            }
            if left.is_zero() {
                return false;
            }
        }
    }

    /// Whether the device is open (the slave has an opener).
    pub fn slave_open(&self) -> bool {
        self.poll(0, Duration::ZERO) & libc::POLLHUP == 0
    }

    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is writable for its whole length.
        let n = unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Reads whatever arrives within `timeout` until `want` bytes came (or the time is up).
    pub fn read_for(&self, want: usize, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while out.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let ev = self.poll(libc::POLLIN, left);
            if ev & libc::POLLIN == 0 {
                if ev & libc::POLLHUP != 0 {
                    thread::sleep(Duration::from_millis(5));
                }
                continue;
            }
            match self.read_some(&mut buf[..(want - out.len()).min(64 * 1024)]) {
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
        out
    }

    /// Writes all of `data` to the master (what the modem says).
    pub fn write_all(&self, mut data: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !data.is_empty() {
            assert!(Instant::now() < deadline, "pty write stalled");
            // SAFETY: `data` is readable for its whole length.
            let n =
                unsafe { libc::write(self.master.as_raw_fd(), data.as_ptr().cast(), data.len()) };
            if n > 0 {
                data = &data[n as usize..];
            } else {
                self.poll(libc::POLLOUT, Duration::from_millis(100));
            }
        }
    }
}

/// A hand-made temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("modemd-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Names of the `LCK..*` files in the directory.
    pub fn locks(&self) -> Vec<String> {
        self.names_starting(&["LCK.."])
    }

    /// Every file a lock holder leaves in the lock directory: locks and modemd's lock
    /// template (`LTMP.<pid>`), for "leaves nothing behind".
    pub fn lock_files(&self) -> Vec<String> {
        self.names_starting(&["LCK..", "LTMP."])
    }

    fn names_starting(&self, prefixes: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.0)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl TempDir {
    /// Whether every lock file is gone within `timeout`.
    pub fn wait_unlocked(&self, timeout: Duration) -> bool {
        wait_until(timeout, || self.locks().is_empty())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Whether `done` becomes true within `timeout`, checking every millisecond.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

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
    // SAFETY: plain socket calls on a descriptor we own; the option value and address live
    // on the stack for the whole calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        let sock = OwnedFd::from_raw_fd(check(fd, "socket").expect("socket"));
        let one: libc::c_int = 1;
        check(
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ),
            "SO_REUSEADDR",
        )
        .expect("SO_REUSEADDR");
        let (sa, len) = sockaddr(SocketAddr::from(([127, 0, 0, 1], port)));
        libc::bind(
            sock.as_raw_fd(),
            (&sa as *const libc::sockaddr_storage).cast(),
            len,
        ) == 0
    }
}

/// A config line sharing `dev` on 127.0.0.1:`port` to 127.0.0.1 clients, at 115200 8N1.
pub fn config_line(port: u16, dev: &Path) -> String {
    format!(
        "127.0.0.1:{port} {} 115200,8,N,1 127.0.0.1\n",
        dev.display()
    )
}

/// The lock file name for a pty slave: Taylor cu's rule, `/dev/pts/3` → `LCK..3`.
pub fn lock_name(dev: &Path) -> String {
    let real = fs::canonicalize(dev).expect("canonicalize");
    format!("LCK..{}", real.file_name().expect("name").to_string_lossy())
}

fn bin(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The modemd binary under test.
pub fn modemd_bin() -> PathBuf {
    bin("MODEMD_BIN", env!("CARGO_BIN_EXE_modemd"))
}

/// Whether the daemon runs under an emulator (`MODEMD_LAUNCHER`): then its memory figures
/// are the emulator's, and only native runs check them.
pub fn emulated() -> bool {
    std::env::var("MODEMD_LAUNCHER").is_ok_and(|l| !l.trim().is_empty())
}

/// A program path that runs modemd when exec'd directly (by inetd or tcpd): the binary, or
/// under an emulator a small script in `dir` that runs it behind `MODEMD_LAUNCHER`.
pub fn modemd_program(dir: &Path) -> PathBuf {
    if !emulated() {
        return modemd_bin();
    }
    let launcher = std::env::var("MODEMD_LAUNCHER").unwrap_or_default();
    let script = dir.join("modemd");
    let text = format!(
        "#!/bin/sh\nexec {launcher} {} \"$@\"\n",
        modemd_bin().display()
    );
    fs::write(&script, text).expect("write launcher script");
    let mut perms = fs::metadata(&script).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(&script, perms).expect("chmod launcher script");
    script
}

/// A command running modemd (behind `MODEMD_LAUNCHER` if set).
pub fn modemd_command() -> Command {
    let launcher = std::env::var("MODEMD_LAUNCHER").unwrap_or_default();
    let mut words = launcher.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut c = Command::new(first);
            c.args(words).arg(modemd_bin());
            c
        }
        None => Command::new(modemd_bin()),
    }
}

/// Log lines a child wrote to stderr, collected by a thread.
#[derive(Clone, Default)]
pub struct LogLines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl LogLines {
    /// Collects the lines of `stream` (a child's stderr) from now on.
    pub fn of(stream: impl Read + Send + 'static) -> LogLines {
        let lines = LogLines::default();
        lines.clone().collect(stream);
        lines
    }

    fn collect(self, stream: impl Read + Send + 'static) -> thread::JoinHandle<()> {
        thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("MODEMD_TEST_VERBOSE").is_some() {
                    eprintln!("{line}");
                }
                let (m, c) = &*self.0;
                m.lock().unwrap().push(line);
                c.notify_all();
            }
        })
    }

    /// The first line containing `needle` that appears within `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (m, c) = &*self.0;
        let mut lines = m.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            lines = c.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// How many lines contain `needle` now.
    pub fn count(&self, needle: &str) -> usize {
        self.0
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn all(&self) -> String {
        self.0.0.lock().unwrap().join("\n")
    }
}

/// A running modemd child in the foreground (`-n`), killed on drop.
pub struct Daemon {
    pub child: Child,
    pub log: LogLines,
    pub dir: TempDir,
    pub config: PathBuf,
}

impl Daemon {
    /// Starts modemd on `config_text` with its lock directory in a fresh temp dir, and waits
    /// until every listener is up (one `listening on` line per pool).
    pub fn start(config_text: &str, extra: &[&str]) -> Daemon {
        let dir = TempDir::new("d");
        Self::start_in(dir, config_text, extra)
    }

    pub fn start_in(dir: TempDir, config_text: &str, extra: &[&str]) -> Daemon {
        let lock_dir = dir.path().to_owned();
        Self::start_full(dir, &lock_dir, config_text, extra, &[])
    }

    /// Like `start_in`, with locks in `lock_dir` (e.g. the system's, to meet `cu`).
    pub fn start_locking(
        dir: TempDir,
        lock_dir: &Path,
        config_text: &str,
        extra: &[&str],
    ) -> Daemon {
        Self::start_full(dir, lock_dir, config_text, extra, &[])
    }

    /// Everything: lock directory, extra arguments and environment of the daemon.
    pub fn start_full(
        dir: TempDir,
        lock_dir: &Path,
        config_text: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let config = dir.join("modemd.conf");
        fs::write(&config, config_text).expect("write config");
        let mut child = modemd_command()
            .arg("-n")
            .arg("-c")
            .arg(&config)
            .arg("-L")
            .arg(lock_dir)
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn modemd");
        let log = LogLines::default();
        log.clone().collect(child.stderr.take().expect("stderr"));
        let d = Daemon {
            child,
            log,
            dir,
            config,
        };
        let pools = {
            let mut seen = Vec::new();
            for l in config_text.lines() {
                let l = l.split('#').next().unwrap_or("");
                if let Some(first) = l.split_whitespace().next() {
                    if !seen.contains(&first) {
                        seen.push(first);
                    }
                }
            }
            seen.len()
        };
        let deadline = Instant::now() + START;
        while d.log.count("listening on") < pools {
            assert!(
                Instant::now() < deadline,
                "modemd did not start:\n{}",
                d.log.all()
            );
            thread::sleep(Duration::from_millis(10));
        }
        d
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the child to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Number of threads of the daemon (from /proc).
    pub fn threads(&self) -> usize {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("Threads line")
    }

    /// Number of open descriptors of the daemon.
    pub fn fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("fd dir")
            .count()
    }

    /// VmRSS in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client connection with read/write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.set_write_timeout(Some(WAIT)).expect("timeout");
    s
}

/// Starts a session: connects and waits until a first byte reaches the device, so the
/// device is open and bytes flow.
pub fn session(pty: &Pty, addr: SocketAddr) -> TcpStream {
    let mut c = connect(addr);
    c.write_all(b"!").expect("write");
    assert_eq!(
        pty.read_for(1, WAIT),
        b"!",
        "first byte did not reach the device"
    );
    c
}

/// Connects from a chosen local address (e.g. 127.0.0.2), to test the ACL by source.
pub fn connect_from(local: &str, addr: SocketAddr) -> TcpStream {
    let local: SocketAddr = format!("{local}:0").parse().expect("local addr");
    let domain = if local.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket calls; sockaddr structs are built on the stack and outlive the calls.
    unsafe {
        let fd = check(libc::socket(domain, libc::SOCK_STREAM, 0), "socket").expect("socket");
        let stream = TcpStream::from_raw_fd(fd);
        let (sa, len) = sockaddr(local);
        check(
            libc::bind(fd, (&sa as *const libc::sockaddr_storage).cast(), len),
            "bind",
        )
        .expect("bind source");
        let (sa, len) = sockaddr(addr);
        check(
            libc::connect(fd, (&sa as *const libc::sockaddr_storage).cast(), len),
            "connect",
        )
        .expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        stream
    }
}

fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is valid for sockaddr_storage; the casts are to smaller, aligned types.
    unsafe {
        let mut ss: libc::sockaddr_storage = std::mem::zeroed();
        match a {
            SocketAddr::V4(v4) => {
                let sin = &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in);
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = v4.port().to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
                (
                    ss,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
            SocketAddr::V6(v6) => {
                let sin6 = &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6);
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = v6.port().to_be();
                sin6.sin6_addr.s6_addr = v6.ip().octets();
                (
                    ss,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    }
}

/// Makes closing `s` send a reset instead of a FIN (`SO_LINGER` on, zero timeout).
pub fn reset_on_close(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a valid struct of the size passed, for the whole call.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER");
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
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(_) => break,
        }
    }
    out
}

/// Whether the server has answered `s` in any way: sent data, closed it or reset it. Does not
/// wait and consumes nothing.
pub fn answered(s: &TcpStream) -> bool {
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the whole call.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
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

/// Deterministic pseudo-random bytes (xorshift), so a failure is reproducible.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A running simulated modem (`modem-sim`), killed on drop.
pub struct Sim {
    pub child: Child,
    pub device: PathBuf,
    /// What it logs: `line up` and `hang-up (slave closed)` as it sees the device side.
    pub log: LogLines,
}

impl Sim {
    /// Starts modem-sim with extra arguments and reads the PTY path it prints.
    pub fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(bin("MODEM_SIM_BIN", env!("CARGO_BIN_EXE_modem-sim")))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn modem-sim");
        let log = LogLines::of(child.stderr.take().expect("stderr"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(WAIT)
            .expect("modem-sim printed no PTY line");
        let device = PathBuf::from(
            line.trim()
                .strip_prefix("PTY ")
                .unwrap_or_else(|| panic!("unexpected modem-sim output {line:?}")),
        );
        Sim { child, device, log }
    }

    /// Waits until the simulator has seen `n` hang-ups in all (a pty has no DTR: the modem
    /// learns of the hang-up by seeing the device closed, and must before the next call).
    pub fn wait_hangups(&self, n: usize) -> bool {
        wait_until(WAIT, || self.log.count("hang-up") >= n)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to completion, at most `timeout` (then kills it and panics); returns its output.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: out_t.join().expect("stdout reader"),
        stderr: err_t.join().expect("stderr reader"),
    }
}

/// Whether process `pid` is gone (or a zombie nobody reaps) within `timeout`.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    wait_until(timeout, || {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let state = status
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .unwrap_or("");
        status.is_empty() || state.trim_start().starts_with('Z')
    })
}

/// The uid and gid lines of a process, as four numbers each (real, effective, saved, fs).
pub fn ids_of(pid: i32) -> (String, String) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .expect("id line")
    };
    (get("Uid:"), get("Gid:"))
}

/// A child process that is killed and reaped on drop, whatever way a test ends.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Echoes everything the device side writes, like a modem in data mode, until the slave has
/// been closed for about 200 ms (EIO while nobody has it open: modemd may reopen it).
pub fn echo_master(master: OwnedFd) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut f = fs::File::from(master);
        let mut buf = vec![0u8; 64 * 1024];
        let mut idle = 0;
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    idle = 0;
                    if f.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(_) => {
                    idle += 1;
                    if idle > 200 {
                        break;
                    }
                    thread::sleep(Duration::from_millis(1));
                }
            }
        }
    })
}
