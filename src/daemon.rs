//! The parts of being a Unix daemon that are not about serving clients: the pid file (and
//! refusing to start twice) and the `-u USER[:GROUP]` identity.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::sys::{self, Identity};

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
    let Ok(text) = fs::read_to_string(path) else {
        return Ok(());
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
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
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
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
        fs::write(path, format!("{}\n", sys::getpid())).map_err(|source| PidError::Write {
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

/// Parses and looks up `USER[:GROUP]`.
pub fn identity(spec: &str) -> io::Result<Identity> {
    match spec.split_once(':') {
        Some((user, group)) => sys::lookup_identity(user, Some(group)),
        None => sys::lookup_identity(spec, None),
    }
}
