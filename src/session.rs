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

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::acl;
use crate::config::{Entry, Pool};
use crate::hangup;
use crate::lock::{self, UucpLock};
use crate::registry::{Claim, Registry, Ticket};
use crate::relay::{self, Control, DRAIN, End};
use crate::resolve::SystemResolver;
use crate::serial::Line;
use crate::sys::{self, Interest};

/// What every session needs from the daemon.
pub struct Context {
    /// Where UUCP lock files go.
    pub lock_dir: PathBuf,
    /// The live sessions, for shutdown.
    pub registry: Registry,
}

// One Context serves every session thread, the accept thread and the signal thread; the
// registry inside it holds each session's Control.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Context>();
};

/// How long a client that found no device may take to read the `busy` line before we close.
const LINGER: Duration = Duration::from_millis(200);

/// Serves one accepted client of `pool`, connected from `peer`, until its session ends.
pub fn serve(client: TcpStream, peer: SocketAddr, pool: &Pool, ctx: &Context) {
    let ctl = match Control::new(client) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            crate::error!("{peer} on {}: cannot set up session: {e}", pool.listen);
            return;
        }
    };
    let Some(ticket) = ctx.registry.enter(Arc::clone(&ctl)) else {
        return;
    };
    let resolver = SystemResolver;
    let who = acl::Client::new(peer.ip(), &resolver);
    let admitted: Vec<&Entry> = pool
        .entries
        .iter()
        .filter(|e| e.hosts.admits(&who))
        .collect();
    if admitted.is_empty() {
        crate::info!("refused {peer} on {}: not allowed by HOSTS", pool.listen);
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
    let Some((entry, lock, line)) = claim(&admitted, ctx, &ticket, &ctl, peer) else {
        if !ctl.stopped() && !gone(&ctl) {
            refuse_busy(ctl.client(), peer, &pool.listen);
        }
        return;
    };
    if ctl.stopped() {
        drop(line);
        ticket.release(lock);
        return;
    }
    crate::info!(
        "session start: {peer} on {} -> {} ({})",
        pool.listen,
        entry.device.display(),
        entry.settings
    );
    let start = Instant::now();
    let line = Arc::new(line);
    let totals = relay::run(&ctl, &line, entry.options.idle);
    let end = ctl.take_end().unwrap_or(End::ClientClosed);
    if matches!(end, End::ClientClosed) {
        // Not past a shutdown: SIGTERM waits for sessions only so long.
        line.drain(DRAIN, || ctx.registry.closing());
    }
    if matches!(end, End::DeviceGone | End::DeviceError(_) | End::Idle) {
        // The client may still be there: tell it why the line went dead.
        let mut c = ctl.client();
        let _ = c.set_write_timeout(Some(LINGER));
        let _ = write!(
            c,
            "\r\nmodemd: {} {end}, hanging up\r\n",
            entry.device.display()
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
fn claim<'p>(
    admitted: &[&'p Entry],
    ctx: &Context,
    ticket: &Ticket<'_>,
    ctl: &Control,
    peer: SocketAddr,
) -> Option<(&'p Entry, UucpLock, Line)> {
    let mut waited = false;
    loop {
        let mut leaving: Vec<PathBuf> = Vec::new();
        for entry in admitted {
            let hold = entry.options.hangup.hold();
            let lock = match ticket.lock(&ctx.lock_dir, &entry.device, hold) {
                Claim::Locked(lock) => lock,
                Claim::Leaving { lock, .. } => {
                    leaving.push(lock);
                    continue;
                }
                Claim::Failed(e @ lock::Error::Busy { .. }) => {
                    crate::debug!("{peer}: {}: {e}", entry.device.display());
                    continue;
                }
                Claim::Failed(e) => {
                    crate::error!("{peer}: {}: {e}", entry.device.display());
                    continue;
                }
            };
            match Line::open(
                &entry.device,
                &entry.settings,
                entry.options.flow,
                entry.options.hangup,
            ) {
                Ok(line) => return Some((entry, lock, line)),
                Err(e) => {
                    crate::error!("{peer}: cannot open {e}");
                    ticket.release(lock);
                }
            }
        }
        if leaving.is_empty() || waited {
            return None;
        }
        crate::debug!("{peer}: waiting for a device that is hanging up");
        ctx.registry.wait_released(&leaving);
        waited = true;
        // Opening raises DTR: not for a client that left while it waited, nor at shutdown
        // (stop_all stops every registered session).
        if ctl.stopped() || gone(ctl) {
            return None;
        }
    }
}

/// Whether the client has hung up entirely (reset, or closed both ways). A client that
/// sent a command and half-closed is still there, waiting for the answer.
fn gone(ctl: &Control) -> bool {
    let fd = [(ctl.client().as_raw_fd(), Interest::Read)];
    sys::poll(&fd, Some(Duration::ZERO)).is_ok_and(|r| r[0].hangup)
}

/// Tells the client every device is taken, then closes without a reset, so the line is not
/// thrown away by the client's stack because of bytes it sent that we never read.
fn refuse_busy(client: &TcpStream, peer: SocketAddr, listen: &crate::config::Listen) {
    crate::info!("{peer} on {listen}: every device busy or unavailable");
    let mut c = client;
    let _ = c.write_all(b"modemd: all devices busy\r\n");
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
