//! The log of clients turned away on one port (not allowed by `HOSTS`, busy, unavailable):
//! one line each up to [`PER_SECOND`] a second, then a count (DESIGN §3).
//!
//! A flood of strangers, or of clients retrying a busy modem, must not flood syslog (often
//! on flash) or cost the live sessions the time to write it. The accept thread refuses by
//! address, session threads refuse after DNS or the claim; they share one window per port,
//! and the accept thread logs the counts.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::Listen;
use crate::sys::EventFd;

/// Refusal lines per port and second.
pub const PER_SECOND: u32 = 10;

/// The refusals of one port.
#[derive(Debug)]
pub struct Refusals {
    listen: Listen,
    window: Mutex<Window>,
    /// Told when a count becomes due, so that the thread that logs it (the accept thread)
    /// knows to wake up for it.
    due: Option<Arc<EventFd>>,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    suppressed: u32,
}

impl Window {
    fn new() -> Window {
        Window {
            start: Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }
}

impl Refusals {
    /// The refusals of `listen`; `due` is signalled when a count of suppressed lines is
    /// pending, for the thread that calls [`Refusals::flush`] when [`Refusals::due_in`] says.
    pub fn new(listen: Listen, due: Option<Arc<EventFd>>) -> Refusals {
        Refusals {
            listen,
            window: Mutex::new(Window::new()),
            due,
        }
    }

    fn window(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the count of suppressed lines is due, if there is one pending.
    pub fn due_in(&self) -> Option<Duration> {
        let w = self.window();
        // Rounded up: poll counts whole milliseconds, and a timeout rounded down to zero
        // would spin through the window's last fraction of a millisecond.
        let left = Duration::from_secs(1).saturating_sub(w.start.elapsed());
        (w.suppressed > 0).then(|| left + Duration::from_millis(1))
    }

    /// Logs the count of suppressed lines once their second is over.
    pub fn flush(&self) {
        Self::roll(&mut self.window(), self.listen);
    }

    fn roll(w: &mut Window, listen: Listen) {
        if w.start.elapsed() >= Duration::from_secs(1) {
            if w.suppressed > 0 {
                crate::info!("{} more clients refused on {listen}", w.suppressed);
            }
            *w = Window::new();
        }
    }

    /// Logs that `peer` was turned away, as `why` says, unless this second's lines are spent.
    pub fn refused(&self, peer: SocketAddr, why: Refusal) {
        let mut w = self.window();
        Self::roll(&mut w, self.listen);
        if w.logged < PER_SECOND {
            w.logged += 1;
            drop(w);
            match why {
                Refusal::Hosts => {
                    crate::info!("refused {peer} on {}: not allowed by HOSTS", self.listen);
                }
                other => crate::info!("{peer} on {}: {other}", self.listen),
            }
        } else {
            w.suppressed += 1;
            if w.suppressed == 1 {
                if let Some(due) = &self.due {
                    due.signal();
                }
            }
        }
    }
}

impl Drop for Refusals {
    /// A port that stops listening (a reload) still owes its last count.
    fn drop(&mut self) {
        let w = self.window.get_mut().unwrap_or_else(|p| p.into_inner());
        if w.suppressed > 0 {
            crate::info!("{} more clients refused on {}", w.suppressed, self.listen);
        }
    }
}

/// Why a client was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No entry's `HOSTS` admits it.
    Hosts,
    /// Every device it may use is held by a live session or another program.
    Busy,
    /// No device it may use can be used, for this reason.
    Unavailable(crate::fault::Reason),
    /// Too many clients in flight already.
    Crowded,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Hosts => f.write_str("not allowed by HOSTS"),
            Refusal::Busy => f.write_str("all devices busy"),
            Refusal::Unavailable(why) => write!(f, "device unavailable ({why})"),
            Refusal::Crowded => f.write_str("busy: too many clients"),
        }
    }
}
