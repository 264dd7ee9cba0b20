//! One client from admission to accounting: admit (ACL) → claim (pool + UUCP lock) → open
//! (serial) → relay → hang up (`hangup.rs`) → log.
//!
//! Busy means busy: a device that its session is only hanging up, or whose client has
//! already gone, is waited for (bounded by the hold), and only devices held for clients
//! still there turn a client away.
//!
//! The daemon and inetd mode both end up here; only where the connection comes from differs.
//! A session owns its lock, line and socket as values, in that drop order reversed: the line
//! is hung up and closed before the lock is removed, and both happen on every way out,
//! including a panic.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::acl;
use crate::comport::ComPort;
use crate::config::{Entry, Pool, Rfc2217};
use crate::fault::{Faults, Reason};
use crate::hangup;
use crate::lock::{self, UucpLock};
use crate::refusals::{Refusal, Refusals};
use crate::registry::{Claim, Registry, Ticket};
use crate::relay::{self, Control, DRAIN, End};
use crate::resolve::SystemResolver;
use crate::serial::Line;
use crate::spare::{Exhaustion, Spare};
use crate::sys::{self, EventFd, Interest};

/// What every session needs from the daemon.
pub struct Context {
    /// Where UUCP lock files go.
    pub lock_dir: PathBuf,
    /// The live sessions, for shutdown.
    pub registry: Registry,
    /// The devices that cannot be used, so that each problem is logged once.
    pub faults: Faults,
}

// One Context serves every session thread, the accept thread and the signal thread; the
// registry inside it holds each session's Control.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Context>();
};

/// How long a client that found no device may take to read the `busy` line before we close.
const LINGER: Duration = Duration::from_millis(200);

/// An accepted client, and the descriptors set aside for its session.
pub struct Client {
    /// The connection.
    pub stream: TcpStream,
    /// Where it comes from.
    pub peer: SocketAddr,
    /// What its session may use when the process is out of descriptors.
    pub spare: Spare,
}

/// A client handed to a session thread. If the thread never runs it (none could be
/// started), dropping it tells the client why, so no client is accepted only to be closed
/// without a word.
pub struct Handover(Option<Client>);

impl Handover {
    /// `client`, on its way to [`serve`].
    pub fn new(client: Client) -> Handover {
        Handover(Some(client))
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            tell(&c.stream, Refusal::Unavailable(Reason::Resources));
        }
    }
}

/// Serves one accepted client of `pool` until its session ends; a refusal is logged through
/// `refusals`.
pub fn serve(mut handover: Handover, pool: &Pool, refusals: &Refusals, ctx: &Context) {
    let Some(Client {
        stream,
        peer,
        mut spare,
    }) = handover.0.take()
    else {
        return;
    };
    let wake = match spare.retry(EventFd::new) {
        Ok(wake) => wake,
        Err(e) => {
            crate::debug!("{peer} on {}: cannot set up a session: {e}", pool.listen);
            refuse(
                &stream,
                peer,
                refusals,
                Refusal::Unavailable(Reason::Resources),
            );
            return;
        }
    };
    let ctl = Arc::new(Control::new(stream, wake));
    let Some(ticket) = ctx.registry.enter(Arc::clone(&ctl)) else {
        return;
    };
    // For the resolver's socket or /etc/hosts: a lookup that fails for want of a descriptor
    // would refuse a client that HOSTS admits by name.
    if pool
        .entries
        .iter()
        .any(|e| e.hosts.decide_by_address(peer.ip()).is_none())
    {
        spare.free_one();
    }
    let resolver = SystemResolver;
    let who = acl::Client::new(peer.ip(), &resolver);
    let admitted: Vec<&Entry> = pool
        .entries
        .iter()
        .filter(|e| e.hosts.admits(&who))
        .collect();
    if admitted.is_empty() {
        refusals.refused(peer, Refusal::Hosts);
        return;
    }
    // A client that reset or closed before we got to it must not make a modem pick up
    // (opening the device raises DTR).
    if gone(&ctl) {
        crate::debug!(
            "{peer} on {}: gone before a device was claimed",
            pool.listen
        );
        return;
    }
    let claimed = claim(&admitted, ctx, &ticket, &ctl, peer, &mut spare);
    let (entry, lock, line) = match claimed {
        Ok(claimed) => claimed,
        Err(why) => {
            if !ctl.stopped() && !gone(&ctl) {
                refuse(ctl.client(), peer, refusals, why);
            }
            return;
        }
    };
    // An `rfc2217` line's answers wait for its writer behind an eventfd of their own.
    let port = match entry.options.rfc2217 {
        Rfc2217::Off => Ok(None),
        mode => spare.retry(EventFd::new).map(|ready| {
            let fixed = mode == Rfc2217::Fixed;
            Some(Arc::new(ComPort::new(&line, &entry.device, fixed, ready)))
        }),
    };
    // Set up: what was set aside is free for the next client.
    drop(spare);
    let port = match port {
        Ok(port) if !ctl.stopped() => port,
        other => {
            drop(line);
            ticket.release(lock);
            if other.is_err() {
                refuse(
                    ctl.client(),
                    peer,
                    refusals,
                    Refusal::Unavailable(Reason::Resources),
                );
            }
            return;
        }
    };
    crate::info!(
        "session start: {peer} on {} -> {} ({})",
        pool.listen,
        entry.device.display(),
        entry.settings
    );
    let start = Instant::now();
    let line = Arc::new(line);
    let totals = match &port {
        None => relay::run(&ctl, &line, entry.options.idle),
        Some(port) => relay::telnet::run(&ctl, &line, entry.options.idle, port),
    };
    drop(port);
    let end = ctl.take_end().unwrap_or(End::ClientClosed);
    if matches!(end, End::ClientClosed) {
        // Not past a shutdown: SIGTERM waits for sessions only so long.
        line.drain(DRAIN, || ctx.registry.closing());
    }
    if matches!(
        end,
        End::DeviceGone | End::DeviceError(_) | End::Idle | End::NoThread(_) | End::NoBuffer(_)
    ) {
        // The client may still be there: tell it why the line went dead.
        let c = ctl.client();
        let _ = c.set_write_timeout(Some(LINGER));
        say(
            c,
            &format!(
                "\r\nmodemd: {} {end}, hanging up\r\n",
                entry.device.display()
            ),
        );
        let _ = c.shutdown(Shutdown::Both);
    }
    // Counted up to the hang-up: the hold that follows is reported on its own.
    // Integer arithmetic: a float formatter would cost the router image more than this line.
    let ms = sys::millis(start.elapsed());
    let left = hangup::hang_up(&line, entry.options.hangup, &end, &ticket, &ctx.registry);
    // Written but never sent (a stalled line at a shutdown) did not reach the device.
    let to_device = totals
        .to_device
        .saturating_sub(line.abandon_output() as u64);
    drop(line);
    ticket.release(lock);
    crate::info!(
        "session end: {peer} on {} device {} in {} out {} duration {}.{:03}s reason {end}, {left}",
        pool.listen,
        entry.device.display(),
        to_device,
        totals.to_client,
        ms / 1000,
        ms % 1000,
    );
}

/// The first admitted device that is free, locked and open. A device that one of our own
/// sessions is letting go of (hanging up, or its client gone) is waited for, once, until
/// one such device is free; a client that leaves meanwhile, or a shutdown, ends the claim.
/// Without a device: `Busy` if any admitted device is held for a client still there or by
/// another program, else why the first one cannot be used.
fn claim<'p>(
    admitted: &[&'p Entry],
    ctx: &Context,
    ticket: &Ticket<'_>,
    ctl: &Control,
    peer: SocketAddr,
    spare: &mut Spare,
) -> Result<(&'p Entry, UucpLock, Line), Refusal> {
    let mut waited = false;
    let mut unusable: Option<Reason> = None;
    loop {
        let mut leaving: Vec<PathBuf> = Vec::new();
        let mut busy = false;
        for entry in admitted {
            let device = &entry.device;
            let hold = entry.options.hangup.hold();
            let mut claim = ticket.lock(&ctx.lock_dir, device, hold);
            if matches!(&claim, Claim::Failed(e) if e.out_of_fds()) && spare.free_one() {
                claim = ticket.lock(&ctx.lock_dir, device, hold);
            }
            let lock = match claim {
                Claim::Locked(lock) => lock,
                Claim::Leaving { lock, .. } => {
                    leaving.push(lock);
                    continue;
                }
                Claim::Failed(e @ lock::Error::Busy { .. }) => {
                    crate::debug!("{peer}: {}: {e}", device.display());
                    busy = true;
                    continue;
                }
                Claim::Failed(e) => {
                    match &e {
                        // Unreadable: held, as far as anyone can tell, but odd enough to be
                        // told once.
                        lock::Error::Unreadable { .. } | lock::Error::Busy { .. } => busy = true,
                        lock::Error::Io { source, .. } | lock::Error::Dir { source, .. } => {
                            unusable.get_or_insert(Reason::of_lock(source));
                        }
                        lock::Error::Device { source, .. } => {
                            unusable.get_or_insert(Reason::of_device(source));
                        }
                    }
                    let problem = format_args!("{}: {e}", device.display());
                    fault(ctx, peer, device, &problem, e.out_of_fds());
                    continue;
                }
            };
            let opened = spare.retry(|| {
                Line::open(
                    device,
                    &entry.settings,
                    entry.options.flow,
                    entry.options.hangup,
                )
            });
            match opened {
                Ok(line) => {
                    if ctx.faults.worked(device) {
                        crate::info!("{}: usable again", device.display());
                    }
                    return Ok((entry, lock, line));
                }
                // Another program has it open exclusively, without a UUCP lock.
                Err(e) if e.io().kind() == io::ErrorKind::ResourceBusy => {
                    crate::debug!("{peer}: cannot open {e}");
                    busy = true;
                    ticket.release(lock);
                }
                Err(e) => {
                    unusable.get_or_insert(Reason::of_device(e.io()));
                    let problem = format_args!("cannot open {e}");
                    fault(ctx, peer, device, &problem, e.out_of_fds());
                    ticket.release(lock);
                }
            }
        }
        if leaving.is_empty() || waited {
            return Err(match unusable {
                Some(why) if !busy && leaving.is_empty() => Refusal::Unavailable(why),
                _ => Refusal::Busy,
            });
        }
        crate::debug!("{peer}: waiting for a device that is hanging up");
        ctx.registry.wait_released(&leaving);
        waited = true;
        // Opening raises DTR: not for a client that left while it waited, nor at shutdown
        // (stop_all stops every registered session).
        if ctl.stopped() || gone(ctl) {
            return Err(Refusal::Busy);
        }
    }
}

/// Logs that `device` cannot be used: as an error when the problem is new for it, at the
/// debug level for every client after. Running out of descriptors is the process's problem,
/// not the device's, and is told by the accept thread.
fn fault(
    ctx: &Context,
    peer: SocketAddr,
    device: &Path,
    problem: &dyn std::fmt::Display,
    out_of_fds: bool,
) {
    if out_of_fds {
        crate::debug!("{peer}: {problem}");
    } else if ctx.faults.failed(device, problem) {
        crate::error!("{problem}");
    } else {
        crate::debug!("{peer}: {problem}");
    }
}

/// Whether the client has hung up entirely (reset, or closed both ways). A client that
/// sent a command and half-closed is still there, waiting for the answer.
fn gone(ctl: &Control) -> bool {
    let fd = [(ctl.client().as_raw_fd(), Interest::Read)];
    sys::poll(&fd, Some(Duration::ZERO)).is_ok_and(|r| r[0].hangup)
}

/// Tells an accepted client at once why it gets no session, without waiting: for a thread
/// that must not block on one client (the accept thread).
pub fn tell(stream: &TcpStream, why: Refusal) {
    let line = format!("modemd: {why}\r\n");
    let _ = sys::send(stream.as_fd(), line.as_bytes(), libc::MSG_DONTWAIT);
}

/// Sends all of `text` to the client, as `write_all` would (within the stream's write
/// timeout), giving up at the first error. Not `write!` on the stream: std's fmt adapter for
/// it costs the router image more, and it made a send(2) of every piece of the line.
fn say(client: &TcpStream, text: &str) {
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        match sys::retry(|| sys::send(client.as_fd(), rest, 0)) {
            Ok(0) | Err(_) => return,
            Ok(n) => rest = &rest[n..],
        }
    }
}

/// Tells the client why it gets no session (`busy`, or `unavailable` and the reason), logs
/// it within the port's rate, then closes without a reset, so the line is not thrown away by
/// the client's stack because of bytes it sent that we never read.
fn refuse(client: &TcpStream, peer: SocketAddr, refusals: &Refusals, why: Refusal) {
    refusals.refused(peer, why);
    let mut c = client;
    let _ = c.set_write_timeout(Some(LINGER));
    say(c, &format!("modemd: {why}\r\n"));
    let _ = client.shutdown(Shutdown::Write);
    let _ = client.set_read_timeout(Some(LINGER));
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 1024];
    while Instant::now() < deadline {
        match c.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
