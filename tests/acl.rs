//! Who may connect, through the real daemon: addresses, CIDR, IPv6, and a hostname matched by
//! forward-confirmed reverse lookup (`localhost` from /etc/hosts).

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

fn daemon(pty: &Pty, listen: &str, hosts: &str) -> Daemon {
    Daemon::start(
        &format!("{listen} {} 115200,8,N,1 {hosts}\n", pty.slave.display()),
        &[],
    )
}

fn served(pty: &Pty, mut c: TcpStream) -> bool {
    c.write_all(b"hi").expect("write");
    let got = pty.read_for(2, Duration::from_secs(2));
    got == b"hi"
}

/// A refused client is closed at once and nothing it sends reaches the device.
fn refused(pty: &Pty, mut c: TcpStream) -> bool {
    let _ = c.write_all(b"ATDT5551234\r");
    let closed = read_to_close(&mut c, WAIT);
    let leaked = pty.read_for(1, Duration::from_millis(200));
    closed == Some(Vec::new()) && leaked.is_empty() && !pty.slave_open()
}

#[test]
fn address_entry_serves_it_and_refuses_others() {
    let pty = Pty::new();
    let port = free_port();
    let d = daemon(&pty, &format!("127.0.0.1:{port}"), "127.0.0.1");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(refused(&pty, connect_from("127.0.0.2", addr)));
    assert!(d.log.wait_for("refused 127.0.0.2", WAIT).is_some());
    assert!(served(&pty, connect_from("127.0.0.1", addr)));
}

#[test]
fn cidr_entry_matches_its_block_only() {
    let pty = Pty::new();
    let port = free_port();
    let _d = daemon(
        &pty,
        &format!("127.0.0.1:{port}"),
        "10.0.0.0/8,127.0.0.0/30",
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(refused(&pty, connect_from("127.0.0.5", addr)));
    assert!(served(&pty, connect_from("127.0.0.2", addr)));
}

#[test]
fn ipv6_loopback_entry_works() {
    let pty = Pty::new();
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
    let pty = Pty::new();
    let port = free_port();
    let _d = daemon(&pty, &port.to_string(), "127.0.0.1");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(refused(&pty, connect_from("127.0.0.3", addr)));
    assert!(served(&pty, connect(addr)));
}

#[test]
fn localhost_is_admitted_by_forward_confirmed_name() {
    let pty = Pty::new();
    let port = free_port();
    let _d = daemon(&pty, &format!("127.0.0.1:{port}"), "localhost");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // 127.0.0.2 has no name that leads back to it.
    assert!(refused(&pty, connect_from("127.0.0.2", addr)));
    assert!(served(&pty, connect_from("127.0.0.1", addr)));
}

#[test]
fn a_flood_of_refusals_is_logged_briefly() {
    let pty = Pty::new();
    let port = free_port();
    let d = daemon(&pty, &format!("127.0.0.1:{port}"), "127.0.0.1");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..50 {
        let mut c = connect_from("127.0.0.2", addr);
        assert_eq!(read_to_close(&mut c, WAIT), Some(Vec::new()));
    }
    // At most ten lines one by one, then one line with the count of the rest.
    let summary = d
        .log
        .wait_for("more clients refused", Duration::from_secs(3));
    let one_by_one = d.log.count("refused 127.0.0.2");
    assert!(one_by_one <= 10, "{one_by_one} refusal lines");
    let summarized: usize = summary
        .as_deref()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("no summary line");
    assert_eq!(one_by_one + summarized, 50, "{}", d.log.all());
    assert!(!pty.slave_open());
}
