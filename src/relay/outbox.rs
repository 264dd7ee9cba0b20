//! What one thread of an RFC 2217 session queues for the socket's only writer (the other
//! thread): Telnet replies and COM-PORT answers, and the eventfd that tells the writer.
//! Shared by the server's COM port and client mode.

use std::os::fd::RawFd;
use std::sync::{Mutex, MutexGuard};

use crate::sys::EventFd;

/// Bytes waiting for the writer.
pub struct Outbox {
    bytes: Mutex<Vec<u8>>,
    ready: EventFd,
}

impl Outbox {
    /// An empty outbox whose writer waits on `ready`.
    pub fn new(ready: EventFd) -> Outbox {
        Outbox {
            bytes: Mutex::new(Vec::new()),
            ready,
        }
    }

    fn bytes(&self) -> MutexGuard<'_, Vec<u8>> {
        self.bytes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues what `f` appends and wakes the writer; returns how many bytes now wait.
    pub fn push(&self, f: impl FnOnce(&mut Vec<u8>)) -> usize {
        let len = {
            let mut bytes = self.bytes();
            f(&mut bytes);
            bytes.len()
        };
        self.ready.signal();
        len
    }

    /// Wakes the writer with nothing queued (to look at its state again).
    pub fn wake(&self) {
        self.ready.signal();
    }

    /// How many bytes wait.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves what waits into `out` (the writer's side).
    pub fn take(&self, out: &mut Vec<u8>) {
        self.ready.clear();
        out.append(&mut self.bytes());
    }

    /// Readable while something waits, for the writer's poll.
    pub fn fd(&self) -> RawFd {
        self.ready.raw()
    }
}
