//! `modem-sim`: a simulated Hayes modem on a pseudo-terminal, for demos and
//! integration tests of modemd.
//!
//! It creates a PTY, prints `PTY <slave path>` on stdout (the only stdout
//! output) and then serves the master side forever, never holding the slave
//! open itself. In command mode it echoes input (except LF) and answers `AT`,
//! `ATZ`, `ATE0`/`ATE1`, `ATI`/`ATI0`/`ATI1` and `ATD…` (which answers
//! `CONNECT 115200` and enters data mode); anything else is `ERROR`. In data
//! mode every byte is echoed back unchanged until the `+++` escape, surrounded
//! by guard times of silence, returns to command mode with `OK`. When the
//! slave has no opener it resets to command mode and waits for the next one.
//! SIGTERM/SIGINT make it exit 0, removing the `-l` symlink.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use modemd::pty::Pty;
use modemd::serial::termios;
use modemd::sys::{self, Interest, cvt};

const OK: &[u8] = b"\r\nOK\r\n";
const ERROR: &[u8] = b"\r\nERROR\r\n";
const MAX_LINE: usize = 256;
const CHUNK: usize = 16 * 1024;
const IDLE_POLL: Duration = Duration::from_millis(100);
const HANGUP_SLEEP: Duration = Duration::from_millis(10);

static STOP: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    Data,
}

/// The pure Hayes state machine: bytes in, bytes out, no I/O.
struct Modem {
    ident: String,
    guard: Duration,
    mode: Mode,
    echo: bool,
    line: Vec<u8>,
    overflow: bool,
    last_rx: Instant,
    plus: u8,
    plus_at: Instant,
}

impl Modem {
    fn new(ident: &str, guard: Duration, now: Instant) -> Self {
        Modem {
            ident: ident.to_owned(),
            guard,
            mode: Mode::Command,
            echo: true,
            line: Vec::new(),
            overflow: false,
            last_rx: now,
            plus: 0,
            plus_at: now,
        }
    }

    /// Back to command mode with echo on and an empty line (hang-up or ATZ).
    fn reset(&mut self) {
        self.mode = Mode::Command;
        self.echo = true;
        self.line.clear();
        self.overflow = false;
        self.plus = 0;
    }

    /// When the pending `+++` escape completes, if one is pending.
    fn deadline(&self) -> Option<Instant> {
        (self.mode == Mode::Data && self.plus == 3).then(|| self.plus_at + self.guard)
    }

    /// Timer hook: completes the escape once the trailing guard has elapsed.
    fn tick(&mut self, now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        self.check_escape(now, &mut out);
        out
    }

    fn check_escape(&mut self, now: Instant, out: &mut Vec<u8>) {
        if self.deadline().is_some_and(|d| now >= d) {
            self.reset();
            out.extend_from_slice(OK);
        }
    }

    /// Feeds bytes received at `now`; returns the bytes to send back.
    fn input(&mut self, data: &[u8], now: Instant) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 32);
        self.check_escape(now, &mut out);
        let silent_before = now.duration_since(self.last_rx) >= self.guard;
        for (i, &b) in data.iter().enumerate() {
            match self.mode {
                Mode::Command => self.command_byte(b, &mut out),
                Mode::Data => {
                    out.push(b);
                    self.plus = match (b, self.plus) {
                        (b'+', 0) if i == 0 && silent_before => 1,
                        (b'+', n @ (1 | 2)) => n + 1,
                        _ => 0,
                    };
                    if self.plus == 3 {
                        self.plus_at = now;
                    }
                }
            }
        }
        self.last_rx = now;
        out
    }

    fn command_byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if b == b'\n' {
            return;
        }
        if self.echo {
            out.push(b);
        }
        match b {
            b'\r' => {
                let line = std::mem::take(&mut self.line);
                let overflow = std::mem::replace(&mut self.overflow, false);
                self.execute(&line, overflow, out);
            }
            0x08 | 0x7f => {
                self.line.pop();
            }
            _ if self.line.len() < MAX_LINE => self.line.push(b),
            _ => self.overflow = true,
        }
    }

    fn execute(&mut self, line: &[u8], overflow: bool, out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(line).trim().to_ascii_uppercase();
        if text.is_empty() && !overflow {
            return;
        }
        let Some(cmd) = text.strip_prefix("AT").filter(|_| !overflow) else {
            out.extend_from_slice(ERROR);
            return;
        };
        match cmd {
            "" => {}
            "Z" => self.reset(),
            "E0" => self.echo = false,
            "E1" => self.echo = true,
            "I" | "I0" => out.extend_from_slice(b"\r\n33600\r\n"),
            "I1" => out.extend_from_slice(format!("\r\n{}\r\n", self.ident).as_bytes()),
            _ if cmd.starts_with('D') => {
                out.extend_from_slice(b"\r\nCONNECT 115200\r\n");
                self.mode = Mode::Data;
                self.plus = 0;
                return;
            }
            _ => {
                out.extend_from_slice(ERROR);
                return;
            }
        }
        out.extend_from_slice(OK);
    }
}

/// Adds the failing call's name to an error.
fn ctx(call: &'static str) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{call}: {e}"))
}

/// Waits up to `timeout` for `interest` on the fd; returns revents (none on EINTR, so that
/// the caller looks at `STOP` again).
fn poll_fd(fd: RawFd, interest: Interest, timeout: Duration) -> io::Result<libc::c_short> {
    let mut pfd = [sys::pollfd(fd, interest)];
    // Whole milliseconds, rounded up: woken before the escape's guard time is over, the
    // loop would only spin until it is.
    let ms = u64::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
    sys::poll_fds(&mut pfd, Some(Duration::from_millis(ms)))?;
    Ok(pfd[0].revents)
}

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs SIGTERM/SIGINT handlers without SA_RESTART, so blocking calls see EINTR.
fn install_signal_handlers() -> io::Result<()> {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: an all-zero sigaction is valid: empty mask, no flags.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: sa is initialised; the handler only stores to an atomic (async-signal-safe).
        cvt(unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) })
            .map_err(ctx("sigaction"))?;
    }
    Ok(())
}

/// Writes everything to the nonblocking master, waiting for POLLOUT when
/// full. A blocking write could sleep forever: the kernel does not wake a
/// master writer blocked on a full slave queue when the slave's last opener
/// closes, whereas a fresh write() then fails with EIO.
fn write_all(f: &mut File, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        if STOP.load(Ordering::SeqCst) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match f.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                poll_fd(f.as_raw_fd(), Interest::Write, IDLE_POLL).map_err(ctx("poll"))?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_hangup(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EIO)
}

/// Serves the master until SIGTERM/SIGINT.
fn serve(master: &mut File, modem: &mut Modem) -> io::Result<()> {
    let fd = master.as_raw_fd();
    let mut buf = vec![0u8; CHUNK];
    let mut hung = true;
    while !STOP.load(Ordering::SeqCst) {
        let timeout = modem
            .deadline()
            .map_or(IDLE_POLL, |d| d.saturating_duration_since(Instant::now()))
            .min(IDLE_POLL);
        let revents = poll_fd(fd, Interest::Read, timeout).map_err(ctx("poll"))?;
        let mut out = Vec::new();
        let mut hangup = false;
        if revents & libc::POLLIN != 0 {
            match master.read(&mut buf) {
                Ok(0) => hangup = true,
                Ok(n) => {
                    if hung {
                        eprintln!("modem-sim: line up");
                        hung = false;
                    }
                    out = modem.input(&buf[..n], Instant::now());
                }
                Err(e) if is_hangup(&e) => hangup = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(ctx("read")(e)),
            }
        } else if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            hangup = true;
        } else if revents & libc::POLLNVAL != 0 {
            return Err(io::Error::other("poll: POLLNVAL on master"));
        }
        if !hangup {
            out.extend(modem.tick(Instant::now()));
            match write_all(master, &out) {
                Ok(()) => continue,
                Err(e) if is_hangup(&e) => hangup = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ctx("write")(e)),
            }
        }
        if hangup {
            if !hung {
                eprintln!("modem-sim: hang-up (slave closed)");
                hung = true;
            }
            modem.reset();
            std::thread::sleep(HANGUP_SLEEP);
        }
    }
    Ok(())
}

/// Points `link` at `target`, replacing an existing symlink (but nothing else).
fn make_link(link: &Path, target: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(link)?;
    }
    std::os::unix::fs::symlink(target, link)
}

/// Removes our symlink at exit, if it still points at our slave.
fn remove_link(link: Option<&str>, slave: &Path) {
    let Some(link) = link else { return };
    if std::fs::read_link(link).is_ok_and(|t| t == slave) {
        if let Err(e) = std::fs::remove_file(link) {
            eprintln!("modem-sim: removing {link}: {e}");
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut opts = getopts::Options::new();
    opts.optopt("l", "", "create symlink LINKPATH -> PTY slave", "LINKPATH");
    opts.optopt("i", "", "identity for ATI1 (default: Linux ISDN)", "IDENT");
    opts.optopt(
        "g",
        "",
        "escape guard time in ms (default: 300)",
        "GUARD_MS",
    );
    opts.optflag("h", "", "print this help");
    let usage = opts.usage("Usage: modem-sim [-l LINKPATH] [-i IDENT] [-g GUARD_MS] [-h]");
    let m = match opts.parse(&args[1..]) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("modem-sim: {e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    if m.opt_present("h") {
        print!("{usage}");
        return ExitCode::SUCCESS;
    }
    let ident = m.opt_str("i").unwrap_or_else(|| "Linux ISDN".to_owned());
    let guard_ms = match m.opt_str("g").map(|g| g.parse::<u64>()).transpose() {
        Ok(g) => g.unwrap_or(300),
        Err(e) => {
            eprintln!("modem-sim: invalid -g value: {e}");
            return ExitCode::from(2);
        }
    };
    let link = m.opt_str("l");

    let setup = Pty::open().and_then(|Pty { master, slave }| {
        termios::set_nonblocking(master.as_fd()).map_err(ctx("fcntl(F_SETFL)"))?;
        Ok((File::from(master), slave))
    });
    let (mut master, slave) = match setup {
        Ok(v) => v,
        Err(e) => {
            eprintln!("modem-sim: PTY creation failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = install_signal_handlers() {
        eprintln!("modem-sim: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(link) = &link {
        if let Err(e) = make_link(Path::new(link), &slave) {
            eprintln!("modem-sim: symlink {link} -> {}: {e}", slave.display());
            return ExitCode::FAILURE;
        }
    }
    let mut stdout = io::stdout().lock();
    if let Err(e) = writeln!(stdout, "PTY {}", slave.display()).and_then(|()| stdout.flush()) {
        eprintln!("modem-sim: writing stdout: {e}");
        remove_link(link.as_deref(), &slave);
        return ExitCode::FAILURE;
    }
    drop(stdout);
    eprintln!(
        "modem-sim: serving {} (ident {ident:?}, guard {guard_ms} ms)",
        slave.display()
    );

    let mut modem = Modem::new(&ident, Duration::from_millis(guard_ms), Instant::now());
    let result = serve(&mut master, &mut modem);
    remove_link(link.as_deref(), &slave);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("modem-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Duration = Duration::from_millis(300);

    fn modem() -> (Modem, Instant) {
        let t0 = Instant::now();
        (Modem::new("Linux ISDN", G, t0), t0)
    }

    fn connected() -> (Modem, Instant) {
        let (mut m, t0) = modem();
        assert_eq!(
            m.input(b"ATDT123\r", t0),
            b"ATDT123\r\r\nCONNECT 115200\r\n"
        );
        assert_eq!(m.mode, Mode::Data);
        (m, t0)
    }

    #[test]
    fn atz_echoes_and_ok() {
        let (mut m, t0) = modem();
        assert_eq!(m.input(b"atz\r", t0), b"atz\r\r\nOK\r\n");
    }

    #[test]
    fn ati1_gives_ident() {
        let (mut m, t0) = modem();
        assert_eq!(
            m.input(b"ati1\r", t0),
            b"ati1\r\r\nLinux ISDN\r\n\r\nOK\r\n"
        );
        assert_eq!(m.input(b"ATI\r", t0), b"ATI\r\r\n33600\r\n\r\nOK\r\n");
    }

    #[test]
    fn ate0_stops_echo() {
        let (mut m, t0) = modem();
        assert_eq!(m.input(b"ATE0\r", t0), b"ATE0\r\r\nOK\r\n");
        assert_eq!(m.input(b"AT\r", t0), b"\r\nOK\r\n");
        assert_eq!(m.input(b"ATZ\r", t0), b"\r\nOK\r\n");
        assert_eq!(m.input(b"AT\r", t0), b"AT\r\r\nOK\r\n");
    }

    #[test]
    fn atdt_connects_and_echoes_data() {
        let (mut m, t0) = connected();
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(m.input(&all, t0), all);
        assert_eq!(m.input(b"AT\r\n", t0), b"AT\r\n");
    }

    #[test]
    fn escape_with_guards_returns_ok() {
        let (mut m, t0) = connected();
        let t1 = t0 + G + Duration::from_millis(1);
        assert_eq!(m.input(b"+++", t1), b"+++");
        assert_eq!(m.deadline(), Some(t1 + G));
        assert!(m.tick(t1 + G / 2).is_empty());
        assert_eq!(m.tick(t1 + G), OK);
        assert_eq!(m.mode, Mode::Command);
        assert_eq!(m.input(b"AT\r", t1 + G), b"AT\r\r\nOK\r\n");
    }

    #[test]
    fn escape_split_and_late_input_completes_first() {
        let (mut m, t0) = connected();
        let t1 = t0 + G * 2;
        m.input(b"+", t1);
        m.input(b"++", t1 + Duration::from_millis(50));
        let late = t1 + G * 3;
        assert_eq!(m.input(b"AT\r", late), b"\r\nOK\r\nAT\r\r\nOK\r\n");
    }

    #[test]
    fn plus_inside_stream_does_not_escape() {
        let (mut m, t0) = connected();
        let t1 = t0 + G * 2;
        assert_eq!(m.input(b"abc+++def", t1), b"abc+++def");
        m.input(b"xyz", t1 + G * 2);
        let t2 = t1 + G * 2 + Duration::from_millis(10);
        m.input(b"+++", t2);
        assert_eq!(m.deadline(), None);
        assert!(m.tick(t2 + G * 5).is_empty());
        // Trailing data cancels an otherwise guarded escape.
        let t3 = t2 + G * 2;
        m.input(b"+++", t3);
        m.input(b"x", t3 + G / 2);
        assert!(m.tick(t3 + G * 5).is_empty());
        assert_eq!(m.mode, Mode::Data);
    }

    #[test]
    fn unknown_and_non_at_give_error() {
        let (mut m, t0) = modem();
        assert_eq!(m.input(b"AT&F\r", t0), b"AT&F\r\r\nERROR\r\n");
        assert_eq!(m.input(b"hello\r", t0), b"hello\r\r\nERROR\r\n");
        assert_eq!(m.input(b"\r", t0), b"\r");
        let long = vec![b'A'; MAX_LINE + 10];
        let out = m.input(&long, t0);
        assert_eq!(out.len(), long.len());
        assert_eq!(m.input(b"\r", t0), b"\r\r\nERROR\r\n");
    }

    #[test]
    fn lf_ignored_and_backspace_edits() {
        let (mut m, t0) = modem();
        assert_eq!(m.input(b"\nA\nT\r\n", t0), b"AT\r\r\nOK\r\n");
        assert_eq!(m.input(b"ATX\x7fZ\r", t0), b"ATX\x7fZ\r\r\nOK\r\n");
    }

    #[test]
    fn hangup_resets() {
        let (mut m, t0) = connected();
        m.echo = false;
        m.reset();
        assert_eq!(m.mode, Mode::Command);
        assert_eq!(m.input(b"AT\r", t0), b"AT\r\r\nOK\r\n");
    }
}
