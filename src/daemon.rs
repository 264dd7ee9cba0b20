//! The parts of being a Unix daemon that are not about serving clients: the pid file (and
//! refusing to start twice), the `-u USER[:GROUP]` identity (looked up in `/etc/passwd` and
//! `/etc/group`, then taken on), the signals it handles, and detaching from the terminal.
//!
//! It decides no exit code and never ends the process: detaching hands the processes it
//! leaves behind an [`Outcome`] that `main` prints and exits with.

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::sys;

/// The signals the daemon (and an inetd session) takes in `sigwait`: SIGHUP reloads,
/// SIGINT and SIGTERM stop.
pub const SIGNALS: [libc::c_int; 3] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM];

/// Why the pid file stops start-up.
#[derive(Debug)]
pub enum PidError {
    /// It names a live modemd.
    Running {
        /// The pid file.
        path: PathBuf,
        /// The running daemon.
        pid: i32,
    },
    /// It cannot be written.
    Write {
        /// The pid file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for PidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidError::Running { path, pid } => write!(
                f,
                "modemd is already running as process {pid} (pid file {})",
                path.display()
            ),
            PidError::Write { path, source } => {
                write!(f, "cannot write pid file {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for PidError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PidError::Running { .. } => None,
            PidError::Write { source, .. } => Some(source),
        }
    }
}

/// Fails if `path` names a process that is alive and is a modemd. A pid file left by a crash,
/// or whose PID now belongs to another program, is simply overwritten later.
pub fn check_not_running(path: &Path) -> Result<(), PidError> {
    let Ok(text) = sys::read_text(path) else {
        return Ok(());
    };
    // ASCII whitespace only: modemd writes `PID\n`, and str::trim's Unicode table costs the
    // router image half a kilobyte.
    let Some(pid) = crate::lock::parse_i32(text.trim_ascii()) else {
        return Ok(());
    };
    if pid == sys::getpid() || !sys::process_alive(pid) {
        return Ok(());
    }
    if is_modemd(pid) {
        return Err(PidError::Running {
            path: path.to_owned(),
            pid,
        });
    }
    Ok(())
}

/// Whether process `pid` runs a modemd binary: a program named `modemd*` among the first
/// words of its command line (argv[0] natively; under an emulator such as qemu-user the
/// program comes after the emulator's own arguments, and `comm` names the emulator).
fn is_modemd(pid: i32) -> bool {
    let cmdline = sys::read_file(Path::new(&format!("/proc/{pid}/cmdline"))).unwrap_or_default();
    cmdline.split(|&b| b == 0).take(8).any(|arg| {
        let name = arg.rsplit(|&b| b == b'/').next().unwrap_or(arg);
        name.starts_with(b"modemd")
    })
}

/// The pid file, removed when dropped.
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes this process's PID to `path`.
    pub fn write(path: &Path) -> Result<PidFile, PidError> {
        // Not fs::write: sys::write_all is already in the image, std's File writing is not.
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
        let text = format!("{}\n", sys::getpid());
        let written = sys::open(path, flags, 0o666)
            .and_then(|fd| sys::write_all(fd.as_fd(), text.as_bytes()));
        written.map_err(|source| PidError::Write {
            path: path.to_owned(),
            source,
        })?;
        Ok(PidFile(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        match fs::remove_file(&self.0) {
            Ok(()) => {}
            // After -u the directory may be root's: say why the file stays.
            Err(e) => crate::warning!("cannot remove pid file {}: {e}", self.0.display()),
        }
    }
}

/// A user (and group) to run as, looked up once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// User ID.
    pub uid: libc::uid_t,
    /// Group ID: the named group, or the user's primary group.
    pub gid: libc::gid_t,
    /// Every group to be in: `gid`, then the user's supplementary groups.
    pub groups: Vec<libc::gid_t>,
}

/// Parses and looks up `USER[:GROUP]`.
pub fn identity(spec: &str) -> io::Result<Identity> {
    match spec.split_once(':') {
        Some((user, group)) => lookup_identity(user, Some(group)),
        None => lookup_identity(spec, None),
    }
}

/// Looks up `user` and optionally `group` in /etc/passwd and /etc/group.
fn lookup_identity(user: &str, group: Option<&str>) -> io::Result<Identity> {
    let not_found = |what: &str, name: &str| {
        io::Error::new(io::ErrorKind::NotFound, format!("no such {what} '{name}'"))
    };
    let read = |path: &str| {
        sys::read_text(Path::new(path))
            .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
    };
    let passwd = read("/etc/passwd")?;
    let groups = read("/etc/group")?;
    let (uid, primary) =
        crate::passwd::user(&passwd, user).ok_or_else(|| not_found("user", user))?;
    let gid = match group {
        Some(g) => crate::passwd::group(&groups, g).ok_or_else(|| not_found("group", g))?,
        None => primary,
    };
    Ok(Identity {
        uid,
        gid,
        groups: crate::passwd::memberships(&groups, user, gid),
    })
}

/// Becomes `id` for good: supplementary groups, then group, then user, then checks that root
/// cannot be regained. Call it before starting any thread.
pub fn become_user(id: &Identity) -> io::Result<()> {
    sys::setgroups(&id.groups)?;
    sys::setgid(id.gid)?;
    sys::setuid(id.uid)?;
    let regained = id.uid != 0 && sys::setuid(0).is_ok();
    if regained {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "root privileges could be regained after setuid",
        ));
    }
    Ok(())
}

/// What [`daemonize`] made of this process.
pub enum Detach {
    /// A process left behind, which must end now with this outcome: the original one once
    /// the daemon reported (or died), or the middle one of the double fork.
    Exit(Outcome),
    /// The daemon: it reports how start-up ended through the [`Detached`].
    Daemon(Detached),
}

/// How a process that [`daemonize`] left behind ends.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Its exit status: 0 when the daemon is up.
    pub code: u8,
    /// What it prints on stderr first, after `modemd: `.
    pub message: Option<String>,
}

/// The write end of the start-up pipe of a daemon that just detached: the waiting parent
/// exits 0 when told the daemon is up, or prints the error and exits 1.
pub struct Detached(OwnedFd);

impl Detached {
    /// Reports how start-up ended; consumes the pipe.
    pub fn report(self, result: Result<(), String>) {
        let msg = match result {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        let _ = sys::write(self.0.as_fd(), msg.as_bytes());
    }
}

/// Detaches from the terminal the classic way: fork, `setsid`, fork again (so the daemon can
/// never reacquire a controlling tty), `chdir /`, stdio to `/dev/null`. The original process
/// stays until the daemon reports through its [`Detached`], so that the exit status of
/// `modemd` says whether the daemon really started. Call it before starting any thread.
///
/// The two processes left behind get [`Detach::Exit`] and must return straight to `main`,
/// which ends them with `sys::exit_now` (`_exit`), as this function did itself before: what
/// they hold was copied by fork and belongs to the daemon now, so nothing may run in them
/// that acts for it (removing the pid file or locks, atexit handlers, a stdio flush). So the
/// caller makes no guard before this call (the pid file is written after it), and on the
/// way back drops only copies of descriptors, which closes nothing the daemon uses.
pub fn daemonize() -> io::Result<Detach> {
    let (rx, tx) = sys::pipe()?;
    // SAFETY: no other thread exists (this function's contract).
    if unsafe { sys::fork() }? != 0 {
        drop(tx);
        return Ok(Detach::Exit(wait_for_report(rx)));
    }
    drop(rx);
    sys::setsid()?;
    // SAFETY: as for the first fork: still the only thread.
    if unsafe { sys::fork() }? != 0 {
        // The middle process only existed to give up session leadership.
        return Ok(Detach::Exit(Outcome {
            code: 0,
            message: None,
        }));
    }
    std::env::set_current_dir("/")?;
    null_stdio(0)?;
    Ok(Detach::Daemon(Detached(tx)))
}

/// Reads the daemon's report until the pipe closes.
fn wait_for_report(rx: OwnedFd) -> Outcome {
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = sys::retry(|| sys::read(rx.as_fd(), &mut buf)) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    outcome(&answer)
}

/// What the waiting parent makes of the daemon's report (see [`Detached::report`]).
fn outcome(answer: &[u8]) -> Outcome {
    let failed = |message: String| Outcome {
        code: 1,
        message: Some(message),
    };
    match answer {
        b"ok" => Outcome {
            code: 0,
            message: None,
        },
        [] => failed("the daemon exited during start-up".to_owned()),
        msg => failed(String::from_utf8_lossy(msg).into_owned()),
    }
}

/// Points the standard descriptors from `first` to 2 at `/dev/null`.
pub fn null_stdio(first: RawFd) -> io::Result<()> {
    let null = sys::open(Path::new("/dev/null"), libc::O_RDWR, 0)?;
    for target in first..3 {
        // SAFETY: `target` is a standard descriptor, and the callers own none of those from
        // `first` on (inetd's connection on 0 is kept: there `first` is 1).
        unsafe { sys::dup2(null.as_fd(), target) }?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_exits_0_on_ok_and_1_with_the_reason_otherwise() {
        assert_eq!(
            outcome(b"ok"),
            Outcome {
                code: 0,
                message: None
            }
        );
        let failed = |m: &str| Outcome {
            code: 1,
            message: Some(m.to_owned()),
        };
        assert_eq!(outcome(b""), failed("the daemon exited during start-up"));
        assert_eq!(
            outcome(b"error: cannot listen on 1: x"),
            failed("error: cannot listen on 1: x")
        );
    }

    #[test]
    fn unknown_user_and_group_are_named() {
        let e = identity("no-such-user-modemd").unwrap_err();
        assert_eq!(e.to_string(), "no such user 'no-such-user-modemd'");
        let e = identity("root:no-such-group-modemd").unwrap_err();
        assert_eq!(e.to_string(), "no such group 'no-such-group-modemd'");
        assert_eq!(identity("root").expect("root").uid, 0);
    }
}
