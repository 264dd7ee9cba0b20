//! Descriptors set aside for a client before it is accepted, so that a daemon at its
//! descriptor limit never accepts a client only to drop it (DESIGN §3).
//!
//! Accepting takes one descriptor; serving takes a few more (the session's eventfd, its
//! device, a lock file read). Near the limit, a burst of accepts used to take every free
//! descriptor for sockets, and then no session could open its device: each client was
//! accepted and closed without a word. Now the accept thread first holds what a session will
//! need, as duplicates of a descriptor it has anyway; if it cannot, it accepts nobody (the
//! clients wait in the listen queue) until it can. An accepted client's session gets those
//! duplicates and frees one each time it runs out: [`Spare::retry`]. What a session did not
//! need goes back to the accept thread when it drops its `Spare`, so that setting aside
//! costs no system call while descriptors are plenty.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

/// Descriptors a session may need besides its socket: its eventfd, the resolver's socket or
/// `/etc/hosts` (for `HOSTS` names), its device, and a lock file being read.
pub const PER_SESSION: usize = 4;

/// Descriptors held back for a session; dropping it gives them back for the next client.
#[derive(Debug, Default)]
pub struct Spare(Vec<OwnedFd>);

/// Spares given back, for the next [`Spare::fill`]; at most two clients' worth, the rest
/// closed, so that a burst of sessions leaves no hoard behind.
static RETURNED: Mutex<Vec<OwnedFd>> = Mutex::new(Vec::new());
const RETURNED_MAX: usize = 2 * (PER_SESSION + 1);

fn returned() -> MutexGuard<'static, Vec<OwnedFd>> {
    RETURNED.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Spare {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let mut back = returned();
        let room = RETURNED_MAX.saturating_sub(back.len());
        back.extend(self.0.drain(..).take(room));
    }
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
    /// Holds `n` descriptors, duplicating `of` for the missing ones. An error means the
    /// process is out of descriptors; what could be had is kept.
    pub fn fill(&mut self, of: BorrowedFd<'_>, n: usize) -> io::Result<()> {
        if self.0.len() < n {
            let mut back = returned();
            let take = (n - self.0.len()).min(back.len());
            let from = back.len() - take;
            self.0.extend(back.drain(from..));
        }
        while self.0.len() < n {
            self.0.push(of.try_clone_to_owned()?);
        }
        Ok(())
    }

    /// Closes one held descriptor, for someone else to have; false if none was held.
    pub fn free_one(&mut self) -> bool {
        self.0.pop().is_some()
    }

    /// Hands `n` of the held descriptors (or all, if fewer) over to a new holder.
    pub fn split_off(&mut self, n: usize) -> Spare {
        let keep = self.0.len().saturating_sub(n);
        Spare(self.0.split_off(keep))
    }

    /// Runs `f`, and again after freeing a held descriptor if it failed for want of one.
    pub fn retry<T, E: Exhaustion>(&mut self, mut f: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        loop {
            match f() {
                Err(e) if e.out_of_fds() && self.free_one() => {}
                other => return other,
            }
        }
    }

    /// How many descriptors are held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;
    use std::os::fd::AsFd;

    #[test]
    fn retry_frees_one_spare_per_exhausted_try() {
        let fd = sys::EventFd::new().expect("eventfd");
        let mut spare = Spare::default();
        spare.fill(fd.as_fd(), 3).expect("fill");
        assert_eq!(spare.len(), 3);
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
        assert_eq!((tries, spare.len()), (3, 1));
        let r: Result<(), io::Error> = spare.retry(|| Err(io::Error::from_raw_os_error(libc::EIO)));
        assert!(r.is_err());
        assert_eq!(spare.len(), 1, "other errors free nothing");
        let handed = spare.split_off(4);
        assert_eq!((handed.len(), spare.len()), (1, 0));
    }
}
