//! A modem slow to answer, for the tests and the disconnect benchmark: it echoes what the
//! server writes `lag` late (so the echo of a client's last bytes comes after that client
//! has gone), and notes when each byte value arrived, until dropped.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use modemd::sys::{self, EventFd, Interest};

/// What a [`Lagging`] device received of one byte value: how many, and when the last came.
#[derive(Clone, Copy, Debug, Default)]
pub struct Heard {
    pub count: usize,
    pub last: Option<Instant>,
}

/// The lagging modem on a PTY master; see the module text.
pub struct Lagging {
    heard: Arc<Mutex<[Heard; 256]>>,
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
}

impl Lagging {
    /// Plays the modem on `master` (a copy of it: the caller keeps its own), which is made
    /// non-blocking so that a full slave can never block the echo.
    pub fn start(master: BorrowedFd<'_>, lag: Duration) -> Lagging {
        let master = master.try_clone_to_owned().expect("dup master");
        modemd::serial::termios::set_nonblocking(master.as_fd()).expect("O_NONBLOCK");
        let heard = Arc::new(Mutex::new([Heard::default(); 256]));
        let stop = Arc::new(EventFd::new().expect("eventfd"));
        let thread = {
            let (heard, stop) = (Arc::clone(&heard), Arc::clone(&stop));
            thread::Builder::new()
                .name("lagging".into())
                .spawn(move || lag_loop(&master, &stop, lag, &heard))
                .expect("spawn the lagging modem")
        };
        Lagging {
            heard,
            stop,
            thread: Some(thread),
        }
    }

    /// What the device has received of byte value `b` so far.
    pub fn heard(&self, b: u8) -> Heard {
        self.heard.lock().unwrap_or_else(|p| p.into_inner())[usize::from(b)]
    }
}

impl Drop for Lagging {
    fn drop(&mut self) {
        self.stop.signal();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lag_loop(master: &OwnedFd, stop: &EventFd, lag: Duration, heard: &Mutex<[Heard; 256]>) {
    // What came in, and when it is to go back out, oldest first.
    let mut due: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buf = [0u8; 4096];
    loop {
        let wait = due.front().map_or(Duration::from_secs(1), |(t, _)| {
            t.saturating_duration_since(Instant::now())
        });
        let fds = [
            (master.as_raw_fd(), Interest::Read),
            (stop.raw(), Interest::Read),
        ];
        let Ok(ready) = sys::poll(&fds, Some(wait)) else {
            return;
        };
        if ready[1].read {
            return;
        }
        if ready[0].read {
            match sys::read(master.as_fd(), &mut buf) {
                Ok(n) => {
                    let now = Instant::now();
                    let mut h = heard.lock().unwrap_or_else(|p| p.into_inner());
                    for &b in &buf[..n] {
                        h[usize::from(b)].count += 1;
                        h[usize::from(b)].last = Some(now);
                    }
                    due.push_back((now + lag, buf[..n].to_vec()));
                }
                // EIO: nobody has the slave open (between sessions, without a keeper).
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(2))
                }
                Err(_) => {}
            }
        } else if ready[0].hangup {
            // Closed slave without data: wait for the next opener without spinning.
            thread::sleep(Duration::from_millis(2));
        }
        let now = Instant::now();
        while due.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, bytes)) = due.pop_front() {
                // A slave nobody reads (or nobody has open) loses it, as on a real line.
                let _ = sys::write(master.as_fd(), &bytes);
            }
        }
    }
}
