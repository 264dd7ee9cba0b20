//! The relay of an `rfc2217` line: Telnet both ways around the same copy loops.
//!
//! Client → device: the reading thread decodes Telnet in place ([`Decoder`]), writes the
//! data to the device, and hands negotiation answers and COM-PORT commands to the
//! [`ComPort`], which acts on the line and queues what the client is to be told. Device →
//! client: the other thread is the socket's only writer. It doubles every 0xFF of what the
//! device says (reading at most half a buffer, so the doubling fits in the same one), sends
//! what the `ComPort` queued, and reads the modem lines while the client's mask asks for
//! their changes. Raw lines never come here: their loops stay as they were.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;

use super::{Control, End, Totals, deliver, pump, read_client, with_buffer, write_client};
use crate::comport::ComPort;
use crate::relay::Device;
use crate::serial::Line;
use crate::sys::{self, Interest};
use crate::telnet::{self, Decoder};

/// Most answer bytes waiting for a client before its session ends: far more than a client
/// that reads them ever leaves unread.
pub(super) const MAX_BACKLOG: usize = 64 * 1024;

/// Copies both ways as [`super::run`] does, speaking Telnet and RFC 2217 to the client.
pub fn run(
    ctl: &Arc<Control>,
    line: &Arc<Line>,
    idle: Option<Duration>,
    port: &Arc<ComPort>,
) -> Totals {
    let (writer, shared) = (Arc::clone(port), Arc::clone(line));
    pump(
        ctl,
        Box::new(move |ctl| with_buffer(ctl, |buf| to_client(ctl, &shared, idle, &writer, buf))),
        &|ctl| with_buffer(ctl, |buf| to_device(ctl, line, port, buf)),
    )
}

/// Client → device: Telnet decoded, COM-PORT commands done.
fn to_device(ctl: &Control, line: &Line, port: &ComPort, buf: &mut [u8]) -> u64 {
    let mut decoder = Decoder::new();
    let mut greeting = Vec::new();
    decoder.greeting(&mut greeting);
    port.send(&greeting);
    let (mut replies, mut commands, mut at) = (Vec::new(), Vec::new(), Vec::new());
    let mut agreed = false;
    let mut total = 0u64;
    while let Some(n) = read_client(ctl, buf) {
        let data = decoder.decode_at(buf, n, &mut replies, &mut commands, Some(&mut at));
        if !replies.is_empty() {
            port.send(&replies);
            replies.clear();
        }
        // pyserial reads no modem line until it has had a first state. It may never say
        // WILL COM-PORT-OPTION: if our DO arrives before it sent its own request, it takes
        // the option as agreed in silence. Its first command says so as well.
        if !agreed && (decoder.com_port() || !commands.is_empty()) {
            agreed = true;
            port.notify_modem(line, true);
        }
        // A read can hold thousands of commands (8,192 BREAKs of 250 ms each): none may keep
        // the session from ending, nor wait once the client has gone.
        let ends = [
            (ctl.wake.raw(), Interest::Read),
            (ctl.client.as_raw_fd(), Interest::Peer),
        ];
        // The data before each command reaches the device before the command acts.
        let mut sent = 0;
        for (cmd, place) in commands.drain(..).zip(at.drain(..)) {
            if ctl.stopped() || !deliver(ctl, line, &buf[sent..place], &mut total) {
                return total;
            }
            sent = place;
            port.apply(line, cmd, &ends);
        }
        // Every command is answered: a client that sends them and reads nothing would grow
        // the answers without end while the writer waits on its full socket.
        if port.backlog() > MAX_BACKLOG {
            let e = io::Error::new(io::ErrorKind::InvalidData, "client reads no answers");
            ctl.stop(End::ClientError(e));
            break;
        }
        if data > sent && !deliver(ctl, line, &buf[sent..data], &mut total) {
            break;
        }
    }
    total
}

/// Device → client: data with 0xFF doubled, the `ComPort`'s answers, modem-state changes.
fn to_client(
    ctl: &Control,
    line: &Line,
    idle: Option<Duration>,
    port: &ComPort,
    buf: &mut [u8],
) -> u64 {
    let mut queued = Vec::new();
    let mut total = 0u64;
    loop {
        let timeout = match ctl.idle_left(idle) {
            Ok(t) => t,
            Err(end) => {
                ctl.stop(end);
                return total;
            }
        };
        let modem = port.modem_poll();
        let timeout = match (timeout, modem) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let fds = [
            (ctl.wake.raw(), Interest::Read),
            (port.ready_fd(), Interest::Read),
            (line.as_fd().as_raw_fd(), Interest::Read),
        ];
        // Suspended by the client: the device waits (and with it, by flow control, the
        // line), and the answers still go out.
        let watched = if port.suspended() { 2 } else { 3 };
        let ready = match sys::poll(&fds[..watched], timeout) {
            Ok(r) => r,
            Err(e) => {
                ctl.stop(End::DeviceError(e));
                return total;
            }
        };
        if ready[0].read {
            return total;
        }
        if modem.is_some() {
            port.notify_modem(line, false);
        }
        if ready[1].read {
            port.take(&mut queued);
        }
        if !queued.is_empty() {
            let mut sent = 0;
            if let Err(end) = write_client(ctl, line, idle, &queued, &mut sent) {
                return stop(ctl, end, total);
            }
            queued.clear();
        }
        if watched < 3 || !(ready[2].read || ready[2].hangup) {
            continue;
        }
        if let Err(end) = forward_escaped(ctl, line, idle, buf, &mut total) {
            return stop(ctl, end, total);
        }
    }
}

/// Reads what the device has, at most half of `buf` (the doubling must fit), and sends it
/// to the client with every 0xFF doubled, adding to `total` what of the device's bytes got
/// there. `Err`: the session is to end (`None`: it was stopped already). Shared by the
/// server's and client mode's Telnet loops.
pub(super) fn forward_escaped(
    ctl: &Control,
    line: &dyn Device,
    idle: Option<Duration>,
    buf: &mut [u8],
    total: &mut u64,
) -> Result<(), Option<End>> {
    let half = buf.len() / 2;
    let n = match sys::read(line.as_fd(), &mut buf[..half]) {
        Ok(0) => return Err(Some(line.end_of_stream())),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EIO) => return Err(Some(line.end_of_stream())),
        Err(e) => return Err(Some(End::DeviceError(e))),
    };
    ctl.activity.touch();
    let escaped = telnet::escape(buf, n);
    let mut sent = 0;
    let written = write_client(ctl, line, idle, &buf[..escaped], &mut sent);
    // What the client got of the device's bytes: all of them, or at most what went.
    *total += if written.is_ok() {
        n as u64
    } else {
        sent.min(n as u64)
    };
    written
}

/// Ends the session for `end` (`None`: it was already stopped) and returns `total`.
pub(super) fn stop(ctl: &Control, end: Option<End>, total: u64) -> u64 {
    if let Some(end) = end {
        ctl.stop(end);
    }
    total
}
