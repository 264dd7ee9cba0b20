//! Client mode's local tty: a PTY whose slave `LINK` points at, and how to tell when local
//! programs open and close it (DESIGN §5).
//!
//! The master sees no open or close as an event of its own. While no program holds the slave
//! open, `poll` reports a hang-up on the master, and only then; so the last close is that
//! hang-up, and an open is waited for with inotify (`IN_OPEN` on the slave), which costs no
//! wake-up while nobody uses the line.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::line::Wanted;
use crate::pty::Pty;
use crate::relay::{Device, End};
use crate::serial::{Queue, termios};
use crate::sys::{self, Interest};

/// The speed a new tty starts with, as a config line's default does.
const DEFAULT_SPEED: u32 = 115_200;

/// The PTY master, which plays the remote device for the relay.
#[derive(Debug)]
pub struct Master(OwnedFd);

impl AsFd for Master {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// The master's end of stream is the last local program closing the tty.
impl Device for Master {
    fn end_of_stream(&self) -> End {
        End::TtyClosed
    }
}

impl Master {
    /// What the local programs have set: the slave's termios, which Linux lets the master
    /// read. `None` if it cannot be read or its speed cannot be told.
    pub fn wanted(&self) -> Option<Wanted> {
        let t = termios::get(self.as_fd()).ok()?;
        let custom = if t.c_cflag & libc::CBAUD == libc::BOTHER {
            termios::custom_speed(self.as_fd()).ok()
        } else {
            None
        };
        Wanted::of(&t, custom)
    }
}

/// A PTY for local programs, raw at 115200 8N1 until they set otherwise.
pub struct Tty {
    /// The master, shared with the relay.
    pub master: Arc<Master>,
    /// The slave's path, `/dev/pts/N`.
    pub slave: PathBuf,
    /// inotify, readable when the slave is opened.
    opens: OwnedFd,
}

impl Tty {
    /// A new PTY, no program holding its slave open.
    pub fn new() -> io::Result<Tty> {
        let Pty { master, slave } = Pty::open()?;
        // Set through the master: Linux applies a master's termios calls to its slave.
        let mut t = termios::get(master.as_fd())?;
        termios::set_standard_speed(&mut t, DEFAULT_SPEED);
        termios::set(master.as_fd(), &t)?;
        termios::set_nonblocking(master.as_fd())?;
        let opens = sys::inotify_watch(&slave, libc::IN_OPEN)?;
        Ok(Tty {
            master: Arc::new(Master(master)),
            slave,
            opens,
        })
    }

    /// Takes the settings of `old` (speed, framing, flow, modes), which a program may have set
    /// for the next one (`stty -F LINK 57600` before `chat`). Best effort: a new tty keeps
    /// its defaults where the old one's cannot be read.
    pub fn take_settings(&self, old: &Tty) {
        if let Ok(t) = termios::get(old.master.as_fd()) {
            let _ = termios::set(self.master.as_fd(), &t);
        }
    }

    /// Waits up to `timeout` (`None`: for ever) until no program holds the tty open; true
    /// if none does.
    pub fn closed_within(&self, timeout: Option<Duration>) -> bool {
        let fds = [(self.master.as_fd().as_raw_fd(), Interest::Gone)];
        sys::poll(&fds, timeout).is_ok_and(|r| r[0].hangup)
    }

    /// Waits until a program opens the tty. What a program left in it when it closed is
    /// dropped first (see [`Tty::flush`]), also if it came and went unseen.
    pub fn wait_open(&self) -> io::Result<()> {
        let mut events = [0u8; 512];
        loop {
            if !self.closed_within(Some(Duration::ZERO)) {
                return Ok(());
            }
            self.flush();
            // The flush opened the slave too: its event goes, and the look after it sees
            // an open that came meanwhile; an open after the look wakes the poll.
            while sys::read(self.opens.as_fd(), &mut events).is_ok_and(|n| n > 0) {}
            let master = [(self.master.as_fd().as_raw_fd(), Interest::Read)];
            let ready = sys::poll(&master, Some(Duration::ZERO))?;
            if !ready[0].hangup {
                return Ok(());
            }
            // A program that came and went during the flush left bytes: flush again.
            if ready[0].read {
                continue;
            }
            sys::poll(&[(self.opens.as_raw_fd(), Interest::Read)], None)?;
        }
    }

    /// Discards what the last program wrote and was never sent, and what it never read of
    /// the server's: the next program starts clean, as on a real port, which its last close
    /// flushes. A program opening the tty just now could lose its first bytes; the window is
    /// the time of two system calls.
    pub fn flush(&self) {
        let _ = termios::flush(self.master.as_fd(), Queue::Input);
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK;
        if let Ok(slave) = sys::open(&self.slave, flags, 0) {
            let _ = termios::flush(slave.as_fd(), Queue::Input);
        }
    }

    /// Gives the programs up to `limit` to read what the server said last, before the PTY
    /// goes: closing the master hangs the slave up, which drops what is still unread.
    pub fn drain(&self, limit: Duration) {
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK;
        let Ok(slave) = sys::open(&self.slave, flags, 0) else {
            return;
        };
        let end = Instant::now() + limit;
        while termios::input_queued(slave.as_fd()).is_ok_and(|n| n > 0) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The path local programs open: a symbolic link to the slave of the current [`Tty`].
pub struct Link(PathBuf);

impl Link {
    /// `path`, if it is free to be ours: absent, or a symbolic link to a pseudo-terminal
    /// (left by an earlier run). Anything else there (a device, a udev link such as
    /// `/dev/modem -> ttyS1`) is not ours to replace.
    pub fn new(path: &Path) -> io::Result<Link> {
        let ours = match std::fs::read_link(path) {
            Ok(to) => to.starts_with("/dev/pts/"),
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        };
        if !ours {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a link to a pseudo-terminal",
                    path.display()
                ),
            ));
        }
        Ok(Link(path.to_owned()))
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Points the link at `slave`, in one step: a program opening it meanwhile finds the old
    /// tty or the new one, never nothing.
    pub fn point(&self, slave: &Path) -> io::Result<()> {
        let mut tmp = self.0.clone().into_os_string();
        tmp.push(".new");
        let _ = std::fs::remove_file(&tmp);
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.0.display()));
        std::os::unix::fs::symlink(slave, &tmp).map_err(named)?;
        std::fs::rename(&tmp, &self.0).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            named(e)
        })
    }

    /// Removes the link if it still points at `slave`.
    pub fn remove(&self, slave: &Path) {
        if std::fs::read_link(&self.0).is_ok_and(|to| to == slave) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
