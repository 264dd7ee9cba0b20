//! Descriptors set aside for a client before it is accepted, so that a daemon at its
//! descriptor limit never accepts a client only to drop it (DESIGN §3).
//!
//! Accepting takes one descriptor; serving takes a few more (the session's eventfd, the
//! resolver's socket, its device, a lock file read). Near the limit, a burst of accepts used
//! to take every free descriptor for sockets, and then no session could open its device:
//! each client was accepted and closed without a word. Now the process keeps a reserve of
//! duplicates of a descriptor it has anyway: [`PER_SESSION`] for every session still setting
//! up, and as many again for the next client. The accept thread accepts only once the
//! reserve is full ([`fill`]); if it cannot fill it, it accepts nobody (the clients wait in
//! the listen queue) until it can. A session setting up that runs out frees one reserved
//! descriptor and tries again ([`Spare::retry`]); once set up it gives up its [`Spare`], and
//! the reserve shrinks back to what the next client needs. Connecting one client at a time
//! thus costs no system call here: the next client's share is already there.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

/// Descriptors a session may need besides its socket: its eventfd, the resolver's socket or
/// `/etc/hosts` (for `HOSTS` names), its device, and a lock file being read.
pub const PER_SESSION: usize = 4;

/// The reserved descriptors, and how many sessions setting up hold a share of them.
struct Reserve {
    fds: Vec<OwnedFd>,
    shares: usize,
}

static RESERVE: Mutex<Reserve> = Mutex::new(Reserve {
    fds: Vec::new(),
    shares: 0,
});

fn reserve() -> MutexGuard<'static, Reserve> {
    RESERVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fills the reserve for the sessions setting up and one more client, duplicating `of`.
/// An error means the process is out of descriptors; what could be had is kept.
pub fn fill(of: BorrowedFd<'_>) -> io::Result<()> {
    let mut r = reserve();
    let want = PER_SESSION * (r.shares + 1);
    while r.fds.len() < want {
        let fd = of.try_clone_to_owned()?;
        r.fds.push(fd);
    }
    Ok(())
}

/// A session's share of the reserve while it sets up; dropping it gives the share back.
/// The default holds none (inetd mode: one session, nothing to keep for another).
#[derive(Debug, Default)]
pub struct Spare {
    held: bool,
}

/// An error that can mean the process is out of descriptors.
pub trait Exhaustion {
    /// Whether it is `EMFILE` or `ENFILE`.
    fn out_of_fds(&self) -> bool;
}

impl Exhaustion for io::Error {
    fn out_of_fds(&self) -> bool {
        matches!(self.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
    }
}

impl Spare {
    /// A share of the reserve for a client just accepted (after a [`fill`]).
    pub fn take() -> Spare {
        reserve().shares += 1;
        Spare { held: true }
    }

    /// Closes one reserved descriptor, for this session to have; false if there is none.
    pub fn free_one(&mut self) -> bool {
        self.held && reserve().fds.pop().is_some()
    }

    /// Runs `f`, and again after freeing a reserved descriptor if it failed for want of one.
    pub fn retry<T, E: Exhaustion>(&mut self, mut f: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        loop {
            match f() {
                Err(e) if e.out_of_fds() && self.free_one() => {}
                other => return other,
            }
        }
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        if self.held {
            let mut r = reserve();
            r.shares = r.shares.saturating_sub(1);
            let keep = PER_SESSION * (r.shares + 1);
            r.fds.truncate(keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;
    use std::os::fd::AsFd;

    #[test]
    fn shares_grow_the_reserve_and_retries_spend_it() {
        let fd = sys::EventFd::new().expect("eventfd");
        let held = || reserve().fds.len();
        fill(fd.as_fd()).expect("fill");
        let base = reserve().shares;
        assert_eq!(held(), PER_SESSION * (base + 1));
        let mut spare = Spare::take();
        fill(fd.as_fd()).expect("fill");
        assert_eq!(held(), PER_SESSION * (base + 2), "one share more");
        let mut tries = 0;
        let r: Result<(), io::Error> = spare.retry(|| {
            tries += 1;
            if tries < 3 {
                Err(io::Error::from_raw_os_error(libc::EMFILE))
            } else {
                Ok(())
            }
        });
        assert!(r.is_ok());
        assert_eq!(tries, 3);
        assert_eq!(held(), PER_SESSION * (base + 2) - 2, "two spent");
        let r: Result<(), io::Error> = spare.retry(|| Err(io::Error::from_raw_os_error(libc::EIO)));
        assert!(r.is_err());
        assert_eq!(
            held(),
            PER_SESSION * (base + 2) - 2,
            "other errors spend nothing"
        );
        drop(spare);
        assert!(
            held() <= PER_SESSION * (base + 1),
            "the share is given back"
        );
        assert!(!Spare::default().free_one(), "no share, nothing to free");
    }
}
