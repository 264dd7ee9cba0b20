//! The device side of every server: PTYs whose masters the bench holds, an echo loop (a modem
//! in data mode), and non-blocking I/O with deadlines for sockets and masters alike. The
//! lagging echo (a modem slow to answer) is the tests' own, `common::lagging`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::Pty;

/// One PTY: the servers open the slave, the bench plays the modem on the master.
pub struct Device {
    pty: Pty,
    /// The bench's own descriptor of the slave, open for the whole run and never read or
    /// written: with it the master never reports a hang-up between sessions, so the echo
    /// waits in `poll` (no spinning, no sleeping) and wakes the moment a server writes.
    keeper: File,
    real: PathBuf,
}

impl Device {
    pub fn new() -> Device {
        let pty = Pty::open().expect("pty");
        let keeper = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&pty.slave)
            .expect("open pty slave");
        set_nonblocking(pty.master.as_raw_fd());
        let real = std::fs::canonicalize(&pty.slave).expect("canonicalize slave");
        Device { pty, keeper, real }
    }

    /// The master, borrowed: for a helper that keeps a copy of its own.
    pub fn master_fd(&self) -> BorrowedFd<'_> {
        self.pty.master.as_fd()
    }

    pub fn master(&self) -> RawFd {
        self.pty.master.as_raw_fd()
    }

    /// The slave's path, as servers are told and as `/proc/PID/fd` shows it.
    pub fn path(&self) -> &Path {
        &self.real
    }

    /// The slave's name, as UUCP locks name it (`/dev/pts/3` → `3`).
    pub fn name(&self) -> String {
        self.real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Discards whatever is queued either way, so the next server starts clean.
    pub fn flush(&self) {
        // SAFETY: tcflush on a descriptor we own takes no pointers.
        unsafe { libc::tcflush(self.keeper.as_raw_fd(), libc::TCIOFLUSH) };
        let mut buf = [0u8; 4096];
        while matches!(read_fd(self.master(), &mut buf), Ok(n) if n > 0) {}
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an open descriptor, no pointers.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// `poll` on one descriptor; the returned events (0 on timeout).
pub fn poll1(fd: RawFd, events: libc::c_short, timeout: Duration) -> libc::c_short {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `p` is one valid pollfd for the whole call.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r <= 0 { 0 } else { p.revents }
}

/// `poll` on a set of descriptors; false on timeout or error (then no `revents` are set).
pub fn poll_all(fds: &mut [libc::pollfd], timeout: Duration) -> bool {
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a valid array of `fds.len()` pollfds for the whole call.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) > 0 }
}

pub fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its whole length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

pub fn write_fd(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is readable for its whole length.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// Writes all of `data` to the non-blocking `fd` by `deadline`.
pub fn write_all_by(fd: RawFd, mut data: &[u8], deadline: Instant) -> io::Result<()> {
    while !data.is_empty() {
        match write_fd(fd, data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out("write"));
                }
                poll1(fd, libc::POLLOUT, left.min(Duration::from_millis(100)));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Fills `buf` from the non-blocking `fd` by `deadline`.
pub fn read_exact_by(fd: RawFd, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match read_fd(fd, &mut buf[got..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out("read"));
                }
                poll1(fd, libc::POLLIN, left.min(Duration::from_millis(100)));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A thread playing the modem until dropped; it watches `stop` (an eventfd) to know when.
struct Worker {
    stop: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Runs `body` on a thread named `name`, handing it the descriptor that becomes readable
    /// when the worker is dropped.
    fn spawn(name: &str, body: impl FnOnce(RawFd) + Send + 'static) -> Worker {
        // SAFETY: eventfd takes no pointers; the result is checked before it is owned.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(fd >= 0, "eventfd: {}", io::Error::last_os_error());
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        let stop = unsafe { OwnedFd::from_raw_fd(fd) };
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || body(fd))
            .expect("spawn device thread");
        Worker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let one = 1u64.to_ne_bytes();
        let _ = write_fd(self.stop.as_raw_fd(), &one);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Echoes whatever the servers write to a set of devices, on one thread, until dropped.
pub struct Echo {
    _worker: Worker,
}

impl Echo {
    /// Echoes on the masters of `devices` (which must outlive the echo).
    pub fn start(devices: &[&Device]) -> Echo {
        let masters: Vec<RawFd> = devices.iter().map(|d| d.master()).collect();
        Echo {
            _worker: Worker::spawn("echo", move |stop| echo_loop(&masters, stop)),
        }
    }
}

fn echo_loop(masters: &[RawFd], stop: RawFd) {
    let mut fds: Vec<libc::pollfd> = masters
        .iter()
        .chain(std::iter::once(&stop))
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if !poll_all(&mut fds, Duration::from_secs(1)) {
            continue;
        }
        if fds[masters.len()].revents != 0 {
            return;
        }
        for p in &fds[..masters.len()] {
            if p.revents & libc::POLLIN != 0 {
                if let Ok(n) = read_fd(p.fd, &mut buf) {
                    // A server that stopped reading loses the rest; the client side notices.
                    let deadline = Instant::now() + Duration::from_secs(2);
                    let _ = write_all_by(p.fd, &buf[..n], deadline);
                }
            } else if p.revents != 0 {
                // Hang-up without data: cannot happen while the keeper holds the slave; do
                // not spin if it does.
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// How far a one-way stream got: bytes handed to the sender's descriptor, and whether the
/// sender has finished (all sent, out of time, or failed).
#[derive(Default)]
pub struct Flow {
    sent: AtomicUsize,
    done: AtomicBool,
}

impl Flow {
    /// For a sender of its own (the Telnet client's, which escapes): `n` data bytes sent.
    pub fn set_sent(&self, n: usize) {
        self.sent.store(n, Ordering::Release);
    }

    /// For a sender of its own: it has finished.
    pub fn set_done(&self) {
        self.done.store(true, Ordering::Release);
    }

    /// For a receiver of its own: bytes sent so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Acquire)
    }

    /// For a receiver of its own: whether the sender has finished.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// Sends `data` on the non-blocking `fd` until all is sent or `deadline` passes.
pub fn send_stream(fd: RawFd, data: &[u8], deadline: Instant, flow: &Flow) -> io::Result<()> {
    let result = (|| {
        let mut sent = 0;
        while sent < data.len() {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            let end = (sent + 64 * 1024).min(data.len());
            match write_fd(fd, &data[sent..end]) {
                Ok(n) => {
                    sent += n;
                    flow.sent.store(sent, Ordering::Release);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    poll1(
                        fd,
                        libc::POLLOUT,
                        (deadline - now).min(Duration::from_millis(50)),
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })();
    flow.done.store(true, Ordering::Release);
    result
}

/// Receives on the non-blocking `fd` what the matching [`send_stream`] sends, checking every
/// byte against `data`, until the sender is done and everything it sent arrived (or `hard`
/// passes). Returns the byte count and when the last byte came.
pub fn recv_stream(
    fd: RawFd,
    data: &[u8],
    flow: &Flow,
    hard: Instant,
) -> io::Result<(usize, Instant)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    let mut last = Instant::now();
    loop {
        if flow.done.load(Ordering::Acquire) && got >= flow.sent.load(Ordering::Acquire) {
            return Ok((got, last));
        }
        match read_fd(fd, &mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                if got + n > data.len() || buf[..n] != data[got..got + n] {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("stream corrupted at byte {got}"),
                    ));
                }
                got += n;
                last = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let now = Instant::now();
                if now >= hard {
                    return Err(timed_out(&format!("stream after {got} bytes")));
                }
                poll1(
                    fd,
                    libc::POLLIN,
                    (hard - now).min(Duration::from_millis(20)),
                );
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
