//! A serial line for one session: open it, set it, change it while the relay runs, hang up.
//!
//! How it works. [`Line::open`] opens the device `O_NOCTTY|O_NONBLOCK` (a modem without
//! carrier cannot block the open, and the device never becomes our controlling tty) and
//! exclusive (`TIOCEXCL` + `flock`), through serialport. serialport sets lines through the
//! `termios2` ioctls, which qemu-user and kernels before 2.6.20 lack; there (asked once, of a
//! PTY, by errno) the line is opened with plain `open(2)` and the same two locks instead.
//! Either way the rest is one path, the cu/picocom way: start from what `tcgetattr` returned,
//! clear and set named flags, apply, read back; what counts is what the driver accepted.
//! Then: `HUPCL` on (off for `hangup=off`), raw, the line's flow control, stale input
//! flushed (nothing the modem said before this session reaches the new client), DTR and RTS
//! raised.
//!
//! The verbs take `&self`, so the session can change the line while its two copy threads
//! read and write the same descriptor; changes of the termios are serialised among
//! themselves. Each returns what is in force afterwards:
//!
//! | verb | what it does |
//! | --- | --- |
//! | [`Line::configure`], [`Line::settings`] | speed, data bits, parity, stop bits |
//! | [`Line::set_flow`], [`Line::flow`] | none, RTS/CTS or XON/XOFF |
//! | [`Line::set_dtr`], [`Line::set_rts`], [`Line::hang_up`] | raise or drop modem control lines |
//! | [`Line::set_break`], [`Line::break_on`] | start or end a break (cached: Linux cannot read it) |
//! | [`Line::modem_status`] | CTS, DSR, RI, DCD (`TIOCMGET`); `None` without modem lines |
//! | [`Line::flush`], [`Line::drain`] | discard a queue; wait until the output has gone out |
//!
//! Dropping the [`Line`] hangs up, on every path out of a session: DTR and RTS dropped
//! (unless `hangup=off` leaves the line up; [`Line::hang_up`] drops DTR alone, for the
//! hold), the untaken output discarded, exclusivity released, the termios found at open
//! restored, closed.

pub mod termios;

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Flow, Hangup, Parity, Settings};
use crate::sys;
pub use termios::Queue;

static FORCE_PLAIN_TERMIOS: AtomicBool = AtomicBool::new(false);

/// Skips serialport/termios2 and always uses plain termios (the qemu-user path); for tests,
/// set from the `MODEMD_PLAIN_TERMIOS` environment variable by `main`.
pub fn force_plain_termios(on: bool) {
    FORCE_PLAIN_TERMIOS.store(on, Ordering::Relaxed);
}

/// Whether termios2 works: 0 not asked yet, 1 yes, 2 no.
static TERMIOS2: AtomicU8 = AtomicU8::new(0);

fn termios2() -> bool {
    match TERMIOS2.load(Ordering::Relaxed) {
        0 => {
            let yes = termios::probe_termios2();
            TERMIOS2.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
            yes
        }
        known => known == 1,
    }
}

/// An open, configured device. Reads and writes are non-blocking; wait with `poll`.
#[derive(Debug)]
pub struct Line {
    port: Port,
    /// The termios found when the line was opened, restored at close: what a session changed
    /// (an RFC 2217 client's speed, flow) does not outlive it. serialport's open sets the
    /// line before it returns, so on that path this is the line's own settings, raw; on the
    /// open(2) path it is what the device had before modemd.
    found: libc::termios,
    /// Serialises the read-modify-write of the termios by the verbs.
    changing: Mutex<()>,
    /// Whether a break is on: Linux has no call that reads it.
    brk: AtomicBool,
    /// `hangup=off`: DTR and RTS are never dropped, and `HUPCL` stays clear.
    keep_lines: bool,
}

/// Who closes the descriptor. Only ownership differs; the line is set up the same way.
#[derive(Debug)]
enum Port {
    /// serialport's port, kept whole: its drop clears `TIOCEXCL` and closes, and taking the
    /// descriptor out through `into_raw_fd` in serialport 4.10 leaks the port's name.
    Serialport(serialport::TTYPort),
    /// Opened with `open(2)`.
    Plain(OwnedFd),
}

/// The modem status lines, as `TIOCMGET` reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModemStatus {
    /// Clear To Send.
    pub cts: bool,
    /// Data Set Ready.
    pub dsr: bool,
    /// Ring Indicator.
    pub ri: bool,
    /// Data Carrier Detect.
    pub dcd: bool,
}

/// Why a device could not be opened or set up.
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
    /// Opens `device` and sets it up for a session with `settings` and `flow` (see the module
    /// text). With [`Hangup::Off`] the line is left up: `HUPCL` cleared, so that no close
    /// drops DTR, and neither [`Line::hang_up`] nor the drop touches the modem lines.
    pub fn open(
        device: &Path,
        settings: &Settings,
        flow: Flow,
        hangup: Hangup,
    ) -> Result<Line, Error> {
        let err = |what| {
            move |source| Error {
                device: device.to_owned(),
                what,
                source,
            }
        };
        let plain = FORCE_PLAIN_TERMIOS.load(Ordering::Relaxed) || !termios2();
        let port = if plain {
            open_plain(device).map_err(|(what, e)| err(what)(e))?
        } else {
            match open_serialport(device, settings, flow) {
                Ok(port) => Port::Serialport(port),
                // serialport reports every errno it has no name for as `Unknown`; only the
                // probe can tell whether that was termios2 missing (asked once, by errno).
                Err(e) if e.kind() == serialport::ErrorKind::Unknown && !termios2() => {
                    open_plain(device).map_err(|(what, e)| err(what)(e))?
                }
                Err(e) if e.kind() == serialport::ErrorKind::Unknown => {
                    return Err(err("open")(errno_of(device).unwrap_or_else(|| to_io(e))));
                }
                Err(e) => return Err(err("open")(to_io(e))),
            }
        };
        let fd = port.as_fd();
        let found = termios::get(fd).map_err(err("tcgetattr"))?;
        // From here on, dropping the line undoes what was done: any error below hangs up.
        let line = Line {
            port,
            found,
            changing: Mutex::new(()),
            brk: AtomicBool::new(false),
            keep_lines: hangup == Hangup::Off,
        };
        let mut t = found;
        termios::raw(&mut t);
        if line.keep_lines {
            t.c_cflag &= !libc::HUPCL;
        } else {
            t.c_cflag |= libc::HUPCL;
        }
        termios::set_flow(&mut t, flow);
        let back = line.apply(t, settings).map_err(|(what, e)| err(what)(e))?;
        let accepted = line.settings_of(&back).map_err(err("termios2"))?;
        let flow_in_force = termios::flow(&back);
        if accepted != *settings || flow_in_force != flow {
            // A PTY, for one, forces CS8 and no parity: the driver's call; say it and go on.
            crate::warning!(
                "{}: the driver did not accept all of {settings} flow={flow} (in force: \
                 {accepted} flow={flow_in_force})",
                device.display()
            );
        }
        if plain {
            crate::debug!(
                "{}: configured {settings} with plain termios",
                device.display()
            );
        }
        let fd = line.as_fd();
        termios::set_nonblocking(fd).map_err(err("fcntl"))?;
        termios::flush(fd, Queue::Input).map_err(err("tcflush"))?;
        termios::set_modem_lines(fd, libc::TIOCM_DTR | libc::TIOCM_RTS, true)
            .map_err(err("raise DTR"))?;
        Ok(line)
    }

    fn changing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets speed, data bits, parity and stop bits; returns the settings in force.
    pub fn configure(&self, settings: &Settings) -> io::Result<Settings> {
        let _changing = self.changing();
        let t = termios::get(self.as_fd())?;
        let back = self.apply(t, settings).map_err(|(_, e)| e)?;
        self.settings_of(&back)
    }

    /// Applies `settings` on `t` (a copy of the line's termios); returns the termios read
    /// back, what the driver accepted.
    fn apply(
        &self,
        mut t: libc::termios,
        s: &Settings,
    ) -> Result<libc::termios, (&'static str, io::Error)> {
        let fd = self.as_fd();
        termios::set_framing(&mut t, s.data_bits, s.parity, s.stop_bits);
        let standard = termios::set_standard_speed(&mut t, s.baud);
        termios::set(fd, &t).map_err(|e| ("tcsetattr", e))?;
        if !standard {
            if !termios2() {
                let e = io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "{} is not a standard rate and termios2 is unavailable",
                        s.baud
                    ),
                );
                return Err(("set baud rate", e));
            }
            termios::set_custom_speed(fd, s.baud).map_err(|e| ("set baud rate", e))?;
        }
        termios::get(fd).map_err(|e| ("tcgetattr", e))
    }

    /// The speed and framing in force.
    pub fn settings(&self) -> io::Result<Settings> {
        self.settings_of(&termios::get(self.as_fd())?)
    }

    /// The speed and framing `t`, read from the line, holds (a custom speed is asked of
    /// termios2).
    fn settings_of(&self, t: &libc::termios) -> io::Result<Settings> {
        let (data_bits, parity, stop_bits) = termios::framing(t);
        let baud = match termios::standard_speed(t) {
            Some(baud) => baud,
            None if termios2() => termios::custom_speed(self.as_fd())?,
            None => 0,
        };
        Ok(Settings {
            baud,
            data_bits,
            parity,
            stop_bits,
        })
    }

    /// Sets flow control; returns what is in force.
    pub fn set_flow(&self, flow: Flow) -> io::Result<Flow> {
        let _changing = self.changing();
        let mut t = termios::get(self.as_fd())?;
        termios::set_flow(&mut t, flow);
        termios::set(self.as_fd(), &t)?;
        self.flow()
    }

    /// The flow control in force.
    pub fn flow(&self) -> io::Result<Flow> {
        Ok(termios::flow(&termios::get(self.as_fd())?))
    }

    /// Raises or drops DTR. A device without modem lines has nothing to set: `Ok`.
    pub fn set_dtr(&self, on: bool) -> io::Result<()> {
        termios::set_modem_lines(self.as_fd(), libc::TIOCM_DTR, on).map(drop)
    }

    /// Raises or drops RTS (with RTS/CTS flow the driver may raise it again itself).
    pub fn set_rts(&self, on: bool) -> io::Result<()> {
        termios::set_modem_lines(self.as_fd(), libc::TIOCM_RTS, on).map(drop)
    }

    /// Drops DTR so that the modem hangs up, unless the line is left up ([`Hangup::Off`]).
    /// RTS stays up: a modem on RTS/CTS flow must still be able to say what it has (a late
    /// `NO CARRIER`, the remote's last bytes) so that the hold can throw it away; pppd drops
    /// DTR alone too. A device without modem lines has nothing to drop.
    pub fn hang_up(&self) {
        if !self.keep_lines {
            let _ = termios::set_modem_lines(self.as_fd(), libc::TIOCM_DTR, false);
        }
    }

    /// Drops both control lines, at close.
    fn drop_lines(&self) {
        if !self.keep_lines {
            let _ =
                termios::set_modem_lines(self.as_fd(), libc::TIOCM_DTR | libc::TIOCM_RTS, false);
        }
    }

    /// Starts or ends a break condition on the line.
    pub fn set_break(&self, on: bool) -> io::Result<()> {
        termios::set_break(self.as_fd(), on)?;
        self.brk.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Whether a break is on, as last set.
    pub fn break_on(&self) -> bool {
        self.brk.load(Ordering::Relaxed)
    }

    /// The modem status lines; `None` if the device has none (a PTY).
    pub fn modem_status(&self) -> io::Result<Option<ModemStatus>> {
        let bits = termios::modem_lines(self.as_fd())?;
        Ok(bits.map(|b| ModemStatus {
            cts: b & libc::TIOCM_CTS != 0,
            dsr: b & libc::TIOCM_DSR != 0,
            ri: b & libc::TIOCM_RI != 0,
            dcd: b & libc::TIOCM_CD != 0,
        }))
    }

    /// Discards what is queued in `queue`.
    pub fn flush(&self, queue: Queue) -> io::Result<()> {
        termios::flush(self.as_fd(), queue)
    }

    /// Throws away what the device has not taken yet and says how many bytes that was, so
    /// that the session counts only what went out. Without it, close() on a stalled UART
    /// waits up to the driver's closing_wait (30 s) with the session, its lock and its
    /// thread. Only a non-empty queue is flushed: a PTY reports none, and flushing its
    /// slave would drop bytes already on their way to the master's reader.
    pub fn abandon_output(&self) -> usize {
        let fd = self.as_fd();
        match termios::output_queued(fd) {
            Ok(0) | Err(_) => 0,
            Ok(queued) => {
                let _ = termios::flush(fd, Queue::Output);
                queued
            }
        }
    }

    /// Waits (at most `limit`, and no longer once `give_up` says so) until the output queue
    /// has gone out on the wire, so a client's last bytes are not cut off by the hang-up.
    pub fn drain(&self, limit: Duration, give_up: impl Fn() -> bool) {
        let start = Instant::now();
        while start.elapsed() < limit && !give_up() {
            match termios::output_queued(self.as_fd()) {
                Ok(0) | Err(_) => return,
                Ok(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

impl Port {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            // SAFETY: the port's descriptor stays open for as long as the port, which the
            // borrow of `self` outlives.
            Port::Serialport(port) => unsafe { BorrowedFd::borrow_raw(port.as_raw_fd()) },
            Port::Plain(fd) => fd.as_fd(),
        }
    }
}

impl AsFd for Line {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.port.as_fd()
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        // Hang up even if HUPCL is ignored by the driver (not with `hangup=off`).
        self.drop_lines();
        let fd = self.port.as_fd();
        if self.brk.load(Ordering::Relaxed) {
            let _ = termios::set_break(fd, false);
        }
        if let Port::Plain(_) = self.port {
            // On a PTY the exclusive flag would otherwise outlive this open and lock out the
            // next, unprivileged opener; serialport's port clears it itself.
            let _ = termios::set_exclusive(fd, false);
        }
        self.abandon_output();
        let mut found = self.found;
        if self.keep_lines {
            // Restoring HUPCL now would drop DTR at the close just after.
            found.c_cflag &= !libc::HUPCL;
        }
        let _ = termios::set(fd, &found);
    }
}

/// The errno behind an open that serialport reports as `Unknown` (it names only a few), as
/// a plain open and `tcgetattr` meet it: a caller must tell "not a tty" from "out of
/// descriptors". `None` if they both work now.
fn errno_of(device: &Path) -> Option<io::Error> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK;
    match sys::open(device, flags, 0) {
        Err(e) => Some(e),
        Ok(fd) => termios::get(fd.as_fd()).err(),
    }
}

impl crate::spare::Exhaustion for Error {
    fn out_of_fds(&self) -> bool {
        crate::spare::Exhaustion::out_of_fds(&self.source)
    }
}

impl Error {
    /// What went wrong, for the reason a client is told.
    pub fn io(&self) -> &io::Error {
        &self.source
    }
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
/// termios2. ([`Line::open`] then applies them once more its own way and reads them back.)
fn open_serialport(
    device: &Path,
    s: &Settings,
    flow: Flow,
) -> Result<serialport::TTYPort, serialport::Error> {
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
        .flow_control(match flow {
            Flow::None => serialport::FlowControl::None,
            Flow::RtsCts => serialport::FlowControl::Hardware,
            Flow::XonXoff => serialport::FlowControl::Software,
        })
        .open_native()
}

/// Opens with `open(2)`, exclusive as serialport makes it: `TIOCEXCL` stops every other
/// opener but root, `flock` the cooperative rest (`LOCK_NB`: fails at once against a holder).
fn open_plain(device: &Path) -> Result<Port, (&'static str, io::Error)> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK;
    let fd = sys::open(device, flags, 0).map_err(|e| ("open", e))?;
    termios::set_exclusive(fd.as_fd(), true).map_err(|e| ("TIOCEXCL", e))?;
    if let Err(e) = termios::flock_exclusive(fd.as_fd()) {
        let _ = termios::set_exclusive(fd.as_fd(), false);
        // Another program holds it (pyserial's exclusive=True): busy, as serialport says.
        let e = match e.kind() {
            io::ErrorKind::WouldBlock => io::Error::from(io::ErrorKind::ResourceBusy),
            _ => e,
        };
        return Err(("flock", e));
    }
    Ok(Port::Plain(fd))
}

// The relay's two threads and the session share one line: it must stay shareable.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Line>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pty::Pty;

    fn settings(text: &str) -> Settings {
        text.parse().expect("settings")
    }

    fn open(pty: &Pty, text: &str) -> Result<Line, Error> {
        Line::open(
            &pty.slave,
            &settings(text),
            Flow::None,
            Hangup::Hold(Duration::ZERO),
        )
    }

    fn slave_termios(pty: &Pty) -> libc::termios {
        let fd = sys::open(&pty.slave, libc::O_RDWR | libc::O_NOCTTY, 0).expect("open slave");
        termios::get(fd.as_fd()).expect("tcgetattr")
    }

    #[test]
    fn open_reads_back_what_the_driver_accepted() {
        let pty = Pty::open().expect("pty");
        let line = open(&pty, "9600,7,E,2").expect("open");
        // Linux PTYs force CS8 without parity; speed and stop bits are kept.
        assert_eq!(line.settings().expect("settings"), settings("9600,8,N,2"));
        assert_eq!(line.flow().expect("flow"), Flow::None);
    }

    #[test]
    fn verbs_change_the_line_while_it_is_open() {
        let pty = Pty::open().expect("pty");
        let line = open(&pty, "115200,8,N,1").expect("open");
        let now = line.configure(&settings("2400,8,N,2")).expect("configure");
        assert_eq!(now, settings("2400,8,N,2"));
        assert_eq!(line.settings().expect("settings"), now);
        for flow in [Flow::RtsCts, Flow::XonXoff, Flow::None] {
            assert_eq!(line.set_flow(flow).expect("set_flow"), flow);
        }
        // A rate with no B constant needs termios2.
        let custom = line.configure(&settings("250000,8,N,1"));
        if termios2() {
            assert_eq!(custom.expect("termios2 rate").baud, 250_000);
        } else {
            assert!(custom.is_err());
        }
    }

    #[test]
    fn a_line_without_modem_lines_takes_dtr_rts_and_break() {
        let pty = Pty::open().expect("pty");
        let line = open(&pty, "115200,8,N,1").expect("open");
        line.set_dtr(false).expect("dtr");
        line.set_rts(true).expect("rts");
        assert_eq!(line.modem_status().expect("TIOCMGET"), None);
        assert!(!line.break_on());
        line.set_break(true).expect("break");
        assert!(line.break_on());
        line.flush(Queue::Both).expect("flush");
    }

    #[test]
    fn closing_undoes_what_the_session_changed() {
        let pty = Pty::open().expect("pty");
        let before = slave_termios(&pty);
        assert_ne!(termios::standard_speed(&before), Some(2400));
        let line = open(&pty, "1200,8,N,1").expect("open");
        line.configure(&settings("2400,8,N,2")).expect("configure");
        line.set_flow(Flow::RtsCts).expect("flow");
        drop(line);
        let after = slave_termios(&pty);
        assert_ne!(termios::standard_speed(&after), Some(2400));
        assert_eq!(after.c_cflag & libc::CSTOPB, 0);
        assert_eq!(termios::flow(&after), termios::flow(&before));
        if !termios2() {
            // Opened with open(2): what was found is the device's own termios.
            assert_eq!(
                termios::standard_speed(&after),
                termios::standard_speed(&before)
            );
        }
    }

    #[test]
    fn bytes_reach_the_line_and_stale_input_is_flushed_at_open() {
        let pty = Pty::open().expect("pty");
        // Said before the session: the open must drop it. A PTY keeps its input queue only
        // while the slave is open, so hold it open meanwhile, as a modem's UART would.
        let holder = sys::open(&pty.slave, libc::O_RDWR | libc::O_NOCTTY, 0).expect("slave");
        sys::write(pty.master.as_fd(), b"NO CARRIER\r\n").expect("write");
        std::thread::sleep(Duration::from_millis(50));
        let line = open(&pty, "115200,8,N,1").expect("open");
        drop(holder);
        sys::write(pty.master.as_fd(), b"OK\r\n").expect("write");
        let ready = sys::poll(
            &[(line.as_fd().as_raw_fd(), sys::Interest::Read)],
            Some(Duration::from_secs(5)),
        )
        .expect("poll");
        assert!(ready[0].read);
        let mut buf = [0u8; 64];
        let n = sys::read(line.as_fd(), &mut buf).expect("read");
        assert_eq!(&buf[..n], b"OK\r\n");
    }
}
