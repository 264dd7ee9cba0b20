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

/// Everything the master of `pty` can still read once the device is closed: what is left,
/// up to the end that a closed slave reads as (EIO, or poll's hang-up with nothing left).
fn drain_master(pty: &Pty) -> usize {
    let mut total = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let ready = sys::poll(
            &[(std::os::fd::AsRawFd::as_raw_fd(&pty.master), Interest::Read)],
            Some(WAIT),
        )
        .expect("poll");
        if !ready[0].read && ready[0].hangup {
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
    // Counted once the session has ended: the device is closed by then, so what the master
    // can still read is all that will ever come.
    let (to_device, to_client) = counts(&d);
    seen += drain_master(&pty);
    drop(c);
    sender.join().expect("sender");
    assert_eq!(to_client, 0);
    assert_eq!(to_device, seen as u64, "in count vs bytes the device read");
}

/// Modems that echo what they are sent, like one in data mode, until dropped; they outlive
/// the sessions that open and close their devices.
struct Echoes {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Echoes {
    fn start(ptys: &[Pty]) -> Echoes {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = ptys
            .iter()
            .map(|pty| {
                let master = pty.master.try_clone().expect("dup master");
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let fd = [(std::os::fd::AsRawFd::as_raw_fd(&master), Interest::Read)];
                    while !stop.load(Ordering::Relaxed) {
                        match sys::poll(&fd, Some(Duration::from_millis(20))) {
                            Ok(r) if r[0].read => match sys::read(master.as_fd(), &mut buf) {
                                Ok(n) if n > 0 => {
                                    let _ = sys::write(master.as_fd(), &buf[..n]);
                                }
                                _ => thread::sleep(Duration::from_millis(2)),
                            },
                            // Nobody has the device open: EIO until the next session.
                            Ok(r) if r[0].hangup => thread::sleep(Duration::from_millis(2)),
                            _ => {}
                        }
                    }
                })
            })
            .collect();
        Echoes { stop, threads }
    }
}

impl Drop for Echoes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// What a client that sent a probe has seen so far.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// Nothing yet: still in the listen queue (or being set up).
    Waiting,
    /// Its probe came back: it has a modem.
    Served,
    /// It read a line from modemd and was closed.
    Told(String),
    /// Closed without a word: what must never happen.
    Dropped,
}

/// Reads what `c` has (without waiting) and says what became of it; `got` keeps what came.
fn fate(c: &mut std::net::TcpStream, probe: &[u8], got: &mut Vec<u8>) -> Fate {
    c.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 512];
    let closed = loop {
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    if got.windows(probe.len()).any(|w| w == probe) {
        Fate::Served
    } else if got.starts_with(b"modemd: ") && got.ends_with(b"\r\n") {
        Fate::Told(String::from_utf8_lossy(got).trim().to_owned())
    } else if closed {
        Fate::Dropped
    } else {
        Fate::Waiting
    }
}

/// DESIGN §3: out of descriptors, modemd stops accepting rather than accept clients it then
/// drops. With the limit at 40, eight live sessions on an eight-modem pool and 52 clients
/// queued behind them: when the eight leave, eight queued clients get modems within 2 s,
/// and no client is ever closed without a line.
#[test]
fn out_of_descriptors_clients_wait_instead_of_being_dropped() {
    const POOL: usize = 8;
    const QUEUED: usize = 52;
    let ptys: Vec<Pty> = (0..POOL).map(|_| Pty::open().expect("pty")).collect();
    let _echoes = Echoes::start(&ptys);
    let port = free_port();
    let conf: String = ptys
        .iter()
        .map(|p| config_entry(port, &p.slave, "hangup=0"))
        .collect();
    let d = Daemon::builder(&conf).fd_limit(40).start();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let live: Vec<_> = (0..POOL)
        .map(|i| {
            let mut c = connect(addr);
            let probe = format!("live{i}\r");
            c.write_all(probe.as_bytes()).expect("write");
            let got = read_until(&mut c, probe.as_bytes(), WAIT);
            assert!(
                got.ends_with(probe.as_bytes()),
                "live client {i} got no modem: {got:?}\n{}",
                d.log.all()
            );
            c
        })
        .collect();
    let mut queued: Vec<_> = (0..QUEUED)
        .map(|i| {
            let mut c = connect(addr);
            let probe = format!("queued{i}\r").into_bytes();
            c.write_all(&probe).expect("write");
            (c, probe, Vec::new())
        })
        .collect();
    // Whatever modemd can accept while the pool is taken reads `busy`; the rest wait.
    thread::sleep(Duration::from_millis(500));
    for (i, (c, probe, got)) in queued.iter_mut().enumerate() {
        match fate(c, probe, got) {
            Fate::Waiting => {}
            Fate::Told(line) => assert!(line.contains("busy"), "queued {i}: {line}"),
            other => panic!("queued {i} while the pool is taken: {other:?}"),
        }
    }
    drop(live);
    // 2 s natively, as the issue asks; an emulated daemon is slower at everything.
    let deadline = Instant::now()
        + if emulated() {
            WAIT
        } else {
            Duration::from_secs(2)
        };
    let served = loop {
        let fates: Vec<Fate> = queued
            .iter_mut()
            .map(|(c, probe, got)| fate(c, probe, got))
            .collect();
        for (i, f) in fates.iter().enumerate() {
            assert_ne!(*f, Fate::Dropped, "queued {i} dropped:\n{}", d.log.all());
        }
        let served = fates.iter().filter(|f| **f == Fate::Served).count();
        if served >= POOL || Instant::now() >= deadline {
            break served;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert!(
        served >= POOL,
        "{served} queued clients served within 2 s:\n{}",
        d.log.all()
    );
}

/// Connects `n` clients to `addr` one after another; each must read one line saying the
/// device is unavailable for `reason`, never `busy`.
fn assert_unavailable(addr: std::net::SocketAddr, n: usize, reason: &str) {
    for i in 0..n {
        let mut c = connect(addr);
        let got = read_to_close(&mut c, WAIT).unwrap_or_else(|| panic!("client {i} not closed"));
        let line = String::from_utf8_lossy(&got);
        assert!(
            line.contains("unavailable") && line.contains(reason) && !line.contains("busy"),
            "client {i} of {addr} read {line:?}, expected unavailable ({reason})"
        );
    }
}

/// How many error lines of `d` name `what`.
fn errors_naming(d: &Daemon, what: &str) -> usize {
    d.log
        .all()
        .lines()
        .filter(|l| l.contains("error:") && l.contains(what))
        .count()
}

/// DESIGN §3: a device that cannot be used is `unavailable` with its reason, not `busy`;
/// the log names each device's problem once, however many clients ask.
#[test]
fn unusable_devices_are_unavailable_with_the_reason_and_logged_once() {
    let dir = TempDir::new("unusable");
    let missing = dir.join("ttyMISSING");
    let dangling = dir.join("ttyDANGLING");
    std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).expect("symlink");
    let directory = dir.join("ttyDIR");
    std::fs::create_dir(&directory).expect("mkdir");
    let regular = dir.join("ttyFILE");
    std::fs::write(&regular, "").expect("file");
    let null = std::path::PathBuf::from("/dev/null");
    let cases = [
        (&missing, "no such device"),
        (&dangling, "no such device"),
        (&null, "not a tty"),
        (&directory, "not a tty"),
        (&regular, "not a tty"),
    ];
    let ports: Vec<u16> = cases.iter().map(|_| free_port()).collect();
    let conf: String = cases
        .iter()
        .zip(&ports)
        .map(|((dev, _), &port)| config_entry(port, dev, ""))
        .collect();
    let d = Daemon::builder(&conf).start();
    for ((dev, reason), &port) in cases.iter().zip(&ports) {
        assert_unavailable(
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            20,
            reason,
        );
        assert_eq!(
            errors_naming(&d, &dev.display().to_string()),
            1,
            "{} for 20 clients:\n{}",
            dev.display(),
            d.log.all()
        );
    }
    assert!(dir.locks().is_empty(), "locks left: {:?}", dir.locks());
}

/// A device modemd may not open is `unavailable (permission denied)`. As root the daemon
/// runs as nobody (`-u`) to meet the PTY's 0620; otherwise the slave is made 0000.
#[test]
fn a_device_modemd_may_not_open_is_unavailable() {
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("denied");
    // SAFETY: geteuid has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mode = if root { 0o620 } else { 0o000 };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pty.slave, std::fs::Permissions::from_mode(mode)).expect("chmod");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod dir");
    let port = free_port();
    let args: &[&str] = if root { &["-u", "nobody"] } else { &[] };
    let d = Daemon::builder(&config_line(port, &pty.slave))
        .dir(dir)
        .args(args)
        .start();
    assert_unavailable(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        20,
        "permission denied",
    );
    assert_eq!(
        errors_naming(&d, &pty.slave.display().to_string()),
        1,
        "{}",
        d.log.all()
    );
    assert!(!pty.slave_open());
}

/// A lock directory that is not there makes every device `unavailable (lock directory
/// unusable)`, and the daemon says so.
#[test]
fn a_missing_lock_directory_makes_devices_unavailable() {
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("nolockdir");
    let gone = dir.join("no-such-dir");
    let port = free_port();
    let d = Daemon::builder(&config_line(port, &pty.slave))
        .lock_dir(&gone)
        .start();
    assert_unavailable(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        20,
        "lock directory unusable",
    );
    assert!(
        d.log
            .all()
            .contains(&format!("cannot use lock directory {}", gone.display())),
        "the start-up check did not name the lock directory:\n{}",
        d.log.all()
    );
    assert_eq!(
        errors_naming(&d, &pty.slave.display().to_string()),
        1,
        "{}",
        d.log.all()
    );
    assert!(!pty.slave_open(), "the device was opened without a lock");
}

/// DESIGN §3: busy replies are logged one by one up to 10 a second per port, then as a
/// count: 500 busy clients in a burst make about 20 lines, and every one is accounted for.
#[test]
fn a_burst_of_busy_clients_makes_few_log_lines() {
    const BURST: usize = 500;
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "hangup=0", &[]);
    let _live = session(&pty, addr);
    let start = Instant::now();
    let clients: Vec<_> = (0..BURST).map(|_| connect(addr)).collect();
    for (i, mut c) in clients.into_iter().enumerate() {
        let got = read_to_close(&mut c, WAIT).unwrap_or_else(|| panic!("client {i} not closed"));
        assert!(
            String::from_utf8_lossy(&got).contains("busy"),
            "client {i}: {got:?}"
        );
    }
    let span = start.elapsed();
    let one_by_one = || d.log.all().lines().filter(|l| l.contains(" busy")).count();
    let summarized = || -> usize {
        d.log
            .all()
            .lines()
            .filter(|l| l.contains("more clients refused"))
            .filter_map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .sum()
    };
    // The last count is due a second after its window began.
    assert!(
        wait_until(Duration::from_secs(1) + WAIT, || one_by_one()
            + summarized()
            >= BURST),
        "{} + {} of {BURST} accounted for:\n{}",
        one_by_one(),
        summarized(),
        d.log.all()
    );
    let windows = span.as_secs() as usize + 2;
    let lines = d
        .log
        .all()
        .lines()
        .filter(|l| l.contains(" busy") || l.contains("more clients refused"))
        .count();
    assert!(
        lines <= 11 * windows,
        "{lines} lines for {BURST} busy clients within {span:?}:\n{}",
        d.log.all()
    );
}

/// The lock directory is checked on reload too: one that went away is named at once.
#[test]
fn a_reload_names_a_lock_directory_that_went_away() {
    let pty = Pty::open().expect("pty");
    let locks = TempDir::new("lockdir-gone");
    let lock_dir = locks.join("locks");
    std::fs::create_dir(&lock_dir).expect("mkdir");
    let port = free_port();
    let d = Daemon::builder(&config_line(port, &pty.slave))
        .lock_dir(&lock_dir)
        .start();
    assert!(!d.log.all().contains("cannot use lock directory"));
    std::fs::remove_dir_all(&lock_dir).expect("rm -r");
    d.signal(libc::SIGHUP);
    let named = format!("cannot use lock directory {}", lock_dir.display());
    assert!(d.log.wait_for(&named, WAIT).is_some(), "{}", d.log.all());
}

/// A device another program holds with `flock` (pyserial's `exclusive=True`) is busy, not
/// unavailable, whichever way modemd opens it.
#[test]
fn a_device_flocked_by_another_program_is_busy() {
    for (path, env) in OPEN_PATHS {
        let pty = Pty::open().expect("pty");
        let holder = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&pty.slave)
            .expect("open the slave");
        // SAFETY: flock on a descriptor we own.
        let locked = unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&holder),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        };
        assert_eq!(locked, 0, "flock");
        let port = free_port();
        let d = Daemon::builder(&config_line(port, &pty.slave))
            .env(env)
            .start();
        let got = assert_busy(std::net::SocketAddr::from(([127, 0, 0, 1], port)), "client");
        assert!(
            !String::from_utf8_lossy(&got).contains("unavailable"),
            "{path}: {got:?}"
        );
        assert_eq!(errors_naming(&d, "flock"), 0, "{}", d.log.all());
    }
}
