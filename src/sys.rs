//! The thin layer over raw `libc` calls: each call is wrapped once here and turned into
//! `io::Result`, so the rest of the daemon never sees `-1` or `errno`.
//!
//! Only termios and modem-line ioctls live elsewhere (`serial.rs`), next to the code that
//! understands them. A wrapper takes its arguments from the caller and returns what the
//! call gave: nothing here names a file, picks an option value or an order of calls, prints,
//! or decides to exit (`exit_now` ends the process only when `main` says so). Those
//! decisions live with their callers: `daemon.rs` (detaching, identity, signals),
//! `listener.rs` (socket options), `resolve.rs` (lookup order).

use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

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

/// The path of the slave of pseudo-terminal `master` (`ptsname_r`).
pub fn ptsname(master: BorrowedFd<'_>) -> io::Result<std::path::PathBuf> {
    let mut buf = [0u8; 128];
    // SAFETY: `buf` is writable for its length, which is passed; ptsname_r NUL-terminates.
    let r = unsafe { libc::ptsname_r(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        // glibc returns the error number; musl too, and sets errno.
        return Err(io::Error::from_raw_os_error(r));
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(
        &buf[..len],
    )))
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
}

/// The `pollfd` watching `fd` for `interest`, for [`poll_fds`].
pub fn pollfd(fd: RawFd, interest: Interest) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: match interest {
            Interest::Read => libc::POLLIN,
            Interest::Write => libc::POLLOUT,
            Interest::Peer => libc::POLLRDHUP,
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

/// Whether a process with this PID exists (`kill(pid, 0)`: `EPERM` means it exists but is
/// not ours, which still makes its lock live).
pub fn process_alive(pid: libc::pid_t) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission; nothing is delivered.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// This process's PID.
pub fn getpid() -> libc::pid_t {
    // SAFETY: getpid cannot fail and takes no arguments.
    unsafe { libc::getpid() }
}

/// `d` in whole milliseconds, saturating. Not `Duration::as_millis`: its u128 result costs
/// the router image 3 KiB of 128-bit division and formatting code.
pub fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

/// `res_query(3)`: asks DNS the question `name` of `class` and `rtype` and puts the answer
/// in `answer`. Returns the length written (an answer longer than `answer` is cut to it), or
/// `None` without an answer: res_query gives its reason in `h_errno`, not `errno`, so there
/// is no `io::Error` to return.
pub fn res_query(
    name: &CStr,
    class: libc::c_int,
    rtype: libc::c_int,
    answer: &mut [u8],
) -> Option<usize> {
    let len = libc::c_int::try_from(answer.len()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `name` is a NUL-terminated string; `answer` is writable for the length given.
    let n = unsafe { c_res_query(name.as_ptr(), class, rtype, answer.as_mut_ptr(), len) };
    Some(usize::try_from(n).ok()?.min(answer.len()))
}

unsafe extern "C" {
    /// resolv.h; in musl's and (since 2.34) glibc's libc, not in the `libc` crate.
    #[link_name = "res_query"]
    fn c_res_query(
        dname: *const libc::c_char,
        class: libc::c_int,
        rtype: libc::c_int,
        answer: *mut u8,
        anslen: libc::c_int,
    ) -> libc::c_int;
}

fn sockaddr_of(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr.ip() {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = addr.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = addr.port().to_be();
            sin6.sin6_addr.s6_addr = v6.octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The TCP port of a service name from the services database (`getservbyname`).
///
/// Only called while a config is loaded, from one thread at a time.
pub fn service_port(name: &str) -> Option<u16> {
    let name = CString::new(name).ok()?;
    let proto = c"tcp";
    // SAFETY: both arguments are valid NUL-terminated strings; the result is either null or
    // points to a static servent that we read at once, before any other lookup.
    let ent = unsafe { libc::getservbyname(name.as_ptr(), proto.as_ptr()) };
    if ent.is_null() {
        return None;
    }
    // SAFETY: `ent` is non-null and points to a valid servent (see above).
    let port = unsafe { (*ent).s_port };
    Some(u16::from_be(port as u16))
}

/// A new socket of `family` and `ty` (`SOCK_CLOEXEC` is always added), protocol 0.
pub fn socket(family: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket takes no pointers.
    let fd = cvt(unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: socket just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds `socket` to `addr`.
pub fn bind(socket: BorrowedFd<'_>, addr: SocketAddr) -> io::Result<()> {
    let (sa, len) = sockaddr_of(addr);
    // SAFETY: `sa` is a valid sockaddr of `len` bytes for the call.
    cvt(unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&sa as *const libc::sockaddr_storage).cast(),
            len,
        )
    })?;
    Ok(())
}

/// Makes `socket` listen, with room for `backlog` connections not yet accepted.
pub fn listen(socket: BorrowedFd<'_>, backlog: libc::c_int) -> io::Result<()> {
    // SAFETY: listen takes no pointers.
    cvt(unsafe { libc::listen(socket.as_raw_fd(), backlog) })?;
    Ok(())
}

/// Sets an integer socket option.
pub fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the whole call and its size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Reads an integer socket option.
pub fn getsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes for the whole call, `len` gives the size.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// A pipe (`pipe2` with `O_CLOEXEC`): its read end, then its write end.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 just returned these two descriptors; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `fork(2)`: the child's PID in the parent, 0 in the child.
///
/// # Safety
/// No other thread may exist: the child would inherit locks that their owners, left behind
/// in the parent, never release.
pub unsafe fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: fork has no pointer arguments; the single thread is the caller's contract.
    cvt(unsafe { libc::fork() })
}

/// `setsid(2)`: a new session, without a controlling terminal, led by this process.
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments.
    cvt(unsafe { libc::setsid() })?;
    Ok(())
}

/// `dup2(2)`: makes descriptor `target` a copy of `fd`, closing what `target` was.
///
/// # Safety
/// Nothing in this process may own `target` (an `OwnedFd`, a `File`, a socket): it would
/// then own the copy instead. The standard descriptors 0 to 2 qualify unless one was taken
/// over with `from_raw_fd`.
pub unsafe fn dup2(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    // SAFETY: `fd` is open for the call; that nothing owns `target` is the caller's contract.
    cvt(unsafe { libc::dup2(fd.as_raw_fd(), target) })?;
    Ok(())
}

/// `_exit(2)`: ends the process at once with `code`, running no destructor, no atexit
/// handler and no stdio flush.
pub fn exit_now(code: libc::c_int) -> ! {
    // SAFETY: _exit takes an integer and does not return; skipping destructors is sound.
    unsafe { libc::_exit(code) }
}

/// Whether descriptor 0 is a connected TCP socket, as inetd hands a server.
pub fn stdin_is_tcp() -> bool {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `ty` and `len` are valid out-pointers of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            0,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == -1 || ty != libc::SOCK_STREAM {
        return false;
    }
    // SAFETY: sockaddr_storage is plain old data, large enough for any address.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` and `len` are valid out-pointers of the sizes given.
    let r =
        unsafe { libc::getsockname(0, (&mut ss as *mut libc::sockaddr_storage).cast(), &mut len) };
    r == 0 && matches!(ss.ss_family as libc::c_int, libc::AF_INET | libc::AF_INET6)
}

/// `setgroups(2)`: the supplementary groups of this process (only as root).
pub fn setgroups(groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: `groups` is a valid array of the length passed.
    cvt(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })?;
    Ok(())
}

/// `setgid(2)`.
pub fn setgid(gid: libc::gid_t) -> io::Result<()> {
    // SAFETY: setgid takes a plain integer.
    cvt(unsafe { libc::setgid(gid) })?;
    Ok(())
}

/// `setuid(2)`.
pub fn setuid(uid: libc::uid_t) -> io::Result<()> {
    // SAFETY: setuid takes a plain integer.
    cvt(unsafe { libc::setuid(uid) })?;
    Ok(())
}

/// A set of signals, to block and then wait for (`sigwait`).
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    /// The set of `signals`.
    pub fn new(signals: &[libc::c_int]) -> Self {
        // SAFETY: sigset_t is plain old data; sigemptyset initialises it before use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t.
        unsafe { libc::sigemptyset(&mut set) };
        for &sig in signals {
            // SAFETY: `set` is a valid, initialised sigset_t; an invalid number only fails.
            unsafe { libc::sigaddset(&mut set, sig) };
        }
        SignalSet(set)
    }

    /// Blocks these signals in the calling thread and every thread it spawns afterwards, so
    /// that only `wait` receives them.
    pub fn block(&self) -> io::Result<()> {
        // SAFETY: `self.0` is an initialised sigset_t; the old mask is not requested.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.0, std::ptr::null_mut()) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    }

    /// Waits for one of these signals (they must be blocked) and returns its number.
    pub fn wait(&self) -> io::Result<libc::c_int> {
        let mut sig: libc::c_int = 0;
        // SAFETY: `self.0` is an initialised sigset_t and `sig` is a valid out-pointer.
        let r = unsafe { libc::sigwait(&self.0, &mut sig) };
        if r == 0 {
            Ok(sig)
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    }
}

/// Names the calling thread (what `ps -T` and `top -H` show); longer names are cut to 15
/// bytes by the kernel. A failure only loses the name.
pub fn set_thread_name(name: &std::ffi::CStr) {
    // SAFETY: `name` is a NUL-terminated string for the whole call; the kernel copies at most
    // 16 bytes of it.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
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

    #[test]
    fn own_process_is_alive_and_pid_zero_is_not() {
        assert!(process_alive(getpid()));
        assert!(!process_alive(0));
    }
}
