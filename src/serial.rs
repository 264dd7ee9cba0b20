//! Opening and configuring a serial device for one session, and hanging it up afterwards.
//!
//! How it works: [`Line::open`] opens the device `O_NOCTTY|O_NONBLOCK` (so a modem without
//! carrier cannot block the open, and the device never becomes our controlling tty), exclusive
//! (`TIOCEXCL` + `flock`), raw, with the fixed line settings, through `serialport`. serialport
//! sets the line through the `termios2` ioctls, which qemu-user and some old kernels lack
//! (`ENOSYS`/`ENOTTY`/`EINVAL`); then the line is opened again and configured with plain
//! termios, the cu/picocom way: start from `tcgetattr`, clear and set named flags, apply, read
//! back. Plain termios knows only the standard baud rates.
//!
//! Then: `HUPCL` on, stale input flushed (nothing the modem said before this session reaches
//! the new client), DTR raised. Dropping the [`Line`] lowers DTR (the modem hangs up), drops
//! exclusivity and closes the device, on every path out of a session.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Parity, Settings};
use crate::sys::{self, cvt};

static FORCE_PLAIN_TERMIOS: AtomicBool = AtomicBool::new(false);

/// Skips serialport/termios2 and always uses plain termios (the qemu-user path); for tests,
/// set from the `MODEMD_PLAIN_TERMIOS` environment variable by `main`.
pub fn force_plain_termios(on: bool) {
    FORCE_PLAIN_TERMIOS.store(on, Ordering::Relaxed);
}

/// An open, configured device. Reads and writes are non-blocking; wait with `poll`.
#[derive(Debug)]
pub struct Line {
    opened: Opened,
}

/// Who holds the descriptor.
#[derive(Debug)]
enum Opened {
    /// serialport's port, kept whole: its drop clears `TIOCEXCL` and closes, and taking the
    /// descriptor out instead costs system calls (dup, re-lock) or, through `into_raw_fd` in
    /// serialport 4.10, leaks the port's name.
    Port(serialport::TTYPort),
    /// Opened and configured with plain termios.
    Plain(OwnedFd),
}

/// Why a device could not be opened or configured.
#[derive(Debug)]
pub struct Error {
    device: PathBuf,
    what: &'static str,
    source: io::Error,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.device.display(),
            self.what,
            self.source
        )
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl Line {
    /// Opens `device` and applies `settings` (see the module text for the steps).
    pub fn open(device: &Path, settings: &Settings) -> Result<Line, Error> {
        let err = |what, source| Error {
            device: device.to_owned(),
            what,
            source,
        };
        let opened = if FORCE_PLAIN_TERMIOS.load(Ordering::Relaxed) {
            Opened::Plain(open_plain(device, settings)?)
        } else {
            match open_serialport(device, settings) {
                Ok(port) => Opened::Port(port),
                // These say the device is not there or not ours; another API won't change that.
                Err(e) if !config_failure(&e) => return Err(err("open", to_io(e))),
                Err(e) => {
                    crate::debug!(
                        "{}: serialport could not configure the line ({e}); using plain termios",
                        device.display()
                    );
                    Opened::Plain(open_plain(device, settings)?)
                }
            }
        };
        let line = Line { opened };
        line.finish_setup().map_err(|(what, e)| err(what, e))?;
        Ok(line)
    }

    /// What both ways of opening leave to do: HUPCL and non-blocking after serialport (the
    /// plain way set both), then flush what arrived before the session and raise DTR.
    fn finish_setup(&self) -> Result<(), (&'static str, io::Error)> {
        let fd = self.as_fd().as_raw_fd();
        if let Opened::Port(_) = self.opened {
            let mut t = tcgetattr(fd).map_err(|e| ("tcgetattr", e))?;
            if t.c_cflag & libc::HUPCL == 0 {
                t.c_cflag |= libc::HUPCL;
                tcsetattr(fd, &t).map_err(|e| ("tcsetattr", e))?;
            }
            // serialport cleared every status flag; O_NONBLOCK is the one we want back.
            // SAFETY: F_SETFL takes an integer argument.
            cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) })
                .map_err(|e| ("fcntl", e))?;
        }
        // SAFETY: tcflush on an open descriptor takes no pointers.
        cvt(unsafe { libc::tcflush(fd, libc::TCIFLUSH) }).map_err(|e| ("tcflush", e))?;
        modem_lines(fd, libc::TIOCMBIS, libc::TIOCM_DTR | libc::TIOCM_RTS)
            .map_err(|e| ("raise DTR", e))?;
        Ok(())
    }

    /// Waits (at most `limit`) until the output queue has gone out on the wire, so a client's
    /// last bytes are not cut off by the hang-up.
    pub fn drain(&self, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            let mut queued: libc::c_int = 0;
            // SAFETY: TIOCOUTQ writes one c_int through the valid pointer we pass.
            let r = unsafe { libc::ioctl(self.as_fd().as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
            if r == -1 || queued == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl AsFd for Line {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.opened {
            // SAFETY: the port's descriptor stays open for as long as the port, which `self`
            // owns for at least the borrow's lifetime.
            Opened::Port(port) => unsafe { BorrowedFd::borrow_raw(port.as_raw_fd()) },
            Opened::Plain(fd) => fd.as_fd(),
        }
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let fd = self.as_fd().as_raw_fd();
        // Hang up even if HUPCL is ignored by the driver; a pty has no modem lines.
        let _ = modem_lines(fd, libc::TIOCMBIC, libc::TIOCM_DTR | libc::TIOCM_RTS);
        if let Opened::Plain(_) = self.opened {
            // SAFETY: TIOCNXCL takes no argument. On a pty the exclusive flag would otherwise
            // outlive this open and lock out the next, unprivileged opener; serialport's
            // port clears it itself.
            unsafe { libc::ioctl(fd, libc::TIOCNXCL) };
        }
        // What the device has not taken by now is abandoned (a closing client's bytes had
        // their drain already); without this, close() on a stalled UART waits up to the
        // driver's closing_wait (30 s) with the session, its lock and its thread.
        // SAFETY: tcflush takes no pointers.
        unsafe { libc::tcflush(fd, libc::TCOFLUSH) };
    }
}

/// Whether a serialport error is about configuring the line (worth a plain-termios retry)
/// rather than about reaching the device.
fn config_failure(e: &serialport::Error) -> bool {
    matches!(e.kind(), serialport::ErrorKind::Unknown)
}

fn to_io(e: serialport::Error) -> io::Error {
    let kind = match e.kind() {
        serialport::ErrorKind::Io(kind) => kind,
        serialport::ErrorKind::NoDevice => io::ErrorKind::ResourceBusy,
        serialport::ErrorKind::InvalidInput => io::ErrorKind::InvalidInput,
        serialport::ErrorKind::Unknown => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.description)
}

/// Opens through serialport: exclusive (`TIOCEXCL` and flock), raw, the settings through
/// termios2.
fn open_serialport(device: &Path, s: &Settings) -> Result<serialport::TTYPort, serialport::Error> {
    let data_bits = match s.data_bits {
        5 => serialport::DataBits::Five,
        6 => serialport::DataBits::Six,
        7 => serialport::DataBits::Seven,
        _ => serialport::DataBits::Eight,
    };
    let parity = match s.parity {
        Parity::None => serialport::Parity::None,
        Parity::Even => serialport::Parity::Even,
        Parity::Odd => serialport::Parity::Odd,
    };
    let stop_bits = match s.stop_bits {
        2 => serialport::StopBits::Two,
        _ => serialport::StopBits::One,
    };
    serialport::new(device.to_string_lossy(), s.baud)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(serialport::FlowControl::None)
        .open_native()
}

fn open_plain(device: &Path, s: &Settings) -> Result<OwnedFd, Error> {
    let err = |what, source| Error {
        device: device.to_owned(),
        what,
        source,
    };
    let speed = speed_constant(s.baud).ok_or_else(|| {
        err(
            "set baud rate",
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} is not a standard rate and termios2 is unavailable",
                    s.baud
                ),
            ),
        )
    })?;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK;
    let fd = sys::open(device, flags, 0).map_err(|e| err("open", e))?;
    let raw = fd.as_raw_fd();
    let mut t = tcgetattr(raw).map_err(|e| err("tcgetattr", e))?;
    // SAFETY: `t` is a valid termios that cfmakeraw edits in place.
    unsafe { libc::cfmakeraw(&mut t) };
    t.c_cflag &= !(libc::CSIZE | libc::PARENB | libc::PARODD | libc::CSTOPB | libc::CRTSCTS);
    t.c_cflag |= libc::CREAD | libc::CLOCAL | libc::HUPCL;
    t.c_cflag |= match s.data_bits {
        5 => libc::CS5,
        6 => libc::CS6,
        7 => libc::CS7,
        _ => libc::CS8,
    };
    match s.parity {
        Parity::None => {}
        Parity::Even => t.c_cflag |= libc::PARENB,
        Parity::Odd => t.c_cflag |= libc::PARENB | libc::PARODD,
    }
    if s.stop_bits == 2 {
        t.c_cflag |= libc::CSTOPB;
    }
    t.c_iflag &= !(libc::IXON | libc::IXOFF | libc::IXANY);
    t.c_cc[libc::VMIN] = 1;
    t.c_cc[libc::VTIME] = 0;
    // SAFETY: `t` is a valid termios; cfsetspeed only edits it.
    cvt(unsafe { libc::cfsetspeed(&mut t, speed) }).map_err(|e| err("cfsetspeed", e))?;
    tcsetattr(raw, &t).map_err(|e| err("tcsetattr", e))?;
    // picocom's rule: what the driver accepted is what counts, and tcsetattr succeeds if it
    // took any one of the changes. A pty, for one, forces CS8 and no parity; that is the
    // driver's call, so say it and go on.
    let framing = libc::CSIZE | libc::PARENB | libc::PARODD | libc::CSTOPB;
    let back = tcgetattr(raw).map_err(|e| err("tcgetattr", e))?;
    if back.c_cflag & framing != t.c_cflag & framing {
        crate::warning!("{}: the driver did not accept all of {s}", device.display());
    }
    // As serialport does: no other opener while we hold it (TIOCEXCL stops all but root,
    // flock the cooperative rest); LOCK_NB fails at once against another holder. Last, so
    // that no error path leaves a pty's exclusive flag behind, but for this one.
    // SAFETY: TIOCEXCL takes no argument.
    cvt(unsafe { libc::ioctl(raw, libc::TIOCEXCL) }).map_err(|e| err("TIOCEXCL", e))?;
    // SAFETY: flock takes no pointers.
    if let Err(e) = cvt(unsafe { libc::flock(raw, libc::LOCK_EX | libc::LOCK_NB) }) {
        // SAFETY: TIOCNXCL takes no argument.
        unsafe { libc::ioctl(raw, libc::TIOCNXCL) };
        return Err(err("flock", e));
    }
    crate::debug!("{}: configured {s} with plain termios", device.display());
    Ok(fd)
}

/// Makes the tty on `fd` raw (`cfmakeraw`), with the receiver on and modem control off
/// (`CREAD|CLOCAL`): what a pseudo-terminal's slave needs to carry bytes unchanged.
pub fn make_raw(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut t = tcgetattr(fd.as_raw_fd())?;
    // SAFETY: `t` is a valid termios that cfmakeraw edits in place.
    unsafe { libc::cfmakeraw(&mut t) };
    t.c_cflag |= libc::CREAD | libc::CLOCAL;
    tcsetattr(fd.as_raw_fd(), &t)
}

fn tcgetattr(fd: libc::c_int) -> io::Result<libc::termios> {
    // SAFETY: termios is plain old data; tcgetattr fills it completely on success.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, writable termios.
    cvt(unsafe { libc::tcgetattr(fd, &mut t) })?;
    Ok(t)
}

fn tcsetattr(fd: libc::c_int, t: &libc::termios) -> io::Result<()> {
    // SAFETY: `t` is a valid termios for the whole call.
    sys::retry(|| cvt(unsafe { libc::tcsetattr(fd, libc::TCSANOW, t) }))?;
    Ok(())
}

/// Sets (`TIOCMBIS`) or clears (`TIOCMBIC`) modem lines. Ptys have none (`ENOTTY`/`EINVAL`),
/// which is not an error for us: there is nothing to hang up.
fn modem_lines(fd: libc::c_int, op: libc::Ioctl, bits: libc::c_int) -> io::Result<()> {
    // SAFETY: both ioctls read one c_int through the valid pointer we pass.
    match cvt(unsafe { libc::ioctl(fd, op, &bits) }) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTTY) | Some(libc::EINVAL)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn speed_constant(baud: u32) -> Option<libc::speed_t> {
    Some(match baud {
        50 => libc::B50,
        75 => libc::B75,
        110 => libc::B110,
        134 => libc::B134,
        150 => libc::B150,
        200 => libc::B200,
        300 => libc::B300,
        600 => libc::B600,
        1200 => libc::B1200,
        1800 => libc::B1800,
        2400 => libc::B2400,
        4800 => libc::B4800,
        9600 => libc::B9600,
        19200 => libc::B19200,
        38400 => libc::B38400,
        57600 => libc::B57600,
        115_200 => libc::B115200,
        230_400 => libc::B230400,
        460_800 => libc::B460800,
        500_000 => libc::B500000,
        576_000 => libc::B576000,
        921_600 => libc::B921600,
        1_000_000 => libc::B1000000,
        1_152_000 => libc::B1152000,
        1_500_000 => libc::B1500000,
        2_000_000 => libc::B2000000,
        2_500_000 => libc::B2500000,
        3_000_000 => libc::B3000000,
        3_500_000 => libc::B3500000,
        4_000_000 => libc::B4000000,
        _ => return None,
    })
}
