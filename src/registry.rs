//! The live sessions: so that shutdown can end them all and wait for their clean-up, and so
//! that a client never reads `busy` for a device that is only hanging up.
//!
//! A session enters with its [`Control`] and leaves when its [`Ticket`] drops, on every way
//! out; through the ticket it locks its device (so the registry always knows which session
//! holds which lock file), says when it starts to hang up, and lets the device go. Once
//! [`Registry::stop_all`] has run, nobody enters any more. It only asks sessions to stop; it
//! never closes a session's device or ends its session itself.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::MAX_HANGUP;
use crate::lock::{self, UucpLock};
use crate::relay::{Control, DRAIN, End};
use crate::sys::{self, EventFd, Interest};

/// What a waiting client allows beyond a hold's end: the releasing session still flushes,
/// closes (a slow UART's close waits for its FIFO) and unlocks, and the waiter's thread must
/// be scheduled. Generous: the wait ends on the release itself, not on this bound.
const SLACK: Duration = Duration::from_secs(1);

/// The live sessions and the devices they hold.
pub struct Registry {
    state: Mutex<State>,
    changed: Condvar,
    /// Signalled by [`Registry::stop_all`], for holds to wait on beside their device.
    closing: EventFd,
}

struct State {
    next: u64,
    live: Vec<Live>,
    closing: bool,
}

impl State {
    /// By when the device locked by `lock`, which this process holds, will be free: soon if
    /// the session holding it is ending (hanging up, or its client already gone though its
    /// thread has not noticed yet). `None`: a client that is still there holds it (or, which
    /// cannot be, nobody does), so it is busy.
    fn free_by(&self, lock: &Path) -> Option<Instant> {
        let live = self.live.iter().find(|l| l.lock.as_deref() == Some(lock))?;
        if let Some(until) = live.until {
            return Some(until + SLACK);
        }
        // A FIN or RST that the session's thread has not read yet: the client is gone, and
        // the session will let the device take what it was sent (at most DRAIN in the relay,
        // DRAIN again for the output queue), then hang up.
        let fd = [(live.ctl.client().as_raw_fd(), Interest::Peer)];
        let gone = sys::poll(&fd, Some(Duration::ZERO)).is_ok_and(|r| r[0].hangup);
        gone.then(|| Instant::now() + 2 * DRAIN + live.hold + SLACK)
    }
}

/// What a session's try to lock a device came to.
pub enum Claim {
    /// Locked, and known as this session's.
    Locked(UucpLock),
    /// One of our sessions is letting the device go; it will be free by `by`.
    Leaving {
        /// The device's lock file.
        lock: PathBuf,
        /// When it will be free at the latest.
        by: Instant,
    },
    /// Not to be had: held for a client still there, by another process, or an error.
    Failed(lock::Error),
}

/// One live session.
struct Live {
    id: u64,
    ctl: Arc<Control>,
    /// The lock file of the device it holds, once claimed.
    lock: Option<PathBuf>,
    /// How long its hang-up holds the device, once claimed.
    hold: Duration,
    /// Hanging up until then: the client is gone and the device will be free.
    until: Option<Instant>,
}

/// A session's place in the registry; dropping it leaves.
pub struct Ticket<'r> {
    registry: &'r Registry,
    id: u64,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> std::io::Result<Registry> {
        Ok(Registry {
            state: Mutex::new(State {
                next: 0,
                live: Vec::new(),
                closing: false,
            }),
            changed: Condvar::new(),
            closing: EventFd::new()?,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, s: MutexGuard<'a, State>, left: Duration) -> MutexGuard<'a, State> {
        match self.changed.wait_timeout(s, left) {
            Ok((guard, _)) => guard,
            Err(p) => p.into_inner().0,
        }
    }

    /// Registers a session; `None` once the daemon is shutting down.
    pub fn enter(&self, ctl: Arc<Control>) -> Option<Ticket<'_>> {
        let mut s = self.lock();
        if s.closing {
            return None;
        }
        s.next += 1;
        let id = s.next;
        s.live.push(Live {
            id,
            ctl,
            lock: None,
            hold: Duration::ZERO,
            until: None,
        });
        Some(Ticket { registry: self, id })
    }

    /// Ends every live session, refuses new ones and cuts holds short.
    pub fn stop_all(&self) {
        let mut s = self.lock();
        s.closing = true;
        for live in &s.live {
            live.ctl.stop(End::Shutdown);
        }
        self.closing.signal();
        self.changed.notify_all();
    }

    /// The descriptor that becomes readable once the daemon shuts down.
    pub fn closing_fd(&self) -> std::os::fd::RawFd {
        self.closing.raw()
    }

    /// Waits until a session lets go of one of `locks`, none of them is leaving any more (a
    /// client still there holds it), the daemon shuts down, or the longest a release can
    /// take has passed. By when each is free is asked again on every change, so a session
    /// that starts its hold later than first thought is still waited for.
    pub fn wait_released(&self, locks: &[PathBuf]) {
        let cap = Instant::now() + 2 * DRAIN + MAX_HANGUP + SLACK;
        let mut s = self.lock();
        loop {
            let mut latest: Option<Instant> = None;
            for lock in locks {
                if !s.live.iter().any(|l| l.lock.as_ref() == Some(lock)) {
                    return;
                }
                if let Some(by) = s.free_by(lock) {
                    latest = latest.max(Some(by));
                }
            }
            let Some(deadline) = latest.map(|t| t.min(cap)) else {
                return;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if s.closing || left.is_zero() {
                return;
            }
            s = self.wait(s, left);
        }
    }

    /// Whether the daemon is shutting down.
    pub fn closing(&self) -> bool {
        self.lock().closing
    }

    /// Waits until no session is live, at most `limit`; returns how many are left.
    pub fn wait_empty(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        let mut s = self.lock();
        while !s.live.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self.wait(s, left);
        }
        s.live.len()
    }
}

impl Ticket<'_> {
    fn update(&self, f: impl FnOnce(&mut Live)) {
        let mut s = self.registry.lock();
        if let Some(live) = s.live.iter_mut().find(|l| l.id == self.id) {
            f(live);
        }
        self.registry.changed.notify_all();
    }

    /// Locks `device` (lock files in `dir`) for this session, whose hang-up will hold it
    /// `hold`. The registry learns first that this session claims the lock file, under its
    /// mutex, so another session's claim can always tell a device held for a client still
    /// there (busy) from one being let go (wait); the file I/O itself runs outside the mutex,
    /// so a slow lock directory cannot hold up shutdown.
    pub fn lock(&self, dir: &Path, device: &Path, hold: Duration) -> Claim {
        let path = match lock::lock_path(dir, device) {
            Ok(path) => path,
            Err(e) => return Claim::Failed(e),
        };
        {
            let mut s = self.registry.lock();
            if s.live.iter().any(|l| l.lock.as_ref() == Some(&path)) {
                return match s.free_by(&path) {
                    Some(by) => Claim::Leaving { lock: path, by },
                    None => Claim::Failed(lock::Error::Busy {
                        lock: path,
                        pid: Some(sys::getpid()),
                    }),
                };
            }
            if let Some(live) = s.live.iter_mut().find(|l| l.id == self.id) {
                live.lock = Some(path.clone());
                live.hold = hold;
            }
        }
        match UucpLock::acquire_at(dir, path) {
            Ok(lock) => Claim::Locked(lock),
            Err(e) => {
                self.update(|l| l.lock = None);
                Claim::Failed(e)
            }
        }
    }

    /// The session hangs up: its device is free by `until`.
    pub fn hanging_up(&self, until: Instant) {
        self.update(|l| l.until = Some(until));
    }

    /// Unlocks the session's device (closed by now), then tells the registry, which wakes
    /// the clients waiting for it: until then they see it as still being let go.
    pub fn release(&self, lock: UucpLock) {
        drop(lock);
        self.update(|l| {
            l.lock = None;
            l.until = None;
        });
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut s = self.registry.lock();
        s.live.retain(|l| l.id != self.id);
        self.registry.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};

    fn control(listener: &TcpListener) -> Arc<Control> {
        let addr = listener.local_addr().expect("local address");
        let client = TcpStream::connect(addr).expect("connect");
        Arc::new(Control::new(client, EventFd::new().expect("eventfd")))
    }

    #[test]
    fn stop_all_stops_live_sessions_and_refuses_new_ones() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let registry = Registry::new().expect("registry");
        let ctl = control(&listener);
        let ticket = registry.enter(Arc::clone(&ctl)).expect("enter");
        assert_eq!(registry.wait_empty(Duration::ZERO), 1);
        registry.stop_all();
        assert!(ctl.stopped());
        assert!(registry.enter(control(&listener)).is_none());
        let ready = sys::poll(
            &[(registry.closing_fd(), Interest::Read)],
            Some(Duration::ZERO),
        );
        assert!(ready.expect("poll")[0].read, "closing not signalled");
        drop(ticket);
        assert_eq!(registry.wait_empty(Duration::from_secs(1)), 0);
    }

    /// A lock directory and a device file of its own, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("modemd-reg-{tag}-{}", sys::getpid()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join("ttyREG"), "").expect("device file");
            Scratch(dir)
        }

        fn lock(&self, ticket: &Ticket<'_>, hold: Duration) -> Claim {
            ticket.lock(&self.0, &self.0.join("ttyREG"), hold)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_device_is_busy_only_while_its_client_is_there() {
        let scratch = Scratch::new("busy");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let registry = Registry::new().expect("registry");
        let first = registry.enter(control(&listener)).expect("enter");
        let (server_side, _) = listener.accept().expect("accept");
        let second = registry.enter(control(&listener)).expect("enter");
        let hold = Duration::from_millis(500);
        let Claim::Locked(lock) = scratch.lock(&first, hold) else {
            panic!("a free device was not locked");
        };
        assert!(
            matches!(
                scratch.lock(&second, hold),
                Claim::Failed(lock::Error::Busy { .. })
            ),
            "held for a client still there: busy"
        );
        // The first session's client closes (a FIN its thread has not read yet).
        server_side.shutdown(Shutdown::Both).expect("shutdown");
        let Claim::Leaving { by, .. } = scratch.lock(&second, hold) else {
            panic!("client gone: the device should be leaving");
        };
        assert!(by > Instant::now() + DRAIN + hold);
        let until = Instant::now() + Duration::from_millis(100);
        first.hanging_up(until);
        let Claim::Leaving { by, .. } = scratch.lock(&second, hold) else {
            panic!("hanging up: the device should be leaving");
        };
        assert_eq!(by, until + SLACK);
        first.release(lock);
        assert!(matches!(scratch.lock(&second, hold), Claim::Locked(_)));
    }

    #[test]
    fn wait_released_returns_when_the_holder_lets_go() {
        let scratch = Scratch::new("wait");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let registry = Registry::new().expect("registry");
        let ticket = registry.enter(control(&listener)).expect("enter");
        let Claim::Locked(lock) = scratch.lock(&ticket, Duration::ZERO) else {
            panic!("a free device was not locked");
        };
        let path = lock.path().to_owned();
        let start = Instant::now();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                ticket.release(lock);
            });
            registry.wait_released(std::slice::from_ref(&path));
        });
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert!(!path.exists(), "lock file left");
    }
}
