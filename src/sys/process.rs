//! Process, identity and signal calls: PIDs, fork and sessions, descriptors 0 to 2, user
//! and groups, the signal mask, thread names. Thin wrappers, as the rest of `sys`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

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

/// Whether the environment has a variable `name`. Not `std::env::var_os`: its lock and
/// copy of the value cost the router image 0.8 KB, for a flag read once at start-up, before
/// any other thread exists.
pub fn env_is_set(name: &std::ffi::CStr) -> bool {
    // SAFETY: `name` is NUL-terminated; only the pointer's nullness is used, and nothing
    // changes the environment while getenv runs (modemd never does; tests set it only for
    // the processes they spawn).
    !unsafe { libc::getenv(name.as_ptr()) }.is_null()
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
    fn own_process_is_alive_and_pid_zero_is_not() {
        assert!(process_alive(getpid()));
        assert!(!process_alive(0));
    }
}
