//! One listening socket and the thread that accepts on it.
//!
//! The thread waits in `poll` on the socket and an eventfd, so a reload can stop a listener
//! whose `LISTEN` left the config without disturbing the others. The pool behind a listener
//! can be swapped while it runs (a reload that changes devices or `HOSTS` of a port that
//! stays): new clients get the new pool, live sessions keep the one they started with.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::config::{Listen, Pool};
use crate::session::{self, Context};
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

/// Binds `listen`. A bare port takes `[::]` with `IPV6_V6ONLY` off whatever the system
/// default (IPv4 clients arrive as mapped addresses), and falls back to `0.0.0.0` on a kernel
/// without IPv6.
pub fn bind(listen: Listen) -> io::Result<TcpListener> {
    match listen {
        Listen::Addr(addr) => TcpListener::bind(addr),
        Listen::Port(port) => sys::listen_dual_stack(port).or_else(|e| match e.raw_os_error() {
            Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL) => {
                TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
            }
            _ => Err(e),
        }),
    }
}

/// A bound socket, before its thread runs.
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

    /// Starts accepting; clients are served with `ctx`.
    pub fn start(self, ctx: &Arc<Context>) -> io::Result<Running> {
        let listen = self.pool.listen;
        let pool = Arc::new(Mutex::new(Arc::new(self.pool)));
        let stop = Arc::new(EventFd::new()?);
        let name = describe(&self.socket, listen);
        let thread = {
            let (pool, stop, ctx) = (Arc::clone(&pool), Arc::clone(&stop), Arc::clone(ctx));
            let socket = self.socket;
            crate::thread::spawn(
                format!("accept {listen}"),
                crate::thread::STACK,
                Box::new(move || accept_loop(&socket, &pool, &stop, &ctx)),
            )?
        };
        // Logged once the thread exists: tests and supervisors take this line to mean "ready",
        // and a thread count read after it must already include the accept thread.
        crate::info!("listening on {name}");
        Ok(Running {
            listen,
            pool,
            stop,
            thread: Some(thread),
        })
    }
}

/// A listener whose thread is accepting.
pub struct Running {
    listen: Listen,
    pool: Arc<Mutex<Arc<Pool>>>,
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Where it listens.
    pub fn listen(&self) -> Listen {
        self.listen
    }

    /// Serves new clients from `pool` from now on.
    pub fn replace_pool(&self, pool: Pool) {
        *self.pool.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(pool);
    }

    /// Whether the pool differs from `pool`.
    pub fn pool_differs(&self, pool: &Pool) -> bool {
        **self.pool.lock().unwrap_or_else(|p| p.into_inner()) != *pool
    }
}

impl Drop for Running {
    /// Stops accepting and closes the socket before returning, so the port is free again.
    fn drop(&mut self) {
        self.stop.signal();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        crate::info!("stopped listening on {}", self.listen);
    }
}

fn describe(socket: &TcpListener, listen: Listen) -> String {
    socket
        .local_addr()
        .map_or_else(|_| listen.to_string(), |a| a.to_string())
}

/// Refusal lines per listener and second; a flood of strangers must not flood syslog (often
/// on flash) or cost the live sessions the time to write it.
const REFUSALS_LOGGED_PER_SECOND: u32 = 10;

/// Counts refusals so that at most [`REFUSALS_LOGGED_PER_SECOND`] are logged one by one.
struct RefusalLog {
    window: Instant,
    logged: u32,
    suppressed: u32,
}

impl RefusalLog {
    fn new() -> Self {
        RefusalLog {
            window: Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }

    /// When the suppressed count is due, if there is one pending.
    fn due_in(&self) -> Option<Duration> {
        (self.suppressed > 0).then(|| Duration::from_secs(1).saturating_sub(self.window.elapsed()))
    }

    /// Logs the count of suppressed lines once their second is over.
    fn flush(&mut self, listen: Listen) {
        if self.window.elapsed() >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                crate::info!("{} more clients refused on {listen}", self.suppressed);
            }
            *self = RefusalLog::new();
        }
    }

    fn refused(&mut self, peer: SocketAddr, listen: Listen) {
        self.flush(listen);
        if self.logged < REFUSALS_LOGGED_PER_SECOND {
            self.logged += 1;
            crate::info!("refused {peer} on {listen}: not allowed by HOSTS");
        } else {
            self.suppressed += 1;
        }
    }
}

fn accept_loop(socket: &TcpListener, pool: &Mutex<Arc<Pool>>, stop: &EventFd, ctx: &Arc<Context>) {
    let fds = [
        (socket.as_raw_fd(), Interest::Read),
        (stop.raw(), Interest::Read),
    ];
    let mut refusals = RefusalLog::new();
    let listen = pool.lock().unwrap_or_else(|p| p.into_inner()).listen;
    loop {
        match sys::poll(&fds, refusals.due_in()) {
            Ok(ready) if ready[1].read => return,
            Ok(ready) if !ready[0].read => {
                refusals.flush(listen);
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                crate::error!("poll: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        match socket.accept() {
            Ok((stream, peer)) => {
                let pool = Arc::clone(&pool.lock().unwrap_or_else(|p| p.into_inner()));
                // A refusal by address costs no thread: a flood of strangers is accepted and
                // closed right here.
                if pool.refuses_by_address(peer.ip()) {
                    refusals.refused(peer, pool.listen);
                    continue;
                }
                let Some(slot) = Slot::take() else {
                    crate::warning!("{peer}: {MAX_CLIENTS} clients in flight; closing");
                    continue;
                };
                // Accepted sockets do not inherit O_NONBLOCK on Linux, but say so anyway: the
                // relay relies on blocking socket I/O.
                if let Err(e) = stream.set_nonblocking(false) {
                    crate::error!("accept: {e}");
                    continue;
                }
                let ctx = Arc::clone(ctx);
                let spawned = crate::thread::spawn(
                    "session".into(),
                    crate::thread::STACK,
                    Box::new(move || {
                        let _slot = slot;
                        session::serve(stream, peer, &pool, &ctx)
                    }),
                );
                if let Err(e) = spawned {
                    crate::error!("cannot start a session thread: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => match e.raw_os_error() {
                // Out of descriptors or memory: accepting again at once would spin.
                Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                    crate::error!("accept: {e}");
                    thread::sleep(Duration::from_millis(100));
                }
                _ => crate::debug!("accept: {e}"),
            },
        }
    }
}
