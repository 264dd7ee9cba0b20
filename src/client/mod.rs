//! Client mode, `modemd -l LINK URL` (DESIGN §5): a local tty for a remote line, so that
//! minicom, cu, chat and pppd on a LAN host can dial out through the router's modem.
//!
//! One thread serves the tty: it waits for a program to open it, connects (retrying with
//! back-off while the tty stays open), relays until either side ends, and disconnects when
//! the last program closes the tty, so the remote modem is claimed only while used. When the
//! server ends the connection, the programs are told as a real tty tells them after carrier
//! loss: the PTY is hung up (their reads end) and `LINK` moves to a fresh one. The main
//! thread takes the signals, as the daemon's does.

pub mod line;
pub mod tty;
pub mod url;

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::daemon::{self, Detach, PidFile};
use crate::relay::client::Remote;
use crate::relay::{self, Control, End};
use crate::server::{Ended, Error, setup};
use crate::sys::{self, EventFd, Interest, SignalSet};
use tty::{Link, Tty};
use url::{Scheme, Url};

/// The first wait after a failed connect; each next one doubles, up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest wait between two connects.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// How long one connect may take (per address of the host).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the programs get to read the server's last words before their tty hangs up.
const LAST_WORDS: Duration = Duration::from_millis(500);

/// What client mode needs.
pub struct Options {
    /// Where programs find the tty.
    pub link: PathBuf,
    /// The server's line.
    pub url: Url,
    /// Pid file to write once the tty is linked, removed at exit.
    pub pid_file: Option<PathBuf>,
    /// Detach and log to syslog once the tty is linked.
    pub daemon: bool,
}

/// The link and the tty it points at now, for the main thread to remove at exit.
struct Linked {
    link: Link,
    slave: Mutex<PathBuf>,
}

impl Linked {
    fn remove(&self) {
        let slave = self.slave.lock().unwrap_or_else(|p| p.into_inner());
        self.link.remove(&slave);
    }

    /// A new tty with the settings of `old` (`None`: the defaults), and LINK pointed at it;
    /// under the lock that [`Linked::remove`] takes, so a SIGTERM meanwhile removes the
    /// link to whichever tty it points at.
    fn renew(&self, old: Option<&Tty>) -> io::Result<Tty> {
        let tty = Tty::new()?;
        if let Some(old) = old {
            tty.take_settings(old);
        }
        self.point(&tty)?;
        Ok(tty)
    }

    /// Points LINK at `tty`, under the lock [`Linked::remove`] takes.
    fn point(&self, tty: &Tty) -> io::Result<()> {
        let mut slave = self.slave.lock().unwrap_or_else(|p| p.into_inner());
        self.link.point(&tty.slave)?;
        *slave = tty.slave.clone();
        Ok(())
    }
}

/// Runs client mode until SIGTERM or SIGINT.
pub fn run(opts: Options) -> Result<Ended, Error> {
    let signals = SignalSet::new(&daemon::SIGNALS);
    // Before any thread exists, so that every thread inherits the mask.
    signals.block().map_err(setup("block signals"))?;
    if let Some(path) = &opts.pid_file {
        daemon::check_not_running(path).map_err(Error::Pid)?;
    }
    let link = Link::new(&opts.link).map_err(setup("link the tty"))?;
    let tty = Tty::new().map_err(setup("make a pseudo-terminal"))?;
    link.point(&tty.slave).map_err(setup("link the tty"))?;
    let linked = Arc::new(Linked {
        link,
        slave: Mutex::new(tty.slave.clone()),
    });
    let detached = if opts.daemon {
        match daemon::daemonize() {
            Ok(Detach::Exit(outcome)) => return Ok(Ended::Detached(outcome)),
            Ok(Detach::Daemon(d)) => {
                crate::log::use_syslog();
                Some(d)
            }
            Err(e) => {
                linked.remove();
                return Err(setup("become a daemon")(e));
            }
        }
    } else {
        None
    };
    let started = start(tty, &opts, &linked);
    if let Some(d) = detached {
        d.report(started.as_ref().map(|_| ()).map_err(ToString::to_string));
    }
    let pid_file = match started {
        Ok(pid_file) => pid_file,
        Err(e) => {
            linked.remove();
            return Err(e);
        }
    };
    loop {
        match signals.wait() {
            Ok(libc::SIGHUP) => crate::debug!("SIGHUP: nothing to reload in client mode"),
            Ok(_) => break,
            Err(e) => {
                crate::error!("sigwait: {e}");
                break;
            }
        }
    }
    // The process exit closes the connection (the server hangs up) and the PTY.
    crate::info!("shutting down");
    linked.remove();
    drop(pid_file);
    Ok(Ended::Stopped)
}

/// Everything after linking that can still fail start-up: the pid file and the thread.
fn start(tty: Tty, opts: &Options, linked: &Arc<Linked>) -> Result<Option<PidFile>, Error> {
    let pid_file = match &opts.pid_file {
        Some(path) => Some(PidFile::write(path).map_err(Error::Pid)?),
        None => None,
    };
    crate::info!(
        "{} is {}: connecting to {} while a program has it open",
        opts.link.display(),
        tty.slave.display(),
        opts.url
    );
    let (url, linked) = (opts.url.clone(), Arc::clone(linked));
    let job = Box::new(move || serve(tty, &url, &linked));
    crate::thread::spawn("client".into(), crate::thread::STACK, job)
        .map_err(setup("start the client thread"))?;
    Ok(pid_file)
}

/// How a connection ended.
enum Gone {
    /// The last program closed the tty.
    Tty,
    /// The server ended it, or it failed: the tty is to hang up.
    Line(End),
}

/// The client thread: for ever, a connection per time the tty is in use.
fn serve(mut tty: Tty, url: &Url, linked: &Linked) {
    let link = linked.link.path();
    let asked = Arc::default();
    loop {
        if let Err(e) = tty.wait_open() {
            crate::error!("cannot wait for {} to be opened: {e}", link.display());
            std::thread::sleep(MAX_RETRY);
            continue;
        }
        let Some(stream) = connect_while_open(&tty, url, link) else {
            crate::info!("{} closed before a connection", link.display());
            tty = next(tty, linked);
            continue;
        };
        crate::info!("{} opened: connected to {url}", link.display());
        match session(&tty, url, stream, &asked) {
            Gone::Tty => {
                crate::info!("{} closed: disconnected from {url}", link.display());
                tty = next(tty, linked);
            }
            Gone::Line(end) => {
                // In the relay's words the server is the client.
                let why: &dyn std::fmt::Display = match &end {
                    End::ClientClosed => &"connection closed",
                    End::ClientError(e) => e,
                    end => end,
                };
                crate::warning!("{url}: {why}; hanging up {}", link.display());
                tty = hang_up(tty, linked);
            }
        }
    }
}

/// The tty for the next program after the last one closed `old`: a fresh one with the same
/// settings, as a real port is after its last close (nothing unread or unsent in it, not
/// exclusive), which a PTY whose master stays open is not. A program that opened `old`
/// again meanwhile keeps it.
fn next(old: Tty, linked: &Linked) -> Tty {
    if !old.closed_within(Some(Duration::ZERO)) {
        return old;
    }
    // Emptied first: if LINK has to go back to it below, nothing of the last program's
    // reaches the next one.
    old.flush();
    let tty = match linked.renew(Some(&old)) {
        Ok(tty) => tty,
        Err(e) => {
            crate::error!(
                "cannot make a new tty for {}: {e}",
                linked.link.path().display()
            );
            return old;
        }
    };
    // A program that opened LINK while the new tty was being made holds the old one, which
    // must not hang up under it: LINK goes back to the old tty, shared as before.
    if !old.closed_within(Some(Duration::ZERO)) && linked.point(&old).is_ok() {
        return old;
    }
    tty
}

/// Hangs `old` up after its programs had a moment to read, once LINK points at a new tty:
/// a program that reopens LINK at once finds the new one. If none can be made, LINK goes
/// first (it must not lead to a `/dev/pts/N` that a terminal may get next), and a new one
/// is tried until it can be made.
fn hang_up(old: Tty, linked: &Linked) -> Tty {
    let renewed = linked.renew(Some(&old));
    old.drain(LAST_WORDS);
    if let Ok(tty) = renewed {
        return tty;
    }
    linked.remove();
    drop(old);
    loop {
        match linked.renew(None) {
            Ok(tty) => return tty,
            Err(e) => {
                crate::error!(
                    "cannot make a new tty for {}: {e}",
                    linked.link.path().display()
                );
                std::thread::sleep(MAX_RETRY);
            }
        }
    }
}

/// Connects to the server, retrying with back-off while the tty stays open; `None` once the
/// last program has closed it.
fn connect_while_open(tty: &Tty, url: &Url, link: &Path) -> Option<TcpStream> {
    let mut wait = FIRST_RETRY;
    let mut failures = 0u32;
    loop {
        match connect(url, tty) {
            Ok(Some(stream)) => return Some(stream),
            Ok(None) => return None,
            Err(e) if failures == 0 => crate::warning!(
                "cannot connect to {url}: {e}; retrying while {} is open",
                link.display()
            ),
            Err(e) => crate::debug!("cannot connect to {url}: {e} ({failures} failures)"),
        }
        failures += 1;
        if tty.closed_within(Some(wait)) {
            return None;
        }
        wait = (wait * 2).min(MAX_RETRY);
    }
}

/// A connection to the first of the host's addresses that answers; `Ok(None)` if the last
/// program closed the tty meanwhile.
fn connect(url: &Url, tty: &Tty) -> io::Result<Option<TcpStream>> {
    let host = std::ffi::CString::new(url.host.as_str())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let addrs = sys::host_addrs(&host)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"))?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for ip in addrs {
        match connect_to(SocketAddr::new(ip, url.port), tty) {
            Ok(None) => return Ok(None),
            Ok(Some(stream)) => {
                // Keystrokes and AT commands are single bytes: no Nagle delay for them.
                stream.set_nodelay(true)?;
                keepalive(&stream)?;
                return Ok(Some(stream));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Connects to `addr` within [`CONNECT_TIMEOUT`], watching the tty meanwhile: a program that
/// gave up is not kept waiting for a server that does not answer.
fn connect_to(addr: SocketAddr, tty: &Tty) -> io::Result<Option<TcpStream>> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let socket = sys::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK)?;
    match sys::connect(socket.as_fd(), addr) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            let fds = [
                (socket.as_raw_fd(), Interest::Write),
                (tty.master.as_fd().as_raw_fd(), Interest::Gone),
            ];
            let ready = sys::poll(&fds, Some(CONNECT_TIMEOUT))?;
            if ready[1].hangup {
                return Ok(None);
            }
            if !(ready[0].write || ready[0].hangup) {
                return Err(io::ErrorKind::TimedOut.into());
            }
            match sys::getsockopt_int(socket.as_fd(), libc::SOL_SOCKET, libc::SO_ERROR)? {
                0 => {}
                errno => return Err(io::Error::from_raw_os_error(errno)),
            }
        }
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from(socket);
    // The relay reads the server with blocking calls.
    stream.set_nonblocking(false)?;
    Ok(Some(stream))
}

/// TCP keepalive, so that a server that vanished without a word (a router rebooted while
/// the modem was quiet) hangs the tty up within about a minute and a half.
fn keepalive(stream: &TcpStream) -> io::Result<()> {
    let fd = stream.as_fd();
    sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 60)?;
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10)?;
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3)
}

/// Relays one connection until it ends.
fn session(tty: &Tty, url: &Url, stream: TcpStream, asked: &Arc<Mutex<line::Asked>>) -> Gone {
    let (wake, ready) = match (EventFd::new(), EventFd::new()) {
        (Ok(wake), Ok(ready)) => (wake, ready),
        (Err(e), _) | (_, Err(e)) => return Gone::Line(End::NoBuffer(e)),
    };
    let ctl = Arc::new(Control::new(stream, wake));
    let end = match url.scheme {
        Scheme::Socket => {
            relay::run(&ctl, &tty.master, None);
            ctl.take_end()
        }
        Scheme::Rfc2217 => {
            let remote = Arc::new(Remote::new(asked, ready));
            relay::client::run(&ctl, &tty.master, &remote);
            let end = ctl.take_end();
            if matches!(end, Some(End::TtyClosed)) {
                relay::client::drop_dtr(&ctl, &remote);
            }
            end
        }
    };
    match end {
        Some(End::TtyClosed) => Gone::Tty,
        Some(end) => Gone::Line(end),
        None => Gone::Line(End::ClientClosed),
    }
}
