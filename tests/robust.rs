//! What a gateway daemon meets over months: an unplugged device, a silent client, a client
//! that stops reading, and thousands of connections of every kind. Nothing may leak.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::symlink;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn entry(port: u16, dev: &std::path::Path, rest: &str) -> String {
    format!(
        "127.0.0.1:{port} {} 115200,8,N,1 127.0.0.1 {rest}\n",
        dev.display()
    )
}

fn session(pty: &Pty, addr: SocketAddr) -> TcpStream {
    let mut c = connect(addr);
    c.write_all(b"!").expect("write");
    assert_eq!(pty.read_for(1, WAIT), b"!", "session did not start");
    c
}

#[test]
fn unplugged_device_ends_its_session_and_a_replugged_one_serves() {
    let dir = TempDir::new("unplug");
    let link = dir.join("modem");
    let first = Pty::new();
    symlink(&first.slave, &link).expect("symlink");
    let other = Pty::new();
    let (p1, p2) = (free_port(), free_port());
    let conf = entry(p1, &link, "") + &entry(p2, &other.slave, "");
    let d = Daemon::start(&conf, &[]);
    let (a1, a2) = (
        SocketAddr::from(([127, 0, 0, 1], p1)),
        SocketAddr::from(([127, 0, 0, 1], p2)),
    );
    let mut bystander = session(&other, a2);
    let mut c = session(&first, a1);

    // Unplug: the pty master goes away, as a USB modem's tty does.
    let gone_dev = first.slave.clone();
    drop(first);
    let got =
        read_to_close(&mut c, Duration::from_secs(2)).expect("client not disconnected in 2 s");
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("device gone"), "client was told {text:?}");
    let line = d.log.wait_for("session end", WAIT).expect("session end");
    assert!(line.contains("reason device gone"), "{line}");
    assert!(
        !d.dir
            .join(&format!(
                "LCK..{}",
                gone_dev.file_name().unwrap().to_string_lossy()
            ))
            .exists()
    );

    // The other port never noticed.
    bystander.write_all(b"still here").expect("write");
    assert_eq!(other.read_for(10, WAIT), b"still here");

    // Re-plug at the same path: the next client is served by the new device.
    let replugged = Pty::new();
    fs::remove_file(&link).expect("rm link");
    symlink(&replugged.slave, &link).expect("symlink");
    let mut c = connect(a1);
    c.write_all(b"again").expect("write");
    assert_eq!(
        replugged.read_for(5, WAIT),
        b"again",
        "re-plugged device not served"
    );
}

#[test]
fn idle_session_ends_after_its_idle_time() {
    let pty = Pty::new();
    let port = free_port();
    let d = Daemon::start(&entry(port, &pty.slave, "idle=2"), &[]);
    let t = Instant::now();
    let mut c = session(&pty, SocketAddr::from(([127, 0, 0, 1], port)));
    let got = read_to_close(&mut c, Duration::from_secs(6)).expect("idle session not ended");
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "ended after {:?}",
        t.elapsed()
    );
    assert!(String::from_utf8_lossy(&got).contains("idle"), "{got:?}");
    let line = d.log.wait_for("session end", WAIT).expect("logged");
    assert!(line.contains("reason idle"), "{line}");
    assert!(d.dir.wait_unlocked(WAIT));
}

#[test]
fn traffic_keeps_an_idle_limited_session_alive() {
    let pty = Pty::new();
    let port = free_port();
    let d = Daemon::start(&entry(port, &pty.slave, "idle=1"), &[]);
    let mut c = session(&pty, SocketAddr::from(([127, 0, 0, 1], port)));
    // 2.5 s of traffic in both directions, never a second of silence.
    for i in 0..10u8 {
        thread::sleep(Duration::from_millis(250));
        if i % 2 == 0 {
            c.write_all(&[i]).expect("client write");
            assert_eq!(pty.read_for(1, WAIT), [i]);
        } else {
            pty.write_all(&[i]);
            let mut b = [0u8];
            c.read_exact(&mut b).expect("client read");
        }
    }
    assert_eq!(d.log.count("session end"), 0, "{}", d.log.all());
}

#[test]
fn a_client_that_stops_reading_costs_no_memory_and_loses_no_byte() {
    let pty = Pty::new();
    let port = free_port();
    let d = Daemon::start(&entry(port, &pty.slave, ""), &[]);
    let mut c = session(&pty, SocketAddr::from(([127, 0, 0, 1], port)));
    let rss_before = d.rss_kib();
    const LEN: usize = 64 << 20;
    let master = pty.master.try_clone().expect("dup");
    let writer = thread::spawn(move || {
        let p = Pty {
            master,
            slave: Default::default(),
        };
        // A counting pattern: any lost, doubled or reordered byte shows.
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        p.write_all(&data);
    });
    // The modem talks, the client reads nothing: let every buffer on the way fill up.
    thread::sleep(Duration::from_millis(1500));
    let rss_stalled = d.rss_kib();
    // Under an emulator the figure is the emulator's.
    if !emulated() {
        assert!(
            rss_stalled < 4096,
            "daemon RSS {rss_stalled} KiB with a stalled client"
        );
        assert!(
            rss_stalled < rss_before + 512,
            "RSS grew from {rss_before} to {rss_stalled} KiB while the client was stalled"
        );
    }
    c.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut got = vec![0u8; LEN];
    c.read_exact(&mut got).expect("read all 64 MiB");
    writer.join().expect("writer");
    let bad = got
        .iter()
        .enumerate()
        .position(|(i, &b)| b != (i % 251) as u8);
    assert_eq!(bad, None, "byte out of order or lost");
}

#[test]
fn ten_thousand_mixed_connections_leak_nothing() {
    let a = Pty::new();
    let b = Pty::new();
    let (p1, p2) = (free_port(), free_port());
    let d = Daemon::start(&(entry(p1, &a.slave, "") + &entry(p2, &b.slave, "")), &[]);
    let (a1, a2) = (
        SocketAddr::from(([127, 0, 0, 1], p1)),
        SocketAddr::from(([127, 0, 0, 1], p2)),
    );
    let lock_a = d.dir.join(&lock_name(&a.slave));
    // Device B stays busy for the whole run.
    let _holder = session(&b, a2);

    let cycle = |i: usize| match i % 4 {
        0 => {
            // A reset client of the previous cycle may still hold A for a moment: busy is a
            // fair answer then, so try again.
            let deadline = Instant::now() + WAIT;
            let c = loop {
                let mut c = connect(a1);
                c.write_all(b"!").expect("write");
                if a.read_for(1, Duration::from_millis(100)) == b"!" {
                    break c;
                }
                let got = read_to_close(&mut c, WAIT).unwrap_or_default();
                assert!(
                    got.starts_with(b"modemd: all devices busy"),
                    "cycle {i}: {got:?}"
                );
                assert!(Instant::now() < deadline, "cycle {i}: device A never free");
            };
            drop(c);
            let deadline = Instant::now() + WAIT;
            while lock_a.exists() {
                assert!(Instant::now() < deadline, "cycle {i}: lock kept");
                thread::yield_now();
            }
        }
        1 => {
            let mut c = connect_from("127.0.0.2", a1);
            let _ = c.write_all(b"let me in");
            assert_eq!(
                read_to_close(&mut c, WAIT),
                Some(Vec::new()),
                "cycle {i}: refused got data"
            );
        }
        2 => {
            let mut c = connect(a2);
            let got = read_to_close(&mut c, WAIT).expect("busy client not closed");
            assert!(
                got.starts_with(b"modemd: all devices busy"),
                "cycle {i}: {got:?}"
            );
        }
        _ => {
            let c = connect(a1);
            reset_on_close(&c);
            drop(c);
            let deadline = Instant::now() + WAIT;
            while lock_a.exists() {
                assert!(
                    Instant::now() < deadline,
                    "cycle {i}: lock kept after reset"
                );
                thread::yield_now();
            }
        }
    };
    for i in 0..400 {
        cycle(i);
    }
    let settle = |want: (usize, usize)| {
        let deadline = Instant::now() + WAIT;
        while (d.threads(), d.fds()) != want && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        (d.threads(), d.fds())
    };
    // Baseline after the warm-up has settled: the listeners and the holder's session.
    thread::sleep(Duration::from_millis(200));
    let base = (d.threads(), d.fds());
    let rss = d.rss_kib();
    // Natively the 10,000; under an emulator every thread start is slow, memory is
    // not measured (it would be the emulator's), and 2,000 cycles show a thread or fd leak.
    let cycles = if emulated() { 2_000 } else { 10_000 };
    for i in 400..400 + cycles {
        cycle(i);
    }
    assert_eq!(settle(base), base, "threads/fds not back to baseline");
    let grown = d.rss_kib().saturating_sub(rss);
    if !emulated() {
        assert!(grown < 256, "RSS grew {grown} KiB over 10,000 connections");
    }
    // The held session on B is intact.
    let mut b_client = _holder;
    b_client.write_all(b"ok").expect("holder write");
    assert_eq!(b.read_for(2, WAIT), b"ok");
}
