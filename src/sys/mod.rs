//! The thin layer over raw `libc` calls: each call is wrapped once here and turned into
//! `io::Result`, so the rest of the daemon never sees `-1` or `errno`.
//!
//! Only termios and modem-line ioctls live elsewhere (`serial/termios.rs`), next to the code
//! that understands them. A wrapper takes its arguments from the caller and returns what the
//! call gave: nothing here names a file, picks an option value or an order of calls, prints,
//! or decides to exit (`exit_now` ends the process only when `main` says so). Those
//! decisions live with their callers: `daemon.rs` (detaching, identity, signals),
//! `listener.rs` (socket options), `resolve.rs` (lookup order).

mod net;
mod process;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

pub use net::*;
pub use process::*;

/// Turns the C convention (`-1` and `errno`) into an `io::Result`.
pub fn cvt<T: IsMinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Calls `f` again while it fails with `EINTR`.
pub fn retry<T, F: FnMut() -> io::Result<T>>(mut f: F) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Integer types a libc call can return `-1` in.
pub trait IsMinusOne {
    /// Whether this is the C error return.
    fn is_minus_one(&self) -> bool;
}

macro_rules! impl_is_minus_one {
    ($($t:ty)*) => ($(impl IsMinusOne for $t {
        fn is_minus_one(&self) -> bool { *self == -1 }
    })*)
}
impl_is_minus_one! { i32 i64 isize }

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Opens `path` with `flags` (`O_CLOEXEC` is always added) and file mode `mode`.
pub fn open(path: &Path, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let fd = retry(|| cvt(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, mode) }))?;
    // SAFETY: open just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new pseudo-terminal master (`posix_openpt`, `grantpt`, `unlockpt`), not our
/// controlling tty, its slave ready to be opened.
pub fn openpt() -> io::Result<OwnedFd> {
    // SAFETY: posix_openpt takes only flags.
    let fd = cvt(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    // SAFETY: posix_openpt just returned this descriptor and nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: grantpt and unlockpt only act on the valid master descriptor.
    cvt(unsafe { libc::grantpt(master.as_raw_fd()) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
    Ok(master)
}

/// The path of the slave of pseudo-terminal `master`: `/dev/pts/` and its number
/// (`TIOCGPTN`). Not `ptsname_r`, which musl writes with `snprintf`: that would bring all of
/// printf, floating point included, into the router image (12 KB of mipsel).
pub fn ptsname(master: BorrowedFd<'_>) -> io::Result<std::path::PathBuf> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the valid pointer passed.
    cvt(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
    Ok(std::path::PathBuf::from(format!("/dev/pts/{n}")))
}

/// A private anonymous mapping used as a byte buffer: page-aligned and with no allocator
/// header beside it, so only the pages that reads fill are backed by memory. (musl's malloc
/// puts a 16 KiB block in a mapping of its own whose header page is touched at once.)
pub struct Pages {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: Pages owns its mapping exclusively, like a Box<[u8]>.
unsafe impl Send for Pages {}

impl Pages {
    /// A zero-filled mapping of `len` bytes.
    pub fn new(len: usize) -> io::Result<Pages> {
        // SAFETY: an anonymous mapping at an address of the kernel's choosing touches no
        // existing memory; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap: null"))?;
        Ok(Pages { ptr, len })
    }
}

impl std::ops::Deref for Pages {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes (zero-filled at first) for as long as
        // `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Pages {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for deref, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and nothing borrows it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// `fstat(2)`: what the kernel knows of an open file.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is valid for writes of one `stat` for the whole call.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// Everything `fd` reads until end of file, or its first `limit` bytes. One loop of our own
/// for every file modemd reads (config, pid file, /etc/passwd, /etc/group, /etc/hosts,
/// /proc/PID/cmdline): std's `read_to_end` is a kilobyte and a half of the router image per
/// reader type, with its probing reads and size hints.
pub fn read_all(fd: BorrowedFd<'_>, limit: usize) -> io::Result<Vec<u8>> {
    const CHUNK: usize = 4096;
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        let start = bytes.len();
        bytes.resize(start + CHUNK.min(limit - start), 0);
        let n = retry(|| read(fd, &mut bytes[start..]))?;
        bytes.truncate(start + n);
        if n == 0 {
            break;
        }
    }
    Ok(bytes)
}

/// The bytes of the file at `path`, as `std::fs::read` gives them.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    read_all(open(path, libc::O_RDONLY, 0)?.as_fd(), usize::MAX)
}

/// The text of the file at `path`, as `std::fs::read_to_string` gives it (its errors, an
/// invalid UTF-8 file's included).
pub fn read_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_file(path)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// `read(2)` into `buf`; `Ok(0)` is end of file.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    let n = cvt(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })?;
    Ok(n as usize)
}

/// `write(2)` from `buf`; may write less than all of it.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call.
    let n = cvt(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })?;
    Ok(n as usize)
}

/// All of `buf` to `fd`, as std's `write_all` does: `EINTR` retried, a write of nothing an
/// error.
pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match retry(|| write(fd, buf))? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write whole buffer",
                ));
            }
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// What `poll` reported for one descriptor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Data (or an end of file) can be read.
    pub read: bool,
    /// A write would not block.
    pub write: bool,
    /// Hang-up or error: the other end is gone (for a socket watched with
    /// [`Interest::Peer`], also a half-close).
    pub hangup: bool,
}

/// What to wait for on a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Readable.
    Read,
    /// Writable.
    Write,
    /// Only the peer going away (`POLLRDHUP`): a socket whose data someone else reads.
    Peer,
    /// Only a hang-up or an error, which `poll` always reports: a device whose data someone
    /// else reads.
    Gone,
}

/// The `pollfd` watching `fd` for `interest`, for [`poll_fds`].
pub fn pollfd(fd: RawFd, interest: Interest) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: match interest {
            Interest::Read => libc::POLLIN,
            Interest::Write => libc::POLLOUT,
            Interest::Peer => libc::POLLRDHUP,
            Interest::Gone => 0,
        },
        revents: 0,
    }
}

impl From<&libc::pollfd> for Ready {
    fn from(p: &libc::pollfd) -> Ready {
        Ready {
            read: p.revents & libc::POLLIN != 0,
            write: p.revents & libc::POLLOUT != 0,
            hangup: p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL | libc::POLLRDHUP)
                != 0,
        }
    }
}

/// Waits until one of `fds` is ready, or `timeout` passes (`None`: wait forever), leaving
/// what happened in their `revents`. `EINTR` counts as "nothing ready", so callers re-check
/// their state.
pub fn poll_fds(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<()> {
    let ms = match timeout {
        None => -1,
        Some(d) => millis(d).min(i32::MAX as u64) as libc::c_int,
    };
    for p in fds.iter_mut() {
        p.revents = 0;
    }
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the whole call.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r == -1 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// [`poll_fds`] for the one to three descriptors of a session, without a heap allocation.
pub fn poll(fds: &[(RawFd, Interest)], timeout: Option<Duration>) -> io::Result<[Ready; 3]> {
    assert!(
        fds.len() <= 3,
        "poll wrapper takes at most three descriptors"
    );
    let mut pfds = [pollfd(-1, Interest::Read); 3];
    for (p, &(fd, interest)) in pfds.iter_mut().zip(fds) {
        *p = pollfd(fd, interest);
    }
    poll_fds(&mut pfds[..fds.len()], timeout)?;
    let mut out = [Ready::default(); 3];
    for (o, p) in out.iter_mut().zip(&pfds[..fds.len()]) {
        *o = Ready::from(p);
    }
    Ok(out)
}

/// A non-blocking inotify instance watching `path` for the events in `mask`.
pub fn inotify_watch(path: &Path, mask: u32) -> io::Result<OwnedFd> {
    // SAFETY: inotify_init1 takes only flags.
    let fd = cvt(unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) })?;
    // SAFETY: inotify_init1 just returned this descriptor and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    cvt(unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) })?;
    Ok(fd)
}

/// A Linux eventfd: a "stop now" or "look again" flag that `poll` can wait on.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new, unsignalled eventfd.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: eventfd just returned this descriptor and nothing else owns it.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Makes the eventfd readable until [`EventFd::clear`] (for a stop flag: for good).
    pub fn signal(&self) {
        let one: u64 = 1;
        // An error can only be EAGAIN (counter saturated), which leaves it signalled anyway.
        let _ = write(self.0.as_fd(), &one.to_ne_bytes());
    }

    /// Makes the eventfd unsignalled again, for one used as a repeated "look again".
    pub fn clear(&self) {
        let mut count = [0u8; 8];
        // EAGAIN: it was not signalled, which is the state wanted.
        let _ = read(self.0.as_fd(), &mut count);
    }

    /// The raw descriptor, for `poll`.
    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// `d` in whole milliseconds, saturating. Not `Duration::as_millis`: its u128 result costs
/// the router image 3 KiB of 128-bit division and formatting code.
pub fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_zeroed_and_writable_to_the_end() {
        let mut p = Pages::new(16 * 1024).expect("mmap");
        assert_eq!(p.len(), 16 * 1024);
        assert!(p.iter().all(|&b| b == 0));
        p[0] = 1;
        p[16 * 1024 - 1] = 2;
        assert_eq!((p[0], p[16 * 1024 - 1]), (1, 2));
    }

    #[test]
    fn eventfd_wakes_poll() {
        let ev = EventFd::new().expect("eventfd");
        let r = poll(&[(ev.raw(), Interest::Read)], Some(Duration::ZERO)).expect("poll");
        assert!(!r[0].read);
        ev.signal();
        let r = poll(&[(ev.raw(), Interest::Read)], Some(Duration::from_secs(1))).expect("poll");
        assert!(r[0].read);
    }
}
