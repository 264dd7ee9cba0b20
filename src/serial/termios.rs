//! The raw termios and modem-line calls of a serial line, each wrapped once: the only place
//! besides `sys/` that calls `libc` directly. No policy: [`super::Line`] decides what to set.
//!
//! Speeds: a standard rate is a `Bnnn` constant in the plain termios; any other rate needs
//! the `termios2` ioctls (`BOTHER` and a number), which qemu-user and kernels before 2.6.20
//! lack (`ENOSYS`/`ENOTTY`/`EINVAL`, see [`unsupported`]).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::config::{Flow, Parity};
use crate::sys::{self, cvt};

/// The input, output or both queues of a line, for [`flush`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Received, not yet read.
    Input = libc::TCIFLUSH as isize,
    /// Written, not yet sent.
    Output = libc::TCOFLUSH as isize,
    /// Both.
    Both = libc::TCIOFLUSH as isize,
}

/// Whether an errno from a termios2 ioctl means the kernel (or emulator) has none.
pub fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::ENOTTY | libc::EINVAL)
    )
}

/// `tcgetattr(3)`.
pub fn get(fd: BorrowedFd<'_>) -> io::Result<libc::termios> {
    // SAFETY: termios is plain old data; tcgetattr fills it completely on success.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, writable termios.
    cvt(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
    Ok(t)
}

/// `tcsetattr(3)`, at once. It succeeds if the driver took any one of the changes: read back.
pub fn set(fd: BorrowedFd<'_>, t: &libc::termios) -> io::Result<()> {
    // SAFETY: `t` is a valid termios for the whole call.
    sys::retry(|| cvt(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, t) }))?;
    Ok(())
}

/// Makes the tty on `fd` raw (`cfmakeraw`), with the receiver on and modem control off
/// (`CREAD|CLOCAL`): what a pseudo-terminal's slave needs to carry bytes unchanged.
pub fn make_raw(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut t = get(fd)?;
    raw(&mut t);
    set(fd, &t)
}

/// Raw mode on a copy: no echo, no line editing, no character translation, reads return
/// what is there (`VMIN` 1, `VTIME` 0); receiver on, modem control lines ignored for opening.
pub fn raw(t: &mut libc::termios) {
    // SAFETY: `t` is a valid termios that cfmakeraw edits in place.
    unsafe { libc::cfmakeraw(t) };
    t.c_cflag |= libc::CREAD | libc::CLOCAL;
    t.c_cc[libc::VMIN] = 1;
    t.c_cc[libc::VTIME] = 0;
}

/// Data bits, parity and stop bits on a copy.
pub fn set_framing(t: &mut libc::termios, data_bits: u8, parity: Parity, stop_bits: u8) {
    t.c_cflag &= !(libc::CSIZE | libc::PARENB | libc::PARODD | libc::CSTOPB);
    t.c_cflag |= match data_bits {
        5 => libc::CS5,
        6 => libc::CS6,
        7 => libc::CS7,
        _ => libc::CS8,
    };
    t.c_cflag |= match parity {
        Parity::None => 0,
        Parity::Even => libc::PARENB,
        Parity::Odd => libc::PARENB | libc::PARODD,
    };
    if stop_bits == 2 {
        t.c_cflag |= libc::CSTOPB;
    }
}

/// The framing a termios holds: data bits, parity, stop bits.
pub fn framing(t: &libc::termios) -> (u8, Parity, u8) {
    let data_bits = match t.c_cflag & libc::CSIZE {
        libc::CS5 => 5,
        libc::CS6 => 6,
        libc::CS7 => 7,
        _ => 8,
    };
    let parity = match t.c_cflag & (libc::PARENB | libc::PARODD) {
        0 | libc::PARODD => Parity::None,
        libc::PARENB => Parity::Even,
        _ => Parity::Odd,
    };
    let stop_bits = if t.c_cflag & libc::CSTOPB != 0 { 2 } else { 1 };
    (data_bits, parity, stop_bits)
}

/// Flow control on a copy. XON/XOFF: `IXON` (the line pauses our output) and `IXOFF` (we
/// pause the device's), not `IXANY`, so only XON resumes.
pub fn set_flow(t: &mut libc::termios, flow: Flow) {
    t.c_cflag &= !libc::CRTSCTS;
    t.c_iflag &= !(libc::IXON | libc::IXOFF | libc::IXANY);
    match flow {
        Flow::None => {}
        Flow::RtsCts => t.c_cflag |= libc::CRTSCTS,
        Flow::XonXoff => t.c_iflag |= libc::IXON | libc::IXOFF,
    }
}

/// The flow control a termios holds (hardware wins if both are set).
pub fn flow(t: &libc::termios) -> Flow {
    if t.c_cflag & libc::CRTSCTS != 0 {
        Flow::RtsCts
    } else if t.c_iflag & libc::IXON != 0 {
        Flow::XonXoff
    } else {
        Flow::None
    }
}

/// The standard rates and their constants: what plain termios can set.
const SPEEDS: [(u32, libc::speed_t); 30] = [
    (50, libc::B50),
    (75, libc::B75),
    (110, libc::B110),
    (134, libc::B134),
    (150, libc::B150),
    (200, libc::B200),
    (300, libc::B300),
    (600, libc::B600),
    (1200, libc::B1200),
    (1800, libc::B1800),
    (2400, libc::B2400),
    (4800, libc::B4800),
    (9600, libc::B9600),
    (19200, libc::B19200),
    (38400, libc::B38400),
    (57600, libc::B57600),
    (115_200, libc::B115200),
    (230_400, libc::B230400),
    (460_800, libc::B460800),
    (500_000, libc::B500000),
    (576_000, libc::B576000),
    (921_600, libc::B921600),
    (1_000_000, libc::B1000000),
    (1_152_000, libc::B1152000),
    (1_500_000, libc::B1500000),
    (2_000_000, libc::B2000000),
    (2_500_000, libc::B2500000),
    (3_000_000, libc::B3000000),
    (3_500_000, libc::B3500000),
    (4_000_000, libc::B4000000),
];

/// Sets a standard rate on a copy; `false` if `baud` has no constant (see [`set_custom_speed`]).
pub fn set_standard_speed(t: &mut libc::termios, baud: u32) -> bool {
    let Some(&(_, code)) = SPEEDS.iter().find(|&&(rate, _)| rate == baud) else {
        return false;
    };
    // SAFETY: `t` is a valid termios; cfsetspeed only edits it. It cannot fail for a
    // constant from the table.
    unsafe { libc::cfsetspeed(t, code) };
    true
}

/// The rate a termios holds, if it is a standard one (`None`: `BOTHER`, ask [`custom_speed`]).
pub fn standard_speed(t: &libc::termios) -> Option<u32> {
    // SAFETY: `t` is a valid termios; cfgetospeed only reads it.
    let code = unsafe { libc::cfgetospeed(t) };
    SPEEDS
        .iter()
        .find(|&&(_, c)| c == code)
        .map(|&(rate, _)| rate)
}

fn get2(fd: BorrowedFd<'_>) -> io::Result<libc::termios2> {
    // SAFETY: termios2 is plain old data; TCGETS2 fills it completely on success.
    let mut t: libc::termios2 = unsafe { std::mem::zeroed() };
    // SAFETY: TCGETS2 writes one termios2 through the valid pointer passed.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCGETS2, &mut t) })?;
    Ok(t)
}

/// Sets any rate through termios2 (`BOTHER`), on the line itself.
pub fn set_custom_speed(fd: BorrowedFd<'_>, baud: u32) -> io::Result<()> {
    let mut t = get2(fd)?;
    t.c_cflag &= !(libc::CBAUD | libc::CIBAUD);
    t.c_cflag |= libc::BOTHER;
    t.c_ispeed = baud;
    t.c_ospeed = baud;
    // SAFETY: TCSETS2 reads one termios2 through the valid pointer passed.
    sys::retry(|| cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCSETS2, &t) }))?;
    Ok(())
}

/// The output rate of the line as a number, through termios2.
pub fn custom_speed(fd: BorrowedFd<'_>) -> io::Result<u32> {
    Ok(get2(fd)?.c_ospeed)
}

/// Whether termios2 works here: asked once of a pseudo-terminal, so a device is never opened
/// twice to find out. A system without PTYs is taken to have it (any Linux since 2.6.20).
pub fn probe_termios2() -> bool {
    match sys::openpt() {
        Ok(pty) => get2(std::os::fd::AsFd::as_fd(&pty)).map_or_else(|e| !unsupported(&e), |_| true),
        Err(_) => true,
    }
}

/// Modem line bits (`TIOCM_*`).
pub type Bits = libc::c_int;

/// Sets (`on`) or clears modem lines. `Ok(false)`: the device has none (a PTY, some USB
/// gadgets: `ENOTTY`/`EINVAL`), which leaves nothing to set.
pub fn set_modem_lines(fd: BorrowedFd<'_>, bits: Bits, on: bool) -> io::Result<bool> {
    let op = if on { libc::TIOCMBIS } else { libc::TIOCMBIC };
    // SAFETY: both ioctls read one c_int through the valid pointer passed.
    no_lines_is_none(cvt(unsafe { libc::ioctl(fd.as_raw_fd(), op, &bits) })).map(|r| r.is_some())
}

/// The modem lines (`TIOCMGET`); `None` if the device has none.
pub fn modem_lines(fd: BorrowedFd<'_>) -> io::Result<Option<Bits>> {
    let mut bits: Bits = 0;
    // SAFETY: TIOCMGET writes one c_int through the valid pointer passed.
    no_lines_is_none(cvt(unsafe {
        libc::ioctl(fd.as_raw_fd(), libc::TIOCMGET, &mut bits)
    }))
    .map(|r| r.map(|_| bits))
}

fn no_lines_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTTY | libc::EINVAL)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Starts (`TIOCSBRK`) or ends (`TIOCCBRK`) a break condition.
pub fn set_break(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let op = if on { libc::TIOCSBRK } else { libc::TIOCCBRK };
    // SAFETY: neither ioctl takes an argument.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), op) })?;
    Ok(())
}

/// Discards a queue (`tcflush(3)`).
pub fn flush(fd: BorrowedFd<'_>, queue: Queue) -> io::Result<()> {
    // SAFETY: tcflush takes no pointers.
    cvt(unsafe { libc::tcflush(fd.as_raw_fd(), queue as libc::c_int) })?;
    Ok(())
}

/// Bytes written but not yet sent (`TIOCOUTQ`).
pub fn output_queued(fd: BorrowedFd<'_>) -> io::Result<usize> {
    queued(fd, libc::TIOCOUTQ)
}

/// Bytes received but not yet read (`TIOCINQ`).
pub fn input_queued(fd: BorrowedFd<'_>) -> io::Result<usize> {
    queued(fd, libc::TIOCINQ)
}

fn queued(fd: BorrowedFd<'_>, request: libc::Ioctl) -> io::Result<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ and TIOCINQ write one c_int through the valid pointer passed.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), request, &mut queued) })?;
    Ok(usize::try_from(queued).unwrap_or(0))
}

/// Makes the line exclusive (`TIOCEXCL`: no other opener but root) or not (`TIOCNXCL`).
pub fn set_exclusive(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let op = if on { libc::TIOCEXCL } else { libc::TIOCNXCL };
    // SAFETY: neither ioctl takes an argument.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), op) })?;
    Ok(())
}

/// Takes an exclusive `flock` at once, as serialport and minicom do: the cooperative
/// openers that `TIOCEXCL` does not stop (root) see the line taken.
pub fn flock_exclusive(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: flock takes no pointers.
    cvt(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) })?;
    Ok(())
}

/// Sets `O_NONBLOCK` as the only status flag (serialport's open clears them all).
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_SETFL takes an integer argument.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) })?;
    Ok(())
}
