//! HDB UUCP lock files, as an RAII guard: `LOCKDIR/LCK..<name>` holding the owner's PID as
//! `%10d\n`.
//!
//! The name is the last component of the device path *after* resolving symlinks, which is what
//! Taylor `cu` and minicom lock for the real device: `/dev/modem -> ttyUSB0` locks
//! `LCK..ttyUSB0`, and `/dev/pts/3` locks `LCK..3`.
//!
//! The lock appears whole or not at all: the PID is written to a file of our own created with
//! `O_CREAT|O_EXCL`, `LOCKDIR/LTMP.<pid>`, which is then hard-linked to the lock name (the
//! link fails if the lock exists, so it is as exclusive as `O_EXCL` on the lock itself). That
//! is Taylor UUCP's method, and it means no reader ever sees an empty lock and takes it for
//! garbage. Unlike Taylor, the daemon keeps that file for its lifetime and links it again for
//! every session: one `link` per claim instead of a create, write, link and unlink (a third
//! of the time from connect to first byte). It is removed at exit ([`release_all`] and
//! [`remove_template`]); the locks are separate names of it, removed each on release. A
//! template left by a process that died is removed like a stale lock.
//!
//! A lock whose PID no longer exists is stale and is removed once; a lock of a live process
//! means the device is busy, and one we cannot read is an error: neither is ever touched.
//! Reading a lock never blocks and never follows it: a FIFO, a symlink or anything else that
//! is not a regular file holds no PID. A lock that holds no PID (empty, garbage, not a regular
//! file) is stale once its mtime is 10 s away (`PIDLESS_STALE`): cu and minicom create the file
//! before they write their PID in it, so a young one may be a writer between the two.
//! [`check_dir`] says beforehand (at start-up, on reload) whether locks can be made at all.
//!
//! The locks this process holds are kept in one process-wide list, which serializes claims
//! between sessions (two sessions can never both reclaim one stale lock) and lets a dying
//! daemon remove its locks ([`release_all`]).

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::sys;

/// How old a lock holding no PID must be to be stale (DESIGN §3): a writer takes
/// microseconds between creating the file and writing its PID, and anything else that
/// leaves one would otherwise keep the device busy for good.
const PIDLESS_STALE: Duration = Duration::from_secs(10);

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
    /// Someone's lock that we cannot read: held by whoever made it, never touched.
    Unreadable {
        /// The lock file.
        lock: PathBuf,
        /// Why it cannot be read.
        source: io::Error,
    },
    /// The lock directory cannot be used: missing, not a directory, or not writable.
    Dir {
        /// The lock directory.
        dir: PathBuf,
        /// Why not.
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
            Error::Busy { lock, pid: None } => write!(
                f,
                "busy: {} names no process (taken over once {} s old)",
                lock.display(),
                PIDLESS_STALE.as_secs()
            ),
            Error::Device { device, source } => {
                write!(f, "cannot resolve {}: {source}", device.display())
            }
            Error::Unreadable { lock, source } => {
                write!(f, "busy: cannot read {}: {source}", lock.display())
            }
            Error::Dir { dir, source } => {
                write!(f, "cannot use lock directory {}: {source}", dir.display())
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
            Error::Device { source, .. }
            | Error::Unreadable { source, .. }
            | Error::Dir { source, .. }
            | Error::Io { source, .. } => Some(source),
        }
    }
}

impl crate::spare::Exhaustion for Error {
    fn out_of_fds(&self) -> bool {
        match self {
            Error::Busy { .. } => false,
            Error::Device { source, .. }
            | Error::Unreadable { source, .. }
            | Error::Io { source, .. }
            | Error::Dir { source, .. } => crate::spare::Exhaustion::out_of_fds(source),
        }
    }
}

/// Checks that locks can be made in `dir`, for start-up and reload, so that an unusable lock
/// directory is told once, as what it is, and not as the failure of every claim. The proof
/// is the one every lock needs anyway: this process's template, written there now (again,
/// if it went), as the user the daemon runs as.
pub fn check_dir(dir: &Path) -> Result<(), Error> {
    let err = |e| match e {
        Error::Io { source, .. } => Error::Dir {
            dir: dir.to_owned(),
            source,
        },
        other => other,
    };
    let path = template_in(dir).map_err(err)?;
    if fs::symlink_metadata(&path).is_err() {
        remove_template();
        template_in(dir).map_err(err)?;
    }
    Ok(())
}

/// The lock file for `device` in `dir`: `dir/LCK..<basename of the resolved path>`.
pub fn lock_path(dir: &Path, device: &Path) -> Result<PathBuf, Error> {
    let real = crate::devpath::resolve(device).map_err(|source| Error::Device {
        device: device.to_owned(),
        source,
    })?;
    // The last name of the resolved path, which devpath builds of plain names joined by
    // single slashes: what Path::file_name gives it, without std's component iteration.
    // Only `/` itself has none.
    let name = real.as_os_str().as_bytes().rsplit(|&b| b == b'/').next();
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err(Error::Device {
            device: device.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
        });
    };
    let mut file = b"LCK..".to_vec();
    file.extend_from_slice(name);
    Ok(dir.join(std::ffi::OsStr::from_bytes(&file)))
}

/// The PID in a lock file: HDB writes it as ASCII (`%10d\n`); very old UUCPs wrote a binary
/// `int`, which we read too so that such a lock is not mistaken for garbage. `None` when it
/// names no process: 0 and negative numbers are not PIDs (`kill(0)` and `kill(-1)` would ask
/// about a whole group), nor are numbers above `PID_MAX_LIMIT`, which also keeps four bytes of
/// text from being read as a binary PID.
fn parse_pid(content: &[u8]) -> Option<i32> {
    // Linux's PID_MAX_LIMIT (include/linux/threads.h): 4 Mi on 64-bit, less on 32-bit.
    const PID_MAX_LIMIT: i32 = 4 << 20;
    // Trimmed of ASCII whitespace, as bytes: HDB writers put spaces and a newline around
    // the digits, and str::trim's Unicode table costs the router image half a kilobyte.
    let text = content.trim_ascii();
    let pid = match std::str::from_utf8(text) {
        Ok(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => parse_i32(t)?,
        _ if content.len() == 4 => {
            i32::from_ne_bytes([content[0], content[1], content[2], content[3]])
        }
        _ => return None,
    };
    (1..=PID_MAX_LIMIT).contains(&pid).then_some(pid)
}

/// `s` read as `i32::from_str` reads it (an optional sign, then decimal digits), through the
/// `u32` parser the image has anyway: i32's own costs the router image 0.6 KB more.
pub(crate) fn parse_i32(s: &str) -> Option<i32> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, s),
    };
    // u32's parser takes a `+` of its own; i32's takes none after a `-`.
    if negative && digits.starts_with('+') {
        return None;
    }
    let n = i64::from(digits.parse::<u32>().ok()?);
    i32::try_from(if negative { -n } else { n }).ok()
}

/// `%10d\n`, the HDB format Taylor `cu`, minicom and pppd write and read.
fn content(pid: i32) -> String {
    format!("{pid:10}\n")
}

/// Lock files held by this process.
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn held() -> MutexGuard<'static, Vec<PathBuf>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes every lock this process holds, and its template, for a process about to die
/// without running its destructors (a panic in a release build, sessions that outlived the
/// shutdown wait). Never blocks: from a panic hook the list may be locked by the panicking
/// thread itself.
pub fn release_all() {
    if let Ok(mut held) = HELD.try_lock() {
        for path in held.drain(..) {
            let _ = fs::remove_file(path);
        }
    }
    if let Ok(mut t) = TEMPLATE.try_lock() {
        if let Some(t) = t.take() {
            let _ = fs::remove_file(t.path);
        }
    }
}

/// The file every lock of this process is a link to: our PID, written once.
struct Template {
    pid: libc::pid_t,
    /// The directory it was written in, as `path`'s parent: kept, not asked of `path`
    /// (Path::parent costs the router image half a kilobyte).
    dir: PathBuf,
    path: PathBuf,
}

static TEMPLATE: Mutex<Option<Template>> = Mutex::new(None);

fn template() -> MutexGuard<'static, Option<Template>> {
    TEMPLATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the template file, once no more locks will be taken (daemon exit, the end of an
/// inetd session). Locks still held keep their own names.
pub fn remove_template() {
    if let Some(t) = template().take() {
        let _ = fs::remove_file(t.path);
    }
}

/// The template in `dir`, written now if this process (a new PID after a fork) has none.
fn template_in(dir: &Path) -> Result<PathBuf, Error> {
    let pid = sys::getpid();
    let mut t = template();
    match t.take() {
        Some(old) if old.pid == pid && old.dir == dir => {
            let path = old.path.clone();
            *t = Some(old);
            return Ok(path);
        }
        // Ours, in another directory (only tests use two): not needed any more.
        Some(old) if old.pid == pid => {
            let _ = fs::remove_file(old.path);
        }
        // None yet, or a parent's inherited through fork (its owner removes that one).
        _ => sweep_dead_templates(dir),
    }
    let path = dir.join(format!("LTMP.{pid}"));
    // A file of that name is a leftover of an earlier process with our PID.
    let _ = fs::remove_file(&path);
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let written = sys::open(&path, flags, 0o644)
        .and_then(|fd| sys::write_all(fd.as_fd(), content(pid).as_bytes()));
    if let Err(source) = written {
        let _ = fs::remove_file(&path);
        return Err(Error::Io {
            lock: path,
            op: "write",
            source,
        });
    }
    *t = Some(Template {
        pid,
        dir: dir.to_owned(),
        path: path.clone(),
    });
    Ok(path)
}

impl UucpLock {
    /// The lock file: what names the device among the sessions of this process.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Locks `device` for this process, taking over a stale lock once.
    pub fn acquire(dir: &Path, device: &Path) -> Result<UucpLock, Error> {
        UucpLock::acquire_at(dir, lock_path(dir, device)?)
    }

    /// [`UucpLock::acquire`] for the lock file `path` in `dir`, as [`lock_path`] names it.
    pub fn acquire_at(dir: &Path, path: PathBuf) -> Result<UucpLock, Error> {
        let mut held = held();
        if held.contains(&path) {
            return Err(Error::Busy {
                lock: path,
                pid: Some(sys::getpid()),
            });
        }
        if !create(dir, &path)? {
            take_over(&path)?;
            if !create(dir, &path)? {
                return Err(busy(&path));
            }
        }
        held.push(path.clone());
        Ok(UucpLock { path })
    }
}

/// Removes the lock at `path` if it is stale, and says so; if it is not, `Busy`.
fn take_over(path: &Path) -> Result<(), Error> {
    let found = match look(path) {
        Ok(found) => found,
        // Released since our link failed: nothing to take over.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Unreadable {
                lock: path.to_owned(),
                source,
            });
        }
    };
    let age = age(found.mtime, SystemTime::now());
    let stale = match found.pid {
        // Our own PID on a lock we do not hold: left by an earlier process that had our PID
        // (a crash, then a restart in a fresh PID namespace).
        Some(pid) => pid == sys::getpid() || !sys::process_alive(pid),
        None => age >= PIDLESS_STALE,
    };
    if !stale {
        return Err(Error::Busy {
            lock: path.to_owned(),
            pid: found.pid,
        });
    }
    // Only the file judged, as it was judged: never one that replaced it, nor a PID-less one
    // whose writer has just put its PID in.
    if look(path).ok().as_ref() != Some(&found) {
        return Err(busy(path));
    }
    match fs::remove_file(path) {
        Ok(()) => {
            match found.pid {
                Some(pid) => crate::info!(
                    "removed stale lock {} of dead process {pid}",
                    path.display()
                ),
                None => crate::info!(
                    "removed stale lock {} holding no PID, {} s old",
                    path.display(),
                    age.as_secs()
                ),
            }
            Ok(())
        }
        // Someone else removed it first; fine.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            lock: path.to_owned(),
            op: "remove stale",
            source,
        }),
    }
}

/// How long before `now` a lock was last written, or after: one dated in the future (the
/// clock was set back since) is as old as the jump, not young until the clock catches up.
fn age(mtime: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(mtime).unwrap_or_else(|e| e.duration())
}

/// `Busy` for the lock at `path`, naming its holder when it can be read.
fn busy(path: &Path) -> Error {
    Error::Busy {
        lock: path.to_owned(),
        pid: look(path).ok().and_then(|found| found.pid),
    }
}

/// Removes the templates of processes that died without removing theirs (killed, or a
/// router build's panic, which aborts), as a stale lock is; once per process.
fn sweep_dead_templates(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("LTMP."))
            .and_then(parse_i32);
        if let Some(pid) = pid.filter(|&p| p != sys::getpid() && !sys::process_alive(p)) {
            crate::info!("removed {} of dead process {pid}", entry.path().display());
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Creates the lock file at `path` with our PID in it, atomically: a link to the template.
/// `false` if a lock file is there already.
fn create(dir: &Path, path: &Path) -> Result<bool, Error> {
    let mut linked = fs::hard_link(template_in(dir)?, path);
    // Someone cleaned the lock directory under us: write the template anew, once.
    if linked
        .as_ref()
        .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
    {
        remove_template();
        linked = fs::hard_link(template_in(dir)?, path);
    }
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(Error::Io {
            lock: path.to_owned(),
            op: "create",
            source,
        }),
    }
}

/// A lock file as found: which file, when it was last written, and the PID it holds.
#[derive(Debug, PartialEq)]
struct Found {
    dev: u64,
    ino: u64,
    mtime: SystemTime,
    pid: Option<i32>,
}

/// Reads the lock file at `path`. Only a regular file is opened: opening a FIFO would block
/// until a writer came, a tty would raise DTR, a symlink could lead anywhere; none of them
/// holds a PID.
fn look(path: &Path) -> io::Result<Found> {
    let mut meta = fs::symlink_metadata(path)?;
    let mut pid = None;
    if meta.is_file() {
        // The name may have been replaced since: never block on or follow what is there now,
        // and judge what was opened.
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY;
        let file = fs::File::from(sys::open(path, flags, 0)?);
        meta = file.metadata()?;
        if meta.is_file() {
            // A lock file is a few bytes: one read of at most a line of whatever is there.
            let mut buf = [0u8; 64];
            let n = sys::retry(|| sys::read(file.as_fd(), &mut buf))?;
            pid = parse_pid(&buf[..n]);
        }
    }
    Ok(Found {
        dev: meta.dev(),
        ino: meta.ino(),
        mtime: meta.modified()?,
        pid,
    })
}

impl Drop for UucpLock {
    fn drop(&mut self) {
        let mut held = held();
        held.retain(|p| p != &self.path);
        if let Err(e) = fs::remove_file(&self.path) {
            crate::error!("cannot remove lock file {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn parse_i32_reads_as_i32_from_str_does() {
        for s in [
            "",
            "+",
            "-",
            "0",
            "-0",
            "+0",
            "42",
            "+42",
            "-42",
            "-+42",
            "+-42",
            "--1",
            "++1",
            "2147483647",
            "2147483648",
            "-2147483648",
            "-2147483649",
            "4294967296",
            " 1",
            "1 ",
            "0x10",
            "00012",
        ] {
            assert_eq!(parse_i32(s), s.parse::<i32>().ok(), "{s:?}");
        }
    }

    #[test]
    fn content_is_hdb_ten_digits() {
        assert_eq!(content(42), "        42\n");
        assert_eq!(content(42).len(), 11);
    }

    /// The template is process-wide and follows the directory of the last claim: tests that
    /// claim in directories of their own take turns, or one could remove the template
    /// another is about to link.
    fn one_dir_at_a_time() -> MutexGuard<'static, ()> {
        static TURN: Mutex<()> = Mutex::new(());
        TURN.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn scratch(tag: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("modemd-lock-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let dev = dir.join(format!("tty{tag}"));
        fs::write(&dev, "").unwrap();
        (dir, dev)
    }

    fn dead_pid() -> i32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        pid
    }

    #[test]
    fn concurrent_claims_of_a_stale_lock_have_one_winner() {
        let _turn = one_dir_at_a_time();
        let (dir, dev) = scratch("race");
        for round in 0..50 {
            fs::write(lock_path(&dir, &dev).unwrap(), content(dead_pid())).unwrap();
            let winners: Vec<UucpLock> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| s.spawn(|| UucpLock::acquire(&dir, &dev).ok()))
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap())
                    .collect()
            });
            assert_eq!(winners.len(), 1, "round {round}");
            let on_disk = fs::read_to_string(lock_path(&dir, &dev).unwrap()).unwrap();
            assert_eq!(on_disk, content(sys::getpid()));
            drop(winners);
            assert!(!lock_path(&dir, &dev).unwrap().exists());
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn own_pid_lock_not_held_is_stale_and_no_lock_stays() {
        let _turn = one_dir_at_a_time();
        let (dir, dev) = scratch("own");
        let path = lock_path(&dir, &dev).unwrap();
        fs::write(&path, content(sys::getpid())).unwrap();
        let lock = UucpLock::acquire(&dir, &dev).expect("reclaim our own leftover");
        assert!(matches!(
            UucpLock::acquire(&dir, &dev),
            Err(Error::Busy { .. })
        ));
        drop(lock);
        // The template (LTMP.<pid>) stays for the next claim; the daemon removes it at exit.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| !n.to_string_lossy().starts_with("LTMP."))
            .collect();
        assert_eq!(names, [dev.file_name().unwrap()], "lock file left");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Runs `f` on a thread and waits for it at most five seconds.
    fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("still blocked after 5 s")
    }

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("run mkfifo");
        assert!(status.success(), "mkfifo {}", path.display());
    }

    #[test]
    fn a_fifo_lock_holds_no_pid_and_is_read_without_blocking() {
        let _turn = one_dir_at_a_time();
        let (dir, dev) = scratch("fifo");
        let path = lock_path(&dir, &dev).expect("lock path");
        mkfifo(&path);
        let p = path.clone();
        let found = within_5s(move || look(&p)).expect("look at a fifo");
        assert_eq!(found.pid, None);
        let (d, v) = (dir.clone(), dev.clone());
        let claim = within_5s(move || UucpLock::acquire(&d, &v));
        assert!(
            matches!(claim, Err(Error::Busy { pid: None, .. })),
            "{claim:?}"
        );
        let kind = fs::symlink_metadata(&path).expect("fifo kept").file_type();
        assert!(kind.is_fifo(), "the fifo was replaced");
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_symlink_lock_holds_no_pid_even_to_a_live_pid() {
        let (dir, dev) = scratch("symlink");
        let path = lock_path(&dir, &dev).expect("lock path");
        let target = dir.join("pid");
        fs::write(&target, content(sys::getpid())).expect("write target");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        let found = look(&path).expect("look at a symlink");
        let link = fs::symlink_metadata(&path).expect("lstat");
        assert_eq!(
            (found.dev, found.ino, found.pid),
            (link.dev(), link.ino(), None),
            "judged the target, not the link"
        );
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_lock_file_is_read_for_its_pid_and_identity() {
        let (dir, dev) = scratch("look");
        let path = lock_path(&dir, &dev).expect("lock path");
        fs::write(&path, content(4321)).expect("write lock");
        let found = look(&path).expect("look");
        let meta = fs::metadata(&path).expect("stat");
        assert_eq!(
            found,
            Found {
                dev: meta.dev(),
                ino: meta.ino(),
                mtime: meta.modified().expect("mtime"),
                pid: Some(4321),
            }
        );
        fs::write(&path, "").expect("empty the lock");
        assert_eq!(look(&path).expect("look").pid, None);
        fs::remove_dir_all(&dir).expect("clean up");
    }

    /// Dates the file at `path` (not what it links to) `secs` seconds back.
    fn age_by(path: &Path, secs: u64) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock after 1970");
        let then = libc::timespec {
            tv_sec: (now.as_secs() - secs) as libc::time_t,
            tv_nsec: 0,
        };
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
        // SAFETY: `c` is NUL-terminated and `times` two valid timespecs, both outliving the call.
        let r = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                [then, then].as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        assert_eq!(r, 0, "utimensat {}", path.display());
    }

    #[test]
    fn pidless_locks_are_taken_over_only_once_ten_seconds_old() {
        let _turn = one_dir_at_a_time();
        let (dir, dev) = scratch("pidless");
        let path = lock_path(&dir, &dev).expect("lock path");
        let target = dir.join("pid");
        fs::write(&target, content(sys::getpid())).expect("write target");
        fs::write(&path, "").expect("write empty lock");
        let claim = UucpLock::acquire(&dir, &dev);
        assert!(
            matches!(claim, Err(Error::Busy { pid: None, .. })),
            "{claim:?}"
        );
        assert_eq!(fs::read(&path).expect("young lock kept"), b"");
        let makers: [&dyn Fn(&Path); 4] = [
            &|p| fs::write(p, "").expect("empty"),
            &|p| fs::write(p, "        -1\n").expect("garbage"),
            &|p| mkfifo(p),
            &|p| std::os::unix::fs::symlink(&target, p).expect("symlink"),
        ];
        for (i, make) in makers.iter().enumerate() {
            make(&path);
            age_by(&path, 11);
            let lock = UucpLock::acquire(&dir, &dev).unwrap_or_else(|e| panic!("lock {i}: {e}"));
            assert_eq!(
                fs::read_to_string(&path).expect("our lock"),
                content(sys::getpid()),
                "lock {i}"
            );
            drop(lock);
        }
        assert_eq!(
            fs::read_to_string(&target).expect("symlink target kept"),
            content(sys::getpid())
        );
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_template_that_cannot_be_written_is_named() {
        let _turn = one_dir_at_a_time();
        let (dir, dev) = scratch("template");
        let missing = dir.join("missing");
        let e = UucpLock::acquire(&missing, &dev).expect_err("no lock directory");
        assert_eq!(
            e.to_string(),
            format!(
                "cannot write lock file {}/LTMP.{}: No such file or directory (os error 2)",
                missing.display(),
                sys::getpid()
            )
        );
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn lock_directory_is_checked_and_named() {
        let _turn = one_dir_at_a_time();
        let (dir, dev) = scratch("dir");
        assert!(check_dir(&dir).is_ok());
        let missing = dir.join("missing");
        let e = check_dir(&missing).expect_err("missing directory");
        assert_eq!(
            e.to_string(),
            format!(
                "cannot use lock directory {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
        let source = std::error::Error::source(&e).expect("OS error kept");
        assert!(source.to_string().contains("os error 2"), "{source}");
        // A template that went (the directory was cleaned) is written again.
        remove_template();
        assert!(check_dir(&dir).is_ok());
        let template = dir.join(format!("LTMP.{}", sys::getpid()));
        fs::remove_file(&template).expect("the template is there");
        assert!(check_dir(&dir).is_ok());
        assert!(template.exists(), "template not written again");
        let e = check_dir(&dev).expect_err("a file");
        assert_eq!(
            e.to_string(),
            format!(
                "cannot use lock directory {}: Not a directory (os error 20)",
                dev.display()
            )
        );
        // Read-only: root may still write there, anyone else may not; the check must agree.
        let read_only = dir.join("ro");
        fs::create_dir(&read_only).expect("mkdir");
        fs::set_permissions(
            &read_only,
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .expect("chmod");
        let writable = fs::write(read_only.join("probe"), "").is_ok();
        match check_dir(&read_only) {
            Ok(()) => assert!(writable, "said usable, but a file cannot be created"),
            Err(e) => {
                assert!(!writable, "said unusable, but a file can be created: {e}");
                assert!(
                    e.to_string().ends_with("Permission denied (os error 13)"),
                    "{e}"
                );
            }
        }
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn age_counts_either_way_from_now() {
        let now = SystemTime::now();
        let d = Duration::from_secs(11);
        assert_eq!(age(now - d, now), d);
        assert_eq!(age(now + d, now), d);
        assert_eq!(age(now, now), Duration::ZERO);
    }

    #[test]
    fn busy_without_a_pid_says_when_it_will_be_stale() {
        let e = Error::Busy {
            lock: PathBuf::from("/var/lock/LCK..ttyS1"),
            pid: None,
        };
        assert_eq!(
            e.to_string(),
            "busy: /var/lock/LCK..ttyS1 names no process (taken over once 10 s old)"
        );
    }

    #[test]
    fn pids_parse_from_ascii_and_binary() {
        assert_eq!(parse_pid(b"      1234\n"), Some(1234));
        assert_eq!(parse_pid(b"1234"), Some(1234));
        assert_eq!(parse_pid(b"0000000042\n"), Some(42));
        assert_eq!(parse_pid(&777i32.to_ne_bytes()), Some(777));
    }

    #[test]
    fn locks_naming_no_process_parse_as_none() {
        for content in [
            &b""[..],
            b"\n",
            b"          \n",
            b"garbage\n",
            b"        -1\n",
            b"         0\n",
            b"99999999999\n",
            b"+42\n",
            b"4 2\n",
            b"\xff\xfe\x00",
            b"1234\0garbage",
        ] {
            assert_eq!(parse_pid(content), None, "{content:?}");
        }
        // Binary ints that are not PIDs, and four bytes of text that would be read as one.
        for pid in [0i32, -1, i32::MAX, 5 << 20] {
            assert_eq!(parse_pid(&pid.to_ne_bytes()), None, "binary {pid}");
        }
        assert_eq!(parse_pid(b"abc\n"), None);
        assert_eq!(parse_pid(b"    "), None);
    }
}
