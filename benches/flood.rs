//! Part of `make bench`: does a flood of refused connections slow a live session?
//!
//! One client does 1-byte round trips through modemd to a pty whose master echoes; first
//! quietly, then while other threads open and close 1,000 connections from an address the
//! ACL refuses (127.0.0.2). Reported: p50/p99 of both phases and their ratio, and that no
//! refused client got a byte through. Figures only, no pass/fail on speed.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const FLOOD: usize = 1000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Round trips: at least `n`, and on until `until` says stop.
fn round_trips(
    c: &mut std::net::TcpStream,
    n: usize,
    until: &dyn Fn() -> bool,
) -> (Duration, Duration, usize) {
    let mut times = Vec::with_capacity(n);
    let mut b = [0u8; 1];
    let mut i = 0;
    while i < n || !until() {
        let t = Instant::now();
        c.write_all(&[(i % 251) as u8]).expect("write");
        c.read_exact(&mut b).expect("read");
        assert_eq!(b[0], (i % 251) as u8);
        times.push(t.elapsed());
        i += 1;
    }
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.len(),
    )
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let n = if quick { 1000 } else { 3000 };
    let pty = Pty::open().expect("pty");
    let port = free_port();
    let conf = config_line(port, &pty.slave);
    let d = Daemon::builder(&conf).start();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let echo = echo_master(pty.master.try_clone().expect("dup"));
    let mut c = connect(addr);
    round_trips(&mut c, 200, &|| true);
    let quiet = round_trips(&mut c, n, &|| true);

    let done = Arc::new(AtomicBool::new(false));
    let leaked = Arc::new(AtomicUsize::new(0));
    let opened = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    // Two flooders: on a two-core machine more would measure the load generator, not modemd.
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            let (done, leaked, opened) = (done.clone(), leaked.clone(), opened.clone());
            let finished = finished.clone();
            thread::spawn(move || {
                while opened.fetch_add(1, Ordering::Relaxed) < FLOOD
                    && !done.load(Ordering::Relaxed)
                {
                    let mut s = connect_from("127.0.0.2", addr);
                    let _ = s.write_all(b"ATDT666\r");
                    if read_to_close(&mut s, WAIT).is_some_and(|got| !got.is_empty()) {
                        leaked.fetch_add(1, Ordering::Relaxed);
                    }
                }
                finished.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let t = Instant::now();
    // The session runs for the whole flood, however long that takes.
    let loud = round_trips(&mut c, n, &|| finished.load(Ordering::Relaxed) == 2);
    let loud_time = t.elapsed();
    done.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().expect("flooder");
    }
    let refused = d.log.count("refused 127.0.0.2");
    let summarized = d.log.count("more clients refused");
    drop(c);
    drop(d);
    echo.join().expect("echo thread");

    let us = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
    println!();
    println!(
        "refused-connection flood ({} quiet and {} flooded round trips, {FLOOD} refused connections)",
        quiet.2, loud.2
    );
    println!();
    println!("| phase                   | RTT p50     | RTT p99     |");
    println!("|-------------------------|-------------|-------------|");
    println!(
        "| quiet                   | {:>11} | {:>11} |",
        us(quiet.0),
        us(quiet.1)
    );
    println!(
        "| during flood            | {:>11} | {:>11} |",
        us(loud.0),
        us(loud.1)
    );
    println!(
        "| ratio                   | {:>11.2} | {:>11.2} |",
        loud.0.as_secs_f64() / quiet.0.as_secs_f64(),
        loud.1.as_secs_f64() / quiet.1.as_secs_f64()
    );
    println!();
    println!(
        "refused connections: {} made ({} logged one by one, {} summary lines) while the \
         session ran {:.2} s; bytes from refused clients that got through: {}",
        opened.load(Ordering::Relaxed).min(FLOOD),
        refused,
        summarized,
        loud_time.as_secs_f64(),
        leaked.load(Ordering::Relaxed)
    );
    assert_eq!(
        leaked.load(Ordering::Relaxed),
        0,
        "a refused client received data"
    );
}
