//! The byte pump through the real daemon and a real PTY: integrity, hang-up, no stale bytes,
//! and no leaked thread or descriptor over many sessions.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn both_ways(pty: &Pty, addr: SocketAddr, len: usize) {
    let c = session(pty, addr);
    let up = random_bytes(len, 1);
    let down = random_bytes(len, 2);
    let sender = send_in_background(&c, up.clone());
    let writer = pty.write_in_background(down.clone());
    let reader = {
        let mut c = c.try_clone().expect("clone");
        thread::spawn(move || {
            let mut got = vec![0u8; len];
            c.set_read_timeout(Some(Duration::from_secs(60)))
                .expect("timeout");
            c.read_exact(&mut got).map(|()| got)
        })
    };
    let got_up = pty.read_for(len, Duration::from_secs(60));
    let got_down = reader.join().expect("reader").expect("client read");
    sender.join().expect("sender").expect("client write");
    writer.join().expect("writer");
    assert!(
        got_up == up,
        "client->device corrupted: {} of {len} bytes",
        got_up.len()
    );
    assert!(got_down == down, "device->client corrupted");
    c.shutdown(std::net::Shutdown::Both).ok();
}

#[test]
fn eight_mib_both_ways_at_once_arrive_intact() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "", &[]);
    both_ways(&pty, addr, 8 << 20);
    let line = d
        .log
        .wait_for("session end", WAIT)
        .expect("session end logged");
    assert!(line.contains(&format!("in {}", (8 << 20) + 1)), "{line}");
    assert!(line.contains(&format!("out {}", 8 << 20)), "{line}");
}

#[test]
fn plain_termios_fallback_relays_too() {
    // The path qemu-user and old kernels take when the termios2 ioctls fail.
    let pty = Pty::open().expect("pty");
    let port = free_port();
    let conf = format!(
        "127.0.0.1:{port} {} 9600,7,E,2 127.0.0.1\n",
        pty.slave.display()
    );
    let d = Daemon::builder(&conf)
        .args(&["-d"])
        .env(&[("MODEMD_PLAIN_TERMIOS", "1")])
        .start();
    both_ways(&pty, SocketAddr::from(([127, 0, 0, 1], port)), 256 << 10);
    assert!(
        d.log.wait_for("with plain termios", WAIT).is_some(),
        "{}",
        d.log.all()
    );
    assert!(d.log.wait_for("session end", WAIT).is_some());
}

#[test]
fn every_byte_value_passes_both_ways() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = one_device(&pty.slave, "", &[]);
    let mut c = session(&pty, addr);
    let all: Vec<u8> = (0..=255u8).collect();
    c.write_all(&all).expect("write");
    assert_eq!(pty.read_for(256, WAIT), all, "client->device");
    pty.write_all(&all);
    let mut got = vec![0u8; 256];
    c.read_exact(&mut got).expect("read");
    assert_eq!(got, all, "device->client");
}

#[test]
fn device_is_closed_within_a_second_of_disconnect() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "", &[]);
    let c = session(&pty, addr);
    assert!(pty.slave_open());
    drop(c);
    assert!(
        pty.wait_hangup(Duration::from_secs(1)),
        "device still open 1 s after disconnect"
    );
    let line = d.log.wait_for("session end", WAIT).expect("session end");
    assert!(line.contains("reason client closed"), "{line}");
    assert!(d.dir.locks().is_empty(), "lock left: {:?}", d.dir.locks());
}

#[test]
fn new_client_never_sees_bytes_sent_before_it_connected() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "", &[]);
    // The modem talks while nobody is connected (e.g. RING, or the tail of the last call).
    pty.write_all(b"STALE-BYTES-FROM-BEFORE");
    let mut c = session(&pty, addr);
    pty.write_all(b"fresh");
    let got = read_until(&mut c, b"fresh", WAIT);
    assert_eq!(got, b"fresh");
    // And again for the second session: bytes after the first client left are stale too.
    drop(c);
    assert!(pty.wait_hangup(WAIT));
    assert!(d.dir.wait_unlocked(WAIT));
    pty.write_all(b"LEFTOVER");
    let mut c = session(&pty, addr);
    pty.write_all(b"new");
    assert_eq!(read_until(&mut c, b"new", WAIT), b"new");
}

#[test]
fn client_leaving_while_the_device_is_stalled_frees_the_device() {
    // The modem side never reads: the device's queue fills and the relay waits on it. The
    // client then leaves with a reset (its FIN could not get past its own unsent data, which
    // the stalled relay never reads); the session must end and unlock.
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "", &[]);
    let c = session(&pty, addr);
    let sender = send_in_background(&c, vec![b'z'; 4 << 20]);
    thread::sleep(Duration::from_millis(300));
    reset_on_close(&c);
    c.shutdown(std::net::Shutdown::Both).expect("shutdown");
    drop(c);
    let _ = sender.join().expect("sender thread");
    let line = d
        .log
        .wait_for("session end", WAIT)
        .expect("stalled session never ended");
    assert!(line.contains("reason client closed"), "{line}");
    assert!(d.dir.wait_unlocked(WAIT), "lock kept by a stalled session");
    assert!(pty.wait_hangup(WAIT), "stalled device left open");
}

#[test]
fn two_hundred_sessions_leave_threads_and_fds_at_baseline() {
    let pty = Pty::open().expect("pty");
    // hangup=0: 200 holds would be 100 s of waiting; holds are counted in tests/line.rs.
    let (d, addr) = one_device(&pty.slave, "hangup=0", &[]);
    let (threads, fds) = (d.threads(), d.fds());
    // Leaks are the point here, not speed: the one-second bound has its own test.
    for i in 0..200 {
        let c = session(&pty, addr);
        drop(c);
        assert!(pty.wait_hangup(WAIT), "cycle {i}: device not closed");
        // The device is closed before it is unlocked, never the other way round.
        assert!(d.dir.wait_unlocked(WAIT), "cycle {i}: lock left");
    }
    let deadline = Instant::now() + WAIT;
    while (d.threads(), d.fds()) != (threads, fds) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        (d.threads(), d.fds()),
        (threads, fds),
        "threads/fds not back to baseline"
    );
    assert!(d.dir.locks().is_empty());
    // The last line is written after the unlock: it may still be on its way.
    assert!(
        wait_until(WAIT, || d.log.count("session end") == 200),
        "{} session ends logged",
        d.log.count("session end")
    );
}

/// Whether the tty at `path` is in exclusive mode (TIOCGEXCL, Linux 3.8+). Root may open an
/// exclusive tty anyway, which is what lets a test running as root ask.
fn exclusive(path: &std::path::Path) -> bool {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .expect("open the device beside the session");
    let mut on: libc::c_int = 0;
    // SAFETY: TIOCGEXCL writes one int to the pointer given.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::TIOCGEXCL, &mut on) };
    assert_eq!(r, 0, "TIOCGEXCL: {}", std::io::Error::last_os_error());
    on != 0
}

#[test]
fn the_device_is_exclusive_while_a_session_holds_it() {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: not root; an exclusive tty cannot be opened beside the session");
        return;
    }
    for (path, env) in OPEN_PATHS {
        let pty = Pty::open().expect("pty");
        let port = free_port();
        let d = Daemon::builder(&config_line(port, &pty.slave))
            .env(env)
            .start();
        let c = session(&pty, SocketAddr::from(([127, 0, 0, 1], port)));
        assert!(exclusive(&pty.slave), "not exclusive ({path})");
        drop(c);
        assert!(d.log.wait_for("session end", WAIT).is_some());
        assert!(pty.wait_hangup(WAIT));
    }
}
