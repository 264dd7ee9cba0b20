//! The live sessions, so that shutdown can end them all and wait for their clean-up.
//!
//! A session enters with its [`Control`] and leaves when its [`Ticket`] drops, on every way
//! out. Once [`Registry::stop_all`] has run, nobody enters any more. It only asks sessions to
//! stop; it must never close a session's device or remove its lock itself: the session owns
//! those and releases them as it ends.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::relay::{Control, End};

/// The live sessions, so that SIGTERM can end them all and wait for their clean-up.
#[derive(Default)]
pub struct Registry {
    state: Mutex<RegistryState>,
    changed: Condvar,
}

#[derive(Default)]
struct RegistryState {
    next: u64,
    live: Vec<(u64, Arc<Control>)>,
    closing: bool,
}

/// A session's place in the registry; dropping it leaves.
pub struct Ticket<'r> {
    registry: &'r Registry,
    id: u64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, RegistryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session; `None` once the daemon is shutting down.
    pub fn enter(&self, ctl: Arc<Control>) -> Option<Ticket<'_>> {
        let mut s = self.lock();
        if s.closing {
            return None;
        }
        s.next += 1;
        let id = s.next;
        s.live.push((id, ctl));
        Some(Ticket { registry: self, id })
    }

    /// Ends every live session and refuses new ones.
    pub fn stop_all(&self) {
        let mut s = self.lock();
        s.closing = true;
        for (_, ctl) in &s.live {
            ctl.stop(End::Shutdown);
        }
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
            s = match self.changed.wait_timeout(s, left) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        s.live.len()
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut s = self.registry.lock();
        s.live.retain(|(id, _)| *id != self.id);
        self.registry.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    fn control(listener: &TcpListener) -> Arc<Control> {
        let addr = listener.local_addr().expect("local address");
        let client = TcpStream::connect(addr).expect("connect");
        Arc::new(Control::new(client).expect("control"))
    }

    #[test]
    fn stop_all_stops_live_sessions_and_refuses_new_ones() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let registry = Registry::default();
        let ctl = control(&listener);
        let ticket = registry.enter(Arc::clone(&ctl)).expect("enter");
        assert_eq!(registry.wait_empty(Duration::ZERO), 1);
        registry.stop_all();
        assert!(ctl.stopped());
        assert!(registry.enter(control(&listener)).is_none());
        drop(ticket);
        assert_eq!(registry.wait_empty(Duration::from_secs(1)), 0);
    }
}
