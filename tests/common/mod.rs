//! Shared helpers for the integration tests and the benchmarks: real PTYs, the real binaries as
//! child processes, loopback clients, all with bounded waits.
//!
//! - `pty.rs`: the device side, a [`Pty`] master read and written by the test.
//! - `lagging.rs`: a modem that echoes late, for reconnects and stale bytes.
//! - `daemon.rs`: the binaries as children (modemd, modem-sim, any command), their logs.
//! - `net.rs`: loopback ports and clients with timeouts.
//! - `peers.rs`: other programs the tests talk to (Debian's Python with pyserial).
//! - here: the bounds on waits, temporary directories, config lines, test data.
//!
//! The binaries under test come from Cargo (`CARGO_BIN_EXE_*`) unless `MODEMD_BIN` /
//! `MODEM_SIM_BIN` name others; `MODEMD_LAUNCHER` (e.g. `qemu-mipsel-static -cpu 24Kc`) is put
//! in front of the daemon, so the same tests serve native and cross-built binaries.
//!
//! Every test binary (and benchmark) compiles this whole module and uses a part of it, so
//! what one leaves unused is not dead: hence the `allow` below, for this module only.
#![allow(dead_code)]

mod daemon;
pub mod lagging;
mod net;
pub mod peers;
mod pty;

pub use daemon::*;
pub use net::*;
pub use pty::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The default bound on every wait.
pub const WAIT: Duration = Duration::from_secs(5);

/// The bound on a run of the binary from exec to work done (listening, or `-t` checked): under
/// an emulator on a loaded machine the start alone can take seconds.
pub const START: Duration = Duration::from_secs(20);

/// A hand-made temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("modemd-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Names of the `LCK..*` files in the directory.
    pub fn locks(&self) -> Vec<String> {
        self.names_starting(&["LCK.."])
    }

    /// Every file a lock holder leaves in the lock directory: locks and modemd's lock
    /// template (`LTMP.<pid>`), for "leaves nothing behind".
    pub fn lock_files(&self) -> Vec<String> {
        self.names_starting(&["LCK..", "LTMP."])
    }

    fn names_starting(&self, prefixes: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.0)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Whether every lock file is gone within `timeout`.
    pub fn wait_unlocked(&self, timeout: Duration) -> bool {
        wait_until(timeout, || self.locks().is_empty())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Whether `done` becomes true within `timeout`, checking every millisecond.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// A config line sharing `dev` on 127.0.0.1:`port` to 127.0.0.1 clients, at 115200 8N1.
pub fn config_line(port: u16, dev: &Path) -> String {
    config_entry(port, dev, "")
}

/// [`config_line`] with `options` (e.g. `idle=2`) after the client list.
pub fn config_entry(port: u16, dev: &Path, options: &str) -> String {
    let sep = if options.is_empty() { "" } else { " " };
    format!(
        "127.0.0.1:{port} {} 115200,8,N,1 127.0.0.1{sep}{options}\n",
        dev.display()
    )
}

/// The lock file name for a pty slave: Taylor cu's rule, `/dev/pts/3` → `LCK..3`.
pub fn lock_name(dev: &Path) -> String {
    let real = fs::canonicalize(dev).expect("canonicalize");
    format!("LCK..{}", real.file_name().expect("name").to_string_lossy())
}

/// Deterministic pseudo-random bytes (xorshift), so a failure is reproducible.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
