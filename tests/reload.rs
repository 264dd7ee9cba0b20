//! SIGHUP: a new port starts while a live session keeps flowing; a broken file is rejected
//! whole; a removed port stops accepting; a file with no entries is warned about, at start-up
//! and on a reload, which it makes stop every port.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::*;

fn line(port: u16, dev: &std::path::Path) -> String {
    config_line(port, dev)
}

/// Round trips on a data-mode session until told to stop; returns how many were verified.
fn keep_flowing(mut c: TcpStream, stop: Arc<AtomicBool>) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        // read_until left its last remaining time as the read timeout: set a full one.
        c.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut n = 0;
        let mut buf = [0u8; 64];
        while !stop.load(Ordering::Relaxed) {
            let msg = random_bytes(64, n as u64 + 1)
                .iter()
                .map(|b| b'a' + b % 26)
                .collect::<Vec<_>>();
            c.write_all(&msg)
                .expect("session broke during reload (write)");
            c.read_exact(&mut buf)
                .expect("session broke during reload (read)");
            assert_eq!(buf[..], msg[..], "session bytes corrupted during reload");
            n += 1;
        }
        n
    })
}

fn reload(d: &Daemon, text: &str, expect: &str) {
    let before = d.log.count(expect);
    fs::write(&d.config, text).expect("rewrite config");
    d.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + WAIT;
    while d.log.count(expect) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "no '{expect}' after SIGHUP:\n{}",
            d.log.all()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sighup_adds_and_removes_ports_and_rejects_broken_files() {
    let sim = Sim::start(&[]);
    let pty_b = Pty::open().expect("pty");
    let (port_a, port_b) = (free_port(), free_port());
    let addr_a = SocketAddr::from(([127, 0, 0, 1], port_a));
    let addr_b = SocketAddr::from(([127, 0, 0, 1], port_b));
    let d = Daemon::builder(&line(port_a, &sim.device)).start();

    let mut c = connect(addr_a);
    c.write_all(b"ATDT1\r").expect("dial");
    assert!(read_until(&mut c, b"CONNECT 115200\r\n", WAIT).ends_with(b"CONNECT 115200\r\n"));
    let stop = Arc::new(AtomicBool::new(false));
    let flow = keep_flowing(c, Arc::clone(&stop));

    // Add port B.
    let both = format!(
        "{}{}",
        line(port_a, &sim.device),
        line(port_b, &pty_b.slave)
    );
    reload(&d, &both, &format!("listening on 127.0.0.1:{port_b}"));
    let mut b = connect(addr_b);
    assert_reaches(&mut b, &pty_b, b"to B", "new port does not serve");
    drop(b);
    assert!(pty_b.wait_hangup(WAIT));
    let lock_b = d.dir.join(&lock_name(&pty_b.slave));
    let deadline = std::time::Instant::now() + WAIT;
    while lock_b.exists() && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    assert!(!lock_b.exists(), "B still locked");

    // A broken file changes nothing.
    let broken = format!(
        "{}127.0.0.1:{} /dev/ttyS0 115200,8,X,1\n",
        both,
        free_port()
    );
    reload(&d, &broken, "keeping the running configuration");
    assert!(
        d.log
            .wait_for("modemd.conf:3: bad parity 'X'", WAIT)
            .is_some(),
        "{}",
        d.log.all()
    );
    let mut b = connect(addr_b);
    assert_reaches(&mut b, &pty_b, b"still", "port B lost by a broken reload");
    drop(b);
    // Port A still listens: its only modem is in use, so a second client reads busy.
    assert_busy(addr_a, "second client on A");

    // Remove port B.
    reload(
        &d,
        &line(port_a, &sim.device),
        &format!("stopped listening on {addr_b}"),
    );
    assert!(
        TcpStream::connect_timeout(&addr_b, WAIT).is_err(),
        "removed port still accepts"
    );

    stop.store(true, Ordering::Relaxed);
    let trips = flow
        .join()
        .expect("the session on port A broke during the reloads");
    assert!(trips > 0);
    // Both sessions on B, and the one on A now that its client left.
    let deadline = std::time::Instant::now() + WAIT;
    while d.log.count("session end") < 3 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(d.log.count("session end"), 3, "{}", d.log.all());
}

/// Every port is served by one accept thread, whatever a reload adds or removes; a removed
/// port can be bound again at once (its socket is closed, not left to the thread).
#[test]
fn one_accept_thread_serves_every_port_across_reloads() {
    let ptys: Vec<Pty> = (0..4).map(|_| Pty::open().expect("pty")).collect();
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let text = |which: &[usize]| -> String {
        which
            .iter()
            .map(|&i| line(ports[i], &ptys[i].slave))
            .collect()
    };
    // The baseline with one port: the main and accept threads (and, under qemu-user, the
    // emulator's own thread).
    let d = Daemon::builder(&text(&[0])).start();
    let base = d.threads();
    reload(
        &d,
        &text(&[0, 1, 2]),
        &format!("listening on 127.0.0.1:{}", ports[2]),
    );
    assert_eq!(d.threads(), base, "threads grew with the ports");
    let serves = |i: usize| {
        let addr = SocketAddr::from(([127, 0, 0, 1], ports[i]));
        let mut c = connect(addr);
        assert_reaches(&mut c, &ptys[i], b"hi", &format!("port {i} does not serve"));
        drop(c);
        assert!(ptys[i].wait_hangup(WAIT), "port {i}: no hang-up");
    };
    for i in 0..3 {
        serves(i);
    }

    reload(
        &d,
        &text(&[0, 2, 3]),
        &format!("listening on 127.0.0.1:{}", ports[3]),
    );
    let removed = SocketAddr::from(([127, 0, 0, 1], ports[1]));
    assert!(
        d.log
            .wait_for(&format!("stopped listening on {removed}"), WAIT)
            .is_some()
    );
    let rebound = std::net::TcpListener::bind(removed);
    assert!(rebound.is_ok(), "removed port not free: {rebound:?}");
    drop(rebound);
    for i in [0, 2, 3] {
        serves(i);
    }
    // Sessions' threads wait a moment for another job before they exit.
    assert!(
        wait_until(WAIT, || d.threads() == base),
        "threads after the reload: {}, baseline {base}",
        d.threads()
    );
}

#[test]
fn sighup_with_an_empty_file_warns_and_stops_every_listener() {
    let ptys: Vec<Pty> = (0..2).map(|_| Pty::open().expect("pty")).collect();
    let addrs: Vec<SocketAddr> = (0..2)
        .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
        .collect();
    let text: String = (0..2)
        .map(|i| line(addrs[i].port(), &ptys[i].slave))
        .collect();
    let d = Daemon::builder(&text).start();

    reload(&d, "# every modem taken out\n", "nothing shared");
    let warning = d.log.wait_for("nothing shared", WAIT).expect("warning");
    assert!(
        warning.contains(&format!(
            "warning: {}: nothing shared (no entries): no port listens",
            d.config.display()
        )),
        "{warning}"
    );
    for addr in &addrs {
        assert!(
            d.log
                .wait_for(&format!("stopped listening on {addr}"), WAIT)
                .is_some(),
            "{}",
            d.log.all()
        );
        assert!(
            TcpStream::connect_timeout(addr, WAIT).is_err(),
            "{addr} still accepts with an empty config"
        );
    }
    // Valid, so not rejected: no "keeping the running configuration" error.
    assert_eq!(d.log.count("error: "), 0, "{}", d.log.all());
}

/// With no entries the daemon starts, says it shares nothing, and a reload later shares.
#[test]
fn empty_file_at_start_up_warns_and_a_reload_later_shares() {
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("empty");
    // Written once SIGHUP is blocked: a start with no port has no "listening on" to wait for.
    let pid_file = dir.join("modemd.pid");
    let pid_arg = pid_file.to_str().expect("utf-8 temp path").to_owned();
    let args = ["-p", pid_arg.as_str()];
    let d = Daemon::builder("# nothing yet\n")
        .dir(dir)
        .args(&args)
        .start();

    let warning = d.log.wait_for("nothing shared", START).expect("warning");
    assert!(
        warning.ends_with(&format!(
            "warning: {}: nothing shared (no entries): no port listens",
            d.config.display()
        )),
        "{warning}"
    );
    assert!(
        wait_until(START, || pid_file.exists()),
        "daemon not up:\n{}",
        d.log.all()
    );
    let port = free_port();
    reload(
        &d,
        &line(port, &pty.slave),
        &format!("listening on 127.0.0.1:{port}"),
    );
    let mut c = connect(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_reaches(&mut c, &pty, b"hi", "port added to an empty config");
}
