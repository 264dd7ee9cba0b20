//! The device side of a test: the master of a [`Pty`] made by the library
//! (`modemd::pty::Pty::open`), read and written here with bounded waits.
//!
//! The test plays the modem on the master; the daemon opens the slave as its device.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use modemd::sys::{self, Interest, Ready};

pub use modemd::pty::Pty;

/// What a test does on the master of a [`Pty`].
pub trait PtyExt {
    /// Whether the slave side is closed (nobody has the device open) within `timeout`.
    fn wait_hangup(&self, timeout: Duration) -> bool;
    /// Whether the device is open (the slave has an opener).
    fn slave_open(&self) -> bool;
    /// Reads whatever arrives within `timeout` until `want` bytes came (or the time is up).
    fn read_for(&self, want: usize, timeout: Duration) -> Vec<u8>;
    /// Writes all of `data` to the master (what the modem says).
    fn write_all(&self, data: &[u8]);
    /// The slave's termios, as the daemon set it: on a PTY master, Linux reads the termios of
    /// the slave (`tty_mode_ioctl` acts on the linked tty).
    fn termios(&self) -> libc::termios;
    /// [`PtyExt::write_all`] on a copy of the master from a thread, so that the test can
    /// read at the same time.
    fn write_in_background(&self, data: Vec<u8>) -> thread::JoinHandle<()>;
}

impl PtyExt for Pty {
    fn wait_hangup(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ready = poll(
                &self.master,
                Interest::Read,
                left.min(Duration::from_millis(50)),
            );
            if ready.hangup {
                return true;
            }
            if ready.read {
                // Drain what the daemon wrote last so that only HUP remains.
                let mut buf = [0u8; 4096];
                let _ = sys::read(self.master.as_fd(), &mut buf);
            }
            if left.is_zero() {
                return false;
            }
        }
    }

    fn termios(&self) -> libc::termios {
        modemd::serial::termios::get(self.master.as_fd()).expect("tcgetattr on the master")
    }

    fn slave_open(&self) -> bool {
        !poll(&self.master, Interest::Read, Duration::ZERO).hangup
    }

    fn read_for(&self, want: usize, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while out.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let ready = poll(&self.master, Interest::Read, left);
            if !ready.read {
                if ready.hangup {
                    thread::sleep(Duration::from_millis(5));
                }
                continue;
            }
            let room = (want - out.len()).min(buf.len());
            match sys::read(self.master.as_fd(), &mut buf[..room]) {
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
        out
    }

    fn write_all(&self, mut data: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !data.is_empty() {
            assert!(Instant::now() < deadline, "pty write stalled");
            match sys::write(self.master.as_fd(), data) {
                Ok(n) if n > 0 => data = &data[n..],
                _ => {
                    poll(&self.master, Interest::Write, Duration::from_millis(100));
                }
            }
        }
    }

    fn write_in_background(&self, data: Vec<u8>) -> thread::JoinHandle<()> {
        let copy = Pty {
            master: self.master.try_clone().expect("dup master"),
            slave: self.slave.clone(),
        };
        thread::spawn(move || copy.write_all(&data))
    }
}

/// What `poll` says of the master within `timeout`; nothing on an error, which the next
/// read or write reports.
fn poll(master: &OwnedFd, interest: Interest, timeout: Duration) -> Ready {
    sys::poll(&[(master.as_raw_fd(), interest)], Some(timeout)).map_or(Ready::default(), |r| r[0])
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

/// The output speed of `t` (a `B…` constant).
pub fn speed(t: &libc::termios) -> libc::speed_t {
    // SAFETY: cfgetospeed reads the termios passed by reference.
    unsafe { libc::cfgetospeed(t) }
}
