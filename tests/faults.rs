//! Faults told as they are (DESIGN §3): exact byte counts at a session's end, `unavailable`
//! (with its reason) where a device cannot be used instead of `busy`, each device's problem
//! logged once, refusals logged at a bounded rate, and no client accepted only to be dropped
//! when the daemon runs out of file descriptors.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use modemd::sys::{self, Interest};

/// The `in` and `out` counts of the first `session end` line of `d`.
fn counts(d: &Daemon) -> (u64, u64) {
    let line = d
        .log
        .wait_for("session end:", WAIT)
        .unwrap_or_else(|| panic!("no session end line:\n{}", d.log.all()));
    let after = |key: &str| -> u64 {
        let rest = line
            .split(key)
            .nth(1)
            .unwrap_or_else(|| panic!("no '{key}' in {line}"));
        rest.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count after '{key}' in {line}"))
    };
    (after(" in "), after(" out "))
}

/// Everything the master of `pty` can still read, until nothing came for a while.
fn drain_master(pty: &Pty) -> usize {
    let mut total = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let ready = sys::poll(
            &[(std::os::fd::AsRawFd::as_raw_fd(&pty.master), Interest::Read)],
            Some(Duration::from_millis(300)),
        )
        .expect("poll");
        if !ready[0].read {
            break;
        }
        match sys::read(pty.master.as_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    total
}

/// SIGTERM while the device streams to the client: `out` is what the client received.
#[test]
fn out_count_is_what_the_client_received_when_cut_mid_stream() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "hangup=0", &[]);
    let mut c = session(&pty, addr);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let master = pty.master.try_clone().expect("dup master");
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let chunk = random_bytes(4096, 7);
            while !stop.load(Ordering::Relaxed) {
                let fds = [(std::os::fd::AsRawFd::as_raw_fd(&master), Interest::Write)];
                match sys::poll(&fds, Some(Duration::from_millis(50))) {
                    Ok(r) if r[0].hangup => break,
                    Ok(r) if r[0].write => {
                        let _ = sys::write(master.as_fd(), &chunk);
                    }
                    _ => {}
                }
            }
        })
    };
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    c.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut signalled = false;
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) => panic!("client read after {received} bytes: {e}"),
        }
        if !signalled && received > 4 << 20 {
            d.signal(libc::SIGTERM);
            signalled = true;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert!(signalled, "the stream ended before the signal");
    let (to_device, to_client) = counts(&d);
    assert_eq!(to_device, 1, "the one byte the client sent");
    assert_eq!(to_client, received as u64, "out count vs bytes received");
}

/// SIGTERM while the client streams to the device: `in` is what the device received.
#[test]
fn in_count_is_what_the_device_received_when_cut_mid_stream() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "hangup=0", &[]);
    let c = session(&pty, addr);
    let sender = {
        let mut w = c.try_clone().expect("clone");
        thread::spawn(move || {
            let chunk = random_bytes(16 * 1024, 9);
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && w.write_all(&chunk).is_ok() {}
        })
    };
    let mut seen = 1usize; // the byte session() sent
    while seen < 4 << 20 {
        let n = pty.read_for(64 * 1024, WAIT).len();
        assert!(n > 0, "the stream stalled at {seen} bytes");
        seen += n;
    }
    d.signal(libc::SIGTERM);
    seen += drain_master(&pty);
    drop(c);
    sender.join().expect("sender");
    let (to_device, to_client) = counts(&d);
    assert_eq!(to_client, 0);
    assert_eq!(to_device, seen as u64, "in count vs bytes the device read");
}
