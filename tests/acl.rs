//! Who may connect, through the real daemon: addresses, CIDR, IPv6, and a hostname matched by
//! forward-confirmed reverse lookup (`localhost` from /etc/hosts).

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

fn daemon(pty: &Pty, listen: &str, hosts: &str) -> Daemon {
    Daemon::builder(&format!(
        "{listen} {} 115200,8,N,1 {hosts}\n",
        pty.slave.display()
    ))
    .start()
}

fn served(pty: &Pty, mut c: TcpStream) -> bool {
    c.write_all(b"hi").expect("write");
    let got = pty.read_for(2, WAIT);
    got == b"hi"
}

/// A refused client is closed within `timeout` and nothing it sends reaches the device.
fn refused(pty: &Pty, mut c: TcpStream, timeout: Duration) -> bool {
    let _ = c.write_all(b"ATDT5551234\r");
    let closed = read_to_close(&mut c, timeout);
    let leaked = pty.read_for(1, Duration::from_millis(200));
    closed == Some(Vec::new()) && leaked.is_empty() && !pty.slave_open()
}

#[test]
fn address_entry_serves_it_and_refuses_others() {
    let pty = Pty::open().expect("pty");
    let port = free_port();
    let d = daemon(&pty, &format!("127.0.0.1:{port}"), "127.0.0.1");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(refused(&pty, connect_from("127.0.0.2", addr), WAIT));
    assert!(d.log.wait_for("refused 127.0.0.2", WAIT).is_some());
    assert!(served(&pty, connect_from("127.0.0.1", addr)));
}

#[test]
fn cidr_entry_matches_its_block_only() {
    let pty = Pty::open().expect("pty");
    let port = free_port();
    let _d = daemon(
        &pty,
        &format!("127.0.0.1:{port}"),
        "10.0.0.0/8,127.0.0.0/30",
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(refused(&pty, connect_from("127.0.0.5", addr), WAIT));
    assert!(served(&pty, connect_from("127.0.0.2", addr)));
}

#[test]
fn ipv6_loopback_entry_works() {
    let pty = Pty::open().expect("pty");
    let port = free_port();
    let _d = daemon(&pty, &format!("[::1]:{port}"), "::1");
    assert!(served(
        &pty,
        connect(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)))
    ));
}

#[test]
fn bare_port_sees_ipv4_clients_as_ipv4() {
    // A bare port listens dual-stack; IPv4 clients arrive as ::ffff:a.b.c.d and must still
    // match IPv4 entries.
    let pty = Pty::open().expect("pty");
    let port = free_port();
    let _d = daemon(&pty, &port.to_string(), "127.0.0.1");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(refused(&pty, connect_from("127.0.0.3", addr), WAIT));
    assert!(served(&pty, connect(addr)));
}

#[test]
fn localhost_is_admitted_by_forward_confirmed_name() {
    let pty = Pty::open().expect("pty");
    let port = free_port();
    let _d = daemon(&pty, &format!("127.0.0.1:{port}"), "localhost");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // 127.0.0.2 has no name that leads back to it. It is not in /etc/hosts, so the daemon
    // asks DNS, and where no server answers it gives up only after its 3 s timeout.
    assert!(refused(
        &pty,
        connect_from("127.0.0.2", addr),
        Duration::from_secs(3) + WAIT
    ));
    assert!(served(&pty, connect_from("127.0.0.1", addr)));
}

#[test]
fn a_flood_of_refusals_is_logged_briefly() {
    let pty = Pty::open().expect("pty");
    let port = free_port();
    let d = daemon(&pty, &format!("127.0.0.1:{port}"), "127.0.0.1");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // All 50 at once, then their answers: the daemon refuses them as fast as it can, and
    // every refusal falls between `t` and the last answer.
    let t = Instant::now();
    let mut flood: Vec<TcpStream> = (0..50).map(|_| connect_from("127.0.0.2", addr)).collect();
    for c in &mut flood {
        assert_eq!(read_to_close(c, WAIT), Some(Vec::new()));
    }
    let span = t.elapsed();
    drop(flood);

    // Each rate window (a second or more) logs at most ten refusals one by one and, once it
    // is over, one line with the count of the rest if there were more. However many windows
    // the flood spans (an emulated daemon may be slow), every refusal is accounted for.
    let one_by_one = || d.log.count("refused 127.0.0.2");
    let summarized = |line: &str| -> usize {
        line.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("summary without a count: {line}"))
    };
    let accounted = || {
        let log = d.log.all();
        let rest: usize = log
            .lines()
            .filter(|l| l.contains("more clients refused"))
            .map(summarized)
            .sum();
        one_by_one() + rest
    };
    // The last summary is due when its window ends, a second after it began at most.
    assert!(
        wait_until(Duration::from_secs(1) + WAIT, || accounted() >= 50),
        "{}",
        d.log.all()
    );
    assert_eq!(accounted(), 50, "{}", d.log.all());

    // Windows last a second at least, so the refusals, all within `span`, met at most
    // span + 2 of them (the first may have begun before the flood, the last end after it),
    // with ten lines one by one in each at most. Natively the flood takes milliseconds: a
    // daemon logging every refusal shows.
    let windows = span.as_secs() as usize + 2;
    assert!(
        one_by_one() <= 10 * windows,
        "{} refusal lines within {span:?}:\n{}",
        one_by_one(),
        d.log.all()
    );
    // A summary ends a window that logged ten lines one by one before it.
    let log = d.log.all();
    let (mut lines, mut summaries) = (0, 0);
    for l in log.lines() {
        if l.contains("refused 127.0.0.2") {
            lines += 1;
        } else if l.contains("more clients refused") {
            summaries += 1;
            assert!(
                lines >= 10 * summaries,
                "summary after {lines} lines:\n{log}"
            );
        }
    }
    assert!(!pty.slave_open());
}
