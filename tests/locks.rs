//! UUCP locks and shutdown, through the real daemon: the lock is held exactly while a session
//! uses the device, stale locks are reclaimed, live foreign locks respected, locks holding no
//! PID taken over only once 10 s old, and SIGTERM leaves nothing behind.

mod common;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;

#[test]
fn lock_holds_daemon_pid_during_session_and_goes_within_a_second() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "", &[]);
    let lock = d.dir.join(&lock_name(&pty.slave));
    assert!(!lock.exists(), "device locked before any client");
    let c = session(&pty, addr);
    let content = fs::read_to_string(&lock).expect("lock file during session");
    assert_eq!(content, format!("{:10}\n", d.pid()));
    drop(c);
    assert!(
        d.dir.wait_unlocked(Duration::from_secs(1)),
        "lock still there after 1 s"
    );
}

#[test]
fn lock_is_named_after_the_resolved_device_not_the_symlink() {
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("link");
    let link = dir.join("modem");
    std::os::unix::fs::symlink(&pty.slave, &link).expect("symlink");
    let (d, addr) = one_device(&link, "", &[]);
    let _c = session(&pty, addr);
    // Taylor cu: /dev/pts/3 -> LCK..3, whatever name the daemon was given.
    assert_eq!(d.dir.locks(), [lock_name(&pty.slave)]);
}

#[test]
fn stale_lock_of_a_dead_process_is_reclaimed() {
    let pty = Pty::open().expect("pty");
    let mut dead = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead_pid = dead.id();
    dead.wait().expect("wait");
    // A dead modemd's lock template goes too (swept once, when the daemon makes its own at
    // start-up); a live process's stays.
    let dir = TempDir::new("stale");
    let dead_template = dir.join(&format!("LTMP.{dead_pid}"));
    let live_template = dir.join(&format!("LTMP.{}", std::process::id()));
    fs::write(&dead_template, format!("{dead_pid:10}\n")).expect("write dead template");
    fs::write(&live_template, "not modemd's").expect("write live template");
    let port = free_port();
    let d = Daemon::builder(&config_line(port, &pty.slave))
        .dir(dir)
        .start();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let lock = d.dir.join(&lock_name(&pty.slave));
    fs::write(&lock, format!("{dead_pid:10}\n")).expect("write stale lock");
    let c = session(&pty, addr);
    assert_eq!(
        fs::read_to_string(&lock).expect("lock"),
        format!("{:10}\n", d.pid())
    );
    assert!(d.log.wait_for("removed stale lock", WAIT).is_some());
    assert!(
        !dead_template.exists(),
        "a dead process's template was kept"
    );
    assert!(live_template.exists(), "a live process's file was removed");
    drop(c);
    assert!(d.dir.wait_unlocked(WAIT));
}

#[test]
fn live_foreign_lock_means_busy_and_is_left_alone() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "", &[]);
    let lock = d.dir.join(&lock_name(&pty.slave));
    // This test process is alive: its lock is as good as cu's.
    let foreign = format!("{:10}\n", std::process::id());
    fs::write(&lock, &foreign).expect("write lock");
    let mut c = connect(addr);
    let _ = c.write_all(b"ATZ\r");
    let got = read_to_close(&mut c, WAIT).expect("busy client not closed");
    assert!(
        String::from_utf8_lossy(&got).contains("busy"),
        "got {got:?}"
    );
    assert!(got.ends_with(b"\r\n"));
    assert!(
        pty.read_for(1, Duration::from_millis(200)).is_empty(),
        "bytes reached a busy device"
    );
    assert!(!pty.slave_open(), "busy device was opened");
    assert_eq!(fs::read_to_string(&lock).expect("lock kept"), foreign);
}

#[test]
fn sigterm_during_a_session_exits_zero_and_leaves_nothing() {
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("pid");
    let pid_file = dir.join("modemd.pid");
    let pid_arg = pid_file.to_str().expect("utf-8").to_owned();
    let (mut d, addr) = one_device(&pty.slave, "", &["-p", &pid_arg]);
    assert_eq!(
        fs::read_to_string(&pid_file).expect("pid file"),
        format!("{}\n", d.pid())
    );
    let _c = session(&pty, addr);
    assert_eq!(d.dir.locks().len(), 1);
    d.signal(libc::SIGTERM);
    let status = d
        .wait_exit(Duration::from_secs(2))
        .expect("no exit within 2 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(d.dir.locks().is_empty(), "lock left: {:?}", d.dir.locks());
    assert_eq!(d.dir.lock_files(), Vec::<String>::new(), "lock files left");
    assert!(!pid_file.exists(), "pid file left");
    assert!(pty.wait_hangup(Duration::from_secs(1)), "device left open");
    assert!(
        d.log.wait_for("reason signal", WAIT).is_some(),
        "{}",
        d.log.all()
    );
}

/// Every lock is a link to one file holding the daemon's PID; a lock directory cleaned
/// under the daemon (a tmp cleaner) costs nothing but that file being written again.
#[test]
fn locks_survive_the_lock_directory_being_cleaned() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "", &[]);
    let lock = d.dir.join(&lock_name(&pty.slave));
    let template = d.dir.join(&format!("LTMP.{}", d.pid()));
    for round in 0..3 {
        let c = session(&pty, addr);
        let content = fs::read_to_string(&lock).expect("lock file during session");
        assert_eq!(content, format!("{:10}\n", d.pid()), "round {round}");
        drop(c);
        assert!(d.dir.wait_unlocked(WAIT), "round {round}: lock kept");
        assert!(pty.wait_hangup(WAIT), "round {round}: device kept");
        if round == 1 {
            fs::remove_file(&template).expect("the template exists between sessions");
        }
    }
}

/// Dates the file at `path` (not what it may link to) `secs` seconds back, as `touch -h`.
fn age_by(path: &Path, secs: u64) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970");
    let out = run_bounded(
        std::process::Command::new("touch")
            .arg("-h")
            .arg("-d")
            .arg(format!("@{}", now.as_secs() - secs))
            .arg(path),
        WAIT,
    );
    assert!(out.status.success(), "touch {}: {out:?}", path.display());
}

/// cu and minicom create the lock before writing their PID in it: an empty one 10 s old is
/// left over, not a writer mid-way.
#[test]
fn empty_lock_older_than_ten_seconds_is_taken_over_and_logged() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "", &[]);
    let lock = d.dir.join(&lock_name(&pty.slave));
    fs::write(&lock, "").expect("write empty lock");
    age_by(&lock, 60);
    let c = session(&pty, addr);
    assert_eq!(
        fs::read_to_string(&lock).expect("lock"),
        format!("{:10}\n", d.pid())
    );
    let line = d.log.wait_for("holding no PID", WAIT);
    let line = line.unwrap_or_else(|| panic!("no info line:\n{}", d.log.all()));
    assert!(
        line.contains(&format!("removed stale lock {}", lock.display())),
        "{line}"
    );
    let age: u64 = line
        .strip_suffix(" s old")
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no age in {line:?}"));
    // Dated sixty seconds back, and claimed within the bound of `session`.
    assert!((60..=70).contains(&age), "{line}");
    drop(c);
    assert!(d.dir.wait_unlocked(WAIT));
}

#[test]
fn young_empty_lock_means_busy_and_is_left_alone() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "", &[]);
    let lock = d.dir.join(&lock_name(&pty.slave));
    fs::write(&lock, "").expect("write empty lock");
    let before = fs::metadata(&lock).expect("stat lock");
    assert_busy(addr, "client of a device with a young empty lock");
    assert!(!pty.slave_open(), "busy device was opened");
    let after = fs::metadata(&lock).expect("young lock removed");
    assert_eq!(
        (after.ino(), after.len(), after.mtime(), after.mtime_nsec()),
        (before.ino(), 0, before.mtime(), before.mtime_nsec()),
        "young lock touched"
    );
    assert_eq!(d.log.count("removed stale lock"), 0, "{}", d.log.all());
}

/// Opening a FIFO to read it blocks until a writer comes: it once held the claim forever.
#[test]
fn fifo_as_lock_file_is_busy_while_young_and_never_hangs_the_claim() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = one_device(&pty.slave, "", &[]);
    let lock = d.dir.join(&lock_name(&pty.slave));
    let made = std::process::Command::new("mkfifo")
        .arg(&lock)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", lock.display());
    assert_busy(addr, "client of a device with a fifo as its lock");
    let kind = fs::symlink_metadata(&lock)
        .expect("young fifo removed")
        .file_type();
    assert!(kind.is_fifo(), "young fifo replaced");
    age_by(&lock, 60);
    let c = session(&pty, addr);
    assert_eq!(
        fs::read_to_string(&lock).expect("lock"),
        format!("{:10}\n", d.pid())
    );
    assert!(
        d.log.wait_for("holding no PID", WAIT).is_some(),
        "{}",
        d.log.all()
    );
    drop(c);
    assert!(d.dir.wait_unlocked(WAIT));
}
