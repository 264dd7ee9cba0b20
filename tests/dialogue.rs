//! The mini-HOWTO's session through modemd with the simulated Hayes modem, and a pool of two
//! modems on one port.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn seed_dialogue_atz_and_ati1() {
    let sim = Sim::start(&["-i", "Linux ISDN"]);
    let port = free_port();
    let conf = config_line(port, &sim.device);
    let _d = Daemon::builder(&conf).start();
    let mut c = connect(SocketAddr::from(([127, 0, 0, 1], port)));
    // As in the HOWTO: the modem echoes the command, then answers.
    assert_eq!(at(&mut c, "atz"), "atz\r\r\nOK\r\n");
    assert_eq!(at(&mut c, "ati1"), "ati1\r\r\nLinux ISDN\r\n\r\nOK\r\n");
}

#[test]
fn simulated_modem_survives_sessions_and_dials() {
    let sim = Sim::start(&[]);
    let port = free_port();
    let conf = config_line(port, &sim.device);
    let d = Daemon::builder(&conf).start();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for round in 0..3 {
        let mut c = connect(addr);
        assert!(at(&mut c, "AT").ends_with("OK\r\n"), "round {round}");
        c.write_all(b"ATDT5551234\r").expect("write");
        let got = read_until(&mut c, b"CONNECT 115200\r\n", WAIT);
        assert!(
            got.ends_with(b"CONNECT 115200\r\n"),
            "round {round}: {got:?}"
        );
        // Data mode echoes bytes.
        c.write_all(b"hello modem").expect("write");
        assert_eq!(read_until(&mut c, b"hello modem", WAIT), b"hello modem");
        drop(c);
        assert!(d.dir.wait_unlocked(WAIT), "round {round}: lock left");
        assert!(
            sim.wait_hangups(round + 1),
            "round {round}: the modem never saw the hang-up"
        );
    }
}

fn ident(c: &mut TcpStream) -> String {
    at(c, "ati1")
}

#[test]
fn pool_gives_different_modems_then_busy_then_a_freed_one() {
    let one = Sim::start(&["-i", "modem one"]);
    let two = Sim::start(&["-i", "modem two"]);
    let port = free_port();
    let conf = format!(
        "127.0.0.1:{port} {} 115200,8,N,1 127.0.0.1\n127.0.0.1:{port} {} 57600,8,N,1 127.0.0.1\n",
        one.device.display(),
        two.device.display()
    );
    let d = Daemon::builder(&conf).start();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut first = connect(addr);
    assert!(ident(&mut first).contains("modem one"));
    let mut second = connect(addr);
    assert!(ident(&mut second).contains("modem two"));
    assert_eq!(d.dir.locks().len(), 2);

    let mut third = connect(addr);
    let got = read_to_close(&mut third, WAIT).expect("third client not closed");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("busy") && text.ends_with("\r\n"),
        "third got {text:?}"
    );

    drop(first);
    let deadline = Instant::now() + WAIT;
    while d.dir.locks().len() != 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let mut fourth = connect(addr);
    assert!(
        ident(&mut fourth).contains("modem one"),
        "fourth did not get the freed modem"
    );
    // The second session was never disturbed.
    assert!(ident(&mut second).contains("modem two"));
}
