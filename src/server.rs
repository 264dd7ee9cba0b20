//! The daemon: one blocking listener thread per `LISTEN`, one thread per accepted client, and
//! the main thread waiting for signals.
//!
//! Signals are blocked in every thread and taken synchronously with `sigwait` by the main
//! thread, so no code runs in a signal handler. On SIGTERM/SIGINT every session is stopped
//! (hang-up, unlock) and waited for, the pid file removed, and `run` returns.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::config::{Config, Listen, Pool};
use crate::session::{self, Context, Registry};
use crate::sys::SignalSet;

/// Stack of a session thread: it runs the resolver (getaddrinfo/getnameinfo), whose glibc
/// implementation wants tens of KiB; the pages are only committed if used.
pub const SESSION_STACK: usize = 256 * 1024;
/// How long SIGTERM waits for sessions to hang up and unlock.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(1500);

/// What the daemon needs besides the config.
pub struct Options {
    /// UUCP lock directory.
    pub lock_dir: PathBuf,
    /// Pid file to write after binding and remove at exit.
    pub pid_file: Option<PathBuf>,
    /// Detach and log to syslog once the listeners are bound.
    pub daemon: bool,
}

/// Why the daemon could not start.
#[derive(Debug)]
pub enum Error {
    /// A listener could not be bound.
    Bind {
        /// The configured listen address.
        listen: Listen,
        /// Why.
        source: io::Error,
    },
    /// The pid file could not be written.
    PidFile {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A thread or the signal mask could not be set up.
    Setup {
        /// What.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { listen, source } => write!(f, "cannot listen on {listen}: {source}"),
            Error::PidFile { path, source } => {
                write!(f, "cannot write pid file {}: {source}", path.display())
            }
            Error::Setup { what, source } => write!(f, "cannot {what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. }
            | Error::PidFile { source, .. }
            | Error::Setup { source, .. } => Some(source),
        }
    }
}

/// Binds `listen`. A bare port takes `[::]` (IPv4 clients arrive as mapped addresses) and
/// falls back to `0.0.0.0` on a kernel without IPv6.
pub fn bind(listen: Listen) -> Result<TcpListener, Error> {
    let result = match listen {
        Listen::Addr(addr) => TcpListener::bind(addr),
        Listen::Port(port) => TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
            .or_else(|e| match e.raw_os_error() {
                Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL) => {
                    TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
                }
                _ => Err(e),
            }),
    };
    result.map_err(|source| Error::Bind { listen, source })
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(config: Config, opts: Options) -> Result<(), Error> {
    let signals = SignalSet::daemon();
    // Before any thread exists, so that every thread inherits the mask.
    signals.block().map_err(|source| Error::Setup {
        what: "block signals",
        source,
    })?;
    let listeners = config
        .pools
        .into_iter()
        .map(|pool| Ok((bind(pool.listen)?, Arc::new(pool))))
        .collect::<Result<Vec<_>, Error>>()?;
    if opts.daemon {
        crate::sys::daemonize().map_err(|source| Error::Setup {
            what: "become a daemon",
            source,
        })?;
        crate::log::use_syslog();
    }
    let _pid_file = match &opts.pid_file {
        Some(path) => Some(PidFile::write(path)?),
        None => None,
    };
    let ctx = Arc::new(Context {
        lock_dir: opts.lock_dir,
        registry: Registry::default(),
    });
    for (listener, pool) in listeners {
        let ctx = Arc::clone(&ctx);
        let name = format!("accept {}", pool.listen);
        crate::info!("listening on {}", describe(&listener, &pool));
        thread::Builder::new()
            .name(name)
            .stack_size(SESSION_STACK)
            .spawn(move || accept_loop(&listener, &pool, &ctx))
            .map_err(|source| Error::Setup {
                what: "start listener thread",
                source,
            })?;
    }
    loop {
        match signals.wait() {
            Ok(libc::SIGHUP) => {
                crate::warning!("SIGHUP: reloading is not supported yet; restart to apply changes")
            }
            Ok(_) => break,
            Err(e) => {
                crate::error!("sigwait: {e}");
                break;
            }
        }
    }
    crate::info!("shutting down");
    ctx.registry.stop_all();
    let left = ctx.registry.wait_empty(SHUTDOWN_WAIT);
    if left > 0 {
        crate::error!("{left} sessions did not end in time");
    }
    Ok(())
}

fn describe(listener: &TcpListener, pool: &Pool) -> String {
    match listener.local_addr() {
        Ok(addr) => addr.to_string(),
        Err(_) => pool.listen.to_string(),
    }
}

fn accept_loop(listener: &TcpListener, pool: &Arc<Pool>, ctx: &Arc<Context>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let pool = Arc::clone(pool);
                let ctx = Arc::clone(ctx);
                let spawned = thread::Builder::new()
                    .name("session".into())
                    .stack_size(SESSION_STACK)
                    .spawn(move || session::serve(stream, &pool, &ctx));
                if let Err(e) = spawned {
                    crate::error!("cannot start a session thread: {e}");
                }
            }
            Err(e) => match e.raw_os_error() {
                // Out of descriptors or memory: accepting again at once would spin.
                Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                    crate::error!("accept on {}: {e}", pool.listen);
                    thread::sleep(Duration::from_millis(100));
                }
                _ => crate::debug!("accept on {}: {e}", pool.listen),
            },
        }
    }
}

/// The pid file, removed when dropped.
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &Path) -> Result<PidFile, Error> {
        std::fs::write(path, format!("{}\n", crate::sys::getpid())).map_err(|source| {
            Error::PidFile {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok(PidFile(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            crate::error!("cannot remove pid file {}: {e}", self.0.display());
        }
    }
}
