//! The relay of client mode over RFC 2217 (DESIGN §5): the local tty's settings go to the
//! server as COM-PORT commands, its answers are checked, data passes with 0xFF doubled.
//!
//! In the relay's terms the server is the client and the PTY master the device. Before any
//! data, [`run`] agrees COM-PORT-OPTION and sends the settings in force, waiting up to
//! [`ANSWER_WAIT`] for each step, so that the first byte a program wrote goes at the speed it
//! set. Then, server → tty: the reading thread decodes Telnet, queues negotiation replies
//! and checks answers. Tty → server: the other thread is the socket's only writer; before
//! each read of the tty, and every [`TERMIOS_POLL`] while the tty is quiet, it reads the
//! slave's termios and sends what changed. Linux tells a packet-mode master of termios
//! changes only while the slave has `EXTPROC` set, which pppd clears; reading the termios
//! before each read also keeps a change ahead of the data written after it.

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::outbox::Outbox;
use super::telnet::{MAX_BACKLOG, forward_escaped, stop};
use super::{Control, End, Totals, deliver, pump, read_client, with_buffer, write_client};
use crate::client::line::{self, Asked, Wanted};
use crate::client::tty::Master;
use crate::sys::{self, EventFd, Interest};
use crate::telnet::{Command, Decoder};

/// How long the server has to agree COM-PORT-OPTION, and then to answer the settings.
pub const ANSWER_WAIT: Duration = Duration::from_secs(1);
/// How often the tty's termios is read while no data passes.
pub const TERMIOS_POLL: Duration = Duration::from_millis(50);

/// What the two threads of one connection share.
pub struct Remote {
    /// Replies for the server, queued by the reading thread for the writing one.
    outbox: Outbox,
    /// What was asked and not answered; what the server is known to get wrong. Lives as
    /// long as the client, so each oddity is logged once.
    asked: Arc<Mutex<Asked>>,
}

impl Remote {
    /// For one connection, with the client's record of answers.
    pub fn new(asked: &Arc<Mutex<Asked>>, ready: EventFd) -> Remote {
        Remote {
            outbox: Outbox::new(ready),
            asked: Arc::clone(asked),
        }
    }

    fn asked(&self) -> MutexGuard<'_, Asked> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `replies` for the writer; an error once too many wait: a server that keeps
    /// asking and never reads the answers must not grow us.
    fn queue(&self, replies: &mut Vec<u8>) -> Result<(), End> {
        if replies.is_empty() {
            return Ok(());
        }
        if self.outbox.push(|out| out.append(replies)) > MAX_BACKLOG {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "server reads no answers");
            return Err(End::ClientError(e));
        }
        Ok(())
    }

    /// Takes the server's answers, logging an odd one.
    fn answered(&self, commands: &mut Vec<Command>) {
        for cmd in commands.drain(..) {
            if let Some(odd) = self.asked().answer(cmd) {
                crate::debug!(
                    "server answered {} {} with {}; carrying on (said once)",
                    odd.setting.name(),
                    odd.asked,
                    odd.answered
                );
            }
        }
    }
}

/// Copies both ways, speaking Telnet and RFC 2217 to the server; returns what moved. The
/// reason the connection ended is left in `ctl`.
pub fn run(ctl: &Arc<Control>, master: &Arc<Master>, remote: &Arc<Remote>) -> Totals {
    remote.asked().forget();
    let mut decoder = Decoder::client();
    let mut early = Vec::new();
    let told = match open(ctl, master, remote, &mut decoder, &mut early) {
        Ok(told) => told,
        Err(end) => {
            // What the server said before it went (`modemd: all devices busy`) still
            // reaches the programs.
            let mut to_device = 0;
            deliver(ctl, &**master, &early, &mut to_device);
            ctl.stop(end);
            return Totals {
                to_device,
                to_client: 0,
            };
        }
    };
    let (writer, tty) = (Arc::clone(remote), Arc::clone(master));
    let start = Cell::new(Some((decoder, early)));
    pump(
        ctl,
        Box::new(move |ctl| with_buffer(ctl, |buf| to_server(ctl, &tty, &writer, told, buf))),
        &|ctl| match start.take() {
            Some((decoder, early)) => {
                with_buffer(ctl, |buf| to_tty(ctl, master, remote, decoder, &early, buf))
            }
            None => 0,
        },
    )
}

/// Agrees COM-PORT-OPTION and sends the settings in force. `Ok(None)`: the server refused
/// the option (or never answered), and gets data only; `Ok(Some(None))`: agreed, but the
/// tty's speed could not be told.
fn open(
    ctl: &Control,
    master: &Master,
    remote: &Remote,
    decoder: &mut Decoder,
    early: &mut Vec<u8>,
) -> Result<Option<Option<Wanted>>, End> {
    let mut out = Vec::new();
    decoder.greeting(&mut out);
    send(ctl, master, &out)?;
    let mut until = Instant::now() + ANSWER_WAIT;
    while decoder.com_port_pending() && receive(ctl, remote, decoder, early, until)? {}
    if !decoder.com_port() {
        crate::warning!("the server does not do RFC 2217: the tty's settings are not sent");
        return Ok(None);
    }
    out.clear();
    let told = master.wanted();
    if let Some(w) = told {
        line::commands(None, w, &mut out, &mut remote.asked());
    }
    send(ctl, master, &out)?;
    until = Instant::now() + ANSWER_WAIT;
    while !remote.asked().settled() && receive(ctl, remote, decoder, early, until)? {}
    for (setting, value) in remote.asked().give_up() {
        crate::debug!(
            "no answer from the server to {} {value} in {} ms; not waiting for it again",
            setting.name(),
            sys::millis(ANSWER_WAIT)
        );
    }
    Ok(Some(told))
}

/// Sends `bytes` to the server before the copy threads run (nothing else writes yet).
fn send(ctl: &Control, master: &Master, bytes: &[u8]) -> Result<(), End> {
    let mut sent = 0;
    write_client(ctl, master, None, bytes, &mut sent).map_err(|e| e.unwrap_or(End::Shutdown))
}

/// Reads what the server says, until `until`: replies queued, answers taken, data kept in
/// `early`. `Ok(false)` once the time is up, or once `early` holds [`MAX_BACKLOG`]: a server
/// that talks without end (a raw line named `rfc2217://`) must neither keep the data waiting
/// nor fill our memory.
fn receive(
    ctl: &Control,
    remote: &Remote,
    decoder: &mut Decoder,
    early: &mut Vec<u8>,
    until: Instant,
) -> Result<bool, End> {
    let left = until.saturating_duration_since(Instant::now());
    if left.is_zero() || early.len() >= MAX_BACKLOG {
        return Ok(false);
    }
    let fds = [
        (ctl.client().as_raw_fd(), Interest::Read),
        (ctl.wake.raw(), Interest::Read),
    ];
    let ready = sys::poll(&fds, Some(left)).map_err(End::ClientError)?;
    if ready[1].read {
        return Err(End::Shutdown);
    }
    if !(ready[0].read || ready[0].hangup) {
        return Ok(true);
    }
    let mut buf = [0u8; 512];
    let Some(n) = read_client(ctl, &mut buf) else {
        return Err(ctl.take_end().unwrap_or(End::ClientClosed));
    };
    let (mut replies, mut commands) = (Vec::new(), Vec::new());
    let data = decoder.decode(&mut buf, n, &mut replies, &mut commands);
    early.extend_from_slice(&buf[..data]);
    // Queued, not sent: a server that asks without reading must not block us here.
    remote.queue(&mut replies)?;
    remote.answered(&mut commands);
    Ok(true)
}

/// Server → tty: Telnet decoded, answers checked.
fn to_tty(
    ctl: &Control,
    master: &Master,
    remote: &Remote,
    mut decoder: Decoder,
    early: &[u8],
    buf: &mut [u8],
) -> u64 {
    let mut total = 0u64;
    if !deliver(ctl, master, early, &mut total) {
        return total;
    }
    let (mut replies, mut commands) = (Vec::new(), Vec::new());
    while let Some(n) = read_client(ctl, buf) {
        let data = decoder.decode(buf, n, &mut replies, &mut commands);
        if let Err(end) = remote.queue(&mut replies) {
            ctl.stop(end);
            break;
        }
        remote.answered(&mut commands);
        if !deliver(ctl, master, &buf[..data], &mut total) {
            break;
        }
    }
    total
}

/// Tty → server: settings as they change, replies, data with 0xFF doubled. `told`: `None`
/// if the server takes no settings, else what it was told last.
fn to_server(
    ctl: &Control,
    master: &Master,
    remote: &Remote,
    mut told: Option<Option<Wanted>>,
    buf: &mut [u8],
) -> u64 {
    let mut queued = Vec::new();
    let mut total = 0u64;
    let poll = told.is_some().then_some(TERMIOS_POLL);
    loop {
        let fds = [
            (ctl.wake.raw(), Interest::Read),
            (remote.outbox.fd(), Interest::Read),
            (master.as_fd().as_raw_fd(), Interest::Read),
        ];
        let ready = match sys::poll(&fds, poll) {
            Ok(r) => r,
            Err(e) => return stop(ctl, Some(End::DeviceError(e)), total),
        };
        if ready[0].read {
            return total;
        }
        if ready[1].read {
            remote.outbox.take(&mut queued);
        }
        if let Some(last) = told.as_mut() {
            if let Some(now) = master.wanted().filter(|&now| Some(now) != *last) {
                line::commands(*last, now, &mut queued, &mut remote.asked());
                *last = Some(now);
            }
        }
        if !queued.is_empty() {
            let mut sent = 0;
            if let Err(end) = write_client(ctl, master, None, &queued, &mut sent) {
                return stop(ctl, end, total);
            }
            queued.clear();
        }
        if !(ready[2].read || ready[2].hangup) {
            continue;
        }
        if let Err(end) = forward_escaped(ctl, master, None, buf, &mut total) {
            return stop(ctl, end, total);
        }
    }
}

/// Tells the server DTR is off, as a program closing a real port with `HUPCL` drops it;
/// best effort, the connection closes next anyway.
pub fn drop_dtr(ctl: &Control, remote: &Remote) {
    let mut out = Vec::new();
    line::control(
        line::DTR_OFF,
        line::Setting::Dtr,
        &mut out,
        &mut remote.asked(),
    );
    let _ = sys::send(ctl.client().as_fd(), &out, libc::MSG_DONTWAIT);
}
