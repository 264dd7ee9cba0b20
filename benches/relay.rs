//! `make bench`: what modemd costs over talking to the device directly.
//!
//! Both paths end at the same kind of PTY whose master echoes every byte (the "modem"):
//! - direct: the client opens the PTY slave itself, as a local program would;
//! - modemd: the client talks TCP over loopback to modemd, which relays to the slave.
//!
//! Reported: 1-byte round trip p50/p99 (after a warm-up) and throughput one way at a time
//! (client→device, device→client), every byte verified. Set `BENCH_QUICK=1` for a short run.
//! Figures only: nothing here passes or fails on speed.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

struct Sizes {
    rtt_iters: usize,
    warmup: usize,
    bulk: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn round_trips<S: Read + Write>(s: &mut S, warmup: usize, iters: usize) -> (Duration, Duration) {
    let mut one = [0u8; 1];
    let mut times = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let b = [(i % 251) as u8];
        let t = Instant::now();
        s.write_all(&b).expect("write");
        s.read_exact(&mut one).expect("read");
        assert_eq!(one, b, "echo mismatch");
        if i >= warmup {
            times.push(t.elapsed());
        }
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

/// Sends `len` bytes from `tx` while `rx` reads and verifies them; MB/s.
fn throughput(mut tx: impl Write + Send + 'static, mut rx: impl Read, len: usize) -> f64 {
    let data = random_bytes(len, 7);
    let expect = data.clone();
    let t = Instant::now();
    let sender = thread::spawn(move || tx.write_all(&data).expect("bulk write"));
    let mut got = vec![0u8; len];
    rx.read_exact(&mut got).expect("bulk read");
    let secs = t.elapsed().as_secs_f64();
    sender.join().expect("sender");
    assert!(got == expect, "bulk data corrupted");
    len as f64 / secs / 1e6
}

fn open_slave(pty: &Pty) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pty.slave)
        .expect("open slave")
}

struct Figures {
    p50: Duration,
    p99: Duration,
    up: f64,
    down: f64,
}

fn direct(sz: &Sizes) -> Figures {
    let pty = Pty::open().expect("pty");
    let master = pty.master.try_clone().expect("dup");
    let mut slave = open_slave(&pty);
    let echo = echo_master(master);
    let (p50, p99) = round_trips(&mut slave, sz.warmup, sz.rtt_iters);
    drop(slave);
    echo.join().expect("echo thread");
    // Throughput on a fresh pty whose master is the far end, without an echo.
    let pty = Pty::open().expect("pty");
    let slave = open_slave(&pty);
    let rx = File::from(pty.master.try_clone().expect("dup"));
    let up = throughput(slave.try_clone().expect("dup"), rx, sz.bulk);
    let tx = File::from(pty.master.try_clone().expect("dup"));
    let down = throughput(tx, slave, sz.bulk);
    Figures { p50, p99, up, down }
}

fn via_modemd(sz: &Sizes) -> Figures {
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let rtt_pty = Pty::open().expect("pty");
    let conf = config_line(port, &rtt_pty.slave);
    let d = Daemon::builder(&conf).start();
    let echo = echo_master(rtt_pty.master.try_clone().expect("dup"));
    let mut c: TcpStream = connect(addr);
    let (p50, p99) = round_trips(&mut c, sz.warmup, sz.rtt_iters);
    drop(c);
    assert!(d.dir.wait_unlocked(WAIT));
    drop(d);
    echo.join().expect("echo thread");

    let pty = Pty::open().expect("pty");
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let conf = config_line(port, &pty.slave);
    let _d = Daemon::builder(&conf).start();
    let c = connect(addr);
    c.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    // Make sure the device is open before timing.
    (&c).write_all(b"!").expect("write");
    assert_eq!(pty.read_for(1, WAIT), b"!");
    let rx = File::from(pty.master.try_clone().expect("dup"));
    let up = throughput(c.try_clone().expect("clone"), rx, sz.bulk);
    let tx = File::from(pty.master.try_clone().expect("dup"));
    let down = throughput(tx, c, sz.bulk);
    Figures { p50, p99, up, down }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let sz = if quick {
        Sizes {
            rtt_iters: 500,
            warmup: 50,
            bulk: 4 << 20,
        }
    } else {
        Sizes {
            rtt_iters: 2000,
            warmup: 200,
            bulk: 32 << 20,
        }
    };
    let d = direct(&sz);
    let m = via_modemd(&sz);
    println!();
    println!(
        "modemd relay benchmark ({} round trips, {} MiB bulk each way, {})",
        sz.rtt_iters,
        sz.bulk >> 20,
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        }
    );
    println!();
    println!("| metric                  | direct pty  | via modemd  | ratio |");
    println!("|-------------------------|-------------|-------------|-------|");
    let row = |name: &str, a: String, b: String, r: f64| {
        println!("| {name:<23} | {a:>11} | {b:>11} | {r:>5.2} |");
    };
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    row(
        "1-byte round trip p50",
        us(d.p50),
        us(m.p50),
        ratio(d.p50, m.p50),
    );
    row(
        "1-byte round trip p99",
        us(d.p99),
        us(m.p99),
        ratio(d.p99, m.p99),
    );
    row(
        "client→device MB/s",
        format!("{:.0}", d.up),
        format!("{:.0}", m.up),
        m.up / d.up,
    );
    row(
        "device→client MB/s",
        format!("{:.0}", d.down),
        format!("{:.0}", m.down),
        m.down / d.down,
    );
}
