//! Pseudo-terminals: a master that plays the device and a slave that programs open as a tty.
//!
//! The simulated modem (`modem-sim`), the tests and the benchmarks make their devices here,
//! and client mode will give local programs a tty the same way. A PTY has no modem lines
//! and forces CS8 without parity (Linux `pty_set_termios`); what it shows of a line is
//! speed, stop bits and flow flags only.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use crate::sys;

/// A pseudo-terminal whose slave is raw and not open by anyone.
#[derive(Debug)]
pub struct Pty {
    /// The master: what is written here, a program reading the slave reads.
    pub master: OwnedFd,
    /// The slave's path (`/dev/pts/N`).
    pub slave: PathBuf,
}

impl Pty {
    /// A new PTY. Its slave is made raw once (opened and closed again), so that bytes pass
    /// unchanged to whoever opens it next, without echo or line editing.
    pub fn open() -> io::Result<Pty> {
        let master = sys::openpt().map_err(context("posix_openpt"))?;
        let slave = sys::ptsname(master.as_fd()).map_err(context("ptsname_r"))?;
        let flags = libc::O_RDWR | libc::O_NOCTTY;
        let fd = sys::open(&slave, flags, 0).map_err(context("open pty slave"))?;
        crate::serial::termios::make_raw(fd.as_fd()).map_err(context("make pty slave raw"))?;
        Ok(Pty { master, slave })
    }
}

/// Names the failing call in an error, as cu does.
fn context(call: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{call}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn bytes_written_to_the_master_reach_the_slave_unchanged() {
        let pty = Pty::open().expect("pty");
        let slave = sys::open(&pty.slave, libc::O_RDWR | libc::O_NOCTTY, 0).expect("open slave");
        let data = b"AT\r\n\x00\xff\x03";
        assert_eq!(
            sys::write(pty.master.as_fd(), data).expect("write"),
            data.len()
        );
        let mut buf = [0u8; 16];
        let n = sys::read(slave.as_fd(), &mut buf).expect("read");
        assert_eq!(&buf[..n], data);
    }
}
