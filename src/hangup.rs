//! The end of a session on the line: a hang-up the modem notices, and nothing stale for the
//! next client.
//!
//! DTR goes low and stays low for the line's `hangup=` time while the device is kept open
//! and locked, and everything it says meanwhile (the echo of the client's last bytes, a late
//! `NO CARRIER`) is read and thrown away; then its input is flushed. pppd holds DTR low for
//! a second; modems need a few hundred milliseconds to notice. With `hangup=off` the lines
//! are left up and nothing is held. A hold never outlasts the device (unplugged: over at
//! once) or delays a shutdown (cut short); a client waiting for the device is told when it
//! is free through the registry.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use crate::config::Hangup;
use crate::registry::{Registry, Ticket};
use crate::relay::End;
use crate::serial::{Line, Queue};
use crate::sys::{self, Interest};

/// How a session left its line, for the session-end log line.
#[derive(Debug, PartialEq, Eq)]
pub enum Left {
    /// `hangup=off`: DTR and RTS stayed up.
    Up,
    /// DTR dropped, the device held this long (zero: freed at once).
    HungUp {
        /// How long the device was held.
        held: Duration,
        /// Why the hold was shorter than asked, if it was.
        cut: Option<Cut>,
    },
}

/// Why a hold ended early.
#[derive(Debug, PartialEq, Eq)]
pub enum Cut {
    /// modemd is shutting down.
    Shutdown,
    /// The device went away (unplugged, or its driver hung up).
    DeviceGone,
}

impl fmt::Display for Left {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Left::Up => f.write_str("line left up"),
            Left::HungUp { held, cut } => {
                f.write_str("line hung up")?;
                if !held.is_zero() {
                    write!(f, ", held {} ms", sys::millis(*held))?;
                }
                match cut {
                    None => Ok(()),
                    Some(Cut::Shutdown) => f.write_str(" (cut short: shutdown)"),
                    Some(Cut::DeviceGone) => f.write_str(" (cut short: device gone)"),
                }
            }
        }
    }
}

/// Hangs `line` up as `hangup` says after a session that ended for `end`, holding it as
/// long as the line asks unless the device is gone or modemd is shutting down.
pub fn hang_up(
    line: &Line,
    hangup: Hangup,
    end: &End,
    ticket: &Ticket<'_>,
    registry: &Registry,
) -> Left {
    let hold = match hangup {
        Hangup::Off => return Left::Up,
        Hangup::Hold(hold) => hold,
    };
    line.hang_up();
    let pointless = matches!(end, End::DeviceGone | End::DeviceError(_) | End::Shutdown);
    let start = Instant::now();
    let (held, cut) = if hold.is_zero() || pointless {
        (Duration::ZERO, None)
    } else {
        ticket.hanging_up(start + hold);
        crate::debug!("DTR low, holding the device {} ms", sys::millis(hold));
        let cut = discard(line, start + hold, registry);
        (start.elapsed(), cut)
    };
    // What arrived between the last read and now must not reach the next client either.
    let _ = line.flush(Queue::Input);
    Left::HungUp { held, cut }
}

/// Reads and throws away what the device says until `deadline`; returns early, saying why,
/// if the device goes or the registry shuts down.
fn discard(line: &Line, deadline: Instant, registry: &Registry) -> Option<Cut> {
    let mut sink = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let fds = [
            (line.as_fd().as_raw_fd(), Interest::Read),
            (registry.closing_fd(), Interest::Read),
        ];
        let Ok(ready) = sys::poll(&fds, Some(left)) else {
            return Some(Cut::DeviceGone);
        };
        if ready[1].read {
            return Some(Cut::Shutdown);
        }
        if ready[0].read {
            match sys::read(line.as_fd(), &mut sink) {
                Ok(0) => return Some(Cut::DeviceGone),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return Some(Cut::DeviceGone),
            }
        } else if ready[0].hangup {
            return Some(Cut::DeviceGone);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_says_how_the_line_was_left() {
        let held = |ms, cut| Left::HungUp {
            held: Duration::from_millis(ms),
            cut,
        };
        assert_eq!(Left::Up.to_string(), "line left up");
        assert_eq!(held(0, None).to_string(), "line hung up");
        assert_eq!(held(502, None).to_string(), "line hung up, held 502 ms");
        assert_eq!(
            held(120, Some(Cut::Shutdown)).to_string(),
            "line hung up, held 120 ms (cut short: shutdown)"
        );
        assert_eq!(
            held(3, Some(Cut::DeviceGone)).to_string(),
            "line hung up, held 3 ms (cut short: device gone)"
        );
    }
}
