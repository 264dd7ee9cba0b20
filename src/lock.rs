//! HDB UUCP lock files, as an RAII guard: `LOCKDIR/LCK..<name>` holding the owner's PID as
//! `%10d\n`.
//!
//! The name is the last component of the device path *after* resolving symlinks, which is what
//! Taylor `cu` and minicom lock for the real device: `/dev/modem -> ttyUSB0` locks
//! `LCK..ttyUSB0`, and `/dev/pts/3` locks `LCK..3`. The file is created with
//! `O_CREAT|O_EXCL`, so two claimants can never both succeed. A lock whose PID no longer
//! exists is stale and is removed once; a lock of a live process, or one we cannot read, means
//! the device is busy and is never touched.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::sys;

/// A held lock; dropping it removes the file.
#[derive(Debug)]
pub struct UucpLock {
    path: PathBuf,
}

/// Why a device could not be locked.
#[derive(Debug)]
pub enum Error {
    /// Another process (or another of our sessions) holds the device.
    Busy {
        /// The lock file.
        lock: PathBuf,
        /// Its owner, when the file could be read.
        pid: Option<i32>,
    },
    /// The device path does not resolve (unplugged, misnamed).
    Device {
        /// The configured device path.
        device: PathBuf,
        /// Why resolving it failed.
        source: io::Error,
    },
    /// The lock file could not be created, read or removed.
    Io {
        /// The lock file.
        lock: PathBuf,
        /// What we were doing.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Busy {
                lock,
                pid: Some(pid),
            } => write!(f, "busy: {} is held by process {pid}", lock.display()),
            Error::Busy { lock, pid: None } => {
                write!(f, "busy: {} exists and names no process", lock.display())
            }
            Error::Device { device, source } => {
                write!(f, "cannot resolve {}: {source}", device.display())
            }
            Error::Io { lock, op, source } => {
                write!(f, "cannot {op} lock file {}: {source}", lock.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Busy { .. } => None,
            Error::Device { source, .. } | Error::Io { source, .. } => Some(source),
        }
    }
}

/// The lock file for `device` in `dir`: `dir/LCK..<basename of the resolved path>`.
pub fn lock_path(dir: &Path, device: &Path) -> Result<PathBuf, Error> {
    let real = fs::canonicalize(device).map_err(|source| Error::Device {
        device: device.to_owned(),
        source,
    })?;
    let Some(name) = real.file_name() else {
        return Err(Error::Device {
            device: device.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
        });
    };
    let mut file = std::ffi::OsString::from("LCK..");
    file.push(name);
    Ok(dir.join(file))
}

/// The PID in a lock file: HDB writes it as ASCII (`%10d\n`); very old UUCPs wrote a binary
/// `int`, which we read too so that such a lock is not mistaken for garbage.
fn parse_pid(content: &[u8]) -> Option<i32> {
    let text = std::str::from_utf8(content).ok().map(str::trim);
    match text {
        Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t.parse().ok(),
        _ if content.len() == 4 => {
            let pid = i32::from_ne_bytes([content[0], content[1], content[2], content[3]]);
            (pid > 0).then_some(pid)
        }
        _ => None,
    }
}

/// `%10d\n`, the HDB format Taylor `cu`, minicom and pppd write and read.
fn content(pid: i32) -> String {
    format!("{pid:10}\n")
}

impl UucpLock {
    /// Locks `device` for this process, taking over a stale lock once.
    pub fn acquire(dir: &Path, device: &Path) -> Result<UucpLock, Error> {
        let path = lock_path(dir, device)?;
        match Self::create(&path) {
            Err(Error::Busy { pid: Some(pid), .. })
                if pid != sys::getpid() && !sys::process_alive(pid) =>
            {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    // Someone else cleaned it up first; fine.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(Error::Io {
                            lock: path,
                            op: "remove stale",
                            source,
                        });
                    }
                }
                crate::info!(
                    "removed stale lock {} of dead process {pid}",
                    path.display()
                );
                Self::create(&path)
            }
            other => other,
        }
    }

    fn create(path: &Path) -> Result<UucpLock, Error> {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        match sys::open(path, flags, 0o644) {
            Ok(fd) => {
                // From here on the guard owns the file, so a failed write still removes it.
                let lock = UucpLock {
                    path: path.to_owned(),
                };
                let mut file = fs::File::from(fd);
                file.write_all(content(sys::getpid()).as_bytes())
                    .map_err(|source| Error::Io {
                        lock: path.to_owned(),
                        op: "write",
                        source,
                    })?;
                Ok(lock)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::Busy {
                lock: path.to_owned(),
                pid: read_pid(path),
            }),
            Err(source) => Err(Error::Io {
                lock: path.to_owned(),
                op: "create",
                source,
            }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    let mut buf = Vec::with_capacity(16);
    let file = fs::File::open(path).ok()?;
    // A lock file is a few bytes; never read more than a page of whatever is there.
    file.take(64).read_to_end(&mut buf).ok()?;
    parse_pid(&buf)
}

impl Drop for UucpLock {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path) {
            crate::error!("cannot remove lock file {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_hdb_ten_digits() {
        assert_eq!(content(42), "        42\n");
        assert_eq!(content(42).len(), 11);
    }

    #[test]
    fn pids_parse_from_ascii_and_binary() {
        assert_eq!(parse_pid(b"      1234\n"), Some(1234));
        assert_eq!(parse_pid(b"1234"), Some(1234));
        assert_eq!(parse_pid(&777i32.to_ne_bytes()), Some(777));
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"garbage\n"), None);
    }
}
