//! The COM port behind an `rfc2217` line (DESIGN §4): what a client's RFC 2217 commands do to
//! the [`Line`], what the client is told back, and the modem-state notifications.
//!
//! Every SET is answered, with the value read back from the line: pyserial waits for each
//! answer and compares it with what it asked, so a device that refuses a speed is answered
//! with the speed in force and the client sees the refusal. A device without modem lines (a
//! PTY, some USB gadgets) is answered as if DTR and RTS had been set as asked: it has no
//! line to disagree, and pyserial would fail to open otherwise. With `fixed`, speed, framing
//! and flow are only reported; DTR, RTS and BREAK still work (they are how a client hangs
//! up, not settings).
//!
//! The session's two threads share one `ComPort`: the one reading the client applies the
//! commands and queues the answers here; the one writing to the client is the only writer of
//! the socket, and sends what is queued when [`ComPort::ready_fd`] says so.

use crate::relay::outbox::Outbox;
use std::io;
use std::os::fd::{AsFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::time::Duration;

use crate::config::{Flow, Parity, Settings};
use crate::serial::{Line, Queue, termios};
use crate::sys::{self, EventFd, Interest};
use crate::telnet::{self, Command};

/// How often the modem lines are read while a client's mask asks for their changes.
pub const MODEM_POLL: Duration = Duration::from_millis(200);

/// How long a Telnet BREAK holds the line in break.
const BREAK: Duration = Duration::from_millis(250);

/// The modem state a device without modem lines reports: ready (DSR) and clear to send.
const NO_LINES: u8 = 0x30;

/// The COM port of one `rfc2217` session.
pub struct ComPort {
    fixed: bool,
    signature: String,
    outbox: Outbox,
    /// Whether the device has modem lines to watch.
    lines: bool,
    modem_mask: AtomicU8,
    line_mask: AtomicU8,
    /// The modem state last told (or found at the start).
    modem: AtomicU8,
    dtr: AtomicBool,
    rts: AtomicBool,
    brk: AtomicBool,
    /// FLOWCONTROL-SUSPEND: the client wants no data for now.
    suspended: AtomicBool,
}

impl ComPort {
    /// The COM port of `line` (opened from `device`); `fixed`: settings are not to change.
    pub fn new(line: &Line, device: &Path, fixed: bool, ready: EventFd) -> ComPort {
        let status = line.modem_status().ok().flatten();
        ComPort {
            fixed,
            signature: format!("modemd {} {}", env!("CARGO_PKG_VERSION"), device.display()),
            outbox: Outbox::new(ready),
            lines: status.is_some(),
            // RFC 2217's defaults: every modem state change is of interest, no line state.
            modem_mask: AtomicU8::new(0xff),
            line_mask: AtomicU8::new(0),
            modem: AtomicU8::new(status.map_or(NO_LINES, modem_bits)),
            // The session raised both when it opened the line.
            dtr: AtomicBool::new(true),
            rts: AtomicBool::new(true),
            brk: AtomicBool::new(false),
            suspended: AtomicBool::new(false),
        }
    }

    /// Queues raw Telnet bytes (negotiation answers) for the client.
    pub fn send(&self, bytes: &[u8]) {
        self.outbox.push(|out| out.extend_from_slice(bytes));
    }

    fn answer(&self, code: u8, value: &[u8]) {
        self.outbox
            .push(|out| telnet::subnegotiation(code + telnet::SERVER, value, out));
    }

    /// How many bytes wait for the client.
    pub fn backlog(&self) -> usize {
        self.outbox.len()
    }

    /// Moves what is queued for the client into `out`.
    pub fn take(&self, out: &mut Vec<u8>) {
        self.outbox.take(out);
    }

    /// Readable while something is queued for the client.
    pub fn ready_fd(&self) -> RawFd {
        self.outbox.fd()
    }

    /// Whether the client asked for no data for now (FLOWCONTROL-SUSPEND).
    pub fn suspended(&self) -> bool {
        self.suspended.load(Relaxed)
    }

    /// How long the writer may wait before the modem lines are to be read again; `None`
    /// when there is nothing to watch.
    pub fn modem_poll(&self) -> Option<Duration> {
        (self.lines && self.modem_mask.load(Relaxed) != 0).then_some(MODEM_POLL)
    }

    /// Tells the client the modem state if it changed in a way its mask asks about, or in
    /// any case with `now` (when the option is agreed, or the client asks).
    pub fn notify_modem(&self, line: &Line, now: bool) {
        let state = if self.lines {
            match line.modem_status() {
                Ok(Some(s)) => modem_bits(s),
                _ => return,
            }
        } else {
            NO_LINES
        };
        let last = self.modem.swap(state, Relaxed);
        // Delta bits (RFC 2217): CD, DSR and CTS changed, RI's trailing edge.
        let deltas = (((last ^ state) & 0xb0) | (last & !state & 0x40)) >> 4;
        let mask = self.modem_mask.load(Relaxed);
        let told = (state | deltas) & mask;
        // A change is told if the client asked about that line or its delta.
        let changed = ((last ^ state) | deltas) & mask != 0;
        if now || changed {
            self.answer(telnet::NOTIFY_MODEMSTATE, &[told]);
        }
    }

    /// Does what `cmd` asks of `line` and queues the answer.
    /// `ends`: descriptors one of which polls ready once the session is over (its eventfd,
    /// the client's hang-up): no wait here outlasts it.
    pub fn apply(&self, line: &Line, cmd: Command, ends: &[(RawFd, Interest)]) {
        match cmd {
            Command::Signature => {
                self.answer(telnet::SIGNATURE, self.signature.as_bytes());
            }
            Command::SetBaud(baud) => {
                let s = self.change(line, &|s| s.baud = baud);
                self.answer(
                    telnet::SET_BAUDRATE,
                    &s.map_or(baud, |s| s.baud).to_be_bytes(),
                );
            }
            Command::SetDataSize(bits) => {
                let s = self.change(line, &|s| {
                    if (5..=8).contains(&bits) {
                        s.data_bits = bits;
                    }
                });
                self.answer(telnet::SET_DATASIZE, &[s.map_or(bits, |s| s.data_bits)]);
            }
            Command::SetParity(code) => {
                let s = self.change(line, &|s| match code {
                    1 => s.parity = Parity::None,
                    2 => s.parity = Parity::Odd,
                    3 => s.parity = Parity::Even,
                    _ => {}
                });
                let code = s.map_or(code, |s| match s.parity {
                    Parity::None => 1,
                    Parity::Odd => 2,
                    Parity::Even => 3,
                });
                self.answer(telnet::SET_PARITY, &[code]);
            }
            Command::SetStopSize(code) => {
                let s = self.change(line, &|s| {
                    if code == 1 || code == 2 {
                        s.stop_bits = code;
                    }
                });
                self.answer(telnet::SET_STOPSIZE, &[s.map_or(code, |s| s.stop_bits)]);
            }
            Command::SetControl(code) => {
                let told = self.control(line, code, ends);
                self.answer(telnet::SET_CONTROL, &[told]);
            }
            Command::NotifyModemState => self.notify_modem(line, true),
            Command::NotifyLineState => {
                // Linux tells no line errors per byte; the transmitter is idle.
                self.answer(
                    telnet::NOTIFY_LINESTATE,
                    &[0x60 & self.line_mask.load(Relaxed)],
                );
            }
            Command::Suspend => self.suspended.store(true, Relaxed),
            Command::Resume => {
                self.suspended.store(false, Relaxed);
                // Wake the writer, which stopped watching the device.
                self.outbox.wake();
            }
            Command::LineStateMask(mask) => {
                self.line_mask.store(mask, Relaxed);
                self.answer(telnet::SET_LINESTATE_MASK, &[mask]);
            }
            Command::ModemStateMask(mask) => {
                self.modem_mask.store(mask, Relaxed);
                self.answer(telnet::SET_MODEMSTATE_MASK, &[mask]);
            }
            Command::Purge(which) => {
                // 1: what the device sent and the client has not had; 2: what is on its way
                // to the device; 3: both.
                let queue = match which {
                    1 => Some(Queue::Input),
                    2 => Some(Queue::Output),
                    3 => Some(Queue::Both),
                    _ => None,
                };
                if let Some(q) = queue {
                    report(line.flush(q), "purge");
                }
                self.answer(telnet::PURGE_DATA, &[which]);
            }
            Command::Break => {
                // Telnet's BREAK: a break of the usual quarter second on the line, cut short
                // if the session ends.
                if self.may_break(line, ends) && line.set_break(true).is_ok() {
                    ended(ends, BREAK);
                    report(line.set_break(false), "break");
                }
            }
        }
    }

    /// Whether a break may start now. TIOCSBRK first waits, with no timeout and deaf to
    /// the blocked signals, until the output queue is empty: on a UART stopped by flow
    /// control that is forever. So the queue is watched here, for a second at most and not
    /// past the session's end; the reader is the device's only writer, so it cannot refill.
    fn may_break(&self, line: &Line, ends: &[(RawFd, Interest)]) -> bool {
        for _ in 0..100 {
            match termios::output_queued(line.as_fd()) {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
            if ended(ends, Duration::from_millis(10)) {
                return false;
            }
        }
        crate::debug!("rfc2217: break not sent: the line does not take its output");
        false
    }

    /// Applies `f` to the settings in force, unless `fixed`; returns the settings in force
    /// after, or `None` if the line cannot be read (the client is then told what it asked).
    fn change(&self, line: &Line, f: &dyn Fn(&mut Settings)) -> Option<Settings> {
        let now = line.settings().ok()?;
        let mut wanted = now;
        f(&mut wanted);
        // Zero asks, and a value this line cannot have changes nothing.
        if self.fixed || wanted == now || wanted.baud == 0 {
            return Some(now);
        }
        match line.configure(&wanted) {
            Ok(back) => Some(back),
            Err(e) => {
                crate::debug!("rfc2217: cannot set {wanted}: {e}");
                line.settings().ok()
            }
        }
    }

    /// SET-CONTROL `code`: does it, and returns the code that tells what is in force.
    fn control(&self, line: &Line, code: u8, ends: &[(RawFd, Interest)]) -> u8 {
        let flow_code = |f: Flow, base: u8| match f {
            Flow::None => base,
            Flow::XonXoff => base + 1,
            Flow::RtsCts => base + 2,
        };
        match code {
            // Outbound (0-3) and inbound (13-16) flow: one setting on Linux.
            0..=3 | 13..=16 => {
                let base = if code <= 3 { 1 } else { 14 };
                let wanted = match code - (base - 1) {
                    1 => Some(Flow::None),
                    2 => Some(Flow::XonXoff),
                    3 => Some(Flow::RtsCts),
                    _ => None,
                };
                if let (Some(flow), false) = (wanted, self.fixed) {
                    report(line.set_flow(flow).map(drop), "flow");
                }
                flow_code(line.flow().unwrap_or(Flow::None), base)
            }
            // BREAK, DTR and RTS are answered as asked even where the device (or an emulator)
            // cannot do them: a refusal would fail the client's open or send_break, and
            // there is no line to disagree.
            4 => 5 + u8::from(!self.brk.load(Relaxed)),
            5 | 6 => {
                if code == 6 || self.may_break(line, ends) {
                    report(line.set_break(code == 5), "break");
                }
                self.brk.store(code == 5, Relaxed);
                code
            }
            7 => 8 + u8::from(!self.dtr.load(Relaxed)),
            8 | 9 => {
                report(line.set_dtr(code == 8), "DTR");
                self.dtr.store(code == 8, Relaxed);
                code
            }
            10 => 11 + u8::from(!self.rts.load(Relaxed)),
            11 | 12 => {
                report(line.set_rts(code == 11), "RTS");
                self.rts.store(code == 11, Relaxed);
                code
            }
            // DCD, DTR or DSR flow: not on Linux; the flow in force.
            _ => flow_code(line.flow().unwrap_or(Flow::None), 1),
        }
    }
}

/// Whether the session is over, waiting `wait` at most for it.
pub fn ended(ends: &[(RawFd, Interest)], wait: Duration) -> bool {
    sys::poll(ends, Some(wait)).map_or(true, |r| r.iter().any(|r| r.read || r.hangup))
}

/// Bits of NOTIFY-MODEMSTATE for `s`: CD, RI, DSR, CTS.
fn modem_bits(s: crate::serial::ModemStatus) -> u8 {
    u8::from(s.dcd) << 7 | u8::from(s.ri) << 6 | u8::from(s.dsr) << 5 | u8::from(s.cts) << 4
}

/// A line verb a client asked for that the device refused: worth a debug line, not more.
fn report(r: io::Result<()>, what: &str) {
    if let Err(e) = r {
        crate::debug!("rfc2217: {what}: {e}");
    }
}
