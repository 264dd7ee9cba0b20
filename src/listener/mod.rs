//! The listening sockets and the one thread that accepts on all of them (how a socket is
//! built and tuned is in [`socket`]). It never serves a client itself: an accepted one goes
//! to its own session thread.
//!
//! One thread polls every listener and an eventfd: a thread per port would cost a router
//! serving 32 ports a quarter of a megabyte of stacks to wait. A reload adds, removes or
//! re-pools listeners while the thread runs; removing one returns only once the thread has
//! stopped polling it, so the port is free again. A pool swapped in (new devices or `HOSTS`
//! for a port that stays) serves new clients; live sessions keep the one they started with.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

mod socket;

pub use socket::{KEEPALIVE, bind, tune_socket};

use crate::config::{Listen, Pool};
use crate::fault::Reason;
use crate::refusals::{Refusal, Refusals};
use crate::session::{self, Context};
use crate::spare::{self, Spare};
use crate::sys::{self, EventFd, Interest};

/// Most client connections in flight at once (admission, busy reply or session), across
/// all listeners; beyond it a new connection is closed at once, without a thread.
pub const MAX_CLIENTS: usize = 256;
static CLIENTS: AtomicUsize = AtomicUsize::new(0);

/// One connection's place under [`MAX_CLIENTS`]; freed when dropped.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        if CLIENTS.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            CLIENTS.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        CLIENTS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A bound socket, before the accept thread polls it.
pub struct Bound {
    socket: TcpListener,
    pool: Pool,
}

impl Bound {
    /// Binds the pool's `LISTEN`.
    pub fn new(pool: Pool) -> io::Result<Bound> {
        let socket = bind(pool.listen)?;
        // Non-blocking: poll said "readable" but the client may have reset meanwhile.
        socket.set_nonblocking(true)?;
        Ok(Bound { socket, pool })
    }
}

/// A listener the accept thread polls.
struct Listener {
    socket: TcpListener,
    pool: Arc<Pool>,
    refusals: Arc<Refusals>,
}

/// The accept thread and the listeners it serves.
pub struct Acceptor {
    shared: Arc<Shared>,
    thread: Option<crate::thread::JoinHandle>,
}

struct Shared {
    state: Mutex<State>,
    /// Tells the main thread the accept thread caught up with a change.
    caught_up: Condvar,
    /// Tells the accept thread to look at `state` (or a refusal count) again.
    wake: Arc<EventFd>,
}

struct State {
    listeners: Vec<Listener>,
    /// Bumped by every change of `listeners`.
    generation: u64,
    /// The generation the accept thread polls (`None` before its first poll).
    polled: Option<u64>,
    stop: bool,
}

impl Acceptor {
    /// Starts the accept thread on `bound`, serving clients with `ctx`.
    pub fn start(bound: Vec<Bound>, ctx: &Arc<Context>) -> io::Result<Acceptor> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                listeners: Vec::new(),
                generation: 0,
                polled: None,
                stop: false,
            }),
            caught_up: Condvar::new(),
            wake: Arc::new(EventFd::new()?),
        });
        // The first client's share, now: the idle daemon holds it from the start, so that
        // its descriptor count is the same before and after sessions.
        let _ = spare::fill(shared.wake.as_fd());
        let thread = {
            let (shared, ctx) = (Arc::clone(&shared), Arc::clone(ctx));
            crate::thread::spawn(
                "accept".into(),
                crate::thread::STACK,
                Box::new(move || accept_loop(&shared, &ctx)),
            )?
        };
        let acceptor = Acceptor {
            shared,
            thread: Some(thread),
        };
        for b in bound {
            acceptor.add(b);
        }
        Ok(acceptor)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Where it listens.
    pub fn listens(&self) -> Vec<Listen> {
        self.state()
            .listeners
            .iter()
            .map(|l| l.pool.listen)
            .collect()
    }

    /// Starts accepting on `bound`.
    pub fn add(&self, bound: Bound) {
        let name = describe(&bound.socket, bound.pool.listen);
        let mut s = self.state();
        s.listeners.push(Listener {
            socket: bound.socket,
            refusals: Arc::new(Refusals::new(
                bound.pool.listen,
                Some(Arc::clone(&self.shared.wake)),
            )),
            pool: Arc::new(bound.pool),
        });
        s.generation += 1;
        drop(self.caught_up(s));
        // Tests and supervisors take this line to mean "ready": the socket is polled now.
        crate::info!("listening on {name}");
    }

    /// Stops accepting on `listen` and closes its socket before returning.
    pub fn remove(&self, listen: Listen) {
        let mut s = self.state();
        let Some(i) = s.listeners.iter().position(|l| l.pool.listen == listen) else {
            return;
        };
        let gone = s.listeners.swap_remove(i);
        s.generation += 1;
        // Closed only once the accept thread no longer polls it: a descriptor closed under
        // poll keeps the socket, and the port, alive until poll returns.
        drop(self.caught_up(s));
        drop(gone);
        crate::info!("stopped listening on {listen}");
    }

    /// Serves new clients of `pool.listen` from `pool` from now on.
    pub fn replace_pool(&self, pool: Pool) {
        let mut s = self.state();
        if let Some(l) = s
            .listeners
            .iter_mut()
            .find(|l| l.pool.listen == pool.listen)
        {
            l.pool = Arc::new(pool);
        }
    }

    /// Whether the pool serving `pool.listen` differs from `pool`.
    pub fn pool_differs(&self, pool: &Pool) -> bool {
        let s = self.state();
        s.listeners
            .iter()
            .find(|l| l.pool.listen == pool.listen)
            .is_none_or(|l| *l.pool != *pool)
    }

    /// Wakes the accept thread and waits until it polls the current generation (or is gone).
    fn caught_up<'a>(&'a self, mut s: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.shared.wake.signal();
        // The timeout only guards against a thread that died: then nobody catches up.
        while s.polled != Some(s.generation)
            && self.thread.as_ref().is_some_and(|t| !t.is_finished())
        {
            s = match self
                .shared
                .caught_up
                .wait_timeout(s, Duration::from_millis(100))
            {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        s
    }
}

impl Drop for Acceptor {
    /// Stops accepting and closes every socket before returning, so the ports are free.
    fn drop(&mut self) {
        self.state().stop = true;
        self.shared.wake.signal();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for l in self.state().listeners.drain(..) {
            crate::info!("stopped listening on {}", l.pool.listen);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn describe(socket: &TcpListener, listen: Listen) -> String {
    socket
        .local_addr()
        .map_or_else(|_| listen.to_string(), |a| a.to_string())
}

/// How often a daemon out of descriptors tries again to set some aside, and so to accept.
const STARVED_RETRY: Duration = Duration::from_millis(50);

fn accept_loop(shared: &Shared, ctx: &Arc<Context>) {
    let mut fds: Vec<libc::pollfd> = Vec::new();
    // Out of descriptors: the listeners are not polled (they would stay ready), and their
    // clients wait in the listen queue until descriptors are free again.
    let mut starved = false;
    let mut starving = Starving::default();
    loop {
        let timeout = {
            let mut s = shared.lock();
            if s.stop {
                return;
            }
            if s.polled != Some(s.generation) {
                fds.clear();
                fds.extend(
                    s.listeners
                        .iter()
                        .map(|l| sys::pollfd(l.socket.as_raw_fd(), Interest::Read)),
                );
                fds.push(sys::pollfd(shared.wake.raw(), Interest::Read));
                s.polled = Some(s.generation);
                shared.caught_up.notify_all();
            }
            let due = s.listeners.iter().filter_map(|l| l.refusals.due_in()).min();
            if starved {
                Some(due.map_or(STARVED_RETRY, |d| d.min(STARVED_RETRY)))
            } else {
                due
            }
        };
        let Some((wake, sockets)) = fds.split_last_mut() else {
            continue;
        };
        sockets.iter_mut().for_each(|p| p.revents = 0);
        let polled = if starved {
            sys::poll_fds(std::slice::from_mut(wake), timeout)
        } else {
            sys::poll_fds(&mut fds, timeout)
        };
        if let Err(e) = polled {
            crate::error!("poll: {e}");
            thread::sleep(Duration::from_millis(100));
            continue;
        }
        let Some((wake, sockets)) = fds.split_last() else {
            continue;
        };
        if wake.revents != 0 {
            shared.wake.clear();
        }
        let mut s = shared.lock();
        // A change since the poll may have put other sockets behind these indices.
        if s.polled != Some(s.generation) {
            continue;
        }
        if starved && spare::fill(shared.wake.as_fd()).is_ok() {
            starved = false;
            crate::debug!("descriptors free again: accepting clients");
        }
        for (l, p) in s.listeners.iter_mut().zip(sockets) {
            if p.revents != 0 && !starved {
                if let Err(e) = accept_one(l, ctx, &shared.wake) {
                    starved = true;
                    starving.log(&e);
                }
            }
            l.refusals.flush();
        }
    }
}

/// How often running out of descriptors is logged at most: near the limit each client
/// served frees a few, so the daemon may stop and resume accepting many times a second.
const STARVING_LOGGED_EVERY: Duration = Duration::from_secs(10);

/// The log of the times the accept thread ran out of descriptors.
#[derive(Default)]
struct Starving {
    last: Option<Instant>,
    unlogged: u32,
}

impl Starving {
    fn log(&mut self, e: &io::Error) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < STARVING_LOGGED_EVERY)
        {
            self.unlogged += 1;
            return;
        }
        crate::error!(
            "cannot serve a client: {e}; accepting none for now ({} times since the last report)",
            self.unlogged + 1
        );
        self.last = Some(Instant::now());
        self.unlogged = 0;
    }
}

/// Accepts one client of `l` (one per wake-up, so a busy port cannot starve the others),
/// having first set aside the descriptors its session needs. An error: the process is out
/// of descriptors, memory or threads; nobody more can be served for now (a client accepted
/// meanwhile has been told).
fn accept_one(l: &mut Listener, ctx: &Arc<Context>, wake: &EventFd) -> io::Result<()> {
    spare::fill(wake.as_fd())?;
    // The socket itself takes one more; with none left, accept fails with EMFILE and the
    // client stays in the listen queue.
    match l.socket.accept() {
        Ok((stream, peer)) => {
            // A refusal by address costs no thread: a flood of strangers is accepted and
            // closed right here.
            if l.pool.refuses_by_address(peer.ip()) {
                l.refusals.refused(peer, Refusal::Hosts);
                return Ok(());
            }
            let Some(slot) = Slot::take() else {
                session::tell(&stream, Refusal::Crowded);
                l.refusals.refused(peer, Refusal::Crowded);
                return Ok(());
            };
            // Blocking, as the relay needs, although the listener is not: on Linux an accepted
            // socket does not inherit O_NONBLOCK (accept(2)), so no call is needed to say so.
            let (pool, refusals, ctx) = (
                Arc::clone(&l.pool),
                Arc::clone(&l.refusals),
                Arc::clone(ctx),
            );
            let handover = session::Handover::new(session::Client {
                stream,
                peer,
                spare: Spare::take(),
            });
            let job = Box::new(move || {
                let _slot = slot;
                session::serve(handover, &pool, &refusals, &ctx)
            });
            // The job dropped unrun tells its client; like running out of descriptors, no
            // thread means no more accepts for a moment.
            crate::thread::run(c"session", job).inspect_err(|_| {
                l.refusals
                    .refused(peer, Refusal::Unavailable(Reason::Resources));
            })
        }
        Err(e) => match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => Err(e),
            _ => {
                if e.kind() != io::ErrorKind::WouldBlock {
                    crate::debug!("accept: {e}");
                }
                Ok(())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pool;
    use std::net::{Ipv4Addr, SocketAddr, TcpStream};
    use std::os::fd::AsFd;

    /// The session relies on accepted connections inheriting the listener's TCP_NODELAY and
    /// keepalive settings instead of setting them per client.
    #[test]
    fn accepted_connections_inherit_nodelay_and_keepalive() {
        let pool = Pool {
            listen: Listen::Addr(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            entries: Vec::new(),
        };
        let bound = Bound::new(pool).expect("bind");
        let addr = bound.socket.local_addr().expect("local address");
        let _client = TcpStream::connect(addr).expect("connect");
        let fd = [(bound.socket.as_raw_fd(), Interest::Read)];
        let ready = sys::poll(&fd, Some(Duration::from_secs(5))).expect("poll");
        assert!(ready[0].read, "no connection to accept");
        let (accepted, _) = bound.socket.accept().expect("accept");
        let get = |level, name| sys::getsockopt_int(accepted.as_fd(), level, name).expect("get");
        assert_ne!(get(libc::IPPROTO_TCP, libc::TCP_NODELAY), 0, "TCP_NODELAY");
        for &(level, name, value) in &KEEPALIVE {
            assert_eq!(get(level, name), value, "option {level}/{name}");
        }
    }
}
