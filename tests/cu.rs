//! Lock interplay with Taylor UUCP `cu`, which shares the system lock directory: while modemd
//! serves a client `cu` finds the line in use, and while `cu` holds it a modemd client reads
//! `busy`. Nobody leaves a lock behind.

mod common;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::peers;
use common::*;

const CU: &str = "/usr/bin/cu";
const SYSTEM_LOCKS: &str = "/var/lock";

#[test]
fn modemd_and_cu_respect_each_others_locks() {
    assert!(
        Path::new(CU).exists(),
        "needs Taylor cu (.ci/run installs the cu package)"
    );
    let pty = Pty::open().expect("pty");
    // cu runs setuid uucp on Debian: let it open the line.
    fs::set_permissions(&pty.slave, fs::Permissions::from_mode(0o666)).expect("chmod");
    let dev = pty.slave.to_str().expect("utf-8").to_owned();
    let lock = Path::new(SYSTEM_LOCKS).join(lock_name(&pty.slave));
    let port = free_port();
    let conf = format!("127.0.0.1:{port} {dev} 115200,8,N,1 127.0.0.1\n");
    let d = Daemon::builder(&conf)
        .lock_dir(Path::new(SYSTEM_LOCKS))
        .args(&["-d"])
        .start();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    // 1. modemd holds the line: cu must refuse it.
    let c = session(&pty, addr);
    let out = run_bounded(
        Command::new(CU).args(["-l", &dev, "-s", "115200"]),
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Line in use"),
        "cu said: {err}"
    );
    assert_eq!(
        fs::read_to_string(&lock).expect("lock"),
        format!("{:10}\n", d.pid())
    );
    drop(c);
    assert!(wait_until(WAIT, || !lock.exists()), "modemd left its lock");

    // 2. cu holds the line (on a terminal of its own): a modemd client reads busy.
    let (mut cu, term) = peers::cu(&dev);
    let cu_lock = format!("{:10}\n", cu.0.id());
    let deadline = Instant::now() + WAIT;
    while fs::read_to_string(&lock).ok().as_deref() != Some(cu_lock.as_str()) {
        assert!(Instant::now() < deadline, "cu did not lock the line");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_busy(addr, "client while cu holds the line");
    assert!(
        d.log
            .wait_for(&format!("held by process {}", cu.0.id()), WAIT)
            .is_some()
    );
    assert_eq!(
        fs::read_to_string(&lock).expect("cu's lock"),
        cu_lock,
        "cu's lock touched"
    );

    // cu's escape to hang up: ~. at the start of a line.
    term.write_all(b"\r~.\r");
    let deadline = Instant::now() + WAIT;
    let mut exited = false;
    while Instant::now() < deadline {
        if cu.0.try_wait().expect("try_wait").is_some() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if !exited {
        // SAFETY: kill on our own child; SIGTERM lets cu remove its lock.
        unsafe { libc::kill(cu.0.id() as i32, libc::SIGTERM) };
        let _ = cu.0.wait();
    }
    let deadline = Instant::now() + WAIT;
    while lock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!lock.exists(), "a lock was left behind");
    // And modemd serves again. (The line may still carry the CR that cu itself sent.)
    let mut c = connect(addr);
    c.write_all(b"y").expect("write");
    let mut got = Vec::new();
    wait_until(WAIT, || {
        got.extend(pty.read_for(1, Duration::from_millis(10)));
        got.contains(&b'y')
    });
    assert!(got == b"y" || got == b"\ry", "device got {got:?}");
}
