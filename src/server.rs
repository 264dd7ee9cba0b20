//! The daemon: listeners, reload and shutdown, driven by signals in the main thread.
//!
//! Signals are blocked in every thread and taken synchronously with `sigwait` by the main
//! thread, so no code runs in a signal handler. SIGHUP re-reads the config: listeners whose
//! `LISTEN` stays keep their socket (no moment without a listener) and get the new pool, new
//! ones start, removed ones stop; live sessions are not touched. A config with any error is
//! rejected whole and the running one keeps serving. SIGTERM/SIGINT stop accepting, end every
//! session (hang-up, unlock), wait for them, remove the pid file and return.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Config, Listen};
use crate::daemon::{self, Detach, Identity, Outcome, PidError, PidFile};
use crate::fault::Faults;
use crate::listener::{Acceptor, Bound};
use crate::registry::Registry;
use crate::session::Context;
use crate::sys::{self, SignalSet};

/// How long SIGTERM waits for sessions to hang up and unlock.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(1500);

/// What the daemon needs besides the config.
pub struct Options {
    /// The config file, re-read on SIGHUP.
    pub config_path: String,
    /// UUCP lock directory.
    pub lock_dir: PathBuf,
    /// Pid file to write after binding and remove at exit.
    pub pid_file: Option<PathBuf>,
    /// Detach and log to syslog once the listeners are bound.
    pub daemon: bool,
    /// Whom to become after binding.
    pub user: Option<Identity>,
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
    /// The pid file stops us.
    Pid(PidError),
    /// Detaching, dropping privileges, a thread or the signal mask failed.
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
            Error::Pid(e) => write!(f, "{e}"),
            Error::Setup { what, source } => write!(f, "cannot {what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } | Error::Setup { source, .. } => Some(source),
            Error::Pid(e) => Some(e),
        }
    }
}

/// Names what failed at start-up (daemon and client mode).
pub(crate) fn setup(what: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Setup { what, source }
}

/// A config file larger than this is refused (a real one is a few hundred bytes).
const MAX_CONFIG: usize = 1 << 20;

/// Opens `path` for reading if it is a regular file.
///
/// `O_NONBLOCK`, as a FIFO would block the open until a writer came (and `-t` with it) and a
/// tty until its carrier; `O_NOCTTY`, as a tty named by mistake must not become ours. The
/// type is then asked of the open file, not of the path, which could change in between.
fn open_regular(path: &str) -> io::Result<OwnedFd> {
    // Asked of the path first too, through an O_PATH descriptor (which opens nothing): a tty
    // named by mistake (`-c /dev/ttyS1`) must not even be opened, which would raise its DTR.
    let probe = sys::open(std::path::Path::new(path), libc::O_PATH, 0)?;
    if sys::fstat(probe.as_fd())?.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(not_regular());
    }
    let fd = sys::open(
        std::path::Path::new(path),
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    )?;
    if sys::fstat(fd.as_fd())?.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(not_regular());
    }
    Ok(fd)
}

fn not_regular() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")
}

/// Reads and parses a config file; logs every problem. `None` if it is unusable.
///
/// The bytes go to the parser as they are: it names a NUL, a control byte or invalid UTF-8
/// at its line, where a lossy conversion would have turned `/dev/tty\xff` into another path.
pub fn load(path: &str) -> Option<Config> {
    let read = open_regular(path).and_then(|fd| sys::read_all(fd.as_fd(), MAX_CONFIG + 1));
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(e) => {
            crate::error!("cannot read {path}: {e}");
            return None;
        }
    };
    if bytes.len() > MAX_CONFIG {
        crate::error!("{path}: larger than {MAX_CONFIG} bytes; not a modemd config");
        return None;
    }
    match config::parse(path, &bytes, &sys::service_port) {
        Ok(c) => {
            for w in &c.warnings {
                crate::warning!("{w}");
            }
            Some(c)
        }
        Err(errors) => {
            for e in &errors {
                crate::error!("{e}");
            }
            None
        }
    }
}

fn bind_all(config: Config) -> Result<Vec<Bound>, Error> {
    config
        .pools
        .into_iter()
        .map(|pool| {
            let listen = pool.listen;
            Bound::new(pool).map_err(|source| Error::Bind { listen, source })
        })
        .collect()
}

/// Everything after binding that can still fail start-up.
fn start(
    bound: Vec<Bound>,
    opts: &Options,
    ctx: &Arc<Context>,
) -> Result<(Option<PidFile>, Acceptor), Error> {
    let pid_file = match &opts.pid_file {
        Some(path) => Some(PidFile::write(path).map_err(Error::Pid)?),
        None => None,
    };
    if let Some(id) = &opts.user {
        daemon::become_user(id).map_err(setup("drop privileges"))?;
        crate::info!("running as uid {} gid {}", id.uid, id.gid);
    }
    // As the user that will make the locks. Not fatal: the directory may be made later (a
    // tmpfs mounted after modemd starts); until then clients read `unavailable`.
    check_lock_dir(&ctx.lock_dir);
    let acceptor = Acceptor::start(bound, ctx).map_err(setup("start the accept thread"))?;
    Ok((pid_file, acceptor))
}

/// How [`run`] ended without an error.
pub enum Ended {
    /// SIGTERM or SIGINT: the daemon shut down.
    Stopped,
    /// This process is one that detaching left behind: `main` must end it at once with this
    /// outcome (see [`daemon::daemonize`]).
    Detached(Outcome),
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(config: Config, opts: Options) -> Result<Ended, Error> {
    let signals = SignalSet::new(&daemon::SIGNALS);
    // Before any thread exists, so that every thread inherits the mask.
    signals.block().map_err(setup("block signals"))?;
    if let Some(path) = &opts.pid_file {
        daemon::check_not_running(path).map_err(Error::Pid)?;
    }
    let registry = Registry::new().map_err(setup("create the session registry"))?;
    let bound = bind_all(config)?;
    let detached = if opts.daemon {
        match daemon::daemonize().map_err(setup("become a daemon"))? {
            // Straight back to main: nothing here may act for the daemon.
            Detach::Exit(outcome) => return Ok(Ended::Detached(outcome)),
            Detach::Daemon(d) => {
                crate::log::use_syslog();
                Some(d)
            }
        }
    } else {
        None
    };
    let ctx = Arc::new(Context {
        lock_dir: opts.lock_dir.clone(),
        registry,
        faults: Faults::default(),
    });
    let started = start(bound, &opts, &ctx);
    if let Some(d) = detached {
        d.report(started.as_ref().map(|_| ()).map_err(ToString::to_string));
    }
    let (pid_file, acceptor) = started?;
    loop {
        match signals.wait() {
            Ok(libc::SIGHUP) => reload(&opts.config_path, &acceptor, &opts.lock_dir),
            Ok(_) => break,
            Err(e) => {
                crate::error!("sigwait: {e}");
                break;
            }
        }
    }
    crate::info!("shutting down");
    drop(acceptor);
    ctx.registry.stop_all();
    let left = ctx.registry.wait_empty(SHUTDOWN_WAIT);
    if left > 0 {
        // The process exit closes their devices; their locks must not outlive us.
        crate::error!("{left} sessions did not end in time; removing their locks");
        crate::lock::release_all();
    }
    crate::lock::remove_template();
    drop(pid_file);
    Ok(Ended::Stopped)
}

/// Says at once, rather than at each client's claim, that locks cannot be made.
fn check_lock_dir(dir: &Path) {
    if let Err(e) = crate::lock::check_dir(dir) {
        crate::error!("{e}: every device is unavailable until it is fixed");
    }
}

/// Applies the config file anew; on any error the running config stays.
fn reload(path: &str, acceptor: &Acceptor, lock_dir: &Path) {
    crate::info!("SIGHUP: reloading {path}");
    check_lock_dir(lock_dir);
    let Some(config) = load(path) else {
        crate::error!("{path} has errors; keeping the running configuration");
        return;
    };
    // Vecs, not maps: a few listeners at most, and a map type costs the router image 6 KB.
    let mut wanted = config.pools;
    let running = acceptor.listens();
    // Stop removed listeners first: a new LISTEN may need their port.
    for &listen in &running {
        if !wanted.iter().any(|p| p.listen == listen) {
            acceptor.remove(listen);
        }
    }
    for listen in running {
        if let Some(i) = wanted.iter().position(|p| p.listen == listen) {
            let pool = wanted.swap_remove(i);
            if acceptor.pool_differs(&pool) {
                crate::info!("new devices or hosts for {}", pool.listen);
                acceptor.replace_pool(pool);
            }
        }
    }
    for pool in wanted {
        let listen = pool.listen;
        match Bound::new(pool) {
            Ok(b) => acceptor.add(b),
            Err(e) => crate::error!("cannot listen on {listen}: {e}"),
        }
    }
}
