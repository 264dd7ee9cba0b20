//! Why a device cannot be used, as a client is told it, and each device's problem logged
//! once (DESIGN §3: "say what is wrong, not `busy`").
//!
//! A missing modem is not a busy one: a client told `busy` tries again later and gets the
//! same answer forever, and the owner never learns the modem is gone. So a device that
//! cannot be used gets a [`Reason`] class the client reads, and the log names the device and
//! the error when its problem is new or changed, not once per client: twenty clients of a
//! missing modem make one error line, and a working open later says it is back.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The class of a device problem, as the client reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The path does not lead to a device (unplugged, misnamed, dangling symlink).
    Missing,
    /// It is there but not a terminal (a file, a directory, `/dev/null`).
    NotATty,
    /// modemd may not open it.
    Denied,
    /// Lock files cannot be made in the lock directory.
    LockDir,
    /// The system is out of descriptors or memory.
    Resources,
    /// Anything else the device or its driver reported.
    Failing,
}

impl Reason {
    /// The class of a device's open or set-up error.
    pub fn of_device(e: &io::Error) -> Reason {
        match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV | libc::ENXIO | libc::ENOTDIR | libc::ELOOP) => {
                Reason::Missing
            }
            Some(libc::ENOTTY | libc::EISDIR) => Reason::NotATty,
            Some(libc::EACCES | libc::EPERM | libc::EROFS) => Reason::Denied,
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM) => Reason::Resources,
            Some(_) => Reason::Failing,
            None => match e.kind() {
                io::ErrorKind::NotFound => Reason::Missing,
                io::ErrorKind::PermissionDenied => Reason::Denied,
                _ => Reason::Failing,
            },
        }
    }

    /// The class of an error with a lock file: the lock directory's, unless the system ran
    /// out of something.
    pub fn of_lock(e: &io::Error) -> Reason {
        match Reason::of_device(e) {
            Reason::Resources => Reason::Resources,
            _ => Reason::LockDir,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Missing => "no such device",
            Reason::NotATty => "not a tty",
            Reason::Denied => "permission denied",
            Reason::LockDir => "lock directory unusable",
            Reason::Resources => "out of resources",
            Reason::Failing => "device error",
        })
    }
}

/// The last problem logged for each device that has one.
#[derive(Debug, Default)]
pub struct Faults(Mutex<Vec<(PathBuf, String)>>);

impl Faults {
    fn known(&self) -> std::sync::MutexGuard<'_, Vec<(PathBuf, String)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that `device` cannot be used because of `problem`; true if that is news (it had
    /// no problem, or another one), which the caller logs as an error.
    pub fn failed(&self, device: &Path, problem: &dyn fmt::Display) -> bool {
        let text = problem.to_string();
        let mut known = self.known();
        match known.iter_mut().find(|(d, _)| d == device) {
            Some((_, last)) if *last == text => false,
            Some((_, last)) => {
                *last = text;
                true
            }
            None => {
                known.push((device.to_owned(), text));
                true
            }
        }
    }

    /// Notes that `device` works; true if it had a problem, which the caller logs as over.
    pub fn worked(&self, device: &Path) -> bool {
        let mut known = self.known();
        let before = known.len();
        known.retain(|(d, _)| d != device);
        known.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_fall_into_the_classes_a_client_reads() {
        let of = |errno| Reason::of_device(&io::Error::from_raw_os_error(errno));
        assert_eq!(of(libc::ENOENT), Reason::Missing);
        assert_eq!(of(libc::ENXIO), Reason::Missing);
        assert_eq!(of(libc::ENOTTY), Reason::NotATty);
        assert_eq!(of(libc::EISDIR), Reason::NotATty);
        assert_eq!(of(libc::EACCES), Reason::Denied);
        assert_eq!(of(libc::EMFILE), Reason::Resources);
        assert_eq!(of(libc::EIO), Reason::Failing);
        let kind = |k| Reason::of_device(&io::Error::new(k, "serialport"));
        assert_eq!(kind(io::ErrorKind::NotFound), Reason::Missing);
        assert_eq!(kind(io::ErrorKind::PermissionDenied), Reason::Denied);
        let lock = |errno| Reason::of_lock(&io::Error::from_raw_os_error(errno));
        assert_eq!(lock(libc::EACCES), Reason::LockDir);
        assert_eq!(lock(libc::ENOENT), Reason::LockDir);
        assert_eq!(lock(libc::ENFILE), Reason::Resources);
    }

    #[test]
    fn a_problem_is_news_once_until_it_changes_or_ends() {
        let faults = Faults::default();
        let dev = Path::new("/dev/ttyUSB0");
        assert!(faults.failed(dev, &"gone"));
        assert!(!faults.failed(dev, &"gone"));
        assert!(faults.failed(Path::new("/dev/ttyS1"), &"gone"));
        assert!(faults.failed(dev, &"denied"));
        assert!(faults.worked(dev));
        assert!(!faults.worked(dev));
        assert!(faults.failed(dev, &"denied"));
    }
}
