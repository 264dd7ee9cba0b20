//! The line as a modem needs it (DESIGN §2–§3): flow control, the hang-up and its hold,
//! nothing stale for the next client, busy only when busy. The device is a PTY master the
//! test drives; Linux lets the master read the slave's termios, which is how the line's
//! flags are seen.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::thread;
use std::time::{Duration, Instant};

use common::lagging::Lagging;
use common::*;
use modemd::sys;

/// (option, CRTSCTS expected, IXON|IXOFF expected)
const FLOWS: [(&str, bool, bool); 4] = [
    ("", false, false),
    ("flow=none", false, false),
    ("flow=rtscts", true, false),
    ("flow=xonxoff", false, true),
];

/// Whether the line has hardware and software flow control on.
fn flow_flags(pty: &Pty) -> (bool, bool) {
    let t = pty.termios();
    let soft = libc::IXON | libc::IXOFF;
    (t.c_cflag & libc::CRTSCTS != 0, t.c_iflag & soft == soft)
}

#[test]
fn flow_option_sets_the_line() {
    for (option, hard, soft) in FLOWS {
        let pty = Pty::open().expect("pty");
        let (_d, addr) = one_device(&pty.slave, option, &[]);
        let _c = session(&pty, addr);
        assert_eq!(flow_flags(&pty), (hard, soft), "with '{option}'");
    }
}

/// The hold every test here assumes unless it sets one: DESIGN §2's default.
const HOLD: Duration = Duration::from_millis(500);
/// What the acceptance allows beyond a hold: the release, and a new claim. Under an emulator
/// (the cross-built binary under qemu-user) every system call is slower: the lower bounds
/// stay, the upper ones widen.
fn slack() -> Duration {
    if emulated() {
        Duration::from_millis(1000)
    } else {
        Duration::from_millis(300)
    }
}

/// When the device had 64 more bytes of value `b` than `before`, within `timeout`.
fn arrived(echo: &Lagging, b: u8, before: usize, timeout: Duration) -> Option<Instant> {
    wait_until(timeout, || echo.heard(b).count >= before + 64)
        .then(|| echo.heard(b).last)
        .flatten()
}

#[test]
fn quick_reconnects_to_a_lagging_device_get_no_stale_byte_and_no_busy() {
    let pty = Pty::open().expect("pty");
    let echo = Lagging::start(pty.master.as_fd(), Duration::from_millis(100));
    let (d, addr) = one_device(&pty.slave, "", &[]);
    let idle = (d.threads(), d.fds());
    let mut stale = 0;
    for cycle in 0..50u8 {
        let mut c = connect(addr);
        let start = Instant::now();
        let mine = [b'A' + cycle % 26; 64];
        let before = echo.heard(mine[0]).count;
        c.write_all(&mine).expect("write");
        let served = arrived(&echo, mine[0], before, HOLD + slack() + WAIT)
            .unwrap_or_else(|| panic!("cycle {cycle}: never served\n{}", d.log.all()));
        assert!(
            served - start <= HOLD + slack(),
            "cycle {cycle}: served after {:?}",
            served - start
        );
        if cycle % 2 == 1 {
            // Every other client reads until its own echo is back: anything else it gets was
            // said to an earlier client.
            let got = read_until(&mut c, &mine, WAIT);
            assert!(got.ends_with(&mine), "cycle {cycle}: no echo: {got:?}");
            stale += got.len() - mine.len();
            assert!(
                !String::from_utf8_lossy(&got).contains("busy"),
                "cycle {cycle} told busy"
            );
        }
        // The others close before their echo is back, leaving it to the next client.
        drop(c);
    }
    assert_eq!(stale, 0, "stale bytes reached later clients");
    assert_eq!(d.log.count("busy"), 0, "{}", d.log.all());
    assert!(
        d.log.wait_for("line hung up, held", WAIT).is_some(),
        "{}",
        d.log.all()
    );
    // Fifty holds and waits leave no thread, descriptor or lock behind.
    assert!(
        pty.wait_hangup(WAIT),
        "device not closed after the last hold"
    );
    assert!(
        wait_until(WAIT, || (d.threads(), d.fds()) == idle),
        "threads/fds {:?}, idle {idle:?}",
        (d.threads(), d.fds())
    );
    assert!(d.dir.locks().is_empty(), "lock left");
}

#[test]
fn a_device_held_for_a_client_still_there_is_busy_at_once() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = one_device(&pty.slave, "", &[]);
    let first = session(&pty, addr);
    let start = Instant::now();
    assert_busy(addr, "second client");
    assert!(
        start.elapsed() < HOLD,
        "busy only after {:?}: it waited for a live session",
        start.elapsed()
    );
    drop(first);
}

/// How long the device stayed open after the client of a session left.
fn open_after_leaving(pty: &Pty, addr: SocketAddr) -> Duration {
    let c = session(pty, addr);
    drop(c);
    let left = Instant::now();
    assert!(pty.wait_hangup(HOLD * 20 + WAIT), "device never closed");
    left.elapsed()
}

#[test]
fn the_device_is_held_for_the_hangup_time_then_freed() {
    for (option, hold) in [("", HOLD), ("hangup=1000", Duration::from_secs(1))] {
        let pty = Pty::open().expect("pty");
        let (d, addr) = one_device(&pty.slave, option, &[]);
        let open = open_after_leaving(&pty, addr);
        assert!(
            open >= hold && open <= hold + slack(),
            "'{option}': open {open:?} after the client left"
        );
        assert!(d.log.wait_for("held", WAIT).is_some(), "{}", d.log.all());
    }
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "hangup=0", &[]);
    let open = open_after_leaving(&pty, addr);
    assert!(
        open <= slack(),
        "hangup=0: open {open:?} after the client left"
    );
    let end = d.log.wait_for("session end", WAIT).expect("session end");
    assert!(end.ends_with("line hung up"), "{end}");
}

#[test]
fn hangup_off_leaves_hupcl_clear_and_says_so() {
    let pty = Pty::open().expect("pty");
    // The device comes with HUPCL set, as a serial port does: off must clear it.
    let mut t = pty.termios();
    t.c_cflag |= libc::HUPCL;
    modemd::serial::termios::set(pty.master.as_fd(), &t).expect("set HUPCL");
    let (d, addr) = one_device(&pty.slave, "hangup=off", &[]);
    let c = session(&pty, addr);
    assert_eq!(
        pty.termios().c_cflag & libc::HUPCL,
        0,
        "HUPCL set in session"
    );
    drop(c);
    let left = Instant::now();
    assert!(pty.wait_hangup(WAIT), "device never closed");
    assert!(
        left.elapsed() <= slack(),
        "hangup=off: held {:?}",
        left.elapsed()
    );
    // Nor set again when the termios found at open is put back.
    assert_eq!(pty.termios().c_cflag & libc::HUPCL, 0, "HUPCL set at close");
    let end = d.log.wait_for("session end", WAIT).expect("session end");
    assert!(end.ends_with("line left up"), "{end}");
    // The default sets it: closing the device drops DTR.
    let pty = Pty::open().expect("pty");
    let (_d, addr) = one_device(&pty.slave, "", &[]);
    let _c = session(&pty, addr);
    assert_ne!(
        pty.termios().c_cflag & libc::HUPCL,
        0,
        "HUPCL clear by default"
    );
}

#[test]
fn sigterm_during_a_hold_exits_promptly_without_a_lock() {
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("hold");
    let port = free_port();
    let conf = config_entry(port, &pty.slave, "hangup=5000");
    let mut d = Daemon::builder(&conf).dir(dir).args(&["-d"]).start();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    drop(session(&pty, addr));
    assert!(
        d.log.wait_for("holding the device", WAIT).is_some(),
        "no hold\n{}",
        d.log.all()
    );
    assert!(pty.slave_open(), "not holding the device");
    d.signal(libc::SIGTERM);
    let start = Instant::now();
    let status = d.wait_exit(Duration::from_secs(6)).expect("no exit");
    assert!(status.success(), "{status:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "SIGTERM waited {:?} for a 5 s hold",
        start.elapsed()
    );
    assert!(pty.wait_hangup(WAIT));
    let end = d.log.wait_for("session end", WAIT).expect("session end");
    assert!(end.contains("cut short: shutdown"), "{end}");
    assert_eq!(d.dir.lock_files(), Vec::<String>::new(), "lock left");
}

#[test]
fn a_device_that_fails_while_its_client_is_not_reading_ends_its_session() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "", &[]);
    let c = session(&pty, addr);
    // The client reads nothing from here on. The device talks until everything between it
    // and the client is full and the daemon no longer takes its output.
    let master = pty.master.try_clone().expect("dup master");
    // SAFETY: fcntl on a descriptor we own; O_NONBLOCK only changes how writes wait.
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let chunk = [b'x'; 4096];
    let mut stalled = Instant::now();
    let mut sent = 0usize;
    while stalled.elapsed() < Duration::from_millis(300) {
        assert!(sent < 512 << 20, "the daemon never stopped taking output");
        match sys::write(master.as_fd(), &chunk) {
            Ok(n) => {
                sent += n;
                stalled = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("device write: {e}"),
        }
    }
    // Now the device fails: its master closes, as a USB modem that is pulled.
    drop(master);
    drop(pty);
    let failed = Instant::now();
    let bound = if emulated() {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(1)
    };
    assert!(
        wait_until(bound, || d.dir.locks().is_empty()),
        "lock still held {:?} after the device failed\n{}",
        failed.elapsed(),
        d.log.all()
    );
    let end = d.log.wait_for("session end", WAIT).expect("session end");
    assert!(end.contains("reason device gone"), "{end}");
    drop(c);
}

#[test]
fn a_client_arriving_as_the_previous_one_leaves_is_served() {
    // The client before closes at once after writing, so that its session may still be
    // claiming the device (opening it) when the next client's session looks for one: the
    // next client must wait for it, not read busy. (When the next client's session gets
    // there first, the one before is refused instead; its client is gone and hears nothing.)
    let pty = Pty::open().expect("pty");
    let echo = Lagging::start(pty.master.as_fd(), Duration::from_millis(50));
    let (d, addr) = one_device(&pty.slave, "", &[]);
    for cycle in 0..20u8 {
        let mut gone = connect(addr);
        gone.write_all(&[b'a' + cycle % 26; 64]).expect("write");
        drop(gone);
        let mut c = connect(addr);
        let mine = [b'A' + cycle % 26; 64];
        c.write_all(&mine).expect("write");
        let got = read_until(&mut c, &mine, HOLD + slack() + WAIT);
        assert!(
            got.ends_with(&mine),
            "cycle {cycle}: not served: {:?}\n{}",
            String::from_utf8_lossy(&got),
            d.log.all()
        );
        assert_eq!(got.len(), mine.len(), "cycle {cycle}: stale bytes: {got:?}");
        drop(c);
        // Both sessions end before the next cycle, so each cycle starts alike.
        assert!(
            wait_until(WAIT, || d.dir.locks().is_empty()),
            "cycle {cycle}"
        );
    }
    drop(echo);
}
